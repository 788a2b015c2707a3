"""Measure the read-path variants of variant_server.py under the bench load (experiment).

Usage: .venv/bin/python bench/experiments/read_variants.py [--seconds 10]
Same database and wrk run as bench_read.py; prints req/s, p50 and CPU ms per request.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bench_read  # noqa: E402
import common  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from quarters.migrate import upgrade  # noqa: E402

# (label, flags or None for `quarters serve`, path prefix, requests)
VARIANTS = [
    ("quarters serve, as shipped", None, "", "bd"),
    ("same app, no access log", ["nolog"], "", "bd"),
    ("same app, no access log, no pre-ping, autocommit", ["nolog", "noping", "autocommit"], "",
     "bd"),
    ("bare FastAPI, sync route + quarters' get_conn dependency, SQLAlchemy, no log",
     ["sa", "nolog", "noping", "autocommit"], "/y", "d"),
    ("bare FastAPI, async route + quarters' get_conn dependency, SQLAlchemy, no log",
     ["sa", "nolog", "noping", "autocommit"], "/z", "d"),
    ("bare FastAPI, sync route, engine.connect() in the route, SQLAlchemy, no log",
     ["sa", "nolog", "noping", "autocommit"], "/x", "d"),
    ("bare FastAPI, sync route, psycopg ConnectionPool, no log", ["syncraw", "nolog"], "/x", "bd"),
    ("bare FastAPI, async route, psycopg AsyncConnectionPool, access log on", ["async"], "/x",
     "bd"),
    ("bare FastAPI, async route, psycopg AsyncConnectionPool, no log", ["async", "nolog"], "/x",
     "bd"),
]


def main() -> None:
    """Run every variant against one throwaway database."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quarters-bench-variants-"))
    rows = []
    with common.throwaway_cluster() as cluster:
        engine = create_engine(cluster.url())
        try:
            bench_read.load_dataset(cluster, engine)
            upgrade(engine)
            did = bench_read.copy_districts(engine)[bench_read.FEATURE_DISTRICT]
            env = {**os.environ, "QUARTERS_DATABASE_URL": cluster.url()}
            for label, flags, prefix, which in VARIANTS:
                if flags is None:
                    server = bench_read.start_quarters(cluster, workdir)
                    base, proc = server.base, server.proc
                else:
                    port = common.free_port()
                    proc = common.start_process(
                        [sys.executable, str(HERE / "variant_server.py"), str(port), *flags],
                        logfile=workdir / "variant.log", env=env, cwd=common.PROJECT_ROOT)
                    base = f"http://127.0.0.1:{port}"
                if prefix:
                    paths = {"b": f"{prefix}/districts?level=bench&limit=50",
                             "d": f"{prefix}/districts/{did}"}
                else:
                    paths = {"b": "/api/collections/districts/items?level=bench&limit=50",
                             "d": f"/api/collections/districts/items/{did}"}
                try:
                    common.wait_ready(base + paths["d"], proc)
                    cells = []
                    for key in "db":
                        if key not in which:
                            cells += ["", ""]
                            continue
                        status, _ = common.http_get(base + paths[key])
                        assert status == 200, (label, key, status)
                        r = common.run_wrk(base + paths[key], args.seconds, watch={
                            "server": [proc.pid], "db": [common.cluster_pid(cluster)]})
                        cells += [f"{r.rps:,.0f}", f"{r.cpu_ms['server']:.2f} / "
                                  f"{r.cpu_ms['db']:.2f}"]
                    rows.append([label, *cells])
                finally:
                    common.stop_process(proc)
        finally:
            engine.dispose()
            shutil.rmtree(workdir, ignore_errors=True)
    print(common.md_table(["variant", "(d) req/s", "(d) CPU ms server / PG", "(b) req/s",
                           "(b) CPU ms server / PG"], rows))


if __name__ == "__main__":
    main()
