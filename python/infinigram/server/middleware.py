"""The ASGI layer in front of every route (one pure-ASGI middleware, no
per-request task or copy of the body):

1. metrics: times every request and counts its status (``metrics.py``);
2. authentication: with an API key, every path but ``/healthz`` and the web
   page's static files (``/``, ``/static/...``: code, no corpus data) needs
   ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; 401 otherwise;
3. the body-size limit: a ``Content-Length`` above ``max_body_bytes`` is
   answered 413 before the body is read; a chunked body is counted as it
   arrives and refused at the limit;
4. the catch-all: any exception that escapes a route becomes a JSON 500
   without a stack trace (the traceback goes to the server log only).
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

from .errors import ApiError, dumps, error_body, is_compat_path, limit_error
from .metrics import Metrics

__all__ = ["Gate", "V1_ENDPOINTS"]

log = logging.getLogger("infinigram.server")

Scope = Dict[str, Any]
Message = Dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

V1_ENDPOINTS = frozenset({
    "info", "count", "count_many", "find", "prob", "infgram_prob", "ntd", "infgram_ntd", "search_docs",
    "document", "window", "score", "longest_matches", "maximal_matches", "cnf", "contamination",
})
"""Per-index routes under ``/v1/{index}/`` (metric labels; anything else is counted as ``other``)."""

_TOP = {"/healthz": "healthz", "/metrics": "metrics", "/v1/indexes": "indexes", "/": "page", "/api": "api",
        "/docs": "docs", "/openapi.json": "docs", "/redoc": "docs", "/favicon.ico": "page"}


class _BodyTooLarge(Exception):
    pass


def _public(path: str) -> bool:
    """Paths answered without the API key: the health check, the page's
    static files and the API's description (/docs, /openapi.json): code and
    schema, no corpus data."""
    return path in ("/healthz", "/", "/favicon.ico", "/docs", "/openapi.json") or path.startswith("/static/")


class Gate:
    """The middleware (see the module docstring). ``api_key`` None: no authentication."""

    def __init__(self, app: Any, metrics: Metrics, api_key: Optional[str], max_body_bytes: int,
                 index_names: List[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.api_key = api_key.encode("utf-8") if api_key else None
        self.max_body = int(max_body_bytes)
        self.index_names = frozenset(index_names)
        self._label_cache: Dict[str, "tuple[str, str]"] = {}

    def _labels(self, path: str) -> "tuple[str, str]":
        """(index, endpoint) metric labels of a path (bounded sets of values;
        the labels of the served routes' paths are cached)."""
        hit = self._label_cache.get(path)
        if hit is not None:
            return hit
        lab = self._labels_of(path)
        if lab[1] != "other" and len(self._label_cache) < 4096:
            self._label_cache[path] = lab
        return lab

    def _labels_of(self, path: str) -> "tuple[str, str]":
        ep = _TOP.get(path)
        if ep is not None:
            return "", ep
        if path.startswith("/static/"):
            return "", "page"
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "v1" and parts[2] in self.index_names:
            return parts[2], parts[3] if parts[3] in V1_ENDPOINTS else "other"
        if len(parts) == 3 and parts[1] == "v1" and parts[2] in self.index_names:
            return parts[2], "info"
        return "", "other"

    def _authorized(self, scope: Scope) -> bool:
        for k, v in scope.get("headers", ()):
            if k == b"x-api-key":
                if hmac.compare_digest(v, self.api_key):
                    return True
            elif k == b"authorization":
                if v[:7].lower() == b"bearer " and hmac.compare_digest(v[7:].strip(), self.api_key):
                    return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path: str = scope.get("path", "")
        info: Dict[str, Any] = {"index": None, "endpoint": None}
        scope["infinigram"] = info
        status = [0]
        started = [False]

        async def send_wrapped(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
                started[0] = True
            await send(msg)

        async def reply(err: ApiError) -> None:
            headers = [(b"content-type", b"application/json")]
            headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in err.headers.items()]
            body = dumps(error_body(err, is_compat_path(path)))
            headers.append((b"content-length", str(len(body)).encode()))
            await send_wrapped({"type": "http.response.start", "status": err.status, "headers": headers})
            await send_wrapped({"type": "http.response.body", "body": body})

        self.metrics.in_progress += 1
        try:
            if self.api_key is not None and not _public(path) and not self._authorized(scope):
                await reply(ApiError(401, "unauthorized", "missing or wrong API key (send 'Authorization: Bearer KEY' "
                                     "or 'X-API-Key: KEY')", headers={"WWW-Authenticate": "Bearer"}))
                return
            for k, v in scope.get("headers", ()):
                if k == b"content-length":
                    try:
                        n = int(v)
                    except ValueError:
                        await reply(ApiError(400, "bad_request", "invalid Content-Length header"))
                        return
                    if n > self.max_body:
                        self.metrics.limit_exceeded("max_body_bytes")
                        await reply(limit_error("max_body_bytes", self.max_body,
                                                f"the request body has {n} bytes", 413))
                        return
            seen = [0]

            async def receive_counted() -> Message:
                msg = await receive()
                if msg["type"] == "http.request":
                    seen[0] += len(msg.get("body", b""))
                    if seen[0] > self.max_body:
                        raise _BodyTooLarge()
                return msg

            await self.app(scope, receive_counted, send_wrapped)
        except _BodyTooLarge:
            self.metrics.limit_exceeded("max_body_bytes")
            if not started[0]:
                await reply(limit_error("max_body_bytes", self.max_body, "the request body is too large", 413))
        except Exception:  # the catch-all: a bug, logged with its traceback here, never sent to the client
            log.exception("unexpected error answering %s %s", scope.get("method"), path)
            if not started[0]:
                await reply(ApiError(500, "internal_error", "internal server error (logged on the server)"))
        finally:
            self.metrics.in_progress -= 1
            ix, ep = self._labels(path)
            if info["endpoint"] is not None:
                ep = info["endpoint"]
            if info["index"] is not None:
                ix = info["index"]
            # 499: the client went away before an answer was started (nginx's convention)
            self.metrics.observe(ix, ep, status[0] or 499, time.perf_counter() - t0)
