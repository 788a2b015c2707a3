"""Indicators as data: definitions, values per spatial unit, imports, loaders, computed values.

One indicator value belongs to (indicator, level, unit_code, ref_date). Levels and the key of
their units:

* ``gemeinde`` – ``municipalities.ags`` (8 digits), ``kreis`` – ``counties.ags`` (5 digits),
* a district level such as ``stadtviertel`` – ``districts.code`` of that level,
* ``quarter`` – ``quarters.slug``.

Missing values are explicit: a row with ``value`` NULL carries a ``missing_reason``; a unit
without any row for an indicator is reported as "no value loaded". Nothing is ever set to 0
because it is unknown.

Loaders (all inside the caller's transaction):

* :func:`load_destatis` – Destatis Gemeindeverzeichnis extract (municipalities; Kreise as sums
  of their municipalities, because the file's Kreis rows, satzart 40, carry no figures),
* :func:`load_halle_stadtviertel` – the facts table of Halle's 43 Stadtviertel,
* :func:`quarters.statunits.load_gera_bezirke` – Gera's 12 statistical districts (level
  ``gera_bezirk``, population 1997 and 2011, no outlines: units in ``statistical_units``),
* :func:`refresh_computed` – values computed in the database (geometry area, compactness,
  share of area inside a pilot quarter, measures per action field per km² and per 1,000
  inhabitants, quarter profiles),
* :func:`import_indicators` – a user's CSV, all or nothing.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from quarters.errors import ImportRefused, InvalidParameter, NotFound, SetupError
from quarters.settings import HALLE_AGS, PROJECT_CITIES

DESTATIS_KEY = "destatis-gv-2019"
DESTATIS_FILE = Path("raw/destatis-gv-auszug/AuszugGV4QAktuell.csv")
DESTATIS_POPULATION_DATE = "2019-12-31"
DESTATIS_AREA_DATE = "2020-12-31"  # Gebietsstand of the 4th-quarter extract (see SOURCES.md)
STADTVIERTEL_KEY = "halle-stadtviertel-facts"
STADTVIERTEL_FACTS = Path("facts/halle_stadtviertel.csv")
WIKIPEDIA_TABLE_YEAR = "2020"  # the Wikipedia table behind area_year 'wiki' is of 31.12.2020
COMPUTED_KEY = "quarters-computed"
MAX_ERRORS_SHOWN = 20
REF_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
INDICATOR_KEY = re.compile(r"^[a-z][a-z0-9_]{0,79}$")
MISSING_TOKENS = {"", "na", "n/a", "nan", "null", "none", ".", "...", "x", "–", "—"}
KINDS = ("count", "rate", "share", "amount", "class")
AGGREGATIONS = ("sum", "ratio", "mean", "none")


# ----------------------------------------------------------------------------------------------
# definitions
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndicatorDef:
    """Definition of an indicator (one row of the ``indicators`` table)."""

    key: str
    name_de: str
    name_en: str
    unit: str
    kind: str
    aggregation: str
    numerator: str | None = None
    denominator: str | None = None
    scale: float = 1.0
    description: str | None = None


BUILTIN: dict[str, IndicatorDef] = {d.key: d for d in (
    IndicatorDef("area_km2", "Fläche (amtlich)", "Area (official)", "km²", "amount", "sum",
                 description="Amtliche bzw. angegebene Fläche: Destatis (Gemeinden, Kreise als "
                 "Summe), Faktentabelle (Halles Stadtviertel, area_ha / 100)."),
    IndicatorDef("population", "Einwohner", "Population", "Einw.", "count", "sum",
                 description="Bevölkerung: Destatis 31.12.2019 (Gemeinden, Kreise als Summe), "
                 "Faktentabelle mit Datum je Viertel (Halles Stadtviertel)."),
    IndicatorDef("population_change_pct", "Bevölkerungsentwicklung", "Population change",
                 "%", "rate", "none",
                 description="100 · (Einwohner am späteren / am früheren Stichtag − 1), je "
                 "Einheit aus zwei Stichtagen derselben Quelle (Geras statistische Bezirke: "
                 "1997 → 2011)."),
    IndicatorDef("population_male", "Einwohner männlich", "Population, male", "Einw.", "count",
                 "sum", description="Destatis, 31.12.2019."),
    IndicatorDef("population_female", "Einwohner weiblich", "Population, female", "Einw.",
                 "count", "sum", description="Destatis, 31.12.2019."),
    IndicatorDef("density", "Einwohnerdichte", "Population density", "Einw./km²", "rate",
                 "ratio", "population", "area_km2", 1.0,
                 "Einwohner je km² amtlicher Fläche, neu berechnet als population / area_km2 "
                 "(nicht die gerundete Spalte jekm2 der Destatis-Datei)."),
    IndicatorDef("female_share", "Frauenanteil", "Share of women", "%", "share", "ratio",
                 "population_female", "population", 100.0,
                 "100 · population_female / population; fehlt bei unbewohnten Gebieten."),
    IndicatorDef("urbanisation", "Verstädterungsgrad", "Degree of urbanisation",
                 "Klasse (1 dicht, 2 mittel, 3 gering besiedelt)", "class", "none",
                 description="Destatis-Verstädterungsschlüssel (DEGURBA): 1 = dicht besiedelt, "
                 "2 = mittlere Besiedlungsdichte, 3 = gering besiedelt. Ordinal; in "
                 "Ähnlichkeitsrechnungen als Zahl behandelt."),
    IndicatorDef("area_geom_km2", "Fläche (Geometrie)", "Area (geometry)", "km²", "amount",
                 "sum", description="Fläche der gespeicherten Geometrie in EPSG:25832 "
                 "(VG5000 ist stark generalisiert, Stadtviertel sind Näherungen)."),
    IndicatorDef("compactness", "Kompaktheit", "Compactness", "Index 0–1", "amount", "none",
                 description="Polsby-Popper-Index 4πA/U² der gespeicherten Geometrie "
                 "(1 = Kreis); hängt von der Generalisierung ab."),
    IndicatorDef("quarter_area_share", "Flächenanteil in Pilotquartieren",
                 "Share of area inside pilot quarters", "%", "share", "none",
                 description="100 · Fläche(Einheit ∩ Vereinigung aller Pilotquartiere) / "
                 "Fläche(Einheit), aus den Geometrien."),
    IndicatorDef("measures", "Maßnahmen (alle Handlungsfelder)", "Measures (all action fields)",
                 "Anzahl", "count", "sum",
                 description="Veröffentlichte, nicht eingestellte Maßnahmen (measures_public), "
                 "einer Einheit über ST_PointOnSurface zugeordnet."),
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
DEFAULT_RULE = ("intensive indicators (kind rate, share or class: densities, shares, "
                "per-inhabitant values) with values for at least half of the level's units; "
                "not the measures-based ones nor quarter_area_share/compactness; absolute sizes "
                "only when chosen")


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


def default_indicators(conn: Connection, level: Level) -> list[str]:
    """Indicators used when none are chosen (DEFAULT_RULE), sorted by key."""
    defs = definitions(conn)
    n_units = level_sizes(conn).get(level.name, 0)
    counts = dict(conn.execute(text(
        "SELECT indicator, count(DISTINCT unit_code) FROM indicator_values WHERE level = :l "
        "AND value IS NOT NULL GROUP BY indicator"), {"l": level.name}).all())
    return sorted(k for k, d in defs.items() if default_eligible(d)
                  and counts.get(k, 0) >= max(1, DEFAULT_MIN_COVERAGE * n_units))


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
                     description=f"Veröffentlichte Maßnahmen im Handlungsfeld „{action_field}“."),
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
        """), {**d.__dict__, "source_id": source_id})


def definitions(conn: Connection) -> dict[str, IndicatorDef]:
    """All indicator definitions in the database."""
    rows = conn.execute(text(
        "SELECT key, name_de, name_en, unit, kind, aggregation, numerator, denominator, scale,"
        " description FROM indicators ORDER BY key")).mappings()
    return {r["key"]: IndicatorDef(**r) for r in rows}


def get_definition(conn: Connection, key: str) -> IndicatorDef:
    """One indicator definition or NotFound."""
    defs = definitions(conn)
    if key not in defs:
        raise NotFound(f"indicator: no indicator '{key}'; available: {', '.join(defs) or 'none'}")
    return defs[key]


# ----------------------------------------------------------------------------------------------
# levels and their units
# ----------------------------------------------------------------------------------------------
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
    raise InvalidParameter(f"{field_name}: unknown level '{name[:80]}'; available: {choices}")


def units(conn: Connection, level: Level) -> pd.DataFrame:
    """Units of a level: index ``code``, columns ``name`` and ``city_ags`` (if known)."""
    fw, params = level.from_where()
    city = {"municipalities": "t.ags", "counties": "NULL", "districts": "t.city_ags",
            "quarters": "t.city_ags", "statistical_units": "t.city_ags"}[level.table]
    rows = conn.execute(text(
        f"SELECT t.{level.code_column} AS code, t.name, {city} AS city_ags FROM {fw} ORDER BY 1"
    ), params).all()
    return pd.DataFrame(rows, columns=["code", "name", "city_ags"]).set_index("code")


# ----------------------------------------------------------------------------------------------
# writing values
# ----------------------------------------------------------------------------------------------
VALUE_COLUMNS = ["indicator", "level", "unit_code", "ref_date", "value", "missing_reason",
                 "derivation", "source_id"]


WRITE_CHUNK = 20_000  # rows per statement: keeps each statement far below statement_timeout
BATCH_TIMEOUT = "300s"  # statement timeout inside load/refresh transactions (batch work)


def write_values(conn: Connection, rows: pd.DataFrame) -> tuple[int, int]:
    """Upsert value rows (columns VALUE_COLUMNS) via COPY; return (inserted, updated).

    NaN values become NULL and must have a missing_reason (the table enforces it). Large
    frames are written in chunks of WRITE_CHUNK rows.
    """
    inserted = updated = 0
    for start in range(0, len(rows), WRITE_CHUNK):
        i, u = _write_chunk(conn, rows.iloc[start:start + WRITE_CHUNK])
        inserted, updated = inserted + i, updated + u
    return inserted, updated


def _write_chunk(conn: Connection, rows: pd.DataFrame) -> tuple[int, int]:
    if rows.empty:
        return 0, 0
    conn.execute(text("DROP TABLE IF EXISTS _iv_stage"))
    conn.execute(text(
        "CREATE TEMP TABLE _iv_stage (indicator text, level text, unit_code text, ref_date text,"
        " value float8, missing_reason text, derivation text, source_id int) ON COMMIT DROP"))
    raw = conn.connection.driver_connection
    frame = rows[VALUE_COLUMNS]
    with raw.cursor() as cur, cur.copy("COPY _iv_stage FROM STDIN") as copy:
        for rec in frame.itertuples(index=False, name=None):
            ind, lvl, code, ref, value, reason, deriv, src = rec
            value = None if value is None or (isinstance(value, float) and math.isnan(value)) \
                else float(value)
            reason = None if reason is None or (isinstance(reason, float)) else str(reason)
            deriv = None if deriv is None or (isinstance(deriv, float)) else str(deriv)
            copy.write_row((ind, lvl, str(code), str(ref), value, reason, deriv, int(src)))
    flags = conn.execute(text("""
        INSERT INTO indicator_values (indicator, level, unit_code, ref_date, value,
                                      missing_reason, derivation, source_id)
        SELECT indicator, level, unit_code, ref_date, value,
               CASE WHEN value IS NULL THEN COALESCE(missing_reason, 'not given') END,
               derivation, source_id
        FROM _iv_stage
        ON CONFLICT ON CONSTRAINT indicator_values_key DO UPDATE SET value = EXCLUDED.value,
            missing_reason = EXCLUDED.missing_reason, derivation = EXCLUDED.derivation,
            source_id = EXCLUDED.source_id, loaded_at = now()
        RETURNING (xmax = 0)
    """)).scalars().all()
    conn.execute(text("DROP TABLE _iv_stage"))
    inserted = sum(1 for f in flags if f)
    return inserted, len(flags) - inserted


def _rows(indicator: str, level: str, codes: Sequence[str], values: Sequence[float | None],
          ref_date: str | Sequence[str], source_id: int | Sequence[int],
          reasons: Sequence[str | None] | None = None,
          derivation: str | Sequence[str | None] | None = None) -> pd.DataFrame:
    n = len(codes)

    def col(x: Any) -> list:
        return list(x) if isinstance(x, (list, tuple, np.ndarray, pd.Series)) else [x] * n

    vals = [None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)
            for v in values]
    rs = col(reasons) if reasons is not None else [None] * n
    rs = [r if v is None else None for v, r in zip(vals, rs, strict=True)]
    rs = [r or ("not given" if v is None else None) for v, r in zip(vals, rs, strict=True)]
    return pd.DataFrame({
        "indicator": indicator, "level": level, "unit_code": list(codes), "ref_date": col(ref_date),
        "value": vals, "missing_reason": rs, "derivation": col(derivation),
        "source_id": col(source_id)})


def source_id(conn: Connection, key: str) -> int:
    """Id of a loaded source or SetupError."""
    found = conn.execute(text("SELECT id FROM sources WHERE key = :k"), {"k": key}).scalar()
    if found is None:
        raise SetupError(f"source '{key}' is not loaded; run 'quarters data load'")
    return found


def computed_source(conn: Connection) -> int:
    """The source row that stands for values computed inside quarters."""
    from quarters.loading import upsert_source

    return upsert_source(
        conn, COMPUTED_KEY,
        name="In quarters berechnete Indikatoren (aus Geometrien, Maßnahmen und Einwohnerzahlen)",
        publisher="quarters project",
        licence="wie die Eingangsdaten (siehe derivation je Wert und deren Quellen)",
        attribution="Berechnung: quarters-Projekt; Eingangsdaten: siehe Quellen der "
                    "verwendeten Geometrien, Maßnahmen und Einwohnerzahlen",
        note="Werte werden bei jedem 'quarters data load' und 'quarters analyze refresh' neu "
             "berechnet; die Herleitung steht in indicator_values.derivation.")


@dataclass
class IndicatorReport:
    """What an indicator load did."""

    written: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, frame: pd.DataFrame, inserted: int, updated: int) -> None:
        """Count values and explicit missing values per (indicator, level)."""
        for (ind, lvl), grp in frame.groupby(["indicator", "level"], sort=True):
            v = int(grp["value"].notna().sum())
            self.written[(ind, lvl)] = (v, len(grp) - v)

    def merge(self, other: IndicatorReport) -> None:
        """Add another report's content."""
        self.written.update(other.written)
        self.notes += other.notes
        self.warnings += other.warnings

    def lines(self) -> list[str]:
        """One line per (indicator, level) plus notes and warnings."""
        out = [f"{ind} ({lvl}): {v} values, {m} explicitly missing"
               for (ind, lvl), (v, m) in sorted(self.written.items())]
        return out + self.notes + [f"warning: {w}" for w in self.warnings]


# ----------------------------------------------------------------------------------------------
# Destatis Gemeindeverzeichnis
# ----------------------------------------------------------------------------------------------
def _destatis_number(raw: str) -> float | None:
    """' 238 762' → 238762.0; ' 53.02' → 53.02; '' → None."""
    s = raw.replace("\u00a0", "").replace(" ", "").strip()
    if not s:
        return None
    return float(s.replace(",", ".")) if s.count(",") == 1 and "." not in s else float(s)


def parse_destatis(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the GV-ISys extract; return (Gemeinden, Kreise) with numeric columns.

    Gemeinden (satzart 60) are indexed by AGS = land + rb + kreis + gemeinde, with ``name``,
    ``area_km2``, ``population``, ``population_male``, ``population_female``, ``jekm2`` and
    ``urbanisation`` (1..3 or NaN). Kreise (satzart 40) give AGS (land + rb + kreis) and name.
    """
    if not path.exists():
        raise SetupError(f"{path} is missing: set QUARTERS_DATA_DIR (see data/sources.toml, "
                         f"dataset {DESTATIS_KEY})")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    need = {"satzart", "land", "rb", "kreis", "gemeinde", "gemeindename", "flaeche",
            "bevoelkerung", "maennlich", "weiblich", "jekm2", "verstaedterungschluessel"}
    missing = need - set(frame.columns)
    if missing:
        raise ImportRefused(f"{path.name}: missing column(s) {', '.join(sorted(missing))}")
    frame = frame.apply(lambda c: c.str.strip())
    gem = frame[frame["satzart"] == "60"].copy()
    gem["ags"] = gem["land"] + gem["rb"] + gem["kreis"] + gem["gemeinde"]
    bad = gem.loc[~gem["ags"].str.fullmatch(r"\d{8}"), "ags"]
    if len(bad):
        raise ImportRefused(f"{path.name}: malformed AGS {bad.iloc[:5].tolist()}")
    out = pd.DataFrame(index=pd.Index(gem["ags"], name="ags"))
    out["name"] = gem["gemeindename"].to_numpy()
    for target, col in (("area_km2", "flaeche"), ("population", "bevoelkerung"),
                        ("population_male", "maennlich"), ("population_female", "weiblich"),
                        ("jekm2", "jekm2")):
        try:
            out[target] = [_destatis_number(v) for v in gem[col]]
        except ValueError as exc:
            raise ImportRefused(f"{path.name}: column {col}: {exc}") from exc
    urb = pd.to_numeric(gem["verstaedterungschluessel"], errors="coerce").to_numpy()
    out["urbanisation"] = np.where(np.isin(urb, [1, 2, 3]), urb, np.nan)
    dup = out.index[out.index.duplicated()].unique().tolist()
    if dup:
        raise ImportRefused(f"{path.name}: duplicate AGS {dup[:5]}")
    krs = frame[frame["satzart"] == "40"]
    kreise = pd.DataFrame({"name": krs["gemeindename"].to_numpy()},
                          index=pd.Index(krs["land"] + krs["rb"] + krs["kreis"], name="ags"))
    return out, kreise


def load_destatis(conn: Connection, data_dir: Path) -> IndicatorReport:
    """Load area, population (total, male, female), density, share of women, urbanisation.

    Gemeinden join VG5000 by AGS; AGS on one side only are reported as warnings, and VG5000
    municipalities without a Destatis row get explicitly missing values. Kreise get sums of
    their Gemeinden (all rows of the file whose AGS starts with the Kreis key). Density and
    share of women are recomputed from the counts; the file's rounded ``jekm2`` is only used
    as a check.
    """
    report = IndicatorReport()
    path = data_dir / DESTATIS_FILE
    gem, kreise = parse_destatis(path)
    src = source_id(conn, DESTATIS_KEY)
    ensure_indicators(conn, [BUILTIN[k] for k in (
        "area_km2", "population", "population_male", "population_female", "density",
        "female_share", "urbanisation")], src)
    vg = set(conn.execute(text("SELECT ags FROM municipalities")).scalars())
    only_file = sorted(set(gem.index) - vg)
    only_vg = sorted(vg - set(gem.index))
    if only_file:
        pop = gem.loc[only_file, "population"].fillna(0)
        report.warnings.append(
            f"Destatis: {len(only_file)} AGS without a VG5000 municipality (not stored; "
            f"{int((pop == 0).sum())} of them uninhabited): {', '.join(only_file[:10])}"
            + (" …" if len(only_file) > 10 else ""))
    if only_vg:
        report.warnings.append(
            f"Destatis: {len(only_vg)} VG5000 municipalities without a Destatis row (values "
            f"stored as missing): {', '.join(only_vg[:10])}" + (" …" if len(only_vg) > 10 else ""))
    frame = gem.reindex(sorted(vg))
    no_row = ("no row for this AGS in the Destatis Gemeindeverzeichnis extract "
              "(Gebietsstand differs)")
    absent = frame["name"].isna().to_numpy()

    def reasons(values: np.ndarray, other: str) -> list[str | None]:
        return [no_row if a else (other if np.isnan(v) else None)
                for a, v in zip(absent, values, strict=True)]

    codes = frame.index.tolist()
    parts = []
    deriv_file = "Destatis GV-ISys, AuszugGV4QAktuell.csv, satzart 60"
    for key, ref in (("area_km2", DESTATIS_AREA_DATE), ("population", DESTATIS_POPULATION_DATE),
                     ("population_male", DESTATIS_POPULATION_DATE),
                     ("population_female", DESTATIS_POPULATION_DATE)):
        v = frame[key].to_numpy(dtype=float)
        parts.append(_rows(key, "gemeinde", codes, v, ref, src,
                           reasons(v, "empty in the Destatis file"), deriv_file))
    pop, area = frame["population"].to_numpy(float), frame["area_km2"].to_numpy(float)
    fem = frame["population_female"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dens = np.where(area > 0, pop / area, np.nan)
        share = np.where(pop > 0, 100.0 * fem / pop, np.nan)
    parts.append(_rows("density", "gemeinde", codes, dens, DESTATIS_POPULATION_DATE, src,
                       reasons(dens, "area is 0 or missing"),
                       "population / area_km2 (Destatis), recomputed"))
    parts.append(_rows("female_share", "gemeinde", codes, share, DESTATIS_POPULATION_DATE, src,
                       reasons(share, "no inhabitants (uninhabited area): share undefined"),
                       "100 · population_female / population (Destatis)"))
    urb = frame["urbanisation"].to_numpy(float)
    parts.append(_rows("urbanisation", "gemeinde", codes, urb, DESTATIS_AREA_DATE, src,
                       reasons(urb, "no urbanisation class in the Destatis file "
                                    "(uninhabited area)"),
                       deriv_file + ", verstaedterungschluessel"))
    # check our density against the file's rounded jekm2
    jek = frame["jekm2"].to_numpy(float)
    off = np.abs(np.nan_to_num(dens) - np.nan_to_num(jek)) > 1.0
    off &= ~np.isnan(jek) & ~np.isnan(dens)
    if off.any():
        report.warnings.append(f"Destatis: recomputed density differs from jekm2 by more than "
                               f"rounding for {int(off.sum())} municipalities")

    # Kreise: sums of their Gemeinden (the Kreis rows of the file carry no figures)
    counties = set(conn.execute(text("SELECT ags FROM counties")).scalars())
    gem_k = gem.assign(kreis=gem.index.str[:5])
    sums = gem_k.groupby("kreis")[["area_km2", "population", "population_male",
                                   "population_female"]].sum(min_count=1)
    k_only_file = sorted(set(kreise.index) - counties)
    k_only_vg = sorted(counties - set(sums.index))
    if k_only_file:
        report.warnings.append("Destatis: Kreise without a VG5000 county: "
                               + ", ".join(k_only_file[:10]))
    if k_only_vg:
        report.warnings.append("Destatis: VG5000 counties without Destatis rows (stored as "
                               "missing): " + ", ".join(k_only_vg[:10]))
    kf = sums.reindex(sorted(counties))
    kcodes = kf.index.tolist()
    k_absent = kf["population"].isna().to_numpy()
    k_reason = ["no Destatis Gemeinde rows for this Kreis" if a else None for a in k_absent]
    deriv_k = "sum over the Kreis's Gemeinden (Destatis GV-ISys, satzart 60)"
    for key, ref in (("area_km2", DESTATIS_AREA_DATE), ("population", DESTATIS_POPULATION_DATE),
                     ("population_male", DESTATIS_POPULATION_DATE),
                     ("population_female", DESTATIS_POPULATION_DATE)):
        parts.append(_rows(key, "kreis", kcodes, kf[key].to_numpy(float), ref, src, k_reason,
                           deriv_k))
    kp, ka = kf["population"].to_numpy(float), kf["area_km2"].to_numpy(float)
    kfem = kf["population_female"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        kd = np.where(ka > 0, kp / ka, np.nan)
        ks = np.where(kp > 0, 100.0 * kfem / kp, np.nan)
    parts.append(_rows("density", "kreis", kcodes, kd, DESTATIS_POPULATION_DATE, src,
                       k_reason, "population / area_km2 of the Kreis (sums of Gemeinden)"))
    parts.append(_rows("female_share", "kreis", kcodes, ks, DESTATIS_POPULATION_DATE, src,
                       k_reason, "100 · population_female / population (sums of Gemeinden)"))
    frame_all = pd.concat(parts, ignore_index=True)
    ins, upd = write_values(conn, frame_all)
    report.add(frame_all, ins, upd)
    report.notes.append(f"Destatis: {len(gem)} Gemeinden read, {len(vg) - len(only_vg)} joined "
                        f"to VG5000 by AGS; {len(kcodes)} Kreise as sums "
                        "(urbanisation class is not aggregated to Kreise)")
    return report


# ----------------------------------------------------------------------------------------------
# Halle's Stadtviertel
# ----------------------------------------------------------------------------------------------
def load_halle_stadtviertel(conn: Connection, data_dir: Path) -> IndicatorReport:
    """Area, population and density of Halle's Stadtviertel from the facts table.

    Codes as stored in ``districts.code`` ("1 01" → "01"). area_ha → km² (/100); the area's
    ref_date is the stated year (``wiki`` = the 2020 Wikipedia table); population and density
    carry the population date of each row.
    """
    report = IndicatorReport()
    facts = pd.read_csv(data_dir / STADTVIERTEL_FACTS, dtype=str, keep_default_na=False)
    src = source_id(conn, STADTVIERTEL_KEY)
    ensure_indicators(conn, [BUILTIN[k] for k in ("area_km2", "population", "density")])
    known = set(conn.execute(text(
        "SELECT code FROM districts WHERE city_ags = :c AND level = 'stadtviertel'"),
        {"c": HALLE_AGS}).scalars())
    facts["unit"] = facts["code"].str.split().str[-1]
    unknown = sorted(set(facts["unit"]) - known)
    if unknown:
        report.warnings.append("Stadtviertel facts: codes without a district geometry: "
                               + ", ".join(unknown))
    facts = facts[facts["unit"].isin(known)]
    area = pd.to_numeric(facts["area_ha"], errors="coerce").to_numpy() / 100.0
    pop = pd.to_numeric(facts["population"], errors="coerce").to_numpy(dtype=float)
    area_year = [WIKIPEDIA_TABLE_YEAR if y == "wiki" else y for y in facts["area_year"]]
    area_deriv = [f"facts table area_ha / 100 (year {y}; confidence {c})"
                  if y != "wiki" else f"facts table area_ha / 100 (year not stated, taken as "
                  f"{WIKIPEDIA_TABLE_YEAR} of the Wikipedia table; confidence {c})"
                  for y, c in zip(facts["area_year"], facts["confidence"], strict=True)]
    pdate = [d if REF_DATE.match(d) else "unknown" for d in facts["population_date"]]
    codes = facts["unit"].tolist()
    with np.errstate(divide="ignore", invalid="ignore"):
        dens = np.where(area > 0, pop / area, np.nan)
    frame = pd.concat([
        _rows("area_km2", "stadtviertel", codes, area, area_year, src,
              ["no area in the facts table"] * len(codes), area_deriv),
        _rows("population", "stadtviertel", codes, pop, pdate, src,
              ["no population in the facts table"] * len(codes),
              [f"facts table (confidence {c})" for c in facts["confidence"]]),
        _rows("density", "stadtviertel", codes, dens, pdate, src,
              ["population or area missing"] * len(codes),
              [f"population ({d}) / area_km2 ({y})" for d, y in zip(pdate, area_year,
                                                                     strict=True)]),
    ], ignore_index=True)
    missing_codes = sorted(known - set(codes))
    if missing_codes:
        for key in ("area_km2", "population", "density"):
            frame = pd.concat([frame, _rows(key, "stadtviertel", missing_codes,
                                            [None] * len(missing_codes), "unknown", src,
                                            ["Stadtviertel not in the facts table"] *
                                            len(missing_codes))], ignore_index=True)
    ins, upd = write_values(conn, frame)
    report.add(frame, ins, upd)
    dates = sorted(set(pdate))
    report.notes.append(f"Halle Stadtviertel: {len(codes)} rows; population dates "
                        f"{dates[0]} … {dates[-1]} (each value keeps its own date)")
    return report


# ----------------------------------------------------------------------------------------------
# computed indicators
# ----------------------------------------------------------------------------------------------
def measures_view_exists(conn: Connection) -> bool:
    """True once migration 0003 created the ``measures_public`` view."""
    return conn.execute(text("SELECT to_regclass('measures_public') IS NOT NULL")).scalar_one()


def _view_columns(conn: Connection, name: str) -> set[str]:
    return set(conn.execute(text(
        "SELECT column_name FROM information_schema.columns WHERE table_name = :t"),
        {"t": name}).scalars())


def _geometry_frame(conn: Connection, level: Level) -> pd.DataFrame:
    """code, area (km²), compactness, share inside pilot quarters (%), source id."""
    fw, params = level.from_where()
    share = "NULL::float8"
    if level.table != "quarters":
        share = ("CASE WHEN q.g IS NULL THEN 0 WHEN t.geom && q.g THEN "
                 "100 * ST_Area(ST_Intersection(t.geom, q.g)) / NULLIF(ST_Area(t.geom), 0) "
                 "ELSE 0 END")
    rows = conn.execute(text(f"""
        WITH q AS (SELECT ST_Union(geom) AS g FROM quarters)
        SELECT t.{level.code_column} AS code, ST_Area(t.geom) / 1e6 AS area,
               4 * pi() * ST_Area(t.geom) / NULLIF(ST_Perimeter(t.geom) ^ 2, 0) AS compact,
               {share} AS share, t.source_id
        FROM {fw.replace(' WHERE ', ' CROSS JOIN q WHERE ', 1)}
        ORDER BY 1
    """), params).all()
    return pd.DataFrame(rows, columns=["code", "area", "compact", "share", "source_id"])


def _measure_counts(conn: Connection, level: Level, precise_only: bool) -> pd.DataFrame:
    """Long frame (code, action_field, n) of public, not cancelled measures per unit."""
    cols = _view_columns(conn, "measures_public")
    where = ["TRUE"]
    if "status" in cols:
        where.append("m.status IS DISTINCT FROM 'eingestellt'")
    if precise_only and "location_precision" in cols:
        where.append("m.location_precision IN ('exact', 'approximate')")
    fw, params = level.from_where()
    rows = conn.execute(text(f"""
        SELECT t.{level.code_column} AS code, m.action_field, count(*) AS n
        FROM {fw.replace(' WHERE ', ' JOIN measures_public m ON ST_Intersects(t.geom, '
                         'ST_PointOnSurface(m.geom)) WHERE ', 1)}
          AND {' AND '.join(where)}
        GROUP BY 1, 2
    """), params).all()
    return pd.DataFrame(rows, columns=["code", "action_field", "n"])


def _action_fields(conn: Connection) -> list[str]:
    return list(conn.execute(text(
        "SELECT DISTINCT action_field FROM measures_public WHERE action_field IS NOT NULL "
        "ORDER BY 1")).scalars())


def latest_values(conn: Connection, level: str, indicators: Sequence[str]) -> pd.DataFrame:
    """Long frame of the latest value per (indicator, unit): indicator, unit_code, value,
    missing_reason, ref_date, source_id, derivation."""
    rows = conn.execute(text("""
        SELECT DISTINCT ON (indicator, unit_code) indicator, unit_code, value, missing_reason,
               ref_date, source_id, derivation
        FROM indicator_values
        WHERE level = :level AND indicator = ANY(:inds)
        ORDER BY indicator, unit_code, ref_date DESC
    """), {"level": level, "inds": list(indicators)}).all()
    return pd.DataFrame(rows, columns=["indicator", "unit_code", "value", "missing_reason",
                                       "ref_date", "source_id", "derivation"])


def refresh_computed(conn: Connection, today: str | None = None) -> IndicatorReport:
    """(Re)compute the indicators derived inside the database, replacing earlier results.

    For every level: ``area_geom_km2`` and ``compactness`` from the geometry,
    ``quarter_area_share`` (not for quarters). With the ``measures_public`` view: measure
    counts per action field and in total, per km² of geometry area and per 1,000 inhabitants.
    Measures are recorded only for the project cities: units outside them get explicitly
    missing values, not 0. For district levels only measures located exactly or
    approximately are counted (a measure located only at city level cannot be placed in a
    Stadtviertel). Finally the quarter profiles are stored as level ``quarter``.
    """
    report = IndicatorReport()
    batch_timeout(conn)
    today = today or date.today().isoformat()
    comp = computed_source(conn)
    ensure_indicators(conn, [BUILTIN[k] for k in ("area_geom_km2", "compactness",
                                                  "quarter_area_share", "population",
                                                  "area_km2")])
    has_measures = measures_view_exists(conn)
    fields: list[str] = []
    if has_measures:
        fields = _action_fields(conn)
        defs = [BUILTIN["measures"], BUILTIN["measures_per_km2"], BUILTIN["measures_per_1000"]]
        for f in fields:
            defs += measure_defs(f)
        ensure_indicators(conn, defs)
    else:
        report.notes.append("no measures yet: view measures_public does not exist (migration "
                            "0003 not applied); measure indicators skipped")
    computed = ["area_geom_km2", "compactness", "quarter_area_share"]
    measure_keys = [k for k in definitions(conn) if k.startswith("measures")]
    conn.execute(text("DELETE FROM indicator_values WHERE indicator = ANY(:k)"),
                 {"k": computed + measure_keys})
    n_quarters = conn.execute(text("SELECT count(*) FROM quarters")).scalar_one()
    parts = []
    for level in available_levels(conn):
        if not level.outlines:  # nothing to compute from a geometry that does not exist
            continue
        geo = _geometry_frame(conn, level)
        if geo.empty:
            continue
        codes = geo["code"].tolist()
        parts.append(_rows("area_geom_km2", level.name, codes, geo["area"].to_numpy(float),
                           today, geo["source_id"].tolist(), None,
                           "ST_Area of the stored geometry (EPSG:25832) / 1e6"))
        parts.append(_rows("compactness", level.name, codes, geo["compact"].to_numpy(float),
                           today, geo["source_id"].tolist(), ["perimeter is 0"] * len(codes),
                           "Polsby-Popper 4·π·area / perimeter² of the stored geometry"))
        if level.table != "quarters" and n_quarters:
            parts.append(_rows("quarter_area_share", level.name, codes,
                               geo["share"].to_numpy(float), today, comp, None,
                               "100 · area(unit ∩ union of pilot quarters) / area(unit)"))
        if has_measures and level.table != "quarters":
            parts += _measure_rows(conn, level, geo, fields, today, comp)
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    ins, upd = write_values(conn, frame)
    if not frame.empty:
        report.add(frame, ins, upd)
    if has_measures:
        total = conn.execute(text("SELECT count(*) FROM measures_public")).scalar_one()
        report.notes.append(f"measures: {total} published measures in {len(fields)} action "
                            "field(s) counted" if total else
                            "no measures yet: measures_public is empty (counts are 0 inside "
                            "the project cities, missing elsewhere)")
    if n_quarters:
        from quarters.profiles import store_profiles

        report.merge(store_profiles(conn, today=today))
    return report


MEASURES_OUTSIDE = ("measures are recorded only for the project cities Halle (Saale) and "
                    "Gera; no count for this unit")


def absent_reason(indicator: str) -> str:
    """Why a unit has no row at all for an indicator."""
    if indicator.startswith("measures"):
        return MEASURES_OUTSIDE + " (or none loaded yet)"
    return "no value loaded"


def _measure_rows(conn: Connection, level: Level, geo: pd.DataFrame, fields: list[str],
                  today: str, comp: int) -> list[pd.DataFrame]:
    """Measure counts and rates of the units of one level inside the project cities.

    Units outside the project cities get no rows: measures are not recorded there, and
    :func:`values_table` reports them as missing with :data:`MEASURES_OUTSIDE` (storing
    ~30 explicit gaps for each of 11,000 municipalities would say nothing more).
    """
    district = level.table == "districts"
    counts = _measure_counts(conn, level, precise_only=district)
    unit_table = units(conn, level)
    codes = geo["code"].tolist()
    if level.table == "counties":
        covered = {c for c in codes if any(a.startswith(c) for a in PROJECT_CITIES)}
    else:
        covered = {c for c in codes if unit_table.at[c, "city_ags"] in PROJECT_CITIES}
    codes = [c for c in codes if c in covered]
    if not codes:
        return []
    area = dict(zip(geo["code"], geo["area"], strict=True))
    pop = latest_values(conn, level.name, ["population"]).set_index("unit_code")["value"]
    outside = MEASURES_OUTSIDE
    parts = []
    for field_name, suffix in [(None, ""), *[(f, f"__{slug(f)}") for f in fields]]:
        sel = counts if field_name is None else counts[counts["action_field"] == field_name]
        n_by = sel.groupby("code")["n"].sum()
        n = np.array([float(n_by.get(c, 0)) if c in covered else np.nan for c in codes])
        reasons = [None if c in covered else outside for c in codes]
        label = "all action fields" if field_name is None else f"action field '{field_name}'"
        deriv = (f"count of published, not cancelled measures ({label}) whose "
                 f"ST_PointOnSurface lies in the unit"
                 + ("; only measures located exactly or approximately" if district else ""))
        parts.append(_rows(f"measures{suffix}", level.name, codes, n, today, comp, reasons, deriv))
        a = np.array([area[c] for c in codes])
        with np.errstate(divide="ignore", invalid="ignore"):
            per_km2 = np.where(a > 0, n / a, np.nan)
        parts.append(_rows(f"measures_per_km2{suffix}", level.name, codes, per_km2, today, comp,
                           reasons, f"measures{suffix} / area_geom_km2"))
        p = np.array([pop.get(c, np.nan) for c in codes], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_1000 = np.where(p > 0, 1000.0 * n / p, np.nan)
        r1000 = [r if r else ("no population value" if np.isnan(pv) else
                              "no inhabitants: rate undefined" if pv == 0 else None)
                 for r, pv in zip(reasons, p, strict=True)]
        parts.append(_rows(f"measures_per_1000{suffix}", level.name, codes, per_1000, today,
                           comp, r1000, f"1000 · measures{suffix} / population (latest)"))
    return parts


def batch_timeout(conn: Connection) -> None:
    """Allow long statements for the rest of this transaction only (loads are batch work)."""
    if conn.in_transaction():
        conn.execute(text(f"SET LOCAL statement_timeout = '{BATCH_TIMEOUT}'"))


def load_all_indicators(conn: Connection, data_dir: Path) -> IndicatorReport:
    """Destatis, Halle's Stadtviertel and the computed indicators (one transaction)."""
    batch_timeout(conn)
    report = IndicatorReport()
    report.merge(load_destatis(conn, data_dir))
    if conn.execute(text("SELECT 1 FROM districts WHERE level = 'stadtviertel' LIMIT 1")).first():
        report.merge(load_halle_stadtviertel(conn, data_dir))
    from quarters.statunits import load_gera_bezirke

    report.merge(load_gera_bezirke(conn, data_dir))
    report.merge(refresh_computed(conn))
    return report


# ----------------------------------------------------------------------------------------------
# CSV import
# ----------------------------------------------------------------------------------------------
KEY_COLUMNS = ("unit_code", "ags", "ars", "code")
META_COLUMNS = {"name", "ref_date", "unit", "source", "licence", "attribution",
                "missing_reason", "indicator", "value", "note"}


@dataclass
class IndicatorImportSummary:
    """What an indicator CSV import did."""

    path: str
    level: str
    rows: int = 0
    values: int = 0
    missing: int = 0
    inserted: int = 0
    updated: int = 0
    new_indicators: list[str] = field(default_factory=list)
    indicators: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _norm_unit(unit: str) -> str:
    u = unicodedata.normalize("NFKC", unit).replace("²", "2").replace("³", "3")
    return re.sub(r"\s+", "", u).lower()


def _sniff_sep(path: Path) -> str:
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline()
    return ";" if first.count(";") > first.count(",") else ("\t" if "\t" in first and
                                                             "," not in first else ",")


def _parse_value(raw: str, decimal: str) -> float | None:
    """Number or None for a missing token; ValueError if not numeric."""
    s = raw.strip()
    if s.lower() in MISSING_TOKENS:
        return None
    s = s.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if decimal == ",":
        s = s.replace(".", "").replace(",", ".")
    value = float(s)  # raises ValueError
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _key_normaliser(conn: Connection, level: Level, key_column: str):  # noqa: ANN202
    """Function raw key → (unit_code or None, note) for the level and key column."""
    known = set(units(conn, level).index)

    def digits(raw: str, n: int) -> str | None:
        s = raw.strip()
        if not (s.isascii() and s.isdigit()) or len(s) > n:
            return None
        return s.zfill(n)  # spreadsheets drop leading zeros of AGS/ARS

    def norm(raw: str) -> str | None:
        if level.table == "municipalities":
            if key_column == "ars":
                s = digits(raw, 12)
                code = s[:5] + s[9:] if s else None
            else:
                code = digits(raw, 8)
        elif level.table == "counties":
            s = digits(raw, 12 if key_column == "ars" else 5) if len(raw.strip()) > 5 \
                else digits(raw, 5)
            code = s[:5] if s else None
        else:
            code = raw.strip()
        return code if code in known else None

    return norm


def import_indicators(
    conn: Connection,
    path: Path,
    level: str,
    *,
    ref_date: str | None = None,
    key_column: str | None = None,
    decimal: str = ".",
    source_name: str | None = None,
    licence: str = "nicht angegeben",
    attribution: str | None = None,
) -> IndicatorImportSummary:
    """Import indicator values from a CSV into the caller's transaction: all or nothing.

    Layouts (detected from the header; separator ``,`` ``;`` or tab; UTF-8, BOM allowed):

    * long: a key column plus ``indicator`` and ``value`` (optional ``unit``, ``ref_date``,
      ``missing_reason``, ``source``, ``licence``, ``attribution``),
    * wide: a key column plus one column per indicator, named ``key`` or ``key [unit]``.

    The key column is ``unit_code``, ``ags``, ``ars`` (municipalities / Kreise) or ``code``
    (district codes as stored, quarter slugs), or the one named by ``key_column``. Empty cells
    and the tokens NA, ".", "x", "…" are stored as explicitly missing (reason from
    ``missing_reason`` or "not given in FILE"). Refused with every problem named (file, row,
    problem): unknown unit key, unknown indicator without a unit, unit clash with the
    indicator's unit, non-numeric value, bad or missing reference date, duplicate rows.
    """
    from quarters.ingest import file_checksum
    from quarters.loading import upsert_source
    from quarters.safefiles import Limits, check_counts, check_file

    name = path.name
    if decimal not in (".", ","):
        raise InvalidParameter(f"decimal: must be '.' or ',', got '{decimal[:10]}'")
    if ref_date is not None and not REF_DATE.match(ref_date):
        raise InvalidParameter(f"ref_date: '{ref_date[:40]}' is not YYYY, YYYY-MM or YYYY-MM-DD")
    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        raise ImportRefused(f"{name}: unsupported file type '{path.suffix}' (use CSV)")
    limits = Limits.of()
    check_file(path, name, "csv", limits)
    lvl = get_level(conn, level)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            sep=_sniff_sep(path), quoting=csv.QUOTE_MINIMAL)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ImportRefused(f"{name}: cannot be read as CSV ({reason})") from exc
    check_counts(name, len(frame), 0, limits)
    frame.columns = [c.strip() for c in frame.columns]
    lower = {c.lower(): c for c in frame.columns}
    key_col = key_column or next((lower[k] for k in KEY_COLUMNS if k in lower), None)
    if key_col is None or key_col not in frame.columns:
        raise ImportRefused(f"{name}: no key column; expected one of {', '.join(KEY_COLUMNS)} "
                            f"(or --key-column); has: {', '.join(frame.columns)}")
    if frame.empty:
        raise ImportRefused(f"{name}: no data rows")
    long = "indicator" in lower and "value" in lower
    records: list[dict[str, Any]] = []
    errors: list[str] = []

    def get(row: pd.Series, col: str) -> str:
        c = lower.get(col)
        return row[c].strip() if c else ""

    if long:
        for i, row in frame.iterrows():
            records.append({"row": int(i) + 2, "raw_key": row[key_col], "indicator":
                            get(row, "indicator"), "raw": row[lower["value"]],
                            "unit": get(row, "unit"), "ref_date": get(row, "ref_date"),
                            "reason": get(row, "missing_reason"), "source": get(row, "source"),
                            "licence": get(row, "licence"),
                            "attribution": get(row, "attribution")})
    else:
        value_cols = [c for c in frame.columns
                      if c != key_col and c.lower() not in META_COLUMNS and c.lower()
                      not in KEY_COLUMNS]
        if not value_cols:
            raise ImportRefused(f"{name}: no indicator columns (long layout needs columns "
                                "'indicator' and 'value'; wide layout one column per indicator)")
        heads = {}
        for c in value_cols:
            m = re.fullmatch(r"(.+?)\s*\[(.+)\]", c)
            heads[c] = (m.group(1).strip(), m.group(2).strip()) if m else (c.strip(), "")
        for i, row in frame.iterrows():
            for c in value_cols:
                ind, unit = heads[c]
                records.append({"row": int(i) + 2, "raw_key": row[key_col], "indicator": ind,
                                "raw": row[c], "unit": unit, "ref_date": get(row, "ref_date"),
                                "reason": get(row, "missing_reason"),
                                "source": get(row, "source"), "licence": get(row, "licence"),
                                "attribution": get(row, "attribution")})

    defs = definitions(conn)
    norm = _key_normaliser(conn, lvl, key_col.lower())
    file_units: dict[str, tuple[str, int]] = {}
    seen: dict[tuple[str, str, str], int] = {}
    new: dict[str, str] = {}
    for r in records:
        where = f"{name}, row {r['row']}"
        ind = r["indicator"]
        if not INDICATOR_KEY.match(ind):
            errors.append(f"{where}: indicator '{ind}' is not a valid key (lower-case letters, "
                          "digits and _; starting with a letter)")
            continue
        code = norm(r["raw_key"])
        if code is None:
            errors.append(f"{where}: unknown {key_col} '{r['raw_key'].strip()}' (no "
                          f"{lvl.label_en} unit of level '{lvl.name}' has this key)")
        r["code"] = code
        unit = r["unit"]
        if ind in defs:
            if unit and _norm_unit(unit) != _norm_unit(defs[ind].unit):
                errors.append(f"{where}: unit '{unit}' of indicator '{ind}' clashes with its "
                              f"unit '{defs[ind].unit}'")
        elif unit:
            first = file_units.setdefault(ind, (unit, r["row"]))
            if _norm_unit(first[0]) != _norm_unit(unit):
                errors.append(f"{where}: unit '{unit}' of new indicator '{ind}' clashes with "
                              f"unit '{first[0]}' in row {first[1]}")
            new.setdefault(ind, unit)
        else:
            errors.append(f"{where}: unknown indicator '{ind}' and no unit given (give a unit "
                          f"column or a header '{ind} [unit]' to create it)")
        try:
            r["value"] = _parse_value(r["raw"], decimal)
        except ValueError:
            errors.append(f"{where}: value '{r['raw'].strip()}' of indicator '{ind}' is not a "
                          f"number" + (" (use --decimal , for decimal commas)"
                                       if decimal == "." and "," in r["raw"] else ""))
            r["value"] = None
        ref = r["ref_date"] or ref_date
        if not ref:
            errors.append(f"{where}: no reference date (add a ref_date column or --ref-date)")
        elif not REF_DATE.match(ref):
            errors.append(f"{where}: ref_date '{ref}' is not YYYY, YYYY-MM or YYYY-MM-DD")
        r["ref"] = ref
        if code is not None and ref:
            k = (ind, code, ref)
            if k in seen:
                errors.append(f"{where}: duplicate row for indicator '{ind}', unit '{code}', "
                              f"date {ref} (first in row {seen[k]})")
            else:
                seen[k] = r["row"]
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f" … and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise ImportRefused(f"{name}: import refused, nothing stored. " + "; ".join(shown) + more,
                            errors=[{"file": name, "problem": e} for e in errors])

    checksum = file_checksum(path)
    sources: dict[tuple[str, str, str], int] = {}
    for r in records:
        combo = (r["source"] or source_name or name, r["licence"] or licence,
                 r["attribution"] or attribution or r["source"] or source_name or name)
        if combo not in sources:
            digest = hashlib.sha1("|".join(combo).encode()).hexdigest()[:8]
            sources[combo] = upsert_source(
                conn, f"import:indicators:{lvl.name}:{name}:{digest}"[:80], name=combo[0],
                licence=combo[1], attribution=combo[2], checksum=checksum,
                note=f"indicator values imported from {name}")
        r["source_id"] = sources[combo]
    if new:
        ensure_indicators(conn, [IndicatorDef(k, k, k, u, kind_of_unit(u), "none",
                                              description=f"imported from {name}")
                                 for k, u in new.items()])
    rows = pd.DataFrame({
        "indicator": [r["indicator"] for r in records], "level": lvl.name,
        "unit_code": [r["code"] for r in records], "ref_date": [r["ref"] for r in records],
        "value": [r["value"] for r in records],
        "missing_reason": [None if r["value"] is not None else
                           (r["reason"] or f"not given in {name}") for r in records],
        "derivation": f"imported from {name}",
        "source_id": [r["source_id"] for r in records]})
    ins, upd = write_values(conn, rows)
    missing = int(rows["value"].isna().sum())
    summary = IndicatorImportSummary(
        path=str(path), level=lvl.name, rows=len(frame), values=len(rows) - missing,
        missing=missing, inserted=ins, updated=upd, new_indicators=sorted(new),
        indicators=sorted(set(rows["indicator"])))
    if missing:
        summary.notes.append(f"{missing} value(s) stored as explicitly missing")
    return summary


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def catalogue(conn: Connection) -> list[dict[str, Any]]:
    """All indicators with unit, source and coverage per level (values, missing, absent)."""
    defs = definitions(conn)
    src = {r["key"]: dict(r) for r in conn.execute(text(
        "SELECT i.key, s.key AS source, s.licence, s.attribution FROM indicators i "
        "LEFT JOIN sources s ON s.id = i.source_id")).mappings()}
    cov = conn.execute(text("""
        SELECT indicator, level, count(value) AS n_values, count(*) - count(value) AS n_missing,
               min(ref_date) AS first, max(ref_date) AS last,
               array_agg(DISTINCT s.key) AS sources
        FROM indicator_values v JOIN sources s ON s.id = v.source_id
        GROUP BY indicator, level ORDER BY indicator, level
    """)).mappings().all()
    totals = level_sizes(conn)
    out = []
    for key, d in defs.items():
        levels = {}
        for r in cov:
            if r["indicator"] != key:
                continue
            n_units = totals.get(r["level"], 0)
            levels[r["level"]] = {
                "units": n_units, "values": r["n_values"], "missing": r["n_missing"],
                "absent": max(n_units - r["n_values"] - r["n_missing"], 0),
                "ref_dates": [r["first"], r["last"]] if r["first"] != r["last"] else [r["first"]],
                "sources": sorted(r["sources"]),
            }
        out.append({**definition_dict(d), "source": src.get(key, {}).get("source"),
                    "default_eligible": default_eligible(d), "coverage": levels})
    return out


def definition_dict(d: IndicatorDef) -> dict[str, Any]:
    """JSON-ready definition."""
    return {"key": d.key, "name_de": d.name_de, "name_en": d.name_en, "unit": d.unit,
            "kind": d.kind, "aggregation": d.aggregation, "numerator": d.numerator,
            "denominator": d.denominator, "scale": d.scale, "description": d.description}


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


def values_table(conn: Connection, level: Level, indicators: Sequence[str]
                 ) -> tuple[pd.DataFrame, dict[str, dict[str, str]], pd.DataFrame]:
    """Wide table (unit code × indicator, NaN = missing) over ALL units of the level.

    Per unit and indicator the value of the latest reference date is used. Returns
    ``(values, reasons, meta)``: ``reasons[indicator][code]`` says why a value is missing (the
    stored missing_reason, or "no value loaded"); ``meta`` has per indicator the first and last
    reference date and the source ids used. One array per indicator comes from the database
    (about 0.1 s for 11,000 municipalities × 10 indicators).
    """
    unit_index = units(conn, level).index
    rows = conn.execute(text("""
        SELECT indicator, array_agg(unit_code), array_agg(value), array_agg(ref_date),
               min(ref_date), max(ref_date), array_agg(DISTINCT source_id)
        FROM indicator_values WHERE level = :level AND indicator = ANY(:inds)
        GROUP BY indicator
    """), {"level": level.name, "inds": list(indicators)}).all()
    columns: dict[str, pd.Series] = {}
    meta_rows = {}
    for ind, codes, vals, dates, first, last, srcs in rows:
        v = np.array([np.nan if x is None else x for x in vals], dtype=float)
        series = pd.Series(v, index=pd.Index(codes))
        if not series.index.is_unique:  # several reference dates: keep the latest
            order = np.argsort(np.asarray(dates, dtype=object), kind="stable")
            series = series.iloc[order]
            series = series[~series.index.duplicated(keep="last")]
        columns[ind] = series
        meta_rows[ind] = {"first": first, "last": last, "sources": sorted(srcs)}
    wide = pd.DataFrame({ind: columns[ind].reindex(unit_index) if ind in columns
                         else pd.Series(np.nan, index=unit_index) for ind in indicators},
                        index=unit_index, dtype=float)
    wide.index.name = "code"
    stored = conn.execute(text("""
        SELECT indicator, unit_code, missing_reason FROM indicator_values
        WHERE level = :level AND indicator = ANY(:inds) AND value IS NULL ORDER BY ref_date
    """), {"level": level.name, "inds": list(indicators)}).all()
    stored_reason = {(r[0], r[1]): r[2] for r in stored}  # latest date wins
    reasons: dict[str, dict[str, str]] = {}
    for ind in indicators:
        miss = wide.index[wide[ind].isna()]
        absent = absent_reason(ind)
        reasons[ind] = {c: stored_reason.get((ind, c)) or absent for c in miss}
    meta = pd.DataFrame.from_dict(meta_rows, orient="index",
                                  columns=["first", "last", "sources"])
    return wide, reasons, meta
