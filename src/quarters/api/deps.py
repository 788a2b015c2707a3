"""Request dependencies: settings and a pooled database connection."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from quarters import services, validation
from quarters.auth import Session, User, csrf_matches, session_for
from quarters.errors import (
    DatabaseUnavailable,
    Forbidden,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    Unauthorized,
    UnsupportedMediaType,
)
from quarters.runner import LazyPoolRunner, Runner
from quarters.settings import Settings

log = logging.getLogger("quarters")


def get_settings(request: Request) -> Settings:
    """Settings the app was created with."""
    return request.app.state.settings


READ_METHODS = ("GET", "HEAD")


def anonymous_read(request: Request) -> bool:
    """A GET/HEAD without a session cookie or bearer token: may be answered by a replica."""
    return (request.method in READ_METHODS and SESSION_COOKIE not in request.cookies
            and "authorization" not in request.headers)


def get_connection(request: Request) -> Iterator[Connection]:
    """A connection from the app's pool for the whole request, returned after the response has
    been sent (a streaming response may still read while it sends).

    Reads (GET, HEAD) run in autocommit: one round trip per statement, no BEGIN/ROLLBACK.
    Anonymous reads use the read replica when one is configured
    (``QUARTERS_READ_DATABASE_URL``). Routes take the connection through ``get_conn``, which
    owns the transaction.
    """
    state = request.app.state
    engine = state.engine
    if anonymous_read(request):
        engine = getattr(state, "read_engine", None) or engine
    try:
        conn = engine.connect()
        if request.method in READ_METHODS:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    except OperationalError as exc:
        raise DatabaseUnavailable(code="database.unreachable") from exc
    try:
        yield conn
    finally:
        _give_back(conn)


def _give_back(conn: Connection) -> None:
    """Return the request's connection to the pool. By now the answer is decided (sent, or
    about to be sent for an error): a connection the database dropped meanwhile (stopped right
    after a commit) is discarded and logged, never raised into the request."""
    try:
        conn.close()
    except DBAPIError as exc:
        log.warning("connection lost before it went back to the pool, discarded: %s", exc.orig)
        # SQLAlchemy 2.1 has already invalidated it; 2.0 may leave it to us
        with suppress(SQLAlchemyError):
            conn.invalidate()


def get_conn(request: Request,
             conn: Annotated[Connection, Depends(get_connection)]) -> Iterator[Connection]:
    """The request's unit of work: a write request (POST, PUT, PATCH, DELETE) runs in one
    transaction that is committed when the route returns and rolled back when the route (or a
    later dependency) raises. Routes never commit.

    Function-scoped (``ConnDep``): the commit happens after the route returns and before the
    response is sent, so a client that got 2xx finds its write from any other connection, and
    a failed commit answers as an error instead of a 2xx for lost work. Reads are autocommit
    and pass through. The test harness overrides this dependency with a savepoint of its
    rolled-back transaction (tests/conftest.py).
    """
    if request.method in READ_METHODS:
        yield conn
        return
    with conn.begin():  # commit on return, rollback on an exception
        yield conn
    learn_version(request.app, conn)


def learn_version(app, conn: Connection) -> None:  # noqa: ANN001
    """After a write's commit, before its answer: every worker of this host reads the new data
    version on its next request (quarters.api.dataversion)."""
    watch = getattr(app.state, "version_watch", None)
    if watch is None or not watch.enabled:
        return
    try:
        watch.learn(*services.data_version(conn))
    except OperationalError:  # committed, but the version cannot be read now: forget it,
        watch.known = None    # this worker reads the version until it learns one again
        log.warning("data version not readable after a commit; read per request for now")


def version_watch(app):  # noqa: ANN001, ANN201
    """The worker's VersionWatch, or None: read the version per request (also when the test
    harness hands in a runner on its own transaction: uncommitted writes notify nobody)."""
    watch = getattr(app.state, "version_watch", None)
    if watch is None or not watch.enabled or get_runner in app.dependency_overrides:
        return None
    return watch


@contextmanager
def _pooled(engine) -> Iterator[Connection]:  # noqa: ANN001
    try:
        conn = engine.connect()
    except OperationalError as exc:
        raise DatabaseUnavailable(code="database.unreachable") from exc
    with conn, conn.begin():
        yield conn


Connect = Callable[[], AbstractContextManager[Connection]]


def get_connect(request: Request) -> Connect:
    """For routes that must not hold a connection for the whole request (sign-in: argon2 runs
    in between): a function that takes a pooled connection for a ``with`` block. Each block is
    its own unit of work, committed when the block ends and rolled back if it raises, so a
    route can keep a record although it then answers with an error (a failed sign-in is
    counted, then 401/429 is raised after the block). Anonymous reads (the map page) take
    it from the read replica when one is configured, as ``get_connection`` does."""
    state = request.app.state
    engine = state.engine
    if anonymous_read(request):
        engine = getattr(state, "read_engine", None) or engine
    return lambda: _pooled(engine)


async def get_runner(request: Request) -> AsyncIterator[Runner]:
    """For the async read path: a runner on a pooled async connection (the replica's pool for
    anonymous reads), checked out at its first statement. A full pool raises PoolTimeout, an
    unreachable database psycopg.OperationalError: both answer 503 (quarters.api.errors).
    Tests override this with a ThreadRunner on their own transaction."""
    pools = request.app.state.pools
    runner = LazyPoolRunner(pools["read"] if anonymous_read(request) else pools["primary"])
    try:
        yield runner
    finally:
        await runner.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[Connection, Depends(get_conn, scope="function")]
RunnerDep = Annotated[Runner, Depends(get_runner)]
ConnectDep = Annotated[Connect, Depends(get_connect)]


# -- who is asking --------------------------------------------------------------------------
SESSION_COOKIE = "quarters_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_session(request: Request, conn: ConnDep) -> Session | None:
    """The caller's session from a bearer token or the session cookie (CSRF-checked)."""
    idle_s = request.app.state.settings.session_idle_s
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        session = session_for(conn, header[7:].strip(), idle_s)
        if session is None:
            raise Unauthorized(code="auth.token_unknown")
        return session
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    session = session_for(conn, token, idle_s)
    if session and request.method not in SAFE_METHODS:
        if not csrf_matches(session, request.headers.get(CSRF_HEADER)):
            raise Forbidden(code="auth.csrf", params={"header": CSRF_HEADER})
    return session


SessionDep = Annotated[Session | None, Depends(get_session)]


def get_user(session: SessionDep) -> User | None:
    """The signed-in user, or None for the public."""
    return session.user if session else None


UserDep = Annotated[User | None, Depends(get_user)]


def require(*roles: str):  # noqa: ANN201
    """Dependency factory: the user must have one of the roles (admin always may)."""

    def check(user: UserDep) -> User:
        if user is None:
            raise Unauthorized(code="auth.sign_in")
        if not user.can(*roles):
            raise Forbidden(code="auth.role", params={"role": user.role,
                                                      "needs": " | ".join(roles) or "admin"})
        return user

    return check


PlannerDep = Annotated[User, Depends(require("planner"))]
AdminDep = Annotated[User, Depends(require())]
StaffDep = Annotated[User, Depends(require("planner", "moderator"))]


def if_match(request: Request) -> int:
    """The version named by a strong If-Match ETag ("m<id>-v<version>")."""
    raw = request.headers.get("if-match")
    if not raw:
        raise PreconditionRequired(code="measure.if_match_missing")
    raw = raw.strip()
    if raw.startswith("W/") or raw == "*":
        raise PreconditionFailed(code="measure.if_match_weak")
    _, _, version = raw.strip('"').partition("-v")
    if not (version.isascii() and version.isdigit() and len(version) <= 9):
        raise PreconditionFailed(code="measure.if_match_unknown",
                                 params={"value": validation.excerpt(raw)})
    return int(version)


VersionDep = Annotated[int, Depends(if_match)]


async def json_body(request: Request) -> Any:
    """The request body as JSON: size-limited, strict (no NaN/Infinity), not too deep."""
    settings: Settings = request.app.state.settings
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/json", "application/geo+json", "application/merge-patch+json"):
        raise UnsupportedMediaType(code="request.not_json", params={"type": kind[:80]})
    # The ASGI middleware (quarters.api.limits) refuses larger bodies as they arrive; this
    # second count only guards apps built without it.
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > settings.max_body_bytes:
            raise PayloadTooLarge(code="request.body_too_large",
                                      params={"limit": settings.max_body_bytes})
        chunks.append(chunk)
    return parse_json(b"".join(chunks))


def parse_json(raw: bytes) -> Any:
    """Parse JSON strictly (orjson; depth, NUL and surrogates checked); errors become 400."""
    return validation.parse_json(raw)


BodyDep = Annotated[Any, Depends(json_body)]
