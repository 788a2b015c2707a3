"""Vocabularies and limits, defined once: the pydantic schemas (quarters.schemas), the idea
checks (quarters.ideas), the tables' CHECK constraints (quarters.models, tested against the
migrated database) and the pages (through ``/api/config``) all read them from here.

Words for people are not here (they are in the catalogues, web/i18n/*.json): only the codes,
their order, their colours and the limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from quarters.settings import GERA_AGS, HALLE_AGS

# -- measures ---------------------------------------------------------------------------------
MEASURE_STATUSES = ("idee", "geplant", "in_umsetzung", "abgeschlossen", "eingestellt")
DEFAULT_STATUS = "idee"
# One colour per status for every map and legend (planner and public map alike): Okabe–Ito
# based, at least 3:1 against the map and white; shape and dash carry the meaning as well.
STATUS_COLOURS = {
    "idee": "#6a3d9a",
    "geplant": "#005a9c",
    "in_umsetzung": "#a14a00",
    "abgeschlossen": "#1d6b3a",
    "eingestellt": "#5b6166",
}
LOCATION_PRECISIONS = ("exact", "approximate", "city", "unknown")
DEFAULT_PRECISION = "exact"
MILESTONE_STATUSES = ("offen", "erreicht", "verschoben")
DISTRICT_STATUSES = ("geprüft", "geeignet", "ungeeignet", "übertragen")
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    HALLE_AGS: ("Bildung", "Wirtschaft", "Mobilität", "Verwaltung"),
    GERA_AGS: ("Wirtschaft", "Bildung und Kultur", "Energie und Umwelt",
               "Städtebau, Stadtentwicklung und Verkehr", "Bürgerbeteiligung und Verwaltung"),
}
MEASURE_GEOMETRY_TYPES = ("ST_Point", "ST_LineString", "ST_Polygon", "ST_MultiPoint",
                          "ST_MultiLineString", "ST_MultiPolygon")

# -- indicators (quarters.indicators.definitions) ---------------------------------------------
INDICATOR_KINDS = ("count", "rate", "share", "amount", "class")
INDICATOR_AGGREGATIONS = ("sum", "ratio", "mean", "none")

# -- people and ideas -------------------------------------------------------------------------
ROLES = ("admin", "planner", "moderator")
IDEA_STATES = ("eingereicht", "angenommen", "abgelehnt", "verknuepft", "verborgen")
IDEA_DECISIONS = ("accept", "reject", "link", "hide")


@dataclass(frozen=True)
class Range:
    """Bounds of a number."""

    min: float
    max: float

    def doc(self) -> dict[str, float]:
        """As served by /api/config (for a Length: ``maxlength`` of the pages)."""
        return {"min": self.min, "max": self.max}


@dataclass(frozen=True)
class Length(Range):
    """Bounds of a text's length in characters (after stripping)."""

    min: int
    max: int


MEASURE_TEXT = {
    "title": Length(1, 200),
    "summary": Length(0, 500),
    "description": Length(0, 20_000),
    "plain_summary": Length(0, 2_000),
    "action_field": Length(1, 100),
    "funding_line": Length(0, 300),
    "responsible_unit": Length(0, 300),
    "partner": Length(1, 200),
    "source": Length(0, 4_000),
    "licence": Length(0, 300),
    "location_note": Length(0, 1_000),
    "milestone_title": Length(1, 200),
    "link_title": Length(1, 200),
    "link_url": Length(0, 2_000),
    "transfer_notes": Length(0, 4_000),
    "district_note": Length(0, 1_000),
}
MEASURE_ITEMS = {"milestones": 100, "partners": 50, "links": 20, "editions": 20,
                 "preconditions": 20, "districts": 200}
MAX_MONEY = 1e11
MONEY = Range(0, MAX_MONEY)  # budget_planned, budget_spent, follow_up_costs_per_year (EUR)
YEARS = Range(1900, 2100)  # dates of measures, milestones and district transfers

IDEA_TEXT = {
    "title": Length(3, 120),
    "text": Length(10, 4_000),
    "contact": Length(0, 200),
    "action_field": Length(1, 100),
    "workshop_code": Length(0, 40),  # codes are "XXXX-XXXX" (9), the column holds 40
    "reason": Length(0, 2_000),
    "staff_reason": Length(0, 2_000),
    "workshop_label": Length(1, 200),
}
WORKSHOP_MAX_IDEAS = Range(1, 10_000)


def sql_in(values: tuple[str, ...]) -> str:
    """``('a', 'b')`` for a CHECK constraint (the values are the literals above)."""
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def config() -> dict:
    """Everything above for /api/config: one source for the server and the pages."""
    return {
        "statuses": list(MEASURE_STATUSES),
        "default_status": DEFAULT_STATUS,
        "status_colours": dict(STATUS_COLOURS),
        "location_precisions": list(LOCATION_PRECISIONS),
        "milestone_statuses": list(MILESTONE_STATUSES),
        "district_statuses": list(DISTRICT_STATUSES),
        "action_fields": {ags: list(fields) for ags, fields in ACTION_FIELDS.items()},
        "idea_states": list(IDEA_STATES),
        "idea_decisions": list(IDEA_DECISIONS),
        "limits": {
            "measure": {name: length.doc() for name, length in MEASURE_TEXT.items()},
            "measure_items": dict(MEASURE_ITEMS),
            "money": MONEY.doc(),
            "years": YEARS.doc(),
            "idea": {name: length.doc() for name, length in IDEA_TEXT.items()},
            "workshop_max_ideas": WORKSHOP_MAX_IDEAS.doc(),
        },
    }
