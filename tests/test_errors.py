"""One test per bad input: each must raise the right error with a useful message."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest

from infinigram import format as fmt
from infinigram.build import build
from infinigram.errors import (
    IndexCorruptError,
    IndexVersionError,
    InfinigramError,
    InputError,
    NotAnIndexError,
    OutputExistsError,
    TokenizerError,
)
from infinigram.tokenizer import BytesTokenizer, load_index_tokenizer, load_tokenizer


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def good_lines(n: int) -> bytes:
    return b"".join(json.dumps({"text": f"document number {i}", "id": i}).encode() + b"\n" for i in range(n))


@pytest.fixture()
def index(tmp_path: Path) -> Path:
    src = write(tmp_path / "c.jsonl", good_lines(20))
    build([src], tmp_path / "idx", progress=False, shard_size=100)
    return tmp_path / "idx"


def test_error_hierarchy() -> None:
    e = InputError("malformed JSON (expected an object)", "f.jsonl", 3)
    assert isinstance(e, InfinigramError) and isinstance(e, ValueError)
    assert str(e) == "f.jsonl:3: malformed JSON (expected an object)"
    assert (e.path, e.line) == ("f.jsonl", 3)
    assert str(InputError("bad", "f.txt")) == "f.txt: bad"
    for cls in (TokenizerError, NotAnIndexError, IndexCorruptError, IndexVersionError, OutputExistsError):
        assert issubclass(cls, InfinigramError)


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl", good_lines(3) + b'{"text": "broken\n' + good_lines(2))
    with pytest.raises(InputError) as ei:
        build([src], tmp_path / "idx", progress=False)
    assert ei.value.path == str(src) and ei.value.line == 4
    assert str(ei.value).startswith(f"{src}:4: malformed JSON: Invalid control character at column 17 (")
    assert "expected one JSON object per line" in str(ei.value)
    assert not (tmp_path / "idx").exists() and sorted(os.listdir(tmp_path)) == ["c.jsonl"]


def test_malformed_json_control_character(tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl", good_lines(1) + b'{"text": "tab\there"}\n')
    with pytest.raises(InputError) as ei:
        build([src], tmp_path / "idx", progress=False)
    assert str(ei.value).startswith(f"{src}:2: malformed JSON: Invalid control character at column 14 (")


def test_malformed_json_line_in_gz_counts_lines(tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl.gz", gzip.compress(good_lines(7) + b"{oops}\n"))
    with pytest.raises(InputError, match=r"c\.jsonl\.gz:8: malformed JSON"):
        build([src], tmp_path / "idx", progress=False)


def test_skip_invalid_counts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = b'{"text": "broken\n[1, 2]\n{"id": 5}\n{"text": 7}\n\xff\xfe\n'
    src = write(tmp_path / "c.jsonl", good_lines(2) + bad + good_lines(1))
    m = build([src], tmp_path / "idx", skip_invalid=True, progress=True)
    assert m["n_docs"] == 3
    assert m["build"]["skipped_invalid"] == 5
    assert fmt.read_manifest(str(tmp_path / "idx"))["build"]["skipped_invalid"] == 5
    assert "5 invalid line(s) skipped" in capsys.readouterr().err


def test_not_an_object(tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl", good_lines(1) + b'["text", "x"]\n')
    with pytest.raises(InputError, match=r":2: a JSON list, not an object"):
        build([src], tmp_path / "idx", progress=False)


def test_missing_text_field(tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl", good_lines(2) + b'{"content": "hi", "id": 1}\n')
    with pytest.raises(InputError) as ei:
        build([src], tmp_path / "idx", progress=False)
    assert ei.value.line == 3
    assert "no field 'text'" in str(ei.value) and "content, id" in str(ei.value)


def test_non_string_text_field(tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl", b'{"text": null}\n')
    with pytest.raises(InputError, match=r"c\.jsonl:1: field 'text' is a NoneType \(expected a string\)"):
        build([src], tmp_path / "idx", progress=False)


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl", good_lines(4) + b'{"text": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"c\.jsonl:5: invalid UTF-8 \(byte 0xe9"):
        build([src], tmp_path / "idx", progress=False)


def test_invalid_utf8_in_txt_names_the_line(tmp_path: Path) -> None:
    src = write(tmp_path / "doc.txt", b"fine\nfine too\nbad \xc3\x28 here\n")
    with pytest.raises(InputError, match=r"doc\.txt:3: invalid UTF-8"):
        build([src], tmp_path / "idx", progress=False)


def test_lone_surrogate_escape(tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl", b'{"text": "ok"}\n{"text": "bad \\ud800 x"}\n')
    with pytest.raises(InputError, match=r"c\.jsonl:2: .*surrogate"):
        build([src], tmp_path / "idx", progress=False)


def test_damaged_compressed_file(tmp_path: Path) -> None:
    data = gzip.compress(good_lines(2000))
    src = write(tmp_path / "c.jsonl.gz", data[: len(data) // 2])
    with pytest.raises(InputError, match=r"c\.jsonl\.gz:\d+: cannot decompress"):
        build([src], tmp_path / "idx", progress=False)


@pytest.mark.parametrize("content", [b"", b"\n\n", b'{"text": "", "id": 1}\n'])
def test_empty_corpus(tmp_path: Path, content: bytes) -> None:
    src = write(tmp_path / "c.jsonl", content)
    with pytest.raises(InputError, match="no documents|no tokens"):
        build([src], tmp_path / "idx", progress=False)
    assert sorted(os.listdir(tmp_path)) == ["c.jsonl"]


def test_all_lines_skipped_is_empty_corpus(tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl", b"nope\nnope\n")
    with pytest.raises(InputError, match="2 invalid line"):
        build([src], tmp_path / "idx", skip_invalid=True, progress=False)


def test_unknown_file_type(tmp_path: Path) -> None:
    src = write(tmp_path / "corpus.csv", b"a,b\n")
    with pytest.raises(InputError, match=r"corpus\.csv: unknown file type \(expected a name ending in \.jsonl\.gz"):
        build([src], tmp_path / "idx", progress=False)


def test_no_input_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("x")
    with pytest.raises(InputError, match="no input files"):
        build([tmp_path / "empty"], tmp_path / "idx", progress=False)
    with pytest.raises(InputError, match="no input files"):
        build([], tmp_path / "idx", progress=False)
    with pytest.raises(InputError, match="no such file"):
        build([tmp_path / "missing.jsonl"], tmp_path / "idx", progress=False)


# ---------------------------------------------------------------------------
# tokenizers
# ---------------------------------------------------------------------------


def test_unreadable_tokenizer(tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl", good_lines(1))
    missing = tmp_path / "nope.json"
    with pytest.raises(TokenizerError, match=str(missing)):
        build([src], tmp_path / "idx", tokenizer=str(missing), progress=False)
    junk = write(tmp_path / "tok.json", b'{"this is": "not a tokenizer"}')
    with pytest.raises(TokenizerError) as ei:
        load_tokenizer(str(junk))
    assert str(junk) in str(ei.value) and "tokenizer.json" in str(ei.value)
    binary = write(tmp_path / "bin.json", b"\x00\xff\x00garbage")
    with pytest.raises(TokenizerError, match="bin.json"):
        load_tokenizer(str(binary))
    assert not (tmp_path / "idx").exists()


class LyingTokenizer(BytesTokenizer):
    """Claims 1-byte tokens but emits an id equal to the separator."""

    def encode_batch(self, texts: Any) -> List[np.ndarray]:
        return [np.array([1, 2, 255], dtype=np.int64) for _ in texts]


class WideTokenizer(BytesTokenizer):
    """Emits an id that needs more than 1 byte."""

    def encode_batch(self, texts: Any) -> List[np.ndarray]:
        return [np.array([300], dtype=np.int64) for _ in texts]


@pytest.mark.parametrize("tok", [LyingTokenizer(), WideTokenizer()])
def test_token_id_that_does_not_fit(tmp_path: Path, tok: BytesTokenizer) -> None:
    src = write(tmp_path / "c.jsonl", good_lines(3))
    with pytest.raises(TokenizerError, match=r"c\.jsonl:1: token id (255|300) does not fit"):
        build([src], tmp_path / "idx", tokenizer=tok, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["c.jsonl"]


def test_index_tokenizer_altered(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    t = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2}, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.save(str(tmp_path / "tok.json"))
    src = write(tmp_path / "c.jsonl", b'{"text": "a b a"}\n')
    m = build([src], tmp_path / "idx", tokenizer=str(tmp_path / "tok.json"), progress=False)
    t2 = Tokenizer(models.WordLevel({"[UNK]": 0, "b": 1, "a": 2}, unk_token="[UNK]"))
    t2.save(str(tmp_path / "idx" / "tokenizer.json"))
    with pytest.raises(IndexCorruptError, match="tokenizer.json"):
        load_index_tokenizer(str(tmp_path / "idx"), m)
    os.unlink(tmp_path / "idx" / "tokenizer.json")
    with pytest.raises(IndexCorruptError, match="tokenizer.json"):
        fmt.read_manifest(str(tmp_path / "idx"))


# ---------------------------------------------------------------------------
# outputs and indexes
# ---------------------------------------------------------------------------


def test_output_exists_without_overwrite(tmp_path: Path, index: Path) -> None:
    before = (index / "index.json").read_bytes()
    src = write(tmp_path / "d.jsonl", good_lines(1))
    with pytest.raises(OutputExistsError, match="already exists"):
        build([src], index, progress=False)
    assert (index / "index.json").read_bytes() == before
    f = write(tmp_path / "a_file", b"x")
    with pytest.raises(OutputExistsError):
        build([src], f, progress=False)


def test_opening_a_non_index(tmp_path: Path) -> None:
    with pytest.raises(NotAnIndexError, match="no such directory"):
        fmt.read_manifest(str(tmp_path / "nothing"))
    (tmp_path / "dir").mkdir()
    with pytest.raises(NotAnIndexError, match="no index.json"):
        fmt.read_manifest(str(tmp_path / "dir"))
    write(tmp_path / "dir" / "index.json", b'{"some": "other json"}')
    with pytest.raises(NotAnIndexError, match="not an infinigram manifest"):
        fmt.read_manifest(str(tmp_path / "dir"))
    write(tmp_path / "dir" / "index.json", b"\x00 not json")
    with pytest.raises(NotAnIndexError):
        fmt.read_manifest(str(tmp_path / "dir"))
    write(tmp_path / "file", b"x")
    with pytest.raises(NotAnIndexError, match="not a directory"):
        fmt.read_manifest(str(tmp_path / "file"))


def test_opening_a_non_index_with_index_class(tmp_path: Path) -> None:
    index_mod = pytest.importorskip("infinigram.index")
    (tmp_path / "dir").mkdir()
    with pytest.raises(NotAnIndexError):
        index_mod.Index(str(tmp_path / "dir"))


@pytest.mark.parametrize("name", ["tokens.bin", "sa.bin", "doc_offsets.bin", "meta_offsets.bin", "meta.bin"])
def test_truncated_file_detected_at_open(index: Path, name: str) -> None:
    p = index / "shard-00001" / name
    data = p.read_bytes()
    assert len(data) > 1
    p.write_bytes(data[:-1])
    with pytest.raises(IndexCorruptError) as ei:
        fmt.read_manifest(str(index))
    assert ei.value.path == str(p) and str(p) in str(ei.value)


def test_missing_file_detected_at_open(index: Path) -> None:
    os.unlink(index / "shard-00000" / "sa.bin")
    with pytest.raises(IndexCorruptError, match=r"shard-00000/sa\.bin: index file missing"):
        fmt.read_manifest(str(index))


def test_corrupted_file_detected_by_verify(index: Path) -> None:
    p = index / "shard-00001" / "sa.bin"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, different content
    p.write_bytes(bytes(data))
    m = fmt.read_manifest(str(index))  # sizes are fine: opening does not notice
    with pytest.raises(IndexCorruptError, match="checksum mismatch") as ei:
        fmt.verify_checksums(str(index), m)
    assert ei.value.path == str(p) and "shard-00001/sa.bin" in str(ei.value)


def test_newer_format_version(index: Path) -> None:
    mp = index / "index.json"
    m = json.loads(mp.read_text())
    m["format_version"] = fmt.FORMAT_VERSION + 1
    mp.write_text(json.dumps(m))
    with pytest.raises(IndexVersionError, match=f"version {fmt.FORMAT_VERSION + 1} is newer"):
        fmt.read_manifest(str(index))


def test_inconsistent_counts_detected(index: Path) -> None:
    mp = index / "index.json"
    m = json.loads(mp.read_text())
    m["shards"][0]["n_positions"] += 1  # the manifest no longer agrees with the file sizes
    mp.write_text(json.dumps(m))
    with pytest.raises(IndexCorruptError, match="shard-00000"):
        fmt.read_manifest(str(index))
