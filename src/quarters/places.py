"""Near me: published measures around a point or a district, in metres, sorted by distance."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from quarters.errors import InvalidParameter, NotFound
from quarters.settings import STORAGE_SRID

_POINT = f"ST_Transform(ST_Point(:lon, :lat, 4326), {STORAGE_SRID})"


def centre_of_district(conn: Connection, district_id: int) -> tuple[float, float, str]:
    """A point inside a district (lon, lat) and its name."""
    row = conn.execute(text("""
        SELECT ST_X(p), ST_Y(p), name FROM (
            SELECT ST_Transform(ST_PointOnSurface(geom), 4326) p, name FROM districts
            WHERE id = :id) x"""), {"id": district_id}).first()
    if row is None:
        raise NotFound(code="places.unknown_district", params={"id": district_id})
    return row[0], row[1], row[2]


def near(conn: Connection, lon: float, lat: float, radius_m: float,
         limit: int = 500) -> dict[str, Any]:
    """Measures within ``radius_m`` metres (geodesic) of a point; the district and its quarters."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidParameter(code="places.lon_lat", pointer="lon" if not -180 <= lon <= 180
                               else "lat", params={"lon": lon, "lat": lat})
    params = {"lon": lon, "lat": lat, "r": radius_m, "limit": limit}
    rows = conn.execute(text(f"""
        SELECT id, title, status, action_field, location_precision, city_ags, dist FROM (
            SELECT m.id, m.title, m.status, m.action_field, m.location_precision, m.city_ags,
                   ST_Distance(ST_Transform(m.geom, 4326)::geography,
                               ST_Point(:lon, :lat, 4326)::geography) AS dist
            FROM measures_public m
            WHERE m.location_precision IN ('exact', 'approximate')
              AND ST_DWithin(m.geom, {_POINT}, :r * 1.01 + 5)) x
        WHERE dist <= :r ORDER BY dist, id LIMIT :limit"""), params).mappings()
    measures = [{**r, "distance_m": round(r["dist"], 1)} for r in rows]
    for m in measures:
        del m["dist"]
    district = conn.execute(text(f"""
        SELECT d.id, d.code, d.name, d.city_ags, d.approximate,
               ARRAY(SELECT json_build_object('slug', q.slug, 'name', q.name,
                        'share', round((ST_Area(ST_Intersection(q.geom, d.geom))
                                        / ST_Area(d.geom))::numeric, 3))
                     FROM quarters q WHERE ST_Intersects(q.geom, d.geom)
                       AND ST_Area(ST_Intersection(q.geom, d.geom)) > 0 ORDER BY q.slug)
                   AS quarters
        FROM districts d WHERE ST_Contains(d.geom, {_POINT}) ORDER BY d.level LIMIT 1"""),
        params).mappings().first()
    city = conn.execute(text(
        f"SELECT ags, name FROM municipalities WHERE project_city AND ST_Contains(geom, {_POINT})"),
        params).mappings().first()
    city_wide = []
    if city:
        city_wide = [dict(r) for r in conn.execute(text(
            "SELECT id, title, status, action_field, location_precision FROM measures_public "
            "WHERE city_ags = :c AND location_precision IN ('city', 'unknown') ORDER BY title"),
            {"c": city["ags"]}).mappings()]
    return {
        "point": {"lon": lon, "lat": lat}, "radius_m": radius_m,
        "city": dict(city) if city else None,
        "district": dict(district) if district else None,
        "measures": measures,
        "city_wide": city_wide,
    }
