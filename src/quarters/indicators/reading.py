"""Reading what is stored: the catalogue of indicators per level, default indicators of a
level, tables of values (a unit without a value says why)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from quarters.indicators.definitions import (
    DEFAULT_MIN_COVERAGE,
    IndicatorDef,
    default_eligible,
    definitions,
    describe,
)
from quarters.indicators.levels import Level, level_sizes, units
from quarters.indicators.provenance import decode
from quarters.messages import DEFAULT_LANGUAGE, Note


def default_indicators(conn: Connection, level: Level) -> list[str]:
    """Indicators used when none are chosen (DEFAULT_RULE), sorted by key."""
    defs = definitions(conn)
    n_units = level_sizes(conn).get(level.name, 0)
    counts = dict(conn.execute(text(
        "SELECT indicator, count(DISTINCT unit_code) FROM indicator_values WHERE level = :l "
        "AND value IS NOT NULL GROUP BY indicator"), {"l": level.name}).all())
    return sorted(k for k, d in defs.items() if default_eligible(d)
                  and counts.get(k, 0) >= max(1, DEFAULT_MIN_COVERAGE * n_units))


def measures_view_exists(conn: Connection) -> bool:
    """True once migration 0003 created the ``measures_public`` view."""
    return conn.execute(text("SELECT to_regclass('measures_public') IS NOT NULL")).scalar_one()


MEASURES_OUTSIDE = Note("missing.measures_outside")  # measures of the project cities only


def absent_reason(indicator: str) -> Note:
    """Why a unit has no row at all for an indicator."""
    if indicator.startswith("measures"):
        return Note("missing.measures_absent")
    return Note("missing.no_value_loaded")


def catalogue(conn: Connection, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    """All indicators with unit, source and coverage per level (values, missing, absent), the
    descriptions in ``lang``."""
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
        out.append({**definition_dict(d, lang), "source": src.get(key, {}).get("source"),
                    "default_eligible": default_eligible(d), "coverage": levels})
    return out


def definition_dict(d: IndicatorDef, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """JSON-ready definition, the description in ``lang`` (free text as written)."""
    return {"key": d.key, "name_de": d.name_de, "name_en": d.name_en, "unit": d.unit,
            "kind": d.kind, "aggregation": d.aggregation, "numerator": d.numerator,
            "denominator": d.denominator, "scale": d.scale, "description": describe(d, lang)}


def values_table(conn: Connection, level: Level, indicators: Sequence[str]
                 ) -> tuple[pd.DataFrame, dict[str, dict[str, str]], pd.DataFrame]:
    """Wide table (unit code × indicator, NaN = missing) over ALL units of the level.

    Per unit and indicator the value of the latest reference date is used. Returns
    ``(values, reasons, meta)``: ``reasons[indicator][code]`` says why a value is missing (the
    stored missing_reason, or "no value loaded": a note or free text); ``meta`` has per
    indicator the first and last reference date and the source ids used. One array per
    indicator comes from the database (about 0.1 s for 11,000 municipalities × 10 indicators).
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
    stored_reason = {(r[0], r[1]): decode(r[2]) for r in stored}  # latest date wins
    reasons: dict[str, dict[str, str]] = {}
    for ind in indicators:
        miss = wide.index[wide[ind].isna()]
        absent = absent_reason(ind)
        reasons[ind] = {c: stored_reason.get((ind, c)) or absent for c in miss}
    meta = pd.DataFrame.from_dict(meta_rows, orient="index",
                                  columns=["first", "last", "sources"])
    return wide, reasons, meta
