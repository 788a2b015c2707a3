"""Quarter profiles: a pilot quarter's indicator values derived from the districts it covers.

Rules per indicator (from its ``aggregation`` in the ``indicators`` table):

* ``sum`` (counts, areas): areal interpolation with tobler's ``area_interpolate`` as an
  extensive variable with ``allocate_total=False`` — each district passes on the share of its
  value that equals the share of its area inside the quarter (``allocate_total=True`` would hand
  a district's whole value to the part the quarter covers; see NOTES.md).
* ``mean``: tobler intensive variable (area-weighted mean over the quarter area).
* ``ratio`` (density, shares, rates): recomputed from the profile's own numerator and
  denominator (``scale · numerator / denominator``), never averaged.
* ``none`` (classes, compactness …): not derived from districts; missing with the reason.
* Geometry-based indicators (``area_geom_km2``, ``compactness``) and measure counts are
  computed directly from the quarter's geometry.

A district value that is missing makes the interpolated value missing (tobler would silently
replace NaN by 0). The coverage (share of the quarter's area that lies in districts of the
source level) is reported; where it is below 100 %, sums are underestimates and say so.
Every value carries a ``derivation``, every missing value a ``missing_reason``: notes
(:mod:`quarters.indicators.provenance`) written out in the reader's language.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from quarters.errors import InvalidParameter, NotFound
from quarters.indicators.definitions import IndicatorDef, definitions, slug
from quarters.indicators.levels import _district_level
from quarters.indicators.reading import measures_view_exists, values_table
from quarters.indicators.values import IndicatorReport, _rows, write_values
from quarters.messages import Note
from quarters.settings import STORAGE_SRID
from quarters.sources import computed_source

DIRECT = ("area_geom_km2", "compactness", "quarter_area_share")
COVERAGE_WARNING = 0.995


def _quarter(conn: Connection, quarter_slug: str) -> dict[str, Any]:
    row = conn.execute(text(
        "SELECT id, slug, name, city_ags, ST_AsBinary(geom) AS wkb, ST_Area(geom) AS area, "
        "ST_Perimeter(geom) AS perimeter FROM quarters WHERE slug = :s"),
        {"s": quarter_slug}).mappings().first()
    if row is None:
        known = ", ".join(conn.execute(text("SELECT slug FROM quarters ORDER BY slug")).scalars())
        raise NotFound(code="profiles.unknown_quarter", pointer="quarter",
                       params={"slug": quarter_slug[:80], "known": known})
    return {**row, "geom": shapely.from_wkb(bytes(row["wkb"]))}


def source_level_for(conn: Connection, city_ags: str) -> str | None:
    """The district level of a city that profiles are built from (stadtviertel preferred)."""
    levels = list(conn.execute(text(
        "SELECT level FROM districts WHERE city_ags = :c GROUP BY level "
        "ORDER BY (level = 'stadtviertel') DESC, count(*) DESC"), {"c": city_ags}).scalars())
    return levels[0] if levels else None


def _districts(conn: Connection, level: str, city_ags: str) -> gpd.GeoDataFrame:
    rows = conn.execute(text(
        "SELECT code, name, ST_AsBinary(geom) AS wkb FROM districts "
        "WHERE level = :l AND city_ags = :c ORDER BY code"), {"l": level, "c": city_ags}).all()
    return gpd.GeoDataFrame(
        {"code": [r.code for r in rows], "name": [r.name for r in rows]},
        geometry=[shapely.from_wkb(bytes(r.wkb)) for r in rows], crs=STORAGE_SRID)


def _needed(defs: dict[str, IndicatorDef], keys: list[str]) -> list[str]:
    """Keys plus the numerators/denominators of ratio indicators (recursively)."""
    out: list[str] = []

    def add(k: str) -> None:
        if k in out or k not in defs:
            return
        d = defs[k]
        if d.aggregation == "ratio":
            add(d.numerator)
            add(d.denominator)
        out.append(k)

    for k in keys:
        add(k)
    return out


def _district_part(code: str, name: str, share: float) -> Note:
    """One covered district of a derivation: code, name and the share of its area inside."""
    if share < 0.01:
        return Note("deriv.district_part_small", code=code, name=name)
    return Note("deriv.district_part", code=code, name=name, share=round(100 * share))


def quarter_profile(conn: Connection, quarter_slug: str,
                    indicators: list[str] | None = None) -> dict[str, Any]:
    """Indicator values of a pilot quarter, each with value, derivation and missing reason.

    ``indicators`` defaults to every indicator that has values at the source district level
    plus the geometry-based ones.
    """
    q = _quarter(conn, quarter_slug)
    defs = definitions(conn)
    level = source_level_for(conn, q["city_ags"])
    q_area_km2 = q["area"] / 1e6
    if indicators is None:
        have = set(conn.execute(text(
            "SELECT DISTINCT indicator FROM indicator_values WHERE level = :l"),
            {"l": level or ""}).scalars())
        indicators = [k for k in defs if k in have or k in DIRECT]
    unknown = [k for k in indicators if k not in defs]
    if unknown:
        raise InvalidParameter(code="profiles.unknown_indicators", pointer="indicators",
                               params={"keys": ", ".join(k[:80] for k in unknown[:20])})
    keys = _needed(defs, indicators)

    district_rows: list[dict[str, Any]] = []
    coverage = 0.0
    src_values = pd.DataFrame()
    reasons: dict[str, dict[str, str]] = {}
    meta = pd.DataFrame()
    gdf = gpd.GeoDataFrame()
    if level:
        gdf = _districts(conn, level, q["city_ags"])
        inter = gdf.geometry.intersection(q["geom"]).area.to_numpy()
        hit = inter > 0
        gdf = gdf[hit].copy()
        gdf["inter"] = inter[hit]
        gdf["share_of_district"] = gdf["inter"] / gdf.geometry.area
        coverage = float(gdf["inter"].sum() / q["area"]) if q["area"] > 0 else 0.0
        district_rows = [{"code": r.code, "name": r.name,
                          "share_of_district": round(float(r.share_of_district), 6),
                          "share_of_quarter": round(float(r.inter / q["area"]), 6)}
                         for r in gdf.itertuples()]
        lvl = _district_level(level)
        interp_keys = [k for k in keys if defs[k].aggregation in ("sum", "mean")
                       and k not in DIRECT and not k.startswith("measures")]
        if interp_keys:
            src_values, reasons, meta = values_table(conn, lvl, interp_keys)

    values: dict[str, dict[str, Any]] = {}
    cov_note = ("" if coverage >= COVERAGE_WARNING else
                Note("deriv.coverage_partial", level=level, share=max(round(100 * coverage), 1)))
    parts = [_district_part(r["code"], r["name"], r["share_of_district"]) for r in district_rows]
    counts = _measure_count(conn, q["id"]) if any(k.startswith("measures") for k in keys) \
        else None

    for k in keys:
        d = defs[k]
        entry: dict[str, Any] = {"indicator": k, "value": None, "missing_reason": None,
                                 "derivation": None, "ref_date": None}
        if k == "area_geom_km2":
            entry.update(value=q_area_km2, derivation=Note("deriv.quarter_area"))
        elif k == "compactness":
            entry.update(value=4 * math.pi * q["area"] / q["perimeter"] ** 2,
                         derivation=Note("deriv.quarter_compactness"))
        elif k == "quarter_area_share":
            entry.update(value=100.0, derivation=Note("deriv.quarter_share_itself"))
        elif k.startswith("measures") and d.aggregation == "sum":
            if counts is None:
                entry["missing_reason"] = Note("missing.no_measures_view")
            else:
                field_key = k.split("__", 1)[1] if "__" in k else None
                n = sum(c for f, c in counts.items() if field_key is None or slug(f) == field_key)
                entry.update(value=float(n), derivation=Note("deriv.quarter_measures"))
        elif d.aggregation in ("sum", "mean"):
            if not level:
                entry["missing_reason"] = Note("missing.no_district_level", city=q["city_ags"])
            elif not district_rows:
                entry["missing_reason"] = Note("missing.no_covered_district", level=level)
            else:
                col = src_values[k].reindex(gdf["code"]).to_numpy(dtype=float)
                bad = [c for c, v in zip(gdf["code"], col, strict=True) if np.isnan(v)]
                if bad:
                    why = [Note("missing.district_value", code=c,
                                reason=reasons[k].get(c) or Note("missing.no_value_loaded"))
                           for c in bad]
                    entry["missing_reason"] = Note("missing.district_values", level=level,
                                                   count=len(bad), districts=why)
                else:
                    code = "deriv.interpolated_sum" if d.aggregation == "sum" \
                        else "deriv.interpolated_mean"
                    entry.update(value=_interpolate(gdf, col, q["geom"], d.aggregation),
                                 derivation=Note(code, count=len(gdf), level=level,
                                                 districts=parts, coverage=cov_note))
                    if k in meta.index:
                        entry["ref_date"] = meta.at[k, "last"]
        elif d.aggregation == "ratio":
            num, den = values.get(d.numerator), values.get(d.denominator)
            if num is None or den is None or num["value"] is None or den["value"] is None:
                missing = [x for x, e in ((d.numerator, num), (d.denominator, den))
                           if e is None or e["value"] is None]
                entry["missing_reason"] = Note("missing.ratio_parts", parts=", ".join(missing))
            elif den["value"] == 0:
                entry["missing_reason"] = Note("missing.denominator_zero",
                                               denominator=d.denominator)
            else:
                derivation = Note("deriv.ratio", numerator=d.numerator,
                                  denominator=d.denominator) if d.scale == 1 else \
                    Note("deriv.ratio_scaled", scale=d.scale, numerator=d.numerator,
                         denominator=d.denominator)
                entry.update(value=d.scale * num["value"] / den["value"], derivation=derivation,
                             ref_date=num.get("ref_date") or den.get("ref_date"))
        else:
            entry["missing_reason"] = Note("missing.not_derivable", indicator=k, value_kind=d.kind)
        values[k] = entry

    out_values = []
    for k in keys:
        d = defs[k]
        e = values[k]
        out_values.append({**e, "name_de": d.name_de, "name_en": d.name_en, "unit": d.unit,
                           "kind": d.kind, "aggregation": d.aggregation,
                           "requested": k in indicators})
    return {
        "quarter": {"slug": q["slug"], "name": q["name"], "city_ags": q["city_ags"],
                    "area_km2": q_area_km2},
        "source_level": level,
        "coverage": coverage,
        "districts": district_rows,
        "values": out_values,
    }


def _interpolate(gdf: gpd.GeoDataFrame, col: np.ndarray, geom: shapely.Geometry,
                 aggregation: str) -> float:
    """tobler areal interpolation of one complete variable onto one target polygon."""
    from tobler.area_weighted import area_interpolate

    source = gpd.GeoDataFrame({"v": col.copy()}, geometry=gdf.geometry.to_numpy(),
                              crs=STORAGE_SRID)
    target = gpd.GeoDataFrame(geometry=[geom], crs=STORAGE_SRID)
    kw = {"extensive_variables": ["v"]} if aggregation == "sum" else {"intensive_variables": ["v"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = area_interpolate(source, target, allocate_total=False, **kw)
    return float(result["v"].iloc[0])


def _measure_count(conn: Connection, quarter_id: int) -> dict[str, int] | None:
    """Public, not cancelled, precisely located measures in a quarter per action field."""
    if not measures_view_exists(conn):
        return None
    rows = conn.execute(text("""
        SELECT m.action_field, count(*) FROM measures_public m JOIN quarters q
          ON ST_Intersects(q.geom, ST_PointOnSurface(m.geom))
        WHERE q.id = :id AND m.status IS DISTINCT FROM 'eingestellt'
          AND m.location_precision IN ('exact', 'approximate')
        GROUP BY 1
    """), {"id": quarter_id}).all()
    return {r[0]: int(r[1]) for r in rows}


def profile_series(profile: dict[str, Any]) -> pd.Series:
    """indicator → value (NaN = missing) of a profile, for the similarity core."""
    return pd.Series({v["indicator"]: (np.nan if v["value"] is None else v["value"])
                      for v in profile["values"]}, dtype=float)


def store_profiles(conn: Connection, today: str) -> IndicatorReport:
    """Store every quarter's profile as level ``quarter`` (replacing earlier profiles)."""
    report = IndicatorReport()
    comp = computed_source(conn)
    conn.execute(text("DELETE FROM indicator_values WHERE level = 'quarter' AND source_id = :s"),
                 {"s": comp})
    parts = []
    slugs = list(conn.execute(text("SELECT slug FROM quarters ORDER BY slug")).scalars())
    for s in slugs:
        prof = quarter_profile(conn, s)
        for v in prof["values"]:
            parts.append(_rows(v["indicator"], "quarter", [s], [v["value"]],
                               v["ref_date"] or today, comp, [v["missing_reason"]],
                               v["derivation"] or Note("deriv.quarter_profile")))
    if parts:
        frame = pd.concat(parts, ignore_index=True)
        # geometry values of quarters were written by refresh_computed with today's date
        frame = frame.drop_duplicates(["indicator", "unit_code", "ref_date"])
        ins, upd = write_values(conn, frame)
        report.add(frame, ins, upd)
        report.notes.append(Note("quarter_profiles_stored", count=len(slugs)))
    return report
