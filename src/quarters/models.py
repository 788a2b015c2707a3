"""Tables: every table of the schema, as the migrations create it (tests/test_schema.py runs
Alembic's autogenerate comparison against the migrated database and checks that every CHECK
constraint here reads as the database's). Every geometry is stored in EPSG:25832 and must be
valid. What autogenerate cannot express lives in the migrations only and is named in
``NOT_IN_MODELS``: the views, the triggers and their functions, the SQL functions.

The CHECKs on vocabularies and lengths are built from quarters.vocabulary, the one
definition the schemas and /api/config use as well."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from quarters.settings import STORAGE_SRID
from quarters.vocabulary import (
    DEFAULT_PRECISION,
    DEFAULT_STATUS,
    IDEA_STATES,
    IDEA_TEXT,
    INDICATOR_AGGREGATIONS,
    INDICATOR_KINDS,
    LOCATION_PRECISIONS,
    MEASURE_GEOMETRY_TYPES,
    MEASURE_STATUSES,
    MEASURE_TEXT,
    ROLES,
    WORKSHOP_MAX_IDEAS,
    sql_in,
)

# In the migrations, not expressible as table metadata (the schema test leaves them out).
NOT_IN_MODELS = {
    "view": ("measures_public", "measures_current", "ideas_public"),
    "trigger": ("measure_history_no_change", "measures_areas", "*_data_version"),
    "function": ("measure_history_append_only", "measures_derive_areas", "data_version_bump",
                 "quarters_ref_date", "quarters_figure", "quarters_figure_date"),
}
# Migration 0012: what a filtered page of the published measures counts and sorts from.
PUBLIC_FILTER_INDEXES = {
    "measures_public_action_field_idx": ("action_field", "budget_planned"),
    "measures_public_status_idx": ("status", "budget_planned"),
    "measures_public_budget_idx": ("budget_planned",),
    "measures_public_start_idx": ("start_date",),
}
# Tables of the database that are no table of ours: Alembic's bookkeeping, PostGIS' own.
NOT_OURS = ("alembic_version", "spatial_ref_sys")


def include_object(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001
    """Alembic's filter (migrations/env.py and tests/test_schema.py): leave out the tables in
    ``NOT_OURS`` and the spatial indexes GeoAlchemy handles itself. Views, triggers and
    functions are not compared by autogenerate at all (``NOT_IN_MODELS``); generated columns
    are declared with ``Computed`` (autogenerate does not compare their expressions)."""
    from geoalchemy2 import alembic_helpers  # only when Alembic runs

    if type_ == "table" and name in NOT_OURS:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def multipolygon() -> Geometry:
    """Column type for area features."""
    return Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=True)


def wgs84_outline():  # noqa: ANN201
    """The stored CRS84 copy of a boundary (migration 0012): what the OGC API sends and tests a
    CRS84 bbox against, kept in step with ``geom`` by PostgreSQL."""
    return mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), Computed(
        "ST_ForcePolygonCCW(ST_Transform(geom, 4326))", persisted=True))


def wgs84_index(table: str) -> Index:
    """The spatial index of a boundary's stored CRS84 copy."""
    return Index(f"{table}_geom_wgs84_idx", "geom_wgs84", postgresql_using="gist")


def valid_geom(table: str) -> CheckConstraint:
    """Check that a table's geometry is valid and not empty."""
    return CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name=f"{table}_geom_valid")


class Base(DeclarativeBase):
    """Declarative base of all tables."""


class Source(Base):
    """A dataset that rows come from, with its licence and attribution."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(Text)
    publisher: Mapped[str | None] = mapped_column(Text)
    licence: Mapped[str] = mapped_column(Text)
    licence_url: Mapped[str | None] = mapped_column(Text)
    attribution: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    retrieved: Mapped[date | None] = mapped_column(Date)
    checksum: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Outline:
    """Columns of a boundary from a source: its area in the storage CRS and the stored CRS84
    copy (the table names ``valid_geom`` and ``wgs84_index`` in its ``__table_args__``)."""

    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    geom = mapped_column(multipolygon(), nullable=False)
    geom_wgs84 = wgs84_outline()


class AdminArea(Outline):
    """Columns of an administrative area of the official boundaries (ARS, name, kind)."""

    ars: Mapped[str | None] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text)
    bez: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict] = mapped_column(JSONB, server_default="{}")


class DrawnArea(Outline):
    """Columns of an area drawn for the project (pilot quarter, site): names, how it was drawn
    and its stated area."""

    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    approximate: Mapped[bool] = mapped_column(Boolean, server_default="true")
    method: Mapped[str | None] = mapped_column(Text)
    stated_area_ha: Mapped[float | None] = mapped_column(Float)
    area_source: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[list] = mapped_column(JSONB, server_default="[]")


class CityUnit:
    """Columns of a statistical unit of a city's level, known by code and name."""

    id: Mapped[int] = mapped_column(primary_key=True)
    city_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"))
    level: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(Text)
    parent_name: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict] = mapped_column(JSONB, server_default="{}")


class Municipality(AdminArea, Base):
    """A German municipality (Gemeinde) keyed by its AGS."""

    __tablename__ = "municipalities"
    __table_args__ = (valid_geom("municipalities"), wgs84_index("municipalities"))
    ags: Mapped[str] = mapped_column(String(8), primary_key=True)
    project_city: Mapped[bool] = mapped_column(Boolean, server_default="false")


class County(AdminArea, Base):
    """A Kreis or kreisfreie Stadt keyed by its 5-digit AGS."""

    __tablename__ = "counties"
    __table_args__ = (valid_geom("counties"), wgs84_index("counties"))
    ags: Mapped[str] = mapped_column(String(5), primary_key=True)


class District(CityUnit, Outline, Base):
    """A statistical district of a city (e.g. Halle's Stadtviertel)."""

    __tablename__ = "districts"
    __table_args__ = (
        UniqueConstraint("city_ags", "level", "code", name="districts_city_level_code"),
        valid_geom("districts"),
        wgs84_index("districts"),
    )
    approximate: Mapped[bool] = mapped_column(Boolean, server_default="false")
    area_ha_official: Mapped[float | None] = mapped_column(Float)
    population: Mapped[int | None] = mapped_column(Integer)
    population_date: Mapped[str | None] = mapped_column(String(10))  # as stated: YYYY or YYYY-MM-DD


class Quarter(DrawnArea, Base):
    """A pilot quarter (Beispielquartier)."""

    __tablename__ = "quarters"
    __table_args__ = (valid_geom("quarters"), wgs84_index("quarters"))
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    city_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"))
    theme: Mapped[str | None] = mapped_column(Text)


class Site(DrawnArea, Base):
    """A site inside a pilot quarter (RAW-Gelände, Star Park)."""

    __tablename__ = "sites"
    __table_args__ = (valid_geom("sites"), wgs84_index("sites"))
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    quarter_id: Mapped[int] = mapped_column(ForeignKey("quarters.id", ondelete="CASCADE"))


class Indicator(Base):
    """Definition of an indicator: unit, kind and how it aggregates into a quarter profile."""

    __tablename__ = "indicators"
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_in(INDICATOR_KINDS)}", name="indicators_kind"),
        CheckConstraint(f"aggregation IN {sql_in(INDICATOR_AGGREGATIONS)}",
                        name="indicators_aggregation"),
        CheckConstraint(
            "aggregation <> 'ratio' OR (numerator IS NOT NULL AND denominator IS NOT NULL)",
            name="indicators_ratio_parts"),
    )
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    name_de: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    aggregation: Mapped[str] = mapped_column(String(20))
    numerator: Mapped[str | None] = mapped_column(ForeignKey("indicators.key"))
    denominator: Mapped[str | None] = mapped_column(ForeignKey("indicators.key"))
    scale: Mapped[float] = mapped_column(Float, server_default="1")  # ratio = scale * num / den
    description: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))


class IndicatorValue(Base):
    """One indicator value of one spatial unit at one reference date (NULL = explicitly missing)."""

    __tablename__ = "indicator_values"
    __table_args__ = (
        UniqueConstraint("indicator", "level", "unit_code", "ref_date",
                         name="indicator_values_key"),
        CheckConstraint("value IS NOT NULL OR missing_reason IS NOT NULL",
                        name="indicator_values_missing_has_reason"),
        CheckConstraint("value IS NULL OR value <> 'NaN'::float8",
                        name="indicator_values_not_nan"),
        Index("idx_indicator_values_level", "level", "indicator"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    indicator: Mapped[str] = mapped_column(ForeignKey("indicators.key", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(40))
    unit_code: Mapped[str] = mapped_column(String(40))
    ref_date: Mapped[str] = mapped_column(String(10))
    value: Mapped[float | None] = mapped_column(Double)
    # notes {"code", "params"} or free text {"text"} (quarters.indicators.provenance, 0015)
    missing_reason: Mapped[dict | None] = mapped_column(JSONB)
    derivation: Mapped[dict | None] = mapped_column(JSONB)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StatisticalUnit(CityUnit, Base):
    """A unit of a level known by code and name only, without an outline (migration 0011)."""

    __tablename__ = "statistical_units"
    __table_args__ = (
        UniqueConstraint("city_ags", "level", "code", name="statistical_units_city_level_code"),
    )
    outline_note: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))


# -- people -----------------------------------------------------------------------------------
def _length(column: str, name: str, bounds, nullable: bool = False) -> CheckConstraint:  # noqa: ANN001
    """CHECK on a text column's length, as the migration wrote it (PostgreSQL's default name)."""
    if bounds.min:
        rule = f"length({column}) BETWEEN {bounds.min} AND {bounds.max}"
    else:
        rule = f"length({column}) <= {bounds.max}"
    if nullable:
        rule = f"{column} IS NULL OR {rule}"
    return CheckConstraint(rule, name=name)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    """A staff account (admin, planner, moderator); the public has none."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {sql_in(ROLES)}", name="users_role_check"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = _now()


class Session(Base):
    """A signed-in session (the token is stored hashed)."""

    __tablename__ = "sessions"
    __table_args__ = (Index("sessions_user_idx", "user_id"),)
    token_hash: Mapped[str] = mapped_column(CHAR(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = _now()


class LoginThrottle(Base):
    """Failed sign-ins per account and per client (shared by every worker)."""

    __tablename__ = "login_throttle"
    __table_args__ = (
        CheckConstraint("key ~ '^(account|client):'", name="login_throttle_key_check"),
        CheckConstraint("failures > 0", name="login_throttle_failures_check"),
    )
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SeedKey(Base):
    """What `quarters data load` has ever inserted (never re-added or rewritten)."""

    __tablename__ = "seed_keys"
    kind: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    seeded_at: Mapped[datetime] = _now()


class DataVersion(Base):
    """The one row every write of published data bumps (ETag/Last-Modified of reads)."""

    __tablename__ = "data_version"
    __table_args__ = (CheckConstraint("id", name="data_version_id_check"),)
    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    version: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- measures ---------------------------------------------------------------------------------
class Edition(Base):
    """An edition of a city's strategy (frozen: its snapshots no longer change)."""

    __tablename__ = "editions"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    city_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"))
    title: Mapped[str] = mapped_column(Text)
    year: Mapped[int] = mapped_column(Integer)
    adopted_on: Mapped[date | None] = mapped_column(Date)
    frozen: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    note: Mapped[str | None] = mapped_column(Text)


def _any_geometry(srid: int = STORAGE_SRID) -> Geometry:
    return Geometry("GEOMETRY", srid=srid, spatial_index=False)


def _empty(kind) -> Mapped:  # noqa: ANN001
    return mapped_column(ARRAY(kind), server_default=text("'{}'"))


class Measure(Base):
    """A measure (Maßnahme) of a city's strategy; history in ``measure_history``."""

    __tablename__ = "measures"
    __table_args__ = (
        _length("title", "measures_title_check", MEASURE_TEXT["title"]),
        CheckConstraint(f"status IN {sql_in(MEASURE_STATUSES)}", name="measures_status_check"),
        CheckConstraint("budget_planned >= 0", name="measures_budget_planned_check"),
        CheckConstraint("budget_spent >= 0", name="measures_budget_spent_check"),
        CheckConstraint(f"location_precision IN {sql_in(LOCATION_PRECISIONS)}",
                        name="measures_location_precision_check"),
        CheckConstraint("end_date IS NULL OR start_date IS NULL OR end_date >= start_date",
                        name="measures_dates"),
        valid_geom("measures"),
        CheckConstraint(f"ST_GeometryType(geom) IN {sql_in(MEASURE_GEOMETRY_TYPES)}",
                        name="measures_geom_type"),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="measures_not_own_parent"),
        CheckConstraint("transfer IS NULL OR jsonb_typeof(transfer) = 'object'",
                        name="measures_transfer_check"),
        CheckConstraint("origin_id IS NULL OR origin_id <> id", name="measures_not_own_origin"),
        Index("measures_geom_idx", "geom", postgresql_using="gist"),
        Index("measures_search_idx", "search", postgresql_using="gin"),
        Index("measures_quarters_idx", "quarter_ids", postgresql_using="gin"),
        Index("measures_districts_idx", "district_ids", postgresql_using="gin"),
        Index("measures_public_idx", "id",
              postgresql_where=text("published AND deleted_at IS NULL")),
        Index("measures_origin_idx", "origin_id", postgresql_where=text("origin_id IS NOT NULL")),
        Index("measures_geom_wgs84_idx", "geom_wgs84", postgresql_using="gist"),
        *(Index(name, *columns, postgresql_where=text("published AND deleted_at IS NULL"))
          for name, columns in PUBLIC_FILTER_INDEXES.items()),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str | None] = mapped_column(String(120), unique=True)
    city_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"))
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    plain_summary: Mapped[str | None] = mapped_column(Text)
    action_field: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=DEFAULT_STATUS)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    milestones: Mapped[list] = mapped_column(JSONB, server_default="[]")
    budget_planned = mapped_column(Numeric(14, 2))
    budget_spent = mapped_column(Numeric(14, 2))
    funding_line: Mapped[str | None] = mapped_column(Text)
    responsible_unit: Mapped[str | None] = mapped_column(Text)
    partners: Mapped[list] = mapped_column(JSONB, server_default="[]")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("measures.id"))
    links: Mapped[list] = mapped_column(JSONB, server_default="[]")
    source: Mapped[str | None] = mapped_column(Text)
    licence: Mapped[str | None] = mapped_column(Text)
    location_precision: Mapped[str] = mapped_column(Text, server_default=DEFAULT_PRECISION)
    location_note: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(_any_geometry(), nullable=False)
    # what the API sends (RFC 7946: lon/lat, exterior rings counter-clockwise)
    geom_wgs84 = mapped_column(_any_geometry(4326), Computed(
        "ST_ForcePolygonCCW(ST_Transform(geom, 4326))", persisted=True))
    quarter_ids: Mapped[list] = _empty(Integer)
    quarter_slugs: Mapped[list] = _empty(Text)
    district_ids: Mapped[list] = _empty(Integer)
    published: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = _now()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = _now()
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    search = mapped_column(TSVECTOR, Computed(
        "to_tsvector('german', coalesce(title, '') || ' ' || coalesce(summary, '') || ' ' || "
        "coalesce(description, ''))", persisted=True))
    transfer: Mapped[dict | None] = mapped_column(JSONB)
    origin_id: Mapped[int | None] = mapped_column(ForeignKey("measures.id"))


class MeasureEdition(Base):
    """A measure as recorded in an edition (its snapshot)."""

    __tablename__ = "measure_editions"
    measure_id: Mapped[int] = mapped_column(ForeignKey("measures.id", ondelete="CASCADE"),
                                            primary_key=True)
    edition_key: Mapped[str] = mapped_column(ForeignKey("editions.key"), primary_key=True)
    snapshot: Mapped[dict] = mapped_column(JSONB)
    geom = mapped_column(_any_geometry(), nullable=False)


class MeasureHistory(Base):
    """Who changed a measure when and how (append-only: a trigger refuses UPDATE/DELETE)."""

    __tablename__ = "measure_history"
    __table_args__ = (Index("measure_history_measure_idx", "measure_id", "id"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("measures.id"))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                         server_default=func.clock_timestamp())
    changes: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)


# -- ideas ------------------------------------------------------------------------------------
class WorkshopCode(Base):
    """A code that lets many people on one address submit ideas for a few hours."""

    __tablename__ = "workshop_codes"
    __table_args__ = (
        _length("label", "workshop_codes_label_check", IDEA_TEXT["workshop_label"]),
        CheckConstraint(f"max_ideas BETWEEN {WORKSHOP_MAX_IDEAS.min:.0f} AND "
                        f"{WORKSHOP_MAX_IDEAS.max:.0f}", name="workshop_codes_max_ideas_check"),
        CheckConstraint("expires_at > created_at", name="workshop_codes_window"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(IDEA_TEXT["workshop_code"].max), unique=True)
    label: Mapped[str] = mapped_column(Text)
    max_ideas: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdeaQuota(Base):
    """One counter per client hash or workshop code, charged atomically with the insert."""

    __tablename__ = "idea_quota"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used: Mapped[int] = mapped_column(Integer)


class Idea(Base):
    """A citizen's idea (Projektaufruf), public only once a moderator has decided."""

    __tablename__ = "ideas"
    __table_args__ = (
        _length("title", "ideas_title_check", IDEA_TEXT["title"]),
        _length("text", "ideas_text_check", IDEA_TEXT["text"]),
        _length("contact", "ideas_contact_check", IDEA_TEXT["contact"], nullable=True),
        CheckConstraint("ST_IsValid(geom)", name="ideas_geom_check"),
        CheckConstraint(f"state IN {sql_in(IDEA_STATES)}", name="ideas_state_check"),
        _length("public_reason", "ideas_public_reason_check", IDEA_TEXT["reason"],
                nullable=True),
        _length("staff_reason", "ideas_staff_reason_check", IDEA_TEXT["staff_reason"],
                nullable=True),
        CheckConstraint("state <> 'abgelehnt' OR public_reason IS NOT NULL",
                        name="ideas_rejected_has_reason"),
        CheckConstraint("state <> 'verknuepft' OR measure_id IS NOT NULL",
                        name="ideas_linked_has_measure"),
        CheckConstraint("state <> 'verborgen' OR staff_reason IS NOT NULL",
                        name="ideas_hidden_has_reason"),
        Index("ideas_geom_idx", "geom", postgresql_using="gist"),
        Index("ideas_client_idx", "client_hash", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    city_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    action_field: Mapped[str] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("POINT", srid=STORAGE_SRID, spatial_index=False),
                         nullable=False)
    state: Mapped[str] = mapped_column(Text, server_default=IDEA_STATES[0])
    public_reason: Mapped[str | None] = mapped_column(Text)
    measure_id: Mapped[int | None] = mapped_column(ForeignKey("measures.id"))
    client_hash: Mapped[str] = mapped_column(CHAR(64))
    created_at: Mapped[datetime] = _now()
    moderated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    moderated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    staff_reason: Mapped[str | None] = mapped_column(Text)
    text_public: Mapped[bool] = mapped_column(Boolean, server_default="false")
    workshop_code_id: Mapped[int | None] = mapped_column(ForeignKey("workshop_codes.id"))
