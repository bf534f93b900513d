"""Corpus readers: ``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst`` and ``.txt``.

Everything streams: a JSONL file is read line by line (O(longest line)
memory), compressed files are decompressed on the fly. A ``.txt`` file is one
document (read whole: it is one document's text). Errors name the file and
the 1-based line: ``path:line: what was wrong (what was expected)``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from .errors import InputError
from .sources.base import Source

__all__ = ["SUFFIXES", "Document", "find_input_files", "file_kind", "DocumentReader", "read_documents"]

#: recognised file name endings (checked in this order)
try:  # zstandard's errors are not OSError/ValueError ("Unknown frame descriptor": not a zstd file)
    from zstandard import ZstdError as _ZstdError
except ImportError:  # pragma: no cover - zstandard is a dependency
    class _ZstdError(Exception):  # type: ignore[no-redef]
        pass

SUFFIXES = (".jsonl.gz", ".jsonl.zst", ".jsonl", ".txt")

#: (text, metadata, source_path, line_no); line_no is 1-based (1 for .txt)
Document = Tuple[str, Dict[str, Any], str, int]

PathArg = Union[str, "os.PathLike[str]"]


def file_kind(path: str, suffixes: Sequence[str] = SUFFIXES) -> Optional[str]:
    """The recognised suffix of ``path`` (e.g. ``".jsonl.gz"``) among ``suffixes``, or None."""
    lower = path.lower()
    for s in suffixes:
        if lower.endswith(s):
            return s
    return None


def _show_path(p: str) -> str:
    """A path for an error message: a long or multi-line string (a document
    given where a path was expected) shown by its length and start."""
    if len(p) <= 300 and "\n" not in p:
        return p
    return f"<a {len(p):,}-character string starting {p[:40]!r}>"


def find_input_files(inputs: Union[PathArg, Sequence[PathArg]], suffixes: Sequence[str] = SUFFIXES) -> List[str]:
    """Expand files and directories into the list of files to read.

    Directories are walked recursively in sorted order; inside them, hidden
    entries and files of unrecognised types are ignored. A file named
    explicitly must be of a recognised type. Raises :class:`InputError` for a
    missing path, an unknown file type, or no input files at all.
    O(number of directory entries).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    suffixes = tuple(suffixes)
    files: List[str] = []
    for item in inputs:
        p = os.fspath(item)
        if os.path.isdir(p):
            found = []
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if not name.startswith(".") and file_kind(name, suffixes) is not None:
                        found.append(os.path.join(root, name))
            found.sort(key=lambda f: os.path.relpath(f, p).split(os.sep))  # full-path order
            if not found:
                raise InputError(
                    f"no input files in this directory (expected files ending in {', '.join(suffixes)})", p
                )
            files.extend(found)
        elif os.path.isfile(p):
            if file_kind(p, suffixes) is None:
                raise InputError(f"unknown file type (expected a name ending in {', '.join(suffixes)})", p)
            files.append(p)
        elif os.path.exists(p):
            raise InputError("not a regular file or directory", p)
        elif p != _show_path(p):
            raise InputError(f"input {_show_path(p)} is not a path (to index texts, pass an iterator of them: "
                             "build(iter(texts), ...), or a list of dicts with a 'text' field)")
        else:
            raise InputError("no such file or directory", p)
    if not files:
        raise InputError("no input files given (expected .jsonl, .jsonl.gz, .jsonl.zst or .txt files or directories)")
    return files


class _CountingReader(io.RawIOBase):
    """Raw binary reader that counts the bytes read from the underlying file."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.n_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:  # type: ignore[override]
        n = self._fh.readinto(b)
        if n:
            self.n_read += n
        return n or 0

    def close(self) -> None:
        self._fh.close()
        super().close()


class DocumentReader(Source):
    """Iterates the documents of a list of input files (the JSONL/txt source).

    ``files`` is the expanded file list, ``total_bytes`` their size on disk,
    ``bytes_read`` how many of those bytes were consumed so far (for
    progress bars), ``skipped_invalid`` how many lines were skipped when
    ``skip_invalid`` is true, ``n_docs`` documents yielded so far.

    With ``skip_invalid=False`` every problem raises :class:`InputError`;
    with ``skip_invalid=True`` a bad JSONL line (malformed JSON, not an
    object, missing or non-string text field, invalid UTF-8) is skipped and
    counted. Blank lines are ignored.
    """

    def __init__(
        self,
        inputs: Union[PathArg, Sequence[PathArg]],
        text_field: str = "text",
        skip_invalid: bool = False,
    ) -> None:
        self.files = find_input_files(inputs)
        self.kind, self.unit = "text", "line"
        self.text_field = text_field
        self.skip_invalid = skip_invalid
        self.total_bytes = sum(os.path.getsize(f) for f in self.files)
        self.skipped_invalid = 0
        self.n_docs = 0
        self._done_bytes = 0
        self._current: Optional[_CountingReader] = None

    @property
    def bytes_read(self) -> int:
        """Bytes of the input files (as stored on disk) consumed so far."""
        cur = self._current.n_read if self._current is not None else 0
        return self._done_bytes + cur

    def __iter__(self) -> Iterator[Document]:
        for path in self.files:
            kind = file_kind(path)
            with open(path, "rb", buffering=0) as raw:
                counting = _CountingReader(raw)
                self._current = counting
                try:
                    if kind == ".txt":
                        yield from self._read_txt(path, counting)
                    else:
                        yield from self._read_jsonl(path, counting, kind)
                finally:
                    self._current = None
                    self._done_bytes += os.path.getsize(path)

    # -- one file ------------------------------------------------------------

    def _open_lines(self, path: str, counting: _CountingReader, kind: Optional[str]) -> BinaryIO:
        buffered = io.BufferedReader(counting, buffer_size=1 << 20)
        if kind == ".jsonl.gz":
            return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
        if kind == ".jsonl.zst":
            import zstandard

            stream = zstandard.ZstdDecompressor().stream_reader(buffered, read_size=1 << 20)
            return io.BufferedReader(stream, buffer_size=1 << 20)  # type: ignore[arg-type]
        return buffered  # type: ignore[return-value]

    def _bad(self, message: str, path: str, line: int) -> None:
        """Raise, or count the line as skipped."""
        if not self.skip_invalid:
            raise InputError(message, path, line)
        self.skipped_invalid += 1

    def _read_jsonl(self, path: str, counting: _CountingReader, kind: Optional[str]) -> Iterator[Document]:
        field = self.text_field
        stream = self._open_lines(path, counting, kind)
        line_no = 0
        try:
            lines = iter(stream)
            while True:
                try:
                    raw = next(lines)
                except StopIteration:
                    break
                except (OSError, EOFError, ValueError, _ZstdError) as e:  # gzip/zstd stream damaged
                    name = "gzip" if kind == ".jsonl.gz" else "zstd"
                    raise InputError(f"cannot decompress ({e}) (expected a valid {name} file)", path, line_no + 1) from None
                line_no += 1
                if not raw.strip():
                    continue
                try:
                    s = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    self._bad(f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start} of the line) (expected UTF-8 text)", path, line_no)
                    continue
                try:
                    obj = json.loads(s)
                except ValueError as e:
                    msg = getattr(e, "msg", str(e))
                    if msg.endswith(" at"):  # json's "Unterminated string starting at", "... character at"
                        msg = msg[:-3]
                    col = getattr(e, "colno", None)
                    where = f" at column {col}" if col else ""
                    self._bad(f"malformed JSON: {msg}{where} (expected one JSON object per line)", path, line_no)
                    continue
                if not isinstance(obj, dict):
                    self._bad(f"a JSON {type(obj).__name__}, not an object (expected one JSON object per line)", path, line_no)
                    continue
                if field not in obj:
                    keys = ", ".join(list(obj)[:8])
                    self._bad(f"no field {field!r} (expected a string field {field!r}; fields here: {keys or 'none'})", path, line_no)
                    continue
                text = obj.pop(field)
                if not isinstance(text, str):
                    self._bad(f"field {field!r} is a {type(text).__name__} (expected a string)", path, line_no)
                    continue
                if not text.isascii():
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError as e:
                        self._bad(f"field {field!r} holds a lone surrogate escape at character {e.start} (expected valid Unicode)", path, line_no)
                        continue
                self.n_docs += 1
                yield text, obj, path, line_no
        finally:
            stream.close()

    def _read_txt(self, path: str, counting: _CountingReader) -> Iterator[Document]:
        data = io.BufferedReader(counting, buffer_size=1 << 20).read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            col = e.start - (data.rfind(b"\n", 0, e.start) + 1)
            self._bad(f"invalid UTF-8 (byte 0x{data[e.start]:02x} at byte {col} of the line) (expected UTF-8 text)", path, line)
            return
        self.n_docs += 1
        yield text, {"path": path}, path, 1


def read_documents(
    inputs: Union[PathArg, Sequence[PathArg]],
    text_field: str = "text",
    skip_invalid: bool = False,
) -> Iterator[Document]:
    """Convenience generator over :class:`DocumentReader`."""
    return iter(DocumentReader(inputs, text_field=text_field, skip_invalid=skip_invalid))


def iter_records(path: PathArg) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """(line number, record) of every non-blank line of a JSONL file.

    Raises :class:`InputError` naming ``path:line`` for invalid JSON or a line
    that is not a JSON object.
    """
    path = os.fspath(path)
    with open(path, encoding="utf-8") as fh:
        for ln, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"invalid JSON ({e.msg}; expected one JSON object per line)", path, ln) from None
            if not isinstance(r, dict):
                raise InputError("expected a JSON object", path, ln)
            yield ln, r


def read_records(path: PathArg) -> List[Dict[str, Any]]:
    """All records of a small JSONL file (benchmarks, MIA inputs, texts to
    score) as dicts, blank lines skipped. O(file size) memory; errors as
    :func:`iter_records`."""
    return [r for _, r in iter_records(path)]
