"""transfer profile of a measure: ``measures.transfer`` (jsonb) and ``measures.origin_id``

Revision ID: 0010
Revises: 0007

``transfer`` holds the measure's transfer profile (preconditions over analysis indicators,
follow-up costs, notes, per-district status); ``origin_id`` links a measure created by a
one-step transfer to the measure it was transferred from. Both views are re-created with the
new columns appended (``measures_current`` is ``SELECT *``, expanded when it was created).
"""

from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None

PUBLIC_COLUMNS = """id, slug, city_ags, title, summary, description, plain_summary, action_field,
               status, start_date, end_date, milestones, budget_planned, budget_spent,
               funding_line, responsible_unit, partners, parent_id, links, source, licence,
               location_precision, location_note, geom, geom_wgs84, quarter_ids, quarter_slugs,
               district_ids,
               published_at, updated_at, version, search"""


def upgrade() -> None:
    op.execute(f"""
    ALTER TABLE measures
        ADD COLUMN transfer jsonb CHECK (transfer IS NULL OR jsonb_typeof(transfer) = 'object'),
        ADD COLUMN origin_id integer REFERENCES measures(id),
        ADD CONSTRAINT measures_not_own_origin CHECK (origin_id IS NULL OR origin_id <> id);
    CREATE INDEX measures_origin_idx ON measures (origin_id) WHERE origin_id IS NOT NULL;
    CREATE OR REPLACE VIEW measures_public AS
        SELECT {PUBLIC_COLUMNS}, transfer, origin_id
        FROM measures
        WHERE published AND deleted_at IS NULL;
    CREATE OR REPLACE VIEW measures_current AS SELECT * FROM measures WHERE deleted_at IS NULL;
    """)


def downgrade() -> None:
    # ideas_public reads measures_public: keep its definition, drop both, re-create both.
    op.execute(f"""
    DO $$
    DECLARE ideas_def text := pg_get_viewdef('ideas_public'::regclass);
    BEGIN
        DROP VIEW measures_current;
        DROP VIEW ideas_public;
        DROP VIEW measures_public;
        CREATE VIEW measures_public AS SELECT {PUBLIC_COLUMNS}
            FROM measures WHERE published AND deleted_at IS NULL;
        EXECUTE 'CREATE VIEW ideas_public AS ' || ideas_def;
    END $$;
    DROP INDEX measures_origin_idx;
    ALTER TABLE measures DROP CONSTRAINT measures_not_own_origin, DROP COLUMN origin_id,
        DROP COLUMN transfer;
    CREATE VIEW measures_current AS SELECT * FROM measures WHERE deleted_at IS NULL;
    """)
