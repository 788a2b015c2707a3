"""Read-path benchmark: quarters against tipg (and the PostgreSQL floor) on the same database.

1. A throwaway PostgreSQL + PostGIS cluster; the shared deterministic dataset
   (``shared/bench/dataset.sql``: 50 districts, 100,000 measures, EPSG:4326) is loaded into the
   schema ``benchsrc``; then quarters' schema is migrated into ``public``.
2. The 50 districts are copied into quarters' own ``districts`` table (level ``bench``,
   city 15002000, EPSG:25832, MultiPolygon). Measures are copied into quarters' ``measures``
   table once quarters publishes a ``measures`` collection; until then request (a) is reported
   as "not yet".
3. ``quarters serve`` and tipg (``uvicorn tipg.main:app --workers 1``, own venv
   ``bench/.venv-tipg``) run against that one database; every URL is checked (200, expected
   count, same features) before it is loaded with the same bounded wrk run:
   ``wrk -t2 -c16 -d{seconds}s --timeout 10s --latency URL`` (after a 2 s warm-up).
4. ``pgbench -n -c4 -j2 -T10 -M prepared -f FILE`` gives two floors: PostgreSQL alone answering
   the shared SQL (``shared/bench/pgbench``) on the same rows in ``benchsrc``, and PostgreSQL
   answering the very statements quarters sends (captured with ``log_statement = all``).
   CPU per request of server and database and the load of other processes are recorded too.

Usage: .venv/bin/python bench/bench_read.py [--seconds 15] [--rounds 1] [--no-pgbench] [--workers 2]
       [--cases a,b,f] [--no-page-cache]
Writes bench/results/read-<date>.md and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import shapely  # noqa: E402
from common import WrkResult, log  # noqa: E402
from shapely.geometry import shape  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from quarters.embedded import Cluster  # noqa: E402
from quarters.migrate import upgrade  # noqa: E402
from quarters.sources import upsert_source  # noqa: E402

DATASET = common.SHARED_BENCH / "dataset.sql"
PGBENCH_DIR = common.SHARED_BENCH / "pgbench"
TIPG_VENV = Path(os.environ.get("QUARTERS_TIPG_VENV", common.BENCH_DIR / ".venv-tipg"))
TIPG_PACKAGES = ["tipg", "uvicorn"]
CITY = "15002000"
LEVEL = "bench"
BBOX = "11.962788,51.475503,11.977212,51.484497"  # (a) 1 km box around the centre
BBOX_MATCHES = 2171
FEATURE_DISTRICT = 25  # (d): district of the bench dataset fetched by id
FEATURE_MEASURE = 4242  # (d′): the measure of the shared README's (d)
GOALS = {"a": 10.0, "b": 5.0, "d": 3.0, "d2": 3.0, "f": 5.0}  # issues 9 and 10
# (f) a CQL2-filtered page (OGC API Features Part 3), the same filter text for both servers
CQL2_FILTER = "action_field = 'Verkehr' AND budget_planned >= 500000"
REFERENCE_F = """
SELECT json_build_object('type', 'FeatureCollection', 'features',
       json_agg(ST_AsGeoJSON(m.*, 'geom', 9)::json))
FROM (SELECT * FROM measures WHERE category = 'Verkehr' AND budget >= 500000
      ORDER BY id LIMIT 100) m;
"""
MEDIAN_NOTE = "; the run with the median req/s is shown (of an even number the lower middle one)"


# -- data ------------------------------------------------------------------------------------
def load_dataset(cluster: Cluster, engine: Engine) -> None:
    """Run dataset.sql with ``SET search_path = benchsrc, public`` prepended; check the result."""
    with engine.begin() as conn:
        clash = conn.execute(text(
            "SELECT to_regclass('public.districts') IS NOT NULL"
            " OR to_regclass('public.measures') IS NOT NULL")).scalar_one()
        if clash:  # dataset.sql drops 'districts'/'measures' found on the search path
            raise RuntimeError("load the dataset before quarters' schema exists")
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS benchsrc"))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write("SET search_path = benchsrc, public;\n")
        fh.write(DATASET.read_text())
        script = fh.name
    try:
        log(f"loading {DATASET} into schema benchsrc")
        done = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", script],
            capture_output=True, text=True, env=common.pg_env(cluster), timeout=600, check=False)
    finally:
        os.unlink(script)
    if done.returncode != 0:
        raise RuntimeError(f"dataset.sql failed: {done.stderr}{done.stdout}")
    with engine.connect() as conn:
        counts = conn.execute(text(
            "SELECT (SELECT count(*) FROM benchsrc.districts),"
            " (SELECT count(*) FROM benchsrc.measures),"
            " to_regclass('public.districts') IS NULL AND to_regclass('public.measures') IS NULL"
        )).one()
    if counts[0] != 50 or counts[1] != 100_000 or not counts[2]:
        raise RuntimeError(f"dataset not where expected: {counts}")
    log("benchsrc.districts: 50 rows, benchsrc.measures: 100,000 rows")


def copy_districts(engine: Engine) -> dict[int, int]:
    """Copy the 50 bench districts into quarters' table; returns {bench id: quarters id}."""
    with engine.begin() as conn:
        src = upsert_source(
            conn, "bench-dataset", name="Synthetic benchmark dataset (shared/bench/dataset.sql)",
            licence="synthetic", attribution="quarters benchmark (synthetic data)",
            note="loaded by bench/bench_read.py")
        conn.execute(text(
            "INSERT INTO municipalities (ags, ars, name, bez, source_id, geom)"
            " SELECT CAST(:city AS text), CAST(:city AS text) || '0000',"
            "  'Halle (Saale) [bench]', 'Stadt', :src,"
            "  ST_Multi(ST_Transform(ST_MakeEnvelope(11.85, 51.40, 12.10, 51.56, 4326), 25832))"
            " ON CONFLICT (ags) DO NOTHING"), {"city": CITY, "src": src})
        rows = conn.execute(text(
            "INSERT INTO districts (city_ags, level, code, name, population, area_ha_official,"
            "                       attributes, source_id, geom)"
            " SELECT CAST(:city AS text), CAST(:level AS text), d.id::text, d.name,"
            "  d.population, d.area_km2 * 100,"
            "  jsonb_build_object('bench_code', d.code, 'households', d.households,"
            "                     'green_share', d.green_share),"
            "  :src, ST_Multi(ST_Transform(d.geom, 25832))"
            " FROM benchsrc.districts d ORDER BY d.id"
            " RETURNING code, id"), {"city": CITY, "level": LEVEL, "src": src}).all()
        invalid = conn.execute(text(
            "SELECT count(*) FROM districts WHERE level = :level AND NOT ST_IsValid(geom)"),
            {"level": LEVEL}).scalar_one()
        conn.execute(text("ANALYZE districts"))
    if len(rows) != 50 or invalid:
        raise RuntimeError(f"copied {len(rows)} districts, {invalid} invalid")
    log("copied 50 districts into quarters' districts (level 'bench', EPSG:25832)")
    return {int(code): qid for code, qid in rows}


STATUS_TO_QUARTERS = ("CASE m.status WHEN 'in Umsetzung' THEN 'in_umsetzung' "
                      "WHEN 'zurückgestellt' THEN 'eingestellt' ELSE m.status END")


def fill_measures(engine: Engine, district_ids: dict[int, int]) -> str:
    """Copy benchsrc.measures into quarters' ``measures`` table, column by matching column.

    Only used once quarters publishes a measures collection. Every bench measure is stored as
    published. Returns "" on success or the reason why it could not be filled (then adapt the
    column mapping below to the new table).
    """
    with engine.begin() as conn:
        cols = conn.execute(text(
            "SELECT column_name, is_nullable = 'NO' AND column_default IS NULL"
            "  AND is_generated = 'NEVER' AS required"
            " FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = 'measures'")).all()
        if not cols:
            return "quarters publishes 'measures' but there is no table public.measures"
        if conn.execute(text("SELECT count(*) FROM public.measures")).scalar_one():
            return "public.measures is not empty; the bench does not overwrite data"
        srid = int(conn.execute(text(
            "SELECT Find_SRID('public', 'measures', 'geom')")).scalar_one())
        src = conn.execute(text("SELECT id FROM sources WHERE key = 'bench-dataset'")).scalar_one()
        checks = " ".join(conn.execute(text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'public.measures'::regclass AND contype = 'c'")).scalars())
        conn.execute(text("CREATE TEMP TABLE _dmap (bench int, qid int) ON COMMIT DROP"))
        for bench, qid in district_ids.items():
            conn.execute(text("INSERT INTO _dmap VALUES (:b, :q)"), {"b": bench, "q": qid})
        exprs = {  # quarters' column → value from the bench row m (and its district dm)
            "id": "m.id", "slug": "'bench-' || m.id", "title": "m.title",
            "category": "m.category", "action_field": "m.category",
            "status": STATUS_TO_QUARTERS if "in_umsetzung" in checks else "m.status",
            "budget": "m.budget", "budget_planned": "m.budget",
            "start_year": "m.start_year", "start_date": "make_date(m.start_year, 1, 1)",
            "district_id": "dm.qid", "geom": f"ST_Transform(m.geom, {srid})",
            "city_ags": f"'{CITY}'", "source_id": str(int(src)), "source": "'bench'",
            "licence": "'synthetic'", "published": "true", "published_at": "now()",
        }
        names = [c for c, _ in cols if c in exprs]
        missing = [c for c, required in cols if required and c not in exprs]
        if missing:
            return f"public.measures needs column(s) {', '.join(missing)} the bench cannot fill"
        conn.execute(text(
            f"INSERT INTO public.measures ({', '.join(names)})"
            f" SELECT {', '.join(exprs[c] for c in names)}"
            " FROM benchsrc.measures m LEFT JOIN _dmap dm ON dm.bench = m.district_id"
            # in the physical order of the reference table (dataset.sql's UPDATE left it
            # grouped by district), so a bbox touches as many heap pages in both tables
            " ORDER BY m.ctid"))
        conn.execute(text(
            "SELECT setval(s, (SELECT max(id) FROM public.measures)) FROM"
            " pg_get_serial_sequence('public.measures', 'id') s WHERE s IS NOT NULL"))
        conn.execute(text("ANALYZE public.measures"))
    log(f"copied 100,000 measures into quarters' measures ({', '.join(names)})")
    return ""


def vacuum(cluster: Cluster) -> None:
    """VACUUM ANALYZE the database, so that autovacuum does not run during the measurements."""
    import psycopg

    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    log("VACUUM (ANALYZE) done")


# -- servers ---------------------------------------------------------------------------------
def ensure_tipg() -> Path:
    """The tipg venv (bench/.venv-tipg), created with ``pip install tipg uvicorn`` if missing."""
    python = TIPG_VENV / "bin" / "python"
    ok = python.exists() and subprocess.run(
        [str(python), "-c", "import tipg, uvicorn"], capture_output=True, check=False
    ).returncode == 0
    if not ok:
        log(f"creating {TIPG_VENV} and installing {' '.join(TIPG_PACKAGES)}")
        subprocess.run(["python3", "-m", "venv", str(TIPG_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *TIPG_PACKAGES], check=True)
    return TIPG_VENV


def tipg_version() -> str:
    """Installed tipg version."""
    out = subprocess.run([str(TIPG_VENV / "bin" / "python"), "-c",
                          "import tipg, uvicorn; print(tipg.__version__, uvicorn.__version__)"],
                         capture_output=True, text=True, check=False).stdout.split()
    return f"tipg {out[0]} (uvicorn {out[1]})" if len(out) == 2 else "tipg ?"


@dataclass
class Server:
    """A started API server."""

    name: str
    base: str
    proc: subprocess.Popen
    command: str


def start_quarters(cluster: Cluster, workdir: Path, workers: int = 1,
                   env_extra: dict[str, str] | None = None) -> Server:
    """``quarters serve --workers N`` against the cluster (one worker unless asked);
    ``env_extra``: further QUARTERS_* settings (``--no-page-cache``)."""
    port = common.free_port()
    cmd = [str(common.QUARTERS_BIN), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    env = {**os.environ, "QUARTERS_DATABASE_URL": cluster.url("admin"), **(env_extra or {})}
    proc = common.start_process(cmd, logfile=workdir / f"quarters-{workers}w.log", env=env,
                                cwd=common.PROJECT_ROOT)
    base = f"http://127.0.0.1:{port}"
    common.wait_ready(f"{base}/api/health", proc)
    extra = "".join(f"{k}={v} " for k, v in (env_extra or {}).items())
    shown = f"QUARTERS_DATABASE_URL=postgresql+psycopg://quarters:***@127.0.0.1:PORT/quarters " \
            f"{extra}quarters serve --host 127.0.0.1 --port {port} --workers {workers}"
    name = "quarters" if workers == 1 else f"quarters --workers {workers}"
    return Server(name, base, proc, shown)


def _process_tree(pid: int) -> list[int]:
    """A server process and its worker processes (uvicorn --workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(c) for c in children)]


def start_tipg(cluster: Cluster, workdir: Path) -> Server:
    """tipg on one uvicorn worker against the cluster (schema public only)."""
    port = common.free_port()
    cmd = [str(TIPG_VENV / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    env = {**os.environ, "DATABASE_URL": common.plain_url(cluster),
           "TIPG_DB_SCHEMAS": '["public"]'}
    tipg_home = workdir / "tipg"
    tipg_home.mkdir(exist_ok=True)  # tipg reads a .env of its cwd: give it an empty one
    proc = common.start_process(cmd, logfile=workdir / "tipg.log", env=env, cwd=tipg_home)
    base = f"http://127.0.0.1:{port}"
    common.wait_ready(f"{base}/collections", proc)
    shown = ("DATABASE_URL=postgresql://quarters:***@127.0.0.1:PORT/quarters "
             "TIPG_DB_SCHEMAS='[\"public\"]' bench/.venv-tipg/bin/uvicorn tipg.main:app "
             f"--host 127.0.0.1 --port {port} --workers 1")
    return Server("tipg", base, proc, shown)


# -- requests and their checks ---------------------------------------------------------------
@dataclass
class Request:
    """One request of the benchmark, as each server spells it."""

    key: str
    label: str
    quarters_path: str
    tipg_path: str
    expect_features: int | None  # numberReturned of a collection, None for a single feature
    reference_sql: str = ""  # the shared floor SQL (on benchsrc) of this request
    bbox_page: bool = False  # tipg's looser bbox test may put other features on the page
    results: dict[str, list[WrkResult]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    quarters_sql: list[str] = field(default_factory=list)  # what quarters sends per request
    quarters_roundtrips: int = 0
    floors: dict[str, tuple[float, str]] = field(default_factory=dict)
    note: str = ""


def _same_geometry(a: dict, b: dict, tolerance: float = 2e-6) -> bool:
    ga, gb = shapely.normalize(shape(a)), shapely.normalize(shape(b))
    return ga.geom_type == gb.geom_type and ga.equals_exact(gb, tolerance)


def verify(req: Request, servers: dict[str, Server]) -> None:
    """Each server answers 200 with the expected count, and both return the same features."""
    docs = {}
    for name, server in servers.items():
        path = req.tipg_path if name == "tipg" else req.quarters_path
        status, body = common.http_get(server.base + path)
        if status != 200:
            raise RuntimeError(f"({req.key}) {name} {path} → {status}: {body[:300]!r}")
        doc = json.loads(body)
        req.sizes[name] = len(body)
        if req.expect_features is not None:
            n = doc.get("numberReturned")
            if n != req.expect_features or len(doc["features"]) != req.expect_features:
                raise RuntimeError(f"({req.key}) {name} returned {n} / {len(doc['features'])} "
                                   f"features, expected {req.expect_features}")
        elif doc.get("type") != "Feature":
            raise RuntimeError(f"({req.key}) {name} did not return a Feature")
        docs[name] = doc
    q, t = docs["quarters"], docs["tipg"]
    qf = q["features"] if "features" in q else [q]
    tf = t["features"] if "features" in t else [t]
    q_ids, t_ids = {str(f["id"]) for f in qf}, {str(f["id"]) for f in tf}
    if q_ids != t_ids:
        if not req.bbox_page:
            raise RuntimeError(f"({req.key}) quarters and tipg return different feature ids")
        # tipg's bbox test is looser (it also matches points just outside the box), so the
        # pages may differ at the end: same size, mostly the same features
        req.note = (f"numberMatched quarters {q.get('numberMatched')}, tipg "
                    f"{t.get('numberMatched')}; {len(q_ids & t_ids)} of {len(q_ids)} "
                    "features on the page are the same")
        if len(q_ids & t_ids) < 0.5 * len(q_ids):
            raise RuntimeError(f"({req.key}) the pages of quarters and tipg differ: {req.note}")
    by_id = {str(f["id"]): f for f in tf}
    for f in qf:
        other = by_id.get(str(f["id"]))
        if other is None:
            continue
        if not _same_geometry(f["geometry"], other["geometry"]):
            raise RuntimeError(f"({req.key}) feature {f['id']}: geometries differ")
        for prop in ("name", "title"):
            if f["properties"].get(prop) != other["properties"].get(prop):
                raise RuntimeError(f"({req.key}) feature {f['id']}: {prop} differs")
    log(f"({req.key}) verified: both 200, {len(qf)} feature(s), same geometries "
        f"(quarters {req.sizes['quarters']:,} B, tipg {req.sizes['tipg']:,} B)"
        + (f"; {req.note}" if req.note else ""))


# -- pgbench floors --------------------------------------------------------------------------
REFERENCE_D = """-- (d) reference floor: one district by primary key as GeoJSON
-- (shared q_feature.sql, applied to a district of benchsrc instead of measure 4242).
SELECT ST_AsGeoJSON(d.*, 'geom', 9) FROM districts d WHERE id = {id};
"""


def run_floors(cluster: Cluster, requests: list[Request], workdir: Path, seconds: int) -> None:
    """Two floors per request: PostgreSQL answering quarters' own SQL, and the shared SQL."""
    for req in requests:
        own = workdir / f"quarters_{req.key}.sql"
        own.write_text("".join(s.rstrip().rstrip(";") + ";\n" for s in req.quarters_sql))
        req.floors["quarters_sql"] = common.run_pgbench(cluster, own, seconds)
        ref = Path(req.reference_sql)
        if not ref.is_absolute():
            path = workdir / f"reference_{req.key}.sql"
            path.write_text(req.reference_sql)
            ref = path
        req.floors["reference"] = common.run_pgbench(cluster, ref, seconds, "benchsrc,public")


# -- the run ---------------------------------------------------------------------------------
def build_requests(district_qid: int, measures: str, measures_note: str) -> list[Request]:
    """The requests in both servers' spelling; ``measures``: tipg's measures collection or ""."""
    reqs = []
    if measures:
        reqs.append(Request("a", "(a) bbox page, 1000 measures",
                            f"/api/collections/measures/items?bbox={BBOX}&limit=1000",
                            f"/collections/{measures}/items?bbox={BBOX}&limit=1000", 1000,
                            str(PGBENCH_DIR / "q_bbox_geojson_count.sql"), bbox_page=True))
    else:
        reqs.append(Request("a", "(a) bbox page, 1000 measures", "", "", None,
                            note=measures_note or "not yet (no measures collection)"))
    reqs.append(Request("b", "(b) 50 districts, full geometry",
                        f"/api/collections/districts/items?level={LEVEL}&limit=50",
                        "/collections/public.districts/items?limit=50", 50,
                        str(PGBENCH_DIR / "q_districts_geojson.sql")))
    reqs.append(Request("d", "(d) one feature by id (a district)",
                        f"/api/collections/districts/items/{district_qid}",
                        f"/collections/public.districts/items/{district_qid}", None,
                        REFERENCE_D.format(id=FEATURE_DISTRICT)))
    if measures:
        reqs.append(Request("d2", f"(d′) one feature by id (measure {FEATURE_MEASURE})",
                            f"/api/collections/measures/items/{FEATURE_MEASURE}",
                            f"/collections/{measures}/items/{FEATURE_MEASURE}", None,
                            str(PGBENCH_DIR / "q_feature.sql")))
        cql2 = urllib.parse.quote(CQL2_FILTER)
        reqs.append(Request("f", "(f) CQL2-filtered page, 100 measures",
                            f"/api/collections/measures/items?filter={cql2}&limit=100",
                            f"/collections/{measures}/items?filter={cql2}&limit=100", 100,
                            REFERENCE_F, bbox_page=True))
    return reqs


def run(seconds: int = 15, rounds: int = 1, pgbench: bool = True, workers: int = 1,
        cases: frozenset[str] | None = None, page_cache: bool = True) -> str:
    """Run the read benchmark; returns the Markdown report."""
    ensure_tipg()
    workdir = Path(tempfile.mkdtemp(prefix="quarters-bench-read-"))
    servers: dict[str, Server] = {}
    with common.throwaway_cluster() as cluster:
        engine = create_engine(cluster.url("admin"))
        try:
            load_dataset(cluster, engine)
            upgrade(engine)
            ids = copy_districts(engine)
            env_extra = {} if page_cache else {"QUARTERS_PAGE_CACHE_BYTES": "0"}
            servers["quarters"] = start_quarters(cluster, workdir, env_extra=env_extra)
            names = [c["id"] for c in common.get_json(
                servers["quarters"].base + "/api/collections")["collections"]]
            with_measures, note = "measures" in names, ""
            if with_measures:
                note = fill_measures(engine, ids)
                if note:
                    with_measures = False
                    note = f"measures collection exists, but: {note}"
            log("measures collection: " + ("yes" if with_measures else note or "not yet"))
            vacuum(cluster)
            servers["tipg"] = start_tipg(cluster, workdir)
            if workers > 1:
                servers["multi"] = start_quarters(cluster, workdir, workers, env_extra)
            measures = ""
            if with_measures:
                tipg_ids = [c["id"] for c in common.get_json(
                    servers["tipg"].base + "/collections")["collections"]]
                # the published view is what quarters' public collection reads
                measures = next((c for c in ("public.measures_public", "public.measures")
                                 if c in tipg_ids), "")
                if not measures:
                    note = "tipg does not list quarters' measures table"
            requests = [r for r in build_requests(ids[FEATURE_DISTRICT], measures, note)
                        if cases is None or r.key in cases]
            active = []
            for req in (r for r in requests if r.quarters_path):
                try:
                    verify(req, servers)
                except (RuntimeError, ValueError, KeyError) as exc:
                    log(f"({req.key}) check failed, not measured: {exc}")
                    req.note = f"check failed, not measured: {exc}"[:300]
                    continue
                url = servers["quarters"].base + req.quarters_path
                raw = common.capture_raw(cluster, url)
                req.quarters_roundtrips = len(raw)
                req.quarters_sql = [s for s in raw
                                    if s.strip().rstrip(";") not in common.NOISE_STATEMENTS]
                active.append(req)
            postmaster = common.cluster_pid(cluster)
            for n in range(rounds):
                for req in active:
                    for name in servers:
                        log(f"round {n + 1}/{rounds}: ({req.key}) {servers[name].name}")
                        path = req.tipg_path if name == "tipg" else req.quarters_path
                        if servers[name].proc.poll() is not None:
                            raise RuntimeError(
                                f"{name} exited ({servers[name].proc.returncode}):\n"
                                + common.log_tail(servers[name].proc))
                        watch = {"server": _process_tree(servers[name].proc.pid),
                                 "db": [postmaster]}
                        req.results.setdefault(name, []).append(
                            common.run_wrk(servers[name].base + path, seconds, watch=watch))
            for server in servers.values():
                common.stop_process(server.proc)
            if pgbench:
                run_floors(cluster, active, workdir, 10)
            versions = common.db_versions(cluster.conninfo())
        except BaseException:
            log(f"failed; server logs kept in {workdir}")
            raise
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        finally:
            for server in servers.values():
                common.stop_process(server.proc)
            engine.dispose()
    return report(requests, servers, versions, seconds, rounds, pgbench)


# -- the report ------------------------------------------------------------------------------
def _fmt(r: WrkResult) -> list[str]:
    flag = "" if r.clean else f" ⚠ {r.non_2xx} non-2xx {r.socket_errors}"
    return [f"{r.rps:,.1f}{flag}", f"{r.p50_ms:,.1f} ms", f"{r.p99_ms:,.1f} ms"]


def report(requests: list[Request], servers: dict[str, Server], versions: dict[str, str],
           seconds: int, rounds: int, pgbench: bool) -> str:
    """Markdown report: figures, goals, floors, CPU, machine, versions, commands."""
    _, stamp = common.now_stamp()
    m = common.machine_info()
    rows, floor_rows, cpu_rows, goal_lines = [], [], [], []
    for req in requests:
        if not req.results:
            rows.append([req.label, req.note, "", "", "", "", "", "–"])
            goal_lines.append(f"- {req.label}: goal ≥ {GOALS[req.key]:.0f}× tipg — {req.note}")
            continue
        q = common.median_result(req.results["quarters"])
        t = common.median_result(req.results["tipg"])
        ratio = q.rps / t.rps
        disturbed = any(r.other_cores > common.DISTURBED for r in (q, t))
        rows.append([req.label, *_fmt(q), *_fmt(t),
                     f"**{ratio:.2f}×**" + (" ⚠ disturbed" if disturbed else "")])
        met = "met" if ratio >= GOALS[req.key] else "**not met**"
        goal_lines.append(f"- {req.label}: ≥ {GOALS[req.key]:.0f}× tipg — {ratio:.2f}×, {met}")
        for name, r in (("quarters", q), ("tipg", t)):
            cpu_rows.append([req.label, name, f"{r.cpu_ms.get('server', 0):.2f}",
                             f"{r.cpu_ms.get('db', 0):.2f}", f"{r.cpu_ms.get('wrk', 0):.2f}",
                             f"{r.cores.get('server', 0):.2f} / {r.cores.get('db', 0):.2f} / "
                             f"{r.cores.get('wrk', 0):.2f}", f"{r.other_cores:.2f}"])
        if req.floors:
            own, ref = req.floors["quarters_sql"][0], req.floors["reference"][0]
            floor_rows.append([req.label, f"{ref:,.0f}", f"{own:,.0f}", f"{q.rps:,.1f}",
                               f"{100 * q.rps / ref:.0f} %", f"{100 * q.rps / own:.0f} %",
                               "met" if q.rps >= ref / 2 else "**not met**"])
    multi_rows = []
    for req in requests:
        if "multi" in req.results:
            w = common.median_result(req.results["multi"])
            q = common.median_result(req.results["quarters"])
            t = common.median_result(req.results["tipg"])
            multi_rows.append([req.label, *_fmt(w), f"**{w.rps / t.rps:.2f}×**",
                               f"{w.rps / q.rps:.2f}×"])
    lines = [
        f"## Read benchmark — {stamp}",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, {m['os']}, "
        f"Python {m['python']}. Server, PostgreSQL and wrk share these CPUs.",
        f"Versions: quarters {common.quarters_version()}, PostgreSQL {versions['postgresql']}, "
        f"PostGIS {versions['postgis']} (GEOS {versions['geos']}, PROJ {versions['proj']}), "
        f"{tipg_version()}, wrk {common.tool_version(['wrk', '--version']).split()[1]}.",
        "",
        f"Load: `wrk -t{common.WRK_THREADS} -c{common.WRK_CONNECTIONS} -d{seconds}s --timeout 10s "
        f"--latency URL` on 127.0.0.1, uncompressed, after a 2 s warm-up and after waiting for an "
        f"idle machine; {rounds} round(s)"
        f"{'' if rounds == 1 else MEDIAN_NOTE}. One server "
        "process each, same database (throwaway cluster, `max_parallel_workers_per_gather = 0`).",
        "",
        common.md_table(["request", "quarters req/s", "p50", "p99", "tipg req/s", "p50", "p99",
                         "ratio"], rows),
        "",
        "Goals (from the issue):",
        *goal_lines,
        "",
    ]
    if multi_rows:
        lines += [f"{servers['multi'].name} (the same requests; tipg keeps one worker):", "",
                  common.md_table(["request", "req/s", "p50", "p99", "vs tipg",
                                   "vs one worker"], multi_rows), ""]
    notes = [f"- {r.label}: {r.note}" for r in requests if r.results and r.note]
    if any("disturbed" in row[-1] for row in rows):
        notes.append(f"- ⚠ disturbed: other processes used more than {common.DISTURBED} cores "
                     "during a run (see the CPU table); repeat on a quiet machine")
    if notes:
        lines += ["Notes:", *notes, ""]
    if pgbench and floor_rows:
        lines += [
            "Database floor: `pgbench -n -c4 -j2 -T10 -M prepared -f FILE` over 127.0.0.1. "
            "*Reference* = the shared SQL (`shared/bench/pgbench`) on the same rows in "
            "`benchsrc` (EPSG:4326, no reprojection); *quarters' SQL* = the statements quarters "
            "sends for the request (captured with `log_statement = all`), run by pgbench. "
            "Aim: half the reference floor.",
            "",
            common.md_table(["request", "reference floor q/s", "quarters' SQL q/s",
                             "quarters req/s", "of reference", "of own SQL",
                             "half the reference"], floor_rows),
            "",
        ]
    if cpu_rows:
        lines += [
            "CPU per request (ms; server process, PostgreSQL backends, wrk) and cores busy "
            "during the run; *other* = cores used by processes not under test (should be ~0):",
            "",
            common.md_table(["request", "server", "server ms", "PostgreSQL ms", "wrk ms",
                             "cores server / PG / wrk", "other"], cpu_rows),
            "",
        ]
    lines += ["Response sizes (bytes, uncompressed; quarters writes 6 decimals, tipg 15 and, for "
              "measures, every column):", ""]
    for req in requests:
        if req.sizes:
            lines.append(f"- {req.label}: quarters {req.sizes['quarters']:,}, "
                         f"tipg {req.sizes['tipg']:,}")
    lines += ["", "Round trips to PostgreSQL per quarters request (pool ping, BEGIN, "
              "statements, ROLLBACK):", ""]
    for req in requests:
        if req.results:
            lines.append(f"- {req.label}: {req.quarters_roundtrips}")
    lines += ["", "Commands:", ""]
    for name, server in servers.items():
        lines.append(f"- {name}: `{server.command}`")
    for req in requests:
        if req.results:
            lines.append(f"- {req.label}: quarters `{req.quarters_path}`, tipg `{req.tipg_path}`")
            for kind, (_, cmd) in req.floors.items():
                cmd = re.sub(r"/tmp/quarters-bench-read-[^/]+/", "", cmd)
                lines.append(f"  - floor ({kind}): `{cmd}`")
    lines += ["- data: `shared/bench/dataset.sql` run by `psql -v ON_ERROR_STOP=1` with "
              "`SET search_path = benchsrc, public` prepended; the 50 districts copied into "
              "quarters' `districts` (level 'bench', `ST_Multi(ST_Transform(geom, 25832))`)", ""]
    if any(r.quarters_sql for r in requests):
        lines += ["quarters' SQL per request (`quarters_<request>.sql`, as run by pgbench):", "",
                  "```sql"]
        for req in requests:
            for sql in req.quarters_sql:
                lines.append(f"-- {req.key}\n{sql.strip().rstrip(';')};")
        lines += ["```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    """Command-line entry point; prints the report and writes bench/results/read-<date>.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every measurement")
    parser.add_argument("--no-pgbench", action="store_true", help="skip the database floor")
    parser.add_argument("--workers", type=int, default=1,
                        help="also measure `quarters serve --workers N` (N > 1)")
    parser.add_argument("--no-page-cache", action="store_true",
                        help="quarters with QUARTERS_PAGE_CACHE_BYTES=0 (every read builds its body)")
    parser.add_argument("--cases", default="",
                        help="only these requests, comma-separated keys (a,b,d,d2,f); default all")
    args = parser.parse_args(argv)
    cases = frozenset(c.strip() for c in args.cases.split(",") if c.strip()) or None
    unknown = (cases or set()) - set(GOALS)
    if unknown:
        parser.error(f"--cases: unknown {', '.join(sorted(unknown))}; known: {', '.join(GOALS)}")
    text_ = run(args.seconds, args.rounds, not args.no_pgbench, args.workers, cases,
                not args.no_page_cache)
    path = common.write_result("read", text_)
    print(text_)
    log(f"written to {path}")
    return text_


if __name__ == "__main__":
    main()
