"""Quarter profiles: areal interpolation from the Stadtviertel, recomputed ratios, derivations."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box
from sqlalchemy import text

from quarters.indicators.provenance import render
from quarters.profiles import _interpolate, profile_series, quarter_profile

SLUG = "bildungsquartier-neustadt"


def test_interpolation_does_not_allocate_totals():
    """Known answer from NOTES.md: squares with 100 and 200, target over half of each → 150."""
    src = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10)], crs=25832)
    target = box(5, 0, 15, 10)
    assert _interpolate(src, np.array([100.0, 200.0]), target, "sum") == pytest.approx(150)
    # intensive (mean): area-weighted average over the target
    assert _interpolate(src, np.array([100.0, 200.0]), target, "mean") == pytest.approx(150)


def _by_key(profile):
    return {v["indicator"]: v for v in profile["values"]}


def test_profile_sums_shares_of_the_covered_districts(conn):
    prof = quarter_profile(conn, SLUG)
    assert prof["source_level"] == "stadtviertel"
    assert 0.9 < prof["coverage"] <= 1.0
    pops = dict(conn.execute(text(
        "SELECT unit_code, value FROM indicator_values WHERE indicator = 'population' AND "
        "level = 'stadtviertel'")).all())
    expected = sum(d["share_of_district"] * pops[d["code"]] for d in prof["districts"])
    vals = _by_key(prof)
    assert vals["population"]["value"] == pytest.approx(expected, rel=1e-4)
    assert vals["population"]["derivation"].code == "deriv.interpolated_sum"
    assert "allocate_total=False" in render(vals["population"]["derivation"], "en")
    assert "71 Nördliche Neustadt" in render(vals["population"]["derivation"], "de")
    # ratios are recomputed from the profile's own numerator and denominator
    assert vals["density"]["value"] == pytest.approx(
        vals["population"]["value"] / vals["area_km2"]["value"])
    assert vals["density"]["derivation"] == {
        "code": "deriv.ratio", "params": {"numerator": "population", "denominator": "area_km2"}}
    assert render(vals["density"]["derivation"], "en").startswith("recomputed")
    # geometry-based values come directly from the quarter
    area = conn.execute(text("SELECT ST_Area(geom) / 1e6 FROM quarters WHERE slug = :s"),
                        {"s": SLUG}).scalar_one()
    assert vals["area_geom_km2"]["value"] == pytest.approx(area)
    # every value says how it was derived or why it is missing
    for v in prof["values"]:
        assert (v["value"] is None) == (v["derivation"] is None)
        assert (v["value"] is None) == (v["missing_reason"] is not None)


def test_missing_district_value_makes_the_profile_value_missing(conn):
    conn.execute(text("UPDATE indicator_values SET value = NULL, "
                      "missing_reason = '{\"text\": \"test gap\"}' "
                      "WHERE indicator = 'population' AND level = 'stadtviertel' AND "
                      "unit_code = '72'"))
    vals = _by_key(quarter_profile(conn, SLUG, ["population", "density"]))
    assert vals["population"]["value"] is None
    assert "72: test gap" in render(vals["population"]["missing_reason"], "de")
    assert vals["density"]["value"] is None
    assert "population" in render(vals["density"]["missing_reason"], "en")
    series = profile_series(quarter_profile(conn, SLUG, ["population"]))
    assert np.isnan(series["population"])  # never silently 0


def test_profiles_are_stored_as_level_quarter(conn):
    rows = conn.execute(text(
        "SELECT indicator, value, derivation FROM indicator_values WHERE level = 'quarter' AND "
        "unit_code = :s"), {"s": SLUG}).all()
    stored = {r.indicator: r for r in rows}
    live = _by_key(quarter_profile(conn, SLUG))
    assert stored["population"].value == pytest.approx(live["population"]["value"])
    assert stored["population"].derivation["code"] == "deriv.interpolated_sum"
    assert "tobler" in render(stored["population"].derivation, "en")


def test_profile_api(client):
    r = client.get(f"/api/analysis/profiles/{SLUG}", params={"indicators": "density"})
    assert r.status_code == 200
    body = r.json()
    keys = [v["indicator"] for v in body["values"]]
    assert "density" in keys and "population" in keys  # ratio parts come along
    assert [v["requested"] for v in body["values"] if v["indicator"] == "density"] == [True]
    missing = client.get("/api/analysis/profiles/nirgendwo?lang=en")
    assert missing.status_code == 404
    assert missing.json()["code"] == "profiles.unknown_quarter"
    assert "quarter: no pilot quarter 'nirgendwo'" in missing.json()["detail"]
    bad = client.get(f"/api/analysis/profiles/{SLUG}", params={"indicators": "nope",
                                                                "lang": "en"})
    assert bad.status_code == 400 and bad.json()["pointer"] == "indicators"
    assert "indicators: unknown indicator(s) nope" in bad.json()["detail"]
