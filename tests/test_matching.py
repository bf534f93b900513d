"""Matching statistics (Index.longest_matches) and maximal matches against
brute force: small random and real texts, u8 and u16, single and multi-shard."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import build_corpus, real_records, synthetic_records
from infinigram import _core
from infinigram.analysis.matches import maximal_starts


class Hay:
    """Brute-force oracle: the corpus as one str (token t -> chr(t + 1),
    documents joined by chr(0)), so substring tests use str.find."""

    def __init__(self, docs):
        self.docs = [list(map(int, d)) for d in docs]
        self.s = "\x00".join("".join(chr(t + 1) for t in d) for d in self.docs)

    def enc(self, q):
        return "".join(chr(int(t) + 1) for t in q)

    def count(self, q):
        if len(q) == 0:
            return 0
        s, n, i = self.enc(q), 0, -1
        while True:
            i = self.s.find(s, i + 1)
            if i < 0:
                return n
            n += 1

    def ms(self, q):
        q = list(map(int, q))
        out = []
        for i in range(len(q)):
            L = 0
            while i + L < len(q) and self.enc(q[i:i + L + 1]) in self.s:
                L += 1
            out.append(L)
        return out


def _texts(built, rng, n=25):
    """Texts mixing corpus cuts, random tokens and edits."""
    docs = [d for d in built.ref.docs if len(d) > 0]
    vocab = sorted({int(t) for d in docs for t in d})
    out = [[], [vocab[0]]]
    for _ in range(n):
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            d = docs[int(rng.integers(len(docs)))]
            m = int(rng.integers(1, min(len(d), 60) + 1))
            o = int(rng.integers(0, len(d) - m + 1))
            cut = [int(t) for t in d[o:o + m]]
            if cut and rng.random() < 0.5:
                cut[int(rng.integers(len(cut)))] = int(rng.choice(vocab))
            parts += cut + [int(rng.choice(vocab)) for _ in range(int(rng.integers(0, 4)))]
        out.append(parts)
    return out


def _check(built, texts):
    hay = Hay(built.ref.docs)
    idx = built.index
    for q in texts:
        r = idx.longest_matches(q)
        ms = hay.ms(q)
        assert r.length.tolist() == ms, q
        for i, L in enumerate(ms):
            assert int(r.count[i]) == hay.count(q[i:i + L])
            if L == 0:
                assert r.doc_ix[i] == -1 and r.offset[i] == -1
            else:
                d = built.ref.docs[int(r.doc_ix[i])]
                o = int(r.offset[i])
                assert list(map(int, d[o:o + L])) == q[i:i + L]
        # maximal matches: brute force = occurring spans contained in no other
        spans = {(i, i + L) for i, L in enumerate(ms) if L > 0}
        brute = sorted(s for s in spans if not any(t != s and t[0] <= s[0] and s[1] <= t[1] for t in spans))
        got = [(m.start, m.end) for m in idx.maximal_matches(q, max_docs=2)]
        assert got == brute
    return True


@pytest.mark.parametrize("name", ["synth_bytes", "synth_u16", "real_bytes"])
def test_against_brute_force(request, name):
    built = request.getfixturevalue(name)
    rng = np.random.default_rng(7)
    _check(built, _texts(built, rng, 12 if name == "real_bytes" else 25))


@pytest.fixture(scope="module")
def sharded_pair(tmp_path_factory, bpe_tokenizer_path):
    recs = synthetic_records() + real_records(4, 6000)
    single = build_corpus(tmp_path_factory, "ms_single", recs, tokenizer=bpe_tokenizer_path)
    multi = build_corpus(tmp_path_factory, "ms_multi", recs, tokenizer=bpe_tokenizer_path, shard_size=1500)
    assert multi.index.n_shards >= 3
    return single, multi


def test_multishard_union(sharded_pair):
    """The longest match is over the union of shards; counts add only shards reaching it."""
    single, multi = sharded_pair
    rng = np.random.default_rng(3)
    texts = _texts(multi, rng, 15)
    _check(multi, texts[:8])
    for q in texts:
        a, b = single.index.longest_matches(q), multi.index.longest_matches(q)
        assert a.length.tolist() == b.length.tolist()
        assert a.count.tolist() == b.count.tolist()


def test_many_and_edge_cases(synth_bytes):
    idx = synth_bytes.index
    r = idx.longest_matches("")
    assert len(r) == 0 and r.longest == 0
    r = idx.longest_matches("hello world")
    assert r.length[0] == len("hello world") and r.count[0] == 1
    assert idx.count("hello") == idx.longest_matches("hello").count[0]
    with pytest.raises(ValueError):
        idx.longest_matches([255])  # the separator is not a token
    with pytest.raises(ValueError):
        idx.longest_matches([-1])
    texts = [list(b"hello there"), [], list(b"zzzxyzq"), list(b"abcabcab")]
    flat = np.concatenate([np.asarray(t, dtype=np.int64) for t in texts])
    offs = np.concatenate([[0], np.cumsum([len(t) for t in texts])]).astype(np.int64)
    for thr in (1, 2):
        L, C, D, O = _core.matching_statistics_many(idx._engine, flat, offs, True, thr)
        for k, t in enumerate(texts):
            one = idx.longest_matches(t)
            assert L[offs[k]:offs[k + 1]].tolist() == one.length.tolist()
            assert C[offs[k]:offs[k + 1]].tolist() == one.count.tolist()
            assert D[offs[k]:offs[k + 1]].tolist() == one.doc_ix.tolist()


def test_filters_and_maximal_starts(real_bytes):
    idx = real_bytes.index
    text = real_bytes.records[3]["text"][:400] + " qqq zzz " + real_bytes.records[5]["text"][100:300]
    mm = idx.maximal_matches(text, min_len=20, max_docs=3)
    assert mm and all(m.length >= 20 for m in mm)
    assert any(m.length >= 200 for m in mm)
    for m in mm:
        assert m.count == idx.count(idx.encode(text)[m.start:m.end])
        assert 1 <= len(m.doc_ix) <= 3
    few = idx.maximal_matches(text, min_len=5, max_count=1, max_docs=0)
    assert all(m.count <= 1 and m.doc_ix == [] for m in few)
    assert maximal_starts(np.array([3, 2, 1, 2, 0, 1]), 1).tolist() == [0, 3, 5]


def test_long_copied_text_is_fast(real_bytes):
    """A text copied from the corpus: m positions, ms[i] = m - i; must not be one search per (i, length)."""
    import time

    d = max(real_bytes.records, key=lambda r: len(r["text"]))["text"].encode()[:8000]
    t = time.perf_counter()
    r = real_bytes.index.longest_matches(list(d), with_occurrence=False)
    assert time.perf_counter() - t < 2.0
    assert r.length[0] == len(d)
