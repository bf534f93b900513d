#!/usr/bin/env python3
"""Language-model query benchmark: our ``Index`` vs infini-gram's ``InfiniGramEngine``.

    python bench/bench_lm.py INDEX_DIR INFINI_GRAM_DIR [--queries 300] [--rounds 2]
        [--seed 0] [--json OUT.json] [--no-ig] [--score-file F]

Both indexes hold the same byte-level corpus (ours: ``tokenizer="bytes"``;
infini-gram: ``--token_dtype u8``, opened with ``eos_token_id=254,
vocab_size=255`` -- see bench/README.md -- and prefetch depths 0, its best
settings for an index in the page cache).

Measured, per call from Python (``perf_counter_ns``, one untimed warm-up pass,
``--rounds`` passes alternating engines, p50/p99 in microseconds):

* ``prob`` and ``ntd`` after prompts of 1, 4, 9 and 19 bytes taken at random
  corpus positions (the next token: the byte that follows there);
* ``infgram_prob`` / ``infgram_ntd`` after 50-byte prompts whose first 25
  bytes are random text from elsewhere (so the ∞-gram suffix is shorter than
  the prompt, as for real LM contexts);
* ``search_docs_cnf`` with two clauses of 6-byte n-grams taken ~40 bytes apart
  in one document (maxnum=1, max_diff_tokens=100);
* batched ``ntd_many`` after the 19-byte prompts (prompts/s, 1 and 2
  threads) against infini-gram's per-call rate (it has no batched ntd)
* whole-sequence ∞-gram scoring throughput (tokens/s) of ``--score-file``
  (default: the start of the CPython stdlib corpus, text the Debian docs do not
  hold verbatim) with 1 and 2 threads; infini-gram has no sequence scorer, so
  its figure is a Python loop of ``infgram_prob`` over every prefix (as a
  user would write it), on a shorter piece.

Results are cross-checked (prob counts; ntd distributions when infini-gram is
exact, over real tokens; infgram suffix lengths differ by design when a
suffix occurs only at document ends) and mismatches reported, not asserted.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import import_infinigram, machine_info, table  # noqa: E402

PROMPT_LENS = (1, 4, 9, 19)
SEP = 0xFF


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] / 1e3


def time_calls(fn, args_list, rounds):
    out = []
    for _ in range(rounds):
        for a in args_list:
            t = time.perf_counter_ns()
            fn(*a)
            out.append(time.perf_counter_ns() - t)
    return out


def windows(corpus, rng, n, L, extra=1):
    N = corpus.size
    out = []
    while len(out) < n:
        p = int(rng.integers(0, N - L - extra))
        w = np.asarray(corpus[p:p + L + extra])
        if (w == SEP).any():
            continue
        out.append([int(x) for x in w])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="LM queries: ours vs infini-gram")
    ap.add_argument("index_dir")
    ap.add_argument("ig_dir")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-ig", action="store_true")
    ap.add_argument("--score-file", default="/work/shared/data/code_python_stdlib.jsonl")
    ap.add_argument("--score-tokens", type=int, default=300_000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    infinigram = import_infinigram()
    ours = infinigram.Index(args.index_dir)
    ig = None
    if not args.no_ig:
        from infini_gram.engine import InfiniGramEngine
        ig = InfiniGramEngine(index_dir=args.ig_dir, eos_token_id=254, vocab_size=255, token_dtype="u8",
                              ds_prefetch_depth=0, sa_prefetch_depth=0, od_prefetch_depth=0)
    corpus = np.memmap(sorted(Path(args.index_dir).glob("shard-*/tokens.bin"))[0], dtype=np.uint8, mode="r")
    rng = np.random.default_rng(args.seed)
    nq, R = args.queries, args.rounds
    res = {"machine": machine_info(), "latency_us": {}, "throughput": {}, "mismatches": {}}
    rows = []

    def bench(name, ours_fn, ig_fn, qargs):
        for fn in (ours_fn, ig_fn):  # warm-up
            if fn is not None:
                for a in qargs:
                    fn(*a)
        t_o, t_i = [], []
        for _ in range(R):
            t_o += time_calls(ours_fn, qargs, 1)
            if ig_fn is not None:
                t_i += time_calls(ig_fn, qargs, 1)
        r = {"ours_p50": pct(t_o, 50), "ours_p99": pct(t_o, 99)}
        if t_i:
            r.update(ig_p50=pct(t_i, 50), ig_p99=pct(t_i, 99))
            r["speedup_p50"] = r["ig_p50"] / r["ours_p50"]
        res["latency_us"][name] = r
        rows.append([name, f"{r['ours_p50']:.1f}", f"{r['ours_p99']:.1f}",
                     f"{r.get('ig_p50', float('nan')):.1f}", f"{r.get('ig_p99', float('nan')):.1f}",
                     f"{r.get('speedup_p50', float('nan')):.1f}x"])
        print(rows[-1], file=sys.stderr, flush=True)

    # ---------------------------------------------------------------- prob / ntd
    for L in PROMPT_LENS:
        ws = windows(corpus, rng, nq, L)
        pa = [(w[:L], w[L]) for w in ws]
        bench(f"prob n={L}", lambda q, t: ours.prob(q, t),
              (lambda q, t: ig.prob(prompt_ids=q, cont_id=t)) if ig else None, pa)
        na = [(w[:L],) for w in ws]
        bench(f"ntd n={L}", lambda q: ours.ntd(q),
              (lambda q: ig.ntd(prompt_ids=q)) if ig else None, na)
        if ig:
            bad = 0
            for q, t in pa[:100]:
                a, b = ours.prob(q, t), ig.prob(prompt_ids=q, cont_id=t)
                bad += (a.prompt_count, a.cont_count) != (b["prompt_cnt"], b["cont_cnt"])
            for (q,) in na[:50]:
                a, b = ours.ntd(q), ig.ntd(prompt_ids=q)
                if not b["approx"]:
                    bd = {t: v["cont_cnt"] for t, v in b["result_by_token_id"].items() if t < 254}
                    bad += {t: c for t, (c, _) in a.items()} != bd
            res["mismatches"][f"n={L}"] = bad

        if L == PROMPT_LENS[-1]:  # batched ntd (one call, numpy out) vs one call per prompt
            flat = np.asarray([t for (q,) in na for t in q], dtype=np.int64)
            offs = np.arange(0, L * len(na) + 1, L, dtype=np.int64)
            for th in (1, 2):
                best = float("inf")
                for _ in range(max(R, 3)):
                    t = time.perf_counter()
                    ours.ntd_many((flat, offs), n_threads=th)
                    best = min(best, time.perf_counter() - t)
                qps = len(na) / best
                res["throughput"][f"ours ntd_many n={L} {th} thread(s) prompts/s"] = qps
                ig_p50 = res["latency_us"][f"ntd n={L}"].get("ig_p50")
                rows.append([f"ntd_many n={L}: {th} thread(s)", f"{qps:,.0f} prompts/s", "",
                             f"{1e6 / ig_p50:,.0f} /s" if ig_p50 else "", "",
                             f"{qps * ig_p50 / 1e6:.1f}x" if ig_p50 else ""])

    # ---------------------------------------------------------------- ∞-gram
    heads = windows(corpus, rng, nq, 25, 0)
    tails = windows(corpus, rng, nq, 25)
    ia = [(h + t[:25], t[25]) for h, t in zip(heads, tails)]
    bench("infgram_prob (50-byte prompt)", lambda q, t: ours.infgram_prob(q, t),
          (lambda q, t: ig.infgram_prob(prompt_ids=q, cont_id=t)) if ig else None, ia)
    bench("infgram_ntd (50-byte prompt)", lambda q: ours.infgram_ntd(q),
          (lambda q: ig.infgram_ntd(prompt_ids=q)) if ig else None, [(q,) for q, _ in ia])
    if ig:
        res["mismatches"]["infgram suffix_len"] = sum(
            ours.infgram_prob(q, t).suffix_len != ig.infgram_prob(prompt_ids=q, cont_id=t)["suffix_len"]
            for q, t in ia[:100])
    sl = [ours.infgram_prob(q, t).suffix_len for q, t in ia]
    res["infgram_suffix_len_median"] = statistics.median(sl)

    # ---------------------------------------------------------------- CNF
    ca = []
    while len(ca) < max(50, nq // 3):
        w = windows(corpus, rng, 1, 46, 0)[0]
        a, b = w[:6], w[40:46]
        ca.append(([[a], [b]],))
    bench("search_docs_cnf (2 clauses, maxnum=1)",
          lambda c: ours.search_docs_cnf(c, maxnum=1, context=50),
          (lambda c: ig.search_docs_cnf(cnf=c, maxnum=1, max_disp_len=100)) if ig else None, ca)
    bench("count_cnf (2 clauses)", lambda c: ours.count_cnf(c),
          (lambda c: ig.count_cnf(cnf=c)) if ig else None, ca)

    # ---------------------------------------------------------------- scoring
    text = []
    size = 0
    with open(args.score_file, encoding="utf-8") as fh:
        for line in fh:
            t = json.loads(line)["text"].encode("utf-8")
            text.append(t)
            size += len(t)
            if size >= args.score_tokens:
                break
    seqs = [np.frombuffer(t, dtype=np.uint8).astype(np.int64) for t in text]
    ntok = sum(len(s) for s in seqs)
    ours.infgram_logprobs_many(seqs[:2], n_threads=1)  # warm-up
    for th in (1, 2):
        best = float("inf")
        for _ in range(R):
            t = time.perf_counter()
            out = ours.infgram_logprobs_many(seqs, n_threads=th)
            best = min(best, time.perf_counter() - t)
        res["throughput"][f"ours infgram_logprobs {th} thread(s) tok/s"] = ntok / best
    allsl = np.concatenate([o.suffix_len for o in out])
    res["score_suffix_len_mean"] = float(allsl.mean())
    rows.append([f"score {ntok:,} tokens: 1 thread", f"{res['throughput']['ours infgram_logprobs 1 thread(s) tok/s']:,.0f} tok/s",
                 "", "", "", ""])
    rows.append(["score: 2 threads", f"{res['throughput']['ours infgram_logprobs 2 thread(s) tok/s']:,.0f} tok/s",
                 "", "", "", ""])
    if ig:
        x = [int(v) for v in seqs[0][:400]]
        t = time.perf_counter()
        for i in range(len(x)):
            ig.infgram_prob(prompt_ids=x[max(0, i - 500):i], cont_id=x[i])
        igr = len(x) / (time.perf_counter() - t)
        res["throughput"]["ig infgram_prob loop tok/s"] = igr
        rows.append(["score: infini-gram loop", "", "", f"{igr:,.0f} tok/s", "", ""])
        chk = ours.infgram_logprobs(x[:400])
        res["mismatches"]["score suffix_len vs ig (400 tok)"] = int(sum(
            int(chk.suffix_len[i]) != ig.infgram_prob(prompt_ids=x[:i], cont_id=x[i])["suffix_len"]
            for i in range(0, 400, 7)))

    print(table(rows, ["query", "ours p50 µs", "ours p99 µs", "ig p50 µs", "ig p99 µs", "speedup p50"]))
    print("mismatches:", res["mismatches"])
    print(f"median ∞-gram suffix length (50-byte prompts): {res['infgram_suffix_len_median']}; "
          f"mean suffix length when scoring: {res['score_suffix_len_mean']:.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
