"""Strategy editions: members, the map as of an edition, the difference between two."""

from __future__ import annotations

from factories import GERA_POINT, bearer, measure_feature


def gera_measure(**props):
    return measure_feature(GERA_POINT, city_ags="16052000", action_field="Energie und Umwelt",
                           **props)


def test_editions_are_listed_with_counts(client):
    editions = {e["key"]: e for e in client.get("/api/editions").json()["editions"]}
    assert {"gera-2021", "gera-2022", "halle-2023"} <= set(editions)
    assert editions["gera-2021"]["measures"] >= 15  # package + 14 pilots
    assert editions["gera-2021"]["adopted_on"] == "2021-12-14"


def test_map_as_of_an_edition(client):
    body = client.get("/api/editions/gera-2021/measures").json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) >= 15
    assert all(f["properties"]["city_ags"] == "16052000" for f in body["features"])


def test_diff_names_added_removed_and_changed(client, conn):
    planner = bearer(client, conn, "planner")
    added = client.post("/api/measures", json=gera_measure(title="Nur 2022",
                                                           editions=["gera-2022"]),
                        headers=planner)
    both = client.post("/api/measures", json=gera_measure(title="In beiden",
                                                          editions=["gera-2021", "gera-2022"]),
                       headers=planner)
    removed = client.post("/api/measures", json=gera_measure(title="Nur 2021",
                                                             editions=["gera-2021"]),
                          headers=planner)
    for r in (added, both, removed):
        assert r.status_code == 201, r.text
    admin = bearer(client, conn, "admin")
    assert client.post("/api/editions/gera-2021/freeze", headers=admin).status_code == 200
    changed = client.patch(f"/api/measures/{both.json()['id']}",
                           json={"properties": {"status": "abgeschlossen"}},
                           headers={**planner, "If-Match": both.headers["etag"]})
    assert changed.status_code == 200
    diff = client.get("/api/editions/diff?from=gera-2021&to=gera-2022", headers=planner).json()
    assert added.json()["id"] in {m["id"] for m in diff["added"]}
    assert removed.json()["id"] in {m["id"] for m in diff["removed"]}
    change = next(m for m in diff["changed"] if m["id"] == both.json()["id"])
    assert change["changes"]["status"] == {"before": "geplant", "after": "abgeschlossen"}
    # the public diff sees no drafts
    public = client.get("/api/editions/diff?from=gera-2021&to=gera-2022").json()
    assert added.json()["id"] not in {m["id"] for m in public["added"]}


def test_diff_of_unknown_edition_is_404(client):
    assert client.get("/api/editions/diff?from=gera-2021&to=nope").status_code == 404
    assert client.get("/api/editions/diff?from=gera-2021&to=gera-2021").status_code == 400
