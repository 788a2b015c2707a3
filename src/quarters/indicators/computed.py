"""Values computed in the database (:func:`refresh_computed`): geometry area, compactness,
share of area inside a pilot quarter, measures per action field per km² and per 1,000
inhabitants, quarter profiles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from quarters.indicators.definitions import BUILTIN, definitions, ensure_indicators, measure_defs, slug
from quarters.indicators.levels import Level, available_levels, units
from quarters.indicators.provenance import decode
from quarters.indicators.reading import MEASURES_OUTSIDE, measures_view_exists
from quarters.indicators.values import IndicatorReport, _rows, batch_timeout, write_values
from quarters.messages import Note
from quarters.settings import PROJECT_CITIES
from quarters.sources import computed_source


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
    frame = pd.DataFrame(rows, columns=["indicator", "unit_code", "value", "missing_reason",
                                        "ref_date", "source_id", "derivation"])
    for col in ("missing_reason", "derivation"):
        frame[col] = [decode(x) for x in frame[col]]
    return frame


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
        report.notes.append(Note("measures_view_missing"))
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
                           today, geo["source_id"].tolist(), None, Note("deriv.geom_area")))
        parts.append(_rows("compactness", level.name, codes, geo["compact"].to_numpy(float),
                           today, geo["source_id"].tolist(),
                           [Note("missing.perimeter_zero")] * len(codes),
                           Note("deriv.geom_compactness")))
        if level.table != "quarters" and n_quarters:
            parts.append(_rows("quarter_area_share", level.name, codes,
                               geo["share"].to_numpy(float), today, comp, None,
                               Note("deriv.quarter_area_share")))
        if has_measures and level.table != "quarters":
            parts += _measure_rows(conn, level, geo, fields, today, comp)
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    ins, upd = write_values(conn, frame)
    if not frame.empty:
        report.add(frame, ins, upd)
    if has_measures:
        total = conn.execute(text("SELECT count(*) FROM measures_public")).scalar_one()
        report.notes.append(Note("measures_counted", count=total, fields=len(fields)) if total
                            else Note("measures_none"))
    if n_quarters:
        from quarters.profiles import store_profiles

        report.merge(store_profiles(conn, today=today))
    return report


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
    no_population, no_inhabitants = Note("missing.no_population"), Note("missing.no_inhabitants")
    parts = []
    for field_name, suffix in [(None, ""), *[(f, f"__{slug(f)}") for f in fields]]:
        sel = counts if field_name is None else counts[counts["action_field"] == field_name]
        n_by = sel.groupby("code")["n"].sum()
        n = np.array([float(n_by.get(c, 0)) if c in covered else np.nan for c in codes])
        reasons = [None if c in covered else outside for c in codes]
        label = Note("deriv.all_fields") if field_name is None else \
            Note("deriv.action_field", name=field_name)
        deriv = Note("deriv.measures_count", field=label,
                     precise=Note("deriv.precise_only") if district else "")
        parts.append(_rows(f"measures{suffix}", level.name, codes, n, today, comp, reasons, deriv))
        a = np.array([area[c] for c in codes])
        with np.errstate(divide="ignore", invalid="ignore"):
            per_km2 = np.where(a > 0, n / a, np.nan)
        parts.append(_rows(f"measures_per_km2{suffix}", level.name, codes, per_km2, today, comp,
                           reasons, Note("deriv.measures_per_km2", measures=f"measures{suffix}")))
        p = np.array([pop.get(c, np.nan) for c in codes], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_1000 = np.where(p > 0, 1000.0 * n / p, np.nan)
        r1000 = [r if r else (no_population if np.isnan(pv) else
                              no_inhabitants if pv == 0 else None)
                 for r, pv in zip(reasons, p, strict=True)]
        parts.append(_rows(f"measures_per_1000{suffix}", level.name, codes, per_1000, today,
                           comp, r1000, Note("deriv.measures_per_1000",
                                             measures=f"measures{suffix}")))
    return parts
