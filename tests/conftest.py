"""Test fixtures: a throwaway PostGIS cluster started by the tests, loaded once per session.

Each test that writes gets a connection inside a transaction that is rolled back afterwards.
Browser and client tests read through a live uvicorn server over the same committed data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from quarters.api import create_app
from quarters.api.deps import get_conn, get_connect, get_runner
from quarters.catalogue import load_catalogue
from quarters.db import make_engine
from quarters.embedded import APP_ROLE, OWNER_ROLE, Cluster
from quarters.imports.data_load import load_all
from quarters.migrate import upgrade
from quarters.runner import ThreadRunner
from quarters.settings import PROJECT_ROOT, Settings

DATA_DIR = Path(os.environ.get("QUARTERS_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL + PostGIS cluster of the test session's own, removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="quarters-test-"))
    os.chmod(home, 0o755)
    cluster = Cluster(home=home, port=free_port())
    cluster.start()
    # The owner may act as the runtime role, so the `app` fixture can run each request as the
    # app would (SET ROLE) inside the test's transaction.
    with psycopg.connect(cluster.conninfo(role="admin"), autocommit=True) as admin:
        admin.execute(f"GRANT {APP_ROLE} TO {OWNER_ROLE}")
    yield cluster
    cluster.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(cluster: Cluster) -> Settings:
    """Settings pointing at the test cluster (owner and runtime role) and the shared data."""
    return Settings(database_url=cluster.url("owner"), app_database_url=cluster.url("app"),
                    data_dir=DATA_DIR, home=cluster.home, pool_min=0)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """Engine over the migrated test database with all data loaded (committed once)."""
    engine = make_engine(settings)
    upgrade(engine)
    load_all(engine, settings, load_catalogue(settings.catalogue))
    yield engine
    engine.dispose()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection whose transaction is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture(scope="session")
def app_engine(settings: Settings, engine: Engine) -> Iterator[Engine]:
    """Engine of the runtime role (what the API connects as), over the loaded database."""
    app_engine = make_engine(settings, role="app")
    yield app_engine
    app_engine.dispose()


def app_in(settings: Settings, app_engine: Engine, conn: Connection):  # noqa: ANN201
    """The app, each request's unit of work in a savepoint of ``conn``'s transaction instead of
    a transaction of its own (released on success, rolled back on error, as ``get_conn`` and
    ``get_connect`` commit or roll back in production) and with the rights of the runtime role
    (SET LOCAL ROLE), as in production."""
    app = create_app(settings, engine=app_engine)

    @contextlib.contextmanager
    def as_app() -> Iterator[Connection]:
        savepoint = conn.begin_nested()
        conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
        try:
            yield conn
        except BaseException:
            if savepoint.is_active:
                savepoint.rollback()
            raise
        if savepoint.is_active:
            conn.execute(text("RESET ROLE"))
            savepoint.commit()

    def request_conn() -> Iterator[Connection]:
        with as_app() as c:
            yield c

    def request_runner() -> Iterator[ThreadRunner]:
        # the async read path runs its SQL on the test's connection, in a worker thread
        with as_app() as c:
            yield ThreadRunner(c)

    app.dependency_overrides[get_conn] = request_conn
    app.dependency_overrides[get_runner] = request_runner
    app.dependency_overrides[get_connect] = lambda: as_app
    return app


@pytest.fixture
def app(settings: Settings, app_engine: Engine, conn: Connection):
    """The app inside the test's rolled-back transaction (see :func:`app_in`)."""
    return app_in(settings, app_engine, conn)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    """API client whose requests run inside the test's rolled-back transaction (served as on
    127.0.0.1 over plain HTTP: development cookies without the Secure flag)."""
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 30) -> None:
    """Wait until the server process at ``url`` answers /api/health with 200; raise if it exits
    (with the tail of its stderr when that is a pipe) or does not come up in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            tail = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
            raise RuntimeError(f"test server exited: {tail}")
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.1)


@contextlib.contextmanager
def serve_app(settings: Settings, **extra_env: str) -> Iterator[str]:
    """The real app in its own uvicorn process on 127.0.0.1 over the session database.

    A separate process, because GDAL holds the GIL while it fetches and would block an
    in-process server thread. ``extra_env`` sets further QUARTERS_* settings.
    """
    port = free_port()
    env = {**os.environ, "QUARTERS_DATABASE_URL": settings.database_url,
           "QUARTERS_APP_DATABASE_URL": settings.app_database_url,
           "QUARTERS_DATA_DIR": str(settings.data_dir), **extra_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "quarters.api:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=PROJECT_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
    except RuntimeError:
        proc.kill()
        raise
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def live_server(settings: Settings, engine: Engine) -> Iterator[str]:
    """The real app served on 127.0.0.1 (read-only use: data is committed)."""
    with serve_app(settings) as url:
        yield url


def same_origin_only(base_url: str):  # noqa: ANN201
    """A Playwright route handler that lets requests to ``base_url`` through and aborts the
    rest (tiles, any CDN): the pages must work on their own."""
    origin = urllib.parse.urlsplit(base_url)

    def handle(route) -> None:  # noqa: ANN001
        url = urllib.parse.urlsplit(route.request.url)
        if (url.scheme, url.netloc) == (origin.scheme, origin.netloc):
            route.continue_()
        else:
            route.abort()

    return handle


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait for the application's own state; heavy pages (all municipalities)
    # may take longer than Playwright's 5 s default on a busy 2-core machine.
    expect.set_options(timeout=30_000)
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    """Directory for screenshots and other test artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


AXE_SCRIPT = PROJECT_ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
AXE_URL = "/__tests__/axe.min.js"


def inject_axe(page) -> None:  # noqa: ANN001
    """Load axe-core into a page for an accessibility check. The app's /vendor serves only the
    files the pages themselves load, so the test serves axe from a same-origin address of its
    own (the page's CSP allows same-origin scripts only)."""
    page.route(f"**{AXE_URL}", lambda route: route.fulfill(
        path=str(AXE_SCRIPT), content_type="application/javascript"))
    page.add_script_tag(url=AXE_URL)


AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_RUN = """
async ([within, tags]) => {
  const result = await axe.run(within || document, { runOnly: { type: "tag", values: tags } });
  return {
    passes: result.passes.length,
    incomplete: result.incomplete.length,
    violations: result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary),
    })),
  };
}
"""


def axe_check(page, within: str | None = None) -> dict:  # noqa: ANN001
    """axe-core's WCAG 2.1 A/AA check of the page (or of the element ``within`` selects):
    ``{passes, incomplete, violations}``, each violation with id, impact, help and five nodes."""
    inject_axe(page)
    return page.evaluate(AXE_RUN, [within, AXE_TAGS])
