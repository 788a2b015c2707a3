"""OGC API Tiles: Mapbox Vector Tiles of the published collections, built in PostGIS.

Tile grids come from morecantile: ``WebMercatorQuad`` (web maps) and ``ETRS89UTM32Quad``, a
quadtree in EPSG:25832 over Germany for the cities' own maps and GIS clients. Its origin
(-46133.17, 6301219.54) and level-0 cell size (4891.97 m, scale 1:17,471,320.75) are those of
the AdV grid DE_EPSG_25832_ADV that basemap.de uses, so tiles line up with the official
German base map in that CRS.

One tile is one SQL statement: the rows whose storage geometry meets the tile (plus its
buffer) are clipped to the buffered tile in the storage CRS, simplified with a tolerance of
half a screen pixel of that zoom (points are left as they are), reprojected to the grid's CRS
and encoded with ``ST_AsMVTGeom``/``ST_AsMVT`` (once per row; rows that fall outside the
buffered tile come out NULL and ST_AsMVT leaves them out). The layer carries only the
collection's ``tile_properties``; it reads the collection's own table or view, so measures come from
``measures_public`` as everywhere else (a draft is never in a tile).

Points are grouped by screen pixel, at every zoom: the single points (``ST_Point``) of a
collection that has points are snapped, in the storage CRS, to a grid of cells one screen
pixel wide (``EXTENT / DISPLAY_PX`` = 16 MVT units; the tile's storage width / 256) counted
from the lower left corner of the tile's buffered storage box, and each occupied cell becomes
ONE point feature: the point, id and properties of its lowest id plus ``point_count``, the
number of published points in the cell (set-based: ``GROUP BY`` the cell, ``min(id)``,
``count(*)``, then the representatives' rows by id; ``ST_AsMVTGeom`` only on them). A tile
thus holds at most (256 + 2·4)² point features whatever the density (a z10 tile of 1 M
measures held 427,000 and ran past the statement timeout), while nothing a screen can tell
apart is merged: a cell with one point gives the same feature as without grouping plus
``point_count`` = 1, and from z15 on a pixel (about 3 m in Germany) is finer than a measure's
location, so only measures placed on the same spot share a feature there (their items are at
``/items?bbox=``). Multi-points count 1 and pass as they are, lines and polygons are clipped and
simplified as before and carry no ``point_count``. For WebMercatorQuad the cells are pixels
of the storage CRS, which is turned by the meridian convergence (≈ 2° at Halle) against the
screen: a cell still covers about one pixel (and a cell at the edge of the buffer whose lowest
id lies just outside the buffered tile is left out with it: never in the visible tile).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import morecantile
from pyproj import CRS, Transformer
from sqlalchemy import Connection, text

from quarters.collections import Collection
from quarters.errors import NotFound
from quarters.settings import STORAGE_SRID

EXTENT = 4096  # MVT units per tile side
BUFFER = 64  # MVT units around the tile (symbols and strokes are not cut at tile edges)
DISPLAY_PX = 256  # a tile is drawn 256 screen pixels wide
SIMPLIFY_PX = 0.5  # simplification tolerance in screen pixels
POINT_TYPES = ("Point", "MultiPoint")
POINT_COUNT = "point_count"  # the property of a grouped point: the points in its pixel

WEB_MERCATOR = "WebMercatorQuad"
UTM32 = "ETRS89UTM32Quad"


def _utm32_germany() -> morecantile.TileMatrixSet:
    return morecantile.TileMatrixSet.custom(
        [-46133.17, 5048875.26857567, 1206211.10142433, 6301219.54],
        CRS.from_epsg(STORAGE_SRID), id=UTM32, minzoom=0, maxzoom=17,
        title="ETRS89 / UTM zone 32N (EPSG:25832), Germany (AdV grid DE_EPSG_25832_ADV)",
    )


def _web_mercator() -> morecantile.TileMatrixSet:
    tms = morecantile.tms.get(WEB_MERCATOR)
    return tms.model_copy(update={"tileMatrices": tms.tileMatrices[:23]})  # z 0–22


TILE_MATRIX_SETS: dict[str, morecantile.TileMatrixSet] = {
    WEB_MERCATOR: _web_mercator(),
    UTM32: _utm32_germany(),
}


def tile_matrix_set(tms_id: str) -> morecantile.TileMatrixSet:
    """The grid called ``tms_id`` or NotFound."""
    try:
        return TILE_MATRIX_SETS[tms_id]
    except KeyError:
        raise NotFound(code="tiles.unknown_tms", pointer="tileMatrixSetId", params={
            "id": tms_id[:80], "offered": ", ".join(TILE_MATRIX_SETS)}) from None


def srid_of(tms: morecantile.TileMatrixSet) -> int:
    """EPSG code of a grid's CRS."""
    return int(tms.crs.root.rsplit("/", 1)[1])


@lru_cache(maxsize=8)
def _to_storage(srid: int) -> Transformer:
    return Transformer.from_crs(srid, STORAGE_SRID, always_xy=True)


@dataclass(frozen=True)
class TileBounds:
    """A tile's box in the grid's CRS and its buffered box in the storage CRS."""

    srid: int
    box: tuple[float, float, float, float]
    storage_box: tuple[float, float, float, float]
    tolerance: float  # simplification tolerance in storage units (metres)

    @property
    def cell(self) -> float:
        """Side of a point-grouping cell in storage units: one screen pixel."""
        return self.tolerance / SIMPLIFY_PX


def tile_bounds(tms: morecantile.TileMatrixSet, z: int, x: int, y: int) -> TileBounds:
    """Bounds of tile z/x/y; NotFound when the grid has no such tile."""
    if not tms.minzoom <= z <= tms.maxzoom:
        raise NotFound(code="tiles.zoom", pointer="tileMatrix", params={
            "tms": tms.id, "z": z, "min": tms.minzoom, "max": tms.maxzoom})
    matrix = tms.matrix(z)
    if not (0 <= x < matrix.matrixWidth and 0 <= y < matrix.matrixHeight):
        raise NotFound(code="tiles.column_row", pointer="tileRow" if 0 <= x <
                       matrix.matrixWidth else "tileCol", params={
                           "tms": tms.id, "x": x, "y": y, "z": z,
                           "max_x": matrix.matrixWidth - 1, "max_y": matrix.matrixHeight - 1})
    b = tms.xy_bounds(morecantile.Tile(x, y, z))
    srid = srid_of(tms)
    margin = (b.right - b.left) * BUFFER / EXTENT
    grown = (b.left - margin, b.bottom - margin, b.right + margin, b.top + margin)
    if srid == STORAGE_SRID:
        storage = grown
    else:
        storage = _to_storage(srid).transform_bounds(*grown, densify_pts=21)
    width = (storage[2] - storage[0]) / (1 + 2 * BUFFER / EXTENT)
    return TileBounds(srid, (b.left, b.bottom, b.right, b.top), tuple(storage),
                      width / DISPLAY_PX * SIMPLIFY_PX)


def _geometry_sql(col: Collection, srid: int) -> str:
    """The collection's geometry clipped, simplified and reprojected for one tile."""
    g = col.geometry
    if col.geometry_type == "Geometry":  # mixed: points pass as they are
        g = (f"CASE WHEN ST_Dimension({g}) = 0 THEN {g} "
             f"ELSE ST_Simplify(ST_ClipByBox2D({g}, {_STORAGE_BOX}), :tol, true) END")
    elif col.geometry_type not in POINT_TYPES:
        g = f"ST_Simplify(ST_ClipByBox2D({g}, {_STORAGE_BOX}), :tol, true)"
    if srid != STORAGE_SRID:
        g = f"ST_Transform({g}, {srid})"
    return f"ST_AsMVTGeom({g}, ST_MakeEnvelope(:x0, :y0, :x1, :y1, {srid}), {EXTENT}, {BUFFER}, true)"


_STORAGE_BOX = f"ST_MakeEnvelope(:sx0, :sy0, :sx1, :sy1, {STORAGE_SRID})"


_SQL: dict[tuple[str, str, int], str] = {}


def tile_sql(col: Collection, srid: int) -> str:
    """SQL of one MVT tile of a collection in the grid CRS ``srid`` (one layer, named by the
    collection id; integer ids become the MVT feature id as well)."""
    key = (col.id, col.table, srid)
    if key not in _SQL:
        _SQL[key] = _build_sql(col, srid)
    return _SQL[key]


def has_points(col: Collection) -> bool:
    """Whether a collection's tiles group points by pixel (and carry ``point_count``)."""
    return col.geometry_type in (*POINT_TYPES, "Geometry")


def _build_sql(col: Collection, srid: int, group_points: bool = True) -> str:
    """The tile statement (``group_points=False``: every point a feature of its own, the
    statement before the grouping; bench/bench_dense_tile.py compares the two)."""
    # No "WHERE __geom IS NOT NULL" around the rows: PostgreSQL flattens the subquery and
    # would compute ST_AsMVTGeom twice per row (filter and output: half of a z8 tile's time);
    # ST_AsMVT itself skips the rows whose geometry left the buffered tile (NULL).
    props = ", ".join(f'{col.properties[name]} AS "{name}"' for name in col.tile_properties)
    fid = f', t.{col.id_column} AS "__fid"' if col.id_kind == "integer" else ""
    fid_arg = ", '__fid'" if fid else ""
    in_tile = f"{col.base_where()} AND t.geom && {_STORAGE_BOX}"
    if not (group_points and has_points(col)):
        return (
            f"SELECT ST_AsMVT(m.*, :layer, {EXTENT}, '__geom'{fid_arg}) FROM ("
            f"SELECT {props}{fid}, {_geometry_sql(col, srid)} AS \"__geom\" "
            f"FROM {col.from_clause()} WHERE {in_tile}) m"
        )
    # Points: one row per occupied pixel (its lowest id and the count), read back by id;
    # everything else as it is. ST_AsMVTGeom runs once per output row, above the union.
    point = "ST_GeometryType(t.geom) = 'ST_Point'"
    cells = (f"SELECT min(t.{col.id_column}) AS rep, count(*) AS n FROM {col.from_clause()} "
             f"WHERE {in_tile} AND {point} "
             f"GROUP BY floor((ST_X(t.geom) - :sx0) / :cell), "
             f"floor((ST_Y(t.geom) - :sy0) / :cell)")
    others = "1" if col.geometry_type in POINT_TYPES else (
        "CASE WHEN ST_Dimension(t.geom) = 0 THEN 1 END")
    rows = (
        f"SELECT {props}{fid}, c.n AS \"{POINT_COUNT}\", {col.geometry} AS \"__g\" "
        f"FROM ({cells}) c JOIN {col.table} t ON t.{col.id_column} = c.rep {col.joins} "
        f"UNION ALL "
        f"SELECT {props}{fid}, {others}, {col.geometry} FROM {col.from_clause()} "
        f"WHERE {in_tile} AND NOT {point}"
    )
    names = ", ".join(f'u."{name}"' for name in (*col.tile_properties, *(
        ("__fid",) if fid else ()), POINT_COUNT))
    geom = _geometry_sql(replace(col, geometry='u."__g"'), srid)
    return (
        f"SELECT ST_AsMVT(m.*, :layer, {EXTENT}, '__geom'{fid_arg}) FROM ("
        f"SELECT {names}, {geom} AS \"__geom\" FROM ({rows}) u) m"
    )


def tile(conn: Connection, col: Collection, tms: morecantile.TileMatrixSet,
         z: int, x: int, y: int) -> bytes:
    """The Mapbox Vector Tile z/x/y of a collection (empty bytes: nothing there)."""
    bounds = tile_bounds(tms, z, x, y)
    params = dict(zip(("x0", "y0", "x1", "y1"), bounds.box, strict=True))
    params.update(zip(("sx0", "sy0", "sx1", "sy1"), bounds.storage_box, strict=True))
    params.update(layer=col.id, tol=bounds.tolerance, cell=bounds.cell)
    raw = conn.execute(text(tile_sql(col, bounds.srid)), params).scalar()
    return bytes(raw or b"")


PROJECT_ATTRIBUTION = "quarters (CC BY 4.0)"


def attribution(conn: Connection, col: Collection) -> str:
    """The attributions of the sources the collection's rows come from (measures: the
    project's own)."""
    if col.table.startswith("measures"):
        return PROJECT_ATTRIBUTION
    rows = conn.execute(text(
        f"SELECT DISTINCT s.attribution FROM {col.table} t JOIN sources s ON s.id = t.source_id "
        f"WHERE {col.base_where()} AND s.attribution IS NOT NULL ORDER BY 1")).scalars()
    return "; ".join(rows) or PROJECT_ATTRIBUTION
