"""Stage 5, the manifest: what the build made (written last, before the rename)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from .. import format as fmt
from ..sources.base import Source

__all__ = ["make_manifest"]


def _version() -> str:
    from .. import __version__

    return __version__


def make_manifest(shards: List[Tuple[Any, Dict[str, Any]]], *, backend: str, width: int, sep: int,
                  tokenizer: Dict[str, Any], text_field: Optional[str], n_docs: int, n_tokens: int,
                  n_positions: int, sa_sample: int, isa_sample: int, wt_block_bits: int, source: Source,
                  encoder: Dict[str, Any], seconds: float,
                  stages: Optional[Dict[str, float]] = None) -> Dict[str, Any]:
    """The manifest dict (docs/FORMAT.md). ``build`` records the inputs (files,
    or the name of an in-memory source), their size, the input kind, the
    encoder used (``build.encoder``, informational) and timings (``build.stages``:
    seconds the build's thread spent reading+waiting for tokens, writing shards,
    and waiting for the constructions after the last shard). O(shards)."""
    shard_entries = [
        {k: e[k] for k in ("dir", "n_docs", "n_tokens", "n_positions", "ptr_width", "doc_base", "files")}
        for _, e in shards
    ]
    inputs = [os.path.abspath(os.fspath(p)) for p in source.files] or [source.describe()]
    return {
        "format": fmt.FORMAT_NAME,
        "format_version": fmt.FORMAT_VERSION,
        "backend": backend,
        "token_width": width,
        "separator": sep,
        "tokenizer": tokenizer,
        **({"text_field": text_field} if text_field is not None else {}),
        "n_docs": n_docs,
        "n_tokens": n_tokens,
        "n_positions": n_positions,
        "shards": shard_entries,
        **({"fm": {"sa_sample": int(sa_sample), "isa_sample": int(isa_sample),
                   "wt_block_bits": int(wt_block_bits)}} if backend == "fm" else {}),
        "build": {
            "inputs": inputs,
            "input_kind": type(source).__name__,
            "input_bytes": int(source.total_bytes),
            "skipped_invalid": int(source.skipped_invalid),
            **({"encoder": encoder} if encoder else {}),
            "seconds": round(seconds, 3),
            **({"stages": stages} if stages else {}),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "infinigram_version": _version(),
        },
    }
