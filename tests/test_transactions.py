"""The connection dependency owns the transaction: routes never commit.

These tests run the app with its real dependencies (no savepoint override) on the runtime
role's engine, so what a request writes is really committed or rolled back; each test removes
what it committed. A second connection (the owner's) looks at the result.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from factories import make_user, remove_committed
from quarters import auth
from quarters.api import create_app
from quarters.api.deps import ConnDep
from quarters.db import make_async_pool
from quarters.errors import InvalidInput
from quarters.settings import Settings

ROUTES = Path(__file__).resolve().parents[1] / "src" / "quarters" / "api" / "routes"
TEST_KEY = "test:transactions:"


def quota_rows(engine: Engine, key: str) -> int:
    """Rows of ``idea_quota`` with this key, seen from a connection of its own."""
    with engine.connect() as other:
        return other.execute(text("SELECT count(*) FROM idea_quota WHERE key = :k"),
                             {"k": key}).scalar_one()


def probe_router() -> APIRouter:
    """Routes that write through ``ConnDep`` and then return, fail or break the commit."""
    router = APIRouter(prefix="/__test__")

    def write(conn, key: str) -> None:  # noqa: ANN001
        conn.execute(text("INSERT INTO idea_quota (key, window_start, used) "
                          "VALUES (:k, now(), 1)"), {"k": key})

    @router.post("/write/{key}")
    def write_ok(key: str, conn: ConnDep) -> dict:
        write(conn, TEST_KEY + key)
        return {"written": True}

    @router.post("/write-then-refuse/{key}")
    def write_then_refuse(key: str, conn: ConnDep) -> dict:
        write(conn, TEST_KEY + key)
        raise InvalidInput("refused after writing")

    @router.post("/write-then-crash/{key}")
    def write_then_crash(key: str, conn: ConnDep) -> dict:
        write(conn, TEST_KEY + key)
        raise RuntimeError("a bug after writing")

    @router.post("/commit-fails/{key}")
    def commit_fails(key: str, conn: ConnDep) -> dict:
        # a deferred foreign key fails only at COMMIT: the answer must not be a 2xx
        write(conn, TEST_KEY + key)
        conn.execute(text("CREATE TEMP TABLE tx_probe (id int PRIMARY KEY, ref int REFERENCES "
                          "tx_probe (id) DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP"))
        conn.execute(text("INSERT INTO tx_probe VALUES (1, 2)"))
        return {"written": True}

    return router


@pytest.fixture
def committing(settings: Settings, app_engine: Engine, engine: Engine) -> Iterator[TestClient]:
    """The app with its own dependencies (each request commits or rolls back for real)."""
    app = create_app(settings.model_copy(update={"login_max_failures": 2}), engine=app_engine)
    probes = probe_router().routes
    app.router.routes[:0] = probes  # ahead of the pages' catch-all routes
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        yield client
    with engine.begin() as owner:
        owner.execute(text("DELETE FROM idea_quota WHERE key LIKE :k"), {"k": TEST_KEY + "%"})


def test_a_successful_write_is_committed_without_the_route_committing(committing, engine):
    key = uuid.uuid4().hex
    response = committing.post(f"/__test__/write/{key}")
    assert response.status_code == 200, response.text
    assert quota_rows(engine, TEST_KEY + key) == 1


@pytest.mark.parametrize("path, status", [("write-then-refuse", 422), ("write-then-crash", 500)])
def test_a_route_that_raises_after_writing_leaves_the_database_unchanged(committing, engine,
                                                                         path, status):
    key = uuid.uuid4().hex
    response = committing.post(f"/__test__/{path}/{key}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert quota_rows(engine, TEST_KEY + key) == 0


def test_the_commit_happens_before_the_answer_so_a_failed_commit_is_no_2xx(committing, engine):
    key = uuid.uuid4().hex
    response = committing.post(f"/__test__/commit-fails/{key}")
    assert response.status_code >= 400, response.text
    assert quota_rows(engine, TEST_KEY + key) == 0


def test_a_real_route_s_write_is_visible_from_another_connection(committing, engine):
    body = {"title": "Idee aus dem Transaktionstest", "text": "Eine Bank am Marktplatz, bitte.",
            "action_field": "Mobilität", "geometry": {"type": "Point",
                                                      "coordinates": [11.97, 51.48]}}
    response = committing.post("/api/ideas", json=body)
    assert response.status_code == 202, response.text
    idea_id = response.json()["id"]
    try:
        with engine.connect() as other:
            title = other.execute(text("SELECT title FROM ideas WHERE id = :i"),
                                  {"i": idea_id}).scalar_one()
        assert title == body["title"]
    finally:
        with engine.begin() as owner:
            client = owner.execute(text("DELETE FROM ideas WHERE id = :i RETURNING client_hash"),
                                   {"i": idea_id}).scalar_one()
            owner.execute(text("DELETE FROM idea_quota WHERE key = :k"), {"k": f"client:{client}"})


def test_a_failed_sign_in_is_recorded_although_the_answer_is_401_then_429(committing, engine):
    username = f"tx-{uuid.uuid4().hex[:12]}"
    keys = auth.throttle_keys(username, "testclient")
    try:
        for _ in range(2):
            response = committing.post("/api/auth/login",
                                       json={"username": username, "password": "falsch-falsch"})
            assert response.status_code == 401, response.text
        with engine.connect() as other:
            failures = other.execute(text("SELECT failures FROM login_throttle WHERE key = :k"),
                                     {"k": keys[0]}).scalar_one()
        assert failures == 2
        # the next attempt reads the committed counter (another pooled connection): paused
        response = committing.post("/api/auth/login",
                                   json={"username": username, "password": "falsch-falsch"})
        assert response.status_code == 429 and int(response.headers["retry-after"]) > 0
    finally:
        with engine.begin() as owner:
            owner.execute(text("DELETE FROM login_throttle WHERE key = ANY(:k)"),
                          {"k": list(keys)})


def test_the_async_read_path_cannot_write(settings: Settings):
    async def attempt() -> str:
        pool = make_async_pool(settings)
        await pool.open()
        try:
            async with pool.connection() as conn:
                shown = await (await conn.execute("SHOW transaction_read_only")).fetchone()
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    await conn.execute("INSERT INTO idea_quota (key, window_start, used) "
                                       "VALUES ('test:transactions:async', now(), 1)")
                return shown[0]
        finally:
            await pool.close()

    # a thread of its own: the browser tests' sync Playwright may hold this thread's event loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, attempt()).result(timeout=60) == "on"


def test_no_route_module_imports_or_calls_commit():
    offenders = []
    for path in sorted(ROUTES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import) \
                    and any(alias.name.split(".")[-1] == "commit" for alias in node.names):
                offenders.append(f"{path.name}:{node.lineno} imports commit")
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name == "commit":
                    offenders.append(f"{path.name}:{node.lineno} calls commit")
    assert offenders == []


@pytest.fixture
def committed_planner(engine: Engine) -> Iterator[tuple[dict[str, str], int]]:
    """A planner account and bearer session committed for real; afterwards the account, its
    measures and their history are removed again (the history's append-only trigger is
    switched off for that, inside the removing transaction only)."""
    name = f"tx-planner-{uuid.uuid4().hex[:8]}"
    with engine.begin() as owner:
        user = make_user(owner, "planner", name)
        session = auth.open_session(owner, user)
    yield {"Authorization": f"Bearer {session.token}"}, user.id
    with engine.begin() as owner:
        remove_committed(owner, [user.id])


def _import_csv(titles: list[str], broken: bool = False) -> bytes:
    rows = ["title,city_ags,action_field,status,lon,lat"]
    rows += [f"{t},15002000,Mobilität,geplant,11.97,51.48" for t in titles]
    if broken:
        rows.append("Kaputt,15002000,Mobilität,gibtsnicht,11.97,51.48")
    return ("\n".join(rows) + "\n").encode()


def _measures_of(engine: Engine, user_id: int) -> list[str]:
    with engine.connect() as other:
        return sorted(other.execute(text("SELECT title FROM measures WHERE created_by = :u"),
                                    {"u": user_id}).scalars())


def test_an_import_in_the_threadpool_commits_all_or_nothing(committing, engine,
                                                            committed_planner):
    headers, user_id = committed_planner
    refused = committing.post("/api/measures/import", headers=headers, files={
        "file": ("m.csv", _import_csv(["Eins", "Zwei"], broken=True), "text/csv")})
    assert refused.status_code == 422, refused.text
    assert _measures_of(engine, user_id) == []
    stored = committing.post("/api/measures/import", headers=headers, files={
        "file": ("m.csv", _import_csv(["Eins", "Zwei"]), "text/csv")})
    assert stored.status_code == 200 and stored.json()["stored"], stored.text
    assert _measures_of(engine, user_id) == ["Eins", "Zwei"]
