"""Place search of the public map: districts, quarters, sites, published measures and the
places named in the data (the municipalities, the place notes of measures), from the database
alone; optionally followed by an external geocoder (``geocoder_url``, off by default).

Every answer is bounded (``MAX_LIMIT`` places, a query of at most ``MAX_QUERY`` characters)
and carries for each place what a map needs to move to it: a CRS84 bbox and a point inside.
Measures come from ``measures_public`` only, as everywhere else.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request
from typing import Any

from sqlalchemy import Connection, text

from quarters.errors import InvalidParameter
from quarters.errors import item as error_item

log = logging.getLogger(__name__)

MIN_QUERY = 2
MAX_QUERY = 100
MAX_LIMIT = 20
LIST_LIMIT = 1000  # listing one kind without a query (the map's legend of quarters)
KINDS = ("city", "district", "quarter", "site", "measure", "place")
LISTABLE = ("district", "quarter", "site")
GEOCODER_TIMEOUT_S = 3.0
GEOCODER_MAX_BYTES = 256 * 1024

# One SELECT per kind: kind, id, name, detail, city_ags, the geometry in storage CRS (g) and
# the text the query is matched against (m).
_SOURCES = {
    "city": """SELECT 'city' AS kind, t.ags AS id, t.name, t.bez AS detail, t.ags AS city_ags,
                      t.geom AS g, t.name AS m, NOT t.project_city AS far,
                      NULL::text AS slug, NULL::boolean AS approximate
               FROM municipalities t""",
    "district": """SELECT 'district', t.id::text, t.name, t.parent_name, t.city_ags, t.geom,
                          t.name, false, t.code::text, t.approximate FROM districts t""",
    "quarter": """SELECT 'quarter', t.id::text, t.name, t.name_en, t.city_ags, t.geom,
                         t.name || ' ' || coalesce(t.name_en, ''), false, t.slug, t.approximate
                  FROM quarters t""",
    "site": """SELECT 'site', t.id::text, t.name, q.name, q.city_ags, t.geom,
                      t.name || ' ' || coalesce(t.name_en, ''), false, t.slug, t.approximate
               FROM sites t JOIN quarters q ON q.id = t.quarter_id""",
    "measure": """SELECT 'measure', t.id::text, t.title, t.status, t.city_ags, t.geom, t.title,
                         false, NULL::text, NULL::boolean FROM measures_public t""",
    # The places named in a measure's note ("Friedemann-Bach-Platz"): the measure's place.
    "place": """SELECT 'place', t.id::text, t.title, t.location_note, t.city_ags, t.geom,
                       t.location_note, false, NULL::text, NULL::boolean FROM measures_public t
                WHERE t.location_precision IN ('exact', 'approximate')""",
}
_ORDER = {kind: i for i, kind in enumerate(KINDS)}


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sql(kinds: tuple[str, ...], matched: bool, in_city: bool) -> str:
    union = " UNION ALL ".join(f"SELECT * FROM ({_SOURCES[k]}) s{i}" for i, k in enumerate(kinds))
    conditions = (["p.m ILIKE :contains"] if matched else []) + \
        (["p.city_ags = :city"] if in_city else [])
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rank = ("CASE WHEN p.name ILIKE :prefix THEN 0 WHEN p.m ILIKE :word THEN 1 ELSE 2 END"
            if matched else "0")
    order_kind = "CASE p.kind " + " ".join(f"WHEN '{k}' THEN {_ORDER[k]}" for k in kinds) + " END"
    return f"""
        WITH p(kind, id, name, detail, city_ags, g, m, far, slug, approximate) AS ({union})
        SELECT kind, id, name, detail, city_ags, slug, approximate,
               ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b), ST_X(c), ST_Y(c)
        FROM (SELECT kind, id, name, detail, city_ags, slug, approximate, kind_order, rank, far,
                     ST_Transform(ST_Envelope(g), 4326) AS b,
                     ST_Transform(ST_PointOnSurface(g), 4326) AS c
              FROM (SELECT p.*, {rank} AS rank, {order_kind} AS kind_order FROM p {where}
                    ORDER BY p.far, rank, kind_order, length(p.name), p.name, p.id
                    LIMIT :limit) best) found
        ORDER BY far, rank, kind_order, length(name), name, id"""


def search(conn: Connection, q: str | None, *, kinds: list[str] | None = None,
           city_ags: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
    """Places whose name (or note) contains ``q``, best first: names starting with ``q``,
    then a word starting with it, then the rest; the project cities before other
    municipalities. Without ``q`` every place of the listable ``kinds`` (bounded)."""
    wanted = tuple(dict.fromkeys(kinds or KINDS))
    unknown = [k for k in wanted if k not in KINDS]
    if unknown:
        params = {"kinds": ", ".join(k[:40] for k in unknown[:10]), "offered": ", ".join(KINDS)}
        raise InvalidParameter(code="places.unknown_kind", pointer="kind", params=params,
                               errors=[error_item("kind", "places.unknown_kind", **params)])
    query = (q or "").strip()
    if not query:
        if not kinds or any(k not in LISTABLE for k in wanted):
            raise InvalidParameter(code="places.query_needed", pointer="q", params={
                "min": MIN_QUERY, "listable": ", ".join(LISTABLE)})
        limit = min(max(limit, 1), LIST_LIMIT)
    else:
        if len(query) < MIN_QUERY or len(query) > MAX_QUERY:
            raise InvalidParameter(code="places.query_length", pointer="q",
                                   params={"min": MIN_QUERY, "max": MAX_QUERY})
        limit = min(max(limit, 1), MAX_LIMIT)
    sql = _sql(wanted, bool(query), bool(city_ags))
    params: dict[str, Any] = {"limit": limit}
    if query:
        like = _like(query)
        params.update(contains=f"%{like}%", prefix=f"{like}%", word=f"% {like}%")
    if city_ags:
        params["city"] = city_ags
    rows = conn.execute(text(sql), params).all()
    return [_place(r) for r in rows]


def _place(row) -> dict[str, Any]:  # noqa: ANN001
    kind, pid, name, detail, city, slug, approximate, x0, y0, x1, y1, cx, cy = row
    place: dict[str, Any] = {
        "kind": kind, "id": pid, "name": name, "detail": detail, "city_ags": city,
        "slug": slug, "approximate": approximate,
        "bbox": [round(v, 6) for v in (x0, y0, x1, y1)] if x0 is not None else None,
        "centre": [round(cx, 6), round(cy, 6)] if cx is not None else None,
    }
    if kind in ("measure", "place"):
        place["href"] = f"/massnahmen/{pid}"
    return place


def geocode(url: str, q: str, limit: int) -> list[dict[str, Any]]:
    """Places from a Nominatim-compatible search URL (``…/search``; ``q``, ``format=jsonv2``
    and ``limit`` are added). Bounded in time and size; an unreachable or odd geocoder gives
    no places (logged), never an error of the search."""
    params = urllib.parse.urlencode({"q": q, "format": "jsonv2", "limit": limit})
    full = f"{url}{'&' if '?' in url else '?'}{params}"
    request = urllib.request.Request(full, headers={"User-Agent": "quarters place search",
                                                    "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=GEOCODER_TIMEOUT_S) as response:  # noqa: S310
            body = json.loads(response.read(GEOCODER_MAX_BYTES + 1)[:GEOCODER_MAX_BYTES])
    except (OSError, ValueError) as err:
        log.warning("geocoder %s: %s", url, err)
        return []
    places = []
    for item in body if isinstance(body, list) else []:
        try:
            lat, lon = float(item["lat"]), float(item["lon"])
            south, north, west, east = (float(v) for v in item.get("boundingbox") or
                                        (lat, lat, lon, lon))
        except (KeyError, TypeError, ValueError):
            continue
        places.append({"kind": "geocoder", "id": str(item.get("place_id", "")),
                       "name": str(item.get("display_name", ""))[:200], "detail": None,
                       "city_ags": None, "slug": None, "approximate": None,
                       "bbox": [west, south, east, north], "centre": [lon, lat]})
        if len(places) >= limit:
            break
    return places
