"""Corpus-constrained decoding (infinigram.constrained) and SEAL retrieval
(infinigram.seal).

* The processor's allowed sets equal brute-force continuation sets at every
  step (random logits: greedy-like and beam-like reordering, batch 3, SA and
  FM, sliding window, restart, EOS), no model needed beyond torch.
* With SmolLM2-135M on an index of shared/data documents built with its own
  tokenizer: every constrained output (greedy, beam 4, sampling) is a corpus
  substring; a tokenizer that is not the index's is refused; SEAL search.
* SEAL's n-gram weight and document scores equal a slow reference of the
  formula (docs/QUERIES.md).

Neural policy as tests/test_speculative.py (conftest.require_neural).
"""

from __future__ import annotations

import math
import random
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest

from conftest import real_records, require_neural, synthetic_records, write_jsonl

import infinigram
from infinigram import continuations as C
from infinigram.errors import InfinigramError

pytestmark = pytest.mark.neural
MAX_NEW = 6


# ---------------------------------------------------------------- brute force
def doc_lists(ix) -> List[List[int]]:
    return [ix.get_doc(i).tokens.tolist() for i in range(ix.n_docs)]


def brute_next(docs: List[List[int]], q: Sequence[int]) -> set:
    q = list(q)
    m = len(q)
    out = set()
    for d in docs:
        for i in range(len(d) - m):
            if d[i:i + m] == q:
                out.add(d[i + m])
    return out


def occurs(docs: List[List[int]], q: Sequence[int]) -> bool:
    q = list(q)
    return any(d[i:i + len(q)] == q for d in docs for i in range(len(d) - len(q) + 1))


# ------------------------------------------------------------ no-model masks
@pytest.fixture(scope="module", params=["sa", "fm"])
def small(request, tmp_path_factory):
    require_neural()
    d = tmp_path_factory.mktemp("cc_" + request.param)
    src = write_jsonl(str(d / "c.jsonl"), synthetic_records())
    kw = dict(sa_sample=4, isa_sample=4) if request.param == "fm" else {}
    infinigram.build(src, str(d / "idx"), progress=False, backend=request.param, shard_size=300, **kw)
    if request.param == "fm":
        C.build_reverse(str(d / "idx"))
    ix = infinigram.Index(str(d / "idx"))
    assert ix.n_shards > 1
    return ix, doc_lists(ix)


EOS = 10  # "\n" in a bytes index; used as EOS id by these tests


def _run(proc, steps: int, B: int, seed: int, beam_like: bool, V: int = 300):
    """Drives the processor like a decoding loop with random logits; returns the rows."""
    import torch

    rng = np.random.default_rng(seed)
    ids = torch.tensor([[1, 2, 3]] * B)
    for _ in range(steps):
        sc = torch.from_numpy(rng.standard_normal((B, V)).astype(np.float32))
        out = proc(ids, sc)
        assert torch.isfinite(out).any(-1).all()  # something is always allowed
        if beam_like:  # rows drawn from the parents with repetition and reordering (as beam search does)
            par = rng.integers(0, B, size=B)
            nxt = []
            for r, p in enumerate(par.tolist()):
                allowed = torch.isfinite(out[p]).nonzero().flatten().tolist()
                nxt.append(int(rng.choice(allowed)))
            ids = torch.cat([ids[torch.from_numpy(par)], torch.tensor(nxt)[:, None]], 1)
        else:
            ids = torch.cat([ids, out.argmax(-1)[:, None]], 1)
    return ids


def _check_history(proc, docs, window=None, eos_always=False):
    for step in proc.history:
        for span, allowed in step:
            q = span if window is None else span[max(0, len(span) - (window - 1)):]
            want = brute_next(docs, q)
            if eos_always or not want:
                want = want | {EOS}
            if proc.allow_restart and span:
                want = want | {proc.restart}
            assert set(allowed.tolist()) == want, (span, sorted(want)[:10], allowed[:10])


@pytest.mark.parametrize("beam_like", [False, True])
def test_masks_equal_brute_force(small, beam_like):
    from infinigram.constrained import CorpusConstraint

    ix, docs = small
    proc = CorpusConstraint(ix, None, check=False, eos_token_id=EOS, record=True)
    ids = _run(proc, 8, 3, seed=1 + beam_like, beam_like=beam_like)
    _check_history(proc, docs)
    # every output row (up to an EOS) is a corpus substring
    for row in ids[:, 3:].tolist():
        span = row[:row.index(EOS)] if EOS in row else row
        assert not span or occurs(docs, span)


def test_sliding_window_restart_eos(small):
    from infinigram.constrained import CorpusConstraint

    ix, docs = small
    proc = CorpusConstraint(ix, None, check=False, eos_token_id=EOS, window=3, allow_eos=True, record=True)
    _run(proc, 10, 2, seed=3, beam_like=True)
    _check_history(proc, docs, window=3, eos_always=True)
    proc = CorpusConstraint(ix, None, check=False, eos_token_id=[EOS], allow_restart=True, restart_token_id=32,
                            record=True)
    ids = _run(proc, 10, 2, seed=4, beam_like=False)
    _check_history(proc, docs)
    from infinigram.constrained import split_spans
    for row in ids[:, 3:].tolist():
        row = row[:row.index(EOS)] if EOS in row else row
        for s in split_spans(row, 32):
            assert occurs(docs, s)


def test_fm_without_reverse_is_refused(tmp_path):
    require_neural()
    from infinigram.constrained import CorpusConstraint

    src = write_jsonl(str(tmp_path / "c.jsonl"), synthetic_records()[:5])
    infinigram.build(src, str(tmp_path / "idx"), progress=False, backend="fm")
    ix = infinigram.Index(str(tmp_path / "idx"))
    proc = CorpusConstraint(ix, None, check=False, eos_token_id=EOS)
    import torch

    with pytest.raises(InfinigramError, match="infinigram reverse"):
        proc(torch.tensor([[1, 2]]), torch.zeros(1, 256))


# ------------------------------------------------------------ SEAL formula
def slow_weight(logprob: float, count: int, n_tokens: int, smoothing: float = 5.0) -> float:
    """The paper's w(n, q) written out with probabilities (not logs)."""
    if count == 0:
        return 0.0
    p_q = math.exp(logprob)
    p_n = (count + smoothing) / (n_tokens + smoothing)
    return max(0.0, math.log((p_q * (1 - p_n)) / (p_n * (1 - p_q))))


def slow_doc_scores(docs: List[List[int]], weighted: Dict[Tuple[int, ...], float], alpha: float,
                    beta: float) -> Dict[int, float]:
    """Intersective scores of every document by plain scanning."""
    out = {}
    for di, d in enumerate(docs):
        occ = []
        for ng, w in weighted.items():
            for i in range(len(d) - len(ng) + 1):
                if tuple(d[i:i + len(ng)]) == ng:
                    occ.append((w, len(ng), ng, i))
        occ.sort(key=lambda x: (-x[0], -x[1], x[2], x[3]))
        used = [False] * len(d)
        seen, covered, total = set(), set(), 0.0
        for w, L, ng, i in occ:
            if any(used[i:i + L]):
                continue
            for j in range(i, i + L):
                used[j] = True
            if ng in seen:
                continue
            seen.add(ng)
            toks = set(ng)
            total += w ** alpha * ((1 - beta) + beta * len(toks - covered) / len(toks))
            covered |= toks
        if total > 0:
            out[di] = total
    return out


def test_seal_weight_equals_formula():
    from infinigram.seal import ngram_weight

    rng = random.Random(5)
    for _ in range(300):
        n = rng.randint(10, 10 ** 7)
        c = rng.randint(0, n)
        lp = -rng.random() * 30
        assert ngram_weight(lp, c, n) == pytest.approx(slow_weight(lp, c, n), rel=1e-6, abs=1e-6)


def test_seal_aggregate_equals_slow_reference(small):
    from infinigram.seal import NGram, aggregate

    ix, docs = small
    rng = random.Random(9)
    weighted = {}
    full = [d for d in docs if len(d) > 6]
    for _ in range(12):
        d = rng.choice(full)
        L = rng.randint(1, 5)
        i = rng.randint(0, len(d) - L)
        weighted[tuple(d[i:i + L])] = rng.choice([0.5, 1.0, 2.0, 3.5, rng.random() * 4])
    ngrams = [NGram(k, "", 0.0, ix.count(list(k)), w) for k, w in weighted.items()]
    got = aggregate(ix, ngrams, k=ix.n_docs, alpha=2.0, beta=0.8, max_occurrences=10 ** 6, max_docs=10 ** 6)
    want = slow_doc_scores(docs, weighted, 2.0, 0.8)
    assert {r.doc_ix: pytest.approx(r.score) for r in got} == want
    assert [r.score for r in got] == sorted((r.score for r in got), reverse=True)
    for r in got:  # kept spans hold their n-gram and do not overlap
        spans = sorted(sp for _, _, sps in r.ngrams for sp in sps)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
        for ng, _, sps in r.ngrams:
            assert all(tuple(docs[r.doc_ix][a:b]) == ng for a, b in sps)
        assert "[[" in r.highlighted and r.metadata == ix.get_doc(r.doc_ix).metadata


# ------------------------------------------------------------ with SmolLM2
@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One torch thread here: 2 threads on a shared 2-core machine ran 4-20x
    slower (bench/README.md); restored for the other modules."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def smol_index(smollm2, tmp_path_factory):
    """shared/data documents indexed with SmolLM2's own tokenizer (saved from the GGUF's)."""
    _, tok = smollm2
    d = tmp_path_factory.mktemp("smol")
    tok.backend_tokenizer.save(str(d / "tokenizer.json"))
    src = write_jsonl(str(d / "c.jsonl"), real_records(12, 12000))
    infinigram.build(src, str(d / "idx"), tokenizer=str(d / "tokenizer.json"), progress=False)
    ix = infinigram.Index(str(d / "idx"))
    return ix, doc_lists(ix)


PROMPT = "Quote one sentence of the Python documentation about exceptions."


def test_outputs_are_corpus_substrings(smollm2, smol_index):
    from infinigram.constrained import generate

    model, tok = smollm2
    ix, docs = smol_index
    for kw in (dict(), dict(num_beams=4, num_return_sequences=4), dict(do_sample=True, num_return_sequences=2, seed=3)):
        outs = generate(model, tok, ix, "The exception", MAX_NEW, chat=False, **kw)
        assert len(outs) == kw.get("num_return_sequences", 1)
        for g in outs:
            assert g.tokens and g.spans == [g.tokens]
            assert all(c > 0 for c in g.counts), (kw, g.text)
            assert ix.count(g.tokens) > 0 and occurs(docs, g.tokens)


def test_model_masks_and_batch(smollm2, smol_index):
    """A batch of two prompts (left padding) under greedy search: the recorded
    allowed sets equal brute force at sampled steps."""
    import torch

    from infinigram.constrained import CorpusConstraint

    model, tok = smollm2
    ix, docs = smol_index
    proc = CorpusConstraint(ix, tok, record=True)
    tok.padding_side = "left"
    enc = tok(["The exception", "Lists are"], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=4, logits_processor=[proc], do_sample=False,
                             pad_token_id=tok.pad_token_id, temperature=None, top_p=None, top_k=None)
    for step in proc.history[1:]:  # (the first step allows the corpus vocabulary: checked below)
        for span, allowed in step:
            want = brute_next(docs, span) or {tok.eos_token_id}
            assert set(allowed.tolist()) == want
    first = {t for d in docs for t in d}
    assert set(proc.history[0][0][1].tolist()) == first
    for row in out[:, enc["input_ids"].shape[1]:].tolist():
        assert occurs(docs, [t for t in row if t != tok.eos_token_id])


def test_tokenizer_mismatch_is_refused(smollm2, tmp_path):
    from infinigram.constrained import CorpusConstraint

    _, tok = smollm2
    src = write_jsonl(str(tmp_path / "c.jsonl"), synthetic_records()[:5])
    infinigram.build(src, str(tmp_path / "idx"), progress=False)  # a bytes index
    with pytest.raises(InfinigramError, match="not the index's"):
        CorpusConstraint(infinigram.Index(str(tmp_path / "idx")), tok)


def test_seal_search(smollm2, smol_index):
    from infinigram import seal

    model, tok = smollm2
    ix, docs = smol_index
    ngr = seal.generate_ngrams(model, tok, ix, "How do I report a bug?", num_beams=3, max_new_tokens=4)
    assert ngr and all(occurs(docs, k) and lp < 0 for k, lp in ngr.items())
    scored = seal.score_ngrams(ix, tok, ngr)
    for n in scored:
        assert n.weight == pytest.approx(slow_weight(n.logprob, n.count, ix.n_tokens), abs=1e-6)
    res = seal.aggregate(ix, scored, k=5)
    want = slow_doc_scores(docs, {n.tokens: n.weight for n in scored if n.weight > 0}, 2.0, 0.8)
    assert [r.doc_ix for r in res] == sorted(want, key=lambda d: (-want[d], d))[:5]
    for r in res:
        assert r.score == pytest.approx(want[r.doc_ix])


def test_server_routes(smollm2, smol_index):
    """POST /v1/{index}/generate and /seal answer as the Python API does;
    without a model they say how to serve one (422)."""
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from infinigram.constrained import generate
    from infinigram.server import create_app
    from infinigram.server.v1 import set_model

    model, tok = smollm2
    ix, docs = smol_index
    app = create_app({"smol": ix.path})
    with TestClient(app) as c:
        r = c.post("/v1/smol/generate", json={"prompt": PROMPT, "max_new_tokens": 3})
        assert r.status_code == 422 and "--model" in r.json()["error"]["message"]
        set_model(app, (tok, model))
        r = c.post("/v1/smol/generate", json={"prompt": PROMPT, "max_new_tokens": 3, "num_beams": 2})
        assert r.status_code == 200, r.text
        outs = r.json()["outputs"]
        want = generate(model, tok, ix, PROMPT, 3, num_beams=2, num_return_sequences=2)
        assert [o["tokens"] for o in outs] == [g.tokens for g in want]
        assert all(s["count"] > 0 for o in outs for s in o["spans"])
        r = c.post("/v1/smol/seal", json={"query": "How do I report a bug?", "k": 3, "num_beams": 2,
                                           "max_new_tokens": 3, "context": 80})
        assert r.status_code == 200, r.text
        for d in r.json()["documents"]:
            assert d["score"] > 0 and d["ngrams"] and "highlighted" in d
        assert c.post("/v1/smol/seal", json={"query": "x", "k": 0}).status_code == 422
