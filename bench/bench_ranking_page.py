"""Germany-wide ranking on the analysis page: from the click to the drawn choropleth.

What it does (everything it starts is stopped again, see bench/common.py):

1. a throwaway PostgreSQL + PostGIS cluster with all data loaded (``load_all``: the 10,997
   VG5000 municipalities, their indicators, Destatis, Stadtviertel), then ANALYZE;
2. quarters (one uvicorn process, this source tree) against it;
3. headless Chromium (Debian's /usr/bin/chromium through Playwright), a fresh browser context
   per run, background tiles blocked: /analysis.html until ``body[data-analysis-state=ready]``,
   the shortcut "Halle (Saale)", candidates "Gemeinden" (all municipalities), then a click on
   "Berechnen" (the page's own run button);
4. the time is taken in the page (``performance.now()``): from the click (a capturing listener
   on the button) to the last frame in which the choropleth is complete – the ranking done
   (``data-analysis-state=done``), the map showing the similarity of the municipalities
   (``#map[data-map-state=ready][data-variable=score][data-level=gemeinde]``), every vector
   tile in view loaded (``data-tiles=loaded``) and the tile canvases painted with the class
   colours of the scores (pixels of the palette, not only the grey of "no value"). The bench
   waits until that state has held for 1.5 s and nothing was requested meanwhile, and takes
   the last time it was reached (a later refit or redraw counts, not an earlier partial one);
5. each run asks a new question (Top N = 10, 11, 12, …: the server's ranking cache cannot
   answer, the X-Analysis-Cache header is reported); the first run after the server's start
   (typology and tiles not yet cached) is reported separately; median of ``--runs`` after it.

Writes a section between ``<!-- ranking-page:begin -->`` and ``<!-- ranking-page:end -->``
of bench/RANKING.md.

    .venv/bin/python bench/bench_ranking_page.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
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

REPORT = PROJECT_ROOT / "bench" / "RANKING.md"
BEGIN, END = "<!-- ranking-page:begin -->", "<!-- ranking-page:end -->"
TIMEOUT_MS = 120_000
GOAL_MS = 2000
STABLE_MS = 1500
HEADERS = ["run", "ms", "tiles fetched", "requests after the click", "X-Analysis-Cache"]

# Installed before the page's scripts run: notes the click on the run button and, every frame,
# whether the choropleth is complete; window.__rank = {click, met, changes, requests, last}.
WATCH = """
(() => {
  // the palettes of analysis-map.js (ColorBrewer YlGnBu); fills are drawn with an opacity,
  // so a colour read back may differ by a unit or two per channel
  const palette = ["#ffffd9", "#edf8b1", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8",
    "#253494", "#081d58", "#ffffcc", "#a1dab4", "#2c7fb8", "#0c2c84"]
    .map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)));
  const inPalette = (r, g, b) => palette.some(([pr, pg, pb]) =>
    Math.abs(r - pr) <= 3 && Math.abs(g - pg) <= 3 && Math.abs(b - pb) <= 3);
  const state = { click: null, met: null, complete: false, requests: 0, lastRequest: 0, frames: 0 };
  window.__rank = state;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { state.requests += 1; state.lastRequest = e.responseEnd; }
  }).observe({ type: "resource", buffered: false });
  document.addEventListener("click", (event) => {
    if (state.click === null && event.target.closest?.("#run-button")) state.click = performance.now();
  }, true);
  function painted() {
    // coloured pixels of the palette on the tile canvases (sampled every 4th pixel and row)
    let coloured = 0;
    for (const canvas of document.querySelectorAll("#map .leaflet-choropleth-pane canvas")) {
      if (!canvas.width || !canvas.height) continue;
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      const w = canvas.width * 4;
      for (let row = 0; row < canvas.height; row += 4) {
        for (let i = row * w; i < (row + 1) * w; i += 16) {
          if (data[i + 3] > 128 && inPalette(data[i], data[i + 1], data[i + 2])) coloured += 1;
        }
      }
    }
    return coloured;
  }
  function check() {
    state.frames += 1;
    const map = document.getElementById("map");
    const ready = state.click !== null && map
      && document.body.dataset.analysisState === "done"
      && map.dataset.mapState === "ready" && map.dataset.variable === "score"
      && map.dataset.level === "gemeinde" && map.dataset.tiles === "loaded";
    // the pixels are counted once per change of the attributes (a redraw resets data-tiles)
    const complete = ready && (state.complete || painted() > 500);
    if (complete && !state.complete) state.met = performance.now();
    state.complete = complete;
    requestAnimationFrame(check);
  }
  requestAnimationFrame(check);
  // for BENCH_DEBUG: when the map's and the page's state attributes changed
  state.log = [];
  const watchAttributes = () => {
    const map = document.getElementById("map");
    if (!map) { requestAnimationFrame(watchAttributes); return; }
    const note = (records) => {
      for (const r of records) {
        if (state.click === null) continue;
        const value = r.target.getAttribute(r.attributeName);
        state.log.push([Math.round(performance.now() - state.click), r.attributeName, value]);
      }
    };
    new MutationObserver(note).observe(map, { attributes: true,
      attributeFilter: ["data-map-state", "data-tiles", "data-variable", "data-level"] });
    new MutationObserver(note).observe(document.body, { attributes: true,
      attributeFilter: ["data-analysis-state"] });
  };
  requestAnimationFrame(watchAttributes);
})();
"""


def load_data(settings) -> None:  # noqa: ANN001
    """Migrations and all data, then the planner statistics autovacuum would take."""
    from sqlalchemy import text

    from quarters.catalogue import load_catalogue
    from quarters.db import make_engine
    from quarters.imports.data_load import load_all
    from quarters.migrate import upgrade

    engine = make_engine(settings)
    try:
        upgrade(engine)
        load_all(engine, settings, load_catalogue(settings.catalogue))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def one_run(browser, base: str, top: int) -> dict:  # noqa: ANN001
    """One fresh context: open the page, start the ranking (Top ``top``), wait for the
    complete choropleth."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
    context.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
    context.add_init_script(WATCH)
    try:
        page = context.new_page()
        page.on("pageerror", lambda err: log(f"page error: {err}"))
        page.goto(f"{base}/analysis.html")
        page.wait_for_selector("body[data-analysis-state=ready]", state="attached",
                               timeout=TIMEOUT_MS)
        page.locator("#shortcut-halle").click()
        page.wait_for_function(
            "() => document.getElementById('reference-current').textContent.includes('Halle')",
            timeout=TIMEOUT_MS)
        page.locator("#level").select_option("gemeinde")
        page.locator("#top").fill(str(top))
        cache: list[str] = []
        page.on("response", lambda r: cache.append(r.headers.get("x-analysis-cache", "?"))
                if r.url.endswith("/api/analysis/transfer") else None)
        # let a map of the level that the choice may start settle first: it is not the ranking
        page.wait_for_load_state("networkidle")
        page.locator("#run-button").click()
        page.wait_for_function("() => window.__rank.complete", timeout=TIMEOUT_MS)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            s = page.evaluate("() => ({...window.__rank, now: performance.now()})")
            quiet = s["now"] - max(s["met"] or 0, s["lastRequest"] or 0)
            if s["complete"] and quiet >= STABLE_MS:
                break
            time.sleep(0.2)
        else:
            raise TimeoutError("the choropleth did not settle")
        timings = page.evaluate("""() => performance.getEntriesByType('resource')
            .filter((e) => e.startTime >= window.__rank.click)
            .map((e) => [e.name, Math.round(e.startTime - window.__rank.click),
                         Math.round(e.responseEnd - window.__rank.click)])""")
        if os.environ.get("BENCH_DEBUG"):
            for name, start, end in timings:
                log(f"  {start:>5}–{end:>5} ms  {name.split('/', 3)[-1][:90]}")
            for at, name, value in s["log"]:
                log(f"  {at:>5} ms  {name}={value}")
            log(f"  {s['met'] - s['click']:>5.0f} ms  complete")
        tiles = sum(1 for name, _, _ in timings if "/tiles/WebMercatorQuad/" in name
                    and name.rstrip("/").split("/")[-1].isdigit())
        return {"ms": s["met"] - s["click"], "tiles": tiles, "requests": len(timings),
                "cache": ",".join(cache) or "–"}
    finally:
        context.close()


def write_report(rows: list[list[str]], meta: dict[str, str]) -> None:
    """Replace the section of bench/RANKING.md (the rest of the file stays)."""
    section = "\n".join([
        BEGIN,
        "## Germany-wide ranking on the analysis page (request → drawn choropleth)",
        "",
        f"`bench/bench_ranking_page.py`, {meta['when']}: headless Chromium ({meta['browser']}), "
        "1280×900, background tiles blocked, a fresh browser context per run; /analysis.html, "
        "reference Halle (Saale), candidates all municipalities (default indicators and "
        "settings), a click on *Berechnen*; each run asks a new question (Top N = 11, 12, …, "
        "so the server's ranking cache cannot answer; the typology of the same values and "
        "weights is cached after the first request, whose row is given separately). Time in "
        "the page from the click to the last frame "
        "in which the choropleth is complete: ranking done, the map showing the similarity of "
        "the municipalities (`#map[data-map-state=ready][data-variable=score]`), every vector "
        "tile in view loaded and the canvases painted in the class colours of the scores; "
        f"the state must hold {STABLE_MS / 1000:.1f} s with no further request. "
        f"Median of {meta['runs']} runs after one warm-up. One uvicorn process, "
        f"{meta['machine']}; load average {meta['load']} (the machine is shared: an "
        "indication, re-run on a quiet machine).",
        "",
        md_table(HEADERS, rows),
        "",
        f"**Median {meta['median']} ms** (goal: under {GOAL_MS:,} ms).",
        END,
    ])
    write_between(REPORT, BEGIN, END, section, first="# Ranking\n")


def main() -> None:
    """Set up, measure, write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from quarters.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="quarters-ranking-page-"))
    server = None
    try:
        with throwaway_cluster() as cluster:
            settings = Settings(database_url=cluster.url(), data_dir=DATA_DIR, home=cluster.home)
            log("migrations and all data")
            load_data(settings)
            env = {**os.environ, "QUARTERS_DATABASE_URL": cluster.url(),
                   "QUARTERS_DATA_DIR": str(DATA_DIR)}
            server, base = start_app(env, tmp / "server.log")
            load_before = os.getloadavg()[0]
            results = []
            with sync_playwright() as p:
                browser = chromium(p)
                version = browser.version
                first = one_run(browser, base, 10)
                log(f"first run after start: {first['ms']:.0f} ms")
                for run in range(args.runs):
                    result = one_run(browser, base, 11 + run)
                    results.append(result)
                    log(f"run {run + 1}: {result['ms']:.0f} ms, {result['tiles']} tiles, "
                        f"{result['requests']} requests, ranking cache {result['cache']}")
                browser.close()
            median = statistics.median(r["ms"] for r in results)
            load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after the runs"
            rows = [["first request after start, Top 10 (not in the median)",
                     f"{first['ms']:,.0f}", str(first["tiles"]), str(first["requests"]),
                     first["cache"]]]
            rows += [[f"{i + 1}, Top {11 + i}", f"{r['ms']:,.0f}", str(r["tiles"]),
                      str(r["requests"]), r["cache"]] for i, r in enumerate(results)]
            info = machine_info()
            write_report(rows, {"when": now_stamp()[1], "browser": f"Chromium {version}",
                                "runs": str(args.runs), "median": f"{median:,.0f}",
                                "machine": f"{info['nproc']} cores, {info['memory']}",
                                "load": load})
            print(md_table(HEADERS, rows))
            print(f"median {median:.0f} ms, load average {load}")
    finally:
        if server is not None:
            stop_process(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
