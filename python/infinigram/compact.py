"""Compacting an index: its shards merged into fewer, atomically.

Every append adds shards, and a query costs about 1.2 µs per shard per count
(bench/README.md), so an index grown by many appends gets slower.
``compact(index_path)`` rebuilds all documents, in order, ids and metadata
kept, as one shard (or shards of ``shard_size``) through the ordinary build
(``build_from_tokens``: in-memory suffix sort, or out of core within
``max_memory``: sorted parts merged on disk, the same bytes), then publishes
them as a new manifest generation that replaces the old shards
(:mod:`infinigram.generations`). A reader that opened the previous generation
keeps answering from it; the old shard directories are unlinked after the
rename. Both backends; an FM index's documents are extracted from its
FM-index (no token file is kept there).

Cost: reading every document back (SA: a copy of tokens.bin; FM: extraction,
a few MB/s per core) plus one build of the whole corpus.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, Dict, Iterator, Tuple, Union

import numpy as np

from . import format as fmt
from .build import build_from_tokens
from .errors import InfinigramError
from .generations import clean_leftovers, locked, publish, staging_dir
from .index import Index

__all__ = ["compact"]

PathArg = Union[str, "os.PathLike[str]"]


def _documents(index: Index) -> Iterator[Tuple[np.ndarray, Dict[str, Any]]]:
    """Every document of ``index`` in id order: (tokens, metadata). O(corpus)."""
    eng = index._engine
    for doc in range(index.n_docs):
        shard, a, b = eng.doc_span(doc)
        yield np.asarray(eng.tokens(shard, a, b)), index._metadata(doc, shard)


def compact(index_path: PathArg, *, shard_size: Union[None, int, str] = None, max_memory: Union[None, int, str] = None,
            n_threads: int = 0, progress: bool = True) -> Dict[str, Any]:
    """Merge the shards of the index at ``index_path`` into one (or into
    shards of ``shard_size``, as :func:`infinigram.build` reads it) and
    publish them as a new generation; returns the new manifest. Documents,
    ids, metadata and every answer stay the same. ``max_memory`` bounds the
    build as in :func:`infinigram.build`. Raises :class:`InfinigramError`
    (not an index, not writable, the budget too small) with the index
    unchanged. O(corpus)."""
    index_path = os.path.abspath(os.fspath(index_path))
    fmt.read_manifest(index_path)
    if not os.access(index_path, os.W_OK):
        raise InfinigramError(f"{index_path}: not writable (compact writes new shards and a new manifest)")
    with locked(index_path):
        manifest = fmt.read_manifest(index_path)
        clean_leftovers(index_path, manifest)
        index = Index(index_path)
        ident = manifest.get("tokenizer") or {}
        kind = ident.get("kind")
        tokenizer = None if kind == "none" else "bytes" if kind == "bytes" else \
            os.path.join(index_path, ident.get("file", fmt.TOKENIZER_FILE))
        fm = manifest.get("fm", {})
        staging = staging_dir(index_path, "compact")
        try:
            built = build_from_tokens(
                _documents(index), staging, dtype=fmt.dtype_for(int(manifest["token_width"])), tokenizer=tokenizer,
                shard_size=shard_size, n_threads=n_threads, progress=False, backend=manifest.get("backend", "sa"),
                sa_sample=int(fm.get("sa_sample", 64)), isa_sample=int(fm.get("isa_sample", 64)),
                wt_block_bits=int(fm.get("wt_block_bits", 0)), max_memory=max_memory)
            if (int(built["n_docs"]), int(built["n_tokens"])) != (int(manifest["n_docs"]), int(manifest["n_tokens"])):
                raise InfinigramError(f"{index_path}: compaction read {built['n_docs']} docs / {built['n_tokens']} "
                                      f"tokens, the index has {manifest['n_docs']} / {manifest['n_tokens']}")
            out, moved = publish(index_path, manifest, built, staging, replace=True, log_key="compactions", log={
                "shards_before": len(manifest["shards"]), "shards_after": len(built["shards"]),
                "seconds": built.get("build", {}).get("seconds")})
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if progress:
        print(f"infinigram: compacted {index_path}: {len(manifest['shards'])} -> {len(out['shards'])} shard(s), "
              f"{out['n_docs']:,} docs, {out['n_tokens']:,} tokens, in "
              f"{built.get('build', {}).get('seconds', 0):.2f} s; now generation {out['generation']}",
              file=sys.stderr)
    return out
