"""The public map page (/) embeds what its first view needs (issue 10, item 7: first paint):

- the catalogue of the page language over the German one (what web/js/i18n.js looks up),
- the configuration, the same body as /api/config,
- the clusters of the first view, the same body as /api/measures/points?limit=10000&format=clusters
  (only for the unfiltered view without ?map=; a filtered permalink draws from its own index),

as ``<script type="application/json">`` elements that no text of the data can close; the
page then asks for none of them (no preload). Without a database it is still rendered, without
the data (its scripts ask and report as before).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request

from sqlalchemy import text

from quarters.api.pages import embedded_json
from quarters.api.routes.public import OWN_VIEW_PARAMS

BLOCK = re.compile(r'<script type="application/json" id="(page-[a-z]+)"([^>]*)>([^<]*)</script>')


def blocks(body: str) -> dict[str, tuple[str, object]]:
    """id → (attributes, parsed JSON) of the page's embedded JSON elements."""
    return {m[1]: (m[2], json.loads(m[3])) for m in BLOCK.finditer(body)}


def add_measure(conn, title: str) -> int:  # noqa: ANN001
    return conn.execute(text("""
        INSERT INTO measures (city_ags, title, summary, action_field, status, geom,
                              location_precision, published, published_at)
        VALUES ('15002000', :title, 'Eingebettet', 'Bildung', 'geplant',
                ST_Transform(ST_SetSRID(ST_MakePoint(11.97, 51.48), 4326), 25832),
                'exact', true, now()) RETURNING id"""), {"title": title}).scalar_one()


def test_the_map_page_embeds_catalogue_configuration_and_clusters(client, conn):
    add_measure(conn, "Eingebettete Maßnahme")
    body = client.get("/").text
    found = blocks(body)
    assert set(found) == {"page-catalogue", "page-config", "page-clusters"}
    attrs, catalogue = found["page-catalogue"]
    german = json.loads(client.get("/i18n/de.json").text)
    assert 'data-lang="de"' in attrs and catalogue == german
    assert found["page-config"][1] == client.get("/api/config").json()
    clusters = client.get("/api/measures/points", params={"limit": 10000, "format": "clusters"})
    assert found["page-clusters"][1] == clusters.json()
    assert found["page-clusters"][1]["count"] >= 1
    # nothing of it is asked for again
    assert 'href="/api/config"' not in body and "format=clusters" not in body
    assert 'href="/i18n/' not in body


def test_the_english_page_embeds_english_over_german(client):
    found = blocks(client.get("/?lang=en").text)
    attrs, catalogue = found["page-catalogue"]
    english = json.loads(client.get("/i18n/en.json").text)
    german = json.loads(client.get("/i18n/de.json").text)
    assert 'data-lang="en"' in attrs and catalogue == {**german, **english}
    assert catalogue["map.title"] == english["map.title"] != german["map.title"]


def test_a_filtered_view_embeds_no_clusters(client):
    for name in OWN_VIEW_PARAMS:
        value = "12/51.48/11.97" if name == "map" else "geplant"
        body = client.get("/", params={name: value}).text
        assert "page-clusters" not in blocks(body), name
        assert "page-config" in blocks(body), name
        # a filtered view asks for its own points; the preloaded clusters would be unused
        assert "format=clusters" not in body, name
    assert "page-clusters" in blocks(client.get("/", params={"page": "2", "q": " "}).text)


def test_the_embedded_clusters_follow_a_publish(client, conn):
    before = blocks(client.get("/").text)["page-clusters"][1]["count"]
    add_measure(conn, "Neu veröffentlicht")
    after = blocks(client.get("/").text)["page-clusters"][1]["count"]
    assert after == before + 1


def test_no_text_of_the_data_closes_the_element():
    hostile = {"title": "</script><script>alert(1)</script>", "x": "<!-- <b>"}
    embedded = str(embedded_json(hostile))
    assert "<" not in embedded and json.loads(embedded) == hostile
    assert str(embedded_json(b'{"a":"</SCRIPT>"}')) == '{"a":"\\u003c/SCRIPT>"}'


def test_without_a_database_the_map_page_is_still_rendered(settings):
    from fastapi.testclient import TestClient

    from quarters.api import create_app

    nowhere = "postgresql+psycopg://nobody:wrong@127.0.0.1:1/none"
    offline = settings.model_copy(update={"database_url": nowhere, "app_database_url": nowhere,
                                          "read_database_url": None})
    with TestClient(create_app(offline), raise_server_exceptions=False) as offline_client:
        response = offline_client.get("/")
    assert response.status_code == 200
    found = blocks(response.text)
    assert set(found) == {"page-catalogue"}
    # the scripts ask for what is missing, as before
    assert 'href="/api/config"' in response.text and "format=clusters" in response.text


def test_a_real_server_keeps_the_data_per_version_and_shows_a_publish(live_server, engine):
    """In a real server (the data version known from NOTIFY) the page's data is kept per
    version; a publish by another connection shows on a page view right after it."""
    def embedded_count() -> int:
        with urllib.request.urlopen(f"{live_server}/", timeout=10) as response:
            return blocks(response.read().decode())["page-clusters"][1]["count"]

    before = embedded_count()
    assert embedded_count() == before
    with engine.begin() as conn:
        mid = add_measure(conn, "Von anderswo veröffentlicht")
    try:
        deadline = time.monotonic() + 5
        while embedded_count() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert embedded_count() == before + 1
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM measures WHERE id = :id"), {"id": mid})
    deadline = time.monotonic() + 5
    while embedded_count() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert embedded_count() == before
