"""Problems and warnings as codes: the same bad input asked in German and in English gives the
same code, pointer and params, with a detail (and title) in each language; the CLI prints the
same catalogue's text."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from factories import bearer, measure_feature
from quarters.messages import t

GERMAN = {"Accept-Language": "de-DE,de;q=0.9"}
ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}


def both(call, path: str, **kwargs):  # noqa: ANN001, ANN201
    """The answers to the same request in German (header), English (header) and English
    (``?lang=en``, which wins over a German header)."""
    headers = kwargs.pop("headers", {})
    de = call(path, headers={**headers, **GERMAN}, **kwargs)
    en = call(path, headers={**headers, **ENGLISH}, **kwargs)
    sep = "&" if "?" in path else "?"
    en_param = call(f"{path}{sep}lang=en", headers={**headers, **GERMAN}, **kwargs)
    return de, en, en_param


def same_problem(de, en, en_param, status: int) -> tuple[dict, dict]:  # noqa: ANN001
    for r in (de, en, en_param):
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    a, b, c = de.json(), en.json(), en_param.json()
    for key in ("code", "params", "pointer", "status"):
        assert a.get(key) == b.get(key) == c.get(key), key
    assert [(e["code"], e["params"], e["pointer"]) for e in a.get("errors", [])] == \
        [(e["code"], e["params"], e["pointer"]) for e in b.get("errors", [])]
    assert a["detail"] != b["detail"] and b["detail"] == c["detail"]
    assert a["title"] != b["title"]
    return a, b


def test_a_pydantic_error_has_a_code_and_a_detail_in_each_language(client):
    de, en, en_param = both(client.get, "/api/analysis/transfer?reference=gemeinde:15002000"
                                        "&top=abc")
    a, b = same_problem(de, en, en_param, 400)
    assert a["code"] == "validation.int_parsing" and a["pointer"] == "top"
    assert "Input should be" not in de.text  # pydantic's English is gone from German answers
    assert a["errors"][0]["problem"] == t("problem.validation.int_parsing", "de")
    assert b["errors"][0]["problem"] == t("problem.validation.int_parsing", "en")


def test_a_measure_outside_the_city_names_the_buffer_as_a_param(client, conn):
    before = conn.execute(text("SELECT count(*) FROM measures")).scalar_one()
    body = measure_feature({"type": "Point", "coordinates": [12.08, 50.88]})  # Gera, not Halle
    planner = bearer(client, conn, "planner")
    de, en, en_param = both(client.post, "/api/measures", json=body, headers=planner)
    a, b = same_problem(de, en, en_param, 422)
    assert a["code"] == "measure.outside_area" and a["pointer"] == "/geometry"
    from quarters.measures import CITY_BUFFER_M

    assert a["params"]["buffer_km"] == CITY_BUFFER_M / 1000
    assert "3 km Umkreis" in a["detail"] and "3 km around it" in b["detail"]
    assert conn.execute(text("SELECT count(*) FROM measures")).scalar_one() == before


def test_a_cql2_error_has_a_code_and_a_detail_in_each_language(client):
    de, en, en_param = both(client.get, "/api/collections/municipalities/items?filter=nme%3D1")
    a, b = same_problem(de, en, en_param, 400)
    assert a["code"] == "cql2.unknown_property" and a["pointer"] == "filter"
    assert a["params"]["name"] == "nme"
    assert a["detail"].startswith("Die Eigenschaft „nme“ gibt es nicht")
    assert b["detail"].startswith("Unknown property 'nme'")


def test_an_upload_error_has_a_code_and_a_detail_in_each_language(client, conn):
    headers = bearer(client, conn, "planner")
    files = {"file": ("massnahmen.txt", b"title\nx\n", "text/plain")}
    de, en, en_param = both(client.post, "/api/measures/import", headers=headers, files=files)
    a, b = same_problem(de, en, en_param, 422)
    assert a["code"] == "file.unsupported_type"
    assert a["params"]["name"] == "massnahmen.txt" and a["params"]["suffix"] == ".txt"
    assert "wird nicht unterstützt" in a["detail"] and "unsupported file type" in b["detail"]


def test_import_row_problems_are_coded_in_the_dry_run_report(client, conn):
    headers = bearer(client, conn, "planner")
    csv = (b"title,city_ags,action_field,status,lon,lat\n"
           b"Ladepunkt,15002000,Raumfahrt,geplant,11.97,51.48\n")
    files = {"file": ("m.csv", csv, "text/csv")}
    de = client.post("/api/measures/import?dry_run=true", headers={**headers, **GERMAN},
                     files=files).json()
    en = client.post("/api/measures/import?dry_run=true", headers={**headers, **ENGLISH},
                     files=files).json()
    assert [(p["row"], p["code"], p["pointer"]) for p in de["problems"]] == \
        [(p["row"], p["code"], p["pointer"]) for p in en["problems"]] == \
        [(1, "measure.action_field", "/action_field")]
    assert "Handlungsfeld" in de["problems"][0]["problem"]
    assert "Action field" in en["problems"][0]["problem"]


def test_an_analysis_warning_has_a_code_and_a_detail_in_each_language(client):
    query = "/api/analysis/transfer?reference=gera_bezirk:10&level=gera_bezirk" \
            "&sensitivity=false&types=false"
    de = client.get(query, headers=GERMAN).json()
    en = client.get(query + "&lang=en", headers=GERMAN).json()
    assert [(w["code"], w["params"]) for w in de["warnings"]] == \
        [(w["code"], w["params"]) for w in en["warnings"]]
    a = next(w for w in de["warnings"] if w["code"] == "level_without_outlines")
    b = next(w for w in en["warnings"] if w["code"] == "level_without_outlines")
    assert a["params"] == b["params"] == {"level": "gera_bezirk"}
    assert a["detail"] == t("warning.level_without_outlines", "de", level="gera_bezirk")
    assert "lässt sich nicht kartieren" in a["detail"]
    assert b["detail"] == t("warning.level_without_outlines", "en", level="gera_bezirk")
    assert "cannot be mapped" in b["detail"]


def test_a_request_line_problem_is_answered_in_the_request_language(client):
    de = client.get("/api/collections?x=%ZZ", headers=GERMAN)
    en = client.get("/api/collections?x=%ZZ&lang=en")
    assert de.status_code == en.status_code == 400
    assert de.json()["code"] == en.json()["code"] == "request.bad_percent"
    assert de.json()["detail"] != en.json()["detail"]


@pytest.fixture
def cli_env(settings, monkeypatch):
    from quarters.settings import get_settings

    monkeypatch.setenv("QUARTERS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("QUARTERS_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    environ = {k: v for k, v in os.environ.items() if k not in ("LANG", "QUARTERS_LANG")}
    return subprocess.run([sys.executable, "-c", "from quarters.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120, env={**environ, **env})


def test_the_cli_prints_the_catalogue_text_in_german_or_english(cli_env, tmp_path):
    path = tmp_path / "liste.txt"
    path.write_text("title\nx\n")
    calls = [(("import", "measures", str(path)), {}),
             (("--lang", "en", "import", "measures", str(path)), {}),
             (("import", "measures", str(path)), {"QUARTERS_LANG": "en"}),
             (("import", "measures", str(path)), {"LANG": "en_GB.UTF-8"}),
             (("--lang", "fr", "import", "measures", str(path)), {})]
    with ThreadPoolExecutor(2) as pool:  # five CLI starts, two at a time
        german, english, by_env, by_lang, bad = pool.map(lambda c: run(*c[0], **c[1]), calls)
    for result in (german, english, by_env, by_lang):
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
    assert "Fehler:" in german.stderr and "wird nicht unterstützt" in german.stderr
    for result in (english, by_env, by_lang):
        assert "error:" in result.stderr and "unsupported file type" in result.stderr
    assert bad.returncode != 0 and "de or en" in bad.stderr
