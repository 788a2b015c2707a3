"""Scaling out: `quarters serve --workers 2` answers alike whichever worker takes a request
(sessions, idea limits, ETags), and anonymous reads go to a real streaming replica of an
embedded cluster (pg_basebackup -R) while signed-in requests stay on the primary."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from conftest import free_port, wait_healthy
from factories import PASSWORD, make_user, measure_feature
from quarters import auth
from quarters.api import create_app
from quarters.embedded import Cluster, _chown_to_server_user
from quarters.migrate import upgrade
from quarters.settings import PROJECT_ROOT, Settings, client_secret


# -- several workers ----------------------------------------------------------------------------
@contextlib.contextmanager
def serve_workers(settings: Settings, workers: int, **env: str):  # noqa: ANN201
    """`quarters serve --workers N` over the session database."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from quarters.cli import main; main()", "serve",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env={**os.environ, "QUARTERS_DATABASE_URL": settings.database_url,
             "QUARTERS_APP_DATABASE_URL": settings.app_database_url,
             "QUARTERS_DATA_DIR": str(settings.data_dir), **env},
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, 60)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def call(base: str, method: str, path: str, body: dict | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a new TCP connection (so the kernel may hand it to either worker)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                     headers={"Connection": "close", **(headers or {})})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, _lower(err.headers), err.read()


def _lower(headers) -> dict[str, str]:  # noqa: ANN001
    return {k.lower(): v for k, v in headers.items()}


def workers_that_served(cluster: Cluster, marker: str) -> set[str]:
    """application_name (quarters-<pid>) of the connections whose last statement has marker
    (asked as the superuser: only it sees the statements of other roles)."""
    with psycopg.connect(cluster.conninfo(role="admin")) as conn:
        rows = conn.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity "
            "WHERE application_name LIKE 'quarters-%%' AND query LIKE %s", (f"%{marker}%",))
        return {r[0] for r in rows}


def test_two_workers_share_sessions_idea_limits_and_etags(cluster, settings, engine, tmp_path):
    username = f"workers-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        auth.add_user(conn, username, PASSWORD, "planner")
    prefix = f"Zwei Prozesse {uuid.uuid4().hex[:6]}"
    # an empty secret key: the workers must agree on one (kept in the home directory)
    with serve_workers(settings, 2, QUARTERS_HOME=str(tmp_path), QUARTERS_IDEA_LIMIT="3",
                       QUARTERS_SECRET_KEY="") as (base, proc), ThreadPoolExecutor(12) as pool:
        # ETags: the same answer, the same tag, and 304 from whichever worker answers
        path = "/api/collections/districts/items?limit=3"
        answers = list(pool.map(lambda _: call(base, "GET", path), range(40)))
        assert {a[0] for a in answers} == {200}
        tags = {a[1]["etag"] for a in answers}
        assert len(tags) == 1
        again = list(pool.map(lambda _: call(base, "GET", path, headers={
            "If-None-Match": next(iter(tags))}), range(40)))
        assert {a[0] for a in again} == {304}
        # both workers answer pages (other servers of the session share the database): the
        # kernel hands new connections to whichever worker accepts first, and on a busy
        # machine one worker may take a whole burst, so send bursts of pages not cached yet
        # until each worker has run one, for at most 60 s
        children = {f"quarters-{pid}" for pid in Path(
            f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()}
        served: set[str] = set()
        deadline = time.monotonic() + 60
        for burst in range(1, 200):
            pages = [f"/api/collections/districts/items?limit={burst}&offset={i}"
                     for i in range(24)]
            assert {a[0] for a in pool.map(lambda p: call(base, "GET", p), pages)} == {200}
            served |= workers_that_served(cluster, "FROM data_version") & children
            if len(served) == 2 or time.monotonic() > deadline:
                break
        assert len(served) == 2, served

        # sessions: signed in at one worker, known at every worker, ended for all
        status, _, raw = call(base, "POST", "/api/auth/login",
                              {"username": username, "password": PASSWORD, "token": True})
        assert status == 200, raw
        bearer = {"Authorization": f"Bearer {json.loads(raw)['token']}"}
        mine = list(pool.map(lambda _: call(base, "GET", "/api/auth/me", headers=bearer),
                             range(30)))
        assert {json.loads(m[2])["user"]["username"] for m in mine} == {username}
        assert call(base, "POST", "/api/auth/logout", headers=bearer)[0] in (200, 204)
        gone = list(pool.map(lambda _: call(base, "GET", "/api/auth/me", headers=bearer),
                             range(30)))
        assert {g[0] for g in gone} == {401}

        # the idea limit: one client, one counter, however the posts are spread
        def submit(i: int) -> int:
            return call(base, "POST", "/api/ideas", {
                "title": f"{prefix} {i}", "text": "Eine Idee mit genug Text für die Prüfung.",
                "action_field": "Mobilität",
                "geometry": {"type": "Point", "coordinates": [11.9697, 51.4829]}},
                headers={"X-Forwarded-For": f"198.51.100.{i}"})[0]

        # other servers of this test session posted ideas from 127.0.0.1 with the same
        # derived key: start from empty counters so this limit of 3 is the one counted
        with engine.begin() as c:
            c.execute(text("DELETE FROM idea_quota"))
        statuses = list(pool.map(submit, range(12)))
        assert sorted(statuses) == [202] * 3 + [429] * 9
    with engine.connect() as conn:
        hashes = conn.execute(text("SELECT count(*), count(DISTINCT client_hash) FROM ideas "
                                   "WHERE title LIKE :p"), {"p": prefix + "%"}).one()
    assert tuple(hashes) == (3, 1)


def test_the_client_secret_is_the_same_in_every_process(tmp_path):
    code = ("from pathlib import Path; from quarters.settings import Settings, client_secret; "
            f"print(client_secret(Settings(home=Path({str(tmp_path)!r}), secret_key='')))")
    with ThreadPoolExecutor(3) as pool:
        keys = list(pool.map(lambda _: subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            cwd=PROJECT_ROOT).stdout.strip(), range(3)))
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert oct((tmp_path / "secret.key").stat().st_mode & 0o777) == "0o600"
    assert client_secret(Settings(home=tmp_path, secret_key="gesetzt")) == "gesetzt"
    # several containers over one database: the same key from the shared credentials
    url = "postgresql://quarters_app:{}@db:5432/quarters"
    a, b, c = (client_secret(Settings(home=tmp_path / "x", database_url=url.format("o"),
                                      app_database_url=url.format(pw))) for pw in ("p", "p", "q"))
    assert a == b != c and a not in url.format("p") and not (tmp_path / "x").exists()


# -- a read replica -----------------------------------------------------------------------------
def _copy_halle(source, target) -> None:  # noqa: ANN001
    """The one municipality a measure needs (and its source), from the session database."""
    for table, where in (("sources", "id = (SELECT source_id FROM municipalities WHERE "
                                     "ags = '15002000')"), ("municipalities", "ags = '15002000'")):
        with source.connect() as conn:
            geom = " || jsonb_build_object('geom', t.geom::text)" if table != "sources" else ""
            record = conn.execute(text(  # the geometry as hex EWKB, which its input reads
                f"SELECT (to_jsonb(t){geom})::text FROM {table} t WHERE {where}")).scalar_one()
            columns = ", ".join(conn.execute(text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
                "AND is_generated = 'NEVER'"), {"t": table}).scalars())
        with target.begin() as conn:
            conn.execute(text(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM "
                              f"jsonb_populate_record(NULL::{table}, CAST(:r AS jsonb))"),
                         {"r": record})


def test_anonymous_reads_come_from_a_streaming_replica(settings, engine):
    home = Path(tempfile.mkdtemp(prefix="quarters-replica-"))
    os.chmod(home, 0o755)
    primary = Cluster(home=home / "primary", port=free_port())
    replica = Cluster(home=home / "replica", port=free_port())
    replica_started = False
    try:
        primary.start()
        owner = create_engine(primary.url("owner"))
        upgrade(owner)
        _copy_halle(engine, owner)
        with owner.begin() as conn:
            token = auth.open_session(conn, make_user(conn, "planner", "replica-planner")).token
        with psycopg.connect(primary.conninfo(role="admin"), autocommit=True) as admin:
            assert admin.execute("SHOW wal_level").fetchone()[0] in ("replica", "logical")

        # the replica: a base backup of the running primary, streaming (-R writes the conninfo)
        replica.home.mkdir()
        for d in (replica.pgdata, replica.rundir):
            d.mkdir(mode=0o700)
            _chown_to_server_user(d)
        replica.logfile.touch()
        _chown_to_server_user(replica.logfile)
        primary._pg("pg_basebackup", "-d", primary.conninfo(dbname="postgres", role="admin"),
                    "-D", str(replica.pgdata), "-R", "-X", "stream", "-c", "fast")
        replica._pg("pg_ctl", "-D", str(replica.pgdata), "-l", str(replica.logfile), "-o",
                    f"-p {replica.port} -k {replica.rundir}", "-w", "-t", "60", "start")
        replica_started = True
        replica_admin = primary.conninfo(role="admin").replace(
            f"port={primary.port}", f"port={replica.port}")
        with psycopg.connect(replica_admin, autocommit=True) as standby:
            assert standby.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True

        app_url = primary.url("app")
        own = Settings(database_url=primary.url("owner"), app_database_url=app_url,
                       read_database_url=app_url.replace(f":{primary.port}/", f":{replica.port}/"),
                       data_dir=settings.data_dir, home=primary.home, pool_timeout_s=2)
        planner = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(own), base_url="http://127.0.0.1") as client:
            standby = psycopg.connect(replica_admin, autocommit=True)
            standby.execute("SELECT pg_wal_replay_pause()")
            created = client.post("/api/measures", json=measure_feature(), headers=planner)
            assert created.status_code == 201, created.text
            mid = created.json()["id"]
            published = client.post(f"/api/measures/{mid}/publish", headers={
                **planner, "If-Match": created.headers["etag"]})
            assert published.status_code == 200, published.text
            item = f"/api/collections/measures/items/{mid}"
            # signed in: the primary, which has it; the public: the replica, paused before it
            assert client.get(item, headers=planner).status_code == 200
            assert client.get(item).status_code == 404
            assert client.get(f"/api/measures/{mid}").status_code == 404  # the sync path too
            assert client.get("/api/collections/measures/items").json()["numberMatched"] == 0

            standby.execute("SELECT pg_wal_replay_resume()")
            standby.close()
            deadline = time.monotonic() + 30
            while client.get(item).status_code != 200:
                assert time.monotonic() < deadline, "the replica did not replay the write"
                time.sleep(0.2)
            assert client.get(item).json()["properties"]["title"] == "Sensoren am Hauptbahnhof"
            assert client.get(f"/api/measures/{mid}").status_code == 200
            assert client.get("/api/collections/measures/items").json()["numberMatched"] == 1
            # what the public read came from: the replica's own data version
            with psycopg.connect(replica_admin, dbname="quarters") as standby_db:
                replica_version = standby_db.execute(
                    "SELECT version FROM data_version").fetchone()[0]
            with owner.connect() as conn:
                assert conn.execute(text("SELECT version FROM data_version")).scalar() == \
                    replica_version
            # the replica goes away: the public gets 503 + Retry-After, staff still read
            replica._pg("pg_ctl", "-D", str(replica.pgdata), "-m", "immediate", "-w", "stop")
            replica_started = False
            for path in (item, f"/api/measures/{mid}"):
                down = client.get(path)
                assert down.status_code == 503, down.text
                assert int(down.headers["retry-after"]) > 0
            assert client.get(item, headers=planner).status_code == 200
            # the map page embeds its first view from the replica too: without it the page
            # comes without the data (its scripts then ask); signed in, from the primary
            page = client.get("/")
            assert page.status_code == 200 and 'id="page-config"' not in page.text
            assert 'id="page-config"' in client.get("/", headers=planner).text
        owner.dispose()
    finally:
        if replica_started:
            replica._pg("pg_ctl", "-D", str(replica.pgdata), "-m", "fast", "-w", "stop",
                        check=False)
        primary.stop()
        shutil.rmtree(home, ignore_errors=True)
