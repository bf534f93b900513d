"""Index.continuations / continuations_many / Cursors against a brute-force
scan of the documents: random corpora of u8, u16 and u32 tokens, one shard
and several, suffix array and FM-index (with its reversed index, and the
locate fallback without it); a cursor stepped along documents and random
token paths equals the scan at every step, and reorder/reset behave.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest

import infinigram
from infinigram import continuations as C
from infinigram.errors import InfinigramError

END = -1


def brute(docs: List[List[int]], q: Sequence[int]) -> Tuple[Dict[int, int], int, int]:
    """({next token: count}, occurrences, document-end occurrences) by scanning."""
    q = list(q)
    if not q:
        c = Counter(t for d in docs for t in d)
        return dict(c), sum(len(d) for d in docs), 0
    m = len(q)
    c: Counter = Counter()
    occ = end = 0
    for d in docs:
        for i in range(len(d) - m + 1):
            if d[i:i + m] == q:
                occ += 1
                if i + m == len(d):
                    end += 1
                else:
                    c[d[i + m]] += 1
    return dict(c), occ, end


WIDTH_ALPHABET = {1: [0, 1, 2, 3, 200, 254], 2: [0, 7, 300, 301, 40000, 65534], 4: [5, 70000, 70001, 123456, 4000000]}


def random_docs(width: int, seed: int, n_docs: int = 40) -> List[List[int]]:
    rng = random.Random(seed)
    alpha = WIDTH_ALPHABET[width]
    weights = [2 ** -i for i in range(len(alpha))]
    docs = []
    for k in range(n_docs):
        n = rng.choice([0, 1, 2, rng.randint(3, 80)])
        docs.append(rng.choices(alpha, weights, k=n))
    docs.append(alpha[:3] * 5)  # a periodic one
    return docs


@pytest.fixture(scope="module", params=[(w, sh, be) for w in (1, 2, 4) for sh in (False, True) for be in ("sa", "fm")],
                ids=lambda p: f"u{8 * p[0]}-{'shards' if p[1] else 'one'}-{p[2]}")
def corpus(request, tmp_path_factory):
    width, shards, backend = request.param
    docs = random_docs(width, seed=width * 10 + shards)
    dt = {1: np.uint8, 2: np.uint16, 4: np.uint32}[width]
    d = tmp_path_factory.mktemp(f"cont{width}{shards}{backend}")
    kw = dict(progress=False, backend=backend, shard_size=(150 if shards else None))
    if backend == "fm":
        kw.update(sa_sample=4, isa_sample=4)
    infinigram.build_from_tokens([np.asarray(x, dtype=dt) for x in docs], str(d / "idx"), dtype=dt, **kw)
    ix = infinigram.Index(str(d / "idx"))
    assert ix.token_width == width
    assert (ix.n_shards > 1) == shards
    return docs, str(d / "idx"), ix


def prefixes(docs: List[List[int]], seed: int, n: int = 80) -> List[List[int]]:
    rng = random.Random(seed)
    out: List[List[int]] = [[]]
    full = [d for d in docs if d]
    for _ in range(n):
        d = rng.choice(full)
        L = rng.randint(1, min(7, len(d)))
        i = rng.randint(0, len(d) - L)
        out.append(d[i:i + L])
    alpha = sorted({t for d in docs for t in d})
    out += [[rng.choice(alpha) for _ in range(rng.randint(1, 4))] for _ in range(10)]
    out += [d[-3:] for d in full[:5]] + [d[:2] for d in full[:5]]  # document ends and starts
    return out


def check(c: "C.Continuations", docs: List[List[int]], q: Sequence[int]) -> None:
    want, occ, end = brute(docs, q)
    assert c.as_dict() == want, q
    assert (c.count, c.end_count) == (occ, end), q
    assert list(c.tokens) == sorted(want)
    assert int(c.counts.sum()) == occ - end


def test_continuations_equal_brute_force(corpus):
    docs, path, ix = corpus
    qs = prefixes(docs, 1)
    if ix.backend == "fm":  # without the reversed index: every occurrence located
        assert not C.has_reverse(ix)
        for q in qs[:30]:
            check(ix.continuations(q), docs, q)
        with pytest.raises(InfinigramError, match="infinigram reverse"):
            C.Cursors(ix, 1)
        C.build_reverse(path)
        ix = infinigram.Index(path)
        assert C.has_reverse(ix)
    for q in qs:
        check(ix.continuations(q), docs, q)
    batch = ix.continuations_many(qs, n_threads=2)
    assert len(batch) == len(qs)
    for i, q in enumerate(qs):
        check(batch[i], docs, q)


def test_cursors_step_like_brute_force(corpus):
    docs, path, ix = corpus
    if ix.backend == "fm" and not C.has_reverse(ix):
        C.build_reverse(path)
        ix = infinigram.Index(path)
    rng = random.Random(7)
    alpha = sorted({t for d in docs for t in d})
    full = [d for d in docs if len(d) >= 6]
    paths = [rng.choice(full)[:8] for _ in range(3)]
    # a path that follows continuations at random (long common prefixes), and one that leaves the corpus
    walk: List[int] = []
    for _ in range(10):
        want, _, _ = brute(docs, walk)
        if not want:
            break
        walk.append(rng.choice(sorted(want)))
    paths.append(walk)
    paths.append([alpha[0], alpha[-1], alpha[-1], alpha[0], alpha[0], alpha[-1]])
    B = len(paths)
    cur = C.Cursors(ix, B)
    first = cur.step()
    for b in range(B):
        check(first[b], docs, [])
    L = max(len(p) for p in paths)
    for k in range(L):
        toks = [p[k] if k < len(p) else -1 for p in paths]
        res = cur.step(toks)
        for b, p in enumerate(paths):
            q = p[:min(k + 1, len(p))]
            check(res[b], docs, q)
            assert cur.counts()[b] == brute(docs, q)[1]
    # beam-style reorder, then reset of one row
    cur.reorder([B - 1] + list(range(B - 1)))
    res = cur.step()
    check(res[0], docs, paths[-1])
    check(res[1], docs, paths[0])
    cur.reset([0])
    res = cur.step([alpha[1]] + [-1] * (B - 1))
    check(res[0], docs, [alpha[1]])
    # an id the index cannot hold: that prefix no longer occurs
    res = cur.step([ix.separator + 5] + [-1] * (B - 1))
    assert len(res[0]) == 0 and res.count[0] == 0


def test_bad_ids(corpus):
    _, _, ix = corpus
    with pytest.raises(ValueError):
        ix.continuations([ix.separator])
    with pytest.raises(ValueError):
        ix.continuations([-1])
