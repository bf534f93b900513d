"""Helpers of the reliability tests (fuzzers, crash and concurrency tests).

* :func:`budget`: the number of hypothesis examples of a fuzzer: small in the
  normal suite, ``INFINIGRAM_FUZZ_EXAMPLES`` (a number, or a factor such as
  ``x20``) for a recorded run.
* :func:`run_isolated`: runs a function in a forked child with a time limit,
  so a crash (signal), a sanitizer abort or a hang is reported as a failed
  case instead of taking the test process down.
* :func:`answers` / :func:`battery`: every query type of an Index on a fixed
  set of token-id queries, as plain Python values, to compare two indexes (or
  one index serially and from many threads).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

SANITIZED = bool(os.environ.get("INFINIGRAM_SANITIZED"))
# under ASan+UBSan everything runs ~3-5x slower
SLOW = 4.0 if SANITIZED else 1.0

_COUNTS: Dict[str, int] = {}


def budget(default: int) -> int:
    """Examples per fuzz test: ``default`` (the normal suite's budget), or
    ``INFINIGRAM_FUZZ_EXAMPLES`` (``5000``: that many; ``x20``: 20 times the
    default)."""
    env = os.environ.get("INFINIGRAM_FUZZ_EXAMPLES", "").strip()
    if not env:
        return default
    if env.startswith("x"):
        return max(1, int(float(env[1:]) * default))
    return max(1, int(env))


def record(name: str, n: int = 1) -> None:
    """Counts cases tried per fuzzer; written to $INFINIGRAM_FUZZ_LOG at exit."""
    _COUNTS[name] = _COUNTS.get(name, 0) + n


def _dump_counts() -> None:
    path = os.environ.get("INFINIGRAM_FUZZ_LOG")
    if path and _COUNTS:
        with open(path, "a", encoding="utf-8") as fh:
            for k, v in sorted(_COUNTS.items()):
                fh.write(f"{k}\t{v}\n")


import atexit  # noqa: E402

atexit.register(_dump_counts)


class Crash(AssertionError):
    """A child process died by a signal, aborted (sanitizer) or hung."""


def run_isolated(fn: Callable[[], Any], timeout: float = 20.0) -> Any:
    """``fn()`` in a forked child; returns its (picklable) result or re-raises
    its exception as ``(type name, message)`` in a tuple ``("raised", cls, msg)``.

    A child killed by a signal (segfault, sanitizer abort) or still running
    after ``timeout`` seconds (x4 under the sanitizers) raises :class:`Crash`.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        code = 0
        try:
            try:
                out: Any = ("ok", fn())
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                out = ("raised", type(e), str(e)[:2000])
            try:
                data = pickle.dumps(out)
            except Exception as e:  # noqa: BLE001
                data = pickle.dumps(("raised", type(e), f"unpicklable result: {e}"))
            view = memoryview(data)
            while view:
                n = os.write(w, view)
                view = view[n:]
        except BaseException:  # noqa: BLE001
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + timeout * SLOW
    chunks: List[bytes] = []
    status = None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise Crash(f"hang: the child did not finish within {timeout * SLOW:.0f} s")
            ready, _, _ = select.select([r], [], [], min(left, 0.5))
            if ready:
                b = os.read(r, 1 << 16)
                if b:
                    chunks.append(b)
                    continue
                # EOF: the child closed the pipe (exited or died)
                _, status = os.waitpid(pid, 0)
                break
    finally:
        os.close(r)
    if os.WIFSIGNALED(status):
        raise Crash(f"the child died by signal {os.WTERMSIG(status)} "
                    f"({signal.Signals(os.WTERMSIG(status)).name})")
    if os.WEXITSTATUS(status) != 0 or not chunks:
        raise Crash(f"the child exited with status {os.WEXITSTATUS(status)} without a result")
    return pickle.loads(b"".join(chunks))


# ----------------------------------------------------------------- answers
def _plain(x: Any) -> Any:
    """Plain Python values (NaN as the string "nan", so that equal answers compare equal)."""
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, float) and x != x:
        return "nan"
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return _plain(float(x))
    return x


def _prob(r: Any) -> Tuple[int, int, int, int]:
    return (r.prompt_count, r.cont_count, r.end_count, r.suffix_len)


def battery(ix: Any, queries: Sequence[Sequence[int]], docs: Sequence[int]) -> List[Tuple[str, Callable[[], Any]]]:
    """(name, thunk) of every query type of ``ix`` on ``queries`` (token ids)."""
    qs = [list(q) for q in queries]
    out: List[Tuple[str, Callable[[], Any]]] = []
    out.append(("sizes", lambda: (ix.n_docs, ix.n_tokens, ix.n_shards)))
    out.append(("count_many", lambda: ix.count_many(qs).tolist()))
    for i, q in enumerate(qs):
        out.append((f"count[{i}]", lambda q=q: ix.count(q)))
        out.append((f"find[{i}]", lambda q=q: [tuple(map(int, r)) for r in ix.find(q)] if ix.count(q) else None))
    for i, q in enumerate(qs[:8]):
        out.append((f"locate[{i}]", lambda q=q: _plain(vars(ix.locate(q, 20)))))
        out.append((f"search_docs[{i}]", lambda q=q: [(m.doc_ix, m.offset, m.start, m.end, m.tokens.tolist(), m.text,
                                                        m.metadata) for m in ix.search_docs(q, maxnum=3, context=4)]))
        if len(q) >= 2:
            out.append((f"prob[{i}]", lambda q=q: _prob(ix.prob(q[:-1], q[-1]))))
            out.append((f"infgram_prob[{i}]", lambda q=q: _prob(ix.infgram_prob(q[:-1], q[-1]))))
        out.append((f"infgram_ntd[{i}]", lambda q=q: (lambda r: (sorted(r.items()), r.suffix_len))(
            ix.infgram_ntd(q, exact=True))))
    for d in docs:
        out.append((f"get_doc[{d}]", lambda d=d: (lambda x: (x.tokens.tolist(), x.text, x.metadata))(ix.get_doc(d))))
    seq = [t for q in qs[:6] for t in q]
    out.append(("infgram_logprobs", lambda: (lambda s: (s.logprobs.tolist(), s.suffix_len.tolist()))(
        ix.infgram_logprobs(seq))))
    out.append(("ngram_logprobs", lambda: ix.ngram_logprobs(seq, 3).logprobs.tolist()))
    out.append(("longest_matches", lambda: (lambda s: (s.length.tolist(), s.count.tolist()))(ix.longest_matches(seq))))
    if len(qs) >= 3:
        cnf = [[qs[0][:2]], [qs[1][:2], qs[2][:1]]]
        out.append(("count_cnf", lambda: tuple(ix.count_cnf(cnf, max_diff_tokens=30))))
    return out


def answers(ix: Any, queries: Sequence[Sequence[int]], docs: Sequence[int]) -> Dict[str, Any]:
    """Every answer of :func:`battery` as plain values."""
    return {name: _plain(f()) for name, f in battery(ix, queries, docs)}
