"""Bodies are bounded before they are read; uploads wait for the sign-in; temp files live in
one directory that a start empties; /vendor serves only what the pages load.

Against a real uvicorn process with a raw socket client, so a test can declare 400 MiB and
send only a few KiB, and see when the server answers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from quarters import auth
from quarters.api import create_app
from rawhttp import app_process, raw_request

MiB = 1 << 20
BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def tmp_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quarters-tmp")


@pytest.fixture(scope="module")
def server(settings, engine, tmp_dir):
    """The app with a 64 KiB JSON limit and its temp files in ``tmp_dir``."""
    with app_process(settings, QUARTERS_MAX_BODY_BYTES=str(BODY_LIMIT),
                     QUARTERS_TMP_DIR=str(tmp_dir)) as (_proc, url):
        yield url


@pytest.fixture(scope="module")
def planner_token(engine):
    """A committed planner session (the server is another process)."""
    with engine.begin() as conn:
        user = auth.add_user(conn, "limits-planner", "ein langes Passwort 123", "planner")
        token = auth.open_session(conn, user).token
    yield token
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sessions WHERE user_id = :u"), {"u": user.id})
        conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": user.id})


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def multipart_head(length: int, extra: str = "") -> str:
    return ("POST /api/measures/import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=XyZ\r\n"
            f"Content-Length: {length}{extra}")


def multipart_parts(n: int, size: int = 64 * 1024):
    yield (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="gross.csv"\r\n'
           b"Content-Type: text/csv\r\n\r\ntitle,city_ags\r\n")
    for _ in range(n):
        yield b"a" * size


def test_anonymous_400_mib_upload_gets_401_and_nothing_is_spooled(server, tmp_dir):
    before = files_in(tmp_dir)
    answer = raw_request(server, multipart_head(400 * MiB), multipart_parts(64))
    assert answer.status == 401, answer.body[:200]
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.sent < 8 * MiB, "the server waited for the body instead of answering"
    assert files_in(tmp_dir) == before == []


def test_signed_in_upload_over_the_limit_gets_413_before_it_is_read(server, tmp_dir,
                                                                   planner_token):
    answer = raw_request(server, multipart_head(400 * MiB,
                                                f"\r\nAuthorization: Bearer {planner_token}"),
                         multipart_parts(64))
    assert answer.status == 413
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert json.loads(answer.body)["status"] == 413
    assert "x-content-type-options" in answer.headers
    assert answer.sent < 8 * MiB and files_in(tmp_dir) == []


def test_chunked_upload_without_length_is_cut_at_the_limit(settings, engine, tmp_path,
                                                           planner_token):
    with app_process(settings, QUARTERS_MAX_UPLOAD_BYTES=str(MiB),
                     QUARTERS_TMP_DIR=str(tmp_path)) as (_proc, url):
        head = ("POST /api/measures/import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: multipart/form-data; boundary=XyZ\r\n"
                f"Transfer-Encoding: chunked\r\nAuthorization: Bearer {planner_token}")
        parts = (b"%x\r\n%s\r\n" % (len(p), p) for p in multipart_parts(256))
        answer = raw_request(url, head, parts)
    assert answer.status == 413 and answer.sent < 8 * MiB
    assert files_in(tmp_path) == [], "the cut-off upload's temp file must be removed"


def test_json_body_over_the_limit_gets_413_without_being_read(server):
    head = ("POST /api/analysis/transfer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {300 * MiB}")
    answer = raw_request(server, head, (b'{"reference": "' + b"x" * 65536 for _ in range(4096)))
    assert answer.status == 413 and answer.sent < 8 * MiB
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert b"xxxx" not in answer.body


def test_chunked_json_body_is_refused_once_past_the_limit(server):
    head = ("POST /api/analysis/transfer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked")
    chunk = b"x" * 16384
    parts = (b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4096))  # 64 MiB if all read
    answer = raw_request(server, head, parts)
    assert answer.status == 413, answer.body[:200]
    assert answer.sent < 8 * MiB, f"{answer.sent} bytes sent before the 413"
    assert b"xxxx" not in answer.body


def test_analysis_400_does_not_echo_a_large_body(server):
    reference = "gemeinde-" + "y" * 50_000
    response = httpx.post(f"{server}/api/analysis/transfer", json={"reference": reference},
                          timeout=30)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert len(response.content) < 2000
    assert not re.search("y{81}", response.text), "more than 80 characters of the input echoed"


def test_upload_is_spooled_in_the_temp_dir_and_removed(server, tmp_dir, planner_token):
    body = "title,city_ags,action_field,status,lon,lat\nA,15002000,Mobilität,geplant,11.97,51.48\n"
    response = httpx.post(f"{server}/api/measures/import?dry_run=true",
                          headers={"Authorization": f"Bearer {planner_token}"},
                          files={"file": ("m.csv", body.encode(), "text/csv")}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == 1
    assert files_in(tmp_dir) == []


def test_start_removes_what_dead_processes_left_in_the_temp_dir(settings, engine, tmp_path):
    stale = tmp_path / "p999999" / "upload-abc.csv"  # a pid that does not run
    stale.parent.mkdir()
    stale.write_text("half an upload")
    loose = tmp_path / "upload-old.gpkg"
    loose.write_text("x")
    app = create_app(settings.model_copy(update={"tmp_dir": tmp_path}), engine=engine)
    with TestClient(app):
        assert not stale.exists() and not loose.exists()


def test_cli_start_removes_stale_temp_files(settings, tmp_path):
    import os
    import subprocess
    import sys

    stale = tmp_path / "p999998" / "import-x" / "layer.shp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x")
    env = {**os.environ, "QUARTERS_DATABASE_URL": settings.database_url,
           "QUARTERS_TMP_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()", "--help"],
                   capture_output=True, timeout=60, env=env, check=True)
    assert not stale.exists() and not (tmp_path / "p999998").exists()


@pytest.mark.parametrize("path,status", [
    ("/vendor/leaflet/dist/leaflet.js", 200),
    ("/vendor/leaflet/dist/leaflet.css", 200),
    ("/vendor/leaflet/dist/images/marker-shadow.png", 200),
    ("/vendor/supercluster/dist/supercluster.min.js", 200),
    ("/vendor/leaflet/package.json", 404),
    ("/vendor/leaflet/README.md", 404),
    ("/vendor/leaflet/src/Leaflet.js", 404),
    ("/vendor/supercluster/package.json", 404),
    ("/vendor/.package-lock.json", 404),
    ("/vendor/leaflet/dist/../package.json", 404),
])
def test_vendor_serves_only_what_the_pages_load(client, path, status):
    assert client.get(path).status_code == status


def test_wrong_role_upload_gets_403_before_anything_is_spooled(server, tmp_dir, engine):
    with engine.begin() as conn:
        user = auth.add_user(conn, "limits-moderator", "ein langes Passwort 123", "moderator")
        token = auth.open_session(conn, user).token
    try:
        answer = raw_request(server, multipart_head(400 * MiB, f"\r\nAuthorization: Bearer {token}"),
                             multipart_parts(64))
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM sessions WHERE user_id = :u"), {"u": user.id})
            conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": user.id})
    assert answer.status == 403 and answer.sent < 8 * MiB
    assert files_in(tmp_dir) == []
