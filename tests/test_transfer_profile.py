"""Transfer profile of a measure: validation, history, preconditions in rankings, one-step
transfer with roles."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from factories import HALLE_POLYGON, bearer, measure_feature

ROLES = ("anonymous", "moderator", "planner", "admin")


@pytest.fixture
def tokens(client, conn) -> dict[str, dict[str, str]]:
    headers = {role: bearer(client, conn, role, f"tp-{role}") for role in ROLES[1:]}
    headers["anonymous"] = {}
    return headers


def counts(conn) -> tuple[int, int]:
    return tuple(conn.execute(text(
        "SELECT (SELECT count(*) FROM measures), (SELECT count(*) FROM measure_history)")).one())


def own_district(conn) -> str:
    """Code of the Stadtviertel the test polygon's representative point lies in."""
    return conn.execute(text("""
        SELECT d.code FROM districts d WHERE d.city_ags = '15002000' AND d.level = 'stadtviertel'
          AND ST_Intersects(d.geom, ST_Transform(ST_PointOnSurface(
              ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)), 25832)) LIMIT 1"""),
        {"g": json.dumps(HALLE_POLYGON)}).scalar_one()


def other_district(conn, not_in: set[int] | None = None) -> tuple[str, str]:
    """(code, name) of a Stadtviertel far from the test polygon."""
    row = conn.execute(text("""
        SELECT d.code, d.name FROM districts d WHERE d.city_ags = '15002000'
          AND d.level = 'stadtviertel'
          AND NOT ST_DWithin(d.geom, ST_Transform(ST_SetSRID(ST_MakePoint(11.997, 51.479), 4326),
                                                  25832), 3000)
        ORDER BY d.code LIMIT 1""")).one()
    return row.code, row.name


def profile(code: str, **extra) -> dict:
    return {"preconditions": [{"indicator": "density", "op": ">=", "value": 2500},
                              {"indicator": "population", "op": ">", "value": 1000}],
            "follow_up_costs_per_year": 18000, "notes": "Braucht eine Schule\nund Glasfaser.",
            "districts": {code: {"status": "geprüft", "date": "2025-03-01",
                                 "note": "Erstgespräch"}}, **extra}


# -- validation --------------------------------------------------------------------------------
def test_a_good_profile_is_stored_and_kept_in_history(client, conn, tokens):
    code, _ = other_district(conn)
    created = client.post("/api/measures", headers=tokens["planner"],
                          json=measure_feature(transfer=profile(code)))
    assert created.status_code == 201, created.text
    stored = created.json()["properties"]["transfer"]
    assert stored["preconditions"][0] == {"indicator": "density", "op": ">=", "value": 2500.0}
    assert stored["follow_up_costs_per_year"] == 18000.0
    assert stored["districts"][code] == {"status": "geprüft", "date": "2025-03-01",
                                         "note": "Erstgespräch"}
    mid = created.json()["id"]
    in_db = conn.execute(text("SELECT transfer FROM measures WHERE id = :i"), {"i": mid}).scalar()
    assert in_db == stored

    changed = {**stored, "districts": {code: {"status": "geeignet", "date": "2025-04-02"}}}
    patched = client.patch(f"/api/measures/{mid}", json={"properties": {"transfer": changed}},
                           headers={**tokens["planner"], "If-Match": created.headers["etag"]})
    assert patched.status_code == 200, patched.text
    history = client.get(f"/api/measures/{mid}/history", headers=tokens["planner"]).json()
    first, second = history["history"]
    assert first["changes"]["transfer"]["after"] == stored
    assert second["changes"]["transfer"]["before"] == stored
    assert second["changes"]["transfer"]["after"]["districts"][code]["status"] == "geeignet"
    rows = conn.execute(text("SELECT after->'transfer' FROM measure_history WHERE measure_id = :i "
                             "ORDER BY id"), {"i": mid}).scalars().all()
    assert rows[0] == stored and rows[1]["districts"][code]["status"] == "geeignet"

    # restoring version 1 brings the old profile back
    admin = bearer(client, conn, "admin", "tp-admin-2")
    reverted = client.post(f"/api/measures/{mid}/history/1/restore",
                           headers={**admin, "If-Match": patched.headers["etag"]})
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["properties"]["transfer"] == stored


def test_a_measure_without_profile_has_none(client, tokens):
    created = client.post("/api/measures", headers=tokens["planner"], json=measure_feature())
    assert created.status_code == 201
    assert created.json()["properties"]["transfer"] is None
    assert created.json()["properties"]["origin_id"] is None


BAD = [
    ("op", lambda c: {"preconditions": [{"indicator": "density", "op": "~", "value": 1}]},
     "/properties/transfer/preconditions/0/op"),
    ("unknown indicator", lambda c: {"preconditions": [
        {"indicator": "density", "op": "<", "value": 1},
        {"indicator": "no_such_indicator", "op": "<", "value": 1}]},
     "/properties/transfer/preconditions/1/indicator"),
    ("indicator key", lambda c: {"preconditions": [{"indicator": "Dichte!", "op": "<",
                                                    "value": 1}]},
     "/properties/transfer/preconditions/0/indicator"),
    ("value text", lambda c: {"preconditions": [{"indicator": "density", "op": "<",
                                                 "value": "1"}]},
     "/properties/transfer/preconditions/0/value"),
    ("extra field", lambda c: {"preconditions": [{"indicator": "density", "op": "<",
                                                  "value": 1, "unit": "x"}]},
     "/properties/transfer/preconditions/0/unit"),
    ("negative costs", lambda c: {"follow_up_costs_per_year": -5},
     "/properties/transfer/follow_up_costs_per_year"),
    ("control character", lambda c: {"notes": "a\x07b"}, "/properties/transfer/notes"),
    ("status", lambda c: {"districts": {c: {"status": "erledigt", "date": "2025-01-01"}}},
     "/properties/transfer/districts/{c}/status"),
    ("no date", lambda c: {"districts": {c: {"status": "geeignet"}}},
     "/properties/transfer/districts/{c}/date"),
    ("unknown district", lambda c: {"districts": {"999": {"status": "geeignet",
                                                          "date": "2025-01-01"}}},
     "/properties/transfer/districts/999"),
    ("bad district key", lambda c: {"districts": {"a b": {"status": "geeignet",
                                                          "date": "2025-01-01"}}},
     "/properties/transfer/districts/a b"),
    ("not an object", lambda c: ["density"], "/properties/transfer"),
]


@pytest.mark.parametrize(("case", "build", "pointer"), BAD, ids=[b[0] for b in BAD])
def test_bad_profiles_are_refused_and_nothing_is_stored(client, conn, tokens, case, build,
                                                        pointer):
    code, _ = other_district(conn)
    pointer = pointer.format(c=code)
    before = counts(conn)
    response = client.post("/api/measures", headers=tokens["planner"],
                           json=measure_feature(transfer=build(code)))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert pointer in [e["pointer"] for e in response.json()["errors"]], response.json()
    assert counts(conn) == before

    # the same on a change of an existing measure: 422, the stored record unchanged
    created = client.post("/api/measures", headers=tokens["planner"], json=measure_feature())
    mid, tag = created.json()["id"], created.headers["etag"]
    before = counts(conn)
    patched = client.patch(f"/api/measures/{mid}", json={"properties": {"transfer": build(code)}},
                           headers={**tokens["planner"], "If-Match": tag})
    assert patched.status_code == 422, patched.text
    assert pointer in [e["pointer"] for e in patched.json()["errors"]]
    assert counts(conn) == before
    assert conn.execute(text("SELECT transfer, version FROM measures WHERE id = :i"),
                        {"i": mid}).one() == (None, 1)


# -- preconditions order the ranking -----------------------------------------------------------
def _published(client, tokens, **props) -> int:
    created = client.post("/api/measures", headers=tokens["planner"],
                          json=measure_feature(**props))
    assert created.status_code == 201, created.text
    published = client.post(f"/api/measures/{created.json()['id']}/publish",
                            headers={**tokens["planner"], "If-Match": created.headers["etag"]})
    assert published.status_code == 200, published.text
    return created.json()["id"]


def test_preconditions_split_and_order_the_ranking(client, conn, tokens):
    # independent values: the newest density and population of every Stadtviertel
    figures = {r.code: (r.density, r.population) for r in conn.execute(text("""
        SELECT d.code, quarters_figure('density', 'stadtviertel', d.code) AS density,
               quarters_figure('population', 'stadtviertel', d.code) AS population
        FROM districts d WHERE d.level = 'stadtviertel'"""))}
    densities = sorted(v[0] for v in figures.values() if v[0] is not None)
    threshold = densities[len(densities) // 2]  # the median splits the candidates
    conditions = [{"indicator": "density", "op": ">=", "value": threshold},
                  {"indicator": "population", "op": "!=", "value": 0}]
    mid = _published(client, tokens, transfer={"preconditions": conditions})

    plain = client.get("/api/analysis/transfer", params={
        "reference": "stadtviertel:" + own_district(conn), "level": "stadtviertel", "top": 100,
        "sensitivity": "false", "types": "false"}).json()
    response = client.get("/api/analysis/transfer", params={
        "reference": f"measure:{mid}", "level": "stadtviertel", "top": 100,
        "sensitivity": "false", "types": "false"})
    assert response.status_code == 200, response.text
    body = response.json()
    rows = body["rows"]
    assert len(rows) == len(plain["rows"]) > 10

    def expected(code: str) -> bool:
        density, population = figures[code]
        return density is not None and density >= threshold and population is not None \
            and population != 0

    for row in rows:
        assert row["meets_preconditions"] is expected(row["code"]), row
        failed = {f["indicator"] for f in row["failed_preconditions"]}
        assert ("density" in failed) is not (figures[row["code"]][0] is not None
                                             and figures[row["code"]][0] >= threshold)
    meets = [r["meets_preconditions"] for r in rows[1:]]
    assert 0 < sum(meets) < len(meets), "the precondition must split the candidates"
    assert meets == sorted(meets, reverse=True), "candidates that meet them come first"
    assert rows[0]["is_reference"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    # within each group the similarity order is kept
    sim_rank = {r["code"]: r["rank"] for r in plain["rows"]}
    for group in (True, False):
        part = [r for r in rows[1:] if r["meets_preconditions"] is group]
        assert [sim_rank[r["code"]] for r in part] == sorted(sim_rank[r["code"]] for r in part)
        assert all(r["similarity_rank"] == sim_rank[r["code"]] for r in part)
    summary = body["reference"]["preconditions"]
    assert summary["conditions"][0]["op"] == ">="
    assert summary["candidates_meeting"] == sum(r["meets_preconditions"] for r in rows)

    # the same ranking again (from the cache) still carries the flags
    again = client.get("/api/analysis/transfer", params={
        "reference": f"measure:{mid}", "level": "stadtviertel", "top": 100,
        "sensitivity": "false", "types": "false"}).json()
    assert [r["code"] for r in again["rows"]] == [r["code"] for r in rows]


def test_a_reference_without_preconditions_has_no_flags(client, conn, tokens):
    mid = _published(client, tokens)
    body = client.get("/api/analysis/transfer", params={
        "reference": f"measure:{mid}", "level": "stadtviertel", "top": 5,
        "sensitivity": "false", "types": "false"}).json()
    assert "meets_preconditions" not in body["rows"][1]
    assert "preconditions" not in body["reference"]


# -- one-step transfer -------------------------------------------------------------------------
def test_transfer_creates_a_linked_draft_and_marks_the_origin(client, conn, tokens):
    code, name = other_district(conn)
    created = client.post("/api/measures", headers=tokens["planner"], json=measure_feature(
        title="Lernwerkstatt", transfer=profile(code)))
    origin, tag = created.json()["id"], created.headers["etag"]
    before = counts(conn)
    response = client.post(f"/api/measures/{origin}/transfer", json={"district_code": code},
                           headers={**tokens["planner"], "If-Match": tag})
    assert response.status_code == 201, response.text
    new = response.json()
    assert response.headers["location"] == f"/api/measures/{new['id']}"
    assert counts(conn) == (before[0] + 1, before[1] + 2)
    props = new["properties"]
    assert props["title"] == f"Lernwerkstatt (übertragen nach {name})"
    assert props["origin_id"] == origin and props["published"] is False
    assert code in [d["code"] for d in props["districts"]]
    assert props["transfer"]["preconditions"] == created.json()["properties"]["transfer"][
        "preconditions"]
    assert props["location_precision"] == "approximate"

    got = client.get(f"/api/measures/{origin}", headers=tokens["planner"])
    assert got.headers["etag"] == response.headers["x-origin-etag"]
    status = got.json()["properties"]["transfer"]["districts"][code]
    assert status["status"] == "übertragen"
    assert f"Maßnahme {new['id']}" in status["note"] and "Erstgespräch" in status["note"]
    assert conn.execute(text("SELECT origin_id, published FROM measures WHERE id = :i"),
                        {"i": new["id"]}).one() == (origin, False)

    origin_history = client.get(f"/api/measures/{origin}/history",
                                headers=tokens["planner"]).json()["history"]
    assert origin_history[-1]["action"] == f"transfer-to:{new['id']}"
    assert origin_history[-1]["changes"]["transfer"]["after"]["districts"][code][
        "status"] == "übertragen"
    new_history = client.get(f"/api/measures/{new['id']}/history",
                             headers=tokens["planner"]).json()["history"]
    assert new_history[0]["action"] == f"transfer-from:{origin}"
    assert new_history[0]["changes"]["origin_id"]["after"] == origin

    # a second transfer to the same district is refused, nothing stored
    before = counts(conn)
    again = client.post(f"/api/measures/{origin}/transfer", json={"district_code": code},
                        headers={**tokens["planner"], "If-Match": got.headers["etag"]})
    assert again.status_code == 422 and again.json()["errors"][0]["pointer"] == "/district_code"
    assert counts(conn) == before


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("moderator", 403)])
def test_transfer_needs_a_planner(client, conn, tokens, role, status):
    code, _ = other_district(conn)
    created = client.post("/api/measures", headers=tokens["planner"], json=measure_feature())
    before = counts(conn)
    response = client.post(f"/api/measures/{created.json()['id']}/transfer",
                           json={"district_code": code},
                           headers={**tokens[role], "If-Match": created.headers["etag"]})
    assert response.status_code == status, response.text
    assert counts(conn) == before


def test_transfer_refusals_store_nothing(client, conn, tokens):
    code, _ = other_district(conn)
    created = client.post("/api/measures", headers=tokens["planner"], json=measure_feature())
    mid, tag = created.json()["id"], created.headers["etag"]
    before = counts(conn)
    url = f"/api/measures/{mid}/transfer"
    planner = tokens["planner"]
    assert client.post(url, json={"district_code": code}, headers=planner).status_code == 428
    stale = client.post(url, json={"district_code": code},
                        headers={**planner, "If-Match": f'"m{mid}-v9"'})
    assert stale.status_code == 412
    for body, pointer in (({"district_code": "999"}, "/district_code"),
                          ({"district_code": own_district(conn)}, "/district_code"),
                          ({"district_code": "a b"}, "/district_code"),
                          ({"district_code": code, "x": 1}, "/x")):
        refused = client.post(url, json=body, headers={**planner, "If-Match": tag})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["pointer"] == pointer
    missing = client.post("/api/measures/999999/transfer", json={"district_code": code},
                          headers={**planner, "If-Match": '"m999999-v1"'})
    assert missing.status_code == 404
    assert counts(conn) == before
