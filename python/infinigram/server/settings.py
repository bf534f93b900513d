"""The server's limits and knobs, as named settings with defaults.

Every limit has a name (the field below), a default, a command-line flag
(``--max-body-bytes`` for ``max_body_bytes``: the name with dashes) and the
HTTP status a request exceeding it gets. An error answer names the limit it
hit (``"limit": "max_query_tokens"``) and its value, so a client can adapt.

Worker processes (``--workers N``) receive the settings through the
environment (:meth:`Settings.to_env` / :meth:`Settings.from_env`), since
uvicorn starts them by importing an app factory.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Tuple

__all__ = ["Settings", "LIMITS", "ENV_CONFIG", "ENV_API_KEY"]

ENV_CONFIG = "INFINIGRAM_SERVE_CONFIG"
"""Environment variable holding the JSON config of worker processes (indexes and settings)."""

ENV_API_KEY = "INFINIGRAM_API_KEY"
"""Environment variable holding the API key (``--api-key`` overrides it)."""


def _default_concurrency() -> int:
    return max(4, 2 * (os.cpu_count() or 1))


@dataclass
class Settings:
    """Limits (requests beyond them are refused with a JSON error naming the
    limit) and tuning knobs of one server. Units are in the names: ``_bytes``,
    ``_tokens``, ``_s`` (seconds); counts otherwise."""

    # --------------------------------------------------------------- limits
    max_body_bytes: int = 1 << 20
    """Largest request body (bytes); 413 beyond."""
    max_query_tokens: int = 1000
    """Longest n-gram query (tokens after tokenization): count, prob, ntd, find, search_docs, each CNF term; 422."""
    max_text_tokens: int = 100_000
    """Longest text to score / match / check for contamination (tokens); 422."""
    max_maxnum: int = 100
    """Most documents one search may return (``maxnum``); 422."""
    max_batch: int = 10_000
    """Most queries in one batched request (``count_many``); 422."""
    max_cnf_clauses: int = 8
    """Most AND-clauses in a CNF query; 422."""
    max_cnf_terms: int = 8
    """Most OR-terms in one CNF clause; 422."""
    max_support: int = 10_000
    """Largest ``max_support`` of a next-token distribution (sampling bound); 422."""
    max_clause_freq: int = 500_000
    """Largest ``max_clause_freq`` of a CNF query (anchor occurrences tested); 422."""
    max_diff_tokens: int = 1000
    """Largest ``max_diff_tokens`` of a CNF query; 422."""
    max_disp_len: int = 10_000
    """Most tokens shown per document (``max_disp_len``, or 2 x ``context`` + the match); 422."""
    max_doc_tokens: int = 1_000_000
    """Most tokens of one whole document returned by ``/v1/{index}/document``; 422."""
    max_docs: int = 100
    """Most source documents listed per maximal match (``max_docs``); 422."""
    time_budget_s: float = 10.0
    """Wall-clock budget of one request's engine work (waiting for a worker thread included); 429 beyond."""
    max_concurrent: int = _default_concurrency()
    """Engine calls running in worker threads at once (others wait, within their time budget)."""
    # ---------------------------------------------------------------- knobs
    inline_max_tokens: int = 1000
    """Short calls (count, find, prob, infgram_prob) with at most this many query tokens run on the
    event loop, without a thread hop (they take microseconds); longer ones go to the thread pool."""
    inline_max_chars: int = 1000
    """Query text longer than this (characters) is tokenized in the thread pool, not on the event loop."""
    inline_max_tokens_fm: int = 64
    """The same bound on an FM-index, whose backward search costs O(m) rank steps (about 0.3 µs per
    token and shard: 1,000 tokens took ~300 µs on 11 MB of English); the smaller of the two applies."""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"setting {f.name} must be a number, got {v!r}")
            if v < 0 or (v == 0 and not f.name.startswith("inline_")):
                raise ValueError(f"setting {f.name} must be > 0, got {v!r}")

    # ------------------------------------------------------------ plumbing
    def to_env(self) -> Dict[str, Any]:
        """The settings as a JSON-able dict (for worker processes)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Settings":
        """Settings from a dict; unknown names raise ``ValueError``."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**d)

    @staticmethod
    def dump_config(indexes: Dict[str, str], settings: "Settings") -> str:
        """JSON of a worker's config: index name -> path, and the settings."""
        return json.dumps({"indexes": indexes, "settings": settings.to_env()})

    @classmethod
    def flag_specs(cls) -> List[Tuple[str, str, type, Any, str]]:
        """(setting name, --flag, type, default, help) of every setting, for the CLI."""
        out = []
        for f in fields(cls):
            default = getattr(cls(), f.name)
            out.append((f.name, "--" + f.name.replace("_", "-"), type(default), default, LIMITS.get(f.name, "")))
        return out


# Help text of each setting's CLI flag (what it bounds, and the status beyond it).
LIMITS: Dict[str, str] = {
    "max_body_bytes": "largest request body in bytes (413 beyond)",
    "max_query_tokens": "longest n-gram query in tokens (422)",
    "max_text_tokens": "longest text to score / match / check, in tokens (422)",
    "max_maxnum": "most documents per search (422)",
    "max_batch": "most queries per batched request (422)",
    "max_cnf_clauses": "most AND-clauses per CNF query (422)",
    "max_cnf_terms": "most OR-terms per CNF clause (422)",
    "max_support": "largest max_support of a next-token distribution (422)",
    "max_clause_freq": "largest max_clause_freq of a CNF query (422)",
    "max_diff_tokens": "largest max_diff_tokens of a CNF query (422)",
    "max_disp_len": "most tokens shown per document window (422)",
    "max_doc_tokens": "most tokens of a whole document returned (422)",
    "max_docs": "most source documents per maximal match (422)",
    "time_budget_s": "seconds of engine work per request, queueing included (429 beyond)",
    "max_concurrent": "engine calls in worker threads at once (the rest queue within their time budget)",
    "inline_max_tokens": "count/find/prob/infgram_prob queries up to this many tokens run on the event loop",
    "inline_max_chars": "query texts longer than this are tokenized in the thread pool",
    "inline_max_tokens_fm": "the same as --inline-max-tokens on an FM-index (its search costs O(query length))",
}
