"""FM-index lock-step searches: FMShard::find_multi (one query in several
shards, used by FMEngine.count / find) and FMShard::find_group (several
queries in one shard, used by count_many) give exactly what the sequential
backward search gives: counts equal brute force and the SA backend, non-empty
per-shard ranges equal the SA backend's, empty ones are (0, 0), the empty
query counts every token. u8/u16/u32 tokens, 1 to 17 shards (more than one
lock-step group of 16)."""

from __future__ import annotations

import random
from typing import List, Tuple

import numpy as np
import pytest

from infinigram import _core

from conftest import write_raw_shard


def _shards(tmp_path, width: int, docs: List[np.ndarray], n_shards: int, ss: int, it: int):
    """Splits docs over n_shards raw shards; returns (SA engine, FM engine, per-shard texts)."""
    sa_specs, fm_specs, texts = [], [], []
    for s in range(n_shards):
        d = tmp_path / f"w{width}s{n_shards}_{s}"
        d.mkdir()
        T = write_raw_shard(d, width, docs[s::n_shards])
        w = _core.build_suffix_array(str(d / "t.bin"), str(d / "sa.bin"), width)
        _core.fm_build(str(d / "t.bin"), str(d / "sa.bin"), w, width, str(d / "fm.bin"), str(d / "fs.bin"),
                       str(d / "fi.bin"), ss, it, 1, wt_block_bits=6 + s)  # several wavelet blocks per shard
        sa_specs.append((str(d / "t.bin"), str(d / "sa.bin"), str(d / "d.bin"), w))
        fm_specs.append((str(d / "fm.bin"), str(d / "fs.bin"), str(d / "fi.bin"), str(d / "d.bin")))
        texts.append(T)
    return _core.Engine(width, sa_specs), _core.FMEngine(width, fm_specs), texts


def _brute(texts: List[np.ndarray], q: List[int]) -> int:
    m = len(q)
    c = 0
    for T in texts:
        if m == 0 or len(T) < m:
            continue
        win = np.lib.stride_tricks.sliding_window_view(T, m)
        c += int(np.all(win == np.array(q, dtype=T.dtype), axis=1).sum())
    return c


def _queries(rng: random.Random, texts: List[np.ndarray], sep: int, alphabet: List[int], n: int) -> List[List[int]]:
    qs: List[List[int]] = [[]]
    while len(qs) < n:
        T = texts[rng.randrange(len(texts))]
        kind = rng.random()
        if kind < 0.6 and len(T) > 1:
            a = rng.randrange(1, len(T))
            q = [int(x) for x in T[a:a + rng.choice([1, 2, 3, 4, 7, 12, 30])] if x != sep]
        elif kind < 0.8:  # random tokens of the alphabet: mostly absent beyond 2-3 tokens
            q = [rng.choice(alphabet) for _ in range(rng.randint(1, 6))]
        else:  # a token absent everywhere, at the end, the start or the middle
            q = [rng.choice(alphabet) for _ in range(rng.randint(1, 4))]
            q.insert(rng.randint(0, len(q)), sep - 1 if sep - 1 not in alphabet else 0)
        qs.append(q)
    return qs


CASES: List[Tuple[int, int, int, int]] = [  # (width, shards, sa_sample, isa_sample)
    (1, 1, 4, 8), (1, 3, 32, 64), (1, 17, 2, 3), (2, 4, 3, 5), (4, 3, 1, 1), (4, 5, 8, 16),
]


@pytest.mark.parametrize("width,n_shards,ss,it", CASES)
def test_lockstep_matches_sa_and_brute_force(tmp_path, width, n_shards, ss, it):
    rng = random.Random(width * 100 + n_shards)
    sep = (1 << (8 * width)) - 1
    if width == 4:  # sparse huge ids; some only in a few shards
        alphabet = [3, 70000, 2**31, 2**32 - 3]
    elif width == 2:
        alphabet = list(range(40)) + [60000]
    else:
        alphabet = list(range(97, 101))
    docs = []
    for i in range(3 * n_shards + 4):
        local = alphabet if i % 3 else alphabet[: max(1, len(alphabet) // 2)]  # skewed shards
        docs.append(np.array([rng.choice(local) for _ in range(rng.randint(0, 150))], dtype=np.uint64))
    docs.append(np.full(40, alphabet[0], dtype=np.uint64))  # a long run
    e, f, texts = _shards(tmp_path, width, docs, n_shards, ss, it)
    qs = _queries(rng, texts, sep, alphabet, 250)
    n_tokens = sum(len(T) for T in texts) - sum(1 for T in texts for x in T if x == sep)
    for q in qs:
        want = _brute(texts, q) if q else n_tokens
        assert f.count(q) == want == e.count(q), q
        fr, er = f.find(q), e.find(q)
        assert len(fr) == n_shards
        for s, (a, b) in enumerate(fr):
            if not q:
                assert (a, b) == (0, len(texts[s]))
            elif er[s][1] > er[s][0]:
                assert (a, b) == tuple(er[s]), (q, s)
            else:
                assert (a, b) == (0, 0), (q, s)
    # count_many: groups of 16 queries of mixed lengths in one shard (find_group), 1 and 2 threads
    flat = np.array([x for q in qs for x in q], dtype=np.int64)
    offsets = np.cumsum([0] + [len(q) for q in qs]).astype(np.int64)
    want = [e.count(q) for q in qs]
    for threads in (1, 2):
        assert list(f.count_many(flat, offsets, threads)) == want


def test_lockstep_real_text_shards(tmp_path):
    """Byte text with a skewed real-like distribution, 4 shards: counts of n-grams cut from it."""
    rng = np.random.default_rng(5)
    words = [b"the ", b"of ", b"index ", b"suffix ", b"array ", b"fm ", b"\n", b"debian ", b"x"]
    docs = [np.frombuffer(b"".join(words[int(i)] for i in rng.integers(0, len(words), size=int(rng.integers(0, 60)))),
                          dtype=np.uint8).astype(np.uint64) for _ in range(40)]
    e, f, texts = _shards(tmp_path, 1, docs, 4, 32, 64)
    r = random.Random(1)
    qs = _queries(r, texts, 255, list(range(97, 123)), 200)
    for q in qs:
        assert f.count(q) == e.count(q)
    flat = np.array([x for q in qs for x in q], dtype=np.int64)
    offsets = np.cumsum([0] + [len(q) for q in qs]).astype(np.int64)
    assert list(f.count_many(flat, offsets, 1)) == [e.count(q) for q in qs]


def test_lockstep_large_skewed_u16(tmp_path):
    """Zipf-distributed u16 tokens, 2 shards of ~60k tokens: deep wavelet trees whose bit
    vectors span many RRR superblocks and hyperblocks (both walk directions, mixed
    blocks of every class); counts, ranges, count_many and whole-shard extraction."""
    rng = np.random.default_rng(17)
    ranks = np.minimum(rng.zipf(1.3, size=120_000), 3000).astype(np.uint64) * 7
    docs = [ranks[a:a + 1500] for a in range(0, len(ranks), 1500)]
    e, f, texts = _shards(tmp_path, 2, docs, 2, 16, 32)
    r = random.Random(3)
    alphabet = sorted({int(x) for x in ranks[:5000]})
    qs = _queries(r, texts, 65535, alphabet, 200)
    for q in qs:
        assert f.count(q) == e.count(q) == (_brute(texts, q) if q else f.count(q)), q
        for s, ((a, b), (c, d)) in enumerate(zip(f.find(q), e.find(q))):
            if q and d > c:
                assert (a, b) == (c, d)
    flat = np.array([x for q in qs for x in q], dtype=np.int64)
    offsets = np.cumsum([0] + [len(q) for q in qs]).astype(np.int64)
    assert list(f.count_many(flat, offsets, 2)) == [e.count(q) for q in qs]
    for s, T in enumerate(texts):
        assert np.array_equal(f.tokens(s, 0, len(T)), T)
