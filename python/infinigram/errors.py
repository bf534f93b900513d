"""Exception types of infinigram.

Every error that a user can cause (bad input files, a wrong tokenizer, a path
that is not an index, a damaged index) is an :class:`InfinigramError`; the CLI
prints its message on one line and exits with code 2, without a traceback.
Anything else that escapes is a bug.
"""

from __future__ import annotations

import os
from typing import Optional, Union

__all__ = [
    "InfinigramError",
    "InputError",
    "TokenizerError",
    "NotAnIndexError",
    "IndexCorruptError",
    "IndexVersionError",
    "OutputExistsError",
]

PathLike = Union[str, "os.PathLike[str]"]


class InfinigramError(Exception):
    """Base class of every error infinigram raises on purpose."""


class InputError(InfinigramError, ValueError):
    """Something is wrong with an input corpus file (or there is no input).

    The message reads ``path:line: what was wrong (what was expected)``;
    ``line`` is 1-based, or None when the problem is not tied to a line (then
    the message reads ``path: ...``). ``path`` may be None for problems that
    concern the whole input (e.g. "no documents").
    """

    def __init__(
        self,
        message: str,
        path: Optional[PathLike] = None,
        line: Optional[int] = None,
    ) -> None:
        self.path: Optional[str] = None if path is None else os.fspath(path)
        self.line: Optional[int] = line
        self.reason: str = message
        if self.path is None:
            full = message
        elif line is None:
            full = f"{self.path}: {message}"
        else:
            full = f"{self.path}:{line}: {message}"
        super().__init__(full)


class TokenizerError(InfinigramError):
    """A tokenizer cannot be loaded or does not fit the index format."""


class NotAnIndexError(InfinigramError):
    """The path is not an infinigram index directory (no ``index.json``)."""


class IndexCorruptError(InfinigramError):
    """A file of an index is missing, has the wrong size or the wrong checksum.

    ``path`` names the file concerned.
    """

    def __init__(self, message: str, path: Optional[PathLike] = None) -> None:
        self.path: Optional[str] = None if path is None else os.fspath(path)
        super().__init__(message)


class IndexVersionError(InfinigramError):
    """The index was written in a newer format version than this code reads."""


class OutputExistsError(InfinigramError):
    """The build output exists and ``overwrite`` was not asked for."""
