"""The embedded PostgreSQL + PostGIS cluster that quarters runs for itself.

PostgreSQL refuses to run as root, so when quarters runs as root the cluster runs as the
unprivileged ``postgres`` account (created by Debian's package), which owns the data directory.

Three roles, each with a generated password in a file of mode 0600 beside the data directory:
``quarters`` (the cluster's superuser: creates the database, PostGIS and the other roles),
``quarters_owner`` (owns the schema: migrations and data loads) and ``quarters_app`` (what the
API connects as: reads, the app's writes, history append-only, no DDL). ``start`` creates the
roles that are missing, so a cluster made by an older version gains them on its next start.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from quarters.errors import DatabaseUnavailable, SetupError

DEBIAN_PACKAGES = "postgresql-15-postgis-3"
DB_NAME = "quarters"
DB_USER = "quarters"  # the cluster's superuser (initdb's bootstrap role)
OWNER_ROLE = "quarters_owner"
APP_ROLE = "quarters_app"
ROLE_NAMES = {"admin": DB_USER, "owner": OWNER_ROLE, "app": APP_ROLE}
_LIMITED = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_parallel_workers_per_gather": "0",  # parallel workers slow small spatial queries
    "jit": "off",  # JIT compiling costs hundreds of ms on the small queries a map makes
    "shared_buffers": "256MB",
    "max_connections": "100",
    "fsync": "on",
}


def find_bindir() -> Path:
    """Return the bin directory of the newest PostgreSQL that has PostGIS installed."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    for pg_ctl in candidates:
        version = pg_ctl.parent.parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists():
            return pg_ctl.parent
    raise SetupError(code="setup.no_postgis", params={"packages": DEBIAN_PACKAGES})


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster living in ``home`` and listening on 127.0.0.1:``port``."""

    home: Path
    port: int

    @property
    def pgdata(self) -> Path:
        """Data directory of the cluster."""
        return self.home / "pgdata"

    @property
    def rundir(self) -> Path:
        """Directory for the Unix socket and lock file."""
        return self.home / "run"

    @property
    def logfile(self) -> Path:
        """Server log."""
        return self.home / "postgres.log"

    @property
    def password_file(self) -> Path:
        """File holding the generated password of the ``quarters`` role (mode 0600)."""
        return self.home / "db.password"

    def role_password_file(self, role: str) -> Path:
        """Password file of ``admin`` (db.password), ``owner`` or ``app`` (mode 0600)."""
        return self.password_file if role == "admin" else self.home / f"db-{role}.password"

    def url(self, role: str = "owner") -> str:
        """SQLAlchemy URL of the cluster's quarters database as ``owner``, ``app`` or ``admin``."""
        password = self.role_password_file(role).read_text().strip()
        return (f"postgresql+psycopg://{ROLE_NAMES[role]}:{password}@127.0.0.1:{self.port}"
                f"/{DB_NAME}")

    def conninfo(self, dbname: str = DB_NAME, role: str = "admin") -> str:
        """libpq connection string (for psycopg)."""
        password = self.role_password_file(role).read_text().strip()
        return (f"host=127.0.0.1 port={self.port} user={ROLE_NAMES[role]} password={password} "
                f"dbname={dbname}")

    # -- lifecycle -----------------------------------------------------------------------
    def initialised(self) -> bool:
        """True when initdb has run."""
        return (self.pgdata / "PG_VERSION").exists()

    def running(self) -> bool:
        """True when the server answers pg_ctl status."""
        if not self.initialised():
            return False
        result = self._pg("pg_ctl", "-D", str(self.pgdata), "status", check=False)
        return result.returncode == 0

    def init(self) -> None:
        """Create the data directory with initdb (scram auth, generated password)."""
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o755)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            os.chmod(self.password_file, 0o600)
        for d in (self.pgdata, self.rundir):
            d.mkdir(exist_ok=True)
            os.chmod(d, 0o700)
            _chown_to_server_user(d)
        pwfile = self.rundir / "initdb.pw"
        pwfile.write_text(self.password_file.read_text())
        _chown_to_server_user(pwfile)
        try:
            self._pg(
                "initdb", "-D", str(self.pgdata), "-U", DB_USER, "--pwfile", str(pwfile),
                "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                "--encoding=UTF8", "--locale=C.UTF-8",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = "\n".join(f"{k} = {v}" for k, v in SERVER_SETTINGS.items())
        with open(self.pgdata / "postgresql.conf", "a") as fh:
            fh.write(f"\n# quarters\n{conf}\n")

    def start(self, timeout: int = 60) -> None:
        """Start the server (initialising it first when needed) and create the database."""
        if not self.initialised():
            self.init()
        if not self.running():
            self.logfile.touch()
            _chown_to_server_user(self.logfile)
            options = f"-p {self.port} -k {self.rundir}"
            result = self._pg(
                "pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile), "-o", options,
                "-w", "-t", str(timeout), "start", check=False,
            )
            if result.returncode != 0:
                tail = self.logfile.read_text()[-1500:]
                raise DatabaseUnavailable(code="setup.embedded_start", params={
                    "port": self.port, "reason": f"{result.stderr.strip()} {tail}"})
        self._ensure_database()

    def stop(self) -> None:
        """Stop the server (fast shutdown)."""
        if self.running():
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------
    def _ensure_database(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f"CREATE DATABASE {DB_NAME}")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            self._ensure_roles(conn)

    def _ensure_roles(self, conn: psycopg.Connection) -> None:
        """Create the owner and runtime roles (idempotent); hand the schema to the owner."""
        for role in ("owner", "app"):
            pwfile = self.role_password_file(role)
            if not pwfile.exists():
                pwfile.write_text(secrets.token_urlsafe(24) + "\n")
                os.chmod(pwfile, 0o600)
            name = ROLE_NAMES[role]
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
                conn.execute(f"CREATE ROLE {name} {_LIMITED}")
            conn.execute(f"ALTER ROLE {name} {_LIMITED} PASSWORD "
                         f"{_literal(pwfile.read_text().strip())}")
        for statement in role_setup_sql(DB_NAME, OWNER_ROLE, APP_ROLE, from_role=DB_USER):
            conn.execute(statement)

    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(find_bindir() / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", _server_user(), "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if check and result.returncode != 0:
            raise SetupError(code="setup.tool_failed", params={
                "tool": tool, "reason": result.stderr.strip() or result.stdout.strip()})
        return result


def role_setup_sql(dbname: str, owner: str, app: str, *, from_role: str | None = None) -> list[str]:
    """What a superuser runs once the roles exist (also docker/db-init/20-quarters-roles.sh):
    the owner owns the database and its objects, the runtime role may connect and use the
    schema; tables that later migrations create get the runtime grants by default (the exact
    grants are set after every upgrade, quarters.migrate.apply_grants)."""
    statements = [
        f"ALTER DATABASE {dbname} OWNER TO {owner}",
        f"REVOKE ALL ON DATABASE {dbname} FROM PUBLIC",
        f"GRANT CONNECT, TEMPORARY ON DATABASE {dbname} TO {app}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    ]
    if from_role:  # a cluster of an older version: its objects belong to the superuser
        statements.append(_HAND_OVER.format(old=from_role, new=owner))
    return statements


# Tables, views, sequences and functions of the schema (not PostGIS' own) go to the owner.
_HAND_OVER = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
               AND pg_get_userbyid(c.relowner) = '{old}'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype = 'e')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO {new}',
                       CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.obj);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS obj FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace
               AND pg_get_userbyid(p.proowner) = '{old}'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                               AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO {new}', r.obj);
    END LOOP;
END $$"""


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _server_user() -> str:
    """The account that runs the server when quarters itself runs as root."""
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise SetupError(code="setup.no_postgres_account",
                         params={"packages": DEBIAN_PACKAGES}) from exc
    return "postgres"


def _chown_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(_server_user())
        os.chown(path, entry.pw_uid, entry.pw_gid)
