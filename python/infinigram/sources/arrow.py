"""Arrow record batches → documents (shared by Parquet files and ``datasets``).

Column treatment (docs/FORMAT.md, "Metadata of columnar inputs"):

* the text column (``text_field``) must be a string column (``string``,
  ``large_string``, ``string_view``) or a binary one holding UTF-8
  (``binary``, ``large_binary``: decoded, an invalid row is an error naming
  it); any other type is refused before reading;
* every other column (or only ``metadata_fields``) becomes metadata: strings,
  integers and booleans as they are; floats with NaN/inf as null; binary as
  ``{"$base64": ...}``; timestamps/dates as ISO 8601 strings; decimals as
  strings; structs as objects, lists as arrays, maps as lists of
  ``[key, value]`` pairs (see :func:`~infinigram.sources.base.json_safe`);
* a null value leaves its field out of that document's metadata (a Parquet
  file is rectangular: null is how a row says "absent").
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import InputError
from .base import check_text, json_safe

__all__ = ["plan_columns", "batch_documents"]


def _is_text_type(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t)


def _is_binary_type(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or getattr(pa.types, "is_binary_view", lambda _: False)(t)


def _is_plain(t: Any) -> bool:
    """Columns whose Python values need no conversion for JSON."""
    import pyarrow as pa

    return _is_text_type(t) or pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_null(t)


def plan_columns(schema: Any, text_field: str, metadata_fields: Optional[List[str]], where: str) -> List[str]:
    """The metadata columns to read, after checking ``schema``: the text column
    exists with a usable type, every asked metadata column exists. Raises
    :class:`InputError` prefixed by ``where`` (a file or dataset name)."""
    names = list(schema.names)
    if text_field not in names:
        raise InputError(f"no column {text_field!r} (expected the text column named by --text-field / text_field; "
                         f"columns here: {', '.join(names[:12]) or 'none'})", where)
    t = schema.field(text_field).type
    if not (_is_text_type(t) or _is_binary_type(t)):
        raise InputError(f"column {text_field!r} is of type {t} (expected a string column, or binary holding UTF-8)",
                         where)
    if metadata_fields is None:
        return [n for n in names if n != text_field]
    missing = [f for f in metadata_fields if f not in names]
    if missing:
        raise InputError(f"no column(s) {', '.join(map(repr, missing))} for --metadata-fields (columns here: "
                         f"{', '.join(names[:12])})", where)
    return [f for f in metadata_fields if f != text_field]


def batch_documents(batch: Any, text_field: str, meta_cols: List[str], row0: int
                    ) -> Iterator[Tuple[Optional[str], Dict[str, Any], int, Optional[str]]]:
    """``(text, metadata, row, problem)`` of each row of an Arrow ``RecordBatch``
    or ``Table``; ``row`` counts from ``row0``; ``problem`` is None or what is
    wrong with the row's text (then ``text`` is None). O(batch size)."""
    col = batch.column(text_field)
    texts = col.to_pylist()
    binary = _is_binary_type(col.type)
    metas: List[List[Any]] = []
    for name in meta_cols:
        c = batch.column(name)
        vals = c.to_pylist()
        if not _is_plain(c.type):
            vals = [None if v is None else json_safe(v) for v in vals]
        metas.append(vals)
    for i, text in enumerate(texts):
        meta = {name: vals[i] for name, vals in zip(meta_cols, metas) if vals[i] is not None}
        if binary and text is not None:
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as e:
                yield None, meta, row0 + i, (f"column {text_field!r}: invalid UTF-8 (byte 0x{text[e.start]:02x} at "
                                             f"byte {e.start}) (expected UTF-8 text)")
                continue
        problem = check_text(text, text_field)
        yield (None if problem else text), meta, row0 + i, problem
