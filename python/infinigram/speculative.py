"""Greedy speculative decoding with a Hugging Face causal LM and a :class:`~infinigram.Drafter`.

``generate(model, input_ids, drafter, max_new_tokens)`` drafts up to ``k``
tokens per step, verifies them with one forward pass of the target model over
``[last token] + draft`` (KV cache kept, cropped to the accepted prefix) and
keeps the longest prefix that equals the model's own greedy choices, plus the
model's next token. The output is token for token the output of plain greedy
decoding (up to floating-point ties between a batched and a one-token forward
pass).

``hf_generate(model, input_ids, drafter, ...)`` runs transformers' own
assisted-generation loop (``model.generate``) with the drafter as its
candidate generator (transformers has no public argument for a custom
candidate generator, so the adapter temporarily overrides the model's
``_get_candidate_generator``; checked with transformers 5.x).

torch and transformers are imported lazily: ``import infinigram`` never needs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Hashable, List, Optional, Sequence, Tuple, Union

from .drafter import Drafter

__all__ = ["SpecResult", "generate", "greedy", "hf_generate", "DrafterCandidateGenerator"]


@dataclass
class SpecResult:
    """Output of :func:`generate` / :func:`greedy`.

    ``tokens``: the new tokens; ``accepted``: draft tokens accepted at each
    verification step (a step also yields the model's own next token);
    ``drafted``: draft tokens proposed at each step; ``seconds``: wall time
    (prompt pass included)."""

    tokens: List[int]
    accepted: List[int] = field(default_factory=list)
    drafted: List[int] = field(default_factory=list)
    seconds: float = 0.0
    forward_passes: int = 0

    @property
    def steps(self) -> int:
        return len(self.accepted)

    @property
    def tokens_per_step(self) -> float:
        """New tokens per target forward pass (after the prompt pass)."""
        return (len(self.tokens) - 1) / max(1, self.forward_passes - 1) if self.tokens else 0.0

    @property
    def mean_accepted(self) -> float:
        return sum(self.accepted) / max(1, len(self.accepted))

    @property
    def acceptance_rate(self) -> float:
        return sum(self.accepted) / max(1, sum(self.drafted))

    @property
    def tokens_per_second(self) -> float:
        return len(self.tokens) / self.seconds if self.seconds > 0 else 0.0


def _prompt_list(input_ids: Any) -> List[int]:
    if hasattr(input_ids, "tolist"):
        v = input_ids.tolist()
    else:
        v = list(input_ids)
    if v and isinstance(v[0], list):
        if len(v) != 1:
            raise ValueError("batch size must be 1")
        v = v[0]
    return [int(t) for t in v]


def _eos_set(model: Any, eos_token_id: Union[None, int, Sequence[int]]) -> set:
    if eos_token_id is None:
        eos_token_id = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos_token_id is None:
        return set()
    if isinstance(eos_token_id, int):
        return {eos_token_id}
    return {int(t) for t in eos_token_id}


def greedy(model: Any, input_ids: Any, max_new_tokens: int = 64,
           eos_token_id: Union[None, int, Sequence[int]] = None) -> SpecResult:
    """Plain greedy decoding, one token per forward pass (KV cache): the reference."""
    import torch

    prompt = _prompt_list(input_ids)
    eos = _eos_set(model, eos_token_id)
    dev = model.device
    t0 = time.perf_counter()
    res = SpecResult([])
    with torch.no_grad():
        fwd = _Forward(model)
        out, past = fwd(torch.tensor([prompt], device=dev))
        res.forward_passes = 1
        while True:
            tok = int(out.logits[0, -1].argmax())
            res.tokens.append(tok)
            if tok in eos or len(res.tokens) >= max_new_tokens:
                break
            out, past = fwd(torch.tensor([[tok]], device=dev), past)
            res.forward_passes += 1
    res.seconds = time.perf_counter() - t0
    return res


def generate(model: Any, input_ids: Any, drafter: Drafter, max_new_tokens: int = 64, *, k: int = 8,
             min_prob: Optional[float] = None, eos_token_id: Union[None, int, Sequence[int]] = None,
             request_id: Optional[Hashable] = None, learn: Any = "default") -> SpecResult:
    """Greedy speculative decoding of one sequence (batch size 1).

    Each step drafts up to ``k`` tokens (``drafter.propose``, adaptive length
    by ``min_prob``), runs the model once over the last token plus the draft,
    accepts the longest prefix matching the model's argmax and adds the
    model's next token. Output tokens equal plain greedy decoding's. The
    drafter request is started with the prompt, observes accepted tokens and
    is stopped at the end (``learn``: see :meth:`Drafter.stop`).
    """
    import torch

    prompt = _prompt_list(input_ids)
    eos = _eos_set(model, eos_token_id)
    dev = model.device
    rid = request_id if request_id is not None else ("speculative", id(prompt), time.perf_counter_ns())
    t0 = time.perf_counter()
    res = SpecResult([])
    drafter.start(rid, prompt)
    try:
        with torch.no_grad():
            fwd = _Forward(model)
            out, past = fwd(torch.tensor([prompt], device=dev))
            res.forward_passes = 1
            nxt = int(out.logits[0, -1].argmax())
            n_prompt = len(prompt)
            while True:
                res.tokens.append(nxt)
                drafter.observe(rid, [nxt])
                if nxt in eos or len(res.tokens) >= max_new_tokens:
                    break
                room = max_new_tokens - len(res.tokens)
                draft = drafter.propose(k=min(k, room), request_id=rid, min_prob=min_prob) if room > 0 else []
                inp = torch.tensor([[nxt] + draft], device=dev)
                out, past = fwd(inp, past)
                res.forward_passes += 1
                preds = out.logits[0].argmax(-1).tolist()
                a = 0
                while a < len(draft) and draft[a] == preds[a]:
                    a += 1
                acc = draft[:a]
                stop_at = next((i for i, t in enumerate(acc) if t in eos), None)
                if stop_at is not None:
                    acc = acc[: stop_at + 1]
                res.accepted.append(len(acc))
                res.drafted.append(len(draft))
                if acc:
                    res.tokens.extend(acc)
                    drafter.observe(rid, acc)
                if stop_at is not None or len(res.tokens) >= max_new_tokens:
                    break
                nxt = int(preds[a])
                # the cache holds prompt + tokens; nxt is fed next step
                _crop(past, n_prompt + len(res.tokens))
    finally:
        drafter.stop(rid, learn)
    res.seconds = time.perf_counter() - t0
    return res


class _Forward:
    """One forward pass of a Hugging Face causal LM with its KV cache:
    ``out, cache = fwd(input_ids, cache)``. transformers 5.x names the
    argument and the output field ``cache`` (``past_key_values`` is deprecated
    there, to be removed in 5.40); 4.x knows only ``past_key_values``. The
    name is read from the model's ``forward`` signature once."""

    def __init__(self, model: Any) -> None:
        import inspect

        self.model = model
        try:
            params = inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            params = {}
        self.arg = "cache" if "cache" in params else "past_key_values"

    def __call__(self, input_ids: Any, cache: Any = None) -> Tuple[Any, Any]:
        kw = {self.arg: cache} if cache is not None else {}
        out = self.model(input_ids=input_ids, use_cache=True, **kw)
        new = getattr(out, "cache", None)
        return out, (new if new is not None else out.past_key_values)


def _crop(cache: Any, length: int) -> None:
    """Cuts a transformers KV cache to its first `length` positions
    (negative crop: removes that many; understood by 4.4x and 5.x)."""
    extra = int(cache.get_seq_length()) - length
    if extra > 0:
        cache.crop(-extra)


# -------------------------------------------------------- transformers adapter
def _candidate_generator_base() -> type:
    from transformers.generation.candidate_generator import CandidateGenerator

    return CandidateGenerator


class DrafterCandidateGenerator:  # the real base class is set on first use (lazy import)
    """A transformers ``CandidateGenerator`` that asks a :class:`Drafter`."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        base = _candidate_generator_base()
        real = type("DrafterCandidateGenerator", (base,), {
            "__init__": _cg_init, "get_candidates": _cg_get, "update_candidate_strategy": _cg_update})
        return real(*args, **kwargs)


def _cg_init(self: Any, drafter: Drafter, k: int = 8, max_length: Optional[int] = None,
             min_prob: Optional[float] = None, request_id: Hashable = None) -> None:
    self.drafter = drafter
    self.k = k
    self.max_length = max_length
    self.min_prob = min_prob
    self.request_id = request_id if request_id is not None else ("hf", id(self))


def _cg_get(self: Any, input_ids: Any, **kwargs: Any) -> Any:
    import torch

    ids = input_ids[0].tolist()
    k = self.k
    if self.max_length is not None:
        k = min(k, self.max_length - len(ids) - 1)
    draft = self.drafter.propose(ids, max(0, k), request_id=self.request_id, min_prob=self.min_prob) if k > 0 else []
    if not draft:
        return input_ids, None
    cand = torch.tensor([draft], dtype=input_ids.dtype, device=input_ids.device)
    return torch.cat([input_ids, cand], dim=1), None


def _cg_update(self: Any, input_ids: Any, scores: Any, num_matches: int) -> None:
    return None


def hf_generate(model: Any, input_ids: Any, drafter: Drafter, max_new_tokens: int = 64, *, k: int = 8,
                min_prob: Optional[float] = None, **generate_kwargs: Any) -> Any:
    """``model.generate(input_ids, ...)`` (greedy, assisted generation) with the
    drafter as transformers' candidate generator; returns what generate returns."""
    import torch

    if not torch.is_tensor(input_ids):
        input_ids = torch.tensor([_prompt_list(input_ids)], device=model.device)
    gen = DrafterCandidateGenerator(drafter, k=k, max_length=input_ids.shape[1] + max_new_tokens,
                                    min_prob=min_prob)

    def _get_candidate_generator(*args: Any, **kwargs: Any) -> Any:
        return gen

    model._get_candidate_generator = _get_candidate_generator  # instance attribute shadows the method
    try:
        return model.generate(input_ids, max_new_tokens=max_new_tokens, do_sample=False,
                              prompt_lookup_num_tokens=k, **generate_kwargs)
    finally:
        del model._get_candidate_generator
        drafter.stop(gen.request_id, learn=None)
