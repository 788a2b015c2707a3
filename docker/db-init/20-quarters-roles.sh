#!/bin/sh
# The database roles of quarters in the PostGIS container (the same as the embedded cluster's,
# quarters.embedded.role_setup_sql): quarters_owner owns the schema (migrations, data loads),
# quarters_app is what the API connects as (reads, the app's writes, history append-only, no DDL,
# no superuser). The grants on each table are set after every `quarters db upgrade`.
#
# Runs once when the volume is new (docker-entrypoint-initdb.d). It is idempotent: for a volume
# made by an older version run it by hand, as the superuser that volume was created with:
#   docker compose exec -e POSTGRES_USER=quarters db sh /docker-entrypoint-initdb.d/20-quarters-roles.sh
set -eu
: "${QUARTERS_OWNER_PASSWORD:?set QUARTERS_OWNER_PASSWORD}"
: "${QUARTERS_APP_PASSWORD:?set QUARTERS_APP_PASSWORD}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" \
     --dbname "${POSTGRES_DB:-quarters}" -v dbname="${POSTGRES_DB:-quarters}" \
     -v owner_pw="$QUARTERS_OWNER_PASSWORD" -v app_pw="$QUARTERS_APP_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE quarters_owner' WHERE NOT EXISTS
       (SELECT 1 FROM pg_roles WHERE rolname = 'quarters_owner') \gexec
SELECT 'CREATE ROLE quarters_app' WHERE NOT EXISTS
       (SELECT 1 FROM pg_roles WHERE rolname = 'quarters_app') \gexec
ALTER ROLE quarters_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
      PASSWORD :'owner_pw';
ALTER ROLE quarters_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
      PASSWORD :'app_pw';
ALTER DATABASE :"dbname" OWNER TO quarters_owner;
REVOKE ALL ON DATABASE :"dbname" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"dbname" TO quarters_app;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO quarters_app;
ALTER DEFAULT PRIVILEGES FOR ROLE quarters_owner IN SCHEMA public
      GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO quarters_app;
ALTER DEFAULT PRIVILEGES FOR ROLE quarters_owner IN SCHEMA public
      GRANT USAGE, SELECT ON SEQUENCES TO quarters_app;
-- A volume of an older version: its tables belong to the superuser; hand them to the owner.
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
               AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype = 'e')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO quarters_owner',
                       CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.obj);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS obj FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace
               AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                               AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO quarters_owner', r.obj);
    END LOOP;
END $$;
SQL
