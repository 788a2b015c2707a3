"""login throttle and session idle time: failed sign-ins counted per account and per client
(shared by every worker), the last time a session was seen

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE login_throttle (
        key text PRIMARY KEY CHECK (key ~ '^(account|client):'),
        failures integer NOT NULL CHECK (failures > 0),
        last_failure_at timestamptz NOT NULL,
        locked_until timestamptz
    );
    ALTER TABLE sessions ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();
    CREATE INDEX sessions_user_idx ON sessions (user_id);
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX sessions_user_idx;
    ALTER TABLE sessions DROP COLUMN last_seen_at;
    DROP TABLE login_throttle;
    """)
