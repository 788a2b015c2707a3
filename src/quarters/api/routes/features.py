"""OGC API – Features Part 1 endpoints for the published collections."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request

from quarters import services
from quarters.api.deps import ConnDep, SettingsDep
from quarters.api.responses import GeoJSONResponse
from quarters.collections import COLLECTIONS, Collection
from quarters.errors import InvalidParameter, NotFound
from quarters.services import ItemQuery
from quarters.settings import STORAGE_SRID

router = APIRouter(prefix="/api", tags=["OGC API Features"])

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
STORAGE_CRS = f"http://www.opengis.net/def/crs/EPSG/0/{STORAGE_SRID}"
CRS_SRIDS = {CRS84: 4326, STORAGE_CRS: STORAGE_SRID}
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]
PAGING_PARAMS = {"limit", "offset", "bbox", "bbox-crs", "crs", "f", "view"}
JSON = "application/json"
GEOJSON = "application/geo+json"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _collection(collection_id: str) -> Collection:
    try:
        return COLLECTIONS[collection_id]
    except KeyError:
        raise NotFound(f"no collection '{collection_id}'") from None


@router.get("", summary="Landing page")
def landing(request: Request) -> dict:
    """OGC API landing page."""
    base = _base(request)
    return {
        "title": "quarters – Quartiere und Maßnahmen in Halle (Saale) und Gera",
        "description": "Pilotquartiere, Stadtviertel und Gemeinden als OGC API Features",
        "links": [
            {"href": f"{base}/api", "rel": "self", "type": JSON, "title": "Landing page"},
            {"href": f"{base}/api/openapi.json", "rel": "service-desc",
             "type": "application/vnd.oai.openapi+json;version=3.0", "title": "OpenAPI"},
            {"href": f"{base}/api/docs", "rel": "service-doc", "type": "text/html",
             "title": "API documentation"},
            {"href": f"{base}/api/conformance", "rel": "conformance", "type": JSON,
             "title": "Conformance"},
            {"href": f"{base}/api/collections", "rel": "data", "type": JSON,
             "title": "Collections"},
        ],
    }


@router.get("/conformance", summary="Conformance classes")
def conformance() -> dict:
    """Conformance classes this server implements."""
    return {"conformsTo": CONFORMANCE}


def _collection_doc(base: str, col: Collection, bbox: list[float] | None) -> dict:
    doc = {
        "id": col.id,
        "title": col.title,
        "description": col.description,
        "itemType": "feature",
        "crs": list(CRS_SRIDS),
        "storageCrs": STORAGE_CRS,
        "links": [
            {"href": f"{base}/api/collections/{col.id}", "rel": "self", "type": JSON},
            {"href": f"{base}/api/collections/{col.id}/items", "rel": "items", "type": GEOJSON},
            {"href": f"{base}/api/collections/{col.id}/queryables",
             "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "type": "application/schema+json"},
        ],
    }
    if bbox:
        doc["extent"] = {"spatial": {"bbox": [bbox], "crs": CRS84}}
    return doc


@router.get("/collections", summary="Feature collections")
def collections(request: Request, conn: ConnDep) -> dict:
    """All published collections with their extents."""
    base = _base(request)
    return {
        "links": [{"href": f"{base}/api/collections", "rel": "self", "type": JSON}],
        "collections": [
            _collection_doc(base, c, services.extent(conn, c)) for c in COLLECTIONS.values()
        ],
    }


@router.get("/collections/{collection_id}", summary="One collection")
def collection(collection_id: str, request: Request, conn: ConnDep) -> dict:
    """Metadata of one collection."""
    col = _collection(collection_id)
    return _collection_doc(_base(request), col, services.extent(conn, col))


@router.get("/collections/{collection_id}/queryables", summary="Queryable properties")
def queryables(collection_id: str, request: Request) -> dict:
    """JSON Schema of the properties that items can be filtered by."""
    col = _collection(collection_id)
    kinds = {"boolean": "boolean", "integer": "integer", "string": "string"}
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{_base(request)}/api/collections/{col.id}/queryables",
        "type": "object",
        "title": col.title,
        "properties": {
            name: {"type": kinds[q.kind], "description": q.description}
            for name, q in col.queryables.items()
        },
    }


def _item_query(col: Collection, request: Request, settings) -> ItemQuery:  # noqa: ANN001
    params = request.query_params
    unknown = sorted(set(params) - PAGING_PARAMS - set(col.queryables))
    if unknown:
        allowed = ", ".join(sorted(PAGING_PARAMS | set(col.queryables)))
        raise InvalidParameter(f"unknown query parameter(s) {', '.join(unknown)}; allowed: {allowed}")
    srid, bbox_srid = _srid(params, "crs"), _srid(params, "bbox-crs")
    limit = _int_param(params.get("limit"), "limit", settings.default_limit)
    offset = _int_param(params.get("offset"), "offset", 0)
    if limit < 1 or offset < 0:
        raise InvalidParameter("limit must be at least 1 and offset not negative")
    bbox = services.parse_bbox(params["bbox"], bbox_srid) if "bbox" in params else None
    filters = tuple(
        (name, _typed(col.queryables[name].kind, name, params[name]))
        for name in sorted(col.queryables) if name in params
    )
    return ItemQuery(min(limit, settings.max_limit), offset, bbox, filters, srid, bbox_srid)


def _srid(params, name: str) -> int:  # noqa: ANN001
    raw = params.get(name, CRS84).strip("<>")
    if raw not in CRS_SRIDS:
        raise InvalidParameter(f"{name}: '{raw}' is not supported; use one of {', '.join(CRS_SRIDS)}")
    return CRS_SRIDS[raw]


def _crs_header(srid: int) -> dict[str, str]:
    uri = next(u for u, s in CRS_SRIDS.items() if s == srid)
    return {"Content-Crs": f"<{uri}>"}


def _int_param(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    if not raw.lstrip("-").isdigit() or len(raw) > 12:
        raise InvalidParameter(f"{name}: '{raw}' is not an integer")
    return int(raw)


def _typed(kind: str, name: str, raw: str) -> object:
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise InvalidParameter(f"{name}: expected true or false, got '{raw}'")
        return raw.lower() == "true"
    if kind == "integer":
        return _int_param(raw, name, 0)
    return raw


@router.get("/collections/{collection_id}/items", summary="Features of a collection",
            response_class=GeoJSONResponse)
def items(collection_id: str, request: Request, conn: ConnDep,
          settings: SettingsDep) -> GeoJSONResponse:
    """A page of features as a GeoJSON FeatureCollection (CRS84), with paging links."""
    col = _collection(collection_id)
    query = _item_query(col, request, settings)
    return GeoJSONResponse(page_body(request, conn, col, query), headers=_crs_header(query.srid))


def page_body(request: Request, conn, col: Collection, query: ItemQuery) -> bytes:  # noqa: ANN001
    """A FeatureCollection page: features built in the database, paging links added here."""
    features, returned, matched = services.items_page(conn, col, query)
    links = _page_links(request, query, returned, matched)
    head = orjson.dumps({"type": "FeatureCollection", "numberMatched": matched,
                         "numberReturned": returned, "links": links})
    return head[:-1] + b',"features":' + features.encode() + b"}"


def _page_links(request: Request, query: ItemQuery, returned: int, matched: int) -> list[dict]:
    url = f"{_base(request)}{request.url.path}"
    params = dict(request.query_params)
    params["limit"] = str(query.limit)

    def href(offset: int) -> str:
        return url + "?" + urlencode({**params, "offset": str(offset)})

    links = [{"href": href(query.offset), "rel": "self", "type": GEOJSON}]
    if query.offset + returned < matched:
        links.append({"href": href(query.offset + query.limit), "rel": "next", "type": GEOJSON})
    if query.offset > 0:
        links.append({"href": href(max(0, query.offset - query.limit)), "rel": "prev",
                      "type": GEOJSON})
    links.append({"href": url.rsplit("/items", 1)[0], "rel": "collection", "type": JSON})
    return links


@router.get("/collections/{collection_id}/items/{item_id}", summary="One feature",
            response_class=GeoJSONResponse)
def feature(collection_id: str, item_id: str, request: Request, conn: ConnDep) -> GeoJSONResponse:
    """One feature as GeoJSON."""
    col = _collection(collection_id)
    base = _base(request)
    links = [
        {"href": f"{base}/api/collections/{col.id}/items/{item_id}", "rel": "self",
         "type": GEOJSON},
        {"href": f"{base}/api/collections/{col.id}", "rel": "collection", "type": JSON},
    ]
    unknown = sorted(set(request.query_params) - {"crs", "f"})
    if unknown:
        raise InvalidParameter(f"unknown query parameter(s) {', '.join(unknown)}; allowed: crs, f")
    srid = _srid(request.query_params, "crs")
    body = services.item(conn, col, item_id, srid)
    return GeoJSONResponse(body[:-1] + ',"links":' + orjson.dumps(links).decode() + "}",
                           headers=_crs_header(srid))
