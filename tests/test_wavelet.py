"""Huffman-shaped wavelet trees (csrc/wavelet.hpp) on plain and RRR bit vectors,
one tree or one per block of 2^b symbols (ranks, pairs and ranges falling in
one block, across blocks and on block boundaries), RRR trees with their
near-incompressible nodes plain, all plain or none: access, rank, rank pairs,
select and distinct-symbol enumeration vs naive."""

from __future__ import annotations

import numpy as np
import pytest

from infinigram import _core


def _sequences():
    rng = np.random.default_rng(3)
    yield "single", np.full(100, 3, np.uint32), 5
    yield "two", rng.integers(0, 2, 500).astype(np.uint32), 2
    yield "bytes-skewed", np.minimum(rng.geometric(0.15, 3000) - 1, 255).astype(np.uint32), 256
    yield "uniform", rng.integers(0, 40, 3000).astype(np.uint32), 40
    yield "sparse-alphabet", rng.choice(np.array([0, 7, 1000, 4999], np.uint32), 2000), 5000
    yield "runs", np.repeat(rng.integers(0, 30, 300), rng.integers(1, 30, 300)).astype(np.uint32), 30
    yield "large", rng.zipf(1.3, 4000).clip(max=60000).astype(np.uint32), 60001


@pytest.mark.parametrize("block_bits", [0, 3, 6, 9])
@pytest.mark.parametrize("kind, plain_ratio", [
    ("plain", -1.0),
    ("rrr", -1.0),   # the default split: incompressible nodes plain
    ("rrr", 0.0),    # every node plain
    ("rrr", 100.0),  # every node RRR
])
def test_wavelet_against_naive(kind, plain_ratio, block_bits):
    rng = np.random.default_rng(9)
    for name, seq, sigma in _sequences():
        n = len(seq)
        syms = np.unique(seq)
        rq = np.stack([np.concatenate([rng.choice(syms, 200), rng.integers(0, sigma, 50)]),
                       rng.integers(0, n + 1, 250)], axis=1).astype(np.int64)
        sq = []
        for c in syms[:50]:
            occ = np.flatnonzero(seq == c)
            for k in rng.integers(0, len(occ), 5):
                sq.append((c, k))
        sq = np.array(sq, np.int64).reshape(-1, 2)
        gq = np.sort(rng.integers(0, n + 1, (60, 2)), axis=1).astype(np.int64)
        if block_bits:  # block boundaries: ranks at them and ranges starting / ending there
            edges = np.arange(0, n + 1, 1 << block_bits)
            rq = np.concatenate([rq, np.stack([rng.choice(syms, len(edges)), edges], axis=1)]).astype(np.int64)
            gq = np.concatenate([gq, np.stack([edges, np.minimum(edges + rng.integers(1, 3 << block_bits, len(edges)), n)], axis=1),
                                 np.stack([np.maximum(edges - rng.integers(1, 3 << block_bits, len(edges)), 0), edges], axis=1)])
            gq = np.sort(gq, axis=1).astype(np.int64)
        acc, accr, rk, r2, sel, dist = _core._fm_wavelet_check(seq, sigma, kind, block_bits, plain_ratio, rq, sq, gq)
        assert np.array_equal(acc, seq), name
        # access_rank: occurrences of seq[i] before i
        want_accr = np.array([np.count_nonzero(seq[:i] == seq[i]) for i in range(n)])
        assert np.array_equal(accr, want_accr), name
        for (c, i), got, g2 in zip(rq, rk, r2):
            assert got == np.count_nonzero(seq[:i] == c), (name, c, i)
            assert int(g2) >> 32 == np.count_nonzero(seq[:i // 2] == c) and int(g2) & 0xFFFFFFFF == got
        for (c, k), got in zip(sq, sel):
            assert got == np.flatnonzero(seq == c)[k], (name, c, k)
        for (i, j), got in zip(gq, dist):
            want = [(int(c), int(np.count_nonzero(seq[:i] == c)), int(np.count_nonzero(seq[:j] == c)))
                    for c in np.unique(seq[i:j])]
            assert got == want, (name, i, j)
