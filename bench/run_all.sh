#!/usr/bin/env bash
# Build the corpus, install the peers, build all indexes and run both benchmarks.
#
#   bash bench/run_all.sh            # everything (corpus, peers, build bench, count bench)
#   REPEATS=3 bash bench/run_all.sh  # 3 runs of each timed build step (best + median)
#   SKIP_BUILD_BENCH=1 bash bench/run_all.sh   # only (re)use indexes and run the count bench
#
# Big files go to $DATA (default /work/bench-data, outside the repo); printed
# results go to bench/out/ (gitignored): build.txt/json, count.txt/json.
# Our package is used from an install of the repo if there is one, otherwise
# from python/ with its built _core extension (see bench/_common.py).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${DATA:-/work/bench-data}"
OUT="${OUT:-$HERE/out}"
REPEATS="${REPEATS:-1}"
PY="${PYTHON:-python3}"
CORPUS="$DATA/debian_docs.jsonl"
mkdir -p "$DATA" "$OUT"

# Freeze our package for the whole run: the tree is edited and _core*.so
# rebuilt concurrently, and a .so rewritten under a running process kills it
# (SIGBUS/SIGSEGV). Set INFINIGRAM_PYTHON yourself to benchmark another copy.
if [ -z "${INFINIGRAM_PYTHON:-}" ]; then
    SRC="$HERE/../python/infinigram"
    if ls "$SRC"/_core*.so >/dev/null 2>&1; then
        SNAP="$DATA/ours_snapshot"
        rm -rf "$SNAP"; mkdir -p "$SNAP"
        cp -r "$SRC" "$SNAP/infinigram"
        rm -rf "$SNAP/infinigram/__pycache__"
        export INFINIGRAM_PYTHON="$SNAP"
    fi
fi
if [ -n "${INFINIGRAM_PYTHON:-}" ]; then
    echo "our package: $INFINIGRAM_PYTHON (repo $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?')"\
         "+ working tree; _core sha256 $(sha256sum "$INFINIGRAM_PYTHON"/infinigram/_core*.so | cut -c1-12))" | tee "$OUT/version.txt"
fi

echo "== peers"
"$PY" -c "import infini_gram, pydivsufsort, transformers" 2>/dev/null || \
    "$PY" -m pip install -q infini-gram pydivsufsort transformers
# (infini-gram's indexer imports transformers even for --token_dtype u8)

echo "== corpus"
if [ ! -s "$CORPUS" ] || [ ! -s "$CORPUS.manifest.json" ]; then
    "$PY" "$HERE/make_corpus.py" --apt-update --work "$DATA" --out "$CORPUS"
fi
"$PY" -c "import json,sys; m=json.load(open(sys.argv[1])); print(f\"{m['docs']} docs, {m['text_bytes']:,} bytes of text, sha256 {m['sha256']}\")" "$CORPUS.manifest.json"

if [ -z "${SKIP_BUILD_BENCH:-}" ]; then
    echo "== build benchmark (ours -> $DATA/our_index)"
    IGKEEP=()
    # keep the infini-gram index for the count benchmark if there is none yet
    [ -f "$DATA/ig_index/table.0" ] || IGKEEP=(--ig-save-dir "$DATA/ig_index")
    "$PY" "$HERE/bench_build.py" "$CORPUS" --work "$DATA" --our-index "$DATA/our_index" \
        --repeats "$REPEATS" "${IGKEEP[@]}" --json "$OUT/build.json" | tee "$OUT/build.txt"
fi

if [ ! -f "$DATA/ig_index/table.0" ]; then
    echo "== infini-gram index for the count benchmark"
    rm -rf "$DATA/ig_index"
    mkdir -p "$DATA/ig_data"
    [ -e "$DATA/ig_data/debian_docs.jsonl" ] || ln -f "$CORPUS" "$DATA/ig_data/debian_docs.jsonl"
    "$PY" -m infini_gram.indexing --data_dir "$DATA/ig_data" --save_dir "$DATA/ig_index" \
        --token_dtype u8 --cpus 2 --mem 8 --add_metadata --ulimit "$(ulimit -Hn)" > "$OUT/ig_index_build.log" 2>&1
fi
if [ ! -f "$DATA/our_index/index.json" ]; then
    echo "== our index for the count benchmark"
    "$PY" -c "
import importlib, sys
sys.path.insert(0, '$HERE')
from _common import import_infinigram
ig = import_infinigram()
b = getattr(ig, 'build', None)
b = b if callable(b) else importlib.import_module('infinigram.build').build
b(['$CORPUS'], '$DATA/our_index', tokenizer='bytes', overwrite=True, progress=False)
"
fi

echo "== count benchmark"
"$PY" "$HERE/bench_count.py" "$DATA/our_index" "$DATA/ig_index" --json "$OUT/count.json" | tee "$OUT/count.txt"
echo "results in $OUT"
