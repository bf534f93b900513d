"""Input kinds (issue 23): the same documents as JSONL, Parquet, a datasets
Dataset (object and save_to_disk directory), a Python iterable and
pre-tokenized tokens (arrays, flat .bin + EOS, .npy + offsets, Megatron
.bin/.idx) give the same tokens (manifest checksums) and the same answers;
bytes and a subword tokenizer, both backends. Every kind's bad inputs give a
clear error and leave nothing that opens as an index. The fast byte-level-BPE
path (tiktoken) gives the tokenizers library's ids on the shared corpora and
adversarial text, or is not used.

pyarrow, datasets and tiktoken are test requirements: these tests fail, not
skip, without them.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import infinigram
from infinigram import build, build_from_tokens
from infinigram.errors import InputError, TokenizerError
from infinigram.sources.tokens import MEGATRON_DTYPES

from conftest import CODE, ENGLISH, metadata_of, real_records, synthetic_records, write_jsonl

import pyarrow as pa  # noqa: E402  (required: the test extra installs it)
import pyarrow.parquet as pq  # noqa: E402
import datasets  # noqa: E402


def _records() -> List[Dict[str, Any]]:
    return synthetic_records() + real_records(4, 6000)


def _ref_tokens(records: List[Dict[str, Any]], tokenizer: str) -> List[np.ndarray]:
    if tokenizer == "bytes":
        return [np.frombuffer(r["text"].encode("utf-8"), np.uint8) for r in records]
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(tokenizer)
    return [np.array(e.ids, np.uint16) for e in hf.encode_batch([r["text"] for r in records], add_special_tokens=False)]


def _write_megatron(prefix: str, docs: List[np.ndarray], dtype: Any, eod: int = None) -> None:
    code = {np.dtype(v): k for k, v in MEGATRON_DTYPES.items()}[np.dtype(dtype)]
    seqs = [np.append(d, eod).astype(dtype) if eod is not None else d.astype(dtype) for d in docs]
    lengths = np.array([len(s) for s in seqs], np.int32)
    pointers = np.concatenate([[0], np.cumsum(lengths.astype(np.int64) * np.dtype(dtype).itemsize)[:-1]]).astype(np.int64)
    with open(prefix + ".bin", "wb") as fh:
        for s in seqs:
            fh.write(s.tobytes())
    with open(prefix + ".idx", "wb") as fh:
        fh.write(b"MMIDIDX\x00\x00" + struct.pack("<Q", 1) + struct.pack("<B", code))
        fh.write(struct.pack("<QQ", len(seqs), len(seqs) + 1))
        fh.write(lengths.tobytes() + pointers.tobytes() + np.arange(len(seqs) + 1, dtype=np.int64).tobytes())


def _table(recs: List[Dict[str, Any]]) -> "pa.Table":
    """A rectangular table of ``recs``: every key a column, absent values null."""
    keys: Dict[str, None] = {}
    for r in recs:
        keys.update(dict.fromkeys(r))
    return pa.Table.from_pydict({k: [r.get(k) for r in recs] for k in keys})


def _core_files(m: Dict[str, Any]) -> List[Any]:
    """The checksums of the token-derived files of every shard (not metadata)."""
    keep = ("tokens.bin", "sa.bin", "fm.bin", "fm_sa.bin", "fm_isa.bin", "doc_offsets.bin")
    return [(s["n_docs"], s["n_tokens"], {k: v["sha256"] for k, v in s["files"].items() if k in keep})
            for s in m["shards"]]


def _answers(ix: infinigram.Index, toks: List[np.ndarray], meta: bool) -> List[Any]:
    out: List[Any] = [ix.n_docs, ix.n_tokens]
    rng = np.random.default_rng(0)
    for d in toks:
        if len(d) >= 3:
            a = int(rng.integers(0, len(d) - 2))
            q = [int(x) for x in d[a:a + 3]]
            out.append(ix.count(q))
    for i in range(ix.n_docs):
        doc = ix.get_doc(i)
        out.append((list(map(int, doc.tokens)), doc.metadata if meta else None))
    return out


@pytest.mark.parametrize("backend", ["sa", "fm"])
@pytest.mark.parametrize("tok_kind", ["bytes", "bpe"])
def test_every_input_kind_builds_the_same_index(tmp_path: Path, backend: str, tok_kind: str,
                                                bpe_tokenizer_path: str) -> None:
    recs = _records()
    tokenizer = "bytes" if tok_kind == "bytes" else bpe_tokenizer_path
    toks = _ref_tokens(recs, tokenizer)
    metas = [metadata_of(r) for r in recs]
    kw: Dict[str, Any] = dict(progress=False, backend=backend, shard_size=3000)
    built: Dict[str, Dict[str, Any]] = {}

    src = write_jsonl(str(tmp_path / "c.jsonl"), recs)
    built["jsonl"] = build(src, tmp_path / "i-jsonl", tokenizer=tokenizer, **kw)
    table = _table(recs)
    pq.write_table(table, tmp_path / "c.parquet", row_group_size=7)
    built["parquet"] = build(str(tmp_path / "c.parquet"), tmp_path / "i-parquet", tokenizer=tokenizer, **kw)
    ds = datasets.Dataset(_table(recs))
    built["dataset"] = build(ds, tmp_path / "i-dataset", tokenizer=tokenizer, **kw)
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "saved"))
    built["saved"] = build(str(tmp_path / "saved"), tmp_path / "i-saved", tokenizer=tokenizer, split="train", **kw)
    built["iterable"] = build((dict(r) for r in recs), tmp_path / "i-iter", tokenizer=tokenizer, **kw)
    built["arrays"] = build_from_tokens(list(zip(toks, metas)), tmp_path / "i-arrays", tokenizer=tokenizer, **kw)
    # flat token file split at an EOS id, and a Megatron dataset (no metadata there)
    eos = 0xFF if tok_kind == "bytes" else 0xFFFF
    dt = np.uint8 if tok_kind == "bytes" else np.uint16
    np.concatenate([np.append(t, eos) for t in toks]).astype(dt).tofile(tmp_path / "flat.bin")
    built["flat"] = build_from_tokens([str(tmp_path / "flat.bin")], tmp_path / "i-flat", dtype=dt, eos=eos,
                                      tokenizer=tokenizer, **kw)
    _write_megatron(str(tmp_path / "mg"), toks, np.int32 if tok_kind == "bpe" else np.uint8, eod=eos)
    built["megatron"] = build_from_tokens(str(tmp_path / "mg.bin"), tmp_path / "i-mg", eos=eos,
                                          tokenizer=tokenizer, **kw)

    ref = _core_files(built["jsonl"])
    assert len(built["jsonl"]["shards"]) >= 2
    for kind, m in built.items():
        assert _core_files(m) == ref, kind
        assert m["tokenizer"] == built["jsonl"]["tokenizer"], kind
    if tok_kind == "bpe":
        assert built["jsonl"]["build"]["encoder"]["encoder"].startswith("tiktoken")
    base = _answers(infinigram.Index(str(tmp_path / "i-jsonl")), toks, True)
    for kind, d in [("parquet", "i-parquet"), ("dataset", "i-dataset"), ("saved", "i-saved"),
                    ("iterable", "i-iter"), ("arrays", "i-arrays")]:
        assert _answers(infinigram.Index(str(tmp_path / d)), toks, True) == base, kind
    no_meta = _answers(infinigram.Index(str(tmp_path / "i-jsonl")), toks, False)
    for d in ("i-flat", "i-mg"):
        assert _answers(infinigram.Index(str(tmp_path / d)), toks, False) == no_meta, d
    ix = infinigram.Index(str(tmp_path / "i-jsonl"))
    assert ix.get_doc(0).metadata == metas[0] and ix.get_doc(0).text == recs[0]["text"]


def test_index_without_tokenizer(tmp_path: Path) -> None:
    docs = [np.array([5, 6, 7, 5, 6], np.uint16), np.array([], np.uint16), np.array([6, 7, 60000], np.uint16)]
    m = build_from_tokens(docs, tmp_path / "idx", progress=False)
    assert m["tokenizer"] == {"kind": "none", "token_width": 2} and m["n_docs"] == 3 and m["n_tokens"] == 8
    assert "text_field" not in m
    ix = infinigram.Index(str(tmp_path / "idx"))
    assert ix.count([5, 6]) == 2 and ix.count([6, 7]) == 2 and ix.count([60000]) == 1
    d = ix.get_doc(2)
    assert list(map(int, d.tokens)) == [6, 7, 60000] and d.text == ""
    with pytest.raises(TokenizerError, match="token ids"):
        ix.count("some text")
    np.save(tmp_path / "t.npy", np.array([1, 2, 3, 9, 4, 9], np.uint32))
    np.save(tmp_path / "o.npy", np.array([0, 2, 6], np.int64))
    m = build_from_tokens(str(tmp_path / "t.npy"), tmp_path / "idx2", offsets=[str(tmp_path / "o.npy")],
                          progress=False)
    assert m["token_width"] == 4 and m["n_docs"] == 2 and m["n_tokens"] == 6
    ix = infinigram.Index(str(tmp_path / "idx2"))
    assert [list(map(int, ix.get_doc(i).tokens)) for i in range(2)] == [[1, 2], [3, 9, 4, 9]]


def _nothing_left(tmp_path: Path, keep: List[str]) -> None:
    left = sorted(set(os.listdir(tmp_path)) - set(keep))
    assert left == [], left


def test_parquet_bad_inputs(tmp_path: Path) -> None:
    pq.write_table(pa.table({"body": ["a", "b"]}), tmp_path / "nocol.parquet")
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "int.parquet")
    pq.write_table(pa.table({"text": ["ok", None, "x"], "id": [1, 2, 3]}), tmp_path / "null.parquet", row_group_size=2)
    pq.write_table(pa.table({"text": [b"fine", b"\xff\xfe"]}), tmp_path / "bin.parquet")
    (tmp_path / "fake.parquet").write_bytes(b"PAR1 not really")
    keep = sorted(os.listdir(tmp_path))
    cases = [("nocol.parquet", r"nocol.parquet: no column 'text'.*columns here: body"),
             ("int.parquet", r"int.parquet: column 'text' is of type int64 \(expected a string column"),
             ("null.parquet", r"null.parquet: row 1: field 'text' is null \(expected a string\)"),
             ("bin.parquet", r"bin.parquet: row 1: column 'text': invalid UTF-8"),
             ("fake.parquet", r"fake.parquet: not a readable Parquet file")]
    for name, pattern in cases:
        with pytest.raises(InputError, match=pattern):
            build(str(tmp_path / name), tmp_path / "idx", progress=False)
        _nothing_left(tmp_path, keep)
    with pytest.raises(InputError, match=r"no column\(s\) 'nope' for --metadata-fields"):
        build(str(tmp_path / "null.parquet"), tmp_path / "idx", progress=False, metadata_fields="id,nope")
    m = build(str(tmp_path / "null.parquet"), tmp_path / "idx", progress=False, skip_invalid=True)
    assert m["n_docs"] == 2 and m["build"]["skipped_invalid"] == 1


def test_parquet_columns_and_metadata_fields(tmp_path: Path) -> None:
    import datetime

    t = pa.table({
        "text": ["alpha", "beta"],
        "id": [1, 2],
        "img": pa.array([b"\x00\x01", None], pa.binary()),
        "tags": [["x"], []],
        "meta": [{"a": 1, "b": "s"}, {"a": None, "b": "t"}],
        "when": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5), None], pa.timestamp("s")),
        "score": [float("nan"), 0.5],
    })
    pq.write_table(t, tmp_path / "c.parquet")
    build(str(tmp_path / "c.parquet"), tmp_path / "idx", progress=False)
    ix = infinigram.Index(str(tmp_path / "idx"))
    assert ix.get_doc(0).metadata == {"id": 1, "img": {"$base64": "AAE="}, "tags": ["x"], "meta": {"a": 1, "b": "s"},
                                      "when": "2024-01-02T03:04:05"}
    assert ix.get_doc(1).metadata == {"id": 2, "tags": [], "meta": {"a": None, "b": "t"}, "score": 0.5}
    build(str(tmp_path / "c.parquet"), tmp_path / "idx2", progress=False, metadata_fields=["id"])
    assert infinigram.Index(str(tmp_path / "idx2")).get_doc(1).metadata == {"id": 2}


def test_dataset_bad_inputs(tmp_path: Path) -> None:
    keep: List[str] = []
    with pytest.raises(InputError, match="the dataset has no rows"):
        build(datasets.Dataset.from_dict({"text": []}), tmp_path / "idx", progress=False)
    with pytest.raises(InputError, match=r"no column 'text'"):
        build(datasets.Dataset.from_list([{"body": "x"}]), tmp_path / "idx", progress=False)
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list([{"text": "a"}]),
                               "test": datasets.Dataset.from_list([{"text": "b"}])})
    with pytest.raises(InputError, match="splits train, test: name one"):
        build(dd, tmp_path / "idx", progress=False)
    with pytest.raises(InputError, match="no split 'dev'"):
        build(dd, tmp_path / "idx", progress=False, split="dev")
    m = build(dd, tmp_path / "idx", progress=False, split="test")
    assert m["n_docs"] == 1 and m["build"]["inputs"] == ["<DatasetDict>[test]"]
    keep = ["idx"]
    with pytest.raises(InputError, match=r"<IterableDataset>: row 1: field 'text' is a int"):
        build(datasets.IterableDataset.from_generator(lambda: iter([{"text": "a"}, {"text": 5}])),
              tmp_path / "idx2", progress=False)
    _nothing_left(tmp_path, keep)


def test_iterable_inputs_and_errors(tmp_path: Path) -> None:
    m = build(iter(["one doc", "two docs"]), tmp_path / "idx", progress=False)
    assert m["n_docs"] == 2 and m["build"]["inputs"] == ["<iterable>"]
    with pytest.raises(InputError, match=r"<iterable>: row 1: a int \(expected a str, or a dict"):
        build(iter(["ok", 3]), tmp_path / "bad", progress=False)
    with pytest.raises(InputError, match=r"<iterable>: row 0: field 't' holds a lone surrogate"):
        build([{"t": "bad \ud800"}], tmp_path / "bad", progress=False, text_field="t")
    with pytest.raises(InputError, match=r"no documents in <iterable>"):
        build(iter([]), tmp_path / "bad", progress=False)
    long_text = "a document, not a path " * 100
    with pytest.raises(InputError, match=r"is not a path \(to index texts, pass an iterator") as e:
        build([long_text], tmp_path / "bad", progress=False)
    assert len(str(e.value)) < 400
    _nothing_left(tmp_path, ["idx"])


def test_token_bad_inputs(tmp_path: Path, bpe_tokenizer_path: str) -> None:
    np.array([1, 2, 3], np.uint16).tofile(tmp_path / "odd.bin")
    (tmp_path / "odd.bin").write_bytes((tmp_path / "odd.bin").read_bytes()[:5])
    np.save(tmp_path / "f.npy", np.array([1.0, 2.0]))
    np.save(tmp_path / "u32.npy", np.array([1, 2, 7, 3], np.uint32))
    np.array([1, 2, 0xFFFF, 3], np.uint16).tofile(tmp_path / "sep.bin")
    np.array([1, 2, 5000, 3], np.uint16).tofile(tmp_path / "big.bin")
    _write_megatron(str(tmp_path / "mg"), [np.array([1, 2, 3]), np.array([4, 5])], np.int32)
    (tmp_path / "trunc.idx").write_bytes((tmp_path / "mg.idx").read_bytes()[:-9])
    (tmp_path / "trunc.bin").write_bytes((tmp_path / "mg.bin").read_bytes())
    (tmp_path / "short.idx").write_bytes((tmp_path / "mg.idx").read_bytes())
    (tmp_path / "short.bin").write_bytes((tmp_path / "mg.bin").read_bytes()[:10])
    np.array([0, 3, 2], np.uint64).tofile(tmp_path / "badoffs.bin")
    keep = sorted(os.listdir(tmp_path))
    out = tmp_path / "idx"
    cases = [
        (lambda: build_from_tokens(str(tmp_path / "odd.bin"), out, dtype="u16", eos=7), r"odd.bin: size 5 is not a multiple of 2"),
        (lambda: build_from_tokens(str(tmp_path / "f.npy"), out, eos=7), r"f.npy: a 1-d float64 array"),
        (lambda: build_from_tokens(str(tmp_path / "u32.npy"), out, dtype="u16", eos=7), r"u32.npy: holds uint32 tokens"),
        (lambda: build_from_tokens(str(tmp_path / "u32.npy"), out), r"need document boundaries"),
        (lambda: build_from_tokens(str(tmp_path / "u32.npy"), out, eos=-1), r"EOS id -1 is out of range for uint32"),
        (lambda: build_from_tokens(str(tmp_path / "sep.bin"), out, dtype="u16", eos=2**16), r"EOS id 65536 is out of range"),
        (lambda: build_from_tokens(str(tmp_path / "sep.bin"), out, dtype="u16", eos=7),
         r"sep.bin: document 0: token id 65535 does not fit below the separator 65535"),
        (lambda: build_from_tokens(str(tmp_path / "big.bin"), out, dtype="u16", eos=3, tokenizer=bpe_tokenizer_path),
         r"big.bin: document 0: token id 5000 does not fit in the tokenizer's vocabulary"),
        (lambda: build_from_tokens(str(tmp_path / "trunc.idx"), out), r"trunc.idx: truncated"),
        (lambda: build_from_tokens(str(tmp_path / "short"), out), r"short.idx: its sequences reach past the end"),
        (lambda: build_from_tokens(str(tmp_path / "mg"), out, dtype="u16"), r"mg.idx: holds int32 tokens"),
        (lambda: build_from_tokens(str(tmp_path / "u32.npy"), out, offsets=[str(tmp_path / "badoffs.bin")]),
         r"badoffs.bin: bad document offsets"),
        (lambda: build_from_tokens(iter([np.array([1, 2])]), out), r"the token dtype is unknown"),
        (lambda: build_from_tokens([np.array([[1, 2]])], out), r"<arrays>: document 0: a 2-d"),
        (lambda: build_from_tokens(str(tmp_path / "nothere.bin"), out, dtype="u16", eos=1), r"no such token file"),
    ]
    for fn, pattern in cases:
        with pytest.raises((InputError, TokenizerError), match=pattern):
            fn()
        _nothing_left(tmp_path, keep)


# ---------------------------------------------------------------------------
# the fast exact path
# ---------------------------------------------------------------------------


def _adversarial(shared_texts: List[str]) -> List[str]:
    chars = sorted({c for t in shared_texts for c in t if ord(c) > 127})
    every_script = ["".join(chars[i:i + 40]) for i in range(0, len(chars), 40)]
    return every_script + [
        " " * 1000, "\n" * 500 + "x", "\t \n \r\n" * 200, "1" * 999, "12345678901234567890 3.14159 1,000,000",
        "a  b   c    d\n\n\ne", "I'M YOU'LL we'Re THEY'D", "don't 's 'S", "\u00a0\u3000\u2009 nbsp",
        "Привет, мир! Γειά σου 你好世界 こんにちは 안녕하세요 مرحبا שלום हिन्दी ภาษาไทย",
        "👩‍👩‍👧‍👦 🏳️‍🌈 e\u0301 \u200b\u200d\ufeff", "<|begin_of_text|>x<|end_of_text|><|reserved_special_token_3|>",
        "<|begin_of_text", "ab<|eot_id|>cd <|start_header_id|>", "\x00\x01\x1f control", "", " ", "\u2028\u2029",
        "x" * 5000 + " " + "y" * 17,
    ]


def test_fast_path_ids_equal_tokenizers(llama3_tokenizer_path: str) -> None:
    from infinigram.tokenizer import FastBPETokenizer, HFTokenizer

    full = [json.loads(line)["text"] for f in (ENGLISH, CODE) for line in open(f, encoding="utf-8")]
    # every document of the shared corpora, its first 3,000 characters (the whole 17 MB takes a minute on a
    # loaded 2-core machine); every non-ASCII character of the whole corpora is in the adversarial texts
    texts = [t[:3000] for t in full]
    fast = FastBPETokenizer(llama3_tokenizer_path, n_threads=2)
    assert fast.check_against(texts) is None
    adv = _adversarial(full)
    assert fast.check_against(adv) is None
    hf = HFTokenizer(llama3_tokenizer_path)
    for t in adv[:5]:
        assert np.array_equal(fast.encode(t), hf.encode(t))
    # a lone surrogate never reaches an encoder: the sources refuse it, naming the row
    with pytest.raises(InputError, match="row 0: .*lone surrogate"):
        build(iter(["x \udcff"]), "/nonexistent-dir/idx", tokenizer=llama3_tokenizer_path, progress=False)


def test_fast_path_used_checked_and_fallback(tmp_path: Path, bpe_tokenizer_path: str, monkeypatch) -> None:
    from infinigram.tokenizer import FastBPETokenizer

    src = write_jsonl(str(tmp_path / "c.jsonl"), _records())
    m = build(src, tmp_path / "a", tokenizer=bpe_tokenizer_path, progress=False)
    assert m["build"]["encoder"]["encoder"].startswith("tiktoken")
    m2 = build(src, tmp_path / "b", tokenizer=bpe_tokenizer_path, progress=False, fast_tokenizer=False)
    assert m2["build"]["encoder"]["encoder"] == "tokenizers" and _core_files(m2) == _core_files(m)
    # ids that differ on the sample: a warning, and the tokenizers library builds the same index
    monkeypatch.setattr(FastBPETokenizer, "check_against", lambda self, texts: 3)
    with pytest.warns(RuntimeWarning, match="differ from the tokenizers library's on document 3"):
        m3 = build(src, tmp_path / "c", tokenizer=bpe_tokenizer_path, progress=False)
    assert m3["build"]["encoder"]["encoder"] == "tokenizers" and _core_files(m3) == _core_files(m)
    with pytest.raises(TokenizerError, match="differ"):
        build(src, tmp_path / "d", tokenizer=bpe_tokenizer_path, progress=False, fast_tokenizer=True)
    monkeypatch.undo()
    # a tokenizer the rank encoder cannot reproduce (a normalizer): not used, and said why
    tj = json.load(open(bpe_tokenizer_path))
    tj["normalizer"] = {"type": "NFC"}
    (tmp_path / "norm.json").write_text(json.dumps(tj))
    m4 = build(src, tmp_path / "e", tokenizer=str(tmp_path / "norm.json"), progress=False)
    assert m4["build"]["encoder"] == {"encoder": "tokenizers", "fast_path": "not used: a normalizer (NFC)"}
    with pytest.raises(TokenizerError, match="cannot be used: a normalizer"):
        build(src, tmp_path / "f", tokenizer=str(tmp_path / "norm.json"), progress=False, fast_tokenizer=True)
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c", "c.jsonl", "e", "norm.json"]


def test_cli_new_inputs(tmp_path: Path, capsys) -> None:
    from infinigram.cli import main

    recs = synthetic_records()
    pq.write_table(_table(recs), tmp_path / "c.parquet")
    assert main(["build", str(tmp_path / "c.parquet"), "-o", str(tmp_path / "p"), "--no-progress",
                 "--metadata-fields", "id"]) == 0
    assert infinigram.Index(str(tmp_path / "p")).get_doc(0).metadata == {"id": "d0"}
    datasets.DatasetDict({"train": datasets.Dataset.from_list(recs)}).save_to_disk(str(tmp_path / "saved"))
    assert main(["build", "--hf-dataset", str(tmp_path / "saved"), "--split", "train", "-o", str(tmp_path / "h"),
                 "--no-progress"]) == 0
    np.array([1, 2, 0, 3, 4, 0], np.uint16).tofile(tmp_path / "t.bin")
    assert main(["build", "--from-tokens", str(tmp_path / "t.bin"), "--dtype", "u16", "--eos", "0",
                 "-o", str(tmp_path / "t"), "--no-progress"]) == 0
    assert main(["query", str(tmp_path / "t"), "count", "--tokens", "3,4"]) == 0
    assert capsys.readouterr().out.strip().endswith("1")
    assert main(["query", str(tmp_path / "t"), "count", "hello"]) == 2
    assert "token ids" in capsys.readouterr().err
    assert main(["query", str(tmp_path / "t"), "doc", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "3 4"  # ids: the index has no text
    assert main(["build", str(tmp_path / "c.parquet"), "--eos", "0", "-o", str(tmp_path / "x")]) == 2
    assert "--eos go with --from-tokens" in capsys.readouterr().err


def test_arrow_cache_directory(tmp_path: Path) -> None:
    """A load_dataset cache: <name>-<split>[-NNNNN-of-NNNNN].arrow files, split chosen by name."""
    import shutil

    from infinigram.cli import main

    for split, texts in (("train", ["alpha beta", "gamma"]), ("test", ["delta"])):
        datasets.Dataset.from_dict({"text": texts, "i": list(range(len(texts)))}).save_to_disk(str(tmp_path / split))
        arrow = sorted((tmp_path / split).glob("*.arrow"))[0]
        (tmp_path / "cache" / "cfg").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(arrow, tmp_path / "cache" / "cfg" / f"mydata-{split}.arrow")
    assert main(["build", "--hf-dataset", str(tmp_path / "cache"), "--split", "train", "-o", str(tmp_path / "idx"),
                 "--no-progress"]) == 0
    ix = infinigram.Index(str(tmp_path / "idx"))
    assert ix.n_docs == 2 and ix.get_doc(1).text == "gamma" and ix.get_doc(1).metadata == {"i": 1}
    assert main(["build", "--hf-dataset", str(tmp_path / "cache"), "-o", str(tmp_path / "idx2"), "--no-progress"]) == 2
