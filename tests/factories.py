"""Plain factory functions for test records (no framework)."""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from quarters import auth

PASSWORD = "richtig-geheim-123"

# A small valid polygon in Halle's eastern pilot quarter and a point in Neustadt.
HALLE_POLYGON = {"type": "Polygon", "coordinates": [[
    [11.995, 51.478], [12.000, 51.478], [12.000, 51.481], [11.995, 51.481], [11.995, 51.478]]]}
NEUSTADT_POINT = {"type": "Point", "coordinates": [11.9206, 51.4804]}
GERA_POINT = {"type": "Point", "coordinates": [12.0836, 50.8763]}


_HASH = auth._hasher.hash(PASSWORD)  # hashed once: argon2 is slow on purpose


def make_user(conn, role: str, username: str | None = None) -> auth.User:
    """Create an account with the test password (pre-hashed)."""
    from sqlalchemy import text

    name = username or f"test-{role}"
    row = conn.execute(text(
        "INSERT INTO users (username, display_name, role, password_hash) VALUES (:u, :d, :r, :h) "
        "ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role "
        "RETURNING id, username, display_name, role"), {"u": name, "d": name, "r": role, "h": _HASH}).one()
    return auth.User(*row)


def login(client: TestClient, conn, role: str, username: str | None = None) -> dict[str, str]:
    """Sign in through the API; return headers for cookie + CSRF requests."""
    user = make_user(conn, role, username)
    response = client.post("/api/auth/login", json={"username": user.username,
                                                     "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


def bearer(client: TestClient, conn, role: str, username: str | None = None) -> dict[str, str]:
    """An Authorization header for a fresh session of a new account (no password round)."""
    session = auth.open_session(conn, make_user(conn, role, username))
    return {"Authorization": f"Bearer {session.token}"}


def measure_feature(geometry: dict | None = None, **props: Any) -> dict[str, Any]:
    """A valid measure Feature for Halle with overridable properties."""
    properties = {"title": "Sensoren am Hauptbahnhof", "city_ags": "15002000",
                  "action_field": "Mobilität", "status": "geplant",
                  "summary": "Zählt Radverkehr", "start_date": "2025-01-01",
                  "end_date": "2026-12-31", "budget_planned": 120000.0}
    properties.update(props)
    return {"type": "Feature", "geometry": copy.deepcopy(geometry or HALLE_POLYGON),
            "properties": properties}


def api_json(base_url: str, method: str, path: str, body=None, token: str | None = None,  # noqa: ANN001
             etag: str | None = None) -> tuple[int, object, object]:
    """A JSON request to a live server; returns (status, headers, decoded body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(urllib.parse.urljoin(base_url, path), data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if etag:
        request.add_header("If-Match", etag)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, response.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, err.headers, json.loads(raw) if raw else None


def remove_committed(owner, user_ids: list[int]) -> None:  # noqa: ANN001
    """Remove what tests committed for real through accounts ``user_ids``: their measures, the
    measures' history (the append-only trigger is off for that, inside the caller's transaction
    only) and the ideas linked to them, their sessions and the accounts themselves."""
    ids = list(owner.execute(text("SELECT id FROM measures WHERE created_by = ANY(:u)"),
                             {"u": user_ids}).scalars())
    owner.execute(text("DELETE FROM ideas WHERE measure_id = ANY(:i)"), {"i": ids})
    owner.execute(text("ALTER TABLE measure_history DISABLE TRIGGER measure_history_no_change"))
    owner.execute(text("DELETE FROM measure_history WHERE measure_id = ANY(:i)"), {"i": ids})
    owner.execute(text("ALTER TABLE measure_history ENABLE TRIGGER measure_history_no_change"))
    owner.execute(text("DELETE FROM measures WHERE id = ANY(:i)"), {"i": ids})
    owner.execute(text("DELETE FROM sessions WHERE user_id = ANY(:u)"), {"u": user_ids})
    owner.execute(text("DELETE FROM users WHERE id = ANY(:u)"), {"u": user_ids})
