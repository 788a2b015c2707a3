"""A dense tile: the z10 WebMercatorQuad tile of Halle over N synthetic published measures
(default 1,000,000), ``EXPLAIN (ANALYZE, BUFFERS)`` of quarters' tile statement with points
grouped per screen pixel and of the same statement without the grouping (every point a
feature, as before issue 10's dense-tile fix), side by side on one table in one run.

The measures are bench_growth.py's (same generator, seed and extents: two thirds in Halle,
80 % points); to reach 1 M in minutes rather than the ten of bench_growth.py the INSERT runs
with ``session_replication_role = replica`` (row triggers off: the derived quarter and
district ids, which tiles do not read, stay empty; CHECKs, generated columns and indexes on).

Usage: .venv/bin/python bench/bench_dense_tile.py [--size 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_growth  # noqa: E402
import common  # noqa: E402
import mapbox_vector_tile  # noqa: E402
import psycopg  # noqa: E402
from common import log  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from quarters import tiles  # noqa: E402
from quarters.collections import COLLECTIONS  # noqa: E402
from quarters.migrate import upgrade  # noqa: E402


def literal_sql(sql: str, values: dict[str, float]) -> str:
    """The statement with its parameters written in (for EXPLAIN)."""
    for key in sorted(values, key=len, reverse=True):
        sql = sql.replace(f":{key}", repr(float(values[key])))
    return sql.replace(":layer", "'measures'")


def statements() -> dict[str, str]:
    """The z10 tile of Halle, grouped and ungrouped."""
    tms = tiles.TILE_MATRIX_SETS[tiles.WEB_MERCATOR]
    t = tms.tile(*bench_growth.CENTRE, 10)
    b = tiles.tile_bounds(tms, t.z, t.x, t.y)
    values = dict(zip(("x0", "y0", "x1", "y1"), b.box, strict=True))
    values.update(zip(("sx0", "sy0", "sx1", "sy1"), b.storage_box, strict=True))
    values.update(tol=b.tolerance, cell=b.cell)
    col = COLLECTIONS["measures"]
    return {name: literal_sql(tiles._build_sql(col, b.srid, group_points=group), values)
            for name, group in (("grouped", True), ("ungrouped", False))}


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with common.throwaway_cluster() as cluster:
        engine = create_engine(cluster.url())
        upgrade(engine)
        bench_growth.add_cities(engine)
        engine.dispose()
        start = time.monotonic()
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute("SELECT setseed(0.5)")
            step = 250_000
            for first in range(1, args.size + 1, step):
                conn.execute(bench_growth.insert_sql().replace("CAST(:first AS int)", str(first))
                             .replace("CAST(:last AS int)", str(min(args.size, first + step - 1))))
            conn.execute("VACUUM (ANALYZE) measures")
            n = conn.execute("SELECT count(*) FROM measures_public").fetchone()[0]
        log(f"{n:,} published measures in {time.monotonic() - start:.0f} s")
        lines = [f"z10 tile of Halle over {n:,} published measures, load average "
                 f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())}", ""]
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            conn.execute("SET statement_timeout = '300s'")
            for name, sql in statements().items():
                ms, buffers, shape = bench_growth.explain(cluster, [sql], runs=args.runs)
                body = bytes(conn.execute(sql).fetchone()[0] or b"")
                features = (len(mapbox_vector_tile.decode(body)["measures"]["features"])
                            if name == "grouped" else "not decoded")
                lines.append(f"- {name}: EXPLAIN ANALYZE {ms:,.1f} ms (min of ≤ {args.runs}), "
                             f"buffers {buffers:,}, {len(body):,} bytes, features {features}"
                             f"; {shape}")
                log(lines[-1])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
