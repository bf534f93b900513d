"""infinigram: exact n-gram search over the text language models are trained on.

    from infinigram import Index, build
    build(["corpus.jsonl.zst"], "idx/")            # read -> tokenize -> suffix arrays -> index dir
    ix = Index("idx/")
    ix.count("the quick brown fox")                # occurrences, summed over shards
    ix.search_docs("brown fox", maxnum=3)          # documents with context and metadata

See docs/ARCHITECTURE.md for where each part lives and docs/FORMAT.md for the
on-disk format.
"""

__version__ = "0.1.0"

from .build import build, build_from_tokens
from .errors import (
    IndexCorruptError,
    IndexVersionError,
    InfinigramError,
    InputError,
    NotAnIndexError,
    OutputExistsError,
    TokenizerError,
)
from .index import Document, Index, Locations, Match
from .drafter import Drafter

__all__ = [
    "Index", "build", "build_from_tokens", "Drafter", "Document", "Locations", "Match",
    "InfinigramError", "InputError", "TokenizerError", "NotAnIndexError",
    "IndexCorruptError", "IndexVersionError", "OutputExistsError", "__version__",
]
