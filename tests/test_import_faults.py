"""Fault test with real processes: ``kill -9`` of the API during a measure import over HTTP.

Nothing is half-stored (the counts of measures and history rows are unchanged) and the temp
file the killed process left is removed when the app starts again.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from quarters import auth
from rawhttp import app_process

pytestmark = pytest.mark.slow

BOUNDARY = "KillBoundary"


@pytest.fixture
def planner_token(engine):
    with engine.begin() as conn:
        user = auth.add_user(conn, "fault-planner", "ein langes Passwort 123", "planner")
        token = auth.open_session(conn, user).token
    yield token
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sessions WHERE user_id = :u"), {"u": user.id})
        conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": user.id})


def counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(text("SELECT count(*) FROM measures")).scalar_one(),
                conn.execute(text("SELECT count(*) FROM measure_history")).scalar_one())


def csv_rows(n: int) -> bytes:
    lines = ["title,city_ags,action_field,status,lon,lat,partners"]
    lines += [f"Ladepunkt {i},15002000,Mobilität,geplant,11.97,51.48,Stadtwerke"
              for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def multipart(content: bytes) -> tuple[bytes, bytes]:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"massnahmen.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    return head + content, f"\r\n--{BOUNDARY}--\r\n".encode()


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def wait_for(condition, seconds: float = 30):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    return None


def start_upload(url: str, token: str, body: bytes, declared: int):  # noqa: ANN201
    import socket

    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall((f"POST /api/measures/import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Bearer {token}\r\n"
                  f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                  f"Content-Length: {declared}\r\n\r\n").encode() + body)
    return sock


def kill_hard(proc) -> None:  # noqa: ANN001
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.mark.parametrize("phase", ["while uploading", "while storing"])
def test_kill_9_during_an_import_stores_nothing_and_the_restart_cleans_up(
        settings, engine, tmp_path, planner_token, phase):
    before = counts(engine)
    content = csv_rows(4000)
    part, tail = multipart(content)
    with app_process(settings, QUARTERS_TMP_DIR=str(tmp_path)) as (proc, url):
        if phase == "while uploading":  # half the file sent, then the server dies
            sock = start_upload(url, planner_token, part[: len(part) // 2], len(part) + len(tail))
            assert wait_for(lambda: [p for p in temp_files(tmp_path) if p.stat().st_size > 0])
        else:  # the whole file arrived; the import is running in its transaction
            sock = start_upload(url, planner_token, part + tail, len(part) + len(tail))
            assert wait_for(lambda: [p for p in temp_files(tmp_path)
                                     if p.stat().st_size == len(content)]), \
                "the upload never completed"
        kill_hard(proc)
        sock.close()
    left = temp_files(tmp_path)
    assert left, "the killed process left no temp file: the restart would prove nothing"
    assert counts(engine) == before, "a killed import stored something"
    with app_process(settings, QUARTERS_TMP_DIR=str(tmp_path)) as (_proc, _url):
        assert temp_files(tmp_path) == [], "the restart did not remove the killed import's file"
        assert not any(p.exists() for p in left)
    assert counts(engine) == before
