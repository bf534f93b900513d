"""∞-gram perplexity, alone and interpolated with a neural language model.

For every token ``x_i`` of a text (in the index's tokens) the ∞-gram gives
``p_inf(x_i | x_<i)`` (:meth:`infinigram.Index.infgram_logprobs`: the longest
suffix of the context that occurs with a next token). It is 0 when that suffix
was never followed by ``x_i`` (the ∞-gram is sparse), so its perplexity alone is
often infinite; we report it with the fraction of zero-probability tokens and
the perplexity over the tokens it does not zero.

Interpolation (infini-gram paper, Liu et al. 2024): ``p = lam * p_inf + (1 -
lam) * p_neural`` per token; ``lam`` is tuned on a held-out split of the texts
(every other text, grid 0.00..0.99) and the perplexities are reported on the
other split, or ``lam`` is given and everything is evaluated.

Neural log-probs (natural log) must be aligned with the index's tokens: either
precomputed (a list of arrays, a ``.npy`` file with all texts' values
concatenated, or a JSONL file with a ``"logprobs"`` list per text), or computed
by a local Hugging Face causal LM (``model=``: a directory or a ``.gguf`` file;
needs ``torch`` and ``transformers``, plus ``gguf`` for GGUF files). If the
model's tokenizer is not the index's and the index is a bytes index, each model
token's log-prob is spread evenly over its UTF-8 bytes (the per-text total is
exact; per-byte values are an approximation); other mismatches are an error.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .reference import _need

__all__ = ["perplexity", "infgram_logprobs", "interpolate", "tune_lambda", "load_neural_logprobs",
           "hf_logprobs", "load_hf_model"]

LAMBDA_GRID = np.round(np.arange(0.0, 1.0, 0.01), 2)


def infgram_logprobs(index: Any, token_seqs: Sequence[np.ndarray], n_threads: int = 0) -> List[np.ndarray]:
    """Per-token ∞-gram log-probs (natural log; -inf where the ∞-gram gives 0)."""
    res = index.infgram_logprobs_many([np.asarray(t, dtype=np.int64) for t in token_seqs], n_threads)
    out = []
    for r in res:
        lp = np.asarray(r.logprobs, dtype=np.float64).copy()
        lp[np.isnan(lp)] = -np.inf
        out.append(lp)
    return out


def interpolate(lp_inf: np.ndarray, lp_neural: np.ndarray, lam: float) -> np.ndarray:
    """log(lam * exp(lp_inf) + (1 - lam) * exp(lp_neural)), elementwise."""
    with np.errstate(divide="ignore"):
        a = np.log(lam) + lp_inf if lam > 0 else np.full_like(lp_inf, -np.inf)
        b = np.log1p(-lam) + lp_neural if lam < 1 else np.full_like(lp_neural, -np.inf)
    return np.logaddexp(a, b)


def _ppl(lp: np.ndarray) -> float:
    if len(lp) == 0:
        return float("nan")
    m = float(np.mean(lp))
    return float("inf") if not math.isfinite(m) else float(math.exp(-m))


def tune_lambda(lp_inf: np.ndarray, lp_neural: np.ndarray, grid: Sequence[float] = tuple(LAMBDA_GRID)) -> float:
    """The lam of ``grid`` with the lowest interpolated perplexity (first on ties)."""
    best, best_nll = 0.0, float("inf")
    for lam in grid:
        nll = -float(np.mean(interpolate(lp_inf, lp_neural, float(lam))))
        if nll < best_nll - 1e-12:
            best, best_nll = float(lam), nll
    return best


def load_neural_logprobs(src: Union[str, Sequence[Any]], lengths: Sequence[int]) -> List[np.ndarray]:
    """Neural log-probs per text from a list, a ``.npy`` (concatenated) or a JSONL file; checked against ``lengths``."""
    if isinstance(src, str):
        if src.endswith(".npy"):
            flat = np.load(src).astype(np.float64).ravel()
            if len(flat) != sum(lengths):
                raise ValueError(f"{src}: {len(flat)} values, but the texts have {sum(lengths)} index tokens")
            offs = np.concatenate([[0], np.cumsum(lengths)])
            arrs = [flat[offs[i]:offs[i + 1]] for i in range(len(lengths))]
        else:
            arrs = []
            with open(src, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        r = json.loads(line)
                        arrs.append(np.asarray(r["logprobs"] if isinstance(r, dict) else r, dtype=np.float64))
    else:
        arrs = [np.asarray(a, dtype=np.float64) for a in src]
    if len(arrs) < len(lengths):
        raise ValueError(f"neural log-probs for {len(arrs)} texts, expected {len(lengths)}")
    arrs = arrs[: len(lengths)]
    for k, (a, n) in enumerate(zip(arrs, lengths)):
        if len(a) != n:
            raise ValueError(f"text {k}: {len(a)} neural log-probs for {n} index tokens (not aligned)")
    return arrs


def load_hf_model(model: str) -> Any:
    """(tokenizer, model) of a local causal LM: a directory, a hub name in the
    local cache, or a ``.gguf`` file (de-quantised to float32)."""
    torch = _need("torch", "a neural model for perplexity", "neural")
    tr = _need("transformers", "a neural model for perplexity", "neural")
    kw: Dict[str, Any] = {}
    path = model
    if model.endswith(".gguf"):
        _need("gguf", "loading a .gguf model", "neural")
        path, kw["gguf_file"] = os.path.dirname(os.path.abspath(model)), os.path.basename(model)
    tok = tr.AutoTokenizer.from_pretrained(path, **kw)  # type: ignore[attr-defined]
    version = tuple(int(x) for x in tr.__version__.split(".")[:2] if x.isdigit())
    # from_pretrained's argument is `dtype` since transformers 4.56, `torch_dtype` before
    kw["dtype" if version >= (4, 56) else "torch_dtype"] = torch.float32
    lm, info = tr.AutoModelForCausalLM.from_pretrained(path, output_loading_info=True, **kw)  # type: ignore[attr-defined]
    if "gguf_file" in kw and "lm_head.weight" in info.get("missing_keys", ()):
        # A GGUF file without output.weight means the head is the token
        # embedding (llama.cpp reads it so); transformers before ~4.50 left
        # the head randomly initialised instead.
        out, emb = lm.get_output_embeddings(), lm.get_input_embeddings()
        if out is not None and emb is not None and out.weight.shape == emb.weight.shape:
            out.weight = emb.weight
    lm.eval()
    return tok, lm


def hf_logprobs(index: Any, texts: Sequence[str], model: Any, max_len: int = 1024) -> List[np.ndarray]:
    """Per-index-token neural log-probs of ``texts`` from a HF causal LM
    (``model``: a path or a loaded ``(tokenizer, model)`` pair). The first token
    is conditioned on the BOS token when the tokenizer has one, else it gets the
    model's log-prob after an empty context approximated by uniform over the
    vocabulary. Long texts are scored in windows of ``max_len`` tokens."""
    import torch  # noqa: F401  (checked by load_hf_model)

    tok, lm = load_hf_model(model) if isinstance(model, str) else model
    bytes_index = index.manifest.get("tokenizer", {}).get("kind") == "bytes"
    out = []
    for text in texts:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        lp_tok = _score_ids(tok, lm, ids, max_len)
        idx_tokens = np.asarray(index.encode(text))
        if not bytes_index:
            if list(idx_tokens.tolist()) != ids:
                raise ValueError("the model's tokenizer differs from the index's; give precomputed, aligned "
                                 "log-probs (--neural-logprobs) or use a bytes index")
            out.append(lp_tok)
            continue
        per_byte = np.zeros(len(idx_tokens), dtype=np.float64)
        char_byte = np.concatenate([[0], np.cumsum([len(c.encode("utf-8")) for c in text])]).astype(np.int64)
        covered = np.zeros(len(idx_tokens), dtype=bool)
        for lp, (a, b) in zip(lp_tok, enc["offset_mapping"]):
            ba, bb = int(char_byte[a]), int(char_byte[b])
            if bb <= ba:
                continue
            seg = slice(ba, bb)
            fresh = ~covered[seg]
            k = int(fresh.sum())
            if k == 0:
                continue
            vals = per_byte[seg]
            vals[fresh] = lp / k
            per_byte[seg] = vals
            covered[seg] |= fresh
        out.append(per_byte)
    return out


def _score_ids(tok: Any, lm: Any, ids: List[int], max_len: int) -> np.ndarray:
    import torch

    bos = tok.bos_token_id
    ctx = [bos] if bos is not None else []
    full = ctx + ids
    res = np.zeros(len(ids), dtype=np.float64)
    if not ids:
        return res
    start = 0
    with torch.no_grad():
        while start < len(ids):
            # window of tokens [start, end) scored with up to max_len // 2 tokens of earlier context
            end = min(len(ids), start + max_len // 2 if start else start + max_len - len(ctx))
            c0 = max(0, start - max_len // 2)
            win = full[c0 + 0: len(ctx) + end]
            inp = torch.tensor([win])
            logits = lm(inp).logits[0].float()
            logp = torch.log_softmax(logits, dim=-1)
            for j in range(start, end):
                pos = len(ctx) + j - c0  # position of token j in win
                if pos == 0:
                    res[j] = -math.log(logp.shape[-1])
                else:
                    res[j] = float(logp[pos - 1, full[len(ctx) + j]])
            start = end
    return res


def perplexity(index: Any, texts: Sequence[str], *, neural_logprobs: Union[None, str, Sequence[Any]] = None,
               model: Any = None, lam: Optional[float] = None, n_threads: int = 0,
               progress: bool = False) -> Dict[str, Any]:
    """∞-gram perplexity of ``texts``, and with a neural LM (precomputed
    ``neural_logprobs`` or a HF ``model``) the interpolated one. Returns a dict:
    ``tokens``, ``ppl_infgram`` (inf if some token gets probability 0),
    ``zero_prob_fraction``, ``ppl_infgram_nonzero``, and with a neural LM
    ``ppl_neural``, ``ppl_interpolated``, ``lambda``, ``lambda_tuned``,
    ``improvement`` (relative perplexity reduction), ``eval_texts``."""
    if not texts:
        raise ValueError("no texts")
    toks = [np.asarray(index.encode(t), dtype=np.int64) for t in texts]
    lp_inf = infgram_logprobs(index, toks, n_threads)
    out: Dict[str, Any] = {}
    neural = None
    if neural_logprobs is not None:
        neural = load_neural_logprobs(neural_logprobs, [len(t) for t in toks])
    elif model is not None:
        neural = hf_logprobs(index, texts, model)
    if neural is None:
        ev = list(range(len(texts)))
    elif lam is None:
        if len(texts) < 2:
            raise ValueError("tuning lambda needs at least 2 texts (a held-out split); give lam")
        tune = list(range(0, len(texts), 2))
        ev = list(range(1, len(texts), 2))
        lam = tune_lambda(np.concatenate([lp_inf[i] for i in tune]), np.concatenate([neural[i] for i in tune]))
        out["lambda_tuned"] = True
    else:
        ev = list(range(len(texts)))
        out["lambda_tuned"] = False
    li = np.concatenate([lp_inf[i] for i in ev]) if ev else np.zeros(0)
    finite = np.isfinite(li)
    out.update({"texts": len(texts), "eval_texts": len(ev), "tokens": int(len(li)),
                "ppl_infgram": _ppl(li), "zero_prob_fraction": float(1 - finite.mean()) if len(li) else 0.0,
                "ppl_infgram_nonzero": _ppl(li[finite])})
    if neural is not None:
        ln = np.concatenate([neural[i] for i in ev])
        p_n = _ppl(ln)
        p_i = _ppl(interpolate(li, ln, float(lam)))  # type: ignore[arg-type]
        out.update({"lambda": float(lam), "ppl_neural": p_n, "ppl_interpolated": p_i,  # type: ignore[arg-type]
                    "improvement": (p_n - p_i) / p_n if p_n and math.isfinite(p_n) else float("nan")})
    return out
