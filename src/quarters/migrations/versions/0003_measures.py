"""measures: users and sessions, measures with history, editions, the published-only view

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATUSES = "('idee', 'geplant', 'in_umsetzung', 'abgeschlossen', 'eingestellt')"
PRECISIONS = "('exact', 'approximate', 'city', 'unknown')"
ROLES = "('admin', 'planner', 'moderator')"
GEOM_TYPES = ("('ST_Point', 'ST_LineString', 'ST_Polygon', 'ST_MultiPoint', "
              "'ST_MultiLineString', 'ST_MultiPolygon')")


def upgrade() -> None:
    op.execute(f"""
    CREATE TABLE users (
        id serial PRIMARY KEY,
        username varchar(80) NOT NULL UNIQUE,
        display_name text NOT NULL,
        role text NOT NULL CHECK (role IN {ROLES}),
        password_hash text NOT NULL,
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE sessions (
        token_hash char(64) PRIMARY KEY,
        user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf_token text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
    );
    CREATE TABLE editions (
        key varchar(40) PRIMARY KEY,
        city_ags varchar(8) NOT NULL REFERENCES municipalities(ags),
        title text NOT NULL,
        year integer NOT NULL,
        adopted_on date,
        frozen boolean NOT NULL DEFAULT false,
        note text
    );
    CREATE TABLE measures (
        id serial PRIMARY KEY,
        slug varchar(120) UNIQUE,
        city_ags varchar(8) NOT NULL REFERENCES municipalities(ags),
        title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
        summary text,
        description text,
        plain_summary text,
        action_field text NOT NULL,
        status text NOT NULL DEFAULT 'idee' CHECK (status IN {STATUSES}),
        start_date date,
        end_date date,
        milestones jsonb NOT NULL DEFAULT '[]',
        budget_planned numeric(14, 2) CHECK (budget_planned >= 0),
        budget_spent numeric(14, 2) CHECK (budget_spent >= 0),
        funding_line text,
        responsible_unit text,
        partners jsonb NOT NULL DEFAULT '[]',
        parent_id integer REFERENCES measures(id),
        links jsonb NOT NULL DEFAULT '[]',
        source text,
        licence text,
        location_precision text NOT NULL DEFAULT 'exact' CHECK (location_precision IN {PRECISIONS}),
        location_note text,
        geom geometry(Geometry, 25832) NOT NULL,
        -- what the API sends (RFC 7946: lon/lat, exterior rings counter-clockwise), kept
        -- with the row so reads do not reproject every feature
        geom_wgs84 geometry(Geometry, 4326) GENERATED ALWAYS AS
            (ST_ForcePolygonCCW(ST_Transform(geom, 4326))) STORED,
        quarter_ids integer[] NOT NULL DEFAULT '{{}}',
        quarter_slugs text[] NOT NULL DEFAULT '{{}}',
        district_ids integer[] NOT NULL DEFAULT '{{}}',
        published boolean NOT NULL DEFAULT false,
        published_at timestamptz,
        deleted_at timestamptz,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by integer REFERENCES users(id),
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by integer REFERENCES users(id),
        search tsvector GENERATED ALWAYS AS (to_tsvector('german',
            coalesce(title, '') || ' ' || coalesce(summary, '') || ' ' ||
            coalesce(description, ''))) STORED,
        CONSTRAINT measures_dates CHECK (end_date IS NULL OR start_date IS NULL
                                         OR end_date >= start_date),
        CONSTRAINT measures_geom_valid CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
        CONSTRAINT measures_geom_type CHECK (ST_GeometryType(geom) IN {GEOM_TYPES}),
        CONSTRAINT measures_not_own_parent CHECK (parent_id IS NULL OR parent_id <> id)
    );
    CREATE INDEX measures_geom_idx ON measures USING gist (geom);
    CREATE INDEX measures_search_idx ON measures USING gin (search);
    CREATE INDEX measures_quarters_idx ON measures USING gin (quarter_ids);
    CREATE INDEX measures_districts_idx ON measures USING gin (district_ids);
    CREATE INDEX measures_public_idx ON measures (id) WHERE published AND deleted_at IS NULL;

    CREATE TABLE measure_editions (
        measure_id integer NOT NULL REFERENCES measures(id) ON DELETE CASCADE,
        edition_key varchar(40) NOT NULL REFERENCES editions(key),
        snapshot jsonb NOT NULL,
        geom geometry(Geometry, 25832) NOT NULL,
        PRIMARY KEY (measure_id, edition_key)
    );

    CREATE TABLE measure_history (
        id bigserial PRIMARY KEY,
        measure_id integer NOT NULL REFERENCES measures(id),
        version integer NOT NULL,
        action text NOT NULL,
        actor_id integer REFERENCES users(id),
        actor text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        changes jsonb NOT NULL DEFAULT '{{}}',
        before jsonb,
        after jsonb
    );
    CREATE INDEX measure_history_measure_idx ON measure_history (measure_id, id);

    -- History is append-only.
    CREATE FUNCTION measure_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'measure_history is append-only';
    END $$;
    CREATE TRIGGER measure_history_no_change BEFORE UPDATE OR DELETE ON measure_history
        FOR EACH ROW EXECUTE FUNCTION measure_history_append_only();

    -- Quarters and districts a measure lies in are derived from its geometry, never sent.
    CREATE FUNCTION measures_derive_areas() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.location_precision = 'unknown' THEN  -- a stand-in geometry places nothing
            NEW.quarter_ids := '{{}}';
            NEW.quarter_slugs := '{{}}';
            NEW.district_ids := '{{}}';
            RETURN NEW;
        END IF;
        NEW.quarter_ids := ARRAY(SELECT q.id FROM quarters q
                                 WHERE ST_Intersects(q.geom, NEW.geom) ORDER BY q.id);
        NEW.quarter_slugs := ARRAY(SELECT q.slug FROM quarters q
                                   WHERE q.id = ANY(NEW.quarter_ids) ORDER BY q.slug);
        NEW.district_ids := ARRAY(SELECT d.id FROM districts d
                                  WHERE ST_Intersects(d.geom, NEW.geom) ORDER BY d.id);
        RETURN NEW;
    END $$;
    CREATE TRIGGER measures_areas BEFORE INSERT OR UPDATE ON measures
        FOR EACH ROW EXECUTE FUNCTION measures_derive_areas();

    -- The one relation public reads go through: published and not deleted.
    CREATE VIEW measures_public AS
        SELECT id, slug, city_ags, title, summary, description, plain_summary, action_field,
               status, start_date, end_date, milestones, budget_planned, budget_spent,
               funding_line, responsible_unit, partners, parent_id, links, source, licence,
               location_precision, location_note, geom, geom_wgs84, quarter_ids, quarter_slugs,
               district_ids,
               published_at, updated_at, version, search
        FROM measures
        WHERE published AND deleted_at IS NULL;

    -- What staff work with: everything not deleted (drafts included).
    CREATE VIEW measures_current AS SELECT * FROM measures WHERE deleted_at IS NULL;
    """)


def downgrade() -> None:
    op.execute("""
    DROP VIEW measures_current;
    DROP VIEW measures_public;
    DROP TABLE measure_history;
    DROP FUNCTION measure_history_append_only();
    DROP TABLE measure_editions;
    DROP TABLE measures;
    DROP FUNCTION measures_derive_areas();
    DROP TABLE editions;
    DROP TABLE sessions;
    DROP TABLE users;
    """)
