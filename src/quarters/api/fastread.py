"""The lean path: anonymous ``GET /api/collections/{id}/items/{item}`` without FastAPI's routing
and dependency machinery (pure ASGI, just inside the other middleware); and a vector tile
already in the tile cache at the version known in memory (``routes.tiles.tile_from_memory``).

It answers what the route answers, by the route's own code (``features.feature_response``:
the same body, headers, ETag/304, page cache, published rows only) and the app's own exception
handlers (404/406/503 problem+json); everything else goes on to the routes untouched: requests
with a query string, a session cookie or an ``Authorization`` header, other paths and methods
(HEAD arrives here as GET, quarters.api.methods), unknown collections. A read answered from
the page cache at the version known in memory (quarters.api.dataversion) takes no database
connection at all; otherwise one statement runs on the read pool.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from quarters.api.deps import SESSION_COOKIE, get_runner
from quarters.api.routes.features import feature_response
from quarters.api.routes.tiles import tile_from_memory
from quarters.collections import COLLECTIONS
from quarters.runner import LazyPoolRunner

PREFIX = "/api/collections/"
STORAGE = 4326  # the default CRS (CRS84) of a request without ?crs=


def _lean_parts(scope: Scope) -> list[str] | None:
    """The path's parts after /api/collections/ when the lean path may answer (an anonymous
    plain GET), else None."""
    if (scope["type"] != "http" or scope["method"] != "GET" or scope.get("query_string")
            or scope.get("root_path")):
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return None
    for key, value in scope["headers"]:
        if key == b"authorization" or (key == b"cookie" and SESSION_COOKIE.encode() in value):
            return None  # signed in (or trying to be): the routes and the primary
    return path[len(PREFIX):].split("/")


def _lean_target(parts: list[str] | None) -> tuple[str, str] | None:
    """(collection id, item id) when the lean path may answer this request, else None."""
    if (parts is None or len(parts) != 3 or parts[1] != "items" or not parts[2]
            or parts[0] not in COLLECTIONS):
        return None
    return parts[0], parts[2]


def _tile_target(parts: list[str] | None) -> list[str] | None:
    """(collection, grid, z, y, x) of a plain tile request, else None."""
    if parts is None or len(parts) != 6 or parts[1] != "tiles":
        return None
    return [parts[0], *parts[2:]]


class FastFeatureReads:
    """ASGI middleware: the lean path for one published feature, asked anonymously."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a lean request, pass any other on."""
        parts = _lean_parts(scope)
        if (tile := _tile_target(parts)) is not None:
            response = tile_from_memory(Request(scope, receive), *tile)
            if response is not None:  # a tile of the known version from memory (or a 304)
                await response(scope, receive, send)
                return
        target = _lean_target(parts)
        if target is None:
            await self.app(scope, receive, send)
            return
        fastapi_app = scope["app"]
        override = fastapi_app.dependency_overrides.get(get_runner)
        if override is not None and not _plain_generator(override):
            await self.app(scope, receive, send)  # an override the lean path cannot call
            return
        request = Request(scope, receive)
        col, item_id = COLLECTIONS[target[0]], target[1]
        settings = fastapi_app.state.settings
        try:
            if override is None:
                runner = LazyPoolRunner(fastapi_app.state.pools["read"])
                try:
                    response = await feature_response(request, runner, settings, col, item_id,
                                                      STORAGE)
                finally:
                    await runner.close()
            else:  # the test harness: a runner on the test's own transaction
                response = await _with_override(override, request, settings, col, item_id)
        except Exception as exc:
            handler = _handler_for(fastapi_app, exc)
            if handler is None:
                raise  # quarters.api.errors.CatchAll answers 500
            response = await handler(request, exc)
        await response(scope, receive, send)


def _plain_generator(override) -> bool:  # noqa: ANN001
    """A dependency override without parameters that yields the runner (as tests/conftest)."""
    return inspect.isgeneratorfunction(override) and not inspect.signature(override).parameters


async def _with_override(override, request: Request, settings, col, item_id: str):  # noqa: ANN001, ANN202
    manager = contextmanager(override)()
    runner = await run_in_threadpool(manager.__enter__)
    try:
        response = await feature_response(request, runner, settings, col, item_id, STORAGE)
    except BaseException as exc:
        await run_in_threadpool(manager.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await run_in_threadpool(manager.__exit__, None, None, None)
    return response


def _handler_for(app, exc: Exception):  # noqa: ANN001, ANN202
    """The app's exception handler for ``exc`` (by class, most specific first), as Starlette's
    ExceptionMiddleware looks it up."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
