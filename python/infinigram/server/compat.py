"""``POST /api``: infini-gram's request and answer shape (its API server and
engine, https://infini-gram.readthedocs.io/en/latest/api.html), so that a
client written for infini-gram works by changing only the URL.

Request: a JSON object with ``index`` (or the older ``corpus``),
``query_type`` and ``query`` (text; ``" AND "`` / ``" OR "`` make it a CNF
where the query type takes one) or ``query_ids`` (a list of ids, or a
triply nested list for a CNF), plus the type's own fields (``maxnum``,
``max_disp_len``, ``max_support``, ``max_clause_freq``, ``max_diff_tokens``,
``doc_ix``, ``s``, ``rank``, ``ptr``). Answer: the fields infini-gram
documents for the type, plus ``latency`` (engine milliseconds),
``token_ids`` and ``tokens``; errors carry ``"error": "<message>"`` with a
4xx status. The mapping and the differences are listed in ``docs/API.md``.

Every answer is computed by :class:`~infinigram.Index`; this module only
reads the request and shapes the result.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from .. import lm
from . import v1
from .errors import ApiError, limit_error
from .query import check_ids, check_len, check_text, cnf_ids, encode, is_cheap, to_list
from .state import IndexEntry, ServerState

__all__ = ["router", "QUERY_TYPES"]

QUERY_TYPES = ("count", "prob", "ntd", "infgram_prob", "infgram_ntd", "search_docs", "search_docs_cnf", "find",
               "find_cnf", "get_doc_by_ix", "get_doc_by_rank", "get_doc_by_ptr")
"""The supported ``query_type`` values."""

CNF_TYPES = ("count", "search_docs", "search_docs_cnf", "find_cnf", "get_doc_by_ptr")
"""Query types that read a query with AND / OR as a CNF."""

INLINE_TYPES = ("count", "prob", "infgram_prob", "find")
"""Query types run on the event loop when their query is short (see state.py)."""

DEFAULT_MAXNUM = 1  # infini-gram's defaults
DEFAULT_MAX_DISP_LEN = 1000
CNF_POOL = 1000
"""search_docs on a CNF samples its documents among the first CNF_POOL matches."""

# Fields of the request that are not parameters of the query (infini-gram's server drops them too).
_IGNORED = ("index", "corpus", "query_type", "query", "query_ids", "engine", "source", "timestamp")

router = APIRouter()


# ================================================================ parsing
def _int_param(body: Dict[str, Any], name: str, default: Optional[int], lo: int, hi: Optional[int],
               limit: Optional[str] = None) -> Optional[int]:
    """An optional integer field in [lo, hi] (hi = the server's limit ``limit`` when given);
    missing: ``default``, lowered to ``hi``."""
    v = body.get(name)
    if v is None:
        return default if default is None or hi is None else min(default, hi)
    if type(v) is not int:
        raise ApiError(422, "invalid_query", f"{name} must be an integer")
    if v < lo:
        raise ApiError(422, "invalid_query", f"{name} must be >= {lo}")
    if hi is not None and v > hi:
        if limit is not None:
            raise limit_error(limit, hi, f"{name} = {v} is too large")
        raise ApiError(422, "invalid_query", f"{name} must be <= {hi}")
    return v


def _is_cnf_ids(q: Any) -> bool:
    return isinstance(q, list) and len(q) > 0 and all(isinstance(c, list) for c in q) and \
        all(isinstance(t, list) for c in q for t in c)


def _split_cnf(text: str) -> List[List[str]]:
    """infini-gram's CNF text: clauses joined by ' AND ', terms by ' OR ' (OR binds tighter)."""
    return [clause.split(" OR ") for clause in text.split(" AND ")]


class _Query:
    """The parsed query: simple ids, or a CNF of ids, with infini-gram's ``token_ids`` / ``tokens`` echoes."""

    def __init__(self, ids: Optional[Any] = None, cnf: Optional[List[List[Any]]] = None) -> None:
        self.ids = ids
        self.cnf = cnf

    def echo(self, e: IndexEntry) -> Dict[str, Any]:
        if self.cnf is not None:
            ids = [[to_list(t) for t in c] for c in self.cnf]
            return {"token_ids": ids, "tokens": [[[e.text.raw_token(x) for x in t] for t in c] for c in ids]}
        if self.ids is None:
            return {}
        lst = to_list(self.ids)
        return {"token_ids": lst, "tokens": [e.text.raw_token(x) for x in lst]}


def _parse_query(e: IndexEntry, st: ServerState, body: Dict[str, Any], qtype: str, required: bool) -> _Query:
    has_q, has_ids = "query" in body, "query_ids" in body
    if has_q and has_ids:
        raise ApiError(400, "invalid_request", "exactly one of query and query_ids must be present")
    if not has_q and not has_ids:
        if required:
            raise ApiError(400, "invalid_request", "exactly one of query and query_ids must be present")
        return _Query()
    s = st.settings
    cnf_ok = qtype in CNF_TYPES
    if has_q:
        q = body["query"]
        if not isinstance(q, str):
            raise ApiError(422, "invalid_query", "query must be a string")
        check_text(q, "query")
        if cnf_ok and (" AND " in q or " OR " in q):
            return _Query(cnf=cnf_ids(e, s, _split_cnf(q)))
        if qtype in ("search_docs_cnf", "find_cnf"):
            return _Query(cnf=cnf_ids(e, s, [[q]]))
        return _Query(ids=encode(e, q, "query", s.max_query_tokens, "max_query_tokens"))
    q = body["query_ids"]
    if _is_cnf_ids(q):
        if not cnf_ok:
            raise ApiError(422, "invalid_query", f"query_type {qtype} takes a flat list of token ids, not a CNF")
        return _Query(cnf=cnf_ids(e, s, q))
    if not isinstance(q, list):
        raise ApiError(422, "invalid_query", "query_ids must be a list of integers, or a triply-nested list of "
                                             "integers")
    check_len(q, "query_ids", s.max_query_tokens, "max_query_tokens")
    check_ids(e, q, "query_ids")
    if qtype in ("search_docs_cnf", "find_cnf"):
        return _Query(cnf=cnf_ids(e, s, [[q]]))
    return _Query(ids=q)


# ============================================================ documents
def _occurrences(tokens: np.ndarray, needle: Sequence[int]) -> np.ndarray:
    """Start positions of ``needle`` in ``tokens`` (overlapping ones included). O(len x candidates)."""
    L = len(needle)
    n = len(tokens)
    if L == 0 or L > n:
        return np.zeros(0, np.int64)
    nd = np.asarray(needle, dtype=np.int64)
    cand = np.flatnonzero(tokens[: n - L + 1] == nd[0])
    if L == 1 or len(cand) == 0:
        return cand
    win = np.lib.stride_tricks.sliding_window_view(tokens, L)[cand]
    return cand[(win == nd).all(axis=1)]


def _spans(e: IndexEntry, tokens: np.ndarray, needles: List[Tuple[Sequence[int], str]]) -> List[List[Any]]:
    """infini-gram's ``spans``: the displayed text cut into [text, label] pairs,
    label = the clause index (as a string) of a matched needle, else null. Needles
    are placed in order, each at its non-overlapping occurrences left to right
    in text not yet claimed by an earlier one."""
    toks = np.asarray(tokens).astype(np.int64)
    n = len(toks)
    owner = np.full(n, -1, dtype=np.int64)  # occurrence number claiming each token
    labels: List[str] = []
    for needle, label in needles:
        L = len(needle)
        last_end = -1
        for p in _occurrences(toks, needle).tolist():
            if p < last_end or (owner[p:p + L] >= 0).any():
                continue
            owner[p:p + L] = len(labels)
            labels.append(label)
            last_end = p + L
    out: List[List[Any]] = []
    i = 0
    while i < n:
        j = i + 1
        while j < n and owner[j] == owner[i]:
            j += 1
        out.append([e.index.decode(toks[i:j]), None if owner[i] < 0 else labels[int(owner[i])]])
        i = j
    return out


def _doc(e: IndexEntry, doc_ix: int, offset: int, max_disp_len: int,
         needles: List[Tuple[Sequence[int], str]]) -> Dict[str, Any]:
    """infini-gram's document record: up to ``max_disp_len`` tokens around token
    ``offset`` of the document (half before it, half from it on), its metadata
    (a JSON string, as infini-gram stores it) and the needle spans."""
    ix = e.index
    doc_len = ix.doc_length(doc_ix)
    offset = min(max(offset, 0), doc_len)
    start = max(0, offset - max_disp_len // 2)
    end = min(doc_len, offset + (max_disp_len + 1) // 2)
    w = ix.window(doc_ix, start, end - start, 0)
    toks = np.asarray(w.tokens)
    return {"doc_ix": int(doc_ix), "doc_len": int(doc_len), "disp_len": int(end - start),
            "needle_offset": int(offset - start), "metadata": json.dumps(w.metadata, ensure_ascii=False),
            "token_ids": toks.tolist(), "spans": _spans(e, toks, needles), "blocked": False}


def _needles(q: _Query) -> List[Tuple[Sequence[int], str]]:
    if q.cnf is not None:
        return [(to_list(t), str(d)) for d, clause in enumerate(q.cnf) for t in clause]
    if q.ids is not None and len(q.ids) > 0:
        return [(to_list(q.ids), "0")]
    return []


def _rank_to_doc(e: IndexEntry, s: int, rank: int) -> Tuple[int, int]:
    """(document, token offset in its text) of suffix-array rank ``rank`` of shard ``s``
    (a rank pointing at a document's separator gives offset 0)."""
    eng = e.index._engine
    pos = int(eng.sa_at(s, rank))
    d, off = eng.position_to_doc(s, pos)
    return int(d), (0 if off >= 1 << 63 else int(off))


def _ptr_of(e: IndexEntry, doc_ix: int, offset: int) -> Tuple[int, int]:
    """(shard, byte pointer into the shard's token stream) of a document offset, as infini-gram's ptrs."""
    s, a, _ = e.index._engine.doc_span(doc_ix)
    return int(s), (int(a) + int(offset)) * e.index.token_width


# ============================================================ query types
def _q_count(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query) -> Dict[str, Any]:
    if q.cnf is not None:
        mcf = _int_param(b, "max_clause_freq", lm.DEFAULT_MAX_CLAUSE_FREQ, 1, st.settings.max_clause_freq,
                         "max_clause_freq")
        mdt = _int_param(b, "max_diff_tokens", lm.DEFAULT_MAX_DIFF_TOKENS, 1, st.settings.max_diff_tokens,
                         "max_diff_tokens")
        t0 = time.perf_counter()
        c, approx = e.index.count_cnf(q.cnf, mcf, mdt)
        return {"count": int(c), "approx": bool(approx), "latency": _ms(t0)}
    t0 = time.perf_counter()
    c = e.index.count(q.ids)
    return {"count": int(c), "approx": False, "latency": _ms(t0)}


def _nonempty(q: _Query) -> Any:
    if q.ids is None or len(q.ids) == 0:
        raise ApiError(422, "invalid_query", "please provide a non-empty query")
    return q.ids


def _q_prob(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query, infgram: bool = False) -> Dict[str, Any]:
    ids = _nonempty(q)
    prompt, nxt = ids[:-1], int(ids[-1])
    t0 = time.perf_counter()
    r = e.index.infgram_prob(prompt, nxt) if infgram else e.index.prob(prompt, nxt)
    ms = _ms(t0)
    p = float(r.prob)
    out = {"prob": p if p == p else -1.0, "prompt_cnt": int(r.prompt_count), "cont_cnt": int(r.cont_count),
           "end_cnt": int(r.end_count), "latency": ms}
    if infgram:
        sl = int(r.suffix_len)
        out["suffix_len"] = sl
        out["longest_suffix"] = e.index.decode(prompt[len(prompt) - sl:]) if sl > 0 else ""
    return out


def _q_infgram_prob(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query) -> Dict[str, Any]:
    return _q_prob(e, st, b, q, infgram=True)


def _q_ntd(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query, infgram: bool = False) -> Dict[str, Any]:
    ms_ = _int_param(b, "max_support", lm.DEFAULT_MAX_SUPPORT, 1, st.settings.max_support, "max_support")
    ids = q.ids
    t0 = time.perf_counter()
    r = (e.index.infgram_ntd if infgram else e.index.ntd)(ids, ms_)
    ms = _ms(t0)
    res = {str(t): {"token": e.text.label(t), "prob": float(p), "cont_cnt": int(c)} for t, (c, p) in r.dist.items()}
    out = {"prompt_cnt": int(r.prompt_count), "result_by_token_id": res, "approx": bool(r.approx), "latency": ms}
    if infgram:
        sl = int(r.suffix_len)
        out["suffix_len"] = sl
        out["longest_suffix"] = e.index.decode(ids[len(ids) - sl:]) if sl > 0 else ""
    return out


def _q_infgram_ntd(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query) -> Dict[str, Any]:
    return _q_ntd(e, st, b, q, infgram=True)


def _docs_params(st: ServerState, b: Dict[str, Any]) -> Tuple[int, int]:
    maxnum = _int_param(b, "maxnum", DEFAULT_MAXNUM, 1, st.settings.max_maxnum, "max_maxnum")
    mdl = _int_param(b, "max_disp_len", DEFAULT_MAX_DISP_LEN, 1, st.settings.max_disp_len, "max_disp_len")
    return int(maxnum), int(mdl)  # type: ignore[arg-type]


def _message(cnt: int, approx: bool, idxs: List[int]) -> str:
    if cnt == 0:
        return "0 occurrences found"
    return (f"{'Approximately ' if approx else ''}{cnt} occurrences found. Displaying the documents of "
            f"occurrences #{idxs}")


def _q_search_docs(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query) -> Dict[str, Any]:
    if q.cnf is not None:
        return _q_search_docs_cnf(e, st, b, q)
    maxnum, mdl = _docs_params(st, b)
    seed = _int_param(b, "seed", None, 0, None)
    ids = _nonempty(q)
    t0 = time.perf_counter()
    ranges = e.index.find(ids)
    sizes = np.array([hi - lo for lo, hi in ranges], dtype=np.int64)
    total = int(sizes.sum())
    idxs: List[int] = []
    docs: List[Dict[str, Any]] = []
    if total > 0:  # uniform random occurrences, without replacement
        rng = np.random.default_rng(seed)
        picks = np.sort(rng.choice(total, size=min(maxnum, total), replace=False))
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        needles = _needles(q)
        for p in picks.tolist():
            s = int(np.searchsorted(bounds, p, side="right") - 1)
            d, off = _rank_to_doc(e, s, int(ranges[s][0]) + p - int(bounds[s]))
            docs.append(_doc(e, d, off, mdl, needles))
            idxs.append(int(p))
    return {"cnt": total, "approx": False, "idxs": idxs, "documents": docs, "message": _message(total, False, idxs),
            "latency": _ms(t0)}


def _cnf_params(st: ServerState, b: Dict[str, Any]) -> Tuple[int, int]:
    mcf = _int_param(b, "max_clause_freq", lm.DEFAULT_MAX_CLAUSE_FREQ, 1, st.settings.max_clause_freq,
                     "max_clause_freq")
    mdt = _int_param(b, "max_diff_tokens", lm.DEFAULT_MAX_DIFF_TOKENS, 1, st.settings.max_diff_tokens,
                     "max_diff_tokens")
    return int(mcf), int(mdt)  # type: ignore[arg-type]


def _q_search_docs_cnf(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query) -> Dict[str, Any]:
    maxnum, mdl = _docs_params(st, b)
    mcf, mdt = _cnf_params(st, b)
    seed = _int_param(b, "seed", None, 0, None)
    t0 = time.perf_counter()
    r = e.index.find_cnf(q.cnf, max_clause_freq=mcf, max_diff_tokens=mdt, limit=CNF_POOL, seed=seed)
    n = len(r)
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(n, size=min(maxnum, n), replace=False)).tolist() if n else []
    needles = _needles(q)
    docs = [_doc(e, int(r.doc_ix[i]), int(r.start[i]), mdl, needles) for i in picks]
    cnt = int(r.count)
    return {"cnt": cnt, "approx": bool(r.approx), "idxs": picks, "documents": docs,
            "message": _message(cnt, bool(r.approx), picks), "latency": _ms(t0)}


def _q_find(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query) -> Dict[str, Any]:
    if q.ids is None:
        raise ApiError(422, "invalid_query", "find takes a simple query (use find_cnf for a CNF)")
    t0 = time.perf_counter()
    rs = e.index.find(q.ids)
    ms = _ms(t0)
    seg = [[int(lo), int(hi)] for lo, hi in rs]
    return {"cnt": sum(hi - lo for lo, hi in seg), "segment_by_shard": seg, "latency": ms}


def _q_find_cnf(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query) -> Dict[str, Any]:
    mcf, mdt = _cnf_params(st, b)
    t0 = time.perf_counter()
    r = e.index.find_cnf(q.cnf, max_clause_freq=mcf, max_diff_tokens=mdt, limit=CNF_POOL)
    ptrs: List[List[int]] = [[] for _ in range(e.index.n_shards)]
    for d, a in zip(r.doc_ix.tolist(), r.start.tolist()):
        s, p = _ptr_of(e, d, a)
        ptrs[s].append(p)
    return {"cnt": int(r.count), "approx": bool(r.approx), "ptrs_by_shard": ptrs, "latency": _ms(t0)}


def _q_get_doc_by_ix(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query) -> Dict[str, Any]:
    doc_ix = _int_param(b, "doc_ix", None, 0, None)
    if doc_ix is None:
        raise ApiError(400, "invalid_request", "missing required field: doc_ix")
    if doc_ix >= e.index.n_docs:
        raise ApiError(404, "unknown_document", f"doc_ix must be an integer in range [0, {e.index.n_docs})")
    mdl = _int_param(b, "max_disp_len", DEFAULT_MAX_DISP_LEN, 1, st.settings.max_disp_len, "max_disp_len")
    t0 = time.perf_counter()
    # the document's first max_disp_len tokens, as infini-gram shows them
    n = e.index.doc_length(doc_ix)
    w = e.index.window(doc_ix, 0, min(n, int(mdl)), 0)  # type: ignore[arg-type]
    toks = np.asarray(w.tokens)
    return {"doc_ix": doc_ix, "doc_len": int(n), "disp_len": len(toks), "needle_offset": 0,
            "metadata": json.dumps(w.metadata, ensure_ascii=False), "token_ids": toks.tolist(),
            "spans": _spans(e, toks, _needles(q)), "blocked": False, "latency": _ms(t0)}


def _shard_param(e: IndexEntry, b: Dict[str, Any]) -> int:
    s = _int_param(b, "s", None, 0, e.index.n_shards - 1)
    if s is None:
        raise ApiError(400, "invalid_request", "missing required field: s")
    return s


def _q_get_doc_by_rank(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query) -> Dict[str, Any]:
    s = _shard_param(e, b)
    n_pos = int(e.index._engine.shard_n_positions(s))
    rank = _int_param(b, "rank", None, 0, n_pos - 1)
    if rank is None:
        raise ApiError(400, "invalid_request", "missing required field: rank")
    mdl = _int_param(b, "max_disp_len", DEFAULT_MAX_DISP_LEN, 1, st.settings.max_disp_len, "max_disp_len")
    t0 = time.perf_counter()
    d, off = _rank_to_doc(e, s, rank)
    out = _doc(e, d, off, int(mdl), _needles(q))  # type: ignore[arg-type]
    out["latency"] = _ms(t0)
    return out


def _q_get_doc_by_ptr(e: IndexEntry, st: ServerState, b: Dict[str, Any], q: _Query) -> Dict[str, Any]:
    s = _shard_param(e, b)
    w = e.index.token_width
    n_pos = int(e.index._engine.shard_n_positions(s))
    ptr = _int_param(b, "ptr", None, 0, n_pos * w - 1)
    if ptr is None:
        raise ApiError(400, "invalid_request", "missing required field: ptr")
    if ptr % w:
        raise ApiError(422, "invalid_query", f"ptr must be a multiple of {w}")
    mdl = _int_param(b, "max_disp_len", DEFAULT_MAX_DISP_LEN, 1, st.settings.max_disp_len, "max_disp_len")
    t0 = time.perf_counter()
    d, off = e.index._engine.position_to_doc(s, ptr // w)
    out = _doc(e, int(d), 0 if off >= 1 << 63 else int(off), int(mdl), _needles(q))  # type: ignore[arg-type]
    out["latency"] = _ms(t0)
    return out


HANDLERS: Dict[str, Callable[[IndexEntry, ServerState, Dict[str, Any], _Query], Dict[str, Any]]] = {
    "count": _q_count, "prob": _q_prob, "ntd": _q_ntd, "infgram_prob": _q_infgram_prob,
    "infgram_ntd": _q_infgram_ntd, "search_docs": _q_search_docs, "search_docs_cnf": _q_search_docs_cnf,
    "find": _q_find, "find_cnf": _q_find_cnf, "get_doc_by_ix": _q_get_doc_by_ix,
    "get_doc_by_rank": _q_get_doc_by_rank, "get_doc_by_ptr": _q_get_doc_by_ptr,
}
QUERY_REQUIRED = {"count", "prob", "ntd", "infgram_prob", "infgram_ntd", "search_docs", "search_docs_cnf", "find",
                  "find_cnf"}


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1e3, 4)


# ================================================================ route
API_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["index", "query_type"],
    "properties": {
        "index": {"type": "string", "description": "a served index name (GET /v1/indexes)"},
        "query_type": {"type": "string", "enum": list(QUERY_TYPES)},
        "query": {"type": "string", "description": "text; ' AND ' / ' OR ' make a CNF (count, search_docs)"},
        "query_ids": {"type": "array", "description": "token ids, or a triply nested list for a CNF"},
        "maxnum": {"type": "integer"}, "max_disp_len": {"type": "integer"}, "max_support": {"type": "integer"},
        "max_clause_freq": {"type": "integer"}, "max_diff_tokens": {"type": "integer"},
        "doc_ix": {"type": "integer"}, "s": {"type": "integer"}, "rank": {"type": "integer"},
        "ptr": {"type": "integer"}},
    "example": {"index": "docs", "query_type": "count", "query": "list comprehension"}}}}}}


@router.post("/api", summary="infini-gram compatible query (its request and answer shape)", openapi_extra=API_DOC)
async def api(request: Request) -> Response:
    """See ``docs/API.md`` for every query type, its fields and the differences from infini-gram."""
    st: ServerState = request.app.state.infinigram
    info = request.scope.get("infinigram") or {}
    raw = await request.body()

    def parse() -> Any:
        try:
            return json.loads(raw)
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_utf8", "the body is not valid UTF-8") from None
        except (ValueError, RecursionError) as ex:
            raise ApiError(400, "bad_request",
                           f"the body is not valid JSON ({str(ex)[:200] or type(ex).__name__})") from None

    body = parse() if len(raw) <= v1.INLINE_PARSE_BYTES else await st.run(parse)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    qtype = body.get("query_type")
    name = body.get("index", body.get("corpus"))
    if qtype is None:
        raise ApiError(400, "invalid_request", "missing required field: query_type")
    if name is None:
        raise ApiError(400, "invalid_request", "missing required field: index")
    if not isinstance(qtype, str) or qtype not in HANDLERS:
        info["endpoint"] = "api:invalid"
        shown = qtype[:50] if isinstance(qtype, str) else type(qtype).__name__
        raise ApiError(400, "unknown_query_type", f"invalid query_type {shown!r}; supported: {', '.join(QUERY_TYPES)}")
    info["endpoint"] = "api:" + qtype
    e = st.entry(name)
    info["index"] = e.name
    handler = HANDLERS[qtype]
    inline = qtype in INLINE_TYPES and is_cheap(st.settings, e, body.get("query"), body.get("query_ids")) \
        and not (isinstance(body.get("query"), str) and (" AND " in body["query"] or " OR " in body["query"]))
    if isinstance(body.get("query_ids"), list) and _is_cnf_ids(body["query_ids"]):
        inline = False

    def call() -> Dict[str, Any]:
        q = _parse_query(e, st, body, qtype, qtype in QUERY_REQUIRED)
        out = handler(e, st, body, q)
        if not qtype.startswith("get_doc_"):  # those answer with the document's own token_ids
            out.update(q.echo(e))
        return out

    return await st.respond(call, inline=inline)
