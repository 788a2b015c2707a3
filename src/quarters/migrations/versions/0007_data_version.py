"""data version: one row every write bumps (ETag/Last-Modified of reads), figure helpers

Revision ID: 0007
Revises: 0004

A statement trigger on every published table increments ``data_version`` in the writing
transaction, so readers see the new version exactly when they see the new data. The trigger
runs BEFORE the statement, so a writer takes the version row's lock before any row lock of
the tables it guards (no lock-order deadlock between two writers of those tables).

``quarters_ref_date`` turns the reference dates of indicator values ('2020', '2019-03',
'2019-12-31') into dates (a year or month means its last day / first day); ``quarters_figure``
and ``quarters_figure_date`` give the newest value of an indicator for one unit.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("measures", "measure_editions", "municipalities", "counties", "districts", "quarters",
          "sites", "sources", "indicator_values", "ideas", "editions")


def upgrade() -> None:
    op.execute("""
    CREATE TABLE data_version (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        version bigint NOT NULL,
        changed_at timestamptz NOT NULL
    );
    INSERT INTO data_version VALUES (true, 1, now());
    CREATE FUNCTION data_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE data_version SET version = version + 1, changed_at = now();
        RETURN NULL;
    END $$;

    CREATE FUNCTION quarters_ref_date(raw text) RETURNS date LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN raw ~ '^\\d{4}$' THEN (raw || '-12-31')::date
                    WHEN raw ~ '^\\d{4}-\\d{2}$' THEN (raw || '-01')::date
                    WHEN raw ~ '^\\d{4}-\\d{2}-\\d{2}$' THEN raw::date END
    $$;
    CREATE FUNCTION quarters_figure(ind text, lvl text, code text) RETURNS double precision
    LANGUAGE sql STABLE AS $$
        SELECT v.value FROM indicator_values v
        WHERE v.indicator = ind AND v.level = lvl AND v.unit_code = code
        ORDER BY quarters_ref_date(v.ref_date) DESC NULLS LAST LIMIT 1
    $$;
    CREATE FUNCTION quarters_figure_date(ind text, lvl text, code text) RETURNS date
    LANGUAGE sql STABLE AS $$
        SELECT max(quarters_ref_date(v.ref_date)) FROM indicator_values v
        WHERE v.indicator = ind AND v.level = lvl AND v.unit_code = code
    $$;
    """)
    for table in TABLES:
        op.execute(f"CREATE TRIGGER {table}_data_version BEFORE INSERT OR UPDATE OR DELETE "
                   f"OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION data_version_bump()")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_data_version ON {table}")
    op.execute("""
    DROP FUNCTION quarters_figure_date(text, text, text);
    DROP FUNCTION quarters_figure(text, text, text);
    DROP FUNCTION quarters_ref_date(text);
    DROP FUNCTION data_version_bump();
    DROP TABLE data_version;
    """)
