"""Import benchmark: quarters' boundary importer against ogr2ogr on the same job.

The job: the 10,997 municipalities of BKG VG5000 (EPSG:31467 shapefile) → EPSG:25832,
MultiPolygon, made valid, into a PostGIS table of the same throwaway database.

    quarters: import_boundaries(engine, VG5000_GEM.shp, BoundarySpec("gemeinde", repair=True))
              on a freshly migrated schema each run (timed in-process; also the CLI end to end)
    ogr2ogr : ogr2ogr -f PostgreSQL PG:"<conninfo>" VG5000_GEM.shp -nln ogr_municipalities
              -t_srs EPSG:25832 -nlt MULTIPOLYGON -makevalid -lco GEOMETRY_NAME=geom
              --config PG_USE_COPY YES          (table dropped before each run)

Every quarters run starts from a new, migrated database. Runs alternate (quarters in-process,
quarters CLI, ogr2ogr, …); the median of ``--runs`` (3) is reported.
Usage: .venv/bin/python bench/bench_import.py [--runs 3] [--no-cli]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import psycopg  # noqa: E402
from common import log  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from quarters.embedded import Cluster  # noqa: E402
from quarters.imports.boundaries import (
    BoundarySpec,  # noqa: E402
    import_boundaries,  # noqa: E402
)
from quarters.migrate import upgrade  # noqa: E402

SHAPEFILE = common.DATA_DIR / "raw" / "bkg-vg5000-2021" / "VG5000_GEM.shp"
EXPECTED = 10_997
OGR_TABLE = "ogr_municipalities"
TEMPLATE_DB = "bench_template"
RUN_DB = "bench_import"


@dataclass
class ImportFigures:
    """Timings (s) and checks of both importers."""

    quarters: list[float] = field(default_factory=list)
    quarters_cli: list[float] = field(default_factory=list)
    ogr: list[float] = field(default_factory=list)
    quarters_cpu: list[tuple[float, float]] = field(default_factory=list)  # (client, server) s
    ogr_cpu: list[tuple[float, float]] = field(default_factory=list)
    load: list[float] = field(default_factory=list)  # 1-minute load average before each round
    checks: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


@dataclass
class Target:
    """A freshly created and migrated database of the throwaway cluster."""

    cluster: Cluster
    dbname: str
    engine: Engine

    @property
    def url(self) -> str:
        """SQLAlchemy URL of this database."""
        return self.cluster.url("admin").rsplit("/", 1)[0] + "/" + self.dbname

    @property
    def conninfo(self) -> str:
        """libpq string of this database."""
        return self.cluster.conninfo(self.dbname)


def make_template(cluster: Cluster) -> None:
    """A template database with PostGIS, so that each run starts from an empty one quickly."""
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    with psycopg.connect(cluster.conninfo(TEMPLATE_DB), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")


def fresh_database(cluster: Cluster) -> Target:
    """Drop and recreate the run database from the template, then migrate it (untimed)."""
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {RUN_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {RUN_DB} TEMPLATE {TEMPLATE_DB}")
    target = Target(cluster, RUN_DB, engine=None)  # type: ignore[arg-type]
    target.engine = create_engine(target.url)
    upgrade(target.engine)
    return target


def server_cpu(cluster: Cluster) -> float:
    """CPU seconds of the cluster's ended backends (the postmaster's reaped children); read
    after the connections of a run are closed, the difference is what that run's backends
    used (load-independent, unlike wall time)."""
    time.sleep(0.3)  # let the postmaster reap the backends that just closed
    pid = (cluster.pgdata / "postmaster.pid").read_text().split()[0]
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[13]) + int(stat[14])) / os.sysconf("SC_CLK_TCK")


def own_cpu(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of this process (all threads) or of its ended children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def time_quarters(target: Target) -> tuple[float, tuple[float, float]]:
    """One in-process import into the fresh database; returns seconds and (client, server)
    CPU seconds."""
    target.engine.dispose()  # the migration's backend is not part of the import
    server0, client0 = server_cpu(target.cluster), own_cpu()
    start = time.perf_counter()
    summary = import_boundaries(target.engine, SHAPEFILE,
                                BoundarySpec(level="gemeinde", repair=True),
                                source_name="BKG VG5000 (bench)")
    seconds = time.perf_counter() - start
    client = own_cpu() - client0
    target.engine.dispose()
    server = server_cpu(target.cluster) - server0
    if summary.inserted != EXPECTED:
        raise RuntimeError(f"quarters inserted {summary.inserted}, expected {EXPECTED}")
    log(f"quarters import: {seconds:.2f} s ({summary.inserted} rows, "
        f"{len(summary.repaired)} repaired; CPU client {client:.2f} s, server {server:.2f} s)")
    return seconds, (client, server)


def cli_command() -> list[str]:
    """The quarters CLI doing the same import."""
    return [str(common.QUARTERS_BIN), "import", "boundaries", str(SHAPEFILE),
            "--level", "gemeinde", "--repair", "--source-name", "BKG VG5000 (bench)"]


def time_quarters_cli(target: Target) -> float:
    """One end-to-end CLI import (Python start-up included) into the fresh database."""
    env = {**os.environ, "QUARTERS_DATABASE_URL": target.url}
    start = time.perf_counter()
    done = subprocess.run(cli_command(), capture_output=True, text=True, env=env, timeout=600,
                          check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"quarters CLI import failed: {done.stderr}{done.stdout}")
    log(f"quarters CLI import: {seconds:.2f} s")
    return seconds


def ogr_command(conninfo: str) -> list[str]:
    """The ogr2ogr command line of the comparison."""
    return ["ogr2ogr", "-f", "PostgreSQL", f"PG:{conninfo}", str(SHAPEFILE),
            "-nln", OGR_TABLE, "-t_srs", "EPSG:25832", "-nlt", "MULTIPOLYGON", "-makevalid",
            "-lco", "GEOMETRY_NAME=geom", "--config", "PG_USE_COPY", "YES"]


def time_ogr(target: Target) -> tuple[float, tuple[float, float]]:
    """One ogr2ogr run into a table of its own (dropped first); returns seconds and (client,
    server) CPU seconds."""
    with target.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS public.{OGR_TABLE} CASCADE"))
    target.engine.dispose()
    server0, client0 = server_cpu(target.cluster), own_cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(ogr_command(target.conninfo), capture_output=True, text=True,
                          timeout=600, check=False)
    seconds = time.perf_counter() - start
    client = own_cpu(resource.RUSAGE_CHILDREN) - client0
    server = server_cpu(target.cluster) - server0
    if done.returncode != 0:
        raise RuntimeError(f"ogr2ogr failed: {done.stderr}{done.stdout}")
    with target.engine.connect() as conn:
        n = conn.execute(text(f"SELECT count(*) FROM {OGR_TABLE}")).scalar_one()
    if n != EXPECTED:
        raise RuntimeError(f"ogr2ogr loaded {n} rows, expected {EXPECTED}")
    log(f"ogr2ogr import: {seconds:.2f} s ({n} rows; CPU client {client:.2f} s, "
        f"server {server:.2f} s)")
    return seconds, (client, server)


def compare_tables(engine: Engine) -> list[str]:
    """Check both tables hold the same job's result: count, SRID, type, validity, area."""
    checks = []
    with engine.connect() as conn:
        for table, key in (("municipalities", "ags"), (OGR_TABLE, "ags")):
            row = conn.execute(text(
                f"SELECT count(*), count(*) FILTER (WHERE NOT ST_IsValid(geom)),"
                f" min(ST_SRID(geom)), string_agg(DISTINCT GeometryType(geom), ','),"
                f" round((sum(ST_Area(geom)) / 1e6)::numeric, 1), count(DISTINCT {key})"
                f" FROM {table}")).one()
            checks.append(f"`{table}`: {row[0]} rows, {row[1]} invalid, SRID {row[2]}, "
                          f"{row[3]}, {row[4]} km², {row[5]} distinct AGS")
        diff = conn.execute(text(
            f"SELECT count(*) FROM municipalities m JOIN {OGR_TABLE} o ON o.ags = m.ags"
            " WHERE abs(ST_Area(m.geom) - ST_Area(o.geom)) > 1")).scalar_one()
        shift = conn.execute(text(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), max(d) FROM ("
            " SELECT ST_Distance(ST_Centroid(m.geom), ST_Centroid(o.geom)) d"
            f" FROM municipalities m JOIN {OGR_TABLE} o ON o.ags = m.ags) x")).one()
        checks.append(f"features whose area differs by > 1 m² between the two: {diff}; "
                      f"centroid offset between the two: median {shift[0]:.2f} m, max "
                      f"{shift[1]:.2f} m (quarters reprojects with pyproj, ogr2ogr with GDAL's "
                      "PROJ; they may pick different DHDN→ETRS89 transformations)")
    return checks


def run(runs: int = 3, with_cli: bool = True) -> str:
    """Run the import benchmark and return its Markdown report (also written to results/)."""
    if not SHAPEFILE.exists():
        raise SystemExit(f"{SHAPEFILE} is missing (set QUARTERS_DATA_DIR)")
    figures = ImportFigures()
    with common.throwaway_cluster() as cluster:
        make_template(cluster)
        target = None
        try:
            for n in range(runs):
                figures.load.append(os.getloadavg()[0])
                log(f"run {n + 1}/{runs} (load average {figures.load[-1]:.2f})")
                target = fresh_database(cluster)
                seconds, cpu = time_quarters(target)
                figures.quarters.append(seconds)
                figures.quarters_cpu.append(cpu)
                if with_cli:
                    target.engine.dispose()
                    target = fresh_database(cluster)
                    figures.quarters_cli.append(time_quarters_cli(target))
                # ogr2ogr into the same database as the last quarters import
                seconds, cpu = time_ogr(target)
                figures.ogr.append(seconds)
                figures.ogr_cpu.append(cpu)
                if n == runs - 1:
                    figures.checks = compare_tables(target.engine)
                target.engine.dispose()
            versions = common.db_versions(cluster.conninfo())
            figures.commands = [
                "before each quarters run: a new database from a PostGIS template, migrated "
                "with `quarters.migrate.upgrade(engine)` (untimed)",
                "quarters (in-process, timed around the call): `import_boundaries(engine, "
                "VG5000_GEM.shp, BoundarySpec(level='gemeinde', repair=True))`",
                "quarters CLI: `QUARTERS_DATABASE_URL=postgresql+psycopg://… quarters import "
                "boundaries VG5000_GEM.shp --level gemeinde --repair --source-name "
                "'BKG VG5000 (bench)'` (wall time of the process)",
                "ogr2ogr: `" + common.masked(" ".join(
                    f'"{c}"' if c.startswith("PG:") else c
                    for c in ogr_command(cluster.conninfo(RUN_DB))), cluster)
                + "` (into the database of the preceding quarters run; table dropped first)",
            ]
        finally:
            if target is not None:
                target.engine.dispose()
    return report(figures, versions, runs, with_cli)


def report(f: ImportFigures, versions: dict[str, str], runs: int, with_cli: bool) -> str:
    """Markdown report of the import benchmark."""
    day, stamp = common.now_stamp()
    m = common.machine_info()
    q, o = common.median(f.quarters), common.median(f.ogr)
    rows = [["quarters `import_boundaries` (in-process)", f"{q:.2f}",
             ", ".join(f"{x:.2f}" for x in f.quarters), f"{q / o:.2f}×"]]
    if with_cli:
        c = common.median(f.quarters_cli)
        rows.append(["quarters CLI `quarters import boundaries` (incl. start-up)", f"{c:.2f}",
                     ", ".join(f"{x:.2f}" for x in f.quarters_cli), f"{c / o:.2f}×"])
    rows.append(["ogr2ogr (GDAL, COPY, -makevalid)", f"{o:.2f}",
                 ", ".join(f"{x:.2f}" for x in f.ogr), "1.00×"])
    cpu_rows = []
    for label, cpu in (("quarters `import_boundaries`", f.quarters_cpu),
                       ("ogr2ogr", f.ogr_cpu)):
        client = common.median([c for c, _ in cpu])
        server = common.median([s for _, s in cpu])
        total = common.median([c + s for c, s in cpu])
        cpu_rows.append([label, f"{client:.2f}", f"{server:.2f}", f"{total:.2f}"])
    q_cpu = common.median([c + s for c, s in f.quarters_cpu])
    o_cpu = common.median([c + s for c, s in f.ogr_cpu])
    loads = ", ".join(f"{x:.2f}" for x in f.load)
    verdict = ("meets the goal (no slower than ogr2ogr)" if q <= o else
               f"misses the goal: {q / o:.2f}× the time of ogr2ogr")
    lines = [
        f"## Import benchmark — {stamp}",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, {m['os']}, "
        f"Python {m['python']}.",
        f"Versions: quarters {common.quarters_version()}, PostgreSQL {versions['postgresql']}, "
        f"PostGIS {versions['postgis']} (GEOS {versions['geos']}, PROJ {versions['proj']}), "
        f"{common.tool_version(['ogr2ogr', '--version'])}.",
        "",
        f"Job: {EXPECTED:,} municipalities, BKG VG5000_GEM.shp (EPSG:31467) → EPSG:25832 "
        f"MultiPolygon, made valid, same throwaway database; median of {runs} runs "
        "(alternating).",
        "",
        common.md_table(["importer", "median s", "runs s", "time vs ogr2ogr"], rows),
        "",
        f"quarters in-process: **{verdict}**.",
        "",
        f"Load average (1 min) before each round: {loads} (2 cores shared with other work: "
        "wall times are indications when it is above ~0.5). CPU seconds per import, median "
        "(client: the importing process with its threads; server: its PostgreSQL backend, "
        "from the postmaster's reaped children):",
        "",
        common.md_table(["importer", "client CPU s", "server CPU s", "total CPU s"], cpu_rows),
        "",
        f"Total CPU: quarters {q_cpu / o_cpu:.2f}× ogr2ogr's.",
        "",
        "Checks after the last runs:",
        *[f"- {c}" for c in f.checks],
        "",
        "Commands:",
        *[f"- {c}" for c in f.commands],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    """Command-line entry point; prints the report and writes bench/results/import-<date>.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI timing")
    args = parser.parse_args(argv)
    text_ = run(args.runs, not args.no_cli)
    path = common.write_result("import", text_)
    print(text_)
    log(f"written to {path}")
    return text_


if __name__ == "__main__":
    main()
