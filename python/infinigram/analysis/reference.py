"""Units of text and tiny in-memory reference indexes.

A *unit* is how a text is cut into the tokens that spans are counted in:

``"words"``  the paper's unit: NLTK ``casual_tokenize`` after ``unidecode``
             (optional dependencies: ``pip install 'infinigram[analysis]'``);
``"regex"``  a dependency-free word unit: ``\\w+`` runs and single other non-space
             characters (close to ``casual_tokenize`` on plain prose, not identical);
``"chars"``  Unicode code points;
``"bytes"``  UTF-8 bytes;
``"tokens"`` the token ids of an :class:`~infinigram.Index` (its own tokenizer).

:class:`TinyIndex` wraps one reference (a token sequence) as a one-document
suffix-array index held by the C++ engine, so a generation is matched against
a single document with the same code path as against a corpus.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from ..errors import InfinigramError

__all__ = ["UNITS", "TinyIndex", "tokenize_units", "Vocab", "MissingDependencyError"]

UNITS = ("words", "regex", "chars", "bytes", "tokens")
_REGEX = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class MissingDependencyError(InfinigramError, ImportError):
    """An optional dependency is needed for the requested feature."""


def _need(module: str, feature: str, extra: str = "analysis") -> object:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"{feature} needs the optional package {module.split('.')[0]!r}: "
            f"pip install 'infinigram[{extra}]' (or pip install {module.split('.')[0]})") from None


def tokenize_units(text: str, unit: str) -> List[Hashable]:
    """Cut ``text`` into units (``"words"``, ``"regex"``, ``"chars"``, ``"bytes"``).

    ``"words"`` is ``nltk.tokenize.casual.casual_tokenize(unidecode(text))``, as
    in the paper's published code.
    """
    if unit == "words":
        ud = _need("unidecode", "unit 'words' (unidecode + NLTK casual_tokenize)")
        casual = _need("nltk.tokenize.casual", "unit 'words' (unidecode + NLTK casual_tokenize)")
        return list(casual.casual_tokenize(ud.unidecode(text)))  # type: ignore[attr-defined]
    if unit == "regex":
        return _REGEX.findall(text)
    if unit == "chars":
        return list(text)
    if unit == "bytes":
        return list(text.encode("utf-8"))
    raise ValueError(f"unknown unit {unit!r} (expected one of {', '.join(UNITS[:4])}; "
                     "'tokens' needs an Index)")


class Vocab:
    """Maps units (strings) to dense ids 0, 1, ... (shared by a reference and
    the texts matched against it)."""

    def __init__(self) -> None:
        self._ids: Dict[Hashable, int] = {}

    def __call__(self, units: Sequence[Hashable]) -> np.ndarray:
        ids = self._ids
        return np.fromiter((ids.setdefault(u, len(ids)) for u in units), dtype=np.int64, count=len(units))

    def __len__(self) -> int:
        return len(self._ids)


def _tmp_root() -> Optional[str]:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class TinyIndex:
    """One reference document as a suffix-array index for the C++ engine.

    ``TinyIndex(ids)``: ids are non-negative ints below 2**32 - 1 (u32 tokens;
    ``token_width=1`` for bytes). The three engine files are written to a
    temporary directory (``/dev/shm`` when available), memory-mapped, and the
    directory is removed at once (the mappings stay valid).
    """

    def __init__(self, ids: Sequence[int], token_width: int = 4) -> None:
        dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32}[token_width]
        sep = int(np.iinfo(dtype).max)
        arr = np.asarray(ids, dtype=np.int64)
        if len(arr) and (arr.min() < 0 or arr.max() >= sep):
            raise ValueError(f"token ids must be in [0, {sep})")
        self.ids = arr
        self.token_width = token_width
        d = tempfile.mkdtemp(prefix="infinigram-tiny-", dir=_tmp_root())
        try:
            tok = os.path.join(d, "tokens.bin")
            sa = os.path.join(d, "sa.bin")
            offs = os.path.join(d, "doc_offsets.bin")
            np.concatenate([[sep], arr]).astype(dtype).tofile(tok)
            n_pos = len(arr) + 1
            np.array([0, n_pos], dtype="<u8").tofile(offs)
            w = _core.build_suffix_array(tok, sa, token_width)
            self.engine = _core.Engine(token_width, [(tok, sa, offs, int(w))])
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def __len__(self) -> int:
        return len(self.ids)

    def matching_statistics(self, q: Sequence[int]) -> np.ndarray:
        """``ms[i]``: the longest ``q[i:i+L]`` occurring in the reference.
        Ids of q outside the engine's range are an error; ids the reference
        never saw simply match nothing."""
        q = np.asarray(q, dtype=np.int64)
        if len(q) == 0:
            return np.zeros(0, dtype=np.int64)
        length, _, _, _ = _core.matching_statistics(self.engine, q, False)
        return length.astype(np.int64)

    def matching_statistics_many(self, qs: Sequence[Sequence[int]]) -> List[np.ndarray]:
        return [self.matching_statistics(q) for q in qs]


def unit_ids(texts: Sequence[str], unit: str, vocab: Optional[Vocab] = None) -> Tuple[List[np.ndarray], int]:
    """Token ids of ``texts`` in ``unit`` and the token width to index them with."""
    if unit == "bytes":
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(np.int64) for t in texts], 1
    if unit == "chars":
        return [np.fromiter((ord(c) for c in t), dtype=np.int64, count=len(t)) for t in texts], 4
    vocab = vocab if vocab is not None else Vocab()
    return [vocab(tokenize_units(t, unit)) for t in texts], 4
