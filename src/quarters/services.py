"""Read use-cases. All SQL of the read path lives here; GeoJSON is built in the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from quarters.collections import Collection
from quarters.errors import InvalidParameter, NotFound
from quarters.settings import STORAGE_SRID

GEOJSON_DIGITS = 6  # ~0.1 m; RFC 7946 recommends no more than needed


@dataclass(frozen=True)
class ItemQuery:
    """Validated item-list parameters."""

    limit: int
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    filters: tuple[tuple[str, Any], ...] = ()
    srid: int = 4326  # output CRS: 4326 (CRS84 axis order) or the storage CRS
    bbox_srid: int = 4326


def _feature_sql(col: Collection, srid: int = 4326) -> str:
    props = ", ".join(f"'{name}', {expr}" for name, expr in col.properties.items())
    g = col.geometry
    if srid == STORAGE_SRID:
        geom = f"ST_AsGeoJSON(ST_ForcePolygonCCW({g}), 2)"
    elif col.geometry_wgs84:
        geom = f"ST_AsGeoJSON({col.geometry_wgs84}, {GEOJSON_DIGITS})"
    else:
        geom = f"ST_AsGeoJSON(ST_ForcePolygonCCW(ST_Transform({g}, 4326)), {GEOJSON_DIGITS})"
    return (
        f"json_build_object('type', 'Feature', 'id', t.{col.id_column}, "
        f"'geometry', {geom}::json, 'properties', json_build_object({props}))"
    )


def _where(col: Collection, query: ItemQuery) -> tuple[str, dict[str, Any]]:
    clauses, params = ["TRUE"], {}
    if query.bbox:
        # ST_Envelope of the diagonal degrades to a line or point for zero-area boxes
        srid = query.bbox_srid
        box = (f"ST_Envelope(ST_MakeLine(ST_Point(:minx, :miny, {srid}), "
               f"ST_Point(:maxx, :maxy, {srid})))")
        if srid != STORAGE_SRID:
            box = f"ST_Transform({box}, {STORAGE_SRID})"
        clauses.append(f"t.geom && {box} AND ST_Intersects(t.geom, {box})")
        params.update(zip(("minx", "miny", "maxx", "maxy"), query.bbox, strict=True))
    for n, (name, value) in enumerate(query.filters):
        clauses.append(col.queryables[name].condition(f"q{n}"))
        params[f"q{n}"] = value
    return " AND ".join(clauses), params


def items_page(conn: Connection, col: Collection, query: ItemQuery) -> tuple[str, int, int]:
    """Return (features JSON array text, numberReturned, numberMatched)."""
    where, params = _where(col, query)
    params.update(limit=query.limit, offset=query.offset)
    sql = f"""
        SELECT COALESCE(json_agg(p.f ORDER BY p.k), '[]')::text, count(*),
               (SELECT count(*) FROM {col.from_clause()} WHERE {where}) FROM (
            SELECT t.{col.id_column} AS k, {_feature_sql(col, query.srid)} AS f
            FROM {col.from_clause()} WHERE {where}
            ORDER BY t.{col.id_column} LIMIT :limit OFFSET :offset) p"""
    features, returned, matched = conn.execute(text(sql), params).one()
    return features, returned, matched


def item(conn: Connection, col: Collection, item_id: str, srid: int = 4326) -> str:
    """Return one feature as GeoJSON text or raise NotFound."""
    value: Any = item_id
    if col.id_kind == "integer":
        if not item_id.isdigit() or len(item_id) > 18:
            raise NotFound(f"{col.id}: no feature with id '{item_id}'")
        value = int(item_id)
    sql = f"SELECT {_feature_sql(col, srid)}::text FROM {col.from_clause()} WHERE t.{col.id_column} = :id"
    row = conn.execute(text(sql), {"id": value}).first()
    if row is None:
        raise NotFound(f"{col.id}: no feature with id '{item_id}'")
    return row[0]


def extent(conn: Connection, col: Collection) -> list[float] | None:
    """Bounding box of a collection in CRS84, or None when it is empty."""
    row = conn.execute(text(
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        f"(SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, {STORAGE_SRID}), 4326) e "
        f"FROM {col.table}) x"
    )).one()
    return None if row[0] is None else [round(v, 6) for v in row]


def health(conn: Connection) -> dict[str, Any]:
    """Database facts for /api/health."""
    postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    server = conn.execute(text("SHOW server_version")).scalar_one()
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return {"postgres": server, "postgis": postgis, "schema_revision": revision}


def sources(conn: Connection) -> list[dict[str, Any]]:
    """The data sources loaded into this database with their licences and attributions."""
    rows = conn.execute(text(
        "SELECT key, name, publisher, licence, licence_url, attribution, url, retrieved, note "
        "FROM sources ORDER BY id"
    )).mappings()
    return [{**r, "retrieved": r["retrieved"].isoformat() if r["retrieved"] else None}
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
    """Parse and check ``minx,miny,maxx,maxy`` (CRS84 unless the storage CRS is named)."""
    parts = raw.split(",")
    if len(parts) == 6:
        raise InvalidParameter("bbox: 3D boxes (6 numbers) are not supported; give 4 numbers")
    if len(parts) != 4:
        raise InvalidParameter(f"bbox: expected 4 numbers minx,miny,maxx,maxy, got {len(parts)}")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError as exc:
        raise InvalidParameter(f"bbox: '{raw}' contains something that is not a number") from exc
    values = (minx, miny, maxx, maxy)
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise InvalidParameter("bbox: numbers must be finite")
    in_range = -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    if srid == 4326 and not in_range:
        raise InvalidParameter("bbox: longitude must be within -180..180 and latitude -90..90")
    if miny > maxy:
        raise InvalidParameter("bbox: miny is greater than maxy")
    if minx > maxx:
        raise InvalidParameter("bbox: boxes crossing the antimeridian are not supported")
    return values
