"""Appending and compacting, measured (issue 24): what an append costs beside
building the new documents alone, and what compaction gives back in query
latency.

    python bench/bench_generations.py CORPUS.jsonl [--work DIR] [--extra-mb 1 10] [--queries 2000]

1. builds the base index of CORPUS (the default shard plan);
2. appends EXTRA MB of held-out documents (the shared English and code
   corpora, then the corpus's own last documents) for each --extra-mb, timing
   each append beside a fresh build of the same EXTRA MB alone;
3. count p50 / p99 over --queries 5-40 byte n-grams of the corpus (warm),
   after the appends (more shards) and after ``compact`` (one shard);
4. times the compaction.

Prints a table; nothing is asserted (numbers go to bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from typing import List

from _common import import_infinigram

infinigram = import_infinigram()
from infinigram.append import append  # noqa: E402
from infinigram.compact import compact  # noqa: E402

SHARED = os.environ.get("INFINIGRAM_TEST_DATA", "/work/shared/data")


def extra_docs(corpus: str, mb: float, seed: int) -> List[dict]:
    """About ``mb`` MB of documents not in the base index: the shared corpora, shuffled."""
    pool: List[dict] = []
    for name in ("english_python311_docs.jsonl", "code_python_stdlib.jsonl"):
        with open(os.path.join(SHARED, name), encoding="utf-8") as fh:
            pool += [{"text": json.loads(line)["text"], "source": name} for line in fh]
    random.Random(seed).shuffle(pool)
    out, size = [], 0
    for d in pool:
        if size >= mb * 1e6:
            break
        out.append(d)
        size += len(d["text"].encode())
    return out


def count_latency(ix, queries) -> tuple:
    for q in queries[:200]:
        ix.count(q)  # warm
    ts = []
    for q in queries:
        t = time.perf_counter_ns()
        ix.count(q)
        ts.append(time.perf_counter_ns() - t)
    ts.sort()
    return ts[len(ts) // 2] / 1e3, ts[int(len(ts) * 0.99)] / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--work", default="/tmp/bench_generations")
    ap.add_argument("--extra-mb", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--queries", type=int, default=2000)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    idx = os.path.join(a.work, "idx")
    t = time.perf_counter()
    infinigram.build(a.corpus, idx, progress=False)
    base_s = time.perf_counter() - t
    ix = infinigram.Index(idx)
    print(f"base: {ix}  built in {base_s:.2f} s  (load {os.getloadavg()[0]:.1f})")
    rng = random.Random(1)
    texts = []
    with open(a.corpus, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= 500:
                break
            texts.append(json.loads(line)["text"])
    queries = []
    while len(queries) < a.queries:
        d = rng.choice(texts)
        L = rng.randint(5, 40)
        if len(d) > L:
            i = rng.randrange(len(d) - L)
            queries.append(d[i:i + L])
    p50, p99 = count_latency(ix, queries)
    print(f"count p50 / p99 (base, {ix.n_shards} shards): {p50:.2f} / {p99:.2f} us")
    print("| append | MB | append s | build alone s | ratio | shards after |")
    print("|---|---|---|---|---|---|")
    for k, mb in enumerate(a.extra_mb):
        docs = extra_docs(a.corpus, mb, seed=10 + k)
        src = os.path.join(a.work, f"extra{k}.jsonl")
        with open(src, "w", encoding="utf-8") as fh:
            for d in docs:
                fh.write(json.dumps(d) + "\n")
        size = os.path.getsize(src) / 1e6
        t = time.perf_counter()
        infinigram.build(src, os.path.join(a.work, f"alone{k}"), progress=False)
        alone = time.perf_counter() - t
        t = time.perf_counter()
        m = append(idx, src, progress=False)
        app = time.perf_counter() - t
        print(f"| {k + 1} | {size:.1f} | {app:.3f} | {alone:.3f} | {app / alone:.2f}x | {len(m['shards'])} |")
    ix = infinigram.Index(idx)
    p50a, p99a = count_latency(ix, queries)
    t = time.perf_counter()
    m = compact(idx, progress=False)
    comp_s = time.perf_counter() - t
    ix = infinigram.Index(idx)
    p50c, p99c = count_latency(ix, queries)
    print(f"count p50 / p99 after appends ({m['compactions'][-1]['shards_before']} shards): {p50a:.2f} / {p99a:.2f} us")
    print(f"compact: {comp_s:.2f} s -> {len(m['shards'])} shard(s); count p50 / p99 after: {p50c:.2f} / {p99c:.2f} us "
          f"(load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
