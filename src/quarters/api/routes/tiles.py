"""OGC API – Tiles: tile matrix sets, tileset metadata, TileJSON and Mapbox Vector Tiles of
every published collection, cached under the data version (never stale) and answered with
ETag/304 and a Cache-Control a CDN may follow."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from quarters import services, tiles
from quarters.api.deps import ConnDep, SettingsDep, version_watch
from quarters.api.responses import RawJSONResponse
from quarters.api.routes.features import base_url, cached_extent, collection_or_404
from quarters.collections import COLLECTIONS, Collection
from quarters.errors import NotFound
from quarters.tilecache import TileCache, TileKey

router = APIRouter(prefix="/api", tags=["OGC API Tiles"])

MVT = "application/vnd.mapbox-vector-tile"
JSON = "application/json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
REL_TILESETS = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TEMPLATE = "{tileMatrix}/{tileRow}/{tileCol}"
DIMENSION = {"Point": 0, "MultiPoint": 0, "LineString": 1, "MultiLineString": 1,
             "Polygon": 2, "MultiPolygon": 2}


class MVTResponse(Response):
    """A Mapbox Vector Tile."""

    media_type = MVT


def tile_cache(request: Request) -> TileCache:
    """The app's tile cache (made on first use from the settings)."""
    state = request.app.state
    cache = getattr(state, "tile_cache", None)
    if cache is None:
        settings = state.settings
        cache = state.tile_cache = TileCache(settings.tile_cache_size, settings.tile_cache_dir)
    return cache


def _cache_control(settings) -> str:  # noqa: ANN001
    age = settings.tile_max_age
    return f"public, max-age={age}" if age > 0 else "public, no-cache"


def _etag(*parts: Any) -> str:
    return '"' + hashlib.sha256(orjson.dumps(parts)).hexdigest()[:24] + '"'


def _matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _json(request: Request, conn, settings, build, *key: Any) -> Response:  # noqa: ANN001
    """Metadata answered with an ETag from the data version (304 when unchanged)."""
    version, _ = services.data_version(conn)
    etag = _etag(version, base_url(request), request.url.path, *key)
    headers = {"ETag": etag, "Cache-Control": _cache_control(settings)}
    if _matches(request, etag):
        return Response(status_code=304, headers=headers)
    return RawJSONResponse(orjson.dumps(build()), headers=headers)


# -- tile matrix sets -------------------------------------------------------------------------
def _tms_link(base: str, tms_id: str) -> dict[str, str]:
    return {"href": f"{base}/api/tileMatrixSets/{tms_id}", "rel": REL_TILING_SCHEME,
            "type": JSON, "title": tms_id}


@router.get("/tileMatrixSets", summary="Tile matrix sets")
def tile_matrix_sets(request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """The tile grids tiles are offered in."""
    base = base_url(request)

    def build() -> dict:
        return {"tileMatrixSets": [
            {"id": tms.id, "title": tms.title, **({"uri": tms.uri} if tms.uri else {}),
             "crs": tms.crs.root,
             "links": [{**_tms_link(base, tms.id), "rel": "self"}]}
            for tms in tiles.TILE_MATRIX_SETS.values()]}

    return _json(request, conn, settings, build)


@router.get("/tileMatrixSets/{tms_id}", summary="One tile matrix set (OGC TMS 2.0 JSON)")
def tile_matrix_set(tms_id: str, request: Request, conn: ConnDep,
                    settings: SettingsDep) -> Response:
    """The definition of a tile grid: CRS, origin, cell size and size of every matrix."""
    tms = tiles.tile_matrix_set(tms_id)
    return _json(request, conn, settings,
                 lambda: orjson.loads(tms.model_dump_json(exclude_none=True)))


# -- tilesets of a collection -----------------------------------------------------------------
def _extent(request: Request, conn, col: Collection) -> list[float] | None:  # noqa: ANN001
    """The collection's CRS84 bbox (the collections' extents, kept per data version)."""
    return cached_extent(request, conn, col)["bbox"]


def _tileset_summary(base: str, col: Collection, tms) -> dict:  # noqa: ANN001
    url = f"{base}/api/collections/{col.id}/tiles/{tms.id}"
    return {
        "title": f"{col.title} ({tms.id})",
        "dataType": "vector",
        "crs": tms.crs.root,
        **({"tileMatrixSetURI": tms.uri} if tms.uri else {}),
        "links": [
            {"href": url, "rel": "self", "type": JSON, "title": "Tileset metadata"},
            _tms_link(base, tms.id),
            {"href": f"{url}/{TEMPLATE}", "rel": "item", "type": MVT, "templated": True,
             "title": "Mapbox Vector Tile"},
        ],
    }


@router.get("/collections/{collection_id}/tiles", summary="Vector tilesets of a collection")
def tilesets(collection_id: str, request: Request, conn: ConnDep,
             settings: SettingsDep) -> Response:
    """The tilesets of a collection: one per tile matrix set."""
    col = collection_or_404(collection_id)
    base = base_url(request)
    return _json(request, conn, settings, lambda: {
        "links": [{"href": f"{base}/api/collections/{col.id}/tiles", "rel": "self",
                   "type": JSON},
                  {"href": f"{base}/api/collections/{col.id}", "rel": "collection",
                   "type": JSON}],
        "tilesets": [_tileset_summary(base, col, t) for t in tiles.TILE_MATRIX_SETS.values()],
    })


def _fields(conn, col: Collection) -> dict[str, dict]:  # noqa: ANN001
    schemas = services.property_schemas(conn, col)
    fields = {name: schemas[name] for name in col.tile_properties}
    if tiles.has_points(col):
        fields[tiles.POINT_COUNT] = {
            "type": "integer", "minimum": 1,
            "description": "Points: the published points in this screen pixel (one feature "
                           "per pixel, the properties of the lowest id)"}
    return fields


@router.get("/collections/{collection_id}/tiles/{tms_id}", summary="Tileset metadata")
def tileset(collection_id: str, tms_id: str, request: Request, conn: ConnDep,
            settings: SettingsDep) -> Response:
    """Metadata of a collection's tileset in one grid: layer, properties, zooms, extent."""
    col = collection_or_404(collection_id)
    tms = tiles.tile_matrix_set(tms_id)
    base = base_url(request)

    def build() -> dict:
        doc = _tileset_summary(base, col, tms)
        doc["layers"] = [{
            "id": col.id, "title": col.title, "dataType": "vector",
            **({"geometryDimension": DIMENSION[col.geometry_type]}
               if col.geometry_type in DIMENSION else {}),
            "minTileMatrix": str(tms.minzoom), "maxTileMatrix": str(tms.maxzoom),
            "propertiesSchema": {"type": "object", "properties": _fields(conn, col)},
        }]
        bbox = _extent(request, conn, col)
        if bbox:
            doc["boundingBox"] = {"lowerLeft": bbox[:2], "upperRight": bbox[2:], "crs": CRS84}
        doc["links"].append({"href": f"{base}/api/collections/{col.id}", "rel": "collection",
                             "type": JSON})
        if tms.id == tiles.WEB_MERCATOR:
            doc["links"].append({"href": f"{base}/api/collections/{col.id}/tiles/{tms.id}"
                                         "/tilejson.json", "rel": "describedby", "type": JSON,
                                 "title": "TileJSON 3.0"})
        return doc

    return _json(request, conn, settings, build)


@router.get("/collections/{collection_id}/tiles/{tms_id}/tilejson.json", summary="TileJSON")
def tilejson(collection_id: str, tms_id: str, request: Request, conn: ConnDep,
             settings: SettingsDep) -> Response:
    """TileJSON 3.0.0 of a collection's WebMercatorQuad tiles (MapLibre, Leaflet plugins)."""
    col = collection_or_404(collection_id)
    tms = tiles.tile_matrix_set(tms_id)
    if tms.id != tiles.WEB_MERCATOR:
        raise NotFound(code="tiles.tilejson_tms", pointer="tileMatrixSetId",
                       params={"offered": tiles.WEB_MERCATOR, "id": tms.id})
    base = base_url(request)

    def build() -> dict:
        bbox = _extent(request, conn, col) or [-180.0, -85.05, 180.0, 85.05]
        fields = {name: s.get("type", "string").capitalize()
                  for name, s in _fields(conn, col).items()}
        return {
            "tilejson": "3.0.0",
            "name": col.title,
            "description": col.description,
            "attribution": tiles.attribution(conn, col),
            "scheme": "xyz",
            "tiles": [f"{base}/api/collections/{col.id}/tiles/{tms.id}/{{z}}/{{y}}/{{x}}"],
            "minzoom": tms.minzoom, "maxzoom": tms.maxzoom,
            "bounds": bbox,
            "center": [round((bbox[0] + bbox[2]) / 2, 6), round((bbox[1] + bbox[3]) / 2, 6),
                       8],
            "vector_layers": [{"id": col.id, "description": col.title, "fields": fields,
                               "minzoom": tms.minzoom, "maxzoom": tms.maxzoom}],
        }

    return _json(request, conn, settings, build)


# -- tiles ------------------------------------------------------------------------------------
@router.get("/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}",
            summary="A Mapbox Vector Tile", response_class=MVTResponse,
            responses={200: {"content": {MVT: {}}, "description": "The tile (may be empty)"},
                       304: {"description": "Not modified (If-None-Match)"},
                       404: {"description": "No such collection, grid or tile"}})
def vector_tile(collection_id: str, tms_id: str, z: int, y: int, x: int, request: Request,
                conn: ConnDep, settings: SettingsDep) -> Response:
    """Tile z/y/x (OGC order: tileMatrix/tileRow/tileCol) of a collection as MVT, one layer
    named after the collection, published data only; points are grouped per screen pixel
    (one feature with point_count, see quarters.tiles)."""
    col = collection_or_404(collection_id)
    tms = tiles.tile_matrix_set(tms_id)
    tiles.tile_bounds(tms, z, x, y)  # 404 before touching the database
    # read before the tile: a tile is never older than the version in its key
    version, _ = services.data_version(conn)
    key = TileKey(col.id, tms.id, z, x, y, version)
    headers = _tile_headers(settings, key)
    if _matches(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    cache = tile_cache(request)
    body, source = cache.get(key)
    if body is None:
        body = tiles.tile(conn, col, tms, z, x, y)
        cache.put(key, body)
    headers["X-Tile-Cache"] = source
    return MVTResponse(body, headers=headers)


def _tile_headers(settings, key: TileKey) -> dict[str, str]:  # noqa: ANN001
    return {"ETag": _etag(*key), "Cache-Control": _cache_control(settings)}


def tile_from_memory(request: Request, collection_id: str, tms_id: str, z: str, y: str,
                     x: str) -> Response | None:
    """What :func:`vector_tile` answers, without the database: the data version known in
    memory (quarters.api.dataversion) and the tile in the tile cache's memory, or a 304. None when
    either is not at hand (or the request is not a plain one): the route answers then."""
    watch = version_watch(request.app)
    known = watch.cached() if watch is not None else None
    col = COLLECTIONS.get(collection_id)
    if known is None or col is None or not (z.isdigit() and y.isdigit() and x.isdigit()):
        return None
    try:
        tms = tiles.tile_matrix_set(tms_id)
        tiles.tile_bounds(tms, int(z), int(x), int(y))
    except NotFound:
        return None  # the route says what is wrong
    key = TileKey(col.id, tms.id, int(z), int(x), int(y), known[0])
    headers = _tile_headers(request.app.state.settings, key)
    if _matches(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    # memory only: no file read in the event loop, and a miss is looked up (and counted) once,
    # by the route
    body, source = tile_cache(request).get(key, disk=False)
    if body is None:
        return None
    headers["X-Tile-Cache"] = source
    return MVTResponse(body, headers=headers)
