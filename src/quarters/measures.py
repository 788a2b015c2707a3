"""Measures: create, read, change, publish, delete, history, editions. All SQL is here.

Public reads go through the view ``measures_public`` only; staff read ``measures_current``.
Every change is a compare-and-set on ``version`` and appends to ``measure_history`` in the
same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from quarters.auth import User
from quarters.errors import InvalidInput, NotFound, PreconditionFailed, item
from quarters.schemas import MeasureProperties, TransferProfile
from quarters.settings import STORAGE_SRID

RECORD_FIELDS = [f for f in MeasureProperties.model_fields if f != "editions"]
JSON_FIELDS = {"milestones", "partners", "links", "transfer"}
CITY_BUFFER_M = 3000  # the VG5000 outline is generalised; sites like Star Park cross it
PUBLIC, STAFF, ALL = "measures_public", "measures_current", "measures"


@dataclass(frozen=True)
class Actor:
    """Who makes a change (a user, or a named system process such as the seed loader)."""

    id: int | None
    name: str

    @classmethod
    def of(cls, user: User) -> Actor:
        """The actor for a signed-in user."""
        return cls(user.id, user.username)


def etag(measure_id: int, version: int) -> str:
    """Strong ETag of a measure version."""
    return f'"m{measure_id}-v{version}"'


# -- reading ----------------------------------------------------------------------------------
def _select(relation: str) -> str:
    cols = ", ".join(f"m.{c}" for c in RECORD_FIELDS)
    extra = "true AS published, m.published_at, m.updated_at, m.version" if relation == PUBLIC \
        else ("m.published, m.published_at, m.deleted_at, m.created_at, m.updated_at, m.version, "
              "(SELECT u.display_name FROM users u WHERE u.id = m.updated_by) AS updated_by")
    return f"""
        SELECT m.id, {cols}, m.origin_id, {extra},
            ST_AsGeoJSON(m.geom_wgs84, 7)::json AS geometry,
            m.quarter_slugs AS quarters,
            (SELECT COALESCE(json_agg(json_build_object('id', d.id, 'code', d.code, 'name', d.name)
                    ORDER BY d.name), '[]') FROM districts d WHERE d.id = ANY(m.district_ids))
                AS districts,
            ARRAY(SELECT e.edition_key FROM measure_editions e WHERE e.measure_id = m.id
                  ORDER BY e.edition_key) AS editions
        FROM {relation} m"""


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _record(row: Any) -> dict[str, Any]:
    record = {k: _plain(v) for k, v in row._mapping.items()}
    if "deleted_at" in record:
        record["deleted"] = record.pop("deleted_at") is not None
    return record


def get(conn: Connection, measure_id: int, relation: str = PUBLIC) -> dict[str, Any]:
    """One measure as a record dict (geometry as GeoJSON), or NotFound."""
    row = conn.execute(text(_select(relation) + " WHERE m.id = :id"), {"id": measure_id}).first()
    if row is None:
        raise NotFound(code="measure.not_found", params={"id": measure_id})
    return _record(row)


def feature(record: dict[str, Any]) -> dict[str, Any]:
    """A record as a GeoJSON Feature."""
    props = {k: v for k, v in record.items() if k != "geometry"}
    return {"type": "Feature", "id": record["id"], "geometry": record["geometry"],
            "properties": props}


def for_history(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of a record that history keeps (what a person can change)."""
    keep = [*RECORD_FIELDS, "origin_id", "editions", "geometry", "published", "deleted"]
    return {k: record.get(k) for k in keep}


# -- checks -----------------------------------------------------------------------------------
def _rule(pointer: str, code: str, /, **params: Any) -> InvalidInput:
    """A broken rule about one place of the measure (422)."""
    return InvalidInput(code=code, params=params, pointer=pointer,
                        errors=[item(pointer, code, **params)])


def _check_place(conn: Connection, props: MeasureProperties, geom: BaseGeometry) -> None:
    row = conn.execute(text(f"""
        SELECT ST_Within(g, ST_Buffer(c.geom, :buffer)), ST_IsValid(g), ST_IsValidReason(g), c.name
        FROM municipalities c,
             LATERAL (SELECT ST_Transform(ST_GeomFromWKB(:wkb, 4326), {STORAGE_SRID}) AS g) x
        WHERE c.ags = :city
    """), {"wkb": shapely.to_wkb(geom), "city": props.city_ags, "buffer": CITY_BUFFER_M}).first()
    if row is None:
        raise InvalidInput(code="measure.city_not_loaded", params={"ags": props.city_ags},
                           pointer="/properties/city_ags", errors=[item(
                               "/properties/city_ags", "measure.city_not_loaded", ags=props.city_ags)])
    inside, valid, reason, name = row
    if not valid:
        raise InvalidInput(code="geometry.invalid_projected", params={"reason": reason},
                           pointer="/geometry", errors=[item(
                               "/geometry", "geometry.invalid_projected", reason=reason)])
    if not inside:
        params = {"city": name, "buffer_km": CITY_BUFFER_M / 1000}
        raise InvalidInput(code="measure.outside_area", params=params, pointer="/geometry",
                           errors=[item("/geometry", "measure.outside_area", **params)])


def _check_links(conn: Connection, measure_id: int | None, props: MeasureProperties) -> None:
    if props.parent_id is not None:
        parent = conn.execute(text(
            "SELECT city_ags FROM measures_current WHERE id = :p"), {"p": props.parent_id}).first()
        if parent is None:
            raise _rule("/properties/parent_id", "measure.unknown_parent", id=props.parent_id)
        if parent.city_ags != props.city_ags:
            raise _rule("/properties/parent_id", "measure.parent_other_city")
        if measure_id is not None and conn.execute(text("""
            WITH RECURSIVE up(id) AS (SELECT CAST(:p AS integer) UNION
                SELECT m.parent_id FROM measures m JOIN up ON m.id = up.id
                WHERE m.parent_id IS NOT NULL)
            SELECT 1 FROM up WHERE id = :me"""), {"p": props.parent_id, "me": measure_id}).first():
            raise _rule("/properties/parent_id", "measure.parent_cycle")
    if props.transfer is not None:
        check_transfer(conn, props.city_ags, props.transfer)
    if props.editions:
        found = dict(conn.execute(text(
            "SELECT key, city_ags FROM editions WHERE key = ANY(:k)"), {"k": props.editions}).all())
        for i, key in enumerate(props.editions):
            if key not in found:
                raise _rule(f"/properties/editions/{i}", "measure.unknown_edition", key=key)
            if found[key] != props.city_ags:
                raise _rule(f"/properties/editions/{i}", "measure.edition_other_city", key=key)


TRANSFER = "/properties/transfer"


def check_transfer(conn: Connection, city_ags: str, profile: TransferProfile) -> None:
    """The database checks of a ``transfer`` profile (:mod:`quarters.transfer_profile`):
    InvalidInput (422) naming the pointer of an unknown indicator or district code."""
    from quarters.indicators.definitions import definitions

    if profile.preconditions:
        known = definitions(conn)
        for i, cond in enumerate(profile.preconditions):
            if cond.indicator not in known:
                pointer = f"{TRANSFER}/preconditions/{i}/indicator"
                raise InvalidInput(code="measure.transfer_indicator", pointer=pointer,
                                   params={"key": cond.indicator},
                                   errors=[item(pointer, "measure.transfer_indicator",
                                                key=cond.indicator)])
    if profile.districts:
        codes = set(conn.execute(text(
            "SELECT code FROM districts WHERE city_ags = :c AND code = ANY(:codes)"),
            {"c": city_ags, "codes": list(profile.districts)}).scalars())
        for code in profile.districts:
            if code not in codes:
                pointer = f"{TRANSFER}/districts/{code}"
                raise InvalidInput(code="measure.transfer_district", pointer=pointer,
                                   params={"code": code},
                                   errors=[item(pointer, "measure.transfer_district", code=code)])


def _values(props: MeasureProperties, geom: BaseGeometry) -> dict[str, Any]:
    data = props.model_dump(mode="json")
    values = {f: (json.dumps(data[f], ensure_ascii=False)
                  if f in JSON_FIELDS and data[f] is not None else data[f])
              for f in RECORD_FIELDS}
    values["wkb"] = shapely.to_wkb(geom)
    return values


def _assignments() -> str:
    return ", ".join(
        f"{f} = CAST(:{f} AS jsonb)" if f in JSON_FIELDS else f"{f} = :{f}" for f in RECORD_FIELDS)


_GEOM_IN = f"ST_Transform(ST_GeomFromWKB(:wkb, 4326), {STORAGE_SRID})"


# -- writing ----------------------------------------------------------------------------------
def create(conn: Connection, props: MeasureProperties, geom: BaseGeometry, actor: Actor,
           *, slug: str | None = None, published: bool = False, origin_id: int | None = None,
           action: str = "create") -> dict[str, Any]:
    """Insert a measure (a draft unless ``published``) and record it in history;
    ``origin_id`` links a measure transferred from another one (set by the server only)."""
    _check_place(conn, props, geom)
    _check_links(conn, None, props)
    cols = ", ".join(RECORD_FIELDS)
    binds = ", ".join(f"CAST(:{f} AS jsonb)" if f in JSON_FIELDS else f":{f}"
                      for f in RECORD_FIELDS)
    measure_id = conn.execute(text(f"""
        INSERT INTO measures ({cols}, slug, geom, published, published_at, created_by, updated_by,
                              origin_id)
        VALUES ({binds}, :slug, {_GEOM_IN}, :published, CASE WHEN :published THEN now() END,
                :actor, :actor, :origin)
        RETURNING id"""), {**_values(props, geom), "slug": slug, "published": published,
                           "actor": actor.id, "origin": origin_id}).scalar_one()
    _set_editions(conn, measure_id, props.editions)
    after = get(conn, measure_id, STAFF)
    _append(conn, measure_id, after["version"], action, actor, None, after)
    return after


def update(conn: Connection, measure_id: int, version: int, props: MeasureProperties,
           geom: BaseGeometry, actor: Actor, action: str = "update") -> dict[str, Any]:
    """Replace a measure's record and geometry if ``version`` is still current."""
    before = _current(conn, measure_id, version)
    _check_place(conn, props, geom)
    _check_links(conn, measure_id, props)
    _cas(conn, measure_id, version, f"{_assignments()}, geom = {_GEOM_IN}", _values(props, geom),
         actor)
    _set_editions(conn, measure_id, props.editions)
    after = get(conn, measure_id, STAFF)
    _append(conn, measure_id, after["version"], action, actor, before, after)
    return after


def set_published(conn: Connection, measure_id: int, version: int, published: bool,
                  actor: Actor) -> dict[str, Any]:
    """Publish or unpublish."""
    before = _current(conn, measure_id, version)
    _cas(conn, measure_id, version,
         "published = :pub, published_at = CASE WHEN :pub THEN now() ELSE published_at END",
         {"pub": published}, actor)
    after = get(conn, measure_id, STAFF)
    _append(conn, measure_id, after["version"], "publish" if published else "unpublish", actor,
            before, after)
    _refresh_snapshots(conn, measure_id)
    return after


def delete(conn: Connection, measure_id: int, version: int, actor: Actor) -> None:
    """Soft-delete: the measure disappears everywhere but can be restored by an admin."""
    before = _current(conn, measure_id, version)
    _cas(conn, measure_id, version, "deleted_at = now()", {}, actor)
    after = get(conn, measure_id, ALL)
    _append(conn, measure_id, after["version"], "delete", actor, before, after)


def restore_deleted(conn: Connection, measure_id: int, version: int, actor: Actor) -> dict:
    """Bring a soft-deleted measure back."""
    before = get(conn, measure_id, ALL)
    if not before["deleted"]:
        raise InvalidInput(code="measure.not_deleted", params={"id": measure_id})
    _check_version(conn, measure_id, version, ALL)
    _cas(conn, measure_id, version, "deleted_at = NULL", {}, actor, relation=ALL)
    after = get(conn, measure_id, STAFF)
    _append(conn, measure_id, after["version"], "restore", actor, before, after)
    return after


def revert(conn: Connection, measure_id: int, version: int, to_version: int,
           actor: Actor) -> dict[str, Any]:
    """Restore the record and geometry a measure had at ``to_version`` (as a new version)."""
    row = conn.execute(text(
        "SELECT after FROM measure_history WHERE measure_id = :id AND version = :v"),
        {"id": measure_id, "v": to_version}).first()
    if row is None or row.after is None:
        raise NotFound(code="measure.no_version", params={"id": measure_id, "version": to_version})
    old = row.after
    props = MeasureProperties.model_validate(
        {k: old.get(k) for k in MeasureProperties.model_fields if k in old})
    geom = shapely.geometry.shape(old["geometry"])
    return update(conn, measure_id, version, props, geom, actor, action=f"revert:{to_version}")


def history(conn: Connection, measure_id: int) -> list[dict[str, Any]]:
    """Every change of a measure, oldest first."""
    get(conn, measure_id, ALL)
    rows = conn.execute(text(
        "SELECT version, action, actor, at, changes FROM measure_history "
        "WHERE measure_id = :id ORDER BY id"), {"id": measure_id}).mappings()
    return [{**r, "at": r["at"].isoformat()} for r in rows]


# -- internals --------------------------------------------------------------------------------
def _check_version(conn: Connection, measure_id: int, version: int, relation: str) -> None:
    current = get(conn, measure_id, relation)
    if current["version"] != version:
        raise PreconditionFailed(
            code="measure.changed", params={"id": measure_id, "sent": version,
                                            "current": current["version"]},
            extra={"current": feature(current)},
            headers={"ETag": etag(measure_id, current["version"])})


def _current(conn: Connection, measure_id: int, version: int) -> dict[str, Any]:
    _check_version(conn, measure_id, version, STAFF)
    return get(conn, measure_id, STAFF)


def _cas(conn: Connection, measure_id: int, version: int, assignments: str,
         params: dict[str, Any], actor: Actor, relation: str = STAFF) -> None:
    """Compare-and-set in one UPDATE: the row changes only if ``version`` is still current."""
    deleted = "" if relation == ALL else " AND deleted_at IS NULL"
    changed = conn.execute(text(f"""
        UPDATE measures SET {assignments}, version = version + 1, updated_at = now(),
               updated_by = :actor
        WHERE id = :id AND version = :version{deleted}
        RETURNING version"""), {**params, "id": measure_id, "version": version,
                                "actor": actor.id}).first()
    if changed is None:
        _check_version(conn, measure_id, version, ALL)
        raise NotFound(code="measure.not_found", params={"id": measure_id})


def _append(conn: Connection, measure_id: int, version: int, action: str, actor: Actor,
            before: dict | None, after: dict | None) -> None:
    b = for_history(before) if before else None
    a = for_history(after) if after else None
    changes = {k: {"before": (b or {}).get(k), "after": a.get(k)}
               for k in (a or {}) if (b or {}).get(k) != a.get(k)}
    conn.execute(text("""
        INSERT INTO measure_history (measure_id, version, action, actor_id, actor, changes,
                                     before, after)
        VALUES (:id, :v, :action, :actor_id, :actor, CAST(:changes AS jsonb),
                CAST(:before AS jsonb), CAST(:after AS jsonb))
    """), {"id": measure_id, "v": version, "action": action, "actor_id": actor.id,
           "actor": actor.name, "changes": json.dumps(changes, ensure_ascii=False),
           "before": json.dumps(b, ensure_ascii=False) if b else None,
           "after": json.dumps(a, ensure_ascii=False) if a else None})


def _set_editions(conn: Connection, measure_id: int, editions: list[str]) -> None:
    """Membership in strategy editions; frozen editions keep their snapshot untouched."""
    conn.execute(text("""
        DELETE FROM measure_editions me USING editions e
        WHERE me.edition_key = e.key AND NOT e.frozen AND me.measure_id = :id
          AND me.edition_key <> ALL(:keys)"""), {"id": measure_id, "keys": editions})
    for key in editions:
        conn.execute(text("""
            INSERT INTO measure_editions (measure_id, edition_key, snapshot, geom)
            SELECT :id, :key, '{}'::jsonb, m.geom FROM measures m WHERE m.id = :id
            ON CONFLICT DO NOTHING"""), {"id": measure_id, "key": key})
    _refresh_snapshots(conn, measure_id)


def _refresh_snapshots(conn: Connection, measure_id: int) -> None:
    record = get(conn, measure_id, STAFF)
    snapshot = {k: v for k, v in for_history(record).items() if k != "geometry"}
    conn.execute(text("""
        UPDATE measure_editions me SET snapshot = CAST(:snap AS jsonb), geom = m.geom
        FROM measures m, editions e
        WHERE me.measure_id = :id AND m.id = me.measure_id AND e.key = me.edition_key
          AND NOT e.frozen"""), {"id": measure_id,
                                 "snap": json.dumps(snapshot, ensure_ascii=False)})
