#!/usr/bin/env python3
"""FM-index benchmark: our ``backend="fm"`` vs SDSL-lite's
``csa_wt<wt_huff<rrr_vector<127>>, 32, 64>`` (infini-gram mini's configuration),
same corpus, same patterns, same documents, one script.

    python bench/bench_fm.py [--sa-index /work/bench-data/our_index] [--out /tmp/fm_bench]
        [--sa-sample 64] [--isa-sample 64] [--patterns 300] [--docs 200] [--e2e] [--json OUT]

* The text is shard 0's ``tokens.bin`` of a bytes SA index (documents with
  their 0xFF separators, as SDSL indexes it: a byte file without 0 bytes).
* ours, build: ``_core.fm_build`` from that index's tokens.bin + sa.bin (the FM
  step; the SA is what ``infinigram build`` makes first), in a child process:
  wall time and peak RSS. ``--e2e`` also times ``infinigram build --backend fm``
  on the JSONL corpus (SA-IS + FM step), and the counts are timed on that
  index too (the default auto sharding: several shards) unless ``--fm-index``
  names another.
* SDSL, build: ``sdsl_harness build`` (divsufsort + BWT + wavelet tree), same
  measurement. ``bench/sdsl_harness.cpp`` is compiled here when
  ``/usr/include/sdsl`` exists (``apt-get install libsdsl-dev libdivsufsort-dev``).
* size: bytes of the FM files (fm.bin + fm_sa.bin + fm_isa.bin; doc_offsets
  adds 8 bytes per document) / bytes of the text; SDSL: ``size_in_bytes``.
* count: mean µs per call over ``--patterns`` patterns per length 5/10/20/50/100,
  cut at random positions (no separator); ours through Python (``FMEngine.count``,
  ~1 µs of call overhead included), SDSL in C++; one warm-up pass, then the best
  of 3 passes, each.
* locate: all occurrences of the 10-byte patterns, µs per occurrence.
* extraction: ``--docs`` random whole documents, MB/s, in ``--extract-rounds``
  alternating rounds (ours: ``FMEngine.tokens`` on one thread, then with the
  default of all cores, its LF walks split over threads, best of 3 passes
  each; then SDSL's ``extract``, single-threaded, one pass): the best of each
  side, and each round's ratio (both sides in the same phase of the VM).
* ``--fm-index DIR``: also the count latency on an existing FM index of the
  same corpus (e.g. 4 shards), same patterns, one lock-step search over its
  shards per call (``FMEngine.count``); the shard count is in the row name.
* ``fm-index`` (PyPI, ``pip install fm-index``) when importable, in a child
  process on the same text (decoded as UTF-8, separators as NUL) and patterns:
  build time and peak RSS, pickled size, count, locate, and its whole-text
  ``item()`` as extraction (it has no per-document one); ``--no-pypi-fm``
  skips it (~2.5 min and ~4.5 GB here).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, child_env, import_infinigram, machine_info, run_measured  # noqa: E402

LENGTHS = (5, 10, 20, 50, 100)

# The PyPI `fm-index` package (Rust) in a child process: it indexes a Python
# str, so the text is the shard's bytes decoded as UTF-8 with each 0xFF
# separator replaced by NUL (absent from the corpus); patterns that are not
# whole UTF-8 strings are skipped (and counted). It has no per-document
# extraction: `item()` decodes the whole text, timed as its extraction.
PYPI_FM = r"""
import json, pickle, sys, time
import numpy as np
from fm_index import FMIndex
text = np.fromfile(sys.argv[1], dtype=np.uint8).tobytes().replace(b"\xff", b"\x00").decode("utf-8")
t0 = time.perf_counter()
ix = FMIndex(text)
build_s = time.perf_counter() - t0
size = len(pickle.dumps(ix))
raw = open(sys.argv[2], "rb").read()
pats, i = {}, 0
while i < len(raw):
    L = int.from_bytes(raw[i:i + 4], "little")
    pats.setdefault(L, []).append(raw[i + 4:i + 4 + L])
    i += 4 + L
count_us, skipped = {}, 0
for L, ps in sorted(pats.items()):
    qs = []
    for p in ps:
        try:
            qs.append(p.decode("utf-8"))
        except UnicodeDecodeError:
            skipped += 1
    for q in qs:
        ix.count(q)
    t = time.perf_counter()
    for q in qs:
        ix.count(q)
    count_us[str(L)] = (time.perf_counter() - t) / max(len(qs), 1) * 1e6
occ, t = 0, time.perf_counter()
for p in pats[10]:
    try:
        occ += len(ix.locate(p.decode("utf-8")))
    except UnicodeDecodeError:
        pass
    if occ > 200000:
        break
loc = (time.perf_counter() - t) / max(occ, 1) * 1e6
t = time.perf_counter()
n = len(ix.item().encode("utf-8"))
item_mb_s = n / (time.perf_counter() - t) / 1e6
print("RESULT " + json.dumps({"build_s": build_s, "bytes": size, "count_us": count_us, "skipped_patterns": skipped,
                              "locate_us_per_occ": loc, "locate_occ": occ, "extract_mb_s": item_mb_s}))
"""


def build_harness() -> str | None:
    if not Path("/usr/include/sdsl").is_dir():
        return None
    exe = REPO / "build" / "sdsl_harness"
    src = REPO / "bench" / "sdsl_harness.cpp"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        exe.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["g++", "-O3", "-DNDEBUG", str(src), "-o", str(exe), "-lsdsl", "-ldivsufsort",
                        "-ldivsufsort64"], check=True)
    return str(exe)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sa-index", default="/work/bench-data/our_index")
    ap.add_argument("--corpus", default="/work/bench-data/debian_docs.jsonl")
    ap.add_argument("--out", default="/tmp/fm_bench")
    ap.add_argument("--sa-sample", type=int, default=64)
    ap.add_argument("--isa-sample", type=int, default=64)
    ap.add_argument("--patterns", type=int, default=300)
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--extract-rounds", type=int, default=3,
                    help="alternating extraction rounds, ours then SDSL's (~7 s each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--e2e", action="store_true", help="also time `infinigram build --backend fm` end to end")
    ap.add_argument("--no-sdsl", action="store_true")
    ap.add_argument("--no-pypi-fm", action="store_true", help="skip the PyPI fm-index package (~2.5 min, ~4.5 GB)")
    ap.add_argument("--json", default=str(REPO / "bench" / "out" / "fm.json"))
    ap.add_argument("--fm-index", default=None,
                    help="an existing FM index (any shard count) of the same corpus: count latency on it too")
    args = ap.parse_args()
    ig = import_infinigram()
    from infinigram import _core

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    man = json.loads((Path(args.sa_index) / "index.json").read_text())
    if len(man["shards"]) > 1:  # auto sharding split it: compare on the whole text, one shard
        one = out / "sa_index_1shard"
        if not (one / "index.json").exists():
            print(f"{args.sa_index} has {len(man['shards'])} shards; building a one-shard SA index at {one}")
            # in a child process: a child's ru_maxrss starts at its parent's RSS (fork + exec), so a
            # big parent would inflate every later peak-memory measurement
            subprocess.run([sys.executable, "-c", "import sys, infinigram; infinigram.build(sys.argv[1], sys.argv[2], "
                            "shard_size=None, overwrite=True, progress=False)", args.corpus, str(one)],
                           env=child_env(), check=True)
        args.sa_index = str(one)
        man = json.loads((one / "index.json").read_text())
    sh = man["shards"][0]
    sd = Path(args.sa_index) / sh["dir"]
    tokens, sa, docs_path = sd / "tokens.bin", sd / "sa.bin", sd / "doc_offsets.bin"
    text_bytes = tokens.stat().st_size
    res: dict = {"machine": machine_info(), "text_bytes": text_bytes,
                 "sampling": {"sa": args.sa_sample, "isa": args.isa_sample}}
    print(f"text: {tokens} ({text_bytes:,} bytes, {sh['n_docs']} docs)")

    # ---------------------------------------------------------------- builds
    fm, fs, fi = out / "fm.bin", out / "fm_sa.bin", out / "fm_isa.bin"
    code = (f"from infinigram import _core; _core.fm_build({str(tokens)!r}, {str(sa)!r}, {sh['ptr_width']}, 1, "
            f"{str(fm)!r}, {str(fs)!r}, {str(fi)!r}, {args.sa_sample}, {args.isa_sample}, 0)")
    r = run_measured([sys.executable, "-c", code], env=child_env())
    assert r["returncode"] == 0, r
    ours_size = fm.stat().st_size + fs.stat().st_size + fi.stat().st_size
    res["ours_build"] = {"wall_s": r["wall_s"], "peak_rss": r["peak_tree_rss_bytes"], "bytes": ours_size,
                         "parts": {p.name: p.stat().st_size for p in (fm, fs, fi)}}
    print(f"ours  FM step: {r['wall_s']:.2f} s, peak RSS {r['peak_tree_rss_bytes'] / 1e6:.0f} MB, "
          f"size {ours_size / text_bytes:.4f}x the text")
    if args.e2e:
        e2e_out = out / "e2e_index"
        r = run_measured([sys.executable, "-m", "infinigram", "build", args.corpus, "-o", str(e2e_out), "--overwrite",
                          "--backend", "fm", "--sa-sample", str(args.sa_sample), "--isa-sample", str(args.isa_sample),
                          "--no-progress"], env=child_env())
        res["ours_e2e"] = {"wall_s": r["wall_s"], "peak_rss": r["peak_tree_rss_bytes"]}
        print(f"ours  end to end (SA-IS + FM): {r['wall_s']:.2f} s, peak RSS {r['peak_tree_rss_bytes'] / 1e6:.0f} MB")
        if args.fm_index is None:  # the default build's index (auto sharding): counts on it too
            args.fm_index = str(e2e_out)

    harness = None if args.no_sdsl else build_harness()
    if harness:
        idx = out / "csa.sdsl"
        r = run_measured([harness, "build", str(tokens), str(idx)], stdout_path=str(out / "sdsl_build.json"))
        assert r["returncode"] == 0, r
        b = json.loads((out / "sdsl_build.json").read_text())
        res["sdsl_build"] = {"wall_s": r["wall_s"], "peak_rss": r["peak_tree_rss_bytes"], "bytes": b["bytes"],
                             "construct_s": b["build_s"]}
        print(f"sdsl  build: {r['wall_s']:.2f} s, peak RSS {r['peak_tree_rss_bytes'] / 1e6:.0f} MB, "
              f"size {b['bytes'] / text_bytes:.4f}x the text")

    # --------------------------------------------------------------- queries
    T = np.memmap(tokens, dtype=np.uint8, mode="r")
    D = np.fromfile(docs_path, dtype="<u8")
    rng = np.random.default_rng(args.seed)
    pats: dict[int, list[bytes]] = {}
    for L in LENGTHS:
        ps: list[bytes] = []
        while len(ps) < args.patterns:
            p = int(rng.integers(0, len(T) - L))
            w = bytes(T[p:p + L])
            if 0xFF not in w:
                ps.append(w)
        pats[L] = ps
    with open(out / "patterns.bin", "wb") as f:
        for L in LENGTHS:
            for w in pats[L]:
                f.write(len(w).to_bytes(4, "little") + w)
    doc_ids = rng.choice(len(D) - 1, size=min(args.docs, len(D) - 1), replace=False)
    spans = np.array([(D[d] + 1, D[d + 1]) for d in doc_ids], dtype="<u8")
    spans.tofile(out / "spans.bin")

    def count_us(engine) -> dict:
        """Mean µs per count call for each pattern length: one warm-up pass, then
        the best of 3 passes (the SDSL harness does the same)."""
        res = {}
        for L in LENGTHS:
            qs = [list(w) for w in pats[L]]
            for q in qs:
                engine.count(q)  # warm-up
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                for q in qs:
                    engine.count(q)
                best = min(best, (time.perf_counter() - t) / len(qs) * 1e6)
            res[str(L)] = best
        return res

    eng = _core.FMEngine(1, [(str(fm), str(fs), str(fi), str(docs_path))])
    ours: dict = {"count_us": count_us(eng)}
    if args.fm_index:  # an existing, possibly multi-shard FM index of the same corpus
        fman = json.loads((Path(args.fm_index) / "index.json").read_text())
        assert fman["backend"] == "fm", f"{args.fm_index} is not an FM index"
        specs = [tuple(str(Path(args.fm_index) / s["dir"] / f) for f in ("fm.bin", "fm_sa.bin", "fm_isa.bin",
                                                                        "doc_offsets.bin")) for s in fman["shards"]]
        meng = _core.FMEngine(1, specs)
        ours["multi_shards"] = len(specs)
        ours["multi_count_us"] = count_us(meng)
        bad_multi = sum(meng.count(list(w)) != eng.count(list(w)) for L in LENGTHS for w in pats[L][:50])
        assert bad_multi == 0, f"{bad_multi} counts differ between {args.fm_index} and the one-shard FM index"
    occ = 0
    t = time.perf_counter()
    for w in pats[10]:
        d, _ = eng.locate(list(w), 1 << 40)
        occ += len(d)
        if occ > 200000:
            break
    ours["locate_us_per_occ"] = (time.perf_counter() - t) / max(occ, 1) * 1e6
    ours["locate_occ"] = occ
    def extract_mb_s(n_threads: int) -> float:
        """MB/s decoding the ``--docs`` documents, best of 3 passes (n_threads 0: all cores)."""
        best = float("inf")
        for _ in range(3):
            nbytes = 0
            t = time.perf_counter()
            for a, b in spans:
                nbytes += len(eng.tokens(0, int(a), int(b), n_threads))
            best = min(best, time.perf_counter() - t)
        return nbytes / best / 1e6

    ours["cores"] = os.cpu_count()
    res["ours"] = ours
    # correctness spot check against the SA index
    sai = ig.Index(args.sa_index)
    bad = sum(sai.count(list(w)) != eng.count(list(w)) for L in LENGTHS for w in pats[L][:50])
    bad += sum(not np.array_equal(eng.tokens(0, int(a), int(b)), T[int(a):int(b)]) for a, b in spans[:20])
    res["mismatches_vs_sa"] = int(bad)

    if harness:
        p = subprocess.run([harness, "query", str(out / "csa.sdsl"), str(out / "patterns.bin"), "-"],
                           capture_output=True, text=True, check=True)
        res["sdsl"] = json.loads(p.stdout)
    # Extraction, in --extract-rounds alternating rounds: ours on one thread
    # (best of 3 passes) and with all cores (best of 3), then SDSL's extract
    # (one pass, ~5 s), so that each round's ratio compares the two in the
    # same phase of the (noisy) VM; the table shows the best of each side
    # and the range of the per-round ratios.
    rounds = []
    for _ in range(args.extract_rounds):
        r = {"ours_1t": extract_mb_s(1), "ours_all": extract_mb_s(0)}
        if harness:
            p = subprocess.run([harness, "extract", str(out / "csa.sdsl"), str(out / "spans.bin"), "1"],
                               capture_output=True, text=True, check=True)
            r["sdsl"] = json.loads(p.stdout)["extract_mb_s"]
        rounds.append(r)
    ours["extract_rounds"] = rounds
    ours["extract_mb_s_1t"] = max(r["ours_1t"] for r in rounds)  # SDSL's extract is single-threaded
    ours["extract_mb_s"] = max(r["ours_all"] for r in rounds)  # the default: the walks split over all cores
    if harness:
        res["sdsl"]["extract_mb_s"] = max(r["sdsl"] for r in rounds)
    try:  # the PyPI fm-index package, if it installs
        if args.no_pypi_fm:
            raise ImportError("--no-pypi-fm")
        import fm_index as _pypi_fm  # noqa: F401
        log = out / "pypi_fm.log"
        r = run_measured([sys.executable, "-c", PYPI_FM, str(tokens), str(out / "patterns.bin")],
                         env=child_env(), stdout_path=str(log))
        line = [x for x in log.read_text().splitlines() if x.startswith("RESULT ")]
        res["pypi_fm_index"] = (dict(json.loads(line[-1][7:]), wall_s=r["wall_s"], peak_rss=r["peak_tree_rss_bytes"])
                                if line else f"failed (rc {r['returncode']}), see {log}")
    except ImportError as e:
        res["pypi_fm_index"] = f"not available: {type(e).__name__}"

    # ----------------------------------------------------------------- table
    s = res.get("sdsl")
    print(f"\n{'':26s} {'ours':>12s} {'sdsl':>12s} {'ours better':>12s}")
    def row(name, a, b, fmt="{:.2f}", higher_better=False):
        """One table line; the last column is sdsl/ours (ours/sdsl for throughputs): > 1 = ours better."""
        bs = fmt.format(b) if b is not None else "-"
        ratio = (f"{(a / b if higher_better else b / a):.2f}x" if (b and a) else "-")
        print(f"{name:26s} {fmt.format(a):>12s} {bs:>12s} {ratio:>12s}")
    row("size / text", ours_size / text_bytes, res["sdsl_build"]["bytes"] / text_bytes if s else None, "{:.4f}")
    row("FM step build s", res["ours_build"]["wall_s"], res["sdsl_build"]["wall_s"] if s else None)
    row("FM step peak RSS MB", res["ours_build"]["peak_rss"] / 1e6, res["sdsl_build"]["peak_rss"] / 1e6 if s else None,
        "{:.0f}")
    if "ours_e2e" in res:  # infinigram build --backend fm (JSONL -> index, default auto sharding) vs SDSL's build
        row("e2e build s", res["ours_e2e"]["wall_s"], res["sdsl_build"]["wall_s"] if s else None)
        row("e2e build peak RSS MB", res["ours_e2e"]["peak_rss"] / 1e6,
            res["sdsl_build"]["peak_rss"] / 1e6 if s else None, "{:.0f}")
    for L in LENGTHS:
        row(f"count {L:3d} B (µs)", ours["count_us"][str(L)], s["count_us"][str(L)] if s else None)
    if "multi_count_us" in ours:  # ours on S shards vs SDSL's single index
        for L in LENGTHS:
            row(f"count {L:3d} B {ours['multi_shards']} sh (µs)", ours["multi_count_us"][str(L)],
                s["count_us"][str(L)] if s else None)
    row("locate µs/occ", ours["locate_us_per_occ"], s["locate_us_per_occ"] if s else None)
    row("extract MB/s, 1 thread", ours["extract_mb_s_1t"], s["extract_mb_s"] if s else None, "{:.3f}", True)
    row(f"extract MB/s, {ours['cores']} cores", ours["extract_mb_s"], s["extract_mb_s"] if s else None, "{:.3f}",
        True)
    if s:
        for key, name in (("ours_1t", "1 thread"), ("ours_all", f"{ours['cores']} cores")):
            per = [r[key] / r["sdsl"] for r in ours["extract_rounds"]]
            print(f"  extraction {name}, per round (same VM phase): " + " / ".join(f"{x:.2f}x" for x in per) +
                  "  (" + " / ".join(f"{r[key]:.3f} vs {r['sdsl']:.3f}" for r in ours["extract_rounds"]) + " MB/s)")
    print(f"mismatches vs the SA index: {res['mismatches_vs_sa']}")
    f = res["pypi_fm_index"]
    if isinstance(f, dict):  # ours / theirs, as the SDSL column
        print(f"\nfm-index (PyPI), same text and patterns ({f['skipped_patterns']} non-UTF-8 patterns skipped): "
              f"built in {f['build_s']:.2f} s (process {f['wall_s']:.2f} s, peak RSS {f['peak_rss'] / 1e6:.0f} MB), "
              f"pickled size {f['bytes'] / text_bytes:.4f}x the text")
        print("  count µs at " + " / ".join(f"{L} B {f['count_us'][str(L)]:.2f}" for L in LENGTHS) +
              f"; locate {f['locate_us_per_occ']:.2f} µs/occ; whole-text item() {f['extract_mb_s']:.3f} MB/s")
    else:
        print(f"fm-index (PyPI): {f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2))
    if args.e2e:
        shutil.rmtree(out / "e2e_index", ignore_errors=True)


if __name__ == "__main__":
    main()
