"""What PostgreSQL spends on request (b), and what cheaper SQL would give (experiment).

Loads the bench data like bench_read.py, then runs pgbench (-c4 -j2 -T8 -M prepared) on
variants of the statement quarters sends for the 50 districts. The variants that need stored
columns add them to the throwaway copy of ``districts`` only.

Usage: .venv/bin/python bench/experiments/sql_variants.py
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_read  # noqa: E402
import common  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from quarters.migrate import upgrade  # noqa: E402

PROPS = ("'id', t.id, 'city_ags', t.city_ags, 'level', t.level, 'code', t.code, 'name', t.name, "
         "'stadtbezirk', t.parent_name, 'approximate', t.approximate, 'area_ha', "
         "t.area_ha_official, 'area_ha_geometry', {area}, 'population', t.population, "
         "'population_date', t.population_date, 'source', s.key")
AREA = "round((ST_Area(t.geom) / 10000)::numeric, 1)"
NOW = "ST_ForcePolygonCCW(ST_Transform(t.geom, 4326))"
FROM = ("FROM districts t JOIN sources s ON s.id = t.source_id WHERE TRUE AND t.level = 'bench' "
        "ORDER BY t.id LIMIT 50 OFFSET 0")


def as_json(geom: str, area: str = AREA) -> str:
    """quarters' statement: json_build_object per feature, ::json, json_agg."""
    f = (f"json_build_object('type', 'Feature', 'id', t.id, 'geometry', ST_AsGeoJSON({geom}, 6)"
         f"::json, 'properties', json_build_object({PROPS.format(area=area)}))")
    return (f"SELECT COALESCE(json_agg(p.f ORDER BY p.k), '[]')::text, count(*) FROM "
            f"(SELECT t.id AS k, {f} AS f {FROM}) p;\n")


def as_text(geometry_json: str, area: str = AREA) -> str:
    """The same document by text concatenation and string_agg (no ::json re-parse)."""
    f = (f"'{{\"type\":\"Feature\",\"id\":' || t.id || ',\"geometry\":' || {geometry_json} || "
         f"',\"properties\":' || json_build_object({PROPS.format(area=area)})::text || '}}'")
    return (f"SELECT '[' || coalesce(string_agg(p.f, ',' ORDER BY p.k), '') || ']', count(*) "
            f"FROM (SELECT t.id AS k, {f} AS f {FROM}) p;\n")


COUNT = ("SELECT count(*) FROM districts t JOIN sources s ON s.id = t.source_id "
         "WHERE TRUE AND t.level = 'bench';\n")
VARIANTS = {
    "quarters' two statements (page + count), as sent": as_json(NOW) + COUNT,
    "page statement alone": as_json(NOW),
    "… without ST_ForcePolygonCCW": as_json("ST_Transform(t.geom, 4326)"),
    "… without ST_Area (stored area)": as_json(NOW, "t.area_geom"),
    "… text concatenation + string_agg instead of ::json + json_agg":
        as_text(f"ST_AsGeoJSON({NOW}, 6)"),
    "… json_agg, geometry stored in CRS84 (no ST_Transform per request)": as_json("t.g4326"),
    "… text concatenation, geometry stored in CRS84": as_text("ST_AsGeoJSON(t.g4326, 6)"),
    "… text concatenation, geometry's GeoJSON stored, stored area":
        as_text("t.gj", "t.area_geom"),
}


def main() -> None:
    """Run the variants; print q/s."""
    workdir = Path(tempfile.mkdtemp(prefix="quarters-bench-sql-"))
    with common.throwaway_cluster() as cluster:
        engine = create_engine(cluster.url())
        try:
            bench_read.load_dataset(cluster, engine)
            upgrade(engine)
            bench_read.copy_districts(engine)
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE districts ADD COLUMN g4326 geometry, "
                                  "ADD COLUMN gj text, ADD COLUMN area_geom numeric"))
                conn.execute(text(f"UPDATE districts t SET g4326 = {NOW}, area_geom = {AREA}"))
                conn.execute(text("UPDATE districts SET gj = ST_AsGeoJSON(g4326, 6)"))
                conn.execute(text("ANALYZE districts"))
                a = conn.execute(text(as_json(NOW))).scalar_one()
                b = conn.execute(text(as_text("t.gj", "t.area_geom").replace(":", r"\:"))
                                 ).scalar_one()
                assert json.loads(a) == json.loads(b), "variants must give the same document"
            rows = []
            for name, sql in VARIANTS.items():
                path = workdir / "q.sql"
                path.write_text(sql)
                tps, _ = common.run_pgbench(cluster, path, 8)
                rows.append([name, f"{tps:,.0f}"])
            tps, _ = common.run_pgbench(cluster, common.SHARED_BENCH / "pgbench" /
                                        "q_districts_geojson.sql", 8, "benchsrc,public")
            rows.append(["reference: shared q_districts_geojson.sql on benchsrc (EPSG:4326)",
                         f"{tps:,.0f}"])
        finally:
            engine.dispose()
            shutil.rmtree(workdir, ignore_errors=True)
    print(common.md_table(["(b) statement variant", "q/s"], rows))


if __name__ == "__main__":
    main()
