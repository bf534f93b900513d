"""Exact continuations: the distinct tokens that follow a prefix in the
corpus, with their counts, and cursors that extend a prefix one token at a
time (what corpus-constrained decoding needs; ``infinigram.constrained``).

Backends (C++: ``csrc/continuations.hpp``):

* **suffix array**: the prefix's SA range per shard; the continuations are the
  blocks of equal next tokens in it, galloped: O(distinct × log count) reads;
  appending a token narrows the range by two binary searches on one depth,
  O(log count).
* **FM-index**: an FM-index of the *reversed* text (each document reversed in
  place), built once by :func:`build_reverse` (``infinigram reverse IDX``) and
  stored beside the index in ``IDX/reverse/``. There backward search appends
  to the forward prefix (one wavelet rank pair per token), and the tokens that
  follow the prefix are the distinct BWT symbols of its rows, enumerated by
  the wavelet tree's distinct-symbols walk with their counts as rank
  differences: O(distinct × code length) ranks. Without the reversed index,
  :func:`continuations` falls back to locating every occurrence
  (``ntd(exact=True)``: O(occurrences × sa_sample) LF steps, the empty prefix
  takes ~0.6 s on 100 MB) and cursors are refused with a message naming the
  command that builds it.

Counts follow ``docs/QUERIES.md``: ``count`` = occurrences of the prefix
(``n_tokens`` for the empty prefix), ``end_count`` = those that end a
document, ``counts[t]`` = occurrences of prefix + t, ``counts.sum() == count
- end_count``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from . import format as fmt
from .errors import InfinigramError

__all__ = ["Continuations", "ContinuationsBatch", "Cursors", "continuations", "continuations_many", "build_reverse",
           "has_reverse", "cursor_engine", "REVERSE_DIR"]

REVERSE_DIR = "reverse"
REVERSE_MANIFEST = "reverse.json"
_SPARSE = 1 << 40  # sampling of the reversed FM files: they are never located in (one sample each)


@dataclass
class Continuations:
    """The tokens that follow a prefix (ascending, int64) and their counts.

    ``count``: occurrences of the prefix (``n_tokens`` for the empty one);
    ``end_count``: occurrences that end a document. ``counts.sum() ==
    count - end_count``. ``as_dict()`` gives ``{token: count}``."""

    tokens: np.ndarray
    counts: np.ndarray
    count: int
    end_count: int

    def __len__(self) -> int:
        return len(self.tokens)

    def as_dict(self) -> Dict[int, int]:
        return dict(zip(self.tokens.tolist(), self.counts.tolist()))


@dataclass
class ContinuationsBatch:
    """Continuations of many prefixes as flat arrays: prefix ``i``'s tokens and
    counts are ``tokens[offsets[i]:offsets[i+1]]``; ``count`` / ``end_count``
    one entry per prefix. ``batch[i]`` is a :class:`Continuations`."""

    offsets: np.ndarray
    tokens: np.ndarray
    counts: np.ndarray
    count: np.ndarray
    end_count: np.ndarray

    def __len__(self) -> int:
        return len(self.count)

    def __getitem__(self, i: int) -> Continuations:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return Continuations(self.tokens[a:b], self.counts[a:b], int(self.count[i]), int(self.end_count[i]))


# ------------------------------------------------------------ reversed index
def _reverse_specs(part_path: str, manifest: Dict[str, Any]) -> Optional[List[Tuple[str, str, str, str]]]:
    """FMEngine shard specs of a part's reversed index, or None when it has
    none or it was built for other shard files (an append or a rebuild since)."""
    rdir = os.path.join(part_path, REVERSE_DIR)
    try:
        with open(os.path.join(rdir, REVERSE_MANIFEST), encoding="utf-8") as fh:
            rm = json.load(fh)
    except (OSError, ValueError):
        return None
    shards = manifest["shards"]
    if not isinstance(rm, dict) or rm.get("shards") is None or len(rm["shards"]) != len(shards):
        return None
    specs = []
    for s, r in zip(shards, rm["shards"]):
        if r.get("key") != _shard_key(s):
            return None
        d = os.path.join(rdir, r["dir"])
        paths = fmt.shard_paths(part_path, s)
        specs.append((os.path.join(d, fmt.FM), os.path.join(d, fmt.FM_SA), os.path.join(d, fmt.FM_ISA),
                      paths["doc_offsets"]))
    return specs


def _shard_key(shard: Dict[str, Any]) -> List[Any]:
    """What identifies a shard's contents: its positions and its doc_offsets' checksum."""
    files = shard.get("files", {})
    return [shard.get("dir"), int(shard.get("n_positions", -1)), files.get(fmt.DOC_OFFSETS, {}).get("sha256")]


def has_reverse(index: Any) -> bool:
    """True when every part of ``index`` has an up-to-date reversed index."""
    return all(_reverse_specs(p.path, p.manifest) is not None for p in index.parts)


def _reverse_engine(index: Any) -> Optional[Any]:
    """The FMEngine over the reversed shards of every part (cached on the Index), or None."""
    cached = index.__dict__.get("_reverse_engine")
    if cached is not None:
        return cached
    specs: List[Tuple[str, str, str, str]] = []
    for p in index.parts:
        s = _reverse_specs(p.path, p.manifest)
        if s is None:
            return None
        specs += s
    eng = _core.FMEngine(index.token_width, specs)
    index.__dict__["_reverse_engine"] = eng
    return eng


def cursor_engine(index: Any) -> Any:
    """The engine cursors run on: the suffix array itself, or the reversed
    FM-index. Raises :class:`InfinigramError` for an FM index without one."""
    if index.backend == "sa":
        return index._engine
    eng = _reverse_engine(index)
    if eng is None:
        paths = " ".join(p.path for p in index.parts)
        raise InfinigramError(f"{paths}: an FM-index needs its reversed index for stepwise continuations "
                              f"(constrained decoding); build it once with `infinigram reverse {paths}` "
                              "or infinigram.continuations.build_reverse(path)")
    return eng


def _reversed_docs(T: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """T with every document's text reversed in place (separators stay). O(n)."""
    n = len(T)
    starts = offsets[:-1].astype(np.int64)  # each doc's separator
    ends = np.append(starts[1:], n).astype(np.int64)
    lens = ends - starts  # separator + text
    doc = np.repeat(np.arange(len(starts), dtype=np.int64), lens)
    pos = np.arange(n, dtype=np.int64)
    src = starts[doc] + ends[doc] - pos  # text position p of doc [a+1, b) <- a + b - p
    src[pos == starts[doc]] = pos[pos == starts[doc]]  # the separator stays
    return T[src]


def build_reverse(path: str, n_threads: int = 0, progress: bool = False) -> str:
    """Builds the reversed FM-index of index ``path`` (either backend; needed
    for FM cursors) into ``path/reverse/`` (atomically: a temporary directory
    renamed). Per shard: its tokens (read, or extracted from the FM-index),
    each document reversed, and ``fm_build_shard`` without SA/ISA samples
    (one each). Time: about one FM build of the corpus; size: about the
    forward FM's wavelet tree (``bench/README.md`` has figures). Returns the
    directory."""
    from .index import Index

    ix = Index(path)
    if ix.is_union:
        raise InfinigramError("build_reverse takes one index directory (build each part's)")
    m = ix.manifest
    out = os.path.join(path, REVERSE_DIR)
    tmp = tempfile.mkdtemp(prefix=".reverse-", dir=path)
    try:
        entries = []
        for s, shard in enumerate(m["shards"]):
            n = int(ix._engine.shard_n_positions(s))
            if ix.backend == "sa":
                T = np.fromfile(fmt.shard_paths(path, shard)["tokens"], dtype=fmt.dtype_for(ix.token_width))
            else:
                T = np.asarray(ix._engine.tokens(s, 0, n, n_threads))
            offs = np.fromfile(fmt.shard_paths(path, shard)["doc_offsets"], dtype=np.uint64)[:-1]
            R = _reversed_docs(T, offs)
            del T
            d = os.path.join(tmp, fmt.shard_dirname(s))
            os.makedirs(d)
            tok_path = os.path.join(d, "tokens.tmp")
            R.tofile(tok_path)
            del R
            _core.fm_build_shard(tok_path, ix.token_width, os.path.join(d, fmt.FM), os.path.join(d, fmt.FM_SA),
                                 os.path.join(d, fmt.FM_ISA), _SPARSE, _SPARSE, int(n_threads), None, 0)
            os.remove(tok_path)
            entries.append({"dir": fmt.shard_dirname(s), "key": _shard_key(shard),
                            "bytes": sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))})
            if progress:
                print(f"reverse: shard {s + 1}/{len(m['shards'])} done", flush=True)
        with open(os.path.join(tmp, REVERSE_MANIFEST), "w", encoding="utf-8") as fh:
            json.dump({"format": "infinigram-reverse", "version": 1, "shards": entries}, fh, indent=1)
        if os.path.exists(out):
            old = out + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    ix.__dict__.pop("_reverse_engine", None)
    return out


# ------------------------------------------------------------ queries
def _pack(index: Any, prefixes: Any) -> Tuple[np.ndarray, np.ndarray]:
    return index._pack(prefixes)


def continuations_many(index: Any, prefixes: Any, n_threads: int = 0) -> ContinuationsBatch:
    """Exact continuations of many prefixes (a list of queries or a packed
    ``(flat, offsets)`` pair), in C++ with the GIL released on ``n_threads``
    threads (0 = all cores). Costs as in the module docstring."""
    flat, offsets = _pack(index, prefixes)
    if index.backend == "sa":
        eng = index._engine
    else:
        eng = _reverse_engine(index)
    if eng is not None:
        return ContinuationsBatch(*_core.cont_many(eng, flat, offsets, int(n_threads)))
    return _fallback_many(index, flat, offsets)


def continuations(index: Any, prefix: Any) -> Continuations:
    """Exact continuations of one prefix (``str`` or token ids)."""
    ids = index._ids(prefix)
    try:
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    except OverflowError:
        raise ValueError("a token id does not fit in 64 bits") from None
    return continuations_many(index, (arr, np.array([0, len(arr)], dtype=np.int64)), 1)[0]


def _fallback_many(index: Any, flat: np.ndarray, offsets: np.ndarray) -> ContinuationsBatch:
    """FM without a reversed index: every occurrence located (lm ntd, exact)."""
    b = index.ntd_many((flat, offsets), exact=True)
    count = b.prompt_count.copy()
    empty = np.diff(offsets) == 0
    count[empty] = index.n_tokens
    end = np.where(empty, 0, b.end_count)
    return ContinuationsBatch(b.offsets, b.tokens, b.counts, count, end)


class Cursors:
    """``B`` prefixes (one per batch row or beam) kept as ranges in the
    corpus, each extended one token at a time and never searched again from
    scratch: on a suffix array one range per shard narrowed by two binary
    searches, on an FM-index one row range per shard of the reversed index
    moved by one backward-search step (see the module docstring).

    ``step(tokens)`` appends ``tokens[b]`` to prefix ``b`` (``-1``: leave it)
    and returns every prefix's continuations; ``reset(rows)`` empties some
    prefixes; ``reorder(idx)`` permutes them (beam search). One C++ call per
    step for the whole batch, GIL released."""

    def __init__(self, index: Any, batch: int) -> None:
        self.index = index
        self.engine = cursor_engine(index)
        self.root = _core.cont_start(self.engine, np.zeros(0, dtype=np.int64))  # (S, 2): the empty prefix
        self.ranges = np.tile(self.root[None], (int(batch), 1, 1))
        self.depth = np.zeros(int(batch), dtype=np.int64)
        self.vocab = int(index.separator)  # ids >= this never occur

    def __len__(self) -> int:
        return len(self.depth)

    def step(self, tokens: Optional[Sequence[int]] = None, want: bool = True) -> ContinuationsBatch:
        """Extends prefix b by ``tokens[b]`` (< 0: unchanged; None: all
        unchanged), then lists every prefix's continuations (``want``).
        O(B × (log count + distinct × log count)) on a suffix array; O(B ×
        (1 + distinct) × code length) ranks on an FM-index."""
        t = np.full(len(self), -1, dtype=np.int64) if tokens is None else np.asarray(tokens, dtype=np.int64)
        out_of_range = t >= self.vocab
        if out_of_range.any():  # a token the corpus cannot hold: that prefix no longer occurs
            self.ranges[out_of_range] = 0
            self.depth[out_of_range] += 1
            t = np.where(out_of_range, -1, t)
        self.ranges, self.depth, lists = _core.cont_step(self.engine, self.ranges, self.depth, t, bool(want), 1,
                                                         True)
        batch = ContinuationsBatch(*lists)
        if not want or not (self.depth == 0).any():
            return batch
        return _splice_root(batch, self.depth == 0, self._root_list())

    def _root_list(self) -> "ContinuationsBatch":
        """The empty prefix's continuations (every corpus token), computed once per index."""
        r = self.index.__dict__.get("_root_continuations")
        if r is None:
            r = ContinuationsBatch(*_core.cont_many(self.engine, np.zeros(0, np.int64), np.zeros(2, np.int64), 0))
            self.index.__dict__["_root_continuations"] = r
        return r

    def reset(self, rows: Any = None) -> None:
        """Empties the prefixes of ``rows`` (a mask or indices; None: all)."""
        if rows is None:
            rows = slice(None)
        self.ranges[rows] = self.root
        self.depth[rows] = 0

    def reorder(self, idx: Any) -> None:
        """Prefix b becomes old prefix ``idx[b]`` (beam search's reordering)."""
        idx = np.asarray(idx, dtype=np.int64)
        self.ranges = self.ranges[idx]
        self.depth = self.depth[idx]

    def counts(self) -> np.ndarray:
        """Occurrences of each prefix (``n_tokens`` for an empty one). O(B × shards)."""
        c = (self.ranges[:, :, 1].astype(np.int64) - self.ranges[:, :, 0].astype(np.int64)).sum(axis=1)
        return np.where(self.depth == 0, self.index.n_tokens, c)


def _splice_root(batch: ContinuationsBatch, root_rows: np.ndarray, root: ContinuationsBatch) -> ContinuationsBatch:
    """``batch`` with the rows of ``root_rows`` (listed empty) given the empty prefix's list. O(B + total)."""
    B = len(batch)
    toks, cnts = [], []
    for b in range(B):
        if root_rows[b]:
            toks.append(root.tokens)
            cnts.append(root.counts)
        else:
            a, z = int(batch.offsets[b]), int(batch.offsets[b + 1])
            toks.append(batch.tokens[a:z])
            cnts.append(batch.counts[a:z])
    off = np.zeros(B + 1, dtype=np.int64)
    np.cumsum([len(t) for t in toks], out=off[1:])
    count = np.where(root_rows, root.count[0], batch.count)
    end = np.where(root_rows, root.end_count[0], batch.end_count)
    return ContinuationsBatch(off, np.concatenate(toks), np.concatenate(cnts), count, end)
