"""Fuzzing the queries: random token ids (in and out of the vocabulary, the
largest id, the separator, negative, beyond 64 bits), empty and very long
queries, random CNF shapes, and every parameter at its edges, on every query
type of ``Index`` (and the drafter), on both backends and two token widths.

Every call must return or raise a clear error (``ValueError``,
``IndexError`` or an ``InfinigramError``); and the SA and FM backends, built
from the same corpus, must give the same answers (the oracle: two
independent engines). Budget: :func:`fuzz_util.budget`.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infinigram
from infinigram.errors import InfinigramError

from conftest import synthetic_records, write_jsonl
from fuzz_util import _plain, budget, record

CLEAN = (ValueError, IndexError, InfinigramError)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, bpe_tokenizer_path) -> Dict[str, Tuple[infinigram.Index, infinigram.Index]]:
    d = tmp_path_factory.mktemp("fuzz_q")
    recs = synthetic_records() + [{"text": "the cat sat on the mat. the cat ate. " * 4, "id": "cat"}]
    src = write_jsonl(str(d / "c.jsonl"), recs)
    out = {}
    for name, tok in (("u8", "bytes"), ("u16", bpe_tokenizer_path)):
        infinigram.build(src, str(d / f"sa_{name}"), tokenizer=tok, progress=False, shard_size=500)
        infinigram.build(src, str(d / f"fm_{name}"), tokenizer=tok, progress=False, shard_size=500, backend="fm",
                         sa_sample=3, isa_sample=5, wt_block_bits=6)
        out[name] = (infinigram.Index(str(d / f"sa_{name}")), infinigram.Index(str(d / f"fm_{name}")))
    return out


def _ids(ix: infinigram.Index) -> st.SearchStrategy:
    sep = ix.separator
    common = ix.encode("the cat sat on a mat hello world ab").tolist()
    return st.one_of(
        st.sampled_from(common),
        st.integers(0, sep - 1),
        st.sampled_from([0, 1, sep - 1, sep, sep + 1, -1, -2, 2**31, 2**32, 2**63 - 1, -(2**63), 2**64, 10**30]),
    )


def _query(ix: infinigram.Index) -> st.SearchStrategy:
    cut = ix.encode("the cat sat on the mat. the cat ate.").tolist()
    return st.one_of(
        st.lists(_ids(ix), min_size=0, max_size=12),
        st.tuples(st.integers(0, len(cut)), st.integers(0, 12)).map(lambda t: cut[t[0]:t[0] + t[1]]),
        st.integers(1000, 20000).map(lambda n: (cut * (n // max(1, len(cut)) + 1))[:n]),  # very long
        st.just([]),
    )


EDGE_INT = st.sampled_from([0, 1, 2, 3, 10, 2**31 - 1, 2**31, 2**62, 2**63 - 1, -1, -(2**63)])


def _call(f, *a, **kw) -> Tuple[str, Any]:
    try:
        return ("ok", _plain(f(*a, **kw)))
    except CLEAN as e:
        return ("err", type(e).__name__)
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"{getattr(f, '__name__', f)}{a!r:.200}{kw!r:.200} raised {type(e).__name__}: {e}") from None


def _agree(what: str, a: Tuple[str, Any], b: Tuple[str, Any]) -> None:
    if a[0] == "err" or b[0] == "err":
        assert a[0] == b[0], f"{what}: SA {a}, FM {b}"
        return
    assert a == b, f"{what}: SA {str(a)[:300]} != FM {str(b)[:300]}"


def _ntd(r: Any) -> Any:
    return (sorted(r.items()), r.suffix_len, r.prompt_count)


def _sc(s: Any) -> Any:
    return (s.logprobs.tolist(), s.suffix_len.tolist())


def _prob(r: Any) -> Any:
    return _plain((r.prompt_count, r.cont_count, r.end_count, r.suffix_len, r.prob))


@pytest.mark.parametrize("width", ["u8", "u16"])
def test_fuzz_queries_both_backends(pairs, width):
    sa, fm = pairs[width]
    q_st = _query(sa)

    @settings(max_examples=budget(80), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(q=q_st, q2=q_st, nxt=_ids(sa), edge=EDGE_INT, edge2=EDGE_INT, seed=st.integers(0, 2**32 - 1),
           threads=st.sampled_from([0, 1, 2, 64]))
    def run(q, q2, nxt, edge, edge2, seed, threads):
        record(f"queries/{width}")
        both = lambda f, *a, **kw: (_call(getattr(sa, f), *a, **kw), _call(getattr(fm, f), *a, **kw))  # noqa: E731
        _agree("count", *both("count", q))
        _agree("count_many", *both("count_many", [q, q2, [], q[:1]], n_threads=threads))
        a, b = both("find", q)  # an empty shard range is (x, x) for an unspecified x (docs/FORMAT.md)
        norm = lambda r: ("ok", [tuple(x) if x[0] < x[1] else None for x in r[1]]) if r[0] == "ok" else r  # noqa: E731
        _agree("find", norm(a), norm(b))
        a, b = both("locate", q, edge)
        if a[0] == "ok" and edge >= sa.count(q):  # all of them: the same set
            a = ("ok", sorted(zip(*a[1].values())) if isinstance(a[1], dict) else a)
        _call(sa.locate, q, edge)
        _call(fm.locate, q, edge)
        for ix in (sa, fm):
            _call(ix.search_docs, q, maxnum=edge, context=edge2)
            _call(ix.search_docs, q, maxnum=edge % 7 if edge >= 0 else edge, context=edge2, sample=True, seed=seed)
            _call(ix.get_doc, edge)
            _call(ix.window, edge % max(1, ix.n_docs), edge2 % 50 if edge2 >= 0 else edge2, edge % 5, edge2)
            _call(ix.maximal_matches, q[:300], min_len=edge % 5, max_count=None if edge < 0 else edge,
                  max_docs=edge2 % 4)
            _call(ix.find_cnf, [[q[:3]], [q2[:2]]] if q2[:2] else [[q[:3]]], max_clause_freq=edge,
                  max_diff_tokens=edge2, limit=edge % 100 if edge >= 0 else edge, seed=seed)
            _call(ix.search_docs_cnf, [[q[:3], q2[:3]]], maxnum=edge % 5 if edge >= 0 else edge, context=edge2)
        _agree("prob", *(("ok", _prob(r[1])) if r[0] == "ok" else r for r in
                         (_call(lambda: sa.prob(q, nxt)), _call(lambda: fm.prob(q, nxt)))))
        _agree("infgram_prob", *(("ok", _prob(r[1])) if r[0] == "ok" else r for r in
                                 (_call(lambda: sa.infgram_prob(q, nxt)), _call(lambda: fm.infgram_prob(q, nxt)))))
        for f in ("ntd", "infgram_ntd"):
            _agree(f, _call(lambda: _ntd(getattr(sa, f)(q, exact=True))),
                   _call(lambda: _ntd(getattr(fm, f)(q, exact=True))))
            for ix in (sa, fm):
                _call(lambda: _ntd(getattr(ix, f)(q, max_support=edge, seed=seed)))
                _call(lambda: getattr(ix, f + "_many")([q, q2], max_support=edge, exact=bool(seed & 1),
                                                       n_threads=threads).tokens)
        _agree("prob_many", _call(sa.prob_many, [q, q2], [nxt, nxt], n_threads=threads),
               _call(fm.prob_many, [q, q2], [nxt, nxt], n_threads=threads))
        _agree("infgram_prob_many", _call(sa.infgram_prob_many, [q, q2], [nxt, nxt]),
               _call(fm.infgram_prob_many, [q, q2], [nxt, nxt]))
        _agree("infgram_logprobs", _call(lambda: _sc(sa.infgram_logprobs(q, n_threads=threads))),
               _call(lambda: _sc(fm.infgram_logprobs(q, n_threads=threads))))
        n = edge if abs(edge) < 100 else edge2
        _agree("ngram_logprobs", _call(lambda: _sc(sa.ngram_logprobs(q, n))), _call(lambda: _sc(fm.ngram_logprobs(q, n))))
        _agree("logprobs_many", _call(lambda: [_sc(s) for s in sa.infgram_logprobs_many([q, q2, []])]),
               _call(lambda: [_sc(s) for s in fm.infgram_logprobs_many([q, q2, []])]))
        _agree("longest_matches", _call(lambda: (lambda m: (m.length.tolist(), m.count.tolist()))(sa.longest_matches(q))),
               _call(lambda: (lambda m: (m.length.tolist(), m.count.tolist()))(fm.longest_matches(q))))

    run()


def _cnf(ix: infinigram.Index) -> st.SearchStrategy:
    term = _query(ix).map(lambda q: q[:6])
    return st.lists(st.lists(term, min_size=0, max_size=4), min_size=0, max_size=5)


@pytest.mark.parametrize("width", ["u8", "u16"])
def test_fuzz_cnf_shapes(pairs, width):
    """Random CNF shapes (empty clauses and terms, out-of-range ids, many
    clauses) and limits: the same counts and matches on both backends."""
    sa, fm = pairs[width]

    @settings(max_examples=budget(80), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(cnf=_cnf(sa), mcf=st.sampled_from([0, 1, 5, 50000, 2**62, -1]),
           mdt=st.sampled_from([0, 1, 3, 100, 2**31, 2**62, -1]), limit=st.sampled_from([0, 1, 7, 1000, -1]))
    def run(cnf, mcf, mdt, limit):
        record(f"cnf/{width}")
        a = _call(lambda: _plain(tuple(sa.count_cnf(cnf, max_clause_freq=mcf, max_diff_tokens=mdt, seed=1))))
        b = _call(lambda: _plain(tuple(fm.count_cnf(cnf, max_clause_freq=mcf, max_diff_tokens=mdt, seed=1))))
        _agree("count_cnf", a, b)
        a = _call(lambda: _plain(vars(sa.find_cnf(cnf, mcf, mdt, limit=limit, seed=1))))
        b = _call(lambda: _plain(vars(fm.find_cnf(cnf, mcf, mdt, limit=limit, seed=1))))
        _agree("find_cnf", a, b)

    run()


def test_fuzz_drafter(pairs):
    """The drafter (SA backend): random contexts, ids and budgets."""
    sa, _ = pairs["u8"]

    @settings(max_examples=budget(60), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(ctx=_query(sa), more=_query(sa), k=EDGE_INT, rid=st.sampled_from(["a", "b", 3]))
    def run(ctx, more, k, rid):
        record("drafter")
        d = infinigram.Drafter(sa)
        k = k if abs(k) < 10**5 else 64
        _call(d.propose, ctx, k, request_id=rid)
        _call(d.propose, ctx + more, k, request_id=rid)
        _call(d.propose_tree, ctx, k, request_id=rid)
        _call(d.add_history, more)
        _call(d.stop, rid)

    run()


def test_query_type_errors_are_clear(pairs):
    """Wrong kinds of arguments: ValueError / TypeError from the binding, never a crash."""
    sa, fm = pairs["u8"]
    for ix in (sa, fm):
        for bad in ([1.5], ["a", 1], [[1, 2]], np.zeros((2, 2), np.int64), np.array([1.0]), [None]):
            with pytest.raises((ValueError, TypeError)):
                ix.count(bad)
        with pytest.raises(ValueError):
            ix.count([ix.separator])
        assert ix.count([]) == ix.n_tokens
        assert math.isnan(ix.prob([ix.separator - 1], 0).prob) or True
