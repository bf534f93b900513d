"""Build an index: read → tokenize → write shards → construct → manifest.

The stages, one module each (``build()`` and ``build_from_tokens()`` only
choose the source and wire them in ``_run``):

1. **read** — :mod:`infinigram.sources`: JSONL/txt, Parquet, ``datasets``,
   Python iterables, token files; one document stream;
2. **tokenize** — :mod:`.tokenize`: batches on a dispatcher thread, the
   tokenizer on every core (the exact tiktoken path for byte-level BPE);
3. **write shards** — :mod:`.shards`: tokens.bin, doc_offsets.bin, metadata;
4. **construct** — :mod:`.construct`: each shard's suffix array or FM-index
   on a worker pool as soon as the shard is written, then checksums;
5. **manifest** — :mod:`.manifest`, then the atomic rename (:mod:`.fs`).

The build is atomic: everything is written into ``<output>.tmp-<pid>-<hex>``
next to the target, fsync'd, and renamed into place at the end; the manifest
(``index.json``) is written last, so an unfinished build never opens as an
index. Any exception (KeyboardInterrupt included) removes the temp directory;
one left behind by a killed process is removed by the next build of the same
output once its process is gone.

Memory: documents stream through in batches (``batch_size`` documents or
4 MiB of text, whichever comes first; at most ``tokenize.DEPTH`` + 1 batches
alive); the suffix-array step of the C++ core loads only one shard's token
file (plus its own working memory). Every construction takes its peak from
one budget (``max_memory``, build_ooc.py) before it starts; an SA shard
larger than the budget is sorted in parts and merged on disk (same bytes).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import build_ooc as _ooc
from .. import format as fmt
from ..errors import InputError, TokenizerError
from ..sources import open_source, open_token_source
from ..sources.base import Source
from ..tokenizer import NoTokenizer, Tokenizer, load_tokenizer
from .construct import _Constructor, _tqdm
from .fs import _check_output, _fsync_path, prepare_parent, publish
from .manifest import make_manifest
from .shards import ShardSink, _ShardWriter
from .tokenize import token_stream

__all__ = ["build", "build_from_tokens", "auto_shard_size", "parse_shard_size", "summary_line"]

PathArg = Union[str, "os.PathLike[str]"]

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




def build(
    inputs: Any,
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
    metadata_fields: Union[None, str, Sequence[str]] = None,
    split: Optional[str] = None,
    fast_tokenizer: Union[bool, str] = "auto",
    ray: Union[None, bool, str] = None,
) -> Dict[str, Any]:
    """Build an index of ``inputs`` at ``output`` and return its manifest.

    Args:
        inputs: what to index (:func:`infinigram.sources.open_source`):
            files or directories (recursive, sorted) of ``.jsonl``,
            ``.jsonl.gz``, ``.jsonl.zst`` and ``.txt`` files, or of
            ``.parquet`` files (pyarrow); a ``datasets`` Dataset,
            IterableDataset or DatasetDict (``split``), or a ``save_to_disk``
            directory; any other iterable of strings or of dicts (text +
            metadata), read once. Token ids: :func:`build_from_tokens`.
        output: the index directory to create.
        tokenizer: ``"bytes"``, a path to a Hugging Face ``tokenizer.json``,
            or a :class:`~infinigram.tokenizer.Tokenizer`.
        text_field: JSON field / column holding the text; the other fields
            are stored as the document's metadata.
        metadata_fields: Parquet, datasets and iterables: keep only these
            fields/columns as metadata (``"a,b"`` or a list; None: all).
        split: the split of a DatasetDict (or save_to_disk directory of one).
        fast_tokenizer: ``"auto"`` (default): encode a byte-level BPE
            ``tokenizer.json`` with tiktoken when its ids equal the tokenizers
            library's on the first documents (checked at build start; the
            manifest's ``build.encoder`` says which ran and why); ``True``:
            require it; ``False``: always the tokenizers library.
        shard_size: ``"auto"`` (default, see :func:`auto_shard_size`: for the
            SA backend one shard per core for corpora over 64 MiB, so
            construction uses every core; for the FM backend two per core
            over 32 MiB, which halves the peak memory), ``None`` (one shard),
            or see :func:`parse_shard_size`.
        overwrite: replace an existing index at ``output``.
        skip_invalid: skip (and count) bad JSONL lines / rows instead of failing.
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
        ray: ``None``/``False``: construct on local threads. ``True``: each
            shard's construction is a Ray task on a local cluster started for
            the build (``n_threads`` CPUs); ``"host:port"``: on that cluster
            (the output must be on a filesystem all its nodes see). Same
            bytes as a local build; see :mod:`infinigram.build.distributed`.

    Time: O(input size) to read and tokenize, plus the suffix-array build
    (linear in tokens). Disk: the index needs (token_width + ptr_width + ~0)
    bytes per token, and the temp directory holds it until the final rename.

    Raises:
        InputError, TokenizerError, OutputExistsError.
    """
    t0 = time.perf_counter()
    _check_backend(backend, sa_sample, isa_sample, wt_block_bits)
    output = _output_path(output, overwrite)
    tok = load_tokenizer(tokenizer, add_special_tokens=add_special_tokens)
    source = open_source(inputs, text_field=text_field, metadata_fields=metadata_fields,
                         skip_invalid=skip_invalid, split=split)
    if source.kind != "text":
        raise InputError("build() takes text; for token ids use build_from_tokens()")
    return _run(source, tok, output, t0, text_field=text_field, shard_size=shard_size, overwrite=overwrite,
                batch_size=batch_size, n_threads=n_threads, progress=progress, backend=backend,
                sa_sample=sa_sample, isa_sample=isa_sample, wt_block_bits=wt_block_bits, max_memory=max_memory,
                sa_part_size=sa_part_size, fast=fast_tokenizer, ray=ray)


def build_from_tokens(
    inputs: Any,
    output: PathArg,
    dtype: Any = None,
    eos: Optional[int] = None,
    offsets: Optional[Sequence[PathArg]] = None,
    tokenizer: Union[None, str, PathArg, Tokenizer] = None,
    shard_size: Union[None, int, str] = "auto",
    overwrite: bool = False,
    n_threads: int = 0,
    progress: bool = True,
    backend: str = "sa",
    sa_sample: int = 64,
    isa_sample: int = 64,
    wt_block_bits: int = 0,
    max_memory: Union[None, int, str] = None,
    sa_part_size: Optional[int] = None,
    ray: Union[None, bool, str] = None,
) -> Dict[str, Any]:
    """Build an index of token ids at ``output`` and return its manifest.

    Args:
        inputs: flat token files (``.bin``: raw little-endian ``dtype``;
            ``.npy``), documents split at ``eos`` or by ``offsets`` files;
            Megatron-LM datasets (``prefix``, ``prefix.bin`` or ``prefix.idx``);
            or arrays: an iterable of 1-d integer arrays (one per document) or
            of ``(array, metadata_dict)`` pairs, or one flat array with
            ``eos``. See :mod:`infinigram.sources.tokens`. Files are
            memory-mapped: nothing is copied but into the shard being written.
        dtype: token dtype (``"u8"``, ``"u16"``, ``"u32"``, ``"i32"``,
            ``"i64"`` or a numpy dtype); required for raw ``.bin`` files and
            iterators of arrays, taken from ``.npy`` / ``.idx`` files.
        eos: the end-of-document id (not stored); with a Megatron dataset, a
            trailing ``eos`` of each document is dropped.
        offsets: one offsets file per token file instead of ``eos``.
        tokenizer: the tokenizer the ids come from (``tokenizer.json`` path or
            ``"bytes"``): the index then answers text queries and decodes
            documents, and every id must be below its vocabulary size. None:
            an index without a tokenizer (manifest ``{"kind": "none"}``),
            token width from ``dtype`` (u8 → 1, u16 → 2, wider → 4 bytes),
            queried by ids; a text query raises :class:`TokenizerError`,
            documents come back with ``text == ""``.
        others: as :func:`build`.

    Time: O(tokens) to copy into shards plus the constructions; memory: one
    shard's construction (the inputs are mapped, not loaded).

    Raises:
        InputError (bad files, dtype, EOS id, offsets, .idx), TokenizerError
        (ids outside the vocabulary or equal to the separator, naming the
        file and document), OutputExistsError.
    """
    t0 = time.perf_counter()
    _check_backend(backend, sa_sample, isa_sample, wt_block_bits)
    output = _output_path(output, overwrite)
    source = open_token_source(inputs, dtype=dtype, eos=eos, offsets=offsets)
    if tokenizer is None:
        dt = source.token_dtype
        if dt is None:
            raise InputError("the token dtype is unknown: give dtype= (e.g. 'u16', 'u32') for an iterator of arrays")
        tok: Tokenizer = NoTokenizer(1 if dt.itemsize == 1 else 2 if dt.itemsize == 2 else 4)
    else:
        tok = load_tokenizer(tokenizer)
    return _run(source, tok, output, t0, text_field=None, shard_size=shard_size, overwrite=overwrite,
                batch_size=1024, n_threads=n_threads, progress=progress, backend=backend, sa_sample=sa_sample,
                isa_sample=isa_sample, wt_block_bits=wt_block_bits, max_memory=max_memory,
                sa_part_size=sa_part_size, fast=False, ray=ray)


def _check_backend(backend: str, sa_sample: int, isa_sample: int, wt_block_bits: int) -> None:
    if backend not in ("sa", "fm"):
        raise ValueError(f"backend must be 'sa' or 'fm', got {backend!r}")
    if backend == "fm" and (int(sa_sample) < 1 or int(isa_sample) < 1):
        raise ValueError("sa_sample and isa_sample must be >= 1")
    if backend == "fm" and not 0 <= int(wt_block_bits) <= 62:
        raise ValueError(f"wt_block_bits must be in [0, 62] (0: by alphabet size), got {wt_block_bits}")


def _output_path(output: PathArg, overwrite: bool) -> str:
    output = os.path.abspath(os.fspath(output))
    if os.path.basename(output) == "":
        raise InputError(f"bad output path {output!r}")
    _check_output(output, overwrite)
    return output


def _run(source: Source, tok: Tokenizer, output: str, t0: float, *, text_field: Optional[str],
         shard_size: Union[None, int, str], overwrite: bool, batch_size: int, n_threads: int, progress: bool,
         backend: str, sa_sample: int, isa_sample: int, wt_block_bits: int, max_memory: Union[None, int, str],
         sa_part_size: Optional[int], fast: Union[bool, str], ray: Union[None, bool, str] = None) -> Dict[str, Any]:
    """The stages, for any source: plan (width, shard limit, memory budget),
    then read → tokenize → write shards → construct → manifest → rename, all
    inside a temp dir removed on any failure. O(input) + the constructions."""
    width = tok.token_width
    sep = fmt.separator_for(width)
    if tok.vocab_size > sep:
        raise TokenizerError(f"tokenizer vocabulary ({tok.vocab_size} ids) collides with the separator {sep}")
    workers = n_threads or (os.cpu_count() or 1)
    if source.positions_hint is not None:
        est_positions = int(source.positions_hint)
        est_bytes = est_positions if tok.kind == "bytes" else 4 * est_positions  # auto_shard_size's units
        bytes_like = True
    else:
        est_bytes = int(source.total_bytes)
        est_positions = est_bytes if tok.kind == "bytes" else est_bytes // 4
        bytes_like = tok.kind == "bytes"
    if isinstance(shard_size, str) and shard_size.strip().lower() == "auto":
        limit = auto_shard_size(est_positions if bytes_like else est_bytes, bytes_like, workers, backend)
        if limit is None and not est_bytes:  # unknown size (an iterator): one shard up to the automatic maximum
            limit = AUTO_MAX_SHARD_POSITIONS
    else:
        limit = parse_shard_size(shard_size, width)

    budget = _ooc.MemoryBudget(_ooc.parse_memory(max_memory) or _ooc.default_max_memory(), _ooc.process_rss())
    budget.check(width, est_positions)
    if sa_part_size is not None and int(sa_part_size) < 1:
        raise InputError(f"sa_part_size must be >= 1, got {sa_part_size}")

    if ray is None or ray is False:
        return _run_stages(source, tok, output, t0, None, text_field=text_field, overwrite=overwrite,
                           batch_size=batch_size, n_threads=n_threads, progress=progress, backend=backend,
                           sa_sample=sa_sample, isa_sample=isa_sample, wt_block_bits=wt_block_bits,
                           sa_part_size=sa_part_size, fast=fast, workers=workers, limit=limit, budget=budget)
    from .distributed import RaySession

    session = RaySession(ray, workers)  # a bad address: an error here, before any work
    try:
        return _run_stages(source, tok, output, t0, session, text_field=text_field, overwrite=overwrite,
                           batch_size=batch_size, n_threads=n_threads, progress=progress, backend=backend,
                           sa_sample=sa_sample, isa_sample=isa_sample, wt_block_bits=wt_block_bits,
                           sa_part_size=sa_part_size, fast=fast, workers=workers, limit=limit, budget=budget)
    finally:
        session.close()


def _run_stages(source: Source, tok: Tokenizer, output: str, t0: float, session: Any, *, text_field: Optional[str],
                overwrite: bool, batch_size: int, n_threads: int, progress: bool, backend: str, sa_sample: int,
                isa_sample: int, wt_block_bits: int, sa_part_size: Optional[int], fast: Union[bool, str],
                workers: int, limit: Optional[int], budget: "_ooc.MemoryBudget") -> Dict[str, Any]:
    """read → tokenize → write shards → construct (local threads, or Ray
    tasks with ``session``) → manifest → rename, in a temp dir removed on any failure."""
    width = tok.token_width
    sep = fmt.separator_for(width)
    dtype = fmt.dtype_for(width)
    tmp = prepare_parent(output)
    shards: List[Tuple[_ShardWriter, Dict[str, Any]]] = []
    if session is None:
        constructor: Any = _Constructor(shards, width, backend, sa_sample, isa_sample, wt_block_bits, n_threads,
                                        progress, budget, sa_part_size)
    else:
        try:
            session.check_shared_fs(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        constructor = session.constructor(shards, width, backend, sa_sample, isa_sample, wt_block_bits, workers,
                                          progress, budget, sa_part_size)
    max_id = tok.vocab_size if source.kind == "tokens" and tok.kind != "none" else sep
    sink = ShardSink(tmp, shards, dtype, sep, limit, fsync_tokens=backend != "fm", on_full=constructor.submit,
                     max_id=max_id)
    encoder: Dict[str, Any] = {}
    try:
        # ---- 1-3. read → tokenize → write shards (each shard constructed on the pool once written)
        bar = _tqdm(progress, total=source.total_bytes or None, unit="B", unit_scale=True,
                    desc="reading" if source.kind == "tokens" else "reading+tokenizing")
        last = 0
        clock = time.perf_counter
        t_write = 0.0
        t_stream = clock()
        try:
            for k, (toks, meta, src, n) in enumerate(token_stream(source, tok, batch_size, fast, workers, encoder)):
                t = clock()
                sink.add(toks, meta, lambda: source.where(src, n))
                t_write += clock() - t
                if not k & 1023:
                    now = source.bytes_read
                    bar.update(now - last)
                    last = now
            bar.update(source.bytes_read - last)
        finally:
            bar.close()
        sink.finish()
        t_stream = clock() - t_stream
        n_docs = sink.n_docs
        n_positions = sum(w.n_positions for w, _ in shards)
        n_tokens = n_positions - n_docs
        if n_docs == 0:
            skipped = f"; {source.skipped_invalid} invalid {source.unit}(s) skipped" if source.skipped_invalid else ""
            raise InputError(f"no documents in {source.describe()}{skipped} (expected at least one)")
        if n_tokens == 0:
            raise InputError(f"the {n_docs} document(s) hold no tokens (all texts are empty)")

        # ---- 4. wait for the constructions and checksums; copy the tokenizer
        ident = tok.identity()
        if ident.get("kind") == "hf":
            dst = os.path.join(tmp, fmt.TOKENIZER_FILE)
            shutil.copyfile(getattr(tok, "path"), dst)
            _fsync_path(dst)
            if fmt.sha256_file(dst) != ident["sha256"]:
                raise TokenizerError(f"{getattr(tok, 'path')}: the tokenizer file changed during the build")
        t_wait = clock()
        constructor.finish()
        t_wait = clock() - t_wait
        stages = {"read_tokenize_s": round(t_stream - t_write, 3), "write_shards_s": round(t_write, 3),
                  "construct_wait_s": round(t_wait, 3)}

        # ---- 5. manifest, then rename into place
        manifest = make_manifest(
            shards, backend=backend, width=width, sep=sep, tokenizer=ident, text_field=text_field,
            n_docs=n_docs, n_tokens=n_tokens, n_positions=n_positions, sa_sample=sa_sample,
            isa_sample=isa_sample, wt_block_bits=wt_block_bits, source=source, encoder=encoder,
            seconds=time.perf_counter() - t0, stages=stages)
        fmt.write_manifest(tmp, manifest)
        _fsync_path(tmp)
        publish(tmp, output, overwrite)
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
        if str(encoder.get("fast_path", "")).startswith("not used"):
            print(f"infinigram: encoded with the tokenizers library; the fast path was {encoder['fast_path']}",
                  file=sys.stderr)
    return manifest


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
