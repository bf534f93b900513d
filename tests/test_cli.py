"""The command line, run in-process with main([...]) and as `python -m infinigram`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Tuple

import pytest

import infinigram.format as fmt
from infinigram.cli import main

PKG_PARENT = str(Path(fmt.__file__).resolve().parent.parent)

DOCS = [
    {"text": "the cat sat on the mat", "id": "a"},
    {"text": "the dog sat on the log", "id": "b"},
    {"text": "a cat and a dog", "id": "c"},
]


def run(capsys: pytest.CaptureFixture, *argv: str) -> Tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def needs_index() -> None:
    pytest.importorskip("infinigram.index")


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    return p


@pytest.fixture()
def idx(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture) -> Path:
    out = tmp_path / "idx"
    code, _, err = run(capsys, "build", str(corpus), "-o", str(out), "--no-progress")
    assert code == 0, err
    return out


def test_build_prints_summary_and_writes_index(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "build", str(corpus), "-o", str(tmp_path / "i"), "--no-progress", "--shard-size", "30")
    assert code == 0
    assert "3 docs" in err and "bytes/token" in err
    m = fmt.read_manifest(str(tmp_path / "i"))
    assert m["n_docs"] == 3 and len(m["shards"]) == 3


def test_build_error_exit_2_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": oops}\n')
    code, out, err = run(capsys, "build", str(bad), "-o", str(tmp_path / "i"), "--no-progress")
    assert code == 2
    assert err.startswith(f"infinigram: error: {bad}:2: malformed JSON")
    assert "Traceback" not in err
    code, out, err = run(capsys, "build", str(bad), "-o", str(tmp_path / "i"), "--no-progress", "--skip-invalid")
    assert code == 0 and "1 invalid line(s) skipped" in err


def test_build_output_exists(idx: Path, corpus: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(capsys, "build", str(corpus), "-o", str(idx), "--no-progress")
    assert code == 2 and "already exists" in err and "--overwrite" in err
    code, _, err = run(capsys, "build", str(corpus), "-o", str(idx), "--no-progress", "--overwrite")
    assert code == 0


def test_info(idx: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "info", str(idx))
    assert code == 0
    assert "documents   3" in out and "tokens      " in out and "bytes/token" in out
    code, out, _ = run(capsys, "info", str(idx), "--json", "--verify")
    assert code == 0
    data = json.loads(out)
    assert data["n_docs"] == 3 and data["verified"] is True
    assert data["n_tokens"] == sum(len(d["text"]) for d in DOCS)


def test_info_verify_detects_corruption(idx: Path, capsys: pytest.CaptureFixture) -> None:
    p = idx / "shard-00000" / "tokens.bin"
    data = bytearray(p.read_bytes())
    data[3] ^= 0x20
    p.write_bytes(bytes(data))
    code, _, err = run(capsys, "info", str(idx))
    assert code == 0  # sizes are fine
    code, _, err = run(capsys, "info", str(idx), "--verify")
    assert code == 2 and "checksum mismatch" in err and "tokens.bin" in err


def test_info_not_an_index(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "info", str(tmp_path))
    assert code == 2 and err.startswith("infinigram: error:") and "not an infinigram index" in err


def test_usage_errors(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(["build"])
    assert e.value.code == 2
    assert main([]) == 2
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "infinigram demo" in capsys.readouterr().out


@pytest.mark.parametrize("cmd", ["build", "query", "info", "demo"])
def test_help_has_examples(cmd: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main([cmd, "--help"])
    out = capsys.readouterr().out
    assert "example" in out and f"infinigram {cmd}" in out


# ---------------------------------------------------------------------------
# queries (need the Index API)
# ---------------------------------------------------------------------------


def test_query_count(idx: Path, capsys: pytest.CaptureFixture) -> None:
    needs_index()
    code, out, _ = run(capsys, "query", str(idx), "count", "the")
    assert (code, out.strip()) == (0, "4")
    code, out, _ = run(capsys, "query", str(idx), "count", "sat on the", "--json")
    data = json.loads(out)
    assert data["count"] == 2 and data["query"] == "sat on the" and data["tokens"] == list(b"sat on the")
    code, out, _ = run(capsys, "query", str(idx), "count", "zebra")
    assert out.strip() == "0"


def test_query_tokens(idx: Path, capsys: pytest.CaptureFixture) -> None:
    needs_index()
    ids = ",".join(str(b) for b in b"cat")
    code, out, _ = run(capsys, "query", str(idx), "count", "--tokens", ids)
    assert (code, out.strip()) == (0, "2")
    code, out, _ = run(capsys, "query", str(idx), "count", ids, "--tokens", "--json")
    assert json.loads(out)["count"] == 2
    code, _, err = run(capsys, "query", str(idx), "count", "--tokens", "1,x")
    assert code == 2 and "bad token ids" in err
    code, _, err = run(capsys, "query", str(idx), "count", "--tokens", "99999")
    assert code == 2 and err.startswith("infinigram: error:")


def test_query_find(idx: Path, capsys: pytest.CaptureFixture) -> None:
    needs_index()
    code, out, _ = run(capsys, "query", str(idx), "find", "dog", "--json")
    data = json.loads(out)
    assert code == 0 and data["count"] == 2
    (lo, hi), = data["ranges"]
    assert hi - lo == 2
    code, out, _ = run(capsys, "query", str(idx), "find", "dog")
    assert "total: 2" in out


def test_query_docs_and_doc(idx: Path, capsys: pytest.CaptureFixture) -> None:
    needs_index()
    code, out, _ = run(capsys, "query", str(idx), "docs", "cat", "--json", "--context", "4", "--maxnum", "5")
    data = json.loads(out)
    assert code == 0 and data["count"] == 2
    assert sorted(m["doc_ix"] for m in data["matches"]) == [0, 2]
    for m in data["matches"]:
        assert "cat" in m["text"] and m["metadata"]["id"] in ("a", "c")
    code, out, _ = run(capsys, "query", str(idx), "docs", "cat")
    assert "2 occurrence(s)" in out and "«cat»" in out
    code, out, _ = run(capsys, "query", str(idx), "doc", "1", "--json")
    assert json.loads(out)["text"] == DOCS[1]["text"] and json.loads(out)["metadata"] == {"id": "b"}
    code, out, _ = run(capsys, "query", str(idx), "doc", "2")
    assert out.rstrip().endswith(DOCS[2]["text"])


def test_query_doc_out_of_range(idx: Path, capsys: pytest.CaptureFixture) -> None:
    needs_index()
    code, _, err = run(capsys, "query", str(idx), "doc", "99")
    assert code == 2 and err.startswith("infinigram: error:") and "Traceback" not in err


def test_query_not_an_index(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    needs_index()
    code, _, err = run(capsys, "query", str(tmp_path / "nope"), "count", "x")
    assert code == 2 and "not an infinigram index" in err and "Traceback" not in err


def test_demo(capsys: pytest.CaptureFixture) -> None:
    needs_index()
    code, out, err = run(capsys, "demo", "--no-progress")
    assert code == 0, err
    assert "26 documents" in out
    assert "'Python'" in out and " 625 " in out  # exact byte-level count in the sample corpus
    assert "«global interpreter lock»" in out


def test_python_dash_m(tmp_path: Path, corpus: Path) -> None:
    env = dict(os.environ, PYTHONPATH=PKG_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "i"

    def pm(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "infinigram", *args], capture_output=True, text=True, env=env,
                              timeout=120)

    r = pm("build", str(corpus), "-o", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    r = pm("info", str(out), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["n_docs"] == 3
    r = pm("info", str(tmp_path / "missing"))
    assert r.returncode == 2 and r.stderr.startswith("infinigram: error:") and "Traceback" not in r.stderr
