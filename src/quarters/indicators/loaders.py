"""The indicator loaders of `quarters data load` (inside the caller's transaction):

* :func:`load_destatis` – Destatis Gemeindeverzeichnis extract (municipalities; Kreise as sums
  of their municipalities, because the file's Kreis rows, satzart 40, carry no figures),
* :func:`load_halle_stadtviertel` – the facts table of Halle's 43 Stadtviertel,
* :func:`load_all_indicators` – these two, Gera's statistical districts
  (:func:`quarters.statunits.load_gera_bezirke`) and the computed values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from quarters.errors import ImportRefused, SetupError
from quarters.indicators.computed import refresh_computed
from quarters.indicators.definitions import BUILTIN, ensure_indicators
from quarters.indicators.provenance import confidence
from quarters.indicators.values import REF_DATE, IndicatorReport, _rows, batch_timeout, write_values
from quarters.messages import Note
from quarters.settings import HALLE_AGS
from quarters.sources import source_id

DESTATIS_KEY = "destatis-gv-2019"


DESTATIS_FILE = Path("raw/destatis-gv-auszug/AuszugGV4QAktuell.csv")


DESTATIS_POPULATION_DATE = "2019-12-31"


DESTATIS_AREA_DATE = "2020-12-31"  # Gebietsstand of the 4th-quarter extract (see SOURCES.md)


STADTVIERTEL_KEY = "halle-stadtviertel-facts"


STADTVIERTEL_FACTS = Path("facts/halle_stadtviertel.csv")


WIKIPEDIA_TABLE_YEAR = "2020"  # the Wikipedia table behind area_year 'wiki' is of 31.12.2020

# The counts of the Destatis file, each with its reference date (stored per Gemeinde, summed per Kreis).
DESTATIS_COUNTS = (("area_km2", DESTATIS_AREA_DATE), ("population", DESTATIS_POPULATION_DATE),
                   ("population_male", DESTATIS_POPULATION_DATE),
                   ("population_female", DESTATIS_POPULATION_DATE))


def _density_and_share(counts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Density (population / area_km2) and share of women (%) recomputed from the counts; NaN
    where the area or the population is 0 or missing."""
    pop, area = counts["population"].to_numpy(float), counts["area_km2"].to_numpy(float)
    fem = counts["population_female"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.where(area > 0, pop / area, np.nan),
                np.where(pop > 0, 100.0 * fem / pop, np.nan))


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
        raise SetupError(code="data.file_missing",
                         params={"path": str(path), "dataset": DESTATIS_KEY})
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    need = {"satzart", "land", "rb", "kreis", "gemeinde", "gemeindename", "flaeche",
            "bevoelkerung", "maennlich", "weiblich", "jekm2", "verstaedterungschluessel"}
    missing = need - set(frame.columns)
    if missing:
        raise ImportRefused(code="data.missing_columns", params={
            "file": path.name, "columns": ", ".join(sorted(missing))})
    frame = frame.apply(lambda c: c.str.strip())
    gem = frame[frame["satzart"] == "60"].copy()
    gem["ags"] = gem["land"] + gem["rb"] + gem["kreis"] + gem["gemeinde"]
    bad = gem.loc[~gem["ags"].str.fullmatch(r"\d{8}"), "ags"]
    if len(bad):
        raise ImportRefused(code="data.malformed_codes", params={
            "file": path.name, "codes": ", ".join(map(repr, bad.iloc[:5].tolist()))})
    out = pd.DataFrame(index=pd.Index(gem["ags"], name="ags"))
    out["name"] = gem["gemeindename"].to_numpy()
    for target, col in (("area_km2", "flaeche"), ("population", "bevoelkerung"),
                        ("population_male", "maennlich"), ("population_female", "weiblich"),
                        ("jekm2", "jekm2")):
        try:
            out[target] = [_destatis_number(v) for v in gem[col]]
        except ValueError as exc:
            raise ImportRefused(code="data.column_problem", params={
                "file": path.name, "column": col, "reason": str(exc)[:200]}) from exc
    urb = pd.to_numeric(gem["verstaedterungschluessel"], errors="coerce").to_numpy()
    out["urbanisation"] = np.where(np.isin(urb, [1, 2, 3]), urb, np.nan)
    dup = out.index[out.index.duplicated()].unique().tolist()
    if dup:
        raise ImportRefused(code="data.duplicate_rows", params={
            "file": path.name, "codes": ", ".join(map(repr, dup[:5]))})
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
        report.warnings.append(Note(
            "destatis_ags_without_municipality", count=len(only_file),
            uninhabited=int((pop == 0).sum()),
            codes=", ".join(only_file[:10]) + (" …" if len(only_file) > 10 else "")))
    if only_vg:
        report.warnings.append(Note(
            "destatis_municipalities_without_row", count=len(only_vg),
            codes=", ".join(only_vg[:10]) + (" …" if len(only_vg) > 10 else "")))
    frame = gem.reindex(sorted(vg))
    no_row = Note("missing.no_destatis_row")
    absent = frame["name"].isna().to_numpy()

    def reasons(values: np.ndarray, other: Note) -> list[Note | None]:
        return [no_row if a else (other if np.isnan(v) else None)
                for a, v in zip(absent, values, strict=True)]

    codes = frame.index.tolist()
    parts = []
    deriv_file = Note("deriv.destatis_gemeinde", file=DESTATIS_FILE.name)
    empty = Note("missing.destatis_empty")
    for key, ref in DESTATIS_COUNTS:
        v = frame[key].to_numpy(dtype=float)
        parts.append(_rows(key, "gemeinde", codes, v, ref, src, reasons(v, empty), deriv_file))
    dens, share = _density_and_share(frame)
    parts.append(_rows("density", "gemeinde", codes, dens, DESTATIS_POPULATION_DATE, src,
                       reasons(dens, Note("missing.area_zero")), Note("deriv.destatis_density")))
    parts.append(_rows("female_share", "gemeinde", codes, share, DESTATIS_POPULATION_DATE, src,
                       reasons(share, Note("missing.uninhabited_share")),
                       Note("deriv.destatis_female_share")))
    urb = frame["urbanisation"].to_numpy(float)
    parts.append(_rows("urbanisation", "gemeinde", codes, urb, DESTATIS_AREA_DATE, src,
                       reasons(urb, Note("missing.no_urbanisation")),
                       Note("deriv.destatis_urbanisation", file=DESTATIS_FILE.name)))
    # check our density against the file's rounded jekm2
    jek = frame["jekm2"].to_numpy(float)
    off = np.abs(np.nan_to_num(dens) - np.nan_to_num(jek)) > 1.0
    off &= ~np.isnan(jek) & ~np.isnan(dens)
    if off.any():
        report.warnings.append(Note("destatis_density_differs", count=int(off.sum())))

    # Kreise: sums of their Gemeinden (the Kreis rows of the file carry no figures)
    counties = set(conn.execute(text("SELECT ags FROM counties")).scalars())
    gem_k = gem.assign(kreis=gem.index.str[:5])
    sums = gem_k.groupby("kreis")[["area_km2", "population", "population_male",
                                   "population_female"]].sum(min_count=1)
    k_only_file = sorted(set(kreise.index) - counties)
    k_only_vg = sorted(counties - set(sums.index))
    if k_only_file:
        report.warnings.append(Note("destatis_kreise_without_county",
                                    codes=", ".join(k_only_file[:10])))
    if k_only_vg:
        report.warnings.append(Note("destatis_counties_without_rows",
                                    codes=", ".join(k_only_vg[:10])))
    kf = sums.reindex(sorted(counties))
    kcodes = kf.index.tolist()
    k_absent = kf["population"].isna().to_numpy()
    no_rows = Note("missing.no_destatis_kreis")
    k_reason = [no_rows if a else None for a in k_absent]
    deriv_k = Note("deriv.destatis_kreis_sum")
    for key, ref in DESTATIS_COUNTS:
        parts.append(_rows(key, "kreis", kcodes, kf[key].to_numpy(float), ref, src, k_reason,
                           deriv_k))
    kd, ks = _density_and_share(kf)
    parts.append(_rows("density", "kreis", kcodes, kd, DESTATIS_POPULATION_DATE, src,
                       k_reason, Note("deriv.kreis_density")))
    parts.append(_rows("female_share", "kreis", kcodes, ks, DESTATIS_POPULATION_DATE, src,
                       k_reason, Note("deriv.kreis_female_share")))
    frame_all = pd.concat(parts, ignore_index=True)
    ins, upd = write_values(conn, frame_all)
    report.add(frame_all, ins, upd)
    report.notes.append(Note("destatis_loaded", gemeinden=len(gem),
                             joined=len(vg) - len(only_vg), kreise=len(kcodes)))
    return report


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
        report.warnings.append(Note("stadtviertel_codes_without_geometry",
                                    codes=", ".join(unknown)))
    facts = facts[facts["unit"].isin(known)]
    area = pd.to_numeric(facts["area_ha"], errors="coerce").to_numpy() / 100.0
    pop = pd.to_numeric(facts["population"], errors="coerce").to_numpy(dtype=float)
    area_year = [WIKIPEDIA_TABLE_YEAR if y == "wiki" else y for y in facts["area_year"]]
    area_deriv = [Note("deriv.facts_area", year=y, confidence=confidence(c)) if y != "wiki" else
                  Note("deriv.facts_area_wiki", year=WIKIPEDIA_TABLE_YEAR, confidence=confidence(c))
                  for y, c in zip(facts["area_year"], facts["confidence"], strict=True)]
    pdate = [d if REF_DATE.match(d) else "unknown" for d in facts["population_date"]]
    codes = facts["unit"].tolist()
    with np.errstate(divide="ignore", invalid="ignore"):
        dens = np.where(area > 0, pop / area, np.nan)
    frame = pd.concat([
        _rows("area_km2", "stadtviertel", codes, area, area_year, src,
              [Note("missing.facts_no_area")] * len(codes), area_deriv),
        _rows("population", "stadtviertel", codes, pop, pdate, src,
              [Note("missing.facts_no_population")] * len(codes),
              [Note("deriv.facts_population", confidence=confidence(c))
               for c in facts["confidence"]]),
        _rows("density", "stadtviertel", codes, dens, pdate, src,
              [Note("missing.population_or_area")] * len(codes),
              [Note("deriv.facts_density", population_date=d, area_date=y)
               for d, y in zip(pdate, area_year, strict=True)]),
    ], ignore_index=True)
    missing_codes = sorted(known - set(codes))
    if missing_codes:
        for key in ("area_km2", "population", "density"):
            frame = pd.concat([frame, _rows(key, "stadtviertel", missing_codes,
                                            [None] * len(missing_codes), "unknown", src,
                                            [Note("missing.not_in_facts")] *
                                            len(missing_codes))], ignore_index=True)
    ins, upd = write_values(conn, frame)
    report.add(frame, ins, upd)
    dates = sorted(set(pdate))
    report.notes.append(Note("halle_stadtviertel_loaded", count=len(codes), first=dates[0],
                             last=dates[-1]))
    return report


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
