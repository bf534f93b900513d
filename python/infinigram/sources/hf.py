"""Hugging Face ``datasets``: a ``Dataset``, an ``IterableDataset``, a
``DatasetDict`` with a split named, a directory written by ``save_to_disk``, or
a directory of ``.arrow`` files (a ``load_dataset`` cache).

Needs ``datasets`` (the ``datasets`` extra) only to open directories; objects
are read through their own methods. Nothing is fetched over the network: a
directory is opened with ``HF_DATASETS_OFFLINE=1``, and a dataset object is
read as it is (an ``IterableDataset`` that streams from the Hub would, but
that is the caller's object). A ``Dataset`` is read as Arrow batches of its
memory-mapped table (column treatment: :mod:`infinigram.sources.arrow`);
an ``IterableDataset`` row by row, as dicts. Errors name the dataset and the
0-based row.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any, Iterator, List, Optional

from ..errors import InputError
from .arrow import batch_documents, plan_columns
from .base import Document, Source
from .iterable import IterableSource

__all__ = ["is_hf_dataset", "HFDatasetSource", "open_hf", "load_hf_directory"]


def _cls_names(obj: Any) -> List[str]:
    return [c.__module__.split(".")[0] + "." + c.__name__ for c in type(obj).__mro__]


def is_hf_dataset(obj: Any) -> bool:
    """True for a ``datasets`` Dataset, IterableDataset, DatasetDict or
    IterableDatasetDict (checked by class name: importing datasets is slow)."""
    return any(n in ("datasets.Dataset", "datasets.IterableDataset", "datasets.DatasetDict",
                     "datasets.IterableDatasetDict") for n in _cls_names(obj))


def _pick_split(obj: Any, split: Optional[str], name: str) -> Any:
    """The split of a DatasetDict (the only one when it has one and none is named)."""
    if not isinstance(obj, dict):
        if split is not None:
            raise InputError(f"split {split!r} given, but this is a single dataset, not a DatasetDict", name)
        return obj
    splits = list(obj)
    if split is None:
        if len(splits) == 1:
            return obj[splits[0]]
        raise InputError(f"a DatasetDict with splits {', '.join(splits)}: name one (split=... / --split)", name)
    if split not in obj:
        raise InputError(f"no split {split!r} (splits here: {', '.join(splits) or 'none'})", name)
    return obj[split]


class HFDatasetSource(Source):
    """Documents of a ``datasets.Dataset``: Arrow batches of ``batch_rows`` rows.
    ``total_bytes``: the text column's Arrow size (≈ its UTF-8 bytes)."""

    unit = "row"

    def __init__(self, ds: Any, text_field: str = "text", metadata_fields: Optional[List[str]] = None,
                 skip_invalid: bool = False, name: str = "<dataset>", files: Optional[List[str]] = None,
                 batch_rows: int = 1024) -> None:
        self.ds, self.name, self.text_field, self.skip_invalid = ds, name, text_field, skip_invalid
        self.files = list(files or [])
        self.batch_rows = int(batch_rows)
        self.skipped_invalid = 0
        self.n_docs = 0
        if len(ds) == 0:
            raise InputError("the dataset has no rows (expected at least one document)", name)
        self._cols = plan_columns(ds.data.schema, text_field, metadata_fields, name)
        try:
            self.total_bytes = int(ds.data.column(text_field).nbytes)
            if getattr(ds, "_indices", None) is not None:  # a selection/shuffle: scale to the rows kept
                self.total_bytes = int(self.total_bytes * len(ds) / max(1, ds.data.num_rows))
        except Exception:
            self.total_bytes = 0
        self._done = 0

    @property
    def bytes_read(self) -> int:
        return self._done

    def describe(self) -> str:
        return self.name

    def __iter__(self) -> Iterator[Document]:
        arrow = self.ds.select_columns([self.text_field] + self._cols).with_format("arrow")
        row = 0
        for table in arrow.iter(batch_size=self.batch_rows):
            for text, meta, r, problem in batch_documents(table, self.text_field, self._cols, row):
                if problem is not None:
                    if not self.skip_invalid:
                        raise self.error(problem, self.name, r)
                    self.skipped_invalid += 1
                    continue
                self.n_docs += 1
                self._done += len(text)
                yield text, meta, self.name, r
            row += table.num_rows


def open_hf(obj: Any, text_field: str = "text", metadata_fields: Optional[List[str]] = None,
            skip_invalid: bool = False, split: Optional[str] = None, name: Optional[str] = None,
            files: Optional[List[str]] = None) -> Source:
    """The source of a dataset object (a DatasetDict needs ``split`` unless it has one split)."""
    name = name or f"<{type(obj).__name__}>"
    ds = _pick_split(obj, split, name)
    if split is not None or isinstance(obj, dict):
        name = f"{name}[{split or list(obj)[0]}]"
    if any(n == "datasets.IterableDataset" for n in _cls_names(ds)):
        return IterableSource(iter(ds), text_field, metadata_fields, skip_invalid, name=name)
    return HFDatasetSource(ds, text_field, metadata_fields, skip_invalid, name=name, files=files)


def load_hf_directory(path: str, split: Optional[str] = None) -> Any:
    """A ``save_to_disk`` directory (Dataset or DatasetDict), or a directory of
    ``.arrow`` files (a ``load_dataset`` cache: files ``<name>-<split>[-NNNNN-of-NNNNN].arrow``,
    the split's files concatenated in name order). Never touches the network."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        import datasets
    except ImportError:
        raise InputError("reading a Hugging Face dataset needs datasets: pip install 'infinigram[datasets]'") from None
    if not os.path.isdir(path):
        raise InputError("no such directory (expected a directory written by save_to_disk, or of .arrow files)", path)
    marks = ("dataset_info.json", "state.json", "dataset_dict.json")
    if any(os.path.isfile(os.path.join(path, m)) for m in marks):
        try:
            return datasets.load_from_disk(path)
        except Exception as e:
            raise InputError(f"cannot open this saved dataset ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                             path) from None
    arrows = sorted(glob.glob(os.path.join(path, "**", "*.arrow"), recursive=True))
    if not arrows:
        raise InputError("neither a save_to_disk directory (dataset_info.json / dataset_dict.json) nor a directory "
                         "of .arrow files", path)
    by_split: dict = {}
    for f in arrows:
        m = re.search(r"-([A-Za-z0-9_.]+?)(?:-\d{5}-of-\d{5})?\.arrow$", os.path.basename(f))
        by_split.setdefault(m.group(1) if m else "train", []).append(f)
    try:
        dd = {s: datasets.concatenate_datasets([datasets.Dataset.from_file(f) for f in fs]) for s, fs in by_split.items()}
    except Exception as e:
        raise InputError(f"cannot read these .arrow files ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                         path) from None
    return datasets.DatasetDict(dd)
