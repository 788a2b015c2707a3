"""Hostile import files: opened only as what their names claim, offline, within caps.

A ``.gpkg`` / ``.geojson`` / ``.shp`` that is really an OGR VRT must neither read another file
of the server into the answer nor make the server send HTTP requests; zips are checked before
they are unpacked; caps on features and vertices. Through the API, the CLI and the functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyogrio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from factories import bearer
from geofiles import GERA_A, GERA_B, frame, zip_shapefile
from quarters.api import create_app
from quarters.api.deps import get_conn
from quarters.errors import ImportRefused
from quarters.imports.boundaries import BoundarySpec, import_into
from quarters.safefiles import Limits, offline_gdal, read_frame

GERA = "16052000"
SECRET_COLUMN = "GEHEIM_4711"
SECRET_VALUE = "kontonummer-0815"


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with a small CSV and records its path."""

    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        Recorder.hits.append(self.path)
        body = f"{SECRET_COLUMN},b\n{SECRET_VALUE},2\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


@pytest.fixture
def http_recorder() -> Iterator[tuple[str, list[str]]]:
    """A tiny HTTP server on 127.0.0.1 that records whether it was asked anything."""
    Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder.hits
    server.shutdown()
    server.server_close()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file of the 'server' that no upload may read."""
    path = tmp_path / "geheim.csv"
    path.write_text(f"{SECRET_COLUMN},b\n{SECRET_VALUE},2\n")
    return path


def vrt(source: str) -> str:
    """An OGR VRT that reads another data source (a file or a URL)."""
    return (f"<OGRVRTDataSource><OGRVRTLayer name=\"geheim\"><SrcDataSource>{source}"
            "</SrcDataSource><SrcLayer>geheim</SrcLayer></OGRVRTLayer></OGRVRTDataSource>")


def hostile_sources(secret: Path, url: str) -> dict[str, str]:
    return {"local": vrt(f"CSV:{secret}"), "vsicurl": vrt(f"CSV:/vsicurl/{url}/geheim.csv")}


def assert_clean(answer: str, hits: list[str], tmp_dir: Path | None = None,
                 paths: bool = True) -> None:
    assert SECRET_COLUMN not in answer and SECRET_VALUE not in answer
    if paths:  # (a CSV's header is the user's own text: it may be named, cut short)
        assert "/vsi" not in answer and "/tmp" not in answer and "geheim.csv" not in answer
    if tmp_dir is not None:
        assert str(tmp_dir) not in answer
    assert hits == [], f"the server sent requests: {hits}"


def n_measures(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM measures")).scalar_one()


# -- the VRT really is dangerous without the pin (proves the test files are hostile) --------
def test_unpinned_gdal_would_read_the_secret_and_call_the_url(tmp_path, secret_file,
                                                              http_recorder):
    url, hits = http_recorder
    for kind, content in hostile_sources(secret_file, url).items():
        path = tmp_path / f"{kind}.gpkg"
        path.write_text(content)
        gdf = pyogrio.read_dataframe(path)  # what measure_io did before
        assert SECRET_COLUMN in gdf.columns
    assert hits, "the vsicurl VRT did not reach the recorder: the test would prove nothing"


@pytest.mark.parametrize("suffix,kind", [(".gpkg", "gpkg"), (".geojson", "geojson"),
                                         (".shp", "shp")])
def test_driver_pin_and_offline_gdal_refuse_a_vrt_even_without_the_magic_check(
        tmp_path, secret_file, http_recorder, suffix, kind):
    url, hits = http_recorder
    limits = Limits.of()
    for name, content in hostile_sources(secret_file, url).items():
        path = tmp_path / f"{name}{suffix}"
        path.write_text(content)
        with pytest.raises(ImportRefused) as refused:
            read_frame(path, f"{name}{suffix}", kind, limits)
        assert_clean(refused.value.detail, hits, tmp_path)


def test_offline_gdal_blocks_network_and_is_restored(tmp_path, http_recorder):
    url, hits = http_recorder
    path = tmp_path / "net.vrt"
    path.write_text(vrt(f"CSV:/vsicurl/{url}/geheim.csv"))
    with offline_gdal(), pytest.raises(Exception):  # noqa: B017, PT011
        pyogrio.read_dataframe(path)
    assert hits == []
    assert pyogrio.get_gdal_config_option("GDAL_HTTP_PROXY") is None


def test_geojson_crs_link_does_not_make_a_request(conn, tmp_path, http_recorder):
    url, hits = http_recorder
    collection = {"type": "FeatureCollection",
                  "crs": {"type": "link", "properties": {"href": f"{url}/crs.wkt",
                                                         "type": "ogcwkt"}},
                  "features": [{"type": "Feature", "properties": {"code": "X1", "name": "A"},
                                "geometry": json.loads(json.dumps(GERA_A.__geo_interface__))}]}
    path = tmp_path / "link.geojson"
    path.write_text(json.dumps(collection))
    spec = BoundarySpec(level="testviertel", city=GERA, code_field="code", name_field="name")
    with contextlib.suppress(ImportRefused):
        import_into(conn, path, spec)
    assert hits == []


# -- through the API -------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".csv"])
def test_api_refuses_vrt_uploads_without_reading_or_fetching(client, conn, settings, secret_file,
                                                             http_recorder, suffix):
    url, hits = http_recorder
    headers = bearer(client, conn, "planner")
    before = n_measures(conn)
    for content in hostile_sources(secret_file, url).values():
        response = client.post("/api/measures/import", headers=headers,
                               files={"file": (f"massnahmen{suffix}", content.encode(),
                                               "application/octet-stream")})
        if suffix == ".csv":  # read as text, never by GDAL: one header line, no rows
            assert response.status_code in (200, 422) and not response.json().get("created")
        else:
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert f"massnahmen{suffix}" in response.json()["detail"]
        assert_clean(response.text, hits, settings.import_tmp, paths=suffix != ".csv")
    assert n_measures(conn) == before


# -- through the CLI -------------------------------------------------------------------------
def run_cli(settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "QUARTERS_DATABASE_URL": settings.database_url,
                   "QUARTERS_DATA_DIR": str(settings.data_dir),
                   "QUARTERS_LANG": "en", **env}  # these tests read the CLI's English texts
    return subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=180, env=environment)


def test_cli_boundary_import_refuses_vrt_files_without_reading_or_fetching(
        settings, tmp_path, secret_file, http_recorder):
    url, hits = http_recorder
    for suffix in (".gpkg", ".geojson"):
        path = tmp_path / f"viertel{suffix}"
        path.write_text(hostile_sources(secret_file, url)["vsicurl"])
        result = run_cli(settings, "import", "boundaries", str(path), "--level", "testviertel",
                         "--city", GERA, "--code-field", "code", "--name-field", "name",
                         QUARTERS_TMP_DIR=str(tmp_path / "work"))
        assert result.returncode == 2, result.stderr
        assert f"viertel{suffix}" in result.stderr
        assert_clean(result.stderr + result.stdout, hits)


def zip_slip(folder: Path) -> Path:
    """A zip whose member climbs out of the extraction folder."""
    base = zip_shapefile(frame([{"code": "A", "name": "A", "geometry": GERA_A}]), folder, "ok")
    evil = folder / "slip.zip"
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(evil, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info))
        out.writestr("../../ausgebrochen.shp", b"\x00\x00\x27\x0a" + b"\x00" * 96)
    return evil


def zip_bomb(folder: Path, unpacked: int) -> Path:
    """A small zip that declares ``unpacked`` bytes of zeros inside."""
    bomb = folder / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as out:
        with out.open("bomb.shp", "w") as member:
            chunk = b"\x00\x00\x27\x0a" + b"\x00" * (1 << 20)
            for _ in range(unpacked >> 20):
                member.write(chunk)
        out.writestr("bomb.dbf", b"")
    return bomb


def test_zip_slip_and_zip_bomb_are_refused_before_unpacking(conn, tmp_path):
    spec = BoundarySpec(level="testviertel", city=GERA, code_field="code", name_field="name")
    work = tmp_path / "work"
    limits = dataclasses.replace(Limits.of(), tmp=work, max_bytes=4 << 20)
    from quarters.imports.boundaries import load_boundaries

    slip = zip_slip(tmp_path)
    with pytest.raises(ImportRefused, match="points outside the zip"):
        load_boundaries(slip, spec, limits)
    bomb = zip_bomb(tmp_path, 64 << 20)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ImportRefused, match="unpacks to") as refused:
        load_boundaries(bomb, spec, limits)
    assert str(work) not in refused.value.detail
    assert not (tmp_path.parent / "ausgebrochen.shp").exists()
    assert not any(p.is_file() for p in work.rglob("*")), "nothing may stay unpacked"


def test_cli_refuses_zip_slip_and_bomb(settings, tmp_path):
    for archive, expected in ((zip_slip(tmp_path), "points outside the zip"),
                              (zip_bomb(tmp_path, 8 << 20), "unpacks to")):
        result = run_cli(settings, "import", "boundaries", str(archive), "--level", "testviertel",
                         "--city", GERA, "--code-field", "code", "--name-field", "name",
                         QUARTERS_TMP_DIR=str(tmp_path / "work"),
                         QUARTERS_MAX_IMPORT_BYTES=str(4 << 20))
        assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert not (tmp_path.parent / "ausgebrochen.shp").exists()


def test_a_zipped_shapefile_still_imports(conn, tmp_path):
    gdf = frame([{"code": "A", "name": "Nord", "geometry": GERA_A},
                 {"code": "B", "name": "Süd", "geometry": GERA_B}])
    spec = BoundarySpec(level="testviertel", city=GERA, code_field="code", name_field="name")
    summary = import_into(conn, zip_shapefile(gdf, tmp_path, "viertel"), spec)
    assert summary.inserted == 2


# -- caps on features and vertices -----------------------------------------------------------
@pytest.fixture
def capped_client(settings, engine, conn) -> Iterator[TestClient]:
    """The app with small caps (3 features, 40 vertices), in the test's transaction."""
    app = create_app(settings.model_copy(update={"max_import_features": 3,
                                                 "max_import_vertices": 40}), engine=engine)

    def request_conn():  # noqa: ANN202
        yield conn

    app.dependency_overrides[get_conn] = request_conn
    with TestClient(app) as test_client:
        yield test_client


def test_too_many_features_or_vertices_are_refused_through_the_api(capped_client, conn):
    headers = bearer(capped_client, conn, "planner")
    before = n_measures(conn)
    rows = "title,city_ags,action_field,status,lon,lat\n" + "".join(
        f"Ladepunkt {i},15002000,Mobilität,geplant,11.97,51.48\n" for i in range(5))
    response = capped_client.post("/api/measures/import", headers=headers,
                                  files={"file": ("viele.csv", rows.encode(), "text/csv")})
    assert response.status_code == 422 and response.json()["code"] == "file.too_many_features"
    assert {"count": 5, "max": 3}.items() <= response.json()["params"].items()
    ring = [[11.9 + i / 1000, 51.48] for i in range(60)] + [[11.9, 51.49], [11.9, 51.48]]
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
               "properties": {"title": "Fläche", "city_ags": "15002000",
                              "action_field": "Mobilität", "status": "geplant"}}
    body = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    response = capped_client.post("/api/measures/import", headers=headers,
                                  files={"file": ("spitz.geojson", body, "application/geo+json")})
    assert response.status_code == 422 and response.json()["code"] == "file.too_many_vertices"
    assert {"count": 62, "max": 40}.items() <= response.json()["params"].items()
    assert n_measures(conn) == before


def test_cli_caps_features(settings, tmp_path):
    path = tmp_path / "viertel.geojson"
    frame([{"code": f"C{i}", "name": f"V{i}", "geometry": GERA_A} for i in range(4)]
          ).to_file(path, driver="GeoJSON")
    result = run_cli(settings, "import", "boundaries", str(path), "--level", "testviertel",
                     "--city", GERA, "--code-field", "code", "--name-field", "name",
                     QUARTERS_MAX_IMPORT_FEATURES="3")
    assert result.returncode == 2 and "4 features; at most 3" in result.stderr, result.stderr
