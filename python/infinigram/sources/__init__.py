"""Corpus sources: every input kind as the same stream of documents.

=================  ===========================================  =========================
input              module                                        payload
=================  ===========================================  =========================
.jsonl[.gz|.zst],  :mod:`infinigram.readers` (``DocumentReader``)  text + metadata
.txt
.parquet           :mod:`.parquet` (pyarrow, row group by row)   text + metadata (columns)
``datasets``       :mod:`.hf` (Dataset, IterableDataset,          text + metadata (columns)
                   DatasetDict, save_to_disk / .arrow dirs)
Python iterables   :mod:`.iterable` (str or dicts)               text + metadata
token files        :mod:`.tokens` (.bin/.npy + EOS or offsets,   token ids (+ metadata for
                   Megatron .bin+.idx, arrays)                   (array, dict) pairs)
=================  ===========================================  =========================

:func:`open_source` picks the source for what ``infinigram.build`` was given;
:func:`open_token_source` for ``build_from_tokens``. Each yields
:data:`~infinigram.sources.base.Document` tuples; see
:class:`~infinigram.sources.base.Source` for what every source reports.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, List, Optional, Sequence, Union

from ..errors import InputError
from .base import Document, Source, split_metadata_fields

__all__ = ["Document", "Source", "open_source", "open_token_source", "PARQUET_SUFFIXES"]

PARQUET_SUFFIXES = (".parquet",)
_HF_MARKS = ("dataset_info.json", "dataset_dict.json", "state.json")


def _is_pathlike(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _is_hf_dir(p: str) -> bool:
    return os.path.isdir(p) and any(os.path.isfile(os.path.join(p, m)) for m in _HF_MARKS)


def open_source(inputs: Any, text_field: str = "text", metadata_fields: Union[None, str, Sequence[str]] = None,
                skip_invalid: bool = False, split: Optional[str] = None) -> Source:
    """The source of ``inputs``:

    * a :class:`Source` → itself;
    * a ``datasets`` Dataset / IterableDataset / DatasetDict (``split``) → :mod:`.hf`;
    * a path or a list/tuple of paths: files and directories (recursive,
      sorted) of ``.jsonl``/``.jsonl.gz``/``.jsonl.zst``/``.txt`` (→ the
      JSONL reader) or of ``.parquet`` (→ :mod:`.parquet`), not both kinds in
      one build; a directory written by ``save_to_disk`` → :mod:`.hf`;
    * any other iterable (a generator of strings, a list of dicts, ...) →
      :mod:`.iterable`, read once.

    ``metadata_fields`` (``"a,b"`` or a list; None: all) applies to Parquet,
    datasets and iterables (JSONL keeps every field). Raises
    :class:`InputError` naming what is wrong. O(number of input files).
    """
    keep = split_metadata_fields(metadata_fields)
    if isinstance(inputs, Source):
        return inputs
    from .hf import is_hf_dataset, load_hf_directory, open_hf

    if is_hf_dataset(inputs):
        return open_hf(inputs, text_field, keep, skip_invalid, split)
    paths: Optional[List[Any]] = None
    if _is_pathlike(inputs):
        paths = [inputs]
    elif isinstance(inputs, (list, tuple)) and inputs and all(_is_pathlike(x) for x in inputs):
        paths = list(inputs)
    if paths is None:
        if isinstance(inputs, (bytes, bytearray)) or not isinstance(inputs, Iterable):
            raise InputError(f"cannot read documents from a {type(inputs).__name__} (expected paths, a datasets "
                             "Dataset, or an iterable of strings or dicts)")
        if isinstance(inputs, (list, tuple)) and not inputs:
            raise InputError("no input files given (an empty list)")
        from .iterable import IterableSource

        return IterableSource(inputs, text_field, keep, skip_invalid)
    if len(paths) == 1 and _is_hf_dir(os.fspath(paths[0])):
        d = os.fspath(paths[0])
        return open_hf(load_hf_directory(d, split), text_field, keep, skip_invalid, split, name=d, files=[d])
    from ..readers import SUFFIXES, DocumentReader, file_kind, find_input_files

    files = find_input_files(paths, SUFFIXES + PARQUET_SUFFIXES)
    parquet = [f for f in files if file_kind(f, PARQUET_SUFFIXES)]
    if parquet and len(parquet) < len(files):
        raise InputError(f"the inputs mix Parquet ({len(parquet)} file(s)) and JSONL/text files "
                         f"({len(files) - len(parquet)}): build them as separate indexes, or convert one kind")
    if split is not None:
        raise InputError("split is for Hugging Face datasets (a DatasetDict or a save_to_disk directory)")
    if parquet:
        from .parquet import ParquetSource

        return ParquetSource(files, text_field, keep, skip_invalid)
    if keep is not None:
        raise InputError("metadata_fields / --metadata-fields applies to Parquet, datasets and iterables "
                         "(JSONL keeps every field but the text)")
    return DocumentReader(files, text_field=text_field, skip_invalid=skip_invalid)


def open_token_source(inputs: Any, dtype: Any = None, eos: Optional[int] = None,
                      offsets: Optional[Sequence[Any]] = None) -> Source:
    """The source of pre-tokenized ``inputs``: paths of flat ``.bin``/``.npy``
    token files (split at ``eos`` or by ``offsets``), Megatron datasets
    (``prefix``, ``prefix.bin`` or ``prefix.idx`` with both files present),
    or arrays (an iterable of 1-d arrays or ``(array, metadata)`` pairs; one
    flat array with ``eos``). O(number of inputs) to open."""
    from .tokens import ArraySource, MegatronSource, TokenFileSource, megatron_prefix

    if isinstance(inputs, Source):
        return inputs
    if _is_pathlike(inputs) or (isinstance(inputs, (list, tuple)) and inputs and all(_is_pathlike(x) for x in inputs)):
        paths = [os.fspath(p) for p in ([inputs] if _is_pathlike(inputs) else inputs)]
        prefixes = [megatron_prefix(p) for p in paths]
        if all(prefixes):
            if offsets is not None:
                raise InputError("offsets files are for flat token files (a Megatron .idx gives the documents)")
            return MegatronSource(prefixes, dtype=dtype, eos=eos)  # type: ignore[arg-type]
        for p, pre in zip(paths, prefixes):
            if pre is None and p.endswith(".idx"):
                raise InputError("a Megatron .idx without its .bin beside it", p)
            if not os.path.isfile(p):
                raise InputError("no such token file" if not os.path.exists(p) else "not a regular file", p)
        if any(prefixes):
            raise InputError("the inputs mix Megatron datasets and flat token files")
        return TokenFileSource(paths, dtype=dtype, eos=eos, offsets=offsets)
    return ArraySource(inputs, dtype=dtype, eos=eos)
