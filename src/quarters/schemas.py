"""Wire shapes of measures: what planners may send. Unknown fields are refused."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    field_validator,
    model_validator,
)

from quarters.settings import GERA_AGS, HALLE_AGS
from quarters.validation import check_text, custom_error

ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    HALLE_AGS: ("Bildung", "Wirtschaft", "Mobilität", "Verwaltung"),
    GERA_AGS: ("Wirtschaft", "Bildung und Kultur", "Energie und Umwelt",
               "Städtebau, Stadtentwicklung und Verkehr", "Bürgerbeteiligung und Verwaltung"),
}
STATUSES = ("idee", "geplant", "in_umsetzung", "abgeschlossen", "eingestellt")
PRECISIONS = ("exact", "approximate", "city", "unknown")
MAX_MONEY = 1e11

Status = Literal["idee", "geplant", "in_umsetzung", "abgeschlossen", "eingestellt"]
Precision = Literal["exact", "approximate", "city", "unknown"]


def _text(max_length: int, min_length: int = 0, multiline: bool = False) -> Any:
    """A stored text: stripped, bounded, no control characters (tab and line breaks only in
    multi-line fields), no lone surrogates."""
    return Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=min_length,
                                                      max_length=max_length),
                     AfterValidator(lambda v: check_text(v, multiline))]


Money = Annotated[float, Strict(), Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)]
Url = Annotated[str, Strict(), StringConstraints(max_length=2000, pattern=r"^https?://\S+$"),
               AfterValidator(check_text)]


class Strict_(BaseModel):
    """Base: unknown fields refused (every text field is a ``_text``: no control characters)."""

    model_config = ConfigDict(extra="forbid")


def _check_year(value: date | None) -> date | None:
    if value is not None and not 1900 <= value.year <= 2100:
        raise custom_error("measure.year_range", {"min": 1900, "max": 2100})
    return value


class Milestone(Strict_):
    """A dated step of a measure."""

    date: date
    title: _text(200, 1)
    status: Literal["offen", "erreicht", "verschoben"] = "offen"

    _year = field_validator("date")(lambda cls, v: _check_year(v))


class Link(Strict_):
    """A link to more information."""

    title: _text(200, 1)
    url: Url


OPS = ("<", "<=", ">", ">=", "=", "!=")
DISTRICT_STATUSES = ("geprüft", "geeignet", "ungeeignet", "übertragen")
IndicatorKey = Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,79}$")]
DistrictCode = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
Number = Annotated[float, Strict(), Field(ge=-1e15, le=1e15, allow_inf_nan=False)]


class Precondition(Strict_):
    """A condition a candidate unit must meet for the measure to transfer: indicator op value
    (the indicator is checked against the analysis indicators when stored)."""

    indicator: IndicatorKey
    op: Literal["<", "<=", ">", ">=", "=", "!="]
    value: Number


class DistrictTransfer(Strict_):
    """Where a measure stands in one district: checked, suitable, unsuitable or transferred."""

    status: Literal["geprüft", "geeignet", "ungeeignet", "übertragen"]
    date: date
    note: _text(1_000, multiline=True) | None = None

    _year = field_validator("date")(lambda cls, v: _check_year(v))


class TransferProfile(Strict_):
    """What a measure needs to transfer and where it was tried (district codes of its city)."""

    preconditions: list[Precondition] = Field(default_factory=list, max_length=20)
    follow_up_costs_per_year: Money | None = None
    notes: _text(4_000, multiline=True) | None = None
    districts: dict[DistrictCode, DistrictTransfer] = Field(default_factory=dict, max_length=200)


class MeasureProperties(Strict_):
    """The record of a measure (Maßnahme) as planners edit it."""

    title: _text(200, 1)
    summary: _text(500, multiline=True) | None = None
    description: _text(20_000, multiline=True) | None = None
    plain_summary: _text(2_000, multiline=True) | None = None
    city_ags: Literal["15002000", "16052000"]
    action_field: _text(100, 1)
    status: Status = "idee"
    start_date: date | None = None
    end_date: date | None = None
    milestones: list[Milestone] = Field(default_factory=list, max_length=100)
    budget_planned: Money | None = None
    budget_spent: Money | None = None
    funding_line: _text(300) | None = None
    responsible_unit: _text(300) | None = None
    partners: list[_text(200, 1)] = Field(default_factory=list, max_length=50)
    parent_id: Annotated[int, Strict(), Field(ge=1, le=2_147_483_647)] | None = None
    links: list[Link] = Field(default_factory=list, max_length=20)
    source: _text(4_000, multiline=True) | None = None
    licence: _text(300) | None = None
    location_precision: Precision = "exact"
    location_note: _text(1_000, multiline=True) | None = None
    editions: list[Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z0-9-]{1,40}$")]] = \
        Field(default_factory=list, max_length=20)
    transfer: TransferProfile | None = None

    _years = field_validator("start_date", "end_date")(lambda cls, v: _check_year(v))

    @model_validator(mode="after")
    def _rules(self) -> MeasureProperties:
        fields = ACTION_FIELDS[self.city_ags]
        if self.action_field not in fields:
            raise custom_error("measure.action_field",
                               {"value": self.action_field, "fields": ", ".join(fields),
                                "field": "action_field"})
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise custom_error("measure.end_before_start", {"field": "end_date"})
        return self


class MeasureFeature(Strict_):
    """A measure as a GeoJSON Feature (geometry checked separately, strictly)."""

    type: Literal["Feature"]
    geometry: dict[str, Any] | None
    properties: MeasureProperties
    id: Any = None  # ignored on write; the server assigns ids


PATCHABLE = set(MeasureProperties.model_fields)


class MeasurePatch(Strict_):
    """A partial update: any subset of properties, and/or a new geometry."""

    type: Literal["Feature"] | None = None
    geometry: dict[str, Any] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("properties")
    @classmethod
    def _known(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - PATCHABLE)
        if unknown:
            raise custom_error("measure.unknown_fields", {"fields": ", ".join(unknown)})
        return value
