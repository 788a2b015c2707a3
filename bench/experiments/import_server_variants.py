"""What PostgreSQL spends on the municipalities' COPY, per part of the schema (issue 10 item 6).

Imports the 10,997 BKG VG5000 municipalities once with quarters (into a throwaway cluster),
takes the stored rows out as binary COPY data and COPYs the same bytes again into copies of
the table that each leave one guarantee out, measuring the CPU of the PostgreSQL backend
(``/proc/<pid>/stat``) and the wall time of each COPY (one transaction, after a CHECKPOINT):

    current     the table as migrated: generated CRS84 outline, GiST on geom and outline,
                CHECK ST_IsValid, primary key, foreign key to sources
    outline_in  the outline a plain column whose values come with the COPY (as an importer
                that reprojects twice would send them)
    no_check    without the CHECK on the geometry's validity
    no_outline  without the outline (and its index)
    bare        ogr2ogr's kind of table: the columns, a GiST index on geom, nothing else

    .venv/bin/python bench/experiments/import_server_variants.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_import  # noqa: E402
import common  # noqa: E402
import psycopg  # noqa: E402

from quarters.imports.boundaries import BoundarySpec, import_boundaries  # noqa: E402

COLUMNS = "ags, ars, name, bez, attributes, source_id, geom"
LIKE = ("CREATE TABLE {n} (LIKE municipalities INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
        " INCLUDING INDEXES INCLUDING GENERATED);"
        " ALTER TABLE {n} ADD FOREIGN KEY (source_id) REFERENCES sources (id)")
VARIANTS = {
    "current": ([LIKE], False),
    "outline_in": ([LIKE, "ALTER TABLE {n} ALTER COLUMN geom_wgs84 DROP EXPRESSION"], True),
    "no_check": ([LIKE, "ALTER TABLE {n} DROP CONSTRAINT municipalities_geom_valid"], False),
    "no_outline": ([LIKE, "ALTER TABLE {n} DROP COLUMN geom_wgs84"], False),
    "bare": (["CREATE TABLE {n} (ags text, ars text, name text, bez text, attributes jsonb,"
              " source_id int, geom geometry(MultiPolygon, 25832));"
              " CREATE INDEX ON {n} USING gist (geom)"], False),
}


def main() -> None:
    """Import once, then COPY the rows into each variant ``--runs`` times and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with common.throwaway_cluster() as cluster:
        bench_import.make_template(cluster)
        target = bench_import.fresh_database(cluster)
        import_boundaries(target.engine, bench_import.SHAPEFILE,
                          BoundarySpec("gemeinde", repair=True))
        with psycopg.connect(target.conninfo, autocommit=True) as conn:
            payload = {}
            for with_outline in (False, True):
                cols = COLUMNS + (", geom_wgs84" if with_outline else "")
                with conn.cursor().copy(f"COPY (SELECT {cols} FROM municipalities)"
                                        " TO STDOUT (FORMAT binary)") as copy:
                    payload[with_outline] = b"".join(bytes(chunk) for chunk in copy)
            pid = conn.info.backend_pid
            print(f"| variant | server CPU ms (median of {args.runs}) | wall ms | CPU ms per run |")
            print("|---|---|---|---|")
            for name, (setup, with_outline) in VARIANTS.items():
                cols = COLUMNS + (", geom_wgs84" if with_outline else "")
                cpu, wall = [], []
                for _ in range(args.runs):
                    conn.execute(f"DROP TABLE IF EXISTS v_{name}")
                    for sql in setup:
                        conn.execute(sql.format(n=f"v_{name}"))
                    conn.execute("CHECKPOINT")
                    start, cpu0 = time.perf_counter(), common.backend_cpu(pid)
                    with conn.transaction(), conn.cursor().copy(
                            f"COPY v_{name} ({cols}) FROM STDIN (FORMAT binary)") as copy:
                        copy.write(payload[with_outline])
                    wall.append(time.perf_counter() - start)
                    cpu.append(common.backend_cpu(pid) - cpu0)
                print(f"| {name} | {statistics.median(cpu) * 1000:.0f} |"
                      f" {statistics.median(wall) * 1000:.0f} |"
                      f" {', '.join(f'{c * 1000:.0f}' for c in cpu)} |")


if __name__ == "__main__":
    main()
