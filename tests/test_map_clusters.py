"""Server-side clusters of the public map's first view (/api/measures/points?format=clusters).

The exact agreement with the page's own supercluster index is checked in the browser
(test_public_browser.py::test_first_view_is_drawn_from_the_servers_clusters); here: the
answer's invariants against the real database, the caching by data version, and the
algorithm on small hand-checkable sets."""

from __future__ import annotations

import pytest

from factories import bearer, measure_feature
from quarters import clusters

LOCATED = {"exact", "approximate"}


def compact(points: list[tuple[float, float]], precision: str = "exact") -> dict:
    n = len(points)
    return {"format": "compact", "numberMatched": n, "numberReturned": n,
            "id": list(range(1, n + 1)), "title": [f"M{i}" for i in range(1, n + 1)],
            "status": ["idee"] * n, "action_field": ["Bildung"] * n,
            "city_ags": ["15002000"] * n, "location_precision": [precision] * n,
            "lon": [p[0] for p in points], "lat": [p[1] for p in points]}


def represented(body: dict, zoom: str) -> int:
    return sum(item[2] for item in body["levels"][zoom])


def test_two_near_points_are_one_cluster_until_they_split_and_a_far_one_stays_alone():
    # ~14 m apart in Halle, and one point in Gera (~60 km away)
    body = clusters.levels_body(compact([(11.97, 51.48), (11.9702, 51.4801), (12.08, 50.88)]))
    assert body["count"] == 3
    z10 = body["levels"]["10"]
    cluster = next(item for item in z10 if item[2] == 2)
    single = next(item for item in z10 if item[2] == 1)
    assert body["points"]["id"][single[3]] == 3 and single[:2] == [12.08, 50.88]
    assert 11.97 < cluster[0] < 11.9702 and 51.48 < cluster[1] < 51.4801  # weighted centre
    # supercluster's id: (index << 5) + zoom + 1 + number of points, formed from point 0
    origin_zoom = (cluster[3] - 3) % 32
    assert (cluster[3] - 3) >> 5 == 0 and 11 <= origin_zoom <= 17
    assert cluster[4] == origin_zoom  # the zoom at which a click splits it
    for zoom, items in body["levels"].items():
        assert sum(item[2] for item in items) == 3, zoom
    # 56 px at zoom 16 are ~130 m here: still one cluster; not split before zoom 17
    assert max(item[2] for item in body["levels"]["16"]) == 2


def test_points_at_the_same_place_expand_beyond_the_last_cluster_zoom():
    body = clusters.levels_body(compact([(11.97, 51.48)] * 3))
    top = body["levels"]["0"]
    assert len(top) == 1 and top[0][2] == 3
    assert top[0][4] == clusters.MAX_ZOOM + 1  # the page lists them instead of zooming


def test_levels_stop_where_a_level_gets_too_big_and_unlocated_points_are_left_out():
    grid = [(11.9 + 0.004 * i, 51.45 + 0.004 * j) for i in range(40) for j in range(40)]
    data = compact(grid)
    data["location_precision"][0] = "city"
    body = clusters.levels_body(data)
    assert body["count"] == len(grid) - 1
    zooms = sorted(int(z) for z in body["levels"])
    assert zooms == list(range(zooms[-1] + 1))  # from zoom 0 upwards, no gaps
    assert all(len(items) <= clusters.MAX_LEVEL_ITEMS for items in body["levels"].values())
    assert zooms[-1] < clusters.MAX_ZOOM  # 1,599 points 300 m apart: zoom 16 is too big
    assert all(represented(body, str(z)) == len(grid) - 1 for z in zooms)


@pytest.fixture
def planner(client, conn) -> dict:
    return bearer(client, conn, "planner")


def test_clusters_answer_the_public_set_and_follow_each_publish(client, planner):
    points = client.get("/api/measures/points?limit=10000&format=compact").json()
    located = sum(1 for p in points["location_precision"] if p in LOCATED)
    first = client.get("/api/measures/points?limit=10000&format=clusters")
    assert first.status_code == 200 and first.headers["content-type"].startswith(
        "application/json")
    body = first.json()
    assert body["format"] == "clusters" and body["count"] == located > 0
    assert body["numberMatched"] == points["numberMatched"]
    assert body["options"] == {"radius": 56, "maxZoom": 16, "extent": 512, "minPoints": 2}
    assert "10" in body["levels"]
    for zoom, items in body["levels"].items():
        assert represented(body, zoom) == located, zoom
        for item in items:
            if item[2] == 1:
                assert body["points"]["location_precision"][item[3]] in LOCATED
            else:
                assert item[4] > int(zoom)
    # the same answer again is a 304; a publish changes it on the next request
    tag = first.headers["etag"]
    assert client.get("/api/measures/points?limit=10000&format=clusters",
                      headers={"If-None-Match": tag}).status_code == 304
    assert tag != client.get("/api/measures/points?limit=10000&format=compact").headers["etag"]
    created = client.post("/api/measures", json=measure_feature(), headers=planner)
    assert created.status_code == 201, created.text
    published = client.post(f"/api/measures/{created.json()['id']}/publish",
                            headers={**planner, "If-Match": created.headers["etag"]})
    assert published.status_code == 200, published.text
    after = client.get("/api/measures/points?limit=10000&format=clusters",
                       headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.headers["etag"] != tag
    assert after.json()["count"] == located + 1


def test_clusters_take_the_lists_filters_and_refuse_unknown_formats(client):
    everything = client.get("/api/measures/points?limit=10000&format=clusters").json()
    halle = client.get("/api/measures/points?limit=10000&format=clusters&city_ags=15002000")
    assert halle.status_code == 200
    expected = client.get("/api/measures/points?limit=10000&format=compact&city_ags=15002000")
    located = sum(1 for p in expected.json()["location_precision"] if p in LOCATED)
    assert halle.json()["count"] == located <= everything["count"]
    bad = client.get("/api/measures/points?format=tiles")
    assert bad.status_code in (400, 422)
    assert bad.headers["content-type"].startswith("application/problem+json")
