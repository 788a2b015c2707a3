"""The async read path of the OGC items/item endpoints on a real server: the runtime role,
the statement timeout (503 + Retry-After) and the same answers as the shared SQL builder."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg

from conftest import serve_app
from quarters import services
from quarters.collections import COLLECTIONS
from quarters.db import make_async_pool
from quarters.embedded import APP_ROLE
from quarters.runner import PoolRunner
from quarters.services import ItemQuery


def test_items_run_as_the_runtime_role(cluster, settings, engine):
    with serve_app(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        for limit in (2, 3, 4):  # three pages, none from the page cache
            assert http.get(f"/api/collections/districts/items?limit={limit}").status_code == 200
        with psycopg.connect(cluster.conninfo(role="admin")) as admin:
            rows = admin.execute(  # (pg_stat_activity keeps the first 1 kB of a statement)
                "SELECT DISTINCT usename FROM pg_stat_activity "
                "WHERE application_name LIKE %s AND query LIKE %s",
                ("quarters-%", "%string_agg(p.f, %")).fetchall()
        assert rows == [(APP_ROLE,)]


def test_the_pool_prepares_lookups_plans_selective_pages_each_time_and_sets_the_session(
        settings, engine):
    col = COLLECTIONS["municipalities"]
    box = ItemQuery(limit=2, bbox=(11.8, 51.3, 12.2, 51.6))
    assert services.selective(box) and not services.selective(ItemQuery(limit=2))

    async def run() -> tuple:
        pool = make_async_pool(settings)
        await pool.open()
        try:
            async with pool.connection() as conn:
                runner = PoolRunner(conn)
                for limit in range(2, 9):  # past the five runs after which a plan may go generic
                    query = ItemQuery(limit=limit, bbox=box.bbox)
                    row = await runner.first(services.items_page_sql(col, query),
                                             plan_each_time=services.selective(query))
                plain = await runner.first(services.items_page_sql(col, ItemQuery(limit=3)),
                                           plan_each_time=False)
                prepared = await (await conn.execute(
                    "SELECT statement FROM pg_prepared_statements")).fetchall()
                session = await (await conn.execute(
                    "SELECT current_user, (SELECT setting FROM pg_settings "
                    "WHERE name = 'statement_timeout'), current_setting('jit')")).fetchone()
            return row, plain, prepared, session
        finally:
            await pool.close()

    # in a thread of its own: an earlier test (Playwright's sync API) may run a loop here
    with ThreadPoolExecutor(1) as one:
        row, plain, prepared, session = one.submit(asyncio.run, run()).result()
    assert row[1] == 8 and plain[1] == 3
    # a page whose rows depend on its values is never prepared; a plain page is
    pages = [p[0] for p in prepared if "string_agg(p.f, " in p[0]]
    assert len(pages) == 1 and "ST_MakeEnvelope" not in pages[0], pages
    assert session == (APP_ROLE, str(settings.statement_timeout_ms), "off")


def test_the_async_path_answers_what_the_sql_builder_returns(settings, engine):
    col = COLLECTIONS["municipalities"]
    with engine.connect() as conn:
        features, returned, matched, _ = services.items_page(conn, col, ItemQuery(limit=5))
    with serve_app(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        page = http.get("/api/collections/municipalities/items?limit=5").json()
        one = http.get(f"/api/collections/municipalities/items/{page['features'][0]['id']}")
    assert page["features"] == httpx.Response(200, content=features).json()
    assert (page["numberReturned"], page["numberMatched"]) == (returned, matched) == (5, 10997)
    assert one.json()["properties"] == page["features"][0]["properties"]


def test_a_statement_over_the_timeout_answers_503(settings, engine):
    with serve_app(settings, QUARTERS_STATEMENT_TIMEOUT_MS="1") as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        slow = http.get("/api/collections/municipalities/items?limit=10000")
        assert slow.status_code == 503, slow.text[:200]
        assert int(slow.headers["retry-after"]) > 0
        assert slow.headers["content-type"].startswith("application/problem+json")
        # The database is there: the problem says the request took too long, not "unreachable".
        assert slow.json()["code"] == "database.too_slow", slow.json()
        en = http.get("/api/collections/municipalities/items?limit=9999&lang=en")
        assert en.status_code == 503 and "took too long" in en.json()["detail"]
