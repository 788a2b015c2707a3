"""Geometry rules in one place: storage CRS, polygon checks, repair policy."""

from __future__ import annotations

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

POLYGONAL = ("Polygon", "MultiPolygon")


def problem_of(geom: BaseGeometry | None) -> str | None:
    """Say what is wrong with an area geometry, or None when it can be stored."""
    if geom is None:
        return "geometry missing"
    if geom.is_empty:
        return "geometry empty"
    if geom.geom_type not in POLYGONAL:
        return f"geometry type {geom.geom_type} (expected Polygon or MultiPolygon)"
    if not shapely.is_valid(geom):
        return f"invalid geometry: {shapely.is_valid_reason(geom)}"
    return None


def repair(geom: BaseGeometry) -> BaseGeometry:
    """Make a polygonal geometry valid (structure method) and keep only its polygonal parts."""
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    return polygonal_part(fixed)


def polygonal_part(geom: BaseGeometry) -> BaseGeometry:
    """Keep the polygons of a geometry (drops lines and points from collections)."""
    if geom.geom_type in POLYGONAL:
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in POLYGONAL]
    polys = [p for g in parts for p in (g.geoms if g.geom_type == "MultiPolygon" else [g])]
    return MultiPolygon(polys) if polys else Polygon()


def to_multi(geom: BaseGeometry) -> MultiPolygon:
    """Promote a Polygon to a MultiPolygon."""
    return MultiPolygon([geom]) if geom.geom_type == "Polygon" else geom
