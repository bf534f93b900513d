"""Turning request fields into token ids, with the checks every route shares:
valid Unicode text, token ids inside the index's vocabulary, lengths within
the limits, CNF shapes. Pure functions of (index entry, settings, fields);
they raise :class:`~infinigram.server.errors.ApiError`.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

import numpy as np

from .errors import ApiError, limit_error
from .settings import Settings
from .state import IndexEntry

__all__ = ["check_text", "check_ids", "encode", "resolve", "is_cheap", "cnf_ids", "check_upper", "to_list"]

Ids = Union[List[int], np.ndarray]


def check_text(text: str, what: str) -> None:
    """400 ``invalid_utf8`` when ``text`` cannot be encoded as UTF-8 (a lone
    surrogate from a JSON ``\\ud800`` escape). O(len)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ApiError(400, "invalid_utf8", f"{what} is not valid Unicode text (a lone surrogate at "
                                             f"character {e.start})") from None


def check_ids(entry: IndexEntry, ids: Sequence[Any], what: str) -> None:
    """422 unless every element is an int in ``[0, vocab_size)``. O(len)."""
    if not ids:
        return
    if not all(type(t) is int for t in ids):
        bad = next(t for t in ids if type(t) is not int)
        raise ApiError(422, "invalid_query", f"{what} must be a list of integer token ids (found {type(bad).__name__})")
    lo, hi = min(ids), max(ids)
    if lo < 0 or hi >= entry.vocab_size:
        t = lo if lo < 0 else hi
        raise ApiError(422, "token_out_of_vocab",
                       f"{what}: token id {t} is outside the vocabulary of index {entry.name!r} [0, {entry.vocab_size})")


def encode(entry: IndexEntry, text: str, what: str, max_tokens: int, limit: str) -> np.ndarray:
    """Token ids of ``text`` with the index's tokenizer, at most ``max_tokens``
    of them (else 422 naming ``limit``). O(len(text))."""
    check_text(text, what)
    ids = entry.index.encode(text)
    if len(ids) > max_tokens:
        raise limit_error(limit, max_tokens, f"{what} has {len(ids)} tokens")
    return ids


def check_len(ids: Sequence[Any], what: str, max_tokens: int, limit: str) -> None:
    if len(ids) > max_tokens:
        raise limit_error(limit, max_tokens, f"{what} has {len(ids)} tokens")


def resolve(entry: IndexEntry, query: Optional[str], query_ids: Optional[Sequence[Any]], *, max_tokens: int,
            limit: str = "max_query_tokens", allow_empty: bool = True, text_name: str = "query",
            ids_name: str = "query_ids") -> Ids:
    """The token ids of a query given as text (``query``) or as ids
    (``query_ids``): exactly one must be given."""
    if (query is None) == (query_ids is None):
        raise ApiError(422, "invalid_query", f"give exactly one of {text_name!r} (text) or {ids_name!r} (token ids)")
    if query is not None:
        if not isinstance(query, str):
            raise ApiError(422, "invalid_query", f"{text_name} must be a string")
        ids: Ids = encode(entry, query, text_name, max_tokens, limit)
    else:
        if not isinstance(query_ids, list):
            raise ApiError(422, "invalid_query", f"{ids_name} must be a list of integer token ids")
        check_len(query_ids, ids_name, max_tokens, limit)
        check_ids(entry, query_ids, ids_name)
        ids = query_ids  # type: ignore[assignment]
    if not allow_empty and len(ids) == 0:
        raise ApiError(422, "invalid_query", f"the {text_name if query is not None else ids_name} must not be empty")
    return ids


def to_list(ids: Ids) -> List[int]:
    """Token ids as a list of Python ints (for JSON)."""
    return ids.tolist() if isinstance(ids, np.ndarray) else [int(t) for t in ids]


def is_cheap(settings: Settings, entry: IndexEntry, query: Any, query_ids: Any) -> bool:
    """Whether a short call (count, find, prob, infgram_prob) on this query may
    run on the event loop: at most ``entry.inline_tokens`` tokens (the token
    count of a text is at most its UTF-8 length, for both tokenizer kinds)
    and a text of at most ``inline_max_chars`` characters, so tokenizing it
    and searching take microseconds (see ``state.py``).
    ``inline_max_tokens = 0`` sends every call to the thread pool."""
    limit = entry.inline_tokens
    if limit <= 0:
        return False
    if isinstance(query, str):
        return len(query) <= settings.inline_max_chars and len(query.encode("utf-8", "surrogatepass")) <= limit
    if isinstance(query_ids, list):
        return len(query_ids) <= limit
    return True  # an invalid request: answered with an error at once


def check_upper(value: Optional[int], settings: Settings, limit: str, what: str) -> None:
    """422 naming ``limit`` when ``value`` exceeds ``settings.<limit>``."""
    cap = getattr(settings, limit)
    if value is not None and value > cap:
        raise limit_error(limit, cap, f"{what} = {value} is too large")


def cnf_ids(entry: IndexEntry, settings: Settings, cnf: Any) -> List[List[Ids]]:
    """A CNF (AND of OR-clauses; each term a string or a token-id list) as
    token ids, checked: at most ``max_cnf_clauses`` clauses of at most
    ``max_cnf_terms`` non-empty terms of at most ``max_query_tokens`` tokens."""
    if not isinstance(cnf, list) or not cnf:
        raise ApiError(422, "invalid_query", "cnf must be a non-empty list of clauses, each a non-empty list of "
                                             "n-grams (strings or token-id lists)")
    if len(cnf) > settings.max_cnf_clauses:
        raise limit_error("max_cnf_clauses", settings.max_cnf_clauses, f"the CNF has {len(cnf)} clauses")
    out: List[List[Ids]] = []
    for i, clause in enumerate(cnf):
        if not isinstance(clause, list) or not clause:
            raise ApiError(422, "invalid_query", f"CNF clause {i} must be a non-empty list of n-grams "
                                                 "(strings or token-id lists)")
        if len(clause) > settings.max_cnf_terms:
            raise limit_error("max_cnf_terms", settings.max_cnf_terms, f"CNF clause {i} has {len(clause)} terms")
        terms: List[Ids] = []
        for j, t in enumerate(clause):
            what = f"CNF clause {i} term {j}"
            if isinstance(t, str):
                ids: Ids = encode(entry, t, what, settings.max_query_tokens, "max_query_tokens")
            elif isinstance(t, list):
                check_len(t, what, settings.max_query_tokens, "max_query_tokens")
                check_ids(entry, t, what)
                ids = t
            else:
                raise ApiError(422, "invalid_query", f"{what} must be a string or a list of token ids")
            if len(ids) == 0:
                raise ApiError(422, "invalid_query", f"{what} is empty")
            terms.append(ids)
        out.append(terms)
    return out
