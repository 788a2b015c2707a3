"""Strategy editions (Gera updates its strategy every year): members, map as of, differences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from quarters.errors import InvalidParameter, NotFound


def _visible(public: bool, alias: str = "me") -> str:
    """SQL condition on measure_editions: public sees what was published in the edition AND is
    published and not deleted now (the collections' rule, view measures_public); staff see
    every measure that is not deleted."""
    view = "measures_public" if public else "measures_current"
    published = f"(({alias}.snapshot->>'published')::boolean) AND " if public else ""
    return f"{published}{alias}.measure_id IN (SELECT id FROM {view})"


COMPARED = ("title", "summary", "description", "action_field", "status", "start_date",
            "end_date", "milestones", "budget_planned", "budget_spent", "funding_line",
            "responsible_unit", "partners", "parent_id", "location_precision", "published")


def load_editions(conn: Connection, path: Path) -> int:
    """Insert the editions the project knows (data/geo/editions.json) that were never loaded;
    an edition already there keeps what it has (a frozen one above all)."""
    editions = json.loads(path.read_text())["editions"]
    created = 0
    for e in editions:
        new = conn.execute(text("""
            INSERT INTO seed_keys (kind, key) VALUES ('edition', :key) ON CONFLICT DO NOTHING
            RETURNING key"""), {"key": e["key"]}).first()
        if new is None:
            continue
        created += conn.execute(text("""
            INSERT INTO editions (key, city_ags, title, year, adopted_on, frozen, note)
            VALUES (:key, :city_ags, :title, :year, CAST(:adopted_on AS date), :frozen, :note)
            ON CONFLICT (key) DO NOTHING
        """), {**{k: e.get(k) for k in ("key", "city_ags", "title", "year", "adopted_on", "note")},
               "frozen": bool(e.get("frozen"))}).rowcount
    return created


def list_editions(conn: Connection, public: bool) -> list[dict[str, Any]]:
    """Editions with the number of measures each holds (public: published ones only)."""
    only = f"AND {_visible(public)}"
    rows = conn.execute(text(f"""
        SELECT e.key, e.city_ags, e.title, e.year, e.adopted_on, e.frozen, e.note,
               count(me.measure_id) AS measures
        FROM editions e LEFT JOIN measure_editions me ON me.edition_key = e.key {only}
        GROUP BY e.key ORDER BY e.city_ags, e.year
    """)).mappings()
    return [{**r, "adopted_on": r["adopted_on"].isoformat() if r["adopted_on"] else None}
            for r in rows]


def _require(conn: Connection, key: str) -> None:
    if not conn.execute(text("SELECT 1 FROM editions WHERE key = :k"), {"k": key}).first():
        raise NotFound(code="edition.unknown", params={"key": key[:80]})


def edition_map(conn: Connection, key: str, public: bool) -> str:
    """The measures of an edition as they were recorded in it (GeoJSON text)."""
    _require(conn, key)
    only = f"AND {_visible(public)}"
    return conn.execute(text(f"""
        SELECT json_build_object('type', 'FeatureCollection', 'edition', CAST(:k AS text),
            'features', COALESCE(json_agg(json_build_object(
                'type', 'Feature', 'id', me.measure_id,
                'geometry', ST_AsGeoJSON(ST_ForcePolygonCCW(ST_Transform(me.geom, 4326)), 7)::json,
                'properties', me.snapshot || jsonb_build_object('id', me.measure_id))
            ORDER BY me.measure_id), '[]'))::text
        FROM measure_editions me WHERE me.edition_key = :k {only}
    """), {"k": key}).scalar_one()


def diff(conn: Connection, old: str, new: str, public: bool) -> dict[str, Any]:
    """Measures added, removed and changed between two editions (field by field)."""
    if old == new:
        raise InvalidParameter(code="edition.same", pointer="new", params={"key": old[:80]})
    _require(conn, old)
    _require(conn, new)
    only = f"AND {_visible(public)}"
    rows = {}
    for key in (old, new):
        rows[key] = {r.measure_id: (r.snapshot, r.geom) for r in conn.execute(text(
            f"SELECT measure_id, snapshot, ST_AsEWKB(geom) AS geom FROM measure_editions me "
            f"WHERE edition_key = :k {only}"), {"k": key})}
    a, b = rows[old], rows[new]

    def brief(measure_id: int, snap: dict) -> dict[str, Any]:
        return {"id": measure_id, "title": snap.get("title"), "status": snap.get("status")}

    changed = []
    for measure_id in sorted(set(a) & set(b)):
        (sa, ga), (sb, gb) = a[measure_id], b[measure_id]
        fields = {f: {"before": sa.get(f), "after": sb.get(f)}
                  for f in COMPARED if sa.get(f) != sb.get(f)}
        if bytes(ga) != bytes(gb):
            fields["geometry"] = {"before": "…", "after": "…"}
        if fields:
            changed.append({**brief(measure_id, sb), "changes": fields})
    return {
        "from": old, "to": new,
        "added": [brief(i, b[i][0]) for i in sorted(set(b) - set(a))],
        "removed": [brief(i, a[i][0]) for i in sorted(set(a) - set(b))],
        "changed": changed,
    }
