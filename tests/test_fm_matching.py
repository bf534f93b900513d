"""Matching statistics, maximal matches and contamination on the FM-index
backend, cross-checked against the suffix-array backend on the same corpora
(u8 and u16, one and several shards)."""

from __future__ import annotations

import json
from typing import Any, Dict

import numpy as np
import pytest

import infinigram
from infinigram.analysis import contamination_scores

TEXTS = [
    "the cat sat on the mat. the cat ate the rat.",
    "a man a plan a canal panama",
    "mississippi missouri mississauga",
    "abracadabra abracadabra cadabra",
] + [f"document {i}: the quick brown fox {i % 7} jumps over {i % 5} lazy dogs" for i in range(30)]


def _build(tmp_path_factory, name: str, tokenizer: str = "bytes", **kw: Any):
    d = tmp_path_factory.mktemp(name)
    src = d / "c.jsonl"
    src.write_text("".join(json.dumps({"text": t, "k": i}) + "\n" for i, t in enumerate(TEXTS)))
    sa = infinigram.build([str(src)], str(d / "sa"), tokenizer=tokenizer, progress=False, shard_size=None)
    assert sa["backend"] == "sa"
    infinigram.build([str(src)], str(d / "fm"), tokenizer=tokenizer, progress=False, backend="fm", **kw)
    return infinigram.Index(str(d / "sa")), infinigram.Index(str(d / "fm"))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Dict[str, Any]:
    return {
        "u8-1shard": _build(tmp_path_factory, "m1", shard_size=None),
        "u8-3shards": _build(tmp_path_factory, "m3", shard_size=400, wt_block_bits=5),
    }


PROBES = [
    "the cat sat on the rat and a plan a canal",
    "mississippi abracadabra panama lazy dogs",
    "zzz qqq the quick brown fox 3 jumps over 2 lazy dogs zzz",
    "x",
    "",
]


@pytest.mark.parametrize("name", ["u8-1shard", "u8-3shards"])
def test_longest_matches_equal_sa_backend(pairs, name):
    sa, fm = pairs[name]
    assert fm.manifest["backend"] == "fm"
    if name == "u8-3shards":
        assert fm.n_shards >= 3
    for probe in PROBES:
        a, b = sa.longest_matches(probe), fm.longest_matches(probe)
        assert a.length.tolist() == b.length.tolist(), probe
        assert a.count.tolist() == b.count.tolist(), probe
        # the FM occurrence is a real one: the document holds the span there
        toks = np.asarray(sa.encode(probe), dtype=np.int64)
        for i, (L, d, o) in enumerate(zip(b.length.tolist(), b.doc_ix.tolist(), b.offset.tolist())):
            if L == 0:
                assert d == -1 and o == -1
                continue
            doc = sa.get_doc(d).tokens.astype(np.int64)
            assert doc[o:o + L].tolist() == toks[i:i + L].tolist()


def test_longest_matches_random_against_brute_force(pairs):
    sa, fm = pairs["u8-3shards"]
    corpus = [t.encode() for t in TEXTS]
    rng = np.random.default_rng(3)
    for _ in range(30):
        src = TEXTS[int(rng.integers(len(TEXTS)))].encode()
        a = int(rng.integers(len(src)))
        probe = bytes(src[a:a + int(rng.integers(1, 20))]) + bytes(rng.choice(list(b"abcxyz "), 5).tolist())
        got = fm.longest_matches(list(probe))
        for i in range(len(probe)):
            best = 0
            for L in range(1, len(probe) - i + 1):
                if any(probe[i:i + L] in d for d in corpus):
                    best = L
                else:
                    break
            assert got.length[i] == best, (probe, i)


def test_maximal_matches_and_contamination_on_fm(pairs):
    sa, fm = pairs["u8-3shards"]
    probe = "zzz the quick brown fox 3 jumps over 2 lazy dogs zzz mississippi"
    ma = [(m.start, m.end, m.count) for m in sa.maximal_matches(probe, min_len=5)]
    mb = [(m.start, m.end, m.count) for m in fm.maximal_matches(probe, min_len=5)]
    assert ma == mb and ma
    bench = {"b": [{"q": TEXTS[5]}, {"q": "completely unrelated words here, none of it in the corpus"},
                   {"q": TEXTS[2][:20] + " and then something else entirely different"}]}
    ra = contamination_scores(sa, bench, ["q"], method="coverage", n=8)
    rb = contamination_scores(fm, bench, ["q"], method="coverage", n=8)
    ea, eb = ra.entries, rb.entries
    assert len(eb) == 3
    assert [e.overlap for e in ea] == [e.overlap for e in eb]
    assert [e.status for e in eb][:2] == ["dirty", "clean"]


@pytest.mark.parametrize("name", ["u8-1shard", "u8-3shards"])
@pytest.mark.parametrize("n", [0, 1, 2, 4])
def test_sequence_scores_equal_sa_backend(pairs, name, n):
    """infgram_logprobs / ngram_logprobs on FM give the SA backend's numbers
    (suffix lengths, counts, denominators, log-probs incl. -inf / NaN)."""
    sa, fm = pairs[name]
    texts = PROBES[:3] + [TEXTS[0] + " " + TEXTS[3], "the cat", "qqqq the mat."]
    for t in texts:
        a = sa.infgram_logprobs(t) if n == 0 else sa.ngram_logprobs(t, n)
        b = fm.infgram_logprobs(t) if n == 0 else fm.ngram_logprobs(t, n)
        assert b.suffix_len.tolist() == a.suffix_len.tolist(), t
        assert b.cont_count.tolist() == a.cont_count.tolist(), t
        assert b.denom.tolist() == a.denom.tolist(), t
        np.testing.assert_array_equal(np.isnan(a.logprobs), np.isnan(b.logprobs))
        ok = ~np.isnan(a.logprobs)
        np.testing.assert_allclose(a.logprobs[ok], b.logprobs[ok])


def test_perplexity_on_fm(pairs):
    from infinigram.analysis import perplexity

    sa, fm = pairs["u8-3shards"]
    texts = [TEXTS[1], "a plan for the cat"]
    ra, rb = perplexity(sa, texts), perplexity(fm, texts)
    assert ra == rb and ra["tokens"] > 0


CNFS = [
    [["the cat"], ["mat", "rat"]],
    [["plan"], ["a"]],                      # a frequent second clause: windows scanned around anchors
    [["cadabra"], ["a", "b"], ["abra"]],
    [["fox"], ["lazy"], ["jumps over 1", "jumps over 2"]],
    [["mississippi"], ["zzz"]],             # no match
    [["document 1"], ["dogs", "cat"]],
    [["quick"], ["o"]],                     # every anchor window holds the frequent clause
]


@pytest.mark.parametrize("name", ["u8-1shard", "u8-3shards"])
def test_cnf_equal_sa_backend(pairs, name):
    """Boolean search on the FM-index gives the SA backend's answers: the same
    matches (in the same order when the shards are the same), counts, windows,
    and for a sampled anchor clause the same sample for the same seed."""
    sa, fm = pairs[name]
    same_layout = sa.n_shards == fm.n_shards
    for cnf in CNFS:
        for D in (0, 3, 40):
            a, b = sa.find_cnf(cnf, max_diff_tokens=D), fm.find_cnf(cnf, max_diff_tokens=D)
            assert (b.count, b.approx) == (a.count, a.approx) == (len(a), False), (cnf, D)
            ka = list(zip(a.doc_ix.tolist(), a.start.tolist(), a.end.tolist(), a.anchor.tolist()))
            kb = list(zip(b.doc_ix.tolist(), b.start.tolist(), b.end.tolist(), b.anchor.tolist()))
            assert (kb == ka) if same_layout else (sorted(kb) == sorted(ka)), (cnf, D)
            assert fm.count_cnf(cnf, max_diff_tokens=D) == sa.count_cnf(cnf, max_diff_tokens=D)
            ma = sa.search_docs_cnf(cnf, maxnum=3, max_diff_tokens=D, context=4)
            mb = fm.search_docs_cnf(cnf, maxnum=3, max_diff_tokens=D, context=4)
            assert len(mb) == len(ma) == min(3, a.count)
            if same_layout:
                assert [(m.doc_ix, m.text) for m in mb] == [(m.doc_ix, m.text) for m in ma]
    assert sum(sa.count_cnf(c, max_diff_tokens=40)[0] > 0 for c in CNFS) >= 5  # the cases do match
    if same_layout:
        for seed in range(5):
            r = fm.count_cnf([["the"], ["a", "o"]], max_clause_freq=7, max_diff_tokens=6, seed=seed)
            assert r[1] and r == sa.count_cnf([["the"], ["a", "o"]], max_clause_freq=7, max_diff_tokens=6, seed=seed)


@pytest.mark.parametrize("name", ["u8-1shard", "u8-3shards"])
def test_ntd_equal_sa_backend(pairs, name):
    """Exact next-token distributions (and the ∞-gram ones) match the SA backend."""
    sa, fm = pairs[name]
    for p in ["the ", "the cat", "a ", "abracadabra", "missi", "dogs", "zzz", "o"]:
        for f in ("ntd", "infgram_ntd"):
            a, b = getattr(sa, f)(p, exact=True), getattr(fm, f)(p, exact=True)
            assert dict(a.items()) == dict(b.items()), (f, p)
            assert (a.prompt_count, a.end_count, a.suffix_len) == (b.prompt_count, b.end_count, b.suffix_len)
            assert not b.approx


def test_ntd_sampling_on_fm_is_unbiased(pairs):
    sa, fm = pairs["u8-1shard"]
    exact = sa.ntd("", exact=True)  # unigram distribution over the whole corpus
    top = max(exact.items(), key=lambda kv: kv[1][0])[0]
    est = [fm.ntd("", max_support=64, seed=s) for s in range(60)]
    assert all(r.approx and r.unit > 1 for r in est)
    mean = np.mean([r.get(top, (0, 0.0))[0] for r in est])
    assert abs(mean - exact[top][0]) < 0.15 * exact[top][0]


@pytest.mark.parametrize("name", ["u8-1shard", "u8-3shards"])
def test_prob_and_infgram_prob_equal_sa_backend(pairs, name):
    sa, fm = pairs[name]
    rng = np.random.default_rng(7)
    prompts = ["", "the cat", "the cat sat on the m", "zzz abracad", "panama", "qq", "dogs"]
    for _ in range(40):
        t = TEXTS[int(rng.integers(len(TEXTS)))]
        a = int(rng.integers(len(t)))
        prompts.append(t[max(0, a - int(rng.integers(0, 12))):a])
    for p in prompts:
        for nxt in [ord(" "), ord("a"), ord("t"), ord("z")]:
            for f in ("prob", "infgram_prob"):
                x, y = getattr(sa, f)(p, nxt), getattr(fm, f)(p, nxt)
                assert (x.prompt_count, x.cont_count, x.end_count, x.suffix_len) == \
                    (y.prompt_count, y.cont_count, y.end_count, y.suffix_len), (f, p, nxt)
                assert (np.isnan(x.prob) and np.isnan(y.prob)) or x.prob == y.prob


def test_drafter_refuses_fm_index_clearly(pairs):
    _, fm = pairs["u8-1shard"]
    with pytest.raises(infinigram.InfinigramError, match="suffix-array"):
        infinigram.Drafter(fm)


def test_prob_many_equal_sa_backend(pairs):
    sa, fm = pairs["u8-3shards"]
    prompts = ["the cat", "", "a plan a", "zzz", "mississ"]
    nxt = [ord(" "), ord("t"), ord(" "), ord("a"), ord("i")]
    for inf in (False, True):
        f = "infgram_prob_many" if inf else "prob_many"
        a, b = getattr(sa, f)(prompts, nxt), getattr(fm, f)(prompts, nxt, n_threads=2)
        for k in ("prompt_count", "cont_count", "end_count", "suffix_len"):
            assert a[k].tolist() == b[k].tolist(), (f, k)
        np.testing.assert_array_equal(np.isnan(a["prob"]), np.isnan(b["prob"]))


@pytest.mark.parametrize("backend", ["sa", "fm"])
def test_bad_query_arrays_and_batches_raise(pairs, backend):
    """Non-integer query arrays and malformed (flat, offsets) batches are
    ValueErrors on both backends, never silently truncated or misread."""
    sa, fm = pairs["u8-1shard"]
    ix = sa if backend == "sa" else fm
    with pytest.raises(ValueError, match="integer dtype"):
        ix.count(np.array([116.0, 104.0]))
    flat = np.array([116, 104, 101], dtype=np.int64)
    for offsets, what in [([0, 2], "end at len"), ([1, 3], "start at 0"), ([0, 3, 2, 3], "non-decreasing"),
                          ([], "1-d array")]:
        with pytest.raises(ValueError, match=what):
            ix.count_many((flat, np.array(offsets, dtype=np.int64)))
        with pytest.raises(ValueError, match=what):
            ix.ntd_many((flat, np.array(offsets, dtype=np.int64)))
    with pytest.raises(ValueError, match="prompts but"):
        ix.prob_many(["th", "e"], [101])
    with pytest.raises(ValueError, match="max_support"):
        ix.ntd_many(["th"], max_support=0)
    with pytest.raises(ValueError):  # a token id past the separator
        ix.ntd_many([[116, 300]])


def test_ntd_many_equal_sa_backend(pairs):
    sa, fm = pairs["u8-3shards"]
    ps = ["the ", "the cat", "a ", "abracadabra", "missi", "dogs", "zzz", "o", ""]
    for f in ("ntd_many", "infgram_ntd_many"):
        a, b = getattr(sa, f)(ps, exact=True), getattr(fm, f)(ps, exact=True)
        for k in ("offsets", "tokens", "counts", "prompt_count", "end_count", "suffix_len", "approx"):
            assert np.array_equal(getattr(a, k), getattr(b, k)), (f, k)
