"""people: seed keys (a restart never re-adds or rewrites), hidden ideas and rejected texts,
an atomic idea quota, workshop codes

Revision ID: 0006
Revises: 0004
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATES = "('eingereicht', 'angenommen', 'abgelehnt', 'verknuepft', 'verborgen')"
OLD_STATES = "('eingereicht', 'angenommen', 'abgelehnt', 'verknuepft')"


def upgrade() -> None:
    op.execute(f"""
    -- What `quarters data load` has ever inserted: it inserts a seed record only once, so a
    -- record a person changed or deleted (soft or hard) is never rewritten or brought back.
    CREATE TABLE seed_keys (
        kind text NOT NULL,
        key text NOT NULL,
        seeded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (kind, key)
    );
    INSERT INTO seed_keys (kind, key) SELECT 'measure', slug FROM measures WHERE slug IS NOT NULL;
    INSERT INTO seed_keys (kind, key) SELECT 'edition', key FROM editions;

    -- A workshop code lets many people on one address submit ideas for a few hours; the
    -- code, not the address, is limited.
    CREATE TABLE workshop_codes (
        id serial PRIMARY KEY,
        code varchar(40) NOT NULL UNIQUE,
        label text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
        max_ideas integer NOT NULL CHECK (max_ideas BETWEEN 1 AND 10000),
        created_by integer REFERENCES users(id),
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        CONSTRAINT workshop_codes_window CHECK (expires_at > created_at)
    );

    -- One counter row per client hash or workshop code, updated atomically with the insert.
    CREATE TABLE idea_quota (
        key text PRIMARY KEY,
        window_start timestamptz NOT NULL,
        used integer NOT NULL
    );

    ALTER TABLE ideas DROP CONSTRAINT ideas_state_check;
    ALTER TABLE ideas ADD CONSTRAINT ideas_state_check CHECK (state IN {STATES});
    ALTER TABLE ideas
        ADD COLUMN staff_reason text CHECK (staff_reason IS NULL OR length(staff_reason) <= 2000),
        ADD COLUMN text_public boolean NOT NULL DEFAULT false,
        ADD COLUMN workshop_code_id integer REFERENCES workshop_codes(id),
        ADD CONSTRAINT ideas_hidden_has_reason
            CHECK (state <> 'verborgen' OR staff_reason IS NOT NULL);

    -- The public never sees hidden ideas, nor the text of a rejected one unless the
    -- moderator chose to publish it.
    DROP VIEW ideas_public;
    CREATE VIEW ideas_public AS
        SELECT i.id, i.city_ags, i.title,
               CASE WHEN i.state <> 'abgelehnt' OR i.text_public THEN i.text END AS text,
               i.action_field, i.geom, i.state,
               i.public_reason, i.created_at, i.moderated_at,
               CASE WHEN m.id IS NOT NULL THEN i.measure_id END AS measure_id
        FROM ideas i LEFT JOIN measures_public m ON m.id = i.measure_id
        WHERE i.state NOT IN ('eingereicht', 'verborgen');
    """)


def downgrade() -> None:
    op.execute(f"""
    DROP VIEW ideas_public;
    UPDATE ideas SET state = 'eingereicht' WHERE state = 'verborgen';
    ALTER TABLE ideas DROP CONSTRAINT ideas_hidden_has_reason;
    ALTER TABLE ideas DROP COLUMN staff_reason, DROP COLUMN text_public,
        DROP COLUMN workshop_code_id;
    ALTER TABLE ideas DROP CONSTRAINT ideas_state_check;
    ALTER TABLE ideas ADD CONSTRAINT ideas_state_check CHECK (state IN {OLD_STATES});
    CREATE VIEW ideas_public AS
        SELECT i.id, i.city_ags, i.title, i.text, i.action_field, i.geom, i.state,
               i.public_reason, i.created_at, i.moderated_at,
               CASE WHEN m.id IS NOT NULL THEN i.measure_id END AS measure_id
        FROM ideas i LEFT JOIN measures_public m ON m.id = i.measure_id
        WHERE i.state <> 'eingereicht';
    DROP TABLE idea_quota;
    DROP TABLE workshop_codes;
    DROP TABLE seed_keys;
    """)
