"""statistical units: units of a level known by code and name only, without an outline

Revision ID: 0011
Revises: 0007

Some cities publish figures for statistical districts whose outlines are not available (Gera's
12 statistical districts: population 1997 and 2011, no geometry). Their units live here, keyed
like districts by (city, level, code), so indicator values of such a level have units with
names and a source. A level is either a district level (with outlines, table ``districts``) or
a level of this table, never both; the loaders keep it so. ``outline_note`` says where
outlines would come from.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE statistical_units (
        id serial PRIMARY KEY,
        city_ags varchar(8) NOT NULL REFERENCES municipalities (ags),
        level varchar(40) NOT NULL,
        code varchar(40) NOT NULL,
        name text NOT NULL,
        parent_name text,
        attributes jsonb NOT NULL DEFAULT '{}',
        outline_note text,
        source_id integer NOT NULL REFERENCES sources (id),
        CONSTRAINT statistical_units_city_level_code UNIQUE (city_ags, level, code)
    );
    CREATE TRIGGER statistical_units_data_version BEFORE INSERT OR UPDATE OR DELETE
        OR TRUNCATE ON statistical_units FOR EACH STATEMENT EXECUTE FUNCTION data_version_bump();
    """)


def downgrade() -> None:
    op.execute("DROP TABLE statistical_units")
