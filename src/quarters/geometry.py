"""Geometry rules in one place: storage CRS, polygon checks, repair policy."""

from __future__ import annotations

import shapely
import shapely.geometry
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

POLYGONAL = ("Polygon", "MultiPolygon")


def problem_code(geom: BaseGeometry | None) -> tuple[str, dict[str, str]] | None:
    """What is wrong with an area geometry as a catalogue code and its params, or None when
    it can be stored."""
    if geom is None:
        return "boundaries.geometry_missing", {}
    if geom.is_empty:
        return "boundaries.geometry_empty", {}
    if geom.geom_type not in POLYGONAL:
        return "boundaries.not_an_area", {"type": geom.geom_type}
    if not shapely.is_valid(geom):
        return "boundaries.invalid", {"reason": shapely.is_valid_reason(geom)}
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


# -- GeoJSON input (RFC 7946, EPSG:4326) ------------------------------------------------------
INPUT_TYPES = ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon")
DEPTH = {"Point": 0, "LineString": 1, "MultiPoint": 1, "Polygon": 2, "MultiLineString": 2,
         "MultiPolygon": 3}
MAX_VERTICES = 10_000


class GeometryProblem(ValueError):
    """A GeoJSON geometry that cannot be stored; carries a JSON pointer."""

    def __init__(self, pointer: str, code: str, **params: object) -> None:
        from quarters.messages import t

        self.pointer = pointer
        self.code = f"geometry.{code}"
        self.params = params
        self.problem = t(f"problem.{self.code}", "en", **params)
        super().__init__(f"{pointer}: {self.problem}")


def parse_geojson(obj: object, pointer: str = "/geometry") -> BaseGeometry:
    """Check a GeoJSON geometry strictly and return it as a shapely geometry (lon/lat).

    Refuses (never repairs): missing or unknown type, a ``crs`` member, positions that are
    not 2 finite numbers within lon −180..180 / lat −90..90, empty geometries, unclosed or
    short rings, more than MAX_VERTICES vertices, and invalid (e.g. self-intersecting) shapes.
    """
    if not isinstance(obj, dict):
        raise GeometryProblem(pointer, "missing")
    if "crs" in obj:
        raise GeometryProblem(pointer + "/crs", "crs_not_supported")
    kind = obj.get("type")
    if kind not in INPUT_TYPES:
        raise GeometryProblem(pointer + "/type", "type_not_allowed", type=str(kind),
                              allowed=", ".join(INPUT_TYPES))
    coords = obj.get("coordinates")
    counter = [0]
    _check_level(coords, DEPTH[kind], f"{pointer}/coordinates", counter, kind)
    if counter[0] == 0:
        raise GeometryProblem(pointer + "/coordinates", "empty")
    geom = shapely.geometry.shape(obj)
    if geom.is_empty:
        raise GeometryProblem(pointer + "/coordinates", "empty")
    if not shapely.is_valid(geom):
        raise GeometryProblem(pointer, "invalid", reason=_reason_lonlat(geom))
    return geom


def _check_level(node: object, depth: int, pointer: str, counter: list[int], kind: str) -> None:
    if depth == 0:
        _check_position(node, pointer)
        counter[0] += 1
        if counter[0] > MAX_VERTICES:
            raise GeometryProblem(pointer, "too_many_vertices", max=MAX_VERTICES)
        return
    if not isinstance(node, list):
        raise GeometryProblem(pointer, "expected_array")
    for i, child in enumerate(node):
        _check_level(child, depth - 1, f"{pointer}/{i}", counter, kind)
    if depth == 1 and kind in ("LineString", "MultiLineString") and 0 < len(node) < 2:
        raise GeometryProblem(pointer, "line_too_short")
    if depth == 1 and kind in ("Polygon", "MultiPolygon"):
        if len(node) < 4:
            raise GeometryProblem(pointer, "ring_too_short")
        if node[0] != node[-1]:
            raise GeometryProblem(pointer, "ring_not_closed")


def _check_position(node: object, pointer: str) -> None:
    if node == []:
        raise GeometryProblem(pointer, "empty")
    if not isinstance(node, list):
        raise GeometryProblem(pointer, "position_not_array")
    if len(node) != 2:
        raise GeometryProblem(pointer, "position_size", count=len(node))
    for value in node:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GeometryProblem(pointer, "not_numbers")
        if value != value or value in (float("inf"), float("-inf")):
            raise GeometryProblem(pointer, "not_finite")
    lon, lat = node
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise GeometryProblem(pointer, "out_of_range")


def _reason_lonlat(geom: BaseGeometry) -> str:
    """GEOS' reason, with the location rounded for people."""
    reason = shapely.is_valid_reason(geom)
    if "[" in reason:
        text, loc = reason.split("[", 1)
        parts = loc.rstrip("]").split()
        if len(parts) >= 2:
            return f"{text} at lon {float(parts[0]):.6f}, lat {float(parts[1]):.6f}"
    return reason
