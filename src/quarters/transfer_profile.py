"""Transfer profile of a measure: preconditions in a ranking, one-step transfer.

A measure's ``transfer`` property (:class:`quarters.schemas.TransferProfile`) says what a place
needs for the measure to work there (``preconditions`` over analysis indicators), what it costs
afterwards, and where it was checked, judged suitable or unsuitable, or transferred (``districts``,
keyed by district code of the measure's city).

* :func:`apply` – the hook of :func:`quarters.transfer.run_transfer` for ``reference=measure:<id>``:
  every candidate gets ``meets_preconditions`` and the failed conditions; the candidates that
  meet them are ranked first (the reference unit stays first), similarity order within each group.
* :func:`transfer_to_district` – a new draft in a district, linked to its origin by
  ``origin_id``; the origin's status for that district becomes ``übertragen``.

The database checks of a profile on write (known indicators, known districts) are
:func:`quarters.measures.check_transfer`, beside the other checks of a measure's links.
"""

from __future__ import annotations

import operator
from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from quarters import measures
from quarters.errors import InvalidInput, item
from quarters.schemas import MeasureProperties

OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
             "=": operator.eq, "!=": operator.ne}
TITLE_MAX = 200


# -- preconditions in a ranking ----------------------------------------------------------------
def _published_profile(conn: Connection, measure_id: int) -> dict[str, Any] | None:
    return conn.execute(text("SELECT transfer FROM measures_public WHERE id = :i"),
                        {"i": measure_id}).scalar()


def evaluate(values: pd.DataFrame, preconditions: list[dict[str, Any]]) -> pd.DataFrame:
    """Per unit (index of ``values``): ``meets`` (bool) and ``failed`` (list of the conditions
    not met; a missing value fails its condition)."""
    failed: list[list[dict[str, Any]]] = [[] for _ in range(len(values))]
    for cond in preconditions:
        column = values[cond["indicator"]].to_numpy(dtype=float)
        ok = np.zeros(len(column), dtype=bool)
        present = ~np.isnan(column)
        ok[present] = OPERATORS[cond["op"]](column[present], float(cond["value"]))
        for i in np.flatnonzero(~ok):
            value = None if np.isnan(column[i]) else float(column[i])
            failed[i].append({**cond, "actual": value})
    return pd.DataFrame({"meets": [not f for f in failed], "failed": failed},
                        index=values.index)


def apply(conn: Connection, res: Any) -> Any:
    """The ranking of ``res`` with preconditions applied, if its reference is a published
    measure with preconditions; otherwise ``res`` unchanged. Never mutates ``res``."""
    from quarters.indicators.reading import values_table

    reference = res.reference
    if reference.kind != "measure":
        return res
    measure_id = int(reference.spec.partition(":")[2].strip())
    profile = _published_profile(conn, measure_id) or {}
    conditions = profile.get("preconditions") or []
    if not conditions:
        return res
    keys = list(dict.fromkeys(c["indicator"] for c in conditions))
    values, _, _ = values_table(conn, res.level, keys)
    verdict = evaluate(values.reindex(res.ranking.index), conditions)
    ranking = res.ranking.copy()
    ranking["similarity_rank"] = ranking["rank"]
    ranking["meets_preconditions"] = verdict["meets"].to_numpy()
    ranking["failed_preconditions"] = verdict["failed"].to_numpy()
    group = np.where(ranking["is_reference"], 0, np.where(ranking["meets_preconditions"], 1, 2))
    order = np.lexsort((ranking["similarity_rank"].to_numpy(), group))
    ranking = ranking.iloc[order]
    ranking["rank"] = np.arange(1, len(ranking) + 1)
    meeting = int(ranking["meets_preconditions"].sum())
    summary = {"measure_id": measure_id, "conditions": conditions,
               "candidates_meeting": meeting, "candidates_failing": len(ranking) - meeting}
    return replace(res, ranking=ranking, reference=replace(reference, preconditions=summary))


def row_fields(row: pd.Series) -> dict[str, Any]:
    """The ranking row's precondition fields (empty when none were applied)."""
    if "meets_preconditions" not in row.index:
        return {}
    return {"meets_preconditions": bool(row["meets_preconditions"]),
            "failed_preconditions": list(row["failed_preconditions"]),
            "similarity_rank": int(row["similarity_rank"])}


# -- one-step transfer -------------------------------------------------------------------------
def _district(conn: Connection, city_ags: str, code: str) -> Any:
    row = conn.execute(text("""
        SELECT d.id, d.code, d.name, ST_AsBinary(ST_Transform(ST_PointOnSurface(d.geom), 4326))
               AS point
        FROM districts d WHERE d.city_ags = :c AND d.code = :code
        ORDER BY d.level = 'stadtviertel' DESC, d.id LIMIT 1"""),
        {"c": city_ags, "code": code}).first()
    if row is None:
        raise InvalidInput(code="transfer.unknown_district", pointer="/district_code",
                           params={"code": code},
                           errors=[item("/district_code", "transfer.unknown_district", code=code)])
    return row


def transferred_title(title: str, district_name: str) -> str:
    """„<title> (übertragen nach <district>)“, the title shortened to fit 200 characters."""
    suffix = f" (übertragen nach {district_name})"
    room = TITLE_MAX - len(suffix)
    if len(title) > room:
        title = title[:max(room - 1, 1)].rstrip() + "…"
    return (title + suffix)[:TITLE_MAX]


def transfer_to_district(conn: Connection, origin_id: int, version: int, district_code: str,
                         actor: Any, today: date | None = None) -> tuple[dict, dict]:
    """Create a draft of the measure in ``district_code`` (its representative point as a
    stand-in location) linked to the origin, and mark the origin's district ``übertragen``;
    both changes in history. Returns (new draft, origin) as records."""
    measures._check_version(conn, origin_id, version, measures.STAFF)  # 404 / 412 first
    origin = measures.get(conn, origin_id, measures.STAFF)
    district = _district(conn, origin["city_ags"], district_code)
    if district.id in [d["id"] for d in origin["districts"]]:
        raise InvalidInput(code="transfer.origin_district", pointer="/district_code",
                           params={"name": district.name}, errors=[
                               item("/district_code", "transfer.origin_district",
                                    name=district.name)])
    already = conn.execute(text(
        "SELECT id FROM measures_current WHERE origin_id = :o AND :d = ANY(district_ids)"),
        {"o": origin_id, "d": district.id}).scalar()
    if already is not None:
        params = {"name": district.name, "id": already}
        raise InvalidInput(code="transfer.already", pointer="/district_code", params=params,
                           errors=[item("/district_code", "transfer.already", **params)])
    old = origin.get("transfer") or {}
    props = MeasureProperties.model_validate({
        "title": transferred_title(origin["title"], district.name),
        "summary": origin.get("summary"), "description": origin.get("description"),
        "plain_summary": origin.get("plain_summary"), "city_ags": origin["city_ags"],
        "action_field": origin["action_field"], "status": "idee",
        "responsible_unit": origin.get("responsible_unit"),
        "partners": origin.get("partners") or [], "links": origin.get("links") or [],
        "source": origin.get("source"), "licence": origin.get("licence"),
        "location_precision": "approximate",
        "location_note": f"Platzhalter: repräsentativer Punkt von {district.name} "
                         f"(übertragen aus Maßnahme {origin_id}); Standort noch festzulegen.",
        "transfer": {"preconditions": old.get("preconditions") or [],
                     "follow_up_costs_per_year": old.get("follow_up_costs_per_year")},
    })
    point = shapely.from_wkb(bytes(district.point))
    new = measures.create(conn, props, point, actor, origin_id=origin_id,
                          action=f"transfer-from:{origin_id}")
    day = (today or date.today()).isoformat()
    entry = dict((old.get("districts") or {}).get(district.code) or {})
    note = f"Übertragen als Maßnahme {new['id']}"
    entry.update(status="übertragen", date=day,
                 note=(f"{entry['note']} — {note}" if entry.get("note") else note)[:1000])
    profile = {**old, "districts": {**(old.get("districts") or {}), district.code: entry}}
    record = {k: origin.get(k) for k in MeasureProperties.model_fields} | {"transfer": profile}
    origin_props = MeasureProperties.model_validate(record)
    geom = shapely.geometry.shape(origin["geometry"])
    updated = measures.update(conn, origin_id, version, origin_props, geom, actor,
                              action=f"transfer-to:{new['id']}")
    return new, updated

