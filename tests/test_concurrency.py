"""Concurrency: 16 threads issuing mixed queries on one ``Index`` (both
backends) for a bounded time get exactly the answers the same queries give
serially; a shared ``Drafter`` under concurrent requests gives each request
what it gives alone.

The time per run is ``INFINIGRAM_CONCURRENCY_SECONDS`` (default 3 s per
index; the recorded run used more, see docs/RELIABILITY.md).
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

import pytest

import infinigram

from conftest import real_records, synthetic_records, write_jsonl
from fuzz_util import SLOW, _plain, battery, record

THREADS = 16
SECONDS = float(os.environ.get("INFINIGRAM_CONCURRENCY_SECONDS", "3"))


@pytest.fixture(scope="module")
def indexes(tmp_path_factory) -> Dict[str, infinigram.Index]:
    d = tmp_path_factory.mktemp("conc")
    recs = real_records(8, 6000) + synthetic_records()
    src = write_jsonl(str(d / "c.jsonl"), recs)
    infinigram.build(src, str(d / "sa"), progress=False, shard_size=30_000)
    infinigram.build(src, str(d / "fm"), progress=False, shard_size=30_000, backend="fm", sa_sample=8, isa_sample=8)
    return {"sa": infinigram.Index(str(d / "sa")), "fm": infinigram.Index(str(d / "fm"))}


def _ops(ix: infinigram.Index, seed: int) -> List[Tuple[str, Callable[[], Any]]]:
    rng = random.Random(seed)
    qs = []
    for _ in range(40):
        t = ix.get_doc(rng.randrange(ix.n_docs)).tokens.tolist()
        if len(t) > 3:
            a = rng.randrange(len(t) - 2)
            qs.append(t[a:a + rng.randint(1, 10)])
    ops = battery(ix, qs, list(range(0, ix.n_docs, 2)))
    ops.append(("count_many/threads", lambda: ix.count_many(qs * 20, n_threads=2).tolist()))
    ops.append(("ntd_many", lambda: (lambda r: (r.tokens.tolist(), r.counts.tolist()))(
        ix.infgram_ntd_many(qs[:10], exact=True, n_threads=2))))
    ops.append(("find_cnf", lambda: vars(ix.find_cnf([[qs[0][:2]], [qs[3][:1], qs[4][:2]]], max_diff_tokens=60,
                                                      seed=3, limit=50))))
    ops.append(("search_docs_sampled", lambda: [(m.doc_ix, m.offset, m.metadata) for m in
                                                ix.search_docs(qs[1][:2], maxnum=5, sample=True, seed=9)]))
    ops.append(("maximal_matches", lambda: [vars(m) for m in ix.maximal_matches(sum(qs[:5], []), max_docs=3)]))
    return ops


@pytest.mark.parametrize("backend", ["sa", "fm"])
def test_threads_answer_as_serial(indexes, backend):
    ix = indexes[backend]
    ops = _ops(ix, 1)
    expected = {name: _plain(f()) for name, f in ops}
    done = [0] * THREADS
    errors: List[str] = []
    stop = time.monotonic() + SECONDS * SLOW
    start = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        rng = random.Random(t)
        start.wait()
        try:
            while time.monotonic() < stop and not errors:
                name, f = ops[rng.randrange(len(ops))]
                got = _plain(f())
                if got != expected[name]:
                    errors.append(f"thread {t}: {name}: {str(got)[:200]} != {str(expected[name])[:200]}")
                done[t] += 1
        except Exception as e:  # noqa: BLE001
            errors.append(f"thread {t}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]
    record(f"concurrency/{backend}/queries", sum(done))
    assert sum(done) >= THREADS * 5 and min(done) > 0


def test_drafter_shared_between_threads(indexes):
    """One Drafter, 16 threads: each drives its own request (incremental
    contexts, chains and trees), and some share the anonymous request with
    whole contexts. Every proposal equals what a Drafter alone gives."""
    ix = indexes["sa"]
    rng = random.Random(4)
    docs = [ix.get_doc(i).tokens.tolist() for i in range(ix.n_docs)]
    docs = [d for d in docs if len(d) > 200]
    ctxs = []
    for t in range(THREADS):
        d = docs[t % len(docs)]
        a = rng.randrange(len(d) - 150)
        ctxs.append(d[a:a + 150])

    def script(drafter: infinigram.Drafter, t: int) -> List[Any]:
        out: List[Any] = []
        ctx = ctxs[t]
        for cut in range(20, 150, 13):
            if t % 4 == 0:  # the anonymous request, whole contexts each time
                out.append(drafter.propose(ctx[:cut], 8))
            else:
                out.append(drafter.propose(ctx[:cut], 8, request_id=f"r{t}"))
                tree = drafter.propose_tree(ctx[:cut], 12, request_id=f"r{t}")
                out.append((tree.tokens, tree.parents))
        return out

    expected = {t: script(infinigram.Drafter(ix, learn=None), t) for t in range(THREADS)}
    shared = infinigram.Drafter(ix, learn=None)
    errors: List[str] = []
    rounds = [0]
    stop = time.monotonic() + SECONDS * SLOW
    barrier = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        barrier.wait()
        try:
            while time.monotonic() < stop and not errors:
                got = script(shared, t)
                if got != expected[t]:
                    errors.append(f"thread {t}: {got[:3]} != {expected[t][:3]}")
                rounds[0] += 1
                shared.stop(f"r{t}", learn=None)
        except Exception as e:  # noqa: BLE001
            errors.append(f"thread {t}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
    record("concurrency/drafter/scripts", rounds[0])
    assert rounds[0] >= THREADS
