"""Pre-tokenized inputs: flat token files (``.bin`` / ``.npy``), Megatron-LM
indexed datasets (``.bin`` + ``.idx``), and in-memory arrays.

Flat files hold token ids back to back (``.bin``: raw little endian of
``dtype``; ``.npy``: its own header and dtype), documents split at the ``eos``
id (Dolma/OLMo style: ``doc EOS doc EOS``; the EOS ids are not stored, a final
segment without EOS is a document, a file ending in EOS adds no empty one) or
given by an offsets file (``n_docs + 1`` non-decreasing token offsets, first
0, last the file's token count; ``.npy`` or raw little-endian u64).

A Megatron-LM dataset (``prefix.idx`` + ``prefix.bin``; the ``.idx``
version 1 layout of ``megatron/core/datasets/indexed_dataset.py``: magic
``MMIDIDX\\0\\0``, version, dtype code, sequence and document counts,
sequence lengths (i32), byte pointers (i64), document indices (i64)) gives
its documents (each one or more sequences); with ``eos`` a trailing EOS id of
each document (``--append-eod``) is dropped.

Everything is memory-mapped: a document is a view of the mapped file, copied
only into the shard being written; splitting at EOS scans ``CHUNK`` tokens at
a time. Errors name the file and the 0-based document.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .base import Document, Source

__all__ = ["DTYPES", "parse_dtype", "TokenFileSource", "MegatronSource", "ArraySource", "read_megatron_index",
           "MEGATRON_DTYPES"]

#: --dtype names
DTYPES = {"u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "i32": np.int32, "i64": np.int64, "u64": np.uint64}
#: Megatron's dtype codes (indexed_dataset.DType)
MEGATRON_DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32,
                   8: np.uint16}
_MAGIC = b"MMIDIDX\x00\x00"
CHUNK = 1 << 24  # tokens scanned per step when splitting at EOS


def parse_dtype(dtype: Any) -> np.dtype:
    """``"u16"``/``"uint16"``/``np.uint16`` → little-endian numpy dtype; integer dtypes only."""
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        dt = np.dtype(DTYPES[dtype.lower()])
    else:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise InputError(f"unknown token dtype {dtype!r} (expected one of {', '.join(DTYPES)})") from None
    if dt.kind not in "ui":
        raise InputError(f"token dtype {dt} is not an integer type (expected one of {', '.join(DTYPES)})")
    return dt.newbyteorder("<") if dt.itemsize > 1 else dt


def _check_eos(eos: Optional[int], dt: np.dtype, where: str) -> Optional[int]:
    if eos is None:
        return None
    info = np.iinfo(dt)
    if isinstance(eos, bool) or not isinstance(eos, (int, np.integer)) or not info.min <= int(eos) <= info.max:
        raise InputError(f"EOS id {eos!r} is out of range for {dt} tokens (expected an integer in "
                         f"[{max(info.min, 0)}, {info.max}])", where)
    return int(eos)


def _map(path: str, dt: Optional[np.dtype]) -> np.ndarray:
    """The tokens of a flat file, memory-mapped (``.npy``: its own dtype, 1-d)."""
    try:
        if path.lower().endswith(".npy"):
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            if arr.ndim != 1 or arr.dtype.kind not in "ui":
                raise InputError(f"a {arr.ndim}-d {arr.dtype} array (expected a 1-d integer token array)", path)
            if dt is not None and arr.dtype != dt:
                raise InputError(f"holds {arr.dtype} tokens, but dtype {dt} was given (expected the file's dtype)", path)
            return arr
        if dt is None:
            raise InputError("a raw token file needs its dtype (--dtype u16|u32 / dtype=...)", path)
        size = os.path.getsize(path)
        if size % dt.itemsize:
            raise InputError(f"size {size} is not a multiple of {dt.itemsize} (expected {dt} tokens; wrong --dtype?)",
                             path)
        if size == 0:
            return np.zeros(0, dt)
        return np.memmap(path, dtype=dt, mode="r")
    except InputError:
        raise
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read tokens ({e})", path) from None


def _read_offsets(path: str, n_tokens: int, tokens_path: str) -> np.ndarray:
    try:
        offs = np.load(path, allow_pickle=False) if path.lower().endswith(".npy") else np.fromfile(path, dtype="<u8")
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read document offsets ({e})", path) from None
    offs = np.asarray(offs).astype(np.int64, copy=False).ravel()
    if len(offs) < 2 or offs[0] != 0 or offs[-1] != n_tokens or (np.diff(offs) < 0).any():
        raise InputError(f"bad document offsets (expected n_docs + 1 non-decreasing offsets from 0 to the "
                         f"{n_tokens:,} tokens of {tokens_path})", path)
    return offs


class _TokenSource(Source):
    kind = "tokens"
    unit = "document"

    def __init__(self) -> None:
        self.skipped_invalid = 0
        self.n_docs = 0
        self._done = 0

    @property
    def bytes_read(self) -> int:
        return self._done


class TokenFileSource(_TokenSource):
    """Flat token files split at ``eos`` or by ``offsets`` (one offsets file per
    token file). ``positions_hint``: tokens + an estimate of one per document."""

    def __init__(self, files: Sequence[str], dtype: Any = None, eos: Optional[int] = None,
                 offsets: Optional[Sequence[str]] = None) -> None:
        super().__init__()
        self.files = [os.fspath(f) for f in files]
        if not self.files:
            raise InputError("no token files given")
        self.dtype = None if dtype is None else parse_dtype(dtype)
        self.offsets = None if offsets is None else [os.fspath(o) for o in offsets]
        if self.offsets is not None and len(self.offsets) != len(self.files):
            raise InputError(f"{len(self.offsets)} offsets file(s) for {len(self.files)} token file(s) "
                             "(expected one per token file)")
        if eos is None and self.offsets is None:
            raise InputError("pre-tokenized files need document boundaries: an EOS id (--eos ID / eos=...) "
                             "or offsets files (--offsets)")
        arrays = [_map(f, self.dtype) for f in self.files]
        dts = {a.dtype for a in arrays}
        if len(dts) > 1:
            raise InputError(f"the token files hold different dtypes ({', '.join(map(str, dts))})")
        self.token_dtype = arrays[0].dtype
        self.eos = _check_eos(eos, self.token_dtype, self.files[0])
        n = sum(len(a) for a in arrays)
        self.total_bytes = n * self.token_dtype.itemsize
        self.positions_hint = n
        del arrays

    def __iter__(self) -> Iterator[Document]:
        for k, f in enumerate(self.files):
            arr = _map(f, self.dtype)
            doc = 0
            if self.offsets is not None:
                offs = _read_offsets(self.offsets[k], len(arr), f)
                for a, b in zip(offs[:-1].tolist(), offs[1:].tolist()):
                    self.n_docs += 1
                    self._done += (b - a) * arr.itemsize
                    yield arr[a:b], {}, f, doc
                    doc += 1
                continue
            start = 0
            eos = self.eos
            for c in range(0, len(arr), CHUNK):
                ends = np.flatnonzero(arr[c:c + CHUNK] == eos) + c
                for e in ends.tolist():
                    self.n_docs += 1
                    yield arr[start:e], {}, f, doc
                    doc += 1
                    start = e + 1
                self._done = (sum(os.path.getsize(x) for x in self.files[:k]) +
                              min(c + CHUNK, len(arr)) * arr.itemsize)
            if start < len(arr):
                self.n_docs += 1
                yield arr[start:], {}, f, doc


def read_megatron_index(idx_path: str) -> Tuple[np.dtype, np.ndarray, np.ndarray, np.ndarray]:
    """``(dtype, sequence_lengths, sequence_pointers, document_indices)`` of a
    Megatron ``.idx`` (memory-mapped), checked: magic, version 1, a known
    integer dtype, sizes that fit the file. O(1) but the final checks, O(n)."""
    try:
        size = os.path.getsize(idx_path)
        with open(idx_path, "rb") as fh:
            head = fh.read(34)
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", idx_path) from None
    if len(head) < 34 or head[:9] != _MAGIC:
        raise InputError("not a Megatron-LM index (expected the MMIDIDX header of a .idx file)", idx_path)
    (version,) = struct.unpack("<Q", head[9:17])
    if version != 1:
        raise InputError(f"Megatron index version {version} (expected 1)", idx_path)
    code = head[17]
    if code not in MEGATRON_DTYPES or np.dtype(MEGATRON_DTYPES[code]).kind not in "ui":
        raise InputError(f"dtype code {code} (expected an integer token dtype: "
                         f"{', '.join(f'{c}={np.dtype(d).name}' for c, d in MEGATRON_DTYPES.items() if c not in (6, 7))})",
                         idx_path)
    n_seq, n_doc = struct.unpack("<QQ", head[18:34])
    need = 34 + 4 * n_seq + 8 * n_seq + 8 * n_doc
    if size < need:
        raise InputError(f"truncated: {size:,} bytes, but its header announces {n_seq:,} sequences and {n_doc:,} "
                         f"document indices ({need:,} bytes)", idx_path)
    mm = np.memmap(idx_path, dtype=np.uint8, mode="r")
    lengths = np.frombuffer(mm, dtype="<i4", count=n_seq, offset=34)
    pointers = np.frombuffer(mm, dtype="<i8", count=n_seq, offset=34 + 4 * n_seq)
    docs = np.frombuffer(mm, dtype="<i8", count=n_doc, offset=34 + 12 * n_seq)
    if n_doc < 1 or docs[0] != 0 or docs[-1] != n_seq or (np.diff(docs) < 0).any():
        raise InputError("bad document indices (expected non-decreasing sequence indices from 0 to the "
                         f"{n_seq:,} sequences)", idx_path)
    if (lengths < 0).any() or (pointers < 0).any():
        raise InputError("negative sequence lengths or pointers", idx_path)
    return np.dtype(MEGATRON_DTYPES[code]).newbyteorder("<"), lengths, pointers, docs


def megatron_prefix(path: str) -> Optional[str]:
    """The prefix of a Megatron dataset named by ``prefix``, ``prefix.bin`` or
    ``prefix.idx`` (both files present), else None."""
    p = os.fspath(path)
    for s in (".idx", ".bin"):
        if p.endswith(s):
            p = p[: -len(s)]
            break
    return p if os.path.isfile(p + ".idx") and os.path.isfile(p + ".bin") else None


class MegatronSource(_TokenSource):
    """Documents of Megatron-LM indexed datasets (prefixes of ``.bin``+``.idx``)."""

    def __init__(self, prefixes: Sequence[str], dtype: Any = None, eos: Optional[int] = None) -> None:
        super().__init__()
        self.prefixes = [os.fspath(p) for p in prefixes]
        self.files = [p + ".bin" for p in self.prefixes]
        self._idx = []
        total = 0
        want = None if dtype is None else parse_dtype(dtype)
        for p in self.prefixes:
            dt, lengths, pointers, docs = read_megatron_index(p + ".idx")
            if want is not None and dt != want:
                raise InputError(f"holds {dt} tokens, but dtype {want} was given (expected the .idx's dtype)",
                                 p + ".idx")
            binsize = os.path.getsize(p + ".bin")
            if len(lengths) and int((pointers + lengths.astype(np.int64) * dt.itemsize).max()) > binsize:
                raise InputError(f"its sequences reach past the end of {p}.bin ({binsize:,} bytes): truncated .bin "
                                 "or the wrong .idx", p + ".idx")
            self._idx.append((dt, lengths, pointers, docs))
            total += int(lengths.sum(dtype=np.int64))
        dts = {x[0] for x in self._idx}
        if len(dts) > 1:
            raise InputError(f"the datasets hold different dtypes ({', '.join(map(str, dts))})")
        self.token_dtype = self._idx[0][0]
        self.eos = _check_eos(eos, self.token_dtype, self.prefixes[0] + ".idx")
        self.total_bytes = total * self.token_dtype.itemsize
        self.positions_hint = total + sum(len(x[3]) - 1 for x in self._idx)

    def __iter__(self) -> Iterator[Document]:
        for p, (dt, lengths, pointers, docs) in zip(self.prefixes, self._idx):
            f = p + ".bin"
            size = os.path.getsize(f)
            data = np.memmap(f, dtype=dt, mode="r") if size >= dt.itemsize else np.zeros(0, dt)
            starts = (pointers // dt.itemsize).tolist()
            lens = lengths.tolist()
            bounds = docs.tolist()
            for d in range(len(bounds) - 1):
                a, b = bounds[d], bounds[d + 1]
                if b - a == 1 or (b > a and all(starts[s] + lens[s] == starts[s + 1] for s in range(a, b - 1))):
                    toks = data[starts[a]:starts[b - 1] + lens[b - 1]] if b > a else data[0:0]
                else:
                    toks = np.concatenate([data[starts[s]:starts[s] + lens[s]] for s in range(a, b)]) if b > a \
                        else data[0:0]
                if self.eos is not None and len(toks) and int(toks[-1]) == self.eos:
                    toks = toks[:-1]
                self.n_docs += 1
                self._done += len(toks) * dt.itemsize
                yield toks, {}, f, d


class ArraySource(_TokenSource):
    """In-memory documents: an iterable of 1-d integer arrays (or lists), or of
    ``(array, metadata_dict)`` pairs; with ``eos`` each array is split at it
    (a flat token array). Read once, one item at a time."""

    def __init__(self, items: Iterable[Any], dtype: Any = None, eos: Optional[int] = None,
                 name: str = "<arrays>") -> None:
        super().__init__()
        self._items = items
        self.dtype = None if dtype is None else parse_dtype(dtype)
        self.eos = eos
        self.name = name
        self.files = []
        self._used = False
        if isinstance(items, np.ndarray) and items.ndim == 1:
            self._items = [items]  # one flat array
        if isinstance(items, (list, tuple)) and items and all(isinstance(x, (int, np.integer)) for x in items[:16]):
            raise InputError("a flat list of ints (expected a sequence of documents: a list of arrays, or one "
                             "numpy array with eos=...)", name)
        if self.dtype is None and isinstance(self._items, (list, tuple)) and self._items:
            first = self._items[0][0] if isinstance(self._items[0], tuple) else self._items[0]
            arr = np.asarray(first)
            if arr.dtype.kind in "ui":
                self.dtype = arr.dtype
        self.token_dtype = self.dtype
        if eos is not None:
            self.eos = _check_eos(eos, self.dtype if self.dtype is not None else np.dtype(np.int64), name)
        if isinstance(self._items, (list, tuple)):
            n = sum(len(x[0] if isinstance(x, tuple) else x) for x in self._items)
            self.positions_hint = n + (len(self._items) if eos is None else 0)

    def describe(self) -> str:
        return self.name

    def __iter__(self) -> Iterator[Document]:
        if self._used:
            raise InputError("this iterator was read already (a source is read once)", self.name)
        self._used = True
        d = 0
        for i, item in enumerate(self._items):
            meta: Dict[str, Any] = {}
            if isinstance(item, tuple):
                if len(item) != 2 or not isinstance(item[1], dict):
                    raise self.error("a tuple that is not (tokens, metadata_dict)", self.name, i)
                item, meta = item
            arr = np.asarray(item)
            if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "ui"):
                raise self.error(f"a {arr.ndim}-d {arr.dtype} array (expected a 1-d array of integer token ids)",
                                 self.name, i)
            if not arr.size:
                arr = arr.astype(self.dtype or np.uint32)
            if self.eos is None:
                self.n_docs += 1
                yield arr, meta, self.name, i
                continue
            ends = np.flatnonzero(arr == self.eos).tolist()
            start = 0
            for e in ends:
                self.n_docs += 1
                yield arr[start:e], dict(meta), self.name, d
                d += 1
                start = e + 1
            if start < len(arr):
                self.n_docs += 1
                yield arr[start:], dict(meta), self.name, d
                d += 1
