"""SEAL retrieval (Bevilacqua et al., 2022, "Autoregressive Search Engines:
Generating Substrings as Document Identifiers", arXiv 2204.10628): a
language model generates corpus n-grams for a query under
:class:`~infinigram.constrained.CorpusConstraint`; each n-gram is weighted
by its model probability against its corpus frequency, and documents are
ranked by the intersective aggregation of the non-overlapping n-grams they
contain. Formula and source: ``docs/QUERIES.md`` ("SEAL retrieval").

* n-gram weight: ``w(n) = max(0, log(P(n|q) (1 - P(n)) / (P(n) (1 - P(n|q)))))``
  with ``P(n|q)`` the model's probability of the n-gram's tokens after the
  query prompt and ``P(n) = (count(n) + smoothing) / (n_tokens + smoothing)``.
* document score: ``W(d) = sum_{n in K(d)} w(n)^alpha * cover(n, K(d))``,
  ``K(d)`` the n-grams matched in ``d`` taken greedily by weight, an
  occurrence kept only where it overlaps no kept one, each n-gram counted
  once; ``cover(n) = 1 - beta + beta * |set(n) - C| / |set(n)|``, ``C`` the
  tokens of the n-grams counted before it in ``d``.

Costs: generation O(max_new_tokens) beam-search steps (num_beams rows);
scoring one forward pass over the beams; candidates: up to
``max_occurrences`` locations per n-gram; full scoring O(doc length ×
n-grams) per candidate document (at most ``max_docs`` of them).
torch and transformers are imported lazily.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

__all__ = ["SealResult", "NGram", "search", "ngram_weight", "score_ngrams", "aggregate", "generate_ngrams",
           "DEFAULT_PROMPT"]

DEFAULT_PROMPT = "Quote a sentence from the documentation that answers this question: {query}"
ALPHA, BETA, SMOOTHING = 2.0, 0.8, 5.0  # SEAL's defaults (score_exponent, beta, smoothing)


@dataclass
class NGram:
    """A generated n-gram: ``tokens``, ``text``, ``logprob`` (model log P(n|q)),
    ``count`` (corpus occurrences), ``weight`` (w(n), before the exponent)."""

    tokens: Tuple[int, ...]
    text: str
    logprob: float
    count: int
    weight: float


@dataclass
class SealResult:
    """A retrieved document: ``doc_ix``, ``score`` W(d), ``metadata``, ``text``,
    ``ngrams`` [(tokens, contribution, [(start, end) token spans in the doc])]
    in the order they were counted, ``highlighted`` (the text with every kept
    n-gram occurrence wrapped in ``[[ ]]``)."""

    doc_ix: int
    score: float
    metadata: Dict[str, Any]
    text: str
    ngrams: List[Tuple[Tuple[int, ...], float, List[Tuple[int, int]]]] = field(default_factory=list)
    highlighted: str = ""


def ngram_weight(logprob: float, count: int, n_tokens: int, smoothing: float = SMOOTHING) -> float:
    """SEAL's n-gram weight (before the exponent): the log odds ratio of the
    model's probability against the corpus frequency, clipped at 0. 0 for an
    n-gram absent from the corpus. O(1)."""
    if count <= 0:
        return 0.0
    sr = min(float(logprob), -1e-10)  # log P(n|q) < 0 (SEAL subtracts 1e-10)
    snr = math.log((count + smoothing) / (n_tokens + smoothing))
    w = (sr + math.log1p(-math.exp(snr))) - (snr + math.log1p(-math.exp(sr)))
    return max(w, 0.0)


def score_ngrams(index: Any, tokenizer: Any, ngrams: Dict[Tuple[int, ...], float],
                 smoothing: float = SMOOTHING) -> List[NGram]:
    """The weights of n-grams given their model log-probabilities
    (``{tokens: logprob}``), counts batched (``count_many``)."""
    keys = list(ngrams)
    counts = index.count_many([list(k) for k in keys]) if keys else np.zeros(0, np.int64)
    out = []
    for k, c in zip(keys, counts.tolist()):
        out.append(NGram(k, tokenizer.decode(list(k)) if tokenizer is not None else "", float(ngrams[k]), int(c),
                         ngram_weight(ngrams[k], int(c), index.n_tokens, smoothing)))
    return out


def _find_all(doc: np.ndarray, q: Sequence[int]) -> np.ndarray:
    m = len(q)
    if m == 0 or m > len(doc):
        return np.zeros(0, np.int64)
    cand = np.flatnonzero(doc[: len(doc) - m + 1] == q[0])
    for j in range(1, m):
        cand = cand[doc[cand + j] == q[j]]
    return cand


def _doc_score(doc: np.ndarray, weighted: List[Tuple[Tuple[int, ...], float]], alpha: float,
               beta: float) -> Tuple[float, List[Tuple[Tuple[int, ...], float, List[Tuple[int, int]]]]]:
    """W(d) of one document's tokens: matches taken by weight (then longer,
    then token order, then position), kept where free, each n-gram counted
    once, with the coverage discount."""
    matches = []
    for ng, w in weighted:
        for p in _find_all(doc, ng).tolist():
            matches.append((-w, -len(ng), ng, p))
    matches.sort()
    free = np.ones(len(doc), dtype=bool)
    covered: set = set()
    kept: Dict[Tuple[int, ...], List[Any]] = {}
    order: List[Tuple[int, ...]] = []
    total = 0.0
    for negw, _, ng, p in matches:
        if not free[p:p + len(ng)].all():
            continue
        if ng not in kept:
            s = set(ng)
            contrib = (-negw) ** alpha * (1.0 - beta + beta * len(s - covered) / len(s))
            if contrib <= 0.0:
                continue
            kept[ng] = [contrib, []]
            order.append(ng)
            covered |= s
            total += contrib
        kept[ng][1].append((p, p + len(ng)))
        free[p:p + len(ng)] = False
    return total, [(ng, kept[ng][0], sorted(kept[ng][1])) for ng in order]


def aggregate(index: Any, ngrams: Sequence[NGram], k: int = 10, alpha: float = ALPHA, beta: float = BETA,
              max_occurrences: int = 1500, max_docs: int = 200, tokenizer: Any = None) -> List[SealResult]:
    """Ranks documents by the intersective score of the n-grams (weights > 0).

    Candidates: the documents of up to ``max_occurrences`` occurrences of
    every n-gram occurring at most that often (SEAL's "rare" n-grams; more
    frequent ones only score documents found otherwise), first ranked by the
    sum of their n-grams' ``w^alpha``; the best ``max_docs`` are scored in
    full (:func:`_doc_score`) and the top ``k`` returned, ties by doc id."""
    weighted = [(tuple(n.tokens), float(n.weight)) for n in ngrams if n.weight > 0 and n.count > 0]
    first: Dict[int, float] = defaultdict(float)
    for ng, w in weighted:
        if index.count(list(ng)) > max_occurrences:
            continue
        for d in set(index.locate(list(ng), max_occurrences).doc_ix.tolist()):
            first[d] += w ** alpha
    cands = sorted(first, key=lambda d: (-first[d], d))[:max_docs]
    scored = []
    for d in cands:
        doc = index.get_doc(d)
        s, kept = _doc_score(np.asarray(doc.tokens, dtype=np.int64), weighted, alpha, beta)
        scored.append((s, d, doc, kept))
    scored.sort(key=lambda x: (-x[0], x[1]))
    out = []
    for s, d, doc, kept in scored[:k]:
        out.append(SealResult(d, s, doc.metadata, doc.text, kept, _highlight(index, doc.tokens, kept)))
    return out


def _highlight(index: Any, tokens: np.ndarray, kept: List[Tuple[Tuple[int, ...], float, List[Tuple[int, int]]]]) -> str:
    spans = sorted(sp for _, _, sps in kept for sp in sps)
    parts, at = [], 0
    toks = np.asarray(tokens)
    for a, b in spans:
        parts.append(index.decode(toks[at:a]))
        parts.append("[[" + index.decode(toks[a:b]) + "]]")
        at = b
    parts.append(index.decode(toks[at:]))
    return "".join(parts)


def generate_ngrams(model: Any, tokenizer: Any, index: Any, query: str, *, num_beams: int = 10,
                    max_new_tokens: int = 10, min_tokens: int = 1, prompt: str = DEFAULT_PROMPT,
                    chat: bool = True, check: bool = True) -> Dict[Tuple[int, ...], float]:
    """The n-grams of a query: constrained beam search (``num_beams`` beams,
    every beam a corpus substring), then every prefix of every beam of at
    least ``min_tokens`` tokens, with its model log-probability after the
    prompt (one forward pass over the beams; the model's own distribution,
    not the constrained one). Returns ``{tokens: logprob}``."""
    import torch

    from .constrained import CorpusConstraint, _chat_ids

    ids = _chat_ids(tokenizer, prompt.format(query=query), chat)
    proc = CorpusConstraint(index, tokenizer, check=check)
    eos = set(proc.eos)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids], device=model.device),
                             attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=model.device),
                             max_new_tokens=int(max_new_tokens), num_beams=int(num_beams),
                             num_return_sequences=int(num_beams), do_sample=False, logits_processor=[proc],
                             pad_token_id=(tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                                           else (proc.eos[0] if proc.eos else 0)),
                             temperature=None, top_p=None, top_k=None)
        beams = []
        for row in out[:, len(ids):].tolist():
            cut = next((i for i, t in enumerate(row) if t in eos), len(row))
            if cut:
                beams.append(row[:cut])
        if not beams:
            return {}
        L = max(len(b) for b in beams)
        pad = proc.eos[0] if proc.eos else 0
        x = torch.tensor([ids + b + [pad] * (L - len(b)) for b in beams], device=model.device)
        logp = torch.log_softmax(model(input_ids=x).logits.float(), dim=-1)
    res: Dict[Tuple[int, ...], float] = {}
    for r, b in enumerate(beams):
        lp = [float(logp[r, len(ids) + j - 1, t]) for j, t in enumerate(b)]
        acc = np.cumsum(lp)
        for j in range(min_tokens, len(b) + 1):
            res[tuple(b[:j])] = float(acc[j - 1])
    return res


def search(model: Any, tokenizer: Any, index: Any, query: str, k: int = 10, *, num_beams: int = 10,
           max_new_tokens: int = 10, alpha: float = ALPHA, beta: float = BETA, smoothing: float = SMOOTHING,
           max_occurrences: int = 1500, max_docs: int = 200, prompt: str = DEFAULT_PROMPT,
           chat: bool = True) -> List[SealResult]:
    """SEAL retrieval: the top ``k`` documents for ``query``
    (:func:`generate_ngrams`, :func:`score_ngrams`, :func:`aggregate`)."""
    ngr = generate_ngrams(model, tokenizer, index, query, num_beams=num_beams, max_new_tokens=max_new_tokens,
                          prompt=prompt, chat=chat)
    scored = score_ngrams(index, tokenizer, ngr, smoothing)
    return aggregate(index, scored, k, alpha, beta, max_occurrences, max_docs)
