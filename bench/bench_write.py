"""Write benchmark: create and update measures through the API (history + ETag), 2 clients.

Each client creates a measure, then changes it again and again with If-Match (its own
measures, so no conflicts), for a bounded time on 127.0.0.1. A second phase lets both
clients update the same measure to show how conflicts (412) are answered under load.

    .venv/bin/python bench/bench_write.py [--seconds 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from quarters import auth  # noqa: E402
from quarters.catalogue import load_catalogue  # noqa: E402
from quarters.db import make_engine  # noqa: E402
from quarters.imports.data_load import load_all  # noqa: E402
from quarters.migrate import upgrade  # noqa: E402
from quarters.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FEATURE = {"type": "Feature",
           "geometry": {"type": "Polygon", "coordinates": [[[11.995, 51.478], [12.0, 51.478],
                                                            [12.0, 51.481], [11.995, 51.481],
                                                            [11.995, 51.478]]]},
           "properties": {"title": "Bench", "city_ags": "15002000", "action_field": "Mobilität",
                          "status": "geplant"}}


def percentile(values: list[float], q: float) -> float:
    """q-th percentile (nearest rank) of values in ms."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def client_loop(base: str, token: str, seconds: float, out: dict, shared: dict | None) -> None:
    """Create, then update with If-Match until time is up; record latencies per operation."""
    headers = {"Authorization": f"Bearer {token}"}
    lat = {"create": [], "update": [], "conflict": []}
    with httpx.Client(base_url=base, timeout=30) as http:
        deadline = time.monotonic() + seconds
        if shared is None:
            t0 = time.perf_counter()
            r = http.post("/api/measures", json=FEATURE, headers=headers)
            lat["create"].append((time.perf_counter() - t0) * 1000)
            mid, etag = r.json()["id"], r.headers["etag"]
        n = 0
        while time.monotonic() < deadline:
            if shared is not None:
                mid, etag = shared["id"], shared["etag"]
            n += 1
            t0 = time.perf_counter()
            r = http.patch(f"/api/measures/{mid}", headers={**headers, "If-Match": etag},
                           json={"properties": {"summary": f"Stand {n}"}})
            ms = (time.perf_counter() - t0) * 1000
            if r.status_code == 200:
                lat["update"].append(ms)
                etag = r.headers["etag"]
                if shared is not None:
                    shared["etag"] = etag
            elif r.status_code == 412:
                lat["conflict"].append(ms)
                etag = r.headers["etag"]
                if shared is not None:
                    shared["etag"] = etag
            else:
                raise RuntimeError(f"unexpected {r.status_code}: {r.text[:300]}")
            if shared is None and n % 5 == 0:  # every fifth step a new measure
                t0 = time.perf_counter()
                r = http.post("/api/measures", json=FEATURE, headers=headers)
                lat["create"].append((time.perf_counter() - t0) * 1000)
                mid, etag = r.json()["id"], r.headers["etag"]
    out.update(lat)


def run_phase(base: str, tokens: list[str], seconds: float, shared: dict | None) -> dict:
    """Two concurrent clients; returns merged latencies and wall time."""
    results = [{}, {}]
    threads = [threading.Thread(target=client_loop, args=(base, tokens[i], seconds, results[i],
                                                          shared)) for i in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    merged = {k: results[0].get(k, []) + results[1].get(k, []) for k in ("create", "update",
                                                                          "conflict")}
    merged["wall"] = wall
    return merged


def main() -> None:
    """Run both phases and print a Markdown report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    data_dir = Path(os.environ.get("QUARTERS_DATA_DIR", ROOT.parent / "shared" / "data"))
    with common.throwaway_cluster("quarters-bench-write-") as cluster:
        settings = Settings(database_url=cluster.url(), data_dir=data_dir)
        engine = make_engine(settings)
        upgrade(engine)
        load_all(engine, settings, load_catalogue(settings.catalogue))
        with engine.begin() as conn:
            tokens = [auth.open_session(conn, auth.add_user(conn, f"bench{i}",
                                                            "bench-passwort-123", "planner")).token
                      for i in range(2)]
        engine.dispose()
        port = common.free_port()
        env = {**os.environ, "QUARTERS_DATABASE_URL": cluster.url(),
               "QUARTERS_DATA_DIR": str(data_dir)}
        server = common.start_process(
            [str(ROOT / ".venv/bin/quarters"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            logfile=ROOT / "bench/results/write-server.log", env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            common.wait_ready(f"{base}/api/health", server)
            run_phase(base, tokens, 2, None)  # warm-up
            own = run_phase(base, tokens, args.seconds, None)
            with httpx.Client(base_url=base) as http:
                r = http.post("/api/measures", json=FEATURE,
                              headers={"Authorization": f"Bearer {tokens[0]}"})
                shared = {"id": r.json()["id"], "etag": r.headers["etag"]}
            contended = run_phase(base, tokens, args.seconds, shared)
        finally:
            common.stop_process(server)
    rows = []
    for name, phase in (("own measures", own), ("same measure", contended)):
        writes = len(phase["create"]) + len(phase["update"])
        for op in ("create", "update", "conflict"):
            if phase[op]:
                rows.append([name, op, str(len(phase[op])),
                             f"{percentile(phase[op], 50):.1f}", f"{percentile(phase[op], 99):.1f}"])
        rows.append([name, "**writes/s**", f"**{writes / phase['wall']:.1f}**", "", ""])
    machine = common.machine_info()
    report = (f"## Write benchmark — {time.strftime('%Y-%m-%d %H:%M')} UTC\n\n"
              f"Machine: {', '.join(f'{k}: {v}' for k, v in machine.items())}\n\n2 concurrent clients (httpx, 127.0.0.1), {args.seconds:.0f} s "
              "per phase, one `quarters serve` process; every write is validated, checks the "
              "city, compares the ETag in one UPDATE and appends to the history in the same "
              "transaction.\n\n"
              + common.md_table(["phase", "operation", "count", "p50 ms", "p99 ms"], rows) + "\n")
    print(report)
    common.write_result("write", report)


if __name__ == "__main__":
    main()
