"""Indicator definitions: the built-in indicators, the rule for default indicators, the
indicators of an action field, and the ``indicators`` table (write and read)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, text

from quarters.errors import NotFound
from quarters.indicators.provenance import decode_text, encode_text
from quarters.messages import Note, note_text


@dataclass(frozen=True)
class IndicatorDef:
    """Definition of an indicator (one row of the ``indicators`` table)."""

    key: str
    name_de: str
    name_en: str
    unit: str
    kind: str  # one of quarters.vocabulary.INDICATOR_KINDS
    aggregation: str  # one of quarters.vocabulary.INDICATOR_AGGREGATIONS
    numerator: str | None = None
    denominator: str | None = None
    scale: float = 1.0
    # a note of the catalogue (built-in and imported indicators: written out in the reader's
    # language, stored as its JSON text) or free text (written by a user: kept as written)
    description: Note | str | None = None


BUILTIN: dict[str, IndicatorDef] = {d.key: d for d in (
    IndicatorDef("area_km2", "Fläche (amtlich)", "Area (official)", "km²", "amount", "sum",
                 description=Note("indicator.area_km2")),
    IndicatorDef("population", "Einwohner", "Population", "Einw.", "count", "sum",
                 description=Note("indicator.population")),
    IndicatorDef("population_change_pct", "Bevölkerungsentwicklung", "Population change",
                 "%", "rate", "none",
                 description=Note("indicator.population_change_pct")),
    IndicatorDef("population_male", "Einwohner männlich", "Population, male", "Einw.", "count",
                 "sum", description=Note("indicator.destatis_2019")),
    IndicatorDef("population_female", "Einwohner weiblich", "Population, female", "Einw.",
                 "count", "sum", description=Note("indicator.destatis_2019")),
    IndicatorDef("density", "Einwohnerdichte", "Population density", "Einw./km²", "rate",
                 "ratio", "population", "area_km2", 1.0,
                 Note("indicator.density")),
    IndicatorDef("female_share", "Frauenanteil", "Share of women", "%", "share", "ratio",
                 "population_female", "population", 100.0,
                 Note("indicator.female_share")),
    IndicatorDef("urbanisation", "Verstädterungsgrad", "Degree of urbanisation",
                 "Klasse (1 dicht, 2 mittel, 3 gering besiedelt)", "class", "none",
                 description=Note("indicator.urbanisation")),
    IndicatorDef("area_geom_km2", "Fläche (Geometrie)", "Area (geometry)", "km²", "amount",
                 "sum", description=Note("indicator.area_geom_km2")),
    IndicatorDef("compactness", "Kompaktheit", "Compactness", "Index 0–1", "amount", "none",
                 description=Note("indicator.compactness")),
    IndicatorDef("quarter_area_share", "Flächenanteil in Pilotquartieren",
                 "Share of area inside pilot quarters", "%", "share", "none",
                 description=Note("indicator.quarter_area_share")),
    IndicatorDef("measures", "Maßnahmen (alle Handlungsfelder)", "Measures (all action fields)",
                 "Anzahl", "count", "sum",
                 description=Note("indicator.measures")),
    IndicatorDef("measures_per_km2", "Maßnahmen je km²", "Measures per km²", "je km²", "rate",
                 "ratio", "measures", "area_geom_km2", 1.0),
    IndicatorDef("measures_per_1000", "Maßnahmen je 1.000 Einwohner",
                 "Measures per 1,000 inhabitants", "je 1.000 Einw.", "rate", "ratio",
                 "measures", "population", 1000.0),
)}


# Default indicators (the ONE definition CLI, API, page and report use): like with like, so
# only intensive indicators — densities/rates, shares and classes — that have values for at
# least half of the level's units. Absolute sizes (population, area, counts) only when chosen.
# Indicators about the project itself (measures, share inside pilot quarters) and about the
# drawn outline (compactness) describe no property of the place and are never defaults.
DEFAULT_KINDS = ("rate", "share", "class")


NOT_DEFAULT = ("quarter_area_share", "compactness")


NOT_DEFAULT_PREFIXES = ("measures",)


DEFAULT_MIN_COVERAGE = 0.5


DEFAULT_RULE = Note("rule.default_indicators")  # the text: web/i18n, warning.rule.default_indicators


def kind_of_unit(unit: str) -> str:
    """Kind of a NEW indicator from its unit: ``%`` or ``‰`` → share; "je …", "per …", "pro …"
    or a slash (Einw./km²) → rate; anything else (counts, amounts) → amount. So an imported
    share or rate is default-eligible at once, an absolute figure is not."""
    u = unit.strip().lower()
    if u in ("%", "‰", "prozent", "percent") or u.startswith("% "):
        return "share"
    if re.search(r"(^|\s)(je|per|pro)\s|/", u):
        return "rate"
    return "amount"


def default_eligible(d: IndicatorDef) -> bool:
    """Whether an indicator may be a default (see DEFAULT_RULE)."""
    return (d.kind in DEFAULT_KINDS and d.key not in NOT_DEFAULT
            and not d.key.startswith(NOT_DEFAULT_PREFIXES))


def slug(value: str) -> str:
    """ASCII key part of a free text (action field names → indicator keys)."""
    value = value.replace("ß", "ss").replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    value = value.replace("Ä", "Ae").replace("Ö", "Oe").replace("Ü", "Ue")
    ascii_ = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_.lower()).strip("_")[:40] or "x"


def measure_defs(action_field: str) -> list[IndicatorDef]:
    """The three indicators of one action field (count, per km², per 1,000 inhabitants)."""
    s = slug(action_field)
    return [
        IndicatorDef(f"measures__{s}", f"Maßnahmen: {action_field}", f"Measures: {action_field}",
                     "Anzahl", "count", "sum",
                     description=Note("indicator.measures_field", field=action_field)),
        IndicatorDef(f"measures_per_km2__{s}", f"Maßnahmen je km²: {action_field}",
                     f"Measures per km²: {action_field}", "je km²", "rate", "ratio",
                     f"measures__{s}", "area_geom_km2", 1.0),
        IndicatorDef(f"measures_per_1000__{s}", f"Maßnahmen je 1.000 Einw.: {action_field}",
                     f"Measures per 1,000 inhabitants: {action_field}", "je 1.000 Einw.", "rate",
                     "ratio", f"measures__{s}", "population", 1000.0),
    ]


def ensure_indicators(conn: Connection, defs: Iterable[IndicatorDef],
                      source_id: int | None = None) -> None:
    """Insert or update indicator definitions (numerator/denominator first)."""
    defs = list(defs)
    order = sorted(defs, key=lambda d: d.aggregation == "ratio")
    for d in order:
        conn.execute(text("""
            INSERT INTO indicators (key, name_de, name_en, unit, kind, aggregation, numerator,
                                    denominator, scale, description, source_id)
            VALUES (:key, :name_de, :name_en, :unit, :kind, :aggregation, :numerator,
                    :denominator, :scale, :description, :source_id)
            ON CONFLICT (key) DO UPDATE SET name_de = EXCLUDED.name_de,
                name_en = EXCLUDED.name_en, unit = EXCLUDED.unit, kind = EXCLUDED.kind,
                aggregation = EXCLUDED.aggregation, numerator = EXCLUDED.numerator,
                denominator = EXCLUDED.denominator, scale = EXCLUDED.scale,
                description = COALESCE(EXCLUDED.description, indicators.description),
                source_id = COALESCE(EXCLUDED.source_id, indicators.source_id)
        """), {**d.__dict__, "description": encode_text(d.description),
              "source_id": source_id})


def definitions(conn: Connection) -> dict[str, IndicatorDef]:
    """All indicator definitions in the database."""
    rows = conn.execute(text(
        "SELECT key, name_de, name_en, unit, kind, aggregation, numerator, denominator, scale,"
        " description FROM indicators ORDER BY key")).mappings()
    return {r["key"]: IndicatorDef(**{**r, "description": decode_text(r["description"])})
            for r in rows}


def describe(d: IndicatorDef, lang: str) -> str | None:
    """The description of ``d`` in ``lang`` (free text as written)."""
    return None if d.description is None else note_text(d.description, lang)


def get_definition(conn: Connection, key: str) -> IndicatorDef:
    """One indicator definition or NotFound."""
    defs = definitions(conn)
    if key not in defs:
        raise NotFound(code="indicator.unknown", pointer="indicator",
                       params={"key": key[:80], "known": ", ".join(defs) or "–"})
    return defs[key]
