"""The provenance notes of indicator values (derivation, missing_reason) are codes with params,
written out in the reader's language (issue 11: "tobler area_interpolate (extensive, …)" on
German pages, reports and CLI output).

They are stored as jsonb notes (migration 0015) and rendered by quarters.indicators.provenance:
in API answers (``code``, ``params`` and ``detail`` in the request's language), the report, the
CLI's profile command and the CSV of a ranking. Free text (a reason from a user's CSV file, the
text of rows written before 0015) is shown as it is.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

import quarters
from quarters.indicators.levels import get_level
from quarters.indicators.provenance import as_json, decode, encode, render
from quarters.indicators.reading import values_table
from quarters.messages import Note, t
from quarters.report import render_report, result_frame
from quarters.transfer import TransferParams, run_transfer
from test_report_languages import cli, visible

SLUG = "bildungsquartier-neustadt"
# words of the old English derivations and reasons that must not be on a German page
ENGLISH = ("tobler", "recomputed", "direct:", "allocate_total", "district(s)", "of this profile",
           "by definition", "missing:", "facts table", "not given", "no value loaded",
           "extensive", "area_interpolate")
MIGRATION = Path(quarters.__file__).parent / "migrations" / "versions" / "0015_provenance_notes.py"


def english_in(text_: str) -> list[str]:
    return [w for w in ENGLISH if w in text_]


# ----------------------------------------------------------------------------------------------
# the one module: encode, decode, render
# ----------------------------------------------------------------------------------------------
def test_a_note_round_trips_and_free_text_stays_as_written():
    note = Note("missing.district_values", level="stadtviertel", count=2, districts=[
        Note("missing.district_value", code="72", reason="Sperrvermerk der Statistikstelle"),
        Note("missing.district_value", code="73", reason=Note("missing.no_value_loaded"))])
    back = decode(json.loads(encode(note)))
    assert back == note and isinstance(back, Note)
    assert isinstance(back["params"]["districts"][1]["params"]["reason"], Note)
    assert render(back, "de") == ("Wert fehlt für 2 überdeckte Bezirke der Ebene stadtviertel: "
                                  "72: Sperrvermerk der Statistikstelle; 73: kein Wert geladen")
    assert render(back, "en") == ("value missing for 2 covered stadtviertel districts: "
                                  "72: Sperrvermerk der Statistikstelle; 73: no value loaded")
    # free text: stored as {"text"}, never looked up in the catalogue, even when it looks like a key
    for free in ("weniger als 3 Fälle (Datenschutz)", "missing.not_given", "{code}"):
        assert json.loads(encode(free)) == {"text": free}
        assert decode(json.loads(encode(free))) == free
        assert render(json.loads(encode(free)), "en") == free
        assert as_json(json.loads(encode(free)), "de") == {
            "code": "text", "params": {"text": free}, "detail": free}
    # rows older than 0015: plain text, a JSON string or other JSON read as text
    assert render("no row for this AGS (old)", "de") == "no row for this AGS (old)"
    assert render({"something": 1}, "de") == '{"something": 1}'
    assert render(None, "de") == "" and as_json(None, "de") is None and encode(None) is None


# ----------------------------------------------------------------------------------------------
# API
# ----------------------------------------------------------------------------------------------
def _values(body):
    return {v["indicator"]: v for v in body["values"]}


def test_profile_over_http_in_german_and_english(client):
    path = f"/api/analysis/profiles/{SLUG}"
    answers = {
        "de": client.get(path),  # German by default
        "en": client.get(path, params={"lang": "en"}),
        "header": client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9"}),
    }
    for name, r in answers.items():
        assert r.status_code == 200, (name, r.text[:300])
    de, en = _values(answers["de"].json()), _values(answers["en"].json())
    assert _values(answers["header"].json())["population"]["derivation"] == \
        en["population"]["derivation"]
    pop_de, pop_en = de["population"]["derivation"], en["population"]["derivation"]
    # the code and params travel, so a client can write the note out itself
    assert pop_de["code"] == pop_en["code"] == "deriv.interpolated_sum"
    assert pop_de["params"] == pop_en["params"] and pop_de["params"]["level"] == "stadtviertel"
    assert pop_de["params"]["districts"][0]["code"] == "deriv.district_part"
    assert "71" in [p["params"]["code"] for p in pop_de["params"]["districts"]]
    assert pop_en["detail"].startswith("tobler area_interpolate (extensive, allocate_total=False)")
    assert pop_de["detail"].startswith("flächenanteilig übertragen")
    assert "Nördliche Neustadt" in pop_de["detail"] and "% seiner Fläche" in pop_de["detail"]
    assert de["density"]["derivation"]["detail"].startswith("neu berechnet aus diesem Profil")
    assert en["density"]["derivation"]["detail"].startswith("recomputed:")
    assert de["area_geom_km2"]["derivation"]["detail"].startswith("direkt:")
    assert en["area_geom_km2"]["derivation"]["detail"].startswith("direct:")
    german = " ".join((v["derivation"] or v["missing_reason"])["detail"] for v in de.values())
    assert english_in(german) == [], german
    for v in de.values():  # every value a derivation, every gap a reason, never both
        assert (v["derivation"] is None) != (v["missing_reason"] is None), v["indicator"]
        assert v["derivation"] is None or t(f"warning.{v['derivation']['code']}", "de") != \
            f"warning.{v['derivation']['code']}"


def test_the_reference_derivations_of_a_ranking_per_language(client):
    """The ranking's JSON is cleaned to plain dicts: the notes inside notes (the districts of
    an interpolation) are still written out, never shown as a catalogue key."""
    body = {"reference": f"quarter:{SLUG}", "level": "stadtviertel", "top": 3,
            "indicators": ["population", "density"], "sensitivity": False, "types": False}
    derivs = {lang: client.post(f"/api/analysis/transfer?lang={lang}", json=body).json()[
        "reference"]["derivations"] for lang in ("de", "en")}
    de, en = derivs["de"]["population"], derivs["en"]["population"]
    assert de["code"] == en["code"] == "deriv.interpolated_sum" and de["params"] == en["params"]
    assert "71 Nördliche Neustadt (" in de["detail"] and "% seiner Fläche)" in de["detail"]
    assert "71 Nördliche Neustadt (" in en["detail"] and "% of its area)" in en["detail"]
    for note in (*derivs["de"].values(), *derivs["en"].values()):
        assert not re.search(r"\b(problem|warning|deriv|missing)\.[a-z_]+", note["detail"]), note
    assert english_in(" ".join(n["detail"] for n in derivs["de"].values())) == []


def test_missing_reasons_of_the_values_table_per_language(client):
    path = "/api/analysis/indicators/female_share/values"
    rows = {lang: {r["code"]: r for r in client.get(path, params={
        "level": "gemeinde", "lang": lang}).json()["values"]} for lang in ("de", "en")}
    gaps = [c for c, r in rows["de"].items() if r["value"] is None]
    assert gaps
    codes = {rows["de"][c]["missing_reason"]["code"] for c in gaps}
    assert "missing.uninhabited_share" in codes
    some = next(c for c in gaps if rows["de"][c]["missing_reason"]["code"]
                == "missing.uninhabited_share")
    assert rows["de"][some]["missing_reason"]["detail"] == t(
        "warning.missing.uninhabited_share", "de")
    assert rows["en"][some]["missing_reason"]["detail"] == \
        "no inhabitants (uninhabited area): share undefined"
    assert all(r["missing_reason"] is None for r in rows["en"].values() if r["value"] is not None)


def test_a_user_reason_from_a_csv_comes_back_unchanged(client, conn, tmp_path):
    from quarters.imports.indicator_tables import import_indicators

    own = "Sperrvermerk: weniger als 3 Fälle, see missing.not_given {x}"
    path = tmp_path / "eigene.csv"
    path.write_text("ags,indicator,value,unit,ref_date,missing_reason\n"
                    f"15002000,provenance_test,,%,2023,\"{own}\"\n"
                    "16052000,provenance_test,,%,2023,\n"
                    "01001000,provenance_test,4.5,%,2023,\n", encoding="utf-8")
    import_indicators(conn, path, "gemeinde", source_name="Test")
    stored = dict(conn.execute(text(
        "SELECT unit_code, missing_reason FROM indicator_values WHERE indicator = "
        "'provenance_test'")).all())
    assert stored["15002000"] == {"text": own}
    assert stored["16052000"] == {"code": "missing.not_given_in", "params": {"file": "eigene.csv"}}
    assert stored["01001000"] is None
    level = get_level(conn, "gemeinde")
    _, reasons, _ = values_table(conn, level, ["provenance_test"])
    for lang in ("de", "en"):
        assert render(reasons["provenance_test"]["15002000"], lang) == own
    assert render(reasons["provenance_test"]["16052000"], "de") == "nicht angegeben in eigene.csv"
    assert render(reasons["provenance_test"]["16052000"], "en") == "not given in eigene.csv"
    derivation = conn.execute(text(
        "SELECT derivation FROM indicator_values WHERE indicator = 'provenance_test' "
        "AND unit_code = '01001000'")).scalar_one()
    assert render(derivation, "de") == "importiert aus eigene.csv"


def test_a_row_written_before_0015_still_renders(conn):
    """Downgrade to text, write a row as the old code did, upgrade: the text is kept as free
    text and shown as it is (inside the test's rolled-back transaction)."""
    spec = importlib.util.spec_from_file_location("m0015", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with Operations.context(MigrationContext.configure(conn)):
        module.downgrade()
        kind = conn.execute(text(
            "SELECT data_type FROM information_schema.columns WHERE table_name = "
            "'indicator_values' AND column_name = 'missing_reason'")).scalar_one()
        assert kind == "text"
        # a coded note of today reads back as its JSON text, free text as it was
        assert conn.execute(text(
            "SELECT count(*) FROM indicator_values WHERE missing_reason LIKE '{%'")).scalar_one() > 0
        conn.execute(text(
            "UPDATE indicator_values SET value = NULL, missing_reason = 'test gap (old text)', "
            "derivation = NULL WHERE indicator = 'population' AND level = 'stadtviertel' "
            "AND unit_code = '72'"))
        module.upgrade()
    row = conn.execute(text(
        "SELECT missing_reason FROM indicator_values WHERE indicator = 'population' AND "
        "level = 'stadtviertel' AND unit_code = '72'")).scalar_one()
    assert row == {"text": "test gap (old text)"}
    _, reasons, _ = values_table(conn, get_level(conn, "stadtviertel"), ["population"])
    assert render(reasons["population"]["72"], "de") == "test gap (old text)"
    # the notes written by the current code survive the way down and up again
    gem = conn.execute(text(
        "SELECT missing_reason FROM indicator_values WHERE indicator = 'female_share' AND "
        "level = 'gemeinde' AND missing_reason ->> 'code' = 'missing.uninhabited_share' "
        "LIMIT 1")).scalar_one()
    assert render(gem, "de") == t("warning.missing.uninhabited_share", "de")


# ----------------------------------------------------------------------------------------------
# report, CSV, CLI
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quarter_result(engine):
    with engine.connect() as conn:
        res = run_transfer(conn, TransferParams(
            reference=f"quarter:{SLUG}", level="stadtviertel", top=5,
            indicators=["population", "density", "area_geom_km2"], runs=10, types=False))
        yield conn, res


def test_the_report_writes_the_derivations_in_its_language(quarter_result, settings):
    conn, res = quarter_result
    assert set(res.reference.derivations) == {"population", "density", "area_geom_km2"}
    pages = {lang: visible(render_report(conn, res, settings, lang=lang)) for lang in ("de", "en")}
    block = {lang: re.search(re.escape(t("report.m_derivations", lang)) + r":</strong><ul>(.*?)</ul>",
                             pages[lang], re.S).group(1) for lang in ("de", "en")}
    assert "flächenanteilig übertragen" in block["de"] and "neu berechnet" in block["de"]
    assert english_in(block["de"]) == [], block["de"]
    assert 'lang="en"' not in block["de"]
    assert "tobler area_interpolate (extensive, allocate_total=False)" in block["en"]
    assert "recomputed: population / area_km2" in block["en"]
    assert english_in(pages["de"]) == []


def test_the_csv_of_a_ranking_writes_missing_reasons_in_its_language(engine):
    with engine.connect() as conn:  # measures are counted only in the project cities
        res = run_transfer(conn, TransferParams(
            reference="gemeinde:15002000", level="gemeinde", top=3,
            indicators=["population", "measures"], sensitivity=False, types=False))
    assert len(res.excluded)
    for lang, words in (("de", "Projektstädte"), ("en", "project cities")):
        frame = result_frame(res, lang)
        missing = " ".join(frame.loc[frame["excluded"].astype(bool), "missing"])
        assert words in missing
        if lang == "de":
            assert "recorded only" not in missing


@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_cli_profile_in_german_and_english(settings, engine, lang):
    done = cli(settings, "--lang", lang, "analyze", "profile", SLUG, COLUMNS="4000")
    assert done.returncode == 0, done.stderr[-2000:]
    out = re.sub(r"\s+", " ", done.stderr + done.stdout)
    if lang == "de":
        assert "flächenanteilig" in out and "direkt:" in out and "neu berechnet" in out
        assert english_in(out) == [], out
    else:
        assert "tobler area_interpolate" in out and "direct:" in out and "recomputed" in out
        assert "flächenanteilig" not in out and "neu berechnet" not in out
