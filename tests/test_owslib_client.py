"""OWSLib (a client no one here wrote) walks landing page → collections → items."""

from __future__ import annotations

from owslib.ogcapi.features import Features


def test_owslib_walks_the_api(live_server):
    api = Features(f"{live_server}/api")  # OWSLib asks for /api/ (trailing slash)
    assert {link["rel"] for link in api.links} >= {"self", "service-desc", "conformance", "data"}
    assert any(c.endswith("/conf/core") for c in api.conformance()["conformsTo"])
    ids = {c["id"] for c in api.collections()["collections"]}
    assert {"municipalities", "districts", "measures", "measures-points"} <= ids
    meta = api.collection("districts")
    assert meta["extent"]["temporal"]["interval"]
    items = api.collection_items("districts", limit=5)
    assert items["numberReturned"] == 5 and len(items["features"]) == 5
    gera = api.collection_items("municipalities", name="Gera")
    assert [f["id"] for f in gera["features"]] == ["16052000"]
    dated = api.collection_items("municipalities", datetime_="2019-12-31", limit=1)
    assert dated["numberMatched"] == 10_997
    queryables = api.collection_queryables("municipalities")
    assert "population" in queryables["properties"]
    api_doc = api.api()
    assert api_doc["openapi"].startswith("3.0")
    assert "/collections/municipalities/items" in api_doc["paths"]
