"""Our versioned JSON API under ``/v1`` (contract: ``docs/API.md``).

Each route parses its body (a pydantic model, validated straight from the
JSON bytes), resolves the index by name, calls :class:`~infinigram.Index`
and shapes the answer. No query logic lives here: counts, distributions,
documents, scores, matches and contamination all come from ``Index`` /
``infinigram.lm`` / ``infinigram.analysis``.

Every answer of a per-index route echoes ``"index"`` (the name) and
``"latency_ms"`` (the engine's time for the call, in milliseconds).
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any, Dict, List, Literal, Optional, Type, TypeVar, Union

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from starlette.responses import Response

from .. import lm
from .errors import ApiError, finite_or_none, json_response, limit_error
from .query import check_ids, check_text, check_upper, cnf_ids, encode, is_cheap, resolve, to_list
from .state import IndexEntry, ServerState

__all__ = ["router", "BODY_MODELS", "parse_body"]

M = TypeVar("M", bound=BaseModel)

MAX_INT = 2 ** 62
"""Upper bound of every integer field (beyond the server's named limits): the engine takes 64-bit integers."""


# =============================================================== bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryBody(_Body):
    """A query: text (tokenized with the index's tokenizer) or token ids; exactly one."""

    query: Optional[str] = Field(None, description="query text", examples=["list comprehension"])
    query_ids: Optional[List[StrictInt]] = Field(None, description="query as token ids")


class CountBody(QueryBody):
    """Count the occurrences of an n-gram (the empty query counts every token)."""


class FindBody(QueryBody):
    """Suffix-array rank ranges of an n-gram, per shard."""


class CountManyBody(_Body):
    """Count many n-grams in one call (batched in C++ on all cores)."""

    queries: List[Union[str, List[StrictInt]]] = Field(..., description="texts and/or token-id lists",
                                                       examples=[["the", "a cat", [97, 98]]])


class ProbBody(QueryBody):
    """n-gram (or ∞-gram) probability of ``next_token`` after the query."""

    next_token: Union[StrictInt, str] = Field(..., description="a token id, or a text of exactly one token")


class NtdBody(QueryBody):
    """Next-token distribution after the query (n-gram, or after its ∞-gram suffix)."""

    max_support: Optional[StrictInt] = Field(None, ge=1, le=MAX_INT, description=f"sampling bound (default {lm.DEFAULT_MAX_SUPPORT})")
    exact: Optional[StrictBool] = Field(None, description="true: always exact; false: always sampled; null: exact "
                                                          "when at most max_support distinct next tokens")
    seed: Optional[StrictInt] = Field(None, ge=0, le=MAX_INT, description="seed of the sampling (repeatable answers)")
    top: Optional[StrictInt] = Field(None, ge=1, le=MAX_INT, description="return only the top tokens by count")


class SearchDocsBody(QueryBody):
    """Documents containing the query, with context around each match."""

    maxnum: StrictInt = Field(10, ge=0, le=MAX_INT, description="most matches returned")
    context: StrictInt = Field(50, ge=0, le=MAX_INT, description="tokens of context on each side")
    sample: StrictBool = Field(False, description="random occurrences instead of the first in suffix order")
    seed: Optional[StrictInt] = Field(None, ge=0, le=MAX_INT)


class DocumentBody(_Body):
    """One whole document (or its first ``max_tokens`` tokens)."""

    doc_ix: StrictInt = Field(..., ge=0, le=MAX_INT)
    max_tokens: Optional[StrictInt] = Field(None, ge=0, le=MAX_INT, description="truncate to this many tokens")


class WindowBody(_Body):
    """A window of a document around a token span."""

    doc_ix: StrictInt = Field(..., ge=0, le=MAX_INT)
    offset: StrictInt = Field(..., ge=0, le=MAX_INT, description="token offset of the span in the document's text")
    length: StrictInt = Field(0, ge=0, le=MAX_INT, description="span length in tokens")
    context: StrictInt = Field(50, ge=0, le=MAX_INT, description="tokens of context on each side")


class TextBody(_Body):
    """A text given as ``text`` or as token ids ``query_ids`` (exactly one)."""

    text: Optional[str] = None
    query_ids: Optional[List[StrictInt]] = None


class ScoreBody(TextBody):
    """Per-token ∞-gram (or n-gram) log-probabilities of a text."""

    n: Optional[StrictInt] = Field(None, ge=1, le=MAX_INT, description="n-gram order; null: ∞-gram")


class LongestMatchesBody(TextBody):
    """Matching statistics: the longest corpus match starting at every token."""


class MaximalMatchesBody(TextBody):
    """The maximal spans of a text that occur in the corpus, with source documents."""

    min_len: StrictInt = Field(1, ge=1, le=MAX_INT, description="shortest span reported (tokens)")
    max_count: Optional[StrictInt] = Field(None, ge=0, le=MAX_INT, description="leave out spans occurring more often")
    max_docs: StrictInt = Field(10, ge=0, le=MAX_INT, description="source documents listed per span")
    with_metadata: StrictBool = Field(False, description="include each source document's metadata")


class CnfBody(_Body):
    """Boolean search: an AND of OR-clauses of n-grams co-occurring within max_diff_tokens."""

    cnf: List[List[Union[str, List[StrictInt]]]] = Field(..., examples=[[["list comprehension", "generator"],
                                                                          ["lambda"]]])
    maxnum: StrictInt = Field(10, ge=0, le=MAX_INT)
    context: StrictInt = Field(50, ge=0, le=MAX_INT)
    max_clause_freq: StrictInt = Field(lm.DEFAULT_MAX_CLAUSE_FREQ, ge=1, le=MAX_INT)
    max_diff_tokens: StrictInt = Field(lm.DEFAULT_MAX_DIFF_TOKENS, ge=0, le=MAX_INT)
    seed: Optional[StrictInt] = Field(None, ge=0, le=MAX_INT)


class ContaminationBody(_Body):
    """How much of a posted text (or benchmark item) occurs in the corpus."""

    text: Optional[str] = None
    item: Optional[Dict[str, Any]] = Field(None, description="a benchmark record; its `fields` are checked")
    fields: Optional[List[str]] = Field(None, description="fields of item to check (default: its string fields)")
    method: Literal["windows", "coverage"] = "windows"
    n: Optional[StrictInt] = Field(None, ge=1, le=MAX_INT, description="window / minimum match length (default 50 bytes, 13 tokens)")
    dirty: float = Field(0.8, ge=0, le=1)
    suspicious: float = Field(0.2, ge=0, le=1)
    max_docs: StrictInt = Field(3, ge=0, le=MAX_INT, description="source documents per matched span")


BODY_MODELS: List[Type[BaseModel]] = [CountBody, FindBody, CountManyBody, ProbBody, NtdBody, SearchDocsBody,
                                      DocumentBody, WindowBody, ScoreBody, LongestMatchesBody, MaximalMatchesBody,
                                      CnfBody, ContaminationBody]


def _validation_message(e: ValidationError) -> "tuple[int, str]":
    errs = e.errors(include_url=False, include_input=False)
    if any(x.get("type") == "json_invalid" for x in errs):
        msg = next(x for x in errs if x.get("type") == "json_invalid").get("msg", "invalid JSON")
        return 400, f"the body is not valid JSON ({msg})"
    parts = []
    for x in errs[:5]:
        loc = ".".join(str(p) for p in x.get("loc", ())) or "body"
        parts.append(f"{loc}: {x.get('msg', 'invalid')}")
    more = f" (and {len(errs) - 5} more)" if len(errs) > 5 else ""
    return 422, "; ".join(parts) + more


INLINE_PARSE_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop (microseconds); larger ones in a worker thread."""


async def parse_body(request: Request, model: Type[M]) -> M:
    """The request body validated as ``model`` (JSON of any content type):
    400 for a body that is not JSON (or not UTF-8), 422 for a wrong shape.
    O(body size); a large body is parsed in a worker thread."""
    raw = await request.body()

    def parse() -> M:
        try:
            return model.model_validate_json(raw)
        except ValidationError as e:
            status, msg = _validation_message(e)
            raise ApiError(status, "bad_request" if status == 400 else "invalid_request", msg) from None

    if len(raw) <= INLINE_PARSE_BYTES:
        return parse()
    return await _state(request).run(parse)


def body_doc(model: Type[BaseModel]) -> Dict[str, Any]:
    """``openapi_extra`` of a route whose body is ``model`` (schemas added to the components by app.py)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def _bounded(b: BaseModel, field: str, settings: Any, limit: str, what: str, scale: int = 1, extra: int = 0) -> int:
    """A parameter bounded by the server limit ``limit``: when the request gives
    it, ``value * scale + extra`` must be within the limit (else 422 naming it);
    when it does not, its default, lowered to fit the limit."""
    value = getattr(b, field)
    cap = getattr(settings, limit)
    if field in b.model_fields_set and value is not None:
        check_upper(value * scale + extra, settings, limit, what)
        return int(value)
    return int(max(0, min(value, (cap - extra) // scale)))


def _state(request: Request) -> ServerState:
    return request.app.state.infinigram


def _entry(request: Request, index: str) -> IndexEntry:
    return _state(request).entry(index)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1e3, 4)


# ================================================================ router
router = APIRouter(prefix="/v1")


@router.get("/indexes", summary="The served indexes (manifest summaries)")
async def indexes(request: Request) -> Response:
    st = _state(request)
    return json_response({"indexes": [e.info() for e in st.entries.values()]})


@router.get("/{index}", summary="One served index (manifest summary)")
async def index_info(request: Request, index: str) -> Response:
    return json_response(_entry(request, index).info())


# ------------------------------------------------------------- counting
@router.post("/{index}/count", summary="Occurrences of an n-gram", openapi_extra=body_doc(CountBody))
async def count(request: Request, index: str) -> Response:
    """``{"count", "query_ids", "query_tokens"}``. O(m log n) per shard: inline for short queries."""
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, CountBody)

    def call() -> Dict[str, Any]:
        ids = resolve(e, b.query, b.query_ids, max_tokens=st.settings.max_query_tokens)
        t0 = time.perf_counter()
        c = e.index.count(ids)
        ms = _ms(t0)
        lst = to_list(ids)
        return {"index": e.name, "count": int(c), "query_ids": lst, "query_tokens": e.text.pieces(lst),
                "latency_ms": ms}

    return await st.respond(call, inline=is_cheap(st.settings, e, b.query, b.query_ids))


@router.post("/{index}/find", summary="Suffix-array rank ranges of an n-gram per shard",
             openapi_extra=body_doc(FindBody))
async def find(request: Request, index: str) -> Response:
    """``{"count", "ranges": [[lo, hi], ...]}`` (one half-open range per shard; for the empty query
    the ranges span every position, document separators included, while ``count`` is the number of tokens)."""
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, FindBody)

    def call() -> Dict[str, Any]:
        ids = resolve(e, b.query, b.query_ids, max_tokens=st.settings.max_query_tokens)
        t0 = time.perf_counter()
        rs = e.index.find(ids)
        c = e.index.count(ids)  # = the ranges' total, except for the empty query (ranges include separators)
        ms = _ms(t0)
        ranges = [[int(lo), int(hi)] for lo, hi in rs]
        return {"index": e.name, "count": int(c), "ranges": ranges,
                "query_ids": to_list(ids), "latency_ms": ms}

    return await st.respond(call, inline=is_cheap(st.settings, e, b.query, b.query_ids))


@router.post("/{index}/count_many", summary="Counts of many n-grams (batched)", openapi_extra=body_doc(CountManyBody))
async def count_many(request: Request, index: str) -> Response:
    """``{"counts": [int, ...]}`` in the order of ``queries``; at most ``max_batch`` queries."""
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, CountManyBody)
    s = st.settings
    if len(b.queries) > s.max_batch:
        raise limit_error("max_batch", s.max_batch, f"the batch has {len(b.queries)} queries")

    def call() -> Dict[str, Any]:
        qs: List[Any] = list(b.queries)
        texts = [i for i, q in enumerate(qs) if isinstance(q, str)]
        for i in texts:
            check_text(qs[i], f"queries[{i}]")
        if texts:
            for i, ids in zip(texts, e.index.tokenizer.encode_batch([qs[i] for i in texts])):
                qs[i] = ids.tolist()
        # one packed (flat ids, offsets) pair, checked with numpy: O(total tokens)
        lens = np.fromiter((len(q) for q in qs), dtype=np.int64, count=len(qs))
        if len(qs) and int(lens.max()) > s.max_query_tokens:
            i = int(np.argmax(lens))
            raise limit_error("max_query_tokens", s.max_query_tokens, f"queries[{i}] has {int(lens[i])} tokens")
        offsets = np.zeros(len(qs) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        try:
            flat = np.fromiter(itertools.chain.from_iterable(qs), dtype=np.int64, count=int(offsets[-1]))
        except OverflowError:
            flat = None
        if flat is None or (len(flat) and (int(flat.min()) < 0 or int(flat.max()) >= e.vocab_size)):
            for i, q in enumerate(qs):  # name the first bad query
                check_ids(e, q, f"queries[{i}]")
        t0 = time.perf_counter()
        counts = e.index.count_many((flat, offsets))
        ms = _ms(t0)
        return {"index": e.name, "counts": counts.tolist(), "latency_ms": ms}

    return await st.respond(call)


# ---------------------------------------------------- language model
def _next_token(e: IndexEntry, t: Union[int, str]) -> int:
    if isinstance(t, str):
        check_text(t, "next_token")
        ids = e.index.encode(t)
        if len(ids) != 1:
            raise ApiError(422, "invalid_query", f"next_token {t[:50]!r} is {len(ids)} tokens with this index's "
                                                 "tokenizer; give exactly one token (or its id)")
        return int(ids[0])
    check_ids(e, [t], "next_token")
    return int(t)


async def _prob(request: Request, index: str, infgram: bool) -> Response:
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, ProbBody)

    def call() -> Dict[str, Any]:
        ids = resolve(e, b.query, b.query_ids, max_tokens=st.settings.max_query_tokens)
        nxt = _next_token(e, b.next_token)
        t0 = time.perf_counter()
        r = e.index.infgram_prob(ids, nxt) if infgram else e.index.prob(ids, nxt)
        ms = _ms(t0)
        return {"index": e.name, "prob": finite_or_none(r.prob), "count": int(r.cont_count),
                "cont_count": int(r.cont_count), "prompt_count": int(r.prompt_count), "end_count": int(r.end_count),
                "denom": int(r.denom), "suffix_len": int(r.suffix_len), "next_token_id": nxt,
                "next_token": e.text.label(nxt), "query_ids": to_list(ids), "latency_ms": ms}

    return await st.respond(call, inline=is_cheap(st.settings, e, b.query, b.query_ids))


@router.post("/{index}/prob", summary="n-gram probability of the next token", openapi_extra=body_doc(ProbBody))
async def prob(request: Request, index: str) -> Response:
    """``{"prob" (null when undefined), "count", "denom", "prompt_count", "end_count", ...}``."""
    return await _prob(request, index, False)


@router.post("/{index}/infgram_prob", summary="∞-gram probability of the next token", openapi_extra=body_doc(ProbBody))
async def infgram_prob(request: Request, index: str) -> Response:
    """As ``prob``, after the longest suffix of the query that has a next token (``suffix_len``)."""
    return await _prob(request, index, True)


async def _ntd(request: Request, index: str, infgram: bool) -> Response:
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, NtdBody)
    check_upper(b.max_support, st.settings, "max_support", "max_support")
    ms_ = b.max_support or max(1, min(lm.DEFAULT_MAX_SUPPORT, st.settings.max_support))

    def call() -> Dict[str, Any]:
        ids = resolve(e, b.query, b.query_ids, max_tokens=st.settings.max_query_tokens)
        t0 = time.perf_counter()
        r = (e.index.infgram_ntd if infgram else e.index.ntd)(ids, ms_, b.exact, b.seed)
        ms = _ms(t0)
        den = r.denom
        order = sorted(r.dist.items(), key=lambda kv: (-kv[1][0], kv[0]))
        if b.top is not None:
            order = order[:b.top]
        dist = [{"token_id": int(t), "token": e.text.label(t), "count": int(c),
                 "prob": finite_or_none(p)} for t, (c, p) in order]
        return {"index": e.name, "prompt_count": int(r.prompt_count), "end_count": int(r.end_count), "denom": int(den),
                "suffix_len": int(r.suffix_len), "approx": bool(r.approx), "unit": int(r.unit),
                "n_distinct": len(r.dist), "distribution": dist, "query_ids": to_list(ids), "latency_ms": ms}

    return await st.respond(call)


@router.post("/{index}/ntd", summary="Next-token distribution", openapi_extra=body_doc(NtdBody))
async def ntd(request: Request, index: str) -> Response:
    """``{"prompt_count", "denom", "distribution": [{"token_id", "token", "count", "prob"}] (count desc)}``."""
    return await _ntd(request, index, False)


@router.post("/{index}/infgram_ntd", summary="∞-gram next-token distribution", openapi_extra=body_doc(NtdBody))
async def infgram_ntd(request: Request, index: str) -> Response:
    """As ``ntd``, after the ∞-gram suffix of the query (``suffix_len``)."""
    return await _ntd(request, index, True)


# ------------------------------------------------------------ documents
def _doc_entry(e: IndexEntry, m: Any) -> Dict[str, Any]:
    """A Match window as {doc_ix, offset, length, before, match, after, metadata}."""
    toks = m.tokens
    a, z = m.needle_start, m.needle_end
    dec = e.index.decode
    return {"doc_ix": int(m.doc_ix), "offset": int(m.offset), "length": int(m.length), "start": int(m.start),
            "end": int(m.end), "before": dec(toks[:a]), "match": dec(toks[a:z]), "after": dec(toks[z:]),
            "metadata": m.metadata}


def _check_doc(e: IndexEntry, doc_ix: int) -> None:
    if not 0 <= doc_ix < e.index.n_docs:
        raise ApiError(404, "unknown_document", f"no document {doc_ix} in index {e.name!r} "
                                                f"(documents are 0 .. {e.index.n_docs - 1})")


@router.post("/{index}/search_docs", summary="Documents containing an n-gram, with context",
             openapi_extra=body_doc(SearchDocsBody))
async def search_docs(request: Request, index: str) -> Response:
    """``{"count", "documents": [{"doc_ix", "offset", "before", "match", "after", "metadata"}]}``."""
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, SearchDocsBody)
    maxnum = _bounded(b, "maxnum", st.settings, "max_maxnum", "maxnum")
    context = _bounded(b, "context", st.settings, "max_disp_len", "2 x context", scale=2)

    def call() -> Dict[str, Any]:
        ids = resolve(e, b.query, b.query_ids, max_tokens=st.settings.max_query_tokens)
        t0 = time.perf_counter()
        c = e.index.count(ids)
        matches = e.index.search_docs(ids, maxnum=maxnum, context=context, sample=b.sample, seed=b.seed)
        ms = _ms(t0)
        return {"index": e.name, "count": int(c), "documents": [_doc_entry(e, m) for m in matches],
                "query_ids": to_list(ids), "latency_ms": ms}

    return await st.respond(call)


@router.post("/{index}/document", summary="One whole document", openapi_extra=body_doc(DocumentBody))
async def document(request: Request, index: str) -> Response:
    """``{"doc_ix", "text", "metadata", "length" (tokens), "truncated"}``; at most ``max_doc_tokens`` tokens."""
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, DocumentBody)
    check_upper(b.max_tokens, st.settings, "max_doc_tokens", "max_tokens")
    _check_doc(e, b.doc_ix)
    cap = st.settings.max_doc_tokens if b.max_tokens is None else b.max_tokens

    def call() -> Dict[str, Any]:
        t0 = time.perf_counter()
        n = e.index.doc_length(b.doc_ix)
        if n <= cap:
            d = e.index.get_doc(b.doc_ix)
            text, meta = d.text, d.metadata
        else:
            w = e.index.window(b.doc_ix, 0, cap, 0)
            text, meta = w.text, w.metadata
        ms = _ms(t0)
        return {"index": e.name, "doc_ix": b.doc_ix, "text": text, "metadata": meta, "length": int(n),
                "shown_tokens": int(min(n, cap)), "truncated": n > cap, "latency_ms": ms}

    return await st.respond(call)


@router.post("/{index}/window", summary="A window of a document around a token span", openapi_extra=body_doc(WindowBody))
async def window(request: Request, index: str) -> Response:
    """``{"doc_ix", "offset", "length", "start", "end", "before", "match", "after", "metadata"}``."""
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, WindowBody)
    check_upper(b.length, st.settings, "max_disp_len", "length")
    context = _bounded(b, "context", st.settings, "max_disp_len", "length + 2 x context", scale=2, extra=b.length)
    _check_doc(e, b.doc_ix)

    def call() -> Dict[str, Any]:
        t0 = time.perf_counter()
        m = e.index.window(b.doc_ix, b.offset, b.length, context)
        ms = _ms(t0)
        return {"index": e.name, **_doc_entry(e, m), "latency_ms": ms}

    return await st.respond(call)


# ------------------------------------------------------- whole texts
def _text_ids(st: ServerState, e: IndexEntry, b: TextBody) -> Any:
    return resolve(e, b.text, b.query_ids, max_tokens=st.settings.max_text_tokens, limit="max_text_tokens",
                   text_name="text")


@router.post("/{index}/score", summary="Per-token ∞-gram (or n-gram) log-probabilities of a text",
             openapi_extra=body_doc(ScoreBody))
async def score(request: Request, index: str) -> Response:
    """``{"tokens": [{"id", "piece", "suffix_len", "logprob", "count", "denom"}], ...}``: the pieces add up to
    the decoded text; ``logprob`` (natural log) is null where it is -inf (a token never seen after its
    context) or undefined."""
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, ScoreBody)

    def call() -> Dict[str, Any]:
        ids = _text_ids(st, e, b)
        t0 = time.perf_counter()
        r = e.index.ngram_logprobs(ids, b.n) if b.n is not None else e.index.infgram_logprobs(ids)
        ms = _ms(t0)
        lst = to_list(ids)
        pieces = e.text.pieces(lst)
        lp = r.logprobs
        toks = [{"id": t, "piece": p, "suffix_len": sl, "logprob": (x if math.isfinite(x) else None), "count": c,
                 "denom": d}
                for t, p, sl, x, c, d in zip(lst, pieces, r.suffix_len.tolist(), lp.tolist(), r.cont_count.tolist(),
                                             r.denom.tolist())]
        fin = lp[np.isfinite(lp)]
        return {"index": e.name, "n": b.n, "n_tokens": len(lst), "tokens": toks,
                "mean_logprob": float(fin.mean()) if len(fin) else None, "n_finite": int(len(fin)),
                "n_zero_prob": int(np.isneginf(lp).sum()), "n_undefined": int(np.isnan(lp).sum()), "latency_ms": ms}

    return await st.respond(call)


@router.post("/{index}/longest_matches", summary="Longest corpus match at every token of a text",
             openapi_extra=body_doc(LongestMatchesBody))
async def longest_matches(request: Request, index: str) -> Response:
    """``{"tokens": [{"id", "piece", "length", "count", "doc_ix", "offset"}], "longest"}`` (matching statistics)."""
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, LongestMatchesBody)

    def call() -> Dict[str, Any]:
        ids = _text_ids(st, e, b)
        t0 = time.perf_counter()
        r = e.index.longest_matches(ids)
        ms = _ms(t0)
        lst = to_list(ids)
        toks = [{"id": t, "piece": p, "length": L, "count": c, "doc_ix": d, "offset": o}
                for t, p, L, c, d, o in zip(lst, e.text.pieces(lst), r.length.tolist(), r.count.tolist(),
                                            np.asarray(r.doc_ix).tolist(), np.asarray(r.offset).tolist())]
        return {"index": e.name, "n_tokens": len(lst), "longest": r.longest, "tokens": toks, "latency_ms": ms}

    return await st.respond(call)


@router.post("/{index}/maximal_matches", summary="Maximal corpus matches of a text, with source documents",
             openapi_extra=body_doc(MaximalMatchesBody))
async def maximal_matches(request: Request, index: str) -> Response:
    """``{"matches": [{"start", "end" (token positions, end exclusive), "count", "text",
    "documents": [{"doc_ix", "offset"[, "metadata"]}]}]}`` in text order."""
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, MaximalMatchesBody)
    max_docs = _bounded(b, "max_docs", st.settings, "max_docs", "max_docs")

    def call() -> Dict[str, Any]:
        ids = _text_ids(st, e, b)
        t0 = time.perf_counter()
        mm = e.index.maximal_matches(ids, min_len=b.min_len, max_count=b.max_count, max_docs=max_docs)
        out = []
        for m in mm:
            docs: List[Dict[str, Any]] = []
            for d, o in zip(m.doc_ix, m.offset):
                x: Dict[str, Any] = {"doc_ix": int(d), "offset": int(o)}
                if b.with_metadata:
                    x["metadata"] = e.index.window(int(d), int(o), 0, 0).metadata
                docs.append(x)
            out.append({"start": m.start, "end": m.end, "length": m.length, "count": m.count, "text": m.text,
                        "documents": docs})
        ms = _ms(t0)
        return {"index": e.name, "n_tokens": len(ids), "matches": out, "latency_ms": ms}

    return await st.respond(call)


# ------------------------------------------------------------------ CNF
@router.post("/{index}/cnf", summary="Boolean (CNF) document search", openapi_extra=body_doc(CnfBody))
async def cnf(request: Request, index: str) -> Response:
    """``{"count", "approx", "documents": [...as search_docs; "match" spans every clause's occurrence]}``."""
    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, CnfBody)
    s = st.settings
    maxnum = _bounded(b, "maxnum", s, "max_maxnum", "maxnum")
    context = _bounded(b, "context", s, "max_disp_len", "2 x context", scale=2)
    mcf = _bounded(b, "max_clause_freq", s, "max_clause_freq", "max_clause_freq")
    mdt = _bounded(b, "max_diff_tokens", s, "max_diff_tokens", "max_diff_tokens")

    def call() -> Dict[str, Any]:
        c = cnf_ids(e, s, b.cnf)
        t0 = time.perf_counter()
        r = e.index.find_cnf(c, max_clause_freq=mcf, max_diff_tokens=mdt, limit=maxnum, seed=b.seed)
        docs = [_doc_entry(e, e.index.window(int(d), int(a), int(z - a), context))
                for d, a, z in zip(r.doc_ix.tolist(), r.start.tolist(), r.end.tolist())]
        ms = _ms(t0)
        return {"index": e.name, "count": int(r.count), "approx": bool(r.approx), "documents": docs,
                "anchor_total": int(r.anchor_total), "anchor_tested": int(r.anchor_tested),
                "query_ids": [[to_list(t) for t in cl] for cl in c], "latency_ms": ms}

    return await st.respond(call)


# -------------------------------------------------------- contamination
@router.post("/{index}/contamination", summary="Contamination check of a posted text or benchmark item",
             openapi_extra=body_doc(ContaminationBody))
async def contamination(request: Request, index: str) -> Response:
    """The result of :func:`infinigram.analysis.contamination_scores` for one
    entry (``overlap``, ``status``, ``longest``, matched ``spans`` with sources)."""
    from ..analysis.contamination import _field_text, contamination_scores

    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, ContaminationBody)
    s = st.settings
    max_docs = _bounded(b, "max_docs", s, "max_docs", "max_docs")
    if (b.text is None) == (b.item is None):
        raise ApiError(422, "invalid_query", "give exactly one of 'text' or 'item'")
    if b.text is not None:
        if b.fields is not None:
            raise ApiError(422, "invalid_query", "'fields' goes with 'item', not with 'text'")
        item: Dict[str, Any] = {"text": b.text}
        fields = ["text"]
    else:
        item = b.item or {}
        fields = b.fields if b.fields is not None else [k for k, v in item.items() if isinstance(v, str)]
        if not fields:
            raise ApiError(422, "invalid_query", "the item has no string field to check; name them in 'fields'")
        missing = [f for f in fields if f not in item]
        if missing:
            raise ApiError(422, "invalid_query", f"the item has no field(s) {', '.join(map(repr, missing))}")
    if b.suspicious > b.dirty:
        raise ApiError(422, "invalid_query", "thresholds must satisfy suspicious <= dirty")

    def call() -> Dict[str, Any]:
        total = 0
        for f in fields:
            ids = encode(e, _field_text(item[f]), f"field {f!r}", s.max_text_tokens, "max_text_tokens")
            total += len(ids)
        if total > s.max_text_tokens:
            raise limit_error("max_text_tokens", s.max_text_tokens, f"the checked fields have {total} tokens")
        t0 = time.perf_counter()
        res = contamination_scores(e.index, {"request": [item]}, fields, method=b.method, n=b.n, dirty=b.dirty,
                                   suspicious=b.suspicious, report_worst=1, max_docs=max_docs)
        ms = _ms(t0)
        out = res.to_json()
        out["index"] = e.name
        out["latency_ms"] = ms
        return out

    return await st.respond(call)


# ============================================ constrained generation, SEAL (issue 22)
# A model is served only when `infinigram serve --model DIR` (or
# set_model(app, spec)) named one at start-up; requests never name a model.
class GenerateBody(_Body):
    """Generate from a prompt with the served model, constrained to corpus substrings by default."""

    prompt: str = Field(..., description="prompt text (the model's chat template is applied)")
    max_new_tokens: StrictInt = Field(16, ge=1, le=256)
    constrained: StrictBool = Field(True, description="only verbatim corpus substrings")
    num_beams: StrictInt = Field(1, ge=1, le=16, description="beam search (all beams returned)")
    do_sample: StrictBool = False
    seed: Optional[StrictInt] = Field(None, ge=0, le=MAX_INT)
    allow_eos: StrictBool = False
    allow_restart: StrictBool = Field(False, description="a newline ends a span and starts a new one")
    window: Optional[StrictInt] = Field(None, ge=1, le=1024, description="sliding mode: every window-gram occurs")


class SealBody(_Body):
    """SEAL retrieval: documents ranked from corpus n-grams the served model generates for the query."""

    query: str
    k: StrictInt = Field(10, ge=1, le=100)
    num_beams: StrictInt = Field(10, ge=1, le=32)
    max_new_tokens: StrictInt = Field(10, ge=1, le=64)
    context: StrictInt = Field(0, ge=0, le=MAX_INT, description="return the highlighted text when > 0, cut to this many characters")


BODY_MODELS += [GenerateBody, SealBody]


class _ServedModel:
    """The model named at start-up, loaded on first use; calls serialised (one CPU-bound model)."""

    def __init__(self, spec: str) -> None:
        import threading

        self.spec = spec
        self._pair: Any = None
        self.lock = threading.Lock()

    def get(self) -> Any:
        if self._pair is None:
            from ..cli import _load_model

            self._pair = _load_model(self.spec)
        return self._pair


def set_model(app: Any, spec: Any) -> None:
    """Serves ``spec`` (a model directory, a .gguf file, 'smollm2', or a
    loaded ``(tokenizer, model)`` pair) for the generate and seal routes of
    ``app``; None: none."""
    if isinstance(spec, tuple):
        sm = _ServedModel("(loaded)")
        sm._pair = spec
        app.state.infinigram_model = sm
    else:
        app.state.infinigram_model = _ServedModel(spec) if spec else None


def _model(request: Request) -> _ServedModel:
    m = getattr(request.app.state, "infinigram_model", None)
    if m is None:
        raise ApiError(422, "invalid_query", "this server has no model: start it with `infinigram serve --model DIR`")
    return m


@router.post("/{index}/generate", summary="Generation constrained to corpus substrings",
             openapi_extra=body_doc(GenerateBody))
async def generate_route(request: Request, index: str) -> Response:
    """``{"outputs": [{"text", "tokens", "spans": [{"text", "count"}]}]}`` (best first)."""
    from ..constrained import generate

    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, GenerateBody)
    sm = _model(request)
    check_text(b.prompt, "prompt")

    def call() -> Dict[str, Any]:
        with sm.lock:
            tok, model = sm.get()
            t0 = time.perf_counter()
            kw = dict(allow_eos=b.allow_eos, allow_restart=b.allow_restart, window=b.window) if b.constrained else {}
            outs = generate(model, tok, e.index, b.prompt, b.max_new_tokens, constrained=b.constrained,
                            num_beams=1 if b.do_sample else b.num_beams, num_return_sequences=b.num_beams,
                            do_sample=b.do_sample, seed=b.seed, **kw)
            ms = _ms(t0)
        return {"index": e.name, "outputs": [
            {"text": g.text, "tokens": g.tokens,
             "spans": [{"text": e.index.decode(s), "count": c} for s, c in zip(g.spans, g.counts)]} for g in outs],
            "latency_ms": ms}

    return await st.respond(call)


@router.post("/{index}/seal", summary="SEAL retrieval (documents from generated corpus n-grams)",
             openapi_extra=body_doc(SealBody))
async def seal_route(request: Request, index: str) -> Response:
    """``{"documents": [{"doc_ix", "score", "metadata", "ngrams": [{"text", "score", "spans"}]}]}``."""
    from .. import seal

    st = _state(request)
    e = st.entry(index)
    b = await parse_body(request, SealBody)
    sm = _model(request)
    check_text(b.query, "query")

    def call() -> Dict[str, Any]:
        with sm.lock:
            tok, model = sm.get()
            t0 = time.perf_counter()
            res = seal.search(model, tok, e.index, b.query, k=b.k, num_beams=b.num_beams,
                              max_new_tokens=b.max_new_tokens)
            ms = _ms(t0)
        docs = []
        for r in res:
            d: Dict[str, Any] = {"doc_ix": r.doc_ix, "score": r.score, "metadata": r.metadata,
                                 "ngrams": [{"text": e.index.decode(list(n)), "score": s, "spans": sp}
                                            for n, s, sp in r.ngrams]}
            if b.context:
                d["highlighted"] = r.highlighted[: b.context]
            docs.append(d)
        return {"index": e.name, "documents": docs, "latency_ms": ms}

    return await st.respond(call)
# ============================================ end of constrained generation, SEAL
