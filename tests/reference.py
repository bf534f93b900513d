"""Brute-force reference implementations the tests compare infinigram against.

Nothing here uses infinigram: a corpus is a list of documents, each a list (or
1-d array) of token ids, plus each document's metadata. Every answer is
computed by direct scanning, so it is slow but obviously right.

- :class:`Reference`: ``count``, ``locate``, ``window``, documents.
- :func:`naive_suffix_array`: sorted suffixes of a token sequence (a suffix
  that is a prefix of another sorts first, i.e. end-of-text is smallest;
  tokens compare by value, so the separator — the all-ones value — is largest).
- :func:`overlapping_count`: overlapping occurrences of a needle in a
  ``str``/``bytes``/list (``str.count`` is non-overlapping: never use it).
- :func:`check_sorted_suffixes`: vectorised check that an array is a
  permutation listing suffixes in increasing order (for large inputs).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np


def overlapping_count(hay: Any, needle: Any) -> int:
    """Occurrences of ``needle`` in ``hay`` counting overlaps (``"aa"`` in ``"aaa"`` → 2).

    ``hay``/``needle``: both ``str``, both ``bytes``, or both sequences of ints.
    An empty needle occurs ``len(hay)`` times (one per token, as infini-gram
    counts the empty query).
    """
    if len(needle) == 0:
        return len(hay)
    if isinstance(hay, (str, bytes)):
        n, i = 0, hay.find(needle)
        while i != -1:
            n += 1
            i = hay.find(needle, i + 1)
        return n
    return len(_positions(np.asarray(hay, dtype=np.int64), np.asarray(needle, dtype=np.int64)))


def _positions(doc: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Start offsets ``i`` with ``doc[i:i+len(q)] == q`` (len(q) >= 1)."""
    m = len(q)
    if m > len(doc):
        return np.zeros(0, dtype=np.int64)
    cand = np.flatnonzero(doc[: len(doc) - m + 1] == q[0])
    for j in range(1, m):
        if len(cand) == 0:
            break
        cand = cand[doc[cand + j] == q[j]]
    return cand.astype(np.int64)


def slow_positions(doc: Sequence[int], q: Sequence[int]) -> List[int]:
    """The same as :func:`_positions` in plain Python (to check the reference itself)."""
    doc, q = list(doc), list(q)
    return [i for i in range(len(doc) - len(q) + 1) if doc[i:i + len(q)] == q]


class Reference:
    """A corpus answered by scanning every document.

    ``docs``: token-id sequences; ``metadata``: one dict per document (the
    input record minus its text field); ``texts``: optional original texts.
    """

    def __init__(self, docs: Iterable[Sequence[int]], metadata: Optional[List[Dict[str, Any]]] = None,
                 texts: Optional[List[str]] = None) -> None:
        self.docs: List[np.ndarray] = [np.asarray(d, dtype=np.int64).reshape(-1) for d in docs]
        self.metadata = metadata if metadata is not None else [{} for _ in self.docs]
        self.texts = texts
        assert len(self.metadata) == len(self.docs)

    @property
    def n_docs(self) -> int:
        return len(self.docs)

    @property
    def n_tokens(self) -> int:
        return int(sum(len(d) for d in self.docs))

    def locate(self, q: Sequence[int]) -> Set[Tuple[int, int]]:
        """Every ``(doc_ix, offset)`` where the document's tokens at offset start with q.

        Matches never span documents. The empty query matches at every token.
        """
        q = np.asarray(q, dtype=np.int64).reshape(-1)
        out: Set[Tuple[int, int]] = set()
        for i, d in enumerate(self.docs):
            if len(q) == 0:
                out.update((i, o) for o in range(len(d)))
            else:
                out.update((i, int(o)) for o in _positions(d, q))
        return out

    def count(self, q: Sequence[int]) -> int:
        q = np.asarray(q, dtype=np.int64).reshape(-1)
        if len(q) == 0:
            return self.n_tokens
        return int(sum(len(_positions(d, q)) for d in self.docs))

    def window(self, doc_ix: int, offset: int, length: int, context: int) -> Tuple[int, int, List[int]]:
        """``(start, end, tokens)`` of the span ±context, clipped to the document."""
        d = self.docs[doc_ix]
        start = max(0, offset - context)
        end = min(len(d), offset + length + context)
        return start, end, d[start:end].tolist()

    def all_positions(self) -> List[Tuple[int, int]]:
        return [(i, o) for i, d in enumerate(self.docs) for o in range(len(d))]

    def boundary_ngrams(self, left: int, right: int) -> List[List[int]]:
        """For each pair of consecutive non-trivial documents: the last ``left``
        tokens of one followed by the first ``right`` tokens of the next (the
        n-grams a buggy index could find across the separator)."""
        out = []
        for a, b in zip(self.docs, self.docs[1:]):
            if len(a) >= left and len(b) >= right:
                out.append(a[len(a) - left:].tolist() + b[:right].tolist())
        return out


def naive_suffix_array(tokens: Sequence[int]) -> List[int]:
    """Positions sorted by their suffix (O(n^2 log n): small inputs only)."""
    t = [int(x) for x in tokens]
    return sorted(range(len(t)), key=lambda i: t[i:])


def check_sorted_suffixes(tokens: np.ndarray, sa: np.ndarray, k: int = 32) -> None:
    """Assert ``sa`` is a permutation of ``range(len(tokens))`` with
    ``suffix(sa[i]) < suffix(sa[i+1])`` for every i.

    Compares the first ``k`` tokens of all adjacent pairs at once (numpy),
    then resolves pairs equal on those ``k`` tokens one by one, doubling.
    """
    n = len(tokens)
    sa = np.asarray(sa, dtype=np.int64)
    assert sa.shape == (n,), f"SA has {sa.shape} entries, expected {n}"
    if n == 0:
        return
    assert sa.min() >= 0 and sa.max() < n, "SA entry out of range"
    assert len(np.unique(sa)) == n, "SA is not a permutation"
    t = np.concatenate([np.asarray(tokens, dtype=np.int64), np.full(k, -1, dtype=np.int64)])
    a, b = sa[:-1], sa[1:]
    undecided = np.ones(len(a), dtype=bool)
    for j in range(k):
        # positions past the end read -1 (end of text is smallest); once one
        # side is past the end the pair is decided since a != b
        ta, tb = t[a + j], t[b + j]
        bad = undecided & (ta > tb)
        assert not bad.any(), f"suffixes out of order at ranks {np.flatnonzero(bad)[:5].tolist()}"
        undecided &= ta == tb
        if not undecided.any():
            return
    full = np.asarray(tokens, dtype=np.int64)
    for r in np.flatnonzero(undecided).tolist():
        x, y = int(a[r]), int(b[r])
        step = k
        i = k
        while True:
            sx, sy = full[x + i:x + i + step], full[y + i:y + i + step]
            m = min(len(sx), len(sy))
            ne = np.flatnonzero(sx[:m] != sy[:m])
            if len(ne):
                assert sx[ne[0]] < sy[ne[0]], f"suffixes out of order at rank {r}"
                break
            if len(sx) != len(sy) or m < step:
                assert len(sx) < len(sy), f"suffixes out of order at rank {r} (longer suffix first)"
                break
            i += step
            step *= 2
