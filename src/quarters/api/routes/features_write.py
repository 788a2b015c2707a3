"""OGC API Features Part 4 (create, replace, update, delete) on the measures collection.

The same write path as ``/api/measures`` (validation, roles, history, ETags): these routes
only speak the OGC paths and answers — 201 + Location + ETag on create, 200 (or 204 with
``Prefer: return=minimal``) on replace/update, 204 on delete, 412/428 for If-Match problems.
The ETag is the measure's (``"m<id>-v<version>"``), the same as ``/api/measures/{id}`` sends.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from quarters.api.deps import BodyDep, ConnDep, PlannerDep, if_match
from quarters.api.routes import measures as measure_routes
from quarters.errors import PreconditionFailed
from quarters.measures import etag

router = APIRouter(prefix="/api/collections/measures/items", tags=["OGC API Features"])
ITEMS = "/api/collections/measures/items"


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"type": "object"}}}}


_ETAG = {"ETag": {"description": 'Strong ETag of the stored version, "m<id>-v<version>"',
                  "schema": {"type": "string"}}}
_FEATURE = {"application/geo+json": {"schema": {"type": "object"}}}
_WRITE_ERRORS = {
    400: _problem("Malformed body (not JSON, non-finite numbers, nested too deeply)"),
    401: _problem("Not signed in"),
    403: _problem("Signed in without the planner role (or missing CSRF token)"),
    413: _problem("Body too large"),
    415: _problem("Not sent as application/geo+json or application/json"),
    422: _problem("The feature breaks a rule (invalid geometry, unknown field, outside the city)"),
}
_IF_MATCH_ERRORS = {
    404: _problem("No such measure"),
    412: _problem("If-Match does not name the current version (the current ETag is sent)"),
    428: _problem("If-Match missing"),
}
_IF_MATCH_HEADER = {"parameters": [{
    "name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"},
    "description": 'The ETag from GET /api/collections/measures/items/{id} (or '
                   '/api/measures/{id}), e.g. "m12-v3"'}]}
_FEATURE_BODY = {
    "required": True,
    "content": {kind: {"schema": {
        "type": "object", "required": ["type", "geometry", "properties"],
        "description": "A GeoJSON Feature (CRS84) whose properties are a measure record as in "
                       "/api/measures: title, city_ags, action_field and status are required",
        "properties": {"type": {"type": "string", "enum": ["Feature"]},
                       "geometry": {"type": "object"}, "properties": {"type": "object"}}}}
        for kind in ("application/geo+json", "application/json")}}
_PATCH_BODY = {
    "required": True,
    "content": {kind: {"schema": {
        "type": "object",
        "description": "Any subset of the properties and/or a new geometry; the result is "
                       "checked as a whole",
        "properties": {"geometry": {"type": "object"}, "properties": {"type": "object"}}}}
        for kind in ("application/merge-patch+json", "application/json")}}



def _changed(done: str) -> dict[int | str, Any]:
    """The responses of a replace or update: the stored feature (200) or, with ``Prefer:
    return=minimal``, none (204), each with its ETag; the write and If-Match problems."""
    return {200: {"description": f"{done}; the stored feature", "content": _FEATURE,
                  "headers": _ETAG},
            204: {"description": f"{done} (with Prefer: return=minimal)", "headers": _ETAG},
            **_WRITE_ERRORS, **_IF_MATCH_ERRORS}


def _version(measure_id: int, request: Request) -> int:
    """The version named by If-Match, which must be an ETag of this very measure."""
    version = if_match(request)
    tag = request.headers["if-match"].strip().strip('"')
    if tag.split("-v", 1)[0] != f"m{measure_id}":
        raise PreconditionFailed(code="write.etag_other_measure", pointer="If-Match",
                                 params={"tag": tag[:80], "id": measure_id})
    return version


VersionDep = Annotated[int, Depends(_version)]


def _location(request: Request, measure_id: int) -> str:
    return f"{str(request.base_url).rstrip('/')}{ITEMS}/{measure_id}"


def _answer(request: Request, record: dict) -> Response:
    if "return=minimal" in request.headers.get("prefer", "").replace(" ", ""):
        return Response(status_code=204, headers={"ETag": etag(record["id"], record["version"])})
    return measure_routes.respond(record)


@router.post("", summary="Create a measure (OGC API Features Part 4; a draft)", status_code=201,
             response_class=JSONResponse, openapi_extra={"requestBody": _FEATURE_BODY},
             responses={201: {"description": "Created; Location names the new feature",
                              "content": _FEATURE, "headers": {**_ETAG, "Location": {
                                  "description": "URI of the new feature",
                                  "schema": {"type": "string"}}}},
                        **_WRITE_ERRORS})
def create(request: Request, body: BodyDep, conn: ConnDep, user: PlannerDep) -> JSONResponse:
    """Create a measure from a GeoJSON Feature; it starts as a draft (publish it through
    ``/api/measures/{id}/publish``). The server assigns the id."""
    record = measure_routes.create_record(body, conn, user)
    response = measure_routes.respond(record, 201)
    response.headers["Location"] = _location(request, record["id"])
    return response


@router.put("/{measure_id}", summary="Replace a measure (If-Match)", response_class=JSONResponse,
            openapi_extra={"requestBody": _FEATURE_BODY, **_IF_MATCH_HEADER},
            responses=_changed("Replaced"))
def replace(measure_id: int, request: Request, body: BodyDep, conn: ConnDep, user: PlannerDep,
            version: VersionDep) -> Response:
    """Replace record and geometry of a measure."""
    return _answer(request, measure_routes.replace_record(measure_id, body, conn, user, version))


@router.patch("/{measure_id}", summary="Update part of a measure (If-Match)",
              response_class=JSONResponse,
              openapi_extra={"requestBody": _PATCH_BODY, **_IF_MATCH_HEADER},
              responses=_changed("Updated"))
def update(measure_id: int, request: Request, body: BodyDep, conn: ConnDep, user: PlannerDep,
           version: VersionDep) -> Response:
    """Change some properties and/or the geometry of a measure."""
    return _answer(request, measure_routes.patch_record(measure_id, body, conn, user, version))


@router.delete("/{measure_id}", summary="Delete a measure (soft, If-Match)", status_code=204,
               response_class=Response, openapi_extra=_IF_MATCH_HEADER,
               responses={204: {"description": "Deleted (an admin can restore it)"},
                          401: _WRITE_ERRORS[401], 403: _WRITE_ERRORS[403], **_IF_MATCH_ERRORS})
def delete(measure_id: int, conn: ConnDep, user: PlannerDep, version: VersionDep) -> Response:
    """Soft-delete a measure; it disappears from every collection."""
    measure_routes.delete_record(measure_id, conn, user, version)
    return Response(status_code=204)


def openapi_operations(prefix: str = "/api") -> dict[str, dict[str, Any]]:
    """These operations as OpenAPI 3.0 path items (paths below ``prefix``, ``{featureId}``),
    for the OGC API document that is generated from the collections."""
    def responses(table: dict) -> dict[str, Any]:
        return {str(code): value for code, value in table.items()}

    feature_id = {"name": "featureId", "in": "path", "required": True,
                  "schema": {"type": "integer"}, "description": "id of the measure"}
    changed = {"200": {"description": "The stored feature", "content": _FEATURE,
                       "headers": _ETAG},
               "204": {"description": "Stored (with Prefer: return=minimal)", "headers": _ETAG}}
    items = ITEMS.removeprefix("/api")
    return {
        f"{prefix}{items}": {"post": {
            "tags": ["OGC API Features"], "operationId": "createMeasure",
            "summary": "Create a measure (a draft)", "requestBody": _FEATURE_BODY,
            "responses": {"201": {"description": "Created; Location names the new feature",
                                  "content": _FEATURE, "headers": {**_ETAG, "Location": {
                                      "description": "URI of the new feature",
                                      "schema": {"type": "string"}}}},
                          **responses(_WRITE_ERRORS)}}},
        f"{prefix}{items}/{{featureId}}": {
            "put": {"tags": ["OGC API Features"], "operationId": "replaceMeasure",
                    "summary": "Replace a measure (If-Match)", "requestBody": _FEATURE_BODY,
                    "parameters": [feature_id, *_IF_MATCH_HEADER["parameters"]],
                    "responses": {**changed, **responses(_WRITE_ERRORS),
                                  **responses(_IF_MATCH_ERRORS)}},
            "patch": {"tags": ["OGC API Features"], "operationId": "updateMeasure",
                      "summary": "Update part of a measure (If-Match)", "requestBody": _PATCH_BODY,
                      "parameters": [feature_id, *_IF_MATCH_HEADER["parameters"]],
                      "responses": {**changed, **responses(_WRITE_ERRORS),
                                    **responses(_IF_MATCH_ERRORS)}},
            "delete": {"tags": ["OGC API Features"], "operationId": "deleteMeasure",
                       "summary": "Delete a measure (soft, If-Match)",
                       "parameters": [feature_id, *_IF_MATCH_HEADER["parameters"]],
                       "responses": {"204": {"description": "Deleted"},
                                     "401": _WRITE_ERRORS[401], "403": _WRITE_ERRORS[403],
                                     **responses(_IF_MATCH_ERRORS)}},
        },
    }
