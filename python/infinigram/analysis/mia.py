"""n-gram coverage membership inference (Hallinan et al., "The Surprising
Effectiveness of Membership Inference with Simple N-Gram Coverage", CoLM 2025,
arXiv 2508.09603), with infinigram's matching statistics doing the matching.

How this matches the paper's published code (github.com/shallinan1/NGramCoverageAttack,
``compute_ngram_coverage.py``, ``compute_creativity_index.py``, ``compute_roc_metrics.py``):

* **Spans.** The published two-pointer search records, for every end position,
  the longest span (of at least ``min_ngram`` words, default 3) that occurs in
  the reference, replacing the previous span when the new one contains it. That
  list is exactly the set of *maximal matches* of length >= ``min_ngram`` in
  text order (see :mod:`infinigram.analysis.matches`), which is what we compute
  from the matching statistics.
* **Coverage at n** = (tokens covered by recorded spans of length >= n) / (text
  length). Because spans are first found with ``min_ngram``, the published
  coverage at ``n < min_ngram`` equals the coverage at ``min_ngram``; we expose
  that as ``floor`` (``membership_scores`` sets ``floor=min_ngram``; standalone
  :func:`coverage` defaults to ``floor=1``, the plain definition).
* **Normalisations** (``get_ngram_coverage``): ``gen`` = covered / len(gen);
  ``ref`` = covered / max(len(gen), len(ref)); ``total`` = 2 covered /
  (len(gen) + max(len(gen), len(ref))); all three are 0 when nothing is covered.
  ``ref_length`` is the reference's length in the same unit.
* **Unique variants**: spans are visited in order; a span whose token sequence
  equals that of an earlier recorded span is skipped (the published code
  compares the detokenised span text; we compare the units themselves).
* **Creativity index** (modified, "higher = more copying"): the sum of the
  coverages for n = L..H (defaults 2..12), per normalisation and unique variant.
* **Units**: ``"words"`` = ``casual_tokenize(unidecode(text))`` as published.
  Divergence: the published code tests whether the Moses-detokenised span is a
  raw *substring* of the reference string (so a span may match inside longer
  words at its edges); we match whole word sequences of the reference's own
  tokenisation (stricter at span edges; identical in the common case).
* **Longest common substring** (``longest_substring_char``): characters; as
  in the published code the reference (only) is unidecoded first (when
  ``unidecode`` is installed; it is part of the ``test``/``analysis`` extras). ``longest_sublist_word``: the longest common *contiguous*
  run of words (what the published ``find_max_common_sublist_length``
  computes). ``lcs_word`` additionally gives the true longest common
  subsequence of words.
* **Aggregation** over the M generations of a candidate: min, max, median, mean.
* **AUROC / TPR@FPR** as sklearn's ``roc_curve`` (default
  ``drop_intermediate=True``) + ``auc``: TPR at a target FPR is the TPR of the
  last curve point with FPR <= target (0 if none); targets 0.1%, 0.5%, 1%, 5%.
  Labels: 1 = member, 0 = non-member; higher score = more likely member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .matches import maximal_starts
from .reference import TinyIndex, Vocab, tokenize_units, unit_ids

__all__ = [
    "FPR_THRESHOLDS", "AGGREGATES", "Coverage", "coverage", "creativity_index", "membership_scores",
    "MembershipResult", "longest_common_substring", "longest_common_subsequence", "aggregate",
    "roc_points", "auroc", "tpr_at_fpr",
]

FPR_THRESHOLDS = (0.001, 0.005, 0.01, 0.05)
AGGREGATES = ("min", "max", "median", "mean")
NORMS = ("gen_length", "ref_length", "total_length")


@dataclass
class Coverage:
    """Coverage of a text at threshold ``n`` (in ``unit``s).

    ``gen`` = covered / length; ``ref`` and ``total`` (None without a
    ``ref_length``) as in the module docstring; ``spans``: the counted
    maximal spans ``(start, end)`` in units.
    """

    n: int
    unit: str
    unique: bool
    covered: int
    length: int
    ref_length: Optional[int]
    gen: float
    ref: Optional[float]
    total: Optional[float]
    spans: List[Tuple[int, int]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return {"n": self.n, "unit": self.unit, "unique": self.unique, "covered": self.covered,
                "length": self.length, "ref_length": self.ref_length, "coverage_gen_length": self.gen,
                "coverage_ref_length": self.ref, "coverage_total_length": self.total,
                "spans": [list(s) for s in self.spans]}


# ----------------------------------------------------------------- matching
def _is_index(x: Any) -> bool:
    return hasattr(x, "longest_matches") and hasattr(x, "encode")


def _match(text: Union[str, Sequence[int]], reference: Any, unit: Optional[str]) -> Tuple[np.ndarray, np.ndarray, Optional[int], str]:
    """(unit ids of text, matching statistics, reference length or None, unit)."""
    if _is_index(reference):
        if unit not in (None, "tokens") and not (unit == "bytes" and reference.token_width == 1):
            raise ValueError(f"against an Index the unit is its own tokens, not {unit!r}")
        ids = np.asarray(reference.encode(text) if isinstance(text, str) else text, dtype=np.int64)
        ms = reference.longest_matches(ids, with_occurrence=False).length
        return ids, ms, None, "tokens"
    if isinstance(reference, TinyIndex):
        if isinstance(text, str):
            raise ValueError("against a TinyIndex give the text as unit ids")
        ids = np.asarray(text, dtype=np.int64)
        return ids, reference.matching_statistics(ids), len(reference), unit or "ids"
    if isinstance(reference, str):
        unit = unit or "words"
        vocab = Vocab()
        (ref_ids, ids), width = unit_ids([reference, text], unit, vocab)
        if unit == "chars" and len(ids) and (ids.max() > 0xFFFFFFFE or (len(ref_ids) and ref_ids.max() > 0xFFFFFFFE)):
            raise ValueError("code point out of range")
        tiny = TinyIndex(ref_ids, width)
        return ids, tiny.matching_statistics(ids), len(ref_ids), unit
    raise TypeError("reference must be an Index, a reference text (str) or a TinyIndex")


def _flags(ids: np.ndarray, ms: np.ndarray, n: int, floor: int, unique: bool) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
    k = max(int(n), int(floor), 1)
    starts = maximal_starts(ms, max(int(floor), 1))
    flags = np.zeros(len(ms), dtype=bool)
    spans = []
    seen = set()
    for s in starts.tolist():
        L = int(ms[s])
        key = ids[s:s + L].tobytes() if unique else None
        if L >= k and (not unique or key not in seen):
            flags[s:s + L] = True
            spans.append((s, s + L))
        if unique:
            seen.add(key)
    return flags, spans


def _normalise(covered: int, length: int, ref_length: Optional[int]) -> Tuple[float, Optional[float], Optional[float]]:
    if ref_length is None:
        return (covered / length if covered else 0.0), None, None
    if covered == 0:
        return 0.0, 0.0, 0.0
    radj = max(length, ref_length)
    return covered / length, covered / radj, 2 * covered / (length + radj)


def _coverage_from(ids: np.ndarray, ms: np.ndarray, n: int, floor: int, unique: bool, ref_length: Optional[int],
                   unit: str) -> Coverage:
    flags, spans = _flags(ids, ms, n, floor, unique)
    c = int(flags.sum())
    g, r, t = _normalise(c, len(ms), ref_length)
    return Coverage(int(n), unit, bool(unique), c, len(ms), ref_length, g, r, t, spans)


def coverage(text: Union[str, Sequence[int]], reference: Any, n: int = 3, *, unit: Optional[str] = None,
             unique: bool = False, floor: int = 1, ref_length: Optional[int] = None) -> Coverage:
    """Fraction of ``text``'s units covered by spans of >= ``n`` units that
    occur in ``reference``.

    ``reference``: an :class:`~infinigram.Index` (unit: its tokens), a
    reference document (``str``; unit default ``"words"`` = the paper's
    ``casual_tokenize(unidecode(.))``; also ``"regex"``, ``"chars"``,
    ``"bytes"``), or a :class:`TinyIndex` (text given as ids). ``unique``:
    the paper's unique variant. ``floor``: spans are first found with this
    minimum length (the published pipeline's ``min_ngram``). ``ref_length``
    overrides the reference length used by the ``ref``/``total``
    normalisations (needed for an Index reference).
    """
    ids, ms, rl, unit = _match(text, reference, unit)
    return _coverage_from(ids, ms, n, floor, unique, ref_length if ref_length is not None else rl, unit)


def _creativity_from(ids: np.ndarray, ms: np.ndarray, lo: int, hi: int, floor: int, unique: bool,
                     ref_length: Optional[int]) -> Dict[str, Optional[float]]:
    tot = {k: 0.0 for k in NORMS}
    for n in range(int(lo), int(hi) + 1):
        flags, _ = _flags(ids, ms, n, floor, unique)
        g, r, t = _normalise(int(flags.sum()), len(ms), ref_length)
        tot["gen_length"] += g
        tot["ref_length"] = None if r is None else tot["ref_length"] + r  # type: ignore[operator]
        tot["total_length"] = None if t is None else tot["total_length"] + t  # type: ignore[operator]
    return tot


def creativity_index(text: Union[str, Sequence[int]], reference: Any, L: int = 2, H: int = 12, *,
                     unit: Optional[str] = None, unique: bool = False, floor: int = 1,
                     ref_length: Optional[int] = None) -> Dict[str, Optional[float]]:
    """The paper's modified creativity index: sum of :func:`coverage` for
    n = L..H (higher = more copying), as ``{"gen_length", "ref_length",
    "total_length"}`` (the last two None without a reference length)."""
    ids, ms, rl, unit = _match(text, reference, unit)
    return _creativity_from(ids, ms, L, H, floor, unique, ref_length if ref_length is not None else rl)


# --------------------------------------------------------- common substrings
def _unidecode_or_same(text: str) -> str:
    try:
        from unidecode import unidecode
    except ImportError:
        return text
    return unidecode(text)


def longest_common_substring(a: Union[str, Sequence[int]], b: Union[str, Sequence[int]], unit: str = "chars") -> int:
    """Length of the longest common contiguous run of ``a`` and ``b`` in
    ``unit`` (strings) or of two id sequences. Via matching statistics of ``a``
    against ``b`` as a tiny index: O(|a| log |b|)."""
    if isinstance(a, str) or isinstance(b, str):
        vocab = Vocab()
        (ia, ib), width = unit_ids([a, b], unit, vocab)  # type: ignore[list-item]
    else:
        ia, ib = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        vocab = Vocab()
        if len(ia) + len(ib):
            allv = vocab(list(ia.tolist()) + list(ib.tolist()))
            ia, ib = allv[:len(ia)], allv[len(ia):]
        width = 4
    if len(ia) == 0 or len(ib) == 0:
        return 0
    return int(TinyIndex(ib, width).matching_statistics(ia).max())


def longest_common_subsequence(a: Union[str, Sequence[Any]], b: Union[str, Sequence[Any]], unit: str = "words") -> int:
    """Length of the longest common (not necessarily contiguous) subsequence of
    ``a`` and ``b`` (strings cut into ``unit``s, or sequences). Bit-parallel
    (Allison-Dix / Crochemore et al.): O(|a| |b| / wordsize)."""
    if isinstance(a, str):
        a = tokenize_units(a, unit)
    if isinstance(b, str):
        b = tokenize_units(b, unit)
    a, b = list(a), list(b)
    if not a or not b:
        return 0
    if len(a) < len(b):
        a, b = b, a  # bits over the longer one
    masks: Dict[Any, int] = {}
    for i, x in enumerate(a):
        masks[x] = masks.get(x, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for y in b:
        u = v & masks.get(y, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


# ------------------------------------------------------------ ROC metrics
def aggregate(values: Sequence[float], how: str) -> float:
    """min / max / median / mean of the per-generation values of a candidate."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if len(v) == 0:
        return float("nan")
    return float({"min": np.min, "max": np.max, "median": np.median, "mean": np.mean}[how](v))


def roc_points(labels: Sequence[int], scores: Sequence[float], drop_intermediate: bool = True) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) exactly as ``sklearn.metrics.roc_curve``
    (thresholds at distinct scores, descending; collinear points dropped;
    a first point (0, 0) at threshold +inf)."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if len(y) != len(s) or len(y) == 0:
        raise ValueError("labels and scores must be non-empty and of the same length")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.flatnonzero(np.diff(s))
    idx = np.r_[distinct, len(y) - 1]
    tps = np.cumsum(y)[idx]
    fps = 1 + idx - tps
    thr = s[idx]
    if drop_intermediate and len(fps) > 2:
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    thr = np.r_[np.inf, thr]
    if fps[-1] == 0 or tps[-1] == 0:
        raise ValueError("need both member (1) and non-member (0) labels")
    return fps / fps[-1], tps / tps[-1], thr


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (ties count half), as sklearn's ``auc(roc_curve)``."""
    fpr, tpr, _ = roc_points(labels, scores, drop_intermediate=False)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def tpr_at_fpr(labels: Sequence[int], scores: Sequence[float], target: float) -> float:
    """TPR of the last point of the (sklearn, drop_intermediate) ROC curve with
    FPR <= ``target``; 0 if there is none (as the published code)."""
    fpr, tpr, _ = roc_points(labels, scores)
    ok = np.flatnonzero(fpr <= target)
    return float(tpr[ok[-1]]) if len(ok) else 0.0


# -------------------------------------------------------- membership scores
@dataclass
class MembershipResult:
    """``rows``: one dict per candidate: per-generation metric lists (keys as
    in the published code: ``coverages_gen_length``, ``..._unique``,
    ``creativities_*``, ``longest_substring_char``, ``longest_sublist_word``,
    ``lcs_word``, ``gen_text_length_char``, ``gen_text_length_word``) and their
    aggregates ``"{Agg}_{metric}"``; ``metrics``: ``{"{Agg}_{metric}":
    {"roc_auc", "tpr_at_0.1_fpr", ...}}`` when labels of both classes exist."""

    rows: List[Dict[str, Any]]
    metrics: Dict[str, Dict[str, float]]
    unit: str
    params: Dict[str, Any]


PER_GEN_METRICS = (
    [f"coverages_{k}" for k in NORMS] + [f"coverages_{k}_unique" for k in NORMS]
    + [f"creativities_{k}" for k in NORMS] + [f"creativities_{k}_unique" for k in NORMS]
    + ["longest_substring_char", "longest_sublist_word", "lcs_word", "gen_text_length_char", "gen_text_length_word"]
)


def _one_candidate(candidate: str, gens: Sequence[str], unit: str, min_ngram: int, lo: int, hi: int,
                   index: Any) -> Dict[str, List[Any]]:
    out: Dict[str, List[Any]] = {k: [] for k in PER_GEN_METRICS}
    vocab = Vocab()
    if index is not None:
        ref_ids = np.asarray(index.encode(candidate), dtype=np.int64)
        gen_ids = [np.asarray(index.encode(g), dtype=np.int64) for g in gens]
        ms_list = [index.longest_matches(g, with_occurrence=False).length for g in gen_ids]
        ref_len = len(ref_ids)
        word_ids = gen_ids
        word_ref = ref_ids
    else:
        all_ids, width = unit_ids([candidate] + list(gens), unit, vocab)
        ref_ids, gen_ids = all_ids[0], all_ids[1:]
        tiny = TinyIndex(ref_ids, width)
        ms_list = [tiny.matching_statistics(g) for g in gen_ids]
        ref_len = len(ref_ids)
        word_ids, word_ref = gen_ids, ref_ids
    # As published: the reference (only) is unidecoded for the character LCS
    # when unidecode is installed (it is, whenever the "words" unit is used).
    ref_chars = _unidecode_or_same(candidate)
    chars_ref = TinyIndex(np.fromiter((ord(c) for c in ref_chars), dtype=np.int64, count=len(ref_chars))) \
        if ref_chars else None
    for g, ids, ms, wids in zip(gens, gen_ids, ms_list, word_ids):
        ms = np.asarray(ms, dtype=np.int64)
        if len(ids) < min_ngram:  # published: too short -> no spans
            ms = np.zeros(len(ids), dtype=np.int64)
        for uq in (False, True):
            sfx = "_unique" if uq else ""
            c = _coverage_from(ids, ms, min_ngram, min_ngram, uq, ref_len, unit)
            out[f"coverages_gen_length{sfx}"].append(c.gen)
            out[f"coverages_ref_length{sfx}"].append(c.ref)
            out[f"coverages_total_length{sfx}"].append(c.total)
            cr = _creativity_from(ids, ms, lo, hi, min_ngram, uq, ref_len)
            for k in NORMS:
                out[f"creativities_{k}{sfx}"].append(cr[k])
        gch = np.fromiter((ord(c) for c in g), dtype=np.int64, count=len(g))
        out["longest_substring_char"].append(
            int(chars_ref.matching_statistics(gch).max()) if (chars_ref is not None and len(gch)) else 0)
        out["longest_sublist_word"].append(int(ms.max()) if len(ms) and len(ids) >= 1 else 0)
        out["lcs_word"].append(longest_common_subsequence(list(np.asarray(wids).tolist()),
                                                          list(np.asarray(word_ref).tolist())))
        out["gen_text_length_char"].append(len(g))
        out["gen_text_length_word"].append(len(ids))
    return out


def membership_scores(candidates: Sequence[str], generations: Sequence[Sequence[str]],
                      labels: Optional[Sequence[Optional[int]]] = None, *, min_ngram: int = 3,
                      creativity_range: Tuple[int, int] = (2, 12), unit: str = "words", index: Any = None,
                      fpr_thresholds: Iterable[float] = FPR_THRESHOLDS, progress: bool = False) -> MembershipResult:
    """The n-gram coverage attack's scores for each candidate.

    ``candidates[k]``: the candidate text (the reference the generations are
    compared with); ``generations[k]``: the M texts the target model generated
    from the candidate's prefix; ``labels[k]``: 1 member / 0 non-member / None.
    Each generation is matched against its own candidate (a tiny index), or
    against ``index`` (a corpus :class:`~infinigram.Index`; unit = its tokens)
    if given. ``min_ngram`` (default 3, the paper's) is the span threshold of
    ``coverages_*`` and the floor of ``creativities_*`` (sum over
    ``creativity_range``, default 2..12). See the module docstring.
    """
    if len(candidates) != len(generations):
        raise ValueError("candidates and generations must have the same length")
    if labels is not None and len(labels) != len(candidates):
        raise ValueError("labels must have one entry per candidate")
    used_unit = "tokens" if index is not None else unit
    lo, hi = creativity_range
    rows: List[Dict[str, Any]] = []
    it: Iterable[int] = range(len(candidates))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="mia", unit="cand")
    for k in it:
        per = _one_candidate(candidates[k], list(generations[k]), unit, int(min_ngram), lo, hi, index)
        row: Dict[str, Any] = {"index": k}
        if labels is not None:
            row["label"] = labels[k]
        row.update(per)
        for metric in PER_GEN_METRICS:
            for agg in AGGREGATES:
                row[f"{agg.capitalize()}_{metric}"] = aggregate(per[metric], agg)
        rows.append(row)
    metrics: Dict[str, Dict[str, float]] = {}
    if labels is not None:
        lab = [(i, int(l)) for i, l in enumerate(labels) if l is not None]
        ys = [l for _, l in lab]
        if 0 in ys and 1 in ys:
            for metric in PER_GEN_METRICS:
                for agg in AGGREGATES:
                    key = f"{agg.capitalize()}_{metric}"
                    sc = [rows[i][key] for i, _ in lab]
                    if any(x is None or x != x for x in sc):
                        continue
                    d = {"roc_auc": auroc(ys, sc)}
                    for t in fpr_thresholds:
                        d[f"tpr_at_{t * 100:.1f}_fpr"] = tpr_at_fpr(ys, sc, t)
                    metrics[key] = d
    params = {"min_ngram": int(min_ngram), "creativity_range": [int(lo), int(hi)], "unit": used_unit}
    return MembershipResult(rows, metrics, used_unit, params)
