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


def load_measures(conn: Connection, path: Path) -> dict[str, int]:
    """Upsert the seed measures by slug (published; changes go through history)."""
    features = json.loads(path.read_text())["features"]
    by_slug = {f["properties"]["slug"]: f for f in features}
    ids = dict(conn.execute(text("SELECT slug, id FROM measures WHERE slug IS NOT NULL")).all())
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for slug in _parents_first(by_slug):
        feature = by_slug[slug]
        props = feature["properties"]
        parent = props.get("parent_slug")
        try:
            record = _properties(props, ids.get(parent) if parent else None)
            if feature.get("geometry") is None:
                if props.get("location_precision") not in STAND_IN:
                    raise ImportRefused(f"{path.name}: {slug} has no geometry but location_precision "
                                        f"{props.get('location_precision')!r}")
                geom = _city_geometry(conn, record.city_ags)
            else:
                geom = parse_geojson(feature["geometry"])
        except (ValueError, GeometryProblem) as exc:
            raise ImportRefused(f"{path.name}: measure {slug}: {exc}") from None
        if slug not in ids:
            created = measures.create(conn, record, geom, SEED_ACTOR, slug=slug, published=True)
            ids[slug] = created["id"]
            counts["created"] += 1
            continue
        current = measures.get(conn, ids[slug], measures.STAFF)
        wanted = record.model_dump(mode="json")
        same = all(current.get(k) == v for k, v in wanted.items())
        if same and shapely.equals_exact(shapely.geometry.shape(current["geometry"]), geom, 1e-6):
            counts["unchanged"] += 1
            continue
        measures.update(conn, ids[slug], current["version"], record, geom, SEED_ACTOR)
        counts["updated"] += 1
    return counts


def _parents_first(by_slug: dict[str, dict]) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()

    def visit(slug: str, trail: tuple[str, ...] = ()) -> None:
        if slug in seen:
            return
        if slug in trail:
            raise ImportRefused(f"measures: parent cycle through {slug}")
        parent = by_slug[slug]["properties"].get("parent_slug")
        if parent:
            if parent not in by_slug:
                raise ImportRefused(f"measures: {slug} names unknown parent_slug {parent!r}")
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
