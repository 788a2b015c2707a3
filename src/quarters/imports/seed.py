"""Load the project's authored records: editions and the known measures of Halle and Gera."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy import Connection, text

from quarters import measures
from quarters.editions import load_editions
from quarters.errors import ImportRefused
from quarters.geometry import GeometryProblem, parse_geojson
from quarters.measures import Actor
from quarters.schemas import MeasureProperties

SEED_ACTOR = Actor(None, "quarters data load")
STAND_IN = ("city", "unknown")  # geometry null in the file: the city boundary stands in


def _city_geometry(conn: Connection, ags: str) -> Any:
    geojson = conn.execute(text(
        "SELECT ST_AsGeoJSON(ST_Transform(geom, 4326), 7) FROM municipalities WHERE ags = :a"),
        {"a": ags}).scalar_one()
    return shapely.geometry.shape(json.loads(geojson))


def _properties(props: dict[str, Any], parent_id: int | None) -> MeasureProperties:
    fields = {k: props.get(k) for k in MeasureProperties.model_fields if k in props}
    fields["parent_id"] = parent_id
    for key in ("milestones", "partners", "links", "editions"):
        fields[key] = fields.get(key) or []
    return MeasureProperties.model_validate({k: v for k, v in fields.items() if v is not None})


def seeded(conn: Connection, kind: str) -> set[str]:
    """Keys of the seed records of ``kind`` that a data load has ever inserted."""
    return set(conn.execute(text("SELECT key FROM seed_keys WHERE kind = :k"), {"k": kind})
               .scalars())


def mark_seeded(conn: Connection, kind: str, key: str) -> None:
    """Remember that the seed record ``key`` was inserted (it is never inserted again)."""
    conn.execute(text("INSERT INTO seed_keys (kind, key) VALUES (:k, :key) ON CONFLICT DO NOTHING"),
                 {"k": kind, "key": key})


def load_measures(conn: Connection, path: Path) -> dict[str, int]:
    """Insert the seed measures a data load has never inserted (published, by slug).

    A measure inserted once is people's from then on: it is never rewritten, and never brought
    back after a soft or hard delete, so a restart changes nothing that people did.
    """
    features = json.loads(path.read_text())["features"]
    by_slug = {f["properties"]["slug"]: f for f in features}
    done = seeded(conn, "measure")
    ids = dict(conn.execute(text("SELECT slug, id FROM measures WHERE slug IS NOT NULL")).all())
    live = set(conn.execute(text("SELECT id FROM measures_current")).scalars())
    counts = {"created": 0, "kept": 0}
    for slug in _parents_first(by_slug):
        if slug in done or slug in ids:
            mark_seeded(conn, "measure", slug)
            counts["kept"] += 1
            continue
        feature = by_slug[slug]
        props = feature["properties"]
        parent = ids.get(props.get("parent_slug") or "")
        try:
            record = _properties(props, parent if parent in live else None)
            if feature.get("geometry") is None:
                if props.get("location_precision") not in STAND_IN:
                    raise ImportRefused(code="seed.no_geometry", params={
                        "file": path.name, "slug": slug,
                        "precision": str(props.get("location_precision"))})
                geom = _city_geometry(conn, record.city_ags)
            else:
                geom = parse_geojson(feature["geometry"])
        except (ValueError, GeometryProblem) as exc:
            raise ImportRefused(code="seed.measure", params={
                "file": path.name, "slug": slug, "reason": _why(exc)}) from None
        created = measures.create(conn, record, geom, SEED_ACTOR, slug=slug, published=True)
        ids[slug] = created["id"]
        live.add(created["id"])
        mark_seeded(conn, "measure", slug)
        counts["created"] += 1
    return counts


def _why(exc: ValueError) -> dict[str, object] | str:
    """A refused record's reason: its problem code (a geometry or a coded check), else its
    text."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and "." in code:
        return {"code": code, "params": dict(getattr(exc, "params", None) or {})}
    return str(exc)[:300]


def _parents_first(by_slug: dict[str, dict]) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()

    def visit(slug: str, trail: tuple[str, ...] = ()) -> None:
        if slug in seen:
            return
        if slug in trail:
            raise ImportRefused(code="seed.parent_cycle", params={"slug": slug})
        parent = by_slug[slug]["properties"].get("parent_slug")
        if parent:
            if parent not in by_slug:
                raise ImportRefused(code="seed.unknown_parent",
                                    params={"slug": slug, "parent": str(parent)})
            visit(parent, (*trail, slug))
        seen.add(slug)
        order.append(slug)

    for slug in by_slug:
        visit(slug)
    return order


def load_seed(conn: Connection, geo_dir: Path) -> dict[str, int]:
    """Editions first, then measures (when the file exists)."""
    result = {"editions": load_editions(conn, geo_dir / "editions.json")}
    path = geo_dir / "measures.geojson"
    if path.exists():
        result.update(load_measures(conn, path))
    return result
