"""Build an index: read → tokenize → write shards → suffix arrays → manifest.

The build is atomic: everything is written into ``<output>.tmp-<pid>-<hex>``
next to the target, fsync'd, and renamed into place at the end; the manifest
(``index.json``) is written last, so an unfinished build never opens as an
index. Any exception (KeyboardInterrupt included) removes the temp directory;
one left behind by a killed process is removed by the next build of the same
output once its process is gone.

Memory: documents stream through in batches (``batch_size`` documents or
4 MiB of text, whichever comes first); the suffix-array step of the C++ core
loads only one shard's token file (plus its own working memory). Every
construction takes its peak from one budget (``max_memory``, build_ooc.py)
before it starts; an SA shard larger than the budget is sorted in parts and
merged on disk (same bytes).
"""

from __future__ import annotations

import concurrent.futures
import errno
import os
import threading
import re
import secrets
import shutil
import sys
import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import build_ooc as _ooc
from . import format as fmt
from .errors import InputError, OutputExistsError, TokenizerError
from .readers import DocumentReader
from .tokenizer import Tokenizer, load_tokenizer

__all__ = ["build", "auto_shard_size", "parse_shard_size", "summary_line"]

PathArg = Union[str, "os.PathLike[str]"]

# Flush a tokenization batch at this much text (characters). 4 Mi: as fast as
# 16 Mi for the bytes tokenizer (0.6 s per 100 MB either way, measured), and the
# interpreter's heap then peaks ~15 MB lower and keeps ~30 MB less after reading
# (memory that adds to the concurrent constructions' peak).
BATCH_TEXT_BYTES = 4 << 20

_UNITS = {
    "": 1, "B": 1,
    "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9, "T": 10**12, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}


AUTO_MIN_SHARD_POSITIONS = 32 * 2**20
AUTO_MAX_SHARD_POSITIONS = 2**30
AUTO_MIN_FM_SHARD_POSITIONS = 16 * 2**20
AUTO_FM_ROUNDS = 2


def auto_shard_size(input_bytes: int, bytes_tokenizer: bool, workers: int, backend: str = "sa") -> Optional[int]:
    """The default shard limit, in token positions (``None``: one shard).

    Positions are estimated from the input size on disk: one per byte for the
    bytes tokenizer, one per 4 bytes for subword tokenizers (a heuristic:
    compressed inputs and other languages give fewer, larger shards).

    ``backend="sa"``: the corpus split into about one shard per worker so that
    the (single-threaded) constructions run in parallel, but only when each
    shard would still hold at least ``AUTO_MIN_SHARD_POSITIONS`` (32 Mi)
    positions, and never more than ``AUTO_MAX_SHARD_POSITIONS`` (1 Gi: 5 GB of
    construction memory for bytes). Queries search all shards in lock step,
    so 2 shards cost about 1.3x one in latency (measured: count p50 5 µs vs
    4 µs on 100 MB) and build 2x faster.

    ``backend="fm"``: about ``AUTO_FM_ROUNDS`` (2) shards per worker, so each
    worker builds two shards one after the other. The reason is peak memory:
    a shard's FM build peaks during its suffix sort at ~(token_width + 4.2)
    bytes per position and ends with a far smaller FM-index, so the peak is
    that of the sorts in flight, one per worker: with one shard per worker
    that is the whole corpus at once, with two per worker half of it, at no
    cost in build time (smaller sorts are a little faster per position).
    Measured on the 100 MB Debian-docs corpus (bytes), 2 workers, medians of
    3-13 runs (±0.3 s noise): 2 shards 5.8 s / ~630 MB peak RSS (SDSL-lite's
    construct: 506 MB); 4 shards 5.7 s / ~365 MB; 6 shards 5.5 s / ~275 MB
    (but every query pays per shard); 3 shards 7.0 s (one core idles while
    the third sorts). At
    least ``AUTO_MIN_FM_SHARD_POSITIONS`` (16 Mi) positions per shard, at most
    ``AUTO_MAX_SHARD_POSITIONS``.
    """
    if backend not in ("sa", "fm"):
        raise ValueError(f"backend must be 'sa' or 'fm', got {backend!r}")
    est = input_bytes if bytes_tokenizer else input_bytes // 4
    if backend == "fm":
        lo, parts = AUTO_MIN_FM_SHARD_POSITIONS, AUTO_FM_ROUNDS * max(1, workers)
    else:
        lo, parts = AUTO_MIN_SHARD_POSITIONS, workers
    if parts < 2 or est < 2 * lo:
        return AUTO_MAX_SHARD_POSITIONS if est > AUTO_MAX_SHARD_POSITIONS else None
    per = -(-int(est * 1.02) // parts)  # 2% slack: no sliver shard at the end
    return int(min(max(per, lo), AUTO_MAX_SHARD_POSITIONS))


def parse_shard_size(shard_size: Union[None, int, str], token_width: int) -> Optional[int]:
    """Maximum token positions (tokens + one separator per document) per shard.

    ``None`` → one shard. An ``int`` (or a string of digits) is a number of
    token positions. A string with a unit (``"500M"``, ``"2GB"``, ``"64KiB"``;
    K/M/G/T are powers of 10, KiB/MiB/GiB/TiB powers of 2) is a size in bytes
    of ``tokens.bin``, i.e. ``bytes // token_width`` positions. A document is
    never split: one longer than the limit gets a shard of its own.
    """
    if shard_size is None:
        return None
    if isinstance(shard_size, bool):
        raise InputError(f"shard size must be a number or a size like '500M', got {shard_size!r}")
    if isinstance(shard_size, (int, np.integer)):
        n = int(shard_size)
    else:
        s = str(shard_size).strip()
        if s.isdigit():
            n = int(s)
        else:
            m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", s)
            unit = m.group(2).upper() if m else None
            if m is None or unit not in _UNITS:
                raise InputError(
                    f"bad shard size {shard_size!r} (expected a token count like 1000000 or a size like 500M, 2GB, 64MiB)"
                )
            n = int(float(m.group(1)) * _UNITS[unit]) // token_width
    if n < 2:
        raise InputError(f"shard size {shard_size!r} is too small (expected at least 2 token positions)")
    return n


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _clean_stale_temps(output: str) -> List[str]:
    """Remove ``<output>.tmp-<pid>-*`` dirs whose process is gone. Returns what was removed."""
    parent, name = os.path.split(output)
    pat = re.compile(re.escape(name) + r"\.tmp-(\d+)-[0-9a-f]+(-old)?$")
    removed = []
    try:
        entries = os.listdir(parent or ".")
    except OSError:
        return removed
    for entry in entries:
        m = pat.match(entry)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        p = os.path.join(parent, entry)
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _fsync_path(path: str) -> None:
    """fsync a file or a directory (directories: best effort)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_output(output: str, overwrite: bool) -> None:
    """OutputExistsError unless ``output`` is absent, or replaceable with ``overwrite``.

    With ``overwrite``, only an existing index or an empty directory is
    replaced: any other existing file or directory is refused, so a wrong
    ``-o`` can never delete unrelated data.
    """
    if not os.path.lexists(output):
        return
    if not overwrite:
        raise OutputExistsError(f"{output}: already exists (pass overwrite=True / --overwrite to replace it)")
    if os.path.isdir(output) and not os.path.islink(output):
        if os.path.isfile(os.path.join(output, fmt.MANIFEST)) or not os.listdir(output):
            return
    raise OutputExistsError(
        f"{output}: exists and is not an infinigram index; refusing to overwrite it (remove it yourself)"
    )


def _version() -> str:
    from . import __version__

    return __version__


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


def _tqdm(progress: bool, **kw: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(disable=not progress, leave=False, dynamic_ncols=True, **kw)


def build(
    inputs: Union[PathArg, Sequence[PathArg]],
    output: PathArg,
    tokenizer: Union[str, PathArg, Tokenizer] = "bytes",
    text_field: str = "text",
    shard_size: Union[None, int, str] = "auto",
    overwrite: bool = False,
    skip_invalid: bool = False,
    batch_size: int = 1024,
    n_threads: int = 0,
    progress: bool = True,
    add_special_tokens: bool = False,
    backend: str = "sa",
    sa_sample: int = 64,
    isa_sample: int = 64,
    wt_block_bits: int = 0,
    max_memory: Union[None, int, str] = None,
    sa_part_size: Optional[int] = None,
) -> Dict[str, Any]:
    """Build an index of ``inputs`` at ``output`` and return its manifest.

    Args:
        inputs: files or directories (recursive, sorted) of ``.jsonl``,
            ``.jsonl.gz``, ``.jsonl.zst`` and ``.txt`` files.
        output: the index directory to create.
        tokenizer: ``"bytes"``, a path to a Hugging Face ``tokenizer.json``,
            or a :class:`~infinigram.tokenizer.Tokenizer`.
        text_field: JSON field holding the text; the other fields are stored
            as the document's metadata.
        shard_size: ``"auto"`` (default, see :func:`auto_shard_size`: for the
            SA backend one shard per core for corpora over 64 MiB, so
            construction uses every core; for the FM backend two per core
            over 32 MiB, which halves the peak memory), ``None`` (one shard),
            or see :func:`parse_shard_size`.
        overwrite: replace an existing index at ``output``.
        skip_invalid: skip (and count) bad JSONL lines instead of failing.
        batch_size: documents per tokenization batch.
        n_threads: workers for suffix-array construction and checksums (0: all cores);
            shards build concurrently, each on one core, so peak memory grows with it.
        progress: show progress bars and print a summary line (stderr).
        add_special_tokens: let the HF tokenizer add its special tokens.
        backend: ``"sa"`` (suffix array + tokens) or ``"fm"`` (FM-index: each
            shard's tokens.bin is written, turned into fm.bin / fm_sa.bin /
            fm_isa.bin with the suffix array kept in memory, and removed;
            see docs/FORMAT.md).
        sa_sample, isa_sample: FM sampling rates (``backend="fm"`` only):
            locate takes < sa_sample LF steps per occurrence, extraction starts
            < isa_sample steps past the end; smaller is faster and larger.
        wt_block_bits: FM only: one Huffman-shaped wavelet tree per block of
            2^wt_block_bits BWT symbols (0, the default: 2^17 for alphabets of
            <= 256 tokens, larger blocks for larger ones; see docs/FORMAT.md).
            Smaller blocks give shorter descents (faster queries and
            extraction) and larger per-block tables.
        max_memory: bound on the build's peak resident memory (bytes, or
            ``"4GB"``, ``"512MB"``; default ``None``: half of MemTotal, see
            :mod:`infinigram.build_ooc`). Constructions wait for memory; an
            SA shard whose in-memory sort does not fit is sorted in parts and
            merged on disk (same bytes). Too small a budget is an InputError
            before any work.
        sa_part_size: force the out-of-core SA build with parts of this many
            positions (tests, benchmarks); ``None``: only where needed.

    Time: O(input size) to read and tokenize, plus the suffix-array build
    (linear in tokens). Disk: the index needs (token_width + ptr_width + ~0)
    bytes per token, and the temp directory holds it until the final rename.

    Raises:
        InputError, TokenizerError, OutputExistsError.
    """
    t0 = time.perf_counter()
    if backend not in ("sa", "fm"):
        raise ValueError(f"backend must be 'sa' or 'fm', got {backend!r}")
    if backend == "fm" and (int(sa_sample) < 1 or int(isa_sample) < 1):
        raise ValueError("sa_sample and isa_sample must be >= 1")
    if backend == "fm" and not 0 <= int(wt_block_bits) <= 62:
        raise ValueError(f"wt_block_bits must be in [0, 62] (0: by alphabet size), got {wt_block_bits}")
    output = os.path.abspath(os.fspath(output))
    if os.path.basename(output) == "":
        raise InputError(f"bad output path {output!r}")
    _check_output(output, overwrite)
    tok = load_tokenizer(tokenizer, add_special_tokens=add_special_tokens)
    width = tok.token_width
    sep = fmt.separator_for(width)
    if tok.vocab_size > sep:
        raise TokenizerError(f"tokenizer vocabulary ({tok.vocab_size} ids) collides with the separator {sep}")
    dtype = fmt.dtype_for(width)
    reader = DocumentReader(inputs, text_field=text_field, skip_invalid=skip_invalid)
    if isinstance(shard_size, str) and shard_size.strip().lower() == "auto":
        limit = auto_shard_size(reader.total_bytes, tok.kind == "bytes", n_threads or (os.cpu_count() or 1), backend)
    else:
        limit = parse_shard_size(shard_size, width)

    budget = _ooc.MemoryBudget(_ooc.parse_memory(max_memory) or _ooc.default_max_memory(), _ooc.process_rss())
    budget.check(width, reader.total_bytes if tok.kind == "bytes" else reader.total_bytes // 4)
    if sa_part_size is not None and int(sa_part_size) < 1:
        raise InputError(f"sa_part_size must be >= 1, got {sa_part_size}")

    parent = os.path.dirname(output)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise InputError(f"{output}: cannot create the output's directory: {e.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{output}: the output's directory {parent} is not writable")
    _clean_stale_temps(output)
    tmp = f"{output}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(tmp)
    shards: List[Tuple[_ShardWriter, Dict[str, Any]]] = []
    constructor = _Constructor(shards, width, backend, sa_sample, isa_sample, wt_block_bits, n_threads, progress,
                               budget, sa_part_size)
    try:
        # ---- 1. read, tokenize, write tokens/doc_offsets/metadata ----------
        # Each shard's suffix array (and FM-index) is built on the worker pool
        # as soon as the shard is written, while the next one is tokenized.
        current: Optional[_ShardWriter] = None
        n_docs = 0

        def new_shard() -> _ShardWriter:
            i = len(shards)
            w = _ShardWriter(os.path.join(tmp, fmt.shard_dirname(i)), dtype, sep, fsync_tokens=backend != "fm")
            shards.append((w, {"dir": fmt.shard_dirname(i), "doc_base": n_docs}))
            return w

        texts: List[str] = []
        metas: List[Dict[str, Any]] = []
        where: List[Tuple[str, int]] = []
        text_chars = 0
        bar = _tqdm(progress, total=reader.total_bytes, unit="B", unit_scale=True, desc="reading+tokenizing")
        last_bytes = 0

        def flush() -> None:
            nonlocal current, n_docs, last_bytes
            if not texts:
                return
            encoded = tok.encode_batch(texts)
            for toks, meta, (src, line) in zip(encoded, metas, where):
                toks = np.asarray(toks)
                if toks.size:
                    hi, lo = int(toks.max()), int(toks.min())
                    if hi >= sep or lo < 0:
                        bad = hi if hi >= sep else lo
                        raise TokenizerError(
                            f"{src}:{line}: token id {bad} does not fit below the separator {sep} "
                            f"of {width}-byte tokens (expected ids in [0, {sep}))"
                        )
                    if toks.dtype != dtype:
                        toks = toks.astype(dtype)
                if current is None or (
                    limit is not None and current.n_docs > 0 and current.n_positions + 1 + len(toks) > limit
                ):
                    if current is not None:
                        current.close()
                        constructor.submit(len(shards) - 1)
                    current = new_shard()
                current.add(toks, meta)
                n_docs += 1
            texts.clear()
            metas.clear()
            where.clear()
            now = reader.bytes_read
            bar.update(now - last_bytes)
            last_bytes = now
            bar.set_postfix(docs=n_docs, refresh=False)

        try:
            for text, meta, src, line in reader:
                texts.append(text)
                metas.append(meta)
                where.append((src, line))
                text_chars += len(text)
                if len(texts) >= batch_size or text_chars >= BATCH_TEXT_BYTES:
                    flush()
                    text_chars = 0
            flush()
        finally:
            bar.close()
        if current is not None:
            current.close()
            constructor.submit(len(shards) - 1)

        n_positions = sum(w.n_positions for w, _ in shards)
        n_tokens = n_positions - n_docs
        if n_docs == 0:
            skipped = f"; {reader.skipped_invalid} invalid line(s) skipped" if reader.skipped_invalid else ""
            raise InputError(f"no documents in {len(reader.files)} input file(s){skipped} (expected at least one)")
        if n_tokens == 0:
            raise InputError(f"the {n_docs} document(s) hold no tokens (all texts are empty)")

        # ---- 2. wait for the constructions and checksums ------------------
        ident = tok.identity()
        if ident.get("kind") == "hf":
            dst = os.path.join(tmp, fmt.TOKENIZER_FILE)
            shutil.copyfile(getattr(tok, "path"), dst)
            _fsync_path(dst)
            if fmt.sha256_file(dst) != ident["sha256"]:
                raise TokenizerError(f"{getattr(tok, 'path')}: the tokenizer file changed during the build")
        constructor.finish()

        seconds = time.perf_counter() - t0
        shard_entries = [
            {k: e[k] for k in ("dir", "n_docs", "n_tokens", "n_positions", "ptr_width", "doc_base", "files")}
            for _, e in shards
        ]
        manifest: Dict[str, Any] = {
            "format": fmt.FORMAT_NAME,
            "format_version": fmt.FORMAT_VERSION,
            "backend": backend,
            "token_width": width,
            "separator": sep,
            "tokenizer": ident,
            "text_field": text_field,
            "n_docs": n_docs,
            "n_tokens": n_tokens,
            "n_positions": n_positions,
            "shards": shard_entries,
            **({"fm": {"sa_sample": int(sa_sample), "isa_sample": int(isa_sample),
                       "wt_block_bits": int(wt_block_bits)}} if backend == "fm" else {}),
            "build": {
                "inputs": [os.path.abspath(os.fspath(p)) for p in reader.files],
                "input_bytes": reader.total_bytes,
                "skipped_invalid": reader.skipped_invalid,
                "seconds": round(seconds, 3),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "infinigram_version": _version(),
            },
        }
        fmt.write_manifest(tmp, manifest)
        _fsync_path(tmp)

        # ---- 4. rename into place ------------------------------------------
        _check_output(output, overwrite)
        if os.path.lexists(output):
            aside = f"{output}.tmp-{os.getpid()}-{secrets.token_hex(4)}-old"
            os.rename(output, aside)
            try:
                os.rename(tmp, output)
            except BaseException:
                os.rename(aside, output)
                raise
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(tmp, output)
        _fsync_path(parent)
    except BaseException as exc:
        constructor.cancel()
        for w, _ in shards:
            w.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):  # name where
            raise OSError(exc.errno, f"{os.strerror(exc.errno)} while building {output} (the partial build "
                                     f"in {tmp} was removed)") from exc
        raise

    if progress:
        print(summary_line(manifest, output), file=sys.stderr)
    return manifest



class _Constructor:
    """Builds each shard's suffix array (and FM-index), then checksums its
    files, on a pool of ``n_threads`` workers (0: all cores), starting as soon
    as a shard is submitted. The C++ construction releases the GIL and is
    single-threaded, so shards build concurrently with each other and with
    the tokenization of later shards; peak memory grows with the number of
    constructions in flight (at most the number of workers).
    """

    def __init__(self, shards: List[Tuple[_ShardWriter, Dict[str, Any]]], width: int, backend: str,
                 sa_sample: int, isa_sample: int, wt_block_bits: int, n_threads: int, progress: bool,
                 budget: Optional["_ooc.MemoryBudget"] = None, sa_part_size: Optional[int] = None) -> None:
        self.budget = budget or _ooc.MemoryBudget(_ooc.default_max_memory(), _ooc.process_rss())
        self.sa_part_size = sa_part_size
        self.shards, self.width, self.backend = shards, width, backend
        self.sa_sample, self.isa_sample, self.wt_block_bits = int(sa_sample), int(isa_sample), int(wt_block_bits)
        self.workers = max(1, n_threads or (os.cpu_count() or 1))
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers)
        self.progress = progress
        self.bar: Any = None
        self.frac: Dict[int, float] = {}
        self.lock = threading.Lock()
        self.cancelled = threading.Event()
        self.sa_futs: Dict[concurrent.futures.Future, int] = {}
        self.sum_futs: Dict[concurrent.futures.Future, str] = {}

    def submit(self, i: int) -> None:
        """Shard ``i`` is fully written: construct it, checksum its inputs."""
        w = self.shards[i][0]
        with self.lock:
            if self.bar is None:
                self.bar = _tqdm(self.progress, total=0, unit="tok", unit_scale=True, desc="FM-indexes" if self.backend == "fm" else "suffix arrays")
            self.bar.total = (self.bar.total or 0) + w.n_positions
            self.frac[i] = 0.0
            self.bar.refresh()
        self.sa_futs[self.pool.submit(self._construct, i)] = i
        skip = ("sa", "tokens") if self.backend == "fm" else ("sa",)  # fm: its files are summed later
        for k, p in w.paths.items():
            if k not in skip:
                self.sum_futs[self.pool.submit(fmt.file_entry, p)] = p

    def _construct(self, i: int) -> int:
        from . import _core  # the C++ core

        w = self.shards[i][0]

        def cb(frac: float) -> None:
            if self.cancelled.is_set():  # another job failed, or Ctrl-C: stop this construction too
                raise KeyboardInterrupt("build cancelled")
            if self.bar is None:
                return
            with self.lock:
                self.frac[i] = float(frac)
                self.bar.n = int(sum(f * self.shards[j][0].n_positions for j, f in self.frac.items()))
                self.bar.refresh()

        need = _ooc.in_memory_need(w.n_positions, self.width, self.backend)
        if self.backend == "sa":
            if self.sa_part_size is None and need <= self.budget.total:
                self.budget.acquire(need, self.cancelled)
                try:
                    ptr = int(_core.build_suffix_array(w.paths["tokens"], w.paths["sa"], self.width, cb, True))
                finally:
                    self.budget.release(need)
            else:  # larger than memory: sorted parts merged on disk (build_ooc.py), same bytes
                ptr = _ooc.build_sa_out_of_core(w.paths["tokens"], w.paths["sa"], self.width, w.n_positions,
                                                self.budget, self.workers, cb, self.sa_part_size)
            _fsync_path(w.paths["sa"])
            return ptr
        # FM-index straight from the tokens: the suffix array never leaves memory
        # (no sa.bin written and read back), then tokens.bin is dropped
        fm_paths = {k: os.path.join(w.dir, n) for k, n in fmt.FM_SHARD_FILES.items()}
        threads = max(1, self.workers // max(1, len(self.sa_futs)))
        if self.sa_part_size is None and need <= self.budget.total:
            self.budget.acquire(need, self.cancelled)
            try:
                ptr = int(_core.fm_build_shard(w.paths["tokens"], self.width, fm_paths["fm"], fm_paths["fm_sa"],
                                               fm_paths["fm_isa"], self.sa_sample, self.isa_sample, threads, cb,
                                               self.wt_block_bits))
            finally:
                self.budget.release(need)
        else:
            # Larger than memory: the suffix array out of core into a temporary
            # sa.bin, then the FM files from it (fm_build streams the SA; its
            # own peak, _ooc.fm_from_sa_need, bounds the FM shard).
            fm_need = _ooc.fm_from_sa_need(w.n_positions, self.width)
            if fm_need > self.budget.total:
                raise InputError(
                    f"an FM shard of {w.n_positions:,} positions needs {fm_need / 1e6:,.0f} MB for its FM step "
                    f"(token file + BWT codes + wavelet tree + samples), more than max_memory leaves "
                    f"({self.budget.total / 1e6:,.0f} MB): give more memory or a smaller --shard-size"
                )
            half = lambda f: cb(0.5 * f)  # noqa: E731
            ptr = _ooc.build_sa_out_of_core(w.paths["tokens"], w.paths["sa"], self.width, w.n_positions,
                                            self.budget, self.workers, half, self.sa_part_size)
            self.budget.acquire(fm_need, self.cancelled)
            try:
                _core.fm_build(w.paths["tokens"], w.paths["sa"], ptr, self.width, fm_paths["fm"], fm_paths["fm_sa"],
                               fm_paths["fm_isa"], self.sa_sample, self.isa_sample, threads,
                               lambda f: cb(0.5 + 0.5 * f), self.wt_block_bits)
            finally:
                self.budget.release(fm_need)
            os.remove(w.paths["sa"])
        os.remove(w.paths["tokens"])
        w.paths = fm_paths
        return ptr

    def finish(self) -> None:
        """Waits for everything; fills each shard's manifest entry (counts,
        ptr_width, files with sizes and sha256)."""
        files: Dict[str, Dict[str, Any]] = {}
        try:
            for fut in concurrent.futures.as_completed(list(self.sa_futs)):
                i = self.sa_futs[fut]
                w, entry = self.shards[i]
                entry.update(n_docs=w.n_docs, n_tokens=w.n_positions - w.n_docs,
                             n_positions=w.n_positions, ptr_width=fut.result())
                done = [w.paths["sa"]] if self.backend == "sa" else [w.paths[k] for k in ("fm", "fm_sa", "fm_isa")]
                for p in done:
                    self.sum_futs[self.pool.submit(fmt.file_entry, p)] = p
            if self.bar is not None:
                self.bar.close()
            for fut in concurrent.futures.as_completed(list(self.sum_futs)):
                files[self.sum_futs[fut]] = fut.result()
        finally:
            self.pool.shutdown(wait=True)
        for w, entry in self.shards:
            entry["files"] = {os.path.basename(p): files[p] for p in w.paths.values()}
            _fsync_path(w.dir)

    def cancel(self) -> None:
        """Stops pending and running work (running constructions stop at their
        next progress tick) and waits for the workers."""
        self.cancelled.set()
        for f in list(self.sa_futs) + list(self.sum_futs):
            f.cancel()
        self.pool.shutdown(wait=True)
        if self.bar is not None:
            self.bar.close()


def summary_line(manifest: Dict[str, Any], output: str = "") -> str:
    """One line describing a finished build: docs, tokens, bytes/token, seconds, MB/s."""
    b = manifest.get("build", {})
    n_tokens = max(int(manifest["n_tokens"]), 1)
    index_bytes = sum(f["size"] for s in manifest["shards"] for f in s["files"].values())
    seconds = float(b.get("seconds", 0.0))
    mb_s = b.get("input_bytes", 0) / 1e6 / max(seconds, 1e-9)
    skipped = b.get("skipped_invalid", 0)
    skipped_s = f", {skipped:,} invalid line(s) skipped" if skipped else ""
    where = f" {output}:" if output else ""
    return (
        f"infinigram: built{where} {manifest['n_docs']:,} docs, {manifest['n_tokens']:,} tokens, "
        f"{len(manifest['shards'])} shard(s), {index_bytes / n_tokens:.2f} bytes/token, "
        f"{seconds:.2f} s, {mb_s:.1f} MB/s of input{skipped_s}"
    )
