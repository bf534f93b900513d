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
candidate generator, so the adapter temporarily overrides the model's private
``_get_candidate_generator`` and wraps the prompt-lookup generator it returns;
tested with the transformers versions in ``TESTED_TRANSFORMERS``;
``check_transformers()`` says whether the installed one fits).

torch and transformers are imported lazily: ``import infinigram`` never needs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Hashable, List, Optional, Sequence, Tuple, Union

from .drafter import Drafter
from .errors import InfinigramError

__all__ = ["SpecResult", "generate", "greedy", "hf_generate", "check_transformers", "drafter_candidate_generator",
           "IncompatibleTransformersError", "TESTED_TRANSFORMERS"]


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
                past = _crop(past, n_prompt + len(res.tokens))
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


def _crop(cache: Any, length: int) -> Any:
    """Cuts a transformers KV cache to its first `length` positions and
    returns it: a Cache object is cropped in place (negative crop: removes
    that many; understood by 4.4x and 5.x); the legacy tuple of (key, value)
    tensors that 4.45 returns when no cache is passed in is sliced."""
    if isinstance(cache, tuple):
        return tuple(tuple(t[..., :length, :] for t in layer) for layer in cache)
    extra = int(cache.get_seq_length()) - length
    if extra > 0:
        cache.crop(-extra)
    return cache


# -------------------------------------------------------- transformers adapter
# transformers has no public argument for a custom candidate generator. The
# adapter asks transformers for its own prompt-lookup generator (through the
# private ``GenerationMixin._get_candidate_generator``) and turns that very
# object into a drafter-backed one: a subclass of its class whose
# ``get_candidates`` asks the Drafter, with every attribute transformers set on
# it kept. So whatever the assisted-decoding loop reads from a prompt-lookup
# generator (``num_drafting_tokens`` since 5.2x, ``requires_model_outputs``,
# ``vocab_size``, ...) is there, in the installed version's own terms; a
# hand-written CandidateGenerator broke when 5.2x began reading
# ``num_drafting_tokens``. What remains private is the hook's name and the
# prompt-lookup class: :func:`check_transformers` checks both.

#: transformers versions the adapter is tested with (CI runs both ends:
#: the newest through ``constraints/tested.txt``, the oldest pyproject allows).
TESTED_TRANSFORMERS = ("4.45.2", "5.25.0")


class IncompatibleTransformersError(InfinigramError, RuntimeError):
    """The installed transformers lacks the private interface ``hf_generate``
    uses; the message names the installed version and the tested ones."""


def _transformers_version() -> str:
    try:
        import transformers
    except ImportError:
        return "not installed"
    return str(getattr(transformers, "__version__", "unknown"))


def _incompatible(what: str) -> IncompatibleTransformersError:
    return IncompatibleTransformersError(
        f"infinigram.speculative.hf_generate cannot drive transformers {_transformers_version()}: {what}. "
        f"It is tested with transformers {TESTED_TRANSFORMERS[0]} to {TESTED_TRANSFORMERS[1]} "
        f"(pip install 'transformers=={TESTED_TRANSFORMERS[1]}'); infinigram.speculative.generate "
        "needs no private interface and works without it.")


def check_transformers() -> Tuple[type, str]:
    """Checks that the installed transformers has what :func:`hf_generate`
    relies on: ``GenerationMixin._get_candidate_generator`` and
    ``PromptLookupCandidateGenerator.get_candidates``. Returns
    ``(PromptLookupCandidateGenerator, version)``; raises
    :class:`IncompatibleTransformersError` naming the version otherwise."""
    try:
        from transformers.generation import candidate_generator as cg
        from transformers.generation.utils import GenerationMixin
    except ImportError as e:
        raise _incompatible(f"its generation modules do not import ({e})") from e
    if not callable(getattr(GenerationMixin, "_get_candidate_generator", None)):
        raise _incompatible("GenerationMixin._get_candidate_generator (the private hook) is gone")
    pl = getattr(cg, "PromptLookupCandidateGenerator", None)
    if not isinstance(pl, type) or not callable(getattr(pl, "get_candidates", None)):
        raise _incompatible("transformers.generation.candidate_generator.PromptLookupCandidateGenerator is gone")
    return pl, _transformers_version()


_GEN_CLASSES: dict = {}


def _drafter_class(base: type) -> type:
    """The drafter-backed subclass of transformers' prompt-lookup class (one per class)."""
    cls = _GEN_CLASSES.get(base)
    if cls is None:
        cls = type("DrafterCandidateGenerator", (base,), {
            "__doc__": "transformers' prompt-lookup candidate generator, drafting with an infinigram Drafter.",
            "get_candidates": _cg_get, "update_candidate_strategy": _cg_update})
        _GEN_CLASSES[base] = cls
    return cls


def drafter_candidate_generator(base: Any, drafter: Drafter, k: int = 8, min_prob: Optional[float] = None,
                                request_id: Hashable = None) -> Any:
    """Turns ``base``, a ``PromptLookupCandidateGenerator`` that transformers
    made for this ``generate`` call, into one that drafts with ``drafter``
    (up to ``k`` tokens per step, ``min_prob`` as in :meth:`Drafter.propose`).
    All of ``base``'s attributes are kept; ``num_output_tokens`` becomes ``k``."""
    gen = object.__new__(_drafter_class(type(base)))
    gen.__dict__.update(base.__dict__)
    gen.num_output_tokens = k
    gen.drafter = drafter
    gen.k = k
    gen.min_prob = min_prob
    gen.request_id = request_id if request_id is not None else ("hf", id(gen))
    return gen


def _cg_get(self: Any, input_ids: Any, **kwargs: Any) -> Any:
    import torch

    ids = input_ids[0].tolist()
    k = self.k
    max_length = getattr(self, "max_length", None)
    if max_length is not None:
        k = min(k, int(max_length) - len(ids) - 1)
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
    drafter as transformers' candidate generator; returns what generate returns.

    Raises :class:`IncompatibleTransformersError` (naming the installed
    version) when transformers lacks the private hook this relies on, or when
    its assisted-decoding loop asks the generator for something it does not
    have, instead of an AttributeError from inside transformers."""
    import torch

    pl_class, version = check_transformers()
    if not torch.is_tensor(input_ids):
        input_ids = torch.tensor([_prompt_list(input_ids)], device=model.device)
    made: List[Any] = []
    original = model._get_candidate_generator  # the bound method, resolved before the override

    def _get_candidate_generator(*args: Any, **kwargs: Any) -> Any:
        base = original(*args, **kwargs)
        if not isinstance(base, pl_class):
            raise _incompatible(f"with prompt_lookup_num_tokens set, _get_candidate_generator returned "
                                f"{type(base).__name__}, not PromptLookupCandidateGenerator")
        made.append(drafter_candidate_generator(base, drafter, k=k, min_prob=min_prob))
        return made[-1]

    model._get_candidate_generator = _get_candidate_generator  # instance attribute shadows the method
    try:
        return model.generate(input_ids, max_new_tokens=max_new_tokens, do_sample=False,
                              prompt_lookup_num_tokens=k, **generate_kwargs)
    except (AttributeError, TypeError) as e:
        # transformers asking our generator for something it lacks, or calling
        # it with arguments it does not take: a contract change, said plainly.
        if made and (getattr(e, "obj", None) is made[-1] or "DrafterCandidateGenerator" in str(e)):
            raise _incompatible(f"its assisted-decoding loop failed on the drafter's candidate generator ({e})") from e
        raise
    finally:
        del model._get_candidate_generator
        for gen in made:
            drafter.stop(gen.request_id, learn=None)
