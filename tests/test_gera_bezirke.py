"""Gera at district level as far as data allows: 12 statistical districts with population
1997 and 2011 (TLUG), values and source, no outlines — listed, ranked on values, not mapped."""

from __future__ import annotations

import csv
import json

from sqlalchemy import text

from conftest import DATA_DIR
from quarters.indicators.loaders import load_all_indicators
from quarters.indicators.provenance import render
from quarters.statunits import GERA_BEZIRK_FACTS, GERA_BEZIRK_KEY

LEVEL = "gera_bezirk"


def facts() -> list[dict[str, str]]:
    with (DATA_DIR / GERA_BEZIRK_FACTS).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def stored(conn):
    return conn.execute(text(
        "SELECT v.unit_code, v.ref_date, v.value, s.key, s.licence, v.derivation "
        "FROM indicator_values v JOIN sources s ON s.id = v.source_id "
        "WHERE v.level = :l AND v.indicator = 'population' ORDER BY 1, 2"), {"l": LEVEL}).all()


def test_twelve_districts_times_two_dates_with_source_equal_the_csv(conn):
    rows = stored(conn)
    assert len(rows) == 24
    assert len({r.unit_code for r in rows}) == 12
    assert {r.ref_date for r in rows} == {"1997-12-31", "2011-12-31"}
    assert {r.key for r in rows} == {GERA_BEZIRK_KEY}
    assert "no licence stated" in rows[0].licence
    expected = {(f["code"], f["population_date"]): (float(f["population"]), f["confidence"])
                for f in facts()}
    assert {(r.unit_code, r.ref_date): r.value for r in rows} == \
        {k: v for k, (v, _) in expected.items()}
    for r in rows:  # the confidence of each row travels with the value
        word = expected[(r.unit_code, r.ref_date)][1]
        assert r.derivation["params"]["confidence"] == {"code": f"deriv.confidence_{word}",
                                                        "params": {}}
        assert f"confidence {word}" in render(r.derivation, "en")
        assert "Verlässlichkeit " + {"high": "hoch", "medium": "mittel", "low": "niedrig"}[word] \
            in render(r.derivation, "de")
    units = conn.execute(text(
        "SELECT code, name, outline_note FROM statistical_units WHERE level = :l "
        "AND city_ags = '16052000' ORDER BY code"), {"l": LEVEL}).all()
    assert [u.code for u in units] == [f"{n:02d}" for n in range(1, 13)]
    assert units[9].name == "Lusan-Laune"
    assert all(json.loads(u.outline_note) == {"code": "levels.gera_outlines", "params": {}}
               for u in units)  # a note, written out in the reader's language
    assert conn.execute(text("SELECT count(*) FROM districts WHERE level = :l"),
                        {"l": LEVEL}).scalar_one() == 0  # no invented outlines


def test_population_change_is_derived_from_the_two_dates(conn):
    change = dict(conn.execute(text(
        "SELECT unit_code, value FROM indicator_values WHERE level = :l "
        "AND indicator = 'population_change_pct'"), {"l": LEVEL}).all())
    pop = {(f["code"], f["population_date"][:4]): float(f["population"]) for f in facts()}
    assert len(change) == 12
    for code, value in change.items():
        assert abs(value - 100 * (pop[(code, "2011")] / pop[(code, "1997")] - 1)) < 1e-9


def test_loading_twice_is_idempotent(conn):
    before = stored(conn)
    n_units = conn.execute(text("SELECT count(*) FROM statistical_units")).scalar_one()
    load_all_indicators(conn, DATA_DIR)
    assert stored(conn) == before
    assert conn.execute(text("SELECT count(*) FROM statistical_units")).scalar_one() == n_units


def test_the_level_is_listed_with_no_outlines(client):
    levels = {lv["name"]: lv for lv in client.get("/api/analysis/levels?lang=en").json()["levels"]}
    lv = levels[LEVEL]
    assert lv["units"] == 12 and lv["outlines"] is False and lv["collection"] is None
    assert lv["note"]["code"] == "levels.no_outlines"
    assert "no outlines" in lv["note"]["detail"] and "quarters import boundaries" in lv["note"]["detail"]
    assert levels["stadtviertel"]["outlines"] is True


def test_indicator_values_endpoint_lists_the_districts(client):
    body = client.get("/api/analysis/indicators/population/values",
                      params={"level": LEVEL}).json()
    assert body["outlines"] is False and body["n_units"] == 12 and body["n_missing"] == 0
    latest = {f["code"]: float(f["population"]) for f in facts()
              if f["population_date"] == "2011-12-31"}
    assert {r["code"]: r["value"] for r in body["values"]} == latest
    geo = client.get("/api/analysis/indicators/population/values",
                     params={"level": LEVEL, "format": "geojson"})
    assert geo.status_code == 200
    feats = geo.json()["features"]
    assert len(feats) == 12 and all(f["geometry"] is None for f in feats)


def test_ranking_at_the_level_works_on_values_and_says_it_cannot_map(client):
    resp = client.get("/api/analysis/transfer", params={
        "reference": f"{LEVEL}:10", "level": LEVEL, "sensitivity": "false", "types": "false"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["level"]["outlines"] is False
    # the one default rule: intensive indicators only (the change, not the absolute size)
    assert [i["key"] for i in body["indicators"]] == ["population_change_pct"]
    assert body["n_candidates"] == 12
    assert body["rows"][0]["code"] == "10"
    assert any(w["code"] == "level_without_outlines" and "nicht kartieren" in w["detail"]
               for w in body["warnings"])


def test_a_measure_reference_at_the_level_is_refused_clearly(client, conn):
    measure = conn.execute(text("SELECT min(id) FROM measures_public")).scalar_one()
    resp = client.get("/api/analysis/transfer", params={
        "reference": f"measure:{measure}", "level": LEVEL, "sensitivity": "false",
        "types": "false"})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "analysis.measure_level_without_outlines"


def test_report_at_the_level_renders_without_a_map_geometry(client):
    resp = client.post("/api/analysis/report", json={
        "reference": f"{LEVEL}:10", "level": LEVEL, "sensitivity": False, "types": False})
    assert resp.status_code == 200, resp.text
    assert "Lusan-Laune" in resp.text and "lässt sich nicht kartieren" in resp.text
