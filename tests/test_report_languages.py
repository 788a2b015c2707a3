"""The report and the CLI speak German and English from the one catalogue (issue 11, item 2).

The report's fixed texts are the catalogue's ``report.*`` entries in the asked language, and no
fixed word of the other language is left on the page; the API answers in the request's
language (``?lang``, Accept-Language), the CLI in ``--lang`` / ``QUARTERS_LANG`` / ``LANG``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from quarters.messages import t
from quarters.report import Words, render_report, result_frame
from quarters.settings import get_settings
from quarters.transfer import TransferParams, run_transfer

HEADINGS = ("report.h_method", "report.h_sources", "report.h_contributions",
            "report.col_percentile", "report.col_reason", "report.m_standardisation",
            "report.m_sensitivity", "report.m_typology", "report.m_dates")
# fixed words only one language has (none of them is a place or indicator name)
ONLY = {
    "de": ("Rangliste", "Methode", "Quellen und Lizenzen", "Perzentil", "Begründung",
           "Kandidaten:", "Referenz:", "Erstellt ", "Standardisierung", "Stichtage",
           "ausgeschlossen", "Lizenz:", "Namensnennung", "Ähnlichkeit (Score", "kein Wert",
           "gleicher Typ", "Einw."),
    "en": ("Ranking (top", "Method<", "Sources and licences", "Percentile", "Explanation",
           "Candidates:", "Reference:", "Made ", "Standardisation", "Reference dates",
           "excluded", "Licence:", "Attribution:", "Similarity (score", "no value",
           "same type", "inh."),
}


def visible(page: str) -> str:
    """The report without scripts and styles (Leaflet's code and the map script's identifiers
    are not the report's text; the map's words are checked on their own)."""
    return re.sub(r"<script[\s\S]*?</script>|<style[\s\S]*?</style>", "", page)


@pytest.fixture(scope="module")
def quarter_result(engine):
    with engine.connect() as conn:
        res = run_transfer(conn, TransferParams(
            reference="quarter:bildungsquartier-neustadt", level="stadtviertel", top=8,
            indicators=["population", "density"], runs=20))
        yield conn, res


@pytest.mark.parametrize("lang", ["de", "en"])
def test_report_speaks_one_language(quarter_result, settings, lang):
    conn, res = quarter_result
    other = "en" if lang == "de" else "de"
    page = render_report(conn, res, settings, lang=lang)
    text = visible(page)
    assert f'<html lang="{lang}"' in page
    for key in HEADINGS:
        assert t(key, lang) in text, key
    assert f"<h2>{t('report.h_ranking', lang, top='8')}</h2>" in text
    assert t("report.title", lang, name=res.reference.name) in text
    for word in ONLY[other]:
        assert word not in text, word
    # the indicator names and the explanations of the rows come from the data's own language
    assert ("Einwohnerdichte" if lang == "de" else "Population density") in text
    assert ("Ähnlich: " if lang == "de" else "Similar: ") in text
    # numbers: the first row's score with the language's decimal mark
    score = float(res.top["score"].iloc[0])
    shown = f"{score:.1f}" if lang == "en" else f"{score:.1f}".replace(".", ",")
    assert f'<td class="n">{shown}</td>' in text
    # the map's texts go to its script as words of the language
    assert t("report.map_missing", lang) in page and t("report.map_missing", other) not in page


def test_numbers_and_dates_per_language():
    from datetime import datetime

    de, en = Words("de"), Words("en")
    assert de.num(1234.5) == "1.234,5" and en.num(1234.5) == "1,234.5"
    assert de.num(-0.0001, 2) == "0,00" and en.num(None) == "–" and de.num(float("nan")) == "–"
    moment = datetime(2026, 12, 1, 9, 5)
    assert de.when(moment) == "01.12.2026 09:05" and en.when(moment) == "1 Dec 2026, 09:05"
    assert Words("fr").lang == "de"


def test_csv_texts_follow_the_language(quarter_result):
    _conn, res = quarter_result
    for lang in ("de", "en"):
        frame = result_frame(res, lang)
        assert list(frame.columns) == list(result_frame(res, "de").columns)  # identifiers
        parts = frame.loc[frame["code"].isin([p["code"] for p in res.part_of_reference]),
                          "missing"]
        if len(parts):
            assert set(parts) == {t("report.part_of_reference", lang)}


def test_api_report_in_the_request_language(client):
    body = {"reference": "stadtviertel:71", "level": "stadtviertel", "top": 5,
            "indicators": ["density", "population"], "sensitivity": False, "types": False}
    pages = {
        "default": client.post("/api/analysis/report", json=body),
        "query": client.post("/api/analysis/report?lang=en", json=body),
        "header": client.post("/api/analysis/report", json=body,
                              headers={"Accept-Language": "en-GB,en;q=0.8"}),
        "german": client.post("/api/analysis/report", json=body,
                              headers={"Accept-Language": "de-DE"}),
    }
    for name, response in pages.items():
        assert response.status_code == 200, (name, response.text[:300])
    for name, lang in (("default", "de"), ("query", "en"), ("header", "en"), ("german", "de")):
        text = visible(pages[name].text)
        assert f"<h2>{t('report.h_method', lang)}</h2>" in text, name
        other = "en" if lang == "de" else "de"
        assert f"<h2>{t('report.h_method', other)}</h2>" not in text, name


# ----------------------------------------------------------------------------------------------
# the CLI
# ----------------------------------------------------------------------------------------------
def cli(settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("LANG", "QUARTERS_LANG")}
    environ.update({"QUARTERS_DATABASE_URL": settings.database_url,
                    "QUARTERS_DATA_DIR": str(settings.data_dir), "COLUMNS": "200", **env})
    return subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300, env=environ)


def test_cli_messages_in_german_and_english(settings, engine):  # engine: the loaded database
    from quarters.migrate import head_revision

    head = head_revision()
    calls = {  # name: (language expected, arguments, environment); run two at a time
        "default": ("de", ("db", "status"), {}),
        "option": ("en", ("--lang", "en", "db", "status"), {}),
        "setting": ("en", ("db", "status"), {"QUARTERS_LANG": "en"}),
        "LANG": ("en", ("db", "status"), {"LANG": "en_GB.UTF-8"}),
        "option over setting": ("de", ("--lang", "de", "db", "status"), {"QUARTERS_LANG": "en"}),
        "bad": (None, ("db", "status"), {"QUARTERS_LANG": "fr", "LANG": "en_US.UTF-8"}),
        "status de": ("de", ("--lang", "de", "data", "status"), {}),
        "status en": ("en", ("--lang", "en", "data", "status"), {}),
        "nobody": ("de", ("users", "deactivate", "gibt-es-nicht"), {}),
    }
    with ThreadPoolExecutor(2) as pool:
        done_by = dict(zip(calls, pool.map(lambda c: cli(settings, *c[1], **c[2]),
                                           calls.values()), strict=True))
    runs = {name: (calls[name][0], done_by[name]) for name in list(calls)[:5]}
    for name, (lang, done) in runs.items():
        assert done.returncode == 0, (name, done.stderr)
        assert t("cli.schema_revision", lang, revision=head) in done.stderr, (name, done.stderr)
        other = "en" if lang == "de" else "de"
        assert t("cli.schema_revision", other, revision=head) not in done.stderr, name
    bad = done_by["bad"]
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert f"{t('problem.settings.invalid', 'en')} QUARTERS_LANG:" in bad.stderr
    for lang in ("de", "en"):
        status = done_by[f"status {lang}"]
        assert status.returncode == 0, status.stderr
        assert t("cli.status_checksums", lang) in status.stderr, status.stderr
        assert t("cli.data_dir", lang, path=str(settings.data_dir)) in status.stderr
    nobody = done_by["nobody"]  # German by default
    assert nobody.returncode == 2
    assert t("problem.auth.no_account", "de", user="gibt-es-nicht") in nobody.stderr


def test_cli_report_command_in_english(settings, engine, tmp_path):
    out = tmp_path / "report.html"
    done = cli(settings, "analyze", "transfer", "--reference", "stadtviertel:71", "--level",
               "stadtviertel", "--indicator", "density", "--indicator", "population", "--top",
               "5", "--no-sensitivity", "--no-types", "--out", str(out), "--lang", "en")
    assert done.returncode == 0, done.stderr[-2000:]
    assert t("cli.indicators", "en", keys="density, population") in done.stderr
    assert "most similar" in done.stderr and "ähnlichste" not in done.stderr
    assert "Rank" in done.stderr and "Rang" not in done.stderr
    text = visible(out.read_text(encoding="utf-8"))
    assert "<h2>Method</h2>" in text and "Methode" not in text
    table = pd.read_csv(out.with_suffix(".csv"), dtype={"code": str})
    assert "rank" in table.columns
    german = cli(settings, "analyze", "transfer", "--reference", "stadtviertel:71", "--level",
                 "stadtviertel", "--indicator", "density", "--top", "3", "--no-sensitivity",
                 "--no-types", "--out", str(tmp_path / "bericht.html"))
    assert german.returncode == 0, german.stderr[-2000:]
    assert "Indikatoren: density" in german.stderr and "ähnlichste" in german.stderr
    assert "<h2>Methode</h2>" in (tmp_path / "bericht.html").read_text(encoding="utf-8")
    get_settings.cache_clear()
