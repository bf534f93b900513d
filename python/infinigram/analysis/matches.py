"""Results of matching statistics and the span arithmetic built on them.

Everything in :mod:`infinigram.analysis` is derived from one primitive, the
*matching statistics* of a text against a reference (an :class:`~infinigram.Index`
or a tiny in-memory index of one document): for every position ``i`` the length
``ms[i]`` of the longest ``text[i:i+ms[i]]`` that occurs in the reference.

Facts used throughout (``e[i] = i + ms[i]`` is the end of the match at ``i``):

* ``ms[i+1] >= ms[i] - 1``, so ``e`` is non-decreasing;
* a substring ``text[a:b]`` occurs iff ``ms[a] >= b - a``;
* the *maximal* matches (occurring spans contained in no other occurring span)
  are ``[i, e[i])`` for the ``i`` with ``ms[i] > 0`` and ``e[i] > e[i-1]``
  (``i == 0`` included);
* token ``j`` is covered by an occurring span of length ``>= n`` iff some
  ``i <= j`` has ``ms[i] >= n`` and ``e[i] > j``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

import numpy as np

__all__ = [
    "LongestMatches", "MaximalMatch", "maximal_starts", "covered_mask", "coverage_count",
    "window_hits",
]


@dataclass
class LongestMatches:
    """Matching statistics of a text (parallel arrays, one entry per token).

    ``length[i]``: longest ``tokens[i:i+length[i]]`` occurring in the corpus
    (0 if ``tokens[i]`` never occurs); ``count[i]``: its number of occurrences
    (0 when ``length[i] == 0``); ``doc_ix[i]``/``offset[i]``: one occurrence
    (global document, token offset in its text; -1 when ``length[i] == 0``).
    """

    tokens: np.ndarray
    length: np.ndarray
    count: np.ndarray
    doc_ix: np.ndarray
    offset: np.ndarray

    def __len__(self) -> int:
        return len(self.length)

    @property
    def longest(self) -> int:
        """The longest match anywhere in the text (0 for an empty text)."""
        return int(self.length.max()) if len(self.length) else 0


@dataclass
class MaximalMatch:
    """A maximal span ``tokens[start:end]`` of the text that occurs in the
    corpus (not contained in a longer occurring span), with its count and up to
    ``max_docs`` occurrences (global document index, token offset)."""

    start: int
    end: int
    count: int
    text: str = ""
    doc_ix: List[int] = field(default_factory=list)
    offset: List[int] = field(default_factory=list)

    @property
    def length(self) -> int:
        return self.end - self.start

    def as_dict(self) -> Dict[str, Any]:
        return {"start": self.start, "end": self.end, "length": self.length, "count": self.count,
                "text": self.text, "doc_ix": list(self.doc_ix), "offset": list(self.offset)}


def maximal_starts(ms: np.ndarray, min_len: int = 1) -> np.ndarray:
    """Start positions of the maximal matches of length ``>= min_len``, increasing."""
    ms = np.asarray(ms, dtype=np.int64)
    if len(ms) == 0:
        return np.zeros(0, dtype=np.int64)
    e = np.arange(len(ms), dtype=np.int64) + ms
    left = np.empty_like(e)
    left[0] = -1
    left[1:] = e[:-1]
    keep = (ms > 0) & (e > left) & (ms >= max(1, int(min_len)))
    return np.flatnonzero(keep).astype(np.int64)


def covered_mask(ms: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of the tokens covered by an occurring span of length ``>= n`` (n >= 1)."""
    ms = np.asarray(ms, dtype=np.int64)
    if len(ms) == 0:
        return np.zeros(0, dtype=bool)
    idx = np.arange(len(ms), dtype=np.int64)
    e = np.where(ms >= max(1, int(n)), idx + ms, 0)
    return np.maximum.accumulate(e) > idx


def coverage_count(ms: np.ndarray, n: int) -> int:
    """Number of tokens covered by occurring spans of length ``>= n``."""
    return int(covered_mask(ms, n).sum())


def window_hits(ms: np.ndarray, w: int) -> tuple:
    """(windows occurring, windows in total) for the length-``w`` windows of a
    segment. A segment shorter than ``w`` is one window (the whole segment)."""
    ms = np.asarray(ms, dtype=np.int64)
    m = len(ms)
    if m == 0:
        return 0, 0
    if m < w:
        return int(ms[0] >= m), 1
    return int((ms[: m - w + 1] >= w).sum()), m - w + 1
