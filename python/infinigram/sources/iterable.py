"""Python iterables of documents: strings, or dicts holding the text and metadata.

Read once, in order, one item at a time (a generator is never materialised).
Item ``i`` (0-based) is a ``str`` (a document without metadata) or a mapping
whose ``text_field`` holds the text and whose other fields (or only
``metadata_fields``) are its metadata, converted as
:func:`~infinigram.sources.base.json_safe` says. Errors name the item:
``<iterable>: row 17: field 'text' is a int (expected a string)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, Iterable, Iterator, List, Optional

from .base import Document, Source, check_text, json_safe

__all__ = ["IterableSource"]


class IterableSource(Source):
    """Documents of an iterable of ``str`` or dicts. ``total_bytes``: the
    characters of text of a list or tuple, ``size_hint`` when the caller
    knows it, else 0 (unknown: ``shard_size="auto"`` then makes one shard up
    to ``AUTO_MAX_SHARD_POSITIONS``, the suffix sort on one core)."""

    unit = "row"

    def __init__(self, items: Iterable[Any], text_field: str = "text", metadata_fields: Optional[List[str]] = None,
                 skip_invalid: bool = False, name: str = "<iterable>", size_hint: int = 0) -> None:
        self._items = items
        self.text_field = text_field
        self.metadata_fields = metadata_fields
        self.skip_invalid = skip_invalid
        self.name = name
        self.files = []
        self.total_bytes = int(size_hint) or self._size_of(items, text_field)
        self.skipped_invalid = 0
        self.n_docs = 0
        self._chars = 0
        self._used = False

    @staticmethod
    def _size_of(items: Any, field: str) -> int:
        """Characters of text in a list/tuple (O(n), no copy); 0 for other iterables (unknown)."""
        if not isinstance(items, (list, tuple)):
            return 0
        n = 0
        for x in items:
            t = x if isinstance(x, str) else x.get(field) if isinstance(x, Mapping) else None
            n += len(t) if isinstance(t, str) else 0
        return n

    @property
    def bytes_read(self) -> int:
        return self._chars

    def describe(self) -> str:
        return self.name

    def _bad(self, message: str, row: int) -> None:
        if not self.skip_invalid:
            raise self.error(message, self.name, row)
        self.skipped_invalid += 1

    def __iter__(self) -> Iterator[Document]:
        if self._used:
            raise self.error("this iterable was read already (a source is read once)", self.name)
        self._used = True
        field, keep = self.text_field, self.metadata_fields
        for row, item in enumerate(self._items):
            if isinstance(item, str):
                text: Any = item
                meta: Dict[str, Any] = {}
            elif isinstance(item, Mapping):
                if field not in item:
                    keys = ", ".join(map(str, list(item)[:8]))
                    self._bad(f"no field {field!r} (expected a string field {field!r}; fields here: {keys or 'none'})",
                              row)
                    continue
                text = item[field]
                if keep is None:
                    meta = {str(k): json_safe(v) for k, v in item.items() if k != field}
                else:
                    meta = {k: json_safe(item[k]) for k in keep if k in item and k != field}
            else:
                self._bad(f"a {type(item).__name__} (expected a str, or a dict with a {field!r} field)", row)
                continue
            problem = check_text(text, field if isinstance(item, Mapping) else "text")
            if problem is not None:
                self._bad(problem if isinstance(item, Mapping) else problem.replace("field 'text' is", "the item is"),
                          row)
                continue
            self.n_docs += 1
            self._chars += len(text)
            yield text, meta, self.name, row
