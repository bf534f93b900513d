#!/usr/bin/env python3
"""Query-latency benchmark: our ``Index`` vs infini-gram's ``InfiniGramEngine``.

    python bench/bench_count.py INDEX_DIR INFINI_GRAM_DIR \\
        [--queries 2000] [--rounds 3] [--seed 0] [--json OUT.json] [--no-ours|--no-ig]

Both indexes must hold the same byte-level corpus (our ``tokenizer="bytes"``
index, infini-gram's ``--token_dtype u8`` index).  Queries are byte strings,
given to both as lists of ints (``list(text.encode())``):

* ``exist``: n-grams sampled at uniformly random positions of the corpus (fixed
  seed; windows containing a document separator are redrawn);
* ``absent``: random byte strings (values 0..254) that occur nowhere (n = 1: the
  byte values absent from the corpus);
* ``miss-last`` (n >= 2): an existing (n-1)-gram followed by a byte that makes
  it absent -- the search walks n-1 bytes deep before it fails.

for n in 1, 2, 5, 10, 20.  Each call is timed alone (``perf_counter_ns``),
after one untimed warm-up pass; ``--rounds`` passes per engine, alternating
engines, and p50/p99 over all calls, in microseconds.  Every count of ours is
checked against infini-gram's and mismatches are reported (not asserted).

Also: batched throughput (queries/s) of ``Index.count_many`` with 1 and 2
threads vs a Python loop over infini-gram's ``count`` (and over ours), and
``search_docs`` / ``get_doc`` latency for both (infini-gram: ``search_docs``,
``get_doc_by_ix``).

infini-gram is opened with its best settings for an index in the page cache
(``ds_prefetch_depth=0, sa_prefetch_depth=0, od_prefetch_depth=0``), as
PEERS.md recommends; ``--ig-defaults`` uses its default prefetch depths.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import import_infinigram, machine_info, table  # noqa: E402

LENGTHS = (1, 2, 5, 10, 20)
SEP = 0xFF


def load_corpus_bytes(index_dir: str | None, ig_dir: str | None) -> np.ndarray:
    """The corpus as one byte array with 0xFF separators (ours or infini-gram's file)."""
    cands = []
    if index_dir:
        cands += sorted(Path(index_dir).glob("shard-*/tokens.bin"))
    if ig_dir:
        cands += sorted(Path(ig_dir).glob("tokenized.*"))
    if not cands:
        raise SystemExit("no token file found (shard-*/tokens.bin or tokenized.*)")
    if index_dir and cands[0].name == "tokens.bin":
        parts = [np.memmap(p, dtype=np.uint8, mode="r") for p in cands if p.name == "tokens.bin"]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    return np.memmap(cands[0], dtype=np.uint8, mode="r")


def make_queries(corpus: np.ndarray, n_q: int, seed: int, count_fn) -> dict[tuple[str, int], list[list[int]]]:
    rng = np.random.default_rng(seed)
    N = corpus.size
    present = np.bincount(np.asarray(corpus), minlength=256)
    absent_bytes = [b for b in range(255) if present[b] == 0]
    qs: dict[tuple[str, int], list[list[int]]] = {}
    for n in LENGTHS:
        ex: list[list[int]] = []
        while len(ex) < n_q:
            p = int(rng.integers(0, N - n))
            w = corpus[p:p + n]
            if (w == SEP).any():
                continue
            ex.append([int(x) for x in w])
        qs[("exist", n)] = ex
        ab: list[list[int]] = []
        tries = 0
        while len(ab) < n_q and tries < 100 * n_q:
            tries += 1
            if n == 1:
                if not absent_bytes:
                    break
                q = [int(rng.choice(absent_bytes))]
            else:
                q = [int(x) for x in rng.integers(0, 255, size=n)]
            if count_fn(q) == 0:
                ab.append(q)
        qs[("absent", n)] = ab
        if n >= 2:
            ml: list[list[int]] = []
            tries = 0
            while len(ml) < n_q and tries < 100 * n_q:
                tries += 1
                p = int(rng.integers(0, N - n))
                w = corpus[p:p + n - 1]
                if (w == SEP).any():
                    continue
                q = [int(x) for x in w] + [int(rng.integers(0, 255))]
                if count_fn(q) == 0:
                    ml.append(q)
            qs[("miss-last", n)] = ml
    return qs


def pct(xs_ns: list[int], p: float) -> float:
    a = np.asarray(xs_ns, dtype=np.float64) / 1e3
    return float(np.percentile(a, p)) if a.size else float("nan")


def time_calls(fn, queries: list, rounds: int) -> list[int]:
    clock = time.perf_counter_ns
    out: list[int] = []
    for _ in range(rounds):
        for q in queries:
            t0 = clock()
            fn(q)
            out.append(clock() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="count latency: ours vs infini-gram")
    ap.add_argument("index_dir", help="our index (bytes tokenizer)")
    ap.add_argument("ig_dir", help="infini-gram index (--token_dtype u8)")
    ap.add_argument("--queries", type=int, default=2000, help="queries per (kind, n)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ig-defaults", action="store_true", help="infini-gram with its default prefetch depths")
    ap.add_argument("--no-ours", action="store_true")
    ap.add_argument("--no-ig", action="store_true")
    ap.add_argument("--docs-queries", type=int, default=300, help="calls for search_docs / get_doc")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    ours = ig = None
    if not args.no_ours:
        infinigram = import_infinigram()
        Index = getattr(infinigram, "Index", None)
        if Index is None:
            from infinigram.index import Index  # type: ignore
        ours = Index(args.index_dir)
    if not args.no_ig:
        from infini_gram.engine import InfiniGramEngine
        kw = {} if args.ig_defaults else dict(ds_prefetch_depth=0, sa_prefetch_depth=0, od_prefetch_depth=0)
        ig = InfiniGramEngine(index_dir=args.ig_dir, eos_token_id=254, vocab_size=255, token_dtype="u8", **kw)

    def ig_count(q):
        return ig.count(input_ids=q)["count"]

    ref_count = ig_count if ig is not None else ours.count
    corpus = load_corpus_bytes(None if ours is None else args.index_dir, args.ig_dir)
    t0 = time.perf_counter()
    qs = make_queries(corpus, args.queries, args.seed, ref_count)
    print(f"made {sum(len(v) for v in qs.values())} queries in {time.perf_counter() - t0:.1f} s "
          f"(corpus {corpus.size:,} positions)", file=sys.stderr)

    res: dict = {"index_dir": args.index_dir, "ig_dir": args.ig_dir, "machine": machine_info(),
                 "ig_settings": "defaults" if args.ig_defaults else "prefetch depths 0",
                 "latency": {}, "mismatches": 0}
    engines = []
    if ours is not None:
        engines.append(("ours", ours.count))
    if ig is not None:
        engines.append(("ig", ig_count))

    # correctness cross-check (+ warm-up: touches the pages both engines need)
    mism = []
    for key, ql in qs.items():
        for q in ql:
            vals = {name: fn(q) for name, fn in engines}
            if len(set(vals.values())) > 1:
                mism.append((key, bytes(q), vals))
    res["mismatches"] = len(mism)
    if mism:
        print(f"!! {len(mism)} count mismatches between ours and infini-gram, e.g.:", file=sys.stderr)
        for m in mism[:5]:
            print(f"   {m}", file=sys.stderr)

    # latency per call
    gc.disable()
    rows = []
    for key, ql in qs.items():
        if not ql:
            continue
        lat: dict[str, list[int]] = {name: [] for name, _ in engines}
        for _ in range(args.rounds):
            for name, fn in engines:
                lat[name] += time_calls(fn, ql, 1)
        entry = {name: {"p50_us": pct(v, 50), "p99_us": pct(v, 99), "mean_us": float(np.mean(v)) / 1e3}
                 for name, v in lat.items()}
        res["latency"][f"{key[0]}/{key[1]}"] = entry
        row = [key[0], key[1], len(ql)]
        for name in ("ours", "ig"):
            e = entry.get(name)
            row += [f"{e['p50_us']:.1f}", f"{e['p99_us']:.1f}"] if e else ["-", "-"]
        if "ours" in entry and "ig" in entry:
            row.append(f"{entry['ig']['p50_us'] / entry['ours']['p50_us']:.2f}x")
        else:
            row.append("-")
        rows.append(row)
    gc.enable()

    # batched throughput
    allq = [q for ql in qs.values() for q in ql]
    thr: dict[str, float] = {}

    def best_of(fn, reps=3) -> float:
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best

    if ours is not None:
        for nt in (1, 2):
            dt = best_of(lambda: ours.count_many(allq, n_threads=nt))
            thr[f"ours count_many n_threads={nt}"] = len(allq) / dt
        arr = [np.asarray(q, dtype=np.int64) for q in allq]
        dt = best_of(lambda: ours.count_many(arr, n_threads=2))
        thr["ours count_many n_threads=2 (numpy queries)"] = len(allq) / dt
        dt = best_of(lambda: [ours.count(q) for q in allq])
        thr["ours loop of count"] = len(allq) / dt
        if ig is not None:
            got = np.asarray(ours.count_many(allq, n_threads=2))
            exp = np.asarray([ig_count(q) for q in allq])
            res["count_many_mismatches"] = int((got != exp).sum())
    if ig is not None:
        dt = best_of(lambda: [ig.count(input_ids=q) for q in allq])
        thr["infini-gram loop of count"] = len(allq) / dt
    res["throughput_qps"] = thr
    res["throughput_n_queries"] = len(allq)

    # search_docs / get_doc
    docs_rows = []
    rng = np.random.default_rng(args.seed + 1)
    sd_q = [q for n in (5, 10, 20) for q in qs[("exist", n)][: args.docs_queries // 3]]
    n_docs = ours.n_docs if ours is not None else ig.get_total_doc_cnt()
    doc_ids = [int(x) for x in rng.integers(0, n_docs, size=args.docs_queries)]
    ops = []
    if ours is not None:
        ops.append(("search_docs(maxnum=1, context=50)", "ours", lambda q: ours.search_docs(q, maxnum=1, context=50), sd_q))
        ops.append(("get_doc (whole doc)", "ours", lambda d: ours.get_doc(d), doc_ids))
    if ig is not None:
        ops.append(("search_docs(maxnum=1, context=50)", "ig",
                    lambda q: ig.search_docs(input_ids=q, maxnum=1, max_disp_len=100 + len(q)), sd_q))
        ops.append(("get_doc (whole doc)", "ig", lambda d: ig.get_doc_by_ix(doc_ix=d, max_disp_len=10**7), doc_ids))
    docs_lat: dict = {}
    for opname, eng, fn, items in ops:
        try:
            for it in items[:20]:
                fn(it)
            v = time_calls(fn, items, args.rounds)
        except Exception as e:  # report, don't die
            print(f"!! {opname} ({eng}) failed: {e!r}", file=sys.stderr)
            continue
        docs_lat.setdefault(opname, {})[eng] = {"p50_us": pct(v, 50), "p99_us": pct(v, 99)}
    for opname, d in docs_lat.items():
        row = [opname]
        for eng in ("ours", "ig"):
            row += [f"{d[eng]['p50_us']:.1f}", f"{d[eng]['p99_us']:.1f}"] if eng in d else ["-", "-"]
        row.append(f"{d['ig']['p50_us'] / d['ours']['p50_us']:.2f}x" if len(d) == 2 else "-")
        docs_rows.append(row)
    res["docs_latency"] = docs_lat

    # report
    print(f"\nCount latency from Python (µs per call; {args.rounds} rounds; infini-gram: {res['ig_settings']})")
    print(f"ours: {args.index_dir}   infini-gram: {args.ig_dir}")
    print(f"machine: {res['machine']}")
    print(table(rows, ["kind", "n", "queries", "ours p50", "ours p99", "ig p50", "ig p99", "ig/ours p50"]))
    print(f"count mismatches ours vs infini-gram: {res['mismatches']}"
          + (f"; count_many vs infini-gram: {res['count_many_mismatches']}" if "count_many_mismatches" in res else ""))
    print(f"\nBatched throughput over all {len(allq)} queries above (queries/s, best of 3):")
    for k, v in thr.items():
        print(f"  {k:45s} {v:12,.0f}")
    base = thr.get("infini-gram loop of count")
    if base:
        for k, v in thr.items():
            if k.startswith("ours"):
                print(f"  ratio {k} / infini-gram loop = {v / base:.2f}x")
    if docs_rows:
        print("\nDocument retrieval (µs per call):")
        print(table(docs_rows, ["op", "ours p50", "ours p99", "ig p50", "ig p99", "ig/ours p50"]))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
