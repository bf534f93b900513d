"""Sharded indexes answer exactly like a single-shard index of the same corpus
(and like the brute-force reference): counts, ranges, locations, documents,
windows and search results; documents keep their global order and indices."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import CODE, ENGLISH, Built, build_corpus, read_jsonl_head, sample_ngrams, synthetic_records


def shard_records():
    """~87 KB of real text with the synthetic edge cases spread among it
    (empty and one-token documents land next to shard boundaries)."""
    if not (os.path.exists(ENGLISH) and os.path.exists(CODE)):
        pytest.fail("real corpora not found (the shared test corpora are required: shared/data beside the repository, or set INFINIGRAM_TEST_DATA)", pytrace=False)
    real = read_jsonl_head(ENGLISH, 12, 8000) + read_jsonl_head(CODE, 12, 8000)
    synth = synthetic_records()
    out = []
    for i, r in enumerate(real):
        out.append(r)
        out.append(synth[i % len(synth)])
    out.extend(synth[len(real) % len(synth):])
    # every document gets its global position in its metadata
    return [dict(r, seq=i) for i, r in enumerate(out)]


# name -> (tokenizer, shard_size, expected shard count range)
CONFIGS = {
    "u8-tokens": ("bytes", 30000, (3, 5)),
    "u8-bytes": ("bytes", "25KB", (3, 5)),
    "u8-tiny": ("bytes", 4000, (20, 60)),  # many docs longer than a shard: one shard each
    "u16-tokens": ("bpe", 9000, (3, 5)),
    "u16-bytes": ("bpe", "18KB", (3, 5)),
}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, bpe_tokenizer_path):
    """name -> Built, plus the single-shard builds "u8-single" and "u16-single"."""
    recs = shard_records()
    out = {}
    tok = {"bytes": "bytes", "bpe": bpe_tokenizer_path}
    out["u8-single"] = build_corpus(tmp_path_factory, "u8-single", recs, "bytes")
    out["u16-single"] = build_corpus(tmp_path_factory, "u16-single", recs, bpe_tokenizer_path)
    for name, (t, size, _) in CONFIGS.items():
        out[name] = build_corpus(tmp_path_factory, name, recs, tok[t], shard_size=size)
    return out


@pytest.fixture(params=sorted(CONFIGS))
def pair(request, corpora):
    """(sharded, single-shard) builds of the same corpus and tokenizer."""
    name = request.param
    single = corpora["u8-single" if name.startswith("u8") else "u16-single"]
    return name, corpora[name], single


def queries(b: Built, seed: int, n: int = 120):
    qs = sample_ngrams(b.ref, seed, n, max_len=50)
    qs += [[], [b.index.separator - 1]]
    return qs


def locs(loc):
    return list(zip(loc.doc_ix.tolist(), loc.offset.tolist()))


# ------------------------------------------------------------------ layout
def test_shard_layout(pair):
    name, sh, single = pair
    lo, hi = CONFIGS[name][2]
    ix = sh.index
    assert single.index.n_shards == 1
    assert lo <= ix.n_shards <= hi, f"{name}: {ix.n_shards} shards"
    assert ix.n_docs == single.index.n_docs == sh.ref.n_docs
    assert ix.n_tokens == single.index.n_tokens == sh.ref.n_tokens
    man = ix.manifest
    assert len(man["shards"]) == ix.n_shards
    limit = {"25KB": 25000, "18KB": 9000}.get(CONFIGS[name][1], CONFIGS[name][1])
    base = 0
    eng = ix._engine
    for s, entry in enumerate(man["shards"]):
        assert entry["doc_base"] == base == eng.shard_doc_base(s)
        assert entry["n_docs"] == eng.shard_n_docs(s) >= 1
        assert entry["n_positions"] == eng.shard_n_positions(s) == entry["n_tokens"] + entry["n_docs"]
        # a shard never exceeds the limit unless it holds a single oversized document
        assert entry["n_positions"] <= limit or entry["n_docs"] == 1
        # and a new shard was only started because the next document did not fit
        if s + 1 < len(man["shards"]):
            nxt = base + entry["n_docs"]
            assert entry["n_positions"] + 1 + len(sh.ref.docs[nxt]) > limit
        base += entry["n_docs"]
    assert base == ix.n_docs
    assert sum(e["n_tokens"] for e in man["shards"]) == ix.n_tokens


def test_documents_keep_global_order(pair):
    _, sh, single = pair
    ix = sh.index
    for i, rec in enumerate(sh.records):
        d, d1 = ix.get_doc(i), single.index.get_doc(i)
        assert d.metadata["seq"] == i
        assert d.metadata == d1.metadata == sh.ref.metadata[i]
        assert d.tokens.tolist() == d1.tokens.tolist() == sh.ref.docs[i].tolist()
        assert d.text == d1.text == rec["text"]
        assert ix.doc_length(i) == len(sh.ref.docs[i])


# ----------------------------------------------------------------- queries
@pytest.mark.parametrize("seed", [0, 1])
def test_counts_identical(pair, seed):
    _, sh, single = pair
    qs = queries(sh, seed)
    expect = [sh.ref.count(q) for q in qs]
    assert [sh.index.count(q) for q in qs] == expect
    assert [single.index.count(q) for q in qs] == expect
    for nt in (1, 2):
        assert sh.index.count_many(qs, n_threads=nt).tolist() == expect
    for q, e in zip(qs, expect):
        ranges = sh.index.find(q)
        assert len(ranges) == sh.index.n_shards
        assert sum(h - l for l, h in ranges) == (e if q else sh.ref.n_tokens + sh.ref.n_docs)


def test_string_counts_identical(pair):
    _, sh, single = pair
    strs = ["the", "def ", "import ", "hello", "ab", "a", "\n\n", "self."]
    got = sh.index.count_many(strs).tolist()
    assert got == single.index.count_many(strs).tolist()
    assert got == [sh.ref.count(sh.encode(s)) for s in strs]


def test_locate_identical(pair):
    _, sh, single = pair
    for q in queries(sh, 3, 60):
        if not q:
            continue
        expect = sh.ref.locate(q)
        a = locs(sh.index.locate(q, len(expect) + 1))
        b = locs(single.index.locate(q, len(expect) + 1))
        assert len(a) == len(set(a)) == len(expect)
        assert set(a) == set(b) == expect


def test_locate_limit_shard_order(pair):
    """With a limit, results come shard by shard: doc indices' shards never decrease."""
    _, sh, _ = pair
    ix = sh.index
    bases = [ix._engine.shard_doc_base(s) for s in range(ix.n_shards)]
    freq = np.bincount(np.concatenate(sh.ref.docs))
    top = np.argsort(-freq)[:3]
    for q in [[int(t)] for t in top] + [sh.ref.docs[0][:1].tolist()]:
        expect = sh.ref.locate(q)
        assert len(expect) > (50 if len(q) and q[0] in top else 0)
        for limit in (1, 17, 50, len(expect)):
            got = locs(ix.locate(q, limit))
            assert len(got) == min(limit, len(expect))
            assert set(got) <= expect
            shards = [int(np.searchsorted(bases, d, side="right")) - 1 for d, _ in got]
            assert shards == sorted(shards)
        # the first `limit` come from the earliest shards that have matches
        first_shard = min(int(np.searchsorted(bases, d, side="right")) - 1 for d, _ in expect)
        got = locs(ix.locate(q, 1))
        assert int(np.searchsorted(bases, got[0][0], side="right")) - 1 == first_shard


def test_search_docs_identical(pair):
    _, sh, single = pair
    for q in queries(sh, 5, 25):
        if not q:
            continue
        total = sh.ref.count(q)
        ms = sh.index.search_docs(q, maxnum=total + 1, context=6)
        ms1 = single.index.search_docs(q, maxnum=total + 1, context=6)
        key = lambda m: (m.doc_ix, m.offset)  # noqa: E731
        assert {key(m) for m in ms} == {key(m) for m in ms1} == sh.ref.locate(q)
        by1 = {key(m): m for m in ms1}
        for m in ms:
            m1 = by1[key(m)]
            assert (m.start, m.end, m.length) == (m1.start, m1.end, m1.length)
            assert m.tokens.tolist() == m1.tokens.tolist()
            assert m.text == m1.text and m.metadata == m1.metadata == sh.ref.metadata[m.doc_ix]
            assert m.tokens[m.needle_start:m.needle_end].tolist() == q
        sampled = sh.index.search_docs(q, maxnum=5, context=3, sample=True, seed=7)
        assert len(sampled) == min(5, total)
        for m in sampled:
            assert (m.doc_ix, m.offset) in sh.ref.locate(q)
            assert m.tokens[m.needle_start:m.needle_end].tolist() == q
            assert m.metadata == sh.ref.metadata[m.doc_ix]


def test_sample_reaches_every_shard(pair):
    """Sampling draws from all shards: over all occurrences of a frequent token."""
    _, sh, _ = pair
    ix = sh.index
    q = [int(np.argmax(np.bincount(np.concatenate(sh.ref.docs))))]
    total = sh.ref.count(q)
    ms = ix.search_docs(q, maxnum=total, context=0, sample=True, seed=3)
    assert {(m.doc_ix, m.offset) for m in ms} == sh.ref.locate(q)
    bases = [ix._engine.shard_doc_base(s) for s in range(ix.n_shards)]
    shards = {int(np.searchsorted(bases, m.doc_ix, side="right")) - 1 for m in ms}
    docs_with = {d for d, _ in sh.ref.locate(q)}
    expect_shards = {int(np.searchsorted(bases, d, side="right")) - 1 for d in docs_with}
    assert shards == expect_shards and len(shards) >= 3


def test_cross_shard_boundaries(pair):
    """The last tokens of a shard's last document + the first of the next
    shard's first document: never counted as one n-gram."""
    _, sh, single = pair
    ix, ref = sh.index, sh.ref
    checked = 0
    for s in range(1, ix.n_shards):
        first = ix._engine.shard_doc_base(s)
        a, b = ref.docs[first - 1], ref.docs[first]
        for left, right in ((1, 1), (3, 2), (8, 8)):
            if len(a) >= left and len(b) >= right:
                q = a[len(a) - left:].tolist() + b[:right].tolist()
                assert ix.count(q) == single.index.count(q) == ref.count(q), q
                checked += 1
    assert checked >= 2


def test_windows_identical(pair):
    _, sh, single = pair
    rng = np.random.default_rng(2)
    for i, d in enumerate(sh.ref.docs):
        n = len(d)
        for off, ln, ctx in ((0, 0, 5), (n, 0, 5), (max(0, n - 2), min(2, n), 40),
                             (int(rng.integers(0, n + 1)), 0, int(rng.integers(0, 30)))):
            w, w1 = sh.index.window(i, off, ln, ctx), single.index.window(i, off, ln, ctx)
            start, end, toks = sh.ref.window(i, off, ln, ctx)
            assert (w.start, w.end) == (w1.start, w1.end) == (start, end)
            assert w.tokens.tolist() == w1.tokens.tolist() == toks
            assert w.metadata == w1.metadata


def test_empty_query_and_absent(pair):
    _, sh, single = pair
    assert sh.index.count([]) == single.index.count([]) == sh.ref.n_tokens
    q = [sh.index.separator - 1] * 3
    assert sh.index.count(q) == 0 and len(sh.index.locate(q)) == 0 and sh.index.search_docs(q) == []


def test_manifest_on_disk(pair):
    """index.json lists the shards in order with consistent doc bases."""
    _, sh, _ = pair
    with open(os.path.join(sh.path, "index.json"), encoding="utf-8") as fh:
        man = json.load(fh)
    assert [s["dir"] for s in man["shards"]] == sorted(s["dir"] for s in man["shards"])
    assert man["n_docs"] == len(sh.records)
    assert man["n_tokens"] == sh.ref.n_tokens
