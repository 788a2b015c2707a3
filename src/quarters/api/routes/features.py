"""OGC API – Features endpoints (Part 1 core, Part 2 CRS, Part 3 queryables) for the published
collections, with HTTP caching (ETag/Last-Modified from the data version, 304)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from quarters import cql2, services
from quarters.api import ogc_openapi
from quarters.api.deps import ConnDep, RunnerDep, SettingsDep, version_watch
from quarters.api.ogc_openapi import CRS84, CRS_SRIDS, STORAGE_CRS
from quarters.api.pagecache import PageCache
from quarters.api.responses import GeoJSONResponse, RawJSONResponse
from quarters.collections import COLLECTIONS, Collection
from quarters.errors import InvalidParameter, NotAcceptable, NotFound
from quarters.runner import Runner
from quarters.services import ItemQuery, ascii_digits

router = APIRouter(prefix="/api", tags=["OGC API Features"])

TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/sorting",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/property-selection",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    # OGC API – Tiles (quarters.api.routes.tiles)
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]
# Part 3: filter, filter-lang, filter-crs, sortby and properties (see _part3)
PART3_PARAMS = {"filter", "filter-lang", "filter-crs", "sortby", "properties"}
PAGING_PARAMS = {"limit", "offset", "after", "bbox", "bbox-crs", "crs", "datetime", "f",
                 "view", "lang"} | PART3_PARAMS  # lang: the language of problems (messages.py)
JSON = "application/json"
GEOJSON = "application/geo+json"
SCHEMA_JSON = "application/schema+json"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """What an OGC route really answers besides 200 (for FastAPI's document)."""
    text = {304: "Not modified (If-None-Match / If-Modified-Since)",
            400: "Invalid or unknown query parameter", 404: "No such collection or feature",
            406: "None of the offered media types is acceptable",
            503: "Database unavailable, retry shortly"}
    problem = {"application/problem+json": {"schema": {"type": "object"}}}
    return {c: {"description": text[c], **({"content": problem} if c != 304 else {})}
            for c in codes}


META = _responses(304, 406, 503)
ONE = _responses(304, 404, 406, 503)
READ = _responses(304, 400, 404, 406, 503)


def base_url(request: Request) -> str:
    """The app's address as the client used it, without a trailing slash."""
    return str(request.base_url).rstrip("/")


def collection_or_404(collection_id: str) -> Collection:
    """The published collection of that id, or NotFound (404)."""
    try:
        return COLLECTIONS[collection_id]
    except KeyError:
        raise NotFound(code="ogc.no_collection", params={"id": collection_id}) from None


# -- HTTP caching and content negotiation -----------------------------------------------------
def _validators(request: Request, conn, settings) -> dict[str, str]:  # noqa: ANN001
    """ETag, Last-Modified and Cache-Control of a read, from the data version (read first,
    so an answer is never tagged newer than the data it was built from)."""
    return _tags(request, settings, *services.data_version(conn))


def _tags(request: Request, settings, version: int, changed: datetime) -> dict[str, str]:  # noqa: ANN001
    query = tuple(sorted(request.query_params.multi_items()))
    return dict(_tag_values(version, changed, base_url(request), request.url.path, query,
                            settings.cache_max_age))


@lru_cache(maxsize=4096)
def _tag_values(version: int, changed: datetime, base: str, path: str,
                query: tuple[tuple[str, str], ...], max_age: int) -> tuple[tuple[str, str], ...]:
    """ETag, Last-Modified and Cache-Control of one URL at one version (kept: a repeated
    read computes no hash or date again)."""
    key = hashlib.sha256(orjson.dumps([version, base, path, list(query)])).hexdigest()[:24]
    cache = f"public, max-age={max_age}" if max_age else "public, no-cache"
    return (("ETag", f'W/"{key}"'),
            ("Last-Modified", format_datetime(changed.astimezone(UTC), usegmt=True)),
            ("Cache-Control", cache))


def _not_modified(request: Request, headers: dict[str, str]) -> Response | None:
    """304 when If-None-Match names the current ETag (or, without it, If-Modified-Since is
    not older than the last change); None to answer in full."""
    none_match = request.headers.get("if-none-match")
    if none_match is not None:
        current = headers["ETag"].removeprefix("W/")
        tags = [t.strip().removeprefix("W/") for t in none_match.split(",")]
        hit = "*" in tags or current in tags
    else:
        since = request.headers.get("if-modified-since")
        try:
            moment = parsedate_to_datetime(since) if since else None
        except (TypeError, ValueError):
            moment = None
        changed = parsedate_to_datetime(headers["Last-Modified"])
        hit = moment is not None and moment.tzinfo is not None and changed <= moment
    return Response(status_code=304, headers=headers) if hit else None


def _accepts(request: Request, *offered: str) -> None:
    """406 when the Accept header rules out every media type this resource has."""
    accept = request.headers.get("accept")
    if not accept:
        return
    for item in accept.split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        kind = kind.lower()
        if kind in ("*/*", "application/*") or kind in offered:
            return
    raise NotAcceptable(code="ogc.not_acceptable",
                        params={"offered": ", ".join(offered), "accept": accept[:200]})


def _cached(request: Request, conn, settings, build, response_class=RawJSONResponse,  # noqa: ANN001
            offered: tuple[str, ...] = (JSON,), extra: dict[str, str] | None = None) -> Response:
    """Answer 304 or the body ``build()`` makes, with the caching headers."""
    _accepts(request, *offered)
    headers = _validators(request, conn, settings)
    headers.update(extra or {})
    return _not_modified(request, headers) or response_class(build(), headers=headers)


async def _cached_async(request: Request, runner: Runner, settings, build,  # noqa: ANN001
                        extra: dict[str, str]) -> Response:
    """``_cached`` for the async read path: the same checks, headers and 304.

    The data version comes first (known in memory, quarters.api.dataversion, else read with
    one small statement): a conditional request of the current version gets its 304, a body
    built before at this version and URL comes from the page cache (``pagecache``), anything
    else is built by ``build()``, which returns the body and the version of the snapshot it
    was read in.
    """
    _accepts(request, GEOJSON, JSON)
    watch = version_watch(request.app)
    version, changed = await (watch.current(runner) if watch is not None
                              else runner.first((services.DATA_VERSION_SQL, {})))
    headers = _tags(request, settings, version, changed)
    headers.update(extra)
    conditional = "if-none-match" in request.headers or "if-modified-since" in request.headers
    if conditional and (hit := _not_modified(request, headers)) is not None:
        return hit
    pages, url = _page_cache(request, settings), str(request.url)
    body = pages.get((version, changed), url)
    if body is None:
        body, built, built_changed = await build()
        if (built, built_changed) == (version, changed):
            pages.put((version, changed), url, body)
        else:  # a write came in between: tag the body with its own snapshot
            if watch is not None:
                watch.learn(built, built_changed)
            headers = _tags(request, settings, built, built_changed)
            headers.update(extra)
    return GeoJSONResponse(body, headers=headers)


def _page_cache(request: Request, settings) -> PageCache:  # noqa: ANN001
    state = request.app.state
    if not hasattr(state, "page_cache"):
        state.page_cache = PageCache(settings.page_cache_bytes)
    return state.page_cache


def _json(obj: Any) -> bytes:
    return orjson.dumps(obj)


# -- landing page, conformance, API definition ------------------------------------------------
def _landing_doc(request: Request) -> dict:
    base = base_url(request)
    return {
        "title": "quarters – Quartiere und Maßnahmen in Halle (Saale) und Gera",
        "description": "Pilotquartiere, Stadtviertel und Gemeinden als OGC API Features",
        "links": [
            {"href": f"{base}/api", "rel": "self", "type": JSON, "title": "Landing page"},
            {"href": f"{base}{ogc_openapi.PATH}", "rel": "service-desc", "type": OPENAPI_JSON,
             "title": "OpenAPI 3.0 definition of the OGC API"},
            {"href": f"{base}/api/docs", "rel": "service-doc", "type": "text/html",
             "title": "API documentation"},
            {"href": f"{base}/api/conformance", "rel": "conformance", "type": JSON,
             "title": "Conformance"},
            {"href": f"{base}/api/collections", "rel": "data", "type": JSON,
             "title": "Collections"},
        ],
    }


@router.get("", summary="Landing page", responses=META)
@router.get("/", summary="Landing page (with trailing slash)", include_in_schema=False)
def landing(request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """OGC API landing page (also at ``/api/``, as OWSLib asks for it)."""
    return _cached(request, conn, settings, lambda: _json(_landing_doc(request)))


@router.get("/conformance", summary="Conformance classes", responses=META)
def conformance(request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """Conformance classes this server implements."""
    return _cached(request, conn, settings, lambda: _json({"conformsTo": CONFORMANCE}))


class OpenAPIResponse(RawJSONResponse):
    """OpenAPI 3.0 JSON."""

    media_type = OPENAPI_JSON


@router.get(ogc_openapi.PATH.removeprefix("/api"), summary="OpenAPI 3.0 definition of the OGC API",
            response_class=OpenAPIResponse, responses=META)
def ogc_api_definition(request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """The OGC API as OpenAPI 3.0, generated from the collections (the landing page's
    service-desc); every items path lists its parameters and queryables."""
    return _cached(request, conn, settings,
                   lambda: _json(ogc_openapi.document(f"{base_url(request)}/api")),
                   OpenAPIResponse, (OPENAPI_JSON, JSON, "application/vnd.oai.openapi+json"))


# -- collections ------------------------------------------------------------------------------
def cached_extent(request: Request, conn, col: Collection) -> dict:  # noqa: ANN001
    """The collection's extents, kept per data version (a temporal extent scans the table)."""
    version, _ = services.data_version(conn)
    cache = request.app.state.__dict__.setdefault("extent_cache", {})
    key = (version, col.id)
    if key not in cache:
        if len(cache) > 4 * len(COLLECTIONS):
            cache.clear()
        cache[key] = services.extent(conn, col)
    return cache[key]


def _collection_doc(base: str, col: Collection, extent: dict) -> dict:
    doc: dict[str, Any] = {
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
             "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "type": SCHEMA_JSON},
            # GDAL takes the fields from here (an empty collection has no first page to read)
            {"href": f"{base}/api/collections/{col.id}/schema", "rel": "describedBy",
             "type": SCHEMA_JSON, "title": "JSON Schema of the features"},
        ],
    }
    spatial_temporal: dict[str, Any] = {}
    if extent["bbox"]:
        spatial_temporal["spatial"] = {"bbox": [extent["bbox"]], "crs": CRS84}
    if extent["interval"]:
        spatial_temporal["temporal"] = {"interval": [extent["interval"]], "trs": TRS}
    if spatial_temporal:
        doc["extent"] = spatial_temporal
    return doc


@router.get("/collections", summary="Feature collections", responses=META)
def collections(request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """All published collections with their spatial and temporal extents."""
    base = base_url(request)

    def build() -> bytes:
        return _json({
            "links": [{"href": f"{base}/api/collections", "rel": "self", "type": JSON}],
            "collections": [_collection_doc(base, c, cached_extent(request, conn, c))
                            for c in COLLECTIONS.values()],
        })

    return _cached(request, conn, settings, build)


@router.get("/collections/{collection_id}", summary="One collection", responses=ONE)
def collection(collection_id: str, request: Request, conn: ConnDep,
               settings: SettingsDep) -> Response:
    """Metadata of one collection."""
    col = collection_or_404(collection_id)
    return _cached(request, conn, settings, lambda: _json(
        _collection_doc(base_url(request), col, cached_extent(request, conn, col))))


def queryables_schema(col: Collection, schema_id: str) -> dict:
    """JSON Schema (2020-12) of what items of a collection can be filtered by; the geometry
    is named ``geometry``."""
    props: dict[str, Any] = {
        "geometry": {"title": "Geometrie", "x-ogc-role": "primary-geometry",
                     "format": f"geometry-{col.geometry_type.lower()}"
                     if col.geometry_type != "Geometry" else "geometry-any"},
    }
    for name, q in col.queryables.items():
        props[name] = {"title": q.description or name, **ogc_openapi.JSON_TYPES[q.kind]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "type": "object",
        "title": col.title,
        "properties": props,
        "additionalProperties": False,
    }


class SchemaResponse(RawJSONResponse):
    """JSON Schema."""

    media_type = SCHEMA_JSON


@router.get("/collections/{collection_id}/queryables", summary="Queryable properties",
            response_class=SchemaResponse, responses=ONE)
def queryables(collection_id: str, request: Request, conn: ConnDep,
               settings: SettingsDep) -> Response:
    """JSON Schema of the properties that items can be filtered by."""
    col = collection_or_404(collection_id)
    schema_id = f"{base_url(request)}/api/collections/{col.id}/queryables"
    return _cached(request, conn, settings, lambda: _json(queryables_schema(col, schema_id)),
                   SchemaResponse, (SCHEMA_JSON, JSON))


def feature_schema(col: Collection, properties: dict[str, dict], schema_id: str) -> dict:
    """JSON Schema (2020-12) of a GeoJSON feature of the collection, every property typed.

    A property called ``id`` (the feature's id repeated) is left out: GDAL would make a
    second ``id`` field of it and fill neither.
    """
    properties = {k: v for k, v in properties.items() if k != "id"}
    geometry = col.geometry_type
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": col.title,
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": JSON_ID[col.id_kind],
            "geometry": ({"$ref": f"https://geojson.org/schema/{geometry}.json"}
                         if geometry != "Geometry" else {"$ref": "https://geojson.org/schema/Geometry.json"}),
            "properties": {"type": "object", "properties": properties},
        },
    }


JSON_ID = {"integer": {"type": "integer"}, "string": {"type": "string"}}


@router.get("/collections/{collection_id}/schema", summary="JSON Schema of the features",
            response_class=SchemaResponse, responses=ONE)
def schema(collection_id: str, request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """JSON Schema of the collection's features (the ``describedBy`` link)."""
    col = collection_or_404(collection_id)
    schema_id = f"{base_url(request)}/api/collections/{col.id}/schema"
    return _cached(request, conn, settings, lambda: _json(
        feature_schema(col, services.property_schemas(conn, col), schema_id)),
        SchemaResponse, (SCHEMA_JSON, JSON))


# -- items ------------------------------------------------------------------------------------
def _item_query(col: Collection, request: Request, settings) -> ItemQuery:  # noqa: ANN001
    params = request.query_params
    unknown = sorted(set(params) - PAGING_PARAMS - set(col.queryables))
    if unknown:
        allowed = ", ".join(sorted(PAGING_PARAMS | set(col.queryables)))
        raise InvalidParameter(code="ogc.unknown_parameters",
                               params={"names": ", ".join(unknown), "allowed": allowed})
    srid, bbox_srid = _srid(params, "crs"), _srid(params, "bbox-crs")
    limit = _int_param(params.get("limit"), "limit", settings.default_limit)
    offset = _int_param(params.get("offset"), "offset", 0)
    if limit < 1 or offset < 0:
        raise InvalidParameter(code="ogc.limit_offset")
    bbox = services.parse_bbox(params["bbox"], bbox_srid) if "bbox" in params else None
    span = services.parse_datetime(params["datetime"]) if "datetime" in params else None
    after = None
    if "after" in params and "sortby" in params:
        raise InvalidParameter(code="ogc.after_with_sortby", pointer="after")
    if "after" in params:
        after = _int_param(params["after"], "after", 0) if col.id_kind == "integer" else params["after"]
    filters = tuple(
        (name, _typed(col.queryables[name].kind, name, params[name]))
        for name in sorted(col.queryables) if name in params
    )
    return ItemQuery(min(limit, settings.max_limit), offset, bbox, filters, srid, bbox_srid,
                     span, after, **_part3(col, params))


def _part3(col: Collection, params) -> dict[str, Any]:  # noqa: ANN001
    """``filter``/``filter-lang``/``filter-crs``, ``sortby`` and ``properties`` as the
    ItemQuery fields ``where``, ``where_params``, ``order_by`` and ``properties`` (quarters.cql2:
    names from the queryables, values only as bound parameters)."""
    fields = cql2_fields(col)
    out: dict[str, Any] = {}
    if "filter" in params:
        compiled = cql2.compile_filter(params["filter"], params.get("filter-lang"), fields,
                                       params.get("filter-crs"))
        out.update(where=compiled.sql, where_params=compiled.params)
    elif "filter-lang" in params or "filter-crs" in params:
        raise InvalidParameter(code="ogc.filter_options_alone")
    if "sortby" in params:
        sortable = {n: f for n, f in fields.items() if f.type != "geometry"}
        out["order_by"] = tuple(cql2.parse_sortby(params["sortby"], sortable))
    if "properties" in params:
        allowed = {n: cql2.Field(f"t.{n}") for n in col.properties}
        out["properties"] = tuple(cql2.parse_properties(params["properties"], allowed))
    return out


def cql2_fields(col: Collection) -> dict[str, cql2.Field]:
    """The names a CQL2 filter may use on a collection: its scalar queryables and
    ``geometry`` (array-valued queryables such as ``quarter`` only as ``?quarter=``)."""
    fields = {name: cql2.Field(q.column, q.kind) for name, q in col.queryables.items() if not q.sql}
    fields["geometry"] = cql2.Field(col.geometry, "geometry")
    return fields


def _srid(params, name: str) -> int:  # noqa: ANN001
    raw = params.get(name, CRS84).strip("<>")
    if raw not in CRS_SRIDS:
        raise InvalidParameter(code="ogc.crs", pointer=name, params={
            "name": name, "value": raw[:100], "allowed": ", ".join(CRS_SRIDS)})
    return CRS_SRIDS[raw]


def _crs_header(srid: int) -> dict[str, str]:
    uri = next(u for u, s in CRS_SRIDS.items() if s == srid)
    return {"Content-Crs": f"<{uri}>"}


def _int_param(raw: str | None, name: str, default: int) -> int:
    """An integer of ASCII digits with an optional leading minus ('²', '--5', '+5' are not)."""
    if raw is None:
        return default
    digits = raw[1:] if raw.startswith("-") else raw
    if not ascii_digits(digits) or len(raw) > 12:
        raise InvalidParameter(code="param.not_integer", pointer=name,
                               params={"name": name, "value": raw[:40]})
    return int(raw)


def _typed(kind: str, name: str, raw: str) -> object:
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise InvalidParameter(code="param.not_boolean", pointer=name,
                                   params={"name": name, "value": raw[:40]})
        return raw.lower() == "true"
    if kind == "integer":
        return _int_param(raw, name, 0)
    if kind == "number":
        try:
            value = float(raw) if raw.isascii() else None
        except ValueError:
            value = None
        if value is None or value != value or value in (float("inf"), float("-inf")):
            raise InvalidParameter(code="param.not_number", pointer=name,
                                   params={"name": name, "value": raw[:40]})
        return value
    if kind == "date":
        try:
            if len(raw) != 10 or not raw.isascii():
                raise ValueError
            return date.fromisoformat(raw)
        except ValueError:
            raise InvalidParameter(code="param.not_date", pointer=name,
                                   params={"name": name, "value": raw[:40]}) from None
    return raw


LimitQ = Annotated[int | None, Query(ge=1, description="features per page (clamped to the maximum)")]
OffsetQ = Annotated[int | None, Query(ge=0, description="features to skip")]
TextQ = Annotated[str | None, Query()]


@router.get("/collections/{collection_id}/items", summary="Features of a collection",
            response_class=GeoJSONResponse, responses=READ)
async def items(collection_id: str, request: Request, runner: RunnerDep, settings: SettingsDep,
                limit: LimitQ = None, offset: OffsetQ = None,
                after: Annotated[str | None, Query(description="keyset paging: id of the last "
                                                   "feature of the previous page")] = None,
                bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy or 6 numbers "
                                                  "with heights; minx > maxx crosses the "
                                                  "antimeridian")] = None,
                bbox_crs: Annotated[str | None, Query(alias="bbox-crs")] = None,
                crs: TextQ = None,
                datetime_: Annotated[str | None, Query(alias="datetime", description="instant or "
                                                       "interval (open ends: ..)")] = None,
                filter_: Annotated[str | None, Query(alias="filter")] = None,
                filter_lang: Annotated[str | None, Query(alias="filter-lang")] = None,
                filter_crs: Annotated[str | None, Query(alias="filter-crs")] = None,
                sortby: TextQ = None, properties: TextQ = None) -> Response:
    """A page of features as a GeoJSON FeatureCollection (CRS84), with paging links.

    The collection's queryables are further query parameters (``?name=value``, listed in the
    OGC API definition at /api/ogc/openapi.json and at /collections/{id}/queryables).
    """
    col = collection_or_404(collection_id)
    query = _item_query(col, request, settings)

    async def build() -> tuple[bytes, int, datetime]:
        counts = _count_cache(request)
        key = services.count_key(col, query)
        known = counts.get(key)
        skewed = services.selective(query)
        row = await runner.first(services.items_page_sql(
            col, query, None if known is None else known[2]), plan_each_time=skewed)
        if known is not None and (row[4], row[5]) != known[:2]:
            # the data changed since that count: this snapshot counts for itself
            row = await runner.first(services.items_page_sql(col, query), plan_each_time=skewed)
        if known is None or (row[4], row[5]) != known[:2]:
            counts.put(key, (row[4], row[5], row[2]))
        return _page_doc(request, query, *row[:4]), row[4], row[5]

    return await _cached_async(request, runner, settings, build, _crs_header(query.srid))


class CountCache:
    """numberMatched per filter, valid for one data version.

    A value is ``(version, changed_at, count)`` as read in the snapshot that counted; a page
    statement returns the version of its own snapshot, and a value whose version differs
    from it is counted again (``changed_at`` tells apart two writes that rolled back to the
    same number). Bounded: the oldest entries go first.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self.entries: dict[tuple, tuple[int, datetime, int]] = {}

    def get(self, key: tuple) -> tuple[int, datetime, int] | None:
        """The entry of a filter (None: not counted yet)."""
        return self.entries.get(key)

    def put(self, key: tuple, value: tuple[int, datetime, int]) -> None:
        """Keep a count (the oldest entry makes room when full)."""
        self.entries.pop(key, None)
        if len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = value


def _count_cache(request: Request) -> CountCache:
    state = request.app.state
    if not hasattr(state, "count_cache"):
        state.count_cache = CountCache()
    return state.count_cache


def page_body(request: Request, conn, col: Collection, query: ItemQuery) -> bytes:  # noqa: ANN001
    """A FeatureCollection page: features built in the database, paging links added here."""
    return _page_doc(request, query, *services.items_page(conn, col, query))


def _page_doc(request: Request, query: ItemQuery, features: str, returned: int, matched: int,
              last: Any) -> bytes:
    links = _page_links(request, query, returned, matched, last)
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    head = orjson.dumps({"type": "FeatureCollection", "timeStamp": stamp,
                         "numberMatched": matched, "numberReturned": returned, "links": links})
    return head[:-1] + b',"features":' + features.encode() + b"}"


def _page_links(request: Request, query: ItemQuery, returned: int, matched: int,
                last: Any = None) -> list[dict]:
    """self/next/prev/collection. ``next`` carries the last id as ``after`` (keyset) when
    the page is in id order, so following it does not skip rows; ``offset`` stays for
    clients that count."""
    url = f"{base_url(request)}{request.url.path}"
    params = {k: v for k, v in request.query_params.items() if k != "after"}
    params["limit"] = str(query.limit)

    def href(offset: int, after: Any = None) -> str:
        extra = {"after": str(after)} if after is not None else {}
        return url + "?" + urlencode({**params, "offset": str(offset), **extra})

    links = [{"href": href(query.offset, query.after), "rel": "self", "type": GEOJSON}]
    if query.offset + returned < matched and returned:
        keyset = last if not query.order_by else None
        links.append({"href": href(query.offset + query.limit, keyset), "rel": "next",
                      "type": GEOJSON})
    if query.offset > 0:
        links.append({"href": href(max(0, query.offset - query.limit)), "rel": "prev",
                      "type": GEOJSON})
    links.append({"href": url.rsplit("/items", 1)[0], "rel": "collection", "type": JSON})
    return links


@router.get("/collections/{collection_id}/items/{item_id}", summary="One feature",
            response_class=GeoJSONResponse, responses=READ)
async def feature(collection_id: str, item_id: str, request: Request, runner: RunnerDep,
                  settings: SettingsDep, crs: TextQ = None) -> Response:
    """One feature as GeoJSON."""
    col = collection_or_404(collection_id)
    unknown = sorted(set(request.query_params) - {"crs", "f", "lang"})
    if unknown:
        raise InvalidParameter(code="ogc.unknown_parameters",
                               params={"names": ", ".join(unknown), "allowed": "crs, f"})
    return await feature_response(request, runner, settings, col, item_id,
                                  _srid(request.query_params, "crs"))


async def feature_response(request: Request, runner: Runner, settings, col: Collection,  # noqa: ANN001
                           item_id: str, srid: int) -> Response:
    """The answer of one feature (200, 304; NotFound, NotAcceptable raised): the route's, and
    the lean path's in front of the routes (quarters.api.fastread)."""
    base = base_url(request)
    links = [
        {"href": f"{base}/api/collections/{col.id}/items/{item_id}", "rel": "self",
         "type": GEOJSON},
        {"href": f"{base}/api/collections/{col.id}", "rel": "collection", "type": JSON},
    ]

    async def build() -> tuple[bytes, int, datetime]:
        row = await runner.first(services.item_sql(col, item_id, srid))
        if row is None:
            raise NotFound(code="ogc.no_feature", params={"collection": col.id,
                                                          "id": str(item_id)[:80]})
        body = (row[0][:-1] + ',"links":' + orjson.dumps(links).decode() + "}").encode()
        return body, row[1], row[2]

    return await _cached_async(request, runner, settings, build, _crs_header(srid))
