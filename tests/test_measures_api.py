"""Measures: roles, drafts, ETags, history, validation refusals, derived areas."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from factories import GERA_POINT, HALLE_POLYGON, NEUSTADT_POINT, bearer, login, measure_feature

ROLES = ("anonymous", "moderator", "planner", "admin")


def counts(conn) -> tuple[int, int, int]:
    return tuple(conn.execute(text(
        "SELECT (SELECT count(*) FROM measures), (SELECT count(*) FROM measure_history), "
        "(SELECT count(*) FROM measure_editions)")).one())


@pytest.fixture
def tokens(client, conn) -> dict[str, dict[str, str]]:
    headers = {role: bearer(client, conn, role) for role in ROLES[1:]}
    headers["anonymous"] = {}
    return headers


@pytest.fixture
def draft(client, tokens) -> dict:
    response = client.post("/api/measures", json=measure_feature(), headers=tokens["planner"])
    assert response.status_code == 201, response.text
    return {"id": response.json()["id"], "etag": response.headers["etag"]}


def _with(headers: dict, etag: str | None = None) -> dict:
    return {**headers, "If-Match": etag} if etag else dict(headers)


# -- roles -------------------------------------------------------------------------------------
WRITE_EXPECTED = {"anonymous": 401, "moderator": 403, "planner": "ok", "admin": "ok"}
ADMIN_EXPECTED = {"anonymous": 401, "moderator": 403, "planner": 403, "admin": "ok"}
STAFF_READ = {"anonymous": 401, "moderator": 403, "planner": "ok", "admin": "ok"}


def _operation(client, name: str, headers: dict, draft: dict):
    mid, etag = draft["id"], draft["etag"]
    return {
        "create": lambda: client.post("/api/measures", json=measure_feature(), headers=headers),
        "put": lambda: client.put(f"/api/measures/{mid}", json=measure_feature(title="Neu"),
                                  headers=_with(headers, etag)),
        "patch": lambda: client.patch(f"/api/measures/{mid}", json={"properties": {"title": "N"}},
                                      headers=_with(headers, etag)),
        "publish": lambda: client.post(f"/api/measures/{mid}/publish", headers=_with(headers, etag)),
        "unpublish": lambda: client.post(f"/api/measures/{mid}/unpublish",
                                         headers=_with(headers, etag)),
        "delete": lambda: client.delete(f"/api/measures/{mid}", headers=_with(headers, etag)),
        "history": lambda: client.get(f"/api/measures/{mid}/history", headers=headers),
        "revert": lambda: client.post(f"/api/measures/{mid}/history/1/restore",
                                      headers=_with(headers, etag)),
        "import": lambda: client.post("/api/measures/import?dry_run=true", headers=headers,
                                      files={"file": ("m.csv", b"title\n", "text/csv")}),
        "freeze": lambda: client.post("/api/editions/gera-2021/freeze", headers=headers),
    }[name]()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("operation,expected", [
    ("create", WRITE_EXPECTED), ("put", WRITE_EXPECTED), ("patch", WRITE_EXPECTED),
    ("publish", WRITE_EXPECTED), ("unpublish", WRITE_EXPECTED), ("delete", WRITE_EXPECTED),
    ("import", WRITE_EXPECTED), ("history", STAFF_READ), ("revert", ADMIN_EXPECTED),
    ("freeze", ADMIN_EXPECTED),
])
def test_role_operation_matrix(client, tokens, draft, role, operation, expected):
    response = _operation(client, operation, tokens[role], draft)
    if expected[role] == "ok":
        assert response.status_code < 400, response.text
    else:
        assert response.status_code == expected[role], response.text
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("role", ROLES)
def test_reads_by_role(client, tokens, draft, role):
    single = client.get(f"/api/measures/{draft['id']}", headers=tokens[role])
    listed = client.get("/api/measures?limit=1000", headers=tokens[role]).json()
    ids = {f["id"] for f in listed["features"]}
    if role in ("anonymous", "moderator"):  # moderators handle ideas; drafts are planners' work
        assert single.status_code == 404 and draft["id"] not in ids
    else:
        assert single.status_code == 200 and draft["id"] in ids


def test_cookie_session_needs_csrf_token_for_writes(client, conn):
    csrf = login(client, conn, "planner")
    without = client.post("/api/measures", json=measure_feature())
    assert without.status_code == 403 and "CSRF" in without.json()["detail"]
    with_token = client.post("/api/measures", json=measure_feature(), headers=csrf)
    assert with_token.status_code == 201
    me = client.get("/api/auth/me").json()
    assert me["user"]["role"] == "planner"
    client.post("/api/auth/logout", headers=csrf)
    assert client.get("/api/auth/me").json() == {"user": None}


def test_wrong_password_is_refused(client, conn):
    login(client, conn, "planner", "anna")
    client.cookies.clear()
    response = client.post("/api/auth/login", json={"username": "anna", "password": "falsch-falsch"})
    assert response.status_code == 401
    assert client.post("/api/auth/login", json={"username": "niemand",
                                                "password": "x" * 12}).status_code == 401


# -- drafts never public ----------------------------------------------------------------------
def test_drafts_are_invisible_to_the_public_on_every_path(client, conn, tokens, draft):
    mid = draft["id"]
    bbox = "11.99,51.47,12.01,51.49"
    public_paths = [
        f"/api/measures?bbox={bbox}&limit=1000",
        f"/api/collections/measures/items?bbox={bbox}&limit=1000",
        "/api/collections/measures/items?limit=10000",
        "/api/measures?q=Sensoren&limit=1000",
        "/api/measures?quarter=wirtschaftsquartier-hallescher-osten&limit=1000",
    ]
    for path in public_paths:
        body = client.get(path).json()
        assert mid not in {f["id"] for f in body["features"]}, path
        assert body["numberMatched"] == len(body["features"]) or body["numberMatched"] > 0
    staff = client.get(f"/api/measures?bbox={bbox}&limit=1000", headers=tokens["planner"]).json()
    public = client.get(f"/api/measures?bbox={bbox}&limit=1000").json()
    published_in_box = conn.execute(text(
        "SELECT count(*) FROM measures WHERE published AND deleted_at IS NULL AND ST_Intersects("
        "geom, ST_Transform(ST_MakeEnvelope(11.99, 51.47, 12.01, 51.49, 4326), 25832))")).scalar()
    assert public["numberMatched"] == published_in_box  # counts leak nothing
    assert staff["numberMatched"] > public["numberMatched"]
    assert mid in {f["id"] for f in staff["features"]}
    assert client.get(f"/api/collections/measures/items/{mid}").status_code == 404
    assert client.get(f"/api/measures/{mid}").status_code == 404
    exported = client.get("/api/measures/export?format=geojson").json()
    assert mid not in {f["id"] for f in exported["features"]}
    assert client.get(f"/api/measures/{mid}/history").status_code == 401
    # once published, it is there
    client.post(f"/api/measures/{mid}/publish", headers=_with(tokens["planner"], draft["etag"]))
    assert client.get(f"/api/collections/measures/items/{mid}").status_code == 200
    assert mid in {f["id"] for f in client.get(f"/api/measures?bbox={bbox}").json()["features"]}


# -- ETags and history ------------------------------------------------------------------------
def test_write_without_if_match_is_428(client, tokens, draft):
    response = client.patch(f"/api/measures/{draft['id']}", json={"properties": {"title": "x"}},
                            headers=tokens["planner"])
    assert response.status_code == 428


@pytest.mark.parametrize("etag", ['W/"m1-v1"', "*", '"bogus"'])
def test_weak_or_wildcard_if_match_is_412(client, tokens, draft, etag):
    response = client.patch(f"/api/measures/{draft['id']}", json={"properties": {"title": "x"}},
                            headers=_with(tokens["planner"], etag))
    assert response.status_code == 412


def test_stale_etag_is_412_with_the_current_version(client, tokens, draft):
    first = client.patch(f"/api/measures/{draft['id']}", json={"properties": {"title": "Erste"}},
                         headers=_with(tokens["planner"], draft["etag"]))
    assert first.status_code == 200 and first.headers["etag"] != draft["etag"]
    second = client.patch(f"/api/measures/{draft['id']}", json={"properties": {"summary": "Zweite"}},
                          headers=_with(tokens["admin"], draft["etag"]))
    assert second.status_code == 412
    body = second.json()
    assert body["current"]["properties"]["title"] == "Erste"
    assert second.headers["etag"] == first.headers["etag"]


def test_history_lists_every_change_and_admin_restores_a_version(client, tokens, draft, conn):
    mid = draft["id"]
    r = client.patch(f"/api/measures/{mid}", json={"properties": {"title": "Geändert",
                                                                   "status": "in_umsetzung"}},
                     headers=_with(tokens["planner"], draft["etag"]))
    r = client.patch(f"/api/measures/{mid}", json={"geometry": NEUSTADT_POINT},
                     headers=_with(tokens["planner"], r.headers["etag"]))
    history = client.get(f"/api/measures/{mid}/history", headers=tokens["planner"]).json()["history"]
    assert [h["action"] for h in history] == ["create", "update", "update"]
    assert history[1]["changes"]["title"] == {"before": "Sensoren am Hauptbahnhof",
                                              "after": "Geändert"}
    assert set(history[2]["changes"]) >= {"geometry"}
    assert all(h["actor"] == "test-planner" for h in history)
    restored = client.post(f"/api/measures/{mid}/history/1/restore",
                           headers=_with(tokens["admin"], r.headers["etag"]))
    assert restored.status_code == 200, restored.text
    props = restored.json()["properties"]
    assert props["title"] == "Sensoren am Hauptbahnhof" and props["version"] == 4
    assert restored.json()["geometry"]["type"] == "Polygon"
    assert props["quarters"] == ["wirtschaftsquartier-hallescher-osten"]
    history = client.get(f"/api/measures/{mid}/history", headers=tokens["admin"]).json()["history"]
    assert history[-1]["action"] == "revert:1" and history[-1]["actor"] == "test-admin"
    with pytest.raises(Exception, match="append-only"):
        with conn.begin_nested():
            conn.execute(text("DELETE FROM measure_history WHERE measure_id = :m"), {"m": mid})


def test_soft_delete_and_admin_restore(client, tokens, draft):
    mid = draft["id"]
    assert client.delete(f"/api/measures/{mid}",
                         headers=_with(tokens["planner"], draft["etag"])).status_code == 204
    assert client.get(f"/api/measures/{mid}", headers=tokens["planner"]).status_code == 404
    deleted = client.get(f"/api/measures/{mid}?include_deleted=true", headers=tokens["admin"])
    assert deleted.status_code == 200 and deleted.json()["properties"]["deleted"] is True
    restored = client.post(f"/api/measures/{mid}/restore",
                           headers=_with(tokens["admin"], deleted.headers["etag"]))
    assert restored.status_code == 200
    assert client.get(f"/api/measures/{mid}", headers=tokens["planner"]).status_code == 200


# -- derived areas ----------------------------------------------------------------------------
def test_quarters_and_districts_are_derived_from_geometry(client, tokens, draft):
    record = client.get(f"/api/measures/{draft['id']}", headers=tokens["planner"]).json()
    assert record["properties"]["quarters"] == ["wirtschaftsquartier-hallescher-osten"]
    assert record["properties"]["districts"]
    moved = client.patch(f"/api/measures/{draft['id']}", json={"geometry": NEUSTADT_POINT},
                         headers=_with(tokens["planner"], draft["etag"])).json()
    assert moved["properties"]["quarters"] == ["bildungsquartier-neustadt"]
    sneaky = client.patch(f"/api/measures/{draft['id']}",
                          json={"properties": {"quarters": ["x"]}},
                          headers=_with(tokens["planner"], '"m1-v2"'))
    assert sneaky.status_code == 422


# -- refusals leave the database unchanged ----------------------------------------------------
BOW_TIE = {"type": "Polygon", "coordinates": [[[11.99, 51.47], [12.0, 51.48], [12.0, 51.47],
                                               [11.99, 51.48], [11.99, 51.47]]]}
BAD_BODIES = [
    ("bow-tie", measure_feature(BOW_TIE), 422, "geometry.invalid"),
    ("unclosed ring", measure_feature({"type": "Polygon", "coordinates": [[[11.99, 51.47],
        [12.0, 51.48], [12.0, 51.47], [11.995, 51.475]]]}), 422, "geometry.ring_not_closed"),
    ("short ring", measure_feature({"type": "Polygon", "coordinates": [[[11.99, 51.47],
        [12.0, 51.48], [11.99, 51.47]]]}), 422, "geometry.ring_too_short"),
    ("empty polygon", measure_feature({"type": "Polygon", "coordinates": []}), 422,
     "geometry.empty"),
    ("empty point", measure_feature({"type": "Point", "coordinates": []}), 422, "geometry.empty"),
    ("null geometry", {**measure_feature(), "geometry": None}, 422, "geometry.missing"),
    ("huge coordinate", measure_feature({"type": "Point", "coordinates": [1e308, 1e308]}), 422,
     "geometry.out_of_range"),
    ("swapped axes", measure_feature({"type": "Point", "coordinates": [51.48, 11.97]}), 422,
     "measure.outside_area"),
    ("outside city", measure_feature(GERA_POINT), 422, "measure.outside_area"),
    ("3D position", measure_feature({"type": "Point", "coordinates": [11.97, 51.48, 80]}), 422,
     "geometry.position_size"),
    ("crs member", measure_feature({"type": "Point", "coordinates": [11.97, 51.48],
                                    "crs": {"type": "name"}}), 422, "geometry.crs_not_supported"),
    ("geometry collection", measure_feature({"type": "GeometryCollection", "geometries": []}),
     422, "geometry.type_not_allowed"),
    ("unknown field", measure_feature(owner_id=5), 422, "/properties/owner_id"),
    ("published by client", measure_feature(published=True), 422, "validation.extra_forbidden"),
    ("wrong type", measure_feature(budget_planned="viel"), 422, "/properties/budget_planned"),
    ("negative budget", measure_feature(budget_planned=-1.0), 422,
     "validation.greater_than_equal"),
    ("huge budget", measure_feature(budget_planned=1e30), 422,
     "validation.less_than_equal"),
    ("dates out of order", measure_feature(start_date="2026-01-01", end_date="2025-01-01"), 422,
     "measure.end_before_start"),
    ("year 10000", measure_feature(start_date="10000-01-01"), 422,
     "/properties/start_date"),
    ("foreign action field", measure_feature(action_field="Energie und Umwelt"), 422,
     "/properties/action_field"),
    ("NUL in title", measure_feature(title="Titel\x00"), 400, "/properties/title"),
    ("NUL in a list item", measure_feature(partners=["Stadt", "Uni\x00"]), 400,
     "/properties/partners/1"),
    ("control character in title", measure_feature(title="Titel\x07"), 422, "text.control_character"),
    ("line break in title", measure_feature(title="Titel\nzweite Zeile"), 422, "text.control_character"),
    ("control character in a link", measure_feature(
        links=[{"title": "x", "url": "https://a.example/\x01"}]), 422, "text.control_character"),
    ("title too long", measure_feature(title="x" * 201), 422, "validation.string_too_long"),
    ("unknown edition", measure_feature(editions=["gibt-es-nicht"]), 422,
     "measure.unknown_edition"),
    ("unknown parent", measure_feature(parent_id=999999), 422, "measure.unknown_parent"),
    ("too many vertices", measure_feature({"type": "LineString", "coordinates":
        [[11.97 + i * 1e-7, 51.48] for i in range(10_001)]}), 422, "geometry.too_many_vertices"),
]


@pytest.mark.parametrize("name,body,status,message", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_measures_are_refused_and_nothing_is_stored(client, conn, tokens, name, body, status,
                                                        message):
    before = counts(conn)
    response = client.post("/api/measures", json=body, headers=tokens["planner"])
    assert response.status_code == status, response.text
    problem = response.json()
    found = {problem["code"], problem.get("pointer")} | {
        v for e in problem.get("errors", []) for v in (e["code"], e["pointer"])}
    assert message in found, problem  # a catalogue code or the JSON pointer
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in response.text and "psycopg" not in response.text
    assert counts(conn) == before


@pytest.mark.parametrize("raw,content_type,status", [
    (b'{"type": "Feature", "geometry": {"type": "Point", "coordinates": [NaN, 51.4]}}',
     "application/json", 400),
    (b'{"type": "Feature", "geometry": {"type": "Point", "coordinates": [Infinity, 1]}}',
     "application/json", 400),
    (b"{not json", "application/json", 400),
    (b"[" * 100_000, "application/json", 400),
    (b"title=x", "application/x-www-form-urlencoded", 415),
    (b"x" * (6 * 1024 * 1024), "application/json", 413),
])
def test_malformed_bodies_are_refused_early(client, conn, tokens, raw, content_type, status):
    before = counts(conn)
    response = client.post("/api/measures", content=raw,
                           headers={**tokens["planner"], "Content-Type": content_type})
    assert response.status_code == status, response.text[:300]
    assert counts(conn) == before


def test_refused_update_keeps_the_old_version(client, conn, tokens, draft):
    before = counts(conn)
    response = client.patch(f"/api/measures/{draft['id']}", json={"geometry": BOW_TIE},
                            headers=_with(tokens["planner"], draft["etag"]))
    assert response.status_code == 422
    assert counts(conn) == before
    current = client.get(f"/api/measures/{draft['id']}", headers=tokens["planner"])
    assert current.headers["etag"] == draft["etag"]


def test_clockwise_polygon_is_accepted_and_returned_counter_clockwise(client, tokens):
    clockwise = {"type": "Polygon", "coordinates": [list(reversed(HALLE_POLYGON["coordinates"][0]))]}
    response = client.post("/api/measures", json=measure_feature(clockwise),
                           headers=tokens["planner"])
    assert response.status_code == 201
    from shapely.geometry import shape

    assert shape(response.json()["geometry"]).exterior.is_ccw


def test_filters_by_field_status_quarter_edition_and_text(client, tokens):
    gera = client.get("/api/measures?city_ags=16052000&edition=gera-2021&limit=100").json()
    assert gera["numberMatched"] >= 14
    assert all(f["properties"]["city_ags"] == "16052000" for f in gera["features"])
    status = client.get("/api/measures?status=abgeschlossen&limit=100").json()
    assert all(f["properties"]["status"] == "abgeschlossen" for f in status["features"])
    neustadt = client.get("/api/measures?quarter=bildungsquartier-neustadt").json()
    assert all("bildungsquartier-neustadt" in f["properties"]["quarters"]
               for f in neustadt["features"]) and neustadt["numberMatched"] >= 1
    text_hits = client.get("/api/measures?q=Bildungszentrum").json()
    assert text_hits["numberMatched"] >= 1
    assert client.get("/api/measures?status=fertig").json()["numberMatched"] == 0
    assert client.get("/api/measures?colour=red").status_code == 400


def test_public_view_hides_drafts_from_signed_in_planners(client, tokens, draft):
    own = client.get("/api/measures?limit=1000", headers=tokens["planner"]).json()
    public = client.get("/api/measures?limit=1000&view=public", headers=tokens["planner"]).json()
    assert draft["id"] in {f["id"] for f in own["features"]}
    assert draft["id"] not in {f["id"] for f in public["features"]}


def test_points_are_cached_by_data_version(client, tokens, draft):
    first = client.get("/api/measures/points?limit=10000")
    assert first.status_code == 200 and first.headers["etag"]
    again = client.get("/api/measures/points?limit=10000",
                       headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    client.post(f"/api/measures/{draft['id']}/publish",
                headers={**tokens["planner"], "If-Match": draft["etag"]})
    after = client.get("/api/measures/points?limit=10000",
                       headers={"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != first.headers["etag"]
    assert after.json()["numberMatched"] == first.json()["numberMatched"] + 1
