"""CQL2 filters over the real municipalities and measures, checked against counts computed
independently in Python (pandas/shapely over the same rows), plus invalid filters, injection
attempts and random garbage."""

from __future__ import annotations

import json
import time
from datetime import date

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text

from quarters.cql2 import Field, compile_filter, parse_properties, parse_sortby
from quarters.errors import InvalidParameter

# A test-local allow-list: municipalities with their latest Destatis figures.
FROM = """municipalities t
    LEFT JOIN LATERAL (SELECT v.value FROM indicator_values v WHERE v.level = 'gemeinde'
        AND v.indicator = 'population' AND v.unit_code = t.ags ORDER BY v.ref_date DESC LIMIT 1)
        pop ON true
    LEFT JOIN LATERAL (SELECT v.value FROM indicator_values v WHERE v.level = 'gemeinde'
        AND v.indicator = 'area_km2' AND v.unit_code = t.ags ORDER BY v.ref_date DESC LIMIT 1)
        ar ON true"""
QUERYABLES = {
    "name": Field("t.name"),
    "ags": Field("t.ags"),
    "land": Field("substr(t.ags, 1, 2)"),
    "bez": Field("t.bez"),
    "population": Field("pop.value", "number"),
    "area_km2": Field("ar.value", "number"),
    "project_city": Field("t.project_city", "boolean"),
    "geometry": Field("t.geom", "geometry"),
}
MEASURES = {
    "title": Field("t.title"),
    "status": Field("t.status"),
    "start_date": Field("t.start_date", "date"),
    "end_date": Field("t.end_date", "date"),
    "updated_at": Field("t.updated_at", "datetime"),
    "budget_planned": Field("t.budget_planned", "number"),
    "geometry": Field("t.geom", "geometry"),
}
TO_UTM = pyproj.Transformer.from_crs(4326, 25832, always_xy=True)
HALLE = (11.9695, 51.4828)  # Marktplatz, lon/lat


def count(conn, filter_, lang=None, queryables=QUERYABLES, crs=None, from_=FROM) -> int:
    compiled = compile_filter(filter_, lang, queryables, crs)
    return conn.execute(text(f"SELECT count(*) FROM {from_} WHERE {compiled.sql}"),
                        compiled.params).scalar_one()


@pytest.fixture(scope="module")
def frame(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(text(f"""
            SELECT t.ags, t.name, t.bez, t.project_city, pop.value AS population,
                   ar.value AS area_km2, ST_AsBinary(t.geom) AS wkb FROM {FROM}""")).all()
    df = pd.DataFrame(rows, columns=["ags", "name", "bez", "project_city", "population",
                                     "area_km2", "wkb"])
    df["geom"] = shapely.from_wkb(df.pop("wkb").map(bytes).to_numpy())
    df["land"] = df["ags"].str[:2]
    assert len(df) > 10_000
    return df


@pytest.fixture(scope="module")
def measures(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT t.title, t.status, t.start_date, t.end_date, t.budget_planned "
            "FROM measures_current t")).all()
    df = pd.DataFrame(rows, columns=["title", "status", "start_date", "end_date",
                                     "budget_planned"])
    assert len(df) >= 20 and df["start_date"].notna().any()
    return df


# -- each operator against pandas ---------------------------------------------------------------
@pytest.mark.parametrize(("cql", "expected"), [
    ("name = 'Halle (Saale)'", lambda d: d.name == "Halle (Saale)"),
    ("name <> 'Halle (Saale)'", lambda d: d.name != "Halle (Saale)"),
    ("population < 500", lambda d: d.population < 500),
    ("population <= 500", lambda d: d.population <= 500),
    ("population > 200000", lambda d: d.population > 200000),
    ("population >= 90000 AND land IN ('12','13','14','15','16')",
     lambda d: (d.population >= 90000) & d.land.isin(["12", "13", "14", "15", "16"])),
    ("land NOT IN ('01', '09')", lambda d: ~d.land.isin(["01", "09"])),
    ("name LIKE 'Bad %'", lambda d: d.name.str.startswith("Bad ")),
    ("name LIKE '%dorf'", lambda d: d.name.str.endswith("dorf")),
    ("name NOT LIKE '%a%'", lambda d: ~d.name.str.contains("a")),
    ("name LIKE 'B_rg'", lambda d: d.name.str.fullmatch(r"B.rg")),
    ("population BETWEEN 1000 AND 2000", lambda d: d.population.between(1000, 2000)),
    ("population NOT BETWEEN 1000 AND 2000", lambda d: ~d.population.between(1000, 2000)
     & d.population.notna()),
    ("population IS NULL", lambda d: d.population.isna()),
    ("population IS NOT NULL", lambda d: d.population.notna()),
    ("project_city = TRUE", lambda d: d.project_city),
    ("NOT (project_city = TRUE) AND land = '15'", lambda d: ~d.project_city & (d.land == "15")),
    ("land = '16' OR area_km2 > 500", lambda d: (d.land == "16") | (d.area_km2 > 500)),
    ("bez = 'Stadt' AND area_km2 < 10",
     lambda d: (d.bez == "Stadt") & (d.area_km2 < 10)),
    ("CASEI(name) = casei('HALLE (SAALE)')", lambda d: d.name.str.lower() == "halle (saale)"),
    ("name = 'x' OR 1=1", lambda d: d.name.notna()),  # a literal comparison: true for every row
])
def test_comparisons_match_pandas(conn, frame, cql, expected):
    want = int(expected(frame).fillna(False).sum())
    assert count(conn, cql) == want
    assert want > 0 or "IS NULL" in cql


def test_cql2_json_gives_the_same_counts_as_text(conn, frame):
    pairs = [
        ({"op": "and", "args": [
            {"op": ">=", "args": [{"property": "population"}, 90000]},
            {"op": "in", "args": [{"property": "land"}, ["12", "13", "14", "15", "16"]]}]},
         "population >= 90000 AND land IN ('12','13','14','15','16')"),
        ({"op": "between", "args": [{"property": "population"}, 1000, 2000]},
         "population BETWEEN 1000 AND 2000"),
        ({"op": "like", "args": [{"property": "name"}, "Bad %"]}, "name LIKE 'Bad %'"),
        ({"op": "not", "args": [{"op": "isNull", "args": [{"property": "population"}]}]},
         "population IS NOT NULL"),
        ({"op": "=", "args": [{"casei": {"property": "name"}}, {"casei": "halle (saale)"}]},
         "CASEI(name) = CASEI('Halle (Saale)')"),
    ]
    for js, cql in pairs:
        assert count(conn, json.dumps(js), "cql2-json") == count(conn, cql) > 0
        assert count(conn, js, "cql2-json") == count(conn, cql)  # already decoded


def _utm(geom):
    return shapely.transform(geom, lambda c: np.column_stack(TO_UTM.transform(c[:, 0], c[:, 1])))


def test_spatial_predicates_match_shapely(conn, frame):
    geoms = frame["geom"].to_numpy()
    point = _utm(shapely.Point(HALLE))
    square = shapely.box(11.5, 51.2, 12.5, 51.8)
    square_utm = _utm(shapely.segmentize(square, 0.1))

    assert count(conn, f"S_INTERSECTS(geometry, POINT({HALLE[0]} {HALLE[1]}))") \
        == int(shapely.intersects(geoms, point).sum()) == 1
    assert count(conn, "S_WITHIN(geometry, POLYGON((11.5 51.2, 12.5 51.2, 12.5 51.8, 11.5 51.8, "
                       "11.5 51.2)))") == int(shapely.within(geoms, square_utm).sum()) > 10
    assert count(conn, "BBOX(geometry, 11.5, 51.2, 12.5, 51.8)") \
        == int(shapely.intersects(geoms, square_utm).sum())
    assert count(conn, "S_INTERSECTS(geometry, ENVELOPE(11.5 12.5 51.2 51.8))") \
        == int(shapely.intersects(geoms, square_utm).sum())
    assert count(conn, f"S_CONTAINS(geometry, POINT({HALLE[0]} {HALLE[1]}))") \
        == int(shapely.contains(geoms, point).sum()) == 1
    assert count(conn, f"S_DWITHIN(geometry, POINT({HALLE[0]} {HALLE[1]}), 10000)") \
        == int((shapely.distance(geoms, point) <= 10000).sum()) > 5
    # the same point in EPSG:4326 (latitude first) and in EPSG:25832
    lat_first = "http://www.opengis.net/def/crs/EPSG/0/4326"
    assert count(conn, f"S_DWITHIN(geometry, POINT({HALLE[1]} {HALLE[0]}), 10000)",
                 crs=lat_first) == int((shapely.distance(geoms, point) <= 10000).sum())
    utm = "http://www.opengis.net/def/crs/EPSG/0/25832"
    assert count(conn, f"S_DWITHIN(geometry, POINT({point.x} {point.y}), 10000)", crs=utm) \
        == int((shapely.distance(geoms, point) <= 10000).sum())
    # a world polygon and a world bbox contain every municipality; nothing contains them
    world = "POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))"
    assert count(conn, f"S_INTERSECTS(geometry, {world})") == len(frame)
    assert count(conn, f"S_WITHIN(geometry, {world})") == len(frame)
    assert count(conn, f"S_CONTAINS(geometry, {world})") == 0
    assert count(conn, json.dumps({"op": "s_intersects", "args": [
        {"property": "geometry"}, {"bbox": [-180, -90, 180, 90]}]}), "cql2-json") == len(frame)
    assert count(conn, json.dumps({"op": "s_dwithin", "args": [
        {"property": "geometry"}, {"type": "Point", "coordinates": list(HALLE)}, 10000]}),
        "cql2-json") == int((shapely.distance(geoms, point) <= 10000).sum())
    # far away (Pacific): nothing
    assert count(conn, "S_INTERSECTS(geometry, POINT(-150 0))") == 0


def test_temporal_predicates_match_python(conn, measures):
    m = measures.copy()
    start = pd.to_datetime(m.start_date)
    end = pd.to_datetime(m.end_date)
    d2025 = pd.Timestamp("2025-01-01")
    d2026 = pd.Timestamp("2026-01-01")
    cases = [
        ("T_BEFORE(start_date, DATE('2025-01-01'))", start < d2025),
        ("T_AFTER(start_date, DATE('2025-01-01'))", start > d2025),
        ("T_DURING(start_date, INTERVAL('2024-01-01', '2026-01-01'))",
         (start > pd.Timestamp("2024-01-01")) & (start < d2026)),
        ("T_INTERSECTS(INTERVAL(start_date, end_date), INTERVAL('2025-01-01', '2025-12-31'))",
         (start <= pd.Timestamp("2025-12-31")) & (end >= d2025)),
        ("T_INTERSECTS(INTERVAL(start_date, end_date), INTERVAL('2026-01-01', '..'))",
         end >= d2026),
        ("T_INTERSECTS(start_date, TIMESTAMP('2025-01-01T00:00:00Z'))", start == d2025),
        ("start_date >= '2025-01-01'", start >= d2025),  # how GDAL writes a date filter
        ("start_date >= DATE('2025-01-01') AND end_date IS NOT NULL",
         (start >= d2025) & end.notna()),
    ]
    for cql, expected in cases:
        assert count(conn, cql, queryables=MEASURES, from_="measures_current t") \
            == int(expected.fillna(False).sum()), cql
    assert any(int(e.fillna(False).sum()) > 0 for _, e in cases)
    js = {"op": "t_intersects", "args": [
        {"interval": [{"property": "start_date"}, {"property": "end_date"}]},
        {"interval": ["2025-01-01", "2025-12-31"]}]}
    assert count(conn, js, "cql2-json", MEASURES, from_="measures_current t") == int(
        ((start <= pd.Timestamp("2025-12-31")) & (end >= d2025)).fillna(False).sum())


# -- refused filters -------------------------------------------------------------------------
@pytest.mark.parametrize(("cql", "code", "params"), [
    ("nme = 'Halle'", "unknown_property", {"name": "nme"}),
    ("Name = 'Halle'", "unknown_property_hint", {"name": "Name", "hint": "name"}),
    ("pg_sleep(5) = 1", "function", {"name": "pg_sleep"}),
    ("upper(name) = 'X'", "function", {"name": "upper"}),
    ("population + 1 > 2", "arithmetic", {}),
    ("population = 'many'", "type_mismatch", {"left_type": "number", "right_type": "string"}),
    ("name = ", "ends_early", {}),
    ("name = 'Halle' AND", "ends_early", {}),
    ("name === 'Halle'", "syntax_expected", {"where": "1:7"}),
    ("name = 'Halle'; DROP TABLE municipalities", "syntax_expected", {"where": "1:15"}),
    ("S_TOUCHES(geometry, POINT(12 51))", "spatial_op", {"op": "S_TOUCHES"}),
    ("S_INTERSECTS(name, POINT(12 51))", "spatial_property", {"name": "name"}),
    ("S_INTERSECTS(geometry, POINT(51 200))", "lonlat_range", {}),
    ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))", "geometry_literal", {}),
    ("S_DWITHIN(geometry, POINT(12 51), -1)", "distance", {}),
    ("name LIKE 'abc\\'", "like_escape", {}),
    ("T_BEFORE(name, DATE('2020-01-01'))", "temporal_operand", {}),
    ("population > DATE('2020-13-45')", "not_a_date", {"value": "2020-13-45"}),
])
def test_invalid_filters_are_400_with_what_and_where(cql, code, params):
    with pytest.raises(InvalidParameter) as info:
        compile_filter(cql, "cql2-text", QUERYABLES)
    assert info.value.code == f"cql2.{code}", info.value.detail
    assert info.value.pointer == "filter"
    assert params.items() <= info.value.params.items(), info.value.params
    for lang in ("de", "en"):  # both texts fill in every placeholder
        assert "{" not in info.value.text(lang), info.value.text(lang)


def test_invalid_json_filters_and_options():
    for bad in ["{", '{"op": "=", "args": [{"property": "nme"}, 1]}', '{"op": "foo", "args": []}',
                '{"function": {"name": "pg_sleep", "args": [5]}}', '[1, 2]', "NaN",
                '{"op": "=", "args": [{"property": 5}, 1]}']:
        with pytest.raises(InvalidParameter):
            compile_filter(bad, "cql2-json", QUERYABLES)
    with pytest.raises(InvalidParameter, match="filter-lang"):
        compile_filter("name = 'x'", "ecql", QUERYABLES)
    with pytest.raises(InvalidParameter, match="filter-crs"):
        compile_filter("name = 'x'", None, QUERYABLES, "EPSG:3857")


# -- injection -------------------------------------------------------------------------------
@pytest.fixture
def statements(engine):
    seen: list[tuple[str, object]] = []

    def log(_conn, _cursor, statement, parameters, _context, _many):  # noqa: ANN001
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", log)
    yield seen
    event.remove(engine, "before_cursor_execute", log)


def test_injection_attempts_stay_literals(conn, frame, statements):
    before = conn.execute(text("SELECT count(*) FROM municipalities")).scalar_one()
    # quotes inside a string literal are data
    assert count(conn, "name = 'x'' OR 1=1 --'") == 0
    assert count(conn, "name = '''; DROP TABLE municipalities; --'") == 0
    assert count(conn, "name LIKE '%''; DELETE FROM municipalities; --%'") == 0
    name = frame.name.iloc[0]
    assert count(conn, "name = '" + name.replace("'", "''") + "'") == int((frame.name == name).sum())
    # a property name that tries to be SQL is just an unknown name
    for cql in ['"name; DROP TABLE municipalities" = \'x\'', '"t.name) OR (1=1" = \'x\'']:
        with pytest.raises(InvalidParameter, match="Unknown property"):
            compile_filter(cql, None, QUERYABLES)
    with pytest.raises(InvalidParameter, match="Unknown property"):
        compile_filter({"op": "=", "args": [{"property": "name; DROP TABLE x"}, "a"]},
                       "cql2-json", QUERYABLES)
    started = time.monotonic()
    for cql in ["pg_sleep(5) = 1", "name = pg_sleep(5)", "S_INTERSECTS(geometry, pg_sleep(5))"]:
        with pytest.raises(InvalidParameter):
            compile_filter(cql, None, QUERYABLES)
    assert time.monotonic() - started < 1
    assert conn.execute(text("SELECT count(*) FROM municipalities")).scalar_one() == before
    filters = [s for s, _ in statements if "count(*)" in s and "WHERE" in s and "cql2_" in s]
    assert len(filters) == 4
    for statement, _params in statements:
        assert "DROP" not in statement and "DELETE" not in statement and "1=1" not in statement
    assert any("DROP TABLE" in str(v) for _, p in statements if p for v in dict(p).values())


# -- sortby and properties -------------------------------------------------------------------
def test_sortby_orders_like_pandas(conn, frame):
    order = parse_sortby("-population,name", QUERYABLES)
    assert order == ["pop.value DESC", "t.name ASC"]
    rows = conn.execute(text(f"SELECT t.name FROM {FROM} WHERE pop.value IS NOT NULL "
                             f"ORDER BY {', '.join(order)} LIMIT 5")).scalars().all()
    want = frame.dropna(subset=["population"]).sort_values(
        ["population", "name"], ascending=[False, True]).name.head(5).tolist()
    assert rows == want and rows[0] == "Berlin"
    assert parse_sortby(" name,+ags", QUERYABLES) == ["t.name ASC", "t.ags ASC"]  # '+' → ' '
    for bad in ["nme", "name,,ags", "name,name", "geometry", "-", "name;DROP"]:
        with pytest.raises(InvalidParameter):
            parse_sortby(bad, QUERYABLES)


def test_properties_are_checked_against_the_allow_list():
    assert parse_properties("name,population,name", QUERYABLES) == ["name", "population"]
    assert parse_properties("", QUERYABLES) == []
    with pytest.raises(InvalidParameter) as info:
        parse_properties("name,nme", QUERYABLES)
    assert info.value.code == "cql2.unknown_property" and info.value.params["name"] == "nme"


# -- garbage never escapes as anything but a 400 -------------------------------------------------
TOKENS = ["name", "population", "geometry", "start_date", "land", "=", "<>", "<", ">=", "AND",
          "OR", "NOT", "(", ")", ",", "'a'", "''", "'", "1", "-2.5", "1e999", "TRUE", "NULL",
          "IS", "IN", "LIKE", "BETWEEN", "S_INTERSECTS", "S_DWITHIN", "T_AFTER", "T_INTERSECTS",
          "POINT(12 51)", "POINT(1 2 3)", "POLYGON((0 0, 1 1, 0 0))", "DATE('2020-02-30')",
          "INTERVAL('..', '..')", "TIMESTAMP('x')", "CASEI", "pg_sleep", '"x"', "%", "\\", ";",
          "ENVELOPE(1 2 3 4)", "BBOX", "*", "+", "/"]


PROPS = st.sampled_from(["name", "population", "land", "project_city", "geometry",
                         "start_date", "nope", '"name"'])
LITERALS = st.sampled_from([
    "'a'", "'%\\'", "''", "'it''s'", "1", "-2.5", "1e308", "99999999999999999999999", "TRUE",
    "DATE('2020-01-01')", "TIMESTAMP('2020-01-01T00:00:00Z')", "INTERVAL('..','2020-01-01')",
    "'2020-01-01'", "CASEI('A')", "POINT(12 51)"])
GEOMS = st.sampled_from([
    "POINT(12 51)", "POINT(200 100)", "POLYGON((11 51, 12 51, 12 52, 11 52, 11 51))",
    "ENVELOPE(11 12 51 52)", "LINESTRING(11 51, 12 52)", "POINT(1e300 1e300)",
    "MULTIPOINT((1 2), (3 4))", "POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))"])
PREDICATES = st.one_of(
    st.builds("{} {} {}".format, PROPS, st.sampled_from(["=", "<>", "<", ">=", "LIKE"]), LITERALS),
    st.builds("{} IN ({}, {})".format, PROPS, LITERALS, LITERALS),
    st.builds("{} BETWEEN {} AND {}".format, PROPS, LITERALS, LITERALS),
    st.builds("{} IS NOT NULL".format, PROPS),
    st.builds("{}({}, {})".format, st.sampled_from(["S_INTERSECTS", "S_WITHIN", "S_CONTAINS",
                                                     "S_DISJOINT"]), PROPS, GEOMS),
    st.builds("S_DWITHIN({}, {}, {})".format, PROPS, GEOMS, st.sampled_from(["0", "1e3", "5e5"])),
    st.builds("{}({}, {})".format, st.sampled_from(["T_AFTER", "T_INTERSECTS", "T_DURING"]),
              PROPS, LITERALS))
STRUCTURED = st.recursive(PREDICATES, lambda c: st.one_of(
    st.builds("({}) AND ({})".format, c, c), st.builds("{} OR {}".format, c, c),
    st.builds("NOT ({})".format, c)), max_leaves=4)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=80), STRUCTURED,
                 st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12).map(" ".join)))
def test_garbage_filters_raise_only_invalid_parameter(conn, garbage):
    try:
        compiled = compile_filter(garbage, "cql2-text", {**QUERYABLES, "start_date":
                                                         Field("CAST(NULL AS date)", "date")})
    except InvalidParameter:
        return
    # whatever compiles must also run
    with conn.begin_nested():
        conn.execute(text(f"SELECT 1 FROM {FROM} WHERE {compiled.sql} LIMIT 3"), compiled.params)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["..", "2020-01-01", "name", "geometry"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["op", "args", "property", "interval", "bbox", "date", "timestamp",
                         "type", "coordinates", "casei", "function", "name"]), children,
        max_size=3),
    max_leaves=20)


json_leaves = st.sampled_from([
    {"property": "name"}, {"property": "population"}, {"property": "geometry"},
    {"property": "nope"}, "a", "%\\", 1, 2.5, True, None, {"date": "2020-01-01"},
    {"timestamp": "x"}, {"interval": ["..", "2020-01-01"]}, {"bbox": [1, 2, 3, 4]},
    {"type": "Point", "coordinates": [12, 51]}, {"type": "Point", "coordinates": [12]}, [1, 2],
    {"casei": "A"}])
json_filters = st.recursive(json_leaves, lambda children: st.builds(
    lambda op, args: {"op": op, "args": args},
    st.sampled_from(["=", "<", ">=", "<>", "and", "or", "not", "like", "in", "between", "isNull",
                     "s_intersects", "s_dwithin", "s_within", "s_contains", "t_after",
                     "t_intersects", "casei", "+", "a_contains"]),
    st.lists(children, max_size=3)), max_leaves=10)


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(json_values, json_filters))
def test_garbage_json_raises_only_invalid_parameter(conn, garbage):
    try:
        compiled = compile_filter(json.dumps(garbage), "cql2-json", QUERYABLES)
    except InvalidParameter:
        return
    with conn.begin_nested():
        conn.execute(text(f"SELECT 1 FROM {FROM} WHERE {compiled.sql} LIMIT 3"), compiled.params)


def test_date_literals_are_real_dates(conn):
    compiled = compile_filter("start_date < DATE('2020-01-31')", None, MEASURES)
    assert list(compiled.params.values()) == [date(2020, 1, 31)]


def test_bboxes_across_the_antimeridian_and_in_lat_lon_order(conn, frame):
    def bbox(coords, crs=None):
        return count(conn, json.dumps({"op": "s_intersects", "args": [
            {"property": "geometry"}, {"bbox": coords}]}), "cql2-json", crs=crs)

    assert bbox([170, -10, -170, 10]) == 0  # Pacific, across the antimeridian
    assert bbox([5, 40, -170, 60]) == len(frame)  # from 5°E eastwards round to 170°W
    assert bbox([-170, 40, 5, 60]) == 0  # from 170°W eastwards to 5°E: west of Germany
    lat_first = "http://www.opengis.net/def/crs/EPSG/0/4326"
    assert bbox([51.2, 11.5, 51.8, 12.5], lat_first) == bbox([11.5, 51.2, 12.5, 51.8]) > 10
    assert bbox([40, 5, 60, -170], lat_first) == len(frame)
    assert count(conn, "BBOX(geometry, 11.5, 51.2, 12.5, 51.8)") == bbox([11.5, 51.2, 12.5, 51.8])
    with pytest.raises(InvalidParameter, match="south above north"):
        compile_filter("BBOX(geometry, 11, 52, 12, 51)", None, QUERYABLES)


def test_like_with_casei_and_an_escape(conn, frame):
    assert count(conn, "CASEI(name) LIKE CASEI('%HALLE%')") \
        == int(frame.name.str.lower().str.contains("halle").sum()) > 1
    assert count(conn, "name LIKE '%\\%%'") == int(frame.name.str.contains("%").sum())
    with pytest.raises(InvalidParameter, match="lone escape"):
        compile_filter("CASEI(name) LIKE CASEI('abc\\')", None, QUERYABLES)
    with pytest.raises(InvalidParameter, match="string literal"):
        compile_filter("name LIKE bez", None, QUERYABLES)


def test_spatial_filter_uses_the_index(conn):
    compiled = compile_filter(f"S_INTERSECTS(geometry, POINT({HALLE[0]} {HALLE[1]}))", None,
                              QUERYABLES)
    plan = "\n".join(conn.execute(text(
        f"EXPLAIN SELECT t.ags FROM municipalities t WHERE {compiled.sql}"),
        compiled.params).scalars())
    assert "Index" in plan, plan


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland", "America/Los_Angeles"])
def test_dates_meet_timestamps_in_utc_whatever_the_session_zone(conn, measures, zone):
    conn.execute(text(f"SET LOCAL TimeZone = '{zone}'"))
    start = pd.to_datetime(measures.start_date)
    assert count(conn, "start_date >= TIMESTAMP('2025-01-01T00:00:00Z')", queryables=MEASURES,
                 from_="measures_current t") == int((start >= pd.Timestamp("2025-01-01")).sum())
    assert count(conn, "T_INTERSECTS(start_date, TIMESTAMP('2025-01-01T00:00:00Z'))",
                 queryables=MEASURES, from_="measures_current t") \
        == int((start == pd.Timestamp("2025-01-01")).sum())
    updated = pd.to_datetime(pd.Series(conn.execute(text(
        "SELECT updated_at FROM measures_current")).scalars().all()), utc=True)
    day = updated.min().normalize()
    assert count(conn, f"updated_at >= DATE('{day.date()}')", queryables=MEASURES,
                 from_="measures_current t") == int((updated >= day).sum()) > 0
    assert count(conn, f"T_AFTER(updated_at, DATE('{day.date()}'))", queryables=MEASURES,
                 from_="measures_current t") == int((updated > day).sum())


def test_messages_name_readable_tokens_and_srid_prefixes_are_refused():
    with pytest.raises(InvalidParameter) as info:
        compile_filter("name = = 'x'", None, QUERYABLES)
    assert "__ANON" not in info.value.detail and info.value.params["where"] == "1:8"
    assert info.value.extra["position"] == 8
    with pytest.raises(InvalidParameter, match="filter-crs"):
        compile_filter("S_INTERSECTS(geometry, SRID=4326;POINT(12 51))", None, QUERYABLES)


def test_a_geojson_bbox_member_does_not_replace_the_geometry(conn):
    point = {"type": "Point", "coordinates": list(HALLE), "bbox": [-180, -90, 180, 90]}
    assert count(conn, {"op": "s_intersects", "args": [{"property": "geometry"}, point]},
                 "cql2-json") == 1
