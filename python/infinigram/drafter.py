"""``Drafter``: draft tokens for speculative decoding.

A drafter proposes what a target language model will probably generate next,
from three sources combined (see ``csrc/drafter.hpp`` for the data structures):

* the live request (prompt + accepted tokens so far), in a suffix automaton
  updated per token;
* the outputs of previous requests (online adaptation: ``stop(rid)`` adds a
  finished request's generated tokens, so the drafter improves with use);
* a static corpus :class:`~infinigram.Index`, whose matched suffix-array range
  is kept per request and narrowed as tokens arrive (no fresh search per step).

Proposals are chains (``propose``) or trees (``propose_tree``: token ids,
parent indices, path probabilities) grown best-first over the continuation
statistics of the longest matches, frequency weighted; ``min_prob`` stops a
draft where its estimated probability of being accepted falls below it.

Cross-vocabulary: when the index was built with another tokenizer than the
target model's (a ``bytes`` index, say), pass ``target_tokenizer``: the
drafter matches the corpus on the text, proposes a text continuation and
re-tokenizes it with the target's tokenizer. The live context and history
always work in target tokens.

Two ways to use it::

    d = Drafter(index)                           # or Drafter() for context only
    d.propose(context_ids, k=8)                  # stateless: any context; a context
                                                 # extending the previous one is incremental
    d.start("r1", prompt_ids)                    # explicit requests
    d.propose(k=8, request_id="r1")
    d.observe("r1", accepted_ids)
    d.stop("r1")                                 # learn from its output

Not thread-safe: use one Drafter per thread (they can share an Index).
"""

from __future__ import annotations

import functools
import itertools
import threading
from dataclasses import dataclass
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from .errors import InfinigramError
from .index import Index
from .tokenizer import byte_decoder

__all__ = ["Drafter", "DraftTree"]

TokenSeq = Union[Sequence[int], np.ndarray]

SRC_CONTEXT, SRC_HISTORY, SRC_CORPUS = 1, 2, 4
_ANON = object()  # request key of stateless propose() calls
_PARAMS = ("alpha", "tau", "context_boost", "history_boost", "corpus_boost", "power", "min_match",
           "use_context", "use_history", "use_corpus", "max_history", "max_children")


@dataclass
class DraftTree:
    """A draft tree: ``tokens[i]`` with parent ``parents[i]`` (-1 = the
    root, i.e. the current context; ``parents[i] < i``) and ``scores[i]``,
    the estimated probability that the path to node i is accepted."""

    tokens: List[int]
    parents: List[int]
    scores: List[float]

    def __len__(self) -> int:
        return len(self.tokens)

    def depths(self) -> List[int]:
        d: List[int] = []
        for p in self.parents:
            d.append(0 if p < 0 else d[p] + 1)
        return d

    def paths(self) -> List[List[int]]:
        """Token path from the root to every node."""
        out: List[List[int]] = []
        for t, p in zip(self.tokens, self.parents):
            out.append(([] if p < 0 else out[p]) + [t])
        return out

    def longest_accepted(self, truth: TokenSeq) -> int:
        """Length of the longest root path that is a prefix of ``truth``."""
        truth = list(truth)
        best = 0
        acc: List[int] = []  # accepted depth of each node, or -1
        for i, (t, p) in enumerate(zip(self.tokens, self.parents)):
            d = 0 if p < 0 else acc[p]
            if d < 0 or d >= len(truth) or truth[d] != t:
                acc.append(-1)
            else:
                acc.append(d + 1)
                best = max(best, d + 1)
        return best


# ------------------------------------------------------------------ tokenizers



class _TargetText:
    """Token <-> text helper over a target tokenizer: a ``tokenizers.Tokenizer``,
    a transformers tokenizer, or an infinigram ``Tokenizer``."""

    def __init__(self, tok: Any) -> None:
        from .tokenizer import BytesTokenizer, HFTokenizer

        self.kind = "hf"
        if isinstance(tok, BytesTokenizer):
            self.kind = "bytes"
            self.tok = None
        elif isinstance(tok, HFTokenizer):
            self.tok = tok._tok
        elif hasattr(tok, "backend_tokenizer"):
            self.tok = tok.backend_tokenizer
        elif hasattr(tok, "encode") and hasattr(tok, "id_to_token"):
            self.tok = tok
        else:
            raise TypeError("target_tokenizer must be a tokenizers.Tokenizer, a transformers fast tokenizer "
                            "or an infinigram Tokenizer")
        self._cache: Dict[int, bytes] = {}
        self._byte_level = False
        if self.tok is not None:
            dec = getattr(self.tok, "decoder", None)
            self._byte_level = dec is not None and type(dec).__name__ == "ByteLevel"
            self._b2u = byte_decoder()

    def vocab(self) -> Dict[str, int]:
        return self.tok.get_vocab(with_added_tokens=True) if self.tok is not None else {}

    def token_bytes(self, t: int) -> bytes:
        b = self._cache.get(t)
        if b is not None:
            return b
        if self.tok is None:
            b = bytes([t])
        else:
            s = self.tok.id_to_token(int(t))
            if s is None:
                b = b""
            elif self._byte_level and all(ch in self._b2u for ch in s):
                b = bytes(self._b2u[ch] for ch in s)
            elif len(s) == 6 and s.startswith("<0x") and s.endswith(">"):
                b = bytes([int(s[3:5], 16)])  # sentencepiece byte fallback
            else:
                b = s.replace("\u2581", " ").encode("utf-8")
        self._cache[t] = b
        return b

    def ids_bytes(self, ids: TokenSeq) -> bytes:
        return b"".join(self.token_bytes(int(t)) for t in ids)

    def encode(self, text: str) -> List[int]:
        if self.tok is None:
            return list(text.encode("utf-8"))
        return self.tok.encode(text, add_special_tokens=False).ids


def _utf8_prefix(b: bytes) -> str:
    """The longest decodable prefix of b (cuts a trailing partial character)."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start > 0 and e.start >= len(b) - 3:
            return b[: e.start].decode("utf-8", errors="replace")
        return b.decode("utf-8", errors="replace")


# --------------------------------------------------------------------- drafter
def _serialised(method: Any) -> Any:
    """Runs a Drafter method under the drafter's lock: the C++ drafter is not
    thread-safe, and a proposal is several core calls (sync the request's
    context, then draft) that another thread must not interleave with (two
    threads drafting for the anonymous request got each other's drafts)."""
    @functools.wraps(method)
    def locked(self: "Drafter", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


class Drafter:
    """Proposes draft tokens from the live context, previous outputs and a corpus.

    Thread-safe: its calls are serialised by a lock (each proposal sees its
    request's context whole, whatever other threads do).

    Args:
        index: an :class:`Index` (or its path), or None (context and history only).
        target_tokenizer: the target model's tokenizer. Needed only when the
            index's vocabulary differs from the target's (cross-vocabulary).
        cross_vocab: force (True) or forbid (False) cross-vocabulary mode;
            None decides from the tokenizers (a ``bytes`` index with a
            non-bytes target, or HF vocabularies that differ).
        learn: what ``stop()`` adds to the history by default: ``"outputs"``
            (generated tokens), ``"all"`` (prompt too) or ``None``.
        min_prob: default probability threshold of adaptive draft length
            (0 = always propose k tokens when the sources have them).
        **params: tuning knobs of the C++ core (``alpha``, ``tau``,
            ``context_boost``, ``history_boost``, ``corpus_boost``, ``power``,
            ``min_match``, ``use_context``, ``use_history``, ``use_corpus``,
            ``max_history``, ``max_children``).
    """

    def __init__(self, index: Union[None, str, Index] = None, *, target_tokenizer: Any = None,
                 cross_vocab: Optional[bool] = None, learn: Optional[str] = "outputs",
                 min_prob: float = 0.0, **params: Any) -> None:
        if isinstance(index, (str, bytes)) or (index is not None and not isinstance(index, Index)
                                               and hasattr(index, "__fspath__")):
            index = Index(index)
        self.index: Optional[Index] = index
        if index is not None and getattr(index, "backend", "sa") != "sa":
            raise InfinigramError("the drafter needs a suffix-array index (it extends matches to the right); "
                                  f"{index.path} is an FM index: build one with backend='sa'")
        self._core = _core.Drafter(index._engine if index is not None else None)
        for k, v in params.items():
            if k not in _PARAMS:
                raise TypeError(f"unknown Drafter parameter {k!r} (expected one of {', '.join(_PARAMS)})")
            setattr(self._core, k, v)
        if learn not in (None, "outputs", "all"):
            raise ValueError("learn must be None, 'outputs' or 'all'")
        self.learn = learn
        self.min_prob = float(min_prob)
        self._target = _TargetText(target_tokenizer) if target_tokenizer is not None else None
        self.cross_vocab = self._decide_cross(cross_vocab)
        if self.cross_vocab and self._target is None:
            raise ValueError("cross-vocabulary mode needs target_tokenizer")
        self._lock = threading.RLock()
        self._ids: Dict[Hashable, int] = {}
        self._next = itertools.count(1)
        self._tail: Dict[int, bytes] = {}  # cross mode with a non-bytes index: recent text

    # ------------------------------------------------------------ settings
    def _decide_cross(self, cross: Optional[bool]) -> bool:
        if self.index is None:
            return False
        if cross is not None:
            return bool(cross)
        if self._target is None:
            return False
        itok = self.index.tokenizer
        if itok.kind == "bytes":
            return self._target.kind != "bytes"
        if self._target.kind == "bytes":
            return True
        try:
            return itok._tok.get_vocab(with_added_tokens=True) != self._target.vocab()
        except Exception:
            return True

    def __getattr__(self, name: str) -> Any:
        if name in _PARAMS:
            return getattr(self._core, name)
        raise AttributeError(name)

    def set_params(self, **params: Any) -> None:
        for k, v in params.items():
            if k not in _PARAMS:
                raise TypeError(f"unknown Drafter parameter {k!r}")
            setattr(self._core, k, v)

    # ------------------------------------------------------------ requests
    def _rid(self, request_id: Hashable, create: bool = False) -> int:
        rid = self._ids.get(request_id)
        if rid is None:
            if not create:
                raise KeyError(f"unknown request {request_id!r} (call start() first)")
            rid = next(self._next)
            self._ids[request_id] = rid
        return rid

    @staticmethod
    def _as_ids(tokens: TokenSeq) -> Any:
        if isinstance(tokens, np.ndarray):
            return tokens.astype(np.int64, copy=False).ravel()
        if hasattr(tokens, "tolist"):  # torch tensors
            return [int(t) for t in np.asarray(tokens.tolist()).ravel()]
        return tokens if isinstance(tokens, (list, tuple)) else list(tokens)

    def _corpus_ids(self, rid: int, ids: Any, restart: bool) -> Any:
        """Index tokens for new target tokens (cross mode), or None (direct)."""
        if not self.cross_vocab:
            return None
        b = self._target.ids_bytes(ids)
        if self.index.tokenizer.kind == "bytes":
            return np.frombuffer(b, dtype=np.uint8).astype(np.int64)
        tail = (b"" if restart else self._tail.get(rid, b"")) + b
        self._tail[rid] = tail[-512:]
        return []  # a non-bytes index is re-encoded from the tail, see _reset_tail

    def _reset_tail(self, rid: int) -> None:
        if self.cross_vocab and self.index.tokenizer.kind != "bytes":
            text = _utf8_prefix(self._tail.get(rid, b"")[-256:])
            self._core.reset_corpus(rid, self.index.encode(text).astype(np.int64))

    @_serialised
    def start(self, request_id: Hashable, prompt: TokenSeq) -> None:
        """Starts (or restarts) a request with its prompt tokens. O(len(prompt))."""
        rid = self._rid(request_id, create=True)
        ids = self._as_ids(prompt)
        self._core.start(rid, ids, self._corpus_ids(rid, ids, True))
        self._reset_tail(rid)

    @_serialised
    def observe(self, request_id: Hashable, new_tokens: TokenSeq) -> None:
        """Appends accepted tokens to a request's context. O(1) amortised per token
        (plus, per index shard, a narrowing of the matched suffix-array range)."""
        rid = self._rid(request_id)
        ids = self._as_ids(new_tokens)
        if len(ids) == 0:
            return
        self._core.observe(rid, ids, self._corpus_ids(rid, ids, False))
        self._reset_tail(rid)

    @_serialised
    def stop(self, request_id: Hashable, learn: Any = "default") -> None:
        """Ends a request; by default adds its generated tokens to the history
        (``learn`` = None / "outputs" / "all" overrides the drafter's setting)."""
        rid = self._ids.pop(request_id, None)
        if rid is None:
            return
        mode = self.learn if learn == "default" else learn
        self._core.stop(rid, {None: 0, False: 0, "outputs": 1, "all": 2}.get(mode, 1))
        self._tail.pop(rid, None)

    @_serialised
    def add_history(self, tokens: TokenSeq) -> None:
        """Adds a token sequence (target vocabulary) to the history source."""
        self._core.add_history(self._as_ids(tokens))

    @_serialised
    def clear_history(self) -> None:
        self._core.clear_history()

    @property
    def history_size(self) -> int:
        return int(self._core.history_size)

    @_serialised
    def context(self, request_id: Hashable) -> np.ndarray:
        return self._core.context(self._rid(request_id))

    @_serialised
    def match_lengths(self, request_id: Hashable = _ANON) -> Tuple[int, int, int]:
        """(context, history, corpus) lengths of the longest matched suffixes
        (corpus: in index tokens)."""
        return tuple(self._core.match_lengths(self._rid(request_id)))  # type: ignore[return-value]

    def _sync(self, context_tokens: Optional[TokenSeq], request_id: Hashable) -> int:
        if context_tokens is None:
            return self._rid(request_id)
        ids = self._as_ids(context_tokens)
        rid = self._ids.get(request_id)
        if rid is not None:
            n = self._core.extends(rid, ids)
            if n >= 0:
                if n < len(ids):
                    self.observe(request_id, ids[n:])
                return rid
        self.start(request_id, ids)
        return self._ids[request_id]

    # ----------------------------------------------------------- proposals
    def propose(self, context_tokens: Optional[TokenSeq] = None, k: int = 8, *,
                request_id: Hashable = _ANON, min_prob: Optional[float] = None) -> List[int]:
        """A chain of up to ``k`` draft tokens continuing the context.

        ``context_tokens``: the full context (prompt + generated so far). A
        context that extends the previous call's (same ``request_id``) is
        handled incrementally, anything else restarts that request. Omit it
        to use a request's state (``start``/``observe``)."""
        return self.propose_scored(context_tokens, k, request_id=request_id, min_prob=min_prob)[0]

    @_serialised
    def propose_scored(self, context_tokens: Optional[TokenSeq] = None, k: int = 8, *,
                       request_id: Hashable = _ANON,
                       min_prob: Optional[float] = None) -> Tuple[List[int], List[float]]:
        """Like :meth:`propose`, with each token's path probability."""
        rid = self._sync(context_tokens, request_id)
        mp = self.min_prob if min_prob is None else float(min_prob)
        if k <= 0:
            return [], []
        if not self.cross_vocab:
            toks, probs = self._core.propose(rid, k, mp)
            return toks.tolist(), probs.tolist()
        a_t, a_p = self._core.propose(rid, k, mp, SRC_CONTEXT | SRC_HISTORY)
        b_t, b_p = self._cross_chain(rid, k, mp)
        a = (a_t.tolist(), a_p.tolist())
        if sum(b_p) > sum(a[1]):
            return b_t, b_p
        return a

    @_serialised
    def propose_tree(self, context_tokens: Optional[TokenSeq] = None, budget: int = 16, *,
                     request_id: Hashable = _ANON, min_prob: Optional[float] = None) -> DraftTree:
        """A draft tree of at most ``budget`` nodes, grown best first by
        estimated acceptance probability of each root path."""
        rid = self._sync(context_tokens, request_id)
        mp = self.min_prob if min_prob is None else float(min_prob)
        if budget <= 0:
            return DraftTree([], [], [])
        if not self.cross_vocab:
            t, p, s = self._core.propose_tree(rid, budget, mp)
            return DraftTree(t.tolist(), p.tolist(), s.tolist())
        t, p, s = self._core.propose_tree(rid, budget, mp, SRC_CONTEXT | SRC_HISTORY)
        b_t, b_p = self._cross_chain(rid, budget, mp)
        return _merge_tree([(t.tolist(), p.tolist(), s.tolist()),
                            (b_t, list(range(-1, len(b_t) - 1)), b_p)], budget)

    # ----------------------------------------------------- cross-vocabulary
    def _cross_chain(self, rid: int, k: int, min_prob: float) -> Tuple[List[int], List[float]]:
        """Corpus continuation in index tokens -> text -> target tokens."""
        itok = self.index.tokenizer
        per = 4 if itok.kind == "bytes" else 1
        toks, probs = self._core.propose(rid, per * k + 8, 0.0, SRC_CORPUS)
        if len(toks) == 0:
            return [], []
        if itok.kind == "bytes":
            cont = toks.astype(np.uint8).tobytes()
            conds_b = probs / np.concatenate([[1.0], probs[:-1]])
        else:
            pieces = [itok.decode([int(t)]).encode("utf-8") for t in toks]
            cont = b"".join(pieces)
            conds_b = np.repeat(probs / np.concatenate([[1.0], probs[:-1]]), [max(1, len(x)) for x in pieces])
            conds_b = conds_b ** (1.0 / np.repeat([max(1, len(x)) for x in pieces], [max(1, len(x)) for x in pieces]))
        ctx = self._core.context(rid)
        # a clean tail of recent target tokens, so BPE merges across the boundary are seen
        tail_ids: List[int] = []
        tail_text = ""
        for n in range(min(4, len(ctx)), 0, -1):
            try:
                tail_text = self._target.ids_bytes(ctx[-n:]).decode("utf-8")
                tail_ids = [int(x) for x in ctx[-n:]]
                break
            except UnicodeDecodeError:
                continue
        cont_text = _utf8_prefix(cont)
        enc = self._target.encode(tail_text + cont_text)
        if tail_ids and enc[: len(tail_ids)] == tail_ids:
            new = enc[len(tail_ids):]
        else:
            new = self._target.encode(cont_text)
        if len(new) > 1:
            new = new[:-1]  # the last token may be cut by the end of the byte chain
        new = new[:k]
        out_t: List[int] = []
        out_p: List[float] = []
        path = 1.0
        pos = 0
        for t in new:
            nb = len(self._target.token_bytes(t))
            seg = conds_b[pos: pos + nb]
            pos += nb
            if len(seg) == 0:
                break
            path *= float(np.prod(seg)) ** (1.0 / len(seg))  # per-byte geometric mean: one token step
            if path < min_prob:
                break
            out_t.append(int(t))
            out_p.append(path)
        return out_t, out_p


def _merge_tree(parts: List[Tuple[List[int], List[int], List[float]]], budget: int) -> DraftTree:
    """Trie union of several trees (max score per path), best `budget` nodes."""
    nodes: Dict[Tuple[int, ...], float] = {}
    for toks, pars, scores in parts:
        paths: List[Tuple[int, ...]] = []
        for t, p, s in zip(toks, pars, scores):
            path = (paths[p] if p >= 0 else ()) + (t,)
            paths.append(path)
            nodes[path] = max(nodes.get(path, 0.0), s)
    # ancestors score >= descendants, so top-by-score (ties: shorter first) is ancestor-closed
    order = sorted(nodes.items(), key=lambda kv: (-kv[1], len(kv[0])))
    chosen: Dict[Tuple[int, ...], int] = {}
    out = DraftTree([], [], [])
    for path, s in order:
        if len(out) >= budget:
            break
        if len(path) > 1 and path[:-1] not in chosen:
            continue
        chosen[path] = len(out)
        out.tokens.append(path[-1])
        out.parents.append(chosen[path[:-1]] if len(path) > 1 else -1)
        out.scores.append(s)
    return out
