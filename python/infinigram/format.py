"""The on-disk index format (version 1): the only place where it is defined.

See ``docs/FORMAT.md`` for the prose specification. An index is a directory::

    IDX/index.json                    manifest, written last
    IDX/tokenizer.json                copy of the HF tokenizer (absent for bytes)
    IDX/shard-00000/tokens.bin        token_width bytes/token, little endian
    IDX/shard-00000/sa.bin            suffix array, ptr_width bytes/entry, LE
    IDX/shard-00000/doc_offsets.bin   u64 LE, n_docs + 1 entries
    IDX/shard-00000/meta.bin          one zstd frame per document
    IDX/shard-00000/meta_offsets.bin  u64 LE, n_docs + 1 byte offsets

Nothing here needs the C++ core.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from array import array
from typing import Any, BinaryIO, Callable, Dict, Iterable, Optional

import numpy as np

from .errors import IndexCorruptError, IndexVersionError, NotAnIndexError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST",
    "TOKENIZER_FILE",
    "TOKENS",
    "SA",
    "DOC_OFFSETS",
    "META",
    "META_OFFSETS",
    "SHARD_FILES",
    "FM_SHARD_FILES",
    "shard_files",
    "shard_dirname",
    "separator_for",
    "token_width_for",
    "dtype_for",
    "file_entry",
    "sha256_file",
    "read_manifest",
    "write_manifest",
    "shard_paths",
    "verify_checksums",
    "U64Writer",
    "MetadataWriter",
    "MetadataReader",
]

FORMAT_NAME = "infinigram-index"
FORMAT_VERSION = 1
MANIFEST = "index.json"
TOKENIZER_FILE = "tokenizer.json"

TOKENS = "tokens.bin"
SA = "sa.bin"
DOC_OFFSETS = "doc_offsets.bin"
META = "meta.bin"
META_OFFSETS = "meta_offsets.bin"
#: manifest key (used by :func:`shard_paths`) -> file name, for every shard file
SHARD_FILES: Dict[str, str] = {
    "tokens": TOKENS,
    "sa": SA,
    "doc_offsets": DOC_OFFSETS,
    "meta": META,
    "meta_offsets": META_OFFSETS,
}

# FM-index backend ("backend": "fm"): the shard keeps doc_offsets and the
# metadata files; tokens.bin and sa.bin are replaced by these three.
FM = "fm.bin"
FM_SA = "fm_sa.bin"
FM_ISA = "fm_isa.bin"
#: manifest key -> file name, for every file of an FM-backend shard
FM_SHARD_FILES: Dict[str, str] = {
    "fm": FM,
    "fm_sa": FM_SA,
    "fm_isa": FM_ISA,
    "doc_offsets": DOC_OFFSETS,
    "meta": META,
    "meta_offsets": META_OFFSETS,
}


def shard_files(shard_entry: Dict[str, Any]) -> Dict[str, str]:
    """The file set of a shard: :data:`FM_SHARD_FILES` if it lists ``fm.bin``, else :data:`SHARD_FILES`."""
    return FM_SHARD_FILES if FM in shard_entry.get("files", {}) else SHARD_FILES


_CHUNK = 1 << 20  # bytes per read when hashing


def shard_dirname(i: int) -> str:
    """Directory name of shard ``i`` (0-based): ``shard-00000``."""
    if i < 0:
        raise ValueError(f"shard number must be >= 0, got {i}")
    return f"shard-{i:05d}"


def separator_for(width: int) -> int:
    """The document separator of a token width: the all-ones value (0xFF, 0xFFFF, 0xFFFFFFFF)."""
    if width not in (1, 2, 4):
        raise ValueError(f"token width must be 1, 2 or 4 bytes, got {width}")
    return (1 << (8 * width)) - 1


def token_width_for(vocab_size: int) -> int:
    """Smallest token width (bytes) whose separator is >= ``vocab_size``.

    Token ids are ``0 .. vocab_size-1`` and must all be below the separator:
    1 byte if vocab_size <= 255, 2 if <= 65535, 4 if <= 2**32-1.
    """
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    for width in (1, 2, 4):
        if vocab_size <= separator_for(width):
            return width
    raise ValueError(f"vocab_size {vocab_size} does not fit in 32-bit tokens")


def dtype_for(width: int) -> np.dtype:
    """Little-endian unsigned numpy dtype of a token width (1, 2 or 4 bytes)."""
    if width not in (1, 2, 4):
        raise ValueError(f"token width must be 1, 2 or 4 bytes, got {width}")
    return np.dtype(f"<u{width}")


# ----------------------------------------------------------------------------
# files, hashes
# ----------------------------------------------------------------------------


def sha256_file(path: str, progress: Optional[Callable[[int], None]] = None) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks. O(size) time, O(1) memory.

    ``progress(n)`` is called with the number of bytes of each chunk read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            h.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return h.hexdigest()


def file_entry(path: str, progress: Optional[Callable[[int], None]] = None) -> Dict[str, Any]:
    """Manifest entry of one file: ``{"size": bytes, "sha256": hex}``."""
    return {"size": os.path.getsize(path), "sha256": sha256_file(path, progress)}


def write_manifest(index_path: str, manifest: Dict[str, Any]) -> str:
    """Write ``index.json`` into ``index_path`` (pretty JSON, fsync'd),
    atomically: a temporary file renamed over the old manifest, so a reader
    sees the old one or the new one, never a mix (appends replace the
    manifest of a live index). The caller fsyncs the directory. Returns its path."""
    path = os.path.join(index_path, MANIFEST)
    tmp = os.path.join(index_path, f".{MANIFEST}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    data = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


_REQUIRED = (
    "format_version",
    "backend",
    "token_width",
    "separator",
    "tokenizer",
    "n_docs",
    "n_tokens",
    "n_positions",
    "shards",
)


def read_manifest(path: str) -> Dict[str, Any]:
    """Read and check the manifest of the index directory ``path``.

    Checks (cheap: one ``stat`` per file, no file contents read): the
    directory and ``index.json`` exist and hold an infinigram manifest
    (else :class:`NotAnIndexError`); ``format_version`` is not newer than
    :data:`FORMAT_VERSION` (else :class:`IndexVersionError`); every listed
    file exists with its recorded size, and the sizes agree with the counts
    (else :class:`IndexCorruptError` naming the file).
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        if os.path.exists(path):
            raise NotAnIndexError(f"{path}: not an infinigram index (not a directory)")
        raise NotAnIndexError(f"{path}: not an infinigram index (no such directory)")
    mpath = os.path.join(path, MANIFEST)
    if not os.path.isfile(mpath):
        raise NotAnIndexError(
            f"{path}: not an infinigram index (no {MANIFEST}; an unfinished build leaves none)"
        )
    try:
        with open(mpath, "rb") as fh:
            manifest = json.loads(fh.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise NotAnIndexError(f"{mpath}: not an infinigram manifest (invalid JSON: {e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise NotAnIndexError(f'{mpath}: not an infinigram manifest (expected "format": "{FORMAT_NAME}")')
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise NotAnIndexError(f"{mpath}: not an infinigram manifest (format_version missing)")
    if version < 1:
        raise IndexCorruptError(f"{mpath}: format_version {version} (there is no such version; expected 1 to "
                                f"{FORMAT_VERSION})", mpath)
    if version > FORMAT_VERSION:
        raise IndexVersionError(
            f"{path}: index format version {version} is newer than this infinigram "
            f"reads (version {FORMAT_VERSION}); upgrade infinigram"
        )
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise IndexCorruptError(f"{mpath}: manifest lacks field(s) {', '.join(missing)}", mpath)
    width = manifest["token_width"]
    if not _is_count(width) or width not in (1, 2, 4) or manifest["separator"] != separator_for(width):
        raise IndexCorruptError(f"{mpath}: bad token_width/separator", mpath)
    shards = manifest["shards"]
    if not isinstance(shards, list) or not all(isinstance(x, dict) for x in shards):
        raise IndexCorruptError(f"{mpath}: 'shards' is not a list of shard entries", mpath)
    _check_counts(mpath, manifest, shards)
    tok = manifest["tokenizer"]
    if not isinstance(tok, dict) or tok.get("kind") not in ("bytes", "hf", "none") or (
            tok.get("kind") == "hf" and not isinstance(tok.get("file", TOKENIZER_FILE), str)):
        raise IndexCorruptError(f"{mpath}: bad 'tokenizer' entry (expected {{\"kind\": \"bytes\"}}, "
                                "{\"kind\": \"none\"} or an \"hf\" entry naming its file)", mpath)
    backend = manifest.get("backend")
    if backend in ("sa", "fm") and any((shard_files(x) is FM_SHARD_FILES) != (backend == "fm") for x in shards):
        raise IndexCorruptError(f"{mpath}: the shards' files do not match backend {backend!r}", mpath)
    if isinstance(tok, dict) and tok.get("kind") == "hf":
        tpath = os.path.join(path, tok.get("file", TOKENIZER_FILE))
        if not os.path.isfile(tpath):
            raise IndexCorruptError(f"{tpath}: tokenizer file missing", tpath)
    for shard in shards:
        _check_shard(path, shard, width)
    return manifest


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**63


def _check_counts(mpath: str, manifest: Dict[str, Any], shards: list) -> None:
    """The manifest's numbers agree with each other (O(shards)): every count
    a non-negative integer, each shard's n_positions = n_tokens + n_docs, its
    doc_base the documents before it, the totals the sums of the shards."""
    base = 0
    for i, sh in enumerate(shards):
        d = sh.get("dir")
        if not isinstance(d, str) or not d or d in (".", "..") or "/" in d or os.sep in d:
            raise IndexCorruptError(f"{mpath}: shard {i} has a bad 'dir' ({d!r}; expected a name such as "
                                    f"{shard_dirname(i)})", mpath)
        for k in ("n_docs", "n_tokens", "n_positions", "ptr_width"):
            if not _is_count(sh.get(k)):
                raise IndexCorruptError(f"{mpath}: shard {d}: '{k}' is {sh.get(k)!r} (expected a count)", mpath)
        if sh["n_positions"] != sh["n_tokens"] + sh["n_docs"] or not 1 <= sh["ptr_width"] <= 8:
            raise IndexCorruptError(f"{mpath}: shard {d}: inconsistent counts (n_positions != n_tokens + n_docs, "
                                    "or ptr_width outside 1..8)", mpath)
        if sh.get("doc_base", base) != base:
            raise IndexCorruptError(f"{mpath}: shard {d}: doc_base {sh.get('doc_base')!r}, expected {base}", mpath)
        if not isinstance(sh.get("files", {}), dict):
            raise IndexCorruptError(f"{mpath}: shard {d}: 'files' is not a mapping", mpath)
        base += sh["n_docs"]
    for k in ("n_docs", "n_tokens", "n_positions"):
        total = sum(sh[k] for sh in shards)
        if manifest[k] != total or not _is_count(manifest[k]):
            raise IndexCorruptError(f"{mpath}: {k} is {manifest[k]!r}, the shards sum to {total}", mpath)


def _check_shard(index_path: str, shard: Dict[str, Any], width: int) -> None:
    """Sizes of one shard's files: as listed, and consistent with its counts."""
    paths = shard_paths(index_path, shard)
    files = shard.get("files", {})
    n_pos = shard.get("n_positions")
    n_docs = shard.get("n_docs")
    ptr = shard.get("ptr_width")
    expected = {
        TOKENS: None if n_pos is None else n_pos * width,
        SA: None if (n_pos is None or ptr is None) else n_pos * ptr,
        DOC_OFFSETS: None if n_docs is None else (n_docs + 1) * 8,
        META_OFFSETS: None if n_docs is None else (n_docs + 1) * 8,
    }
    for key, name in shard_files(shard).items():
        p = paths[key]
        if not os.path.isfile(p):
            raise IndexCorruptError(f"{p}: index file missing", p)
        size = os.path.getsize(p)
        entry = files.get(name, {})
        listed = entry.get("size") if isinstance(entry, dict) else entry
        if listed is not None and size != listed:
            raise IndexCorruptError(
                f"{p}: size {size} bytes, the manifest says {listed} (truncated or replaced file)", p
            )
        want = expected.get(name)
        if want is not None and size != want:
            raise IndexCorruptError(f"{p}: size {size} bytes, expected {want} from the shard's counts", p)


def shard_paths(index_path: str, shard_entry: Dict[str, Any]) -> Dict[str, str]:
    """Paths of a shard's files: keys ``tokens, sa, doc_offsets, meta, meta_offsets``."""
    d = os.path.join(os.fspath(index_path), shard_entry["dir"])
    return {key: os.path.join(d, name) for key, name in shard_files(shard_entry).items()}


def _listed_files(index_path: str, manifest: Dict[str, Any]) -> Iterable[tuple]:
    """(path, {size, sha256}) of every checksummed file of the index."""
    tok = manifest.get("tokenizer", {})
    if isinstance(tok, dict) and tok.get("kind") == "hf" and "sha256" in tok:
        p = os.path.join(index_path, tok.get("file", TOKENIZER_FILE))
        yield p, {"sha256": tok["sha256"]}
    for shard in manifest["shards"]:
        d = os.path.join(index_path, shard["dir"])
        for name, entry in shard.get("files", {}).items():
            yield os.path.join(d, name), entry


def verify_checksums(
    path: str,
    manifest: Optional[Dict[str, Any]] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> None:
    """Check the sha256 of every index file against the manifest.

    O(index size) time (reads every byte once), O(1) memory. Raises
    :class:`IndexCorruptError` naming the first file that is missing, has
    the wrong size or the wrong checksum. ``progress(n)`` gets byte counts.
    """
    path = os.fspath(path)
    if manifest is None:
        manifest = read_manifest(path)
    for p, entry in _listed_files(path, manifest):
        if not os.path.isfile(p):
            raise IndexCorruptError(f"{p}: index file missing", p)
        if "size" in entry and os.path.getsize(p) != entry["size"]:
            raise IndexCorruptError(f"{p}: size {os.path.getsize(p)} bytes, the manifest says {entry['size']}", p)
        digest = sha256_file(p, progress)
        if digest != entry["sha256"]:
            raise IndexCorruptError(
                f"{p}: checksum mismatch (sha256 {digest[:16]}…, the manifest says {entry['sha256'][:16]}…)", p
            )


# ----------------------------------------------------------------------------
# u64 arrays and the metadata codec
# ----------------------------------------------------------------------------


class U64Writer:
    """Appends little-endian u64 values to a file, buffered (64 Ki values)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh: BinaryIO = open(path, "wb")
        self._buf = array("Q")
        self.count = 0

    def append(self, value: int) -> None:
        """Append one value. Amortised O(1)."""
        self._buf.append(value)
        self.count += 1
        if len(self._buf) >= 65536:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            np.frombuffer(self._buf, dtype=np.uint64).astype("<u8", copy=False).tofile(self._fh)
            self._buf = array("Q")

    def close(self, fsync: bool = True) -> None:
        """Flush, optionally fsync, and close."""
        if self._fh.closed:
            return
        self._flush()
        self._fh.flush()
        if fsync:
            os.fsync(self._fh.fileno())
        self._fh.close()


def _json_compact(d: Dict[str, Any]) -> bytes:
    return json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class MetadataWriter:
    """Writes ``meta.bin`` (one zstd frame per document) and ``meta_offsets.bin``.

    Each frame holds the compact JSON of the document's non-text fields; a
    document without such fields gets a zero-length entry. ``meta_offsets``
    holds n_docs + 1 u64 byte offsets (first 0, last = size of meta.bin).
    O(size of the JSON) per :meth:`append`.
    """

    def __init__(self, meta_path: str, offsets_path: str, level: int = 3) -> None:
        import zstandard

        self._cctx = zstandard.ZstdCompressor(level=level)
        self._fh: BinaryIO = open(meta_path, "wb")
        self._offsets = U64Writer(offsets_path)
        self._pos = 0
        self._offsets.append(0)

    @property
    def n_docs(self) -> int:
        """Documents appended so far."""
        return self._offsets.count - 1

    def append(self, metadata: Optional[Dict[str, Any]]) -> None:
        """Append the metadata of the next document (a dict; empty or None → no frame)."""
        if metadata:
            frame = self._cctx.compress(_json_compact(metadata))
            self._fh.write(frame)
            self._pos += len(frame)
        self._offsets.append(self._pos)

    def close(self, fsync: bool = True) -> None:
        """Flush, optionally fsync, and close both files."""
        if self._fh.closed:
            return
        self._fh.flush()
        if fsync:
            os.fsync(self._fh.fileno())
        self._fh.close()
        self._offsets.close(fsync)

    def __enter__(self) -> "MetadataWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _map_file(path: str) -> "mmap.mmap | bytes":
    """Read-only mmap of a file (an empty bytes object for an empty file)."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return b""
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


class MetadataReader:
    """Random access to a shard's per-document metadata.

    Opening maps both files (O(1), no reads); :meth:`get` decompresses one
    frame: O(size of that document's metadata).
    """

    def __init__(self, meta_path: str, offsets_path: str) -> None:
        import threading

        self._local = threading.local()  # one decompressor per thread: a ZstdDecompressor is not
        # thread-safe (shared, concurrent get() calls failed with "Data corruption detected" or crashed)
        self._meta = _map_file(meta_path)
        self._offsets_buf = _map_file(offsets_path)
        self.offsets = np.frombuffer(self._offsets_buf, dtype="<u8")
        if len(self.offsets) == 0:
            raise IndexCorruptError(f"{offsets_path}: empty (expected n_docs + 1 offsets)", offsets_path)
        self.n_docs = len(self.offsets) - 1

    def get(self, local_doc_ix: int) -> Dict[str, Any]:
        """Metadata dict of document ``local_doc_ix`` of this shard ({} if none)."""
        if not 0 <= local_doc_ix < self.n_docs:
            raise IndexError(f"document {local_doc_ix} out of range [0, {self.n_docs})")
        a = int(self.offsets[local_doc_ix])
        b = int(self.offsets[local_doc_ix + 1])
        if a == b:
            return {}
        if not a < b <= len(self._meta):
            raise IndexCorruptError(f"metadata offsets of document {local_doc_ix} out of range")
        try:
            dctx = getattr(self._local, "dctx", None)
            if dctx is None:
                import zstandard

                dctx = self._local.dctx = zstandard.ZstdDecompressor()
            data = dctx.decompress(self._meta[a:b])
            return json.loads(data.decode("utf-8"))
        except Exception as e:  # zstd or JSON error: the file is damaged
            raise IndexCorruptError(f"metadata of document {local_doc_ix} is damaged: {e}") from None
