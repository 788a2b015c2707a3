"""Rate limits for real crowds: the idea limit holds under concurrency and against a rotating
X-Forwarded-For, trusted proxies name the client, and a workshop code lets many people on
one address take part (the code, not the address, is limited). Real uvicorn processes."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from conftest import free_port, wait_healthy
from factories import api_json, make_user
from quarters import auth
from quarters.clients import client_address, parse_networks
from quarters.settings import PROJECT_ROOT


@contextlib.contextmanager
def quarters_serve(settings, **env: str):  # noqa: ANN001, ANN201
    """`quarters serve` itself (as `make run` starts it) over the session database."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from quarters.cli import main; main()", "serve",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env={**os.environ, "QUARTERS_DATABASE_URL": settings.database_url,
             "QUARTERS_DATA_DIR": str(settings.data_dir), **env},
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, 30)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def idea(title: str, **extra) -> dict:
    return {"title": title, "text": "Eine Idee mit genug Text für die Prüfung.",
            "action_field": "Mobilität",
            "geometry": {"type": "Point", "coordinates": [11.9697, 51.4829]}, **extra}


def post(base: str, body: dict, forwarded: str | None = None) -> int:
    request = urllib.request.Request(f"{base}/api/ideas", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    if forwarded:
        request.add_header("X-Forwarded-For", forwarded)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def stored(engine, prefix: str) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM ideas WHERE title LIKE :p"),
                            {"p": prefix + "%"}).scalar_one()


# -- the client's address ---------------------------------------------------------------------
PROXIES = parse_networks("10.0.0.0/8, 192.168.1.1")


@pytest.mark.parametrize("peer,forwarded,expected", [
    ("203.0.113.9", ["1.2.3.4"], "203.0.113.9"),  # untrusted peer: its header is ignored
    ("10.1.2.3", ["1.2.3.4"], "1.2.3.4"),
    ("10.1.2.3", ["9.9.9.9, 1.2.3.4"], "1.2.3.4"),  # the spoofed left part is not believed
    ("10.1.2.3", ["1.2.3.4, 192.168.1.1"], "1.2.3.4"),  # skip trusted hops from the right
    ("10.1.2.3", ["1.2.3.4", "10.9.9.9"], "1.2.3.4"),  # several headers count as one list
    ("10.1.2.3", ["garbage, 1.2.3.4"], "1.2.3.4"),
    ("10.1.2.3", ["1.2.3.4, garbage"], "10.1.2.3"),  # a bad hop ends the walk
    ("10.1.2.3", [], "10.1.2.3"),
    ("10.1.2.3", ["[2001:db8::1]:443"], "2001:db8::1"),
    (None, ["1.2.3.4"], "unknown"),
])
def test_client_address(peer, forwarded, expected):
    assert client_address(peer, forwarded, PROXIES) == expected


def test_trusted_proxies_setting_refuses_nonsense():
    from quarters.settings import Settings

    with pytest.raises(ValueError, match="not an IP"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.example")
    networks = Settings(trusted_proxies="10.0.0.0/8 ::1").trusted_networks
    assert ipaddress.ip_address("10.4.4.4") in networks[0]


# -- real servers -----------------------------------------------------------------------------
def test_limit_is_atomic_and_not_fooled_by_x_forwarded_for(settings, engine):
    """20 concurrent posts, each with a new X-Forwarded-For, from an untrusted peer: exactly 5
    stored; then a workshop code lets the same address submit more."""
    prefix = f"Gleichzeitig {uuid.uuid4().hex[:6]}"
    with quarters_serve(settings, QUARTERS_IDEA_LIMIT="5") as base:
        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(
                lambda i: post(base, idea(f"{prefix} {i}"), f"198.51.100.{i}"), range(20)))
        assert sorted(statuses) == [202] * 5 + [429] * 15
        assert stored(engine, prefix) == 5

        with engine.begin() as conn:
            token = auth.open_session(conn, make_user(conn, "moderator", "limits-mod")).token
        status, _, code = api_json(base, "POST", "/api/ideas/workshop-codes",
                                   {"label": "Kreativwerkstatt Neustädter Passage 13",
                                    "hours": 3, "max_ideas": 8}, token=token)
        assert status == 201, code
        workshop = f"Werkstatt {uuid.uuid4().hex[:6]}"
        with ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(lambda i: post(base, idea(
                f"{workshop} {i}", workshop_code=code["code"].lower())), range(12)))
        assert sorted(statuses) == [202] * 8 + [429] * 4  # the code is limited, not the address
        assert stored(engine, workshop) == 8
        assert post(base, idea(f"{workshop} x", workshop_code="NICHT-GÜLTIG")) == 422
        status, _, listed = api_json(base, "GET", "/api/ideas/workshop-codes", token=token)
        assert [w["ideas"] for w in listed["workshops"] if w["id"] == code["id"]] == [8]
        assert api_json(base, "GET", "/api/ideas/workshop-codes")[0] == 401


def test_trusted_proxy_names_the_client(settings, engine):
    prefix = f"Hinter Proxy {uuid.uuid4().hex[:6]}"
    with quarters_serve(settings, QUARTERS_IDEA_LIMIT="2",
                        QUARTERS_TRUSTED_PROXIES="127.0.0.1") as base:
        assert [post(base, idea(f"{prefix} a{i}"), "192.0.2.7") for i in range(3)] == \
            [202, 202, 429]
        # a spoofed left part does not help: the proxy appended the real address
        assert post(base, idea(f"{prefix} b"), "203.0.113.50, 192.0.2.7") == 429
        # another citizen behind the same proxy is not affected
        assert post(base, idea(f"{prefix} c"), "192.0.2.8") == 202
    assert stored(engine, prefix) == 3
