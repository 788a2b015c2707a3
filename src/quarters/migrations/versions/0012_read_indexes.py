"""read path: boundaries stored in EPSG:4326 too, indexes on what the OGC API filters by

Revision ID: 0012
Revises: 0011

Every boundary table the OGC API reads (municipalities, counties, districts, quarters, sites)
gets ``geom_wgs84``, a stored generated column (what the API sends: CRS84, exterior rings
counter-clockwise, as ``measures.geom_wgs84`` since 0003). PostgreSQL keeps it in step with
``geom`` on every INSERT and UPDATE, so pages neither reproject per request nor can show a
stale outline. A GiST index on each ``geom_wgs84`` (and on ``measures.geom_wgs84``) lets a
CRS84 ``bbox`` be tested where it is defined, without reprojecting the box.

On the published measures (partial indexes ``WHERE published AND deleted_at IS NULL``, the
rows of ``measures_public``), B-tree indexes on what the queryables filter and sort by:
``(action_field, budget_planned)``, ``(status, budget_planned)``, ``budget_planned`` and
``start_date``. A filtered page's numberMatched is counted from them (an index-only scan)
instead of from the rows. Not indexed: ``city_ags`` (two cities, a scan is cheaper) and
``end_date`` (the temporal test is ``end IS NULL OR end >= …``); ``quarter``/``district`` have
GIN indexes since 0003.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BOUNDARIES = ("municipalities", "counties", "districts", "quarters", "sites")
PUBLIC = "WHERE published AND deleted_at IS NULL"
MEASURE_INDEXES = {
    "measures_public_action_field_idx": "(action_field, budget_planned)",
    "measures_public_status_idx": "(status, budget_planned)",
    "measures_public_budget_idx": "(budget_planned)",
    "measures_public_start_idx": "(start_date)",
}


def upgrade() -> None:
    for table in BOUNDARIES:
        op.execute(f"""
        ALTER TABLE {table} ADD COLUMN geom_wgs84 geometry(MultiPolygon, 4326)
            GENERATED ALWAYS AS (ST_ForcePolygonCCW(ST_Transform(geom, 4326))) STORED;
        CREATE INDEX {table}_geom_wgs84_idx ON {table} USING gist (geom_wgs84);
        """)
    op.execute("CREATE INDEX measures_geom_wgs84_idx ON measures USING gist (geom_wgs84)")
    for name, columns in MEASURE_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON measures {columns} {PUBLIC}")


def downgrade() -> None:
    for name in MEASURE_INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute("DROP INDEX measures_geom_wgs84_idx")
    for table in BOUNDARIES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN geom_wgs84")  # drops its index too
