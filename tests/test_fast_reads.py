"""The lean path for one OGC feature (quarters.api.fastread) and the data version kept in memory
(quarters.api.dataversion): the same answers as the route, no database work for a read of a
known version, and a write answered to its client shows on the next read of any worker."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from factories import PASSWORD, bearer, make_user, measure_feature, remove_committed
from quarters import services
from quarters.api import create_app
from quarters.api.dataversion import FileCounter, VersionWatch, new_version_file
from quarters.api.deps import get_conn, get_connect, get_runner

VOLATILE = {"x-request-id", "date"}


def wait_listening(watch: VersionWatch, seconds: float = 10) -> None:
    """Wait until the version listener is connected."""
    deadline = time.monotonic() + seconds
    while not watch.listening:
        assert time.monotonic() < deadline, "the version listener did not connect"
        time.sleep(0.05)


def token_headers(client: TestClient, user) -> dict[str, str]:  # noqa: ANN001
    """Sign ``user`` in through the API for a token; the Authorization header."""
    login = client.post("/api/auth/login", json={
        "username": user.username, "password": PASSWORD, "token": True})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


def route_twin(app, settings):  # noqa: ANN001, ANN201
    """The same app without the lean path, with the harness's overrides (the same transaction)."""
    twin = create_app(settings.model_copy(update={"fast_reads": False}), engine=app.state.engine)
    for dep in (get_conn, get_runner, get_connect):
        twin.dependency_overrides[dep] = app.dependency_overrides[dep]
    return twin


def same_answer(lean, routed) -> None:  # noqa: ANN001
    assert lean.status_code == routed.status_code, (lean.text[:300], routed.text[:300])
    drop = lambda h: {k: v for k, v in h.items() if k not in VOLATILE}  # noqa: E731
    assert drop(lean.headers) == drop(routed.headers)
    if lean.headers.get("content-type", "").startswith("application/problem+json"):
        assert lean.json() == routed.json()
    else:
        assert lean.content == routed.content


def test_the_lean_path_answers_what_the_route_answers(app, client, conn, settings):
    district = conn.execute(text("SELECT id FROM districts ORDER BY id LIMIT 1")).scalar_one()
    planner = bearer(client, conn, "planner")
    draft = client.post("/api/measures", headers=planner,
                        json=measure_feature(title="Entwurf (schlanker Pfad)"))
    assert draft.status_code == 201, draft.text
    draft_id = draft.json()["properties"]["id"]
    published = client.post("/api/measures", headers=planner,
                            json=measure_feature(title="Veröffentlicht (schlanker Pfad)"))
    pid = published.json()["properties"]["id"]
    assert client.post(f"/api/measures/{pid}/publish", headers={
        **planner, "If-Match": published.headers["ETag"]}).status_code == 200

    with TestClient(route_twin(app, settings), base_url="http://127.0.0.1") as routes:
        cases = [
            (f"/api/collections/districts/items/{district}", {}),
            (f"/api/collections/measures/items/{pid}", {}),
            (f"/api/collections/measures/items/{pid}", {"Accept": "application/geo+json"}),
            (f"/api/collections/measures/items/{pid}", {"Accept": "text/html"}),  # 406
            (f"/api/collections/measures/items/{draft_id}", {}),  # a draft: 404 for everyone
            (f"/api/collections/measures/items/{draft_id}", {"Accept-Language": "en"}),
            ("/api/collections/measures/items/999999999", {}),
            ("/api/collections/measures/items/abc", {}),
            ("/api/collections/nichts/items/1", {}),
        ]
        for path, headers in cases:
            lean, routed = client.get(path, headers=headers), routes.get(path, headers=headers)
            same_answer(lean, routed)
        item = f"/api/collections/measures/items/{pid}"
        first = client.get(item)
        assert first.json()["properties"]["title"] == "Veröffentlicht (schlanker Pfad)"
        assert client.get(f"/api/collections/measures/items/{draft_id}").status_code == 404
        for headers in ({"If-None-Match": first.headers["ETag"]}, {"If-None-Match": "*"},
                        {"If-Modified-Since": first.headers["Last-Modified"]}):
            lean, routed = client.get(item, headers=headers), routes.get(item, headers=headers)
            assert lean.status_code == 304 and lean.content == b""
            same_answer(lean, routed)
        lean, routed = client.head(item), routes.head(item)
        assert lean.status_code == 200 and lean.content == b""
        same_answer(lean, routed)


def test_a_known_version_is_answered_without_the_database(settings, engine):
    """Real pools and a real listener: repeated reads of one feature check no connection out;
    a write through the API (committed) shows on the very next read."""
    tag = uuid.uuid4().hex[:6]
    with engine.begin() as c:
        user = make_user(c, "planner", f"fast-reads-{tag}")
    try:
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
            watch = client.app.state.version_watch
            wait_listening(watch)
            planner = token_headers(client, user)
            client.cookies.clear()  # the reads below are anonymous (the lean path)
            created = client.post("/api/measures", headers=planner,
                                  json=measure_feature(title=f"Schnell {tag}"))
            mid = created.json()["properties"]["id"]
            published = client.post(f"/api/measures/{mid}/publish", headers={
                **planner, "If-Match": created.headers["ETag"]})
            assert published.status_code == 200, published.text
            item = f"/api/collections/measures/items/{mid}"
            first = client.get(item)
            assert first.json()["properties"]["title"] == f"Schnell {tag}"
            pool = client.app.state.pools["read"]
            before = pool.get_stats()["requests_num"]
            for _ in range(20):
                again = client.get(item)
                assert again.content == first.content
                assert client.get(item, headers={"If-None-Match": first.headers["ETag"]}
                                  ).status_code == 304
            assert pool.get_stats()["requests_num"] == before  # no connection taken

            gone = client.post(f"/api/measures/{mid}/unpublish", headers={
                **planner, "If-Match": published.headers["ETag"]})
            assert gone.status_code == 200, gone.text
            assert client.get(item).status_code == 404  # the very next read
    finally:
        with engine.begin() as owner:
            remove_committed(owner, [user.id])


def test_a_write_raises_the_counter_every_worker_of_the_host_reads(settings, engine, tmp_path):
    """Two workers' watches over one counter file: one worker's write, learnt before its answer
    goes out, makes the other's known version unusable at once, before any notification
    (listening is set as a listener that has not yet received it would have it)."""
    path = new_version_file()
    try:
        a, b = (VersionWatch(FileCounter(path), enabled=True) for _ in range(2))
        with engine.connect() as c:
            current = services.data_version(c)
        for watch in (a, b):
            watch.learn(*current)
            watch.listening = True
            assert watch.cached() == current
        with engine.begin() as c:  # a write (a bump) committed by worker a
            c.execute(text("UPDATE sources SET note = note WHERE id = (SELECT min(id) FROM "
                           "sources)"))
        with engine.connect() as c:
            a.learn(*services.data_version(c))  # what get_conn does after the commit
        assert a.cached()[0] == current[0] + 1
        assert b.cached() is None  # b must read the version: it sees the write
        b.learn(*a.cached())
        assert b.cached() == a.cached()
        b.learn(*current)  # an older read arriving late never lowers the counter
        assert b.counter.get() == current[0] + 1 and b.cached()[0] == current[0] + 1
    finally:
        path.unlink()


def test_a_write_from_elsewhere_arrives_by_notification(settings, engine):
    """A write outside the API (as the CLI's, after one that was rolled back): the listener
    raises the counter to the committed version, so the known one is no longer used."""
    from quarters.api.dataversion import LocalCounter, listen_conninfo

    watch = VersionWatch(LocalCounter(), enabled=True)
    loop = asyncio.new_event_loop()
    task = loop.create_task(watch.listen(listen_conninfo(settings)))
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        wait_listening(watch)
        start = watch.counter.get()
        with engine.connect() as c, c.begin() as tx:
            c.execute(text("UPDATE sources SET note = note WHERE id = (SELECT min(id) FROM "
                           "sources)"))
            tx.rollback()
        with engine.begin() as c:
            c.execute(text("UPDATE sources SET note = note WHERE id = (SELECT min(id) FROM "
                           "sources)"))
            bumped = c.execute(text("SELECT version FROM data_version")).scalar_one()
        assert bumped > start
        deadline = time.monotonic() + 5
        while watch.counter.get() < bumped:
            assert time.monotonic() < deadline, "no notification arrived"
            time.sleep(0.01)
        assert watch.cached() is None  # the known version is older: read it
    finally:
        loop.call_soon_threadsafe(task.cancel)
        time.sleep(0.2)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)


@pytest.mark.parametrize("workers", [2])
def test_two_workers_show_a_write_on_the_next_request(settings, engine, workers):
    """`quarters serve --workers 2`: both workers have the feature cached; after the planner's
    unpublish is answered, every following read on a new connection (either worker) is 404,
    and after the publish every one is 200 again."""
    from test_scale_out import call, serve_workers

    tag = uuid.uuid4().hex[:6]
    with engine.begin() as c:
        user = make_user(c, "planner", f"fast-workers-{tag}")
    try:
        with serve_workers(settings, workers) as (base, _proc), ThreadPoolExecutor(8) as pool:
            status, _, raw = call(base, "POST", "/api/auth/login", {
                "username": user.username, "password": PASSWORD, "token": True})
            planner = {"Authorization": f"Bearer {json.loads(raw)['token']}"}
            status, headers, raw = call(base, "POST", "/api/measures",
                                        measure_feature(title=f"Zwei {tag}"), planner)
            assert status == 201, raw
            mid = json.loads(raw)["properties"]["id"]
            item = f"/api/collections/measures/items/{mid}"
            etag = headers["etag"]
            for step in range(3):
                action = "publish" if step % 2 == 0 else "unpublish"
                status, headers, raw = call(base, "POST", f"/api/measures/{mid}/{action}",
                                            None, {**planner, "If-Match": etag})
                assert status == 200, raw
                etag = headers["etag"]
                expected = 200 if action == "publish" else 404
                # the very next request, then many on new connections (both workers)
                assert call(base, "GET", item)[0] == expected
                answers = list(pool.map(lambda _: call(base, "GET", item)[0], range(40)))
                assert set(answers) == {expected}, (action, answers)
    finally:
        with engine.begin() as owner:
            remove_committed(owner, [user.id])


def test_a_cached_tile_of_the_known_version_comes_from_memory(settings, engine):
    """Real pools and listener: a tile asked again at the known version is answered from the
    tile cache without the route (same body and ETag, 304 on If-None-Match); a publish shows
    in the very next tile."""
    import mapbox_vector_tile
    import morecantile

    tag = uuid.uuid4().hex[:6]
    lon, lat = 11.9702, 51.4812
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 14)
    path = f"/api/collections/measures/tiles/WebMercatorQuad/14/{t.y}/{t.x}"
    with engine.begin() as c:
        user = make_user(c, "planner", f"fast-tiles-{tag}")
    try:
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
            watch = client.app.state.version_watch
            wait_listening(watch)
            first = client.get(path)
            assert first.status_code == 200 and first.headers["x-tile-cache"] == "miss"
            state = client.app.state
            checkouts: list[int] = []
            for eng in {state.engine, getattr(state, "read_engine", None) or state.engine}:
                event.listen(eng, "checkout", lambda *_: checkouts.append(1))
            again = client.get(path)
            assert again.headers["x-tile-cache"] == "memory"
            assert again.content == first.content
            for name in ("etag", "cache-control", "content-type"):
                assert again.headers[name] == first.headers[name], name
            assert client.get(path, headers={"If-None-Match": first.headers["etag"]}
                              ).status_code == 304
            assert checkouts == []  # neither answer took a database connection

            planner = token_headers(client, user)
            client.cookies.clear()
            created = client.post("/api/measures", headers=planner, json=measure_feature(
                {"type": "Point", "coordinates": [lon, lat]}, title=f"Kachel {tag}"))
            mid = created.json()["properties"]["id"]
            published = client.post(f"/api/measures/{mid}/publish", headers={
                **planner, "If-Match": created.headers["ETag"]})
            assert published.status_code == 200, published.text
            after = client.get(path)  # the very next tile: a new version, built afresh
            assert after.headers["etag"] != first.headers["etag"]
            assert after.headers["x-tile-cache"] == "miss"
            ids = {f["id"] for f in mapbox_vector_tile.decode(after.content)["measures"]["features"]}
            assert mid in ids
            client.post(f"/api/measures/{mid}/unpublish", headers={
                **planner, "If-Match": published.headers["ETag"]})
    finally:
        with engine.begin() as owner:
            remove_committed(owner, [user.id])
