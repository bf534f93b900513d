"""Error answers and JSON responses.

Every error is JSON. Under ``/v1`` (and everywhere but ``/api``) the body is
``{"error": {"code": <status>, "type": "<short name>", "message": "...",
["limit": "<setting>", "value": <its value>]}}``; under ``/api`` (infini-gram's
shape, whose clients test ``"error" in result``) it is ``{"error": "...",
"code": <status>, "type": "...", ["limit": ..., "value": ...]}``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Optional

from starlette.responses import Response

__all__ = ["ApiError", "json_response", "json_body", "error_response", "limit_error", "dumps", "finite_or_none"]


class ApiError(Exception):
    """An error answer: HTTP ``status``, a short machine-readable ``type``,
    a human ``message`` and, for a limit, the setting's name and value."""

    def __init__(self, status: int, type_: str, message: str, limit: Optional[str] = None,
                 value: Any = None, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.limit = limit
        self.value = value
        self.headers = headers or {}


def limit_error(limit: str, value: Any, message: str, status: int = 422) -> ApiError:
    """An :class:`ApiError` for a request beyond the limit ``limit`` (a setting name)."""
    return ApiError(status, "limit_exceeded", f"{message} (limit {limit} = {value})", limit, value)


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON. NaN / infinities are refused (callers map them to null / -1.0 first)."""
    return _ENCODER.encode(obj).encode("utf-8")


class JSONBytes(Response):
    """A response of already encoded JSON (headers built directly: the hot path answers thousands a second)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode("latin-1")),
                            (b"content-type", b"application/json")]


def finite_or_none(x: float) -> Optional[float]:
    """``x`` as a float, or None when it is NaN or infinite (JSON has neither)."""
    x = float(x)
    return x if math.isfinite(x) else None


def json_response(obj: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> Response:
    """A JSON response without FastAPI's encoder pass (the objects here are plain)."""
    return Response(dumps(obj), status_code=status, media_type="application/json", headers=headers)


def json_body(body: bytes, status: int = 200) -> Response:
    """A response of already encoded JSON bytes."""
    return JSONBytes(body, status)


def error_body(err: ApiError, compat: bool) -> Dict[str, Any]:
    """The JSON body of an error, in the /v1 or the /api (infini-gram) shape."""
    if compat:
        body: Dict[str, Any] = {"error": err.message, "code": err.status, "type": err.type}
        if err.limit is not None:
            body["limit"] = err.limit
            body["value"] = err.value
        return body
    inner: Dict[str, Any] = {"code": err.status, "type": err.type, "message": err.message}
    if err.limit is not None:
        inner["limit"] = err.limit
        inner["value"] = err.value
    return {"error": inner}


def is_compat_path(path: str) -> bool:
    """Whether a request path answers in infini-gram's error shape."""
    return path == "/api" or path.startswith("/api/")


def error_response(err: ApiError, path: str = "") -> Response:
    """The response of an :class:`ApiError` for a request to ``path``."""
    return json_response(error_body(err, is_compat_path(path)), err.status, err.headers)
