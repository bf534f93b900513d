"""FM-index backend: every query cross-checked against the suffix-array backend
built from the same corpus (bytes / u16 / u32, random and real text,
multi-shard, document boundaries), plus the engine on raw token files."""

from __future__ import annotations

import os
import random
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import infinigram
from infinigram import _core

from conftest import real_records, synthetic_records, write_jsonl, write_raw_shard


def _pair(tmp_path_factory, name: str, records: List[Dict[str, Any]], tokenizer: str = "bytes",
          **kw: Any) -> Tuple[infinigram.Index, infinigram.Index]:
    d = tmp_path_factory.mktemp(name)
    src = write_jsonl(str(d / "corpus.jsonl"), records)
    infinigram.build(src, str(d / "sa"), tokenizer=tokenizer, progress=False, shard_size=kw.get("shard_size"))
    infinigram.build(src, str(d / "fm"), tokenizer=tokenizer, progress=False, backend="fm", **kw)
    return infinigram.Index(str(d / "sa")), infinigram.Index(str(d / "fm"))


def _random_records(seed: int, n_docs: int, alphabet: str) -> List[Dict[str, Any]]:
    rng = random.Random(seed)
    return [{"text": "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))), "i": i}
            for i in range(n_docs)]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, bpe_tokenizer_path) -> Dict[str, Tuple[infinigram.Index, infinigram.Index]]:
    out = {
        # wavelet trees of one block per 2^b BWT symbols: queries and walks cross blocks
        "synth": _pair(tmp_path_factory, "fm_synth", synthetic_records(), sa_sample=3, isa_sample=5, wt_block_bits=6),
        "random": _pair(tmp_path_factory, "fm_rand", _random_records(7, 60, "ab c"), sa_sample=2, isa_sample=3,
                        wt_block_bits=4),
        "real": _pair(tmp_path_factory, "fm_real", real_records(8, 6000)),  # default sampling and blocks (one here)
        "shards": _pair(tmp_path_factory, "fm_shards", real_records(6, 4000) + synthetic_records(),
                        shard_size=9000, sa_sample=5, isa_sample=7, wt_block_bits=9),
        "u16": _pair(tmp_path_factory, "fm_u16", real_records(4, 6000) + synthetic_records(),
                     tokenizer=bpe_tokenizer_path, sa_sample=4, isa_sample=6, wt_block_bits=8),
    }
    return out


def _queries(sa: infinigram.Index, seed: int, n: int = 150) -> List[List[int]]:
    """n-grams cut at random places of random documents (some crossing doc ends
    are clipped), a few absent ones, and single tokens."""
    rng = random.Random(seed)
    qs: List[List[int]] = []
    while len(qs) < n:
        d = rng.randrange(sa.n_docs)
        toks = sa.get_doc(d).tokens
        if len(toks) == 0:
            continue
        a = rng.randrange(len(toks))
        qs.append([int(x) for x in toks[a:a + rng.choice([1, 2, 3, 5, 8, 20])]])
    qs += [[int(rng.randrange(sa.separator))] for _ in range(20)]
    qs += [q + q for q in qs[:10]]
    return qs


@pytest.mark.parametrize("name", ["synth", "random", "real", "shards", "u16"])
def test_cnf_match_sa_backend(pairs, name):
    """CNF search (cnf.hpp on FMShard: anchors located, windows extracted)
    against the SA backend on the same shards: identical matches and order,
    counts, and the same sample for the same seed."""
    sa, fm = pairs[name]
    rng = random.Random(11)
    qs = _queries(sa, 5, n=60)
    cnfs = []
    for _ in range(25):
        cnfs.append([[rng.choice(qs)[:rng.randint(1, 3)] for _ in range(rng.randint(1, 2))]
                     for _ in range(rng.randint(1, 3))])
    matched = 0
    for cnf in cnfs:
        for D in (0, 4, 60):
            a, b = sa.find_cnf(cnf, max_diff_tokens=D), fm.find_cnf(cnf, max_diff_tokens=D)
            assert (b.count, b.approx, b.anchor_total) == (a.count, a.approx, a.anchor_total), (cnf, D)
            for f in ("doc_ix", "start", "end", "anchor"):
                assert getattr(b, f).tolist() == getattr(a, f).tolist(), (cnf, D, f)
            matched += a.count > 0
        r = fm.count_cnf(cnf, max_clause_freq=3, max_diff_tokens=30, seed=2)
        assert r == sa.count_cnf(cnf, max_clause_freq=3, max_diff_tokens=30, seed=2), cnf
    assert matched >= 20


@pytest.mark.parametrize("name", ["synth", "random", "real", "shards", "u16"])
def test_queries_match_sa_backend(pairs, name):
    sa, fm = pairs[name]
    assert fm.manifest["backend"] == "fm"
    assert (fm.n_docs, fm.n_tokens, fm.n_shards) == (sa.n_docs, sa.n_tokens, sa.n_shards)
    qs = _queries(sa, len(name))
    for q in qs:
        c = sa.count(q)
        assert fm.count(q) == c, q
        if c:
            # non-empty shard ranges are equal; an empty one is (x, x) for some x
            for (a, b), (x, y) in zip(fm.find(q), sa.find(q)):
                assert (a, b) == (x, y) if x < y else a == b
            lf, ls = fm.locate(q, 30), sa.locate(q, 30)
            assert np.array_equal(lf.doc_ix, ls.doc_ix) and np.array_equal(lf.offset, ls.offset)
        else:
            assert all(lo == hi for lo, hi in fm.find(q))
    assert fm.count([]) == sa.count([]) == sa.n_tokens
    assert np.array_equal(fm.count_many(qs, n_threads=2), sa.count_many(qs, n_threads=2))
    assert fm.find([]) == sa.find([])


@pytest.mark.parametrize("name", ["synth", "random", "shards", "u16"])
def test_every_pair_and_triple(pairs, name):
    """Searches start from fm.bin's pair table (alphabets of <= 256 codes) or
    from C alone (larger ones; the u16 corpus has more tokens): every
    two-token query over the corpus's tokens and an absent token, and
    three-token ones, count and find as the SA backend does."""
    sa, fm = pairs[name]
    toks = sorted({int(t) for d in range(sa.n_docs) for t in sa.get_doc(d).tokens})
    assert (len(toks) > 256) == (name == "u16")
    absent = next(t for t in range(1, 255) if t not in set(toks))
    pool = (toks if len(toks) <= 24 else random.Random(5).sample(toks, 24)) + [absent]
    qs = [[a, b] for a in pool for b in pool] + [[a] for a in pool]
    rng = random.Random(len(name))
    qs += [[rng.choice(pool) for _ in range(3)] for _ in range(300)]
    for q in qs:
        assert fm.count(q) == sa.count(q), q
        if sa.count(q):
            assert [r for r in fm.find(q) if r[0] < r[1]] == [r for r in sa.find(q) if r[0] < r[1]], q
    assert np.array_equal(fm.count_many(qs, n_threads=2), sa.count_many(qs, n_threads=2))


@pytest.mark.parametrize("name", ["synth", "random", "real", "shards", "u16"])
def test_documents_match(pairs, name):
    sa, fm = pairs[name]
    for d in range(sa.n_docs):
        a, b = sa.get_doc(d), fm.get_doc(d)
        assert a.tokens.dtype == b.tokens.dtype
        assert np.array_equal(a.tokens, b.tokens), d
        assert a.text == b.text and a.metadata == b.metadata
    rng = random.Random(3)
    for _ in range(30):
        d = rng.randrange(sa.n_docs)
        n = sa.doc_length(d)
        o = rng.randrange(n + 1)
        ln = rng.randrange(n - o + 1)
        ctx = rng.choice([0, 3, 50])
        wa, wb = sa.window(d, o, ln, context=ctx), fm.window(d, o, ln, context=ctx)
        assert (wa.start, wa.end, wa.text) == (wb.start, wb.end, wb.text)
        assert np.array_equal(wa.tokens, wb.tokens)


@pytest.mark.parametrize("name", ["synth", "real", "shards"])
def test_search_docs_and_sa_at(pairs, name):
    sa, fm = pairs[name]
    for q in ["hello", "the", "a", "def ", "import", "zzz-absent-zzz"]:
        ma, mb = sa.search_docs(q, maxnum=5, context=10), fm.search_docs(q, maxnum=5, context=10)
        assert [(m.doc_ix, m.offset, m.text) for m in ma] == [(m.doc_ix, m.offset, m.text) for m in mb]
        sa_s = sa.search_docs(q, maxnum=4, sample=True, seed=1)
        fm_s = fm.search_docs(q, maxnum=4, sample=True, seed=1)
        assert [(m.doc_ix, m.offset) for m in sa_s] == [(m.doc_ix, m.offset) for m in fm_s]
    for s in range(sa.n_shards):
        n = sa._engine.shard_n_positions(s)
        for r in random.Random(s).sample(range(n), min(n, 200)):
            assert fm._engine.sa_at(s, r) == sa._engine.sa_at(s, r)
            pos = sa._engine.sa_at(s, r)
            assert fm._engine.position_to_doc(s, pos) == sa._engine.position_to_doc(s, pos)


def test_shard_token_ranges(pairs):
    sa, fm = pairs["shards"]
    assert sa.n_shards > 1
    rng = random.Random(5)
    for s in range(sa.n_shards):
        n = sa._engine.shard_n_positions(s)
        assert np.array_equal(fm._engine.tokens(s, 0, n), sa._engine.tokens(s, 0, n))  # separators included
        for _ in range(50):
            a = rng.randrange(n + 1)
            b = rng.randrange(a, n + 1)
            assert np.array_equal(fm._engine.tokens(s, a, b), sa._engine.tokens(s, a, b))
    with pytest.raises(IndexError):
        fm._engine.tokens(0, 0, 10**12)


def test_errors_and_files(pairs, tmp_path):
    sa, fm = pairs["synth"]
    with pytest.raises(ValueError):
        fm.count([255])  # the separator
    with pytest.raises(IndexError):
        fm.get_doc(fm.n_docs)
    names = set(os.listdir(os.path.join(fm.path, "shard-00000")))
    assert {"fm.bin", "fm_sa.bin", "fm_isa.bin", "doc_offsets.bin", "meta.bin", "meta_offsets.bin"} == names
    fm.verify()
    assert infinigram.Index(fm.path, verify=True).count("hello") == sa.count("hello")
    with pytest.raises(ValueError):
        infinigram.build([], str(tmp_path / "x"), backend="nope", progress=False)


def test_engine_u32_and_edge_corpora(tmp_path):
    """Engine level, raw token files: u32 with sparse huge ids, one-symbol texts, tiny shards."""
    rng = np.random.default_rng(11)
    cases = [
        (4, [rng.choice(np.array([5, 70000, 2**31, 2**32 - 2], np.uint32), size=rng.integers(0, 80)) for _ in range(30)]),
        (4, [rng.integers(0, 100000, size=rng.integers(0, 120)).astype(np.uint32) for _ in range(30)]),
        (1, [np.full(50, 97, np.uint8)]),
        (1, [np.zeros(0, np.uint8), np.array([1], np.uint8)]),
        (2, [rng.integers(0, 3, size=300).astype(np.uint16) for _ in range(3)]),
        (1, [rng.integers(0, 255, size=rng.integers(0, 500)).astype(np.uint8) for _ in range(20)]),
    ]
    for ci, (width, docs) in enumerate(cases):
        d = tmp_path / f"c{ci}"
        d.mkdir()
        T = write_raw_shard(d, width, docs)
        sep = (1 << (8 * width)) - 1
        w = _core.build_suffix_array(str(d / "t.bin"), str(d / "sa.bin"), width)
        for ss, it in [(1, 1), (3, 4), (32, 64)]:
            _core.fm_build(str(d / "t.bin"), str(d / "sa.bin"), w, width, str(d / "fm.bin"), str(d / "fs.bin"),
                           str(d / "fi.bin"), ss, it, 2)
            e = _core.Engine(width, [(str(d / "t.bin"), str(d / "sa.bin"), str(d / "d.bin"), w)])
            f = _core.FMEngine(width, [(str(d / "fm.bin"), str(d / "fs.bin"), str(d / "fi.bin"), str(d / "d.bin"))])
            n = len(T)
            assert np.array_equal(f.tokens(0, 0, n), T)
            assert [f.sa_at(0, r) for r in range(n)] == [e.sa_at(0, r) for r in range(n)]
            for _ in range(100):
                p = int(rng.integers(0, n))
                q = [int(x) for x in T[p:p + int(rng.integers(1, 6))] if x != sep] or [1]
                assert f.count(q) == e.count(q)
                if e.count(q):
                    assert f.find(q) == e.find(q)
                    assert all(np.array_equal(a, b) for a, b in zip(f.locate(q, 1000), e.locate(q, 1000)))


def test_cli_backend_fm(tmp_path):
    from infinigram.cli import main

    src = write_jsonl(str(tmp_path / "c.jsonl"), synthetic_records())
    out = str(tmp_path / "idx")
    assert main(["build", src, "-o", out, "--backend", "fm", "--sa-sample", "8", "--isa-sample", "16",
                 "--wt-block-bits", "5", "--no-progress"]) == 0
    idx = infinigram.Index(out)
    assert idx.manifest["backend"] == "fm"
    assert idx.manifest["fm"] == {"sa_sample": 8, "isa_sample": 16, "wt_block_bits": 5}
    assert idx.count("hello") == 4


@pytest.mark.parametrize("kw, msg", [({"sa_sample": 0}, "sa_sample"), ({"isa_sample": 0}, "isa_sample"),
                                     ({"wt_block_bits": 63}, "wt_block_bits"), ({"wt_block_bits": -1}, "wt_block_bits")])
def test_bad_fm_parameters(tmp_path, kw, msg):
    """Bad FM parameters fail before any input is read, and leave no output."""
    src = write_jsonl(str(tmp_path / "c.jsonl"), synthetic_records())
    out = tmp_path / "idx"
    with pytest.raises(ValueError, match=msg):
        infinigram.build(src, str(out), progress=False, backend="fm", **kw)
    assert not out.exists()


def test_extraction_sampling_and_threads(tmp_path):
    """Long ranges (many LF walks in lock step, split over threads) for sampling
    rates where isa_sample is not a multiple of sa_sample (ISA samples name the
    SA sample at or after them), on a skewed text (deep Huffman codes, runs)."""
    rng = np.random.default_rng(3)
    probs = 1.0 / np.arange(1, 201) ** 1.2
    docs = []
    for _ in range(40):
        x = rng.choice(200, size=int(rng.integers(0, 4000)), p=probs / probs.sum()).astype(np.uint8)
        if rng.random() < 0.3:  # long runs: all-zero / all-one blocks in the tree's bit vectors
            x[: len(x) // 2] = 7
        docs.append(x)
    T = write_raw_shard(tmp_path, 1, docs)
    w = _core.build_suffix_array(str(tmp_path / "t.bin"), str(tmp_path / "sa.bin"), 1)
    n = len(T)
    for ss, it in [(32, 64), (16, 4), (7, 3), (5, 12), (64, 16), (3, 1000)]:
        p = [str(tmp_path / f"{k}{ss}_{it}.bin") for k in ("fm", "fs", "fi")]
        _core.fm_build(str(tmp_path / "t.bin"), str(tmp_path / "sa.bin"), w, 1, *p, ss, it, 2)
        f = _core.FMEngine(1, [(*p, str(tmp_path / "d.bin"))])
        for th in (1, 2, 3):
            assert np.array_equal(f.tokens(0, 0, n, th), T), (ss, it, th)
        for _ in range(40):
            a = int(rng.integers(0, n + 1))
            b = int(rng.integers(a, min(n, a + 20000) + 1))
            assert np.array_equal(f.tokens(0, a, b, 2), T[a:b]), (ss, it, a, b)


def test_old_fm_version_rejected(tmp_path):
    T = np.array([255, 1, 2, 3, 255, 4, 5], np.uint8)
    T.tofile(tmp_path / "t.bin")
    np.array([0, 4, 7], np.uint64).tofile(tmp_path / "d.bin")
    w = _core.build_suffix_array(str(tmp_path / "t.bin"), str(tmp_path / "sa.bin"), 1)
    p = [str(tmp_path / k) for k in ("fm.bin", "fs.bin", "fi.bin")]
    _core.fm_build(str(tmp_path / "t.bin"), str(tmp_path / "sa.bin"), w, 1, *p, 2, 2, 1)
    b = bytearray(open(p[0], "rb").read())
    b[24:32] = (1).to_bytes(8, "little")  # section 2: the version
    open(p[0], "wb").write(bytes(b))
    with pytest.raises(ValueError, match="version 1"):
        _core.FMEngine(1, [(*p, str(tmp_path / "d.bin"))])
