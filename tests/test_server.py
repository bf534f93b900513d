"""The HTTP API (``infinigram.server``): every endpoint against the Python
API's answer for the same call, on a suffix-array index, an FM-index of the
same corpus and a BPE (u16) index; every limit and error path; random bodies
(hypothesis) answered only with 2xx/4xx JSON; and ``infinigram serve`` as a
real uvicorn subprocess (workers, API key).

The Python API itself is checked against brute force by the engine tests;
here the question is whether the HTTP layer passes questions and answers
through faithfully.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np
import pytest

fastapi = pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is needed")
pytest.importorskip("httpx", reason="fastapi's TestClient needs httpx")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

from infinigram.analysis.contamination import contamination_scores  # noqa: E402
from infinigram.server import Settings, create_app  # noqa: E402
from infinigram.server.tokens import TokenText  # noqa: E402

from conftest import build_corpus, real_records  # noqa: E402

ENDPOINTS = ["count", "count_many", "find", "prob", "infgram_prob", "ntd", "infgram_ntd", "search_docs", "document",
             "window", "score", "longest_matches", "maximal_matches", "cnf", "contamination"]
QUERY_TYPES = ["count", "prob", "ntd", "infgram_prob", "infgram_ntd", "search_docs", "search_docs_cnf", "find",
               "find_cnf", "get_doc_by_ix", "get_doc_by_rank", "get_doc_by_ptr"]


# ---------------------------------------------------------------- fixtures
def _records() -> List[Dict[str, Any]]:
    recs = real_records(6, 6000)
    recs.append({"text": "héllo wörld — ünïcode ✓ 日本語 🎉 end. héllo again", "id": "unicode"})
    return recs


@pytest.fixture(scope="module")
def built(tmp_path_factory, bpe_tokenizer_path) -> Dict[str, Any]:
    """Three indexes of the same corpus: bytes SA, bytes FM (sparse samples), BPE u16 SA."""
    recs = _records()
    return {
        "sa": build_corpus(tmp_path_factory, "srv_sa", recs),
        "fm": build_corpus(tmp_path_factory, "srv_fm", recs, backend="fm", sa_sample=8, isa_sample=8),
        "bpe": build_corpus(tmp_path_factory, "srv_bpe", recs, tokenizer=bpe_tokenizer_path),
    }


@pytest.fixture(scope="module")
def app(built):
    return create_app({name: b.path for name, b in built.items()})


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c
    # nothing sent to this app may have reached the catch-all
    assert app.state.metrics.internal_errors == 0


def ok(client: TestClient, path: str, body: Any, status: int = 200) -> Dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == status, (path, body, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def err(client: TestClient, path: str, body: Any = None, status: int = 422, content: Optional[bytes] = None,
        **kw: Any) -> Dict[str, Any]:
    """Posts and checks an error answer: the status, JSON, no traceback; returns the error object."""
    r = client.post(path, content=content, **kw) if content is not None else client.post(path, json=body, **kw)
    assert r.status_code == status, (path, body, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json")
    assert "Traceback" not in r.text
    j = r.json()
    if path == "/api":
        assert isinstance(j["error"], str) and j["code"] == status
        return j
    assert j["error"]["code"] == status and j["error"]["message"]
    return j["error"]


NAMES = ["sa", "fm", "bpe"]


def _phrases(b) -> List[str]:
    t = b.records[0]["text"]
    return [t[100:112], t[40:41], "the", "def ", "héllo", "zzqqxx-not-there", t[200:260]]


# ------------------------------------------------------------ basic routes
def test_healthz_indexes_and_info(client, built):
    assert client.get("/healthz").json() == {"status": "ok"}
    ixs = {x["name"]: x for x in client.get("/v1/indexes").json()["indexes"]}
    assert set(ixs) == set(NAMES)
    for n in NAMES:
        ix = built[n].index
        x = ixs[n]
        assert (x["n_tokens"], x["n_docs"], x["n_shards"], x["token_width"]) == \
            (ix.n_tokens, ix.n_docs, ix.n_shards, ix.token_width)
        assert x["backend"] == ix.backend and x["vocab_size"] == ix.tokenizer.vocab_size
        assert os.path.samefile(x["path"], built[n].path)
        assert client.get(f"/v1/{n}").json() == x
    assert ixs["fm"]["backend"] == "fm" and ixs["bpe"]["tokenizer"] != "bytes"
    assert client.get("/v1/nope").status_code == 404


def test_page_and_openapi(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert client.get("/static/app.js").status_code == 200
    # /docs: Swagger UI from the swagger-ui-bundle package, no CDN (works offline)
    html = client.get("/docs").text
    assert "/static/swagger-ui/swagger-ui-bundle.js" in html and "http://" not in html and "https://" not in html
    for f in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/static/swagger-ui/{f}").status_code == 200
    spec = client.get("/openapi.json").json()
    for ep in ENDPOINTS:
        assert f"/v1/{{index}}/{ep}" in spec["paths"], ep
    assert "/api" in spec["paths"]
    ref = spec["paths"]["/v1/{index}/count"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.split("/")[-1] in spec["components"]["schemas"]


def test_docs_page_without_swagger_bundle(built, monkeypatch):
    """Without the swagger-ui-bundle package /docs answers a JSON 404 naming
    it (never a CDN page); the schema stays at /openapi.json."""
    from infinigram.server import app as app_module

    monkeypatch.setattr(app_module, "_swagger_ui_dir", lambda: None)
    with TestClient(create_app({"sa": built["sa"].path})) as c:
        r = c.get("/docs")
        assert r.status_code == 404 and "swagger-ui-bundle" in r.json()["error"]["message"]
        assert c.get("/openapi.json").status_code == 200


# ------------------------------------------------------ v1 against Index
@pytest.mark.parametrize("name", NAMES)
def test_count_find_count_many(client, built, name):
    b = built[name]
    ix = b.index
    for q in _phrases(b) + [""]:
        j = ok(client, f"/v1/{name}/count", {"query": q})
        assert j["count"] == ix.count(q) and j["index"] == name and j["latency_ms"] >= 0
        assert j["query_ids"] == ix.encode(q).tolist()
        assert "".join(j["query_tokens"]) == ix.decode(ix.encode(q))
        assert len(j["query_tokens"]) == len(j["query_ids"])
        j2 = ok(client, f"/v1/{name}/count", {"query_ids": j["query_ids"]})
        assert j2["count"] == j["count"]
        f = ok(client, f"/v1/{name}/find", {"query": q})
        assert f["ranges"] == [list(r) for r in ix.find(q)] and f["count"] == ix.count(q)
    qs: List[Any] = _phrases(b) + [ix.encode("the").tolist(), [], "x"]
    j = ok(client, f"/v1/{name}/count_many", {"queries": qs})
    assert j["counts"] == ix.count_many(qs).tolist()


@pytest.mark.parametrize("name", NAMES)
def test_prob_and_infgram_prob(client, built, name):
    ix = built[name].index
    for q in _phrases(built[name]):
        ids = ix.encode(q).tolist()
        if len(ids) < 2:
            continue
        for ep, fn in (("prob", ix.prob), ("infgram_prob", ix.infgram_prob)):
            j = ok(client, f"/v1/{name}/{ep}", {"query_ids": ids[:-1], "next_token": ids[-1]})
            r = fn(ids[:-1], ids[-1])
            assert (j["count"], j["prompt_count"], j["end_count"], j["suffix_len"], j["denom"]) == \
                (r.cont_count, r.prompt_count, r.end_count, r.suffix_len, r.denom)
            assert (j["prob"] is None and math.isnan(r.prob)) or j["prob"] == pytest.approx(r.prob)
    # next_token as text of one token
    j = ok(client, f"/v1/{name}/prob", {"query": "th", "next_token": "e"})
    assert j["next_token_id"] == int(ix.encode("e")[0]) or name == "bpe"


@pytest.mark.parametrize("name", NAMES)
def test_ntd_and_infgram_ntd(client, built, name):
    ix = built[name].index
    for q in ["", "the", "def", "qqqzzz the"]:
        for ep, fn in (("ntd", ix.ntd), ("infgram_ntd", ix.infgram_ntd)):
            j = ok(client, f"/v1/{name}/{ep}", {"query": q, "max_support": 1000, "seed": 7})
            r = fn(q, 1000, None, 7)
            assert (j["prompt_count"], j["end_count"], j["suffix_len"], j["approx"]) == \
                (r.prompt_count, r.end_count, r.suffix_len, r.approx)
            got = {d["token_id"]: (d["count"], d["prob"]) for d in j["distribution"]}
            assert got.keys() == r.dist.keys()
            for t, (c, p) in r.dist.items():
                assert got[t][0] == c and got[t][1] == pytest.approx(p)
            counts = [d["count"] for d in j["distribution"]]
            assert counts == sorted(counts, reverse=True)
    j = ok(client, f"/v1/{name}/ntd", {"query": "", "top": 3})
    assert len(j["distribution"]) == 3 and j["n_distinct"] >= 3


@pytest.mark.parametrize("name", NAMES)
def test_search_docs_document_window(client, built, name):
    ix = built[name].index
    for q in ["the", "héllo", "def "]:
        for sample in (False, True):
            j = ok(client, f"/v1/{name}/search_docs", {"query": q, "maxnum": 4, "context": 7, "sample": sample,
                                                       "seed": 3})
            ms = ix.search_docs(q, maxnum=4, context=7, sample=sample, seed=3)
            assert j["count"] == ix.count(q) and len(j["documents"]) == len(ms)
            for d, m in zip(j["documents"], ms):
                assert (d["doc_ix"], d["offset"], d["length"], d["start"], d["end"]) == \
                    (m.doc_ix, m.offset, m.length, m.start, m.end)
                assert d["metadata"] == m.metadata
                assert d["match"] == ix.decode(m.tokens[m.needle_start:m.needle_end])
                assert d["before"] == ix.decode(m.tokens[:m.needle_start])
                assert d["after"] == ix.decode(m.tokens[m.needle_end:])
    for doc_ix in (0, ix.n_docs - 1):
        j = ok(client, f"/v1/{name}/document", {"doc_ix": doc_ix})
        d = ix.get_doc(doc_ix)
        assert (j["text"], j["metadata"], j["length"], j["truncated"]) == (d.text, d.metadata, len(d.tokens), False)
        j = ok(client, f"/v1/{name}/document", {"doc_ix": doc_ix, "max_tokens": 5})
        assert j["truncated"] == (len(d.tokens) > 5) and j["text"] == ix.decode(d.tokens[:5])
        w = ok(client, f"/v1/{name}/window", {"doc_ix": doc_ix, "offset": 3, "length": 2, "context": 4})
        m = ix.window(doc_ix, 3, 2, 4)
        assert (w["start"], w["end"], w["metadata"]) == (m.start, m.end, m.metadata)
        assert w["before"] + w["match"] + w["after"] == ix.decode(m.tokens) or name != "bpe"


@pytest.mark.parametrize("name", NAMES)
def test_score_longest_maximal(client, built, name):
    ix = built[name].index
    text = built[name].records[1]["text"][:300] + " héllo wörld 🎉 qqzzxx " + built[name].records[2]["text"][:200]
    j = ok(client, f"/v1/{name}/score", {"text": text})
    r = ix.infgram_logprobs(text)
    ids = ix.encode(text).tolist()
    assert [t["id"] for t in j["tokens"]] == ids
    assert "".join(t["piece"] for t in j["tokens"]) == ix.decode(ids)
    for t, lp, sl, c, dn in zip(j["tokens"], r.logprobs.tolist(), r.suffix_len.tolist(), r.cont_count.tolist(),
                                r.denom.tolist()):
        assert (t["suffix_len"], t["count"], t["denom"]) == (sl, c, dn)
        assert (t["logprob"] is None and not math.isfinite(lp)) or t["logprob"] == pytest.approx(lp)
    j = ok(client, f"/v1/{name}/score", {"query_ids": ids[:50], "n": 3})
    r = ix.ngram_logprobs(ids[:50], 3)
    assert [t["suffix_len"] for t in j["tokens"]] == r.suffix_len.tolist()
    lm_ = ix.longest_matches(text)
    j = ok(client, f"/v1/{name}/longest_matches", {"text": text})
    assert [t["length"] for t in j["tokens"]] == lm_.length.tolist()
    assert [t["count"] for t in j["tokens"]] == lm_.count.tolist()
    assert [t["doc_ix"] for t in j["tokens"]] == np.asarray(lm_.doc_ix).tolist() and j["longest"] == lm_.longest
    mm = ix.maximal_matches(text, min_len=3, max_docs=2)
    j = ok(client, f"/v1/{name}/maximal_matches", {"text": text, "min_len": 3, "max_docs": 2, "with_metadata": True})
    assert [(m["start"], m["end"], m["count"], m["text"]) for m in j["matches"]] == \
        [(m.start, m.end, m.count, m.text) for m in mm]
    for jm, m in zip(j["matches"], mm):
        assert [(d["doc_ix"], d["offset"]) for d in jm["documents"]] == list(zip(m.doc_ix, m.offset))
        for d in jm["documents"]:
            assert d["metadata"] == ix.get_doc(d["doc_ix"]).metadata


@pytest.mark.parametrize("name", NAMES)
def test_cnf_and_contamination(client, built, name):
    ix = built[name].index
    cnf = [["the", "a"], ["of"]]
    j = ok(client, f"/v1/{name}/cnf", {"cnf": cnf, "maxnum": 3, "context": 5, "seed": 1})
    r = ix.find_cnf(cnf, limit=3, seed=1)
    assert (j["count"], j["approx"], j["anchor_total"]) == (r.count, r.approx, r.anchor_total)
    assert [(d["doc_ix"], d["offset"], d["offset"] + d["length"]) for d in j["documents"]] == \
        list(zip(r.doc_ix.tolist(), r.start.tolist(), r.end.tolist()))
    ids_cnf = [[ix.encode("the").tolist()], [ix.encode("of").tolist(), "and"]]
    j = ok(client, f"/v1/{name}/cnf", {"cnf": ids_cnf, "maxnum": 0})
    assert j["count"] == ix.count_cnf(ids_cnf)[0] and j["documents"] == []
    text = built[name].records[0]["text"][:400]
    j = ok(client, f"/v1/{name}/contamination", {"text": text, "n": 20})
    ref = contamination_scores(ix, {"request": [{"text": text}]}, ["text"], n=20, report_worst=1, max_docs=3).to_json()
    assert j["entries"][0]["overlap"] == pytest.approx(ref["entries"][0]["overlap"]) == pytest.approx(1.0)
    assert j["entries"][0]["status"] == "dirty" and j["index"] == name
    assert j["entries"][0]["spans"] == ref["entries"][0]["spans"]
    item = {"task_id": "T/1", "prompt": "zzqq nothing like this xxyy", "solution": text[:120], "n": 3}
    j = ok(client, f"/v1/{name}/contamination", {"item": item, "n": 20, "method": "coverage"})
    ref = contamination_scores(ix, {"request": [item]}, ["task_id", "prompt", "solution"], method="coverage", n=20,
                               report_worst=1).to_json()
    assert j["fields"] == ["task_id", "prompt", "solution"]
    assert j["entries"][0]["overlap"] == pytest.approx(ref["entries"][0]["overlap"])
    j = ok(client, f"/v1/{name}/contamination", {"item": item, "fields": ["prompt"], "n": 20})
    assert j["entries"][0]["overlap"] == 0 and j["entries"][0]["status"] == "clean"


# ------------------------------------------------------------ POST /api
@pytest.mark.parametrize("name", NAMES)
def test_api_counts_probs_distributions(client, built, name):
    ix = built[name].index
    for q in _phrases(built[name]):
        j = ok(client, "/api", {"index": name, "query_type": "count", "query": q})
        assert (j["count"], j["approx"]) == (ix.count(q), False)
        assert j["token_ids"] == ix.encode(q).tolist() and len(j["tokens"]) == len(j["token_ids"])
        assert isinstance(j["latency"], float)
    j = ok(client, "/api", {"corpus": name, "query_type": "count", "query_ids": ix.encode("the").tolist()})
    assert j["count"] == ix.count("the")
    # CNF as text and as ids
    j = ok(client, "/api", {"index": name, "query_type": "count", "query": "the OR a AND of"})
    assert j["count"] == ix.count_cnf([["the", "a"], ["of"]])[0] and len(j["token_ids"]) == 2
    ids = [[ix.encode("the").tolist()], [ix.encode("of").tolist()]]
    j = ok(client, "/api", {"index": name, "query_type": "count", "query_ids": ids, "max_diff_tokens": 20})
    assert j["count"] == ix.count_cnf(ids, max_diff_tokens=20)[0]
    # prob: P(last | rest); -1.0 when undefined
    q = ix.encode(" of the").tolist()
    j = ok(client, "/api", {"index": name, "query_type": "prob", "query_ids": q})
    r = ix.prob(q[:-1], q[-1])
    assert r.prompt_count > 0 and j["prob"] == pytest.approx(r.prob)
    assert (j["prompt_cnt"], j["cont_cnt"]) == (r.prompt_count, r.cont_count)
    j = ok(client, "/api", {"index": name, "query_type": "prob", "query": "qqzzxxqq the"})
    assert j["prob"] == -1.0 and j["prompt_cnt"] == 0
    j = ok(client, "/api", {"index": name, "query_type": "infgram_prob", "query": "qqzzxxqq the end"})
    q = ix.encode("qqzzxxqq the end").tolist()
    r = ix.infgram_prob(q[:-1], q[-1])
    assert (j["suffix_len"], j["prompt_cnt"], j["cont_cnt"]) == (r.suffix_len, r.prompt_count, r.cont_count)
    assert j["longest_suffix"] == (ix.decode(q[len(q) - 1 - r.suffix_len:-1]) if r.suffix_len else "")
    for qt, fn in (("ntd", ix.ntd), ("infgram_ntd", ix.infgram_ntd)):
        j = ok(client, "/api", {"index": name, "query_type": qt, "query": "qqzz the", "max_support": 1000})
        r = fn("qqzz the", 1000)
        assert j["prompt_cnt"] == r.prompt_count and j["approx"] == r.approx
        assert {int(t): (v["cont_cnt"], v["prob"]) for t, v in j["result_by_token_id"].items()} == \
            {t: (c, pytest.approx(p)) for t, (c, p) in r.dist.items()}
        if qt == "infgram_ntd":
            assert j["suffix_len"] == r.suffix_len


@pytest.mark.parametrize("name", NAMES)
def test_api_documents(client, built, name):
    ix = built[name].index
    needle = ix.encode(" the").tolist()
    j = ok(client, "/api", {"index": name, "query_type": "search_docs", "query": " the", "maxnum": 5,
                            "max_disp_len": 40})
    assert j["cnt"] == ix.count(" the") > 5 and len(j["documents"]) == 5 and len(j["idxs"]) == 5
    for d in j["documents"]:
        toks = d["token_ids"]
        assert toks[d["needle_offset"]:d["needle_offset"] + len(needle)] == needle
        assert d["disp_len"] == len(toks) <= 40 and d["doc_len"] == ix.doc_length(d["doc_ix"])
        assert json.loads(d["metadata"]) == ix.get_doc(d["doc_ix"]).metadata
        assert any(lab == "0" for _, lab in d["spans"])
        if name != "bpe":
            assert "".join(s for s, _ in d["spans"]) == ix.decode(toks)
    # find + get_doc_by_rank over the whole segment
    f = ok(client, "/api", {"index": name, "query_type": "find", "query": "héllo"})
    assert f["segment_by_shard"] == [list(r) for r in ix.find("héllo")] and f["cnt"] == ix.count("héllo")
    seen = set()
    for s, (lo, hi) in enumerate(f["segment_by_shard"]):
        for rank in range(lo, hi):
            d = ok(client, "/api", {"index": name, "query_type": "get_doc_by_rank", "query": "héllo", "s": s,
                                    "rank": rank, "max_disp_len": 30})
            h = ix.encode("héllo").tolist()
            assert d["token_ids"][d["needle_offset"]:d["needle_offset"] + len(h)] == h
            seen.add((d["doc_ix"], d["needle_offset"]))
    loc = ix.locate("héllo", 100)
    assert len(seen) <= len(loc) and f["cnt"] == len(loc)
    g = ok(client, "/api", {"index": name, "query_type": "get_doc_by_ix", "doc_ix": 1, "max_disp_len": 25})
    d = ix.get_doc(1)
    assert g["token_ids"] == d.tokens[:25].tolist() and g["doc_len"] == len(d.tokens)
    assert json.loads(g["metadata"]) == d.metadata
    # CNF documents: search_docs with AND, search_docs_cnf, find_cnf + get_doc_by_ptr
    qc = " the AND  of"  # terms " the" and " of"
    for body in ({"query_type": "search_docs", "query": qc}, {"query_type": "search_docs_cnf", "query": qc}):
        j = ok(client, "/api", {"index": name, "maxnum": 3, **body})
        assert j["cnt"] == ix.count_cnf([[" the"], [" of"]])[0] > 0 and len(j["documents"]) == min(3, j["cnt"])
        for d in j["documents"]:
            labels = {lab for _, lab in d["spans"]}
            assert "0" in labels or "1" in labels
    j = ok(client, "/api", {"index": name, "query_type": "find_cnf", "query": qc})
    r = ix.find_cnf([[" the"], [" of"]], limit=1000)
    assert j["cnt"] == r.count and sum(len(p) for p in j["ptrs_by_shard"]) == len(r)
    s = next(i for i, p in enumerate(j["ptrs_by_shard"]) if p)
    d = ok(client, "/api", {"index": name, "query_type": "get_doc_by_ptr", "query": qc, "s": s,
                            "ptr": j["ptrs_by_shard"][s][0]})
    assert d["doc_ix"] == int(r.doc_ix[np.flatnonzero(
        [ix._engine.doc_span(int(x))[0] == s for x in r.doc_ix])[0]])


def test_api_errors(client, built):
    err(client, "/api", {"index": "sa", "query_type": "nope", "query": "x"}, 400)
    err(client, "/api", {"index": "sa", "query": "x"}, 400)
    err(client, "/api", {"query_type": "count", "query": "x"}, 400)
    err(client, "/api", {"index": "zz", "query_type": "count", "query": "x"}, 404)
    err(client, "/api", {"index": "sa", "query_type": "count", "query": "x", "query_ids": [1]}, 400)
    err(client, "/api", {"index": "sa", "query_type": "count"}, 400)
    err(client, "/api", {"index": "sa", "query_type": "count", "query": 5}, 422)
    err(client, "/api", {"index": "sa", "query_type": "count", "query_ids": [1, "a"]}, 422)
    err(client, "/api", {"index": "sa", "query_type": "count", "query_ids": [1, True]}, 422)
    err(client, "/api", {"index": "sa", "query_type": "count", "query_ids": [255]}, 422)
    err(client, "/api", {"index": "sa", "query_type": "count", "query_ids": [-1]}, 422)
    err(client, "/api", {"index": "sa", "query_type": "count", "query_ids": [2 ** 70]}, 422)
    err(client, "/api", {"index": "sa", "query_type": "prob", "query": ""}, 422)
    err(client, "/api", {"index": "sa", "query_type": "prob", "query_ids": [[[1]]]}, 422)
    err(client, "/api", {"index": "sa", "query_type": "search_docs", "query": "a", "maxnum": 0}, 422)
    err(client, "/api", {"index": "sa", "query_type": "search_docs", "query": "a", "maxnum": 1.5}, 422)
    err(client, "/api", {"index": "sa", "query_type": "get_doc_by_ix"}, 400)
    err(client, "/api", {"index": "sa", "query_type": "get_doc_by_ix", "doc_ix": 10 ** 6}, 404)
    err(client, "/api", {"index": "sa", "query_type": "get_doc_by_rank", "s": 9, "rank": 0}, 422)
    err(client, "/api", {"index": "sa", "query_type": "get_doc_by_ptr", "s": 0, "ptr": -1}, 422)
    err(client, "/api", {"index": "sa", "query_type": "ntd", "query": "a", "max_support": 0}, 422)
    err(client, "/api", {"index": "sa", "query_type": "count", "query": "a AND "}, 422)
    err(client, "/api", {"index": "bpe", "query_type": "count", "query_ids": [60000]}, 422)
    err(client, "/api", content=b"[1, 2]", status=400)
    err(client, "/api", content=b"{nope", status=400)
    err(client, "/api", content=b'{"index": "sa", "query_type": "count", "query": "\xff"}', status=400)
    err(client, "/api", content=b'{"index": "sa", "query_type": "count", "query": "\\ud800"}', status=400)
    err(client, "/api", content=b"[" * 100000, status=400)


# ------------------------------------------------------------ v1 errors
def test_v1_errors(client, built):
    e = err(client, "/v1/zz/count", {"query": "a"}, 404)
    assert e["type"] == "unknown_index" and "sa" in e["message"]
    assert err(client, "/v1/sa/count", {"query_ids": [255]}, 422)["type"] == "token_out_of_vocab"
    assert err(client, "/v1/bpe/count", {"query_ids": [built["bpe"].index.tokenizer.vocab_size]})["type"] == \
        "token_out_of_vocab"
    err(client, "/v1/sa/count", {"query_ids": [-3]})
    err(client, "/v1/sa/count", {"query_ids": [True]})
    err(client, "/v1/sa/count", {"query_ids": [1.0]})
    err(client, "/v1/sa/count", {"query": "a", "query_ids": [1]})
    err(client, "/v1/sa/count", {})
    err(client, "/v1/sa/count", {"query": "a", "bogus": 1})
    err(client, "/v1/sa/count", [1, 2])
    assert err(client, "/v1/sa/count", content=b"{bad json", status=400)["type"] == "bad_request"
    err(client, "/v1/sa/count", content=b"", status=400)
    err(client, "/v1/sa/count", content=b'{"query": "\xff\xfe"}', status=400)
    err(client, "/v1/sa/count", content=b'{"query": "\\udc80"}', status=400)
    err(client, "/v1/sa/score", content=b'{"text": "ok \\ud800 no"}', status=400)
    err(client, "/v1/sa/count", content=b"[" * 100000, status=400)
    err(client, "/v1/sa/prob", {"query": "a", "next_token": "two tokens"})
    err(client, "/v1/sa/prob", {"query": "a", "next_token": 999})
    assert err(client, "/v1/sa/document", {"doc_ix": 10 ** 6}, 404)["type"] == "unknown_document"
    err(client, "/v1/sa/document", {"doc_ix": -1})
    err(client, "/v1/sa/window", {"doc_ix": 0, "offset": 10 ** 7, "length": 1, "context": 1})
    err(client, "/v1/sa/cnf", {"cnf": []})
    err(client, "/v1/sa/cnf", {"cnf": [[]]})
    err(client, "/v1/sa/cnf", {"cnf": [[""]]})
    err(client, "/v1/sa/cnf", {"cnf": [["a"]], "max_clause_freq": 0})
    err(client, "/v1/sa/contamination", {})
    err(client, "/v1/sa/contamination", {"text": "a", "item": {"x": "y"}})
    err(client, "/v1/sa/contamination", {"item": {"x": 1}})
    err(client, "/v1/sa/contamination", {"item": {"x": "a"}, "fields": ["y"]})
    err(client, "/v1/sa/contamination", {"text": "a", "dirty": 0.1, "suspicious": 0.5})
    err(client, "/v1/sa/ntd", {"query": "a", "max_support": 0})
    err(client, "/v1/sa/score", {"text": "a", "n": 0})
    for big in (2 ** 63, 2 ** 64 + 5, 10 ** 30):  # beyond 64-bit integers: refused, never a 500
        err(client, "/v1/sa/score", {"text": "a", "n": big})
        err(client, "/v1/sa/ntd", {"query": "a", "seed": big})
        err(client, "/v1/sa/maximal_matches", {"text": "a", "min_len": big})
        err(client, "/v1/sa/document", {"doc_ix": big})
        err(client, "/v1/sa/window", {"doc_ix": 0, "offset": big})
        err(client, "/api", {"index": "sa", "query_type": "get_doc_by_rank", "s": 0, "rank": big})
        ok(client, "/api", {"index": "sa", "query_type": "search_docs", "query": "a", "seed": big})
    r = client.get("/v1/sa/count")
    assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed"
    r = client.get("/no/such/path")
    assert r.status_code == 404 and r.json()["error"]["code"] == 404
    r = client.post("/v1/sa/nosuch", json={})
    assert r.status_code == 404 and "error" in r.json()


# ----------------------------------------------------------------- limits
@pytest.fixture(scope="module")
def tight(built):
    s = Settings(max_body_bytes=2000, max_query_tokens=8, max_text_tokens=50, max_maxnum=3, max_batch=4,
                 max_cnf_clauses=2, max_cnf_terms=2, max_support=100, max_clause_freq=1000, max_diff_tokens=50,
                 max_disp_len=40, max_doc_tokens=30, max_docs=2)
    app = create_app({"sa": built["sa"].path}, s)
    with TestClient(app) as c:
        yield c
    assert app.state.metrics.internal_errors == 0


LIMIT_CASES = [
    ("/v1/sa/count", {"query": "123456789"}, "max_query_tokens", 422),
    ("/v1/sa/count", {"query_ids": [97] * 9}, "max_query_tokens", 422),
    ("/v1/sa/ntd", {"query": "123456789"}, "max_query_tokens", 422),
    ("/v1/sa/score", {"text": "x" * 51}, "max_text_tokens", 422),
    ("/v1/sa/maximal_matches", {"query_ids": [97] * 51}, "max_text_tokens", 422),
    ("/v1/sa/contamination", {"text": "y" * 51}, "max_text_tokens", 422),
    ("/v1/sa/search_docs", {"query": "a", "maxnum": 4}, "max_maxnum", 422),
    ("/v1/sa/cnf", {"cnf": [["a"]], "maxnum": 4}, "max_maxnum", 422),
    ("/v1/sa/count_many", {"queries": ["a"] * 5}, "max_batch", 422),
    ("/v1/sa/count_many", {"queries": ["a", "123456789"]}, "max_query_tokens", 422),
    ("/v1/sa/cnf", {"cnf": [["a"], ["b"], ["c"]]}, "max_cnf_clauses", 422),
    ("/v1/sa/cnf", {"cnf": [["a", "b", "c"]]}, "max_cnf_terms", 422),
    ("/v1/sa/ntd", {"query": "a", "max_support": 101}, "max_support", 422),
    ("/v1/sa/cnf", {"cnf": [["a"]], "max_clause_freq": 1001}, "max_clause_freq", 422),
    ("/v1/sa/cnf", {"cnf": [["a"]], "max_diff_tokens": 51}, "max_diff_tokens", 422),
    ("/v1/sa/search_docs", {"query": "a", "context": 21}, "max_disp_len", 422),
    ("/v1/sa/window", {"doc_ix": 0, "offset": 0, "length": 30, "context": 6}, "max_disp_len", 422),
    ("/v1/sa/document", {"doc_ix": 0, "max_tokens": 31}, "max_doc_tokens", 422),
    ("/v1/sa/maximal_matches", {"text": "a", "max_docs": 3}, "max_docs", 422),
    ("/api", {"index": "sa", "query_type": "count", "query": "123456789"}, "max_query_tokens", 422),
    ("/api", {"index": "sa", "query_type": "search_docs", "query": "a", "maxnum": 4}, "max_maxnum", 422),
    ("/api", {"index": "sa", "query_type": "search_docs", "query": "a", "max_disp_len": 41}, "max_disp_len", 422),
    ("/api", {"index": "sa", "query_type": "count", "query": "a AND b AND c"}, "max_cnf_clauses", 422),
    ("/api", {"index": "sa", "query_type": "count", "query": "a OR b OR c"}, "max_cnf_terms", 422),
    ("/api", {"index": "sa", "query_type": "ntd", "query": "a", "max_support": 101}, "max_support", 422),
    ("/api", {"index": "sa", "query_type": "count", "query": "a AND b", "max_clause_freq": 1001}, "max_clause_freq",
     422),
    ("/api", {"index": "sa", "query_type": "count", "query": "a AND b", "max_diff_tokens": 51}, "max_diff_tokens",
     422),
    ("/v1/sa/score", {"text": "x" * 3000}, "max_body_bytes", 413),
    ("/api", {"index": "sa", "query_type": "count", "query": "x" * 3000}, "max_body_bytes", 413),
]


@pytest.mark.parametrize("path,body,limit,status", LIMIT_CASES, ids=[f"{c[0]}-{c[2]}" for c in LIMIT_CASES])
def test_limits(tight, path, body, limit, status):
    e = err(tight, path, body, status)
    assert e["limit"] == limit and e["value"] == getattr(tight.app.state.infinigram.settings, limit)
    assert limit in (e["error"] if path == "/api" else e["message"])


def test_limit_metrics_and_chunked_body(tight):
    def chunks():
        for _ in range(10):
            yield b" " * 500
    r = tight.post("/v1/sa/count", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["limit"] == "max_body_bytes"
    m = tight.get("/metrics").text
    assert 'infinigram_limit_exceeded_total{limit="max_body_bytes"}' in m
    assert 'infinigram_limit_exceeded_total{limit="max_query_tokens"}' in m


def test_time_budget_429(built):
    app = create_app({"sa": built["sa"].path}, Settings(time_budget_s=1e-9))
    with TestClient(app) as c:
        e = err(c, "/v1/sa/search_docs", {"query": "the"}, 429)
        assert e["limit"] == "time_budget_s"
        assert err(c, "/api", {"index": "sa", "query_type": "ntd", "query": "the"}, 429)["limit"] == "time_budget_s"
        # short calls run inline, outside the budget
        assert ok(c, "/v1/sa/count", {"query": "the"})["count"] == built["sa"].index.count("the")
        c.get("/healthz")  # the abandoned worker threads finish on their own
    assert app.state.metrics.internal_errors == 0


def test_overrunning_calls_keep_their_slot(built, monkeypatch):
    """A call past its budget is answered 429 but finishes in its thread holding
    its slot: with max_concurrent = 1 the next long call waits and times out too,
    short inline calls still answer, and once the thread ends calls run again."""
    app = create_app({"sa": built["sa"].path}, Settings(time_budget_s=0.3, max_concurrent=1))
    ix = app.state.infinigram.entries["sa"].index
    real = ix.search_docs

    def slow(*a: Any, **k: Any) -> Any:
        time.sleep(1.0)
        return real(*a, **k)

    monkeypatch.setattr(ix, "search_docs", slow)
    with TestClient(app) as c:
        t0 = time.monotonic()
        assert err(c, "/v1/sa/search_docs", {"query": "the"}, 429)["limit"] == "time_budget_s"
        assert err(c, "/v1/sa/ntd", {"query": "the"}, 429)["limit"] == "time_budget_s"  # no free slot
        assert ok(c, "/v1/sa/count", {"query": "the"})["count"] == built["sa"].index.count("the")
        assert time.monotonic() - t0 < 0.95
        time.sleep(max(0.0, 1.2 - (time.monotonic() - t0)))
        assert ok(c, "/v1/sa/ntd", {"query": "the"})["prompt_count"] == built["sa"].index.count("the")
    assert app.state.metrics.internal_errors == 0


def test_concurrent_documents(tmp_path_factory):
    """Many document requests at once (worker threads reading metadata
    concurrently) all answer right. Large metadata makes zstd frames slow
    enough to overlap: without the server's metadata lock, 4 threads of
    Index.window gave 'metadata ... is damaged' on this corpus."""
    import asyncio
    import random

    import httpx

    rng = random.Random(0)
    recs = [{"text": f"doc {i} shared words here", "blob": " ".join(str(rng.random()) for _ in range(3000))}
            for i in range(40)]
    b = build_corpus(tmp_path_factory, "srv_meta", recs)
    app = create_app({"m": b.path}, Settings(max_concurrent=8))

    async def go() -> List[Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            reqs = [c.post("/v1/m/document", json={"doc_ix": i % 40}) for i in range(240)]
            return await asyncio.gather(*reqs)

    rs = asyncio.run(go())
    for i, r in enumerate(rs):
        assert r.status_code == 200, r.text[:300]
        assert r.json()["metadata"] == {"blob": recs[i % 40]["blob"]}
    assert app.state.metrics.internal_errors == 0


def test_inline_bounds(app):
    ents = app.state.infinigram.entries
    s = app.state.infinigram.settings
    assert ents["sa"].inline_tokens == s.inline_max_tokens
    assert ents["fm"].inline_tokens == min(s.inline_max_tokens, s.inline_max_tokens_fm) < s.inline_max_tokens
    from infinigram.server.query import is_cheap

    assert is_cheap(s, ents["fm"], "a" * 64, None) and not is_cheap(s, ents["fm"], "a" * 65, None)
    assert not is_cheap(s, ents["fm"], "é" * 33, None)  # 66 UTF-8 bytes: up to 66 tokens
    assert is_cheap(s, ents["sa"], None, [1] * 1000) and not is_cheap(s, ents["sa"], None, [1] * 1001)
    assert not is_cheap(s, ents["sa"], "a" * (s.inline_max_chars + 1), None)


def test_thread_pool_for_everything(built):
    """inline_max_tokens = 0 sends even counts to the thread pool: same answers."""
    app = create_app({"sa": built["sa"].path}, Settings(inline_max_tokens=0, max_concurrent=1))
    with TestClient(app) as c:
        for q in ("the", "héllo", ""):
            assert ok(c, "/v1/sa/count", {"query": q})["count"] == built["sa"].index.count(q)
            assert ok(c, "/api", {"index": "sa", "query_type": "count", "query": q})["count"] == \
                built["sa"].index.count(q)


# ------------------------------------------------------------------ auth
def test_api_key(built):
    app = create_app({"sa": built["sa"].path}, api_key="s3cret")
    with TestClient(app) as c:
        for method, path in (("get", "/v1/indexes"), ("get", "/metrics"), ("post", "/v1/sa/count"),
                             ("post", "/v1/zz/count"), ("get", "/nope")):
            r = getattr(c, method)(path)
            assert r.status_code == 401, path
            assert r.json()["error"]["type"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
        r = c.post("/api", json={"index": "sa", "query_type": "count", "query": "a"})
        assert r.status_code == 401 and isinstance(r.json()["error"], str)
        assert c.post("/v1/sa/count", json={"query": "a"}, headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.post("/v1/sa/count", json={"query": "a"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/healthz").status_code == 200
        assert c.get("/").status_code == 200 and c.get("/static/style.css").status_code == 200
        # the API's description is public (schema, no corpus data), so a browser can open /docs
        assert c.get("/docs").status_code == 200 and c.get("/openapi.json").status_code == 200
        n = built["sa"].index.count("a")
        assert c.post("/v1/sa/count", json={"query": "a"}, headers={"X-API-Key": "s3cret"}).json()["count"] == n
        assert c.post("/v1/sa/count", json={"query": "a"},
                      headers={"Authorization": "Bearer s3cret"}).json()["count"] == n
        assert c.get("/metrics", headers={"X-API-Key": "s3cret"}).status_code == 200


# ------------------------------------------------------- catch-all, metrics
def test_catch_all_500_without_traceback(built, monkeypatch):
    app = create_app({"sa": built["sa"].path})
    ix = app.state.infinigram.entries["sa"].index

    def boom(*a: Any, **k: Any) -> int:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(ix, "count", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        for path, body in (("/v1/sa/count", {"query": "a"}), ("/api", {"index": "sa", "query_type": "count",
                                                                        "query": "a"}),
                           ("/v1/sa/search_docs", {"query": "a"})):
            r = c.post(path, json=body)
            assert r.status_code == 500 and "secret" not in r.text and "Traceback" not in r.text
            assert r.headers["content-type"].startswith("application/json")
        assert c.get("/healthz").status_code == 200
        assert "infinigram_internal_errors_total 3" in c.get("/metrics").text


def test_metrics_format(client):
    for _ in range(3):
        ok(client, "/v1/sa/count", {"query": "the"})
    ok(client, "/api", {"index": "fm", "query_type": "ntd", "query": "th"})
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    series = {}
    for ln in lines:
        name_labels, value = ln.rsplit(" ", 1)
        series[name_labels] = float(value)
    assert series['infinigram_requests_total{index="sa",endpoint="count",status="200"}'] >= 3
    assert series['infinigram_requests_total{index="fm",endpoint="api:ntd",status="200"}'] >= 1
    buckets = [(k, v) for k, v in series.items()
               if k.startswith('infinigram_request_duration_seconds_bucket{index="sa",endpoint="count"')]
    vals = [v for _, v in buckets]
    assert vals == sorted(vals) and 'le="+Inf"' in buckets[-1][0]
    assert vals[-1] == series['infinigram_request_duration_seconds_count{index="sa",endpoint="count"}']
    assert series["infinigram_internal_errors_total"] == 0
    # label values never come from request text
    client.post("/v1/made-up-name/count", json={"query": "x"})
    assert "made-up-name" not in client.get("/metrics").text


# ------------------------------------------------------------------ pieces
def test_token_pieces(built):
    tt = TokenText(built["sa"].index.tokenizer)
    ids = list("a🎉é".encode("utf-8"))
    p = tt.pieces(ids)
    assert p == ["a", "🎉", "", "", "", "é", ""]
    bad = [0x61, 0xE2, 0x82, 0x61, 0xFF - 1]
    assert "".join(tt.pieces(bad)) == built["sa"].index.decode(bad)
    bt = TokenText(built["bpe"].index.tokenizer)
    bix = built["bpe"].index
    for text in ("héllo wörld — ünïcode ✓ 日本語 🎉 end", built["bpe"].records[0]["text"][:500]):
        ids = bix.encode(text).tolist()
        assert "".join(bt.pieces(ids)) == bix.decode(ids) == text
    assert tt.label(0xE2) == "\\xe2" and tt.label(ord("a")) == "a"


# ------------------------------------------------------ random bodies
_KEYS = ["index", "corpus", "query_type", "query", "query_ids", "maxnum", "max_disp_len", "max_support", "doc_ix",
         "s", "rank", "ptr", "max_clause_freq", "max_diff_tokens", "next_token", "queries", "text", "item", "fields",
         "cnf", "context", "offset", "length", "n", "min_len", "max_docs", "max_tokens", "top", "exact", "seed",
         "sample", "method", "with_metadata", "max_count", "dirty", "suspicious"]
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=12), st.sampled_from(["sa", "fm", "bpe", "count", "ntd", "search_docs",
                                                            "get_doc_by_ix", "find_cnf", "the", "a AND b", ""]))
_values = st.recursive(_scalars, lambda ch: st.one_of(st.lists(ch, max_size=5),
                                                        st.dictionaries(st.text(max_size=5), ch, max_size=3)),
                       max_leaves=12)
_bodies = st.one_of(st.dictionaries(st.sampled_from(_KEYS), _values, max_size=7), _values)
_raw = st.one_of(st.binary(max_size=60), _bodies.map(lambda v: json.dumps(v).encode()))


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(path=st.one_of(st.just("/api"), st.builds(lambda n, e: f"/v1/{n}/{e}", st.sampled_from(NAMES + ["zz"]),
                                                 st.sampled_from(ENDPOINTS + ["bogus"]))),
       raw=_raw)
def test_random_bodies(client, path, raw):
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert 200 <= r.status_code < 300 or 400 <= r.status_code < 500, (path, raw, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    r.json()


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(qt=st.sampled_from(QUERY_TYPES), name=st.sampled_from(NAMES),
       extra=st.dictionaries(st.sampled_from(_KEYS[3:]), _values, max_size=5))
def test_random_api_queries(client, qt, name, extra):
    raw = json.dumps({"index": name, "query_type": qt, **extra})  # may hold Infinity: the server must cope
    r = client.post("/api", content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code in (200, 400, 404, 413, 422), (qt, extra, r.status_code, r.text[:300])
    assert ("error" in r.json()) == (r.status_code != 200)


_TEXT_KEYS = ["query", "text"]
_INT_KEYS = ["maxnum", "max_disp_len", "max_support", "doc_ix", "s", "rank", "ptr", "max_clause_freq",
             "max_diff_tokens", "context", "offset", "length", "n", "min_len", "max_docs", "max_tokens", "top", "seed",
             "max_count"]
_ints = st.one_of(st.integers(-3, 60), st.integers(2 ** 31 - 2, 2 ** 31 + 2), st.integers(2 ** 62, 2 ** 66))
_ids = st.lists(st.integers(-2, 70000), max_size=8)
_FIELD_VALUES = {
    **{k: st.text(max_size=30) for k in _TEXT_KEYS}, **{k: _ints for k in _INT_KEYS},
    "query_ids": st.one_of(_ids, st.lists(st.lists(_ids, max_size=3), max_size=3)),
    "queries": st.lists(st.one_of(st.text(max_size=8), _ids), max_size=4),
    "cnf": st.lists(st.lists(st.one_of(st.text(max_size=6), _ids), max_size=3), max_size=3),
    "next_token": st.one_of(st.text(max_size=2), st.integers(-2, 70000)), "exact": st.booleans(),
    "sample": st.booleans(), "with_metadata": st.booleans(), "method": st.sampled_from(["windows", "coverage", "x"]),
    "item": st.dictionaries(st.text(max_size=4), st.one_of(st.text(max_size=20), st.integers()), max_size=3),
    "fields": st.lists(st.text(max_size=4), max_size=2),
    "dirty": st.floats(-1, 2), "suspicious": st.floats(-1, 2),
}
_API_KEYS = ["query", "query_ids", "maxnum", "max_disp_len", "max_support", "max_clause_freq", "max_diff_tokens",
             "doc_ix", "s", "rank", "ptr", "seed"]


def _model_of(endpoint: str) -> Any:
    from infinigram.server import v1

    return {"count": v1.CountBody, "find": v1.FindBody, "count_many": v1.CountManyBody, "prob": v1.ProbBody,
            "infgram_prob": v1.ProbBody, "ntd": v1.NtdBody, "infgram_ntd": v1.NtdBody,
            "search_docs": v1.SearchDocsBody, "document": v1.DocumentBody, "window": v1.WindowBody,
            "score": v1.ScoreBody, "longest_matches": v1.LongestMatchesBody,
            "maximal_matches": v1.MaximalMatchesBody, "cnf": v1.CnfBody, "contamination": v1.ContaminationBody}[endpoint]


@st.composite
def _plausible_request(draw: Any) -> "tuple[str, Dict[str, Any]]":
    """A path and a body holding only that route's own fields, with values near and beyond their ranges."""
    ep = draw(st.sampled_from(ENDPOINTS + ["api"]))
    name = draw(st.sampled_from(NAMES))
    keys = _API_KEYS if ep == "api" else list(_model_of(ep).model_fields)
    body = draw(st.fixed_dictionaries({}, optional={k: _FIELD_VALUES[k] for k in keys}))
    if ep == "api":
        return "/api", {"index": name, "query_type": draw(st.sampled_from(QUERY_TYPES)), **body}
    return f"/v1/{name}/{ep}", body


@hsettings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(req=_plausible_request())
def test_random_plausible_bodies(client, req):
    """Bodies of each route's own fields with values near and beyond their ranges: no 5xx."""
    path, body = req
    r = client.post(path, json=body)
    assert r.status_code < 500, (path, body, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    r.json()


def test_alive_after_random(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.app.state.metrics.internal_errors == 0


# ------------------------------------------------- a real server (the CLI)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")
    if os.path.isdir(os.path.join(src, "infinigram")) and any(
            f.startswith("_core") for f in os.listdir(os.path.join(src, "infinigram"))):
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("INFINIGRAM_API_KEY", None)
    return env


def test_cli_serve_real_uvicorn(built):
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "infinigram", "serve", f"docs={built['sa'].path}", f"fm={built['fm'].path}",
           "--port", str(port), "--workers", "2", "--api-key", "k3y", "--max-maxnum", "5"]
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert p.poll() is None, p.stdout.read() if p.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10) as c:
            assert c.post("/v1/docs/count", json={"query": "the"}).status_code == 401
            assert c.get("/v1/indexes").status_code == 401
            h = {"X-API-Key": "k3y"}
            names = [x["name"] for x in c.get("/v1/indexes", headers=h).json()["indexes"]]
            assert names == ["docs", "fm"]
            for _ in range(6):  # both workers answer alike
                assert c.post("/v1/docs/count", json={"query": "the"}, headers=h).json()["count"] == \
                    built["sa"].index.count("the")
                assert c.post("/api", json={"index": "fm", "query_type": "count", "query": "the"},
                              headers=h).json()["count"] == built["fm"].index.count("the")
            r = c.post("/v1/docs/search_docs", json={"query": "the", "maxnum": 6}, headers=h)
            assert r.status_code == 422 and r.json()["error"]["limit"] == "max_maxnum"
    finally:
        p.send_signal(signal.SIGINT)
        try:
            out, _ = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
    assert "serving docs" in out and "Traceback" not in out


def test_cli_serve_errors(tmp_path, capsys):
    from infinigram.cli import main

    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["serve", "a=x", "a=y"]) == 2
    assert "twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--max-query-tokens" in capsys.readouterr().out
