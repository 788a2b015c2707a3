"""OGC API Features Part 4 on the measures collection: the same store, roles, history and ETags
as /api/measures, answered as Part 4 says."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from factories import NEUSTADT_POINT, bearer, login, measure_feature

ITEMS = "/api/collections/measures/items"
GEOJSON = {"Content-Type": "application/geo+json"}


@pytest.fixture
def planner(client, conn) -> dict[str, str]:
    return bearer(client, conn, "planner")


def history(conn, measure_id: int) -> list[tuple[int, str]]:
    return [tuple(r) for r in conn.execute(text(
        "SELECT version, action FROM measure_history WHERE measure_id = :id ORDER BY id"),
        {"id": measure_id})]


def create(client, headers, **props):
    import json

    response = client.post(ITEMS, content=json.dumps(measure_feature(**props)),
                           headers={**headers, **GEOJSON})
    assert response.status_code == 201, response.text
    return response


def test_create_replace_patch_delete_through_the_ogc_path(client, conn, planner):
    response = create(client, planner, title="Ladesäulen Neustadt")
    body = response.json()
    mid = body["id"]
    assert response.headers["location"].endswith(f"{ITEMS}/{mid}")
    assert response.headers["etag"] == f'"m{mid}-v1"'
    assert response.headers["content-type"].startswith("application/geo+json")
    assert body["properties"]["title"] == "Ladesäulen Neustadt"
    assert body["properties"]["published"] is False
    # the record is the one /api/measures serves, with the same ETag
    same = client.get(f"/api/measures/{mid}", headers=planner)
    assert same.headers["etag"] == response.headers["etag"]

    replaced = client.put(f"{ITEMS}/{mid}", json=measure_feature(NEUSTADT_POINT, title="Ersetzt"),
                          headers={**planner, "If-Match": response.headers["etag"]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["etag"] == f'"m{mid}-v2"'
    assert replaced.json()["geometry"]["type"] == "Point"

    patched = client.patch(f"{ITEMS}/{mid}", json={"properties": {"status": "in_umsetzung"}},
                           headers={**planner, "If-Match": replaced.headers["etag"],
                                    "Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["properties"]["status"] == "in_umsetzung"
    assert patched.json()["properties"]["title"] == "Ersetzt"  # kept

    minimal = client.patch(f"{ITEMS}/{mid}", json={"properties": {"title": "Kurz"}},
                           headers={**planner, "If-Match": patched.headers["etag"],
                                    "Prefer": "return=minimal"})
    assert minimal.status_code == 204 and minimal.content == b""
    assert minimal.headers["etag"] == f'"m{mid}-v4"'

    deleted = client.delete(f"{ITEMS}/{mid}", headers={**planner, "If-Match": minimal.headers["etag"]})
    assert deleted.status_code == 204
    assert client.get(f"/api/measures/{mid}", headers=planner).status_code == 404
    assert history(conn, mid) == [(1, "create"), (2, "update"), (3, "update"), (4, "update"),
                                  (5, "delete")]


def test_published_measure_is_visible_in_the_public_list(client, conn, planner):
    response = create(client, planner, title="Sichtbar nach Veröffentlichung")
    mid = response.json()["id"]
    public = {f["id"] for f in client.get("/api/measures?limit=1000").json()["features"]}
    assert mid not in public  # a draft
    published = client.post(f"/api/measures/{mid}/publish",
                            headers={**planner, "If-Match": response.headers["etag"]})
    assert published.status_code == 200, published.text
    # a change through the OGC path with the ETag /api/measures gave
    changed = client.patch(f"{ITEMS}/{mid}", json={"properties": {"summary": "öffentlich"}},
                           headers={**planner, "If-Match": published.headers["etag"]})
    assert changed.status_code == 200, changed.text
    features = client.get("/api/measures?limit=1000").json()["features"]  # anonymous
    mine = [f for f in features if f["id"] == mid]
    assert len(mine) == 1 and mine[0]["properties"]["summary"] == "öffentlich"
    assert [a for _, a in history(conn, mid)] == ["create", "publish", "update"]


def test_anonymous_and_moderators_may_not_write(client, conn, planner):
    before = conn.execute(text("SELECT count(*) FROM measures")).scalar_one()
    assert client.post(ITEMS, json=measure_feature()).status_code == 401
    moderator = bearer(client, conn, "moderator")
    assert client.post(ITEMS, json=measure_feature(), headers=moderator).status_code == 403
    mid = create(client, planner).json()["id"]
    for method in ("put", "patch", "delete"):
        kwargs = {} if method == "delete" else {"json": measure_feature()}
        response = getattr(client, method)(f"{ITEMS}/{mid}", headers={"If-Match": f'"m{mid}-v1"'},
                                           **kwargs)
        assert response.status_code == 401, (method, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert conn.execute(text("SELECT count(*) FROM measures")).scalar_one() == before + 1
    assert history(conn, mid) == [(1, "create")]


def test_cookie_session_needs_csrf_token(client, conn):
    headers = login(client, conn, "planner", "ogc-cookie-planner")
    assert client.post(ITEMS, json=measure_feature()).status_code == 403  # cookie, no CSRF
    assert client.post(ITEMS, json=measure_feature(), headers=headers).status_code == 201


def test_stale_missing_and_foreign_etags(client, conn, planner):
    first = create(client, planner)
    mid, v1 = first.json()["id"], first.headers["etag"]
    other = create(client, planner).json()["id"]
    ok = client.patch(f"{ITEMS}/{mid}", json={"properties": {"title": "v2"}},
                      headers={**planner, "If-Match": v1})
    assert ok.status_code == 200
    for method in ("put", "patch", "delete"):
        kwargs = {} if method == "delete" else {
            "json": measure_feature() if method == "put" else {"properties": {"title": "x"}}}
        call = getattr(client, method)
        stale = call(f"{ITEMS}/{mid}", headers={**planner, "If-Match": v1}, **kwargs)
        assert stale.status_code == 412, stale.text
        assert stale.headers["etag"] == ok.headers["etag"]  # the current one, to retry with
        missing = call(f"{ITEMS}/{mid}", headers=planner, **kwargs)
        assert missing.status_code == 428, missing.text
        foreign = call(f"{ITEMS}/{other}", headers={**planner, "If-Match": ok.headers["etag"]},
                       **kwargs)
        assert foreign.status_code == 412, foreign.text
        for bad in ("*", 'W/"m1-v1"', '"nonsense"'):
            assert call(f"{ITEMS}/{mid}", headers={**planner, "If-Match": bad},
                        **kwargs).status_code == 412
    assert history(conn, mid) == [(1, "create"), (2, "update")]
    assert history(conn, other) == [(1, "create")]


def test_invalid_features_are_refused_and_nothing_stored(client, conn, planner):
    before = conn.execute(text("SELECT count(*) FROM measures")).scalar_one()
    bad = measure_feature()
    bad["properties"]["colour"] = "rot"
    response = client.post(ITEMS, json=bad, headers=planner)
    assert response.status_code == 422 and "/properties/colour" in response.text
    outside = measure_feature({"type": "Point", "coordinates": [13.4, 52.5]})  # Berlin
    assert client.post(ITEMS, json=outside, headers=planner).status_code == 422
    assert client.post(ITEMS, content=b"title=x", headers={
        **planner, "Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    assert client.post(ITEMS, content=b"{", headers={**planner, **GEOJSON}).status_code == 400
    assert client.put(f"{ITEMS}/999999", json=measure_feature(),
                      headers={**planner, "If-Match": '"m999999-v1"'}).status_code == 404
    assert conn.execute(text("SELECT count(*) FROM measures")).scalar_one() == before


def test_writes_are_documented_in_the_openapi(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    create_op = paths[ITEMS]["post"]
    assert {"201", "401", "403", "415", "422"} <= set(create_op["responses"])
    assert "Location" in create_op["responses"]["201"]["headers"]
    assert "application/geo+json" in create_op["requestBody"]["content"]
    item = paths[ITEMS + "/{measure_id}"]
    for method in ("put", "patch", "delete"):
        op = item[method]
        assert {"412", "428", "404"} <= set(op["responses"]), method
        names = {(p["name"], p["in"], p.get("required")) for p in op["parameters"]}
        assert ("If-Match", "header", True) in names and ("measure_id", "path", True) in names


def test_openapi_30_operations_for_the_ogc_document_validate():
    from openapi_spec_validator import validate

    from quarters.api.routes.features_write import openapi_operations

    paths = openapi_operations()
    validate({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths})
    item = paths["/api/collections/measures/items/{featureId}"]
    assert {"412", "428"} <= set(item["put"]["responses"]) and "201" in paths[
        "/api/collections/measures/items"]["post"]["responses"]
