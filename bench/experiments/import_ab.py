"""Two importers on the same job, alternating, CPU per import (experiment for issue 10 item 6).

Each run of this script imports the 10,997 BKG VG5000 municipalities ``--runs`` times (plus
one warm-up) with the ``quarters`` found on ``PYTHONPATH`` into a throwaway cluster (table
emptied between runs) and prints wall time, the client's CPU (this process, all threads) and
the CPU of its PostgreSQL backend (``/proc/<backend pid>/stat``: load does not inflate it as
much as wall time). Compare two source trees by alternating them, e.g. the code before
session 5 against the current one:

    git archive 8ebde10 src | tar -x -C /tmp/old
    for i in 1 2 3; do
      PYTHONPATH=/tmp/old/src .venv/bin/python bench/experiments/import_ab.py --label old
      PYTHONPATH=src .venv/bin/python bench/experiments/import_ab.py --label new
    done
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from quarters.imports.boundaries import BoundarySpec, import_into  # noqa: E402
from quarters.migrate import upgrade  # noqa: E402

SHAPEFILE = common.DATA_DIR / "raw" / "bkg-vg5000-2021" / "VG5000_GEM.shp"


def main() -> None:
    """Run the imports and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    figures: list[tuple[float, float, float]] = []
    phases: list[dict[str, float]] = []
    with common.throwaway_cluster() as cluster:
        engine = create_engine(cluster.url("admin"))
        upgrade(engine)
        for _ in range(args.runs + 1):
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE municipalities CASCADE; DELETE FROM sources"))
            engine.dispose()
            with engine.connect() as conn:
                pid = conn.connection.driver_connection.info.backend_pid
                server0, start, client0 = common.backend_cpu(pid), time.perf_counter(), time.process_time()
                with conn.begin():
                    summary = import_into(conn, SHAPEFILE,
                                          BoundarySpec(level="gemeinde", repair=True))
                committed = time.perf_counter() - start
                phases.append({**getattr(summary, "phases", {}), "committed": committed})
                figures.append((time.perf_counter() - start, time.process_time() - client0,
                                common.backend_cpu(pid) - server0))
        engine.dispose()
    figures, phases = figures[1:], phases[1:]  # the first run warms caches and PROJ
    load = os.getloadavg()[0]
    for i, what in enumerate(("wall s", "client CPU s", "server CPU s")):
        values = [f[i] for f in figures]
        print(f"{args.label} {what}: min {min(values):.3f} median {statistics.median(values):.3f}"
              f" (load {load:.1f})")
    print(f"{args.label} time-line (median s): " + ", ".join(
        f"{k} {statistics.median(p.get(k, 0.0) for p in phases):.3f}" for k in phases[0]))


if __name__ == "__main__":
    main()
