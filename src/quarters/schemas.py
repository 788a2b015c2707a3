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

from quarters.validation import check_text, custom_error
from quarters.vocabulary import (
    ACTION_FIELDS,
    DEFAULT_PRECISION,
    DEFAULT_STATUS,
    DISTRICT_STATUSES,
    LOCATION_PRECISIONS,
    MEASURE_ITEMS,
    MEASURE_STATUSES,
    MEASURE_TEXT,
    MILESTONE_STATUSES,
    MONEY,
    YEARS,
)

# the vocabularies live in quarters.vocabulary; these names stay for the modules that use them
STATUSES = MEASURE_STATUSES
PRECISIONS = LOCATION_PRECISIONS

Status = Literal[MEASURE_STATUSES]  # type: ignore[valid-type]
Precision = Literal[LOCATION_PRECISIONS]  # type: ignore[valid-type]


def _text(max_length: int, min_length: int = 0, multiline: bool = False) -> Any:
    """A stored text: stripped, bounded, no control characters (tab and line breaks only in
    multi-line fields), no lone surrogates."""
    return Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=min_length,
                                                      max_length=max_length),
                     AfterValidator(lambda v: check_text(v, multiline))]


def _field(name: str, multiline: bool = False) -> Any:
    """The text field ``name`` of a measure, bounded as quarters.vocabulary.MEASURE_TEXT says."""
    length = MEASURE_TEXT[name]
    return _text(length.max, length.min, multiline)


Money = Annotated[float, Strict(), Field(ge=MONEY.min, le=MONEY.max, allow_inf_nan=False)]
Url = Annotated[str, Strict(), StringConstraints(max_length=MEASURE_TEXT["link_url"].max,
                                                 pattern=r"^https?://\S+$"),
               AfterValidator(check_text)]


class Strict_(BaseModel):
    """Base: unknown fields refused (every text field is a ``_text``: no control characters)."""

    model_config = ConfigDict(extra="forbid")


def _check_year(value: date | None) -> date | None:
    if value is not None and not YEARS.min <= value.year <= YEARS.max:
        raise custom_error("measure.year_range", {"min": int(YEARS.min), "max": int(YEARS.max)})
    return value


class Milestone(Strict_):
    """A dated step of a measure."""

    date: date
    title: _field("milestone_title")
    status: Literal[MILESTONE_STATUSES] = "offen"  # type: ignore[valid-type]

    _year = field_validator("date")(lambda cls, v: _check_year(v))


class Link(Strict_):
    """A link to more information."""

    title: _field("link_title")
    url: Url


OPS = ("<", "<=", ">", ">=", "=", "!=")
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

    status: Literal[DISTRICT_STATUSES]  # type: ignore[valid-type]
    date: date
    note: _field("district_note", multiline=True) | None = None

    _year = field_validator("date")(lambda cls, v: _check_year(v))


class TransferProfile(Strict_):
    """What a measure needs to transfer and where it was tried (district codes of its city)."""

    preconditions: list[Precondition] = Field(default_factory=list,
                                              max_length=MEASURE_ITEMS["preconditions"])
    follow_up_costs_per_year: Money | None = None
    notes: _field("transfer_notes", multiline=True) | None = None
    districts: dict[DistrictCode, DistrictTransfer] = Field(default_factory=dict,
                                                            max_length=MEASURE_ITEMS["districts"])


class MeasureProperties(Strict_):
    """The record of a measure (Maßnahme) as planners edit it."""

    title: _field("title")
    summary: _field("summary", multiline=True) | None = None
    description: _field("description", multiline=True) | None = None
    plain_summary: _field("plain_summary", multiline=True) | None = None
    city_ags: Literal[tuple(ACTION_FIELDS)]  # type: ignore[valid-type]
    action_field: _field("action_field")
    status: Status = DEFAULT_STATUS
    start_date: date | None = None
    end_date: date | None = None
    milestones: list[Milestone] = Field(default_factory=list, max_length=MEASURE_ITEMS["milestones"])
    budget_planned: Money | None = None
    budget_spent: Money | None = None
    funding_line: _field("funding_line") | None = None
    responsible_unit: _field("responsible_unit") | None = None
    partners: list[_field("partner")] = Field(default_factory=list,
                                              max_length=MEASURE_ITEMS["partners"])
    parent_id: Annotated[int, Strict(), Field(ge=1, le=2_147_483_647)] | None = None
    links: list[Link] = Field(default_factory=list, max_length=MEASURE_ITEMS["links"])
    source: _field("source", multiline=True) | None = None
    licence: _field("licence") | None = None
    location_precision: Precision = DEFAULT_PRECISION
    location_note: _field("location_note", multiline=True) | None = None
    editions: list[Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z0-9-]{1,40}$")]] = \
        Field(default_factory=list, max_length=MEASURE_ITEMS["editions"])
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
