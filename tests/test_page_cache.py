"""The OGC API's page cache (quarters.api.pagecache): a body is reused only within one data
version, so a planner's publish shows on the very next anonymous request."""

from __future__ import annotations

from factories import bearer, measure_feature
from quarters.api.pagecache import PageCache

URL = "/api/collections/measures/items?limit=500"


def titles(response) -> set[str]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return {f["properties"]["title"] for f in response.json()["features"]}


def test_a_publish_shows_on_the_next_request_and_repeats_come_from_the_cache(client, conn, app):
    first = client.get(URL)
    before = titles(first)
    again = client.get(URL)
    assert again.content == first.content and again.headers["ETag"] == first.headers["ETag"]
    cache = app.state.page_cache
    assert [u for u in cache.bodies if u.endswith(URL)], "the page was not remembered"

    planner = bearer(client, conn, "planner")
    created = client.post("/api/measures", headers=planner,
                          json=measure_feature(title="Neu veröffentlicht (Cache-Test)"))
    assert created.status_code == 201, created.text
    mid = created.json()["properties"]["id"]
    assert "Neu veröffentlicht (Cache-Test)" not in titles(client.get(URL))  # a draft
    published = client.post(f"/api/measures/{mid}/publish", headers={
        **planner, "If-Match": created.headers["ETag"]})
    assert published.status_code == 200, published.text

    after = client.get(URL)
    assert titles(after) == before | {"Neu veröffentlicht (Cache-Test)"}
    assert after.headers["ETag"] != first.headers["ETag"]
    # and the item itself, asked for the first time and then again, is the published one
    item = f"/api/collections/measures/items/{mid}"
    assert client.get(item).json()["properties"]["title"] == "Neu veröffentlicht (Cache-Test)"
    assert client.get(item).status_code == 200


def test_the_cache_holds_one_version_within_its_bytes():
    cache = PageCache(max_bytes=100, max_body=60)
    v1, v2 = (1, "t1"), (2, "t2")
    cache.put(v1, "a", b"x" * 50)
    cache.put(v1, "b", b"y" * 40)
    assert cache.get(v1, "a") == b"x" * 50 and cache.get(v2, "a") is None
    cache.put(v1, "c", b"z" * 30)  # over 100 bytes: the least recently used ("b") goes
    assert cache.get(v1, "b") is None and cache.get(v1, "a") and cache.get(v1, "c")
    cache.put(v1, "big", b"q" * 61)  # larger than one body may be: not kept
    assert cache.get(v1, "big") is None
    cache.put(v2, "a", b"new")  # a newer version drops everything older
    assert cache.get(v2, "a") == b"new" and cache.get(v1, "c") is None and cache.size == 3
    assert PageCache(0).get(v1, "a") is None
