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

Usage: .venv/bin/python bench/bench_tiles.py [--seconds 10] [--no-wait]
Writes bench/results/tiles-<date>.md and prints it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_read  # noqa: E402
import common  # noqa: E402
import mapbox_vector_tile  # noqa: E402
from common import log  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from quarters.migrate import upgrade  # noqa: E402

TILES = {"z14": (14, 8736, 5450, 2), "z12": (12, 2184, 1362, 1)}  # z, x, y, sweep radius
GRID = "WebMercatorQuad"


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
    """``quarters serve`` with extra settings (e.g. no tile cache)."""
    port = common.free_port()
    cmd = [str(common.QUARTERS_BIN), "serve", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "QUARTERS_DATABASE_URL": cluster.url(), **env_extra}
    proc = common.start_process(cmd, logfile=workdir / f"{name}.log", env=env,
                                cwd=common.PROJECT_ROOT)
    base = f"http://127.0.0.1:{port}"
    common.wait_ready(f"{base}/api/health", proc)
    shown = " ".join(f"{k}={v}" for k, v in env_extra.items())
    return bench_read.Server(name, base, proc, f"{shown} quarters serve --port {port}".strip())


def tile_path(server: str, collection: str, z: int, x: int, y: int) -> str:
    """quarters answers tileMatrix/tileRow/tileCol (z/y/x), tipg z/x/y."""
    if server == "tipg":
        return f"/collections/{collection}/tiles/{GRID}/{z}/{x}/{y}"
    return f"/api/collections/{collection}/tiles/{GRID}/{z}/{y}/{x}"


def sweep(z: int, x: int, y: int, radius: int) -> list[tuple[int, int, int]]:
    """The (2r+1)² tiles around z/x/y."""
    return [(z, x + dx, y + dy) for dy in range(-radius, radius + 1)
            for dx in range(-radius, radius + 1)]


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


def run(seconds: int, wait: bool) -> str:
    """Set up, check and measure; returns the Markdown report."""
    bench_read.ensure_tipg()
    workdir = Path(tempfile.mkdtemp(prefix="quarters-bench-tiles-"))
    servers: dict[str, bench_read.Server] = {}
    rows, checks = [], []
    with common.throwaway_cluster() as cluster:
        engine = create_engine(cluster.url())
        try:
            load_dataset(cluster)
            upgrade(engine)
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
            tipg_col = next(c for c in ("public.measures_public", "public.measures")
                            if c in tipg_ids)
            postmaster = common.cluster_pid(cluster)
            for key, (z, x, y, radius) in TILES.items():
                counts = {}
                for name, server in servers.items():
                    col = tipg_col if name == "tipg" else "measures"
                    status, body = common.http_get(server.base + tile_path(name, col, z, x, y))
                    if status != 200:
                        raise RuntimeError(f"{name} {key}: HTTP {status}")
                    counts[name] = count_points(body)
                checks.append(f"({key}) {z}/{x}/{y}: points in the tile — " + ", ".join(
                    f"{n} {c:,}" for n, c in counts.items()))
                log(checks[-1])
                tiles = sweep(z, x, y, radius)
                for name, server in servers.items():
                    col = tipg_col if name == "tipg" else "measures"
                    paths = [tile_path(name, col, *t) for t in tiles]
                    if name == "quarters-cached":
                        for p in paths:  # one warm pass: every tile of the sweep in memory
                            common.http_get(server.base + p)
                    watch = {"server": [server.proc.pid], "db": [postmaster]}
                    result = wrk_sweep(server.base, paths, seconds, workdir, watch, wait)
                    rows.append((key, len(tiles), name, result))
        finally:
            for server in servers.values():
                common.stop_process(server.proc)
            engine.dispose()
            shutil.rmtree(workdir, ignore_errors=True)
    return report(rows, checks, seconds)


def report(rows, checks: list[str], seconds: int) -> str:  # noqa: ANN001
    """Markdown: req/s, latency, ratio to tipg and CPU per request."""
    _, stamp = common.now_stamp()
    tipg = {key: r.rps for key, _, name, r in rows if name == "tipg"}
    table = [[f"({key}) sweep of {n} tiles", name, f"{r.rps:,.1f}", f"{r.p50_ms:,.1f} ms",
              f"{r.p99_ms:,.1f} ms", f"{r.rps / tipg[key]:.2f}×" if tipg.get(key) else "–",
              f"{r.cpu_ms.get('server', 0):.1f} / {r.cpu_ms.get('db', 0):.1f}"]
             for key, n, name, r in rows]
    m = common.machine_info()
    return "\n".join([
        f"# Vector tiles: quarters vs tipg ({stamp})", "",
        f"Machine: {m.get('cpu', '?')}, {m.get('nproc', '?')} cores; wrk -t{common.WRK_THREADS} "
        f"-c{common.WRK_CONNECTIONS} -d{seconds}s over a Lua list of tiles; one worker each.", "",
        common.md_table(["request", "server", "req/s", "p50", "p99", "vs tipg",
                         "CPU ms/req server / db"], table), "",
        *[f"- {c}" for c in checks],
        "- quarters keeps the points within its 64/4096 tile buffer; tipg uses its own buffer "
        "and stops at 10,000 features per tile by default (TIPG_MAX_FEATURES_PER_TILE), so its "
        "z12 tile is truncated and its z12 figure is for a smaller tile.", "",
    ])


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-wait", action="store_true",
                        help="do not wait for an idle machine before each run")
    args = parser.parse_args()
    text = run(args.seconds, not args.no_wait)
    path = common.write_result("tiles", text)
    print(text)
    log(f"written to {path}")


if __name__ == "__main__":
    main()
