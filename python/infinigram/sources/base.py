"""The document stream every source yields, and what sources share.

A source is an iterable of :data:`Document` tuples ``(payload, metadata,
source, n)``: ``payload`` is the text (``str``) of a text source or the token
ids (a 1-d numpy integer array) of a token source; ``metadata`` is a JSON-able
dict stored with the document; ``source`` names where it came from (a file, a
dataset) and ``n`` the line (JSONL: 1-based), row (Parquet, datasets,
iterables: 0-based) or document (token files: 0-based) there, which
:meth:`Source.where` turns into the ``file:line`` / ``file: row N`` prefix of
every error about it.

Sources stream: none holds more than one batch of documents (or one
memory-mapped file) at a time.
"""

from __future__ import annotations

import abc
import base64
import datetime as _dt
import decimal
import math
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError

__all__ = ["Document", "Source", "check_text", "json_safe", "split_metadata_fields"]

#: (text or token ids, metadata, source name, line/row/document number)
Document = Tuple[Union[str, np.ndarray], Dict[str, Any], str, int]


class Source(abc.ABC):
    """Base of every source. Subclasses set the attributes and implement ``__iter__``.

    Attributes:
        kind: ``"text"`` (payloads are ``str``, tokenized by the build) or
            ``"tokens"`` (payloads are token-id arrays, stored as they are).
        unit: what ``n`` of a document counts: ``"line"`` (1-based, shown as
            ``file:12``), ``"row"`` or ``"document"`` (0-based, shown as
            ``file: row 12``).
        files: input files (recorded in the manifest), possibly empty.
        total_bytes: size of the input in bytes (on disk, or an estimate of
            the text for in-memory inputs; 0 when unknown): drives the
            progress bar and the automatic shard size.
        positions_hint: token positions (tokens + one per document) when known
            exactly or nearly (token sources), else None (estimated from bytes).
        skipped_invalid: documents skipped with ``skip_invalid``.
        n_docs: documents yielded so far.
        token_dtype: numpy dtype of token payloads (token sources only).
    """

    kind: str = "text"
    unit: str = "row"
    files: List[str] = []
    total_bytes: int = 0
    positions_hint: Optional[int] = None
    skipped_invalid: int = 0
    n_docs: int = 0
    token_dtype: Optional[np.dtype] = None
    name: str = "input"

    @property
    def bytes_read(self) -> int:
        """Progress in the units of :attr:`total_bytes`."""
        return 0

    def where(self, source: str, n: int) -> str:
        """``file:12`` (lines) or ``file: row 12`` (rows, documents)."""
        return f"{source}:{n}" if self.unit == "line" else f"{source}: {self.unit} {n}"

    def error(self, message: str, source: str, n: Optional[int] = None) -> InputError:
        """An :class:`InputError` about document ``n`` of ``source`` (or the whole source)."""
        if n is None:
            return InputError(message, source)
        if self.unit == "line":
            return InputError(message, source, n)
        return InputError(f"{self.unit} {n}: {message}", source)

    def describe(self) -> str:
        """What was read, for the 'no documents' error: '3 input file(s)', 'the iterable'."""
        return f"{len(self.files)} input file(s)" if self.files else self.name

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Document]:
        """The documents, in order; read once."""


def check_text(text: Any, field: str) -> Optional[str]:
    """None when ``text`` is a valid Unicode ``str``, else what is wrong with it
    (a message ending in what was expected). O(len(text)) for non-ASCII text."""
    if not isinstance(text, str):
        what = "null" if text is None else f"a {type(text).__name__}"
        return f"field {field!r} is {what} (expected a string)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            return f"field {field!r} holds a lone surrogate at character {e.start} (expected valid Unicode)"
    return None


def json_safe(value: Any) -> Any:
    """``value`` as something ``json.dumps`` stores faithfully (documented in docs/FORMAT.md):

    * ``bytes`` → ``{"$base64": "..."}`` (binary columns, e.g. images);
    * ``datetime``/``date``/``time`` → ISO 8601 strings; ``timedelta`` → seconds (float);
    * ``Decimal`` → its string; NaN/±inf floats → None (JSON has no such numbers);
    * numpy scalars/arrays → Python numbers/lists; tuples/sets → lists;
    * dicts (structs) and lists recursively, with string keys; a map column's
      list of (key, value) pairs stays a list of pairs.

    O(size of the value).
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return str(value)


def split_metadata_fields(fields: Union[None, str, Sequence[str]]) -> Optional[List[str]]:
    """``"a,b"`` / ``["a", "b"]`` → ``["a", "b"]``; None → None (keep every field)."""
    if fields is None:
        return None
    if isinstance(fields, str):
        fields = [f for f in (x.strip() for x in fields.split(",")) if f]
    out = [str(f) for f in fields]
    if len(set(out)) != len(out):
        raise InputError(f"metadata fields {out} name a field twice (expected distinct names)")
    return out
