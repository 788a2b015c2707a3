"""Issue 12: like-with-like defaults (one set), parts of the reference, candidate filters in
CQL2, approximation flags, percentiles and bands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from quarters.candidates import BANDS
from quarters.indicators.definitions import DEFAULT_KINDS, definitions
from quarters.indicators.levels import get_level
from quarters.settings import HALLE_AGS

NEUSTADT = "quarter:bildungsquartier-neustadt"
EAST_BIG = "land IN ('12','13','14','15','16') AND population >= 90000"


def post(client, **body):
    r = client.post("/api/analysis/transfer", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _cli_indicators(settings, tmp_path: Path, level: str, reference: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
           "QUARTERS_DATABASE_URL": settings.database_url,
           "QUARTERS_DATA_DIR": str(settings.data_dir), "COLUMNS": "200",
           "QUARTERS_LANG": "en"}  # the CLI's English texts
    done = subprocess.run(
        [sys.executable, "-c", "from quarters.cli import main; main()", "analyze", "transfer",
         "--reference", reference, "--level", level, "--top", "3", "--no-sensitivity", "--no-types",
         "--out", str(tmp_path / f"r-{level}.html")],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    line = re.search(r"^indicators: (.*)$", done.stderr, re.M)
    assert line, done.stderr[-2000:]
    return [k.strip() for k in line.group(1).split(",")]


def test_defaults_are_one_set_across_cli_api_and_page(client, settings, conn, tmp_path):
    """The page takes its defaults from /api/analysis/levels (analysis.js reads
    default_indicators); the API's ranking and the CLI use the very same keys."""
    levels = {lv["name"]: lv for lv in client.get("/api/analysis/levels").json()["levels"]}
    defs = definitions(conn)
    for name, reference in (("gemeinde", f"gemeinde:{HALLE_AGS}"), ("stadtviertel", NEUSTADT)):
        page = levels[name]["default_indicators"]
        assert page, name
        # like with like: no absolute sizes among the defaults
        assert all(defs[k].kind in DEFAULT_KINDS for k in page)
        assert not {"population", "area_km2", "area_geom_km2"} & set(page)
        api = [i["key"] for i in post(client, reference=reference, level=name, top=3,
                                      sensitivity=False, types=False)["indicators"]]
        cli = _cli_indicators(settings, tmp_path, name, reference)
        assert page == api == cli, (name, page, api, cli)
    # the page does not hard-code a list of its own
    js = (Path(__file__).parents[1] / "web/js/analysis.js").read_text()
    assert "default_indicators" in js
    assert not re.search(r"\[\s*\"(population|density)\"", js)


def test_a_quarter_is_never_ranked_against_its_own_stadtviertel(client, conn):
    own = set(conn.execute(text("""
        SELECT d.code FROM districts d, quarters q
        WHERE q.slug = 'bildungsquartier-neustadt' AND d.level = 'stadtviertel'
          AND ST_Area(ST_Intersection(d.geom, q.geom)) > 0.5 * ST_Area(d.geom)""")).scalars())
    assert own  # the Neustadt quarter covers several Stadtviertel
    body = post(client, reference=NEUSTADT, level="stadtviertel", top=100, sensitivity=False,
                types=False)
    ranked = {r["code"] for r in body["rows"]}
    assert not own & ranked
    assert {p["code"] for p in body["part_of_reference"]} == own
    assert body["n_candidates"] == body["level"]["units"] - len(own) - body["n_excluded"]
    # a city over its districts: nothing left to rank, said clearly
    r = client.post("/api/analysis/transfer", json={
        "reference": f"gemeinde:{HALLE_AGS}", "level": "stadtviertel", "types": False})
    assert r.status_code == 422 and r.json()["code"] == "analysis.no_candidates"


def test_filter_on_municipalities_counts_match_pandas(client, conn):
    frame = pd.read_sql(text("""
        SELECT m.ags, v.value AS population FROM municipalities m
        LEFT JOIN LATERAL (SELECT value FROM indicator_values i WHERE i.indicator = 'population'
            AND i.level = 'gemeinde' AND i.unit_code = m.ags ORDER BY ref_date DESC LIMIT 1) v
            ON TRUE"""), conn)
    expect = frame[frame["ags"].str[:2].isin(["12", "13", "14", "15", "16"])
                   & (frame["population"] >= 90000)]
    body = post(client, reference=f"gemeinde:{HALLE_AGS}", level="gemeinde", top=500,
                sensitivity=False, types=False, filter=EAST_BIG)
    codes = {r["code"] for r in body["rows"]} | {e["code"] for e in body["excluded"]}
    assert body["n_candidates"] + body["n_excluded"] == len(expect)
    assert codes == set(expect["ags"])
    assert body["filter"] == EAST_BIG
    assert body["n_filtered_out"] == len(frame) - len(expect)
    # GET takes the same filter
    r = client.get("/api/analysis/transfer", params={
        "reference": f"gemeinde:{HALLE_AGS}", "level": "gemeinde", "top": 500,
        "sensitivity": "false", "types": "false", "filter": EAST_BIG})
    assert r.status_code == 200 and r.json()["n_candidates"] == body["n_candidates"]
    # urbanisation and kreisfrei are filterable too
    urban = post(client, reference=f"gemeinde:{HALLE_AGS}", level="gemeinde", top=5,
                 sensitivity=False, types=False, filter="urbanisation = 1 AND kreisfrei = true")
    assert 0 < urban["n_candidates"] < 200


@pytest.mark.parametrize(("cql", "message"), [
    ("nope = 1", "cql2.unknown_property"),
    ("population >>= 3", "cql2.syntax_expected"),
])
def test_bad_filter_is_a_400(client, cql, message):
    r = client.post("/api/analysis/transfer", json={
        "reference": f"gemeinde:{HALLE_AGS}", "level": "gemeinde", "filter": cql})
    assert r.status_code == 400 and r.json()["code"] == message
    assert r.json()["pointer"] == "filter"


def test_stadtviertel_filter_by_stadtbezirk(client, conn):
    facts = pd.read_csv(Path(os.environ.get("QUARTERS_DATA_DIR", "/work/shared/data"))
                        / "facts/halle_stadtviertel.csv", dtype=str)
    west = set(facts.loc[facts["stadtbezirk"] == "West", "code"].str[-2:])
    body = post(client, reference="stadtviertel:71", level="stadtviertel", top=50,
                sensitivity=False, types=False, filter="stadtbezirk = 'West'")
    ranked = {r["code"] for r in body["rows"]} | {e["code"] for e in body["excluded"]}
    assert ranked and ranked <= {c.zfill(2) for c in west} | set(west)


def test_every_approximate_row_is_flagged(client, conn):
    approx = set(conn.execute(text(
        "SELECT code FROM districts WHERE level = 'stadtviertel' AND approximate")).scalars())
    assert len(approx) == 43
    body = post(client, reference=NEUSTADT, level="stadtviertel", top=100, sensitivity=False,
                types=False)
    assert body["rows"] and all(r["approximate"] is (r["code"] in approx) for r in body["rows"])
    assert body["reference"]["approximate"] is True  # the quarter's profile is interpolated
    gem = post(client, reference=f"gemeinde:{HALLE_AGS}", level="gemeinde", top=5,
               sensitivity=False, types=False)
    assert all(r["approximate"] is False for r in gem["rows"])
    levels = {lv["name"]: lv for lv in client.get("/api/analysis/levels").json()["levels"]}
    assert levels["stadtviertel"]["approximate_units"] == levels["stadtviertel"]["units"]


def test_percentile_and_band_follow_the_distance_distribution(client):
    body = post(client, reference=f"gemeinde:{HALLE_AGS}", level="gemeinde", top=500,
                sensitivity=False, types=False, filter=EAST_BIG)
    rows = [r for r in body["rows"] if not r["is_reference"]]
    n = len(rows)
    assert n > 10
    ref = next(r for r in body["rows"] if r["is_reference"])
    assert ref["percentile"] is None and ref["band"] is None
    dists = sorted(r["distance"] for r in rows)
    order = [b[1] for b in BANDS]
    for r in rows:
        farther = sum(d > r["distance"] for d in dists)
        same = sum(d == r["distance"] for d in dists)
        assert r["percentile"] == pytest.approx(100 * (farther + 0.5 * (same - 1)) / (n - 1),
                                                abs=0.051)
        share = 100 * (sum(d < r["distance"] for d in dists) + 0.5 * same) / n
        expect = next(b for b in BANDS if share <= b[0])
        assert r["band"] == {"key": expect[1], "de": expect[2], "en": expect[3]}
    keys = [order.index(r["band"]["key"]) for r in rows]
    assert keys == sorted(keys)  # bands never improve down the ranking
    assert rows[0]["band"]["de"] == "sehr ähnlich" and rows[-1]["band"]["de"] == "kaum ähnlich"
    assert body["band_rule"]["code"] == "rule.bands" and "5 %" in body["band_rule"]["detail"]


def test_level_lists_filter_properties_and_default_rule(client, conn):
    body = client.get("/api/analysis/levels").json()
    gem = next(lv for lv in body["levels"] if lv["name"] == "gemeinde")
    assert {"land", "kreis", "kreisfrei", "population", "area_km2", "urbanisation",
            "name"} <= set(gem["filter_properties"])
    sv = next(lv for lv in body["levels"] if lv["name"] == "stadtviertel")
    assert "stadtbezirk" in sv["filter_properties"]
    assert "intensive" in body["default_rule"]["detail"]
    assert get_level(conn, "stadtviertel").district_level == "stadtviertel"


def test_report_states_filter_parts_bands_and_approximations(client):
    r = client.post("/api/analysis/report", json={
        "reference": NEUSTADT, "level": "stadtviertel", "top": 5, "types": False,
        "sensitivity": False, "filter": "stadtbezirk <> 'Mitte'"})
    assert r.status_code == 200, r.text
    page = r.text
    assert "Filter (CQL2):" in page and "stadtbezirk &lt;&gt; &#x27;Mitte&#x27;" in page
    assert "Teil der Referenz (nicht bewertet)" in page and "Südliche Neustadt" in page
    assert "Näherungen (*):</strong> alle der bewerteten" in page
    assert "teils" not in page and "partly" not in page
    assert page.count('<abbr title="genähert">*</abbr>') == 5
    assert "Perzentil" in page and "Einordnung" in page


def test_imported_stadtviertel_statistics_become_defaults(conn, tmp_path):
    """README example: the city's Stadtviertel statistics (age groups, SGB-II share,
    households) go in with `quarters import indicators` and the shares and rates are
    default-eligible at once; the household count (an absolute size) is not."""
    from quarters.imports.indicator_tables import import_indicators
    from quarters.indicators.reading import default_indicators
    from quarters.transfer import TransferParams, run_transfer

    codes = list(conn.execute(text(
        "SELECT code FROM districts WHERE level = 'stadtviertel' ORDER BY code")).scalars())
    lines = ["code;share_under_18 [%];share_65_plus [%];sgb2_share [%];households [Haushalte];"
             "persons_per_household [Personen je Haushalt]"]
    for i, code in enumerate(codes):
        lines.append(f"{code};{12 + i % 9},5;{18 + i % 13},0;{5 + i % 17},2;{1000 + 37 * i};"
                     f"1,{6 + i % 7}")
    path = tmp_path / "stadtviertel_2023.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    level = get_level(conn, "stadtviertel")
    before = default_indicators(conn, level)
    import_indicators(conn, path, "stadtviertel", ref_date="2023-12-31", decimal=",",
                      source_name="Stadt Halle (Saale), Stadtviertelstatistik 2023")
    after = default_indicators(conn, level)
    new = set(after) - set(before)
    assert new == {"share_under_18", "share_65_plus", "sgb2_share", "persons_per_household"}
    assert "households" not in after
    res = run_transfer(conn, TransferParams(reference=NEUSTADT, level="stadtviertel",
                                            sensitivity=False, types=False))
    assert [d.key for d in res.indicators] == after
