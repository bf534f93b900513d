"""Appending documents to an existing index, atomically.

``append(index_path, inputs)`` builds the new documents as new shards with the
index's own tokenizer, backend and FM sampling, moves the shard directories
into the index, then publishes them by replacing ``index.json`` with a new
manifest generation (written to a temporary file, fsync'd, renamed over the
old one, directory fsync'd). Until that rename the index is the previous
generation, whole; after it, the new one. Document ids continue from the
last one.

An :class:`~infinigram.Index` opened before the append keeps answering from
the generation it opened (appending never changes an existing file: old
shards are untouched, the manifest is replaced, not rewritten in place);
:meth:`Index.reload` or a fresh open sees the new documents. Appends to one
index are serialised by a lock file (``IDX/.append.lock``, ``flock``).

Cost: that of building the new documents alone (their tokenization, suffix
sorts and checksums) plus one manifest write; nothing of the existing index
is read but its manifest. Each append adds at least one shard, and queries
cost grows with the number of shards (about 1.2 µs per shard per count).
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, Dict, Optional, Sequence, Union

from . import format as fmt
from .build import build
from .errors import InfinigramError, TokenizerError
from .generations import clean_leftovers, locked, publish, staging_dir
from .tokenizer import load_tokenizer

__all__ = ["append"]

PathArg = Union[str, "os.PathLike[str]"]


def _check_tokenizer(index_path: str, manifest: Dict[str, Any], tokenizer: Optional[PathArg]) -> str:
    """The tokenizer spec to build the new shards with (the index's own
    ``tokenizer.json`` copy, or ``"bytes"``). ``tokenizer``, when given, must
    be that same tokenizer (same kind and file sha256): a clear error
    before any work otherwise."""
    ident = manifest.get("tokenizer") or {}
    if ident.get("kind") == "none":
        raise TokenizerError(f"{index_path} was built from token ids without a tokenizer; appending to it is not "
                             "supported (build a new index with build_from_tokens and open both: Index([a, b]))")
    own = "bytes" if ident.get("kind") == "bytes" else os.path.join(index_path, ident.get("file", fmt.TOKENIZER_FILE))
    if tokenizer is not None:
        other = load_tokenizer(tokenizer).identity()
        if (other.get("kind"), other.get("sha256")) != (ident.get("kind"), ident.get("sha256")):
            def show(t: Dict[str, Any]) -> str:
                return t.get("kind", "?") + (f" sha256 {str(t['sha256'])[:12]}" if t.get("sha256") else "")
            raise TokenizerError(f"{index_path} was built with tokenizer {show(ident)}; cannot append documents "
                                 f"tokenized with {tokenizer} ({show(other)})")
    return own


def append(index_path: PathArg, inputs: Union[PathArg, Sequence[PathArg]], *, tokenizer: Optional[PathArg] = None,
           text_field: Optional[str] = None, shard_size: Union[None, int, str] = "auto",
           skip_invalid: bool = False, n_threads: int = 0, progress: bool = True) -> Dict[str, Any]:
    """Append the documents of ``inputs`` (as :func:`infinigram.build` reads
    them) to the index at ``index_path`` as new shards; returns the new
    manifest (its ``generation`` one more than before).

    ``tokenizer``: optional check that the caller's tokenizer is the index's
    (the index's own is always used). ``text_field``: defaults to the
    index's. Raises :class:`InfinigramError` subclasses for a path that is
    not an index, a different tokenizer, or bad input (nothing of the index
    changes then). O(size of the new documents).
    """
    index_path = os.path.abspath(os.fspath(index_path))
    manifest = fmt.read_manifest(index_path)  # NotAnIndexError / IndexCorruptError first
    spec = _check_tokenizer(index_path, manifest, tokenizer)
    if not os.access(index_path, os.W_OK):
        raise InfinigramError(f"{index_path}: not writable (append adds shard directories and a new manifest)")
    backend = manifest.get("backend", "sa")
    fm = manifest.get("fm", {})
    with locked(index_path):
        manifest = fmt.read_manifest(index_path)  # the generation current under the lock
        clean_leftovers(index_path, manifest)
        staging = staging_dir(index_path, "append")
        try:
            new = build(inputs, staging, tokenizer=spec, text_field=text_field or manifest.get("text_field", "text"),
                        shard_size=shard_size, skip_invalid=skip_invalid, n_threads=n_threads, progress=False,
                        add_special_tokens=bool((manifest.get("tokenizer") or {}).get("add_special_tokens", False)),
                        backend=backend, sa_sample=int(fm.get("sa_sample", 64)),
                        isa_sample=int(fm.get("isa_sample", 64)), wt_block_bits=int(fm.get("wt_block_bits", 0)))
            if int(new["token_width"]) != int(manifest["token_width"]):  # same tokenizer: cannot happen; kept as a guard
                raise TokenizerError(f"{index_path}: new shards have u{8 * new['token_width']} tokens, "
                                     f"the index u{8 * manifest['token_width']}")
            out, moved = publish(index_path, manifest, new, staging, replace=False, log_key="appends", log={
                "n_docs": int(new["n_docs"]), "n_tokens": int(new["n_tokens"]),
                "inputs": new.get("build", {}).get("inputs", []), "seconds": new.get("build", {}).get("seconds")})
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if progress:
        print(f"infinigram: appended {new['n_docs']:,} docs, {new['n_tokens']:,} tokens as {len(moved)} shard(s) "
              f"to {index_path} in {new.get('build', {}).get('seconds', 0):.2f} s; now generation "
              f"{out['generation']}: {out['n_docs']:,} docs, {out['n_tokens']:,} tokens, {len(out['shards'])} shard(s)",
              file=sys.stderr)
    return out
