"""Memory budget of a build, and suffix arrays of shards larger than it.

A shard whose in-memory suffix sort (``_core.build_suffix_array``: the token
file plus 4 bytes per position, see :func:`in_memory_need`) does not fit the
build's memory budget is built out of core (:func:`build_sa_out_of_core`):

1. the token file is cut into parts small enough that one part's sort fits
   the budget on each worker thread (:func:`part_need`), and each part's
   suffixes are sorted in whole-text order into a run file
   (``_core.sort_suffix_part``, ``csrc/sa_parts.hpp``: exact, SA-IS of the
   part with one boundary bit per position);
2. the runs are merged on disk into the shard's ``sa.bin``
   (``_core.merge_suffix_runs``, ``csrc/sa_merge.hpp``: a loser tree, runs
   read and the output written sequentially, 16-byte cached prefixes, the
   mapped text dropped when it would outgrow the budget).

The result is byte-identical to the in-memory build's ``sa.bin``. Every
construction (in memory, part sort, merge) takes its memory from one
:class:`MemoryBudget` before it starts and gives it back when done, so the
peak resident memory of the whole build (its one process, mapped pages
included) stays below ``max_memory``.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import threading
from typing import Callable, List, Optional, Tuple, Union

from .errors import InputError

__all__ = [
    "MemoryBudget", "parse_memory", "default_max_memory", "process_rss", "in_memory_need", "part_need",
    "merge_need", "fm_from_sa_need", "plan_parts", "build_sa_out_of_core", "MIN_PART_POSITIONS", "DEFAULT_MEMORY_SHARE",
]

MiB = 2**20
# The share of MemTotal a build may use when max_memory is not given.
DEFAULT_MEMORY_SHARE = 0.5
# Constant overhead of one suffix sort (buckets, write buffers), bytes.
SORT_OVERHEAD = 8 * MiB
# Parts are not cut smaller than this unless asked (part_size): below it the
# merge's per-run buffers would dominate.
MIN_PART_POSITIONS = 1 << 20
# Run buffers of the merge: entries per run (24 bytes each: position + key).
MERGE_BUFFER_ENTRIES = 1 << 16
MIN_MERGE_BUFFER_ENTRIES = 1 << 10
# The merge's output buffer and its fixed costs; the least it keeps for mapped text.
MERGE_OVERHEAD = 2 * MiB
MIN_TEXT_RSS = 16 * MiB
# Kept aside for the reading / tokenizing side of the build and checksums.
READ_SLACK = 64 * MiB

_UNITS = {
    "": 1, "B": 1,
    "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9, "T": 10**12, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}


def parse_memory(value: Union[None, int, str]) -> Optional[int]:
    """Bytes of a memory size: an int (bytes), ``"4GB"``, ``"512MB"``,
    ``"1.5GiB"`` (K/M/G/T powers of 10, KiB/MiB/GiB/TiB powers of 2), or
    ``None`` (the default: :func:`default_max_memory`)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InputError(f"bad memory size {value!r} (expected bytes or a size like 4GB, 512MB)")
    if isinstance(value, int):
        n = value
    else:
        s = str(value).strip()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", s)
        unit = m.group(2).upper() if m else None
        if m is None or unit not in _UNITS:
            raise InputError(f"bad memory size {value!r} (expected bytes or a size like 4GB, 512MB, 1.5GiB)")
        n = int(float(m.group(1)) * _UNITS[unit])
    if n <= 0:
        raise InputError(f"memory size {value!r} must be positive")
    return n


def default_max_memory() -> int:
    """``DEFAULT_MEMORY_SHARE`` (half) of MemTotal (``/proc/meminfo``; 4 GiB if unreadable)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(int(line.split()[1]) * 1024 * DEFAULT_MEMORY_SHARE)
    except OSError:
        pass
    return 4 * 2**30


def process_rss() -> int:
    """This process's resident memory now, bytes (``/proc/self/statm``)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def in_memory_need(n_positions: int, token_width: int, backend: str = "sa") -> int:
    """Peak bytes of a shard's in-memory construction: the token file, SA-IS
    entries (4 bytes, 8 from 2^31 positions), type bits, u32's renamed copy;
    FM adds nothing at the peak (docs/FORMAT.md, "FM build")."""
    n = int(n_positions)
    ent = 8 if n >= 2**31 - 2 else 4
    return int(n * (token_width + ent + 0.125 + (4 if token_width == 4 else 0))) + SORT_OVERHEAD


def fm_from_sa_need(n_positions: int, token_width: int) -> int:
    """Peak bytes of ``_core.fm_build`` from an existing sa.bin (csrc/fm_build.hpp):
    the token file (mapped, read at random), the BWT codes (1 byte per position
    up to 256 symbols; ``token_width`` bytes is the bound used here for wider
    tokens), the wavelet tree (< 1 byte per position for text; counted as 1)
    and the SA samples (~0.25 byte at the default rate 64)."""
    n = int(n_positions)
    return int(n * (token_width + token_width + 1.25)) + SORT_OVERHEAD


def _part_bytes_per_position(token_width: int) -> float:
    # csrc/sa_parts.hpp: symbols (2 bytes for u8 tokens, else 4) + SA-IS entries (4)
    # + the part's mapped tokens + bits; u32: + 4 for ranks or buckets.
    return (2.0 if token_width == 1 else 4.0) + 4.0 + token_width + 0.25 + (4.0 if token_width == 4 else 0.0)


def part_need(part_positions: int, token_width: int) -> int:
    """Peak bytes of one part's sort (``_core.sort_suffix_part``)."""
    return int(part_positions * _part_bytes_per_position(token_width)) + SORT_OVERHEAD


def merge_need(n_runs: int, buffer_entries: int = MERGE_BUFFER_ENTRIES) -> int:
    """Bytes of the merge's buffers (without the mapped text)."""
    return n_runs * buffer_entries * 24 + MERGE_OVERHEAD


class MemoryBudget:
    """Bytes that constructions take before they start and give back after.

    ``total`` is what the constructions may use together (the budget minus
    the process's own memory and the reading side's slack). ``acquire``
    blocks until the bytes are free; asking for more than ``total`` is an
    error of the caller (plan smaller)."""

    def __init__(self, max_memory: int, baseline: int) -> None:
        self.max_memory = int(max_memory)
        self.baseline = int(baseline)
        self.total = self.max_memory - self.baseline - READ_SLACK
        self._free = self.total
        self._cv = threading.Condition()

    def acquire(self, nbytes: int, cancelled: Optional[threading.Event] = None) -> None:
        nbytes = int(nbytes)
        if nbytes > self.total:
            raise InputError(f"internal: {nbytes} bytes asked of a {self.total}-byte budget")
        with self._cv:
            while self._free < nbytes:
                if cancelled is not None and cancelled.is_set():
                    raise KeyboardInterrupt("build cancelled")
                self._cv.wait(0.2)
            self._free -= nbytes

    def release(self, nbytes: int) -> None:
        with self._cv:
            self._free += int(nbytes)
            self._cv.notify_all()

    def fits_in_memory(self, n_positions: int, token_width: int) -> bool:
        return in_memory_need(n_positions, token_width) <= self.total

    def minimum(self, token_width: int) -> int:
        """The smallest max_memory this build can run with: one part of
        MIN_PART_POSITIONS, or a merge of a few runs with small buffers."""
        least = max(part_need(MIN_PART_POSITIONS, token_width), merge_need(4, MIN_MERGE_BUFFER_ENTRIES) + MIN_TEXT_RSS)
        return self.baseline + READ_SLACK + least

    def check(self, token_width: int, est_positions: int) -> None:
        """InputError before any work when the budget cannot hold the smallest
        part sort, or the merge of the runs the estimated shard needs."""
        need = self.minimum(token_width)
        if self.max_memory < need:
            raise InputError(
                f"max_memory {_mb(self.max_memory)} is too small: the build needs at least {_mb(need)} "
                f"({_mb(self.baseline)} for this process, {_mb(READ_SLACK)} for reading, "
                f"{_mb(need - self.baseline - READ_SLACK)} for the smallest suffix sort or merge)"
            )
        if est_positions > 0:
            plan_parts(est_positions, token_width, self, workers=1)  # raises if the merge cannot fit


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def plan_parts(n_positions: int, token_width: int, budget: MemoryBudget, workers: int,
               part_size: Optional[int] = None) -> Tuple[List[Tuple[int, int]], int, int]:
    """Cuts [0, n) into parts: returns (parts, concurrent part sorts, merge
    buffer entries per run). Parts are as large as ``workers`` concurrent
    sorts allow (fewer workers if a part would fall under
    MIN_PART_POSITIONS); ``part_size`` forces the part length (tests)."""
    n = int(n_positions)
    per = _part_bytes_per_position(token_width)
    if part_size is not None:
        size, conc = max(1, int(part_size)), max(1, workers)
        while conc > 1 and conc * part_need(size, token_width) > budget.total:
            conc -= 1
    else:
        conc = max(1, workers)
        while True:
            size = int((budget.total / conc - SORT_OVERHEAD) / per)
            if size >= MIN_PART_POSITIONS or conc == 1:
                break
            conc -= 1
        size = min(size, 2**31 - 4)
        if size < 1:
            raise InputError(f"max_memory {_mb(budget.max_memory)} leaves no room for a suffix sort "
                             f"(need at least {_mb(budget.minimum(token_width))})")
        k = -(-n // size)
        size = -(-n // k)  # equal parts
    bounds = list(range(0, n, size)) + [n]
    parts = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    if part_need(size, token_width) > budget.total:
        raise InputError(f"max_memory {_mb(budget.max_memory)} cannot hold a part of {size:,} positions "
                         f"(needs {_mb(part_need(size, token_width) + budget.baseline + READ_SLACK)})")
    k = len(parts)
    room = budget.total - MERGE_OVERHEAD - MIN_TEXT_RSS
    entries = min(MERGE_BUFFER_ENTRIES, room // (24 * k) if room > 0 else 0)
    if entries < MIN_MERGE_BUFFER_ENTRIES:
        need = budget.baseline + READ_SLACK + merge_need(k, MIN_MERGE_BUFFER_ENTRIES) + MIN_TEXT_RSS
        raise InputError(
            f"max_memory {_mb(budget.max_memory)} is too small to merge the {k:,} sorted parts of a "
            f"{n:,}-position shard: the merge's buffers need at least {_mb(need)}"
        )
    return parts, conc, int(entries)


def build_sa_out_of_core(tokens_path: str, sa_path: str, token_width: int, n_positions: int,
                         budget: MemoryBudget, workers: int, progress: Callable[[float], None],
                         part_size: Optional[int] = None) -> int:
    """Builds ``sa_path`` from ``tokens_path`` by sorted parts and an on-disk
    merge (see the module docstring); returns the pointer width. Run files go
    to ``<sa_path>.runs/`` and are removed whatever happens. ``progress``
    (fraction done) may raise to cancel. Time: the parts' SA-IS (linear) on
    ``workers`` threads + the merge, O(n log k) plus the text compared where
    suffixes share more than 16 bytes."""
    from . import _core

    parts, conc, entries = plan_parts(n_positions, token_width, budget, workers, part_size)
    rundir = sa_path + ".runs"
    os.makedirs(rundir, exist_ok=True)
    runs = [os.path.join(rundir, f"run-{i:05d}.bin") for i in range(len(parts))]
    frac = [0.0] * len(parts)
    lock = threading.Lock()
    SORT_SHARE = 0.6

    def report() -> None:
        progress(SORT_SHARE * sum((b - a) * f for (a, b), f in zip(parts, frac)) / max(1, n_positions))

    def sort(i: int) -> None:
        a, b = parts[i]
        need = part_need(b - a, token_width)
        budget.acquire(need)
        try:
            def cb(f: float) -> None:
                with lock:
                    frac[i] = f
                    report()

            _core.sort_suffix_part(tokens_path, token_width, a, b, runs[i], cb)
        finally:
            budget.release(need)

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=conc) as pool:
            futs = [pool.submit(sort, i) for i in range(len(parts))]
            try:
                for f in concurrent.futures.as_completed(futs):
                    f.result()
            except BaseException:
                for f in futs:
                    f.cancel()
                raise
        need = merge_need(len(parts), entries)
        text_cap = max(MIN_TEXT_RSS, min(budget.total - need, n_positions * token_width + MiB))
        budget.acquire(need + text_cap)
        try:
            return int(_core.merge_suffix_runs(
                tokens_path, token_width, runs, sa_path, entries, text_cap, True,
                lambda f: progress(SORT_SHARE + (1 - SORT_SHARE) * f)))
        finally:
            budget.release(need + text_cap)
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
