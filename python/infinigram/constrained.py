"""Corpus-constrained decoding: a transformers ``LogitsProcessor`` that lets a
model generate only text that occurs verbatim in an index's corpus (grounded
quoting; the constraint of SEAL, Bevilacqua et al. 2022, arXiv 2204.10628).

``CorpusConstraint(index, tokenizer)`` masks (sets to -inf) every token that
would make the constrained span absent from the corpus. The span is what
was generated since the constraint started (``window=None``) or, in sliding
mode, the last ``window`` tokens (every ``window``-gram of the output occurs).
It works with greedy search, sampling and beam search, at any batch size:

* State is one :class:`~infinigram.continuations.Cursors` entry per row (per
  beam): one range per shard, narrowed by one token per step (suffix array:
  two binary searches on one depth; FM-index: one backward-search step on
  the reversed index). Each call finds every row's parent row of the
  previous call (its sequence minus the last token: transformers reorders
  beams between calls) by comparing the ``input_ids`` rows, reorders the
  cursors accordingly, extends them by the last tokens, and lists the
  continuations in one C++ call (GIL released).
* Cost per step: O(B² × length) tensor compares to match parents, plus
  O(B × distinct × log count) index reads (SA), plus the mask (O(B × allowed)).
* Options: ``allow_eos`` (EOS always allowed; it is allowed anyway where the
  span can go no further: a document end), ``allow_restart`` (a
  ``restart_token_id``, by default the index's newline token, ends the span
  and starts a new one: several corpus n-grams per output, as SEAL
  generates several identifiers per query), ``window`` (sliding mode: the
  span keeps its last ``window - 1`` tokens; shortened by one search of that
  many tokens per step once it is that long).
* A model tokenizer that does not tokenize like the index's is refused at
  construction (:class:`~infinigram.errors.InfinigramError` naming a probe
  text and both tokenizations).

torch and transformers are imported only here (``import infinigram`` never
needs them); without transformers the class is a plain callable with the
``LogitsProcessor`` signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .continuations import Cursors
from .errors import InfinigramError

try:  # a real LogitsProcessor when transformers is there
    from transformers import LogitsProcessor as _Base  # type: ignore
except Exception:  # pragma: no cover - without the neural extra
    _Base = object  # type: ignore

__all__ = ["CorpusConstraint", "check_tokenizer", "generate", "Generation", "PROBES"]

#: texts both tokenizers must encode identically (English, code, digits, unicode, whitespace)
PROBES = [
    "The quick brown fox jumps over the lazy dog. It's 3.14159, isn't it?",
    "def f(x: int) -> list[str]:\n    return [str(i) for i in range(x)]  # comment\n",
    "héllo wörld — ünïcode ✓ 日本語 🎉\t\ttabs  and   spaces\n\nnew paragraph",
    "HTTP/1.1 200 OK; user@example.com; C:\\path\\file.txt; {\"json\": [1, 2.5e-3]}",
]


def _hf_encode(tokenizer: Any, text: str) -> List[int]:
    if hasattr(tokenizer, "backend_tokenizer") or callable(tokenizer):
        try:
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])
        except TypeError:
            pass
    return list(tokenizer.encode(text, add_special_tokens=False))


def check_tokenizer(index: Any, tokenizer: Any) -> None:
    """Raises :class:`InfinigramError` unless ``tokenizer`` (a Hugging Face
    tokenizer) encodes every :data:`PROBES` text as the index's tokenizer
    does. O(probe length)."""
    kind = (index.manifest.get("tokenizer") or {}).get("kind")
    if kind == "none":
        raise InfinigramError(f"{index.path}: the index has no tokenizer (built from token ids); "
                              "it cannot be checked against the model's: give check=False if they match")
    for p in PROBES:
        a = [int(t) for t in index.encode(p)]
        b = [int(t) for t in _hf_encode(tokenizer, p)]
        if a != b:
            k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            raise InfinigramError(
                f"the model's tokenizer is not the index's ({index.path}, tokenizer kind {kind!r}): "
                f"{p!r} encodes to {b[max(0, k - 2):k + 4]}... with the model's and {a[max(0, k - 2):k + 4]}... "
                f"with the index's (first difference at token {k}); build the index with the model's "
                "tokenizer.json (infinigram build --tokenizer)")


class CorpusConstraint(_Base):  # type: ignore[misc, valid-type]
    """A ``LogitsProcessor``: only tokens that keep the span a corpus substring.

    Args:
        index: an :class:`~infinigram.Index` (suffix array, or FM-index with
            its reversed index: ``infinigram reverse IDX``).
        tokenizer: the model's Hugging Face tokenizer (checked against the
            index's unless ``check=False``).
        allow_eos: always allow EOS (else only where the span cannot go on).
        eos_token_id: EOS id(s); default ``tokenizer.eos_token_id``.
        allow_restart: let ``restart_token_id`` end the span and start a new one.
        restart_token_id: default: the index tokenizer's ``"\\n"`` when it is one token.
        window: sliding mode: every ``window`` consecutive generated tokens
            occur in the corpus (None: the whole span since the start).
        record: keep every call's allowed sets in ``self.history`` (tests).

    Attributes after generation: ``spans()`` (each row's current span, tokens).
    """

    def __init__(self, index: Any, tokenizer: Any = None, *, allow_eos: bool = False,
                 eos_token_id: Union[None, int, Sequence[int]] = None, allow_restart: bool = False,
                 restart_token_id: Optional[int] = None, window: Optional[int] = None, check: bool = True,
                 record: bool = False) -> None:
        if check:
            if tokenizer is None:
                raise InfinigramError("CorpusConstraint needs the model's tokenizer to check it against the "
                                      "index's (or check=False)")
            check_tokenizer(index, tokenizer)
        if window is not None and window < 1:
            raise ValueError("window must be >= 1")
        self.index = index
        self.tokenizer = tokenizer
        if eos_token_id is None and tokenizer is not None:
            eos_token_id = getattr(tokenizer, "eos_token_id", None)
        self.eos: List[int] = [] if eos_token_id is None else (
            [int(eos_token_id)] if isinstance(eos_token_id, (int, np.integer)) else [int(t) for t in eos_token_id])
        self.allow_eos = bool(allow_eos)
        self.allow_restart = bool(allow_restart)
        if allow_restart and restart_token_id is None:
            nl = index.encode("\n")
            if len(nl) != 1:
                raise InfinigramError("allow_restart: give restart_token_id (\"\\n\" is not one token here)")
            restart_token_id = int(nl[0])
        self.restart = None if restart_token_id is None else int(restart_token_id)
        self.window = window
        self.record = record
        self.history: List[List[Any]] = []
        self._cur: Optional[Cursors] = None
        self._prev: Any = None  # the previous call's input_ids
        self._prompt_len = 0
        # the span's tokens per row (sliding mode needs them; spans() reports them)
        self._spans: List[List[int]] = []

    # ------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all state (a new ``generate`` call also resets it)."""
        self._cur = None
        self._prev = None
        self._spans = []
        self.history = []

    def spans(self) -> List[List[int]]:
        """Each row's current constrained span (token ids)."""
        return [list(s) for s in self._spans]

    def _parents(self, input_ids: Any) -> Optional[np.ndarray]:
        """For each row, a row of the previous call whose ids equal this row's
        minus its last token (None: this is a new generation)."""
        import torch

        prev = self._prev
        if prev is None or prev.shape[1] + 1 != input_ids.shape[1] or self._cur is None:
            return None
        body = input_ids[:, :-1]
        if body.shape[0] == prev.shape[0] and bool((body == prev).all()):
            return np.arange(body.shape[0])
        eq = (body[:, None, :] == prev[None, :, :]).all(-1)  # (B, B')
        if not bool(eq.any(-1).all()):
            return None
        return torch.argmax(eq.to(torch.int8), dim=-1).cpu().numpy()

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        B = int(input_ids.shape[0])
        parents = self._parents(input_ids)
        if parents is None:  # the first call of a generation: empty spans
            self._cur = Cursors(self.index, B)
            self._spans = [[] for _ in range(B)]
            self._prompt_len = int(input_ids.shape[1])
            self.history = []
            toks = None
        else:
            assert self._cur is not None
            self._cur.reorder(parents)
            self._spans = [list(self._spans[p]) for p in parents.tolist()]
            last = input_ids[:, -1].cpu().numpy().astype(np.int64)
            toks = last.copy()
            restart_rows = []
            for b in range(B):
                t = int(last[b])
                if self.allow_restart and t == self.restart:
                    restart_rows.append(b)
                    toks[b] = -1
                else:
                    self._spans[b].append(t)
            if restart_rows:
                self._cur.reset(restart_rows)
                for b in restart_rows:
                    self._spans[b] = []
        lists = self._cur.step(toks)
        if self.window is not None:
            lists = self._slide(lists)
        self._prev = input_ids.detach().clone()
        return self._mask(scores, lists)

    def _slide(self, lists: Any) -> Any:
        """Sliding mode: spans longer than window - 1 keep their last window - 1 tokens."""
        from .continuations import ContinuationsBatch  # noqa: F401

        keep = self.window - 1  # type: ignore[operator]
        long_rows = [b for b, s in enumerate(self._spans) if len(s) > keep]
        if not long_rows:
            return lists
        cur = self._cur
        assert cur is not None
        for b in long_rows:
            self._spans[b] = self._spans[b][len(self._spans[b]) - keep:] if keep else []
            cur.ranges[b] = _start(cur, self._spans[b])
            cur.depth[b] = len(self._spans[b])
        return cur.step(None)

    def _mask(self, scores: Any, lists: Any) -> Any:
        import torch

        B, V = scores.shape
        off = lists.offsets
        toks = lists.tokens
        rows = np.repeat(np.arange(B, dtype=np.int64), np.diff(off))
        keep = toks < V
        rows, toks = rows[keep], toks[keep]
        extra_r: List[int] = []
        extra_t: List[int] = []
        n_allowed = np.bincount(rows, minlength=B)
        for b in range(B):
            add = []
            if self.allow_eos or n_allowed[b] == 0:
                add += self.eos  # a span that cannot go on may end (a document end)
            if self.allow_restart and self.restart is not None and self._spans[b]:
                add.append(self.restart)
            if n_allowed[b] == 0 and not add and self.restart is not None and self.allow_restart:
                add.append(self.restart)
            for t in add:
                if 0 <= t < V:
                    extra_r.append(b)
                    extra_t.append(t)
        if extra_r:
            rows = np.concatenate([rows, np.asarray(extra_r, np.int64)])
            toks = np.concatenate([toks, np.asarray(extra_t, np.int64)])
        if self.record:  # (each row's span, its allowed tokens)
            self.history.append([(list(self._spans[b]), np.unique(toks[rows == b])) for b in range(B)])
        r = torch.from_numpy(rows).to(scores.device)
        t = torch.from_numpy(toks).to(scores.device)
        out = torch.full_like(scores, float("-inf"))
        out[r, t] = scores[r, t]
        return out


def _start(cur: Cursors, span: List[int]) -> np.ndarray:
    from . import _core

    return _core.cont_start(cur.engine, np.asarray(span, dtype=np.int64))


# ------------------------------------------------------------ convenience
@dataclass
class Generation:
    """One output of :func:`generate`: ``tokens`` (new tokens), ``text``,
    ``spans`` (the constrained spans: token lists, with their corpus
    ``counts``), ``seconds`` (wall time of the generate call)."""

    tokens: List[int]
    text: str
    spans: List[List[int]] = field(default_factory=list)
    counts: List[int] = field(default_factory=list)
    seconds: float = 0.0


def _chat_ids(tokenizer: Any, prompt: str, chat: bool) -> List[int]:
    if chat and getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return [int(t) for t in ids]
    return [int(t) for t in _hf_encode(tokenizer, prompt)]


def generate(model: Any, tokenizer: Any, index: Any, prompt: str, max_new_tokens: int = 32, *,
             constrained: bool = True, num_beams: int = 1, num_return_sequences: int = 1, do_sample: bool = False,
             seed: Optional[int] = None, chat: bool = True, **constraint_kw: Any) -> List[Generation]:
    """``model.generate`` on ``prompt`` (the chat template applied when the
    tokenizer has one and ``chat``), with a :class:`CorpusConstraint` when
    ``constrained``; returns the sequences (best first) with their spans'
    corpus counts. O(max_new_tokens) forward passes."""
    import time

    import torch

    ids = _chat_ids(tokenizer, prompt, chat)
    proc = CorpusConstraint(index, tokenizer, **constraint_kw) if constrained else None
    kw: Dict[str, Any] = dict(max_new_tokens=int(max_new_tokens), num_beams=int(num_beams),
                              num_return_sequences=int(num_return_sequences), do_sample=bool(do_sample))
    if proc is not None:
        kw["logits_processor"] = [proc]
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None and proc is not None and proc.eos:
        pad = proc.eos[0]
    if pad is not None:
        kw["pad_token_id"] = pad
    if not do_sample:
        kw.update(temperature=None, top_p=None, top_k=None)
    if seed is not None:
        torch.manual_seed(int(seed))
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(torch.tensor([ids], device=model.device),
                             attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=model.device), **kw)
    secs = time.perf_counter() - t0
    eos = set(proc.eos) if proc is not None else {getattr(tokenizer, "eos_token_id", None)}
    res = []
    for row in out[:, len(ids):].tolist():
        while row and row[-1] in eos:
            row = row[:-1]
        spans = split_spans(row, proc.restart if proc is not None and proc.allow_restart else None)
        counts = [int(index.count(s)) if s else 0 for s in spans]
        res.append(Generation(row, tokenizer.decode(row), spans, counts, secs))
    return res


def split_spans(tokens: Sequence[int], restart: Optional[int]) -> List[List[int]]:
    """The constrained spans of an output: split at the restart token (if any), empty ones dropped."""
    spans: List[List[int]] = [[]]
    for t in tokens:
        if restart is not None and t == restart:
            spans.append([])
        else:
            spans[-1].append(int(t))
    return [s for s in spans if s]
