"""Crash safety: builds and appends killed with SIGKILL at many points, and a
build that runs out of disk space.

A build runs in a child process and is killed (SIGKILL: no cleanup code
runs) either at a time spread over its whole duration, or the first time it
reaches a given step (a hook in the child kills itself there: the suffix
sort, the FM construction, checksums, the manifest write, the final rename).
After each kill, the output directory must not open as an index unless it is
complete (then it verifies: every sha256 matches, and it answers as a fresh
build); the next build into the same path must succeed and remove what the
killed one left. The same for ``infinigram append``: after a kill the index
is the old generation, byte for byte, or the complete new one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any, Dict, List, Optional

import pytest

import infinigram
from infinigram import format as fmt
from infinigram.errors import InfinigramError, NotAnIndexError

from conftest import write_jsonl
from fuzz_util import record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Hooks: the child kills itself the first time it calls one of these (module, attribute).
STEPS = [
    ("infinigram.readers", "DocumentReader.__iter__"),
    ("infinigram.build", "_ShardWriter.close"),
    ("infinigram._core", "build_suffix_array"),
    ("infinigram._core", "fm_build_shard"),
    ("infinigram.format", "file_entry"),
    ("infinigram.build", "_fsync_path"),
    ("infinigram.format", "write_manifest"),
    ("os", "rename"),
    ("os", "replace"),
    ("shutil", "rmtree"),
]

CHILD = textwrap.dedent("""
    import os, signal, sys, importlib
    sys.path[:0] = {path!r}
    import infinigram, infinigram.build, infinigram.append, infinigram.format, infinigram.readers
    hook = {hook!r}
    if hook:
        mod, attr = hook
        obj = importlib.import_module(mod)
        names = attr.split(".")
        for n in names[:-1]:
            obj = getattr(obj, n)
        orig = getattr(obj, names[-1])
        def killer(*a, **kw):
            os.kill(os.getpid(), signal.SIGKILL)
        setattr(obj, names[-1], killer)
    print("ready", flush=True)
    if {op!r} == "build":
        infinigram.build({src!r}, {out!r}, progress=False, backend={backend!r}, shard_size={shard!r},
                         overwrite=True, n_threads=2)
    else:
        infinigram.append.append({out!r}, {src!r}, progress=False, shard_size={shard!r}, n_threads=2)
    print("done", flush=True)
""")


def _child(op: str, src: str, out: str, backend: str, hook: Optional[tuple], shard: int) -> List[str]:
    code = CHILD.format(path=[p for p in sys.path if p], hook=hook, op=op, src=src, out=out, backend=backend,
                        shard=shard)
    return [sys.executable, "-c", code]


def _run_and_kill(cmd: List[str], delay: Optional[float]) -> str:
    """Runs cmd; kills it ``delay`` s after it is ready (None: let the hook do it). Returns how it ended."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready", p.stderr.read()
    if delay is not None:
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
    try:
        out, err = p.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    if p.returncode == -signal.SIGKILL:
        return "killed"
    assert p.returncode == 0, err[-3000:]
    return "finished"


def _records(n: int, seed: int) -> List[Dict[str, Any]]:
    import random

    rng = random.Random(seed)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    return [{"text": " ".join(rng.choice(words) for _ in range(rng.randint(20, 400))), "i": i + seed * 100000}
            for i in range(n)]


def _state(out: str) -> str:
    """'absent' | 'not-an-index' | 'complete' (opens and verifies); fails otherwise."""
    if not os.path.exists(out):
        return "absent"
    try:
        m = fmt.read_manifest(out)
    except NotAnIndexError:
        return "not-an-index"
    fmt.verify_checksums(out, m)  # a directory that opens must be whole
    return "complete"


def _leftovers(out: str) -> List[str]:
    parent, name = os.path.split(out)
    return [e for e in os.listdir(parent) if e.startswith(name + ".tmp-")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Dict[str, Any]:
    d = tmp_path_factory.mktemp("crash")
    recs = _records(3000, 1)  # ~2.5 MB: a build of a few seconds in a child
    src = write_jsonl(str(d / "c.jsonl"), recs)
    ref = str(d / "ref")
    infinigram.build(src, ref, progress=False, shard_size=400_000)
    return {"dir": d, "src": src, "ref": infinigram.Index(ref), "recs": recs}


def _same_as_ref(out: str, ref: infinigram.Index) -> None:
    ix = infinigram.Index(out)
    assert (ix.n_docs, ix.n_tokens) == (ref.n_docs, ref.n_tokens)
    for q in ("alpha beta", "zeta eta theta", "mu mu", "kappa"):
        assert ix.count(q) == ref.count(q)
    assert ix.get_doc(ix.n_docs - 1).metadata == ref.get_doc(ref.n_docs - 1).metadata


@pytest.mark.parametrize("backend", ["sa", "fm"])
def test_build_killed_at_many_points(corpus, backend, tmp_path):
    src, ref = corpus["src"], corpus["ref"]
    out = str(tmp_path / "idx")
    # the duration of a whole build in a child, for the time-based kills
    t0 = time.perf_counter()
    assert _run_and_kill(_child("build", src, out, backend, None, 400_000), None) == "finished"
    duration = time.perf_counter() - t0
    _same_as_ref(out, ref)
    import shutil

    shutil.rmtree(out)
    points = [("time", duration * 0.85 * (i + 0.5) / 14) for i in range(14)]  # within the build, even if slower
    points += [("hook", s) for s in STEPS if not (backend == "sa" and s[1] == "fm_build_shard")
               and not (backend == "fm" and s[1] == "build_suffix_array")]
    states = []
    for i, (kind, what) in enumerate(points):
        if i % 3 == 1 and not os.path.exists(out):
            # sometimes over an existing index (overwrite): it must stay whole or be replaced whole
            infinigram.build(src, out, progress=False, backend=backend, shard_size=400_000)
        ended = _run_and_kill(_child("build", src, out, backend, what if kind == "hook" else None, 400_000),
                              what if kind == "time" else None)
        st = _state(out)
        states.append((kind, str(what), ended, st))
        if st == "complete":
            _same_as_ref(out, ref)
        record(f"crash/build-{backend}")
        if i % 2 == 0:  # the next build into the same path succeeds and cleans up
            infinigram.build(src, out, progress=False, backend=backend, shard_size=400_000, overwrite=True)
            _same_as_ref(out, ref)
            assert _leftovers(out) == [], _leftovers(out)
            if i % 4 == 0:
                shutil.rmtree(out)
    extra = 0
    while sum(1 for s in states if s[2] == "killed") < 20 and extra < 10:  # a build that outran its kill
        extra += 1
        ended = _run_and_kill(_child("build", src, out, backend, None, 400_000), duration * 0.1 * extra)
        states.append(("time", f"extra {extra}", ended, _state(out)))
        record(f"crash/build-{backend}")
    killed = [s for s in states if s[2] == "killed"]
    assert len(killed) >= 20, states
    # the kills were spread: some before anything was written, some with the
    # temp directory half written, some over a complete index
    assert {s[3] for s in killed} >= {"absent"} or {s[3] for s in killed} >= {"not-an-index"}


def test_append_killed_at_many_points(corpus, tmp_path):
    src = corpus["src"]
    d = tmp_path
    base_recs = _records(400, 2)
    base_src = write_jsonl(str(d / "base.jsonl"), base_recs)
    out = str(d / "idx")
    infinigram.build(base_src, out, progress=False, shard_size=200_000)
    before = open(os.path.join(out, fmt.MANIFEST), "rb").read()
    n0 = infinigram.Index(out).n_docs
    t0 = time.perf_counter()
    import shutil

    probe = str(d / "probe")
    shutil.copytree(out, probe)
    assert _run_and_kill(_child("append", src, probe, "sa", None, 400_000), None) == "finished"
    duration = time.perf_counter() - t0
    n_new = infinigram.Index(probe).n_docs - n0
    points = [("time", duration * (i + 0.5) / 12) for i in range(12)]
    points += [("hook", s) for s in STEPS if s[1] not in ("fm_build_shard",)]
    outcomes = []
    for kind, what in points:
        ended = _run_and_kill(_child("append", src, out, "sa", what if kind == "hook" else None, 400_000),
                              what if kind == "time" else None)
        now = open(os.path.join(out, fmt.MANIFEST), "rb").read()
        if now == before:
            outcomes.append("old")
        else:  # the new generation, whole
            fmt.verify_checksums(out)
            ix = infinigram.Index(out)
            assert ix.n_docs == n0 + n_new and ix.generation == 1
            outcomes.append("new")
            open(os.path.join(out, fmt.MANIFEST), "wb").write(before)  # back to generation 0 for the next point
        # an Index opened now answers from a whole generation
        ix = infinigram.Index(out)
        assert ix.count("alpha") > 0
        record("crash/append")
        assert ended in ("killed", "finished")
    assert sum(1 for o in outcomes if o == "old") >= 15, outcomes
    # the next append succeeds and removes what the killed ones left
    from infinigram.append import append

    append(out, src, progress=False, shard_size=400_000)
    ix = infinigram.Index(out)
    ix.verify()
    assert ix.n_docs == n0 + n_new
    listed = {s["dir"] for s in ix.manifest["shards"]}
    assert {e for e in os.listdir(out) if e.startswith("shard-")} == listed
    assert not [e for e in os.listdir(out) if e.startswith(".append-")]


# ------------------------------------------------------------------ disk full
def _mount_tmpfs(path: str, size: str) -> bool:
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True)
    return r.returncode == 0


@pytest.mark.parametrize("backend", ["sa", "fm"])
def test_disk_full_during_build(corpus, backend, tmp_path):
    """A 2 MB tmpfs: the build of a ~2.5 MB corpus runs out of space. A clear
    error (OSError ENOSPC / InfinigramError saying no space and naming the
    path), nothing left that opens as an index, no temp directory left."""
    mnt = str(tmp_path / "small")
    if not _mount_tmpfs(mnt, "2m"):
        pytest.skip("mounting a tmpfs is not permitted here (needs root / CAP_SYS_ADMIN)")
    try:
        out = os.path.join(mnt, "idx")
        with pytest.raises((OSError, InfinigramError)) as ei:
            infinigram.build(corpus["src"], out, progress=False, backend=backend, shard_size=400_000)
        msg = str(ei.value)
        assert "No space left on device" in msg or "no space" in msg.lower(), msg
        assert mnt in msg, f"the error does not name the path: {msg}"
        assert not os.path.exists(out)
        assert os.listdir(mnt) == [], os.listdir(mnt)
        # and once there is room, the same build succeeds
        subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
        infinigram.build(corpus["src"], out, progress=False, backend=backend, shard_size=400_000)
        _same_as_ref(out, corpus["ref"])
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
