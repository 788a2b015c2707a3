"""Measures (Maßnahmen): public reads through the published-only view, staff writes with ETags."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from types import SimpleNamespace
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import text
from starlette.datastructures import QueryParams

from quarters import clusters, measures, transfer_profile
from quarters.api.deps import (
    AdminDep,
    BodyDep,
    ConnDep,
    PlannerDep,
    SettingsDep,
    UserDep,
    VersionDep,
)
from quarters.api.openapi import json_body, model_schema
from quarters.api.responses import GeoJSONResponse, RawJSONResponse
from quarters.api.routes.features import _item_query, page_body
from quarters.collections import MEASURES_POINTS, MEASURES_PUBLIC, MEASURES_STAFF
from quarters.errors import InvalidInput, item
from quarters.geometry import GeometryProblem, parse_geojson
from quarters.measures import Actor, etag
from quarters.schemas import DistrictCode, MeasureFeature, MeasurePatch, MeasureProperties
from quarters.services import _where
from quarters.validation import AsciiInt, pydantic_items

router = APIRouter(prefix="/api/measures", tags=["measures"])

MeasureId = Annotated[AsciiInt, Path(ge=1, le=2_147_483_647)]
FEATURE_BODY = json_body(model_schema(MeasureFeature), "application/json", "application/geo+json")
PATCH_BODY = json_body(model_schema(MeasurePatch), "application/json",
                       "application/merge-patch+json")
GEOJSON_OK = {200: {"content": {"application/geo+json": {"schema": {"type": "object"}}}}}
Text = Annotated[str | None, Query(max_length=200)]


def item_filters(
    limit: Annotated[AsciiInt | None, Query(ge=1, le=1_000_000, description="page size")] = None,
    offset: Annotated[AsciiInt | None, Query(ge=0, le=1_000_000_000)] = None,
    bbox: Annotated[str | None, Query(max_length=200, description="minx,miny,maxx,maxy")] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
    crs: Annotated[str | None, Query(max_length=200, description="output CRS (URI)")] = None,
    f: Annotated[str | None, Query(max_length=20)] = None,
    view: Annotated[Literal["public"] | None, Query(
        description="staff: see the public view (published only)")] = None,
    city_ags: Text = None, action_field: Text = None, status: Text = None,
    quarter: Text = None, edition: Text = None,
    district: Annotated[AsciiInt | None, Query(ge=1, le=2_147_483_647)] = None,
    parent_id: Annotated[AsciiInt | None, Query(ge=1, le=2_147_483_647)] = None,
    origin_id: Annotated[AsciiInt | None, Query(ge=1, le=2_147_483_647)] = None,
    q: Annotated[str | None, Query(max_length=200, description="text search")] = None,
) -> None:
    """The query parameters of the measure lists, declared (and type-checked) for OpenAPI; the
    list itself reads them through the OGC item query, which also refuses unknown ones."""


FiltersDep = Depends(item_filters)


def _sees_drafts(user, request: Request | None = None) -> bool:  # noqa: ANN001
    """Planners and admins see drafts, unless a page asks for the public view (?view=public)."""
    if user is None or not user.can("planner"):
        return False
    return request is None or request.query_params.get("view") != "public"


def _relation(user, include_deleted: bool = False) -> str:  # noqa: ANN001
    if not _sees_drafts(user):
        return measures.PUBLIC
    if include_deleted and user.role == "admin":
        return measures.ALL
    return measures.STAFF


def _invalid(exc: ValidationError, prefix: str = "") -> InvalidInput:
    errors = pydantic_items(exc.errors(), prefix)
    if len(errors) == 1:
        return InvalidInput(code=errors[0]["code"], params=errors[0]["params"],
                            pointer=errors[0]["pointer"], errors=errors)
    return InvalidInput(code="measure.invalid", errors=errors)


def _geometry(obj: Any):  # noqa: ANN202
    try:
        return parse_geojson(obj)
    except GeometryProblem as exc:
        raise InvalidInput(code=exc.code, params=exc.params, pointer=exc.pointer,
                           errors=[item(exc.pointer, exc.code, **exc.params)]) from None


def _feature_in(body: Any):  # noqa: ANN202
    """A measure Feature from a request body: record checked, geometry checked strictly."""
    try:
        feature = MeasureFeature.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    return feature, _geometry(feature.geometry)


def _respond(record: dict, status: int = 200) -> JSONResponse:
    return JSONResponse(measures.feature(record), status_code=status,
                        media_type="application/geo+json",
                        headers={"ETag": etag(record["id"], record["version"])})


@router.get("", summary="List measures (public: published only)", response_class=GeoJSONResponse,
            dependencies=[FiltersDep], response_model=None, responses=GEOJSON_OK)
def list_measures(request: Request, conn: ConnDep, user: UserDep,
                  settings: SettingsDep) -> GeoJSONResponse:
    """Measures as GeoJSON, filtered by action_field, status, city_ags, quarter, district,
    edition, bbox, q (text) and, for staff, published."""
    col = MEASURES_STAFF if _sees_drafts(user, request) else MEASURES_PUBLIC
    query = _item_query(col, request, settings)
    return GeoJSONResponse(page_body(request, conn, col, query))


@router.get("/points", summary="Published measures as points (for maps with many measures)",
            response_class=GeoJSONResponse, dependencies=[FiltersDep], response_model=None,
            responses={**GEOJSON_OK, 304: {"description": "unchanged (If-None-Match)"}})
def measure_points(request: Request, conn: ConnDep, settings: SettingsDep,
                   format: Literal["geojson", "compact", "clusters"] = "geojson",  # noqa: A002
                   ) -> Response:
    """Same filters and the same set as the public list, one representative point each.

    ``?format=compact`` answers the same set as parallel arrays (JSON object with ``id``,
    ``title``, ``status``, ``action_field``, ``city_ags``, ``location_precision``, ``lon``,
    ``lat``; coordinates with 5 decimals) instead of a GeoJSON FeatureCollection, about a
    third of the size and much cheaper to parse for a map with thousands of points.

    ``?format=clusters`` answers the map's clusters of the same set for the zoom levels a
    first view needs (see quarters.clusters: supercluster's algorithm and options, so the
    page can draw them before it has loaded and indexed the points itself).

    Answers carry an ETag derived from the published data; unchanged answers come from a
    small in-process cache (and 304 for a browser that has them).
    """
    tag, body = points_answer(request.app, conn, settings, request.query_params.multi_items(),
                              format, request, if_none_match=request.headers.get("if-none-match"))
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if body is None:
        return Response(status_code=304, headers=headers)
    if format != "geojson":
        return RawJSONResponse(body, headers=headers)
    return GeoJSONResponse(body, headers=headers)


def _compact_points(conn, col, query) -> bytes:  # noqa: ANN001
    """The points page as parallel arrays (lon/lat rounded to 5 decimals, ~1 m)."""
    where, params = _where(col, query)
    params.update(limit=query.limit, offset=query.offset)
    names = list(col.properties)
    columns = ", ".join(f"{expr} AS {name}" for name, expr in col.properties.items())
    rows = conn.execute(text(f"""
        SELECT {columns}, ST_X(p.g) AS lon, ST_Y(p.g) AS lat
        FROM {col.from_clause()}
        CROSS JOIN LATERAL (SELECT ST_Transform({col.geometry}, 4326) AS g) p
        WHERE {where} ORDER BY t.{col.id_column} LIMIT :limit OFFSET :offset"""),
        params).all()
    matched = conn.execute(
        text(f"SELECT count(*) FROM {col.from_clause()} WHERE {where}"), params).scalar_one()
    body: dict[str, Any] = {"format": "compact", "numberMatched": matched,
                            "numberReturned": len(rows)}
    for i, name in enumerate(names):
        body[name] = [r[i] for r in rows]
    n = len(names)
    body["lon"] = [None if r[n] is None else round(r[n], 5) for r in rows]
    body["lat"] = [None if r[n + 1] is None else round(r[n + 1], 5) for r in rows]
    return orjson.dumps(body)


def points_answer(app, conn, settings, params: list[tuple[str, str]],  # noqa: ANN001
                  fmt: str, request: Request | None = None,
                  if_none_match: str | None = None) -> tuple[str, bytes | None]:
    """(ETag, body) of /api/measures/points with these query parameters (``format`` among
    them or not) in the format ``fmt``, from the app's small cache per data version: the
    route's answer, and what the map page embeds (the clusters of its first view). GeoJSON
    needs the ``request`` (its paging links); the body is None when ``if_none_match`` is
    the ETag."""
    # ?format is this route's own parameter, not a filter of the collection
    filters = SimpleNamespace(query_params=QueryParams([(k, v) for k, v in params if k != "format"]))
    query = _item_query(MEASURES_POINTS, filters, settings)
    version = conn.execute(text(
        "SELECT count(*) || '-' || coalesce(sum(id::bigint * 7919 + version), 0) || '-' || "
        "coalesce(max(updated_at)::text, '') FROM measures_public")).scalar_one()
    key = hashlib.sha256(f"{version}|{urlencode(params)}".encode()).hexdigest()[:32]
    if if_none_match == f'"p-{key}"':
        return if_none_match, None
    cache = app.state.__dict__.setdefault("points_cache", OrderedDict())
    body = cache.get(key)
    if body is None:
        if fmt == "compact":
            body = _compact_points(conn, MEASURES_POINTS, query)
        elif fmt == "clusters":
            points = orjson.loads(_compact_points(conn, MEASURES_POINTS, query))
            body = orjson.dumps(clusters.levels_body(points))
        else:
            body = page_body(request, conn, MEASURES_POINTS, query)
        cache[key] = body
        while len(cache) > 32:
            cache.popitem(last=False)
    return f'"p-{key}"', body


@router.get("/{measure_id}", summary="One measure with its ETag")
def get_measure(measure_id: MeasureId, conn: ConnDep, user: UserDep,
                include_deleted: bool = False) -> JSONResponse:
    """The full record; drafts only for staff, deleted ones only for admins."""
    return _respond(measures.get(conn, measure_id, _relation(user, include_deleted)))


# -- the one write path: /api/measures and the OGC API (Part 4) routes both call these -------
def create_record(body: Any, conn, user) -> dict:  # noqa: ANN001
    """Create a draft from a GeoJSON Feature body; the new record (ConnDep commits)."""
    feature, geom = _feature_in(body)
    record = measures.create(conn, feature.properties, geom, Actor.of(user))
    return record


def replace_record(measure_id: int, body: Any, conn, user, version: int) -> dict:  # noqa: ANN001
    """Replace record and geometry if ``version`` is current."""
    feature, geom = _feature_in(body)
    record = measures.update(conn, measure_id, version, feature.properties, geom, Actor.of(user))
    return record


def patch_record(measure_id: int, body: Any, conn, user, version: int) -> dict:  # noqa: ANN001
    """Merge some properties and/or a geometry into the current record, check the result as a
    whole, write it if ``version`` is current."""
    try:
        patch = MeasurePatch.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    current = measures.get(conn, measure_id, measures.STAFF)
    merged = {k: current.get(k) for k in MeasureProperties.model_fields} | patch.properties
    try:
        props = MeasureProperties.model_validate(merged)
    except ValidationError as exc:
        raise _invalid(exc, "/properties") from None
    geom = _geometry(patch.geometry if patch.geometry is not None else current["geometry"])
    record = measures.update(conn, measure_id, version, props, geom, Actor.of(user))
    return record


def delete_record(measure_id: int, conn, user, version: int) -> None:  # noqa: ANN001
    """Soft-delete if ``version`` is current."""
    measures.delete(conn, measure_id, version, Actor.of(user))


def respond(record: dict, status: int = 200) -> JSONResponse:
    """A record as a GeoJSON Feature with its ETag."""
    return _respond(record, status)


@router.post("", summary="Create a measure (draft)", status_code=201, openapi_extra=FEATURE_BODY)
def create_measure(body: BodyDep, conn: ConnDep, user: PlannerDep) -> JSONResponse:
    """Create a measure from a GeoJSON Feature; it starts as a draft."""
    record = create_record(body, conn, user)
    response = _respond(record, 201)
    response.headers["Location"] = f"/api/measures/{record['id']}"
    return response


@router.put("/{measure_id}", summary="Replace a measure (If-Match)", openapi_extra=FEATURE_BODY)
def replace_measure(measure_id: MeasureId, body: BodyDep, conn: ConnDep, user: PlannerDep,
                    version: VersionDep) -> JSONResponse:
    """Full update: record and geometry."""
    return _respond(replace_record(measure_id, body, conn, user, version))


@router.patch("/{measure_id}", summary="Change part of a measure (If-Match)",
              openapi_extra=PATCH_BODY)
def patch_measure(measure_id: MeasureId, body: BodyDep, conn: ConnDep, user: PlannerDep,
                  version: VersionDep) -> JSONResponse:
    """Partial update: any properties and/or the geometry; the result is checked as a whole."""
    return _respond(patch_record(measure_id, body, conn, user, version))


@router.delete("/{measure_id}", summary="Delete a measure (soft, If-Match)", status_code=204)
def delete_measure(measure_id: MeasureId, conn: ConnDep, user: PlannerDep,
                   version: VersionDep) -> Response:
    """Soft delete; an admin can restore it."""
    delete_record(measure_id, conn, user, version)
    return Response(status_code=204)


@router.post("/{measure_id}/restore", summary="Restore a deleted measure (admin, If-Match)")
def restore_measure(measure_id: MeasureId, conn: ConnDep, user: AdminDep,
                    version: VersionDep) -> JSONResponse:
    """Undo a soft delete."""
    record = measures.restore_deleted(conn, measure_id, version, Actor.of(user))
    return _respond(record)


@router.post("/{measure_id}/publish", summary="Publish (If-Match)")
def publish(measure_id: MeasureId, conn: ConnDep, user: PlannerDep, version: VersionDep) -> JSONResponse:
    """Make a draft public."""
    record = measures.set_published(conn, measure_id, version, True, Actor.of(user))
    return _respond(record)


@router.post("/{measure_id}/unpublish", summary="Unpublish (If-Match)")
def unpublish(measure_id: MeasureId, conn: ConnDep, user: PlannerDep,
              version: VersionDep) -> JSONResponse:
    """Take a measure back to draft."""
    record = measures.set_published(conn, measure_id, version, False, Actor.of(user))
    return _respond(record)


class TransferRequest(BaseModel):
    """Target of a one-step transfer: a district code of the measure's city."""

    model_config = ConfigDict(extra="forbid")
    district_code: DistrictCode


TRANSFER_BODY = json_body(model_schema(TransferRequest), "application/json")


@router.post("/{measure_id}/transfer", status_code=201, openapi_extra=TRANSFER_BODY,
             summary="Transfer to a district: a new linked draft (planners, If-Match of the origin)")
def transfer_measure(measure_id: MeasureId, body: BodyDep, conn: ConnDep, user: PlannerDep,
                     version: VersionDep) -> JSONResponse:
    """Create a draft of the measure in the district ``district_code`` (its representative point
    as a stand-in location, ``origin_id`` = this measure) and set this measure's transfer status
    for the district to ``übertragen``. If-Match carries the origin's ETag, because the origin
    changes too; the answer is the new draft (its ETag), the origin's new ETag is in
    ``X-Origin-ETag``."""
    try:
        target = TransferRequest.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    new, origin = transfer_profile.transfer_to_district(conn, measure_id, version,
                                                        target.district_code, Actor.of(user))
    response = _respond(new, 201)
    response.headers["Location"] = f"/api/measures/{new['id']}"
    response.headers["X-Origin-ETag"] = etag(origin["id"], origin["version"])
    return response


@router.get("/{measure_id}/history", summary="Change history (planners, admins)")
def get_history(measure_id: MeasureId, conn: ConnDep, user: PlannerDep) -> dict:
    """Who changed what when, oldest first."""
    return {"measure_id": measure_id, "history": measures.history(conn, measure_id)}


@router.post("/{measure_id}/history/{to_version}/restore",
             summary="Restore an earlier version (admin, If-Match)")
def revert(measure_id: MeasureId, to_version: Annotated[AsciiInt, Path(ge=1, le=2_147_483_647)],
           conn: ConnDep, user: AdminDep,
           version: VersionDep) -> JSONResponse:
    """Write the record of an earlier version as the new current version."""
    record = measures.revert(conn, measure_id, version, to_version, Actor.of(user))
    return _respond(record)
