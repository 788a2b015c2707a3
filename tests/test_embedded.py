"""The embedded cluster as `quarters db start|status|stop` runs it (own home, own port)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from conftest import free_port
from quarters.migrate import alembic_config

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()

@pytest.fixture
def embedded_env(monkeypatch):
    home = Path(tempfile.mkdtemp(prefix="quarters-embedded-"))
    os.chmod(home, 0o755)
    monkeypatch.delenv("QUARTERS_DATABASE_URL", raising=False)
    monkeypatch.setenv("QUARTERS_HOME", str(home / "q"))
    monkeypatch.setenv("QUARTERS_DB_PORT", str(free_port()))
    yield home / "q"
    subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()", "db", "stop"],
                   capture_output=True, timeout=60)
    shutil.rmtree(home, ignore_errors=True)


def quarters(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "QUARTERS_DATABASE_URL"}
    env["QUARTERS_LANG"] = "en"  # these tests read the CLI's English texts
    return subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=180, env=env)


def test_start_status_stop_cycle(embedded_env):
    started = quarters("db", "start")
    assert started.returncode == 0, started.stderr
    assert (embedded_env / "pgdata" / "PG_VERSION").exists()
    assert oct((embedded_env / "db.password").stat().st_mode & 0o777) == "0o600"
    status = quarters("db", "status")
    assert status.returncode == 0 and "running" in status.stderr
    assert f"schema revision: {HEAD}" in status.stderr
    stopped = quarters("db", "stop")
    assert stopped.returncode == 0
    after = quarters("db", "status")
    assert after.returncode == 3 and "stopped" in after.stderr
    again = quarters("db", "start")  # restart keeps the cluster
    assert again.returncode == 0, again.stderr
