"""Files of a build: the output check, stale temp directories, fsync, and the
final atomic rename. O(1) each but :func:`clean_stale_temps` (O(entries of
the output's parent directory))."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from typing import List

from .. import format as fmt
from ..errors import InputError, OutputExistsError

__all__ = ["_fsync_path", "_check_output", "_clean_stale_temps", "_pid_alive", "prepare_parent", "publish"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _clean_stale_temps(output: str) -> List[str]:
    """Remove ``<output>.tmp-<pid>-*`` dirs whose process is gone. Returns what was removed."""
    parent, name = os.path.split(output)
    pat = re.compile(re.escape(name) + r"\.tmp-(\d+)-[0-9a-f]+(-old)?$")
    removed = []
    try:
        entries = os.listdir(parent or ".")
    except OSError:
        return removed
    for entry in entries:
        m = pat.match(entry)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        p = os.path.join(parent, entry)
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _fsync_path(path: str) -> None:
    """fsync a file or a directory (directories: best effort)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_output(output: str, overwrite: bool) -> None:
    """OutputExistsError unless ``output`` is absent, or replaceable with ``overwrite``.

    With ``overwrite``, only an existing index or an empty directory is
    replaced: any other existing file or directory is refused, so a wrong
    ``-o`` can never delete unrelated data.
    """
    if not os.path.lexists(output):
        return
    if not overwrite:
        raise OutputExistsError(f"{output}: already exists (pass overwrite=True / --overwrite to replace it)")
    if os.path.isdir(output) and not os.path.islink(output):
        if os.path.isfile(os.path.join(output, fmt.MANIFEST)) or not os.listdir(output):
            return
    raise OutputExistsError(
        f"{output}: exists and is not an infinigram index; refusing to overwrite it (remove it yourself)"
    )


def prepare_parent(output: str) -> str:
    """Creates the output's parent directory, checks it is writable, removes
    stale temp dirs of ``output``; returns the new temp dir's path (created)."""
    parent = os.path.dirname(output)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise InputError(f"{output}: cannot create the output's directory: {e.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{output}: the output's directory {parent} is not writable")
    _clean_stale_temps(output)
    tmp = f"{output}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(tmp)
    return tmp


def publish(tmp: str, output: str, overwrite: bool) -> None:
    """Renames the finished ``tmp`` into place (an existing index is swapped
    aside and removed after), then fsyncs the parent."""
    _check_output(output, overwrite)
    if os.path.lexists(output):
        aside = f"{output}.tmp-{os.getpid()}-{secrets.token_hex(4)}-old"
        os.rename(output, aside)
        try:
            os.rename(tmp, output)
        except BaseException:
            os.rename(aside, output)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(tmp, output)
    _fsync_path(os.path.dirname(output))
