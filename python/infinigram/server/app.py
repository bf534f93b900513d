"""The FastAPI application of ``infinigram serve``.

:func:`create_app` builds it (an :class:`InfinigramAPI`, a FastAPI subclass
whose HTTP requests enter through ``middleware.Gate`` and :class:`FastRoutes`)
from named indexes (paths or opened :class:`~infinigram.Index` objects) and
:class:`Settings`;
:func:`app_from_env` is the factory uvicorn's worker processes call
(``--workers N``), reading the same configuration from the environment.

Routes: ``/healthz``, ``/metrics``, ``/v1/...`` (``v1.py``), ``POST /api``
(infini-gram's shape, ``compat.py``), the web page at ``/`` with its files
under ``/static``, and the OpenAPI description at ``/docs`` /
``/openapi.json``. Read-only: nothing a request says can open a path, write
a file or change an index.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, Response

from .. import __version__
from ..index import Index
from . import compat, v1
from .errors import ApiError, error_response, json_response
from .metrics import Metrics
from .middleware import Gate
from .settings import ENV_API_KEY, ENV_CONFIG, Settings
from .state import ServerState

__all__ = ["create_app", "app_from_env", "STATIC_DIR"]

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
"""The web page's files (index.html, app.js, style.css), shipped in the package."""

DESCRIPTION = """\
Exact n-gram search over the served corpora: counts, n-gram / ∞-gram
probabilities and next-token distributions, documents in context, boolean
(CNF) search, per-token ∞-gram scores, maximal corpus matches and
contamination checks (`/v1/...`), and infini-gram's API shape (`POST /api`).
Errors are JSON with a 4xx status naming the problem (and the limit, for a
request beyond one). See docs/API.md.
"""

_STATUS_TYPES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                 413: "limit_exceeded", 422: "invalid_request", 429: "limit_exceeded"}


class FastRoutes:
    """Dispatches the query routes (``POST /v1/{index}/{endpoint}`` and
    ``POST /api``) straight to their handlers, ahead of FastAPI's router and
    its per-request dependency solving (about half of a count's server time,
    measured in ``bench/bench_serve.py``). The handlers are the very functions
    registered with FastAPI (which still lists them in the OpenAPI
    description); errors are answered as FastAPI's handlers would. Every other
    request goes to FastAPI."""

    def __init__(self, app: Any, table: Dict[str, Any], api: Any, metrics: Metrics) -> None:
        self.app = app
        self.table = table
        self.api = api
        self.metrics = metrics

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            path: str = scope["path"]
            if path == "/api":
                handler, args = self.api, ()
            else:
                parts = path.split("/")
                handler = self.table.get(parts[3]) if len(parts) == 4 and parts[1] == "v1" else None
                args = (parts[2],)
            if handler is not None:
                request = Request(scope, receive)
                # read the body here (one message, usually): cheaper than Starlette's stream
                chunks = []
                while True:
                    msg = await receive()
                    if msg["type"] != "http.request":
                        return  # the client went away
                    chunks.append(msg.get("body", b""))
                    if not msg.get("more_body", False):
                        break
                request._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                try:
                    response = await handler(request, *args)
                except ApiError as exc:
                    if exc.limit is not None:
                        self.metrics.limit_exceeded(exc.limit)
                    response = error_response(exc, path)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class InfinigramAPI(FastAPI):
    """FastAPI, with every HTTP request entering through :class:`Gate` (metrics,
    API key, body limit, catch-all) and :class:`FastRoutes` before FastAPI's
    own stack, which answers whatever the fast routes do not (and whose
    per-request telemetry check and dependency solving the query routes thus
    skip)."""

    _front: Any = None

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if self._front is not None and scope["type"] == "http":
            scope["app"] = self
            await self._front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _fastapi(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        await super().__call__(scope, receive, send)


SWAGGER_PREFIX = "/static/swagger-ui"


def _swagger_ui_dir() -> Optional[str]:
    """Swagger UI's files from the ``swagger-ui-bundle`` package (the serve
    extra), so /docs works with no internet (FastAPI's default page loads
    them from a CDN); None when the package is missing."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    path = str(swagger_ui_bundle.swagger_ui_path)
    return path if os.path.isfile(os.path.join(path, "swagger-ui-bundle.js")) else None


def create_app(indexes: Mapping[str, Union[str, "os.PathLike[str]", Index]], settings: Optional[Settings] = None,
               api_key: Optional[str] = None) -> FastAPI:
    """The application serving ``indexes`` (name -> index directory or
    :class:`Index`). Every index is opened (and its tokenizer loaded) here, so
    a bad path fails now, not on the first request. ``api_key``: when set,
    every request but ``/healthz`` and the page's static files must carry it
    (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``)."""
    settings = settings or Settings()
    state = ServerState(dict(indexes), settings, api_key)
    metrics = Metrics({n: (e.index.n_tokens, e.index.n_docs) for n, e in state.entries.items()})
    app = InfinigramAPI(title="infinigram", version=__version__, description=DESCRIPTION, docs_url=None,
                  redoc_url=None)
    app.state.infinigram = state
    app.state.metrics = metrics

    # ------------------------------------------------------------ errors
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if exc.limit is not None:
            metrics.limit_exceeded(exc.limit)
        return error_response(exc, request.url.path)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = int(exc.status_code)
        msg = exc.detail if isinstance(exc.detail, str) else "error"
        if code == 404:
            msg = f"no such path: {request.url.path[:200]}"
        elif code == 405:
            msg = f"method {request.method} is not allowed on {request.url.path[:200]}"
        err = ApiError(code, _STATUS_TYPES.get(code, "error"), msg, headers=dict(exc.headers or {}))
        return error_response(err, request.url.path)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        parts = [f"{'.'.join(str(p) for p in x.get('loc', ()))}: {x.get('msg', 'invalid')}" for x in exc.errors()[:5]]
        return error_response(ApiError(422, "invalid_request", "; ".join(parts) or "invalid request"),
                              request.url.path)

    async def on_internal(request: Request, exc: Exception) -> Response:
        # a bug inside FastAPI's stack: JSON, no detail (Gate logs the traceback)
        return error_response(ApiError(500, "internal_error", "internal server error (logged on the server)"),
                              request.url.path)

    app.add_exception_handler(Exception, on_internal)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)

    # ------------------------------------------------------------ routes
    @app.get("/healthz", summary="Liveness (no API key needed)")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/metrics", summary="Prometheus metrics (text format)")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", summary="The web page", include_in_schema=False)
    async def page() -> Response:
        path = os.path.join(STATIC_DIR, "index.html")
        if not os.path.isfile(path):
            return error_response(ApiError(404, "not_found", "the web page is not installed with this package"))
        return FileResponse(path, media_type="text/html")

    app.include_router(v1.router)
    app.include_router(compat.router)
    swagger_dir = _swagger_ui_dir()
    if swagger_dir is not None:  # before /static: the longer prefix must match first
        app.mount(SWAGGER_PREFIX, StaticFiles(directory=swagger_dir), name="swagger")

    @app.get("/docs", summary="OpenAPI page (Swagger UI, served locally)", include_in_schema=False)
    async def docs() -> Response:
        if swagger_dir is None:
            return error_response(ApiError(404, "not_found", "the OpenAPI page needs the swagger-ui-bundle package "
                                           "(pip install 'infinigram[serve]'); the schema is at /openapi.json"))
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url="/openapi.json", title="infinigram API",
                                   swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER_PREFIX}/favicon-32x32.png")

    if os.path.isdir(STATIC_DIR):
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # ------------------------------------------- OpenAPI: the body models
    def openapi() -> Dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in v1.BODY_MODELS:
                s = model.model_json_schema(ref_template="#/components/schemas/{model}")
                comps.update(s.pop("$defs", {}))
                comps[model.__name__] = s
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    fast = {r.path.rsplit("/", 1)[1]: r.endpoint for r in v1.router.routes
            if isinstance(r, APIRoute) and "POST" in r.methods and r.path.startswith("/v1/{index}/")}
    app._front = Gate(FastRoutes(app._fastapi, fast, compat.api, metrics), metrics=metrics, api_key=state.api_key,
                      max_body_bytes=settings.max_body_bytes, index_names=list(state.entries))
    return app


def app_from_env() -> FastAPI:
    """The app of a worker process: indexes and settings from ``$INFINIGRAM_SERVE_CONFIG``
    (JSON, written by ``infinigram serve``), the key from ``$INFINIGRAM_API_KEY``."""
    raw = os.environ.get(ENV_CONFIG)
    if not raw:
        raise RuntimeError(f"{ENV_CONFIG} is not set (start the server with 'infinigram serve')")
    cfg = json.loads(raw)
    return create_app(cfg["indexes"], Settings.from_dict(cfg.get("settings", {})),
                      os.environ.get(ENV_API_KEY) or None)
