"""Faults with real processes: the database stopped and restarted under load, ``kill -9`` of the
API during writes, a full connection pool and slow clients. Each test is bounded in time and
prints its figures (faults survived, times to recover) for docs/RELIABILITY.md.

The tests run ``quarters serve`` itself (the production server with its limits) against a
PostgreSQL cluster of this module's own, so stopping that cluster harms no other test.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from conftest import DATA_DIR, free_port, wait_healthy
from factories import measure_feature
from quarters import auth
from quarters.api import create_app, deps
from quarters.catalogue import load_catalogue
from quarters.db import make_engine
from quarters.embedded import Cluster
from quarters.imports.data_load import load_all
from quarters.migrate import upgrade
from quarters.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SERVE = "from quarters.cli import main; main()"


def figure(name: str, value: object) -> None:
    """One figure for the reliability document (visible with -s or in the captured output)."""
    print(f"FIGURE {name}: {value}")


@pytest.fixture(scope="module")
def own_db() -> Iterator[tuple[Cluster, Settings, Engine, str]]:
    """A cluster of this module's own with the project's data and a planner's bearer token."""
    home = Path(tempfile.mkdtemp(prefix="quarters-faults-"))
    os.chmod(home, 0o755)
    cluster = Cluster(home=home, port=free_port())
    cluster.start()
    settings = Settings(database_url=cluster.url(), data_dir=DATA_DIR, home=home)
    engine = make_engine(settings)
    try:
        upgrade(engine)
        load_all(engine, settings, load_catalogue(settings.catalogue))
        with engine.begin() as conn:
            user = auth.add_user(conn, f"fault-{uuid.uuid4().hex[:6]}", "richtig-geheim-123",
                                 "planner")
            token = auth.open_session(conn, user).token
        yield cluster, settings, engine, token
    finally:
        engine.dispose()
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def quarters_serve(settings: Settings, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``quarters serve`` in its own process on a free port; stopped afterwards."""
    port = free_port()
    full_env = {**os.environ, "QUARTERS_DATABASE_URL": settings.database_url,
                "QUARTERS_DATA_DIR": str(settings.data_dir), "QUARTERS_HOME": str(settings.home),
                "PYTHONPATH": str(PROJECT_ROOT / "src"), **env}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], env=full_env, cwd=PROJECT_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 60)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def assert_clean_503(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers.get("retry-after"), r.headers
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    assert r.json()["status"] == 503


def history_consistent(engine: Engine) -> tuple[int, list[str]]:
    """(number of measures, problems): every measure has history rows 1..version."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT m.id, m.version, count(h.id) AS n, min(h.version) AS lo, max(h.version) AS hi
            FROM measures m LEFT JOIN measure_history h ON h.measure_id = m.id
            GROUP BY m.id, m.version""")).all()
        orphans = conn.execute(text(
            "SELECT count(*) FROM measure_history h WHERE NOT EXISTS "
            "(SELECT 1 FROM measures m WHERE m.id = h.measure_id)")).scalar()
    problems = [f"measure {r.id}: version {r.version}, history {r.n} rows {r.lo}..{r.hi}"
                for r in rows if not (r.n == r.version and r.lo == 1 and r.hi == r.version)]
    if orphans:
        problems.append(f"{orphans} history rows without a measure")
    return len(rows), problems


# ---------------------------------------------------------------------------------------------
# the database stopped and restarted under load
# ---------------------------------------------------------------------------------------------
def test_database_restart_under_load(own_db):
    cluster, settings, engine, token = own_db
    auth_header = {"Authorization": f"Bearer {token}"}
    run_id = uuid.uuid4().hex[:8]
    statuses: Counter[int] = Counter()
    bad: list[str] = []
    writes: list[tuple[str, int]] = []  # (title, status)
    lock = threading.Lock()
    stop = threading.Event()

    def record(r: httpx.Response) -> None:
        with lock:
            statuses[r.status_code] += 1
            if r.status_code >= 500:
                try:
                    assert_clean_503(r)
                except AssertionError as exc:
                    bad.append(f"{r.request.method} {r.request.url.path}: {exc}")

    def reader(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                try:
                    record(http.get("/api/measures", params={"limit": 5}))
                    record(http.get("/api/collections/municipalities/items",
                                    params={"limit": 2}))
                except httpx.HTTPError as exc:
                    bad.append(f"read transport error {exc!r}")
                time.sleep(0.02)

    def writer(url: str, n: int) -> None:
        with httpx.Client(base_url=url, timeout=30, headers=auth_header) as http:
            i = 0
            while not stop.is_set():
                title = f"Fault {run_id} w{n} #{i}"
                i += 1
                try:
                    r = http.post("/api/measures", json=measure_feature(title=title))
                except httpx.HTTPError as exc:
                    bad.append(f"write transport error {exc!r}")
                    continue
                record(r)
                with lock:
                    writes.append((title, r.status_code))
                time.sleep(0.02)

    with quarters_serve(settings) as (url, proc):
        threads = [threading.Thread(target=reader, args=(url,)) for _ in range(2)]
        threads += [threading.Thread(target=writer, args=(url, n)) for n in range(2)]
        for t in threads:
            t.start()
        try:
            time.sleep(2)
            t_stop = time.monotonic()
            cluster.stop()
            stopped_s = time.monotonic() - t_stop
            time.sleep(3)  # traffic against a stopped database
            with lock:
                during = sum(n for s, n in statuses.items() if s == 503)
            t_start = time.monotonic()
            cluster.start()
            deadline = time.monotonic() + 60
            while True:  # the same server process recovers by itself
                r = httpx.get(f"{url}/api/measures", params={"limit": 1}, timeout=10)
                if r.status_code == 200:
                    break
                assert time.monotonic() < deadline, "no recovery within 60 s"
                time.sleep(0.1)
            recovered_s = time.monotonic() - t_start
            time.sleep(2)  # traffic after the restart
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        assert proc.poll() is None, "the server died"
        ok_after = httpx.get(f"{url}/api/health", timeout=10).status_code

    figure("db restart: requests", dict(statuses))
    figure("db restart: pg_ctl stop took s", round(stopped_s, 2))
    figure("db restart: recovered (first 200) s after the cluster start began",
           round(recovered_s, 2))
    assert not bad, bad[:10]
    assert during > 0, "the stop was not observed"
    assert set(statuses) <= {200, 201, 503}, statuses
    assert ok_after == 200
    acknowledged = {t for t, s in writes if s == 201}
    failed = {t for t, s in writes if s >= 500}
    with engine.connect() as conn:
        stored = Counter(conn.execute(text(
            "SELECT title FROM measures WHERE title LIKE :p"), {"p": f"Fault {run_id} %"}).scalars())
    figure("db restart: writes acknowledged / refused with 503", (len(acknowledged), len(failed)))
    assert acknowledged and failed
    assert all(stored[t] == 1 for t in acknowledged), "an acknowledged write is missing"
    assert not [t for t in stored if t not in acknowledged and t not in failed]
    _, problems = history_consistent(engine)
    assert not problems, problems[:10]  # a refused write left no half of itself


def test_a_write_whose_connection_is_lost_after_the_commit_is_still_answered(
        own_db, monkeypatch, caplog):
    """The connection dies between a write's commit and its return to the pool (what the
    restart above hit now and then: the database stopped right after a commit). The client
    still gets its 201 and the write is stored; the dead connection is only logged."""
    _cluster, settings, engine, token = own_db
    title = f"Commit then loss {uuid.uuid4().hex[:8]}"
    learned = deps.learn_version

    def learn_then_lose(app, conn) -> None:  # noqa: ANN001
        learned(app, conn)
        conn.execute(text("SELECT 1"))  # a transaction is open again: returning it rolls back
        assert conn.in_transaction()
        pid = conn.connection.driver_connection.info.backend_pid
        with engine.connect() as other:  # ends that backend and waits until it is gone
            assert other.execute(text("SELECT pg_terminate_backend(:p, 5000)"),
                                 {"p": pid}).scalar()

    monkeypatch.setattr(deps, "learn_version", learn_then_lose)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client, \
            caplog.at_level(logging.WARNING, logger="quarters"):
        planner = {"Authorization": f"Bearer {token}"}
        r = client.post("/api/measures", json=measure_feature(title=title), headers=planner)
        assert r.status_code == 201, r.text
        again = client.get(f"/api/measures/{r.json()['id']}", headers=planner)  # pool fine
        assert again.status_code == 200 and again.json()["properties"]["title"] == title
    assert "connection lost before it went back to the pool" in caplog.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM measures WHERE title = :t"),
                            {"t": title}).scalar_one() == 1


# ---------------------------------------------------------------------------------------------
# kill -9 of the API during writes
# ---------------------------------------------------------------------------------------------
def test_kill_9_during_writes_leaves_every_measure_consistent(own_db):
    _cluster, settings, engine, token = own_db
    auth_header = {"Authorization": f"Bearer {token}"}
    acked: dict[int, int] = {}  # measure id → highest version the API confirmed
    lock = threading.Lock()
    stop = threading.Event()

    def loop(url: str, n: int) -> None:
        with httpx.Client(base_url=url, timeout=10, headers=auth_header) as http:
            try:
                r = http.post("/api/measures", json=measure_feature(title=f"Kill {n}"))
                mid, etag = r.json()["id"], r.headers["etag"]
                with lock:
                    acked[mid] = 1
                i = 0
                while not stop.is_set():
                    i += 1
                    r = http.put(f"/api/measures/{mid}", headers={"If-Match": etag},
                                 json=measure_feature(title=f"Kill {n} v{i}",
                                                      summary="x" * (i % 50)))
                    if r.status_code != 200:
                        return
                    etag = r.headers["etag"]
                    with lock:
                        acked[mid] = int(etag.strip('"').split("-v")[1])
            except (httpx.HTTPError, KeyError, ValueError):
                return  # the server was killed under this request

    with quarters_serve(settings) as (url, proc):
        threads = [threading.Thread(target=loop, args=(url, n)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(2.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert acked, "no write was acknowledged before the kill"
    n_measures, problems = history_consistent(engine)
    assert not problems, problems[:10]
    with engine.connect() as conn:
        versions = dict(conn.execute(text("SELECT id, version FROM measures WHERE id = ANY(:i)"),
                                     {"i": list(acked)}).all())
    lost = {m: (v, versions.get(m)) for m, v in acked.items() if versions.get(m, 0) < v}
    figure("kill -9: measures written / versions confirmed", (len(acked), sum(acked.values())))
    assert not lost, f"confirmed versions lost: {lost}"
    with quarters_serve(settings) as (url, _proc):  # starts again over the same data
        assert httpx.get(f"{url}/api/health", timeout=10).status_code == 200
    figure("kill -9: measures checked, history consistent", n_measures)


# ---------------------------------------------------------------------------------------------
# a full pool
# ---------------------------------------------------------------------------------------------
def test_full_pool_answers_503_and_recovers(own_db):
    _cluster, settings, _engine, _token = own_db
    statuses: Counter[int] = Counter()
    bad: list[str] = []
    lock = threading.Lock()

    def slow(url: str) -> None:
        # the geometries of all municipalities: about a second with a pooled connection held
        try:
            r = httpx.get(f"{url}/api/analysis/indicators/density/values",
                          params={"level": "gemeinde", "format": "geojson"}, timeout=60)
        except httpx.HTTPError as exc:
            with lock:
                bad.append(repr(exc))
            return
        with lock:
            statuses[r.status_code] += 1
            if r.status_code >= 500:
                try:
                    assert_clean_503(r)
                except AssertionError as exc:
                    bad.append(str(exc))

    with quarters_serve(settings, QUARTERS_POOL_MAX="1", QUARTERS_POOL_MIN="1") as (url, proc):
        t0 = time.monotonic()
        threads = [threading.Thread(target=slow, args=(url,)) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        took = time.monotonic() - t0
        after = httpx.get(f"{url}/api/health", timeout=15)
        assert proc.poll() is None
    figure("full pool (1 connection, 32 slow requests): statuses", dict(statuses))
    figure("full pool: all answered within s", round(took, 1))
    assert not bad, bad[:5]
    assert set(statuses) <= {200, 503} and statuses[503] > 0 and statuses[200] > 0, statuses
    assert after.status_code == 200


# ---------------------------------------------------------------------------------------------
# slow clients (quarters serve closes them; others are served meanwhile)
# ---------------------------------------------------------------------------------------------
def trickle(port: int, request: bytes, per_byte_s: float, limit_s: float) -> tuple[float, bytes]:
    """Send ``request`` one byte per ``per_byte_s``; return (seconds until the server closed
    the connection, what it answered)."""
    t0 = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=limit_s) as sock:
        sock.settimeout(per_byte_s)
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            try:
                chunk = sock.recv(4096)
                answer += chunk
                if not chunk:
                    break
            except TimeoutError:
                pass
            except ConnectionResetError:
                answer += b" [reset]"  # what the assertions then show
                break
            if time.monotonic() - t0 > limit_s:
                return float("inf"), answer
    return time.monotonic() - t0, answer


def test_slow_header_client_is_closed_and_others_are_served(own_db):
    _cluster, settings, _engine, _token = own_db
    request = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200
    with quarters_serve(settings, QUARTERS_SERVER_HEADER_TIMEOUT_S="3") as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        result: dict[str, tuple[float, bytes]] = {}
        slow = threading.Thread(target=lambda: result.update(
            one=trickle(port, request, per_byte_s=1.0, limit_s=20)))
        slow.start()
        # several more slow clients that send nothing at all
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        served = []
        with httpx.Client(base_url=url, timeout=5) as http:
            for _ in range(10):  # others are served while the slow ones hang
                t0 = time.monotonic()
                assert http.get("/api/health").status_code == 200
                served.append(time.monotonic() - t0)
                time.sleep(0.2)
        slow.join(timeout=30)
        closed = []
        for sock in idle:
            sock.settimeout(10)
            t0 = time.monotonic()
            with sock:
                data = sock.recv(4096)
            closed.append((time.monotonic() - t0, data))
        assert proc.poll() is None
    took, answer = result["one"]
    figure("slow header client (1 byte/s): closed after s", round(took, 1))
    figure("while slow clients hang: health answered in max s", round(max(served), 3))
    assert took < 6, f"the trickling client was not closed ({took} s)"
    assert answer.startswith(b"HTTP/1.1 408")
    assert all(data.startswith(b"HTTP/1.1 408") for _, data in closed), closed
    assert max(served) < 2.0


def test_a_client_still_sending_after_its_408_reads_the_408(own_db):
    """A client that goes on sending header bytes after its deadline, and reads only later,
    still gets the 408: the server reads and drops the late bytes for a moment instead of
    answering them with a reset (which makes the client's kernel discard the unread 408)."""
    _cluster, settings, _engine, _token = own_db
    with quarters_serve(settings, QUARTERS_SERVER_HEADER_TIMEOUT_S="1") as (url, _proc):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Late: ")
            for _ in range(12):  # 1.2 s of bytes, past the 1 s deadline, nothing read
                sock.sendall(b"a")
                time.sleep(0.1)
            answer = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(4096):
                    answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer or "reset, the 408 was lost"


def test_oversized_headers_and_the_concurrency_limit(own_db):
    _cluster, settings, _engine, _token = own_db
    with quarters_serve(settings, QUARTERS_SERVER_MAX_HEADER_BYTES="8192",
                        QUARTERS_SERVER_LIMIT_CONCURRENCY="4",
                        QUARTERS_SERVER_HEADER_TIMEOUT_S="2") as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n"
                         + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 1000) for i in range(20))
                         + b"\r\n")
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 400"), answer
            assert sock.recv(4096) == b""  # and closed
        # four connections that send nothing fill the limit: uvicorn answers 503 …
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        time.sleep(0.3)
        refused = httpx.get(f"{url}/api/health", timeout=5)
        # … until the header deadline (and the 408's short linger) closes them; then the
        # service is there again
        time.sleep(3.0)
        again = httpx.get(f"{url}/api/health", timeout=5)
        for sock in idle:
            sock.close()
        assert proc.poll() is None
    assert refused.status_code == 503
    assert again.status_code == 200
