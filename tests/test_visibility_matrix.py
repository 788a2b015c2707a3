"""One visibility rule on every path: every endpoint of the app (listed from the app itself, so
a new endpoint without a row here fails) × anonymous, moderator, planner, admin.

A draft and a published-then-deleted measure (both in editions) and a pending idea carry
markers; only planners and admins may ever see the draft, nobody the deleted measure, only
moderators and admins the pending idea.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from starlette.routing import Route

from conftest import app_in
from factories import GERA_POINT, bearer, measure_feature
from quarters.api import create_app
from quarters.settings import Settings
from quarters.tiles import TILE_MATRIX_SETS

ROLES = ("anonymous", "moderator", "planner", "admin")
DRAFT = "Entwurfsmarke Zq7"
DELETED = "Geloeschtmarke Xk4"
IDEA = "Ideenmarke Wp9 mit Text"
LON, LAT = GERA_POINT["coordinates"]

ANY = {r: "ok" for r in ROLES}
WRITE = {"anonymous": 401, "moderator": 403, "planner": "ok", "admin": "ok"}
ADMIN = {"anonymous": 401, "moderator": 403, "planner": 403, "admin": "ok"}
STAFF_READ = {"anonymous": 401, "moderator": 403, "planner": "ok", "admin": "ok"}
MODERATE = {"anonymous": 401, "moderator": "ok", "planner": 403, "admin": "ok"}
NOT_FOUND = {r: 404 for r in ROLES}
DRAFT_404 = {"anonymous": 404, "moderator": 404, "planner": "ok", "admin": "ok"}
IDEA_404 = {"anonymous": 404, "moderator": "ok", "planner": 404, "admin": "ok"}
SIGNIN = {r: 401 for r in ROLES}

_GERA_TILE = "14/{1}/{0}".format(*TILE_MATRIX_SETS["WebMercatorQuad"].tile(LON, LAT, 14))

# Who may see the draft in an answer: "staff" (planners, admins) or "none".
DRAFT_STAFF, DRAFT_NONE = "staff", "none"


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every endpoint the app serves (HEAD aside)."""
    app = create_app(Settings(database_url="postgresql://nobody@127.0.0.1:9/none"))
    found: set[tuple[str, str]] = set()

    def walk(routes) -> None:  # noqa: ANN001
        for route in routes:
            if isinstance(route, (APIRoute, Route)):
                found.update((m, route.path) for m in route.methods if m != "HEAD")
            elif hasattr(route, "original_router"):
                walk(route.original_router.routes)
            elif hasattr(route, "routes") and not hasattr(route, "path"):
                walk(route.routes)

    walk(app.routes)
    return found


# (method, path) → (request: (method, url, kwargs) from the fixture ids, expected, drafts)
def _matrix() -> dict[tuple[str, str], tuple]:
    near = f"lon={LON}&lat={LAT}"
    return {
        ("GET", "/api/openapi.json"): (lambda f: ("GET", "/api/openapi.json", {}), ANY, DRAFT_NONE),
        ("GET", "/api/docs"): (lambda f: ("GET", "/api/docs", {}), ANY, DRAFT_NONE),
        ("GET", "/docs/oauth2-redirect"): (lambda f: ("GET", "/docs/oauth2-redirect", {}), ANY,
                                           DRAFT_NONE),
        ("GET", "/api/health"): (lambda f: ("GET", "/api/health", {}), ANY, DRAFT_NONE),
        ("GET", "/api/sources"): (lambda f: ("GET", "/api/sources", {}), ANY, DRAFT_NONE),
        ("GET", "/api/config"): (lambda f: ("GET", "/api/config", {}), ANY, DRAFT_NONE),
        ("GET", "/api"): (lambda f: ("GET", "/api", {}), ANY, DRAFT_NONE),
        ("GET", "/api/conformance"): (lambda f: ("GET", "/api/conformance", {}), ANY, DRAFT_NONE),
        ("GET", "/api/collections"): (lambda f: ("GET", "/api/collections", {}), ANY, DRAFT_NONE),
        ("GET", "/api/collections/{collection_id}"): (
            lambda f: ("GET", "/api/collections/measures", {}), ANY, DRAFT_NONE),
        # OGC API Tiles: the draft lies in the z14/z10 tiles asked for (MVT keeps strings as
        # they are, so the title marker would show in the body)
        ("GET", "/api/tileMatrixSets"): (lambda f: ("GET", "/api/tileMatrixSets", {}), ANY,
                                         DRAFT_NONE),
        ("GET", "/api/tileMatrixSets/{tms_id}"): (
            lambda f: ("GET", "/api/tileMatrixSets/WebMercatorQuad", {}), ANY, DRAFT_NONE),
        ("GET", "/api/collections/{collection_id}/tiles"): (
            lambda f: ("GET", "/api/collections/measures/tiles", {}), ANY, DRAFT_NONE),
        ("GET", "/api/collections/{collection_id}/tiles/{tms_id}"): (
            lambda f: ("GET", "/api/collections/measures/tiles/WebMercatorQuad", {}), ANY,
            DRAFT_NONE),
        ("GET", "/api/collections/{collection_id}/tiles/{tms_id}/tilejson.json"): (
            lambda f: ("GET", "/api/collections/measures/tiles/WebMercatorQuad/tilejson.json",
                       {}), ANY, DRAFT_NONE),
        ("GET", "/api/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}"): (
            lambda f: ("GET", f"/api/collections/measures/tiles/WebMercatorQuad/{_GERA_TILE}",
                       {}), ANY, DRAFT_NONE),
        ("GET", "/api/collections/{collection_id}/queryables"): (
            lambda f: ("GET", "/api/collections/measures/queryables", {}), ANY, DRAFT_NONE),
        ("GET", "/api/collections/{collection_id}/items"): (
            lambda f: ("GET", "/api/collections/measures/items?limit=10000", {}), ANY, DRAFT_NONE),
        ("GET", "/api/collections/{collection_id}/items/{item_id}"): (
            lambda f: ("GET", f"/api/collections/measures/items/{f['draft']}", {}), NOT_FOUND,
            DRAFT_NONE),
        ("POST", "/api/collections/measures/items"): (
            lambda f: ("POST", "/api/collections/measures/items", {"json": measure_feature()}),
            WRITE, DRAFT_NONE),
        ("PUT", "/api/collections/measures/items/{measure_id}"): (
            lambda f: ("PUT", f"/api/collections/measures/items/{f['draft']}", {
                "json": measure_feature(GERA_POINT, title="Neu", city_ags="16052000",
                                        action_field="Wirtschaft"),
                "headers": {"If-Match": f["draft_etag"]}}), WRITE, DRAFT_NONE),
        ("PATCH", "/api/collections/measures/items/{measure_id}"): (
            lambda f: ("PATCH", f"/api/collections/measures/items/{f['draft']}", {
                "json": {"properties": {"summary": "Neu"}},
                "headers": {"If-Match": f["draft_etag"]}}), WRITE, DRAFT_NONE),
        ("DELETE", "/api/collections/measures/items/{measure_id}"): (
            lambda f: ("DELETE", f"/api/collections/measures/items/{f['draft']}",
                       {"headers": {"If-Match": f["draft_etag"]}}), WRITE, DRAFT_NONE),
        ("GET", "/api/"): (lambda f: ("GET", "/api/", {}), ANY, DRAFT_NONE),
        ("GET", "/api/ogc/openapi.json"): (lambda f: ("GET", "/api/ogc/openapi.json", {}), ANY,
                                           DRAFT_NONE),
        ("GET", "/api/collections/{collection_id}/schema"): (
            lambda f: ("GET", "/api/collections/measures/schema", {}), ANY, DRAFT_NONE),
        # a wrong current password: 401 for everyone (and nothing changes)
        ("POST", "/api/auth/password"): (
            lambda f: ("POST", "/api/auth/password",
                       {"json": {"current_password": "falsch" * 3, "new_password": "y" * 16}}),
            SIGNIN, DRAFT_NONE),
        ("POST", "/api/auth/login"): (
            lambda f: ("POST", "/api/auth/login",
                       {"json": {"username": "niemand-hier", "password": "x" * 12}}),
            SIGNIN, DRAFT_NONE),
        ("POST", "/api/auth/logout"): (lambda f: ("POST", "/api/auth/logout", {}), ANY, DRAFT_NONE),
        ("GET", "/api/auth/me"): (lambda f: ("GET", "/api/auth/me", {}), ANY, DRAFT_NONE),
        ("GET", "/api/measures/export"): (
            lambda f: ("GET", "/api/measures/export?format=geojson", {}), ANY, DRAFT_STAFF),
        ("POST", "/api/measures/import"): (
            lambda f: ("POST", "/api/measures/import?dry_run=true",
                       {"files": {"file": ("m.csv", b"title\n", "text/csv")}}), WRITE, DRAFT_NONE),
        ("GET", "/api/measures"): (lambda f: ("GET", "/api/measures?limit=10000", {}), ANY,
                                   DRAFT_STAFF),
        ("POST", "/api/measures"): (
            lambda f: ("POST", "/api/measures", {"json": measure_feature()}), WRITE, DRAFT_NONE),
        ("GET", "/api/measures/points"): (
            lambda f: ("GET", "/api/measures/points?limit=10000", {}), ANY, DRAFT_NONE),
        ("GET", "/api/measures/{measure_id}"): (
            lambda f: ("GET", f"/api/measures/{f['draft']}", {}), DRAFT_404, DRAFT_STAFF),
        ("PUT", "/api/measures/{measure_id}"): (
            lambda f: ("PUT", f"/api/measures/{f['draft']}", {
                "json": measure_feature(GERA_POINT, title="Neu", city_ags="16052000",
                                        action_field="Wirtschaft"),
                "headers": {"If-Match": f["draft_etag"]}}), WRITE, DRAFT_NONE),
        ("PATCH", "/api/measures/{measure_id}"): (
            lambda f: ("PATCH", f"/api/measures/{f['draft']}", {
                "json": {"properties": {"summary": "Neu"}},
                "headers": {"If-Match": f["draft_etag"]}}), WRITE, DRAFT_NONE),
        ("DELETE", "/api/measures/{measure_id}"): (
            lambda f: ("DELETE", f"/api/measures/{f['draft']}",
                       {"headers": {"If-Match": f["draft_etag"]}}), WRITE, DRAFT_NONE),
        ("POST", "/api/measures/{measure_id}/restore"): (
            lambda f: ("POST", f"/api/measures/{f['deleted']}/restore",
                       {"headers": {"If-Match": f["deleted_etag"]}}), ADMIN, DRAFT_NONE),
        ("POST", "/api/measures/{measure_id}/publish"): (
            lambda f: ("POST", f"/api/measures/{f['draft']}/publish",
                       {"headers": {"If-Match": f["draft_etag"]}}), WRITE, DRAFT_NONE),
        ("POST", "/api/measures/{measure_id}/unpublish"): (
            lambda f: ("POST", f"/api/measures/{f['draft']}/unpublish",
                       {"headers": {"If-Match": f["draft_etag"]}}), WRITE, DRAFT_NONE),
        ("POST", "/api/measures/{measure_id}/transfer"): (  # Gera has no districts: 422
            lambda f: ("POST", f"/api/measures/{f['draft']}/transfer", {
                "json": {"district_code": "01"}, "headers": {"If-Match": f["draft_etag"]}}),
            {**WRITE, "planner": "any<500", "admin": "any<500"}, DRAFT_NONE),
        ("GET", "/api/measures/{measure_id}/history"): (
            lambda f: ("GET", f"/api/measures/{f['draft']}/history", {}), STAFF_READ, DRAFT_STAFF),
        ("POST", "/api/measures/{measure_id}/history/{to_version}/restore"): (
            lambda f: ("POST", f"/api/measures/{f['draft']}/history/1/restore",
                       {"headers": {"If-Match": f["draft_etag"]}}), ADMIN, DRAFT_NONE),
        ("GET", "/api/editions"): (lambda f: ("GET", "/api/editions", {}), ANY, DRAFT_NONE),
        ("GET", "/api/editions/diff"): (
            lambda f: ("GET", "/api/editions/diff?from=gera-2022&to=gera-2024", {}), ANY,
            DRAFT_STAFF),
        ("GET", "/api/editions/{key}/measures"): (
            lambda f: ("GET", "/api/editions/gera-2024/measures", {}), ANY, DRAFT_STAFF),
        ("POST", "/api/editions/{key}/freeze"): (
            lambda f: ("POST", "/api/editions/gera-2024/freeze", {}), ADMIN, DRAFT_NONE),
        ("POST", "/api/ideas"): (
            lambda f: ("POST", "/api/ideas", {"json": {
                "title": "Noch eine Idee", "text": "Ein ausreichend langer Text.",
                "action_field": "Wirtschaft", "geometry": GERA_POINT}}), ANY, DRAFT_NONE),
        ("GET", "/api/ideas"): (lambda f: ("GET", "/api/ideas?limit=1000", {}), ANY, DRAFT_NONE),
        ("GET", "/api/ideas/{idea_id}"): (
            lambda f: ("GET", f"/api/ideas/{f['idea']}", {}), IDEA_404, DRAFT_NONE),
        ("POST", "/api/ideas/{idea_id}/moderate"): (
            lambda f: ("POST", f"/api/ideas/{f['idea']}/moderate",
                       {"json": {"decision": "accept"}}), MODERATE, DRAFT_NONE),
        ("GET", "/api/ideas/workshop-codes"): (
            lambda f: ("GET", "/api/ideas/workshop-codes", {}), MODERATE, DRAFT_NONE),
        ("POST", "/api/ideas/workshop-codes"): (
            lambda f: ("POST", "/api/ideas/workshop-codes",
                       {"json": {"label": "Werkstatt", "hours": 3}}), MODERATE, DRAFT_NONE),
        ("GET", "/api/near"): (lambda f: ("GET", f"/api/near?{near}&radius=5000", {}), ANY,
                               DRAFT_NONE),
        # the place search is asked for the draft's own title marker
        ("GET", "/api/places"): (lambda f: ("GET", "/api/places?q=Entwurfsmarke&limit=20", {}),
                                 ANY, DRAFT_NONE),
        ("GET", "/api/feeds/changes.atom"): (
            lambda f: ("GET", f"/api/feeds/changes.atom?{near}&radius=5000", {}), ANY, DRAFT_NONE),
        ("GET", "/api/analysis/levels"): (lambda f: ("GET", "/api/analysis/levels", {}), ANY,
                                          DRAFT_NONE),
        ("GET", "/api/analysis/indicators"): (
            lambda f: ("GET", "/api/analysis/indicators", {}), ANY, DRAFT_NONE),
        ("GET", "/api/analysis/indicators/{key}"): (
            lambda f: ("GET", "/api/analysis/indicators/measures_count", {}), "any<500",
            DRAFT_NONE),
        ("GET", "/api/analysis/indicators/{key}/values"): (
            lambda f: ("GET", "/api/analysis/indicators/measures_count/values?level=quarter",
                       {}), "any<500", DRAFT_NONE),
        ("GET", "/api/analysis/profiles/{quarter_slug}"): (
            lambda f: ("GET", "/api/analysis/profiles/wirtschaftsquartier-hallescher-osten", {}),
            ANY, DRAFT_NONE),
        ("GET", "/api/analysis/transfer"): (
            lambda f: ("GET", "/api/analysis/transfer?reference=nobody", {}), "any<500",
            DRAFT_NONE),
        ("POST", "/api/analysis/transfer"): (
            lambda f: ("POST", "/api/analysis/transfer", {"json": {}}), "any<500", DRAFT_NONE),
        ("POST", "/api/analysis/report"): (
            lambda f: ("POST", "/api/analysis/report", {"json": {}}), "any<500", DRAFT_NONE),
        ("GET", "/api/analysis/typology"): (
            lambda f: ("GET", "/api/analysis/typology?level=nowhere", {}), "any<500", DRAFT_NONE),
        ("GET", "/api/analysis/cross-city"): (
            lambda f: ("GET", "/api/analysis/cross-city?level=nowhere", {}), "any<500",
            DRAFT_NONE),
        ("GET", "/api/monitoring"): (lambda f: ("GET", "/api/monitoring", {}), STAFF_READ,
                                     DRAFT_STAFF),
        ("GET", "/api/monitoring/{table}.csv"): (
            lambda f: ("GET", "/api/monitoring/edition_changes.csv", {}), STAFF_READ, DRAFT_STAFF),
        ("GET", "/api/monitoring/public"): (lambda f: ("GET", "/api/monitoring/public", {}), ANY,
                                            DRAFT_NONE),
        ("GET", "/api/monitoring/public/{table}.csv"): (
            lambda f: ("GET", "/api/monitoring/public/edition_changes.csv", {}), ANY, DRAFT_NONE),
        ("GET", "/massnahmen/{measure_id}"): (lambda f: ("GET", f"/massnahmen/{f['draft']}", {}),
                                             ANY, DRAFT_NONE),
        ("GET", "/ideen/{idea_id}"): (lambda f: ("GET", f"/ideen/{f['idea']}", {}), ANY,
                                      DRAFT_NONE),
        # the map page embeds the first view's clusters (titles of published measures only)
        ("GET", "/"): (lambda f: ("GET", "/", {}), ANY, DRAFT_NONE),
        ("GET", "/index.html"): (lambda f: ("GET", "/index.html", {}), ANY, DRAFT_NONE),
    }


MATRIX = _matrix()


def test_every_endpoint_has_a_row():
    routes = app_routes()
    assert routes - set(MATRIX) == set(), "endpoints without a row in the role matrix"
    assert set(MATRIX) - routes == set(), "rows for endpoints that no longer exist"


@pytest.fixture(scope="module")
def world(engine: Engine) -> Iterator[Connection]:
    """One transaction for the module, rolled back at its end: the markers are written once
    (not for each of the ~300 tests) and every test runs in a savepoint of it."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def conn(world: Connection) -> Iterator[Connection]:
    """The test's connection (conftest's ``app`` and ``client`` use it): a savepoint of the
    module's transaction, rolled back after the test."""
    savepoint = world.begin_nested()
    yield world
    savepoint.rollback()


@pytest.fixture(scope="module")
def setup(settings, app_engine: Engine, world: Connection) -> dict:  # noqa: ANN001
    """Accounts of each role, a draft, a published-then-deleted measure and a pending idea,
    written through the API once for the module."""
    with TestClient(app_in(settings, app_engine, world), base_url="http://127.0.0.1") as client:
        return _markers(client, world)


def _markers(client: TestClient, conn: Connection) -> dict:
    tokens = {role: bearer(client, conn, role, f"matrix-{role}") for role in ROLES[1:]}
    tokens["anonymous"] = {}
    planner = tokens["planner"]
    gera = {"city_ags": "16052000", "action_field": "Wirtschaft"}
    draft = client.post("/api/measures", headers=planner, json=measure_feature(
        GERA_POINT, title=DRAFT, summary=DRAFT, editions=["gera-2024"], **gera))
    assert draft.status_code == 201, draft.text
    gone = client.post("/api/measures", headers=planner, json=measure_feature(
        GERA_POINT, title=DELETED, summary=DELETED, editions=["gera-2024"], **gera))
    published = client.post(f"/api/measures/{gone.json()['id']}/publish",
                            headers={**planner, "If-Match": gone.headers["etag"]})
    assert published.status_code == 200, published.text
    assert DELETED in client.get("/api/editions/gera-2024/measures").text  # public while live
    deleted = client.delete(f"/api/measures/{gone.json()['id']}",
                            headers={**planner, "If-Match": published.headers["etag"]})
    assert deleted.status_code == 204
    idea = client.post("/api/ideas", json={"title": "Wartende Idee", "text": IDEA,
                                           "action_field": "Wirtschaft", "geometry": GERA_POINT})
    assert idea.status_code == 202, idea.text
    return {"tokens": tokens, "draft": draft.json()["id"], "draft_etag": draft.headers["etag"],
            "deleted": gone.json()["id"],
            "deleted_etag": f'"m{gone.json()["id"]}-v3"',  # created, published, deleted
            "idea": idea.json()["id"]}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(MATRIX), ids=lambda e: f"{e[0]} {e[1]}")
def test_role_by_endpoint(client, setup, endpoint, role):
    build, expected, drafts = MATRIX[endpoint]
    method, url, kwargs = build(setup)
    headers = {**setup["tokens"][role], **kwargs.pop("headers", {})}
    response = client.request(method, url, headers=headers, **kwargs)
    want = expected if isinstance(expected, str) else expected[role]
    if want == "ok":
        assert response.status_code < 400, response.text[:500]
    elif want == "any<500":
        assert response.status_code < 500, response.text[:500]
    else:
        assert response.status_code == want, response.text[:500]
        assert response.headers["content-type"].startswith("application/problem+json")
    body = response.text
    if method == "GET":
        assert DELETED not in body, "a deleted measure is visible"
    staff = role in ("planner", "admin")
    if drafts == DRAFT_STAFF and staff:
        assert DRAFT in body, "planners and admins see drafts here"
    elif not staff or drafts == DRAFT_NONE and method == "GET":
        assert DRAFT not in body, "a draft is visible"
    if role not in ("moderator", "admin"):
        assert IDEA not in body, "a pending idea is visible"


@pytest.mark.parametrize("role", ROLES)
def test_edition_counts_follow_the_rule(client, setup, role):
    listed = {e["key"]: e["measures"] for e in
              client.get("/api/editions", headers=setup["tokens"][role]).json()["editions"]}
    mapped = client.get("/api/editions/gera-2024/measures",
                        headers=setup["tokens"][role]).json()["features"]
    assert listed["gera-2024"] == len(mapped)
    ids = {f["id"] for f in mapped}
    assert setup["deleted"] not in ids
    assert (setup["draft"] in ids) == (role in ("planner", "admin"))
