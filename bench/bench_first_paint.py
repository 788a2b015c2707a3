"""First paint of 10,000 published measures: the public map page against a plain GeoJSON layer.

What it does (everything it starts is stopped again, see bench/common.py):

1. a throwaway PostgreSQL + PostGIS cluster, migrations, the base data the map page shows
   (BKG municipalities, Halle's Stadtviertel, pilot quarters and sites; no seed measures);
2. 10,000 published measures inserted by SQL: random points (fixed seed) in Halle (Saale),
   then ANALYZE (the statistics autovacuum would take after such a load);
3. quarters serving a temporary copy of web/ (symlinks) that also holds a baseline page
   (baseline.html + baseline.js, never committed into web/): it loads
   /api/collections/measures/items?limit=10000 and draws it as one plain ``L.geoJSON`` layer
   of default Leaflet markers;
4. headless Chromium (Debian's /usr/bin/chromium through Playwright), a fresh browser context
   per run, tiles blocked: time from navigation start to the first ``measures-drawn``
   performance mark, which each page sets in the animation frame after all measures are on
   the map (the public page: the clusters and markers in view that represent all of them,
   with #map[data-measures-drawn] = their number); for the public page also the time until
   its own index of all points is built (``measures-indexed``), for comparison;
5. 5 runs of each page, alternating; the medians and their ratio go into bench/FIRST_PAINT.md.

    .venv/bin/python bench/bench_first_paint.py [--runs 5] [--count 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DATA_DIR,
    PROJECT_ROOT,
    chromium,
    log,
    machine_info,
    md_table,
    now_stamp,
    start_app,
    stop_process,
    throwaway_cluster,
    write_between,
)

REPORT = PROJECT_ROOT / "bench" / "FIRST_PAINT.md"
BEGIN, END = "<!-- first-paint:begin -->", "<!-- first-paint:end -->"
HALLE_BOX = (11.88, 51.43, 12.04, 51.52)  # lon/lat box inside Halle (Saale)
TIMEOUT_MS = 120_000

BASELINE_HTML = """<!doctype html>
<html lang="de">
  <head>
    <meta charset="utf-8">
    <title>Baseline: one plain GeoJSON layer</title>
    <link rel="stylesheet" href="/vendor/leaflet/dist/leaflet.css">
    <link rel="stylesheet" href="/baseline.css">
    <script defer src="/vendor/leaflet/dist/leaflet.js"></script>
    <script defer src="/baseline.js"></script>
  </head>
  <body><div id="map"></div></body>
</html>
"""
BASELINE_CSS = "html, body { margin: 0; height: 100%; } #map { height: 100vh; }\n"
BASELINE_JS = """
const map = L.map("map");
fetch("/api/config").then((r) => r.json()).then((config) => {
  const [minx, miny, maxx, maxy] = config.cities.find((c) => c.ags === "15002000").bbox;
  map.fitBounds([[miny, minx], [maxy, maxx]], { padding: [16, 16], animate: false });
  return fetch("/api/collections/measures/items?limit=10000");
}).then((r) => r.json()).then((data) => {
  L.geoJSON(data).addTo(map);
  requestAnimationFrame(() => {
    map.getContainer().dataset.measuresDrawn = String(data.features.length);
    performance.mark("measures-drawn");
  });
});
"""


def load_base_data(settings) -> None:  # noqa: ANN001
    """Migrations and what the map page shows besides the measures."""
    from quarters.catalogue import load_catalogue
    from quarters.db import make_engine
    from quarters.imports.data_load import load_bkg, load_pilot_quarters, load_stadtviertel
    from quarters.migrate import upgrade
    from quarters.sources import load_catalogue_sources

    engine = make_engine(settings)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            load_catalogue_sources(conn, load_catalogue(settings.catalogue))
            load_bkg(conn, settings.data_dir)
            load_stadtviertel(conn, settings.data_dir)
            load_pilot_quarters(conn, settings.geo_dir)
    finally:
        engine.dispose()


def insert_measures(settings, count: int) -> int:  # noqa: ANN001
    """``count`` published measures at random points (fixed seed) in Halle, by SQL."""
    from sqlalchemy import text

    from quarters.db import make_engine

    minx, miny, maxx, maxy = HALLE_BOX
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT setseed(0.42)"))
            conn.execute(text("""
                INSERT INTO measures (city_ags, title, summary, action_field, status, geom,
                                      location_precision, published, published_at)
                SELECT '15002000', 'Benchmark-Maßnahme ' || g,
                       'Zufällig gesetzte Maßnahme für die Messung der ersten Darstellung.',
                       (ARRAY['Bildung', 'Wirtschaft', 'Mobilität', 'Verwaltung'])[1 + g % 4],
                       (ARRAY['idee', 'geplant', 'in_umsetzung', 'abgeschlossen',
                              'eingestellt'])[1 + g % 5],
                       ST_Transform(ST_SetSRID(ST_MakePoint(
                           :minx + random() * (:maxx - :minx),
                           :miny + random() * (:maxy - :miny)), 4326), 25832),
                       'exact', true, now()
                FROM generate_series(1, :n) g"""),
                {"n": count, "minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy})
            total = conn.execute(text("SELECT count(*) FROM measures_public")).scalar_one()
        # Planner statistics, as autovacuum takes them shortly after any bulk load in a real
        # database. Without them PostgreSQL misestimates the freshly loaded tables by orders of
        # magnitude and compiles the tiny /api/config query with JIT (~350 ms per request),
        # which would time the benchmark's empty-statistics artefact, not the pages.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        return total
    finally:
        engine.dispose()


def web_copy(tmp: Path, rev: str | None = None) -> Path:
    """A copy of web/ (or of web/ at git revision ``rev``) plus the baseline page (served by
    quarters from the same origin).

    Files are copied (the static file server does not follow symlinks out of its directory);
    node_modules is linked as a whole, it is a mount of its own (/vendor)."""
    web = tmp / (f"web-{rev}" if rev else "web")
    if rev:
        web.mkdir()
        archive = subprocess.run(["git", "archive", rev, "web"], cwd=PROJECT_ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "--strip-components=1", "-C", str(web)], input=archive,
                       check=True)
        shutil.rmtree(web / "node_modules", ignore_errors=True)
    else:
        shutil.copytree(PROJECT_ROOT / "web", web, ignore=shutil.ignore_patterns("node_modules"))
    (web / "node_modules").symlink_to(PROJECT_ROOT / "web" / "node_modules")
    (web / "baseline.html").write_text(BASELINE_HTML)
    (web / "baseline.css").write_text(BASELINE_CSS)
    (web / "baseline.js").write_text(BASELINE_JS)
    return web


def first_paint(browser, url: str, expected: int,  # noqa: ANN001
                own_index: bool = False) -> tuple[float, float | None]:
    """ms from navigation start to the first 'measures-drawn' mark (fresh context, tiles
    blocked), and for the public map to its own index of all points ('measures-indexed')."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
    try:
        page = context.new_page()
        page.on("pageerror", lambda err: log(f"page error on {url}: {err}"))
        page.goto(url)
        page.wait_for_selector(f'#map[data-measures-drawn="{expected}"]', state="attached",
                               timeout=TIMEOUT_MS)
        if os.environ.get("BENCH_DEBUG"):
            for name, start, end in page.evaluate(
                    "() => performance.getEntriesByType('resource').map("
                    "(e) => [e.name, Math.round(e.startTime), Math.round(e.responseEnd)])"):
                log(f"  {start:>5}–{end:>5} ms  {name.split('/', 3)[-1][:70]}")
            for name, start in page.evaluate(
                    "() => performance.getEntriesByType('mark').map("
                    "(e) => [e.name, Math.round(e.startTime)])"):
                log(f"  {start:>5} ms  mark {name}")
        # The first time all measures were on screen (the public page: its clusters from the
        # server, or from its own index when it has none; both represent every measure).
        drawn = page.evaluate(
            "() => performance.getEntriesByName('measures-drawn', 'mark')[0].startTime")
        indexed = None
        if own_index:
            page.wait_for_selector(f'#map[data-measures-indexed="{expected}"]',
                                   state="attached", timeout=TIMEOUT_MS)
            indexed = page.evaluate(
                "() => (performance.getEntriesByName('measures-indexed', 'mark')[0]"
                " || performance.getEntriesByName('measures-drawn', 'mark')[0]).startTime")
        return drawn, indexed
    finally:
        context.close()


def write_report(rows: list[list[str]], ratio: float, meta: dict[str, str]) -> None:
    """Replace the figures section of bench/FIRST_PAINT.md (the analysis below it stays)."""
    section = "\n".join([
        BEGIN,
        "## First paint",
        "",
        f"Time from navigation start until all {meta['count']} published measures are drawn, "
        f"headless Chromium ({meta['browser']}), 1280×860, tiles blocked, a fresh browser "
        f"context per run, median of {meta['runs']} runs each (alternating). Measured "
        f"{meta['when']} on {meta['machine']} by `bench/bench_first_paint.py`; load "
        f"average {meta['load']} (the machine is shared: the plain layer suffers far more from "
        f"a busy CPU than the public map, so compare ratios at a similar load).",
        "",
        "- **public map** (`/`, web/index.html): the first view is drawn from the clusters "
        "of `/api/measures/points?format=clusters` (all located measures for the zoom levels "
        "of a first view, computed on the server with supercluster's algorithm and options, "
        "per data version), which the page embeds together with its catalogue and "
        "configuration; then `/api/measures/points?format=compact` (preloaded at low "
        "priority) goes into the page's own supercluster index, which takes over the same "
        "markers. Criterion (unchanged): the "
        "first `measures-drawn` mark, set in the animation frame after the clusters and "
        "markers in view that together represent all located measures are on the map "
        "(`#map[data-measures-drawn]` = their number); the row below it gives the time until "
        "the page's own index is built as well. The page also loads its base layers, the "
        "first page of the result list and the sources.",
        "- **baseline**: a page the script serves from a temporary directory that loads "
        "`/api/collections/measures/items?limit=10000` (full GeoJSON) into one plain "
        "`L.geoJSON` layer of default markers.",
        "",
        md_table(["page", "median ms", "runs ms"], rows),
        "",
        f"**Ratio: the public map draws {ratio:.1f}× faster than the plain GeoJSON layer** "
        f"(goal: at least 5×).",
        *(["", meta["also"]] if meta.get("also") else []),
        END,
    ])
    write_between(REPORT, BEGIN, END, section, first="# First paint of the public map\n")


def main() -> None:
    """Set up, measure both pages alternately, write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--also", metavar="REV", default=None,
                        help="also measure the public map of web/ at this git revision (a "
                             "second server process on the same database), side by side")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from quarters.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="quarters-first-paint-"))
    server = None
    other = None
    try:
        with throwaway_cluster() as cluster:
            settings = Settings(database_url=cluster.url(), data_dir=DATA_DIR, home=cluster.home)
            log("migrations and base data")
            load_base_data(settings)
            total = insert_measures(settings, args.count)
            log(f"{total} published measures")
            web = web_copy(tmp)
            env = {**os.environ, "QUARTERS_DATABASE_URL": cluster.url(),
                   "QUARTERS_DATA_DIR": str(DATA_DIR), "QUARTERS_WEB_DIR": str(web),
                   "QUARTERS_MAX_LIMIT": str(max(10_000, total))}
            server, base = start_app(env, tmp / "server.log")
            pages = {"public map": f"{base}/", "baseline (plain L.geoJSON)": f"{base}/baseline.html"}
            if args.also:
                other, other_base = start_app(
                    {**env, "QUARTERS_WEB_DIR": str(web_copy(tmp, args.also))},
                    tmp / "server-other.log")
                pages[f"public map at {args.also}"] = f"{other_base}/"
            times: dict[str, list[float]] = {name: [] for name in pages}
            load_before = os.getloadavg()[0]
            with sync_playwright() as p:
                browser = chromium(p)
                version = browser.version
                for url in pages.values():  # one unrecorded warm-up each
                    first_paint(browser, url, total)
                indexed: list[float] = []
                for run in range(args.runs):
                    for name, url in pages.items():
                        ms, ready = first_paint(browser, url, total, url == pages["public map"])
                        times[name].append(ms)
                        if ready is not None:
                            indexed.append(ready)
                        log(f"run {run + 1}: {name}: {ms:.0f} ms"
                            + (f" (own index ready {ready:.0f} ms)" if ready is not None else ""))
                browser.close()
            medians = {name: statistics.median(values) for name, values in times.items()}
            ratio = medians["baseline (plain L.geoJSON)"] / medians["public map"]
            rows = [[name, f"{medians[name]:.0f}", ", ".join(f"{v:.0f}" for v in times[name])]
                    for name in pages]
            if indexed:
                rows.insert(1, ["public map, its own index of all points built (not the "
                                "criterion, for comparison)", f"{statistics.median(indexed):.0f}",
                                ", ".join(f"{v:.0f}" for v in indexed)])
            info = machine_info()
            load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after the runs"
            also = ""
            if args.also:
                old_ms = medians[f"public map at {args.also}"]
                also = (f"Side by side in the same run, the public map of web/ at `{args.also}` "
                        f"(second server process, same database): {old_ms:.0f} ms, "
                        f"{medians['baseline (plain L.geoJSON)'] / old_ms:.1f}× the plain "
                        f"layer; the current page draws {old_ms / medians['public map']:.2f}× "
                        f"as fast as it.")
                print(also)
            write_report(rows, ratio, {
                "count": f"{total:,}", "runs": str(args.runs), "browser": f"Chromium {version}",
                "when": now_stamp()[1], "machine": f"{info['nproc']} cores, {info['memory']}",
                "load": load, "also": also})
            print(md_table(["page", "median ms", "runs ms"], rows))
            print(f"ratio {ratio:.1f}x, load average {load}")
    finally:
        for process in (server, other):
            if process is not None:
                stop_process(process)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
