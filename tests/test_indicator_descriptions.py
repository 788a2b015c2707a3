"""Indicator descriptions in the request's language: the built-in ones and those of the
measures of an action field from the catalogue, an imported indicator's from a note with the
file's name; a description written by a person stays as written."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from quarters.messages import t


def described(client, lang: str, how: str = "query") -> dict[str, str | None]:
    if how == "query":
        r = client.get("/api/analysis/indicators", params={"lang": lang})
    else:
        r = client.get("/api/analysis/indicators", headers={"Accept-Language": lang})
    assert r.status_code == 200
    return {i["key"]: i["description"] for i in r.json()["indicators"]}


@pytest.mark.parametrize("how", ["query", "header"])
def test_built_in_descriptions_in_german_and_english(client, how):
    de, en = described(client, "de", how), described(client, "en", how)
    assert de["density"] == t("warning.indicator.density", "de")
    assert en["density"] == t("warning.indicator.density", "en")
    assert "Einwohner je km² amtlicher Fläche" in de["density"]
    assert en["density"].startswith("Inhabitants per km² of official area")
    assert "Verstädterungsschlüssel" not in en["urbanisation"] and "DEGURBA" in en["urbanisation"]
    assert en["population_male"] == "Destatis, 31 Dec 2019."
    field = [k for k in en if k.startswith("measures__")]
    assert field, "the test data has measures of an action field"
    assert de[field[0]].startswith("Veröffentlichte Maßnahmen im Handlungsfeld „")
    assert en[field[0]].startswith("Published measures in the action field “")
    # no German description left on the English answer (the built-in ones)
    german = ("Einwohner", "Fläche", "Veröffentlichte", "fehlt", "besiedelt", "Geometrien")
    assert not [k for k, v in en.items() if v and any(w in v for w in german)]


def test_one_indicator_and_its_values_in_the_request_language(client):
    one = client.get("/api/analysis/indicators/female_share", params={"lang": "en"}).json()
    assert one["description"] == t("warning.indicator.female_share", "en")
    values = client.get("/api/analysis/indicators/female_share/values",
                        params={"level": "gemeinde", "lang": "de", "format": "json"})
    assert values.status_code == 200
    assert values.json()["indicator"]["description"].endswith("fehlt bei unbewohnten Gebieten.")


def test_imported_indicator_description_names_the_file_in_both_languages(client, conn, tmp_path):
    from quarters.imports.indicator_tables import import_indicators

    path = tmp_path / "eigene_werte.csv"
    path.write_text("ags,indicator,value,unit,ref_date\n"
                    "15002000,description_test,4.5,%,2023\n", encoding="utf-8")
    import_indicators(conn, path, "gemeinde", source_name="Test")
    stored = conn.execute(text("SELECT description FROM indicators "
                               "WHERE key = 'description_test'")).scalar_one()
    assert json.loads(stored) == {"code": "indicator.imported",
                                  "params": {"file": "eigene_werte.csv"}}
    assert described(client, "de")["description_test"] == "importiert aus eigene_werte.csv"
    assert described(client, "en")["description_test"] == "imported from eigene_werte.csv"


def test_a_description_written_by_a_person_stays_as_written(client, conn):
    own = '{"not": "a note"} Eigene Beschreibung – bleibt so'
    conn.execute(text("UPDATE indicators SET description = :d WHERE key = 'compactness'"),
                 {"d": own})
    assert described(client, "de")["compactness"] == own
    assert described(client, "en")["compactness"] == own


def test_the_import_source_note_in_the_request_language(client, conn, tmp_path):
    from quarters.imports.indicator_tables import import_indicators

    path = tmp_path / "quelle.csv"
    path.write_text("ags,indicator,value,unit,ref_date\n"
                    "15002000,source_note_test,1.5,%,2023\n", encoding="utf-8")
    import_indicators(conn, path, "gemeinde", source_name="Test")
    notes = {lang: [s["note"] for s in client.get("/api/sources", params={"lang": lang}).json()
                    ["sources"] if s["key"].startswith("import:indicators:gemeinde:quelle.csv")]
             for lang in ("de", "en")}
    assert notes == {"de": ["Indikatorwerte importiert aus quelle.csv"],
                     "en": ["indicator values imported from quelle.csv"]}


def test_the_boundary_import_source_note_in_the_request_language(client, conn, tmp_path):
    from geofiles import GERA_A, GERA_B, frame
    from quarters.imports.boundaries import BoundarySpec, import_into

    path = tmp_path / "viertel_quelle.gpkg"
    frame([{"code": "A", "name": "A", "geometry": GERA_A},
           {"code": "B", "name": "B", "geometry": GERA_B}]).to_file(path)
    import_into(conn, path, BoundarySpec(level="testviertel", city="16052000",
                                         code_field="code", name_field="name"))
    notes = {lang: [s["note"] for s in client.get("/api/sources", params={"lang": lang}).json()
                    ["sources"] if s["key"].endswith(":viertel_quelle.gpkg")]
             for lang in ("de", "en")}
    assert notes == {"de": ["importiert aus viertel_quelle.gpkg (2 Objekte)"],
                     "en": ["imported from viertel_quelle.gpkg (2 features)"]}
