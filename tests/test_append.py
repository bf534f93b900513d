"""Appending documents (``infinigram append``): new shards, a new manifest
generation published by one rename, ids continuing; after any sequence of
appends every query answers as one fresh build of all the documents does.
An Index opened before an append keeps its generation; reload() sees the new
one. A failed or interrupted append leaves the previous generation whole."""

from __future__ import annotations

import json
import os
import random

import pytest

from conftest import assert_same_answers, real_records, synthetic_records, write_jsonl

import infinigram
from infinigram import Index
from infinigram import format as fmt
from infinigram.append import append


def _docs():
    recs = synthetic_records()[:30] + real_records(5, 6000)
    random.Random(11).shuffle(recs)
    return recs


@pytest.mark.parametrize("backend,kind", [("sa", "bytes"), ("fm", "bytes"), ("sa", "u16"), ("fm", "u16")])
def test_appends_answer_as_one_build(tmp_path, bpe_tokenizer_path, backend, kind):
    tok = "bytes" if kind == "bytes" else bpe_tokenizer_path
    docs = _docs()
    cut1, cut2 = len(docs) // 2, len(docs) * 3 // 4
    kw = dict(progress=False, backend=backend, sa_sample=4, isa_sample=4)
    idx = str(tmp_path / "idx")
    infinigram.build(write_jsonl(str(tmp_path / "a.jsonl"), docs[:cut1]), idx, tokenizer=tok, shard_size=None, **kw)
    before = Index(idx)
    n0, count0 = before.n_docs, before.count(docs[0]["text"][:8])
    m1 = append(idx, write_jsonl(str(tmp_path / "b.jsonl"), docs[cut1:cut2]), shard_size=400, progress=False)
    assert m1["generation"] == 1 and len(m1["shards"]) >= 3  # shard_size splits the appended documents
    m2 = append(idx, write_jsonl(str(tmp_path / "c.jsonl"), docs[cut2:]), progress=False)
    assert m2["generation"] == 2 and [a["generation"] for a in m2["appends"]] == [1, 2]
    # the Index opened before keeps its generation; reload sees the new one
    assert (before.n_docs, before.generation, before.count(docs[0]["text"][:8])) == (n0, 0, count0)
    assert before.reload() is before and before.generation == 2 and before.n_docs == len(docs)
    infinigram.build(write_jsonl(str(tmp_path / "all.jsonl"), docs), str(tmp_path / "one"), tokenizer=tok,
                     shard_size=None, **kw)
    one = Index(str(tmp_path / "one"))
    for ix in (before, Index(idx, verify=True)):
        assert_same_answers(ix, one, docs, seed=5)
    assert sorted(os.listdir(idx)) == sorted({s["dir"] for s in m2["shards"]} |
                                             {"index.json", ".append.lock"} |
                                             ({"tokenizer.json"} if kind == "u16" else set()))


def test_append_errors_leave_the_index_whole(tmp_path, bpe_tokenizer_path, monkeypatch):
    docs = _docs()
    idx = str(tmp_path / "idx")
    infinigram.build(write_jsonl(str(tmp_path / "a.jsonl"), docs[:10]), idx, progress=False)
    manifest_bytes = open(os.path.join(idx, "index.json"), "rb").read()
    listing = sorted(os.listdir(idx))

    def unchanged():
        assert open(os.path.join(idx, "index.json"), "rb").read() == manifest_bytes
        assert sorted(x for x in os.listdir(idx) if x != ".append.lock") == listing
        Index(idx, verify=True)

    new = write_jsonl(str(tmp_path / "b.jsonl"), docs[10:20])
    with pytest.raises(infinigram.TokenizerError, match="cannot append") as e:  # before any work
        append(idx, new, tokenizer=bpe_tokenizer_path, progress=False)
    assert idx in str(e.value) and bpe_tokenizer_path in str(e.value)
    unchanged()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken\n')
    with pytest.raises(infinigram.InputError, match=r"bad\.jsonl:2"):
        append(idx, str(bad), progress=False)
    unchanged()
    with pytest.raises(infinigram.NotAnIndexError):
        append(str(tmp_path / "nowhere"), new, progress=False)

    # interrupted just before publishing: the old generation stays, and the
    # next append cleans up what was moved in and succeeds
    real = fmt.write_manifest
    monkeypatch.setattr(fmt, "write_manifest", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError, match="No space"):
        append(idx, new, progress=False)
    monkeypatch.setattr(fmt, "write_manifest", real)
    unchanged()
    os.mkdir(os.path.join(idx, "shard-00042"))  # as a SIGKILL between the moves and the rename leaves them
    os.mkdir(os.path.join(idx, ".append-1-dead"))
    m = append(idx, new, progress=False)
    assert m["generation"] == 1 and Index(idx).n_docs == 20
    assert not os.path.exists(os.path.join(idx, "shard-00042")) and not os.path.exists(os.path.join(idx, ".append-1-dead"))


def test_append_cli(tmp_path, capsys):
    from infinigram.cli import main

    docs = _docs()
    idx = str(tmp_path / "idx")
    infinigram.build(write_jsonl(str(tmp_path / "a.jsonl"), docs[:10]), idx, progress=False)
    assert main(["append", idx, write_jsonl(str(tmp_path / "b.jsonl"), docs[10:15])]) == 0
    err = capsys.readouterr().err
    assert "appended 5 docs" in err and "generation 1" in err
    assert main(["query", idx, "doc", "12", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == docs[12]["text"]
    assert main(["append", idx, str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err


@pytest.mark.parametrize("backend,kind", [("sa", "bytes"), ("fm", "u16")])
def test_compact_after_appends(tmp_path, bpe_tokenizer_path, backend, kind):
    """append, append, compact, append, compact: every generation answers as
    one fresh build of its documents; a reader opened before a compaction
    keeps answering (documents and metadata included) after the old shards
    are unlinked."""
    from infinigram.compact import compact

    tok = "bytes" if kind == "bytes" else bpe_tokenizer_path
    docs = _docs()
    cuts = [0, len(docs) // 3, len(docs) // 2, len(docs) * 3 // 4, len(docs)]
    kw = dict(progress=False, backend=backend, sa_sample=4, isa_sample=4)
    idx = str(tmp_path / "idx")
    infinigram.build(write_jsonl(str(tmp_path / "p0.jsonl"), docs[:cuts[1]]), idx, tokenizer=tok, shard_size=None, **kw)
    for k in (1, 2):
        append(idx, write_jsonl(str(tmp_path / f"p{k}.jsonl"), docs[cuts[k]:cuts[k + 1]]), shard_size=300, progress=False)
    old = Index(idx)
    assert old.n_shards >= 4
    m = compact(idx, progress=False)
    assert len(m["shards"]) == 1 and m["generation"] == 3 and m["compactions"][0]["shards_before"] == old.n_shards
    assert sorted(x for x in os.listdir(idx) if x.startswith("shard-")) == [m["shards"][0]["dir"]]
    infinigram.build(write_jsonl(str(tmp_path / "upto3.jsonl"), docs[:cuts[3]]), str(tmp_path / "one3"),
                     tokenizer=tok, shard_size=None, **kw)
    one3 = Index(str(tmp_path / "one3"))
    assert_same_answers(Index(idx, verify=True), one3, docs[:cuts[3]], seed=7)
    assert_same_answers(old, one3, docs[:cuts[3]], seed=8)  # its unlinked generation, still mapped
    if backend == "sa":  # one shard of the same documents: the same suffix array, byte for byte
        new_sa = os.path.join(idx, m["shards"][0]["dir"], "sa.bin")
        assert open(new_sa, "rb").read() == open(os.path.join(str(tmp_path / "one3"), "shard-00000", "sa.bin"), "rb").read()
    append(idx, write_jsonl(str(tmp_path / "p3.jsonl"), docs[cuts[3]:]), progress=False)
    m = compact(idx, progress=False, shard_size=2000 if kind == "bytes" else 1000)
    assert len(m["shards"]) >= 2 and m["generation"] == 5
    infinigram.build(write_jsonl(str(tmp_path / "all.jsonl"), docs), str(tmp_path / "one"), tokenizer=tok,
                     shard_size=None, **kw)
    assert_same_answers(Index(idx, verify=True), Index(str(tmp_path / "one")), docs, seed=9)


def test_compact_interrupted_and_cli(tmp_path, monkeypatch, capsys):
    from infinigram.cli import main
    from infinigram.compact import compact

    docs = _docs()
    idx = str(tmp_path / "idx")
    infinigram.build(write_jsonl(str(tmp_path / "a.jsonl"), docs[:20]), idx, progress=False, shard_size=500)
    before = open(os.path.join(idx, "index.json"), "rb").read()
    real = fmt.write_manifest
    monkeypatch.setattr(fmt, "write_manifest", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError, match="No space"):
        compact(idx, progress=False)
    monkeypatch.setattr(fmt, "write_manifest", real)
    assert open(os.path.join(idx, "index.json"), "rb").read() == before
    ix = Index(idx, verify=True)
    assert sorted(x for x in os.listdir(idx) if x.startswith("shard-")) == sorted(s["dir"] for s in ix.manifest["shards"])
    n = ix.n_shards
    assert main(["compact", idx]) == 0
    assert f"{n} -> 1 shard(s)" in capsys.readouterr().err
    assert Index(idx).n_shards == 1 and Index(idx).get_doc(19).text == docs[19]["text"]
    assert main(["compact", str(tmp_path / "nope")]) == 2


def test_append_and_compact_refuse_a_read_only_index(tmp_path, monkeypatch):
    """An index directory the process cannot write: a clear error before any
    work, the index unchanged (as root, permissions never refuse: os.access is
    stood in for)."""
    from infinigram.compact import compact

    docs = _docs()
    idx = str(tmp_path / "idx")
    infinigram.build(write_jsonl(str(tmp_path / "a.jsonl"), docs[:5]), idx, progress=False)
    before = open(os.path.join(idx, "index.json"), "rb").read()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if os.path.abspath(p) == idx else real(p, mode, **k))
    new = write_jsonl(str(tmp_path / "b.jsonl"), docs[5:8])
    with pytest.raises(infinigram.InfinigramError, match="not writable"):
        append(idx, new, progress=False)
    with pytest.raises(infinigram.InfinigramError, match="not writable"):
        compact(idx, progress=False)
    assert open(os.path.join(idx, "index.json"), "rb").read() == before
    assert sorted(os.listdir(idx)) == sorted(x for x in os.listdir(idx) if not x.startswith("."))
