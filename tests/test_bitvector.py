"""Bit vectors of the FM-index (csrc/bitvector.hpp): rank/select/access of the
plain and RRR vectors and of Elias–Fano sets, against naive numpy answers."""

from __future__ import annotations

import numpy as np
import pytest

from infinigram import _core


def _patterns():
    rng = np.random.default_rng(42)
    yield "empty", np.zeros(0, np.uint8)
    yield "one", np.ones(1, np.uint8)
    for n in (62, 63, 64, 65, 126, 127, 4031, 4032, 4033, 8064, 10000):
        yield f"rand{n}", rng.integers(0, 2, n).astype(np.uint8)
    yield "zeros", np.zeros(9000, np.uint8)
    yield "ones", np.ones(9000, np.uint8)
    for p in (0.01, 0.1, 0.5, 0.9, 0.99):
        yield f"dens{p}", (rng.random(20000) < p).astype(np.uint8)
    runs = np.repeat(rng.integers(0, 2, 400), rng.integers(1, 200, 400)).astype(np.uint8)
    yield "runs", runs
    # RRR: 31-bit blocks, superblocks of 24 blocks (744 bits), directories per 64 superblocks
    for n in (30, 31, 32, 743, 744, 745, 1488, 47615, 47616, 47617):
        yield f"rand{n}", rng.integers(0, 2, n).astype(np.uint8)
    blocks = []  # every class k = 0..31 of a block, each at several random bit sets
    for k in range(32):
        for _ in range(40):
            blk = np.zeros(31, np.uint8)
            blk[rng.choice(31, size=k, replace=False)] = 1
            blocks.append(blk)
    order = rng.permutation(len(blocks))
    yield "classes", np.concatenate([blocks[i] for i in order])


@pytest.mark.parametrize("kind", ["plain", "rrr"])
def test_rank_select_access(kind):
    for name, bits in _patterns():
        rank, acc, s1, s0, brank, bacc = _core._fm_bitvector_check(kind, bits)
        n = len(bits)
        want_rank = np.concatenate([[0], np.cumsum(bits, dtype=np.int64)])
        assert np.array_equal(rank, want_rank), name
        assert np.array_equal(acc, bits), name
        assert np.array_equal(brank, want_rank), name  # batched: lock-step walks, skip tables
        assert np.array_equal(bacc, bits), name
        assert np.array_equal(s1, np.flatnonzero(bits)), name
        assert np.array_equal(s0, np.flatnonzero(bits == 0)), name
        assert len(rank) == n + 1


def test_elias_fano():
    rng = np.random.default_rng(7)
    for u, m in [(1, 1), (10, 0), (10, 10), (1000, 3), (100000, 3000), (100000, 99000), (2**40, 500)]:
        vals = np.sort(rng.choice(min(u, 10**6), size=m, replace=False)).astype(np.uint64) if u <= 10**6 else \
            np.unique(rng.integers(0, u, m, dtype=np.uint64))
        qs = np.concatenate([vals, rng.integers(0, u, 300, dtype=np.uint64), np.array([0, u - 1, u], np.uint64)])
        sel, rk, ct = _core._fm_eliasfano_check(vals, u, qs)
        assert np.array_equal(sel, vals)
        assert np.array_equal(rk, np.searchsorted(vals, qs, side="left"))
        pos = np.searchsorted(vals, qs, side="left")
        want = np.where((pos < len(vals)) & (vals[np.minimum(pos, max(len(vals) - 1, 0))] == qs if len(vals) else False),
                        pos, -1)
        assert np.array_equal(ct, want)
