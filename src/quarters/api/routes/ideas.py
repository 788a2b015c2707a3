"""Ideas (Projektaufruf): anyone submits, moderators decide, the public sees the outcome."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from quarters import ideas
from quarters.api.deps import BodyDep, ConnDep, SettingsDep, StaffDep, UserDep
from quarters.api.openapi import json_body
from quarters.db import commit
from quarters.errors import BadRequest
from quarters.messages import language, t
from quarters.validation import AsciiInt

router = APIRouter(prefix="/api/ideas", tags=["ideas"])
_PROCESS_SECRET = secrets.token_hex(16)
IdeaId = Annotated[AsciiInt, Path(ge=1, le=2_147_483_647)]
_TEXT = {"type": "string", "maxLength": 4000}
IDEA_BODY = json_body({
    "type": "object", "additionalProperties": False, "required": ["title", "text", "geometry"],
    "properties": {
        "title": {**_TEXT, "minLength": 3, "maxLength": 120},
        "text": {**_TEXT, "minLength": 10},
        "action_field": {**_TEXT, "maxLength": 100},
        "contact": {"type": ["string", "null"], "maxLength": 200},
        "website": {"type": "string", "maxLength": 0, "description": "leave empty (spam trap)"},
        "geometry": {"type": "object", "required": ["type", "coordinates"], "properties": {
            "type": {"enum": ["Point"]},
            "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2,
                            "maxItems": 2}}},
    }})
MODERATION_BODY = json_body({
    "type": "object", "additionalProperties": False, "required": ["decision"],
    "properties": {
        "decision": {"enum": ["accept", "reject", "link"]},
        "reason": {"type": ["string", "null"], "maxLength": 2000},
        "measure_id": {"type": ["integer", "null"], "minimum": 1, "maximum": 2_147_483_647}}})


def _client(request: Request, secret: str) -> str:
    address = request.client.host if request.client else "unknown"
    return ideas.client_hash(secret or _PROCESS_SECRET, address)


@router.post("", summary="Submit an idea (no account; moderated before it is public)",
             status_code=202, openapi_extra=IDEA_BODY)
def submit(body: BodyDep, request: Request, conn: ConnDep, settings: SettingsDep) -> JSONResponse:
    """Store an idea for moderation. Rate-limited per client; a spam trap discards bots."""
    lang = language(request.headers.get("accept-language"))
    idea_id = ideas.submit(conn, body, _client(request, settings.secret_key), lang=lang,
                           limit=settings.idea_limit, window_s=settings.idea_window_s)
    if idea_id is not None:
        commit(conn)
    return JSONResponse({"received": True, "id": idea_id, "message": t("idea.received", lang)},
                        status_code=202)


@router.get("", summary="Ideas (public: moderated ones; moderators: all)")
def list_ideas(conn: ConnDep, user: UserDep,
               state: str | None = Query(None, max_length=40),
               city_ags: str | None = Query(None, max_length=8),
               measure_id: Annotated[AsciiInt | None, Query(ge=1, le=2_147_483_647)] = None,
               limit: Annotated[AsciiInt, Query(ge=1, le=1000)] = 100,
               offset: Annotated[AsciiInt, Query(ge=0, le=2_147_483_647)] = 0) -> dict:
    """Ideas newest first (filter by state, city or linked measure; paged)."""
    staff = user is not None and user.can("moderator")
    found = ideas.listing(conn, staff, state, city_ags, measure_id)
    return {"ideas": found[offset:offset + limit], "numberMatched": len(found)}


@router.get("/{idea_id}", summary="One idea and what became of it")
def get_idea(idea_id: IdeaId, conn: ConnDep, user: UserDep) -> dict:
    """An idea with its state, the public reason or the linked measure."""
    staff = user is not None and user.can("moderator")
    return ideas.get(conn, idea_id, staff)


@router.post("/{idea_id}/moderate", summary="Accept, reject or link an idea (moderator)",
             openapi_extra=MODERATION_BODY)
def moderate(idea_id: IdeaId, body: BodyDep, request: Request, conn: ConnDep,
             user: StaffDep) -> dict:
    """decision: accept | reject (reason required, shown publicly) | link (measure_id)."""
    if not user.can("moderator"):
        from quarters.errors import Forbidden

        raise Forbidden("only moderators and admins decide on ideas")
    if not isinstance(body, dict) or set(body) - {"decision", "reason", "measure_id"}:
        raise BadRequest("send {\"decision\": accept|reject|link, \"reason\": …, \"measure_id\": …}")
    measure_id = body.get("measure_id")
    if measure_id is not None and (not isinstance(measure_id, int) or isinstance(measure_id, bool)):
        raise BadRequest("measure_id must be an integer")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("reason must be text")
    idea = ideas.moderate(conn, idea_id, str(body.get("decision")), reason, measure_id, user,
                          language(request.headers.get("accept-language")))
    commit(conn)
    return idea
