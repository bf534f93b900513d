"""Fuzzing the build's inputs: random bytes, invalid UTF-8, broken JSON,
huge lines, empty files and directories, files that claim to be .gz / .zst
and are not (or are cut short). Each build must either succeed (the input
happened to be valid: then the index opens and verifies) or raise a clear
``InputError`` naming the file (and the line, when the problem is on one),
and leave nothing behind: no output, no temp directory.
"""

from __future__ import annotations

import gzip
import json
import os
from typing import List

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infinigram
from infinigram.errors import InputError

from fuzz_util import budget, record

SUFFIXES = [".jsonl", ".txt", ".jsonl.gz", ".jsonl.zst"]

good_line = st.fixed_dictionaries({"text": st.text(max_size=40)}, optional={"id": st.integers()}).map(
    lambda d: json.dumps(d).encode() + b"\n")
bad_line = st.one_of(
    st.binary(max_size=60).map(lambda b: b + b"\n"),
    st.sampled_from([b"{\n", b'{"text": "a\n', b'{"text": 1}\n', b"[1, 2]\n", b'{"text": "\\ud800"}\n',
                     b'{"no_text": "x"}\n', b'"just a string"\n', b"null\n", b'{"text": "caf\xe9"}\n',
                     b"\xff\xfe\x00\n", b'{"text": "ok"} trailing\n', b"\x00" * 10 + b"\n"]),
    st.integers(1, 3).map(lambda k: b'{"text": "' + b"x" * (k * 700_000) + b'"}\n'),  # huge lines
)
lines = st.lists(st.one_of(good_line, bad_line), min_size=0, max_size=8)


def _encode(data: bytes, suffix: str, mode: str) -> bytes:
    if suffix.endswith(".gz"):
        if mode == "fake":
            return data  # not gzip at all
        z = gzip.compress(data)
        return z[: max(1, len(z) // 2)] if mode == "cut" else z
    if suffix.endswith(".zst"):
        if mode == "fake":
            return data
        z = zstandard.ZstdCompressor().compress(data)
        return z[: max(1, len(z) // 2)] if mode == "cut" else z
    return data


def _leftovers(d: str) -> List[str]:
    return sorted(e for e in os.listdir(d) if e.startswith("idx"))


def test_fuzz_build_inputs(tmp_path):
    n = [0]

    @settings(max_examples=budget(50), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(files=st.lists(st.tuples(lines, st.sampled_from(SUFFIXES), st.sampled_from(["ok", "ok", "fake", "cut"])),
                          min_size=1, max_size=3),
           empty_dir=st.booleans(), skip=st.booleans())
    def run(files, empty_dir, skip):
        n[0] += 1
        record("inputs")
        d = tmp_path / f"case{n[0]}"
        d.mkdir()
        inputs = []
        for i, (ls, suffix, mode) in enumerate(files):
            p = d / f"f{i}{suffix}"
            p.write_bytes(_encode(b"".join(ls), suffix, mode))
            inputs.append(str(p))
        if empty_dir:
            (d / "empty").mkdir()
            inputs.append(str(d / "empty"))
        out = str(d / "idx")
        try:
            infinigram.build(inputs, out, progress=False, skip_invalid=skip)
        except InputError as e:
            msg = str(e)
            assert e.path is None or e.path in inputs or e.path.startswith(str(d)), msg
            if e.path is not None:
                assert msg.startswith(e.path), msg
            if e.line is not None:
                assert msg.startswith(f"{e.path}:{e.line}: "), msg
            assert _leftovers(str(d)) == [], _leftovers(str(d))
            return
        ix = infinigram.Index(out)  # it was valid after all: a whole index
        ix.verify()
        assert ix.n_docs >= 1 and _leftovers(str(d)) == ["idx"]

    run()


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
@pytest.mark.parametrize("content", [b"", b"plain text, not compressed\n", b"\x1f\x8b\x08garbage",
                                     b"\x28\xb5\x2f\xfd garbage"])
def test_wrong_compressed_files(tmp_path, suffix, content):
    p = tmp_path / f"c{suffix}"
    p.write_bytes(content)
    with pytest.raises(InputError) as ei:
        infinigram.build([str(p)], str(tmp_path / "idx"), progress=False)
    if content:
        assert str(p) in str(ei.value) and "cannot decompress" in str(ei.value)
    else:  # an empty file is an empty corpus
        assert "no documents" in str(ei.value)
    assert not (tmp_path / "idx").exists()
    assert [e for e in os.listdir(tmp_path) if e.startswith("idx")] == []
