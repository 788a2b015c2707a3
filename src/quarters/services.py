"""Read use-cases. All SQL of the read path lives here; GeoJSON is built in the database."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pyproj import CRS
from sqlalchemy import Connection, text

from quarters.collections import Collection
from quarters.errors import InvalidParameter, NotFound
from quarters.settings import STORAGE_SRID

GEOJSON_DIGITS = 6  # ~0.1 m; RFC 7946 recommends no more than needed


# Where data in the storage CRS can lie: the area of use of its datum (ETRS89, Europe).
# A CRS84 box is clipped to it and densified before it is reprojected, so a world box or one
# far from the UTM zone still selects the right features (four reprojected corners do not).
STORAGE_AREA = CRS.from_epsg(STORAGE_SRID).geodetic_crs.area_of_use.bounds
DENSIFY_DEGREES = 0.25


@dataclass(frozen=True)
class ItemQuery:
    """Validated item-list parameters.

    ``where``/``where_params``, ``order_by`` and ``properties`` are the hook for OGC API
    Features Part 3 (CQL2 ``filter``, ``sortby``, ``properties``): a compiled filter is an SQL
    condition over the collection (table aliased ``t``, values only as bound parameters whose
    names start with ``f_``), ``order_by`` SQL sort keys such as ``("t.name DESC",)`` (the id
    is always appended as the tie-breaker) and ``properties`` the names of the properties to
    return (None: all).
    """

    limit: int
    offset: int = 0
    bbox: tuple[float, ...] | None = None  # minx, miny, maxx, maxy (minx > maxx: antimeridian)
    filters: tuple[tuple[str, Any], ...] = ()
    srid: int = 4326  # output CRS: 4326 (CRS84 axis order) or the storage CRS
    bbox_srid: int = 4326
    datetime: tuple[date | None, date | None] | None = None  # inclusive, None = open end
    after: Any = None  # keyset: only features whose id is greater (default order only)
    where: str | None = None
    where_params: dict[str, Any] = field(default_factory=dict)
    order_by: tuple[str, ...] = ()
    properties: tuple[str, ...] | None = None


def _feature_sql(col: Collection, srid: int = 4326, names: tuple[str, ...] | None = None) -> str:
    """SQL of one feature as GeoJSON text. Built by concatenation: the geometry's GeoJSON is
    not parsed again as json (json_build_object would), which is most of the cost of a page."""
    chosen = col.properties if names is None else {n: col.properties[n] for n in names}
    props = ", ".join(f"'{name}', {expr}" for name, expr in chosen.items())
    g = col.geometry
    if srid == STORAGE_SRID:
        geom = f"ST_AsGeoJSON(ST_ForcePolygonCCW({g}), 2)"
    elif col.geometry_wgs84:
        geom = f"ST_AsGeoJSON({col.geometry_wgs84}, {GEOJSON_DIGITS})"
    else:
        geom = f"ST_AsGeoJSON(ST_ForcePolygonCCW(ST_Transform({g}, 4326)), {GEOJSON_DIGITS})"
    return (
        f"('{{\"type\":\"Feature\",\"id\":' || to_json(t.{col.id_column})::text || "
        f"',\"geometry\":' || coalesce({geom}, 'null') || "
        f"',\"properties\":' || json_build_object({props})::text || '}}')"
    )


def _boxes(query: ItemQuery) -> list[tuple[float, float, float, float]]:
    """The bbox as one or two boxes (split at the antimeridian), CRS84 ones clipped."""
    minx, miny, maxx, maxy = query.bbox
    if query.bbox_srid != 4326:
        return [(minx, miny, maxx, maxy)]
    parts = [(minx, miny, maxx, maxy)] if minx <= maxx else [(minx, miny, 180.0, maxy),
                                                             (-180.0, miny, maxx, maxy)]
    a0, b0, a1, b1 = STORAGE_AREA
    clipped = [(max(x0, a0), max(y0, b0), min(x1, a1), min(y1, b1)) for x0, y0, x1, y1 in parts]
    return [b for b in clipped if b[0] <= b[2] and b[1] <= b[3]]


def _box_sql(n: int, box: tuple[float, float, float, float], srid: int,
             native: bool = False) -> str:
    """The box as SQL in the storage CRS, or in its own CRS when ``native`` (a CRS84 box
    tested on a stored EPSG:4326 column)."""
    x0, y0, x1, y1 = (f":b{n}_{k}" for k in ("minx", "miny", "maxx", "maxy"))
    if box[0] == box[2] or box[1] == box[3]:
        # ST_Envelope of the diagonal degrades to a line or point for zero-area boxes
        sql = f"ST_Envelope(ST_MakeLine(ST_Point({x0}, {y0}, {srid}), ST_Point({x1}, {y1}, {srid})))"
    else:
        sql = f"ST_MakeEnvelope({x0}, {y0}, {x1}, {y1}, {srid})"
        if srid == 4326 and not native:
            sql = f"ST_Segmentize({sql}, {DENSIFY_DEGREES})"
    return sql if srid == STORAGE_SRID or native else f"ST_Transform({sql}, {STORAGE_SRID})"


def _where(col: Collection, query: ItemQuery, keyset: bool = True) -> tuple[str, dict[str, Any]]:
    clauses, params = [col.base_where()], {}
    if query.bbox:
        tests = []
        # a CRS84 box is tested where it is defined, on the stored EPSG:4326 column (GiST)
        native = query.bbox_srid == 4326 and col.bbox_wgs84 is not None
        g = col.bbox_wgs84 if native else "t.geom"
        for n, box in enumerate(_boxes(query)):
            sql = _box_sql(n, box, query.bbox_srid, native)
            # ST_Intersects brings its own index condition (PostGIS 3); a second ``&&``
            # would square the planner's selectivity estimate (43 rows expected instead of
            # 2,171 in the benchmark's box: an index scan in random heap order, not a bitmap)
            tests.append(f"ST_Intersects({g}, {sql})")
            params.update(zip((f"b{n}_minx", f"b{n}_miny", f"b{n}_maxx", f"b{n}_maxy"), box,
                              strict=True))
        clauses.append("(" + (" OR ".join(tests) or "FALSE") + ")")
    if query.datetime:
        clauses.append(_temporal(col, query.datetime, params))
    for n, (name, value) in enumerate(query.filters):
        clauses.append(col.queryables[name].condition(f"q{n}"))
        params[f"q{n}"] = value
    if keyset and query.after is not None:
        clauses.append(f"t.{col.id_column} > :after")
        params["after"] = query.after
    if query.where:
        clauses.append(f"({query.where})")
        params.update(query.where_params)
    return " AND ".join(clauses), params


def _temporal(col: Collection, span: tuple[date | None, date | None], params: dict) -> str:
    """Features whose [start, end] (a missing end is open) intersects the asked span."""
    if col.temporal is None:
        return "FALSE"  # features without a time do not intersect any time
    start, end = col.temporal
    parts = [f"({start} IS NOT NULL OR {end} IS NOT NULL)"]
    if span[0] is not None:
        parts.append(f"({end} IS NULL OR {end} >= :dt_start)")
        params["dt_start"] = span[0]
    if span[1] is not None:
        parts.append(f"({start} IS NULL OR {start} <= :dt_end)")
        params["dt_end"] = span[1]
    return "(" + " AND ".join(parts) + ")"


Statement = tuple[str, dict[str, Any]]  # SQL with :name parameters, and their values
DATA_VERSION_SQL = "SELECT version, changed_at FROM data_version"


def selective(query: ItemQuery) -> bool:
    """Whether the rows a page reads depend on its values (a bbox, filters, CQL2, a time
    interval): such a page is planned with its values each time (``quarters.runner``)."""
    return bool(query.bbox or query.filters or query.where or query.datetime)


def items_page_sql(col: Collection, query: ItemQuery, matched: int | None = None) -> Statement:
    """The one statement of an items page; it returns one row (features JSON array text,
    numberReturned, numberMatched, id of the last one, and the data version and its time
    the count was taken at). Both execution paths run it.

    A page with an offset chooses its ids first (order, limit, offset over the bare rows, so
    an index in the sort order stops after the page); only those rows are then serialised,
    so a deep page costs about what the first does. A first or keyset page (offset 0) builds
    its features in the same scan. numberMatched:

    - ``matched`` given (the caller's count of this filter at this data version): used as is;
    - a page that is not full and not a keyset page: offset + numberReturned, no count;
    - otherwise a separate ``count(*)`` over the filter (an InitPlan, run only then), which
      the planner answers from the filter's own indexes (migration 0012: an index-only scan)
      rather than by walking every match in the page's sort order.
    """
    where, params = _where(col, query)
    where_all, _ = _where(col, query, keyset=False)
    params.update(limit=query.limit, offset=0 if query.after is not None else query.offset)
    order = ", ".join([*query.order_by, f"t.{col.id_column}"])
    if matched is not None:
        params["matched"] = matched
        count = "CAST(:matched AS bigint)"
    else:
        count_all = f"(SELECT count(*) FROM {col.from_clause()} WHERE {where_all})"
        count = count_all if query.after is not None else (
            f"CASE WHEN count(p.k) < :limit AND (count(p.k) > 0 OR :offset = 0) "
            f"THEN :offset + count(p.k) ELSE {count_all} END")
    feature = _feature_sql(col, query.srid, query.properties)
    if params["offset"] == 0:
        # a first or keyset page: no skipped rows, so the features are built in the scan
        # (above a sort, as PostgreSQL postpones costly output past Sort + Limit) without
        # fetching the page's rows a second time by id
        page = f"""
            SELECT s.k, s.f, row_number() OVER () AS n FROM (
                SELECT t.{col.id_column} AS k, {feature} AS f
                FROM {col.from_clause()} WHERE {where}
                ORDER BY {order} LIMIT :limit OFFSET :offset) s"""
    else:
        page = f"""
            SELECT ids.n, ids.k, {feature} AS f
            FROM (SELECT s.k, row_number() OVER () AS n FROM (
                    SELECT t.{col.id_column} AS k
                    FROM {col.from_clause()} WHERE {where}
                    ORDER BY {order} LIMIT :limit OFFSET :offset) s) ids
            JOIN {col.table} t ON t.{col.id_column} = ids.k {col.joins}"""
    sql = f"""
        SELECT '[' || COALESCE(string_agg(p.f, ',' ORDER BY p.n), '') || ']', count(p.k),
               {count}, (array_agg(p.k ORDER BY p.n DESC))[1],
               (SELECT version FROM data_version), (SELECT changed_at FROM data_version)
        FROM ({page}) p"""
    return sql, params


def count_key(col: Collection, query: ItemQuery) -> tuple:
    """What numberMatched of a page depends on besides the data: collection and filter
    (bbox, datetime, queryables, CQL2), not paging, order or the properties returned."""
    where_all, params = _where(col, query, keyset=False)
    return col.id, where_all, tuple(sorted((k, repr(v)) for k, v in params.items()))


def items_page(conn: Connection, col: Collection, query: ItemQuery) -> tuple[str, int, int, Any]:
    """Return (features JSON array text, numberReturned, numberMatched, id of the last one)."""
    sql, params = items_page_sql(col, query)
    features, returned, matched, last, *_ = conn.execute(text(sql), params).one()
    return features, returned, matched, last


def item_sql(col: Collection, item_id: str, srid: int = 4326) -> Statement:
    """The statement of one feature (GeoJSON text and the data version and its time, read in
    the same snapshot; no row: none); NotFound for an id that cannot be one of the
    collection's."""
    value: Any = item_id
    if col.id_kind == "integer":
        if not ascii_digits(item_id) or len(item_id) > 18:
            raise NotFound(code="ogc.no_feature",
                           params={"collection": col.id, "id": str(item_id)[:80]})
        value = int(item_id)
    sql = (f"SELECT {_feature_sql(col, srid)}, d.version, d.changed_at "
           f"FROM {col.from_clause()} CROSS JOIN data_version d "
           f"WHERE t.{col.id_column} = :id AND {col.base_where()}")
    return sql, {"id": value}


def item(conn: Connection, col: Collection, item_id: str, srid: int = 4326) -> str:
    """Return one feature as GeoJSON text or raise NotFound."""
    sql, params = item_sql(col, item_id, srid)
    row = conn.execute(text(sql), params).first()
    if row is None:
        raise NotFound(code="ogc.no_feature",
                           params={"collection": col.id, "id": str(item_id)[:80]})
    return row[0]


def ascii_digits(raw: str) -> bool:
    """True for a non-empty string of the ASCII digits 0-9 only (str.isdigit takes '²')."""
    return bool(raw) and raw.isascii() and raw.isdigit()


# PostgreSQL type OIDs -> JSON Schema of a property
_PG_TYPES: dict[int, dict[str, Any]] = {
    16: {"type": "boolean"}, 20: {"type": "integer"}, 21: {"type": "integer"},
    23: {"type": "integer"}, 700: {"type": "number"}, 701: {"type": "number"},
    1700: {"type": "number"}, 1082: {"type": "string", "format": "date"},
    1114: {"type": "string", "format": "date-time"}, 1184: {"type": "string", "format": "date-time"},
    1007: {"type": "array", "items": {"type": "integer"}},
    1016: {"type": "array", "items": {"type": "integer"}},
    1009: {"type": "array", "items": {"type": "string"}},
    1015: {"type": "array", "items": {"type": "string"}},
    114: {"type": "array", "items": {"type": "object"}}, 3802: {"type": "array", "items": {"type": "object"}},
}


def property_schemas(conn: Connection, col: Collection) -> dict[str, dict[str, Any]]:
    """JSON Schema of each property of a collection, from the types of its SQL expressions
    (asked of the database without reading a row, so empty collections have a schema too)."""
    columns = ", ".join(f"{expr} AS \"{name}\"" for name, expr in col.properties.items())
    result = conn.execute(text(f"SELECT {columns} FROM {col.from_clause()} LIMIT 0"))
    codes = [d[1] for d in result.cursor.description]
    result.close()
    return {name: dict(_PG_TYPES.get(code, {"type": "string"}))
            for name, code in zip(col.properties, codes, strict=True)}


def data_version(conn: Connection) -> tuple[int, datetime]:
    """The version every write bumps (migration 0007) and when it last changed."""
    row = conn.execute(text(DATA_VERSION_SQL)).one()
    return row[0], row[1]


def extent(conn: Connection, col: Collection) -> dict[str, Any]:
    """Spatial extent (CRS84 bbox, None when empty) and temporal extent (ISO dates or None)."""
    start, end = col.temporal or ("NULL::date", "NULL::date")
    row = conn.execute(text(
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), t0, t1 FROM "
        f"(SELECT ST_Transform(ST_SetSRID(ST_Extent(t.geom)::geometry, {STORAGE_SRID}), 4326) e, "
        f"min({start}) t0, max(coalesce({end}, {start})) t1 "
        f"FROM {col.from_clause()} WHERE {col.base_where()}) x"
    )).one()
    bbox = None if row[0] is None else [round(v, 6) for v in row[:4]]
    interval = None
    if col.temporal and (row[4] or row[5]):
        interval = [row[4].isoformat() if row[4] else None, row[5].isoformat() if row[5] else None]
    return {"bbox": bbox, "interval": interval}


def health(conn: Connection) -> dict[str, Any]:
    """Database facts for /api/health."""
    postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    server = conn.execute(text("SHOW server_version")).scalar_one()
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return {"postgres": server, "postgis": postgis, "schema_revision": revision}


def sources(conn: Connection, lang: str = "de") -> list[dict[str, Any]]:
    """The data sources loaded into this database with their licences and attributions; a
    note stored as a catalogue note (e.g. of an indicator import) written out in ``lang``."""
    from quarters.indicators.provenance import decode_text
    from quarters.messages import note_text

    rows = conn.execute(text(
        "SELECT key, name, publisher, licence, licence_url, attribution, url, retrieved, note "
        "FROM sources ORDER BY id"
    )).mappings()
    return [{**r, "retrieved": r["retrieved"].isoformat() if r["retrieved"] else None,
             "note": note_text(decode_text(r["note"]), lang) if r["note"] else None}
            for r in rows]


def project_cities(conn: Connection) -> list[dict[str, Any]]:
    """The project's cities with their CRS84 bounding boxes."""
    rows = conn.execute(text(
        "SELECT ags, name, ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1 FROM "
        "(SELECT ags, name, ST_Transform(ST_Envelope(geom), 4326) e FROM municipalities "
        " WHERE project_city ORDER BY ags) c"
    )).mappings()
    return [{"ags": r["ags"], "name": r["name"],
             "bbox": [round(r[k], 6) for k in ("x0", "y0", "x1", "y1")]} for r in rows]


def parse_bbox(raw: str, srid: int = 4326) -> tuple[float, float, float, float]:
    """Parse and check ``minx,miny,maxx,maxy`` or ``minx,miny,minz,maxx,maxy,maxz``
    (CRS84 unless the storage CRS is named; heights are dropped, data is 2D).

    In CRS84 ``minx > maxx`` is a box across the antimeridian.
    """
    parts = raw.split(",")
    if len(parts) not in (4, 6):
        raise InvalidParameter(code="bbox.count", pointer="bbox", params={"count": len(parts)})
    try:
        numbers = [float(p) for p in parts]
    except ValueError as exc:
        raise InvalidParameter(code="bbox.not_numbers", pointer="bbox",
                               params={"value": raw[:80]}) from exc
    if not all(p.strip().isascii() for p in parts):
        raise InvalidParameter(code="bbox.not_numbers", pointer="bbox", params={"value": raw[:80]})
    if any(v != v or v in (float("inf"), float("-inf")) for v in numbers):
        raise InvalidParameter(code="bbox.not_finite", pointer="bbox")
    if len(numbers) == 6:
        minx, miny, minz, maxx, maxy, maxz = numbers
        if minz > maxz:
            raise InvalidParameter(code="bbox.z_order", pointer="bbox")
    else:
        minx, miny, maxx, maxy = numbers
    values = (minx, miny, maxx, maxy)
    in_range = -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    if srid == 4326 and not in_range:
        raise InvalidParameter(code="bbox.lonlat_range", pointer="bbox")
    if miny > maxy:
        raise InvalidParameter(code="bbox.y_order", pointer="bbox")
    if minx > maxx and srid != 4326:
        raise InvalidParameter(code="bbox.x_order", pointer="bbox")
    return values


_INSTANT = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt](?:([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:\.[0-9]+)?)?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?)?$")


def _instant(raw: str) -> date:
    """An RFC 3339 date or date-time as the UTC date ('2020-01-01T' as GDAL 3.6 sends it too)."""
    m = _INSTANT.match(raw)
    if not m:
        raise InvalidParameter(code="datetime.form", pointer="datetime",
                               params={"value": raw[:80]})
    try:
        day = date(int(m[1]), int(m[2]), int(m[3]))
        if m[4] is None:
            return day
        moment = datetime(day.year, day.month, day.day, int(m[4]), int(m[5] or 0),
                          min(int(m[6] or 0), 59))
    except ValueError:
        raise InvalidParameter(code="datetime.invalid", pointer="datetime",
                               params={"value": raw[:80]}) from None
    zone = m[7]
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment.date()


def parse_datetime(raw: str) -> tuple[date | None, date | None]:
    """``datetime``: an instant, or an interval ``start/end`` whose ends may be open (``..``
    or empty). Returns inclusive (start, end) dates, None for an open end."""
    if "/" not in raw:
        day = _instant(raw.strip())
        return day, day
    if raw.count("/") != 1:
        raise InvalidParameter(code="datetime.slashes", pointer="datetime",
                               params={"value": raw[:80]})
    left, right = (p.strip() for p in raw.split("/"))
    start = None if left in ("", "..") else _instant(left)
    end = None if right in ("", "..") else _instant(right)
    if start is None and end is None:
        raise InvalidParameter(code="datetime.open", pointer="datetime")
    if start and end and start > end:
        raise InvalidParameter(code="datetime.order", pointer="datetime",
                               params={"start": str(start), "end": str(end)})
    return start, end
