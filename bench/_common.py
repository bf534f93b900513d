"""Helpers shared by the benchmark scripts (measurement only, no assertions).

* :func:`import_infinigram` finds our package: an installed ``infinigram``, or
  the source tree (``$INFINIGRAM_PYTHON`` or ``<repo>/python``) with its built
  ``_core`` extension.
* :func:`run_measured` runs a command in a child process and reports wall time,
  the peak RSS of the largest single process in its tree (``wait4`` rusage,
  which covers waited-for descendants) and the peak *sum* of RSS over the
  whole process tree, sampled from ``/proc`` every ``interval`` seconds (the
  right figure for pipelines that run several processes at once).
* :class:`CpuBurner` keeps one core busy (a spinning child process) to measure
  how a multi-threaded step behaves when the machine is not idle.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")


def python_path_for_ours() -> str:
    """Directory to put on sys.path / PYTHONPATH for our package ('' if installed)."""
    env = os.environ.get("INFINIGRAM_PYTHON")
    if env:
        return env
    src = REPO / "python"
    if any(src.glob("infinigram/_core*.so")):
        return str(src)
    return ""


def import_infinigram():
    p = python_path_for_ours()
    if p and p not in sys.path:
        sys.path.insert(0, p)
    import infinigram  # noqa: F401
    return infinigram


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    p = python_path_for_ours()
    if p:
        env["PYTHONPATH"] = p + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ----------------------------------------------------------------------------
def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, rss_bytes) for every process visible in /proc."""
    out: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                s = f.read()
        except OSError:
            continue
        # comm may contain spaces/parens: split after the last ')'
        rest = s[s.rfind(b")") + 2:].split()
        try:
            ppid = int(rest[1])
            rss_pages = int(rest[21])
        except (IndexError, ValueError):
            continue
        out[int(name)] = (ppid, rss_pages * PAGE)
    return out


def tree_rss(root: int) -> int:
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                 stdout_path: str | None = None, interval: float = 0.1,
                 timeout: float | None = None) -> dict[str, Any]:
    """Run ``cmd``; return wall_s, returncode, max_rss_bytes, peak_tree_rss_bytes, output."""
    out_f = open(stdout_path, "w") if stdout_path else subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out_f, stderr=subprocess.STDOUT)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                peak = max(peak, tree_rss(proc.pid))
            except Exception:
                pass
            stop.wait(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        _, status, ru = os.wait4(proc.pid, 0) if timeout is None else _wait4_timeout(proc, timeout)
    finally:
        wall = time.perf_counter() - t0
        stop.set()
        th.join()
        if stdout_path:
            out_f.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "cmd": cmd,
        "wall_s": wall,
        "returncode": proc.returncode,
        "max_rss_bytes": ru.ru_maxrss * 1024,   # largest single process (KiB on Linux)
        "peak_tree_rss_bytes": max(peak, ru.ru_maxrss * 1024),
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
    }


def _wait4_timeout(proc: subprocess.Popen, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, ru
        if time.monotonic() > deadline:
            proc.kill()  # our own child, by pid
        time.sleep(0.05)


class CpuBurner:
    """Context manager: one child process spinning on a core until exit."""

    def __init__(self, n: int = 1) -> None:
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "CpuBurner":
        for _ in range(self.n):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-c", "while True: pass"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.3)  # let it get going
        return self

    def __exit__(self, *exc: Any) -> None:
        for p in self.procs:
            p.kill()   # our own child, by pid
            p.wait()
        self.procs.clear()


# ----------------------------------------------------------------------------
def dir_size(path: str | Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in Path(path).rglob(pattern) if p.is_file())


def corpus_text_bytes(corpus: str | Path) -> tuple[int, int]:
    """(UTF-8 bytes of all `text` fields, number of docs); uses the manifest if make_corpus wrote one."""
    man = Path(str(corpus) + ".manifest.json")
    if man.exists():
        m = json.loads(man.read_text())
        if m.get("file_bytes") == Path(corpus).stat().st_size:
            return int(m["text_bytes"]), int(m["docs"])
    total = n = 0
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                total += len(json.loads(line)["text"].encode("utf-8"))
                n += 1
    return total, n


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
        info["loadavg"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    return info


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} GB"


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in cells]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)
