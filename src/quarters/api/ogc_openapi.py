"""The OGC API as an OpenAPI 3.0 document, generated from the collections' metadata.

This is the landing page's ``service-desc``: GDAL and QGIS read the parameters of each items
path from it to decide which filters they may send to the server (a queryable declared here is
filtered by the database instead of on the client after downloading the whole layer).
FastAPI's own document (/api/openapi.json, OpenAPI 3.1) describes the rest of the API.

Write operations (Part 4) add themselves through :data:`EXTRA_OPERATIONS`.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from quarters import __version__
from quarters.collections import COLLECTIONS, Collection
from quarters.settings import STORAGE_SRID
from quarters.tiles import has_points

# The one list of the CRS the OGC API offers (URI -> SRID).
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
STORAGE_CRS = f"http://www.opengis.net/def/crs/EPSG/0/{STORAGE_SRID}"
CRS_SRIDS = {CRS84: 4326, STORAGE_CRS: STORAGE_SRID}

PATH = "/api/ogc/openapi.json"
JSON_TYPES: dict[str, dict[str, str]] = {
    "string": {"type": "string"}, "boolean": {"type": "boolean"},
    "integer": {"type": "integer"}, "number": {"type": "number"},
    "date": {"type": "string", "format": "date"},
}
# path (relative to the server, e.g. "/collections/measures/items") -> method -> operation
EXTRA_OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {}

_REF = "#/components/"
ITEM_PARAMETERS = ("limit", "offset", "after", "bbox", "bbox-crs", "crs", "datetime", "filter",
                   "filter-lang", "filter-crs", "sortby", "properties")


def _param(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema, **extra}


def _components(crs: list[str]) -> dict[str, Any]:
    crs_schema = {"type": "string", "format": "uri", "enum": crs, "default": crs[0]}
    problem = {"$ref": f"{_REF}schemas/problem"}
    caching = {name: {"$ref": f"{_REF}headers/{name}"}
               for name in ("ETag", "Last-Modified", "Cache-Control")}

    def error(description: str) -> dict[str, Any]:
        return {"description": description,
                "content": {"application/problem+json": {"schema": problem}}}

    return {
        "parameters": {
            "limit": _param("limit", "Features per page; larger values are clamped to the "
                            "server's maximum.", {"type": "integer", "minimum": 1, "default": 100},
                            style="form", explode=False),
            "offset": _param("offset", "Features to skip.", {"type": "integer", "minimum": 0,
                                                             "default": 0}),
            "after": _param("after", "Keyset paging: only features whose id is greater than "
                            "this one (the next links carry it).", {"type": "string"}),
            "bbox": _param("bbox", "minx,miny,maxx,maxy (or with heights minx,miny,minz,maxx,"
                           "maxy,maxz) in bbox-crs; in CRS84 minx > maxx crosses the "
                           "antimeridian.", {"type": "array", "minItems": 4, "maxItems": 6,
                                             "items": {"type": "number"}},
                           style="form", explode=False),
            "bbox-crs": _param("bbox-crs", "CRS of bbox.", crs_schema),
            "crs": _param("crs", "CRS of the returned geometries.", crs_schema),
            "datetime": _param("datetime", "An instant (2020-01-01, 2020-01-01T12:00:00Z) or "
                               "an interval start/end whose ends may be open (..); matches "
                               "features whose temporal property intersects it.",
                               {"type": "string"}),
            "filter": _param("filter", "CQL2 filter over the queryables.", {"type": "string"}),
            "filter-lang": _param("filter-lang", "Language of filter.",
                                  {"type": "string", "enum": ["cql2-text", "cql2-json"],
                                   "default": "cql2-text"}),
            "filter-crs": _param("filter-crs", "CRS of geometries in filter.", crs_schema),
            "sortby": _param("sortby", "Comma-separated queryables, each optionally prefixed "
                             "by + (ascending) or - (descending).",
                             {"type": "array", "items": {"type": "string"}},
                             style="form", explode=False),
            "properties": _param("properties", "Comma-separated properties to return.",
                                 {"type": "array", "items": {"type": "string"}},
                                 style="form", explode=False),
            "featureId": {"name": "featureId", "in": "path", "required": True,
                          "description": "Id of a feature.", "schema": {"type": "string"}},
            **_tile_parameters(),
        },
        "headers": {
            "ETag": {"description": "Weak validator of this answer (If-None-Match → 304).",
                     "schema": {"type": "string"}},
            "Last-Modified": {"description": "When the published data last changed.",
                              "schema": {"type": "string"}},
            "Cache-Control": {"description": "Caching rule (public; revalidate).",
                              "schema": {"type": "string"}},
            "Content-Crs": {"description": "CRS of the geometries, as <URI>.",
                            "schema": {"type": "string"}},
        },
        "schemas": {
            "problem": {"type": "object", "required": ["status", "title", "detail"],
                        "properties": {"type": {"type": "string"}, "status": {"type": "integer"},
                                       "title": {"type": "string"}, "detail": {"type": "string"},
                                       "errors": {"type": "array", "items": {"type": "object"}}}},
            "link": {"type": "object", "required": ["href"],
                     "properties": {"href": {"type": "string"}, "rel": {"type": "string"},
                                    "type": {"type": "string"}, "title": {"type": "string"}}},
            "json": {"type": "object", "properties": {
                "links": {"type": "array", "items": {"$ref": f"{_REF}schemas/link"}}}},
            "featureCollection": {
                "type": "object", "required": ["type", "features"],
                "properties": {
                    "type": {"type": "string", "enum": ["FeatureCollection"]},
                    "features": {"type": "array", "items": {"$ref": f"{_REF}schemas/feature"}},
                    "links": {"type": "array", "items": {"$ref": f"{_REF}schemas/link"}},
                    "timeStamp": {"type": "string", "format": "date-time"},
                    "numberMatched": {"type": "integer", "minimum": 0},
                    "numberReturned": {"type": "integer", "minimum": 0}}},
            "feature": {
                "type": "object", "required": ["type", "geometry", "properties"],
                "properties": {
                    "type": {"type": "string", "enum": ["Feature"]},
                    "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                    "geometry": {"type": "object", "nullable": True},
                    "properties": {"type": "object", "nullable": True},
                    "links": {"type": "array", "items": {"$ref": f"{_REF}schemas/link"}}}},
            "mvt": {"type": "string", "format": "binary"},
        },
        "responses": {
            "NotModified": {"description": "Unchanged since the ETag or date the client sent.",
                            "headers": caching},
            "InvalidParameter": error("A query parameter is malformed or unknown."),
            "NotFound": error("No such collection or feature."),
            "NotAcceptable": error("The Accept header rules out every media type offered."),
            "PreconditionFailed": error("If-Match names a version that is no longer current."),
            "PreconditionRequired": error("A write without If-Match."),
            "ServiceUnavailable": error("The database cannot be reached; retry shortly."),
        },
    }


def _errors(*codes: int) -> dict[str, Any]:
    names = {304: "NotModified", 400: "InvalidParameter", 404: "NotFound", 406: "NotAcceptable",
             412: "PreconditionFailed", 428: "PreconditionRequired", 503: "ServiceUnavailable"}
    return {str(c): {"$ref": f"{_REF}responses/{names[c]}"} for c in codes}


def _get(operation_id: str, summary: str, media: str, schema: str, *,
         parameters: list | None = None, codes: tuple[int, ...] = (304, 406, 503),
         crs_header: bool = False, tags: tuple[str, ...] = ("Capabilities",)) -> dict[str, Any]:
    headers = {name: {"$ref": f"{_REF}headers/{name}"}
               for name in ("ETag", "Last-Modified", "Cache-Control")}
    if crs_header:
        headers["Content-Crs"] = {"$ref": f"{_REF}headers/Content-Crs"}
    ok = {"description": summary, "headers": headers,
          "content": {media: {"schema": {"$ref": f"{_REF}schemas/{schema}"}}}}
    op: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": list(tags),
                          "responses": {"200": ok, **_errors(*codes)}}
    if parameters:
        op["parameters"] = parameters
    return {"get": op}


def _tile_parameters() -> dict[str, Any]:
    from quarters.tiles import TILE_MATRIX_SETS

    def path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "description": description,
                "schema": schema}

    return {
        "tileMatrixSetId": path("tileMatrixSetId", "Tile matrix set (tile grid).",
                                {"type": "string", "enum": list(TILE_MATRIX_SETS)}),
        "tileMatrix": path("tileMatrix", "Zoom level (tile matrix id).",
                           {"type": "integer", "minimum": 0}),
        "tileRow": path("tileRow", "Row of the tile (y), from the top.",
                        {"type": "integer", "minimum": 0}),
        "tileCol": path("tileCol", "Column of the tile (x), from the left.",
                        {"type": "integer", "minimum": 0}),
    }


def _tile_paths(col: Collection) -> dict[str, Any]:
    """OGC API Tiles paths of a collection: tilesets, tileset metadata, TileJSON, tiles."""
    base = f"/collections/{col.id}/tiles"
    tag = (col.id,)
    tms = [{"$ref": f"{_REF}parameters/tileMatrixSetId"}]
    codes = (304, 404, 503)
    return {
        base: _get(f"tilesets-{col.id}", f"Vector tilesets of {col.title}", "application/json",
                   "json", codes=codes, tags=tag),
        f"{base}/{{tileMatrixSetId}}": _get(
            f"tileset-{col.id}", f"Tileset metadata of {col.title}", "application/json", "json",
            parameters=tms, codes=codes, tags=tag),
        f"{base}/{{tileMatrixSetId}}/tilejson.json": _get(
            f"tilejson-{col.id}", f"TileJSON 3.0 of {col.title} (WebMercatorQuad)",
            "application/json", "json", parameters=tms, codes=codes, tags=tag),
        f"{base}/{{tileMatrixSetId}}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}": _get(
            f"tile-{col.id}", f"Mapbox Vector Tile of {col.title} (published data only"
                              + ("; points grouped per screen pixel: one feature with "
                                 "point_count" if has_points(col) else "") + ")",
            "application/vnd.mapbox-vector-tile", "mvt",
            parameters=tms + [{"$ref": f"{_REF}parameters/{n}"}
                              for n in ("tileMatrix", "tileRow", "tileCol")],
            codes=(304, 400, 404, 503), tags=tag),
    }


def _collection_paths(col: Collection) -> dict[str, Any]:
    base = f"/collections/{col.id}"
    tag = (col.id,)
    queryables = [_param(name, q.description or name, dict(JSON_TYPES[q.kind]))
                  for name, q in col.queryables.items()]
    items_params = [{"$ref": f"{_REF}parameters/{name}"} for name in ITEM_PARAMETERS] + queryables
    codes = (304, 400, 404, 406, 503)
    paths = {
        base: _get(f"describe-{col.id}", f"Metadata of {col.title}", "application/json", "json",
                   codes=(304, 404, 406, 503), tags=tag),
        f"{base}/queryables": _get(f"queryables-{col.id}", f"Queryables of {col.title}",
                                   "application/schema+json", "json",
                                   codes=(304, 404, 406, 503), tags=tag),
        f"{base}/items": _get(f"items-{col.id}", f"Features of {col.title}",
                              "application/geo+json", "featureCollection",
                              parameters=items_params, codes=codes, crs_header=True, tags=tag),
        f"{base}/items/{{featureId}}": _get(
            f"item-{col.id}", f"One feature of {col.title}", "application/geo+json", "feature",
            parameters=[{"$ref": f"{_REF}parameters/featureId"},
                        {"$ref": f"{_REF}parameters/crs"}],
            codes=codes, crs_header=True, tags=tag),
    }
    for path, operations in EXTRA_OPERATIONS.items():
        if path in paths:
            paths[path].update(deepcopy(operations))
    return paths


def document(server: str) -> dict[str, Any]:
    """OpenAPI 3.0.3 of the OGC API whose landing page is ``server`` (…/api)."""
    paths: dict[str, Any] = {
        "/": _get("landing-page", "Landing page", "application/json", "json"),
        "/conformance": _get("conformance", "Conformance classes", "application/json", "json"),
        "/collections": _get("collections", "Feature collections", "application/json", "json"),
        PATH.removeprefix("/api"): _get("api-definition", "This API definition",
                                        "application/vnd.oai.openapi+json;version=3.0", "json"),
    }
    paths["/tileMatrixSets"] = _get("tile-matrix-sets", "Tile matrix sets", "application/json",
                                    "json")
    paths["/tileMatrixSets/{tileMatrixSetId}"] = _get(
        "tile-matrix-set", "One tile matrix set (OGC TMS 2.0)", "application/json", "json",
        parameters=[{"$ref": f"{_REF}parameters/tileMatrixSetId"}], codes=(304, 404, 503))
    for col in COLLECTIONS.values():
        paths.update(_collection_paths(col))
        paths.update(_tile_paths(col))
    for path, operations in EXTRA_OPERATIONS.items():
        if path not in paths:
            paths[path] = deepcopy(operations)
    return {
        "openapi": "3.0.3",
        "info": {"title": "quarters – OGC API Features", "version": __version__,
                 "description": "Pilotquartiere, Stadtviertel, Gemeinden und Maßnahmen in Halle "
                                "(Saale) und Gera (OGC API Features Parts 1–3, OGC API Tiles with Mapbox "
                                "Vector Tiles)."},
        "servers": [{"url": server}],
        "tags": [{"name": "Capabilities"}] + [{"name": c.id, "description": c.title}
                                               for c in COLLECTIONS.values()],
        "paths": paths,
        "components": _components(list(CRS_SRIDS)),
    }


def validation_is_400(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents 422 for every operation with parameters; invalid query or path
    parameters are answered 400 here (quarters.api.errors), so operations without a body say so."""
    for operations in schema.get("paths", {}).values():
        for op in operations.values():
            responses = op.get("responses", {}) if isinstance(op, dict) else {}
            if "422" in responses and "requestBody" not in op:
                fallback = {"description": "Invalid query or path parameter",
                            "content": {"application/problem+json": {"schema": {"type": "object"}}}}
                responses.setdefault("400", fallback)
                del responses["422"]
    return schema


def with_collection_paths(schema: dict[str, Any]) -> dict[str, Any]:
    """Add to FastAPI's document one items path per collection with its queryables as query
    parameters (the generic ``/api/collections/{collection_id}/items`` cannot list them)."""
    generic = schema.get("paths", {}).get("/api/collections/{collection_id}/items", {}).get("get")
    if not generic:
        return schema
    for col in COLLECTIONS.values():
        op = deepcopy(generic)
        op["operationId"] = f"items_{col.id.replace('-', '_')}"
        op["summary"] = f"Features of {col.title}"
        op["parameters"] = [p for p in op.get("parameters", []) if p.get("in") != "path"] + [
            _param(name, q.description or name, dict(JSON_TYPES[q.kind]))
            for name, q in col.queryables.items()]
        schema["paths"].setdefault(f"/api/collections/{col.id}/items", {}).setdefault("get", op)
    return schema
