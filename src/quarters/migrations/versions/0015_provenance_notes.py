"""indicator values: derivation and missing_reason as notes (jsonb), no longer English prose

Revision ID: 0015
Revises: 0014

``indicator_values.derivation`` and ``missing_reason`` become jsonb. The loaders store a note
``{"code": …, "params": {…}}`` that readers write out in their language from the catalogue
(``warning.deriv.*``, ``warning.missing.*``); free text (a reason from a user's CSV file) is
stored as ``{"text": …}``. The text of rows written by older versions is kept as such free text
(``quarters data load`` rewrites the loaded values with codes); the JSON text of a note (what
a downgrade leaves) becomes the note again. See
:mod:`quarters.indicators.provenance`.
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

COLUMNS = ("missing_reason", "derivation")
# what downgrade() leaves of a note: its jsonb text (read as JSON again on the way up)
NOTE_TEXT = r"""^\{"code": "[a-z0-9_.]+", "params": \{.*\}\}$|^\{"text": ".*"\}$"""


def upgrade() -> None:
    op.execute("ALTER TABLE indicator_values " + ", ".join(
        f"ALTER COLUMN {c} TYPE jsonb USING CASE WHEN {c} IS NULL THEN NULL "
        f"WHEN {c} ~ '{NOTE_TEXT}' THEN {c}::jsonb "
        f"ELSE jsonb_build_object('text', {c}) END" for c in COLUMNS))


def downgrade() -> None:
    # free text back as it was; a note as its JSON text
    op.execute("ALTER TABLE indicator_values " + ", ".join(
        f"ALTER COLUMN {c} TYPE text USING COALESCE({c} ->> 'text', {c}::text)" for c in COLUMNS))
