"""The errors that used to send English prose under a generic code, asked over HTTP in German
and in English: the same ``code``, ``pointer`` and ``params``, a ``detail`` in each language,
nothing stored. Plus the sources catalogue and the analysis core, which the CLI shows."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from factories import bearer, measure_feature
from quarters.messages import t
from quarters.tiles import TILE_MATRIX_SETS
from test_problem_codes import both, same_problem

TILES = "/api/collections/municipalities/tiles/WebMercatorQuad"


def test_an_unknown_pilot_quarter_is_coded(client):
    a, b = same_problem(*both(client.get, "/api/analysis/profiles/nirgendwo"), 404)
    assert a["code"] == "profiles.unknown_quarter" and a["pointer"] == "quarter"
    assert a["params"]["slug"] == "nirgendwo" and "bildungsquartier-neustadt" in a["params"]["known"]
    assert a["detail"].startswith("Ein Pilotquartier „nirgendwo“ gibt es nicht")
    assert b["detail"].startswith("quarter: no pilot quarter 'nirgendwo'")


def test_an_unknown_analysis_level_is_coded(client):
    a, b = same_problem(*both(client.get, "/api/analysis/typology?level=bezirk"), 400)
    assert a["code"] == "indicator.unknown_level" and a["pointer"] == "level"
    assert a["params"]["value"] == "bezirk"
    assert "eine Ebene „bezirk“ gibt es nicht" in a["detail"]
    assert "level: unknown level 'bezirk'" in b["detail"]


@pytest.mark.parametrize(("path", "code", "params", "german", "english"), [
    (f"{TILES}/30/0/0", "tiles.zoom", {"tms": "WebMercatorQuad", "z": 30, "min": 0,
                                        "max": TILE_MATRIX_SETS["WebMercatorQuad"].maxzoom},
     "die Zoomstufe 30 liegt außerhalb von 0–", "zoom 30 is outside 0–"),
    (f"{TILES}/2/1/9", "tiles.column_row",
     {"tms": "WebMercatorQuad", "x": 9, "y": 1, "z": 2, "max_x": 3, "max_y": 3},
     "keine Kachel in Spalte 9 / Zeile 1", "no tile column 9 / row 1 at zoom 2 (0–3 / 0–3)"),
    ("/api/collections/municipalities/tiles/Mars/1/0/0", "tiles.unknown_tms", None,
     "Ein Kachelgitter „Mars“ gibt es nicht", "no tile matrix set 'Mars'"),
])
def test_a_tile_out_of_range_is_coded(client, path, code, params, german, english):
    a, b = same_problem(*both(client.get, path), 404)
    assert a["code"] == code
    assert a["pointer"] == {"tiles.zoom": "tileMatrix", "tiles.column_row": "tileCol",
                            "tiles.unknown_tms": "tileMatrixSetId"}[code]
    if params is not None:
        assert a["params"] == params
    assert german in a["detail"] and english in b["detail"]


def test_unknown_and_equal_editions_are_coded(client):
    a, b = same_problem(*both(client.get, "/api/editions/nope/measures"), 404)
    assert a["code"] == "edition.unknown" and a["params"] == {"key": "nope"}
    assert a["detail"] == "Eine Fassung „nope“ gibt es nicht." and b["detail"] == "no edition 'nope'."
    a, b = same_problem(*both(client.get, "/api/editions/diff?from=gera-2021&to=gera-2021"), 400)
    assert a["code"] == "edition.same" and a["pointer"] == "new"
    assert "zwei verschiedene Fassungen" in a["detail"] and "two different editions" in b["detail"]


def test_freezing_an_unknown_edition_is_coded_and_stores_nothing(client, conn):
    admin = bearer(client, conn, "admin")
    before = conn.execute(text("SELECT count(*), count(*) FILTER (WHERE frozen) FROM editions")
                          ).one()
    de, en, en_param = both(client.post, "/api/editions/nope/freeze", headers=admin)
    a, _ = same_problem(de, en, en_param, 404)
    assert a["code"] == "edition.unknown"
    assert conn.execute(text("SELECT count(*), count(*) FILTER (WHERE frozen) FROM editions")
                        ).one() == before


def test_the_etag_of_another_measure_is_coded_and_changes_nothing(client, conn):
    planner = bearer(client, conn, "planner")
    items = "/api/collections/measures/items"
    made = [client.post(items, content=json.dumps(measure_feature(title=f"Ampel {n}")),
                        headers={**planner, "Content-Type": "application/geo+json"})
            for n in (1, 2)]
    assert all(r.status_code == 201 for r in made)
    first, second = (r.json()["id"] for r in made)
    foreign = made[1].headers["etag"]
    state = text("SELECT title, version FROM measures WHERE id = :id")
    before = conn.execute(state, {"id": first}).one()
    de, en, en_param = both(client.patch, f"{items}/{first}", json={"properties": {"title": "x"}},
                            headers={**planner, "If-Match": foreign})
    a, b = same_problem(de, en, en_param, 412)
    assert a["code"] == "write.etag_other_measure" and a["pointer"] == "If-Match"
    assert a["params"] == {"tag": f"m{second}-v1", "id": first}
    assert "ETag einer anderen Maßnahme" in a["detail"]
    assert f"is the ETag of another measure, not of {first}" in b["detail"]
    assert conn.execute(state, {"id": first}).one() == before


def test_an_unknown_place_kind_is_coded_with_its_item(client):
    a, b = same_problem(*both(client.get, "/api/places?q=Halle&kind=moon"), 400)
    assert a["code"] == "places.unknown_kind" and a["pointer"] == "kind"
    assert [(e["code"], e["pointer"]) for e in a["errors"]] == [("places.unknown_kind", "kind")]
    assert a["errors"][0]["problem"] != b["errors"][0]["problem"]


def test_the_analysis_core_raises_coded_value_errors():
    import pandas as pd

    from quarters.analysis.similarity import similarity
    from quarters.errors import InvalidValue, problem_of

    values = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=["a", "b", "c"])
    with pytest.raises(ValueError, match="weights must be finite") as caught:
        similarity(values, "a", {"x": float("inf")})
    exc = caught.value
    assert isinstance(exc, InvalidValue) and exc.code == "analysis.weights_not_finite"
    de, en = problem_of(exc, "de"), problem_of(exc, "en")
    assert de["status"] == en["status"] == 422 and de["pointer"] == "weights"
    assert de["detail"] == "Die Gewichte müssen endlich sein, nicht {'x': inf}."
    assert en["detail"] == "weights must be finite, got {'x': inf}."


def test_a_skipped_step_names_the_problem_code_not_english():

    from quarters.errors import InvalidValue
    from quarters.transfer import _why, refusal

    coded = InvalidValue(code="analysis.too_few_candidates",
                         params={"left": 1, "count": 3, "excluded": 2})
    assert _why(coded) == {"reason": "analysis.too_few_candidates",
                           "reason_params": {"left": 1, "count": 3, "excluded": 2}}
    assert refusal(coded, "ranking") is coded
    other = refusal(ValueError("could not convert string to float"), "ranking")
    assert other.code == "analysis.step_failed" and other.params["step"] == "ranking"


def test_catalogue_problems_are_coded_per_dataset_and_key():
    from quarters.catalogue import CatalogueError, parse_catalogue
    from quarters.errors import error_text

    raw = {"broken": {"name": "A", "publisher": "B", "licence": "CC0",
                      "licence_url": "https://example.org/", "attribution": "© B",
                      "landing_page": "https://example.org/", "files": ["../x.csv"],
                      "licnese": "typo"}}
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(raw, source="test.toml")
    exc = caught.value
    assert exc.code == "catalogue.problems" and exc.params == {"source": "test.toml", "count": 2}
    codes = sorted((e["pointer"], e["code"]) for e in exc.errors)
    assert codes == [("/broken/files/0", "catalogue.key_problem"),
                     ("/broken/licnese", "catalogue.unknown_key")]
    english, german = str(exc), error_text(exc, "de")
    assert "dataset 'broken', key 'files.0': '../x.csv' must be a relative path" in english
    assert "dataset 'broken': unknown key 'licnese'" in english
    assert "Datensatz „broken“, Schlüssel „files.0“: „../x.csv“ muss ein relativer Pfad" in german
    assert "Datensatz „broken“: unbekannter Schlüssel „licnese“" in german
    key_problem = next(e for e in exc.errors if e["code"] == "catalogue.key_problem")
    assert key_problem["params"]["problem"]["code"] == "catalogue.relative_path"
    assert t("problem.catalogue.key_problem", "en", **key_problem["params"]).endswith(
        "stays inside the data directory (no leading '/', no '..').")
