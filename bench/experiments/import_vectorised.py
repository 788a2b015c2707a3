"""quarters' boundary import with its per-row pandas loops vectorised (experiment).

Same steps and same result as ``quarters.imports.boundaries.import_boundaries`` (checked: identical
rows), but ``prepare`` and the row building of ``write_boundaries`` work on whole arrays:
``shapely.is_valid``/``to_wkb`` on the geometry array, ``DataFrame.to_json(orient="records",
lines=True)`` for the attributes. Prints per-step times next to the current importer and
ogr2ogr. src/ is untouched.

Usage: .venv/bin/python bench/experiments/import_vectorised.py [--runs 3]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_import as bi  # noqa: E402
import common  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shapely  # noqa: E402
from sqlalchemy import text  # noqa: E402

from quarters.geometry import repair  # noqa: E402
from quarters.imports.boundaries import (
    UPSERTS,
    BoundarySpec,
    check_frame,
    file_checksum,
    read_file,
)  # noqa: E402
from quarters.sources import upsert_source  # noqa: E402


def prepare(gdf, spec):  # noqa: ANN001, ANN201
    """Reproject, repair the invalid ones, promote to MultiPolygon — on the whole array."""
    out = gdf.to_crs(25832)
    geoms = np.asarray(out.geometry.array, dtype=object).copy()
    for i in np.flatnonzero(~shapely.is_valid(geoms)):
        geoms[i] = repair(geoms[i])
    polys = shapely.get_type_id(geoms) == 3
    geoms[polys] = [shapely.MultiPolygon([g]) for g in geoms[polys]]
    return out, geoms


def rows(out, geoms, spec):  # noqa: ANN001, ANN201
    """COPY rows (code, name, parent, attrs JSON, WKB) built column-wise."""
    code_field, name_field = spec.fields()
    attrs = pd.DataFrame(out.drop(columns=[code_field, name_field, "geometry"]))
    for c in attrs.columns:
        if str(attrs[c].dtype).startswith("datetime"):
            attrs[c] = attrs[c].map(lambda v: None if pd.isna(v) else v.isoformat())
    lines = attrs.to_json(orient="records", lines=True, force_ascii=False).splitlines()
    codes = out[code_field].astype("string").str.strip().tolist()
    names = out[name_field].astype("string").str.strip().tolist()
    return list(zip(codes, names, [None] * len(codes), lines, shapely.to_wkb(geoms), strict=True))


def vectorised_import(engine, path: Path, spec: BoundarySpec) -> dict[str, float]:  # noqa: ANN001
    """The import, timed step by step."""
    steps, t = {}, time.perf_counter()

    def step(name: str) -> None:
        nonlocal t
        steps[name] = time.perf_counter() - t
        t = time.perf_counter()

    gdf = read_file(path)
    step("read")
    assert not check_frame(gdf, path.name, spec)
    step("check")
    out, geoms = prepare(gdf, spec)
    step("prepare")
    data = rows(out, geoms, spec)
    step("rows")
    with engine.begin() as conn:
        src = upsert_source(conn, "bench", name="bench", licence="-", attribution="-",
                            checksum=file_checksum(path))
        conn.execute(text("CREATE TEMP TABLE _stage (code text, name text, parent text,"
                          " attrs jsonb, wkb bytea) ON COMMIT DROP"))
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy("COPY _stage FROM STDIN") as copy:
            for r in data:
                copy.write_row(r)
        step("copy")
        n = len(conn.execute(text(UPSERTS["municipalities"]), {
            "source": src, "city": None, "level": "gemeinde", "approximate": False,
            "srid": 25832}).all())
        step("upsert")
    step("commit")
    assert n == bi.EXPECTED
    return steps


def snapshot(engine) -> dict:  # noqa: ANN001
    """ags → (attributes, geometry hash)."""
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(text(
            "SELECT ags, attributes, md5(ST_AsBinary(geom)) FROM municipalities"))}


def main() -> None:
    """Alternate the vectorised import, the current importer and ogr2ogr."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    spec = BoundarySpec(level="gemeinde", repair=True)
    with common.throwaway_cluster() as cluster:
        bi.make_template(cluster)
        for _ in range(args.runs):
            target = bi.fresh_database(cluster)
            t = time.perf_counter()
            steps = vectorised_import(target.engine, bi.SHAPEFILE, spec)
            total = time.perf_counter() - t
            new = snapshot(target.engine)
            target.engine.dispose()
            target = bi.fresh_database(cluster)
            current = bi.time_quarters(target)
            same = snapshot(target.engine) == new
            ogr = bi.time_ogr(target)
            target.engine.dispose()
            detail = ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
            print(f"vectorised {total:.2f} s ({detail}) | current {current:.2f} s | "
                  f"ogr2ogr {ogr:.2f} s | identical rows: {same}", flush=True)


if __name__ == "__main__":
    main()
