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
from quarters.errors import QuartersError, coded, problem, problem_of, render_items, status_for
from quarters.messages import request_language, scope_language, t
from quarters.validation import pydantic_items

log = logging.getLogger("quarters")


def add_exception_handlers(app: FastAPI) -> None:
    """Register handlers that turn every error into a problem+json body."""

    @app.exception_handler(QuartersError)
    async def _quarters_error(request: Request, exc: QuartersError) -> ProblemResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc.detail)
        headers = {"Retry-After": "5"} if status == 503 else {}
        headers.update(exc.headers)
        body = problem_of(exc, request_language(request))
        return ProblemResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> ProblemResponse:
        lang = request_language(request)
        raw = exc.errors()
        in_query = all(e.get("loc", ("",))[0] in ("query", "path", "header") for e in raw)
        status = 400 if in_query else 422
        errors = render_items(pydantic_items(raw), lang, "validation.invalid")
        first = errors[0] if errors else {"code": "validation.invalid", "params": {}}
        detail = "; ".join(f"{e['pointer']}: {e['problem']}" for e in errors)
        body = problem(status, t("problem.title.bad_request", lang), detail,
                       code="validation.failed" if len(errors) > 1 else first["code"],
                       params={} if len(errors) > 1 else first["params"],
                       pointer=first.get("pointer") if len(errors) == 1 else None, errors=errors)
        return ProblemResponse(body, status_code=status)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> ProblemResponse:
        code = HTTP_CODES.get(exc.status_code, "http.error")
        body = coded(exc.status_code, code, request_language(request), status=exc.status_code)
        return ProblemResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(psycopg.OperationalError)  # the async read path (timeouts too)
    async def _db_down(request: Request, exc: OperationalError) -> ProblemResponse:
        log.error("database error: %s", str(exc).split("\n")[0])
        # A statement cut off by statement_timeout is an OperationalError too, but the
        # database is there: say so (the request was too heavy), not "unreachable".
        cancelled = isinstance(getattr(exc, "orig", exc), psycopg.errors.QueryCanceled)
        body = coded(503, "database.too_slow" if cancelled else "database.unreachable",
                     request_language(request), kind="database_unavailable")
        return ProblemResponse(body, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(AsyncPoolTimeout)
    async def _pool_exhausted(request: Request, _exc: PoolTimeout) -> ProblemResponse:
        log.warning("no pooled database connection free within the pool timeout")
        body = coded(503, "database.pool_busy", request_language(request), kind="service_busy")
        return ProblemResponse(body, status_code=503, headers={"Retry-After": "2"})


# Starlette's own HTTP errors (routing, methods) by status.
HTTP_CODES = {404: "http.not_found", 405: "http.method_not_allowed"}

REQUEST_ID_HEADER = "X-Request-Id"


def coded_bytes(scope: dict, status: int, code: str, kind: str = "error", /,
                headers: dict[str, str] | None = None, extra: dict | None = None,
                **params: object) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(ASGI headers, body) of a problem+json answer from a catalogue code, in the language of
    the request ``scope`` (``extra``: more members of the body)."""
    import orjson

    body = orjson.dumps({**coded(status, code, scope_language(scope), kind, **params),
                         **(extra or {})})
    return _raw(body, headers)


def _raw(body: bytes, headers: dict[str, str] | None) -> tuple[list[tuple[bytes, bytes]], bytes]:
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
            headers, body = coded_bytes(scope, 500, "internal", "internal",
                                        headers={REQUEST_ID_HEADER: request_id},
                                        extra={"request_id": request_id},
                                        request_id=request_id)
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
