"""Exception handlers: one table (quarters.errors.STATUS_CODES) decides every status."""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout as AsyncPoolTimeout
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from quarters.api.responses import ProblemResponse
from quarters.errors import QuartersError, problem, status_for

log = logging.getLogger("quarters")


def add_exception_handlers(app: FastAPI) -> None:
    """Register handlers that turn every error into a problem+json body."""

    @app.exception_handler(QuartersError)
    async def _quarters_error(_request: Request, exc: QuartersError) -> ProblemResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc.detail)
        headers = {"Retry-After": "5"} if status == 503 else {}
        headers.update(exc.headers)
        body = problem(status, exc.title, exc.detail, errors=exc.errors, **exc.extra)
        return ProblemResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> ProblemResponse:
        errors = [
            {"pointer": "/" + "/".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg")}
            for e in exc.errors()
        ]
        in_query = all(e.get("loc", ("",))[0] in ("query", "path", "header") for e in exc.errors())
        status = 400 if in_query else 422
        detail = "; ".join(f"{e['pointer']}: {e['problem']}" for e in errors)
        return ProblemResponse(problem(status, "Ungültige Anfrage", detail, errors=errors),
                               status_code=status)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> ProblemResponse:
        return ProblemResponse(problem(exc.status_code, "Fehler", str(exc.detail)),
                               status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(psycopg.OperationalError)  # the async read path (timeouts too)
    async def _db_down(_request: Request, exc: OperationalError) -> ProblemResponse:
        log.error("database error: %s", str(exc).split("\n")[0])
        body = problem(503, "Datenbank nicht erreichbar", "the database cannot be reached")
        return ProblemResponse(body, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(AsyncPoolTimeout)
    async def _pool_exhausted(_request: Request, _exc: PoolTimeout) -> ProblemResponse:
        log.warning("no pooled database connection free within the pool timeout")
        body = problem(503, "Server ausgelastet", "all database connections are busy; try again")
        return ProblemResponse(body, status_code=503, headers={"Retry-After": "2"})

REQUEST_ID_HEADER = "X-Request-Id"


def problem_bytes(status: int, title: str, detail: str, headers: dict[str, str] | None = None,
                  **extra: object) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(ASGI headers, body) of a problem+json answer, for the pure ASGI layers."""
    import orjson

    body = orjson.dumps(problem(status, title, detail, **extra))
    raw = [(b"content-type", b"application/problem+json"),
           (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    return raw, body


class CatchAll:
    """Pure ASGI: any exception nothing else handled becomes a problem+json 500.

    Sits inside SecurityHeaders (Starlette's own ServerErrorMiddleware sits outside all user
    middleware, so its plain-text 500 would lack the security headers). Every answer carries
    an ``X-Request-Id``; a 500 names it in the body and the log has it with the traceback.
    The body never contains the exception, its class or any input.
    """

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        """Run the app; answer 500 if it raises before it started its response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import uuid

        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message) -> None:  # noqa: ANN001
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", scope.get("method"),
                          scope.get("path"), request_id)
            if started:  # the answer is under way: nothing to do but end the connection
                raise
            headers, body = problem_bytes(
                500, "Interner Fehler",
                f"an unexpected error occurred; quote request id {request_id} when reporting it",
                headers={REQUEST_ID_HEADER: request_id}, request_id=request_id)
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
