"""Which units a ranking compares: candidate filters (CQL2), parts of the reference,
approximation flags, and the plain-language similarity bands.

* :func:`filter_fields` — the attributes a candidate filter may use per level, compiled by
  :mod:`quarters.cql2` (the same CQL2 text the OGC API takes), e.g.
  ``land IN ('12','13','14','15','16') AND population >= 90000``.
* :func:`parts_of_reference` — candidates the reference covers (a quarter over the
  Stadtviertel it overlaps by more than half of their area, a city or Kreis over its
  districts or municipalities): they are not ranked against it but listed as
  ``part_of_reference``.
* :func:`approximate_codes` — units whose outline or values are approximations or
  interpolations.
* :func:`bands` — percentile and band of every candidate (see BAND_RULE).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from quarters import cql2
from quarters.collections import COLLECTIONS
from quarters.indicators.levels import Level, get_level
from quarters.messages import Note

PART_SHARE = 0.5  # a candidate is part of the reference when more than half of its area is in it

# Urbanisation: the Destatis Verstädterungsschlüssel (DEGURBA, indicator 'urbanisation') is in
# the data for municipalities; for Kreise and districts, which have none, a class is derived
# from the density with the DEGURBA density thresholds (≥ 1,500 Einw./km² → 1 dicht,
# ≥ 300 → 2 mittel, else 3 gering besiedelt). This is a documented approximation of the
# grid-based EU rule, not an official figure.
URBANISATION_FROM_DENSITY = ("CASE WHEN {d} IS NULL THEN NULL WHEN {d} >= 1500 THEN 1 "
                             "WHEN {d} >= 300 THEN 2 ELSE 3 END")
URBANISATION_NOTE = Note("rule.urbanisation")  # the text: web/i18n, warning.rule.urbanisation

BANDS = (  # (upper percentile bound of the distance, key, German, English)
    (5.0, "very_similar", "sehr ähnlich", "very similar"),
    (20.0, "similar", "ähnlich", "similar"),
    (50.0, "rather_similar", "eher ähnlich", "rather similar"),
    (80.0, "little_similar", "wenig ähnlich", "little similar"),
    (100.0, "hardly_similar", "kaum ähnlich", "hardly similar"),
)
BAND_RULE = Note("rule.bands")  # the text (the BANDS above): web/i18n, warning.rule.bands


def _no_sql(queryables: dict[str, Any]) -> dict[str, cql2.Field]:
    return {n: cql2.Field(q.column, q.kind) for n, q in queryables.items() if not q.sql}


def filter_fields(level: Level) -> dict[str, cql2.Field]:
    """CQL2 names a candidate filter may use at ``level`` (table aliased t)."""
    if level.table == "municipalities":
        fields = _no_sql(COLLECTIONS["municipalities"].queryables)
        fields["urbanisation"] = cql2.Field(
            "quarters_figure('urbanisation', 'gemeinde', t.ags)::int", "integer")
    elif level.table == "counties":
        fields = _no_sql(COLLECTIONS["counties"].queryables)
        fields["urbanisation"] = cql2.Field(URBANISATION_FROM_DENSITY.format(
            d="quarters_figure('density', 'kreis', t.ags)"), "integer")
    elif level.table == "districts":
        figure = "quarters_figure('{i}', t.level, t.code)"
        fields = {
            "code": cql2.Field("t.code"), "name": cql2.Field("t.name"),
            "stadtbezirk": cql2.Field("t.parent_name"), "city_ags": cql2.Field("t.city_ags"),
            "approximate": cql2.Field("t.approximate", "boolean"),
            "population": cql2.Field(figure.format(i="population"), "number"),
            "area_km2": cql2.Field(figure.format(i="area_km2"), "number"),
            "density": cql2.Field(figure.format(i="density"), "number"),
            "urbanisation": cql2.Field(URBANISATION_FROM_DENSITY.format(
                d=figure.format(i="density")), "integer"),
        }
    else:
        fields = {"slug": cql2.Field("t.slug"), "name": cql2.Field("t.name"),
                  "city_ags": cql2.Field("t.city_ags")}
    return fields


def filtered_codes(conn: Connection, level: Level, cql: str) -> set[str]:
    """Codes of the units of ``level`` that pass the CQL2 text filter (InvalidParameter → 400)."""
    compiled = cql2.compile_filter(cql, "cql2-text", filter_fields(level))
    fw, params = level.from_where()
    rows = conn.execute(text(f"SELECT t.{level.code_column} FROM {fw} AND ({compiled.sql})"),
                        {**params, **compiled.params}).scalars()
    return {str(c) for c in rows}


def parts_of_reference(conn: Connection, ref_level: str, ref_code: str,
                       level: Level) -> list[str]:
    """Codes of ``level`` units covered by the reference by more than PART_SHARE of their area
    (none when the reference is of the candidates' own level)."""
    if ref_level == level.name:
        return []
    rl = get_level(conn, ref_level)
    rfw, rparams = rl.from_where()
    fw, params = level.from_where()
    ref_geom = conn.execute(text(f"SELECT ST_AsBinary(t.geom) FROM {rfw} AND "
                                 f"t.{rl.code_column} = :rcode"),
                            {**rparams, "rcode": ref_code}).scalar()
    if ref_geom is None:
        return []
    rows = conn.execute(text(f"""
        SELECT t.{level.code_column} FROM {fw}
        AND ST_Intersects(t.geom, ST_GeomFromWKB(:g, ST_SRID(t.geom)))
        AND ST_Area(ST_Intersection(t.geom, ST_GeomFromWKB(:g, ST_SRID(t.geom))))
            > :share * ST_Area(t.geom)
        ORDER BY 1"""), {**params, "g": bytes(ref_geom), "share": PART_SHARE}).scalars()
    return [str(c) for c in rows]


def approximate_codes(conn: Connection, level: Level) -> set[str]:
    """Units of ``level`` whose outline is an approximation (districts, quarters) or whose
    values are interpolated (every quarter: its profile comes from the districts)."""
    if level.table == "quarters":
        return set(conn.execute(text("SELECT slug FROM quarters")).scalars())
    if level.table != "districts":
        return set()
    fw, params = level.from_where()
    return {str(c) for c in conn.execute(text(
        f"SELECT t.code FROM {fw} AND t.approximate"), params).scalars()}


def bands(distance: pd.Series, reference: str | None) -> pd.DataFrame:
    """Percentile and band (BAND_RULE) of each candidate; the reference itself gets none."""
    others = distance.drop(reference) if reference is not None and reference in distance.index \
        else distance
    values = others.to_numpy(dtype=float)
    d = np.sort(values)
    n = len(d)
    below = np.searchsorted(d, values, side="left")
    same = np.searchsorted(d, values, side="right") - below
    farther = n - below - same
    pct = 100.0 * (farther + 0.5 * (same - 1)) / (n - 1) if n > 1 else np.full(n, 100.0)
    position = 100.0 * (below + 0.5 * same) / max(n, 1)  # mid-rank share of nearer candidates
    idx = np.minimum(np.searchsorted([b[0] for b in BANDS], position, side="left"),
                     len(BANDS) - 1)
    out = pd.DataFrame({"percentile": np.round(pct, 1),
                        "band": [BANDS[i][1] for i in idx],
                        "band_de": [BANDS[i][2] for i in idx],
                        "band_en": [BANDS[i][3] for i in idx]}, index=others.index)
    return out.reindex(distance.index)
