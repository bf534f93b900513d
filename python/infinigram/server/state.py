"""What a running server holds: the named indexes (opened at start-up, never
from a request), the settings, and the way engine calls are run.

Engine calls run either inline on the event loop or in a worker thread:

* **inline**: calls bounded to microseconds (``count`` / ``find`` /
  ``prob`` / ``infgram_prob`` of a query of at most
  ``settings.inline_max_tokens`` tokens -- ``inline_max_tokens_fm`` on an
  FM-index, whose search costs O(query length) -- and whose text is at most
  ``settings.inline_max_chars`` characters). A thread hop costs more than
  such a call (``/work/shared/NOTES.md``, and ``bench/bench_serve.py``).
* **thread pool**: everything else (documents, CNF, distributions, batches,
  scoring, matching statistics, contamination). At most
  ``settings.max_concurrent`` run at once; a request waits for a slot and
  runs within ``settings.time_budget_s`` seconds in all, else it is answered
  429 naming the limit. A call that overruns its budget cannot be
  interrupted inside C++: it finishes in its thread and keeps its slot until
  then, so overruns cannot pile up more threads than ``max_concurrent``.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, TypeVar, Union

import anyio
import anyio.to_thread
from starlette.responses import Response

from ..errors import IndexCorruptError, InfinigramError
from ..index import Index
from .errors import ApiError, dumps, json_body, limit_error
from .settings import Settings
from .tokens import TokenText

__all__ = ["IndexEntry", "ServerState", "NAME_RE"]

T = TypeVar("T")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""What an index name may be (it appears in URLs and metric labels)."""

# Errors an Index call raises for input it refuses (the CLI treats the same ones as user errors);
# a damaged index (IndexCorruptError) is the server's problem: 500.
USER_ERRORS = (ValueError, IndexError, InfinigramError)


@dataclass
class IndexEntry:
    """One served index: its name, the opened :class:`Index`, its vocabulary
    size (token ids must be in ``[0, vocab_size)``) and display helpers."""

    name: str
    index: Index
    vocab_size: int
    text: TokenText
    inline_tokens: int = 0
    """Queries of at most this many tokens run count/find/prob/infgram_prob on the event loop."""

    def info(self) -> Dict[str, Any]:
        """The manifest summary of ``/v1/indexes``."""
        ix = self.index
        tok = ix.manifest.get("tokenizer", {}) or {}
        kind = tok.get("kind", "bytes")
        return {
            "name": self.name,
            "path": os.path.abspath(ix.path),
            "backend": ix.backend,
            "n_tokens": ix.n_tokens,
            "n_docs": ix.n_docs,
            "n_shards": ix.n_shards,
            "token_width": ix.token_width,
            "tokenizer": "bytes" if kind == "bytes" else os.path.basename(str(tok.get("source_path") or "tokenizer.json")),
            "tokenizer_kind": kind,
            "vocab_size": self.vocab_size,
            "format_version": ix.manifest.get("format_version"),
        }


def open_entry(name: str, spec: Union[str, "os.PathLike[str]", Index], settings: Settings) -> IndexEntry:
    """Opens (or wraps) an index under ``name`` and loads its tokenizer now, so
    that a broken index fails at start-up rather than on the first request."""
    if not NAME_RE.match(name):
        raise ValueError(f"index name {name!r}: use letters, digits, '.', '_' and '-' (at most 64, "
                         "starting with a letter or digit)")
    index = spec if isinstance(spec, Index) else Index(os.fspath(spec))
    tok = index.tokenizer
    inline = settings.inline_max_tokens
    if index.backend == "fm":
        inline = min(inline, settings.inline_max_tokens_fm)
    return IndexEntry(name, index, int(tok.vocab_size), TokenText(tok), inline)


class ServerState:
    """The indexes by name, the settings, and the engine-call runner."""

    def __init__(self, indexes: Dict[str, Union[str, "os.PathLike[str]", Index]], settings: Settings,
                 api_key: Optional[str] = None) -> None:
        if not indexes:
            raise ValueError("serve at least one index")
        self.settings = settings
        self.api_key = api_key or None
        self.entries: Dict[str, IndexEntry] = {n: open_entry(n, spec, settings) for n, spec in indexes.items()}
        self._sems: Dict[int, asyncio.Semaphore] = {}
        self._limiters: Dict[int, anyio.CapacityLimiter] = {}
        self.started = time.time()

    def _slots(self) -> asyncio.Semaphore:
        """The worker-thread slots of the running event loop (one set per loop:
        a server process has one loop; a test client may start several)."""
        key = id(asyncio.get_running_loop())
        sem = self._sems.get(key)
        if sem is None:
            sem = self._sems[key] = asyncio.Semaphore(self.settings.max_concurrent)
        return sem

    def _thread_limiter(self) -> anyio.CapacityLimiter:
        """anyio's own thread limiter, sized so that it never queues a job our slots admitted."""
        key = -id(asyncio.get_running_loop())
        lim = self._limiters.get(key)
        if lim is None:
            lim = self._limiters[key] = anyio.CapacityLimiter(self.settings.max_concurrent + 8)
        return lim

    # ------------------------------------------------------------ lookups
    def entry(self, name: Any) -> IndexEntry:
        """The index called ``name``; 404 naming the served ones otherwise."""
        e = self.entries.get(name) if isinstance(name, str) else None
        if e is None:
            shown = name if isinstance(name, str) else type(name).__name__
            raise ApiError(404, "unknown_index",
                           f"no index named {shown[:100]!r}; served: {', '.join(sorted(self.entries))}")
        return e

    # ----------------------------------------------------- running calls
    async def run(self, fn: Callable[[], T], inline: bool = False) -> T:
        """Runs ``fn()`` inline, or in a worker thread within the time budget
        (429 ``time_budget_s`` beyond it), and returns its result. Input errors
        raised by the engine (``ValueError`` / ``IndexError`` /
        ``InfinigramError``) become 422 answers; anything else propagates (the
        catch-all answers 500).

        A worker-thread slot is taken before the thread starts and given back
        when the thread ends, not when the request gives up on it: a call
        that overruns its budget keeps its slot until it finishes, so at most
        ``max_concurrent`` engine calls ever run in threads."""
        if inline:
            try:
                return fn()
            except ApiError:
                raise
            except IndexCorruptError:
                raise
            except USER_ERRORS as e:
                raise ApiError(422, "invalid_query", _msg(e)) from None
        loop = asyncio.get_running_loop()
        sem = self._slots()
        box: List[Any] = []
        lock = threading.Lock()
        phase = ["queued"]  # queued -> running (the thread owns the slot) | dropped (the loop gave it back)

        def work() -> None:  # in the worker thread: keep the outcome, give the slot back at the end
            with lock:
                if phase[0] == "dropped":
                    return
                phase[0] = "running"
            try:
                box.append((True, fn()))
            except BaseException as e:
                box.append((False, e))
            finally:
                try:
                    loop.call_soon_threadsafe(sem.release)
                except RuntimeError:  # the loop is closed: the server is shutting down
                    pass

        budget = self.settings.time_budget_s
        try:
            with anyio.fail_after(budget):
                await sem.acquire()
                try:
                    await anyio.to_thread.run_sync(work, abandon_on_cancel=True, limiter=self._thread_limiter())
                except BaseException:
                    with lock:
                        if phase[0] == "queued":  # the thread never started it: give the slot back here
                            phase[0] = "dropped"
                            sem.release()
                    raise
        except TimeoutError:
            raise limit_error("time_budget_s", budget, "the request did not finish within the server's time "
                              "budget (it waited for a worker thread, or its query is too costly)", 429) from None
        ok, val = box[0]
        if ok:
            return val
        if isinstance(val, (ApiError, IndexCorruptError)):
            raise val
        if isinstance(val, USER_ERRORS):
            raise ApiError(422, "invalid_query", _msg(val)) from None
        raise val

    async def respond(self, fn: Callable[[], Any], inline: bool = False) -> Response:
        """:meth:`run` ``fn`` and answer its result as JSON, encoded in the
        worker thread too (a large answer, e.g. the scores of a long text, is
        milliseconds of encoding that must not run on the event loop)."""
        return json_body(await self.run(lambda: dumps(fn()), inline=inline))


def _msg(e: BaseException) -> str:
    s = str(e)
    if isinstance(e, KeyError) and len(e.args) == 1:
        s = str(e.args[0])
    return s or type(e).__name__
