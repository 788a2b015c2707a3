"""Place search of the public map (/api/places): districts, quarters, sites, measures and the
places in the data from the database, bounded, published measures only; an optional geocoder
(a real HTTP server on 127.0.0.1 here) is asked only when the setting names one."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse

import pytest
from sqlalchemy import text

from factories import bearer, measure_feature
from quarters import placesearch
from quarters.api import create_app

DRAFT_TITLE = "Ortssuche Entwurfsmarke Qp3"


def places(client, **params):
    response = client.get("/api/places", params=params)
    assert response.status_code == 200, response.text
    return response.json()["places"]


def test_finds_a_district_with_bbox_and_point_inside(client, conn):
    found = places(client, q="Freiimfelde")
    first = found[0]
    assert first["kind"] == "district" and first["name"] == "Freiimfelde/Kanenaer Weg"
    west, south, east, north = first["bbox"]
    lon, lat = first["centre"]
    assert west <= lon <= east and south <= lat <= north
    inside = conn.execute(text(
        "SELECT ST_Contains(geom, ST_Transform(ST_Point(:lon, :lat, 4326), 25832)) "
        "FROM districts WHERE id = :id"), {"lon": lon, "lat": lat, "id": int(first["id"])}).scalar()
    assert inside


def test_finds_quarters_sites_measures_and_cities_best_first(client, conn):
    kinds = {p["kind"] for p in places(client, q="Neustadt", limit=20)}
    assert {"quarter", "district"} <= kinds
    raw = places(client, q="RAW")
    assert any(p["kind"] == "site" for p in raw)
    title = conn.execute(text("SELECT title FROM measures_public ORDER BY id LIMIT 1")).scalar_one()
    hit = next(p for p in places(client, q=title[:40], kind="measure"))
    assert hit["name"] == title and hit["href"].startswith("/massnahmen/")
    # names that start with the query come first; the project city before namesakes
    halle = places(client, q="Halle", kind="city")
    assert halle[0]["id"] == "15002000"
    assert all(p["name"].lower().find("halle") >= 0 for p in halle)


def test_places_named_in_measure_notes_are_found(client, conn):
    row = conn.execute(text(
        "SELECT id, location_note FROM measures_public WHERE location_note IS NOT NULL "
        "AND location_precision IN ('exact', 'approximate') ORDER BY id LIMIT 1")).first()
    assert row is not None
    word = next(w for w in row.location_note.split() if len(w) >= 6).strip(",.;:()")
    found = places(client, q=word, kind="place", limit=20)
    assert str(row.id) in {p["id"] for p in found}


def test_drafts_are_never_found(client, conn):
    planner = bearer(client, conn, "planner")
    created = client.post("/api/measures", headers=planner,
                          json=measure_feature(title=DRAFT_TITLE))
    assert created.status_code == 201, created.text
    assert places(client, q="Entwurfsmarke Qp3") == []
    assert places(client, q="Qp3", kind="measure") == []


def test_answers_are_bounded_and_bad_input_is_a_problem(client):
    assert len(places(client, q="an", limit=1000)) <= placesearch.MAX_LIMIT
    for params, code in (({"q": "a"}, 400), ({"q": "x" * 101}, 400), ({}, 400),
                         ({"q": "Halle", "kind": "planet"}, 400),
                         ({"q": "Halle", "city_ags": "15'0"}, 400),
                         ({"kind": "measure"}, 400)):
        response = client.get("/api/places", params=params)
        assert response.status_code == code, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    # wildcards are text, not patterns
    assert places(client, q="%%") == []
    assert places(client, q="__") == []


def test_every_quarter_can_be_listed_for_the_legend(client, conn):
    listed = places(client, kind="quarter", limit=1000)
    n = conn.execute(text("SELECT count(*) FROM quarters")).scalar_one()
    assert len(listed) == n > 0 and all(p["bbox"] and p["centre"] for p in listed)


class _Geocoder(http.server.BaseHTTPRequestHandler):
    queries: list[str] = []

    def do_GET(self):  # noqa: N802
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        self.queries.append(query["q"][0])
        body = json.dumps([{"place_id": 7, "display_name": "Hufeisensee, Halle (Saale)",
                            "lat": "51.5005", "lon": "12.0431",
                            "boundingbox": ["51.49", "51.51", "12.03", "12.06"]}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def geocoder():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Geocoder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Geocoder.queries = []
    yield f"http://127.0.0.1:{server.server_port}/search"
    server.shutdown()
    server.server_close()


def test_geocoder_is_off_by_default_and_asked_when_set(client, app, settings, geocoder):
    assert settings.geocoder_url is None
    assert places(client, q="Hufeisensee") == []
    assert _Geocoder.queries == []
    from fastapi.testclient import TestClient
    with_geocoder = create_app(settings.model_copy(update={"geocoder_url": geocoder}),
                               engine=app.state.engine)
    with_geocoder.dependency_overrides = app.dependency_overrides
    with TestClient(with_geocoder, base_url="http://127.0.0.1") as other:
        found = other.get("/api/places", params={"q": "Hufeisensee"}).json()["places"]
    assert _Geocoder.queries == ["Hufeisensee"]
    assert found[0]["kind"] == "geocoder" and found[0]["centre"] == [12.0431, 51.5005]
    assert found[0]["bbox"] == [12.03, 51.49, 12.06, 51.51]
