"""Germany-wide ranking with sensitivity through the HTTP API (issue 12).

On a throwaway PostgreSQL + PostGIS cluster with all data loaded, ``quarters serve`` (one
process, as shipped) answers POST /api/analysis/transfer for Halle (Saale) against all
municipalities with the default indicators, sensitivity (200 runs) and the typology, as the
analysis page asks (``scores: true`` for the choropleth) and without scores; uncached (a new
``seed`` per request, so the ranking cache cannot answer) and repeated (cache hit); and the same
with the candidate filter ``land IN ('12','13','14','15','16') AND population >= 90000``.
Wall-clock time per request on the client (``time.perf_counter``), median and best of
``--runs`` after one warm-up.

Writes a section between ``<!-- api:start -->`` and ``<!-- api:end -->`` of bench/RANKING.md.

Run: ``.venv/bin/python bench/bench_transfer_api.py [--runs 7]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_read  # noqa: E402
import common  # noqa: E402

from quarters.catalogue import load_catalogue  # noqa: E402
from quarters.db import make_engine  # noqa: E402
from quarters.imports.data_load import load_all  # noqa: E402
from quarters.migrate import upgrade  # noqa: E402
from quarters.settings import HALLE_AGS, Settings  # noqa: E402

OUT = Path(__file__).with_name("RANKING.md")
START, END = "<!-- api:start -->", "<!-- api:end -->"
EAST_BIG = "land IN ('12','13','14','15','16') AND population >= 90000"
CITIES = ["15003000", "14713000", "14612000", "16051000", "14511000", "16052000", "12054000",
          "13003000", "14729000"]  # Magdeburg, Leipzig, Dresden, Erfurt, Chemnitz, Gera, Potsdam,
# Rostock and another; each is in the filtered candidate set too


def post(base: str, body: dict) -> tuple[float, dict, str]:
    """Seconds, JSON body and X-Analysis-Cache of one POST /api/analysis/transfer."""
    req = urllib.request.Request(f"{base}/api/analysis/transfer", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as response:
        data = json.loads(response.read())
        cache = response.headers.get("X-Analysis-Cache", "")
    return time.perf_counter() - t0, data, cache


def main() -> None:
    """Run, print and store the Markdown section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = []
    load_avg = os.getloadavg()
    with common.throwaway_cluster("quarters-bench-api-") as cluster, \
            tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=cluster.url(), data_dir=common.DATA_DIR,
                            home=cluster.home)
        engine = make_engine(settings)
        upgrade(engine)
        load_all(engine, settings, load_catalogue(settings.catalogue))
        engine.dispose()
        server = bench_read.start_quarters(cluster, Path(tmp))
        try:
            base_body = {"reference": f"gemeinde:{HALLE_AGS}", "level": "gemeinde", "top": 10,
                         "sensitivity": True, "runs": 200, "types": True}
            cases = [
                ("page request (scores for the map)", {**base_body, "scores": True}),
                ("ranking + sensitivity + typology", base_body),
                ("ranking + sensitivity, no typology", {**base_body, "types": False}),
                ("… with filter (East, ≥ 90,000)", {**base_body, "filter": EAST_BIG}),
            ]
            # the first question after the start: k-means of the typology not yet cached
            took, data, _ = post(server.base, {**base_body, "scores": True})
            rows.append(f"| first request after start (typology k-means uncached) | "
                        f"{data['n_candidates']:,} | 1 | {took * 1000:,.0f} | {took * 1000:,.0f} "
                        f"| {data['timings'].get('total_s', 0) * 1000:,.0f} | – | "
                        f"{', '.join(i['key'] for i in data['indicators'])} |")
            common.log(rows[-1])
            for n, (what, body) in enumerate(cases):
                # a new question each time: another reference city (ranking cache misses; the
                # typology of the same values and weights is cached after the first request)
                post(server.base, {**body, "seed": n})  # warm-up
                fresh, data = [], {}
                for ags in CITIES[:args.runs]:
                    took, data, cache = post(server.base, {**body, "seed": n,
                                                           "reference": f"gemeinde:{ags}"})
                    assert cache == "miss", cache
                    fresh.append(took)
                again = []
                for _ in range(args.runs):
                    took, _, cache = post(server.base, {**body, "seed": n})
                    assert cache == "hit", cache
                    again.append(took)
                server_ms = data["timings"].get("total_s", 0) * 1000
                rows.append(f"| {what} | {data['n_candidates']:,} | {len(fresh)} | "
                            f"{statistics.median(fresh) * 1000:,.0f} | {min(fresh) * 1000:,.0f} | "
                            f"{server_ms:,.0f} | {statistics.median(again) * 1000:,.0f} | "
                            f"{', '.join(i['key'] for i in data['indicators'])} |")
                common.log(rows[-1])
        finally:
            common.stop_process(server.proc)
    machine = common.machine_info()
    text = "\n".join([
        START,
        "## Germany-wide ranking through the API (issue 12)",
        "",
        "`quarters serve` (one process) on a throwaway cluster with all data loaded; "
        "POST /api/analysis/transfer, reference Halle (Saale), candidates all 10,997 "
        "municipalities, default indicators (one set, see `DEFAULT_RULE`), sensitivity with "
        "200 runs. Wall-clock per request on the client; uncached = a new question per request "
        "(another East-German city as the reference, so the ranking cache cannot answer; the "
        "typology of the same values and weights is cached after the first request, whose "
        "k-means row is given separately); cached = the same request again "
        "(`X-Analysis-Cache: hit`). Median and best after one warm-up.",
        "",
        "| request | candidates | runs | uncached median ms | uncached best ms | "
        "server total_s ms | cached median ms | indicators |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "Command: `.venv/bin/python bench/bench_transfer_api.py` (from the project root).",
        "",
        f"Machine: {machine['os']}, {machine['cpu']}, nproc = {machine['nproc']}; load average "
        f"before the run {load_avg[0]:.2f} (other jobs share the machine; treat ±30 % as "
        "noise).",
        END,
    ])
    print(text)
    common.write_between(OUT, START, END, text)


if __name__ == "__main__":
    main()
