"""Citizens' API: ideas with moderation, near me, Atom feeds, security headers."""

from __future__ import annotations

import feedparser
import pytest
from pyproj import Geod
from sqlalchemy import text

from factories import bearer, measure_feature

HBF = (11.986667, 51.478056)  # Halle (Saale) Hauptbahnhof
GEOD = Geod(ellps="WGS84")


def idea(**overrides) -> dict:
    body = {"title": "Mehr Bänke am Markt", "text": "Zum Ausruhen beim Einkaufen wären Bänke gut.",
            "action_field": "Mobilität",
            "geometry": {"type": "Point", "coordinates": [11.9697, 51.4829]}}
    body.update(overrides)
    return body


def n_ideas(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM ideas")).scalar_one()


# -- ideas ------------------------------------------------------------------------------------
def test_idea_is_invisible_until_moderated_then_shows_the_outcome(client, conn):
    response = client.post("/api/ideas", json=idea())
    assert response.status_code == 202 and "geprüft" in response.json()["message"]
    idea_id = conn.execute(text("SELECT max(id) FROM ideas")).scalar_one()
    assert client.get(f"/api/ideas/{idea_id}").status_code == 404
    assert idea_id not in {i["id"] for i in client.get("/api/ideas").json()["ideas"]}
    moderator = bearer(client, conn, "moderator")
    pending = client.get("/api/ideas?state=eingereicht", headers=moderator).json()["ideas"]
    assert idea_id in {i["id"] for i in pending}
    rejected = client.post(f"/api/ideas/{idea_id}/moderate", headers=moderator,
                           json={"decision": "reject", "reason": "Dort ist kein Platz."})
    assert rejected.status_code == 200
    public = client.get(f"/api/ideas/{idea_id}").json()
    assert public["state"] == "abgelehnt" and public["public_reason"] == "Dort ist kein Platz."
    assert "contact" not in public


def test_idea_linked_to_a_measure(client, conn):
    client.post("/api/ideas", json=idea(contact="anna@example.org"))
    idea_id = conn.execute(text("SELECT max(id) FROM ideas")).scalar_one()
    moderator = bearer(client, conn, "moderator")
    measure_id = client.get("/api/measures?city_ags=15002000&limit=1").json()["features"][0]["id"]
    linked = client.post(f"/api/ideas/{idea_id}/moderate", headers=moderator,
                         json={"decision": "link", "measure_id": measure_id})
    assert linked.status_code == 200 and linked.json()["contact"] == "anna@example.org"
    public = client.get(f"/api/ideas/{idea_id}").json()
    assert public["state"] == "verknuepft" and public["measure_id"] == measure_id
    assert "contact" not in public


@pytest.mark.parametrize("role,status", [("anonymous", 401), ("planner", 403),
                                         ("moderator", 200), ("admin", 200)])
def test_only_moderators_decide(client, conn, role, status):
    client.post("/api/ideas", json=idea())
    idea_id = conn.execute(text("SELECT max(id) FROM ideas")).scalar_one()
    headers = {} if role == "anonymous" else bearer(client, conn, role)
    response = client.post(f"/api/ideas/{idea_id}/moderate", headers=headers,
                           json={"decision": "accept"})
    assert response.status_code == status


def test_rejection_needs_a_reason(client, conn):
    client.post("/api/ideas", json=idea())
    idea_id = conn.execute(text("SELECT max(id) FROM ideas")).scalar_one()
    response = client.post(f"/api/ideas/{idea_id}/moderate", headers=bearer(client, conn, "moderator"),
                           json={"decision": "reject"})
    assert response.status_code == 422 and "Begründung" in response.text


@pytest.mark.parametrize("overrides,pointer,words", [
    ({"title": "x"}, "/title", "Titel"),
    ({"text": "kurz"}, "/text", "beschreiben"),
    ({"action_field": "Raumfahrt"}, "/action_field", "Handlungsfeld"),
    ({"geometry": {"type": "Point", "coordinates": [13.4, 52.5]}}, "/geometry", "Karte"),
    ({"geometry": None}, "/geometry", "Karte"),
    ({"contact": "x" * 300}, "/contact", "Kontakt"),
    ({"status": "angenommen"}, "/status", "Unbekanntes Feld"),
    ({"title": "Titel\x1bmit ESC"}, "/title", "unzulässiges Zeichen"),
    ({"text": "Eine Idee mit\x08Rückschritt"}, "/text", "unzulässiges Zeichen"),
])
def test_bad_ideas_get_a_german_message_and_nothing_is_stored(client, conn, overrides, pointer,
                                                              words):
    before = n_ideas(conn)
    response = client.post("/api/ideas", json=idea(**overrides))
    assert response.status_code == 422
    errors = {e["pointer"]: e["problem"] for e in response.json()["errors"]}
    assert words in errors[pointer]
    assert n_ideas(conn) == before


def test_english_messages_on_request(client):
    response = client.post("/api/ideas", json=idea(title="x"), headers={"Accept-Language": "en"})
    assert "Please give a title" in response.text


def test_spam_trap_stores_nothing(client, conn):
    before = n_ideas(conn)
    response = client.post("/api/ideas", json=idea(website="http://spam.example"))
    assert response.status_code == 202
    assert n_ideas(conn) == before


def test_rate_limit_answers_429(client, conn, settings):
    for _ in range(settings.idea_limit):
        assert client.post("/api/ideas", json=idea()).status_code == 202
    response = client.post("/api/ideas", json=idea())
    assert response.status_code == 429 and "Retry-After" in response.headers
    assert "später" in response.json()["detail"]


# -- near me ----------------------------------------------------------------------------------
def _point_at(distance_m: float, azimuth: float = 0.0) -> list[float]:
    lon, lat, _ = GEOD.fwd(*HBF, azimuth, distance_m)
    return [lon, lat]


def test_near_me_returns_known_distances_sorted(client, conn):
    planner = bearer(client, conn, "planner")
    made = {}
    for distance, azimuth in ((150, 0), (400, 90), (900, 200), (1600, 45)):
        body = measure_feature({"type": "Point", "coordinates": _point_at(distance, azimuth)},
                               title=f"Abstand {distance}")
        created = client.post("/api/measures", json=body, headers=planner)
        published = client.post(f"/api/measures/{created.json()['id']}/publish",
                                headers={**planner, "If-Match": created.headers["etag"]})
        assert published.status_code == 200
        made[created.json()["id"]] = distance
    result = client.get(f"/api/near?lon={HBF[0]}&lat={HBF[1]}&radius=1000").json()
    ours = [m for m in result["measures"] if m["id"] in made]
    assert [made[m["id"]] for m in ours] == [150, 400, 900]  # 1600 m is outside, order kept
    for m in ours:
        assert m["distance_m"] == pytest.approx(made[m["id"]], abs=1.0)
    distances = [m["distance_m"] for m in result["measures"]]
    assert distances == sorted(distances) and all(d <= 1000 for d in distances)
    assert result["city"]["name"] == "Halle (Saale)"


def test_near_me_drafts_are_not_listed(client, conn):
    planner = bearer(client, conn, "planner")
    created = client.post("/api/measures", json=measure_feature(
        {"type": "Point", "coordinates": _point_at(50)}, title="Entwurf nah"), headers=planner)
    result = client.get(f"/api/near?lon={HBF[0]}&lat={HBF[1]}&radius=500").json()
    assert created.json()["id"] not in {m["id"] for m in result["measures"]}


def test_near_a_district_reports_its_pilot_quarters(client):
    districts = client.get("/api/collections/districts/items?city_ags=15002000&limit=100").json()
    nord = next(f for f in districts["features"] if f["properties"]["name"] == "Nördliche Neustadt")
    result = client.get(f"/api/near?district={nord['id']}&radius=2000").json()
    assert result["district"]["name"] == "Nördliche Neustadt"
    assert [q["slug"] for q in result["district"]["quarters"]] == ["bildungsquartier-neustadt"]
    assert result["district"]["quarters"][0]["share"] > 0.5
    assert result["measures"], "the Bildungszentrum and Smart HaNeu lie in Neustadt"


@pytest.mark.parametrize("query", ["radius=100", "lon=11.9&lat=51.4&radius=50000",
                                   "lon=500&lat=51&radius=100", "district=99999&radius=100"])
def test_near_bad_parameters(client, query):
    assert client.get(f"/api/near?{query}").status_code in (400, 404)


# -- feeds ------------------------------------------------------------------------------------
def test_feed_is_valid_atom_with_published_changes_only(client, conn):
    planner = bearer(client, conn, "planner")
    body = measure_feature({"type": "Point", "coordinates": _point_at(100)},
                           title="Neue Ladesäule <b>fett</b>")
    created = client.post("/api/measures", json=body, headers=planner)
    mid = created.json()["id"]
    secret = client.get(f"/api/feeds/changes.atom?lon={HBF[0]}&lat={HBF[1]}&radius=500")
    assert "Ladesäule" not in secret.text  # draft: not in the feed
    published = client.post(f"/api/measures/{mid}/publish",
                            headers={**planner, "If-Match": created.headers["etag"]})
    client.patch(f"/api/measures/{mid}", json={"properties": {"status": "in_umsetzung"}},
                 headers={**planner, "If-Match": published.headers["etag"]})
    response = client.get(f"/api/feeds/changes.atom?lon={HBF[0]}&lat={HBF[1]}&radius=500")
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    titles = [e.title for e in feed.entries]
    assert "Neue Maßnahme: Neue Ladesäule <b>fett</b>" in titles  # as text, escaped in XML
    assert any("Status geändert" in t and "In Umsetzung" in t for t in titles)
    assert b"<b>fett</b>" not in response.content
    assert all(e.link.endswith(f"/massnahmen/{mid}") for e in feed.entries if "Ladesäule" in e.title)


def test_feeds_for_quarter_and_district(client):
    quarter = feedparser.parse(client.get(
        "/api/feeds/changes.atom?quarter=bildungsquartier-neustadt").content)
    assert not quarter.bozo and "Bildungsquartier Neustadt" in quarter.feed.title
    assert quarter.entries
    assert client.get("/api/feeds/changes.atom").status_code == 400
    assert client.get("/api/feeds/changes.atom?quarter=nope").status_code == 404


# -- headers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/index.html", "/api/health", "/api/collections",
                                  "/api/measures", "/massnahmen/1"])
def test_security_headers_everywhere(client, path):
    response = client.get(path)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"]
