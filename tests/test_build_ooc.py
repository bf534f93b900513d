"""Shards larger than memory: parts sorted in whole-text order and merged on
disk (csrc/sa_parts.hpp, csrc/sa_merge.hpp, python/infinigram/build_ooc.py).

The merged sa.bin must be byte-identical to the in-memory build's, so most
checks compare bytes; the index-level checks compare answers of an
out-of-core build with an unconstrained one, on both backends.
"""

from __future__ import annotations

import filecmp
import json
import os
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infinigram
from infinigram import _core
from infinigram import build_ooc
from infinigram.errors import InputError

from conftest import write_raw_shard

DT = {1: np.uint8, 2: np.uint16, 4: np.uint32}


def ooc_sa(tokens_path: str, width: int, bounds, out: str, buffer_entries: int = 3) -> None:
    runs = []
    for i in range(len(bounds) - 1):
        r = f"{out}.run{i}"
        assert _core.sort_suffix_part(tokens_path, width, bounds[i], bounds[i + 1], r) == bounds[i + 1] - bounds[i]
        runs.append(r)
    assert _core.merge_suffix_runs(tokens_path, width, runs, out, buffer_entries=buffer_entries,
                                   durable=False) == _core.ptr_width_for(bounds[-1])


def assert_same_sa(d, T: np.ndarray, width: int, bounds) -> None:
    tp = os.path.join(str(d), "t.bin")
    T.astype(DT[width]).tofile(tp)
    ref, got = os.path.join(str(d), "ref.bin"), os.path.join(str(d), "got.bin")
    _core.build_suffix_array(tp, ref, width, None, False)
    ooc_sa(tp, width, bounds, got)
    assert filecmp.cmp(ref, got, shallow=False), (width, len(T), bounds)


def cuts(n: int, k: int, rng: random.Random):
    k = max(1, min(k, n))
    return [0] + sorted(rng.sample(range(1, n), k - 1)) + [n]


def docs_text(rng: np.random.Generator, width: int, kind: str, n_docs: int = 40):
    if kind == "random":
        hi = {1: 4, 2: 300, 4: 70000}[width]
        return [rng.integers(0, hi, size=int(rng.integers(0, 60))) for _ in range(n_docs)]
    if kind == "sparse32":  # huge, sparse ids: the part sort ranks them
        vals = np.array([5, 70000, 2**31, 2**32 - 2], np.uint64)
        return [rng.choice(vals, size=int(rng.integers(0, 50))) for _ in range(n_docs)]
    if kind == "repeats":  # one document many times, plus near copies
        doc = rng.integers(0, 3, size=37)
        out = [doc.copy() for _ in range(n_docs)]
        for x in out[::5]:
            x[int(rng.integers(0, len(x)))] = 2
        return out
    raise ValueError(kind)


@pytest.mark.parametrize("width", [1, 2, 4])
@pytest.mark.parametrize("kind", ["random", "repeats", "sparse32"])
def test_parts_merge_bytes_identical(tmp_path, width, kind):
    if kind == "sparse32" and width != 4:
        pytest.skip("u32 only")
    rng = np.random.default_rng(hash((width, kind)) % 2**32)
    T = write_raw_shard(tmp_path, width, docs_text(rng, width, kind))
    r = random.Random(width)
    for k in (1, 2, 3, 8, 50, len(T) if width == 1 else 150):  # u16/u32 parts cost ~ms each (buckets)
        assert_same_sa(tmp_path, T, width, cuts(len(T), k, r))


def test_periodic_text_and_one_symbol(tmp_path):
    """Texts where every suffix reaches past every part's end (the boundary
    bits decide everything) and the merge ties over long stretches."""
    r = random.Random(0)
    for T in (np.zeros(300, np.uint8), np.tile(np.array([0, 1, 255], np.uint8), 100),
              np.tile(np.array([7, 7, 7, 3], np.uint8), 90)):
        for k in (2, 5, 17, 300):
            assert_same_sa(tmp_path, T, 1, cuts(len(T), k, r))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_small_texts_many_parts(tmp_path, data):
    width = data.draw(st.sampled_from([1, 2, 4]))
    sep = (1 << (8 * width)) - 1
    alphabet = data.draw(st.sampled_from([[0, 1], [0, 1, 2], [0, sep], [0, 1, sep], [sep - 1, sep]]))
    T = np.array(data.draw(st.lists(st.sampled_from(alphabet), min_size=1, max_size=80)), np.uint64)
    n = len(T)
    k = data.draw(st.integers(1, n))
    bounds = sorted(set([0, n] + data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=k)))) if n > 1 else [0, 1]
    assert_same_sa(tmp_path, T, width, bounds)


def test_part_errors(tmp_path):
    T = write_raw_shard(tmp_path, 1, [np.arange(10)])
    tp = os.path.join(str(tmp_path), "t.bin")
    with pytest.raises(ValueError):
        _core.sort_suffix_part(tp, 1, 5, 5, str(tmp_path / "r"))
    with pytest.raises(ValueError):
        _core.sort_suffix_part(tp, 1, 0, len(T) + 1, str(tmp_path / "r"))
    _core.sort_suffix_part(tp, 1, 0, 4, str(tmp_path / "r0"))
    with pytest.raises(ValueError, match="runs hold"):  # not every position
        _core.merge_suffix_runs(tp, 1, [str(tmp_path / "r0")], str(tmp_path / "sa"))


# ------------------------------------------------------------- index level
def corpus(path, n_docs: int = 300, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "mat", "dog", "a", "ran", "über", "日本", "x" * 30]
    boiler = "This file is part of the project; see LICENSE for the terms. " * 3
    recs = []
    for i in range(n_docs):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 80)))
        if i % 7 == 0:
            text = boiler + text  # long repeats across documents
        recs.append({"text": text, "id": i})
    with open(path, "w", encoding="utf-8") as fh:
        for r in recs:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(scope="module")
def pair_indexes(tmp_path_factory, bpe_tokenizer_path):
    d = tmp_path_factory.mktemp("ooc")
    src = corpus(str(d / "c.jsonl"))
    out = {}
    for tok_name, tok in (("bytes", "bytes"), ("bpe", bpe_tokenizer_path)):
        for backend in ("sa", "fm"):
            ref = str(d / f"ref-{tok_name}-{backend}")
            ooc = str(d / f"ooc-{tok_name}-{backend}")
            infinigram.build(src, ref, tokenizer=tok, shard_size=None, progress=False, backend=backend)
            infinigram.build(src, ooc, tokenizer=tok, shard_size=None, progress=False, backend=backend,
                             sa_part_size=997)
            out[(tok_name, backend)] = (ref, ooc)
    return out


@pytest.mark.parametrize("tok", ["bytes", "bpe"])
@pytest.mark.parametrize("backend", ["sa", "fm"])
def test_index_files_identical(pair_indexes, tok, backend):
    ref, ooc = pair_indexes[(tok, backend)]
    mr, mo = (json.load(open(os.path.join(p, "index.json"))) for p in (ref, ooc))
    assert len(mo["shards"]) == 1
    assert mr["shards"][0]["files"] == mo["shards"][0]["files"]  # sizes and sha256 of every file
    assert not any(n.endswith(".runs") for n in os.listdir(os.path.join(ooc, "shard-00000")))


@pytest.mark.parametrize("tok", ["bytes", "bpe"])
@pytest.mark.parametrize("backend", ["sa", "fm"])
def test_answers_equal(pair_indexes, tok, backend):
    ref, ooc = (infinigram.Index(p) for p in pair_indexes[(tok, backend)])
    rng = random.Random(5)
    for doc_ix in rng.sample(range(ref.n_docs), 20):
        toks = ref.get_doc(doc_ix).tokens
        assert np.array_equal(toks, ooc.get_doc(doc_ix).tokens)
        for _ in range(3):
            if len(toks) < 2:
                continue
            a = rng.randrange(len(toks) - 1)
            q = [int(t) for t in toks[a:a + rng.randint(1, 12)]]
            assert ref.count(q) == ooc.count(q)
            lr, lo = ref.locate(q, limit=50), ooc.locate(q, limit=50)
            assert np.array_equal(lr.doc_ix, lo.doc_ix) and np.array_equal(lr.offset, lo.offset)
            pr, po = ref.infgram_prob(q[:-1] or q, q[-1]), ooc.infgram_prob(q[:-1] or q, q[-1])
            assert (pr.prompt_count, pr.cont_count, pr.suffix_len) == (po.prompt_count, po.cont_count, po.suffix_len)
    assert [(m.doc_ix, m.offset) for m in ref.search_docs("the cat", maxnum=20)] == \
        [(m.doc_ix, m.offset) for m in ooc.search_docs("the cat", maxnum=20)]


def test_budget_below_corpus_gives_one_shard(tmp_path):
    """A real budget (no part override) below the shard's in-memory need:
    one shard, built out of core, byte-identical to the unconstrained build."""
    from conftest import ENGLISH, read_jsonl_head, write_jsonl

    src = write_jsonl(str(tmp_path / "c.jsonl"), read_jsonl_head(ENGLISH, 200))
    ref, ooc = str(tmp_path / "ref"), str(tmp_path / "ooc")
    m = infinigram.build(src, ref, shard_size=None, progress=False)
    n = m["n_positions"]
    room = 20 * 10**6  # what constructions get: ~3/4 of this shard's in-memory need
    assert room < 0.8 * build_ooc.in_memory_need(n, 1)
    calls = []
    real = build_ooc.build_sa_out_of_core
    build_ooc.build_sa_out_of_core = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        mo = infinigram.build(src, ooc, shard_size=None, progress=False,
                              max_memory=build_ooc.process_rss() + build_ooc.READ_SLACK + room)
    finally:
        build_ooc.build_sa_out_of_core = real
    assert calls and len(mo["shards"]) == 1
    assert filecmp.cmp(os.path.join(ref, "shard-00000", "sa.bin"), os.path.join(ooc, "shard-00000", "sa.bin"),
                       shallow=False)


def test_parse_memory():
    assert build_ooc.parse_memory("4GB") == 4 * 10**9
    assert build_ooc.parse_memory("512MB") == 512 * 10**6
    assert build_ooc.parse_memory("1.5GiB") == int(1.5 * 2**30)
    assert build_ooc.parse_memory(12345) == 12345
    assert build_ooc.parse_memory(None) is None
    for bad in ("lots", "-1GB", "0", True):
        with pytest.raises(InputError):
            build_ooc.parse_memory(bad)
    assert build_ooc.default_max_memory() > 0


def test_budget_too_small_is_an_error_before_work(tmp_path):
    src = corpus(str(tmp_path / "c.jsonl"), n_docs=20)
    out = str(tmp_path / "idx")
    with pytest.raises(InputError, match="too small.*needs at least"):
        infinigram.build(src, out, progress=False, max_memory="50MB")
    assert os.listdir(str(tmp_path)) == ["c.jsonl"]  # no temp dir, nothing that opens


def test_unwritable_output_dir(tmp_path):
    src = corpus(str(tmp_path / "c.jsonl"), n_docs=5)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(str(ro), os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(InputError, match="not writable"):
            infinigram.build(src, str(ro / "idx"), progress=False)
    finally:
        ro.chmod(0o700)
    with pytest.raises(InputError, match="cannot create"):
        infinigram.build(src, str(tmp_path / "c.jsonl" / "sub" / "idx"), progress=False)


def test_cli_max_memory(tmp_path, capsys):
    from infinigram.cli import main

    src = corpus(str(tmp_path / "c.jsonl"), n_docs=50)
    assert main(["build", src, "-o", str(tmp_path / "idx"), "--max-memory", "2GB", "--no-progress"]) == 0
    assert infinigram.Index(str(tmp_path / "idx")).n_docs == 50
