"""Vector tile benchmark, request (c) of shared/bench/README.md: quarters against tipg.

1. The read benchmark's set-up (bench_read): a throwaway cluster, the shared dataset
   (100,000 points around Halle) copied into quarters' published measures, tipg on one worker.
2. Two ``quarters serve`` processes on the same database: one without any tile cache
   (``QUARTERS_TILE_CACHE_SIZE=0``: every tile built by PostGIS), one as shipped (LRU).
3. The tiles WebMercatorQuad z14/8736/5450 and z12/2184/1362 are fetched from both servers,
   decoded (mapbox-vector-tile) and their point counts compared.
4. A sweep of different tiles (the 5×5 tiles around the z14 tile, the 3×3 around the z12 one)
   is loaded with wrk (a Lua script walks the list): tipg, quarters uncached, and quarters
   cached (the same sweep after one warm pass, every tile from memory). ETag revalidation
   (304) is not used by wrk: the cached figure is for full 200 answers.
5. The municipalities (issue 10 (c): "a z8 tile of the municipalities"): the 10,997
   municipalities of BKG VG5000 imported with quarters' own importer (``import_boundaries``,
   level gemeinde, repaired), tipg serving the same table (``public.municipalities``):
   (z8) a sweep of every z8 tile over Germany that holds municipalities, uncached and cached
   as above; (z8-one) the z8 tile of Halle repeated (tipg and quarters uncached build it for
   every request, quarters cached answers it from memory).

Usage: .venv/bin/python bench/bench_tiles.py [--seconds 10] [--no-wait] [--cases z14,z12,z8,z8-one]
Writes bench/results/tiles-<date>.md and prints it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_read  # noqa: E402
import common  # noqa: E402
import mapbox_vector_tile  # noqa: E402
from common import log  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from quarters.imports.boundaries import BoundarySpec, import_boundaries  # noqa: E402
from quarters.migrate import upgrade  # noqa: E402
from quarters.tiles import TILE_MATRIX_SETS  # noqa: E402

GRID = "WebMercatorQuad"
GERMANY = (5.87, 47.27, 15.04, 55.06)  # lon/lat box of the z8 sweep
HALLE = (11.97, 51.48)
VG5000_GEM = common.DATA_DIR / "raw" / "bkg-vg5000-2021" / "VG5000_GEM.shp"


def _germany_z8() -> list[tuple[int, int, int]]:
    return [(t.z, t.x, t.y) for t in TILE_MATRIX_SETS[GRID].tiles(*GERMANY, [8])]


def _halle_z8() -> tuple[int, int, int]:
    t = TILE_MATRIX_SETS[GRID].tile(*HALLE, 8)
    return t.z, t.x, t.y


@dataclass(frozen=True)
class Case:
    """Tiles of one collection: the tile whose content is compared, the tiles loaded."""

    collection: str  # quarters' collection; tipg's is public.<table>
    check: tuple[int, int, int]
    tiles: tuple[tuple[int, int, int], ...]
    label: str
    keep_empty: bool = True  # False: drop the tiles of the sweep quarters answers empty


def load_dataset(cluster) -> None:  # noqa: ANN001
    """bench_read's load as the cluster admin (psql loads as admin since the least-privilege
    roles), then the owner role, which quarters' set-up runs as, may read ``benchsrc``."""
    from quarters.embedded import ROLE_NAMES

    admin = create_engine(cluster.url("admin"))
    try:
        bench_read.load_dataset(cluster, admin)
        with admin.begin() as conn:
            owner = ROLE_NAMES["owner"]
            conn.execute(text(f"GRANT USAGE ON SCHEMA benchsrc TO {owner}"))
            conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA benchsrc TO {owner}"))
    finally:
        admin.dispose()


def start_quarters(cluster, workdir: Path, name: str, **env_extra: str) -> bench_read.Server:  # noqa: ANN001
    """``quarters serve`` with one worker and extra settings (e.g. no tile cache)."""
    port = common.free_port()
    cmd = [str(common.QUARTERS_BIN), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]  # the default is one per core; tipg runs one
    env = {**os.environ, "QUARTERS_DATABASE_URL": cluster.url(), **env_extra}
    proc = common.start_process(cmd, logfile=workdir / f"{name}.log", env=env,
                                cwd=common.PROJECT_ROOT)
    base = f"http://127.0.0.1:{port}"
    common.wait_ready(f"{base}/api/health", proc)
    shown = " ".join(f"{k}={v}" for k, v in env_extra.items())
    return bench_read.Server(name, base, proc,
                             f"{shown} quarters serve --port {port} --workers 1".strip())


def tile_path(server: str, collection: str, z: int, x: int, y: int) -> str:
    """quarters answers tileMatrix/tileRow/tileCol (z/y/x), tipg z/x/y."""
    if server == "tipg":
        return f"/collections/{collection}/tiles/{GRID}/{z}/{x}/{y}"
    return f"/api/collections/{collection}/tiles/{GRID}/{z}/{y}/{x}"


def sweep(z: int, x: int, y: int, radius: int) -> list[tuple[int, int, int]]:
    """The (2r+1)² tiles around z/x/y."""
    return [(z, x + dx, y + dy) for dy in range(-radius, radius + 1)
            for dx in range(-radius, radius + 1)]


CASES = {
    "z14": Case("measures", (14, 8736, 5450), tuple(sweep(14, 8736, 5450, 2)),
                "measures, 5×5 z14 tiles"),
    "z12": Case("measures", (12, 2184, 1362), tuple(sweep(12, 2184, 1362, 1)),
                "measures, 3×3 z12 tiles"),
    "z8": Case("municipalities", _halle_z8(), tuple(_germany_z8()),
               "municipalities, z8 tiles over Germany", keep_empty=False),
    "z8-one": Case("municipalities", _halle_z8(), (_halle_z8(),),
                   "municipalities, the z8 tile of Halle repeated"),
}


def count_points(body: bytes) -> int:
    """Features in a decoded tile (all layers)."""
    layers = mapbox_vector_tile.decode(body) if body else {}
    return sum(len(layer["features"]) for layer in layers.values())


def wrk_sweep(base: str, paths: list[str], seconds: int, workdir: Path, watch: dict,
              wait: bool) -> common.WrkResult:
    """wrk over a list of paths (round robin per connection, Lua script)."""
    script = workdir / "sweep.lua"
    quoted = ",".join(f'"{p}"' for p in paths)
    script.write_text(
        f"local paths = {{{quoted}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n"
        "  return wrk.format(\"GET\", paths[i])\nend\n")
    if wait:
        common.wait_for_quiet()
    cmd = ["wrk", f"-t{common.WRK_THREADS}", f"-c{common.WRK_CONNECTIONS}", f"-d{seconds}s",
           "--timeout", "10s", "--latency", "-s", str(script), base + paths[0]]
    subprocess.run([*cmd[:3], "-d2s", *cmd[4:]], capture_output=True, timeout=60, check=False)
    log(" ".join(cmd))
    cpu0 = {n: common.tree_cpu_seconds(p) for n, p in watch.items()}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr}{done.stdout}")
    result = common.parse_wrk(done.stdout, base + paths[0], " ".join(cmd))
    result.cpu_ms = {n: 1000 * (common.tree_cpu_seconds(p) - cpu0[n]) / max(1, result.requests)
                     for n, p in watch.items()}
    log(f"  → {result.rps:.1f} req/s, p50 {result.p50_ms:.1f} ms"
        + ("" if result.clean else f" (non-2xx {result.non_2xx})"))
    return result


def import_municipalities(engine) -> int:  # noqa: ANN001
    """The 10,997 municipalities of VG5000 with quarters' importer; returns the row count."""
    if not VG5000_GEM.exists():
        raise RuntimeError(f"missing {VG5000_GEM} (QUARTERS_DATA_DIR)")
    import_boundaries(engine, VG5000_GEM, BoundarySpec(level="gemeinde", repair=True),
                      source_name="BKG VG5000 (bench)")
    with engine.begin() as conn:
        conn.execute(text("ANALYZE municipalities"))
        n = conn.execute(text("SELECT count(*) FROM municipalities")).scalar_one()
    log(f"imported {n:,} municipalities (VG5000_GEM)")
    return n


def run(seconds: int, wait: bool, cases: list[str] | None = None) -> str:
    """Set up, check and measure; returns the Markdown report."""
    cases = cases or list(CASES)
    with_measures = any(CASES[c].collection == "measures" for c in cases)
    with_municipalities = any(CASES[c].collection == "municipalities" for c in cases)
    bench_read.ensure_tipg()
    workdir = Path(tempfile.mkdtemp(prefix="quarters-bench-tiles-"))
    servers: dict[str, bench_read.Server] = {}
    rows, checks = [], []
    with common.throwaway_cluster() as cluster:
        engine = create_engine(cluster.url())
        try:
            if with_measures:
                load_dataset(cluster)
            upgrade(engine)
            if with_municipalities:
                import_municipalities(engine)
            if with_measures:
                ids = bench_read.copy_districts(engine)
                note = bench_read.fill_measures(engine, ids)
                if note:
                    raise RuntimeError(f"cannot fill quarters' measures: {note}")
            bench_read.vacuum(cluster)
            servers["quarters-uncached"] = start_quarters(
                cluster, workdir, "quarters-uncached", QUARTERS_TILE_CACHE_SIZE="0")
            servers["quarters-cached"] = start_quarters(cluster, workdir, "quarters-cached")
            servers["tipg"] = bench_read.start_tipg(cluster, workdir)
            tipg_ids = [c["id"] for c in common.get_json(
                servers["tipg"].base + "/collections")["collections"]]
            tipg_cols = {"municipalities": "public.municipalities",
                         "measures": next((c for c in ("public.measures_public",
                                                       "public.measures") if c in tipg_ids), "")}
            postmaster = common.cluster_pid(cluster)
            for key in cases:
                case = CASES[key]
                counts = {}
                for name, server in servers.items():
                    col = tipg_cols[case.collection] if name == "tipg" else case.collection
                    status, body = common.http_get(server.base + tile_path(name, col,
                                                                           *case.check))
                    if status != 200:
                        raise RuntimeError(f"{name} {key}: HTTP {status}")
                    counts[name] = count_points(body)
                z, x, y = case.check
                checks.append(f"({key}) {case.collection} {z}/{x}/{y}: features in the tile — "
                              + ", ".join(f"{n} {c:,}" for n, c in counts.items()))
                log(checks[-1])
                tiles = list(case.tiles)
                if not case.keep_empty:
                    base = servers["quarters-uncached"].base
                    tiles = [t for t in tiles if count_points(common.http_get(
                        base + tile_path("quarters", case.collection, *t))[1])]
                    checks.append(f"({key}) {len(tiles)} of the {len(case.tiles)} z{z} tiles "
                                  f"over {GERMANY} hold {case.collection}; the sweep walks them")
                for name, server in servers.items():
                    col = tipg_cols[case.collection] if name == "tipg" else case.collection
                    paths = [tile_path(name, col, *t) for t in tiles]
                    if name == "quarters-cached":
                        for p in paths:  # one warm pass: every tile of the sweep in memory
                            common.http_get(server.base + p)
                    watch = {"server": [server.proc.pid], "db": [postmaster]}
                    result = wrk_sweep(server.base, paths, seconds, workdir, watch, wait)
                    rows.append((key, len(tiles), name, result))
            load = os.getloadavg()
        finally:
            for server in servers.values():
                common.stop_process(server.proc)
            engine.dispose()
            shutil.rmtree(workdir, ignore_errors=True)
    return report(rows, checks, seconds, load)


def report(rows, checks: list[str], seconds: int,  # noqa: ANN001
           load: tuple[float, float, float]) -> str:
    """Markdown: req/s, latency, ratio to tipg and CPU per request."""
    _, stamp = common.now_stamp()
    tipg = {key: r.rps for key, _, name, r in rows if name == "tipg"}
    table = [[f"({key}) {CASES[key].label}" + (f", sweep of {n}" if n > 1 else ""), name,
              f"{r.rps:,.1f}", f"{r.p50_ms:,.1f} ms",
              f"{r.p99_ms:,.1f} ms", f"{r.rps / tipg[key]:.2f}×" if tipg.get(key) else "–",
              f"{r.cpu_ms.get('server', 0):.1f} / {r.cpu_ms.get('db', 0):.1f}"]
             for key, n, name, r in rows]
    m = common.machine_info()
    return "\n".join([
        f"# Vector tiles: quarters vs tipg ({stamp})", "",
        f"Machine: {m.get('cpu', '?')}, {m.get('nproc', '?')} cores; wrk -t{common.WRK_THREADS} "
        f"-c{common.WRK_CONNECTIONS} -d{seconds}s over a Lua list of tiles; one worker each; "
        f"load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}.", "",
        common.md_table(["request", "server", "req/s", "p50", "p99", "vs tipg",
                         "CPU ms/req server / db"], table), "",
        *[f"- {c}" for c in checks],
        "- quarters keeps the points within its 64/4096 tile buffer; tipg uses its own buffer "
        "and stops at 10,000 features per tile by default (TIPG_MAX_FEATURES_PER_TILE), so its "
        "z12 tile is truncated and its z12 figure is for a smaller tile.",
        "- municipalities: tipg sends every column (ags, ars, name, bez, attributes, …) and "
        "the unsimplified outline; quarters the map's properties (ags, name, bez, kreis, "
        "project_city) and outlines simplified to half a screen pixel of the zoom.", "",
    ])


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-wait", action="store_true",
                        help="do not wait for an idle machine before each run")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, of {', '.join(CASES)}")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown or not cases:
        parser.error(f"--cases: unknown {', '.join(sorted(unknown))}; known: {', '.join(CASES)}")
    text = run(args.seconds, not args.no_wait, cases)
    path = common.write_result("tiles", text)
    print(text)
    log(f"written to {path}")


if __name__ == "__main__":
    main()
