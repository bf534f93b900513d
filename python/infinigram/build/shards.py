"""Stage 3, writing shards: each document as SEP + its tokens into the current
shard's tokens.bin, its offset into doc_offsets.bin, its metadata into
meta.bin; a shard that reaches the size limit is closed and handed to the
constructor (stage 4) while the next one is written. O(tokens) overall.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import format as fmt
from ..errors import TokenizerError

__all__ = ["_ShardWriter", "ShardSink"]


class _ShardWriter:
    """Streams one shard's tokens.bin, doc_offsets.bin and metadata files."""

    def __init__(self, dirpath: str, dtype: np.dtype, separator: int, fsync_tokens: bool = True) -> None:
        os.makedirs(dirpath)
        self._fsync_tokens = fsync_tokens  # False: tokens.bin is temporary (the FM backend deletes it)
        self.dir = dirpath
        self.paths = {k: os.path.join(dirpath, n) for k, n in fmt.SHARD_FILES.items()}
        self._tokens = open(self.paths["tokens"], "wb", buffering=1 << 20)
        self._doc_offsets = fmt.U64Writer(self.paths["doc_offsets"])
        self._meta = fmt.MetadataWriter(self.paths["meta"], self.paths["meta_offsets"])
        self._sep = np.array([separator], dtype=dtype).tobytes()
        self.n_docs = 0
        self.n_positions = 0

    def add(self, tokens: np.ndarray, metadata: Dict[str, Any]) -> None:
        """Append one document: SEP then its tokens. O(len(tokens))."""
        self._doc_offsets.append(self.n_positions)
        self._tokens.write(self._sep)
        if len(tokens):
            self._tokens.write(np.ascontiguousarray(tokens).data)
        self.n_positions += 1 + len(tokens)
        self.n_docs += 1
        self._meta.append(metadata)

    def close(self) -> None:
        """Write the final doc offset, flush and fsync everything."""
        if self._tokens.closed:
            return
        self._doc_offsets.append(self.n_positions)
        self._doc_offsets.close()
        self._meta.close()
        self._tokens.flush()
        if self._fsync_tokens:
            os.fsync(self._tokens.fileno())
        self._tokens.close()

    def abort(self) -> None:
        """Close without caring about errors (the temp dir is deleted next)."""
        for f in (self._tokens,):
            try:
                f.close()
            except Exception:
                pass
        for w in (self._doc_offsets, self._meta):
            try:
                w.close(fsync=False)
            except Exception:
                pass


class ShardSink:
    """Writes documents into shards of at most ``limit`` positions (None: one
    shard; a document longer than the limit gets a shard of its own) under
    ``tmp``, appending ``(writer, manifest entry)`` to ``shards`` and calling
    ``on_full(i)`` for each shard once written.

    :meth:`add` checks every id is in ``[0, max_id)`` (``max_id``: the
    separator, or the tokenizer's vocabulary size for token inputs) and
    converts to the index's dtype. O(len(tokens)) per document.
    """

    def __init__(self, tmp: str, shards: List[Tuple[_ShardWriter, Dict[str, Any]]], dtype: np.dtype, sep: int,
                 limit: Optional[int], fsync_tokens: bool, on_full: Callable[[int], None],
                 max_id: Optional[int] = None) -> None:
        self.tmp, self.shards, self.dtype, self.sep, self.limit = tmp, shards, np.dtype(dtype), int(sep), limit
        self.fsync_tokens, self.on_full = fsync_tokens, on_full
        self.max_id = int(max_id if max_id is not None else sep)
        self.current: Optional[_ShardWriter] = None
        self.n_docs = 0

    def _new_shard(self) -> _ShardWriter:
        i = len(self.shards)
        w = _ShardWriter(os.path.join(self.tmp, fmt.shard_dirname(i)), self.dtype, self.sep,
                         fsync_tokens=self.fsync_tokens)
        self.shards.append((w, {"dir": fmt.shard_dirname(i), "doc_base": self.n_docs}))
        return w

    def add(self, toks: np.ndarray, meta: Dict[str, Any], where: Callable[[], str]) -> None:
        """Append one document; ``where()`` names it in errors (``file:line``)."""
        if toks.size:
            hi = int(toks.max())
            lo = int(toks.min()) if toks.dtype.kind == "i" else 0
            if hi >= self.max_id or lo < 0:
                bad = hi if hi >= self.max_id else lo
                what = (f"below the separator {self.sep} of {self.dtype.itemsize}-byte tokens"
                        if self.max_id == self.sep else f"in the tokenizer's vocabulary of {self.max_id} ids")
                raise TokenizerError(f"{where()}: token id {bad} does not fit {what} "
                                     f"(expected ids in [0, {self.max_id}))")
            if toks.dtype != self.dtype:
                toks = toks.astype(self.dtype)
        cur = self.current
        if cur is None or (self.limit is not None and cur.n_docs > 0 and cur.n_positions + 1 + len(toks) > self.limit):
            if cur is not None:
                cur.close()
                self.on_full(len(self.shards) - 1)
            cur = self.current = self._new_shard()
        cur.add(toks, meta)
        self.n_docs += 1

    def finish(self) -> None:
        """Close the last shard and hand it on."""
        if self.current is not None:
            self.current.close()
            self.on_full(len(self.shards) - 1)
            self.current = None
