"""Stage 4, construction: each shard's suffix array (or FM-index) built on a
worker pool as soon as the shard is written, then its files checksummed.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from typing import Any, Dict, List, Optional, Tuple

from .. import build_ooc as _ooc
from .. import format as fmt
from ..errors import InputError
from .fs import _fsync_path
from .shards import _ShardWriter

__all__ = ["_Constructor", "_tqdm"]


def _tqdm(progress: bool, **kw: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(disable=not progress, leave=False, dynamic_ncols=True, **kw)


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
        from .. import _core  # the C++ core

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
