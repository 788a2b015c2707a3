"""ideas: citizens' ideas (Projektaufruf) with moderation, and the public view of them

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATES = "('eingereicht', 'angenommen', 'abgelehnt', 'verknuepft')"


def upgrade() -> None:
    op.execute(f"""
    CREATE TABLE ideas (
        id serial PRIMARY KEY,
        city_ags varchar(8) NOT NULL REFERENCES municipalities(ags),
        title text NOT NULL CHECK (length(title) BETWEEN 3 AND 120),
        text text NOT NULL CHECK (length(text) BETWEEN 10 AND 4000),
        action_field text NOT NULL,
        contact text CHECK (contact IS NULL OR length(contact) <= 200),
        geom geometry(Point, 25832) NOT NULL CHECK (ST_IsValid(geom)),
        state text NOT NULL DEFAULT 'eingereicht' CHECK (state IN {STATES}),
        public_reason text CHECK (public_reason IS NULL OR length(public_reason) <= 2000),
        measure_id integer REFERENCES measures(id),
        client_hash char(64) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        moderated_at timestamptz,
        moderated_by integer REFERENCES users(id),
        CONSTRAINT ideas_rejected_has_reason CHECK (state <> 'abgelehnt' OR public_reason IS NOT NULL),
        CONSTRAINT ideas_linked_has_measure CHECK (state <> 'verknuepft' OR measure_id IS NOT NULL)
    );
    CREATE INDEX ideas_geom_idx ON ideas USING gist (geom);
    CREATE INDEX ideas_client_idx ON ideas (client_hash, created_at);

    -- The public sees moderated ideas only, never the contact or the client hash.
    CREATE VIEW ideas_public AS
        SELECT i.id, i.city_ags, i.title, i.text, i.action_field, i.geom, i.state,
               i.public_reason, i.created_at, i.moderated_at,
               CASE WHEN m.id IS NOT NULL THEN i.measure_id END AS measure_id
        FROM ideas i LEFT JOIN measures_public m ON m.id = i.measure_id
        WHERE i.state <> 'eingereicht';
    """)


def downgrade() -> None:
    op.execute("DROP VIEW ideas_public; DROP TABLE ideas;")
