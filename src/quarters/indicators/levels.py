"""Spatial levels and their units: ``gemeinde`` (municipalities.ags), ``kreis``
(counties.ags), ``quarter`` (quarters.slug), every district level (districts.code) and the
levels without outlines (statistical_units.code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from quarters.errors import InvalidParameter


@dataclass(frozen=True)
class Level:
    """A spatial level: the table of its units and the column that keys them."""

    name: str
    table: str
    code_column: str
    label_de: str
    label_en: str
    district_level: str | None = None
    outlines: bool = True  # False: units with values only (table statistical_units)

    def from_where(self) -> tuple[str, dict[str, Any]]:
        """``FROM … WHERE …`` selecting the units of this level (table aliased t)."""
        if self.district_level:
            return f"{self.table} t WHERE t.level = :dlevel", {"dlevel": self.district_level}
        return f"{self.table} t WHERE TRUE", {}


FIXED_LEVELS = {
    "gemeinde": Level("gemeinde", "municipalities", "ags", "Gemeinden", "municipalities"),
    "kreis": Level("kreis", "counties", "ags", "Kreise und kreisfreie Städte", "counties"),
    "quarter": Level("quarter", "quarters", "slug", "Pilotquartiere", "pilot quarters"),
}


def district_levels(conn: Connection) -> list[str]:
    """District levels present in the database (e.g. stadtviertel)."""
    return list(conn.execute(text("SELECT DISTINCT level FROM districts ORDER BY level")).scalars())


def available_levels(conn: Connection) -> list[Level]:
    """All levels: the fixed ones and every district level in the database."""
    levels = list(FIXED_LEVELS.values())
    for name in district_levels(conn):
        if name not in FIXED_LEVELS:
            levels.append(_district_level(name))
    from quarters.statunits import outline_levels

    for name in outline_levels(conn):
        if name not in FIXED_LEVELS:
            levels.append(_outline_less_level(name))
    return levels


def _district_level(name: str) -> Level:
    return Level(name, "districts", "code", name.capitalize(), f"districts ({name})", name)


def _outline_less_level(name: str) -> Level:
    from quarters.statunits import NO_OUTLINES_DE, NO_OUTLINES_EN

    return Level(name, "statistical_units", "code", f"{name.capitalize()} ({NO_OUTLINES_DE})",
                 f"districts ({name}, {NO_OUTLINES_EN})", name, outlines=False)


def get_level(conn: Connection, name: str, field_name: str = "level") -> Level:
    """The level called ``name`` or InvalidParameter naming the field and the choices."""
    if name in FIXED_LEVELS:
        return FIXED_LEVELS[name]
    levels = district_levels(conn)
    if name in levels:
        return _district_level(name)
    from quarters.statunits import outline_levels

    bare = outline_levels(conn)
    if name in bare:
        return _outline_less_level(name)
    choices = ", ".join([*FIXED_LEVELS, *levels, *bare])
    raise InvalidParameter(code="indicator.unknown_level", pointer=field_name,
                           params={"name": field_name, "value": name[:80], "known": choices})


def units(conn: Connection, level: Level) -> pd.DataFrame:
    """Units of a level: index ``code``, columns ``name`` and ``city_ags`` (if known)."""
    fw, params = level.from_where()
    city = {"municipalities": "t.ags", "counties": "NULL", "districts": "t.city_ags",
            "quarters": "t.city_ags", "statistical_units": "t.city_ags"}[level.table]
    rows = conn.execute(text(
        f"SELECT t.{level.code_column} AS code, t.name, {city} AS city_ags FROM {fw} ORDER BY 1"
    ), params).all()
    # plain tuples: pandas probes SQLAlchemy rows attribute by attribute (0.3 s for 11,000)
    return pd.DataFrame([tuple(r) for r in rows],
                        columns=["code", "name", "city_ags"]).set_index("code")


def level_sizes(conn: Connection) -> dict[str, int]:
    """Number of units per level."""
    sizes = {
        "gemeinde": conn.execute(text("SELECT count(*) FROM municipalities")).scalar_one(),
        "kreis": conn.execute(text("SELECT count(*) FROM counties")).scalar_one(),
        "quarter": conn.execute(text("SELECT count(*) FROM quarters")).scalar_one(),
    }
    for lvl, n in conn.execute(text("SELECT level, count(*) FROM districts GROUP BY level")):
        sizes.setdefault(lvl, n)
    from quarters.statunits import sizes as outline_less_sizes

    for lvl, n in outline_less_sizes(conn).items():
        sizes.setdefault(lvl, n)
    return sizes
