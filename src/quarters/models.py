"""Tables. Every geometry is stored in EPSG:25832 with an explicit type and must be valid."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from quarters.settings import STORAGE_SRID


def multipolygon() -> Geometry:
    """Column type for area features."""
    return Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=True)


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


class Municipality(Base):
    """A German municipality (Gemeinde) keyed by its AGS."""

    __tablename__ = "municipalities"
    __table_args__ = (valid_geom("municipalities"),)
    ags: Mapped[str] = mapped_column(String(8), primary_key=True)
    ars: Mapped[str | None] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text)
    bez: Mapped[str | None] = mapped_column(Text)
    project_city: Mapped[bool] = mapped_column(Boolean, server_default="false")
    attributes: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    geom = mapped_column(multipolygon(), nullable=False)


class County(Base):
    """A Kreis or kreisfreie Stadt keyed by its 5-digit AGS."""

    __tablename__ = "counties"
    __table_args__ = (valid_geom("counties"),)
    ags: Mapped[str] = mapped_column(String(5), primary_key=True)
    ars: Mapped[str | None] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text)
    bez: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    geom = mapped_column(multipolygon(), nullable=False)


class District(Base):
    """A statistical district of a city (e.g. Halle's Stadtviertel)."""

    __tablename__ = "districts"
    __table_args__ = (
        UniqueConstraint("city_ags", "level", "code", name="districts_city_level_code"),
        valid_geom("districts"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    city_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"))
    level: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(Text)
    parent_name: Mapped[str | None] = mapped_column(Text)
    approximate: Mapped[bool] = mapped_column(Boolean, server_default="false")
    area_ha_official: Mapped[float | None] = mapped_column(Float)
    population: Mapped[int | None] = mapped_column(Integer)
    population_date: Mapped[str | None] = mapped_column(String(10))  # as stated: YYYY or YYYY-MM-DD
    attributes: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    geom = mapped_column(multipolygon(), nullable=False)


class Quarter(Base):
    """A pilot quarter (Beispielquartier)."""

    __tablename__ = "quarters"
    __table_args__ = (valid_geom("quarters"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    city_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"))
    theme: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    approximate: Mapped[bool] = mapped_column(Boolean, server_default="true")
    method: Mapped[str | None] = mapped_column(Text)
    stated_area_ha: Mapped[float | None] = mapped_column(Float)
    area_source: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[list] = mapped_column(JSONB, server_default="[]")
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    geom = mapped_column(multipolygon(), nullable=False)


class Site(Base):
    """A site inside a pilot quarter (RAW-Gelände, Star Park)."""

    __tablename__ = "sites"
    __table_args__ = (valid_geom("sites"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    quarter_id: Mapped[int] = mapped_column(ForeignKey("quarters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    approximate: Mapped[bool] = mapped_column(Boolean, server_default="true")
    method: Mapped[str | None] = mapped_column(Text)
    stated_area_ha: Mapped[float | None] = mapped_column(Float)
    area_source: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[list] = mapped_column(JSONB, server_default="[]")
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    geom = mapped_column(multipolygon(), nullable=False)


from sqlalchemy import Double  # noqa: E402  (appended with the indicator tables)


class Indicator(Base):
    """Definition of an indicator: unit, kind and how it aggregates into a quarter profile."""

    __tablename__ = "indicators"
    __table_args__ = (
        CheckConstraint("kind IN ('count', 'rate', 'share', 'amount', 'class')",
                        name="indicators_kind"),
        CheckConstraint("aggregation IN ('sum', 'ratio', 'mean', 'none')",
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
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    indicator: Mapped[str] = mapped_column(ForeignKey("indicators.key", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(40))
    unit_code: Mapped[str] = mapped_column(String(40))
    ref_date: Mapped[str] = mapped_column(String(10))
    value: Mapped[float | None] = mapped_column(Double)
    missing_reason: Mapped[str | None] = mapped_column(Text)
    derivation: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StatisticalUnit(Base):
    """A unit of a level known by code and name only, without an outline (migration 0011)."""

    __tablename__ = "statistical_units"
    __table_args__ = (
        UniqueConstraint("city_ags", "level", "code", name="statistical_units_city_level_code"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    city_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"))
    level: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(Text)
    parent_name: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    outline_note: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
