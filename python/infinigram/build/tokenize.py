"""Stage 2, tokenizing: the document stream of a source becomes a stream of
token arrays, in order, with tokenization overlapped with reading (before it)
and writing shards (after it).

One dispatcher thread runs the tokenizer on batches (``batch_size``
documents or ``BATCH_TEXT_BYTES`` of text) while the calling thread reads the
next batch and writes the previous one; the tokenizer itself uses every core
(the tokenizers library's Rust thread pool; tiktoken on ``n_threads``
threads, GIL released), and the suffix sorts of finished shards run beside
both on the construction pool. At most ``DEPTH`` batches are in flight, so
memory stays O(DEPTH batches).

:func:`choose_encoder` swaps a byte-level BPE ``tokenizer.json`` for the exact
fast encoder (:class:`~infinigram.tokenizer.FastBPETokenizer`, tiktoken)
after checking its ids on the first documents, and says so either way.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import TokenizerError
from ..sources.base import Document, Source
from ..tokenizer import FastBPETokenizer, HFTokenizer, Tokenizer

__all__ = ["BATCH_TEXT_BYTES", "DEPTH", "SAMPLE_DOCS", "SAMPLE_CHARS", "choose_encoder", "token_stream"]

# Flush a tokenization batch at this much text (characters). 4 Mi: as fast as
# 16 Mi for the bytes tokenizer (0.6 s per 100 MB either way, measured), and the
# interpreter's heap then peaks ~15 MB lower and keeps ~30 MB less after reading
# (memory that adds to the concurrent constructions' peak).
BATCH_TEXT_BYTES = 4 << 20
#: batches being tokenized or waiting to be written
DEPTH = 2
#: the fast encoder is checked on the first documents: up to this many, and this much text
#: (the tokenizers library encodes it once more: ~0.25 s for 512 KiB of English)
SAMPLE_DOCS = 256
SAMPLE_CHARS = 512 << 10
SAMPLE_DOC_CHARS = 4096

Batch = List[Document]


def _batches(source: Source, batch_size: int, max_chars: int) -> Iterator[Batch]:
    batch: Batch = []
    chars = 0
    for doc in source:
        batch.append(doc)
        p = doc[0]
        chars += len(p)
        if len(batch) >= batch_size or chars >= max_chars:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def choose_encoder(tok: Tokenizer, first: Sequence[str], fast: Union[bool, str], n_threads: int,
                   ) -> Tuple[Tokenizer, Dict[str, Any]]:
    """The encoder to build with, and what to record about it (manifest ``build.encoder``).

    ``fast``: ``"auto"`` (default) uses tiktoken where :func:`~infinigram.tokenizer.fast_bpe_plan`
    allows and its ids equal the tokenizers library's on ``first`` (the
    build's first documents), else the tokenizers library, with the reason;
    ``True`` requires the fast path (:class:`TokenizerError` otherwise);
    ``False`` never uses it. Only a plain :class:`HFTokenizer` is swapped.
    Cost: loading tiktoken's table (~0.5 s for Llama 3) and encoding ``first`` twice.
    """
    if type(tok) is not HFTokenizer:
        return tok, {"encoder": tok.kind if tok.kind == "bytes" else type(tok).__name__}
    if fast is False or fast == "off":
        return tok, {"encoder": "tokenizers", "fast_path": "off"}
    try:
        ft = FastBPETokenizer(tok.path, tok.add_special_tokens, n_threads, base=tok)
    except TokenizerError as e:
        if fast is True:
            raise TokenizerError(f"{tok.path}: the fast exact encoder cannot be used: {e}") from None
        return tok, {"encoder": "tokenizers", "fast_path": f"not used: {e}"}
    bad = ft.check_against(list(first))
    if bad is not None:
        msg = (f"{tok.path}: tiktoken's ids differ from the tokenizers library's on document {bad} of the first "
               f"{len(first)}: building with the tokenizers library (slower)")
        if fast is True:
            raise TokenizerError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        return tok, {"encoder": "tokenizers", "fast_path": f"not used: ids differ on a sample document"}
    import tiktoken

    return ft, {"encoder": f"tiktoken {getattr(tiktoken, '__version__', '?')}",
                "fast_path": f"ids checked equal to tokenizers on the first {len(first)} documents",
                "threads": ft.n_threads}


def token_stream(source: Source, tok: Tokenizer, batch_size: int, fast: Union[bool, str] = "auto",
                 n_threads: int = 0, info: Optional[Dict[str, Any]] = None,
                 ) -> Iterator[Tuple[np.ndarray, Dict[str, Any], str, int]]:
    """``(tokens, metadata, source, n)`` of every document of ``source``, in order.

    Token sources pass through untouched. For text sources the encoder is
    chosen on the first batch (:func:`choose_encoder`; ``info`` receives what
    to record), then batches are tokenized on one dispatcher thread, ``DEPTH``
    ahead of the consumer. An exception in tokenization stops the dispatcher
    (no later batch is encoded) and is raised here; closing the generator
    early cancels what is pending. O(total text).
    """
    info = info if info is not None else {}
    if source.kind == "tokens":
        info.setdefault("encoder", "none (token input)")
        for doc in source:
            yield doc  # type: ignore[misc]
        return
    batches = _batches(source, batch_size, BATCH_TEXT_BYTES)
    first_batches: List[Batch] = []
    chars = n = 0
    if isinstance(tok, HFTokenizer) and type(tok) is HFTokenizer:
        for b in batches:  # the sample: the first documents, up to SAMPLE_DOCS / SAMPLE_CHARS
            first_batches.append(b)
            n += len(b)
            chars += sum(len(d[0]) for d in b)
            if n >= SAMPLE_DOCS or chars >= SAMPLE_CHARS:
                break
        sample: List[str] = []
        size = 0
        for d in (d for b in first_batches for d in b):
            if len(sample) >= SAMPLE_DOCS or (sample and size + len(d[0]) > SAMPLE_CHARS):
                break
            sample.append(d[0][:SAMPLE_DOC_CHARS])  # the start of each: more documents in the sample
            size += len(sample[-1])
        tok, chosen = choose_encoder(tok, sample, fast, n_threads)  # type: ignore[arg-type]
    else:
        chosen = {"encoder": tok.kind if tok.kind == "bytes" else type(tok).__name__}
    info.update(chosen)

    failed = threading.Event()

    def encode(batch: Batch) -> Tuple[Batch, List[np.ndarray]]:
        if failed.is_set():
            raise RuntimeError("tokenization stopped")  # never seen: the earlier failure is raised first
        try:
            return batch, tok.encode_batch([d[0] for d in batch])  # type: ignore[misc]
        except BaseException:
            failed.set()
            raise

    def all_batches() -> Iterator[Batch]:
        yield from first_batches
        first_batches.clear()
        yield from batches

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="infinigram-tokenize")
    pending: "collections.deque[concurrent.futures.Future]" = collections.deque()
    try:
        for b in all_batches():
            while len(pending) >= DEPTH:  # write the oldest batch while the next one is encoded
                done, encoded = pending.popleft().result()
                for (_, meta, src, k), toks in zip(done, encoded):
                    yield toks, meta, src, k
            pending.append(pool.submit(encode, b))
        while pending:
            done, encoded = pending.popleft().result()
            for (_, meta, src, k), toks in zip(done, encoded):
                yield toks, meta, src, k
    finally:
        failed.set()
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)
