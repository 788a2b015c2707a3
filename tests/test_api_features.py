"""OGC API Features endpoints, health, sources and map configuration."""

from __future__ import annotations

import json

import pytest
import shapely
from shapely.geometry import shape

HALLE_BBOX = "11.85,51.40,12.09,51.55"


def test_landing_page_links_to_conformance_and_data(client):
    body = client.get("/api").json()
    rels = {link["rel"] for link in body["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels


def test_conformance_declares_core_and_geojson(client):
    classes = client.get("/api/conformance").json()["conformsTo"]
    assert any(c.endswith("/conf/core") for c in classes)
    assert any(c.endswith("/conf/geojson") for c in classes)


def test_collections_list_all_with_extents(client):
    body = client.get("/api/collections").json()
    ids = {c["id"] for c in body["collections"]}
    assert ids == {"municipalities", "counties", "districts", "quarters", "sites", "measures",
                   "measures-points", "measures-lines", "measures-areas"}
    municipalities = next(c for c in body["collections"] if c["id"] == "municipalities")
    minx, miny, maxx, maxy = municipalities["extent"]["spatial"]["bbox"][0]
    assert 5 < minx < 6.5 and 54.5 < maxy < 55.5  # Germany


def test_items_are_geojson_with_paging(client):
    response = client.get("/api/collections/municipalities/items?limit=10&offset=20")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberReturned"] == 10 and body["numberMatched"] == 10_997
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert "offset=30" in rels["next"] and "offset=10" in rels["prev"]
    assert len({f["id"] for f in body["features"]}) == 10


def test_last_page_has_no_next_link(client):
    body = client.get("/api/collections/counties/items?limit=100&offset=400").json()
    assert body["numberReturned"] == 1
    assert "next" not in {link["rel"] for link in body["links"]}


def test_bbox_selects_halle_and_neighbours(client):
    body = client.get(f"/api/collections/municipalities/items?bbox={HALLE_BBOX}&limit=100").json()
    names = {f["properties"]["name"] for f in body["features"]}
    assert "Halle (Saale)" in names and "Gera" not in names
    assert body["numberMatched"] == len(names) < 40


def test_queryable_filter_project_city(client):
    body = client.get("/api/collections/municipalities/items?project_city=true").json()
    assert sorted(f["properties"]["name"] for f in body["features"]) == ["Gera", "Halle (Saale)"]


def test_geometry_is_rfc7946(client):
    feature = client.get("/api/collections/municipalities/items/15002000").json()
    assert feature["type"] == "Feature" and feature["id"] == "15002000"
    assert "crs" not in feature
    geom = shape(feature["geometry"])
    assert geom.is_valid
    for polygon in getattr(geom, "geoms", [geom]):
        assert polygon.exterior.is_ccw  # right-hand rule: exterior counter-clockwise
    text = json.dumps(feature["geometry"]["coordinates"])
    decimals = max(len(n.split(".")[1]) for n in text.replace("[", "").replace("]", "").split(",")
                   if "." in n)
    assert decimals <= 6
    centroid = shapely.centroid(geom)
    assert centroid.x == pytest.approx(11.97, abs=0.02) and centroid.y == pytest.approx(51.48, abs=0.02)


def test_districts_are_flagged_approximate_with_real_figures(client):
    body = client.get("/api/collections/districts/items?city_ags=15002000&limit=100").json()
    assert body["numberMatched"] == 43
    props = [f["properties"] for f in body["features"]]
    assert all(p["approximate"] is True for p in props)
    neustadt = next(p for p in props if p["name"] == "Nördliche Neustadt")
    assert neustadt["area_ha"] == pytest.approx(211.2) and neustadt["population"] == 16241


def test_quarters_and_sites(client):
    quarters = client.get("/api/collections/quarters/items").json()["features"]
    assert {q["properties"]["slug"] for q in quarters} == {
        "wirtschaftsquartier-hallescher-osten", "bildungsquartier-neustadt"}
    assert all(q["properties"]["approximate"] and q["properties"]["method"] for q in quarters)
    sites = client.get("/api/collections/sites/items").json()["features"]
    assert {s["properties"]["slug"]: s["properties"]["quarter_slug"] for s in sites} == {
        "raw-gelaende": "wirtschaftsquartier-hallescher-osten",
        "star-park": "wirtschaftsquartier-hallescher-osten"}


@pytest.mark.parametrize("query", [
    "bbox=1,2,3", "bbox=1,2,3,4,5", "bbox=1,2,9,4,5,6", "bbox=a,b,c,d", "bbox=0,60,1,50", "bbox=0,0,1,160",
    "bbox=nan,0,1,1", "limit=0", "limit=-1", "offset=-5", "limit=abc", "colour=red",
    "project_city=maybe", "bbox-crs=EPSG:3857", "crs=EPSG:25832",
    "crs=http://www.opengis.net/def/crs/EPSG/0/3857",
])
def test_bad_parameters_answer_400_with_a_problem(client, query):
    response = client.get(f"/api/collections/municipalities/items?{query}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400 and problem["detail"]
    assert "Traceback" not in response.text and "SELECT" not in response.text


def test_zero_area_bbox_is_fine(client):
    response = client.get("/api/collections/municipalities/items?bbox=11.97,51.48,11.97,51.48")
    assert response.status_code == 200
    assert [f["id"] for f in response.json()["features"]] == ["15002000"]


def test_huge_limit_is_clamped(client, settings):
    body = client.get("/api/collections/counties/items?limit=1000000000").json()
    assert body["numberReturned"] == 401
    assert f"limit={settings.max_limit}" in body["links"][0]["href"]


@pytest.mark.parametrize("path", [
    "/api/collections/nope/items", "/api/collections/quarters/items/999999",
    "/api/collections/quarters/items/1' OR '1'='1", "/api/collections/municipalities/items/x",
])
def test_unknown_things_are_404_problems(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["title"] == "Nicht gefunden"


def test_health_reports_postgis(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["postgis"].startswith("3.")
    assert body["schema_revision"]


def test_sources_carry_attribution(client):
    sources = client.get("/api/sources").json()["sources"]
    attributions = " ".join(s["attribution"] for s in sources)
    assert "© GeoBasis-DE / BKG 2021" in attributions
    assert all(s["licence"] for s in sources)


def test_config_has_tiles_and_both_cities(client):
    body = client.get("/api/config").json()
    assert body["tile_url"].startswith("https://")
    assert [c["name"] for c in body["cities"]] == ["Halle (Saale)", "Gera"]
    x0, y0, x1, y1 = body["cities"][0]["bbox"]
    assert x0 < 11.97 < x1 and y0 < 51.48 < y1


def test_queryables_are_json_schema(client):
    body = client.get("/api/collections/districts/queryables").json()
    assert body["type"] == "object" and "city_ags" in body["properties"]


def test_storage_crs_can_be_requested(client):
    crs = "http://www.opengis.net/def/crs/EPSG/0/25832"
    response = client.get(f"/api/collections/municipalities/items/15002000?crs={crs}")
    assert response.headers["content-crs"] == f"<{crs}>"
    x, y = shape(response.json()["geometry"]).centroid.coords[0]
    assert 700_000 < x < 710_000 and 5_700_000 < y < 5_710_000  # UTM 32N metres
    bbox = f"{x - 10},{y - 10},{x + 10},{y + 10}"
    body = client.get(f"/api/collections/municipalities/items?bbox={bbox}&bbox-crs={crs}").json()
    assert [f["id"] for f in body["features"]] == ["15002000"]


def test_large_answers_are_compressed_when_asked(client):
    plain = client.get("/api/collections/municipalities/items?limit=500",
                       headers={"Accept-Encoding": "identity"})
    packed = client.get("/api/collections/municipalities/items?limit=500",
                        headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.json()["numberReturned"] == plain.json()["numberReturned"] == 500
    assert packed.headers["content-security-policy"]
