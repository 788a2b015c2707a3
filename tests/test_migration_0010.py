"""Migration 0010 (transfer profile) downgrades and upgrades again, inside a rolled-back
transaction of the test database (PostgreSQL DDL is transactional)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

import quarters

PATH = Path(quarters.__file__).parent / "migrations" / "versions" / "0010_transfer_profile.py"


def columns(conn, relation: str) -> set[str]:
    return set(conn.execute(text(
        "SELECT column_name FROM information_schema.columns WHERE table_name = :t"),
        {"t": relation}).scalars())


def test_down_and_up_again(conn):
    spec = importlib.util.spec_from_file_location("m0010", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ideas_before = conn.execute(text("SELECT count(*) FROM ideas_public")).scalar_one()
    with Operations.context(MigrationContext.configure(conn)):
        module.downgrade()
        for relation in ("measures", "measures_public", "measures_current"):
            assert not {"transfer", "origin_id"} & columns(conn, relation), relation
        assert conn.execute(text("SELECT count(*) FROM ideas_public")).scalar_one() == ideas_before
        module.upgrade()
    for relation in ("measures", "measures_public", "measures_current"):
        assert {"transfer", "origin_id"} <= columns(conn, relation), relation
