#!/usr/bin/env bash
# Runs the tests against infinigram._core built with AddressSanitizer and
# UndefinedBehaviorSanitizer (CMake option INFINIGRAM_SANITIZE=ON).
#
#   scripts/sanitize.sh --short [pytest args]   fuzzers + engine tests (~3 min on 2 cores)
#   scripts/sanitize.sh --full  [pytest args]   the whole suite (see docs/RELIABILITY.md for its time)
#   scripts/sanitize.sh --build                 only build; prints the directory to put on PYTHONPATH
#   scripts/sanitize.sh --env                   prints the environment (eval "$(scripts/sanitize.sh --env)")
#
# The sanitized extension lives in its own tree, never in python/infinigram/:
#   build/asan/cmake/                 the CMake build directory
#   build/asan/pkg/infinigram/        symlinks to every entry of python/infinigram/
#                                     except _core*.so, plus the ASan _core*.so
# so PYTHONPATH=build/asan/pkg imports the current Python sources with the
# sanitized core. A Python host needs libasan loaded first (LD_PRELOAD);
# leak detection is off (the interpreter keeps its memory on purpose), UBSan
# errors abort with a stack trace, and ASan's report aborts the process, so
# any finding fails the test that triggered it.
#
# Needs: a C++17 compiler with libasan/libubsan (gcc), cmake, ninja, pybind11
# (pip install cmake ninja pybind11).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
B="$ROOT/build/asan"
mode="${1:---short}"
[ $# -gt 0 ] && shift

build() {
  cmake -S "$ROOT" -B "$B/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DINFINIGRAM_SANITIZE=ON \
    -Dpybind11_DIR="$(python -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
    -DPython_EXECUTABLE="$(command -v python)" >/dev/null
  cmake --build "$B/cmake" >&2
  local pkg="$B/pkg/infinigram"
  mkdir -p "$pkg"
  # refresh the symlinks (files may have been added or removed since)
  find "$pkg" -maxdepth 1 -type l -delete
  for f in "$ROOT"/python/infinigram/* "$ROOT"/python/infinigram/.[!.]*; do
    [ -e "$f" ] || continue
    case "$(basename "$f")" in _core*.so|.*_core*.so*|__pycache__) continue ;; esac
    ln -sfn "$f" "$pkg/$(basename "$f")"
  done
  for f in "$B"/cmake/_core*.so; do
    cp "$f" "$pkg/.$(basename "$f").new" && mv -f "$pkg/.$(basename "$f").new" "$pkg/$(basename "$f")"
  done
}

env_vars() {
  local asan
  asan="$(gcc -print-file-name=libasan.so)"
  [ -f "$asan" ] || { echo "sanitize.sh: libasan not found (gcc -print-file-name=libasan.so gave $asan)" >&2; exit 1; }
  # libstdc++ too: a Python host loads it only with the extension, after
  # libasan has set up its interceptors, and ASan's __cxa_throw interceptor
  # then aborts at the first C++ exception ("real___cxa_throw != 0")
  local cxx
  cxx="$(readlink -f "$(gcc -print-file-name=libstdc++.so)")"
  echo "export LD_PRELOAD='$asan $cxx'"
  echo "export ASAN_OPTIONS='detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0'"
  echo "export UBSAN_OPTIONS='halt_on_error=1:print_stacktrace=1:abort_on_error=1'"
  echo "export PYTHONPATH='$B/pkg'"
  echo "export INFINIGRAM_SANITIZED=1"
  # the browser test drives Chromium, which must not inherit LD_PRELOAD=libasan
  echo "export INFINIGRAM_SKIP_BROWSER=1"
}

case "$mode" in
  --build) build; echo "$B/pkg" ;;
  --env) env_vars ;;
  --short|--full)
    build
    eval "$(env_vars)"
    python -c 'import infinigram._core as c, sys; assert "/build/asan/" in c.__file__, c.__file__' \
      || { echo "sanitize.sh: the sanitized core is not the one imported" >&2; exit 1; }
    start=$(date +%s)
    if [ "$mode" = --short ]; then
      # the fuzzers and the engine/format tests on both backends
      python -m pytest -q -p no:cacheprovider --capture=sys -m "not neural" \
        tests/test_fuzz_files.py tests/test_fuzz_queries.py tests/test_fuzz_inputs.py \
        tests/test_errors.py tests/test_fm.py tests/test_shards.py tests/test_concurrency.py "$@"
    else
      # everything but the torch-based tests (torch under a preloaded libasan is
      # not supported: its own allocator hooks and JIT abort at import)
      python -m pytest -q -p no:cacheprovider --capture=sys -m "not neural" "$@"
    fi
    echo "sanitize.sh: $mode passed in $(( $(date +%s) - start )) s" >&2
    ;;
  *) echo "usage: scripts/sanitize.sh [--short|--full|--build|--env] [pytest args]" >&2; exit 2 ;;
esac
