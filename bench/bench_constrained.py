"""Constrained generation and SEAL retrieval (issue 22): measurement only.

1. ``cont``: continuations latency (``Index.continuations``, one prefix per
   call, Python call included) on the suffix-array and FM indexes of one
   corpus, for corpus prefixes of 1-8 tokens with <= 1,000 distinct
   continuations (p50 / p90 / p99), the empty prefix, and one cursor step
   (``Cursors.step``, batch 1 and 4).
2. ``gen``: the constraint's cost per generated token with SmolLM2-135M:
   wall time per new token, constrained vs unconstrained, greedy batch 1 and
   beam 4, and the processor's own time per call (the precise part: the
   model's time does not change under the constraint).
3. ``seal``: recall@1 / @10 of SEAL retrieval vs BM25 (``bm25s``) over the
   passages of shared/data's Python documentation (~120-word passages), for
   50 pseudo-questions (the leading words of a sentence of the answer
   passage: lexical cues both methods can use).

Every section prints the load average beside its figures (shared machine).

  python bench/bench_constrained.py cont --sa IDX_SA --fm IDX_FM
  python bench/bench_constrained.py gen --index IDX_SA
  python bench/bench_constrained.py seal --work /work/bench-data/seal
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from typing import Any, Dict, List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import import_infinigram  # noqa: E402

infinigram = import_infinigram()
from infinigram import continuations as C  # noqa: E402


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def pct(x: List[float]) -> Dict[str, float]:
    a = np.asarray(x)
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)),
            "n": int(len(a))}


def corpus_prefixes(ix: Any, n: int, seed: int = 1) -> List[List[int]]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        d = rng.randrange(ix.n_docs)
        L = ix.doc_length(d)
        if L < 10:
            continue
        m = rng.randint(1, 8)
        o = rng.randrange(0, L - m)
        out.append(ix.window(d, o, m, 0).tokens.tolist())
    return out


def cmd_cont(a: argparse.Namespace) -> Dict[str, Any]:
    sa, fm = infinigram.Index(a.sa), infinigram.Index(a.fm)
    assert C.has_reverse(fm), "build the FM index's reversed index first: infinigram reverse IDX"
    qs = corpus_prefixes(sa, a.n)
    sizes = sa.continuations_many(qs)
    keep = [q for i, q in enumerate(qs) if len(sizes[i]) <= 1000]
    res: Dict[str, Any] = {"prefixes": len(keep), "of": len(qs)}
    for name, ix in (("sa", sa), ("fm", fm)):
        for q in keep[:50]:
            ix.continuations(q)  # warm the pages
        lat = []
        for q in keep:
            t0 = time.perf_counter()
            ix.continuations(q)
            lat.append((time.perf_counter() - t0) * 1e6)
        res[name] = {"us": pct(lat), "load": load()}
        e = []
        for _ in range(5):
            t0 = time.perf_counter()
            c = ix.continuations([])
            e.append((time.perf_counter() - t0) * 1e3)
        res[name]["empty_ms"] = {"min": min(e), "median": float(np.median(e)), "distinct": len(c)}
        for B in (1, 4):
            cur = C.Cursors(ix, B)
            cur.step()
            steps = []
            for q in keep[:300]:
                cur.reset()
                cur.step([q[0]] * B)
                t0 = time.perf_counter()
                for t in q[1:]:
                    cur.step([t] * B)
                if len(q) > 1:
                    steps.append((time.perf_counter() - t0) * 1e6 / (len(q) - 1))
            res[name][f"cursor_step_B{B}_us"] = pct(steps)
        print(name, json.dumps(res[name]), flush=True)
    sizes_all = [len(sizes[i]) for i in range(len(qs))]
    res["distinct"] = pct(sizes_all)
    return res


def load_smollm2() -> Any:
    from infinigram.cli import _load_model

    return _load_model("smollm2")


PROMPTS = ["Quote the documentation about the dpkg command.", "What does git rebase do? Quote the manual.",
           "Explain the PostgreSQL VACUUM command, quoting the docs.", "How does bash expand variables?",
           "Quote the Linux kernel documentation about memory barriers."]


def cmd_gen(a: argparse.Namespace) -> Dict[str, Any]:
    import torch

    from infinigram.constrained import CorpusConstraint, _chat_ids

    tok, model = load_smollm2()
    torch.set_num_threads(a.threads)
    ix = infinigram.Index(a.index)
    res: Dict[str, Any] = {"index": a.index, "backend": ix.backend, "threads": a.threads}
    for mode, beams in (("greedy", 1), ("beam4", 4)):
        rows = {"plain": [], "constrained": [], "proc_ms_per_call": [], "loads": []}
        for rep in range(a.reps):
            for p in PROMPTS:
                ids = torch.tensor([_chat_ids(tok, p, True)])
                for kind in ("plain", "constrained"):
                    kw: Dict[str, Any] = dict(max_new_tokens=a.tokens, num_beams=beams, do_sample=False,
                                              pad_token_id=tok.pad_token_id, temperature=None, top_p=None,
                                              top_k=None, attention_mask=torch.ones_like(ids))
                    proc = None
                    if kind == "constrained":
                        proc = CorpusConstraint(ix, tok)
                        inner = proc.__call__
                        tt: List[float] = []

                        class Timed:
                            def __call__(self, i: Any, s: Any) -> Any:
                                t0 = time.perf_counter()
                                r = inner(i, s)
                                tt.append(time.perf_counter() - t0)
                                return r
                        kw["logits_processor"] = [Timed()]
                    with torch.no_grad():
                        t0 = time.perf_counter()
                        out = model.generate(ids, **kw)
                        dt = time.perf_counter() - t0
                    n = out.shape[1] - ids.shape[1]
                    rows[kind].append(dt / max(1, n))
                    if proc is not None:
                        rows["proc_ms_per_call"].append(1e3 * sum(tt) / max(1, len(tt)))
                rows["loads"].append(os.getloadavg()[0])
        plain, cons = float(np.median(rows["plain"])), float(np.median(rows["constrained"]))
        proc_ms = float(np.median(rows["proc_ms_per_call"]))
        res[mode] = {"plain_ms_per_token": 1e3 * plain, "constrained_ms_per_token": 1e3 * cons,
                     "ratio_wall": cons / plain, "processor_ms_per_step": proc_ms,
                     "ratio_model_plus_processor": (1e3 * plain + proc_ms) / (1e3 * plain),
                     "load_min_max": [min(rows["loads"]), max(rows["loads"])]}
        print(mode, json.dumps(res[mode]), flush=True)
    return res


def passages(path: str, words: int = 120) -> List[Dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            w = r["text"].split(" ")
            for k in range(0, len(w), words):
                t = " ".join(w[k:k + words]).strip()
                if len(t) > 200:
                    out.append({"text": t, "src": r.get("id", r.get("path")), "part": k // words})
    return out


def questions(ps: List[Dict[str, Any]], n: int, seed: int = 3) -> List[Any]:
    rng = random.Random(seed)
    out = []
    seen = set()
    while len(out) < n:
        i = rng.randrange(len(ps))
        if i in seen:
            continue
        sents = [s.strip() for s in re.split(r"(?<=[.?!])\s+", ps[i]["text"]) if len(s.split()) >= 10
                 and re.match(r"^[A-Z][a-z]", s.strip()) and not re.search(r"[*`:=|_<>{}]", s)]
        if not sents:
            continue
        s = rng.choice(sents)
        out.append((i, " ".join(s.split()[:10]) + "?"))
        seen.add(i)
    return out


def cmd_seal(a: argparse.Namespace) -> Dict[str, Any]:
    import bm25s

    from infinigram import seal

    import torch

    tok, model = load_smollm2()
    torch.set_num_threads(a.threads)
    ps = passages(a.data)
    os.makedirs(a.work, exist_ok=True)
    tpath = os.path.join(a.work, "tokenizer.json")
    tok.backend_tokenizer.save(tpath)
    src = os.path.join(a.work, "passages.jsonl")
    with open(src, "w", encoding="utf-8") as fh:
        for k, p in enumerate(ps):
            fh.write(json.dumps({"text": p["text"], "pid": k, "src": p["src"]}) + "\n")
    idx = os.path.join(a.work, "idx")
    if not os.path.exists(idx):
        infinigram.build(src, idx, tokenizer=tpath, progress=False)
    ix = infinigram.Index(idx)
    qs = questions(ps, a.n)
    retr = bm25s.BM25()
    retr.index(bm25s.tokenize([p["text"] for p in ps], stopwords="en", show_progress=False), show_progress=False)
    res: Dict[str, Any] = {"passages": len(ps), "questions": len(qs), "beams": a.beams, "tokens": a.tokens}
    hits = {"seal": [0, 0], "bm25": [0, 0]}
    t_seal = []
    for i, q in qs:
        docs, _ = retr.retrieve(bm25s.tokenize([q], stopwords="en", show_progress=False), k=10, show_progress=False)
        got = [int(d) for d in docs[0]]
        hits["bm25"][0] += got[:1] == [i]
        hits["bm25"][1] += i in got
        t0 = time.perf_counter()
        r = seal.search(model, tok, ix, q, k=10, num_beams=a.beams, max_new_tokens=a.tokens,
                        prompt="Quote a passage of the Python documentation that answers: {query}")
        t_seal.append(time.perf_counter() - t0)
        got = [int(x.metadata["pid"]) for x in r]
        hits["seal"][0] += got[:1] == [i]
        hits["seal"][1] += i in got
        print(f"{len(t_seal)}/{len(qs)} seal r@1 {hits['seal'][0]} r@10 {hits['seal'][1]}  bm25 r@1 {hits['bm25'][0]} "
              f"r@10 {hits['bm25'][1]}  {t_seal[-1]:.1f} s", file=sys.stderr, flush=True)
    for k, (h1, h10) in hits.items():
        res[k] = {"recall@1": h1 / len(qs), "recall@10": h10 / len(qs)}
    res["seal_seconds_per_query"] = float(np.median(t_seal))
    res["load"] = load()
    res["examples"] = [q for _, q in qs[:3]]
    print(json.dumps(res, indent=1))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cont")
    c.add_argument("--sa", required=True)
    c.add_argument("--fm", required=True)
    c.add_argument("--n", type=int, default=2000)
    g = sub.add_parser("gen")
    g.add_argument("--index", required=True)
    g.add_argument("--tokens", type=int, default=24)
    g.add_argument("--reps", type=int, default=1)
    g.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("seal")
    s.add_argument("--data", default="/work/shared/data/english_python311_docs.jsonl")
    s.add_argument("--work", default="/work/bench-data/seal")
    s.add_argument("--n", type=int, default=50)
    s.add_argument("--beams", type=int, default=5)
    s.add_argument("--tokens", type=int, default=8)
    s.add_argument("--threads", type=int, default=1, help="torch threads (1: 2 threads on a shared 2-core machine "
                                                          "ran generation ~8x slower)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    res = {"cont": cmd_cont, "gen": cmd_gen, "seal": cmd_seal}[a.cmd](a)
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
