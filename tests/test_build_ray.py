"""Distributed builds on Ray (issue 24): byte-identical to a local build (SA
and FM, several shards), a bad address is a clear error before any work, a
task whose worker dies is rerun, a failed build leaves nothing behind.

In CI these must run: without the ``ray`` package they fail with the install
hint; ``INFINIGRAM_SKIP_RAY=1`` skips them explicitly. One local Ray cluster
(2 CPUs) is started for the module; ``build(ray=True)`` uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time

import pytest

from infinigram.build import build
from infinigram.build.distributed import FAIL_ONCE_ENV, INSTALL_HINT
from infinigram.errors import InputError

from conftest import write_jsonl


@pytest.fixture(scope="module")
def ray_cluster():
    if os.environ.get("INFINIGRAM_SKIP_RAY") == "1":
        pytest.skip("INFINIGRAM_SKIP_RAY=1: Ray build tests skipped on request")
    try:
        import ray
    except ImportError:
        pytest.fail(f"the ray package is not installed: {INSTALL_HINT} (or set INFINIGRAM_SKIP_RAY=1 to skip)")
    import logging

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def _records(n: int = 300, seed: int = 7):
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 6))) for _ in range(200)]
    words += ["naïve", "über", "日本語"]
    return [{"text": " ".join(rng.choice(words) for _ in range(rng.randint(3, 150))), "id": i, "src": f"s{i % 3}"}
            for i in range(n)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("raycorpus")
    return write_jsonl(str(d / "c.jsonl"), _records())


def _digest(idx: str):
    """sha256 of every file; the manifest without its build timings."""
    out = {}
    for root, _, names in os.walk(idx):
        for n in names:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, idx)
            if rel == "index.json":
                with open(p) as fh:
                    m = json.load(fh)
                for k in ("seconds", "stages", "created"):
                    m["build"].pop(k, None)
                out[rel] = m
            else:
                with open(p, "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _leftovers(parent: str, name: str):
    return [e for e in os.listdir(parent) if e.startswith(name)]


OPTS = {"sa": dict(backend="sa"), "fm": dict(backend="fm", sa_sample=8, isa_sample=8)}


@pytest.mark.parametrize("backend", ["sa", "fm"])
def test_ray_build_byte_identical(ray_cluster, corpus, tmp_path, backend):
    kw = dict(shard_size=8000, n_threads=2, progress=False, **OPTS[backend])
    local = build([corpus], str(tmp_path / "local"), **kw)
    remote = build([corpus], str(tmp_path / "ray"), ray=True, **kw)
    assert len(local["shards"]) >= 4
    a, b = _digest(str(tmp_path / "local")), _digest(str(tmp_path / "ray"))
    assert set(a) == set(b)
    assert a == b
    assert remote["n_tokens"] == local["n_tokens"]
    assert ray_cluster.is_initialized()  # a cluster the build did not start is left running


def test_ray_sa_out_of_core_identical(ray_cluster, corpus, tmp_path):
    kw = dict(shard_size=20000, n_threads=2, progress=False, sa_part_size=3000)
    build([corpus], str(tmp_path / "local"), **kw)
    build([corpus], str(tmp_path / "ray"), ray=True, **kw)
    assert _digest(str(tmp_path / "local")) == _digest(str(tmp_path / "ray"))


def test_ray_bad_address(ray_cluster, corpus, tmp_path):
    t = time.perf_counter()
    with pytest.raises(InputError, match="does not answer"):
        build([corpus], str(tmp_path / "idx"), ray="127.0.0.1:1", progress=False)
    assert time.perf_counter() - t < 15
    assert _leftovers(str(tmp_path), "idx") == []
    with pytest.raises(InputError, match="bad Ray address"):
        build([corpus], str(tmp_path / "idx"), ray="nowhere", progress=False)


def test_ray_task_retried(ray_cluster, corpus, tmp_path, monkeypatch):
    flag = tmp_path / "fail-once"
    flag.write_text("x")
    monkeypatch.setenv(FAIL_ONCE_ENV, str(flag))
    kw = dict(shard_size=8000, n_threads=2, progress=False, backend="fm", sa_sample=8, isa_sample=8)
    build([corpus], str(tmp_path / "ray"), ray=True, **kw)
    assert not flag.exists()  # one worker died on it, its task was rerun
    monkeypatch.delenv(FAIL_ONCE_ENV)
    build([corpus], str(tmp_path / "local"), **kw)
    assert _digest(str(tmp_path / "local")) == _digest(str(tmp_path / "ray"))


def test_ray_failed_build_leaves_nothing(ray_cluster, tmp_path):
    path = write_jsonl(str(tmp_path / "bad.jsonl"), _records(400))
    with open(path, "a") as fh:  # shards are already constructing on Ray when the reader fails
        fh.write("{not json\n")
    with pytest.raises(InputError):
        build([path], str(tmp_path / "idx"), ray=True, shard_size=4000, n_threads=2, progress=False)
    assert _leftovers(str(tmp_path), "idx") == []


def test_ray_cli(ray_cluster, corpus, tmp_path):
    from infinigram.cli import main

    assert main(["build", corpus, "-o", str(tmp_path / "cli"), "--ray", "--shard-size", "8000",
                 "--threads", "2", "--no-progress"]) == 0
    build([corpus], str(tmp_path / "local"), shard_size=8000, n_threads=2, progress=False)
    assert _digest(str(tmp_path / "cli")) == _digest(str(tmp_path / "local"))
