"""data version: every bump also sends NOTIFY quarters_data_version (payload: the new version)

Revision ID: 0014
Revises: 0012

The API workers keep the data version in memory (quarters.api.dataversion) instead of reading
it on every request; a notification tells them of writes that did not go through their own
host (the CLI, another container, psql). PostgreSQL delivers it when the writing transaction
commits, never for a rolled-back one.
"""

from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None

CHANNEL = "quarters_data_version"


def upgrade() -> None:
    op.execute(f"""
    CREATE OR REPLACE FUNCTION data_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bumped bigint;
    BEGIN
        UPDATE data_version SET version = version + 1, changed_at = now()
        RETURNING version INTO bumped;
        PERFORM pg_notify('{CHANNEL}', bumped::text);
        RETURN NULL;
    END $$;
    """)


def downgrade() -> None:
    op.execute("""
    CREATE OR REPLACE FUNCTION data_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE data_version SET version = version + 1, changed_at = now();
        RETURN NULL;
    END $$;
    """)
