"""Manifest generations: how a live index changes without a reader noticing.

An index directory changes only by publishing a new generation of
``index.json`` (``format.write_manifest``: temp file, fsync, rename; then the
directory is fsync'd). Appending (:mod:`infinigram.append`) adds shard
directories; compacting (:mod:`infinigram.compact`) replaces all shards by
fewer. Both build their shards in a staging directory inside the index, move
them in under fresh ``shard-NNNNN`` names, then publish. Until the rename the
previous generation is whole; after it, the new one. A reader that opened
generation ``g`` keeps its mapped files (compaction unlinks the old shard
directories only after publishing; Linux keeps unlinked mapped files alive).
Writers are serialised by ``IDX/.append.lock`` (``flock``); the next writer
removes what an interrupted one left (staging directories, unpublished
shards).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Tuple

from . import format as fmt
from .build import _fsync_path

__all__ = ["locked", "clean_leftovers", "staging_dir", "publish", "LOCK_FILE"]

LOCK_FILE = ".append.lock"


@contextlib.contextmanager
def locked(index_path: str) -> Iterator[None]:
    """Exclusive ``flock`` on IDX/.append.lock for the duration (one writer at a time)."""
    fd = os.open(os.path.join(index_path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def clean_leftovers(index_path: str, manifest: Dict[str, Any]) -> None:
    """Removes what an interrupted writer left (staging directories, shard
    directories moved in but never published, old shards of a compaction
    that published but did not finish removing them); under the lock."""
    listed = {s["dir"] for s in manifest["shards"]}
    for name in os.listdir(index_path):
        stale = name.startswith((".append-", ".compact-")) or (name.startswith("shard-") and name not in listed)
        if stale and os.path.isdir(os.path.join(index_path, name)):
            shutil.rmtree(os.path.join(index_path, name), ignore_errors=True)


def staging_dir(index_path: str, kind: str) -> str:
    """A fresh staging path inside the index (``.append-...`` / ``.compact-...``)."""
    return os.path.join(index_path, f".{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def publish(index_path: str, manifest: Dict[str, Any], built: Dict[str, Any], staging: str, *,
            replace: bool, log_key: str, log: Dict[str, Any]) -> Tuple[Dict[str, Any], List[str]]:
    """Moves the shards of ``built`` (a build's manifest, its shards in
    ``staging``) into the index under fresh names and publishes generation
    ``g+1``: after ``manifest``'s shards (an append) or instead of them
    (``replace``: a compaction, whose documents must be the same, in the same
    order). ``log`` (plus ``generation``, ``shards``, ``created``) is added
    to the manifest's ``log_key`` list. Returns (new manifest, moved names).
    On any failure the moved shards are removed and the previous generation
    stays published. After a replacing publish the old shard directories are
    removed."""
    listed = {s["dir"] for s in manifest["shards"]}
    shards = [] if replace else list(manifest["shards"])
    doc_base = 0 if replace else int(manifest["n_docs"])
    moved: List[str] = []
    next_i = len(manifest["shards"])
    try:
        for s in built["shards"]:
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
            out[k] = int(built[k]) + (0 if replace else int(manifest[k]))
        out["generation"] = int(manifest.get("generation", 0)) + 1
        out[log_key] = list(manifest.get(log_key, [])) + [{
            "generation": out["generation"], "shards": moved, **log,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }]
        fmt.write_manifest(index_path, out)  # the publishing rename
        _fsync_path(index_path)
    except BaseException:
        for name in moved:  # not published: the previous generation stays whole
            shutil.rmtree(os.path.join(index_path, name), ignore_errors=True)
        raise
    if replace:
        for name in listed:
            shutil.rmtree(os.path.join(index_path, name), ignore_errors=True)
        _fsync_path(index_path)
    return out, moved
