"""OGC API Features as clients need it: OpenAPI 3.0, datetime, bbox, HTTP caching, CORS, HEAD,
figures and queryables, measures per geometry kind, cheap deep pages."""

from __future__ import annotations

import time
from datetime import date
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import OpenAPIV30SpecValidator, validate
from sqlalchemy import text

from quarters import services
from quarters.api import create_app
from quarters.api.ogc_openapi import ITEM_PARAMETERS
from quarters.collections import COLLECTIONS
from quarters.services import ItemQuery

ITEMS = "/api/collections/{}/items"


def _matched(client, collection: str, query: str) -> int:
    response = client.get(f"{ITEMS.format(collection)}?{query}&limit=1")
    assert response.status_code == 200, response.text
    return response.json()["numberMatched"]


# -- item 1: the API definitions --------------------------------------------------------------
def test_ogc_openapi_30_is_valid_and_declares_every_parameter(client):
    landing = client.get("/api").json()
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    assert desc["type"] == "application/vnd.oai.openapi+json;version=3.0"
    response = client.get(desc["href"].removeprefix("http://testserver"))
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = response.json()
    assert doc["openapi"].startswith("3.0")
    validate(doc, cls=OpenAPIV30SpecValidator)
    components = doc["components"]["parameters"]
    for col in COLLECTIONS.values():
        op = doc["paths"][f"/collections/{col.id}/items"]["get"]
        names = set()
        for param in op["parameters"]:
            if "$ref" in param:
                param = components[param["$ref"].rsplit("/", 1)[1]]
            names.add(param["name"])
        assert set(ITEM_PARAMETERS) <= names
        assert set(col.queryables) <= names, col.id
        assert {"200", "304", "400", "404", "406", "503"} <= set(op["responses"])
        assert "422" not in op["responses"]


def test_fastapi_document_only_promises_what_is_sent(client):
    doc = client.get("/api/openapi.json").json()
    validate(doc)  # OpenAPI 3.1
    items = doc["paths"]["/api/collections/{collection_id}/items"]["get"]
    names = {p["name"] for p in items["parameters"]}
    assert {"limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "filter", "filter-lang",
            "filter-crs", "sortby", "properties"} <= names
    for col in COLLECTIONS.values():  # and one items path per collection with its queryables
        per = doc["paths"][f"/api/collections/{col.id}/items"]["get"]
        assert set(col.queryables) | {"limit", "bbox", "datetime"} <= {p["name"] for p in per["parameters"]}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if "requestBody" not in op:
                assert "422" not in op["responses"], (method, path)
    classes = client.get("/api/conformance").json()["conformsTo"]
    assert any(c.endswith("/conf/oas30") for c in classes)


@pytest.mark.parametrize("value", ["²", "--5", "+5", "٣", "1_0", " 5", "0x10"])
def test_integers_are_ascii_only(client, value):
    for name in ("limit", "offset"):
        response = client.get(f"{ITEMS.format('counties')}?{name}={value}")
        assert response.status_code == 400, (name, value, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/collections/quarters/items/²").status_code == 404


# -- item 2: Part 1 completely ----------------------------------------------------------------
def test_landing_page_with_and_without_trailing_slash(live_server):
    with_slash = httpx.get(f"{live_server}/api/")
    without = httpx.get(f"{live_server}/api")
    assert with_slash.status_code == without.status_code == 200
    assert with_slash.json()["links"] == without.json()["links"]


HEAD_PATHS = ["/api", "/api/", "/api/conformance", "/api/collections",
              "/api/collections/districts", "/api/collections/districts/queryables",
              "/api/collections/districts/items?limit=3", "/api/collections/quarters/items/1",
              "/api/ogc/openapi.json", "/api/openapi.json", "/api/health", "/api/sources", "/"]


def test_head_answers_every_get_resource(live_server):
    with httpx.Client(base_url=live_server) as http:
        for path in HEAD_PATHS:
            get = http.get(path, headers={"Accept-Encoding": "identity"})
            head = http.head(path, headers={"Accept-Encoding": "identity"})
            assert get.status_code == 200, path
            assert head.status_code == 200, path
            assert head.content == b""
            assert head.headers["content-type"] == get.headers["content-type"], path
            if "etag" in get.headers:
                assert head.headers["etag"] == get.headers["etag"], path
        assert http.head("/api/collections/nope/items").status_code == 404


def test_options_lists_the_methods_of_the_path(live_server):
    with httpx.Client(base_url=live_server) as http:
        items = http.options("/api/collections/districts/items")
        assert items.status_code == 204
        assert items.headers["allow"] == "GET, HEAD, OPTIONS"
        writable = http.options("/api/collections/measures/items")  # Part 4: create
        assert writable.headers["allow"] == "GET, HEAD, POST, OPTIONS"
        one = http.options("/api/measures/1")
        assert set(one.headers["allow"].split(", ")) == {"GET", "HEAD", "PUT", "PATCH", "DELETE",
                                                         "OPTIONS"}


def test_cors_lets_any_origin_read_without_credentials(live_server):
    origin = {"Origin": "https://geoportal.example"}
    with httpx.Client(base_url=live_server) as http:
        read = http.get("/api/collections/districts/items?limit=1", headers=origin)
        assert read.headers["access-control-allow-origin"] == "*"
        assert "etag" in read.headers["access-control-expose-headers"].lower()
        assert "access-control-allow-credentials" not in read.headers
        preflight = http.options("/api/collections/districts/items", headers={
            **origin, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "If-None-Match"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "GET" in preflight.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in preflight.headers
        write = http.options("/api/measures", headers={
            **origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert "access-control-allow-origin" not in write.headers
        no_origin = http.get("/api/conformance")
        assert "access-control-allow-origin" not in no_origin.headers


def test_cors_origins_are_a_setting(settings, engine):
    limited = settings.model_copy(update={"cors_origins": ["https://geoportal.example"]})
    with TestClient(create_app(limited, engine=engine)) as http:
        ok = http.get("/api/conformance", headers={"Origin": "https://geoportal.example"})
        assert ok.headers["access-control-allow-origin"] == "https://geoportal.example"
        assert "origin" in ok.headers["vary"].lower()
        other = http.get("/api/conformance", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_etag_and_last_modified_give_304(live_server):
    url = f"{live_server}/api/collections/districts/items?limit=5"
    with httpx.Client() as http:
        first = http.get(url)
        tag, modified = first.headers["etag"], first.headers["last-modified"]
        assert first.headers["cache-control"].startswith("public")
        again = http.get(url, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == tag
        assert http.get(url, headers={"If-Modified-Since": modified}).status_code == 304
        assert http.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
        assert http.get(url, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
                        ).status_code == 200
        other_page = http.get(url + "&offset=5", headers={"If-None-Match": tag})
        assert other_page.status_code == 200  # another query, another tag
        for path in ("/api", "/api/collections", "/api/collections/districts/queryables",
                     "/api/collections/quarters/items/1"):
            r = http.get(live_server + path)
            assert http.get(live_server + path, headers={"If-None-Match": r.headers["etag"]}
                            ).status_code == 304, path


def test_a_write_changes_the_data_version_in_its_transaction(client, conn):
    url = f"{ITEMS.format('quarters')}"
    before = client.get(url)
    version, _ = services.data_version(conn)
    conn.execute(text("UPDATE quarters SET theme = theme WHERE id = (SELECT min(id) FROM quarters)"))
    assert services.data_version(conn)[0] == version + 1
    after = client.get(url, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]


def test_unacceptable_media_type_is_406(client):
    response = client.get(ITEMS.format("quarters"), headers={"Accept": "text/csv"})
    assert response.status_code == 406
    assert response.json()["status"] == 406
    assert client.get(ITEMS.format("quarters"), headers={"Accept": "application/geo+json"}
                      ).status_code == 200


def test_datetime_on_measures_matches_their_start_and_end(client):
    features = client.get(f"{ITEMS.format('measures')}?limit=1000").json()["features"]

    def expected(start: date | None, end: date | None) -> int:
        n = 0
        for f in features:
            s, e = f["properties"]["start_date"], f["properties"]["end_date"]
            s, e = (date.fromisoformat(s) if s else None), (date.fromisoformat(e) if e else None)
            if s is None and e is None:
                continue
            if (end is None or s is None or s <= end) and (start is None or e is None or e >= start):
                n += 1
        return n

    dated = [f for f in features if f["properties"]["start_date"]]
    assert dated, "the seed has measures with a start date"
    first = min(date.fromisoformat(f["properties"]["start_date"]) for f in dated)
    cases = {"2000-01-01/..": (date(2000, 1, 1), None), "../2000-01-01": (None, date(2000, 1, 1)),
             f"{first.isoformat()}": (first, first),
             f"{first.isoformat()}T12:00:00Z": (first, first),
             f"../{first.isoformat()}": (None, first),
             f"2000-01-01T00:00:00Z/{first.isoformat()}T23:59:59+01:00": (date(2000, 1, 1), first),
             f"{first.isoformat()}T/..": (first, None),  # as GDAL 3.6 sends it
             "/2100-01-01": (None, date(2100, 1, 1))}
    for raw, span in cases.items():
        assert _matched(client, "measures", f"datetime={quote(raw, safe='/:')}") == expected(*span), raw
    assert expected(date(2000, 1, 1), None) == len(dated) > 0


def test_datetime_on_figures_uses_their_reference_date(client):
    assert _matched(client, "municipalities", "datetime=2019-12-31") == 10_997
    assert _matched(client, "municipalities", "datetime=2020-01-01/..") == 0
    assert _matched(client, "counties", "datetime=2019-01-01T%2F..") == 401
    districts = client.get(f"{ITEMS.format('districts')}?limit=100").json()["features"]
    dates = [date.fromisoformat(f["properties"]["population_date"]) for f in districts]
    assert _matched(client, "districts", "datetime=2020-12-31/..") == sum(d >= date(2020, 12, 31)
                                                                          for d in dates)
    assert _matched(client, "quarters", "datetime=2020-01-01") == 0  # no temporal property


@pytest.mark.parametrize("raw", ["2020-13-01", "../..", "2021-01-01/2020-01-01", "yesterday",
                                 "2020-01-01/2020-02-01/2020-03-01", "²020-01-01", "2020-1-1"])
def test_bad_datetime_is_400(client, raw):
    response = client.get(f"{ITEMS.format('measures')}?datetime={raw}")
    assert response.status_code == 400, raw
    assert "datetime" in response.json()["detail"]


def test_temporal_extents_and_timestamp(client):
    cols = {c["id"]: c for c in client.get("/api/collections").json()["collections"]}
    assert cols["municipalities"]["extent"]["temporal"]["interval"] == [["2019-12-31", "2019-12-31"]]
    assert cols["measures"]["extent"]["temporal"]["interval"][0][0] <= "2021-12-31"
    assert "temporal" not in cols["quarters"]["extent"]
    body = client.get(ITEMS.format("quarters")).json()
    assert body["timeStamp"].endswith("Z") and body["timeStamp"][:4] >= "2026"


def test_world_bbox_matches_everything(client):
    assert _matched(client, "measures", "bbox=-180,-90,180,90") == 33
    assert _matched(client, "municipalities", "bbox=-180,-90,180,90") == 10_997
    assert _matched(client, "municipalities", "bbox=-180,-90,-1000,180,90,9000") == 10_997
    storage = "http://www.opengis.net/def/crs/EPSG/0/25832"
    assert _matched(client, "municipalities",
                    f"bbox=-1e8,-1e8,1e8,1e8&bbox-crs={storage}") == 10_997


def test_bbox_across_the_antimeridian_is_the_union_of_both_sides(client):
    across = _matched(client, "municipalities", "bbox=12,50,-170,56")
    east = _matched(client, "municipalities", "bbox=12,50,180,56")
    assert 0 < across == east < 10_997
    halle_gera = "bbox=11.9,50.8,12.2,51.5"
    assert _matched(client, "municipalities", halle_gera) > 0
    storage = "http://www.opengis.net/def/crs/EPSG/0/25832"
    response = client.get(f"{ITEMS.format('municipalities')}?bbox=700000,0,600000,1&bbox-crs={storage}")
    assert response.status_code == 400


# -- item 5: one collection per geometry kind -------------------------------------------------
def test_measures_per_geometry_kind(client):
    combined = client.get(f"{ITEMS.format('measures')}?limit=1000").json()["features"]
    kinds = {"measures-points": ("Point", "MultiPoint"),
             "measures-lines": ("LineString", "MultiLineString"),
             "measures-areas": ("Polygon", "MultiPolygon")}
    total = 0
    for cid, (single, multi) in kinds.items():
        meta = client.get(f"/api/collections/{cid}").json()
        assert meta["itemType"] == "feature"
        body = client.get(f"{ITEMS.format(cid)}?limit=1000").json()
        expected = {f["id"] for f in combined if f["geometry"]["type"] in (single, multi)}
        assert {f["id"] for f in body["features"]} == expected
        assert all(f["geometry"]["type"] == multi for f in body["features"])
        total += body["numberMatched"]
        schema = client.get(f"/api/collections/{cid}/queryables").json()
        assert schema["properties"]["geometry"]["format"] == f"geometry-{multi.lower()}"
    assert total == len(combined) == 33
    point = next(f for f in combined if f["geometry"]["type"] == "Point")
    one = client.get(f"/api/collections/measures-points/items/{point['id']}").json()
    assert one["geometry"]["type"] == "MultiPoint"
    area = next(f for f in combined if f["geometry"]["type"] in ("Polygon", "MultiPolygon"))
    assert client.get(f"/api/collections/measures-points/items/{area['id']}").status_code == 404


# -- item 6: what people filter by ------------------------------------------------------------
def test_municipalities_and_counties_carry_destatis_figures(client):
    halle = client.get("/api/collections/municipalities/items/15002000").json()["properties"]
    assert halle["population"] == 238_762 and halle["population_date"] == "2019-12-31"
    assert halle["land"] == "15" and halle["kreis"] == "15002" and halle["kreisfrei"] is True
    assert halle["density"] == pytest.approx(halle["population"] / halle["area_km2"], abs=0.1)
    kreis = client.get("/api/collections/counties/items/15002").json()["properties"]
    assert kreis["population"] == halle["population"] and kreis["kreisfrei"] is True
    # a queryable per figure, filtered in the database
    assert [f["id"] for f in client.get(
        f"{ITEMS.format('municipalities')}?population=238762").json()["features"]] == ["15002000"]
    # kreisfrei towns of Thüringen, found two independent ways
    towns = client.get(f"{ITEMS.format('municipalities')}?land=16&kreisfrei=true&limit=100").json()
    kreise = client.get(f"{ITEMS.format('counties')}?land=16&kreisfrei=true&limit=100").json()
    assert towns["numberMatched"] == kreise["numberMatched"] > 3
    assert {f["properties"]["kreis"] for f in towns["features"]} == {f["id"] for f in kreise["features"]}
    assert "Gera" in {f["properties"]["name"] for f in towns["features"]}
    assert _matched(client, "municipalities", "kreis=15002") == 1
    assert _matched(client, "municipalities", "population_date=2019-12-31") == 10_997


def test_districts_and_measures_carry_their_figures(client):
    d = client.get(f"{ITEMS.format('districts')}?limit=1").json()["features"][0]["properties"]
    assert {"population", "area_km2", "density", "population_date", "area_date",
            "source_retrieved", "approximate"} <= set(d)
    m = client.get(f"{ITEMS.format('measures')}?limit=1").json()["features"][0]["properties"]
    assert {"status", "action_field", "start_date", "end_date", "budget_planned", "budget_spent",
            "quarters", "districts"} <= set(m)
    assert _matched(client, "measures", "status=geplant") == sum(
        f["properties"]["status"] == "geplant" for f in client.get(
            f"{ITEMS.format('measures')}?limit=100").json()["features"])


def test_queryables_are_json_schema_2020_12(client):
    response = client.get("/api/collections/municipalities/queryables")
    assert response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    props = schema["properties"]
    assert props["geometry"]["format"] == "geometry-multipolygon"
    assert props["population"]["type"] == "integer" and props["density"]["type"] == "number"
    assert props["population_date"] == {"title": props["population_date"]["title"],
                                        "type": "string", "format": "date"}
    assert {"land", "kreis", "kreisfrei", "area_km2"} <= set(props)
    measures = client.get("/api/collections/measures/queryables").json()["properties"]
    assert {"status", "action_field", "start_date", "end_date", "budget_planned", "quarter",
            "district"} <= set(measures)


# -- item 7: cheap pages at any depth ---------------------------------------------------------
def test_next_links_are_keyset_and_walk_every_feature_once(client):
    seen, url, pages = [], f"{ITEMS.format('counties')}?limit=150", 0
    while url:
        body = client.get(url.removeprefix("http://testserver")).json()
        assert body["numberMatched"] == 401
        seen += [f["id"] for f in body["features"]]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if nxt:
            assert f"after={seen[-1]}" in nxt[0]
        url, pages = (nxt[0] if nxt else None), pages + 1
    assert len(seen) == len(set(seen)) == 401 and pages == 3
    assert seen == sorted(seen)


def test_deep_pages_cost_about_what_the_first_does(conn):
    col = COLLECTIONS["municipalities"]

    def best(offset: int) -> float:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            services.items_page(conn, col, ItemQuery(limit=10, offset=offset))
            times.append(time.perf_counter() - t0)
        return min(times)

    first, deep = best(0), best(10_980)
    assert deep < 3 * first + 0.015, (first, deep)
