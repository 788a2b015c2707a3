"""The CLI's --help speaks the one catalogue's language: German by default, English with
``--lang en``, ``QUARTERS_LANG=en`` or an English ``LANG`` (issue 11)."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from quarters import cli_help
from quarters.cli import app
from quarters.cli_help import HELP, help_key, walk
from quarters.messages import CATALOGUE_DIR
from quarters.settings import get_settings

CATALOGUES = {lang: json.loads((CATALOGUE_DIR / f"{lang}.json").read_text(encoding="utf-8"))
              for lang in ("de", "en")}


def flat(text: str) -> str:
    """Help output without the boxes and line breaks of rich's panels."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text)).strip()


def entry(key: str, lang: str) -> str:
    """A catalogue text as the help shows it (one paragraph's spaces)."""
    return flat(CATALOGUES[lang][key])


def first(key: str, lang: str) -> str:
    """The first paragraph of a catalogue text (what a group's list of commands shows)."""
    return flat(CATALOGUES[lang][key].split("\n\n")[0])


def commands() -> list[tuple[list[str], object]]:
    return walk(typer.main.get_command(app))


def shown(path: list[str], command: object) -> list[str]:
    """The keys whose texts the help of ``command`` shows in full."""
    keys = [help_key(path)] + [help_key(path, p.name) for p in command.params]
    return keys + [f"{HELP}word.{w}" for w in ("usage", "help")]


def listed(path: list[str], command: object) -> list[str]:
    """The keys of the subcommands a group lists (their first paragraph)."""
    return [help_key([*path, name]) for name in getattr(command, "commands", {})]


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("QUARTERS_LANG", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The real console script's entry point in a fresh process."""
    base = {k: v for k, v in os.environ.items() if k not in ("QUARTERS_LANG", "LANG", "LC_ALL")}
    return subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**base, "COLUMNS": "200", "LANG": "C.UTF-8", **env})


def test_every_command_option_and_argument_has_help_in_both_catalogues():
    found = commands()
    assert len(found) > 25  # the walk reaches every command
    used: set[str] = set()
    for path, command in found:
        for key in [help_key(path)] + [help_key(path, p.name) for p in command.params]:
            used.add(key)
            for lang in ("de", "en"):
                assert CATALOGUES[lang].get(key, "").strip(), (lang, key)
    source = inspect.getsource(cli_help)
    for key in CATALOGUES["de"]:
        if key.startswith(f"{HELP}word."):
            assert f'word("{key.removeprefix(HELP + "word.")}"' in source, key  # used
        elif key.startswith(HELP):
            assert key in used, f"{key}: no such command or parameter"


def test_the_cli_modules_hold_no_help_text_of_their_own():
    """The texts live in the catalogue only: no help= in the command modules."""
    from quarters import cli, cli_analysis

    for module in (cli, cli_analysis):
        assert not re.search(r"\bhelp=", inspect.getsource(module)), module.__name__


@pytest.mark.parametrize("lang", ["de", "en"])
def test_every_commands_help_is_the_catalogues_in_the_language(runner, monkeypatch, lang):
    """All 30-odd helps rendered through the real typer app: each shows its command's, its
    options' and its subcommands' texts and typer's words in ``lang``, none in the other."""
    other = "en" if lang == "de" else "de"
    monkeypatch.setenv("QUARTERS_LANG", lang)
    for path, command in commands():
        result = runner.invoke(app, [*path, "--help"], prog_name="quarters")
        assert result.exit_code == 0, (path, result.output)
        out = flat(result.output)
        keys = shown(path, command)
        for key in keys:
            assert entry(key, lang) in out, (path, key)
        for key in listed(path, command):
            assert first(key, lang) in out, (path, key)
        for key in keys + listed(path, command):
            mine, theirs = first(key, lang), first(key, other)
            if theirs not in mine:  # ("Port …" is a word of both)
                assert theirs not in out, (path, key, lang)
        if getattr(command, "commands", None):
            assert entry(f"{HELP}word.commands", lang) in out


def test_quarters_help_is_german_by_default():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    out = flat(result.stdout)
    assert out.startswith("Aufruf: quarters [OPTIONEN] BEFEHL [ARGUMENTE]...")
    for text in ("Quartiersplanung für Halle (Saale) und Gera", "Optionen", "Befehle",
                 "Diese Hilfe zeigen und beenden.", "Dateien in die Datenbank importieren",
                 "Sprache der Meldungen und dieser Hilfe"):
        assert text in out
    for english in ("Usage", "Options", "Commands", "Show this message and exit.",
                    "Import files into the database", "Export data"):
        assert english not in out


@pytest.mark.parametrize("how", [("--lang", "en"), ("--lang=en",), ("env", "QUARTERS_LANG"),
                                 ("env", "LANG")])
def test_quarters_help_in_english(how):
    if how[0] == "env":
        env = {how[1]: "en_GB.UTF-8" if how[1] == "LANG" else "en"}
        result = run("--help", **env)
    else:
        result = run(*how, "--help")
    assert result.returncode == 0, result.stderr
    out = flat(result.stdout)
    assert out.startswith("Usage: quarters [OPTIONS] COMMAND [ARGS]...")
    for text in ("neighbourhood planning for Halle (Saale) and Gera", "Show this message and exit.",
                 "Import files into the database", "Commands"):
        assert text in out
    for german in ("Aufruf", "Optionen", "Befehle", "Dateien in die Datenbank importieren"):
        assert german not in out


def test_a_commands_help_in_german_and_english():
    """A leaf command's help: option texts, [default: …] and [required] in the language;
    ``analyze transfer`` has its own --lang, read before the eager --help."""
    de = flat(run("import", "boundaries", "--help").stdout)
    assert "Grenzen aus GeoJSON, GeoPackage oder (gezipptem) Shapefile" in de
    assert "ungültige Polygone reparieren (wird berichtet) [Vorgabe: no-repair]" in de
    assert "gemeinde, kreis oder eine Bezirksebene wie stadtviertel [erforderlich]" in de
    assert "Argumente" in de and "die zu importierende Datei" in de
    for english in ("[default:", "[required]", "repair invalid polygons", "Arguments"):
        assert english not in de
    en = flat(run("analyze", "transfer", "--lang", "en", "--help").stdout)
    assert en.startswith("Usage: quarters analyze transfer [OPTIONS]")
    assert "Rank candidates by similarity to a reference" in en
    assert "number of map classes [default: 5]" in en
    assert "Zahl der Kartenklassen" not in en
    de = flat(run("--lang", "de", "analyze", "transfer", "--help", QUARTERS_LANG="en").stdout)
    assert "Zahl der Kartenklassen [Vorgabe: 5]" in de  # --lang wins over the setting


def test_a_usage_error_speaks_the_language_too():
    result = run("import", "boundaries")
    assert result.returncode == 2
    err = flat(result.stderr)
    assert "Aufruf: quarters import boundaries [OPTIONEN]" in err
    assert "Hilfe: 'quarters import boundaries --help'" in err and "Fehler" in err


def test_the_help_starts_without_gdal_pandas_or_the_web_app(tmp_path):
    """``quarters --help`` (and every command's start) tidies the import temp directory
    without loading GDAL, pandas or FastAPI: a newcomer's first command answers at once."""
    probe = ("import sys\nsys.argv = ['quarters', '--help']\nfrom quarters.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('LOADED', sorted(m for m in ('pyogrio', 'pandas', 'geopandas', 'fastapi')"
             " if m in sys.modules))")
    stale = tmp_path / "tmp" / "p999999999"  # a dead process' folder
    stale.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "QUARTERS_HOME": str(tmp_path),
                                            "QUARTERS_TMP_DIR": str(tmp_path / "tmp")})
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout, done.stdout[-300:]
    assert "analyze" in done.stdout  # the help itself was printed
    assert not stale.exists()  # and the dead process' folder was removed
