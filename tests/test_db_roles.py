"""Least privilege in the database (issue 8, item 10): the API connects as a runtime role that
reads, writes what the app writes, appends to history and can do nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from conftest import free_port
from factories import bearer, measure_feature
from quarters.api import create_app
from quarters.embedded import APP_ROLE, OWNER_ROLE, Cluster
from quarters.migrate import upgrade

FORBIDDEN = [
    "ALTER TABLE measures ADD COLUMN sneaky integer",
    "ALTER TABLE measure_history DISABLE TRIGGER measure_history_no_change",
    "ALTER TABLE measure_history DISABLE TRIGGER ALL",
    "UPDATE measure_history SET actor = 'niemand'",
    "DELETE FROM measure_history",
    "TRUNCATE measure_history",
    "TRUNCATE measures CASCADE",
    "CREATE TABLE sneaky (x integer)",
    "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "DROP TABLE login_throttle",
    "DROP TRIGGER measure_history_no_change ON measure_history",
    "SET session_replication_role = replica",
    "UPDATE municipalities SET name = 'Halle (Umbenannt)' WHERE ags = '15002000'",
    "DELETE FROM districts",
    "INSERT INTO sources (key, name, licence, attribution) VALUES ('x', 'x', 'x', 'x')",
    "CREATE ROLE sneaky",
    "ALTER TABLE users OWNER TO quarters_app",
    "CREATE TEMP TABLE x AS SELECT 1; ALTER TABLE measures ENABLE ROW LEVEL SECURITY",
]


@pytest.fixture
def as_app(settings, engine):
    """A raw connection of the runtime role (what the API connects as)."""
    url = settings.app_database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        yield conn


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_the_runtime_role_cannot(as_app, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_app.execute(statement)
    as_app.rollback()


def test_the_runtime_role_is_no_superuser_and_owns_nothing(as_app):
    who = as_app.execute("SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls "
                         "FROM pg_roles WHERE rolname = current_user").fetchone()
    assert who == (APP_ROLE, False, False, False, False)
    owned = as_app.execute("SELECT count(*) FROM pg_class WHERE relowner = "
                           "(SELECT oid FROM pg_roles WHERE rolname = current_user)").fetchone()[0]
    assert owned == 0
    owner = as_app.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'measure_history'"
                           ).fetchone()[0]
    assert owner == OWNER_ROLE
    # What it may do: read, append to history, write its own tables.
    grants = dict(as_app.execute(
        "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type) "
        "FROM information_schema.role_table_grants WHERE grantee = current_user "
        "GROUP BY table_name").fetchall())
    assert grants["measure_history"] == "INSERT,SELECT"
    assert grants["municipalities"] == "SELECT"
    assert grants["measures"] == "DELETE,INSERT,SELECT,UPDATE"
    assert grants["measures_public"] == "SELECT"


def test_api_writes_work_as_the_runtime_role(client, conn):
    assert conn.execute(text("SELECT current_user")).scalar() == OWNER_ROLE
    headers = bearer(client, conn, "planner")
    created = client.post("/api/measures", json=measure_feature(title="Als Laufzeitrolle"),
                          headers=headers)
    assert created.status_code == 201, created.text
    measure_id = created.json()["id"]
    patched = client.patch(f"/api/measures/{measure_id}", json={"properties": {"status": "idee"}},
                           headers={**headers, "If-Match": created.headers["etag"],
                                    "Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text
    history = conn.execute(text("SELECT action FROM measure_history WHERE measure_id = :m "
                                "ORDER BY id"), {"m": measure_id}).scalars().all()
    assert len(history) == 2


def test_the_app_connects_as_the_runtime_role(settings, engine):
    app = create_app(settings)  # its lifespan makes its own engine
    with TestClient(app, base_url="http://127.0.0.1"):
        with app.state.engine.connect() as c:
            assert c.execute(text("SELECT current_user")).scalar() == APP_ROLE


def test_a_cluster_of_an_older_version_gains_the_roles_on_start(tmp_path):
    """A .quarters made before the roles existed: everything owned by the superuser. `quarters
    db start` creates the owner and runtime roles and hands the schema over."""
    home = Path(tempfile.mkdtemp(prefix="quarters-old-"))
    os.chmod(home, 0o755)
    cluster = Cluster(home=home / "q", port=free_port())
    try:
        cluster.start()
        with psycopg.connect(cluster.conninfo(role="admin"), autocommit=True) as admin:
            # back to the old state: no extra roles, the superuser owns the database
            admin.execute("ALTER DATABASE quarters OWNER TO quarters")
            admin.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public "
                          f"REVOKE ALL ON TABLES FROM {APP_ROLE}")
            admin.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public "
                          f"REVOKE ALL ON SEQUENCES FROM {APP_ROLE}")
            admin.execute(f"DROP OWNED BY {APP_ROLE}, {OWNER_ROLE}")
            admin.execute(f"DROP ROLE {APP_ROLE}")
            admin.execute(f"DROP ROLE {OWNER_ROLE}")
        for role in ("owner", "app"):
            cluster.role_password_file(role).unlink()
        old = create_engine(cluster.url("admin"), plugins=["geoalchemy2"])
        upgrade(old)  # as the old version did: tables owned by the superuser
        with old.connect() as c:
            assert c.execute(text("SELECT tableowner FROM pg_tables "
                                  "WHERE tablename = 'measures'")).scalar() == "quarters"
        old.dispose()
        cluster.stop()

        env = {k: v for k, v in os.environ.items() if k != "QUARTERS_DATABASE_URL"}
        env.update(QUARTERS_HOME=str(cluster.home), QUARTERS_DB_PORT=str(cluster.port))
        started = subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()",
                                  "db", "start"], capture_output=True, text=True, timeout=180,
                                 env=env)
        assert started.returncode == 0, started.stderr
        assert oct(cluster.role_password_file("app").stat().st_mode & 0o777) == "0o600"
        with psycopg.connect(cluster.conninfo(role="app")) as app:
            assert app.execute("SELECT count(*) FROM measures").fetchone()[0] >= 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute("DELETE FROM measure_history")
        with psycopg.connect(cluster.conninfo(role="owner")) as owner:
            owners = {r[0] for r in owner.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'spatial_ref_sys'").fetchall()}
            assert owners == {OWNER_ROLE}
            owner.execute("ALTER TABLE measures ADD COLUMN later integer")  # migrations still can
            owner.rollback()
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_the_compose_init_script_sets_up_the_same_roles(cluster, engine):
    """docker/db-init/20-quarters-roles.sh, run by psql as the PostGIS image would, on a fresh
    database of the test cluster: migrations as the owner, the runtime role limited."""
    import yaml

    from quarters.embedded import find_bindir

    root = Path(__file__).resolve().parents[1]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    api_env = compose["services"]["api"]["environment"]
    assert api_env["QUARTERS_DATABASE_URL"].startswith(f"postgresql://{OWNER_ROLE}:")
    assert api_env["QUARTERS_APP_DATABASE_URL"].startswith(f"postgresql://{APP_ROLE}:")
    assert compose["services"]["db"]["environment"]["POSTGRES_USER"] == "postgres"

    dbname = "compose_check"
    with psycopg.connect(cluster.conninfo("postgres", role="admin"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {dbname}")
        admin.execute(f"CREATE DATABASE {dbname}")
    with psycopg.connect(cluster.conninfo(dbname, role="admin"), autocommit=True) as admin:
        admin.execute("CREATE EXTENSION postgis")  # what the image's own init script does
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(cluster.port),
           "PGPASSWORD": cluster.password_file.read_text().strip(),
           "POSTGRES_USER": "quarters", "POSTGRES_DB": dbname,
           "QUARTERS_OWNER_PASSWORD": cluster.role_password_file("owner").read_text().strip(),
           "QUARTERS_APP_PASSWORD": cluster.role_password_file("app").read_text().strip(),
           "PATH": f"{find_bindir()}:{os.environ['PATH']}"}
    script = root / "docker" / "db-init" / "20-quarters-roles.sh"
    try:
        for _ in range(2):  # idempotent
            done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, done.stderr
        owner = create_engine(cluster.url("owner").rsplit("/", 1)[0] + f"/{dbname}",
                              plugins=["geoalchemy2"])
        upgrade(owner)
        owner.dispose()
        with psycopg.connect(cluster.conninfo(dbname, role="app")) as app:
            assert app.execute("SELECT count(*) FROM measure_history").fetchone() == (0,)
            for statement in ("DELETE FROM measure_history", "CREATE TABLE sneaky (x int)",
                              "ALTER TABLE measure_history DISABLE TRIGGER ALL"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(statement)
                app.rollback()
            app.execute("INSERT INTO login_throttle VALUES ('client:x', 1, now(), NULL)")
            app.rollback()
    finally:
        with psycopg.connect(cluster.conninfo("postgres", role="admin"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
