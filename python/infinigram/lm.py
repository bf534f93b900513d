"""Language-model queries over an :class:`~infinigram.index.Index`: n-gram and
∞-gram probabilities, next-token distributions, whole-sequence scoring and
boolean (CNF) search. ``Index`` exposes all of these as methods; the logic
lives here and in the C++ core (``csrc/lm.hpp``, ``csrc/cnf.hpp``).

Semantics (full text in ``docs/QUERIES.md``):

* Every count is summed over shards.
* An occurrence of a prompt *has a next token* unless it ends a document (the
  next position is a separator or the end of the shard). Such *end
  occurrences* are reported as ``end_count`` and are excluded from every
  denominator: ``prob = cont_count / (prompt_count - end_count)``. So
  ``prob(p, t) == ntd(p)[t].prob`` and an exact distribution sums to 1. The
  empty prompt gives the unigram distribution (denominator ``n_tokens``).
* The ∞-gram context of a prompt is its longest suffix whose denominator is
  non-zero over the union of shards (``suffix_len``; 0 = unigram).
* Probabilities are undefined (NaN) when the denominator is 0; log
  probabilities are natural logs, ``-inf`` for probability 0.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core

Query = Union[str, Sequence[int], np.ndarray]
Token = Union[int, str]

DEFAULT_MAX_SUPPORT = 1000
DEFAULT_MAX_CLAUSE_FREQ = 50000
DEFAULT_MAX_DIFF_TOKENS = 100


@dataclass
class ProbResult:
    """``prob`` = ``cont_count / (prompt_count - end_count)`` (NaN if that is 0).

    ``prompt_count``: occurrences of the context (``n_tokens`` for the empty
    one); ``cont_count``: occurrences of context + next token; ``end_count``:
    occurrences of the context that end a document; ``suffix_len``: length of
    the context used (the whole prompt for ``prob``, the ∞-gram suffix for
    ``infgram_prob``).
    """

    prob: float
    prompt_count: int
    cont_count: int
    end_count: int = 0
    suffix_len: int = 0

    @property
    def denom(self) -> int:
        """Occurrences of the context that have a next token."""
        return self.prompt_count - self.end_count


@dataclass
class NtdResult:
    """Next-token distribution: ``dist[token] = (count, prob)``.

    Behaves like that dict (``res[t]``, ``t in res``, ``len``, ``items()``).
    ``tokens``/``counts``: the same as ascending numpy arrays. When
    ``approx`` is true, counts are unbiased estimates from a systematic sample
    (every ``unit``-th suffix-array rank from a random offset) and
    ``prob = count / denom`` with the exact ``denom`` (so the probs are
    unbiased too and sum to 1 only approximately).
    """

    dist: Dict[int, Tuple[int, float]]
    prompt_count: int
    end_count: int
    suffix_len: int
    approx: bool
    unit: int

    @property
    def denom(self) -> int:
        return self.prompt_count - self.end_count

    @property
    def tokens(self) -> np.ndarray:
        """Next tokens, ascending (int64)."""
        return np.fromiter(self.dist.keys(), dtype=np.int64, count=len(self.dist))

    @property
    def counts(self) -> np.ndarray:
        """Their counts (estimates if ``approx``), aligned with :attr:`tokens`."""
        return np.fromiter((c for c, _ in self.dist.values()), dtype=np.int64, count=len(self.dist))

    def __getitem__(self, token: int) -> Tuple[int, float]:
        return self.dist[token]

    def __contains__(self, token: object) -> bool:
        return token in self.dist

    def __iter__(self) -> Iterator[int]:
        return iter(self.dist)

    def __len__(self) -> int:
        return len(self.dist)

    def items(self):
        return self.dist.items()

    def get(self, token: int, default: Any = None) -> Any:
        return self.dist.get(token, default)


@dataclass
class SequenceScores:
    """Per-token scores of a sequence ``x``: for every position ``i``,
    ``logprobs[i] = log P(x[i] | context)`` (natural log; ``-inf`` if the
    context was seen but never followed by ``x[i]``; NaN if the context has no
    next token at all, possible only for fixed-n scoring), ``suffix_len[i]`` =
    the context length, ``cont_count[i]`` = count(context + x[i]),
    ``denom[i]`` = occurrences of the context with a next token."""

    logprobs: np.ndarray
    suffix_len: np.ndarray
    cont_count: np.ndarray
    denom: np.ndarray

    def __len__(self) -> int:
        return len(self.logprobs)


@dataclass
class CnfResult:
    """Matches of a CNF query (see :func:`find_cnf`).

    ``count``: number of matches (an unbiased estimate if ``approx``).
    Per stored match (parallel arrays): ``doc_ix``, ``anchor`` (offset of the
    anchor clause's occurrence in the document's text) and ``start``/``end``
    (the token span covering the anchor and, for each other clause, its
    occurrence nearest to the anchor). ``anchor_total``: occurrences of the
    anchor (rarest) clause; ``anchor_tested``: how many were tested.
    """

    count: int
    approx: bool
    doc_ix: np.ndarray
    start: np.ndarray
    end: np.ndarray
    anchor: np.ndarray
    anchor_total: int = 0
    anchor_tested: int = 0
    complete: bool = True

    def __len__(self) -> int:
        return len(self.doc_ix)


# ---------------------------------------------------------------- helpers
def _seed(seed: Optional[int]) -> int:
    if seed is None:
        return random.getrandbits(64)  # cheap; seeded from os.urandom at import
    return int(seed) & 0xFFFFFFFFFFFFFFFF


def _token(index: Any, t: Token) -> int:
    if isinstance(t, str):
        ids = index.encode(t)
        if len(ids) != 1:
            raise ValueError(f"next token {t!r} encodes to {len(ids)} tokens, expected exactly 1")
        return int(ids[0])
    t = int(t)
    if not -(2**63) <= t < 2**63:  # as for query ids (the binding would raise TypeError)
        raise ValueError(f"token id {t} does not fit in 64 bits")
    return t


def _ids(index: Any, q: Query) -> Any:
    if isinstance(q, str):
        return index.encode(q)
    return q


def _exact_mode(exact: Optional[bool]) -> int:
    return 0 if exact is None else (1 if exact else 2)


# ---------------------------------------------------------------- n-gram / ∞-gram
def prob(index: Any, prompt: Query, next_token: Token) -> ProbResult:
    """n-gram probability of ``next_token`` after ``prompt``:
    ``cont_count / (prompt_count - end_count)``; NaN with ``prompt_count == 0``
    when the prompt never occurs (or NaN with ``prompt_count == end_count``
    when it occurs only at document ends). O(m log n) per shard."""
    p, pc, cc, ec, sl = _core.lm_prob(index._engine, _ids(index, prompt), _token(index, next_token), False)
    return ProbResult(p, pc, cc, ec, sl)


def infgram_prob(index: Any, prompt: Query, next_token: Token) -> ProbResult:
    """∞-gram probability: :func:`prob` with the longest suffix of ``prompt``
    that has a next token somewhere in the corpus (``suffix_len``). The suffix
    is found by galloping + binary search on its length (O(log m) searches)."""
    p, pc, cc, ec, sl = _core.lm_prob(index._engine, _ids(index, prompt), _token(index, next_token), True)
    return ProbResult(p, pc, cc, ec, sl)


def ntd(index: Any, prompt: Query, max_support: int = DEFAULT_MAX_SUPPORT, exact: Optional[bool] = None,
        seed: Optional[int] = None) -> NtdResult:
    """Next-token distribution after ``prompt`` (end-of-document occurrences
    excluded, reported as ``end_count``).

    Distinct next tokens are contiguous blocks of the prompt's suffix-array
    range and are enumerated by galloping, O(distinct × log(count)) — not
    O(count). ``exact=None`` (default): exact whenever every shard has at most
    ``max_support`` distinct next tokens (in particular whenever the prompt
    occurs at most ``max_support`` times); otherwise sampled (``approx=True``):
    unit = the smallest power of two with ceil(count / unit) <= max_support,
    one uniform random offset per shard (``seed``), every unit-th rank read,
    each block's count estimated as unit × sampled ranks (unbiased).
    ``exact=True`` always enumerates exactly; ``exact=False`` always samples.
    """
    if max_support <= 0:
        raise ValueError("max_support must be > 0")
    return NtdResult(*_core.lm_ntd(index._engine, index.encode(prompt) if isinstance(prompt, str) else prompt,
                                   max_support, exact, None if seed is None else _seed(seed), False))


def infgram_ntd(index: Any, prompt: Query, max_support: int = DEFAULT_MAX_SUPPORT, exact: Optional[bool] = None,
                seed: Optional[int] = None) -> NtdResult:
    """:func:`ntd` after the ∞-gram suffix of ``prompt`` (``suffix_len``)."""
    if max_support <= 0:
        raise ValueError("max_support must be > 0")
    return NtdResult(*_core.lm_ntd(index._engine, index.encode(prompt) if isinstance(prompt, str) else prompt,
                                   max_support, exact, None if seed is None else _seed(seed), True))


@dataclass
class NtdBatch:
    """Next-token distributions of many prompts as flat arrays: prompt ``i``'s
    tokens (ascending) and counts are ``tokens[offsets[i]:offsets[i+1]]`` and
    ``counts[...]``; ``prompt_count``, ``end_count``, ``suffix_len``,
    ``approx``, ``unit`` have one entry per prompt (as in :class:`NtdResult`).
    ``batch[i]`` gives prompt ``i``'s :class:`NtdResult`."""

    offsets: np.ndarray
    tokens: np.ndarray
    counts: np.ndarray
    prompt_count: np.ndarray
    end_count: np.ndarray
    suffix_len: np.ndarray
    approx: np.ndarray
    unit: np.ndarray

    @property
    def denom(self) -> np.ndarray:
        return self.prompt_count - self.end_count

    def __len__(self) -> int:
        return len(self.prompt_count)

    def __getitem__(self, i: int) -> NtdResult:
        if not -len(self) <= i < len(self):
            raise IndexError(f"prompt {i} of {len(self)}")
        i %= len(self)
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        den = int(self.denom[i])
        dist = {int(t): (int(c), int(c) / den) for t, c in zip(self.tokens[a:b].tolist(), self.counts[a:b].tolist())}
        return NtdResult(dist, int(self.prompt_count[i]), int(self.end_count[i]), int(self.suffix_len[i]),
                         bool(self.approx[i]), int(self.unit[i]))


def _ntd_many(index: Any, prompts: Any, max_support: int, exact: Optional[bool], seed: Optional[int],
              n_threads: int, infgram: bool) -> NtdBatch:
    if max_support <= 0:
        raise ValueError("max_support must be > 0")
    flat, offsets = index._pack(prompts)
    return NtdBatch(*_core.lm_ntd_many(index._engine, flat, offsets, int(max_support), _exact_mode(exact),
                                       _seed(seed), infgram, int(n_threads)))


def ntd_many(index: Any, prompts: Any, max_support: int = DEFAULT_MAX_SUPPORT, exact: Optional[bool] = None,
             seed: Optional[int] = None, n_threads: int = 0) -> NtdBatch:
    """Batched :func:`ntd`: the distributions after many prompts (a list of
    queries, or a packed ``(flat_ids, offsets)`` pair), computed in C++ with
    the GIL released on ``n_threads`` threads (0 = all cores), returned as
    flat arrays (:class:`NtdBatch`). Same results as calling :func:`ntd` on
    each prompt; when sampling, prompt ``i`` uses a seed derived from
    ``seed`` and ``i`` (so results do not depend on the thread count)."""
    return _ntd_many(index, prompts, max_support, exact, seed, n_threads, False)


def infgram_ntd_many(index: Any, prompts: Any, max_support: int = DEFAULT_MAX_SUPPORT,
                     exact: Optional[bool] = None, seed: Optional[int] = None, n_threads: int = 0) -> NtdBatch:
    """Batched :func:`infgram_ntd` (see :func:`ntd_many`)."""
    return _ntd_many(index, prompts, max_support, exact, seed, n_threads, True)


def _prob_many(index: Any, prompts: Sequence[Query], next_tokens: Sequence[Token], infgram: bool,
               n_threads: int) -> Dict[str, np.ndarray]:
    flat, offsets = index._pack(prompts)
    nxt = np.asarray([_token(index, t) for t in next_tokens], dtype=np.int64)
    if len(nxt) != len(offsets) - 1:
        raise ValueError(f"{len(offsets) - 1} prompts but {len(nxt)} next tokens")
    p, pc, cc, ec, sl = _core.lm_prob_many(index._engine, flat, offsets, nxt, infgram, int(n_threads))
    return {"prob": p, "prompt_count": pc, "cont_count": cc, "end_count": ec, "suffix_len": sl}


def prob_many(index: Any, prompts: Sequence[Query], next_tokens: Sequence[Token], n_threads: int = 0
              ) -> Dict[str, np.ndarray]:
    """Batched :func:`prob`: a dict of arrays ``prob, prompt_count, cont_count,
    end_count, suffix_len``. GIL released, ``n_threads`` threads (0 = all)."""
    return _prob_many(index, prompts, next_tokens, False, n_threads)


def infgram_prob_many(index: Any, prompts: Sequence[Query], next_tokens: Sequence[Token], n_threads: int = 0
                      ) -> Dict[str, np.ndarray]:
    """Batched :func:`infgram_prob` (same arrays as :func:`prob_many`)."""
    return _prob_many(index, prompts, next_tokens, True, n_threads)


# ---------------------------------------------------------------- sequence scoring
def _split(flat_out: Tuple[np.ndarray, ...], offsets: np.ndarray) -> List[SequenceScores]:
    lp, sl, cc, dn = flat_out
    out = []
    for i in range(len(offsets) - 1):
        a, b = int(offsets[i]), int(offsets[i + 1])
        out.append(SequenceScores(lp[a:b], sl[a:b], cc[a:b], dn[a:b]))
    return out


def _score_many(index: Any, seqs: Sequence[Query], n: int, n_threads: int) -> List[SequenceScores]:
    flat, offsets = index._pack(seqs)
    return _split(_core.lm_score_many(index._engine, flat, offsets, int(n), int(n_threads)), offsets)


def infgram_logprobs(index: Any, tokens: Query, n_threads: int = 0) -> SequenceScores:
    """∞-gram log-probability (natural log) of every token of ``tokens`` given
    all the tokens before it, with the ∞-gram suffix length used.

    Computed incrementally in C++ (a matching-statistics walk: the context
    grows by one token while it still has a next token in the corpus, else it
    shrinks by galloping down), so the cost is O(1) searches per token
    amortized; long texts are cut into chunks scored on ``n_threads`` threads
    (results do not depend on the chunking)."""
    return _score_many(index, [tokens], 0, n_threads)[0]


def ngram_logprobs(index: Any, tokens: Query, n: int, n_threads: int = 0) -> SequenceScores:
    """n-gram log-probabilities: the context of token ``i`` is the previous
    ``min(n - 1, i)`` tokens (``suffix_len``); NaN where that context has no
    next token in the corpus."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return _score_many(index, [tokens], n, n_threads)[0]


def infgram_logprobs_many(index: Any, seqs: Sequence[Query], n_threads: int = 0) -> List[SequenceScores]:
    """:func:`infgram_logprobs` of many sequences at once, on all cores."""
    return _score_many(index, seqs, 0, n_threads)


def ngram_logprobs_many(index: Any, seqs: Sequence[Query], n: int, n_threads: int = 0) -> List[SequenceScores]:
    """:func:`ngram_logprobs` of many sequences at once, on all cores."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return _score_many(index, seqs, n, n_threads)


# ---------------------------------------------------------------- CNF
def _cnf_ids(index: Any, cnf: Sequence[Any]) -> List[List[Any]]:
    if isinstance(cnf, str) or not isinstance(cnf, (list, tuple)) or len(cnf) == 0:
        raise ValueError("cnf must be a non-empty list of clauses, each a non-empty list of n-grams "
                         "(strings or token-id lists)")
    out = []
    for clause in cnf:
        if isinstance(clause, str):
            clause = [clause]
        if not isinstance(clause, (list, tuple)) or len(clause) == 0:
            raise ValueError("each CNF clause must be a non-empty list of n-grams (strings or token-id lists)")
        terms = []
        for t in clause:
            if isinstance(t, (int, np.integer)):
                raise ValueError("a CNF clause is a list of n-grams; wrap a token-id list in another list")
            ids = _ids(index, t)
            if len(ids) == 0:
                raise ValueError("a CNF n-gram must not be empty")
            terms.append(list(ids) if not isinstance(ids, np.ndarray) else ids.astype(np.int64))
        out.append(terms)
    return out


def _cnf(index: Any, cnf: Sequence[Any], max_clause_freq: int, max_diff_tokens: int, limit: int,
         stop: bool, seed: Optional[int]) -> CnfResult:
    if max_clause_freq <= 0 or max_diff_tokens < 0:
        raise ValueError("max_clause_freq must be > 0 and max_diff_tokens >= 0")
    if limit < 0:
        raise ValueError("limit must be >= 0")
    if max(max_clause_freq, max_diff_tokens, limit) >= 2**63:
        raise ValueError("max_clause_freq, max_diff_tokens and limit must be below 2**63")
    count, approx, complete, at, tested, m = _core.cnf_evaluate(
        index._engine, _cnf_ids(index, cnf), int(max_clause_freq), int(max_diff_tokens), int(limit), stop,
        _seed(seed))
    return CnfResult(int(count), bool(approx), m[:, 1].copy(), m[:, 2].copy(), m[:, 3].copy(), m[:, 4].copy(),
                     int(at), int(tested), bool(complete))


def count_cnf(index: Any, cnf: Sequence[Any], max_clause_freq: int = DEFAULT_MAX_CLAUSE_FREQ,
              max_diff_tokens: int = DEFAULT_MAX_DIFF_TOKENS, seed: Optional[int] = None) -> Tuple[int, bool]:
    """``(count, approx)`` of a CNF query (see :func:`find_cnf`)."""
    r = _cnf(index, cnf, max_clause_freq, max_diff_tokens, 0, False, seed)
    return r.count, r.approx


def find_cnf(index: Any, cnf: Sequence[Any], max_clause_freq: int = DEFAULT_MAX_CLAUSE_FREQ,
             max_diff_tokens: int = DEFAULT_MAX_DIFF_TOKENS, limit: int = 1000,
             seed: Optional[int] = None) -> CnfResult:
    """Boolean search. ``cnf`` = AND of OR-clauses, each a list of n-grams
    (strings or token-id lists), e.g. ``[["deep learning", "neural network"],
    ["GPU"]]``.

    The anchor is the clause with the fewest occurrences (an OR-clause's
    occurrences: those of each of its n-grams, added up). A match is an
    anchor occurrence such that every other clause occurs in the same
    document starting within ``max_diff_tokens`` tokens of it. ``count`` =
    matches; when the anchor clause occurs more than ``max_clause_freq`` times,
    a uniform random sample (without replacement) of ``max_clause_freq`` of its
    occurrences is tested and ``count`` = matches × total / sampled
    (``approx=True``, unbiased). Up to ``limit`` matches are returned, in
    shard then suffix-array order of the anchor."""
    return _cnf(index, cnf, max_clause_freq, max_diff_tokens, int(limit), False, seed)


def search_docs_cnf(index: Any, cnf: Sequence[Any], maxnum: int = 10, context: int = 50,
                    max_clause_freq: int = DEFAULT_MAX_CLAUSE_FREQ, max_diff_tokens: int = DEFAULT_MAX_DIFF_TOKENS,
                    seed: Optional[int] = None) -> List[Any]:
    """Up to ``maxnum`` CNF matches as :class:`~infinigram.index.Match` windows
    (the match span plus ``context`` tokens on each side); stops scanning as
    soon as ``maxnum`` matches are found."""
    if maxnum <= 0:
        return []
    r = _cnf(index, cnf, max_clause_freq, max_diff_tokens, int(maxnum), True, seed)
    return [index.window(int(d), int(s), int(e - s), context)
            for d, s, e in zip(r.doc_ix.tolist(), r.start.tolist(), r.end.tolist())]
