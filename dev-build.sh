#!/usr/bin/env bash
# Developer build: compiles infinigram._core in place (python/infinigram/) for
# `PYTHONPATH=python` use without reinstalling. Users run `pip install .`.
set -euo pipefail
cd "$(dirname "$0")"
cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
  -DPython_EXECUTABLE="$(which python)" "$@" >/dev/null
cmake --build build/dev
for f in build/dev/_core*.so; do cp "$f" "python/infinigram/.$(basename "$f").new" && mv -f "python/infinigram/.$(basename "$f").new" "python/infinigram/$(basename "$f")"; done  # atomic: running tests keep the old mapping
