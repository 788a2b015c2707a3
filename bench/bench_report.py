"""Benchmark of the transferability analysis on real data: database fetch, ranking, report.

On a throwaway PostgreSQL + PostGIS cluster (or ``--database-url``) with all data loaded
(``quarters.imports.data_load.load_all``: BKG VG5000, Destatis, Stadtviertel, computed indicators), it
times, with ``time.perf_counter`` (median and best of ``--runs`` runs after one warm-up):

* fetching the values table of all 10,997 municipalities × 10 indicators from the database
  (:func:`quarters.indicators.reading.values_table`),
* the ranking itself in process (:func:`quarters.analysis.similarity` on that table),
* the whole service call (:func:`quarters.transfer.run_transfer`: reference, fetch, ranking)
  without and with the sensitivity check (200 runs),
* the typology (k-means, k = 6, cache cleared),
* report generation (:func:`quarters.report.render_report`: HTML only, and
  :func:`quarters.report.write_report`: HTML + CSV + GeoPackage) for Halle (Saale) against all
  municipalities, and for a pilot quarter against Halle's 43 Stadtviertel.

Prints a Markdown section and puts it into ``bench/RANKING.md`` between the markers
``<!-- report:start -->`` and ``<!-- report:end -->`` (appended when missing).

Run: ``.venv/bin/python bench/bench_report.py [--runs 7] [--database-url URL]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from quarters import transfer  # noqa: E402
from quarters.analysis.similarity import similarity  # noqa: E402
from quarters.catalogue import load_catalogue  # noqa: E402
from quarters.db import make_engine  # noqa: E402
from quarters.imports.data_load import load_all  # noqa: E402
from quarters.indicators.levels import get_level  # noqa: E402
from quarters.indicators.reading import values_table  # noqa: E402
from quarters.migrate import upgrade  # noqa: E402
from quarters.report import render_report, write_report  # noqa: E402
from quarters.settings import HALLE_AGS, Settings  # noqa: E402

OUT = Path(__file__).with_name("RANKING.md")
START, END = "<!-- report:start -->", "<!-- report:end -->"
TEN = ["population", "area_km2", "density", "female_share", "urbanisation", "population_male",
       "population_female", "area_geom_km2", "compactness", "quarter_area_share"]
WEIGHTS = {k: 1.0 + i for i, k in enumerate(TEN)}


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float, object]:
    """Median and best seconds over ``runs`` after one warm-up; and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), result


@contextlib.contextmanager
def database(url: str | None) -> Iterator[tuple[Settings, float | None]]:
    """Settings of a loaded database: the given one, or a throwaway cluster loaded here."""
    if url:
        yield Settings(database_url=url), None
        return
    with common.throwaway_cluster("quarters-bench-report-") as cluster:
        settings = Settings(database_url=cluster.url(), data_dir=common.DATA_DIR,
                            home=cluster.home)
        engine = make_engine(settings)
        upgrade(engine)
        t0 = time.perf_counter()
        load_all(engine, settings, load_catalogue(settings.catalogue))
        load_s = time.perf_counter() - t0
        engine.dispose()
        yield settings, load_s


def main() -> None:
    """Run the benchmark, print and store the Markdown section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url", default=os.environ.get("QUARTERS_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    load_avg = os.getloadavg()
    rows: list[str] = []

    def row(what: str, units: str, runs: int, median: float, best: float, note: str = "") -> None:
        rows.append(f"| {what} | {units} | {runs} | {median * 1000:,.1f} | {best * 1000:,.1f} | "
                    f"{note} |")

    with database(args.database_url) as (settings, load_s):
        engine = make_engine(settings)
        with engine.connect() as conn:
            level = get_level(conn, "gemeinde")
            common.log("fetch")
            m, b, fetched = timed(lambda: values_table(conn, level, TEN), args.runs)
            values = fetched[0]
            row("DB fetch: values table (`values_table`)", f"{len(values):,} × {len(TEN)}",
                args.runs, m, b, "one array per indicator, pivot in pandas")
            common.log("ranking")
            m, b, res = timed(lambda: similarity(values, HALLE_AGS, WEIGHTS), 25)
            row("ranking in process (`similarity`)", f"{len(res.ranking):,} ranked", 25, m, b,
                f"{len(res.excluded)} excluded for missing values")
            params = transfer.TransferParams(reference=f"gemeinde:{HALLE_AGS}", level="gemeinde",
                                             indicators=TEN, weights=WEIGHTS, top=10,
                                             sensitivity=False, types=False)
            m, b, _ = timed(lambda: transfer.run_transfer(conn, params), args.runs)
            row("service `run_transfer` (reference + fetch + ranking)", "10,997", args.runs,
                m, b, "what the API and the CLI call")
            with_sens = transfer.TransferParams(**{**params.__dict__, "sensitivity": True})
            m, b, tr = timed(lambda: transfer.run_transfer(conn, with_sens), args.runs)
            row("… plus sensitivity (200 weight perturbations)", "10,997", args.runs, m, b,
                f"stability {tr.sensitivity.stability:.3f}")
            common.log("typology")

            def typ() -> object:
                transfer._TYPOLOGY_CACHE.clear()
                return transfer.cached_typology(values[TEN], WEIGHTS, 6, "kmeans", "zscore")

            runs_t = max(3, args.runs // 2)
            m, b, t = timed(typ, runs_t)
            row("typology k-means k = 6 (uncached)", "10,997", runs_t, m, b,
                f"silhouette {t.silhouette:.2f}; cached afterwards")
            common.log("report")
            full = transfer.TransferParams(reference=f"gemeinde:{HALLE_AGS}", level="gemeinde",
                                           indicators=TEN, weights=WEIGHTS, top=10)
            res_full = transfer.run_transfer(conn, full)
            m, b, html = timed(lambda: render_report(conn, res_full, settings), args.runs)
            row("report HTML (`render_report`), all municipalities", "10,997", args.runs, m, b,
                f"{len(html.encode()) / 1e6:.1f} MB, offline (Leaflet inlined)")
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "halle.html"
                m, b, paths = timed(lambda: write_report(conn, res_full, out, settings),
                                    max(3, args.runs // 2))
                sizes = ", ".join(f"{k} {p.stat().st_size / 1e6:.1f} MB"
                                  for k, p in paths.items())
                row("report files (`write_report`: HTML + CSV + GeoPackage)", "10,997",
                    max(3, args.runs // 2), m, b, sizes)
                small = transfer.TransferParams(reference="quarter:bildungsquartier-neustadt",
                                                level="stadtviertel", top=10)
                m, b, _ = timed(lambda: write_report(
                    conn, transfer.run_transfer(conn, small), Path(tmp) / "q.html", settings),
                    args.runs)
                row("quarter vs. 43 Stadtviertel: analysis + all report files", "43",
                    args.runs, m, b,
                    "profile via tobler, sensitivity; typology cached after the warm-up")
        engine.dispose()

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import numpy as np
    import pandas as pd

    text = "\n".join([
        "## Ranking from the database and report generation",
        "",
        "Real data (`bench/bench_report.py`): all 10,997 VG5000 municipalities with 10 "
        "indicators from `indicator_values` (" + ", ".join(TEN) + "), weights 1…10, "
        "reference Halle (Saale). Median and best of the given runs after one warm-up, "
        "`time.perf_counter`, in one Python process on one pooled connection.",
        "",
        "| what | units | runs | median ms | best ms | note |",
        "|---|---:|---:|---:|---:|---|",
        *rows,
        "",
        ("Data load before the run (`load_all`, incl. Destatis, Stadtviertel and computed "
         f"indicators): {load_s:.1f} s." if load_s is not None else
         "Run against an existing database (`--database-url`)."),
        "",
        "Command: `.venv/bin/python bench/bench_report.py` (from the project root).",
        "",
        f"Machine: {platform.platform()}, nproc = {cpus}, Python {sys.version.split()[0]}, "
        f"numpy {np.__version__}, pandas {pd.__version__}; load average before the run "
        f"{load_avg[0]:.2f} (other jobs share the machine, so treat ±30 % as noise).",
    ])
    print(text)
    common.write_between(OUT, START, END, f"{START}\n{text}\n{END}")


if __name__ == "__main__":
    main()
