"""models.py declares the schema the migrations build: Alembic's autogenerate comparison finds
no difference, and every CHECK constraint of the models (built from quarters.vocabulary)
reads exactly as the migrated database's."""

from __future__ import annotations

import pprint

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, MetaData, text

from quarters.models import NOT_IN_MODELS, Base, include_object


def test_autogenerate_finds_no_difference_between_the_migrations_and_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "compare_server_default": True,
            "include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], pprint.pformat(diff)


def test_the_comparison_sees_an_undeclared_table(engine):
    """Control: without the declarations (models.py of before) autogenerate would propose
    dropping the tables, so the test above is not blind."""
    partial = MetaData()
    for name in ("sources", "municipalities"):
        Base.metadata.tables[name].to_metadata(partial)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        dropped = {d[1].name for d in compare_metadata(context, partial) if d[0] == "remove_table"}
    assert {"measures", "ideas", "users", "login_throttle"} <= dropped


def test_every_table_of_the_database_is_declared(engine):
    with engine.connect() as conn:
        tables = set(conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
        views = set(conn.execute(text(
            "SELECT viewname FROM pg_views WHERE schemaname = 'public'")).scalars())
    assert tables - {"alembic_version", "spatial_ref_sys"} == set(Base.metadata.tables)
    # views live in the migrations only: the named list says which
    assert views - {"geography_columns", "geometry_columns"} == set(NOT_IN_MODELS["view"])


def test_every_check_constraint_reads_as_the_database_s(engine):
    """The model's CHECK, added to a copy of the table, gives the same definition as the
    migrated table's constraint of that name (PostgreSQL normalises both)."""
    wrong, names = [], {}
    with engine.connect() as conn, conn.begin():
        for table in Base.metadata.sorted_tables:
            database = dict(conn.execute(text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:t AS regclass) AND contype = 'c'"), {"t": table.name}).all())
            checks = [c for c in table.constraints if isinstance(c, CheckConstraint)]
            names[table.name] = (sorted(database), sorted(str(c.name) for c in checks))
            probe = f"probe_{table.name}"
            conn.execute(text(f"CREATE TEMP TABLE {probe} (LIKE {table.name})"))
            for check in checks:
                conn.execute(text(f"ALTER TABLE {probe} ADD CONSTRAINT {check.name} "
                                  f"CHECK ({check.sqltext}) NOT VALID"))
                ours = conn.execute(text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = CAST(:t AS regclass) AND conname = :n"),
                    {"t": probe, "n": check.name}).scalar_one().removesuffix(" NOT VALID")
                if ours != database.get(check.name):
                    wrong.append((table.name, check.name, ours, database.get(check.name)))
        conn.rollback()
    assert wrong == [], pprint.pformat(wrong)
    assert all(db == ours for db, ours in names.values()), pprint.pformat(
        {t: n for t, n in names.items() if n[0] != n[1]})
