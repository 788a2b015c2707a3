"""The transferability report: files, offline HTML in Debian's Chromium, and the CLI."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pyogrio
import pytest

from quarters.report import write_report
from quarters.settings import HALLE_AGS, get_settings
from quarters.transfer import TransferParams, run_transfer

TIMEOUT_MS = 30_000


@pytest.fixture
def quarter_report(conn, settings, tmp_path):
    res = run_transfer(conn, TransferParams(reference="quarter:bildungsquartier-neustadt",
                                            level="stadtviertel", top=8,
                                            indicators=["population", "density"]))
    return res, write_report(conn, res, tmp_path / "neustadt.html", settings)


@pytest.fixture
def city_report(conn, settings, tmp_path):
    res = run_transfer(conn, TransferParams(reference=f"gemeinde:{HALLE_AGS}", level="gemeinde",
                                            top=10, types=False))
    return res, write_report(conn, res, tmp_path / "halle.html", settings)


def test_report_files(quarter_report):
    res, paths = quarter_report
    html = paths["html"].read_text(encoding="utf-8")
    # self-contained: no external script, stylesheet or image is referenced
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=\"?https?:", html)
    assert "Leaflet 1.9.4" in html and "url(data:image/png;base64," in html
    assert 'id="ranking"' in html and 'id="contributions"' in html
    assert "Daten: Wikipedia-Autoren (CC BY-SA 4.0)" in html  # attribution of the values
    # the method says how the quarter profile was made, in the report's language (German)
    assert "flächenanteilig übertragen" in html and "allocate_total=False" not in html
    table = pd.read_csv(paths["csv"], dtype={"code": str})
    assert len(table) == 43
    assert table["rank"].min() == 1
    layers = {name for name, _ in pyogrio.list_layers(paths["gpkg"])}
    assert layers == {"ranking", "reference"}
    info = pyogrio.read_info(paths["gpkg"], layer="ranking")
    assert info["features"] == 43 and "EPSG:25832" in info["crs"]


def _open_offline(browser, path, artifacts, name):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked, errors = [], []

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_selector(".folium-map.leaflet-container canvas", timeout=TIMEOUT_MS)
    return page, blocked, errors


@pytest.mark.browser
def test_report_opens_offline_in_chromium(browser, quarter_report, artifacts):
    res, paths = quarter_report
    page, blocked, errors = _open_offline(browser, paths["html"], artifacts, "neustadt")
    try:
        assert page.evaluate("window.quartersLayer.getLayers().length") == 43
        rows = page.locator("#ranking tbody tr")
        assert rows.count() == 1 + 8  # the external reference's values, then the top 8
        first = page.locator("#ranking tbody tr.q-row").first
        assert first.locator("td").nth(0).inner_text() == "1"
        assert first.get_attribute("data-code") == res.top.index[0]
        assert page.locator("#contributions rect").count() > 8
        # switching the map variable restyles the layer and redraws the legend
        page.select_option("#q-variable", index=1)
        assert "Einwohner" in page.locator(".q-legend").inner_text()
        assert page.locator(".leaflet-control-attribution").inner_text().count("Wikipedia") >= 1
        page.screenshot(path=artifacts / "report-neustadt.png", full_page=True)
        assert errors == []
        assert blocked == []  # nothing even tried to reach the network
    finally:
        page.close()


@pytest.mark.browser
def test_report_of_all_municipalities_opens_offline(browser, city_report, artifacts):
    res, paths = city_report
    page, blocked, errors = _open_offline(browser, paths["html"], artifacts, "halle")
    try:
        assert page.evaluate("window.quartersLayer.getLayers().length") == 10997
        codes = page.locator("#ranking tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.code)")
        assert codes[0] == HALLE_AGS and len(codes) == 11
        assert "© GeoBasis-DE / BKG" in page.locator(".leaflet-control-attribution").inner_text()
        page.screenshot(path=artifacts / "report-halle.png")
        assert errors == [] and blocked == []
    finally:
        page.close()


def test_cli_writes_report_csv_and_geopackage(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("QUARTERS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("QUARTERS_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    out = tmp_path / "out" / "bericht.html"
    result = subprocess.run(
        [sys.executable, "-c", "from quarters.cli import main; main()", "analyze", "transfer",
         "--reference", "stadtviertel:71", "--level", "stadtviertel", "--indicator", "density",
         "--indicator", "population", "--weight", "density=2", "--top", "5", "--out", str(out)],
        capture_output=True, text=True, timeout=180)
    get_settings.cache_clear()
    assert result.returncode == 0, result.stderr
    assert "Nördliche Neustadt" in result.stderr
    for suffix in (".html", ".csv", ".gpkg"):
        assert out.with_suffix(suffix).stat().st_size > 0
    bad = subprocess.run(
        [sys.executable, "-c", "from quarters.cli import main; main()", "analyze", "transfer",
         "--reference", "stadtviertel:71", "--level", "bezirk", "--out", str(out)],
        capture_output=True, text=True, timeout=180, env={**__import__("os").environ,
                                                          "QUARTERS_DATABASE_URL":
                                                          settings.database_url,
                                                          "QUARTERS_LANG": "de"})
    assert bad.returncode == 2
    # the CLI speaks German unless asked otherwise (the coded problem indicator.unknown_level)
    assert "level: eine Ebene „bezirk“ gibt es nicht" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_cli_imports_indicators(settings, tmp_path, monkeypatch, engine):
    from sqlalchemy import text

    path = tmp_path / "kaputt.csv"
    path.write_text("ags,indicator,value,ref_date\n99999999,population,1,2020\n")
    env = {**__import__("os").environ, "QUARTERS_DATABASE_URL": settings.database_url,
           "QUARTERS_DATA_DIR": str(settings.data_dir), "QUARTERS_LANG": "en"}
    result = subprocess.run(
        [sys.executable, "-c", "from quarters.cli import main; main()", "import", "indicators",
         str(path), "--level", "gemeinde"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert "kaputt.csv, row 2: unknown ags '99999999'" in result.stderr.replace("\n", " ")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sources WHERE key LIKE "
                                 "'import:indicators:%kaputt%'")).scalar_one() == 0


def test_report_marks_who_meets_the_measure_preconditions(client, conn):
    """A ranking with ``reference=measure:<id>`` shows ✔/✗ per candidate, the failed
    conditions with the candidate's value, and the conditions in the header — the same
    verdicts as the API's ``meets_preconditions``."""
    from factories import bearer, measure_feature

    planner = bearer(client, conn, "planner")
    densities = sorted(r[0] for r in conn.execute(text_sql(
        "SELECT quarters_figure('density', 'stadtviertel', code) FROM districts "
        "WHERE level = 'stadtviertel'")) if r[0] is not None)
    threshold = densities[len(densities) // 2]
    created = client.post("/api/measures", headers=planner, json=measure_feature(
        transfer={"preconditions": [{"indicator": "density", "op": ">=", "value": threshold}]}))
    assert created.status_code == 201, created.text
    mid = created.json()["id"]
    assert client.post(f"/api/measures/{mid}/publish", headers={
        **planner, "If-Match": created.headers["etag"]}).status_code == 200
    body = {"reference": f"measure:{mid}", "level": "stadtviertel", "top": 100,
            "sensitivity": False, "types": False}
    rows = client.post("/api/analysis/transfer", json=body).json()["rows"]
    verdicts = {r["code"]: r["meets_preconditions"] for r in rows if not r["is_reference"]}
    assert 0 < sum(verdicts.values()) < len(verdicts)

    report = client.post("/api/analysis/report", json=body)
    assert report.status_code == 200, report.text[:500]
    page = report.text
    assert 'id="q-preconditions"' in page and "≥" in page
    assert "<th>Vorbedingungen</th>" in page
    shown = dict(re.findall(r'<tr class="q-row[^"]*" data-code="([^"]+)">(?:(?!</tr>).)*?'
                            r'<td class="q-(?:meets|fails)" data-meets="(true|false)"', page))
    assert {code: value == "true" for code, value in shown.items()} == verdicts
    assert re.search(r"nicht erfüllt: [^<]*\(Wert: ", page)


def text_sql(sql):
    from sqlalchemy import text
    return text(sql)
