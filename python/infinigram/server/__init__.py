"""``infinigram serve``: an HTTP API (our ``/v1`` routes and infini-gram's
``POST /api`` shape) and a web page over one or many indexes.

Needs the ``serve`` extra (FastAPI, uvicorn). ``create_app(indexes, settings)``
returns the ASGI application; ``docs/API.md`` documents every route.
``infinigram.server.settings`` imports without FastAPI (the CLI reads the
limits' names and defaults from it); the rest is imported on first use.
"""

from typing import Any

from .settings import Settings

__all__ = ["create_app", "app_from_env", "Settings", "STATIC_DIR"]


def __getattr__(name: str) -> Any:  # lazy: FastAPI is imported only when the app is wanted
    if name in ("create_app", "app_from_env", "STATIC_DIR"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'infinigram.server' has no attribute {name!r}")
