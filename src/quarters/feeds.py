"""Atom feeds of published changes (new measures, status changes, milestones) for a place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from sqlalchemy import Connection, text

from quarters.errors import InvalidParameter, NotFound
from quarters.messages import has, t
from quarters.settings import STORAGE_SRID
from quarters.validation import xml_text

ATOM = "http://www.w3.org/2005/Atom"


def place_filter(conn: Connection, *, district: int | None, quarter: str | None,
                 lon: float | None, lat: float | None, radius_m: float | None
                 ) -> tuple[str, dict[str, Any], str]:
    """(SQL condition on m.geom, params, human name of the place)."""
    for value, table, column, bind, code in (
            (district, "districts", "id", "d", "feed.unknown_district"),
            (quarter, "quarters", "slug", "q", "feed.unknown_quarter")):
        if value is None:
            continue
        row = f"FROM {table} WHERE {column} = :{bind}"
        name = conn.execute(text(f"SELECT name {row}"), {bind: value}).scalar()
        if name is None:
            raise NotFound(code=code, params={column: value})
        return f"ST_Intersects(m.geom, (SELECT geom {row}))", {bind: value}, name
    if lon is not None and lat is not None and radius_m is not None:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not 0 < radius_m <= 20_000:
            raise InvalidParameter(code="feed.bad_circle", params={"max": 20000})
        return (f"ST_DWithin(m.geom, ST_Transform(ST_Point(:lon, :lat, 4326), {STORAGE_SRID}), :r)",
                {"lon": lon, "lat": lat, "r": radius_m}, f"{lat:.4f}, {lon:.4f} ({radius_m:.0f} m)")
    raise InvalidParameter(code="feed.no_place")


def events(conn: Connection, condition: str, params: dict[str, Any],
           limit: int = 100) -> list[dict[str, Any]]:
    """Published changes at the place, newest first (drafts never appear)."""
    rows = conn.execute(text(f"""
        SELECT h.id, h.measure_id, h.action, h.at, h.changes, h.after
        FROM measure_history h JOIN measures_public m ON m.id = h.measure_id
        WHERE m.location_precision IN ('exact', 'approximate') AND {condition}
          AND (h.after->>'published')::boolean
          AND (h.action IN ('create', 'publish')
               OR (h.changes ? 'status' OR h.changes ? 'milestones'))
        ORDER BY h.at DESC, h.id DESC LIMIT :limit"""), {**params, "limit": limit}).mappings()
    return [dict(r) for r in rows]


def _status(value: Any, lang: str) -> str:
    """A status in words (the pages' ``status.*`` keys), else the value itself."""
    return t(f"status.{value}", lang) if has(f"status.{value}") else str(value)


def _entry_title(event: dict[str, Any], lang: str) -> str:
    after, changes = event["after"], event["changes"]
    title = after.get("title") or "?"
    if event["action"] in ("create", "publish") or "published" in changes:
        return t("server.feed_new", lang, title=title)
    if "status" in changes:
        return t("server.feed_status", lang, title=title,
                 before=_status(changes["status"]["before"], lang),
                 after=_status(changes["status"]["after"], lang))
    milestones = (changes.get("milestones") or {}).get("after") or []
    latest = milestones[-1]["title"] if milestones else ""
    return t("server.feed_milestone", lang, title=title, milestone=latest)


def atom(conn: Connection, base_url: str, self_url: str, place: str,
         items: list[dict[str, Any]], lang: str = "de") -> bytes:
    """Render an Atom 1.0 document (text is escaped by ElementTree; characters XML cannot
    hold at all, such as control characters in an old stored title, are left out)."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": lang})
    ET.SubElement(feed, f"{{{ATOM}}}id").text = xml_text(self_url)
    ET.SubElement(feed, f"{{{ATOM}}}title").text = xml_text(t("server.feed_title", lang, place=place))
    updated = items[0]["at"] if items else datetime.now(UTC)
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = updated.isoformat()
    ET.SubElement(feed, f"{{{ATOM}}}link", {"rel": "self", "href": xml_text(self_url),
                                             "type": "application/atom+xml"})
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = "quarters"
    for item in items:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}id").text = (
            f"{base_url}/massnahmen/{item['measure_id']}#aenderung-{item['id']}")
        ET.SubElement(entry, f"{{{ATOM}}}title").text = xml_text(_entry_title(item, lang))
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = item["at"].isoformat()
        ET.SubElement(entry, f"{{{ATOM}}}link", {
            "rel": "alternate", "type": "text/html",
            "href": f"{base_url}/massnahmen/{item['measure_id']}"})
        summary = item["after"].get("summary") or item["after"].get("title") or ""
        ET.SubElement(entry, f"{{{ATOM}}}summary", {"type": "text"}).text = xml_text(summary)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")
