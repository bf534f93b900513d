"""Prometheus metrics in the text exposition format (version 0.0.4), written
here without a client library.

Per process: with ``--workers N`` each worker counts its own requests and a
scrape reaches one of them (sum over the workers in Prometheus, e.g. by
scraping each worker's port, or read them as samples).

Metrics:

* ``infinigram_requests_total{index, endpoint, status}``: counter of answered requests;
  ``endpoint`` is the route (``count``, ``ntd``, ...) or ``api:<query_type>`` for ``POST /api``.
* ``infinigram_request_duration_seconds{index, endpoint}``: histogram of the time
  from the request's arrival to the end of its answer.
* ``infinigram_limit_exceeded_total{limit}``: requests refused by a limit (settings name).
* ``infinigram_internal_errors_total``: requests answered 500 (a bug: should stay 0).
* ``infinigram_requests_in_progress``: gauge.
* ``infinigram_index_tokens{index}``, ``infinigram_index_documents{index}``: gauges.
* ``process_start_time_seconds``.

Label values come from the server's own names (served index names, route
names, known query types), never from free request text, so the number of
series stays bounded.
"""

from __future__ import annotations

import bisect
import threading
import time
from typing import Dict, Iterable, List, Tuple

__all__ = ["Metrics", "BUCKETS"]

BUCKETS: Tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                              0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Histogram bucket upper bounds in seconds (+Inf is added)."""


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[Tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_esc(str(v))}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _num(x: float) -> str:
    if x == float("inf"):
        return "+Inf"
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


class _Hist:
    __slots__ = ("counts", "total", "n")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.n = 0


class Metrics:
    """Counters and histograms of one process. ``observe`` is O(log buckets)
    under a lock (a few microseconds); ``render`` is O(series)."""

    def __init__(self, index_sizes: Dict[str, Tuple[int, int]]) -> None:
        self._lock = threading.Lock()
        self._requests: Dict[Tuple[str, str, str], int] = {}
        self._hists: Dict[Tuple[str, str], _Hist] = {}
        self._limits: Dict[str, int] = {}
        self.internal_errors = 0
        self.in_progress = 0
        self._index_sizes = dict(index_sizes)
        self._start = time.time()

    def observe(self, index: str, endpoint: str, status: int, seconds: float) -> None:
        """Records one answered request."""
        key = (index, endpoint, str(status))
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            h = self._hists.get((index, endpoint))
            if h is None:
                h = self._hists[(index, endpoint)] = _Hist()
            h.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            h.total += seconds
            h.n += 1
            if status >= 500:
                self.internal_errors += 1

    def limit_exceeded(self, limit: str) -> None:
        with self._lock:
            self._limits[limit] = self._limits.get(limit, 0) + 1

    def render(self) -> str:
        """The text exposition of every metric."""
        out: List[str] = []
        with self._lock:
            out += ["# HELP infinigram_requests_total Answered requests.",
                    "# TYPE infinigram_requests_total counter"]
            for (ix, ep, st), n in sorted(self._requests.items()):
                out.append(f"infinigram_requests_total{_labels([('index', ix), ('endpoint', ep), ('status', st)])} {n}")
            out += ["# HELP infinigram_request_duration_seconds Time from a request's arrival to the end of its answer.",
                    "# TYPE infinigram_request_duration_seconds histogram"]
            for (ix, ep), h in sorted(self._hists.items()):
                cum = 0
                for ub, c in zip(BUCKETS + (float("inf"),), h.counts):
                    cum += c
                    lab = _labels([("index", ix), ("endpoint", ep), ("le", _num(ub))])
                    out.append(f"infinigram_request_duration_seconds_bucket{lab} {cum}")
                lab = _labels([("index", ix), ("endpoint", ep)])
                out.append(f"infinigram_request_duration_seconds_sum{lab} {repr(h.total)}")
                out.append(f"infinigram_request_duration_seconds_count{lab} {h.n}")
            out += ["# HELP infinigram_limit_exceeded_total Requests refused by a limit (a setting name).",
                    "# TYPE infinigram_limit_exceeded_total counter"]
            for lim, n in sorted(self._limits.items()):
                out.append(f"infinigram_limit_exceeded_total{_labels([('limit', lim)])} {n}")
            out += ["# HELP infinigram_internal_errors_total Requests answered with a 5xx status.",
                    "# TYPE infinigram_internal_errors_total counter",
                    f"infinigram_internal_errors_total {self.internal_errors}",
                    "# HELP infinigram_requests_in_progress Requests being answered now.",
                    "# TYPE infinigram_requests_in_progress gauge",
                    f"infinigram_requests_in_progress {self.in_progress}"]
        out += ["# HELP infinigram_index_tokens Tokens in a served index.", "# TYPE infinigram_index_tokens gauge"]
        out += [f"infinigram_index_tokens{_labels([('index', n)])} {t}" for n, (t, _) in sorted(self._index_sizes.items())]
        out += ["# HELP infinigram_index_documents Documents in a served index.",
                "# TYPE infinigram_index_documents gauge"]
        out += [f"infinigram_index_documents{_labels([('index', n)])} {d}" for n, (_, d) in sorted(self._index_sizes.items())]
        out += ["# HELP process_start_time_seconds Start time of the process since the Unix epoch.",
                "# TYPE process_start_time_seconds gauge", f"process_start_time_seconds {repr(self._start)}"]
        return "\n".join(out) + "\n"
