"""Monitoring for the Smart-City office (staff, drafts included) and its public summary.

Staff are planners and admins; moderators see what the public sees (the public summary), as
with strategy editions. The public summary is computed over ``measures_public`` only.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from quarters import monitoring
from quarters.api.deps import ConnDep, PlannerDep, SettingsDep
from quarters.errors import InvalidParameter

router = APIRouter(prefix="/api/monitoring", tags=["monitoring"])

Table = Literal["status", "status_by_field", "budget_by_field", "budget_by_quarter",
                "budget_by_funding", "milestones", "editions", "edition_changes",
                "status_history"]
assert set(Table.__args__) == set(monitoring.TABLES)  # one list of tables


def filters(
    settings: SettingsDep,
    city: Annotated[Literal["15002000", "16052000"] | None, Query(
        description="AGS of a project city (Halle (Saale) 15002000, Gera 16052000)")] = None,
    edition: Annotated[str | None, Query(pattern=r"^[a-z0-9-]{1,40}$",
                                         description="only measures of this strategy edition")] = None,
    quarter: Annotated[str | None, Query(pattern=r"^[a-z0-9-]{1,80}$",
                                         description="only measures in this pilot quarter (slug)")] = None,
    due_days: Annotated[int | None, Query(ge=1, le=3650, description=(
        "milestones due within this many days (default: setting monitoring_due_days)"))] = None,
    months: Annotated[int | None, Query(ge=1, le=240, description=(
        "months of status history (default: setting monitoring_months)"))] = None,
    as_of: Annotated[date | None, Query(description="reference day (default today)")] = None,
) -> monitoring.Filters:
    """The filters of every monitoring request (a malformed value is a 400 problem)."""
    if as_of is not None and not 1900 <= as_of.year <= 2100:
        raise InvalidParameter(code="monitoring.as_of", pointer="as_of",
                               params={"min": 1900, "max": 2100, "value": as_of.year})
    return monitoring.Filters(city=city, edition=edition, quarter=quarter,
                              due_days=due_days or settings.monitoring_due_days,
                              months=months or settings.monitoring_months, as_of=as_of)


FiltersDep = Annotated[monitoring.Filters, Depends(filters)]
CSV_TYPE = "text/csv; charset=utf-8; header=present"


def _csv(name: str, rows: list[dict], public: bool) -> Response:
    prefix = "monitoring-oeffentlich" if public else "monitoring"
    return Response(monitoring.to_csv(name, rows), media_type=CSV_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{prefix}-{name}.csv"'})


@router.get("", summary="Monitoring (planners, admins; drafts included)")
def staff_overview(conn: ConnDep, user: PlannerDep, f: FiltersDep) -> dict:
    """Counts by status and action field, budgets planned vs spent per action field, pilot
    quarter and funding line, milestones overdue and due, measures per edition and the
    changes between editions, and the status history per month, over every measure that is
    not deleted (drafts included), filtered by city, edition and quarter."""
    return monitoring.overview(conn, f, public=False)


@router.get("/public", summary="Monitoring summary (public: published measures only)")
def public_overview(conn: ConnDep, f: FiltersDep) -> dict:
    """The same tables over the published, not deleted measures (view measures_public)."""
    return monitoring.overview(conn, f, public=True)


@router.get("/public/{table}.csv", summary="One table of the public summary as CSV",
            response_class=Response)
def public_csv(table: Table, conn: ConnDep, f: FiltersDep) -> Response:
    """CSV for German Excel: UTF-8 with BOM, `;`-separated, decimal comma, ISO dates."""
    return _csv(table, monitoring.table(conn, table, f, public=True), public=True)


@router.get("/{table}.csv", summary="One monitoring table as CSV (planners, admins)",
            response_class=Response)
def staff_csv(table: Table, conn: ConnDep, user: PlannerDep, f: FiltersDep) -> Response:
    """CSV for German Excel: UTF-8 with BOM, `;`-separated, decimal comma, ISO dates."""
    return _csv(table, monitoring.table(conn, table, f, public=False), public=False)
