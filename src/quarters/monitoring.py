"""Monitoring for the Smart-City office: counts, budgets, milestones, editions, status over time.

All SQL of the monitoring view is here. Every table is computed over one set of measures:
the measures the caller may see (public: the view ``measures_public``, published and not
deleted; staff: ``measures_current``, drafts included) that match the filters (city, pilot
quarter, membership in a strategy edition). Figures are the measures' current values.

- A measure lying in two pilot quarters counts in both rows of ``budget_by_quarter``; a
  measure in none is in the row with an empty quarter, so the rows of every other table add
  up to the totals.
- Milestones: those not reached (``offen``, ``verschoben``) of measures that were not
  stopped (``eingestellt``); overdue when their date lies before ``as_of``, due when it lies
  from ``as_of`` to ``as_of`` + ``due_days`` (both included).
- Status history: the state of each measure at the end of every month (Europe/Berlin) as
  recorded in ``measure_history`` (the latest entry at that time, by its time); a measure counts in a
  month when it existed and was not deleted then, and for the public only when it was also
  published then. The month of ``as_of`` counts what the history holds up to now.
- Editions: members per edition and the changes between consecutive editions of a city (the
  diff of :mod:`quarters.editions`, same visibility rule), restricted to the measures of the
  quarter filter; the edition filter picks the pairs that involve that edition.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from quarters import editions
from quarters.errors import InvalidParameter
from quarters.schemas import STATUSES
from quarters.settings import PROJECT_CITIES

LOCAL_TZ = "Europe/Berlin"
REACHED = "erreicht"
STOPPED = "eingestellt"

# table → its columns (the order of the CSV and of the page's tables)
TABLES: dict[str, tuple[str, ...]] = {
    "status": ("status", "measures"),
    "status_by_field": ("city_ags", "action_field", *STATUSES, "total"),
    "budget_by_field": ("city_ags", "action_field", "measures", "with_budget",
                        "budget_planned", "budget_spent"),
    "budget_by_quarter": ("quarter", "name", "measures", "with_budget", "budget_planned",
                          "budget_spent"),
    "budget_by_funding": ("funding_line", "measures", "with_budget", "budget_planned",
                          "budget_spent"),
    "milestones": ("state", "date", "days", "milestone", "milestone_status", "measure_id",
                   "title", "city_ags", "action_field", "measure_status"),
    "editions": ("edition", "city_ags", "title", "year", "measures", "added", "removed",
                 "changed"),
    "edition_changes": ("from", "to", "change", "measure_id", "title", "status", "fields"),
    "status_history": ("month", *STATUSES, "total"),
}
MONEY = {"budget_planned", "budget_spent"}


@dataclass(frozen=True)
class Filters:
    """What the caller asked for (already checked for form by the API)."""

    city: str | None = None
    edition: str | None = None
    quarter: str | None = None
    due_days: int = 90
    months: int = 36
    as_of: date | None = None

    def day(self) -> date:
        """The reference day of milestones and history (today unless given)."""
        return self.as_of or date.today()


def _money(value: Any) -> float:
    return float(value or Decimal(0))


def _check(conn: Connection, f: Filters) -> None:
    """Unknown edition or quarter (or one of another city) → 400."""
    if f.city is not None and f.city not in PROJECT_CITIES:
        raise InvalidParameter(code="monitoring.city", pointer="city", params={
            "value": str(f.city)[:80], "allowed": ", ".join(PROJECT_CITIES)})
    for name, value, sql in (
            ("edition", f.edition, "SELECT city_ags FROM editions WHERE key = :k"),
            ("quarter", f.quarter, "SELECT city_ags FROM quarters WHERE slug = :k")):
        if value is None:
            continue
        row = conn.execute(text(sql), {"k": value}).first()
        if row is None:
            raise InvalidParameter(code="monitoring.unknown", pointer=name,
                                   params={"name": name, "value": value[:80]})
        if f.city and row.city_ags != f.city:
            raise InvalidParameter(code="monitoring.other_city", pointer=name,
                                   params={"name": name, "value": value[:80]})


def _scope(f: Filters, public: bool) -> tuple[str, dict[str, Any]]:
    """FROM … WHERE over the visible, filtered measures (alias m)."""
    relation = "measures_public" if public else "measures_current"
    clauses, params = ["TRUE"], {}
    if f.city:
        clauses.append("m.city_ags = :city")
        params["city"] = f.city
    if f.quarter:
        clauses.append(":quarter = ANY(m.quarter_slugs)")
        params["quarter"] = f.quarter
    if f.edition:
        clauses.append("EXISTS (SELECT 1 FROM measure_editions x "
                       "WHERE x.measure_id = m.id AND x.edition_key = :edition)")
        params["edition"] = f.edition
    return f"FROM {relation} m WHERE {' AND '.join(clauses)}", params


def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in conn.execute(text(sql), params).mappings():
        row = dict(r)
        for key in MONEY & row.keys():
            row[key] = _money(row[key])
        rows.append(row)
    return rows


# -- the tables -------------------------------------------------------------------------------
def _status(conn: Connection, scope: str, params: dict) -> list[dict[str, Any]]:
    found = dict(conn.execute(text(f"SELECT m.status, count(*) {scope} GROUP BY m.status"),
                              params).all())
    return [{"status": s, "measures": found.get(s, 0)} for s in STATUSES]


def _status_by_field(conn: Connection, scope: str, params: dict) -> list[dict[str, Any]]:
    counts = ", ".join(f"count(*) FILTER (WHERE m.status = '{s}') AS {s}" for s in STATUSES)
    return _rows(conn, f"""
        SELECT m.city_ags, m.action_field, {counts}, count(*) AS total {scope}
        GROUP BY m.city_ags, m.action_field ORDER BY m.city_ags, m.action_field""", params)


_BUDGET = """count(*) AS measures, count(m.budget_planned) AS with_budget,
             COALESCE(sum(m.budget_planned), 0) AS budget_planned,
             COALESCE(sum(m.budget_spent), 0) AS budget_spent"""


def _budget_by_field(conn: Connection, scope: str, params: dict) -> list[dict[str, Any]]:
    return _rows(conn, f"""
        SELECT m.city_ags, m.action_field, {_BUDGET} {scope}
        GROUP BY m.city_ags, m.action_field ORDER BY m.city_ags, m.action_field""", params)


def _budget_by_quarter(conn: Connection, scope: str, params: dict) -> list[dict[str, Any]]:
    return _rows(conn, f"""
        SELECT COALESCE(q.slug, '') AS quarter, COALESCE(q.name, '') AS name, {_BUDGET}
        FROM (SELECT m.* {scope}) m
        LEFT JOIN LATERAL unnest(m.quarter_slugs) AS s(slug) ON true
        LEFT JOIN quarters q ON q.slug = s.slug
        GROUP BY q.slug, q.name ORDER BY q.slug IS NULL, q.name""", params)


def _budget_by_funding(conn: Connection, scope: str, params: dict) -> list[dict[str, Any]]:
    return _rows(conn, f"""
        SELECT COALESCE(m.funding_line, '') AS funding_line, {_BUDGET} {scope}
        GROUP BY m.funding_line ORDER BY m.funding_line IS NULL, m.funding_line""", params)


def _milestones(conn: Connection, scope: str, params: dict, f: Filters) -> list[dict[str, Any]]:
    day = f.day()
    rows = _rows(conn, f"""
        SELECT CASE WHEN ms.d < :day THEN 'overdue' ELSE 'due' END AS state,
               ms.d AS date, ms.d - CAST(:day AS date) AS days,
               ms.item->>'title' AS milestone, COALESCE(ms.item->>'status', 'offen')
                   AS milestone_status,
               m.id AS measure_id, m.title, m.city_ags, m.action_field, m.status AS measure_status
        FROM (SELECT m.* {scope}) m
        CROSS JOIN LATERAL (SELECT e.item, CAST(e.item->>'date' AS date) AS d
                            FROM jsonb_array_elements(m.milestones) AS e(item)) ms
        WHERE COALESCE(ms.item->>'status', 'offen') <> :reached AND m.status <> :stopped
          AND ms.d <= CAST(:day AS date) + :due_days
        ORDER BY ms.d, m.id, ms.item->>'title'""",
        {**params, "day": day, "due_days": f.due_days, "reached": REACHED, "stopped": STOPPED})
    for row in rows:
        row["date"] = row["date"].isoformat()
    return rows


def _status_history(conn: Connection, scope: str, params: dict, f: Filters,
                    public: bool) -> list[dict[str, Any]]:
    last = f.day().replace(day=1)
    first = _add_months(last, -(f.months - 1))
    published = "AND COALESCE((h.after->>'published')::boolean, false)" if public else ""
    counts = ", ".join(f"count(*) FILTER (WHERE h.after->>'status' = '{s}') AS {s}"
                       for s in STATUSES)
    rows = conn.execute(text(f"""
        WITH ids AS (SELECT m.id {scope}),
        hist AS (SELECT h.id, h.measure_id, h.after, h.at AT TIME ZONE '{LOCAL_TZ}' AS local_at
                 FROM measure_history h WHERE h.measure_id IN (SELECT id FROM ids)),
        months AS (SELECT CAST(g AS date) AS month FROM generate_series(
            GREATEST(CAST(:first AS date),
                     (SELECT CAST(date_trunc('month', min(local_at)) AS date) FROM hist)),
            CAST(:last AS date), interval '1 month') g)
        SELECT mo.month, c.*
        FROM months mo CROSS JOIN LATERAL (
            SELECT {counts}, count(*) AS total
            FROM (SELECT DISTINCT ON (hist.measure_id) hist.after FROM hist
                  WHERE hist.local_at < mo.month + interval '1 month'
                  ORDER BY hist.measure_id, hist.local_at DESC, hist.id DESC) h
            WHERE h.after IS NOT NULL AND NOT COALESCE((h.after->>'deleted')::boolean, false)
              {published}) c
        ORDER BY mo.month"""), {**params, "first": first, "last": last}).mappings()
    return [{**r, "month": r["month"].strftime("%Y-%m")} for r in rows]


def _add_months(day: date, n: int) -> date:
    index = day.year * 12 + day.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _editions(conn: Connection, f: Filters, public: bool) -> tuple[list[dict], list[dict]]:
    """Members per edition and the changes between consecutive editions of each city."""
    city = f.city or (conn.execute(text("SELECT city_ags FROM editions WHERE key = :k"),
                                   {"k": f.edition}).scalar() if f.edition else None)
    quarter = "AND me.measure_id IN (SELECT id FROM measures WHERE :quarter = ANY(quarter_slugs))" \
        if f.quarter else ""
    rows = _rows(conn, f"""
        SELECT e.key AS edition, e.city_ags, e.title, e.year, count(me.measure_id) AS measures
        FROM editions e LEFT JOIN measure_editions me ON me.edition_key = e.key
            AND {editions._visible(public)} {quarter}
        WHERE (CAST(:city AS text) IS NULL OR e.city_ags = :city)
        GROUP BY e.key ORDER BY e.city_ags, e.year, e.key""",
        {"city": city, "quarter": f.quarter})
    in_quarter = None
    if f.quarter:
        in_quarter = set(conn.execute(text(
            "SELECT id FROM measures WHERE :q = ANY(quarter_slugs)"), {"q": f.quarter}).scalars())
    changes: list[dict[str, Any]] = []
    previous: dict[str, dict] = {}
    for row in rows:
        row.update(added=0, removed=0, changed=0)
        before = previous.get(row["city_ags"])
        previous[row["city_ags"]] = row
        if before is None or (f.edition and f.edition not in (before["edition"], row["edition"])):
            continue
        d = editions.diff(conn, before["edition"], row["edition"], public=public)
        for change in ("added", "removed", "changed"):
            items = [i for i in d[change] if in_quarter is None or i["id"] in in_quarter]
            row[change] = len(items)
            changes.extend({
                "from": before["edition"], "to": row["edition"], "change": change,
                "measure_id": i["id"], "title": i["title"], "status": i["status"],
                "fields": ", ".join(i.get("changes", {}))} for i in items)
    return rows, changes


# -- the whole view ---------------------------------------------------------------------------
def options(conn: Connection) -> dict[str, Any]:
    """What the filters may take: cities, editions, pilot quarters."""
    return {
        "cities": [{"ags": k, "name": v} for k, v in PROJECT_CITIES.items()],
        "editions": [dict(r) for r in conn.execute(text(
            "SELECT key, city_ags, title, year FROM editions ORDER BY city_ags, year, key"
        )).mappings()],
        "quarters": [dict(r) for r in conn.execute(text(
            "SELECT slug, city_ags, name, name_en FROM quarters ORDER BY city_ags, name"
        )).mappings()],
    }


def overview(conn: Connection, f: Filters, public: bool) -> dict[str, Any]:
    """Every monitoring table for the caller's view and filters, with totals."""
    _check(conn, f)
    scope, params = _scope(f, public)
    totals = dict(conn.execute(text(f"SELECT {_BUDGET} {scope}"), params).mappings().one())
    for key in MONEY:
        totals[key] = _money(totals[key])
    milestones = _milestones(conn, scope, params, f)
    totals["milestones_overdue"] = sum(1 for m in milestones if m["state"] == "overdue")
    totals["milestones_due"] = len(milestones) - totals["milestones_overdue"]
    edition_rows, changes = _editions(conn, f, public)
    tables = {
        "status": _status(conn, scope, params),
        "status_by_field": _status_by_field(conn, scope, params),
        "budget_by_field": _budget_by_field(conn, scope, params),
        "budget_by_quarter": _budget_by_quarter(conn, scope, params),
        "budget_by_funding": _budget_by_funding(conn, scope, params),
        "milestones": milestones,
        "editions": edition_rows,
        "edition_changes": changes,
        "status_history": _status_history(conn, scope, params, f, public),
    }
    return {
        "view": "public" if public else "staff",
        "filters": {"city": f.city, "edition": f.edition, "quarter": f.quarter,
                    "due_days": f.due_days, "months": f.months, "as_of": f.day().isoformat(),
                    "due_until": (f.day() + timedelta(days=f.due_days)).isoformat()},
        "totals": totals,
        "columns": {name: list(cols) for name, cols in TABLES.items()},
        "tables": tables,
        "options": options(conn),
    }


def table(conn: Connection, name: str, f: Filters, public: bool) -> list[dict[str, Any]]:
    """One table of the overview."""
    if name not in TABLES:
        raise InvalidParameter(code="monitoring.table", pointer="table",
                               params={"value": name[:80], "allowed": ", ".join(TABLES)})
    return overview(conn, f, public)["tables"][name]


# -- CSV --------------------------------------------------------------------------------------
CSV_DELIMITER = ";"  # what German Excel expects; decimal comma to match
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if column in MONEY:
        return f"{value:.2f}".replace(".", ",")
    if isinstance(value, (int, float, Decimal)):
        return str(value).replace(".", ",")
    value = str(value)
    # a text cell is never read as a formula by a spreadsheet
    return "'" + value if value.startswith(FORMULA_START) else value


def to_csv(name: str, rows: list[dict[str, Any]]) -> str:
    """A table as CSV for German Excel: UTF-8 with BOM, ``;``-separated, decimal comma,
    ISO dates, a header row with the column names."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    columns = TABLES[name]
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(c, row.get(c)) for c in columns])
    return out.getvalue()
