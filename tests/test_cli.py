"""The `quarters` command as a newcomer uses it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory
from shapely.geometry import mapping

from geofiles import BOW_TIE, write_geojson_raw
from quarters.migrate import alembic_config
from quarters.settings import get_settings

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()

@pytest.fixture
def cli_env(settings, engine, monkeypatch):  # engine: migrated, data loaded (Halle, Gera)
    monkeypatch.setenv("QUARTERS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("QUARTERS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("QUARTERS_LANG", "en")  # these tests read the CLI's English texts
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("db", "data", "import", "serve"):
        assert command in result.stdout


def test_broken_import_exits_2_with_a_clear_message(cli_env, tmp_path):
    path = write_geojson_raw(tmp_path / "schlecht.geojson", [
        {"type": "Feature", "properties": {"code": "X", "name": "X"}, "geometry": mapping(BOW_TIE)}])
    result = run("import", "boundaries", str(path), "--level", "testviertel", "--city", "16052000",
                 "--code-field", "code", "--name-field", "name")
    assert result.returncode == 2
    assert "schlecht.geojson, feature 0 (X): invalid geometry: Self-intersection" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_status_reports_checksums(cli_env):
    result = run("data", "status")
    assert result.returncode == 0, result.stderr
    assert "bkg-vg5000-2021" in result.stderr


def test_db_status_with_external_url(cli_env):
    result = run("db", "status")
    assert result.returncode == 0, result.stderr
    assert f"schema revision: {HEAD}" in result.stderr


def test_users_add_creates_an_account_that_can_sign_in(cli_env, monkeypatch, engine):
    from quarters import auth

    monkeypatch.setenv("QUARTERS_NEW_PASSWORD", "ein-langes-passwort")
    result = run("users", "add", "cli-planerin", "--role", "planner", "--display-name", "Planerin")
    assert result.returncode == 0, result.stderr
    with engine.begin() as conn:
        user = auth.authenticate(conn, "cli-planerin", "ein-langes-passwort")
        assert user is not None and user.role == "planner"
        assert auth.authenticate(conn, "cli-planerin", "falsch") is None
        stored = conn.exec_driver_sql(
            "SELECT password_hash FROM users WHERE username = 'cli-planerin'").scalar_one()
        assert stored.startswith("$argon2id$")
    bad = run("--lang", "de", "users", "add", "x", "--role", "king")
    assert bad.returncode == 2 and "Fehler:" in bad.stderr and "„king“" in bad.stderr


def test_export_measures_writes_a_geopackage(cli_env, tmp_path):
    import pyogrio

    out = tmp_path / "massnahmen.gpkg"
    result = run("export", "measures", str(out))
    assert result.returncode == 0, result.stderr
    assert len(pyogrio.read_dataframe(out)) >= 30


def test_commands_skip_alembic_when_the_schema_is_at_head(cli_env, engine):
    """Start-up: a database at the newest revision is recognised from the migration files and
    one query, without importing Alembic (which `db upgrade` still runs in full)."""
    from quarters.migrate import at_head, head_revision

    assert head_revision() == HEAD  # the files' head, read without Alembic, is Alembic's head
    assert at_head(engine)
    probe = ("import sys; from quarters.cli import _engine; from quarters.settings import "
             "get_settings; _engine(get_settings()).dispose(); "
             "print('alembic' in sys.modules, 'pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
    upgraded = run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "schema up to date" in upgraded.stderr
