"""One layer per level: a city-style Stadtviertel layer (EPSG:25832, 3-digit codes) over the
43 approximate Stadtviertel is refused unless --replace or --add; code mapping keeps the
indicator values and measures attached."""

from __future__ import annotations

import re

import geopandas as gpd
import pytest
from sqlalchemy import text

from quarters.errors import ImportRefused
from quarters.imports.boundaries import BoundarySpec, import_into
from quarters.indicators.levels import get_level
from quarters.indicators.reading import values_table
from quarters.layers import read_code_map
from quarters.messages import note_text, t
from test_cli import cli_env, run  # noqa: F401  (fixture and runner of the real command)

HALLE = "15002000"
WHERE = f"city_ags = '{HALLE}' AND level = 'stadtviertel'"


def count(conn, where: str = WHERE) -> int:
    return conn.execute(text(f"SELECT count(*) FROM districts WHERE {where}")).scalar_one()


def city_layer(conn, folder) -> gpd.GeoDataFrame:
    """The city's layer as the city would deliver it: 3-digit codes (571 …), EPSG:25832,
    outlines slightly shifted against the stored approximation."""
    gdf = gpd.read_postgis(text(
        f"SELECT attributes->>'code3' AS \"VIERTEL_NR\", name AS \"NAME\", geom FROM districts "
        f"WHERE {WHERE} ORDER BY code"), conn, geom_col="geom")
    gdf["geom"] = gdf.geometry.translate(35.0, -20.0)
    gdf = gdf.set_geometry("geom").set_crs(25832, allow_override=True)
    path = folder / "stadtviertel_stadt.gpkg"
    gdf.to_file(path, layer="stadtviertel")
    return path


def spec(**kw) -> BoundarySpec:
    return BoundarySpec(level="stadtviertel", city=HALLE, code_field="VIERTEL_NR",
                        name_field="NAME", **kw)


def population(conn):
    vals, _, _ = values_table(conn, get_level(conn, "stadtviertel"), ["population"])
    return vals["population"]


def measure_links(conn) -> list[tuple]:
    """(measure id, district code) of every measure placed in a Stadtviertel."""
    return conn.execute(text(
        f"SELECT m.id, d.code FROM measures m JOIN districts d ON d.id = ANY(m.district_ids) "
        f"WHERE d.{WHERE.replace(' AND ', ' AND d.')} ORDER BY 1, 2")).all()


def test_second_layer_is_refused_naming_the_units_and_nothing_is_stored(conn, tmp_path):
    path = city_layer(conn, tmp_path)
    sources = conn.execute(text("SELECT count(*) FROM sources")).scalar_one()
    with pytest.raises(ImportRefused) as err, conn.begin_nested():
        import_into(conn, path, spec())
    msg = str(err.value.detail)
    assert "43 of 43 units overlap the 43 existing units of level 'stadtviertel'" in msg
    named = re.findall(r"(\d{3}) ([^;(]+?) lies (\d+) % in (\d{2}) ([^,;)]+)", msg)
    assert len(named) == 5  # a few named, the rest counted
    assert all(new[1:] == old and name == old_name and int(p) > 50
               for new, name, p, old, old_name in named), named
    by_code = {e["unit"]: t(f"problem.{e['code']}", "en", **e["params"])
               for e in err.value.errors}
    assert {e["code"] for e in err.value.errors} == {"layers.overlaps_unit"}
    assert "71 Nördliche Neustadt" in by_code["571"]
    assert "… and 38 more" in msg and "--replace" in msg and "--add" in msg
    assert len(err.value.errors) == 43
    assert count(conn) == 43
    assert count(conn, WHERE + " AND code = '571'") == 0
    assert conn.execute(text("SELECT count(*) FROM sources")).scalar_one() == sources


def test_replace_with_code_rule_keeps_indicator_values_and_measures(conn, tmp_path):
    path = city_layer(conn, tmp_path)
    before = population(conn)
    ids = conn.execute(text(f"SELECT code, id FROM districts WHERE {WHERE} ORDER BY 1")).all()
    links = measure_links(conn)
    summary = import_into(conn, path, spec(replace=True, code_rule="last2"),
                          source_name="Stadt Halle (Saale), Stadtviertel", licence="dl-de/by-2-0")
    assert summary.mapped == 43
    assert (summary.inserted, summary.updated, summary.deleted) == (0, 43, 0)
    assert summary.warnings == []
    assert count(conn) == 43
    assert count(conn, WHERE + " AND approximate") == 0
    assert conn.execute(text(f"SELECT code, id FROM districts WHERE {WHERE} ORDER BY 1")
                        ).all() == ids
    after = population(conn)
    assert after.notna().sum() == before.notna().sum() > 40
    assert after.equals(before)
    assert measure_links(conn) == links and links  # the measures still point at their viertel
    source = conn.execute(text(f"SELECT DISTINCT s.name FROM districts d JOIN sources s ON "
                               f"s.id = d.source_id WHERE d.{WHERE.replace(' AND ', ' AND d.')}"
                               )).scalar_one()
    assert source == "Stadt Halle (Saale), Stadtviertel"


def test_replace_without_mapping_orphans_the_values_and_warns(conn, tmp_path):
    """The contrast: with unmatched codes --replace swaps the units and the values detach."""
    path = city_layer(conn, tmp_path)
    summary = import_into(conn, path, spec(replace=True))
    assert (summary.inserted, summary.deleted) == (43, 43)
    assert any("no longer join" in note_text(w, "en") for w in summary.warnings)
    assert population(conn).notna().sum() == 0


def test_code_map_file_does_the_same_as_the_rule(conn, tmp_path):
    path = city_layer(conn, tmp_path)
    pairs = conn.execute(text(f"SELECT attributes->>'code3', code FROM districts WHERE {WHERE}"
                              )).all()
    cmap = tmp_path / "codes.csv"
    cmap.write_text("old,new\n" + "".join(f"{a},{b}\n" for a, b in pairs))
    mapping = read_code_map(cmap)
    assert len(mapping) == 43 and mapping["571"] == "71"
    before = population(conn)
    summary = import_into(conn, path, spec(replace=True, code_map=mapping))
    assert (summary.inserted, summary.updated, summary.deleted) == (0, 43, 0)
    assert population(conn).equals(before)


def test_add_keeps_both_layers_explicitly(conn, tmp_path):
    path = city_layer(conn, tmp_path)
    summary = import_into(conn, path, spec(add=True))
    assert summary.inserted == 43
    assert count(conn) == 86
    assert any("both layers kept" in note_text(w, "en") for w in summary.warnings)


@pytest.mark.parametrize(("kw", "expected"), [
    ({"code_rule": "last1"}, "code mapping gives several units one code"),
    ({"code_rule": "first2"}, "code rule 'first2' is unknown"),
    ({"replace": True, "add": True}, "--replace and --add exclude each other"),
])
def test_bad_mapping_or_flags_are_refused(conn, tmp_path, kw, expected):
    path = city_layer(conn, tmp_path)
    with pytest.raises(ImportRefused, match=expected), conn.begin_nested():
        import_into(conn, path, spec(**kw))
    assert count(conn) == 43


def test_code_map_file_problems_are_named(tmp_path):
    bad = tmp_path / "codes.csv"
    bad.write_text("old,new\n571,71\n571,72\n572\n")
    with pytest.raises(ImportRefused, match=r"row 3: old code '571' mapped twice; row 4"):
        read_code_map(bad)


def test_cli_refuses_the_second_layer_and_stores_nothing(cli_env, engine, tmp_path):  # noqa: F811
    with engine.connect() as c:
        path = city_layer(c, tmp_path)
    result = run("--lang", "en", "import", "boundaries", str(path), "--level", "stadtviertel",
                 "--city", HALLE, "--code-field", "VIERTEL_NR", "--name-field", "NAME")
    assert result.returncode == 2
    said = " ".join(result.stderr.split())
    assert "43 of 43 units overlap" in said and re.search(r"\d{3} [^;]+ lies \d+ % in \d{2} ", said)
    assert "Traceback" not in said
    with engine.connect() as c:
        assert count(c) == 43
