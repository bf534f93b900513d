#!/usr/bin/env python3
"""Corpus-analysis throughput on a built index (default: the 100 MB bytes index).

    python bench/bench_analysis.py [INDEX_DIR] [--entries 3000] [--threads 1,2] [--json OUT.json]

Measures (wall clock, after one warm-up pass so the index is in the page cache):

* matching statistics (``Index.longest_matches``): tokens/s on texts cut from
  the index's own documents (long matches: the worst case for the re-search
  cost) and on English prose from ``english_python311_docs.jsonl`` (mostly short matches);
* contamination (``contamination_scores``, method ``windows`` and ``coverage``,
  n = 50, no span report): entries/minute, for HumanEval entries
  (prompt + canonical_solution, repeated to ``--entries``) and on 1 and 2 threads.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import import_infinigram  # noqa: E402

DATA = os.environ.get("INFINIGRAM_TEST_DATA", "/work/shared/data")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", nargs="?", default="/work/bench-data/our_index")
    ap.add_argument("--entries", type=int, default=3000)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    ig = import_infinigram()
    import numpy as np
    from infinigram.analysis import contamination_scores

    idx = ig.Index(args.index)
    out = {"index": str(args.index), "n_tokens": idx.n_tokens, "n_shards": idx.n_shards}
    print(idx)

    # ---- matching statistics
    rng = np.random.default_rng(0)
    copied = []
    for _ in range(40):
        d = int(rng.integers(idx.n_docs))
        doc = idx.get_doc(d).tokens
        if len(doc) > 1200:
            o = int(rng.integers(0, len(doc) - 1000))
            copied.append(np.asarray(doc[o:o + 1000], dtype=np.int64))
    prose = []
    with open(os.path.join(DATA, "english_python311_docs.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            t = json.loads(line)["text"]
            prose.append(np.frombuffer(t.encode()[:1000], dtype=np.uint8).astype(np.int64))
            if len(prose) == 40:
                break
    for name, texts in (("copied", copied), ("prose", prose)):
        for t in texts[:3]:
            idx.longest_matches(t, with_occurrence=False)
        t0 = time.perf_counter()
        n = 0
        for t in texts:
            n += len(idx.longest_matches(t, with_occurrence=False))
        dt = time.perf_counter() - t0
        out[f"ms_{name}_tokens_per_s"] = n / dt
        print(f"matching statistics, {name:6}: {n:,} tokens in {dt:.2f} s = {n / dt:,.0f} tokens/s (1 thread)")

    # ---- contamination
    he = [json.loads(l) for l in open(os.path.join(DATA, "humaneval.jsonl"), encoding="utf-8")]
    bench = (he * (args.entries // len(he) + 1))[: args.entries]
    contamination_scores(idx, {"warm": he[:50]}, ["prompt", "canonical_solution"], report_worst=0)
    for method in ("windows", "coverage"):
        for th in [int(x) for x in args.threads.split(",")]:
            t0 = time.perf_counter()
            res = contamination_scores(idx, {"humaneval": bench}, ["prompt", "canonical_solution"], method=method,
                                       n_threads=th, report_worst=0)
            dt = time.perf_counter() - t0
            epm = 60 * len(bench) / dt
            out[f"contamination_{method}_t{th}_entries_per_min"] = epm
            print(f"contamination {method:8} {th} thread(s): {len(bench):,} entries in {dt:.2f} s = "
                  f"{epm:,.0f} entries/min  (dirty {res.summary['humaneval']['pct_dirty']:.1f}%)")
    t0 = time.perf_counter()
    res = contamination_scores(idx, {"humaneval": he}, ["prompt", "canonical_solution"], report_worst=10)
    out["contamination_with_report_164_s"] = time.perf_counter() - t0
    print(f"contamination with span report (164 entries, worst 10): {out['contamination_with_report_164_s']:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
