"""Citizens' ideas: submit (rate-limited, spam trap), moderate, read (public: moderated only)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from quarters.auth import User
from quarters.errors import InvalidInput, NotFound, TooManyRequests, item
from quarters.settings import STORAGE_SRID
from quarters.validation import control_problem
from quarters.vocabulary import ACTION_FIELDS, IDEA_TEXT

IDEA_FIELDS = {"title", "text", "action_field", "geometry", "contact", "website", "workshop_code"}
HONEYPOT = "website"  # hidden field; people leave it empty, bots fill it
CITY_BUFFER_M = 500
DECISIONS = {"accept": "angenommen", "reject": "abgelehnt", "link": "verknuepft",
             "hide": "verborgen"}  # hide: spam, abuse, personal data – on no public path
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed on phones
CODE_RE = re.compile(r"[A-Z0-9-]{1,40}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def client_hash(secret: str, client: str) -> str:
    """A salted hash of the client address (the address itself is never stored)."""
    return hashlib.sha256(f"{secret}:{client}".encode()).hexdigest()


def _problem(where: str, key: str, _lang: str = "de", **values: object) -> dict[str, Any]:
    return item(f"/{where}", key, **values)


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
    title, text_, contact = IDEA_TEXT["title"], IDEA_TEXT["text"], IDEA_TEXT["contact"]
    if "/title" not in flagged and not title.min <= len(values["title"] or "") <= title.max:
        problems.append(_problem("title", "idea.title", lang))
    if "/text" not in flagged and not text_.min <= len(values["text"] or "") <= text_.max:
        problems.append(_problem("text", "idea.text", lang))
    if values["contact"] and len(values["contact"]) > contact.max:
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


def _charge(conn: Connection, key: str, limit: int, window_s: int, lang: str) -> None:
    """Count one idea against ``key`` atomically: the counter row stays locked until the
    transaction ends, so concurrent submissions queue and the limit holds exactly."""
    used = conn.execute(text("""
        INSERT INTO idea_quota AS q (key, window_start, used) VALUES (:k, now(), 1)
        ON CONFLICT (key) DO UPDATE SET
            used = CASE WHEN q.window_start <= now() - make_interval(secs => :w) THEN 1
                        ELSE q.used + 1 END,
            window_start = CASE WHEN q.window_start <= now() - make_interval(secs => :w)
                                THEN now() ELSE q.window_start END
        RETURNING used, ceil(extract(epoch FROM q.window_start
                                     + make_interval(secs => :w) - now()))::int AS wait"""),
        {"k": key, "w": window_s}).one()
    # Counters of long-past windows go (a few at a time, never one another client holds).
    conn.execute(text("""
        DELETE FROM idea_quota WHERE key IN (
            SELECT key FROM idea_quota
            WHERE window_start < now() - make_interval(secs => greatest(:w * 2, 172800))
            LIMIT 100 FOR UPDATE SKIP LOCKED)"""), {"w": window_s})
    if used.used > limit:
        raise TooManyRequests(code="idea.rate_limited",
                              headers={"Retry-After": str(max(1, used.wait))})


def _workshop(conn: Connection, code: Any, lang: str) -> Any:
    """The valid workshop code named in a submission, None without one, else 422."""
    if code is None or (isinstance(code, str) and not code.strip()):
        return None
    code = code.strip().upper() if isinstance(code, str) else ""
    row = None if not CODE_RE.fullmatch(code) else conn.execute(text("""
        SELECT id, max_ideas, ceil(extract(epoch FROM expires_at - now()))::int AS left_s
        FROM workshop_codes WHERE code = :c AND expires_at > now()"""), {"c": code}).first()
    if row is None:
        raise InvalidInput(code="idea.workshop_code", pointer="/workshop_code",
                           errors=[item("/workshop_code", "idea.workshop_code")])
    return row


def submit(conn: Connection, body: Any, client: str, *, lang: str, limit: int,
           window_s: int) -> int | None:
    """Store an idea for moderation; None when the spam trap caught it (nothing stored).

    Limited per client (``limit`` per ``window_s``), or, with a valid workshop code, per code
    (its own maximum while it is valid) so that a workshop on one address can take part.
    """
    if isinstance(body, dict) and body.get(HONEYPOT):
        return None
    code = _workshop(conn, body.get("workshop_code") if isinstance(body, dict) else None, lang)
    values, problems = check(conn, body, lang)
    if problems:
        raise InvalidInput(code="idea.invalid", errors=problems)
    if code is None:
        _charge(conn, f"client:{client}", limit, window_s, lang)
    else:
        _charge(conn, f"workshop:{code.id}", code.max_ideas, max(code.left_s, 1), lang)
    return conn.execute(text(f"""
        INSERT INTO ideas (city_ags, title, text, action_field, contact, geom, client_hash,
                           workshop_code_id)
        VALUES (:city_ags, :title, :text, :action_field, :contact,
                ST_Transform(ST_Point(:lon, :lat, 4326), {STORAGE_SRID}), :client, :code)
        RETURNING id"""), {**values, "client": client, "code": code.id if code else None}
    ).scalar_one()


# -- workshop codes ---------------------------------------------------------------------------


def open_workshop(conn: Connection, label: Any, hours: Any, max_ideas: Any, user: User, *,
                  max_hours: int, default_max: int) -> dict[str, Any]:
    """A new workshop code, valid for ``hours`` (at most ``max_hours``)."""
    problems = []
    if not isinstance(label, str) or not 1 <= len(label.strip()) <= 200 or CONTROL.search(label):
        problems.append(item("/label", "idea.workshop_label", min=1, max=200))
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= max_hours:
        problems.append(item("/hours", "idea.workshop_hours", max=max_hours))
    if max_ideas is None:
        max_ideas = default_max
    if isinstance(max_ideas, bool) or not isinstance(max_ideas, int) or not 1 <= max_ideas <= 10000:
        problems.append(item("/max_ideas", "idea.workshop_max_ideas", min=1, max=10000))
    if problems:
        raise InvalidInput(code="idea.workshop_invalid", errors=problems)
    code = "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(4)) for _ in range(2))
    row = conn.execute(text("""
        INSERT INTO workshop_codes (code, label, max_ideas, created_by, expires_at)
        VALUES (:c, :l, :m, :u, now() + make_interval(secs => :s)) RETURNING id"""),
        {"c": code, "l": label.strip(), "m": max_ideas, "u": user.id,
         "s": float(hours) * 3600}).scalar_one()
    return next(w for w in workshops(conn) if w["id"] == row)


def workshops(conn: Connection) -> list[dict[str, Any]]:
    """Workshop codes still valid, with the ideas each has taken (for moderators)."""
    rows = conn.execute(text("""
        SELECT w.id, w.code, w.label, w.max_ideas, w.created_at, w.expires_at,
               (SELECT count(*) FROM ideas i WHERE i.workshop_code_id = w.id) AS ideas
        FROM workshop_codes w WHERE w.expires_at > now() ORDER BY w.expires_at, w.id"""))
    return [_plain(r) for r in rows]


def _columns(staff: bool) -> str:
    base = ("i.id, i.city_ags, i.title, i.text, i.action_field, i.state, i.public_reason, "
            "i.measure_id, i.created_at, i.moderated_at, "
            "ST_AsGeoJSON(ST_Transform(i.geom, 4326), 6)::json AS geometry")
    return base + (", i.contact, i.staff_reason, i.text_public, i.workshop_code_id"
                   if staff else "")


def _plain(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row._mapping.items()}


def get(conn: Connection, idea_id: int, staff: bool) -> dict[str, Any]:
    """One idea; the public sees moderated ideas only."""
    relation = "ideas" if staff else "ideas_public"
    row = conn.execute(text(f"SELECT {_columns(staff)} FROM {relation} i WHERE i.id = :id"),
                       {"id": idea_id}).first()
    if row is None:
        raise NotFound(code="idea.not_found", params={"id": idea_id})
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
             measure_id: int | None, user: User, lang: str = "de", *,
             staff_reason: str | None = None, text_public: bool = False) -> dict[str, Any]:
    """Accept, reject (with a public reason; the text stays off the site unless
    ``text_public``), link to a published measure, or hide (spam, abuse, personal data: on no
    public path; the ``staff_reason`` is kept for staff)."""
    if decision not in DECISIONS:
        raise InvalidInput(code="idea.decision", pointer="/decision",
                           params={"allowed": ", ".join(DECISIONS)})
    reason = (reason or "").strip() or None
    staff_reason = (staff_reason or "").strip() or None
    for name, value in (("reason", reason), ("staff_reason", staff_reason)):
        limit = IDEA_TEXT[name].max
        if value and len(value) > limit:
            raise InvalidInput(code="validation.string_too_long", pointer=f"/{name}",
                               params={"max_length": limit},
                               errors=[item(f"/{name}", "validation.string_too_long",
                                            max_length=limit)])
        if value and control_problem(value, multiline=True):
            raise InvalidInput(code="idea.invalid_char", pointer=f"/{name}",
                               errors=[item(f"/{name}", "idea.invalid_char")])
    if decision == "reject" and not reason:
        raise InvalidInput(code="idea.reason_required", pointer="/reason",
                           errors=[item("/reason", "idea.reason_required")])
    if decision == "hide":
        if not staff_reason:
            raise InvalidInput(code="idea.hide_reason_required", pointer="/staff_reason",
                               errors=[item("/staff_reason", "idea.hide_reason_required")])
        reason = None
    if decision == "link":
        if not measure_id or not conn.execute(text(
                "SELECT 1 FROM measures_public WHERE id = :m"), {"m": measure_id}).first():
            raise InvalidInput(code="idea.measure_required", pointer="/measure_id",
                               errors=[item("/measure_id", "idea.measure_required")])
    else:
        measure_id = None
    done = conn.execute(text("""
        UPDATE ideas SET state = :state, public_reason = :reason, measure_id = :measure,
               staff_reason = COALESCE(:staff_reason, staff_reason), text_public = :text_public,
               moderated_at = now(), moderated_by = :user
        WHERE id = :id RETURNING id"""), {
            "state": DECISIONS[decision], "reason": reason, "measure": measure_id,
            "staff_reason": staff_reason, "text_public": bool(text_public) and decision == "reject",
            "user": user.id, "id": idea_id})
    if done.first() is None:
        raise NotFound(code="idea.not_found", params={"id": idea_id})
    return get(conn, idea_id, staff=True)
