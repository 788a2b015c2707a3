"""Citizens' ideas: submit (rate-limited, spam trap), moderate, read (public: moderated only)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from quarters.auth import User
from quarters.errors import InvalidInput, NotFound, TooManyRequests
from quarters.messages import t
from quarters.schemas import ACTION_FIELDS
from quarters.settings import STORAGE_SRID
from quarters.validation import control_problem

IDEA_FIELDS = {"title", "text", "action_field", "geometry", "contact", "website"}
HONEYPOT = "website"  # hidden field; people leave it empty, bots fill it
CITY_BUFFER_M = 500
DECISIONS = {"accept": "angenommen", "reject": "abgelehnt", "link": "verknuepft"}


def client_hash(secret: str, client: str) -> str:
    """A salted hash of the client address (the address itself is never stored)."""
    return hashlib.sha256(f"{secret}:{client}".encode()).hexdigest()


def _problem(where: str, key: str, lang: str, **values: object) -> dict[str, str]:
    return {"pointer": f"/{where}", "problem": t(key, lang, **values)}


def check(conn: Connection, body: Any, lang: str) -> tuple[dict[str, Any], list[dict]]:
    """Validate an idea; return (clean values incl. city and lon/lat, problems in ``lang``)."""
    if not isinstance(body, dict):
        return {}, [_problem("", "idea.text", lang)]
    problems = [_problem(k, "idea.unknown_field", lang, field=k) for k in sorted(set(body) - IDEA_FIELDS)]
    values: dict[str, Any] = {}
    for key in ("title", "text", "action_field", "contact"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(_problem(key, f"idea.{key}", lang))
            value = None
        if isinstance(value, str) and control_problem(value, multiline=key == "text"):
            problems.append(_problem(key, "idea.invalid_char", lang))
            value = None
        values[key] = value.strip() if isinstance(value, str) else None
    flagged = {p["pointer"] for p in problems}
    if "/title" not in flagged and not 3 <= len(values["title"] or "") <= 120:
        problems.append(_problem("title", "idea.title", lang))
    if "/text" not in flagged and not 10 <= len(values["text"] or "") <= 4000:
        problems.append(_problem("text", "idea.text", lang))
    if values["contact"] and len(values["contact"]) > 200:
        problems.append(_problem("contact", "idea.contact", lang))
    values["contact"] = values["contact"] or None
    city = _city_of(conn, body.get("geometry"))
    if city is None:
        problems.append(_problem("geometry", "idea.location", lang))
    else:
        values.update(city)
        if values["action_field"] not in ACTION_FIELDS[city["city_ags"]]:
            problems.append(_problem("action_field", "idea.action_field", lang))
    return values, problems


def _city_of(conn: Connection, geometry: Any) -> dict[str, Any] | None:
    """The project city a GeoJSON point lies in (with a small buffer), or None."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        return None
    coords = geometry.get("coordinates")
    if (not isinstance(coords, list) or len(coords) != 2
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coords)):
        return None
    lon, lat = coords
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    row = conn.execute(text(f"""
        SELECT ags FROM municipalities
        WHERE project_city AND ST_DWithin(geom, ST_Transform(ST_Point(:lon, :lat, 4326),
                                                             {STORAGE_SRID}), :buffer)
        ORDER BY ST_Distance(geom, ST_Transform(ST_Point(:lon, :lat, 4326), {STORAGE_SRID}))
        LIMIT 1"""), {"lon": lon, "lat": lat, "buffer": CITY_BUFFER_M}).first()
    return {"city_ags": row.ags, "lon": float(lon), "lat": float(lat)} if row else None


def submit(conn: Connection, body: Any, client: str, *, lang: str, limit: int,
           window_s: int) -> int | None:
    """Store an idea for moderation; None when the spam trap caught it (nothing stored)."""
    if isinstance(body, dict) and body.get(HONEYPOT):
        return None
    recent = conn.execute(text(
        "SELECT count(*) FROM ideas WHERE client_hash = :c "
        "AND created_at > now() - make_interval(secs => :w)"), {"c": client, "w": window_s}
    ).scalar_one()
    if recent >= limit:
        raise TooManyRequests(t("idea.rate_limited", lang), headers={"Retry-After": str(window_s)})
    values, problems = check(conn, body, lang)
    if problems:
        raise InvalidInput(" ".join(p["problem"] for p in problems), errors=problems)
    return conn.execute(text(f"""
        INSERT INTO ideas (city_ags, title, text, action_field, contact, geom, client_hash)
        VALUES (:city_ags, :title, :text, :action_field, :contact,
                ST_Transform(ST_Point(:lon, :lat, 4326), {STORAGE_SRID}), :client)
        RETURNING id"""), {**values, "client": client}).scalar_one()


def _columns(staff: bool) -> str:
    base = ("i.id, i.city_ags, i.title, i.text, i.action_field, i.state, i.public_reason, "
            "i.measure_id, i.created_at, i.moderated_at, "
            "ST_AsGeoJSON(ST_Transform(i.geom, 4326), 6)::json AS geometry")
    return base + (", i.contact" if staff else "")


def _plain(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row._mapping.items()}


def get(conn: Connection, idea_id: int, staff: bool) -> dict[str, Any]:
    """One idea; the public sees moderated ideas only."""
    relation = "ideas" if staff else "ideas_public"
    row = conn.execute(text(f"SELECT {_columns(staff)} FROM {relation} i WHERE i.id = :id"),
                       {"id": idea_id}).first()
    if row is None:
        raise NotFound(f"no idea with id {idea_id}")
    return _plain(row)


def listing(conn: Connection, staff: bool, state: str | None = None,
            city: str | None = None, measure_id: int | None = None) -> list[dict[str, Any]]:
    """Ideas, newest first (public: moderated only)."""
    relation = "ideas" if staff else "ideas_public"
    rows = conn.execute(text(f"""
        SELECT {_columns(staff)} FROM {relation} i
        WHERE (CAST(:state AS text) IS NULL OR i.state = :state)
          AND (CAST(:city AS text) IS NULL OR i.city_ags = :city)
          AND (CAST(:measure AS integer) IS NULL OR i.measure_id = :measure)
        ORDER BY i.created_at DESC, i.id DESC LIMIT 5000"""),
        {"state": state, "city": city, "measure": measure_id})
    return [_plain(r) for r in rows]


def moderate(conn: Connection, idea_id: int, decision: str, reason: str | None,
             measure_id: int | None, user: User, lang: str = "de") -> dict[str, Any]:
    """Accept, reject (with a public reason) or link an idea to a published measure."""
    if decision not in DECISIONS:
        raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}")
    reason = (reason or "").strip() or None
    if reason and len(reason) > 2000:
        raise InvalidInput("reason: at most 2000 characters")
    if reason and control_problem(reason, multiline=True):
        raise InvalidInput(f"reason: {control_problem(reason, multiline=True)}",
                           errors=[{"pointer": "/reason", "problem": t("idea.invalid_char", lang)}])
    if decision == "reject" and not reason:
        raise InvalidInput(t("idea.reason_required", lang),
                           errors=[{"pointer": "/reason", "problem": t("idea.reason_required", lang)}])
    if decision == "link":
        if not measure_id or not conn.execute(text(
                "SELECT 1 FROM measures_public WHERE id = :m"), {"m": measure_id}).first():
            raise InvalidInput(t("idea.measure_required", lang), errors=[
                {"pointer": "/measure_id", "problem": t("idea.measure_required", lang)}])
    else:
        measure_id = None
    done = conn.execute(text("""
        UPDATE ideas SET state = :state, public_reason = :reason, measure_id = :measure,
               moderated_at = now(), moderated_by = :user
        WHERE id = :id RETURNING id"""), {"state": DECISIONS[decision], "reason": reason,
                                          "measure": measure_id, "user": user.id, "id": idea_id})
    if done.first() is None:
        raise NotFound(f"no idea with id {idea_id}")
    return get(conn, idea_id, staff=True)
