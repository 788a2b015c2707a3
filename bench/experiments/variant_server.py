"""quarters' read path with variations, to measure what each change would gain (experiment).

Not part of quarters: src/ is untouched. Run by read_variants.py as
``python variant_server.py PORT FLAG…`` with QUARTERS_DATABASE_URL set. Flags:

- nolog: uvicorn without access log         - noping: engine without pool_pre_ping
- autocommit: engine in AUTOCOMMIT (no BEGIN/ROLLBACK round trips)
- sa: bare FastAPI app, SQLAlchemy routes (/x: connect in the route, /y: quarters' get_conn
  dependency in a sync route, /z: the same dependency in an async route)
- syncraw: bare FastAPI app, sync routes on a psycopg ConnectionPool (no SQLAlchemy)
- async: bare FastAPI app, async routes on a psycopg AsyncConnectionPool (no SQLAlchemy)
Without sa/syncraw/async the app is quarters' own ``create_app`` with the given engine.
All variants run quarters' own SQL (``quarters.services``) for the district requests.
"""

import sys

import uvicorn
from fastapi import FastAPI, Response
from sqlalchemy import create_engine, event
from sqlalchemy import text as sa_text

from quarters import services
from quarters.api import create_app
from quarters.api.deps import ConnDep
from quarters.collections import COLLECTIONS
from quarters.settings import Settings

port, flags = int(sys.argv[1]), set(sys.argv[2:])
settings = Settings()
engine = create_engine(settings.database_url, plugins=["geoalchemy2"], pool_size=settings.pool_max,
                       max_overflow=0, pool_pre_ping="noping" not in flags, pool_timeout=10)


@event.listens_for(engine, "connect")
def _session(dbapi_conn, _record):  # noqa: ANN001, D103
    with dbapi_conn.cursor() as cur:
        cur.execute("SET statement_timeout = 15000")
        cur.execute("SET max_parallel_workers_per_gather = 0")
    dbapi_conn.commit()


if "autocommit" in flags:
    engine = engine.execution_options(isolation_level="AUTOCOMMIT")
app = create_app(settings, engine=engine)

col = COLLECTIONS["districts"]
conninfo = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
pool_kwargs = {"autocommit": True, "options": "-c max_parallel_workers_per_gather=0"}
FEATURE = f"SELECT {services._feature_sql(col)}::text FROM {col.from_clause()} WHERE t.id = %s"
PAGE = (f"SELECT COALESCE(json_agg(p.f ORDER BY p.k), '[]')::text, count(*) FROM ("
        f"SELECT t.id AS k, {services._feature_sql(col)} AS f FROM {col.from_clause()} "
        f"WHERE t.level = %s ORDER BY t.id LIMIT %s OFFSET %s) p")
COUNT = f"SELECT count(*) FROM {col.from_clause()} WHERE t.level = %s"


def _collection(features: str, returned: int, matched: int) -> Response:
    head = f'{{"type":"FeatureCollection","numberMatched":{matched},"numberReturned":{returned}'
    return Response(head + ',"features":' + features + "}", media_type="application/geo+json")


if flags & {"async", "syncraw", "sa"}:
    app = FastAPI()
    app.state.engine = engine

if "async" in flags:
    from psycopg_pool import AsyncConnectionPool

    apool = AsyncConnectionPool(conninfo, min_size=4, max_size=10, open=False, kwargs=pool_kwargs)

    @app.on_event("startup")
    async def _open() -> None:  # noqa: D103
        await apool.open()

    @app.get("/x/districts/{item_id}")
    async def one_async(item_id: int) -> Response:  # noqa: D103
        async with apool.connection() as conn:
            row = await (await conn.execute(FEATURE, (item_id,))).fetchone()
        return Response(row[0], media_type="application/geo+json")

    @app.get("/x/districts")
    async def many_async(level: str = "bench", limit: int = 50) -> Response:  # noqa: D103
        async with apool.connection() as conn:
            features, n = await (await conn.execute(PAGE, (level, limit, 0))).fetchone()
            matched = (await (await conn.execute(COUNT, (level,))).fetchone())[0]
        return _collection(features, n, matched)

if "syncraw" in flags:
    from psycopg_pool import ConnectionPool

    spool = ConnectionPool(conninfo, min_size=4, max_size=10, kwargs=pool_kwargs)

    @app.get("/x/districts/{item_id}")
    def one_sync(item_id: int) -> Response:  # noqa: D103
        with spool.connection() as conn:
            row = conn.execute(FEATURE, (item_id,)).fetchone()
        return Response(row[0], media_type="application/geo+json")

    @app.get("/x/districts")
    def many_sync(level: str = "bench", limit: int = 50) -> Response:  # noqa: D103
        with spool.connection() as conn:
            features, n = conn.execute(PAGE, (level, limit, 0)).fetchone()
            matched = conn.execute(COUNT, (level,)).fetchone()[0]
        return _collection(features, n, matched)

if "sa" in flags:
    feature_sa = sa_text(FEATURE.replace("%s", ":id"))

    @app.get("/x/districts/{item_id}")
    def one_sa(item_id: int) -> Response:  # noqa: D103
        with engine.connect() as conn:
            row = conn.execute(feature_sa, {"id": item_id}).first()
        return Response(row[0], media_type="application/geo+json")

    @app.get("/y/districts/{item_id}")
    def one_sa_dep(item_id: int, conn: ConnDep) -> Response:  # noqa: D103
        row = conn.execute(feature_sa, {"id": item_id}).first()
        return Response(row[0], media_type="application/geo+json")

    @app.get("/z/districts/{item_id}")
    async def one_sa_dep_async(item_id: int, conn: ConnDep) -> Response:  # noqa: D103
        row = conn.execute(feature_sa, {"id": item_id}).first()
        return Response(row[0], media_type="application/geo+json")

uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning" if "nolog" in flags else "info",
            access_log="nolog" not in flags)
