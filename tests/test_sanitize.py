"""The short sanitizer run, as one test: ``scripts/sanitize.sh --short``
builds infinigram._core with AddressSanitizer + UndefinedBehaviorSanitizer
into build/asan (cached: rebuilt only when csrc/ changed) and runs the
fuzzers and the engine tests against it in a subprocess. Any sanitizer
report aborts that run and fails this test.

Selected only with ``pytest -m sanitize`` (it compiles the extension once
more, ~4 min on 2 cores, then runs ~3 min); the normal run skips it.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.sanitize
def test_short_sanitized_run(request):
    if "sanitize" not in (request.config.getoption("-m") or ""):
        pytest.skip("the sanitizer run is selected with: pytest -m sanitize")
    if os.environ.get("INFINIGRAM_SANITIZED"):
        pytest.skip("already running under the sanitizers")
    for tool in ("cmake", "ninja", "gcc"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed for the sanitizer build (pip install cmake ninja pybind11)")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONPATH")}
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "sanitize.sh"), "--short", "-x"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1800)
    tail = (r.stdout[-4000:] + "\n" + r.stderr[-6000:])
    assert r.returncode == 0, tail
    assert "AddressSanitizer" not in r.stderr and "runtime error:" not in r.stderr, tail
