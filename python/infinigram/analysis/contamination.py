"""Benchmark contamination: how much of each benchmark entry occurs in a corpus.

Per entry (the chosen ``fields`` of a JSONL record, each field matched on its
own so no match spans two fields), the *overlap ratio* under a method:

``windows``  fraction of the entry's length-``n`` token windows that occur in the
             corpus (in the spirit of infini-gram mini's contamination bulletin);
             a field shorter than ``n`` counts as one window that occurs iff the
             whole field does;
``coverage`` fraction of the entry's tokens covered by corpus matches of length
             >= ``n`` (Llama 2's token-level contamination, without skip-grams);
             a field shorter than ``n`` is covered iff it occurs whole.

``n`` defaults to 50 for a bytes index (~50 characters of ASCII text) and 13
for an index with a Hugging Face tokenizer. Status: ``dirty`` if overlap >=
``dirty`` (default 0.8), ``suspicious`` if >= ``suspicious`` (default 0.2),
else ``clean``. Both thresholds are configurable.

Everything is computed from matching statistics, batched in C++ with the GIL
released (:func:`infinigram._core.matching_statistics_many`), so it works on
sharded indexes unchanged.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _core
from ..errors import InputError
from ..readers import iter_records
from .matches import covered_mask, window_hits

__all__ = ["METHODS", "DEFAULT_DIRTY", "DEFAULT_SUSPICIOUS", "EntryScore", "ContaminationResult",
           "contamination_scores", "read_benchmark", "default_n", "format_table", "write_report"]

METHODS = ("windows", "coverage")
DEFAULT_DIRTY = 0.8
DEFAULT_SUSPICIOUS = 0.2
ID_FIELDS = ("task_id", "id", "_id", "question_id", "idx")


@dataclass
class EntryScore:
    """One benchmark entry: ``overlap`` in [0, 1], ``status``
    (dirty / suspicious / clean), ``n_tokens`` (all fields), ``longest`` (the
    longest corpus match, tokens), and for reported entries ``spans``: the
    maximal matches (>= n tokens) with their source documents."""

    benchmark: str
    entry: int
    id: str
    overlap: float
    status: str
    n_tokens: int
    longest: int
    spans: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class ContaminationResult:
    method: str
    n: int
    dirty: float
    suspicious: float
    fields: List[str]
    index: str
    entries: List[EntryScore]
    summary: Dict[str, Dict[str, Any]]
    seconds: float = 0.0

    def to_json(self) -> Dict[str, Any]:
        return {"method": self.method, "n": self.n, "thresholds": {"dirty": self.dirty, "suspicious": self.suspicious},
                "fields": self.fields, "index": self.index, "seconds": round(self.seconds, 3),
                "summary": self.summary, "entries": [asdict(e) for e in self.entries]}


def default_n(index: Any) -> int:
    """50 (≈ characters) for a bytes index, 13 tokens otherwise."""
    kind = index.manifest.get("tokenizer", {}).get("kind", "bytes")
    return 50 if kind == "bytes" else 13


def read_benchmark(path: str, fields: Sequence[str]) -> Tuple[str, List[Dict[str, Any]]]:
    """(benchmark name, records) of a JSONL file; every record must hold all ``fields``."""
    name = os.path.basename(path)
    for ext in (".jsonl", ".json"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    recs = []
    for ln, r in iter_records(path):
        missing = [f for f in fields if f not in r]
        if missing:
            raise InputError(f"missing field(s) {', '.join(missing)} "
                             f"(the record has: {', '.join(sorted(r)) or 'nothing'})", path, ln)
        recs.append(r)
    return name, recs


def coverage_hits(ms: np.ndarray, n: int) -> Tuple[int, int]:
    """(tokens covered by matches of length >= n, tokens) of one field; a field
    shorter than n is covered entirely iff it occurs whole (as for windows)."""
    m = len(ms)
    if m == 0:
        return 0, 0
    if m < n:
        return (m if ms[0] >= m else 0), m
    return int(covered_mask(ms, n).sum()), m


def _entry_id(r: Dict[str, Any], k: int) -> str:
    for f in ID_FIELDS:
        if f in r:
            return str(r[f])
    return str(k)


def _status(x: float, dirty: float, suspicious: float) -> str:
    return "dirty" if x >= dirty else "suspicious" if x >= suspicious else "clean"


def _field_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return "\n".join(_field_text(x) for x in v)
    return "" if v is None else json.dumps(v, ensure_ascii=False)


def contamination_scores(index: Any, benchmarks: Union[Dict[str, List[Dict[str, Any]]], Sequence[str]],
                         fields: Sequence[str], method: str = "windows", n: Optional[int] = None,
                         dirty: float = DEFAULT_DIRTY, suspicious: float = DEFAULT_SUSPICIOUS,
                         n_threads: int = 0, batch: int = 512, progress: bool = False,
                         report_worst: int = 10, max_docs: int = 3) -> "ContaminationResult":
    """Overlap ratio and status of every entry of every benchmark.

    ``benchmarks``: ``{name: records}`` or a list of JSONL paths (name = file
    name). ``fields``: the record fields whose text is checked. ``report_worst``
    entries per benchmark (highest overlap, > 0) also get their matched spans
    and source documents (``EntryScore.spans``).
    """
    import time

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (expected one of {', '.join(METHODS)})")
    if not fields:
        raise ValueError("give at least one field")
    if not (0 <= suspicious <= dirty <= 1):
        raise ValueError("thresholds must satisfy 0 <= suspicious <= dirty <= 1")
    n = default_n(index) if n is None else int(n)
    if n < 1:
        raise ValueError("n must be >= 1")
    if not isinstance(benchmarks, dict):
        benchmarks = dict(read_benchmark(p, fields) for p in benchmarks)
    t0 = time.perf_counter()
    total = sum(len(v) for v in benchmarks.values())
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="contamination", unit="entry")
    entries: List[EntryScore] = []
    tok = index.tokenizer
    for name, recs in benchmarks.items():
        for b0 in range(0, len(recs), batch):
            chunk = recs[b0:b0 + batch]
            texts = [_field_text(r[f]) for r in chunk for f in fields]
            enc = tok.encode_batch(texts)
            lens = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
            offsets = np.zeros(len(enc) + 1, dtype=np.int64)
            np.cumsum(lens, out=offsets[1:])
            flat = np.concatenate([np.asarray(e, dtype=np.int64) for e in enc]) if enc else np.zeros(0, np.int64)
            length, _, _, _ = _core.matching_statistics_many(index._engine, flat, offsets, False, n_threads)
            length = length.astype(np.int64)
            nf = len(fields)
            for k, r in enumerate(chunk):
                hit = tot = ntok = longest = 0
                for j in range(nf):
                    s = k * nf + j
                    ms = length[offsets[s]:offsets[s + 1]]
                    ntok += len(ms)
                    if len(ms):
                        longest = max(longest, int(ms.max()))
                    if method == "windows":
                        h, t = window_hits(ms, n)
                    else:
                        h, t = coverage_hits(ms, n)
                    hit += h
                    tot += t
                ov = hit / tot if tot else 0.0
                entries.append(EntryScore(name, b0 + k, _entry_id(r, b0 + k), ov, _status(ov, dirty, suspicious),
                                          ntok, longest))
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    res = ContaminationResult(method, n, dirty, suspicious, list(fields), getattr(index, "path", ""), entries, {})
    res.summary = summarise(res)
    if report_worst > 0:
        _attach_spans(index, benchmarks, res, report_worst, max_docs)
    res.seconds = time.perf_counter() - t0
    return res


def summarise(res: ContaminationResult) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for name in dict.fromkeys(e.benchmark for e in res.entries):
        es = [e for e in res.entries if e.benchmark == name]
        nn = len(es)
        c = {s: sum(e.status == s for e in es) for s in ("dirty", "suspicious", "clean")}
        out[name] = {"entries": nn, **{s: c[s] for s in c},
                     **{f"pct_{s}": (100.0 * c[s] / nn if nn else 0.0) for s in c},
                     "mean_overlap": float(np.mean([e.overlap for e in es])) if nn else 0.0}
    return out


def _attach_spans(index: Any, benchmarks: Dict[str, List[Dict[str, Any]]], res: ContaminationResult,
                  worst: int, max_docs: int) -> None:
    by: Dict[str, List[EntryScore]] = {}
    for e in res.entries:
        by.setdefault(e.benchmark, []).append(e)
    meta_cache: Dict[int, Any] = {}
    for name, es in by.items():
        top = sorted((e for e in es if e.overlap > 0), key=lambda e: (-e.overlap, e.entry))[:worst]
        for e in top:
            r = benchmarks[name][e.entry]
            for f in res.fields:
                for mm in index.maximal_matches(_field_text(r[f]), min_len=min(res.n, 10 ** 9), max_docs=max_docs):
                    d = mm.as_dict()
                    d["field"] = f
                    srcs = []
                    for doc in d["doc_ix"]:
                        if doc not in meta_cache:
                            try:
                                meta_cache[doc] = index._metadata(doc, int(index._engine.doc_span(doc)[0]))
                            except Exception:
                                meta_cache[doc] = {}
                        srcs.append({"doc_ix": doc, "metadata": meta_cache[doc]})
                    d["sources"] = srcs
                    e.spans.append(d)


# ------------------------------------------------------------------ output
def format_table(res: ContaminationResult) -> str:
    head = ["benchmark", "entries", "dirty", "suspicious", "clean", "mean overlap"]
    rows = [[name, f"{s['entries']:,}", f"{s['pct_dirty']:.1f}%", f"{s['pct_suspicious']:.1f}%",
             f"{s['pct_clean']:.1f}%", f"{s['mean_overlap']:.3f}"] for name, s in res.summary.items()]
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w[i]) if i == 0 else str(x).rjust(w[i]) for i, x in enumerate(r))
    out = [f"method {res.method}, n = {res.n}, dirty >= {res.dirty}, suspicious >= {res.suspicious}", line(head),
           "  ".join("-" * x for x in w)] + [line(r) for r in rows]
    return "\n".join(out)


def _svg_hist(values: Sequence[float], bins: int = 20, width: int = 420, height: int = 140) -> str:
    counts, _ = np.histogram(np.asarray(values, dtype=float), bins=bins, range=(0.0, 1.0))
    mx = max(1, int(counts.max()) if len(counts) else 1)
    bw = width / bins
    bars = []
    for i, c in enumerate(counts.tolist()):
        h = 0 if c == 0 else max(1.0, (height - 20) * math.log1p(c) / math.log1p(mx))
        bars.append(f'<rect x="{i * bw:.1f}" y="{height - 20 - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" '
                    f'fill="#c0504d"><title>[{i / bins:.2f}, {(i + 1) / bins:.2f}): {c}</title></rect>')
    axis = (f'<text x="0" y="{height - 5}" font-size="10">0</text>'
            f'<text x="{width / 2 - 8}" y="{height - 5}" font-size="10">0.5</text>'
            f'<text x="{width - 12}" y="{height - 5}" font-size="10">1</text>')
    return (f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(bars) + axis + "</svg>")


def _png_hist(res: ContaminationResult, path: str) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = list(res.summary)
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 2.2 * max(1, len(names))), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        ax.hist([e.overlap for e in res.entries if e.benchmark == name], bins=20, range=(0, 1), color="#c0504d")
        ax.set_yscale("log")
        ax.set_title(f"{name}: overlap ({res.method}, n={res.n})")
        ax.axvline(res.dirty, color="k", ls="--", lw=0.8)
        ax.axvline(res.suspicious, color="gray", ls=":", lw=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _html(res: ContaminationResult, png: Optional[str]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>infinigram contamination report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
             "pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;font-size:12px}"
             ".dirty{color:#b00}.suspicious{color:#b60}.clean{color:#080}mark{background:#fbb}</style></head><body>",
             f"<h1>Contamination report</h1><p>index <code>{e(res.index)}</code>; method <b>{e(res.method)}</b>, "
             f"n = {res.n}; dirty &ge; {res.dirty}, suspicious &ge; {res.suspicious}; fields {e(', '.join(res.fields))}; "
             f"{len(res.entries):,} entries in {res.seconds:.1f} s.</p>",
             "<table><tr><th>benchmark</th><th>entries</th><th>dirty</th><th>suspicious</th><th>clean</th>"
             "<th>mean overlap</th></tr>"]
    for name, s in res.summary.items():
        parts.append(f"<tr><td>{e(name)}</td><td>{s['entries']:,}</td><td>{s['pct_dirty']:.1f}%</td>"
                     f"<td>{s['pct_suspicious']:.1f}%</td><td>{s['pct_clean']:.1f}%</td>"
                     f"<td>{s['mean_overlap']:.3f}</td></tr>")
    parts.append("</table>")
    if png:
        parts.append(f"<p><img src='{e(os.path.basename(png))}' alt='overlap histograms'></p>")
    for name in res.summary:
        es = [x for x in res.entries if x.benchmark == name]
        parts.append(f"<h2>{e(name)}</h2><p>overlap histogram (log count):</p>{_svg_hist([x.overlap for x in es])}")
        worst = [x for x in sorted(es, key=lambda x: (-x.overlap, x.entry)) if x.spans][:50]
        if worst:
            parts.append("<h3>worst entries</h3>")
        for x in worst:
            parts.append(f"<h4>#{x.entry} <code>{e(x.id)}</code>: overlap {x.overlap:.3f} "
                         f"<span class='{x.status}'>{x.status}</span>, longest match {x.longest} tokens</h4>")
            for sp in x.spans[:20]:
                src = "; ".join(f"doc {s['doc_ix']} " + e(json.dumps(s["metadata"], ensure_ascii=False)[:120])
                                for s in sp.get("sources", []))
                parts.append(f"<div>[{e(sp['field'])}] tokens {sp['start']}–{sp['end']} ({sp['length']}), "
                             f"count {sp['count']}; sources: {src}</div><pre><mark>{e(sp['text'])}</mark></pre>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(res: ContaminationResult, out_prefix: str) -> Dict[str, str]:
    """Writes ``PREFIX.json`` (summary + every entry), ``PREFIX.csv`` (one row
    per entry), ``PREFIX.html`` (summary, histograms, worst entries with matched
    spans and sources) and ``PREFIX.png`` (histograms; only when matplotlib is
    installed). Returns ``{kind: path}``."""
    d = os.path.dirname(os.path.abspath(out_prefix))
    os.makedirs(d, exist_ok=True)
    paths = {"json": out_prefix + ".json", "csv": out_prefix + ".csv", "html": out_prefix + ".html"}
    with open(paths["json"], "w", encoding="utf-8") as fh:
        json.dump(res.to_json(), fh, ensure_ascii=False, indent=1)
    with open(paths["csv"], "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["benchmark", "entry", "id", "overlap", "status", "n_tokens", "longest"])
        for x in res.entries:
            w.writerow([x.benchmark, x.entry, x.id, f"{x.overlap:.6f}", x.status, x.n_tokens, x.longest])
    png = _png_hist(res, out_prefix + ".png")
    if png:
        paths["png"] = png
    with open(paths["html"], "w", encoding="utf-8") as fh:
        fh.write(_html(res, png))
    return paths
