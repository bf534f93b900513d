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

import contextlib
import fcntl
import os
import secrets
import shutil
import sys
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from . import format as fmt
from .build import _fsync_path, build
from .errors import InfinigramError, TokenizerError
from .tokenizer import load_tokenizer

__all__ = ["append"]

PathArg = Union[str, "os.PathLike[str]"]
LOCK_FILE = ".append.lock"


@contextlib.contextmanager
def _locked(index_path: str) -> Iterator[None]:
    """Exclusive ``flock`` on IDX/.append.lock for the duration (one append at a time)."""
    fd = os.open(os.path.join(index_path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


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


def _clean_leftovers(index_path: str, manifest: Dict[str, Any]) -> None:
    """Removes what an interrupted append left (its staging directory, shard
    directories moved in but never published); called under the lock."""
    listed = {s["dir"] for s in manifest["shards"]}
    for name in os.listdir(index_path):
        stale = name.startswith(".append-") or (name.startswith("shard-") and name not in listed)
        if stale and os.path.isdir(os.path.join(index_path, name)):
            shutil.rmtree(os.path.join(index_path, name), ignore_errors=True)


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
    with _locked(index_path):
        manifest = fmt.read_manifest(index_path)  # the generation current under the lock
        _clean_leftovers(index_path, manifest)
        staging = os.path.join(index_path, f".append-{os.getpid()}-{secrets.token_hex(4)}")
        moved: List[str] = []
        try:
            new = build(inputs, staging, tokenizer=spec, text_field=text_field or manifest.get("text_field", "text"),
                        shard_size=shard_size, skip_invalid=skip_invalid, n_threads=n_threads, progress=False,
                        add_special_tokens=bool((manifest.get("tokenizer") or {}).get("add_special_tokens", False)),
                        backend=backend, sa_sample=int(fm.get("sa_sample", 64)),
                        isa_sample=int(fm.get("isa_sample", 64)), wt_block_bits=int(fm.get("wt_block_bits", 0)))
            if int(new["token_width"]) != int(manifest["token_width"]):  # same tokenizer: cannot happen; kept as a guard
                raise TokenizerError(f"{index_path}: new shards have u{8 * new['token_width']} tokens, "
                                     f"the index u{8 * manifest['token_width']}")
            listed = {s["dir"] for s in manifest["shards"]}
            next_i = len(manifest["shards"])
            shards = list(manifest["shards"])
            doc_base = int(manifest["n_docs"])
            for s in new["shards"]:
                while fmt.shard_dirname(next_i) in listed:
                    next_i += 1
                name = fmt.shard_dirname(next_i)
                next_i += 1
                os.rename(os.path.join(staging, s["dir"]), os.path.join(index_path, name))
                moved.append(name)
                shards.append(dict(s, dir=name, doc_base=doc_base + int(s.get("doc_base", 0))))
            _fsync_path(index_path)
            out = dict(manifest)
            out["shards"] = shards
            for k in ("n_docs", "n_tokens", "n_positions"):
                out[k] = int(manifest[k]) + int(new[k])
            out["generation"] = int(manifest.get("generation", 0)) + 1
            out["appends"] = list(manifest.get("appends", [])) + [{
                "generation": out["generation"],
                "shards": moved,
                "n_docs": int(new["n_docs"]),
                "n_tokens": int(new["n_tokens"]),
                "inputs": new.get("build", {}).get("inputs", []),
                "seconds": new.get("build", {}).get("seconds"),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }]
            fmt.write_manifest(index_path, out)  # the publishing rename
            _fsync_path(index_path)
        except BaseException:
            for name in moved:  # not published: the previous generation stays whole
                shutil.rmtree(os.path.join(index_path, name), ignore_errors=True)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if progress:
        print(f"infinigram: appended {new['n_docs']:,} docs, {new['n_tokens']:,} tokens as {len(moved)} shard(s) "
              f"to {index_path} in {new.get('build', {}).get('seconds', 0):.2f} s; now generation "
              f"{out['generation']}: {out['n_docs']:,} docs, {out['n_tokens']:,} tokens, {len(shards)} shard(s)",
              file=sys.stderr)
    return out
