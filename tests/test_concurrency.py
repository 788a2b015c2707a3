"""Two planners save the same version at once: exactly one wins, nothing is lost."""

from __future__ import annotations

import threading
import uuid

import httpx
from sqlalchemy import text

from factories import measure_feature
from quarters import auth


def test_race_of_concurrent_updates_has_one_winner(live_server, engine):
    names = [f"race-{uuid.uuid4().hex[:8]}-{i}" for i in range(2)]
    with engine.begin() as conn:
        tokens = [auth.open_session(conn, auth.add_user(conn, n, "richtig-geheim-123", "planner"))
                  .token for n in names]
    headers = [{"Authorization": f"Bearer {t}"} for t in tokens]
    with httpx.Client(base_url=live_server, timeout=30) as http:
        created = http.post("/api/measures", json=measure_feature(), headers=headers[0])
        assert created.status_code == 201
        mid, etag = created.json()["id"], created.headers["etag"]

    results: list[httpx.Response] = []
    barrier = threading.Barrier(2)

    def save(i: int) -> None:
        with httpx.Client(base_url=live_server, timeout=30) as http:
            barrier.wait()
            results.append(http.patch(f"/api/measures/{mid}", headers={
                **headers[i], "If-Match": etag}, json={"properties": {"title": f"Fassung {i}"}}))

    threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 412]
    winner = next(r for r in results if r.status_code == 200)
    loser = next(r for r in results if r.status_code == 412)
    assert loser.json()["current"]["properties"]["title"] == winner.json()["properties"]["title"]
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT action, changes->'title'->>'after' FROM measure_history "
            "WHERE measure_id = :m ORDER BY id"), {"m": mid}).all()
        title, version = conn.execute(text(
            "SELECT title, version FROM measures WHERE id = :m"), {"m": mid}).one()
    assert [r[0] for r in rows] == ["create", "update"]  # one audit row per successful write
    assert rows[1][1] == title == winner.json()["properties"]["title"] and version == 2
