"""Notes other modules hand to the CLI are codes written out in the CLI's language (issue 11):
the indicator import's summary, the notes of a refresh of the computed indicators."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from quarters.settings import GERA_AGS, HALLE_AGS

PROBE = "cli_language_probe"


def run(settings, *args: str, lang: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("QUARTERS_LANG", "LANG", "LC_ALL")}
    env.update(QUARTERS_DATABASE_URL=settings.database_url,
               QUARTERS_DATA_DIR=str(settings.data_dir), COLUMNS="200", LANG="C.UTF-8")
    if lang:
        env["QUARTERS_LANG"] = lang
    return subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def probe_csv(engine, tmp_path):
    """A CSV of a new indicator with one empty cell; its values and source are removed after."""
    path = tmp_path / "sprachprobe.csv"
    path.write_text(f"ags;{PROBE} [%]\n{HALLE_AGS};7,5\n{GERA_AGS};\n", encoding="utf-8")
    yield path
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM indicator_values WHERE indicator = :k"), {"k": PROBE})
        conn.execute(text("DELETE FROM indicators WHERE key = :k"), {"k": PROBE})
        conn.execute(text("DELETE FROM sources WHERE key LIKE 'import:indicators:%sprachprobe%'"))


def test_indicator_import_summary_in_german_and_english(settings, probe_csv):
    de = run(settings, "import", "indicators", str(probe_csv), "--level", "gemeinde",
             "--ref-date", "2024", "--decimal", ",", lang="de")
    assert de.returncode == 0, de.stderr
    assert "1 Wert als ausdrücklich fehlend gespeichert" in de.stderr
    assert "explicitly missing" not in de.stderr and "value(s)" not in de.stderr

    en = run(settings, "--lang", "en", "import", "indicators", str(probe_csv), "--level",
             "gemeinde", "--ref-date", "2024", "--decimal", ",", lang="de")
    assert en.returncode == 0, en.stderr
    assert "1 value stored as explicitly missing" in en.stderr
    assert "ausdrücklich" not in en.stderr


def test_refresh_notes_in_german(settings, engine):
    """`analyze refresh` prints the notes of the computed indicators and the profiles."""
    with engine.connect() as conn:
        quarters = conn.execute(text("SELECT count(*) FROM quarters")).scalar_one()
    result = run(settings, "analyze", "refresh", lang="de")
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stderr.split())
    assert "Maßnahmen:" in out and "veröffentlichte Maßnahme" in out
    assert f"Quartiersprofile für {quarters} Pilotquartiere gespeichert" in out
    for english in ("published measure", "quarter profiles stored", "explicitly missing"):
        assert english not in out


def test_data_status_details_in_german_and_english(settings):
    """The status table's details (a sentence per dataset) come from the catalogue too."""
    de = " ".join(run(settings, "data", "status", lang="de").stderr.split())
    assert "alle 18 Dateien in" in de and "Prüfsummen stimmen" in de
    assert "für diese Quelle wird lokal nichts gespeichert" in de
    assert "checksums match" not in de and "file(s)" not in de
    en = " ".join(run(settings, "--lang", "en", "data", "status").stderr.split())
    assert "all 18 files present in" in en and "nothing is stored locally" in en


def test_data_fetch_notes_in_german(settings):
    """Datasets fetch skips say why in the CLI's language (nothing is downloaded here)."""
    result = run(settings, "data", "fetch", "--only", "quarters-pilot-quarters", lang="de")
    assert result.returncode == 0, result.stderr
    assert "quarters-pilot-quarters: übersprungen" in result.stderr
    assert "Teil des Repositoriums" in result.stderr
    assert "part of the repository" not in result.stderr
