"""Bulk import (all or nothing, dry-run) and export of measures, through API and CLI."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pyogrio
import pytest
from sqlalchemy import text

from factories import bearer, measure_feature


def n_measures(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM measures")).scalar_one()


def csv_bytes(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


GOOD = {"title": "Ladepunkt", "city_ags": "15002000", "action_field": "Mobilität",
        "status": "geplant", "lon": "11.97", "lat": "51.48", "partners": "Stadtwerke; EVG"}


def rows_with_broken_middle() -> list[dict]:
    rows = [dict(GOOD, title=f"Ladepunkt {i}") for i in range(5)]
    rows[2] = dict(GOOD, title="Kaputt", action_field="Raumfahrt", lat="151.48")
    return rows


def test_csv_import_with_a_broken_row_stores_nothing_and_names_the_row(client, conn):
    headers = bearer(client, conn, "planner")
    before = n_measures(conn)
    response = client.post("/api/measures/import", headers=headers,
                           files={"file": ("m.csv", csv_bytes(rows_with_broken_middle()), "text/csv")})
    assert response.status_code == 422
    problems = response.json()["errors"]
    assert {p["row"] for p in problems} == {3}
    assert {p["field"] for p in problems} >= {"geometry/coordinates", ""} or len(problems) >= 2
    assert n_measures(conn) == before


def test_dry_run_reports_every_problem_row_and_stores_nothing(client, conn):
    headers = bearer(client, conn, "planner")
    rows = rows_with_broken_middle()
    rows[4] = dict(GOOD, title="", lon="x")
    before = n_measures(conn)
    response = client.post("/api/measures/import?dry_run=true", headers=headers,
                           files={"file": ("m.csv", csv_bytes(rows), "text/csv")})
    assert response.status_code == 200
    report = response.json()
    assert report["dry_run"] and not report["stored"] and report["rows"] == 5
    assert {p["row"] for p in report["problems"]} == {3, 5}
    assert n_measures(conn) == before


def test_clean_dry_run_says_what_would_be_created_and_stores_nothing(client, conn):
    """The planner's import shows this report before anything is stored."""
    headers = bearer(client, conn, "planner")
    collection = {"type": "FeatureCollection", "features": [
        measure_feature(title=f"Probelauf {i}") for i in range(3)]}
    before = n_measures(conn)
    history = conn.execute(text("SELECT count(*) FROM measure_history")).scalar_one()
    response = client.post("/api/measures/import?dry_run=true", headers=headers, files={
        "file": ("m.geojson", json.dumps(collection).encode(), "application/geo+json")})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report == {"rows": 3, "created": [], "problems": [], "dry_run": True,
                      "stored": False, "valid": 3}
    assert n_measures(conn) == before
    assert conn.execute(text("SELECT count(*) FROM measure_history")).scalar_one() == history
    broken = rows_with_broken_middle()
    report = client.post("/api/measures/import?dry_run=true", headers=headers, files={
        "file": ("m.csv", csv_bytes(broken), "text/csv")}).json()
    assert report["valid"] == 4 and {p["row"] for p in report["problems"]} == {3}
    assert n_measures(conn) == before


def test_clean_geojson_import_creates_drafts_with_history(client, conn):
    headers = bearer(client, conn, "planner")
    collection = {"type": "FeatureCollection", "features": [
        measure_feature(title=f"Import {i}") for i in range(3)]}
    before = n_measures(conn)
    response = client.post("/api/measures/import", headers=headers, files={
        "file": ("m.geojson", json.dumps(collection).encode(), "application/geo+json")})
    assert response.status_code == 200, response.text
    created = response.json()["created"]
    assert len(created) == 3 and n_measures(conn) == before + 3
    drafts = conn.execute(text(
        "SELECT count(*) FROM measures WHERE id = ANY(:ids) AND NOT published"),
        {"ids": created}).scalar_one()
    assert drafts == 3
    history = conn.execute(text(
        "SELECT count(*) FROM measure_history WHERE measure_id = ANY(:ids) AND action = 'create'"),
        {"ids": created}).scalar_one()
    assert history == 3


def test_geopackage_import_in_another_crs(client, conn, tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    gdf = gpd.GeoDataFrame([{"title": "GPKG", "city_ags": "15002000", "action_field": "Bildung",
                             "status": "idee", "geometry": Point(11.9206, 51.4804)}],
                           crs=4326).to_crs(25832)
    path = tmp_path / "m.gpkg"
    gdf.to_file(path)
    response = client.post("/api/measures/import", headers=bearer(client, conn, "planner"),
                           files={"file": ("m.gpkg", path.read_bytes(), "application/octet-stream")})
    assert response.status_code == 200, response.text
    mid = response.json()["created"][0]
    quarters = conn.execute(text(
        "SELECT quarter_ids <> '{}' FROM measures WHERE id = :i"), {"i": mid}).scalar_one()
    assert quarters


@pytest.mark.parametrize("name,content,expected", [
    ("m.txt", b"title\nx", "file.unsupported_type"),
    ("m.geojson", b"{broken", "file.bad_json_at"),
    ("m.geojson", b'{"type": "Feature"}', "file.not_feature_collection"),
    ("m.gpkg", b"not a geopackage", "file.wrong_content"),
])
def test_broken_files_are_refused(client, conn, name, content, expected):
    before = n_measures(conn)
    response = client.post("/api/measures/import", headers=bearer(client, conn, "planner"),
                           files={"file": (name, content, "application/octet-stream")})
    assert response.status_code == 422 and response.json()["code"] == expected
    assert response.json()["params"]["name"] == name
    assert n_measures(conn) == before


def test_export_formats_contain_only_what_the_caller_may_see(client, conn, tmp_path):
    planner = bearer(client, conn, "planner")
    draft = client.post("/api/measures", json=measure_feature(title="Geheimer Entwurf"),
                        headers=planner).json()["id"]
    public_geojson = client.get("/api/measures/export?format=geojson").json()
    public_ids = {f["id"] for f in public_geojson["features"]}
    assert draft not in public_ids and len(public_ids) >= 30
    staff_geojson = client.get("/api/measures/export?format=geojson", headers=planner).json()
    assert draft in {f["id"] for f in staff_geojson["features"]}
    csv_text = client.get("/api/measures/export?format=csv").text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == len(public_ids) and rows[0]["wkt"]
    assert "Geheimer Entwurf" not in csv_text
    gpkg = tmp_path / "export.gpkg"
    gpkg.write_bytes(client.get("/api/measures/export?format=gpkg").content)
    frame = pyogrio.read_dataframe(gpkg)
    assert len(frame) == len(public_ids) and frame.crs.to_epsg() == 4326
    assert client.get("/api/measures/export?format=shp").status_code == 400


def test_cli_import_dry_run_and_refusal(settings, monkeypatch, tmp_path):
    from quarters.settings import get_settings

    monkeypatch.setenv("QUARTERS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("QUARTERS_LANG", "en")  # the CLI's English texts
    get_settings.cache_clear()
    path = tmp_path / "massnahmen.csv"
    path.write_bytes(csv_bytes(rows_with_broken_middle()))
    run = [sys.executable, "-c", "from quarters.cli import main; main()", "import", "measures",
           str(path)]
    dry = subprocess.run([*run, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert dry.returncode == 1 and "row 3" in dry.stderr and "would import 4" in dry.stderr
    real = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert real.returncode == 2 and "nothing stored" in real.stderr
    get_settings.cache_clear()
