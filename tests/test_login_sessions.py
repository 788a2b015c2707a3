"""Sign-in is throttled and sessions end when they should (issue 8, item 4).

Real servers where it matters: the throttle, the concurrent logins and the full pool run
against uvicorn processes over the session database (committed accounts of their own).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import text

from conftest import serve_app
from factories import PASSWORD, bearer, make_user
from quarters import auth


def committed_account(engine, role: str = "planner") -> str:
    username = f"login-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        auth.add_user(conn, username, PASSWORD, role)
    return username


def forget(engine, username: str, client: str = "127.0.0.1") -> None:
    """Remove the counters a test left (the session database is shared)."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM login_throttle WHERE key = ANY(:k)"),
                     {"k": list(auth.throttle_keys(username, client))})


def cookie_attributes(response) -> set[str]:  # noqa: ANN001
    header = response.headers["set-cookie"]
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


# -- throttle -------------------------------------------------------------------------------
def test_sixty_wrong_passwords_are_throttled_and_even_the_right_one_waits(settings, engine):
    username = committed_account(engine)
    env = {"QUARTERS_LOGIN_MAX_FAILURES": "5", "QUARTERS_LOGIN_LOCK_S": "2",
           "QUARTERS_LOGIN_WINDOW_S": "60"}
    try:
        with serve_app(settings, **env) as url, httpx.Client(base_url=url, timeout=30) as http:
            answers = [http.post("/api/auth/login",
                                 json={"username": username, "password": f"falsch-{i:04d}"})
                       for i in range(60)]
            statuses = [a.status_code for a in answers]
            assert statuses[:5] == [401] * 5, statuses
            assert statuses[5:] == [429] * 55, statuses
            waits = [int(a.headers["retry-after"]) for a in answers[5:]]
            assert all(1 <= w <= 2 for w in waits), waits
            assert answers[5].headers["content-type"].startswith("application/problem+json")

            right = http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
            assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1

            time.sleep(int(right.headers["retry-after"]) + 0.2)
            wrong_again = http.post("/api/auth/login",
                                    json={"username": username, "password": "noch-falsch"})
            assert wrong_again.status_code == 401
            doubled = http.post("/api/auth/login", json={"username": username,
                                                         "password": PASSWORD})
            assert doubled.status_code == 429
            assert 3 <= int(doubled.headers["retry-after"]) <= 4  # the pause grew (2 s → 4 s)

            time.sleep(int(doubled.headers["retry-after"]) + 0.2)
            ok = http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
            assert ok.status_code == 200, ok.text
            # Plain HTTP on 127.0.0.1: a development cookie, not Secure, but HttpOnly and SameSite.
            attrs = cookie_attributes(ok)
            assert {"httponly", "samesite"} <= attrs and "secure" not in attrs
            assert "token" not in ok.json()
        with engine.connect() as conn:
            left = conn.execute(text("SELECT count(*) FROM login_throttle WHERE key = :k"),
                                {"k": auth.throttle_keys(username, "")[0]}).scalar()
        assert left == 0  # a successful sign-in clears the account's counter
    finally:
        forget(engine, username)


def test_one_client_trying_many_accounts_is_throttled(client, conn):
    client.app.state.settings = client.app.state.settings.model_copy(
        update={"login_client_max_failures": 4, "login_lock_s": 60})
    statuses = [client.post("/api/auth/login", json={"username": f"niemand-{i}",
                                                     "password": "falsch-falsch"}).status_code
                for i in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    make_user(conn, "planner", "spray-victim")
    blocked = client.post("/api/auth/login", json={"username": "spray-victim", "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 30
    counters = dict(conn.execute(text("SELECT key, failures FROM login_throttle")).all())
    assert counters[auth.throttle_keys("x", "testclient")[1]] == 4
    assert all(k.startswith(("account:", "client:")) for k in counters)
    assert not any("testclient" in k for k in counters)  # the address is stored hashed


def test_eighty_logins_at_forty_concurrent_give_no_server_error(settings, engine):
    username = committed_account(engine)
    try:
        with serve_app(settings) as url, httpx.Client(base_url=url, timeout=60,
                                                      limits=httpx.Limits(max_connections=40)) as http:
            def login(_):  # noqa: ANN001, ANN202
                return http.post("/api/auth/login", json={"username": username,
                                                          "password": PASSWORD}).status_code

            with ThreadPoolExecutor(40) as pool:
                statuses = list(pool.map(login, range(80)))
        assert statuses.count(200) == 80, {s: statuses.count(s) for s in set(statuses)}
        with engine.connect() as conn:
            sessions = conn.execute(text(
                "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id "
                "WHERE u.username = :u"), {"u": username}).scalar()
        assert sessions == 80
    finally:
        forget(engine, username)


def test_a_full_pool_answers_503_with_retry_after(settings, engine):
    """One pooled connection, held by a request that waits for a lock: the next requests,
    a sign-in included, get 503 with Retry-After, not 500; afterwards all is well. (The OGC
    items path has its own async pool of the same size, held the same way.)"""
    username = committed_account(engine)
    with serve_app(settings, QUARTERS_POOL_MAX="1", QUARTERS_POOL_TIMEOUT_S="1") as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        with engine.connect() as locker:
            tx = locker.begin()
            locker.execute(text("LOCK TABLE editions IN ACCESS EXCLUSIVE MODE"))
            locker.execute(text("LOCK TABLE counties IN ACCESS EXCLUSIVE MODE"))
            held: list[int] = []
            holders = [threading.Thread(
                target=lambda p=path: held.append(httpx.get(f"{url}{p}", timeout=30).status_code))
                for path in ("/api/editions", "/api/collections/counties/items?limit=1")]
            for holder in holders:
                holder.start()
            time.sleep(1.0)  # the holders now wait for the locks on the only connections
            busy = [http.get("/api/editions"),
                    http.get("/api/collections/municipalities/items?limit=1"),
                    http.post("/api/auth/login", json={"username": username, "password": PASSWORD})]
            tx.rollback()
        for holder in holders:
            holder.join(30)
        for answer in busy:
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["retry-after"]) > 0
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.headers["x-content-type-options"] == "nosniff"
        assert held == [200, 200]
        assert http.post("/api/auth/login", json={"username": username,
                                                  "password": PASSWORD}).status_code == 200


# -- sessions -------------------------------------------------------------------------------
def test_bearer_token_only_when_asked(client, conn):
    make_user(conn, "planner", "token-user")
    plain = client.post("/api/auth/login", json={"username": "token-user", "password": PASSWORD})
    assert plain.status_code == 200 and "token" not in plain.json()
    asked = client.post("/api/auth/login", json={"username": "token-user", "password": PASSWORD,
                                                 "token": True})
    token = asked.json()["token"]
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["user"]["username"] == "token-user"
    bad = client.post("/api/auth/login", json={"username": "token-user", "password": PASSWORD,
                                               "token": "ja"})
    assert bad.status_code == 400


def test_password_reset_ends_the_other_sessions(client, conn):
    user = make_user(conn, "planner", "reset-user")
    old = bearer(client, conn, "planner", "reset-user")
    assert client.get("/api/auth/me", headers=old).json()["user"]["username"] == "reset-user"
    auth.add_user(conn, "reset-user", "ganz-neu-geheim-1", "planner")  # what `users add` does
    assert client.get("/api/auth/me", headers=old).status_code == 401
    assert conn.execute(text("SELECT count(*) FROM sessions WHERE user_id = :u"),
                        {"u": user.id}).scalar() == 0


def test_changing_my_password_ends_my_other_sessions(client, conn):
    make_user(conn, "planner", "change-user")
    other = bearer(client, conn, "planner", "change-user")
    signed_in = client.post("/api/auth/login", json={"username": "change-user",
                                                     "password": PASSWORD})
    csrf = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
    wrong = client.post("/api/auth/password", headers=csrf,
                        json={"current_password": "falsch-falsch", "new_password": "x" * 12})
    assert wrong.status_code == 401
    assert client.post("/api/auth/password", json={"current_password": PASSWORD,
                                                   "new_password": "x" * 12}).status_code == 403
    changed = client.post("/api/auth/password", headers=csrf,
                          json={"current_password": PASSWORD, "new_password": "neu-und-lang-42"})
    assert changed.status_code == 200, changed.text
    assert client.get("/api/auth/me", headers=other).status_code == 401  # the other session
    assert client.get("/api/auth/me").json()["user"]["username"] == "change-user"  # this one
    assert client.post("/api/auth/login", json={"username": "change-user",
                                                "password": PASSWORD}).status_code == 401
    assert client.post("/api/auth/login", json={"username": "change-user",
                                                "password": "neu-und-lang-42"}).status_code == 200


def test_idle_sessions_end_and_last_seen_is_written_at_most_once_a_minute(client, conn):
    headers = bearer(client, conn, "planner", "idle-user")
    token = headers["Authorization"].split()[1]
    digest = auth._digest(token)

    def set_seen(ago: str) -> None:
        conn.execute(text(f"UPDATE sessions SET last_seen_at = now() - interval '{ago}' "
                          "WHERE token_hash = :h"), {"h": digest})

    def seen_ago() -> float:
        return conn.execute(text("SELECT extract(epoch FROM now() - last_seen_at) FROM sessions "
                                 "WHERE token_hash = :h"), {"h": digest}).scalar()

    set_seen("30 seconds")
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    assert seen_ago() == 30  # seen recently: no write
    set_seen("2 minutes")
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    assert seen_ago() == 0  # marked as seen now
    set_seen("31 minutes")  # idle longer than QUARTERS_SESSION_IDLE_S (30 min)
    assert client.get("/api/auth/me", headers=headers).status_code == 401
    cookie_session = auth.open_session(conn, make_user(conn, "planner", "idle-cookie"))
    conn.execute(text("UPDATE sessions SET last_seen_at = now() - interval '1 hour' "
                      "WHERE token_hash = :h"), {"h": auth._digest(cookie_session.token)})
    client.cookies.set("quarters_session", cookie_session.token)
    assert client.get("/api/auth/me").json() == {"user": None}


def test_secure_cookie_unless_plain_http_on_loopback(app, conn):
    make_user(conn, "planner", "cookie-user")
    body = {"username": "cookie-user", "password": PASSWORD}

    def attrs(base_url: str) -> set[str]:
        with TestClient(app, base_url=base_url) as c:
            response = c.post("/api/auth/login", json=body)
            assert response.status_code == 200, response.text
            return cookie_attributes(response)

    assert "secure" not in attrs("http://127.0.0.1")
    assert "secure" not in attrs("http://[::1]:8000")
    assert "secure" in attrs("http://testserver")  # plain HTTP, not loopback: still Secure
    assert "secure" in attrs("http://10.1.2.3:8000")
    assert "secure" in attrs("https://127.0.0.1")
    assert {"httponly", "samesite"} <= attrs("https://quarters.example")
    app.state.settings = app.state.settings.model_copy(update={"secure_cookies": True})
    assert "secure" in attrs("http://127.0.0.1")


def test_deactivate_locks_the_account_and_ends_its_sessions(settings, engine):
    username = committed_account(engine)
    with engine.begin() as conn:
        user = auth.credentials(conn, username).user
        token = auth.open_session(conn, user).token
    env = {**os.environ, "QUARTERS_DATABASE_URL": settings.database_url,
           "QUARTERS_LANG": "en"}  # the CLI's English texts

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()",
                               *args], capture_output=True, text=True, timeout=120,
                              env={**env, **extra})

    result = cli("users", "deactivate", username)
    assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        assert auth.session_for(conn, token) is None
        assert auth.authenticate(conn, username, PASSWORD) is None
        assert conn.execute(text("SELECT active FROM users WHERE username = :u"),
                            {"u": username}).scalar() is False
    missing = cli("users", "deactivate", "gibt-es-nicht")
    assert missing.returncode == 2 and "no account" in missing.stderr
    reopened = cli("users", "add", username, "--role", "planner",
                   QUARTERS_NEW_PASSWORD="wieder-offen-123")
    assert reopened.returncode == 0, reopened.stderr
    with engine.connect() as conn:
        assert auth.authenticate(conn, username, "wieder-offen-123") is not None


def test_login_refuses_nul_and_lone_surrogates_and_documents_its_body(client):
    for raw in (b'{"username": "a\\u0000b", "password": "x"}',
                b'{"username": "anna", "password": "\\ud800"}'):
        answer = client.post("/api/auth/login", content=raw,
                             headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
    schema = client.get("/api/openapi.json").json()["paths"]["/api/auth/login"]["post"]
    body = schema["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"username", "password", "token"}
    assert "429" in schema["responses"]
