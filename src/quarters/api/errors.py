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
