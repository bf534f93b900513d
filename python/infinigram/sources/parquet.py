"""Parquet files (``.parquet``; directories of them), read one row group at a time.

Needs pyarrow (the ``parquet`` extra). Memory: the columns read of one row
group (pyarrow decodes a row group's column chunks), handed on as batches of
``batch_rows`` rows; never a whole file. Only the text column and the
metadata columns kept are read. Errors name the
file and the row (0-based over the file): ``f.parquet: row 1234: ...``; a
damaged row group names the rows it holds. Column treatment: see
:mod:`infinigram.sources.arrow`.
"""

from __future__ import annotations

from typing import Any, Iterator, List, Optional, Sequence

from ..errors import InputError
from .arrow import batch_documents, plan_columns
from .base import Document, Source

__all__ = ["ParquetSource", "require_pyarrow"]


def require_pyarrow() -> Any:
    """``pyarrow.parquet``, or an InputError saying how to install it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow: pip install 'infinigram[parquet]' (or pip install pyarrow)") from None
    return pq


class ParquetSource(Source):
    """Documents of Parquet files, one per row.

    ``total_bytes`` is the uncompressed size of the text column (from the
    files' footers: close to the text's UTF-8 size), which sizes shards and
    drives the progress bar. Opening reads only the footers: O(row groups).
    """

    unit = "row"

    def __init__(self, files: Sequence[str], text_field: str = "text", metadata_fields: Optional[List[str]] = None,
                 skip_invalid: bool = False, batch_rows: int = 1024) -> None:
        pq = require_pyarrow()
        self.files = list(files)
        self.text_field = text_field
        self.skip_invalid = skip_invalid
        self.batch_rows = int(batch_rows)
        self.skipped_invalid = 0
        self.n_docs = 0
        self._cols: List[List[str]] = []
        self._rg_bytes: List[List[int]] = []
        for f in self.files:
            try:
                meta = pq.ParquetFile(f).metadata
                schema = meta.schema.to_arrow_schema()
            except Exception as e:  # ArrowInvalid (not Parquet), OSError
                raise InputError(f"not a readable Parquet file ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                                 " (expected a .parquet file)", f) from None
            cols = plan_columns(schema, text_field, metadata_fields, f)
            self._cols.append(cols)
            sizes = []
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                # leaf columns: the text column is flat, so its leaf index is found by path
                size = next((rg.column(j).total_uncompressed_size for j in range(rg.num_columns)
                             if rg.column(j).path_in_schema == text_field), 0)
                sizes.append(int(size))
            self._rg_bytes.append(sizes)
        self.total_bytes = sum(sum(s) for s in self._rg_bytes)
        self._done = 0

    @property
    def bytes_read(self) -> int:
        return self._done

    def __iter__(self) -> Iterator[Document]:
        pq = require_pyarrow()
        for f, cols, sizes in zip(self.files, self._cols, self._rg_bytes):
            pf = pq.ParquetFile(f)
            row = 0
            for g in range(pf.metadata.num_row_groups):
                n_rows = pf.metadata.row_group(g).num_rows
                first = row
                try:
                    batches = pf.iter_batches(batch_size=self.batch_rows, row_groups=[g],
                                              columns=[self.text_field] + cols, use_threads=False)
                    while True:
                        try:
                            batch = next(batches)
                        except StopIteration:
                            break
                        for text, meta, r, problem in batch_documents(batch, self.text_field, cols, row):
                            if problem is not None:
                                if not self.skip_invalid:
                                    raise self.error(problem, f, r)
                                self.skipped_invalid += 1
                                continue
                            self.n_docs += 1
                            yield text, meta, f, r
                        row += batch.num_rows
                except InputError:
                    raise
                except Exception as e:  # damaged pages, bad encodings
                    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                    raise InputError(f"row group {g} (rows {first}..{first + n_rows - 1}) cannot be read ({msg}) "
                                     "(expected a valid Parquet file)", f) from None
                row = first + n_rows
                self._done += sizes[g]
