"""Stage 4, construction: each shard's suffix array (or FM-index) built on a
worker pool as soon as the shard is written, then its files checksummed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import build_ooc as _ooc
from .. import format as fmt
from ..errors import InputError
from .fs import _fsync_path
from .shards import _ShardWriter

__all__ = ["_Constructor", "ShardJob", "run_shard_job", "_tqdm"]


def _tqdm(progress: bool, **kw: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(disable=not progress, leave=False, dynamic_ncols=True, **kw)


@dataclasses.dataclass
class ShardJob:
    """One shard's construction, everything it needs (picklable: a Ray task
    gets it as is). ``paths``: the shard's files as written (tokens, sa,
    doc_offsets, meta...); ``threads``: the FM build's threads; ``workers``:
    the out-of-core sort's; ``sum_inputs``: also checksum the shard's input
    files (the local constructor sums them on its pool meanwhile);
    ``drop_tokens``: remove an FM shard's tokens.bin at the end (a Ray task
    leaves it to the driver so that a retried task finds its input)."""

    dir: str
    paths: Dict[str, str]
    n_positions: int
    width: int
    backend: str
    sa_sample: int
    isa_sample: int
    wt_block_bits: int
    threads: int
    workers: int
    sa_part_size: Optional[int]
    sum_inputs: bool = False
    drop_tokens: bool = True

    def input_sums(self) -> List[str]:
        """The input files whose checksums go in the manifest (an FM shard's
        tokens.bin does not stay; its sa.bin is made here)."""
        return _input_sums(self.paths, self.backend)


def _input_sums(paths: Dict[str, str], backend: str) -> List[str]:
    skip = ("sa", "tokens") if backend == "fm" else ("sa",)
    return [p for k, p in paths.items() if k not in skip]


def run_shard_job(job: ShardJob, budget: "_ooc.MemoryBudget", cancelled: Optional[threading.Event] = None,
                  cb: Optional[Callable[[float], None]] = None) -> Dict[str, Any]:
    """The per-shard job of every build, local or on Ray: the suffix sort (in
    memory, or out of core when the shard does not fit ``budget``) or the FM
    build, then the checksums of the files it made (and of its inputs with
    ``job.sum_inputs``). Returns ``{"ptr_width", "paths"`` (the shard's files
    now), ``"files"`` (path → manifest entry)``}``. Idempotent with
    ``drop_tokens=False``: a rerun overwrites what a killed run left."""
    ptr = _construct_files(job, budget, cancelled, cb or (lambda f: None))
    if job.backend == "sa":
        paths = dict(job.paths)
        made = [paths["sa"]]
    else:
        paths = {k: os.path.join(job.dir, n) for k, n in fmt.FM_SHARD_FILES.items()}
        made = [paths[k] for k in ("fm", "fm_sa", "fm_isa")]
        if job.drop_tokens:
            os.remove(job.paths["tokens"])
    files = {p: fmt.file_entry(p) for p in made}
    if job.sum_inputs:
        files.update({p: fmt.file_entry(p) for p in job.input_sums()})
    return {"ptr_width": ptr, "paths": paths, "files": files}


def _construct_files(job: ShardJob, budget: "_ooc.MemoryBudget", cancelled: Optional[threading.Event],
                     cb: Callable[[float], None]) -> int:
    from .. import _core  # the C++ core

    paths, n = job.paths, job.n_positions
    need = _ooc.in_memory_need(n, job.width, job.backend)
    if job.backend == "sa":
        if job.sa_part_size is None and need <= budget.total:
            budget.acquire(need, cancelled)
            try:
                ptr = int(_core.build_suffix_array(paths["tokens"], paths["sa"], job.width, cb, True))
            finally:
                budget.release(need)
        else:  # larger than memory: sorted parts merged on disk (build_ooc.py), same bytes
            ptr = _ooc.build_sa_out_of_core(paths["tokens"], paths["sa"], job.width, n,
                                            budget, job.workers, cb, job.sa_part_size)
        _fsync_path(paths["sa"])
        return ptr
    # FM-index straight from the tokens: the suffix array never leaves memory
    # (no sa.bin written and read back); the caller drops tokens.bin
    fm_paths = {k: os.path.join(job.dir, nm) for k, nm in fmt.FM_SHARD_FILES.items()}
    threads = job.threads
    if job.sa_part_size is None and need <= budget.total:
        budget.acquire(need, cancelled)
        try:
            ptr = int(_core.fm_build_shard(paths["tokens"], job.width, fm_paths["fm"], fm_paths["fm_sa"],
                                           fm_paths["fm_isa"], job.sa_sample, job.isa_sample, threads, cb,
                                           job.wt_block_bits))
        finally:
            budget.release(need)
        return ptr
    # Larger than memory: the suffix array out of core into a temporary
    # sa.bin, then the FM files from it (fm_build streams the SA; its
    # own peak, _ooc.fm_from_sa_need, bounds the FM shard).
    fm_need = _ooc.fm_from_sa_need(n, job.width)
    if fm_need > budget.total:
        raise InputError(
            f"an FM shard of {n:,} positions needs {fm_need / 1e6:,.0f} MB for its FM step "
            f"(token file + BWT codes + wavelet tree + samples), more than max_memory leaves "
            f"({budget.total / 1e6:,.0f} MB): give more memory or a smaller --shard-size"
        )
    half = lambda f: cb(0.5 * f)  # noqa: E731
    ptr = _ooc.build_sa_out_of_core(paths["tokens"], paths["sa"], job.width, n,
                                    budget, job.workers, half, job.sa_part_size)
    budget.acquire(fm_need, cancelled)
    try:
        _core.fm_build(paths["tokens"], paths["sa"], ptr, job.width, fm_paths["fm"], fm_paths["fm_sa"],
                       fm_paths["fm_isa"], job.sa_sample, job.isa_sample, threads,
                       lambda f: cb(0.5 + 0.5 * f), job.wt_block_bits)
    finally:
        budget.release(fm_need)
    os.remove(paths["sa"])
    return ptr


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
        for p in _input_sums(w.paths, self.backend):
            self.sum_futs[self.pool.submit(fmt.file_entry, p)] = p

    def _construct(self, i: int) -> Dict[str, Any]:
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

        threads = max(1, self.workers // max(1, len(self.sa_futs)))
        job = ShardJob(w.dir, dict(w.paths), w.n_positions, self.width, self.backend, self.sa_sample,
                       self.isa_sample, self.wt_block_bits, threads, self.workers, self.sa_part_size,
                       sum_inputs=False, drop_tokens=True)
        res = run_shard_job(job, self.budget, self.cancelled, cb)
        w.paths = res["paths"]
        return res

    def finish(self) -> None:
        """Waits for everything; fills each shard's manifest entry (counts,
        ptr_width, files with sizes and sha256)."""
        files: Dict[str, Dict[str, Any]] = {}
        try:
            for fut in concurrent.futures.as_completed(list(self.sa_futs)):
                i = self.sa_futs[fut]
                w, entry = self.shards[i]
                res = fut.result()
                entry.update(n_docs=w.n_docs, n_tokens=w.n_positions - w.n_docs,
                             n_positions=w.n_positions, ptr_width=res["ptr_width"])
                files.update(res["files"])
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
