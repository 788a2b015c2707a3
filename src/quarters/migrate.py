"""Apply the Alembic migrations shipped inside the package."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

from quarters.embedded import APP_ROLE

MIGRATIONS = Path(__file__).parent / "migrations"
# What the API only reads: reference data that migrations and `quarters data load` write.
READ_ONLY = frozenset({"alembic_version", "sources", "municipalities", "counties", "districts",
                       "statistical_units", "quarters", "sites", "indicators",
                       "indicator_values"})
APPEND_ONLY_SUFFIX = "_history"  # history tables: the API may add rows, never change them
_REVISION = re.compile(r"""^(down_)?revision\s*=\s*(?:["']([^"']+)["']|None)""", re.MULTILINE)

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


MIGRATION_LOCK = 0x71756172  # advisory lock key of schema upgrades ("quar")


def upgrade(engine: Engine, revision: str = "head", app_role: str = APP_ROLE) -> None:
    """Upgrade the schema to ``revision`` in one transaction, then set the runtime role's
    grants (when that role exists). Upgrades of one database run one after the other (an
    advisory lock held to the commit): two commands started at once on a new database do
    not both create the schema; the second finds it at ``revision``."""
    from alembic import command

    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        apply_grants(conn, app_role)


def apply_grants(conn: Connection, app_role: str = APP_ROLE) -> bool:
    """Least privilege for the runtime role on every table of the schema, run after each
    upgrade (so tables of later migrations are covered): SELECT everywhere, the app's writes
    (INSERT, UPDATE, DELETE) on its own tables, INSERT only on history tables (``*_history``),
    nothing on reference data. Never TRUNCATE, REFERENCES, TRIGGER or DDL (the runtime role
    owns nothing). Returns False when the role does not exist (an external server without it)."""
    if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": app_role}).first():
        return False
    role = conn.execute(text("SELECT quote_ident(:r)"), {"r": app_role}).scalar_one()
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
    conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    rows = conn.execute(text("""
        SELECT c.relname, c.relkind, format('%I', c.relname) AS ident FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND pg_has_role(c.relowner, 'USAGE')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                          AND d.objid = c.oid AND d.deptype = 'e')""")).all()
    for name, kind, ident in rows:
        if kind in ("v", "m") or name in READ_ONLY:
            grant = "SELECT"
        elif name.endswith(APPEND_ONLY_SUFFIX):
            grant = "SELECT, INSERT"
        else:
            grant = "SELECT, INSERT, UPDATE, DELETE"
        conn.execute(text(f"REVOKE ALL ON {ident} FROM {role}"))
        conn.execute(text(f"GRANT {grant} ON {ident} TO {role}"))
    return True


def current(engine: Engine) -> str | None:
    """The schema revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest shipped revision, read from the migration files without importing Alembic
    (None when the files do not show exactly one head)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for down, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).add(value)
    heads = revisions - parents - {""}
    return heads.pop() if len(heads) == 1 else None


def at_head(engine: Engine) -> bool:
    """Whether the database is at the newest shipped revision (then nothing is to migrate;
    the grants were set by the upgrade that got it there)."""
    head = head_revision()
    if head is None:
        return False
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None:
            return False
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return found == [head]


def migrated(engine: Engine) -> Engine:
    """``engine`` after upgrading its database, unless it is at the newest revision already
    (the command line's start-up: no Alembic import when nothing is to do)."""
    if not at_head(engine):
        upgrade(engine)
    return engine
