"""A restart never changes what people did: `quarters data load` run again (the real CLI) leaves
every row of measures, their history and editions as people left them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from factories import bearer
from quarters.api import create_app
from quarters.db import make_engine
from quarters.migrate import upgrade
from quarters.settings import PROJECT_ROOT, Settings

DB = "quarters_restart"
TABLES = ("measures", "measure_history", "measure_editions", "editions", "seed_keys")


@pytest.fixture(scope="module")
def fresh(settings: Settings, cluster, engine):  # noqa: ANN001, ARG001 (engine: set up)
    """Settings of a database of its own in the test cluster (dropped afterwards), owned by
    the owner role as the embedded cluster's is."""
    admin_url = cluster.url("admin")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {DB}"))
        c.execute(text(f"CREATE DATABASE {DB} OWNER quarters_owner"))
    url = settings.database_url.rsplit("/", 1)[0] + f"/{DB}"
    own = Settings(database_url=url, data_dir=settings.data_dir, home=settings.home)
    postgis = create_engine(admin_url.rsplit("/", 1)[0] + f"/{DB}", isolation_level="AUTOCOMMIT")
    with postgis.connect() as c:
        c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    postgis.dispose()
    yield own
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
    admin.dispose()


def data_load(settings: Settings) -> subprocess.CompletedProcess:
    env = {**os.environ, "QUARTERS_DATABASE_URL": settings.database_url,
           "QUARTERS_DATA_DIR": str(settings.data_dir)}
    return subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()",
                           "data", "load"], env=env, cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=600)


def dump(engine) -> dict[str, list[str]]:  # noqa: ANN001
    with engine.connect() as c:
        return {t: c.execute(text(f"SELECT row_to_json(x)::text FROM {t} x "
                                  "ORDER BY row_to_json(x)::text")).scalars().all() for t in TABLES}


def test_two_commands_started_at_once_on_a_new_database_both_work(fresh):
    """Two CLI commands that each bring a new database to the newest schema (here `db upgrade`,
    as any command does on start-up) run their upgrades one after the other: both exit 0
    and the schema is there once (the second used to fail on alembic_version's key)."""
    from concurrent.futures import ThreadPoolExecutor

    from quarters.migrate import at_head

    env = {**os.environ, "QUARTERS_DATABASE_URL": fresh.database_url,
           "QUARTERS_DATA_DIR": str(fresh.data_dir)}
    command = [sys.executable, "-c", "from quarters.cli import main; main()", "db", "upgrade"]
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda _: subprocess.run(
            command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300),
            range(2)))
    assert [d.returncode for d in done] == [0, 0], [d.stderr[-1500:] for d in done]
    engine = make_engine(fresh)
    try:
        assert at_head(engine)
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        engine.dispose()


def test_data_load_twice_keeps_edits_and_deletions(fresh):
    engine = make_engine(fresh)
    try:
        upgrade(engine)
        first = data_load(fresh)
        assert first.returncode == 0, first.stdout + first.stderr
        with engine.connect() as c:
            seeds = c.execute(text("SELECT id, slug FROM measures m WHERE slug IS NOT NULL AND "
                                   "NOT EXISTS (SELECT 1 FROM measures k WHERE k.parent_id = m.id)"
                                   " ORDER BY id LIMIT 3")).all()
            assert len(seeds) == 3
            history_rows = c.execute(text("SELECT count(*) FROM measure_history")).scalar_one()
        (edited, _), (deleted, _), (gone, gone_slug) = seeds
        with TestClient(create_app(fresh)) as client, engine.begin() as c:
            planner = bearer(client, c, "planner")
        with TestClient(create_app(fresh)) as client:
            got = client.get(f"/api/measures/{edited}", headers=planner)
            change = client.patch(f"/api/measures/{edited}", headers={
                **planner, "If-Match": got.headers["etag"]},
                json={"properties": {"title": "Von einer Planerin geändert"}})
            assert change.status_code == 200, change.text
            got = client.get(f"/api/measures/{deleted}", headers=planner)
            removed = client.delete(f"/api/measures/{deleted}", headers={
                **planner, "If-Match": got.headers["etag"]})
            assert removed.status_code == 204, removed.text
        with engine.begin() as c:  # an admin removes one for good (history too)
            c.execute(text("ALTER TABLE measure_history DISABLE TRIGGER measure_history_no_change"))
            c.execute(text("DELETE FROM measure_history WHERE measure_id = :i"), {"i": gone})
            c.execute(text("ALTER TABLE measure_history ENABLE TRIGGER measure_history_no_change"))
            c.execute(text("DELETE FROM measures WHERE id = :i"), {"i": gone})
            c.execute(text("UPDATE editions SET title = 'Von Hand benannt' WHERE key = 'gera-2021'"))
        before = dump(engine)
        assert len(before["measure_history"]) > history_rows  # the edits are recorded
        again = data_load(fresh)
        assert again.returncode == 0, again.stdout + again.stderr
        assert dump(engine) == before
        with engine.connect() as c:
            assert c.execute(text("SELECT title FROM measures WHERE id = :i"),
                             {"i": edited}).scalar_one() == "Von einer Planerin geändert"
            assert c.execute(text("SELECT count(*) FROM measures WHERE slug = :s"),
                             {"s": gone_slug}).scalar_one() == 0
    finally:
        engine.dispose()
