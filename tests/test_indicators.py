"""Indicators as data: Destatis and Stadtviertel loaders, computed indicators, CSV import."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from quarters.errors import ImportRefused, InvalidParameter
from quarters.imports.indicator_tables import import_indicators
from quarters.indicators import computed
from quarters.indicators.computed import refresh_computed
from quarters.indicators.levels import get_level
from quarters.indicators.loaders import parse_destatis
from quarters.indicators.provenance import render
from quarters.indicators.reading import values_table
from quarters.messages import note_text
from quarters.settings import GERA_AGS, HALLE_AGS


def value(conn, indicator, level, code):
    row = conn.execute(text(
        "SELECT value, missing_reason FROM indicator_values WHERE indicator = :i AND level = :l "
        "AND unit_code = :c ORDER BY ref_date DESC LIMIT 1"),
        {"i": indicator, "l": level, "c": code}).first()
    return row


def count(conn):
    return conn.execute(text("SELECT count(*) FROM indicator_values")).scalar_one()


# -- Destatis -------------------------------------------------------------------------------
def test_destatis_parser_reads_bom_spaces_and_decimal_points(tmp_path):
    path = tmp_path / "gv.csv"
    header = ("satzart,textkennzeichen,land,rb,kreis,vb,gemeinde,gemeindename,flaeche,"
              "bevoelkerung,maennlich,weiblich,jekm2,postleitzahl,laengengrad,breitengrad,"
              "schluessel,bezeichnung,verstaedterungschluessel,verstaedterungbezeichnung\n")
    rows = ('40,41,15,0,02,,,"Halle (Saale), Stadt",,,,,,,,,,,,\n'
            '60,61,15,0,02,0000,000,"Halle (Saale), Stadt", 135.03, 238 762, 115 913,'
            ' 122 849, 1 768,06108,"11,970666","51,48295",X,Y,01,dicht besiedelt\n'
            '60,64,15,0,02,0000,999,Gemeindefrei, 3.5, 0, 0, 0, 0,,,,,,,\n')
    path.write_bytes("\ufeff".encode() + (header + rows).encode())
    gem, kreise = parse_destatis(path)
    assert gem.loc["15002000", "population"] == 238762
    assert gem.loc["15002000", "area_km2"] == pytest.approx(135.03)
    assert gem.loc["15002000", "population_female"] == 122849
    assert gem.loc["15002000", "urbanisation"] == 1
    assert math.isnan(gem.loc["15002999", "urbanisation"])  # empty class stays missing
    assert list(kreise.index) == ["15002"]


def test_destatis_values_join_vg5000_by_ags(conn):
    assert value(conn, "population", "gemeinde", HALLE_AGS).value == 238762
    assert value(conn, "area_km2", "gemeinde", HALLE_AGS).value == pytest.approx(135.03)
    assert value(conn, "population", "gemeinde", GERA_AGS).value == 93125
    assert value(conn, "area_km2", "gemeinde", GERA_AGS).value == pytest.approx(152.18)
    # density is recomputed from population and area, not the rounded jekm2 column
    assert value(conn, "density", "gemeinde", HALLE_AGS).value == pytest.approx(238762 / 135.03)
    assert value(conn, "female_share", "gemeinde", HALLE_AGS).value == pytest.approx(
        100 * value(conn, "population_female", "gemeinde", HALLE_AGS).value / 238762)
    assert value(conn, "urbanisation", "gemeinde", HALLE_AGS).value == 1
    # the population of all municipalities is Germany's official 31.12.2019 figure minus the
    # municipalities of the file that VG5000 does not have
    total = conn.execute(text("SELECT sum(value) FROM indicator_values WHERE "
                              "indicator = 'population' AND level = 'gemeinde'")).scalar_one()
    assert 83_000_000 < total <= 83_166_711


def test_kreise_are_sums_of_their_gemeinden(conn):
    assert value(conn, "population", "kreis", "15002").value == 238762
    krs = conn.execute(text("SELECT sum(value) FROM indicator_values WHERE indicator = "
                            "'population' AND level = 'gemeinde' AND unit_code LIKE '16065%'")
                       ).scalar_one()
    assert value(conn, "population", "kreis", "16065").value >= krs


def test_missing_values_are_explicit_with_a_reason(conn):
    # no NaN anywhere and every NULL has a reason (also enforced by the table)
    bad = conn.execute(text("SELECT count(*) FROM indicator_values WHERE value = 'NaN' OR "
                            "(value IS NULL AND missing_reason IS NULL)")).scalar_one()
    assert bad == 0
    # uninhabited areas: share of women undefined, not 0
    row = conn.execute(text(
        "SELECT v.unit_code, v.missing_reason FROM indicator_values v JOIN indicator_values p "
        "ON p.unit_code = v.unit_code AND p.level = 'gemeinde' AND p.indicator = 'population' "
        "WHERE v.indicator = 'female_share' AND v.level = 'gemeinde' AND p.value = 0 LIMIT 1")
    ).first()
    assert row is not None and row.missing_reason == {"code": "missing.uninhabited_share",
                                                      "params": {}}
    # a VG5000 municipality the Destatis extract lacks gets missing rows, not zeros
    no_row = conn.execute(text(
        "SELECT count(*) FROM indicator_values WHERE level = 'gemeinde' AND value IS NULL AND "
        "missing_reason ->> 'code' = 'missing.no_destatis_row'")).scalar_one()
    assert no_row > 0


def test_stadtviertel_facts(conn):
    alt = value(conn, "population", "stadtviertel", "01")
    assert alt.value == 5952
    assert value(conn, "area_km2", "stadtviertel", "01").value == pytest.approx(0.631)
    assert value(conn, "density", "stadtviertel", "01").value == pytest.approx(5952 / 0.631)
    n = conn.execute(text("SELECT count(DISTINCT unit_code) FROM indicator_values WHERE "
                          "level = 'stadtviertel' AND indicator = 'population'")).scalar_one()
    assert n == 43


def test_computed_geometry_indicators(conn):
    area = conn.execute(text("SELECT ST_Area(geom) / 1e6 FROM municipalities WHERE ags = :a"),
                        {"a": HALLE_AGS}).scalar_one()
    assert value(conn, "area_geom_km2", "gemeinde", HALLE_AGS).value == pytest.approx(area)
    compact = value(conn, "compactness", "gemeinde", HALLE_AGS).value
    assert 0 < compact < 1
    assert value(conn, "quarter_area_share", "gemeinde", HALLE_AGS).value > 0
    assert value(conn, "quarter_area_share", "gemeinde", "09162000").value == 0  # München
    # Nördliche Neustadt lies largely in the Bildungsquartier Neustadt
    assert value(conn, "quarter_area_share", "stadtviertel", "71").value > 50


def test_measure_indicators_count_published_measures(conn):
    before = value(conn, "measures", "stadtviertel", "71").value
    before_city = value(conn, "measures", "gemeinde", HALLE_AGS).value
    conn.execute(text("""
        INSERT INTO measures (city_ags, title, action_field, status, geom, published,
                              location_precision)
        SELECT :c, 'Testmaßnahme ' || n, 'Bildung', 'geplant',
               ST_PointOnSurface(d.geom), true, 'exact'
        FROM districts d, generate_series(1, 3) n WHERE d.level = 'stadtviertel' AND d.code = '71'
    """), {"c": HALLE_AGS})
    report = refresh_computed(conn)
    assert value(conn, "measures", "stadtviertel", "71").value == before + 3
    assert value(conn, "measures__bildung", "stadtviertel", "71").value >= 3
    assert value(conn, "measures", "gemeinde", HALLE_AGS).value == before_city + 3
    area = value(conn, "area_geom_km2", "stadtviertel", "71").value
    pop = value(conn, "population", "stadtviertel", "71").value
    assert value(conn, "measures_per_km2", "stadtviertel", "71").value == pytest.approx(
        (before + 3) / area)
    assert value(conn, "measures_per_1000", "stadtviertel", "71").value == pytest.approx(
        1000 * (before + 3) / pop)
    # outside the project cities measures are not recorded: explicitly missing, never 0
    assert value(conn, "measures", "gemeinde", "09162000") is None  # no row for München
    level = get_level(conn, "gemeinde")
    table, reasons, _ = values_table(conn, level, ["measures"])
    assert math.isnan(table.at["09162000", "measures"])
    assert "project cities" in render(reasons["measures"]["09162000"], "en")
    assert "Projektstädte" in render(reasons["measures"]["09162000"], "de")
    assert any(n.code == "measures_counted" for n in report.notes)


def test_no_measures_view_is_reported_gracefully(conn, monkeypatch):
    monkeypatch.setattr(computed, "measures_view_exists", lambda _conn: False)
    report = refresh_computed(conn)
    assert any("no measures yet" in note_text(n, "en") for n in report.notes)
    assert value(conn, "area_geom_km2", "gemeinde", HALLE_AGS).value > 0


# -- CSV import -----------------------------------------------------------------------------
def test_import_long_csv_and_update(conn, tmp_path):
    path = tmp_path / "werte.csv"
    path.write_text("ags,indicator,value,unit,ref_date\n"
                    f"{HALLE_AGS},unemployment_rate,7.9,%,2022-12-31\n"
                    f"{GERA_AGS},unemployment_rate,8.4,%,2022-12-31\n"
                    "1001000,unemployment_rate,NA,%,2022-12-31\n")  # leading zero dropped
    summary = import_indicators(conn, path, "gemeinde", source_name="Testquelle",
                                    licence="CC BY 4.0")
    assert (summary.values, summary.missing, summary.inserted) == (2, 1, 3)
    assert summary.new_indicators == ["unemployment_rate"]
    assert value(conn, "unemployment_rate", "gemeinde", HALLE_AGS).value == 7.9
    flens = value(conn, "unemployment_rate", "gemeinde", "01001000")
    assert flens.value is None and flens.missing_reason == {
        "code": "missing.not_given_in", "params": {"file": "werte.csv"}}
    src = conn.execute(text("SELECT s.licence FROM indicator_values v JOIN sources s ON "
                            "s.id = v.source_id WHERE v.indicator = 'unemployment_rate' LIMIT 1")
                       ).scalar_one()
    assert src == "CC BY 4.0"
    path.write_text("ags,indicator,value,unit,ref_date\n"
                    f"{HALLE_AGS},unemployment_rate,8.1,%,2022-12-31\n")
    again = import_indicators(conn, path, "gemeinde")
    assert (again.inserted, again.updated) == (0, 1)
    assert value(conn, "unemployment_rate", "gemeinde", HALLE_AGS).value == 8.1


def test_import_wide_csv_with_semicolons_and_decimal_commas(conn, tmp_path):
    path = tmp_path / "viertel.csv"
    path.write_text("code;name;green_share [%];population [Einw.]\n"
                    "71;Nördliche Neustadt;12,5;16 241\n"
                    "01;Altstadt;3,25;5 952\n", encoding="utf-8")
    summary = import_indicators(conn, path, "stadtviertel", ref_date="2024", decimal=",")
    assert summary.values == 4
    assert value(conn, "green_share", "stadtviertel", "01").value == 3.25
    assert value(conn, "population", "stadtviertel", "71").value == 16241


def test_import_by_ars_for_kreise(conn, tmp_path):
    path = tmp_path / "kreise.csv"
    path.write_text("ars,indicator,value,unit,ref_date\n"
                    "150020000000,population,238762,Einw.,2030-01-01\n")
    import_indicators(conn, path, "kreis")
    assert value(conn, "population", "kreis", "15002").value == 238762


@pytest.mark.parametrize(("content", "message"), [
    ("ags,indicator,value,unit,ref_date\n99999999,population,5,Einw.,2020\n",
     "bad.csv, row 2: unknown ags '99999999'"),
    ("ags,indicator,value,ref_date\n15002000,population,5,2020\n15002000,population,6,2020\n",
     "bad.csv, row 3: duplicate row for indicator 'population', unit '15002000', date 2020 "
     "(first in row 2)"),
    ("ags,indicator,value,ref_date\n15002000,population,viele,2020\n",
     "bad.csv, row 2: value 'viele' of indicator 'population' is not a number"),
    ("ags,indicator,value,unit,ref_date\n15002000,population,5,ha,2020\n",
     "bad.csv, row 2: unit 'ha' of indicator 'population' clashes with its unit 'Einw.'"),
    ("ags,indicator,value,ref_date\n15002000,brand_new,5,2020\n",
     "bad.csv, row 2: unknown indicator 'brand_new' and no unit given"),
    ("ags,indicator,value\n15002000,population,5\n",
     "bad.csv, row 2: no reference date"),
    ("ags,indicator,value,ref_date\n15002000,population,5,31.12.2020\n",
     "bad.csv, row 2: ref_date '31.12.2020' is not YYYY, YYYY-MM or YYYY-MM-DD"),
    ("name,value\nHalle,5\n", "bad.csv: no key column"),
])
def test_import_refuses_with_file_row_and_problem(conn, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    before = count(conn)
    with pytest.raises(ImportRefused) as exc:
        import_indicators(conn, path, "gemeinde")
    assert message in exc.value.detail
    assert count(conn) == before


def test_import_is_all_or_nothing(conn, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("ags,indicator,value,unit,ref_date\n"
                    f"{HALLE_AGS},test_all_or_nothing,1,x,2020\n"
                    "00000000,test_all_or_nothing,2,x,2020\n")
    before = count(conn)
    with pytest.raises(ImportRefused) as exc:
        import_indicators(conn, path, "gemeinde")
    assert "nothing stored" in exc.value.detail and "row 3" in exc.value.detail
    assert count(conn) == before
    assert conn.execute(text("SELECT 1 FROM indicators WHERE key = 'test_all_or_nothing'")
                        ).first() is None


def test_import_rejects_unknown_level(conn, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("code,indicator,value,ref_date\n1,population,1,2020\n")
    with pytest.raises(InvalidParameter, match="level: unknown level 'bezirk'"):
        import_indicators(conn, path, "bezirk")


def test_values_table_reports_reasons(conn, engine):
    level = get_level(conn, "gemeinde")
    values, reasons, meta = values_table(conn, level, ["population", "female_share"])
    assert len(values) == conn.execute(text("SELECT count(*) FROM municipalities")).scalar_one()
    missing = values.index[values["female_share"].isna()]
    assert len(missing) > 0
    assert all(c in reasons["female_share"] for c in missing)
    assert meta.at["population", "last"] == "2019-12-31"
