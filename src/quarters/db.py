"""Database engine: one owner for connections, no queries here."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event

from quarters.embedded import Cluster
from quarters.settings import Settings


def cluster_for(settings: Settings) -> Cluster:
    """The embedded cluster described by the settings."""
    return Cluster(home=settings.home.resolve(), port=settings.db_port)


def database_url(settings: Settings, *, start: bool = True) -> str:
    """URL of the database to use; starts the embedded cluster when it is the one in use."""
    if settings.database_url:
        return settings.database_url
    cluster = cluster_for(settings)
    if start:
        cluster.start()
    return cluster.url()


def make_engine(settings: Settings, *, start: bool = True) -> Engine:
    """Create the SQLAlchemy engine (psycopg 3, pooled, pre-ping for restarts)."""
    engine = create_engine(
        database_url(settings, start=start),
        plugins=["geoalchemy2"],
        pool_size=settings.pool_max,
        max_overflow=0,
        pool_pre_ping=True,
        pool_timeout=10,
    )
    timeout = settings.statement_timeout_ms

    @event.listens_for(engine, "connect")
    def _session_settings(dbapi_conn, _record) -> None:  # noqa: ANN001
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = {int(timeout)}")
            cur.execute("SET max_parallel_workers_per_gather = 0")
        dbapi_conn.commit()

    return engine


def commit(conn) -> None:  # noqa: ANN001
    """Commit the request's work, unless an enclosing transaction owns it (the test harness,
    which runs each request in a savepoint of a transaction it rolls back)."""
    if not conn.info.get("outer_transaction"):
        conn.commit()
