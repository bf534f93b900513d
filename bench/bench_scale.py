"""Shards larger than memory: in-memory builds vs out-of-core (--max-memory).

For each configuration, `infinigram build` runs in a child process (wall time,
peak RSS from wait4 and the sampled process tree), then the index is opened
here and counted: p50 of `Index.count` over 2,000 n-grams (5-40 tokens) drawn
from the corpus's documents, warm (one untimed pass first).

    python bench/bench_scale.py /work/bench-data/debian_docs.jsonl --work /work/bench-data/scale \
        --config auto: --config none: --config none:384MB --json bench/out/scale.json

A config is SHARD_SIZE:MAX_MEMORY (empty MAX_MEMORY: the default budget).
`--repeat-doc N` first writes a corpus of the first document of the input
repeated N times (the merge's known slow case) and builds that instead.
Prints a table; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time

from _common import child_env, dir_size, fmt_bytes, import_infinigram, run_measured, table


def count_p50(path: str, n_q: int = 2000) -> float:
    ig = import_infinigram()
    idx = ig.Index(path)
    rng = random.Random(0)
    qs = []
    while len(qs) < n_q:
        d = rng.randrange(idx.n_docs)
        toks = idx.get_doc(d).tokens
        if len(toks) < 41:
            continue
        a = rng.randrange(len(toks) - 40)
        qs.append([int(t) for t in toks[a:a + rng.randint(5, 40)]])
    for q in qs:
        idx.count(q)
    ts = []
    for q in qs:
        t = time.perf_counter()
        idx.count(q)
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2] * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--work", required=True)
    ap.add_argument("--config", action="append", default=[], metavar="SHARD_SIZE:MAX_MEMORY")
    ap.add_argument("--backend", default="sa")
    ap.add_argument("--repeat-doc", type=int, default=0, metavar="N")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    corpus = a.corpus
    if a.repeat_doc:
        with open(a.corpus, encoding="utf-8") as fh:
            first = fh.readline()
        corpus = os.path.join(a.work, f"repeat{a.repeat_doc}.jsonl")
        with open(corpus, "w", encoding="utf-8") as fh:
            fh.write(first * a.repeat_doc)
    rows, out = [], []
    for cfg in a.config or ["auto:"]:
        shard, _, mem = cfg.partition(":")
        dst = os.path.join(a.work, "idx-" + cfg.replace(":", "_").replace("/", "_"))
        shutil.rmtree(dst, ignore_errors=True)
        cmd = [sys.executable, "-m", "infinigram", "build", corpus, "-o", dst, "--no-progress",
               "--shard-size", shard or "auto", "--backend", a.backend] + (["--max-memory", mem] if mem else [])
        r = run_measured(cmd, env=child_env(), stdout_path=os.path.join(a.work, "build.log"))
        if r["returncode"] != 0:
            print(open(os.path.join(a.work, "build.log")).read(), file=sys.stderr)
            raise SystemExit(f"build failed: {cmd}")
        man = json.load(open(os.path.join(dst, "index.json")))
        # counted in a child: this process stays small, so the next build's wait4
        # peak RSS is its own (ru_maxrss carries the forking parent's peak across exec)
        import subprocess
        p50 = float(subprocess.check_output(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
             f"from bench_scale import count_p50; print(count_p50({dst!r}))"], env=child_env()))
        rec = {"config": cfg, "backend": a.backend, "wall_s": r["wall_s"], "max_rss": r["max_rss_bytes"],
               "tree_rss": r["peak_tree_rss_bytes"], "index_bytes": dir_size(dst), "shards": len(man["shards"]),
               "n_positions": man["n_positions"], "count_p50_us": p50, "cpu_s": r["user_s"] + r["sys_s"]}
        out.append(rec)
        rows.append([cfg, f"{r['wall_s']:.2f}", f"{rec['cpu_s']:.1f}", fmt_bytes(r["max_rss_bytes"]),
                     fmt_bytes(r["peak_tree_rss_bytes"]), fmt_bytes(rec["index_bytes"]), rec["shards"], f"{p50:.2f}"])
        print(rows[-1], flush=True)
    print(table(rows, ["shard-size:max-memory", "wall s", "cpu s", "peak RSS", "tree RSS", "index", "shards",
                       "count p50 us"]))
    if a.json:
        os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
