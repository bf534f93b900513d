"""Ray builds vs local builds of the same corpus (issue 24): wall time per run
and the 1-minute load average beside it (other processes share the cores).

    PYTHONPATH=python python bench/bench_ray.py /work/bench-data/debian_docs.jsonl \
        --work /work/bench-data --runs 2 [--backend sa|fm] [--cli]

Alternates local and Ray builds on one local cluster of ``--cpus`` CPUs
started once (``ray.init``), so Ray's start-up is timed apart; ``--cli``
adds ``infinigram build --ray`` runs that start and stop their own cluster.
Checks that both builds give the same files. Prints numbers; asserts none.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time


def digest(idx: str) -> dict:
    out = {}
    for root, _, names in os.walk(idx):
        for n in names:
            if n != "index.json":
                p = os.path.join(root, n)
                h = hashlib.sha256()
                with open(p, "rb") as fh:
                    for b in iter(lambda: fh.read(1 << 22), b""):
                        h.update(b)
                out[os.path.relpath(p, idx)] = h.hexdigest()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--work", default="/work/bench-data")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--backend", default="sa")
    ap.add_argument("--cli", action="store_true")
    a = ap.parse_args()

    import ray

    from infinigram.build import build

    out_l, out_r = os.path.join(a.work, "ray_bench_local"), os.path.join(a.work, "ray_bench_ray")
    t = time.perf_counter()
    ray.init(num_cpus=a.cpus, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    print(f"ray.init (local cluster, {a.cpus} CPUs): {time.perf_counter() - t:.2f} s", flush=True)
    rows = []
    for r in range(a.runs):
        for mode in ("local", "ray"):
            out = out_l if mode == "local" else out_r
            load = os.getloadavg()[0]
            t = time.perf_counter()
            m = build([a.corpus], out, n_threads=a.cpus, progress=False, overwrite=True, backend=a.backend,
                      ray=True if mode == "ray" else None)
            wall = time.perf_counter() - t
            rows.append((mode, r, wall, load, len(m["shards"])))
            print(f"{mode:6s} run {r}: {wall:6.2f} s  load {load:.2f}  shards {len(m['shards'])}", flush=True)
    same = digest(out_l) == digest(out_r)
    print(f"files identical: {same}")
    ray.shutdown()
    for mode in ("local", "ray"):
        ws = [w for m_, _, w, _, _ in rows if m_ == mode]
        print(f"{mode}: best {min(ws):.2f} s, mean {sum(ws) / len(ws):.2f} s")
    if a.cli:
        for r in range(a.runs):
            load = os.getloadavg()[0]
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "infinigram.cli", "build", a.corpus, "-o", out_r, "--overwrite",
                            "--threads", str(a.cpus), "--no-progress", "--backend", a.backend, "--ray"], check=True)
            print(f"cli --ray (own cluster) run {r}: {time.perf_counter() - t:.2f} s  load {load:.2f}", flush=True)
    shutil.rmtree(out_l, ignore_errors=True)
    shutil.rmtree(out_r, ignore_errors=True)


if __name__ == "__main__":
    main()
