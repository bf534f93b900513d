"""FM-index construction: ``_core.fm_build_shard`` (SA-IS in memory, the BWT
written over the suffix array, no sa.bin) gives the same bytes as the
two-step path (``build_suffix_array`` writes sa.bin, ``fm_build`` reads it)
for every token width and code width; its errors; the FM build pipeline
(no sa.bin ever written, progress, cancellation) and the FM auto-shard rule."""

from __future__ import annotations

import filecmp
import importlib
import json
import os
from pathlib import Path
from typing import List

import numpy as np
import pytest

import infinigram
from infinigram import _core

from conftest import real_records, write_jsonl

build_mod = importlib.import_module("infinigram.build")  # the module (infinigram.build is the function)


def _two_step(tp: str, width: int, out: Path, ss: int, isa: int, bb: int = 0) -> List[str]:
    sa = str(out / "sa.bin")
    ptr = _core.build_suffix_array(tp, sa, width, None, False)
    files = [str(out / f) for f in ("a.fm", "a.sa", "a.isa")]
    _core.fm_build(tp, sa, ptr, width, *files, ss, isa, 2, None, wt_block_bits=bb)
    return files


def _one_step(tp: str, width: int, out: Path, ss: int, isa: int, threads: int = 1, bb: int = 0) -> List[str]:
    files = [str(out / f) for f in ("b.fm", "b.sa", "b.isa")]
    ptr = _core.fm_build_shard(tp, width, *files, ss, isa, threads, None, wt_block_bits=bb)
    assert ptr == _core.ptr_width_for(os.path.getsize(tp) // width)
    return files


def _texts() -> dict:
    rng = np.random.default_rng(5)
    real = "".join(r["text"] for r in real_records(4, 40_000)).encode("utf-8")[:200_000]
    u8 = np.frombuffer(real, dtype=np.uint8).copy()
    u8[rng.integers(0, len(u8), 300)] = 255  # separators
    idx = np.arange(len(u8))
    return {
        # 1-byte codes
        "u8_real": (u8, 1),
        # u16 tokens: > 256 distinct (2-byte codes)
        "u16_wide": (np.where(u8 == 255, 65535, u8.astype(np.uint16) * 7 + idx % 3).astype(np.uint16), 2),
        # u16 tokens, few distinct (1-byte codes)
        "u16_narrow": (np.where(u8 == 255, 65535, (u8 % 50).astype(np.uint16) * 1000).astype(np.uint16), 2),
        # u32 dense ids (SA-IS renames the separator), > 65536 distinct: 4-byte codes as wide as SA entries
        "u32_dense": (np.where(u8 == 255, 2**32 - 1, u8.astype(np.uint32) * 1000 + idx % 400).astype(np.uint32), 4),
        # u32 sparse ids (SA-IS rank-compacts them)
        "u32_sparse": (np.where(u8 == 255, 2**32 - 1, u8.astype(np.uint32) * 10_000_000).astype(np.uint32), 4),
        "runs": (np.array([7] * 5000 + [3] * 5000 + [255], dtype=np.uint8), 1),
        "one_symbol": (np.full(1000, 9, dtype=np.uint8), 1),
        "single": (np.array([255], dtype=np.uint8), 1),
        "pair": (np.array([1, 0], dtype=np.uint8), 1),
    }


@pytest.mark.parametrize("name", list(_texts()))
def test_same_bytes_as_the_sa_file_path(tmp_path: Path, name: str) -> None:
    arr, width = _texts()[name]
    tp = str(tmp_path / "tokens.bin")
    arr.tofile(tp)
    for ss, isa, bb in ((32, 64, 0), (1, 1, 9), (3, 7, 4), (len(arr) + 5, 2, 0)):
        a = _two_step(tp, width, tmp_path, ss, isa, bb)
        b = _one_step(tp, width, tmp_path, ss, isa, threads=1 + (ss % 2), bb=bb)
        for x, y in zip(a, b):
            assert filecmp.cmp(x, y, shallow=False), (name, ss, isa, os.path.basename(y))


@pytest.mark.parametrize("name", list(_texts()))
def test_extraction_decodes_the_text(tmp_path: Path, name: str) -> None:
    """FMEngine.tokens (LF walks in slots, one wavelet level per round) gives back
    the text: whole, random ranges, ranges around the ISA samples, on one and two
    threads, for every tree shape above (one symbol: a tree without nodes), with
    one wavelet tree or one per block of 2^bb BWT symbols."""
    arr, width = _texts()[name]
    tp = str(tmp_path / "tokens.bin")
    arr.tofile(tp)
    n = len(arr)
    doc = tmp_path / "docs.bin"
    np.array([0, n], dtype=np.uint64).tofile(doc)
    rng = np.random.default_rng(len(name))
    for ss, isa, bb in ((64, 64, 0), (3, 7, 6), (1, 1, 11)):
        files = _one_step(tp, width, tmp_path, ss, isa, bb=bb)
        eng = _core.FMEngine(width, [(files[0], files[1], files[2], str(doc))])
        ranges = [(0, n), (max(0, n - 1), n), (0, min(n, 1))]
        ranges += [(min(n, max(0, k * isa - 1)), min(n, k * isa + 2)) for k in range(1, 4)]
        for _ in range(20):
            a = int(rng.integers(0, n))
            ranges.append((a, min(n, a + int(rng.integers(0, 3000)))))
        for a, b in ranges:
            for th in (1, 2):
                got = np.asarray(eng.tokens(0, a, b, th))
                assert np.array_equal(got, arr[a:b]), (name, ss, isa, bb, a, b, th)


def test_engine_on_one_step_files(tmp_path: Path) -> None:
    """Counts through FMEngine on fm_build_shard's files match a naive count."""
    text = b"\xffabracadabra\xffcadabra abra\xffbra"
    tp = str(tmp_path / "t.bin")
    Path(tp).write_bytes(text)
    files = _one_step(tp, 1, tmp_path, 2, 3)
    doc = tmp_path / "docs.bin"
    np.array([0, 12, 25, len(text)], dtype=np.uint64).tofile(doc)
    eng = _core.FMEngine(1, [(files[0], files[1], files[2], str(doc))])
    assert bytes(np.asarray(eng.tokens(0, 0, len(text)), dtype=np.uint8)) == text
    for pat in (b"abra", b"bra", b"a", b"cad", b"a abra", b"zz"):
        want = sum(1 for i in range(len(text)) if text.startswith(pat, i))
        assert eng.count(list(pat)) == want, pat


def test_errors(tmp_path: Path) -> None:
    tp = tmp_path / "t.bin"
    tp.write_bytes(b"abc")
    out = [str(tmp_path / f) for f in ("x.fm", "x.sa", "x.isa")]
    with pytest.raises(ValueError, match="token_width"):
        _core.fm_build_shard(str(tp), 3, *out)
    with pytest.raises(ValueError, match="sa_sample"):
        _core.fm_build_shard(str(tp), 1, *out, 0, 64)
    with pytest.raises(ValueError, match="wt_block_bits"):
        _core.fm_build_shard(str(tp), 1, *out, 64, 64, wt_block_bits=63)
    with pytest.raises(ValueError, match="not a multiple"):
        _core.fm_build_shard(str(tp), 2, *out)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        _core.fm_build_shard(str(tmp_path / "empty.bin"), 1, *out)
    with pytest.raises(RuntimeError, match="cannot open"):
        _core.fm_build_shard(str(tmp_path / "missing.bin"), 1, *out)
    with pytest.raises(RuntimeError, match="cannot"):
        _core.fm_build_shard(str(tp), 1, str(tmp_path / "no" / "dir" / "x.fm"), out[1], out[2])


def test_progress_and_cancel(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    tp = str(tmp_path / "t.bin")
    rng.integers(0, 4, 3_000_000, dtype=np.uint8).tofile(tp)
    out = [str(tmp_path / f) for f in ("x.fm", "x.sa", "x.isa")]
    seen: List[float] = []
    _core.fm_build_shard(tp, 1, *out, 32, 64, 1, seen.append)
    assert seen and seen == sorted(seen) and 0 <= seen[0] and seen[-1] == 1.0

    class Stop(Exception):
        pass

    def cb(f: float) -> None:
        if f > 0.75:  # in the BWT pass or later
            raise Stop()

    with pytest.raises(Stop):
        _core.fm_build_shard(tp, 1, *[p + ".2" for p in out], 32, 64, 1, cb)


def test_pipeline_writes_no_suffix_array(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """backend='fm' builds each shard in one call (no sa.bin: the two-step calls are
    never made), leaves no tokens.bin, and answers as the SA backend."""
    recs = real_records(20, 3000)
    src = write_jsonl(str(tmp_path / "c.jsonl"), recs)
    infinigram.build(src, str(tmp_path / "sa"), progress=False, shard_size=20_000)

    def forbidden(*a, **k):  # noqa: ANN002
        raise AssertionError("the FM build must not write a suffix-array file")

    monkeypatch.setattr(_core, "build_suffix_array", forbidden)
    monkeypatch.setattr(_core, "fm_build", forbidden)
    m = infinigram.build(src, str(tmp_path / "fm"), progress=False, shard_size=20_000, backend="fm")
    monkeypatch.undo()
    assert len(m["shards"]) >= 2
    for sh in m["shards"]:
        d = tmp_path / "fm" / sh["dir"]
        assert sorted(os.listdir(d)) == sorted(sh["files"])
        assert "sa.bin" not in sh["files"] and "tokens.bin" not in sh["files"]
        assert sh["ptr_width"] == _core.ptr_width_for(sh["n_positions"])
    sa, fm = infinigram.Index(str(tmp_path / "sa")), infinigram.Index(str(tmp_path / "fm"))
    for q in ("the ", "import", "def __init__", "zzzq"):
        assert fm.count(q) == sa.count(q), q
    assert fm.n_docs == sa.n_docs == len(recs)
    for i in (0, len(recs) // 2, len(recs) - 1):
        assert fm.get_doc(i).text == sa.get_doc(i).text == recs[i]["text"]


def test_pipeline_cancel_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error in one shard's construction removes the temp dir (other shards stop at their next tick)."""
    src = write_jsonl(str(tmp_path / "c.jsonl"), real_records(20, 3000))
    real = _core.fm_build_shard
    calls = []

    def failing(*a, **k):  # noqa: ANN002
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full (test)")
        return real(*a, **k)

    monkeypatch.setattr(_core, "fm_build_shard", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        infinigram.build(src, str(tmp_path / "fm"), progress=False, shard_size=20_000, backend="fm", n_threads=2)
    assert os.listdir(tmp_path) == ["c.jsonl"]


def test_auto_shard_size_fm_rule() -> None:
    """FM: about two shards per worker (peak memory), at least 16 Mi positions each, capped."""
    from infinigram.build import (AUTO_FM_ROUNDS, AUTO_MAX_SHARD_POSITIONS, AUTO_MIN_FM_SHARD_POSITIONS,
                                  auto_shard_size)

    assert AUTO_FM_ROUNDS == 2
    a = auto_shard_size
    assert a(20 * 2**20, True, 2, "fm") is None  # below 2 x 16 Mi: one shard
    per = a(104_733_475, True, 2, "fm")  # the 100 MB benchmark corpus: 4 shards
    assert per == -(-int(104_733_475 * 1.02) // 4)
    assert -(-100_009_117 // per) == 4
    assert a(100_000_000, True, 1, "fm") == -(-int(100_000_000 * 1.02) // 2)  # one worker: still 2 (memory)
    assert a(100_000_000, True, 64, "fm") == AUTO_MIN_FM_SHARD_POSITIONS
    assert a(10**12, True, 2, "fm") == AUTO_MAX_SHARD_POSITIONS
    assert a(400_000_000, False, 2, "fm") == -(-int(100_000_000 * 1.02) // 4)
    # the SA backend is unchanged: one shard per worker
    assert a(104_733_475, True, 2) == a(104_733_475, True, 2, "sa") == -(-int(104_733_475 * 1.02) // 2)
    with pytest.raises(ValueError, match="backend"):
        a(10, True, 2, "bwt")


def test_auto_fm_build_uses_the_fm_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_mod, "AUTO_MIN_FM_SHARD_POSITIONS", 1000)
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"text": f"document {i} " * 40}) + "\n" for i in range(80)))
    m = build_mod.build([str(src)], str(tmp_path / "idx"), progress=False, n_threads=2, backend="fm")
    assert len(m["shards"]) >= 4
    ix = infinigram.Index(str(tmp_path / "idx"))
    assert ix.count("document 7 ") == 40 and ix.n_docs == 80
