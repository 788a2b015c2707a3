"""Levels with values but no outlines (table ``statistical_units``), and Gera's 12 statistical
districts (level ``gera_bezirk``: population 1997 and 2011, TLUG figures).

No outline is ever invented: these units have a code, a name and a source; the analysis ranks
them on values only and says it cannot map them. When the city's outlines are imported
(``quarters import boundaries --level gera_bezirk``) the level becomes a district level with
outlines, and the same codes keep their values.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, text

from quarters.errors import ImportRefused, SetupError
from quarters.messages import Note
from quarters.settings import GERA_AGS

GERA_BEZIRK_KEY = "gera-statistische-bezirke-facts"
GERA_BEZIRK_FACTS = Path("facts/gera_statistische_bezirke.csv")
GERA_BEZIRK_LEVEL = "gera_bezirk"
# where Gera's outlines would come from; stored in ``outline_note`` as a note (the JSON text of
# quarters.indicators.provenance.encode_text), written out in the reader's language
GERA_OUTLINE_NOTE = Note("levels.gera_outlines")
NO_OUTLINES_DE = "keine Umrisse"
NO_OUTLINES_EN = "no outlines"
COLUMNS = {"code", "name", "population", "population_date", "confidence", "source", "licence"}


def outline_levels(conn: Connection) -> list[str]:
    """Levels whose units have no outlines (not also a district level with outlines)."""
    return list(conn.execute(text(
        "SELECT DISTINCT level FROM statistical_units WHERE level NOT IN "
        "(SELECT DISTINCT level FROM districts) ORDER BY level")).scalars())


def sizes(conn: Connection) -> dict[str, int]:
    """Number of units per outline-less level."""
    return dict(conn.execute(text(
        "SELECT level, count(*) FROM statistical_units GROUP BY level")).all())


def outline_notes(conn: Connection, level: str) -> list[Note | str]:
    """Where the outlines of a level would come from (one note per city): a :class:`Note`,
    or the stored text as it is (older rows, free text)."""
    from quarters.indicators.provenance import decode_text

    return [decode_text(stored) for stored in conn.execute(text(
        "SELECT DISTINCT outline_note FROM statistical_units WHERE level = :l "
        "AND outline_note IS NOT NULL ORDER BY 1"), {"l": level}).scalars()]


def no_outlines_note(conn: Connection, level: str) -> Note:
    """The note of a level without outlines: values only, not mapped, and where outlines
    would come from."""
    return Note("levels.no_outlines", notes=outline_notes(conn, level))


def read_gera_bezirke(data_dir: Path) -> pd.DataFrame:
    """The facts table, checked: 12 codes, population and date per row, provenance kept."""
    path = data_dir / GERA_BEZIRK_FACTS
    if not path.exists():
        raise SetupError(code="data.file_missing",
                         params={"path": str(path), "dataset": GERA_BEZIRK_KEY})
    facts = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = COLUMNS - set(facts.columns)
    if missing:
        raise ImportRefused(code="data.missing_columns", params={
            "file": path.name, "columns": ", ".join(sorted(missing))})
    facts = facts.apply(lambda c: c.str.strip())
    bad = facts.loc[~facts["code"].str.fullmatch(r"\d{2}"), "code"].tolist()
    if bad:
        raise ImportRefused(code="data.malformed_codes", params={
            "file": path.name, "codes": ", ".join(map(repr, bad[:5]))})
    dup = facts[facts.duplicated(["code", "population_date"], keep=False)]
    if len(dup):
        raise ImportRefused(code="data.duplicate_rows", params={
            "file": path.name, "codes": ", ".join(map(repr, dup["code"].tolist()[:5]))})
    return facts


def load_gera_bezirke(conn: Connection, data_dir: Path):  # noqa: ANN201 - IndicatorReport
    """Store Gera's statistical districts (no outlines) and their population per date."""
    from quarters.indicators.definitions import BUILTIN, ensure_indicators
    from quarters.indicators.provenance import confidence, encode_text
    from quarters.indicators.values import IndicatorReport, _rows, write_values
    from quarters.sources import source_id

    report = IndicatorReport()
    facts = read_gera_bezirke(data_dir)
    src = source_id(conn, GERA_BEZIRK_KEY)
    names = facts.drop_duplicates("code").set_index("code")
    for code, row in names.iterrows():
        conn.execute(text("""
            INSERT INTO statistical_units (city_ags, level, code, name, attributes,
                                           outline_note, source_id)
            VALUES (:city, :level, :code, :name,
                    jsonb_build_object('name_city_list', CAST(:alt AS text)), :note, :src)
            ON CONFLICT (city_ags, level, code) DO UPDATE SET name = EXCLUDED.name,
                attributes = EXCLUDED.attributes, outline_note = EXCLUDED.outline_note,
                source_id = EXCLUDED.source_id
        """), {"city": GERA_AGS, "level": GERA_BEZIRK_LEVEL, "code": code, "name": row["name"],
               "alt": row.get("name_city_list") or None, "note": encode_text(GERA_OUTLINE_NOTE), "src": src})
    ensure_indicators(conn, [BUILTIN["population"], BUILTIN["population_change_pct"]])
    pop = pd.to_numeric(facts["population"], errors="coerce").to_numpy(dtype=float)
    deriv = [Note("deriv.gera_population_note", confidence=confidence(c), note=n) if n else
             Note("deriv.gera_population", confidence=confidence(c))
             for c, n in zip(facts["confidence"], facts.get("note", [""] * len(facts)),
                             strict=True)]
    frame = _rows("population", GERA_BEZIRK_LEVEL, facts["code"].tolist(), pop,
                  facts["population_date"].tolist(), src,
                  [Note("missing.facts_no_population")] * len(facts), deriv)
    frame = pd.concat([frame, _change_rows(facts, src)], ignore_index=True)
    ins, upd = write_values(conn, frame)
    report.add(frame, ins, upd)
    dates = sorted(set(facts["population_date"]))
    report.notes.append(Note("gera_bezirke_loaded", count=len(names), level=GERA_BEZIRK_LEVEL,
                             dates=", ".join(dates)))
    return report


def _change_rows(facts: pd.DataFrame, src: int) -> pd.DataFrame:
    """population_change_pct per district: first → last date of the table (at the last date)."""
    from quarters.indicators.values import _rows

    pop = facts.assign(p=pd.to_numeric(facts["population"], errors="coerce"))
    wide = pop.pivot(index="code", columns="population_date", values="p").sort_index()
    first, last = min(wide.columns), max(wide.columns)
    change = 100.0 * (wide[last] / wide[first].where(wide[first] > 0) - 1.0)
    return _rows("population_change_pct", GERA_BEZIRK_LEVEL, wide.index.tolist(),
                 change.to_numpy(dtype=float), last, src,
                 [Note("missing.population_at_one_date")] * len(wide),
                 Note("deriv.population_change", first=first, last=last))
