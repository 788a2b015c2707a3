"""Transferability through the service layer and the API: invariants, errors, speed."""

from __future__ import annotations

import math
import time

import pytest
from sqlalchemy import text

from quarters.settings import GERA_AGS, HALLE_AGS
from quarters.transfer import TransferParams, run_transfer

TEN = ["population", "area_km2", "density", "female_share", "urbanisation", "population_male",
       "population_female", "area_geom_km2", "compactness", "quarter_area_share"]


def post(client, **body):
    r = client.post("/api/analysis/transfer", json=body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(("reference", "level", "code"), [
    (f"gemeinde:{HALLE_AGS}", "gemeinde", HALLE_AGS),
    (GERA_AGS, "gemeinde", GERA_AGS),
    ("kreis:16052", "kreis", "16052"),
    ("stadtviertel:71", "stadtviertel", "71"),
])
def test_a_unit_is_most_similar_to_itself(client, reference, level, code):
    body = post(client, reference=reference, level=level, top=5, types=False)
    first = body["rows"][0]
    assert first["code"] == code and first["is_reference"]
    assert (first["rank"], first["score"], first["distance"]) == (1, 100, 0)
    assert body["reference"]["is_candidate"]


def test_ranking_invariants(client):
    body = post(client, reference=f"gemeinde:{HALLE_AGS}", level="gemeinde", top=50,
                indicators=["population", "density", "female_share"],
                weights={"density": 2}, sensitivity=True, types=True)
    rows = body["rows"]
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= s <= 100 for s in scores)
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    for r in rows:  # contributions sum to distance²
        assert sum(r["contributions"].values()) == pytest.approx(r["distance"] ** 2, abs=1e-9)
        assert set(r["values"]) == {"population", "density", "female_share"}
        assert r["explanation"]["text_de"]
    weights = {i["key"]: i["weight"] for i in body["indicators"]}
    assert weights["density"] == pytest.approx(0.5)  # 2 / (2 + 1 + 1)
    assert rows[0]["same_type"] is True  # the reference is of its own type
    assert body["typology"]["reference_type"] == rows[0]["type"]["cluster"]
    assert 0 <= body["sensitivity"]["stability"] <= 1
    assert body["n_candidates"] + body["n_excluded"] == body["level"]["units"]
    # excluded units are listed with the reason, never ranked with a made-up value
    ex = body["excluded"][0]
    assert ex["missing"] == ["female_share"]
    assert ex["reasons"]["female_share"]["code"] == "missing.uninhabited_share"
    assert "keine Einwohner" in ex["reasons"]["female_share"]["detail"]  # German by default


def test_zero_weight_changes_nothing(client):
    a = post(client, reference="stadtviertel:04", level="stadtviertel", top=43,
             indicators=["population", "density"], types=False, sensitivity=False)
    b = post(client, reference="stadtviertel:04", level="stadtviertel", top=43,
             indicators=["population", "density", "area_km2"],
             weights={"population": 1, "density": 1, "area_km2": 0}, types=False,
             sensitivity=False)
    assert [r["code"] for r in a["rows"]] == [r["code"] for r in b["rows"]]
    assert [r["score"] for r in a["rows"]] == pytest.approx([r["score"] for r in b["rows"]])


def test_scaling_an_indicator_changes_nothing(client, conn, tmp_path):
    """z-scores make the ranking independent of units: density per ha ranks like per km²."""
    rows = conn.execute(text("SELECT unit_code, value FROM indicator_values WHERE "
                             "indicator = 'density' AND level = 'stadtviertel'")).all()
    path = tmp_path / "dichte_ha.csv"
    path.write_text("code,density_per_ha [Einw./ha]\n"
                    + "".join(f"{c},{v / 100!r}\n" for c, v in rows))
    from quarters.imports.indicator_tables import import_indicators

    import_indicators(conn, path, "stadtviertel", ref_date="2020")
    a = post(client, reference="stadtviertel:04", level="stadtviertel", top=43,
             indicators=["population", "density"], types=False, sensitivity=False)
    b = post(client, reference="stadtviertel:04", level="stadtviertel", top=43,
             indicators=["population", "density_per_ha"], types=False, sensitivity=False)
    assert [r["code"] for r in a["rows"]] == [r["code"] for r in b["rows"]]
    assert [r["distance"] for r in a["rows"]] == pytest.approx([r["distance"] for r in
                                                                b["rows"]])


def test_cross_city_distances_are_symmetric(client):
    r = client.get("/api/analysis/cross-city", params={"level": "gemeinde", "top": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["ags"] for c in body["cities"]] == [HALLE_AGS, GERA_AGS]
    for city in body["cities"]:
        assert city["rows"][0]["code"] == city["ags"]
    pair = body["pair"]
    assert [p["city"] for p in pair] == ["Gera", "Halle (Saale)"]
    assert pair[0]["distance"] == pytest.approx(pair[1]["distance"])
    kreise = client.get("/api/analysis/cross-city", params={"level": "kreis", "top": 3})
    assert kreise.status_code == 200
    assert kreise.json()["cities"][0]["rows"][0]["code"] == "15002"


def test_quarter_reference_is_an_external_profile(client):
    body = post(client, reference="quarter:bildungsquartier-neustadt", level="stadtviertel",
                indicators=["density", "population"], top=5)
    ref = body["reference"]
    assert not ref["is_candidate"] and ref["level"] == "quarter"
    assert ref["values"]["population"] > 0
    assert ref["derivations"]["population"]["code"] == "deriv.interpolated_sum"
    assert "Bezirken der Ebene stadtviertel" in ref["derivations"]["population"]["detail"]
    # its four Stadtviertel are part of the reference, not candidates (issue 12)
    assert body["n_candidates"] == 43 - len(body["part_of_reference"]) == 39
    assert body["rows"][0]["rank"] == 1 and not body["rows"][0]["is_reference"]
    assert isinstance(body["rows"][0]["same_type"], bool)


def test_measure_reference_uses_the_unit_containing_it(client, conn):
    mid = conn.execute(text("""
        INSERT INTO measures (city_ags, title, action_field, status, geom, published,
                              location_precision)
        SELECT :c, 'Schulhof', 'Bildung', 'geplant', ST_PointOnSurface(geom), true, 'exact'
        FROM districts WHERE level = 'stadtviertel' AND code = '73' RETURNING id
    """), {"c": HALLE_AGS}).scalar_one()
    body = post(client, reference=f"measure:{mid}", level="stadtviertel", top=3, types=False)
    assert body["reference"]["code"] == "73"
    assert body["rows"][0]["code"] == "73" and body["rows"][0]["score"] == 100
    city = post(client, reference=f"measure:{mid}", level="gemeinde", top=3, types=False,
                sensitivity=False)
    assert city["rows"][0]["code"] == HALLE_AGS


def test_get_form_and_scores_for_a_choropleth(client):
    r = client.get("/api/analysis/transfer", params=[
        ("reference", "stadtviertel:71"), ("level", "stadtviertel"), ("indicators", "density"),
        ("indicators", "population"), ("weights", "density=3"), ("top", "3"),
        ("scores", "true"), ("types", "false")])
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["rows"]) == 4  # top 3 plus the reference itself
    units = body["scores"]["units"]
    assert len(units) == 43
    k = body["scores"]["classification"]["k"]
    assert all(0 <= u["class"] < k for u in units)
    assert body["indicators"][0]["weight"] == pytest.approx(0.75)


@pytest.mark.parametrize(("params", "status", "message"), [
    ({"reference": "gemeinde:15002000", "level": "land"}, 400, "indicator.unknown_level"),
    ({"reference": "gemeinde:15002000", "indicators": "nope"}, 400,
     "analysis.unknown_indicators"),
    ({"reference": "gemeinde:15002000", "weights": "density=-1"}, 400,
     "analysis.weight_value"),
    ({"reference": "gemeinde:15002000", "indicators": "density", "weights": "population=1"},
     400, "analysis.weights_not_chosen"),
    ({"reference": "gemeinde:15002000", "method": "magic"}, 400,
     "analysis.not_one_of"),
    ({"reference": "gemeinde:15002000", "top": "0"}, 400, "analysis.between"),
    ({"reference": "gemeinde:00000000"}, 404, "analysis.reference_unknown"),
    ({"reference": "was auch immer"}, 400, "analysis.reference_form"),
    ({"reference": "quarter:nirgendwo"}, 404, "analysis.reference_unknown"),
    ({"reference": "measure:999999"}, 404, "analysis.reference_measure_unknown"),
    ({"reference": "stadtviertel:71", "level": "stadtviertel", "indicators": "female_share"},
     422, "analysis.no_values"),
    ({"reference": "gemeinde:15002000", "classes": "pretty"}, 400, "analysis.not_one_of"),
])
def test_errors_name_the_bad_field(client, params, status, message):
    r = client.get("/api/analysis/transfer", params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == message, problem  # every check names a catalogue code


def test_post_rejects_unknown_fields(client):
    r = client.post("/api/analysis/transfer", json={"reference": "stadtviertel:71", "x": 1})
    assert r.status_code == 422
    problem = r.json()
    assert problem["code"] == "validation.extra_forbidden" and problem["pointer"] == "/x"


def test_indicator_list_and_values_for_maps(client):
    items = client.get("/api/analysis/indicators").json()["indicators"]
    dens = next(i for i in items if i["key"] == "density")
    assert dens["unit"] == "Einw./km²" and dens["aggregation"] == "ratio"
    cov = dens["coverage"]["gemeinde"]
    assert cov["values"] + cov["missing"] + cov["absent"] == cov["units"]
    r = client.get("/api/analysis/indicators/female_share/values",
                   params={"level": "gemeinde", "classes": "quantiles", "k": 5})
    assert r.status_code == 200
    body = r.json()
    cls = body["classification"]
    assert cls["k"] == 5 and len(cls["labels"]) == 5
    assert sum(cls["counts"]) + cls["n_missing"] == body["n_units"]
    gap = next(v for v in body["values"] if v["value"] is None)
    assert gap["class"] == -1 and gap["missing_reason"]
    geo = client.get("/api/analysis/indicators/density/values",
                     params={"level": "stadtviertel", "format": "geojson",
                             "classes": "natural_breaks", "k": 4})
    assert geo.status_code == 200
    assert geo.headers["content-type"].startswith("application/geo+json")
    fc = geo.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 43
    assert fc["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert client.get("/api/analysis/indicators/nope/values").status_code == 404
    levels = client.get("/api/analysis/levels").json()["levels"]
    assert {lv["name"] for lv in levels} >= {"gemeinde", "kreis", "quarter", "stadtviertel"}


def test_typology_endpoint(client):
    r = client.get("/api/analysis/typology", params={"level": "stadtviertel"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sum(t["size"] for t in body["types"]) + body["n_excluded"] == 43
    assert all(u["cluster"] is None or 0 <= u["cluster"] < body["k"] for u in body["units"])
    assert client.get("/api/analysis/typology", params={"k": 50}).status_code == 400


def test_openapi_documents_the_analysis_endpoints(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/analysis/indicators", "/api/analysis/indicators/{key}/values",
                 "/api/analysis/profiles/{quarter_slug}", "/api/analysis/transfer",
                 "/api/analysis/typology", "/api/analysis/cross-city"):
        assert path in paths
    assert "post" in paths["/api/analysis/transfer"]


def test_ranking_all_municipalities_on_ten_indicators_is_fast(conn):
    params = TransferParams(reference=f"gemeinde:{HALLE_AGS}", level="gemeinde", indicators=TEN,
                            sensitivity=False, types=False)
    run_transfer(conn, params)  # warm-up (imports, plans)
    t0 = time.perf_counter()
    res = run_transfer(conn, params)
    total = time.perf_counter() - t0
    assert res.n_units == 10997
    assert len(res.result.indicators) == 10
    assert res.timings["ranking_s"] < 1.0
    assert total < 3.0  # fetch from the database included; generous for a shared machine
    assert math.isclose(res.ranking["score"].iloc[0], 100.0)
