"""Ideas (Projektaufruf): anyone submits, moderators decide, the public sees the outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from quarters import ideas
from quarters.api.deps import BodyDep, ConnDep, SettingsDep, StaffDep, UserDep
from quarters.api.openapi import json_body
from quarters.auth import User
from quarters.clients import request_client
from quarters.errors import BadRequest, Forbidden
from quarters.messages import request_language, t
from quarters.settings import client_secret
from quarters.validation import AsciiInt
from quarters.vocabulary import IDEA_DECISIONS, IDEA_TEXT

router = APIRouter(prefix="/api/ideas", tags=["ideas"])
IdeaId = Annotated[AsciiInt, Path(ge=1, le=2_147_483_647)]
_TEXT = {"type": "string"}


def _length(name: str) -> dict:
    length = IDEA_TEXT[name]
    return {**_TEXT, "maxLength": length.max, **({"minLength": length.min} if length.min else {})}


IDEA_BODY = json_body({
    "type": "object", "additionalProperties": False, "required": ["title", "text", "geometry"],
    "properties": {
        "workshop_code": {**_length("workshop_code"), "type": ["string", "null"]},
        "title": _length("title"),
        "text": _length("text"),
        "action_field": _length("action_field"),
        "contact": {**_length("contact"), "type": ["string", "null"]},
        "website": {"type": "string", "maxLength": 0, "description": "leave empty (spam trap)"},
        "geometry": {"type": "object", "required": ["type", "coordinates"], "properties": {
            "type": {"enum": ["Point"]},
            "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2,
                            "maxItems": 2}}},
    }})
MODERATION_BODY = json_body({
    "type": "object", "additionalProperties": False, "required": ["decision"],
    "properties": {
        "decision": {"enum": list(IDEA_DECISIONS)},
        "reason": {**_length("reason"), "type": ["string", "null"]},
        "staff_reason": {**_length("staff_reason"), "type": ["string", "null"]},
        "text_public": {"type": "boolean"},
        "measure_id": {"type": ["integer", "null"], "minimum": 1, "maximum": 2_147_483_647}}})


def _client(request: Request, settings) -> str:  # noqa: ANN001
    """Salted hash of the client's address (X-Forwarded-For only from a trusted proxy)."""
    return ideas.client_hash(client_secret(settings), request_client(request))


def _moderator(user: User) -> User:
    if not user.can("moderator"):
        raise Forbidden(code="idea.moderators_only")
    return user


@router.post("", summary="Submit an idea (no account; moderated before it is public)",
             status_code=202, openapi_extra=IDEA_BODY)
def submit(body: BodyDep, request: Request, conn: ConnDep, settings: SettingsDep) -> JSONResponse:
    """Store an idea for moderation. Rate-limited per client, or per workshop code
    (``workshop_code``) for many people on one address; a spam trap discards bots. The answer
    names the idea's page (``url``), which shows the outcome once a moderator has decided."""
    lang = request_language(request)
    idea_id = ideas.submit(conn, body, _client(request, settings), lang=lang,
                           limit=settings.idea_limit, window_s=settings.idea_window_s)
    return JSONResponse({"received": True, "id": idea_id,
                         "url": f"/ideen/{idea_id}" if idea_id is not None else None,
                         "message": t("server.idea_received", lang)}, status_code=202)


@router.get("/workshop-codes", summary="Workshop codes still valid (moderator)")
def list_workshops(conn: ConnDep, user: StaffDep) -> dict:
    """Open workshop codes with the number of ideas each has taken."""
    _moderator(user)
    return {"workshops": ideas.workshops(conn)}


@router.post("/workshop-codes", summary="Open a workshop code (moderator)", status_code=201)
def open_workshop(body: BodyDep, conn: ConnDep, user: StaffDep, settings: SettingsDep) -> dict:
    """{"label": …, "hours": 1–12, "max_ideas": …}: a code that lets many people on one
    address (a workshop's Wi-Fi) submit; the code, not the address, is limited."""
    _moderator(user)
    if not isinstance(body, dict) or set(body) - {"label", "hours", "max_ideas"}:
        raise BadRequest(code="idea.workshop_body")
    workshop = ideas.open_workshop(conn, body.get("label"), body.get("hours"),
                                   body.get("max_ideas"), user,
                                   max_hours=settings.workshop_max_hours,
                                   default_max=settings.workshop_max_ideas)
    return workshop


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
    """decision: accept | reject (reason required, shown publicly; the text only with
    ``text_public``) | link (measure_id) | hide (``staff_reason`` required, kept for staff; the
    idea is then on no public path)."""
    _moderator(user)
    fields = {"decision", "reason", "measure_id", "staff_reason", "text_public"}
    if not isinstance(body, dict) or set(body) - fields:
        raise BadRequest(code="idea.moderation_body")
    measure_id = body.get("measure_id")
    if measure_id is not None and (not isinstance(measure_id, int) or isinstance(measure_id, bool)):
        raise BadRequest(code="idea.measure_id_integer", pointer="/measure_id")
    reason, staff_reason = body.get("reason"), body.get("staff_reason")
    for name, value in (("reason", reason), ("staff_reason", staff_reason)):
        if value is not None and not isinstance(value, str):
            raise BadRequest(code="validation.string_type", pointer=f"/{name}")
    text_public = body.get("text_public", False)
    if not isinstance(text_public, bool):
        raise BadRequest(code="validation.bool_type", pointer="/text_public")
    idea = ideas.moderate(conn, idea_id, str(body.get("decision")), reason, measure_id, user,
                          request_language(request),
                          staff_reason=staff_reason, text_public=text_public)
    return idea
