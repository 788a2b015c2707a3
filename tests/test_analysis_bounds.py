"""The analysis endpoints stay within bounds: caps on runs, top and units named in a 4xx,
one analysis at a time per worker (503 + Retry-After when busy), a statement timeout, caches
keyed on rounded weights, and no quadratic-memory clustering of all municipalities."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import serve_app
from quarters import transfer
from quarters.api import create_app
from quarters.api.deps import get_conn
from quarters.settings import HALLE_AGS

HALLE = f"gemeinde:{HALLE_AGS}"


@pytest.fixture
def make_client(settings, engine, conn):
    """A TestClient over the test's transaction with some settings changed."""
    clients = []

    def make(**changes) -> TestClient:
        app = create_app(settings.model_copy(update=changes), engine=engine)

        def request_conn() -> Iterator:
            savepoint = conn.begin_nested()
            try:
                yield conn
            except BaseException:
                if savepoint.is_active:
                    savepoint.rollback()
                raise
            if savepoint.is_active:
                savepoint.commit()

        app.dependency_overrides[get_conn] = request_conn
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_runs_beyond_the_cap_are_refused_fast_with_the_cap_named(client):
    t0 = time.perf_counter()
    post = client.post("/api/analysis/transfer", json={"reference": HALLE, "runs": 5000})
    get = client.get("/api/analysis/transfer", params={"reference": HALLE, "runs": 5000})
    report = client.post("/api/analysis/report", json={"reference": HALLE, "runs": 5000})
    elapsed = time.perf_counter() - t0
    for r in (post, get, report):
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["code"] == "analysis.between" and problem["pointer"] == "runs"
        assert problem["params"] == {"name": "runs", "min": 1, "max": 500, "value": 5000}
    assert elapsed < 2.0  # refused before any computation (5000 runs took 105 s before)
    top = client.post("/api/analysis/transfer", json={"reference": HALLE, "top": 501})
    assert top.status_code == 400 and top.json()["params"]["max"] == 500


def test_caps_come_from_the_settings(make_client):
    small = make_client(analysis_max_runs=20, analysis_max_top=5, analysis_max_units=100)
    r = small.post("/api/analysis/transfer", json={"reference": HALLE, "top": 5, "runs": 21})
    assert r.status_code == 400 and r.json()["params"]["max"] == 20
    r = small.get("/api/analysis/cross-city", params={"top": 6})
    assert r.status_code == 400 and r.json()["params"]["max"] == 5
    r = small.post("/api/analysis/transfer", json={"reference": HALLE, "top": 5, "runs": 20})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "analysis.too_many_units"
    assert r.json()["params"] == {"level": "gemeinde", "count": 10997, "max": 100}
    assert "QUARTERS_ANALYSIS_MAX_UNITS" in r.json()["detail"]
    ok = small.post("/api/analysis/transfer", json={
        "reference": "stadtviertel:71", "level": "stadtviertel", "top": 5, "runs": 20})
    assert ok.status_code == 200, ok.text  # 43 units are within the cap


def test_agglomerative_typology_of_all_municipalities_is_refused(client):
    for r in (client.get("/api/analysis/typology",
                         params={"level": "gemeinde", "method": "agglomerative"}),
              client.post("/api/analysis/transfer", json={
                  "reference": HALLE, "cluster_method": "agglomerative", "sensitivity": False})):
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "analysis.ward_too_many_units"
        assert "QUARTERS_ANALYSIS_MAX_WARD_UNITS" in r.json()["detail"]
    small = client.get("/api/analysis/typology",
                       params={"level": "stadtviertel", "method": "agglomerative", "k": 4})
    assert small.status_code == 200 and small.json()["method"] == "agglomerative"


def test_typology_of_all_municipalities_needs_little_memory(client):
    transfer._TYPOLOGY_CACHE.clear()
    tracemalloc.start()
    try:
        r = client.get("/api/analysis/typology",
                       params={"level": "gemeinde", "indicators": "population,density,area_km2"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "kmeans" and len(body["units"]) == 10997
    # Ward's tree over 10,997 units needs ≈ 0.5 GB, the unbounded silhouette ≈ 0.2 GB
    print(f"FIGURE typology of all municipalities: peak {peak / 2**20:.0f} MiB traced")
    assert peak < 120 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_a_weight_change_of_001_is_answered_from_the_cache(client):
    body = {"reference": HALLE, "indicators": ["population", "density", "area_km2"],
            "weights": {"density": 2, "population": 1, "area_km2": 1}, "top": 20, "runs": 50,
            "seed": 4711}
    first = client.post("/api/analysis/transfer", json=body)
    assert first.status_code == 200, first.text
    hits = transfer.CACHE_STATS["ranking_hit"]
    second = client.post("/api/analysis/transfer",
                         json={**body, "weights": {"density": 2.01, "population": 1.01,
                                                   "area_km2": 0.99}})
    assert second.status_code == 200, second.text
    assert first.headers["X-Analysis-Cache"] == "miss"
    assert second.headers["X-Analysis-Cache"] == "hit"
    assert transfer.CACHE_STATS["ranking_hit"] == hits + 1
    a, b = first.json(), second.json()
    # the answer is the answer to the rounded question, and says so
    assert b["weights"]["asked"] == {"density": 2.01, "population": 1.01, "area_km2": 0.99}
    assert b["weights"]["used"] == a["weights"]["used"] == {"density": 2.0, "population": 1.0,
                                                             "area_km2": 1.0}
    assert "0.05" in b["weights"]["rounding"]
    assert [r["code"] for r in a["rows"]] == [r["code"] for r in b["rows"]]
    assert [r["score"] for r in a["rows"]] == [r["score"] for r in b["rows"]]
    # a real change is a new question
    third = client.post("/api/analysis/transfer", json={**body, "weights": {"density": 3}})
    assert third.status_code == 200 and third.headers["X-Analysis-Cache"] == "miss"


def test_typology_cache_keys_on_rounded_weights(client):
    params = {"level": "stadtviertel", "indicators": "population,density", "k": 3}
    a = client.get("/api/analysis/typology", params={**params, "weights": "density=1.5"})
    b = client.get("/api/analysis/typology", params={**params, "weights": "density=1.51"})
    assert a.status_code == b.status_code == 200
    assert b.headers["X-Analysis-Cache"] == "hit"
    assert b.json()["weights"] == {"population": 1.0, "density": 1.5}
    assert a.json()["units"] == b.json()["units"]


def test_round_weights():
    r = transfer.round_weights
    assert r({"a": 3, "b": 1}) == {"a": 3.0, "b": 1.0}
    assert r({"a": 2.01, "b": 0.99}) == {"a": 2.0, "b": 1.0}
    assert r({"a": 1, "b": 1 / 3}) == {"a": 1.0, "b": 0.35}
    assert r({"a": 0.02, "b": 0.011}) == {"a": 0.02, "b": 0.011}  # the grid follows the scale
    assert r({"a": 30, "b": 0.0001, "c": 0}) == {"a": 30.0, "b": 0.5, "c": 0.0}  # never dropped


def test_slow_analysis_queries_hit_the_statement_timeout(make_client):
    hurried = make_client(analysis_timeout_ms=1)
    r = hurried.get("/api/analysis/typology", params={"level": "gemeinde", "k": 5})
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"]
    assert r.json()["code"] == "analysis.timeout"
    assert "QUARTERS_ANALYSIS_TIMEOUT_MS" in r.json()["detail"]


@pytest.mark.slow
def test_a_second_concurrent_analysis_gets_503(settings, engine):
    results: dict[str, httpx.Response] = {}
    with serve_app(settings, QUARTERS_ANALYSIS_QUEUE="0") as url:
        def run(name: str, seed: int) -> None:
            with httpx.Client(base_url=url, timeout=120) as http:
                results[name] = http.post("/api/analysis/transfer", json={
                    "reference": HALLE, "top": 500, "runs": 500, "seed": seed, "types": False})

        first = threading.Thread(target=run, args=("first", 1))
        first.start()
        time.sleep(0.5)  # the first (about 3 s of work) holds the worker's only slot
        t0 = time.perf_counter()
        run("second", 2)
        busy_s = time.perf_counter() - t0
        first.join()
        with httpx.Client(base_url=url, timeout=120) as http:  # free again afterwards
            after = http.post("/api/analysis/transfer", json={
                "reference": "stadtviertel:71", "level": "stadtviertel", "top": 5})
    assert results["first"].status_code == 200
    second = results["second"]
    assert second.status_code == 503, second.text
    assert second.headers["retry-after"] and busy_s < 1.0
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.json()["code"] == "analysis.busy"
    assert after.status_code == 200
