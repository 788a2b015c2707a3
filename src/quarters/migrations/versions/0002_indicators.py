"""indicators: indicator definitions and their values per spatial unit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

``indicators`` defines what an indicator is (unit, kind, how it aggregates to a quarter
profile); ``indicator_values`` holds one value per (indicator, level, unit_code, ref_date).
A NULL value is an explicitly missing value and must carry a ``missing_reason``.
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

KINDS = ("count", "rate", "share", "amount", "class")
AGGREGATIONS = ("sum", "ratio", "mean", "none")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        'indicators',
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('name_de', sa.Text(), nullable=False),
        sa.Column('name_en', sa.Text(), nullable=True),
        sa.Column('unit', sa.Text(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('aggregation', sa.String(length=20), nullable=False),
        sa.Column('numerator', sa.String(length=80), nullable=True),
        sa.Column('denominator', sa.String(length=80), nullable=True),
        sa.Column('scale', sa.Float(), server_default='1', nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('source_id', sa.Integer(), nullable=True),
        sa.CheckConstraint(_in('kind', KINDS), name='indicators_kind'),
        sa.CheckConstraint(_in('aggregation', AGGREGATIONS), name='indicators_aggregation'),
        sa.CheckConstraint(
            "aggregation <> 'ratio' OR (numerator IS NOT NULL AND denominator IS NOT NULL)",
            name='indicators_ratio_parts'),
        sa.ForeignKeyConstraint(['numerator'], ['indicators.key'], ),
        sa.ForeignKeyConstraint(['denominator'], ['indicators.key'], ),
        sa.ForeignKeyConstraint(['source_id'], ['sources.id'], ),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_table(
        'indicator_values',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('indicator', sa.String(length=80), nullable=False),
        sa.Column('level', sa.String(length=40), nullable=False),
        sa.Column('unit_code', sa.String(length=40), nullable=False),
        sa.Column('ref_date', sa.String(length=10), nullable=False),
        sa.Column('value', sa.Double(), nullable=True),
        sa.Column('missing_reason', sa.Text(), nullable=True),
        sa.Column('derivation', sa.Text(), nullable=True),
        sa.Column('source_id', sa.Integer(), nullable=False),
        sa.Column('loaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.CheckConstraint('value IS NOT NULL OR missing_reason IS NOT NULL',
                           name='indicator_values_missing_has_reason'),
        sa.CheckConstraint("value IS NULL OR value <> 'NaN'::float8",
                           name='indicator_values_not_nan'),
        sa.ForeignKeyConstraint(['indicator'], ['indicators.key'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['source_id'], ['sources.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('indicator', 'level', 'unit_code', 'ref_date',
                            name='indicator_values_key'),
    )
    op.create_index('idx_indicator_values_level', 'indicator_values',
                    ['level', 'indicator'], unique=False)


def downgrade() -> None:
    op.drop_index('idx_indicator_values_level', table_name='indicator_values')
    op.drop_table('indicator_values')
    op.drop_table('indicators')
