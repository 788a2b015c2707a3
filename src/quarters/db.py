"""Database engine: one owner for connections, no queries here."""

from __future__ import annotations

import logging
import os
import time
from typing import Literal

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, create_engine, event, exc

from quarters.embedded import Cluster
from quarters.settings import Settings

log = logging.getLogger("quarters")
Role = Literal["owner", "app"]

IDLE_PING_S = 5.0


def cluster_for(settings: Settings) -> Cluster:
    """The embedded cluster described by the settings."""
    return Cluster(home=settings.home.resolve(), port=settings.db_port)


def database_url(settings: Settings, *, start: bool = True, role: Role = "owner") -> str:
    """URL of the database to use; starts the embedded cluster when it is the one in use.

    ``owner`` owns the schema (migrations, data loads, the CLI); ``app`` is the runtime role the
    API connects as: reads and the writes of the app, no DDL, history append-only."""
    if role == "app" and settings.app_database_url:
        return settings.app_database_url
    if settings.database_url:
        if role == "app":
            log.warning("QUARTERS_APP_DATABASE_URL is unset: the API connects as the owner role "
                        "of QUARTERS_DATABASE_URL (see README, database roles)")
        return settings.database_url
    cluster = cluster_for(settings)
    if start:
        cluster.start()
    return cluster.url(role)


def application_name() -> str:
    """How this worker's connections show in pg_stat_activity (which worker holds what)."""
    return f"quarters-{os.getpid()}"


def make_engine(settings: Settings, *, start: bool = True, role: Role = "owner",
                url: str | None = None) -> Engine:
    """Create the SQLAlchemy engine (psycopg 3, pooled, pre-ping for restarts); ``url``
    instead of the settings' database (a read replica)."""
    engine = create_engine(
        url or database_url(settings, start=start, role=role),
        plugins=["geoalchemy2"],
        connect_args={"application_name": application_name()},
        pool_size=settings.pool_max,
        max_overflow=0,
        pool_timeout=settings.pool_timeout_s,
    )
    timeout = settings.statement_timeout_ms

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn, record) -> None:  # noqa: ANN001
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy) -> None:  # noqa: ANN001
        # A round trip per request costs throughput; ping only connections that sat idle,
        # so a restarted database hands out fresh connections instead of dead ones.
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < IDLE_PING_S:
            return
        try:
            with dbapi_conn.cursor() as cur:
                cur.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as error:
            raise exc.DisconnectionError() from error

    @event.listens_for(engine, "connect")
    def _session_settings(dbapi_conn, _record) -> None:  # noqa: ANN001
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = {int(timeout)}")
            cur.execute("SET max_parallel_workers_per_gather = 0")
            cur.execute("SET jit = off")
        dbapi_conn.commit()

    return engine


def make_async_pool(settings: Settings, url: str | None = None) -> AsyncConnectionPool:
    """A psycopg async pool for the read path (not opened yet; ``open()`` in the lifespan):
    autocommit and read-only (``default_transaction_read_only``: the async path never writes;
    writes go through ``ConnDep``, which owns their transaction), the runtime role (or
    ``url``: a replica), the same session settings as the engine, and statements prepared
    from their first run (``prepare_threshold=0``)."""
    url = url or database_url(settings, start=False, role="app")
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    options = (f"-c statement_timeout={int(settings.statement_timeout_ms)} "
               "-c max_parallel_workers_per_gather=0 -c jit=off "
               "-c default_transaction_read_only=on")
    async def check(conn) -> None:  # noqa: ANN001
        # as the engine: ping only a connection that sat idle (a restart left it dead)
        if time.monotonic() - getattr(conn, "quarters_returned_at", 0.0) >= IDLE_PING_S:
            await conn.execute("SELECT 1")

    async def reset(conn) -> None:  # noqa: ANN001
        conn.quarters_returned_at = time.monotonic()

    return AsyncConnectionPool(
        conninfo, min_size=min(settings.pool_min, settings.pool_max), max_size=settings.pool_max,
        timeout=settings.pool_timeout_s, open=False, check=check, reset=reset,
        kwargs={"autocommit": True, "prepare_threshold": 0, "options": options,
                "application_name": application_name()},
    )
