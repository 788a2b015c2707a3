"""The read path's SQL (issue 9 perf, issue 10 item 4): migration 0012 (stored EPSG:4326
boundaries kept in step by PostgreSQL, indexes on the published measures), numberMatched
(cached per filter and data version, otherwise counted from an index) against independent
counts, and plans that use the indexes (asserted on EXPLAIN, not on timings)."""

from __future__ import annotations

import importlib.util
import json
import re
import urllib.parse
from pathlib import Path

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

import quarters
from quarters import services
from quarters.collections import COLLECTIONS
from quarters.services import ItemQuery

PATH = Path(quarters.__file__).parent / "migrations" / "versions" / "0012_read_indexes.py"
BOUNDARIES = ("municipalities", "counties", "districts", "quarters", "sites")
MEASURE_INDEXES = {"measures_geom_wgs84_idx", "measures_public_action_field_idx",
                   "measures_public_status_idx", "measures_public_budget_idx",
                   "measures_public_start_idx"}


def _migration():
    spec = importlib.util.spec_from_file_location("m0012", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generated(conn) -> set[str]:  # noqa: ANN001
    return set(conn.execute(text(
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'geom_wgs84' "
        "AND is_generated = 'ALWAYS' AND table_schema = 'public'")).scalars())


def _indexes(conn) -> set[str]:  # noqa: ANN001
    return set(conn.execute(text(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")).scalars())


def _items(client, collection: str, **params) -> dict:  # noqa: ANN001
    response = client.get(f"/api/collections/{collection}/items?"
                          + urllib.parse.urlencode(params))
    assert response.status_code == 200, response.text[:400]
    return response.json()


# -- migration 0012 ---------------------------------------------------------------------------
def test_migration_creates_the_columns_and_indexes_and_goes_down_and_up(conn):
    wanted_indexes = MEASURE_INDEXES | {f"{t}_geom_wgs84_idx" for t in BOUNDARIES}
    assert set(BOUNDARIES) | {"measures"} <= _generated(conn)
    assert wanted_indexes <= _indexes(conn)
    module = _migration()
    with Operations.context(MigrationContext.configure(conn)):
        module.downgrade()
        assert not set(BOUNDARIES) & _generated(conn)
        assert not wanted_indexes & _indexes(conn)
        module.upgrade()
    assert set(BOUNDARIES) <= _generated(conn) and wanted_indexes <= _indexes(conn)
    # the re-created column holds every row's outline
    assert conn.execute(text(
        "SELECT count(*) FROM municipalities WHERE geom_wgs84 IS NULL")).scalar_one() == 0
    assert conn.execute(text(
        "SELECT bool_and(ST_Equals(geom_wgs84, ST_ForcePolygonCCW(ST_Transform(geom, 4326))))"
        " FROM (SELECT * FROM municipalities ORDER BY ags LIMIT 50) m")).scalar_one()


def test_stored_outline_follows_an_update_of_the_district_geometry(client, conn):
    district = conn.execute(text(
        "SELECT id, ST_X(ST_Centroid(geom_wgs84)) FROM districts ORDER BY id LIMIT 1")).one()
    before = client.get(f"/api/collections/districts/items/{district.id}").json()["geometry"]
    conn.execute(text("UPDATE districts SET geom = ST_Translate(geom, 5000, 0) WHERE id = :id"),
                 {"id": district.id})
    moved = conn.execute(text(
        "SELECT ST_X(ST_Centroid(geom_wgs84)), ST_Equals(geom_wgs84, "
        "ST_ForcePolygonCCW(ST_Transform(geom, 4326))) FROM districts WHERE id = :id"),
        {"id": district.id}).one()
    assert moved[1] and moved[0] > district[1] + 0.05  # 5 km east is ~0.07° here
    after = client.get(f"/api/collections/districts/items/{district.id}").json()["geometry"]
    assert after != before
    assert after["coordinates"][0][0][0][0] > before["coordinates"][0][0][0][0] + 0.05
    # and a CRS84 bbox finds it at the new place only
    x, y = conn.execute(text(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_wgs84) p FROM districts "
        "WHERE id = :id) s"), {"id": district.id}).one()
    box = f"{x - 1e-4},{y - 1e-4},{x + 1e-4},{y + 1e-4}"
    ids = {f["id"] for f in _items(client, "districts", bbox=box, limit=100)["features"]}
    assert district.id in ids


# -- numberMatched ----------------------------------------------------------------------------
CASES = [
    ("municipalities", {"filter": "land = '15' AND population >= 20000", "limit": 5},
     "SELECT count(*) FROM municipalities WHERE ags LIKE '15%' "
     "AND quarters_figure('population', 'gemeinde', ags) >= 20000"),
    ("municipalities", {"bbox": "11.8,51.3,12.2,51.6", "limit": 3},
     "SELECT count(*) FROM municipalities WHERE ST_Intersects(ST_Transform(geom, 4326), "
     "ST_MakeEnvelope(11.8, 51.3, 12.2, 51.6, 4326))"),
    ("municipalities", {"bbox": "11.8,51.3,12.2,51.6", "limit": 3, "offset": 100000},
     "SELECT count(*) FROM municipalities WHERE ST_Intersects(ST_Transform(geom, 4326), "
     "ST_MakeEnvelope(11.8, 51.3, 12.2, 51.6, 4326))"),
    ("municipalities", {"land": "16", "limit": 10, "after": "16000000"},
     "SELECT count(*) FROM municipalities WHERE ags LIKE '16%'"),
    ("measures", {"limit": 2}, "SELECT count(*) FROM measures WHERE published "
     "AND deleted_at IS NULL"),
    ("measures", {"limit": 1000}, "SELECT count(*) FROM measures WHERE published "
     "AND deleted_at IS NULL"),
    ("districts", {"filter": "population > 5000", "limit": 1},
     "SELECT count(*) FROM districts WHERE population > 5000"),
]


@pytest.mark.parametrize(("collection", "params", "sql"), CASES)
def test_number_matched_equals_an_independent_count(client, conn, collection, params, sql):
    want = conn.execute(text(sql)).scalar_one()
    first = _items(client, collection, **params)
    again = _items(client, collection, **params)  # the second one takes the cached count
    assert first["numberMatched"] == again["numberMatched"] == want
    assert first["features"] == again["features"]
    if collection == "measures" or "after" in params:
        return
    assert want > 0


def test_a_cached_count_is_not_served_after_a_write(client, conn):
    published = "SELECT count(*) FROM measures WHERE published AND deleted_at IS NULL"
    before = conn.execute(text(published)).scalar_one()
    assert before >= 3
    params = {"limit": 1}
    assert _items(client, "measures", **params)["numberMatched"] == before
    cache = client.app.state.count_cache
    assert any(key[0] == "measures" for key in cache.entries)
    # a change the API did not make (a loader, another worker): the data version moves
    conn.execute(text("UPDATE measures SET published = false WHERE id = "
                      "(SELECT min(id) FROM measures WHERE published AND deleted_at IS NULL)"))
    assert _items(client, "measures", **params)["numberMatched"] == before - 1
    assert _items(client, "measures", **params)["numberMatched"] == before - 1


def test_a_cached_count_from_another_snapshot_is_counted_again(conn):
    """The page statement reports its snapshot's data version; a count kept for another
    version is not used (the route then runs the counting statement)."""
    col = COLLECTIONS["measures"]
    query = ItemQuery(limit=1)
    sql, params = services.items_page_sql(col, query, matched=12345)
    row = conn.execute(text(sql), params).one()
    version = conn.execute(text(services.DATA_VERSION_SQL)).one()
    assert row[2] == 12345 and (row[4], row[5]) == tuple(version)
    counted = conn.execute(text(services.items_page_sql(col, query)[0]),
                           services.items_page_sql(col, query)[1]).one()
    assert counted[2] == conn.execute(text(
        "SELECT count(*) FROM measures_public")).scalar_one()


def test_count_key_ignores_paging_order_and_properties():
    col = COLLECTIONS["measures"]
    base = ItemQuery(limit=10, filters=(("status", "geplant"),))
    other = ItemQuery(limit=50, offset=20, after=7, filters=(("status", "geplant"),),
                      order_by=("t.title",), properties=("title",))
    assert services.count_key(col, base) == services.count_key(col, other)
    assert services.count_key(col, base) != services.count_key(
        col, ItemQuery(limit=10, filters=(("status", "abgeschlossen"),)))


# -- plans ------------------------------------------------------------------------------------
@pytest.fixture
def many_measures(conn):
    """20,000 published measures more (in the test's transaction), analysed."""
    conn.execute(text("""
        INSERT INTO measures (city_ags, title, action_field, status, budget_planned, start_date,
                              location_precision, geom, published, published_at)
        SELECT '15002000', 'Plan ' || i,
               (ARRAY['Verkehr','Grün','Bildung','Kultur','Soziales','Umwelt','Wirtschaft',
                      'Sport'])[1 + i % 8],
               (ARRAY['geplant','in_umsetzung','abgeschlossen','eingestellt'])[1 + i % 4],
               (i * 7919) % 2000000, make_date(2015 + i % 12, 1, 1), 'unknown',
               ST_Transform(ST_SetSRID(ST_MakePoint(11.85 + (i % 200) * 0.00125,
                                                    51.40 + (i / 200) * 0.0016), 4326), 25832),
               true, now()
        FROM generate_series(1, 20000) AS i"""))
    conn.execute(text("ANALYZE measures"))
    return conn


def _plan(conn, statement) -> str:  # noqa: ANN001
    sql, params = statement
    rows = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql), params)
    return "\n".join(r[0] for r in rows)


def _cql2_query(cql: str, limit: int = 100) -> ItemQuery:
    from quarters import cql2
    from quarters.api.routes.features import cql2_fields

    compiled = cql2.compile_filter(cql, None, cql2_fields(COLLECTIONS["measures"]), None)
    return ItemQuery(limit=limit, where=compiled.sql, where_params=compiled.params)


def test_the_filtered_page_counts_from_the_index_and_stops_after_the_page(many_measures):
    col = COLLECTIONS["measures"]
    query = _cql2_query("action_field = 'Verkehr' AND budget_planned >= 500000")
    plan = _plan(many_measures, services.items_page_sql(col, query))
    # numberMatched from the filter's index (index-only once the visibility map is set by
    # VACUUM, which a test transaction cannot run; a bitmap scan of it until then), the page
    # from an index up to its limit
    assert re.search(r"(Index Only Scan using|Bitmap Index Scan on) "
                     r"measures_public_action_field_idx", plan), plan
    assert "Seq Scan on measures" not in plan and "Limit" in plan, plan
    assert plan.count("Aggregate") == 2, plan  # the page's and the count's
    # with the count known, the statement does not count at all
    cached = _plan(many_measures, services.items_page_sql(col, query, matched=1))
    assert "Seq Scan on measures" not in cached and "Limit" in cached, cached
    assert cached.count("Aggregate") == 1, cached
    body = json.loads(many_measures.execute(text(services.items_page_sql(col, query)[0]),
                                            services.items_page_sql(col, query)[1]).one()[0])
    assert len(body) == 100
    assert all(f["properties"]["action_field"] == "Verkehr"
               and f["properties"]["budget_planned"] >= 500000 for f in body)


def test_a_status_filter_counts_from_its_index(many_measures):
    col = COLLECTIONS["measures"]
    query = _cql2_query("status = 'geplant' AND budget_planned < 100000")
    plan = _plan(many_measures, services.items_page_sql(col, query))
    assert "measures_public_status_idx" in plan, plan
    assert "Seq Scan on measures" not in plan, plan


def test_a_crs84_bbox_uses_the_stored_column_and_its_index(many_measures):
    col = COLLECTIONS["measures"]
    query = ItemQuery(limit=1000, bbox=(11.96, 51.47, 11.98, 51.49))
    sql, _ = services.items_page_sql(col, query)
    assert "ST_Transform" not in sql and "t.geom_wgs84" in sql
    plan = _plan(many_measures, services.items_page_sql(col, query))
    assert "Bitmap Index Scan on measures_geom_wgs84_idx" in plan, plan
    districts = _plan(many_measures, services.items_page_sql(
        COLLECTIONS["districts"], ItemQuery(limit=50, bbox=(11.9, 51.4, 12.0, 51.5))))
    assert "ST_Transform" not in districts


def test_boundary_pages_reproject_nothing_and_call_no_figure_function():
    for name in ("municipalities", "counties", "districts", "quarters", "sites"):
        sql, _ = services.items_page_sql(COLLECTIONS[name], ItemQuery(limit=10))
        assert "ST_Transform" not in sql, name
        assert "quarters_figure(" not in sql and "quarters_figure_date(" not in sql, name
        assert "ST_AsGeoJSON(t.geom_wgs84, 6)" in sql, name
