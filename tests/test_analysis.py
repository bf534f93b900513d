"""n-gram coverage / creativity / membership metrics: brute force, a
re-implementation of the paper's published two-pointer algorithm, and
hand-worked examples from the paper's definitions."""

from __future__ import annotations

import importlib.util
import random

import numpy as np
import pytest

from infinigram.analysis import (
    auroc,
    coverage,
    creativity_index,
    longest_common_subsequence,
    longest_common_substring,
    membership_scores,
    roc_points,
    tpr_at_fpr,
)
from infinigram.analysis.matches import covered_mask, maximal_starts
from infinigram.analysis.reference import MissingDependencyError, tokenize_units


# ------------------------------------------------ published algorithm (reference)
def _occurs(span, ref):
    k = len(span)
    return any(ref[j:j + k] == span for j in range(len(ref) - k + 1))


def published_spans(tokens, ref, min_ngram):
    """compute_ngram_coverage.find_exact_match, with 'occurs in the reference' as a word-sublist test."""
    spans = []
    first, second = 0, min_ngram
    while second <= len(tokens):
        span = tokens[first:second]
        if _occurs(span, ref):
            new = (first, second)
            if spans and new[0] <= spans[-1][0] and spans[-1][1] <= new[1]:
                spans[-1] = new
            else:
                spans.append(new)
            second += 1
        else:
            if second - first > min_ngram:
                first += 1
            else:
                first += 1
                second += 1
    return spans


def published_coverage(tokens, spans, min_gram, ref_length, unique):
    """compute_creativity_index.get_ngram_coverage."""
    flags = [False] * len(tokens)
    seen = set()
    for a, b in spans:
        key = tuple(tokens[a:b])
        if b - a >= min_gram and (not unique or key not in seen):
            flags[a:b] = [True] * (b - a)
        seen.add(key)
    c = sum(flags)
    if c == 0:
        return 0.0, 0.0, 0.0
    radj = max(len(flags), ref_length)
    return c / len(flags), c / radj, 2 * c / (len(flags) + radj)


def _words(rng, vocab, n):
    return " ".join(rng.choice(vocab) for _ in range(n))


def test_matches_published_algorithm():
    rng = random.Random(11)
    vocab = ["the", "cat", "sat", "on", "mat", "a", "dog", ",", "."]
    for trial in range(60):
        ref = _words(rng, vocab, rng.randint(0, 40))
        # generations: mostly copied pieces of ref plus noise
        rw = ref.split()
        gen = []
        for _ in range(rng.randint(1, 4)):
            if rw and rng.random() < 0.7:
                a = rng.randrange(len(rw))
                gen += rw[a:a + rng.randint(1, 12)]
            gen += [rng.choice(vocab) for _ in range(rng.randint(0, 3))]
        gen_s = " ".join(gen)
        toks, rtoks = tokenize_units(gen_s, "regex"), tokenize_units(ref, "regex")
        for min_ngram in (1, 2, 3):
            spans = published_spans(toks, rtoks, min_ngram)
            for unique in (False, True):
                for n in (1, 2, 3, 5):
                    want = published_coverage(toks, spans, n, len(rtoks), unique)
                    got = coverage(gen_s, ref, n, unit="regex", unique=unique, floor=min_ngram)
                    assert (got.gen, got.ref, got.total) == pytest.approx(want), (gen_s, ref, n, unique)
                want_ci = [sum(published_coverage(toks, spans, n, len(rtoks), unique)[k] for n in range(2, 7))
                           for k in range(3)]
                ci = creativity_index(gen_s, ref, 2, 6, unit="regex", unique=unique, floor=min_ngram)
                assert [ci["gen_length"], ci["ref_length"], ci["total_length"]] == pytest.approx(want_ci)


def test_coverage_brute_force_chars():
    rng = random.Random(5)
    for _ in range(40):
        ref = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 50)))
        gen = "".join(rng.choice("abcd ") for _ in range(rng.randint(0, 40)))
        for n in (1, 2, 4, 7):
            cov = [False] * len(gen)
            for a in range(len(gen)):
                for b in range(a + n, len(gen) + 1):
                    if gen[a:b] in ref:
                        cov[a:b] = [True] * (b - a)
            got = coverage(gen, ref, n, unit="chars")
            assert got.covered == sum(cov)
            assert got.gen == pytest.approx(sum(cov) / len(gen) if sum(cov) else 0.0)


def test_hand_worked_example():
    ref = "the cat sat on the mat"
    gen = "the cat sat on a mat"
    c = coverage(gen, ref, 3, unit="regex")
    # "the cat sat on" (4 of 6 words) occurs; "a mat", "on a" do not
    assert (c.covered, c.length, c.ref_length) == (4, 6, 6)
    assert (c.gen, c.ref, c.total) == pytest.approx((4 / 6, 4 / 6, 8 / 12))
    assert c.spans == [(0, 4)]
    # n = 2, 3, 4 cover 4 words each, n = 5 nothing: 3 * 4/6
    assert creativity_index(gen, ref, 2, 5, unit="regex")["gen_length"] == pytest.approx(2.0)
    # longer reference: ref normalisation uses max(len(gen), len(ref)) = 12
    c2 = coverage(gen, ref + " and the dog sat", 3, unit="regex")
    assert c2.ref == pytest.approx(4 / 10) and c2.total == pytest.approx(8 / 16)
    # unique: the repeated span "the cat sat" is counted once
    g3 = "the cat sat x the cat sat"
    assert coverage(g3, ref, 3, unit="regex").covered == 6
    assert coverage(g3, ref, 3, unit="regex", unique=True).covered == 3
    # nothing covered: all three normalisations are 0 (published convention)
    z = coverage("dog dog dog", ref, 1, unit="regex")
    assert (z.gen, z.ref, z.total) == (0.0, 0.0, 0.0)


def test_coverage_against_index(real_bytes):
    idx = real_bytes.index
    text = real_bytes.records[2]["text"][:300] + "QQQQ##" + "zz" * 10
    c = coverage(text, idx, 20)
    ms = idx.longest_matches(text).length
    assert c.covered == covered_mask(ms, 20).sum() >= 300
    assert c.unit == "tokens" and c.ref is None
    c2 = coverage(text, idx, 20, ref_length=400)
    assert c2.ref == pytest.approx(c.covered / max(len(ms), 400))


def test_span_helpers_brute():
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = int(rng.integers(0, 30))
        # valid matching statistics: ms[i+1] >= ms[i] - 1, ms[i] <= m - i
        ms = np.zeros(m, dtype=np.int64)
        for i in range(m - 1, -1, -1):
            lo = max(0, (ms[i - 1] - 1) if i > 0 else 0)
            ms[i] = int(rng.integers(0, m - i + 1))
        for i in range(1, m):
            ms[i] = max(ms[i], ms[i - 1] - 1)
        for n in (1, 2, 3):
            want = [any(ms[a] >= n and a <= j < a + ms[a] for a in range(j + 1)) for j in range(m)]
            assert covered_mask(ms, n).tolist() == want
        spans = {(i, i + int(ms[i])) for i in range(m) if ms[i] > 0}
        maxi = sorted(s for s in spans if not any(t != s and t[0] <= s[0] and s[1] <= t[1] for t in spans))
        assert [(int(i), int(i + ms[i])) for i in maximal_starts(ms)] == maxi


def test_lcs():
    rng = random.Random(2)

    def dp_subseq(a, b):
        t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(len(a)):
            for j in range(len(b)):
                t[i + 1][j + 1] = t[i][j] + 1 if a[i] == b[j] else max(t[i][j + 1], t[i + 1][j])
        return t[-1][-1]

    def brute_substr(a, b):
        return max([k for i in range(len(a)) for k in range(1, len(a) - i + 1) if a[i:i + k] in b] or [0])

    for _ in range(80):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        assert longest_common_subsequence(list(a), list(b)) == dp_subseq(a, b)
        assert longest_common_substring(a, b) == brute_substr(a, b)
    assert longest_common_subsequence("the cat sat on the mat", "the dog sat on a mat", unit="regex") == 4
    assert longest_common_substring("xx hello world", "hello there world") == len("hello ")


def test_roc_hand_worked():
    y = [1, 1, 0, 0]
    assert auroc(y, [0.9, 0.4, 0.6, 0.1]) == pytest.approx(0.75)
    assert auroc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    # pos 0.9 0.8 0.3, neg 0.7 0.2 0.1 0.05: 11 of 12 pairs ordered
    y = [1, 1, 1, 0, 0, 0, 0]
    s = [0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.05]
    assert auroc(y, s) == pytest.approx(11 / 12)
    fpr, tpr, _ = roc_points(y, s)  # collinear tail points dropped as sklearn does
    assert fpr.tolist() == pytest.approx([0, 0, 0, 0.25, 0.25, 1])
    assert tpr.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert tpr_at_fpr(y, s, 0.05) == pytest.approx(2 / 3)
    assert tpr_at_fpr(y, s, 0.25) == pytest.approx(1.0)
    # drop_intermediate matters: three tie groups of (1 member, 1 non-member)
    y2, s2 = [1, 0, 1, 0, 1, 0], [0.9, 0.9, 0.8, 0.8, 0.7, 0.7]
    assert tpr_at_fpr(y2, s2, 0.7) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        auroc([1, 1], [0.1, 0.2])


def test_membership_scores_end_to_end():
    rng = random.Random(4)
    vocab = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi".split()
    cands, gens, labels = [], [], []
    for k in range(12):
        cand = " ".join(rng.choice(vocab) for _ in range(40))
        member = k % 2 == 0
        g = []
        for _ in range(4):
            if member:
                w = cand.split()
                a = rng.randrange(20)
                g.append(" ".join(w[a:a + 15] + [rng.choice(vocab) for _ in range(3)]))
            else:
                g.append(" ".join(rng.choice(vocab) for _ in range(18)))
        cands.append(cand)
        gens.append(g)
        labels.append(1 if member else 0)
    res = membership_scores(cands, gens, labels, unit="regex")
    assert res.unit == "regex" and len(res.rows) == 12
    row = res.rows[0]
    assert len(row["coverages_gen_length"]) == 4
    assert row["Max_coverages_gen_length"] == max(row["coverages_gen_length"])
    assert row["Median_creativities_total_length_unique"] == pytest.approx(
        float(np.median(row["creativities_total_length_unique"])))
    for key in ("Mean_coverages_gen_length", "Max_creativities_gen_length", "Max_longest_sublist_word"):
        assert res.metrics[key]["roc_auc"] == pytest.approx(1.0)
        assert res.metrics[key]["tpr_at_1.0_fpr"] == pytest.approx(1.0)
    # per-generation values agree with the standalone functions
    c = coverage(gens[0][1], cands[0], 3, unit="regex", floor=3)
    assert row["coverages_total_length"][1] == pytest.approx(c.total)
    assert row["longest_substring_char"][1] == longest_common_substring(gens[0][1], cands[0])
    assert row["lcs_word"][1] == longest_common_subsequence(gens[0][1], cands[0], unit="regex")


def test_words_unit_optional():
    have = importlib.util.find_spec("nltk") is not None and importlib.util.find_spec("unidecode") is not None
    if have:
        c = coverage("Hello, world! café", "hello , world ! cafe", 1)
        assert c.unit == "words" and c.length == 5
    else:
        with pytest.raises(MissingDependencyError, match="pip install"):
            coverage("a b c", "a b c")


# ------------------------------------------------------------- perplexity
def test_perplexity_precomputed(real_bytes, tmp_path):
    from infinigram.analysis.perplexity import interpolate, perplexity, tune_lambda

    idx = real_bytes.index
    texts = [r["text"][:800] for r in real_bytes.records[:6]]
    base = perplexity(idx, texts)
    assert base["tokens"] == sum(len(t.encode()) for t in texts) and "ppl_neural" not in base
    # a flat "neural" model: 1/100 per byte
    neural = [np.full(len(t.encode()), np.log(0.01)) for t in texts]
    res = perplexity(idx, texts, neural_logprobs=neural)
    assert res["lambda_tuned"] and 0 < res["lambda"] < 1
    assert res["ppl_neural"] == pytest.approx(100.0)
    assert res["ppl_interpolated"] < res["ppl_neural"]
    # the same values from a .npy file, with a given lambda
    np.save(tmp_path / "n.npy", np.concatenate(neural))
    r2 = perplexity(idx, texts, neural_logprobs=str(tmp_path / "n.npy"), lam=res["lambda"])
    assert r2["eval_texts"] == len(texts) and r2["lambda"] == res["lambda"]
    with pytest.raises(ValueError, match="not aligned"):
        perplexity(idx, texts, neural_logprobs=[a[:-1] for a in neural])
    # interpolate / tune_lambda by hand: p_inf = 1 or 0, p_neural = 0.5
    li, ln = np.array([0.0, -np.inf]), np.log(np.array([0.5, 0.5]))
    assert np.exp(interpolate(li, ln, 0.5)).tolist() == pytest.approx([0.75, 0.25])
    assert tune_lambda(li, ln) == 0.0  # (1+l)/2 * (1-l)/2 is largest at l = 0
    li3, ln3 = np.array([0.0, 0.0, -np.inf]), np.log(np.full(3, 0.5))
    assert tune_lambda(li3, ln3) == pytest.approx(1 / 3, abs=0.01)  # argmax 2 ln(1+l) + ln(1-l) = 1/3


@pytest.mark.neural
def test_perplexity_smollm2_interpolation(tmp_path_factory, smollm2):
    """End to end with a real small LM (SmolLM2-135M, CPU): interpolating the
    ∞-gram lowers perplexity on held-out code from the indexed domain."""
    import os

    from conftest import CODE, read_jsonl_head, write_jsonl

    import infinigram
    from infinigram.analysis.perplexity import perplexity

    if not os.path.exists(CODE):
        pytest.fail("code corpus not found (the shared test corpora are required: shared/data beside the repository, or set INFINIGRAM_TEST_DATA)", pytrace=False)
    recs = read_jsonl_head(CODE, 140, 40000)
    train, held = recs[:-6], recs[-6:]
    d = tmp_path_factory.mktemp("ppl")
    infinigram.build(write_jsonl(str(d / "c.jsonl"), train), str(d / "idx"), progress=False)
    idx = infinigram.Index(str(d / "idx"))
    lm, tok = smollm2
    model = (tok, lm)  # perplexity's (tokenizer, model) pair
    texts = [r["text"][:800] for r in held]
    res = perplexity(idx, texts, model=model)
    assert res["lambda_tuned"] and res["ppl_neural"] > 1
    assert res["ppl_interpolated"] < res["ppl_neural"], res


def test_perplexity_cli(real_bytes, tmp_path, capsys):
    import json

    from conftest import write_jsonl
    from infinigram.cli import main

    texts = [{"text": r["text"][:300]} for r in real_bytes.records[:4]]
    src = write_jsonl(str(tmp_path / "t.jsonl"), texts)
    np.save(tmp_path / "n.npy", np.full(sum(len(t["text"].encode()) for t in texts), np.log(0.02)))
    assert main(["perplexity", real_bytes.path, src, "--neural-logprobs", str(tmp_path / "n.npy"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["ppl_neural"] == pytest.approx(50.0) and res["ppl_interpolated"] <= res["ppl_neural"]
    with pytest.raises(SystemExit):
        main(["mia", src, "--unit", "bogus"])
