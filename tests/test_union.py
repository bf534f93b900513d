"""Several indexes searched as one (``Index([a, b, ...])``): every query
answers as one index built over all the documents does.

For each backend and token width, corpus A (3 shards) and B (1 shard) are
built apart and ALL = A's documents then B's in one build; ``Index([A, B])``
is compared with ``Index(ALL)`` on counts, batched counts, n-gram and ∞-gram
probabilities and distributions, sequence scores, matching statistics,
locations, documents (with their source names) and CNF. Doc ids line up:
union doc i is ALL's doc i.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import assert_same_answers, ngram_queries, real_records, synthetic_records, write_jsonl

import infinigram
from infinigram import Index, InfinigramError


@pytest.fixture(scope="module", params=[("sa", "bytes"), ("fm", "bytes"), ("sa", "u16"), ("fm", "u16")],
                ids=["sa-u8", "fm-u8", "sa-u16", "fm-u16"])
def trio(request, tmp_path_factory, bpe_tokenizer_path):
    backend, kind = request.param
    tok = "bytes" if kind == "bytes" else bpe_tokenizer_path
    recs = synthetic_records()[:40] + real_records(6, 6000)
    random.Random(7).shuffle(recs)
    a, b = recs[: len(recs) * 2 // 3], recs[len(recs) * 2 // 3:]
    d = tmp_path_factory.mktemp(f"union_{backend}_{kind}")
    kw = dict(tokenizer=tok, progress=False, backend=backend, sa_sample=4, isa_sample=4)
    sa = sum(len(r["text"].encode()) for r in a)
    infinigram.build(write_jsonl(str(d / "a.jsonl"), a), str(d / "A"), shard_size=sa // 3 + 1, **kw)
    infinigram.build(write_jsonl(str(d / "b.jsonl"), b), str(d / "B"), shard_size=None, **kw)
    infinigram.build(write_jsonl(str(d / "all.jsonl"), a + b), str(d / "ALL"), shard_size=None, **kw)
    u = Index([str(d / "A"), str(d / "B")])
    one = Index(str(d / "ALL"))
    return u, one, a + b, len(a)


def test_union_shape(trio):
    u, one, docs, n_a = trio
    assert u.is_union and not one.is_union
    assert u.n_docs == one.n_docs == len(docs) and u.n_tokens == one.n_tokens
    assert u.n_shards == u.parts[0].n_shards + 1 and u.parts[0].n_shards >= 2
    assert [p.name for p in u.parts] == ["A", "B"] and u.parts[1].doc_base == n_a
    assert u.manifest["n_docs"] == one.manifest["n_docs"] and len(u.manifest["union"]) == 2
    assert "A" in repr(u) and "B" in repr(u)
    u.verify()


def test_union_answers(trio):
    u, one, docs, _ = trio
    assert_same_answers(u, one, docs)
    assert u.count([]) == one.count([])


def test_union_scores_and_matches(trio):
    u, one, docs, _ = trio
    text = docs[3]["text"][:200] + " zq!x " + docs[-2]["text"][:200]
    su, so = u.infgram_logprobs(text), one.infgram_logprobs(text)
    assert su.suffix_len.tolist() == so.suffix_len.tolist()
    np.testing.assert_array_equal(su.logprobs, so.logprobs)
    lu, lo = u.longest_matches(text, with_occurrence=False), one.longest_matches(text, with_occurrence=False)
    assert lu.length.tolist() == lo.length.tolist() and lu.count.tolist() == lo.count.tolist()
    mu = [(m.start, m.end, m.count) for m in u.maximal_matches(text, min_len=3, max_docs=0)]
    assert mu == [(m.start, m.end, m.count) for m in one.maximal_matches(text, min_len=3, max_docs=0)]


def test_union_documents(trio):
    u, one, docs, n_a = trio
    for q in ngram_queries(one, docs, 2, 20):
        lu, lo = u.locate(q, 10**6), one.locate(q, 10**6)
        assert sorted(zip(lu.doc_ix.tolist(), lu.offset.tolist())) == \
               sorted(zip(lo.doc_ix.tolist(), lo.offset.tolist()))
        for m in u.search_docs(q, maxnum=3, context=5):
            assert m.tokens[m.needle_start:m.needle_end].tolist() == list(q)
            assert m.source == u.doc_source(m.doc_ix)
    for i in [0, n_a - 1, n_a, len(docs) - 1]:
        du, do = u.get_doc(i), one.get_doc(i)
        assert du.text == do.text == docs[i]["text"] and du.metadata == do.metadata
        name, local = du.source
        assert (name, local) == (("A", i) if i < n_a else ("B", i - n_a))
        assert Index(u.parts[0].path if name == "A" else u.parts[1].path).get_doc(local).text == du.text
    assert one.get_doc(0).source is None
    with pytest.raises(IndexError):
        u.get_doc(len(docs))


def test_union_cnf(trio):
    u, one, docs, _ = trio
    t = one.encode(docs[len(docs) - 3]["text"]).tolist()  # a document of B: matches cross the parts
    cnf = [[t[0:3]], [t[5:7], t[40:42]]]
    assert u.count_cnf(cnf) == one.count_cnf(cnf) and one.count_cnf(cnf)[0] > 0
    fu, fo = u.find_cnf(cnf), one.find_cnf(cnf)
    assert sorted(zip(fu.doc_ix.tolist(), fu.start.tolist(), fu.end.tolist())) == \
           sorted(zip(fo.doc_ix.tolist(), fo.start.tolist(), fo.end.tolist()))


def test_union_named_parts(trio):
    u, _, _, n_a = trio
    named = Index({"first": u.parts[0].path, "second": u.parts[1].path})
    assert named.doc_source(n_a) == ("second", 0) and named.doc_source(0) == ("first", 0)


def test_union_mismatch_errors(tmp_path, bpe_tokenizer_path):
    recs = synthetic_records()[:10]
    src = write_jsonl(str(tmp_path / "c.jsonl"), recs)
    infinigram.build(src, str(tmp_path / "u8"), progress=False)
    infinigram.build(src, str(tmp_path / "u16"), tokenizer=bpe_tokenizer_path, progress=False)
    infinigram.build(src, str(tmp_path / "fm"), backend="fm", progress=False)
    u8, u16, fm = (str(tmp_path / n) for n in ("u8", "u16", "fm"))
    with pytest.raises(InfinigramError, match="token widths differ") as e:
        Index([u8, u16])
    assert u8 in str(e.value) and u16 in str(e.value)
    with pytest.raises(InfinigramError, match="backends differ") as e:
        Index([u8, fm])
    assert u8 in str(e.value) and fm in str(e.value)
    with pytest.raises(InfinigramError, match="no index path"):
        Index([])
    with pytest.raises(infinigram.NotAnIndexError):
        Index([u8, str(tmp_path / "missing")])


def test_union_cli(trio, capsys):
    """``infinigram query A B MODE ...`` answers over the union."""
    import json

    from infinigram.cli import main

    u, one, docs, n_a = trio
    a, b = u.parts[0].path, u.parts[1].path
    q = one.decode(one.encode(docs[n_a]["text"])[:6])
    assert main(["query", a, b, "count", q, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == one.count(q) > 0
    assert main(["query", a, b, "doc", str(n_a), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["index"], d["index_doc_ix"], d["text"]) == ("B", 0, docs[n_a]["text"])
    assert main(["query", a, b, "docs", q, "--maxnum", "50", "--json"]) == 0
    ms = json.loads(capsys.readouterr().out)["matches"]
    assert {(m["index"], m["index_doc_ix"]) for m in ms} >= {("B", 0)}
    assert main(["query", a, b, "infgram", q, "--json"]) == 0
    capsys.readouterr()
    assert main(["query", a, "count", q]) == 0  # one index: unchanged
    assert int(capsys.readouterr().out) == Index(a).count(q)
