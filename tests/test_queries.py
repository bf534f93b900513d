"""Every query of ``infinigram.Index`` against the brute-force reference.

Corpora (built once per session, see conftest.py): a hand-made synthetic
corpus of edge cases and slices of two real corpora, each indexed as bytes
(u8), with a small BPE tokenizer trained here (u16) and, for the real text,
with Llama 3's tokenizer (u32).
"""

from __future__ import annotations

import numpy as np
import pytest

import infinigram

from conftest import Built, sample_ngrams
from reference import Reference, _positions, overlapping_count, slow_positions

ALL = ["synth_bytes", "synth_u16", "real_bytes", "real_u16", "real_u32"]
SYNTH = ["synth_bytes", "synth_u16"]
WIDTH = {"synth_bytes": 1, "synth_u16": 2, "real_bytes": 1, "real_u16": 2, "real_u32": 4}


@pytest.fixture(params=ALL)
def built(request) -> Built:
    return request.getfixturevalue(request.param)


@pytest.fixture(params=SYNTH)
def synth(request) -> Built:
    return request.getfixturevalue(request.param)


def queries_for(b: Built, seed: int = 0, n: int = 150):
    """Sampled n-grams (lengths 1..50) from the corpus plus a few absent ones."""
    qs = sample_ngrams(b.ref, seed, n, max_len=50)
    # perturbed copies: often absent, sometimes present elsewhere
    rng = np.random.default_rng(seed + 1)
    top = 250 if b.index.token_width == 1 else int(max(int(d.max()) for d in b.ref.docs if len(d)))
    for q in qs[:30]:
        q2 = list(q)
        q2[int(rng.integers(len(q2)))] = int(rng.integers(0, top + 1))
        qs.append(q2)
    return qs


# ----------------------------------------------------------- the reference
def test_reference_self_check():
    """The numpy matcher of the reference agrees with a plain-Python scan."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        doc = rng.integers(0, 3, size=int(rng.integers(0, 30))).tolist()
        q = rng.integers(0, 3, size=int(rng.integers(1, 5))).tolist()
        assert _positions(np.array(doc, dtype=np.int64), np.array(q, dtype=np.int64)).tolist() == \
            slow_positions(doc, q)
    assert overlapping_count("aaaa", "aa") == 3
    assert overlapping_count(b"abababa", b"aba") == 3
    assert overlapping_count([1, 1, 1], [1, 1]) == 2
    ref = Reference([[1, 2], [3], []])
    assert ref.count([]) == 3 and ref.count([2, 3]) == 0 and ref.locate([3]) == {(1, 0)}


# ------------------------------------------------------------------- basics
def test_stats(built):
    ix, ref = built.index, built.ref
    assert ix.n_docs == ref.n_docs == len(built.records)
    assert ix.n_tokens == ref.n_tokens
    assert ix.token_width == ix.manifest["token_width"] and (built.kind == "hf") == (ix.token_width > 1)
    assert ix.separator == {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}[ix.token_width]
    assert ix.n_shards == 1


@pytest.mark.parametrize("name", ALL)
def test_token_width(request, name):
    b = request.getfixturevalue(name)
    assert b.index.token_width == WIDTH[name]
    for d in b.ref.docs:
        if len(d):
            assert int(d.max()) < b.index.separator


def test_get_doc_roundtrip(built):
    ix, ref = built.index, built.ref
    for i, rec in enumerate(built.records):
        doc = ix.get_doc(i)
        assert doc.doc_ix == i
        assert doc.tokens.tolist() == ref.docs[i].tolist(), f"doc {i} tokens"
        assert doc.length == len(ref.docs[i]) == ix.doc_length(i)
        if built.kind == "bytes":
            assert doc.text == rec["text"]
        else:
            assert doc.text == built.hf.decode(ref.docs[i].tolist(), skip_special_tokens=False)
        assert doc.metadata == ref.metadata[i], f"doc {i} metadata"
    with pytest.raises(IndexError):
        ix.get_doc(ix.n_docs)
    with pytest.raises(IndexError):
        ix.get_doc(-1)


def test_byte_level_text_roundtrip(request):
    """Byte-level BPE and bytes indexes give back every text exactly."""
    for name in ["synth_bytes", "synth_u16", "real_u16"]:
        b = request.getfixturevalue(name)
        for i, rec in enumerate(b.records):
            assert b.index.get_doc(i).text == rec["text"], f"{name} doc {i}"


# -------------------------------------------------------------------- count
@pytest.mark.parametrize("seed", [0, 1])
def test_count_sampled(built, seed):
    ix, ref = built.index, built.ref
    qs = queries_for(built, seed)
    lengths = {len(q) for q in qs}
    assert min(lengths) == 1 and max(lengths) >= 40
    for q in qs:
        assert ix.count(q) == ref.count(q), q
    # as numpy arrays of several dtypes and as tuples
    for q in qs[:20]:
        expect = ref.count(q)
        assert ix.count(np.array(q, dtype=np.int64)) == expect
        assert ix.count(np.array(q, dtype=ix.tokenizer.dtype)) == expect
        assert ix.count(tuple(q)) == expect


def test_count_real_bytes_vs_text(real_bytes):
    """Counts of byte n-grams equal an overlapping substring search of the raw texts."""
    ix = real_bytes.index
    texts = [r["text"].encode("utf-8") for r in real_bytes.records]
    rng = np.random.default_rng(42)
    checked = 0
    for m in range(1, 51):
        for _ in range(3):
            t = texts[int(rng.integers(len(texts)))]
            o = int(rng.integers(0, len(t) - m + 1))
            needle = t[o:o + m]
            expect = sum(overlapping_count(t2, needle) for t2 in texts)
            assert ix.count(list(needle)) == expect, needle
            checked += 1
    assert checked == 150


def test_count_many_forms(built):
    ix, ref = built.index, built.ref
    qs = queries_for(built, 7, 80) + [[]]
    expect = np.array([ref.count(q) for q in qs], dtype=np.int64)
    for nt in (1, 2):
        got = ix.count_many(qs, n_threads=nt)
        assert got.dtype == np.int64
        assert got.tolist() == expect.tolist()
        got = ix.count_many([np.asarray(q, dtype=np.int64) for q in qs], n_threads=nt)
        assert got.tolist() == expect.tolist()
        flat = np.concatenate([np.asarray(q, dtype=np.int64) for q in qs])
        offsets = np.zeros(len(qs) + 1, dtype=np.int64)
        np.cumsum([len(q) for q in qs], out=offsets[1:])
        got = ix.count_many((flat, offsets), n_threads=nt)
        assert got.tolist() == expect.tolist()
    assert ix.count_many([]).tolist() == []
    assert [ix.count(q) for q in qs] == expect.tolist()


def test_count_many_strings(built):
    ix = built.index
    strs = []
    for rec in built.records[:15]:
        t = rec["text"]
        if t:
            strs += [t[: min(len(t), 12)], t[len(t) // 2: len(t) // 2 + 5]]
    strs += ["", "zzqqxxnotthere", "e"]
    expect = [built.ref.count(built.encode(s)) for s in strs]
    assert ix.count_many(strs, n_threads=2).tolist() == expect
    # mixed strings and ids
    mixed = [strs[0], built.encode(strs[1]), np.asarray(built.encode(strs[2]))]
    assert ix.count_many(mixed).tolist() == expect[:3]


def test_count_many_bad_offsets(synth_bytes):
    ix = synth_bytes.index
    flat = np.array([97, 98], dtype=np.int64)
    with pytest.raises(ValueError):
        ix.count_many((flat, np.array([0, 3], dtype=np.int64)))
    with pytest.raises(ValueError):
        ix.count_many((flat, np.array([0, 2, 1, 2], dtype=np.int64)))


def test_find(built):
    ix, ref = built.index, built.ref
    for q in queries_for(built, 3, 60):
        ranges = ix.find(q)
        assert len(ranges) == ix.n_shards
        assert all(0 <= lo <= hi for lo, hi in ranges)
        assert sum(hi - lo for lo, hi in ranges) == ref.count(q)
    # the empty query spans each shard's whole suffix array (separators included)
    assert sum(hi - lo for lo, hi in ix.find([])) == ref.n_tokens + ref.n_docs


# ------------------------------------------------------------------- locate
def test_locate(built):
    ix, ref = built.index, built.ref
    for q in queries_for(built, 5, 60):
        expect = ref.locate(q)
        loc = ix.locate(q, limit=len(expect) + 5)
        assert len(loc) == len(loc.offset) == len(expect)
        got = list(zip(loc.doc_ix.tolist(), loc.offset.tolist()))
        assert len(set(got)) == len(got), "duplicate locations"
        assert set(got) == expect, q


def test_locate_limit(built):
    ix, ref = built.index, built.ref
    qs = sorted(queries_for(built, 9, 60), key=lambda q: -ref.count(q))[:10]
    qs.append(ref.docs[max(range(ref.n_docs), key=lambda i: len(ref.docs[i]))][:1].tolist())
    for q in qs:
        expect = ref.locate(q)
        for limit in (0, 1, 2, 7, len(expect) - 1, len(expect)):
            if limit < 0:
                continue
            loc = ix.locate(q, limit=limit)
            got = set(zip(loc.doc_ix.tolist(), loc.offset.tolist()))
            assert len(loc) == min(limit, len(expect)) == len(got)
            assert got <= expect
    with pytest.raises(ValueError):
        ix.locate(qs[0], limit=-1)


def test_locate_default_limit(real_bytes):
    ix, ref = real_bytes.index, real_bytes.ref
    q = list(b"e")
    assert ref.count(q) > 100
    loc = ix.locate(q)
    assert len(loc) == 100
    assert set(zip(loc.doc_ix.tolist(), loc.offset.tolist())) <= ref.locate(q)


# -------------------------------------------------------------- search_docs
def check_match(b: Built, m, q, context):
    ref = b.ref
    d = ref.docs[m.doc_ix]
    assert (m.doc_ix, m.offset) in ref.locate(q)
    assert m.length == len(q)
    start, end, toks = ref.window(m.doc_ix, m.offset, len(q), context)
    assert (m.start, m.end) == (start, end)
    assert m.tokens.tolist() == toks
    assert m.tokens[m.needle_start:m.needle_end].tolist() == list(q)
    assert 0 <= m.start <= m.offset and m.offset + m.length <= m.end <= len(d)
    assert m.text == b.index.decode(m.tokens)
    assert m.metadata == ref.metadata[m.doc_ix]


def test_search_docs(built):
    ix, ref = built.index, built.ref
    for q in queries_for(built, 11, 30):
        total = ref.count(q)
        for maxnum, context in ((10, 50), (3, 0), (total + 2, 5)):
            ms = ix.search_docs(q, maxnum=maxnum, context=context)
            assert len(ms) == min(maxnum, total)
            assert len({(m.doc_ix, m.offset) for m in ms}) == len(ms)
            for m in ms:
                check_match(built, m, q, context)
    q = queries_for(built, 11, 1)[0]
    assert ix.search_docs(q, maxnum=0) == []
    assert ix.search_docs([], maxnum=5) == []


def test_search_docs_sample(built):
    ix, ref = built.index, built.ref
    qs = sorted(queries_for(built, 13, 60), key=lambda q: -ref.count(q))[:6]
    for q in qs:
        total = ref.count(q)
        a = ix.search_docs(q, maxnum=8, context=4, sample=True, seed=123)
        b = ix.search_docs(q, maxnum=8, context=4, sample=True, seed=123)
        assert len(a) == min(8, total)
        assert [(m.doc_ix, m.offset) for m in a] == [(m.doc_ix, m.offset) for m in b]
        assert len({(m.doc_ix, m.offset) for m in a}) == len(a)
        for m in a:
            check_match(built, m, q, 4)
    # sampling covers all occurrences when maxnum >= count
    q = qs[-1]
    total = ref.count(q)
    ms = ix.search_docs(q, maxnum=total + 3, context=0, sample=True, seed=1)
    assert {(m.doc_ix, m.offset) for m in ms} == ref.locate(q)


def test_search_docs_sample_varies(real_bytes):
    ix, ref = real_bytes.index, real_bytes.ref
    q = list(b"the")
    assert ref.count(q) > 200
    picks = {tuple((m.doc_ix, m.offset) for m in ix.search_docs(q, maxnum=5, sample=True, seed=s))
             for s in range(5)}
    assert len(picks) > 1, "different seeds should draw different occurrences"


def test_search_docs_string_and_absent(synth):
    ix = synth.index
    ms = ix.search_docs("hello", maxnum=20, context=3)
    assert len(ms) == synth.ref.count(synth.encode("hello")) > 0
    for m in ms:
        check_match(synth, m, synth.encode("hello"), 3)
    assert ix.search_docs("not in the corpus at all", maxnum=5) == []


# ------------------------------------------------------------------- window
def test_window_clipping(built):
    ix, ref = built.index, built.ref
    rng = np.random.default_rng(17)
    for i, d in enumerate(ref.docs):
        n = len(d)
        cases = [(0, 0, 0), (0, 0, 10), (n, 0, 3), (0, n, 0), (0, n, 100)]
        if n:
            cases += [(0, 1, 5), (n - 1, 1, 5), (n // 2, 0, 2), (n // 2, min(3, n - n // 2), 1000)]
            o = int(rng.integers(0, n))
            cases.append((o, int(rng.integers(0, n - o + 1)), int(rng.integers(0, 20))))
        for off, ln, ctx in cases:
            w = ix.window(i, off, ln, ctx)
            start, end, toks = ref.window(i, off, ln, ctx)
            assert (w.doc_ix, w.offset, w.length, w.start, w.end) == (i, off, ln, start, end)
            assert w.tokens.tolist() == toks
            assert w.needle_start == off - start and w.needle_end == off + ln - start
            assert w.metadata == ref.metadata[i]
        with pytest.raises(IndexError):
            ix.window(i, n, 1, 0)
        with pytest.raises(IndexError):
            ix.window(i, n + 1, 0, 0)
    with pytest.raises(ValueError):
        ix.window(0, -1, 1)
    with pytest.raises(ValueError):
        ix.window(0, 0, 1, context=-1)
    with pytest.raises(IndexError):
        ix.window(ix.n_docs, 0, 0)


# ------------------------------------------------------------- edge queries
def test_empty_query(built):
    ix, ref = built.index, built.ref
    assert ix.count([]) == ix.count(np.zeros(0, dtype=np.int64)) == ref.n_tokens == ix.n_tokens
    assert ix.count("") == ref.n_tokens
    assert ix.count_many([[], []]).tolist() == [ref.n_tokens] * 2


def test_absent(built):
    ix, ref = built.index, built.ref
    sep = ix.separator
    top = sep - 1
    q = [top, top, top, top]
    assert ref.count(q) == 0
    assert ix.count(q) == 0
    assert len(ix.locate(q)) == 0
    assert ix.search_docs(q) == []
    assert all(lo == hi for lo, hi in ix.find(q))
    assert ix.count([0]) == ref.count([0])
    # one token longer than the longest document
    longest = max(ref.docs, key=len)
    assert ix.count(longest.tolist()) == ref.count(longest.tolist()) >= 1
    assert ix.count(longest.tolist() + [int(longest[0])]) == ref.count(longest.tolist() + [int(longest[0])])


def test_document_boundaries(built):
    """The last tokens of a doc followed by the first of the next never match
    across the separator."""
    ix, ref = built.index, built.ref
    n = 0
    for left, right in ((1, 1), (2, 3), (5, 5)):
        for q in ref.boundary_ngrams(left, right):
            expect = ref.locate(q)
            assert ix.count(q) == len(expect), q
            loc = ix.locate(q, len(expect) + 1)
            assert set(zip(loc.doc_ix.tolist(), loc.offset.tolist())) == expect
            n += 1
    assert n > 10


def test_boundary_synthetic(synth_bytes):
    ix = synth_bytes.index
    # doc 6 ends "zzzxyz", doc 7 starts "QRSTUV": nowhere else in the corpus
    assert ix.count("xyz") == 1 and ix.count("QRS") == 1
    assert ix.count("xyzQRS") == 0 and ix.count("zQ") == 0
    assert ix.count_many(["xyzQ", "xyz", "QRS"]).tolist() == [0, 1, 1]
    # "hello" ends doc 10 ("hello") and doc 11 starts "ends": "helloends" absent
    assert ix.count("helloends") == 0 and ix.count("helloe") == 0
    assert ix.count("hello") == 4  # d0 twice, d10, d11 (at its end)


def test_degenerate_texts(synth):
    """All-one-symbol and periodic documents: every repeat count is exact."""
    ix, ref = synth.index, synth.ref
    texts = [r["text"] for r in synth.records]
    for k in range(1, 45):
        for s in ("a" * k, ("ab" * k)[:k], ("abc" * k)[:k], ("ba" * k)[:k]):
            q = synth.encode(s)
            if not q:
                continue
            assert ix.count(q) == ref.count(q), s
            if synth.kind == "bytes":
                assert ix.count(s) == sum(overlapping_count(t, s) for t in texts), s


def test_invalid_ids(built):
    ix = built.index
    sep = ix.separator
    good = built.ref.docs[0][:1].tolist() or [0]
    for bad in ([-1], [sep], [sep + 1], good + [-5], [2 ** 40], good + [sep]):
        with pytest.raises(ValueError):
            ix.count(bad)
        with pytest.raises(ValueError):
            ix.find(bad)
        with pytest.raises(ValueError):
            ix.locate(bad)
        with pytest.raises(ValueError):
            ix.search_docs(bad)
        with pytest.raises(ValueError):
            ix.count_many([good, bad])
        with pytest.raises(ValueError):
            ix.count(np.array(bad, dtype=np.int64))
    with pytest.raises(ValueError):
        ix.count([2 ** 70])


def test_string_queries_equal_ids(built):
    ix = built.index
    strs = ["the", "def ", "hello", " import", "é", "日本", "\n", "a"]
    for rec in built.records[::5]:
        t = rec["text"]
        if len(t) > 10:
            strs.append(t[3:30])
    for s in strs:
        ids = built.encode(s)
        assert ix.encode(s).tolist() == ids
        assert ix.count(s) == ix.count(ids) == built.ref.count(ids), s
        a, b = ix.locate(s, 50), ix.locate(ids, 50)
        assert a.doc_ix.tolist() == b.doc_ix.tolist() and a.offset.tolist() == b.offset.tolist()
        assert ix.find(s) == ix.find(ids)


def test_reopen_and_verify(synth_bytes):
    ix2 = infinigram.Index(synth_bytes.path, verify=True)
    assert ix2.count("hello") == synth_bytes.index.count("hello") > 0
    ix2.verify()
