"""Boundary import: the loaded BKG data, reprojection, refusals, idempotency, replacement."""

from __future__ import annotations

import pytest
from shapely.geometry import mapping
from sqlalchemy import text

from geofiles import BOW_TIE, GERA_A, GERA_B, frame, write_geojson_raw, zip_shapefile
from quarters.errors import ImportRefused
from quarters.imports.boundaries import BoundarySpec, import_into

GERA = "16052000"


def count(conn, table: str, where: str = "TRUE") -> int:
    return conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()


def test_all_municipalities_and_counties_are_loaded(conn):
    assert count(conn, "municipalities") == 10_997
    assert count(conn, "counties") == 401


def test_project_cities_are_halle_and_gera(conn):
    rows = conn.execute(text("SELECT ags, name FROM municipalities WHERE project_city ORDER BY ags"))
    assert [tuple(r) for r in rows] == [("15002000", "Halle (Saale)"), ("16052000", "Gera")]


def test_halle_is_reprojected_to_the_right_place(conn):
    metres = conn.execute(text(
        "SELECT ST_Distance(ST_Centroid(geom), ST_Transform(ST_SetSRID("
        "ST_MakePoint(11.97, 51.48), 4326), 25832)) FROM municipalities WHERE ags = '15002000'"
    )).scalar_one()
    assert metres < 500
    area_km2 = conn.execute(text(
        "SELECT ST_Area(geom) / 1e6 FROM municipalities WHERE ags = '15002000'")).scalar_one()
    assert area_km2 == pytest.approx(135.03, rel=0.03)


@pytest.mark.parametrize("table", ["municipalities", "counties", "districts", "quarters", "sites"])
def test_every_geometry_is_valid_stored_in_25832_and_has_a_source(conn, table):
    assert count(conn, table) > 0
    assert count(conn, table, "NOT ST_IsValid(geom) OR ST_SRID(geom) <> 25832") == 0
    assert count(conn, table, "source_id IS NULL") == 0
    assert count(conn, table, "source_id NOT IN (SELECT id FROM sources)") == 0


def test_the_three_invalid_bkg_rings_were_repaired_without_losing_area(conn):
    rows = conn.execute(text(
        "SELECT ags, ST_Area(geom) FROM municipalities WHERE ags IN "
        "('09677452', '16071004', '16076039') ORDER BY ags")).all()
    assert [r[0] for r in rows] == ["09677452", "16071004", "16076039"]
    assert all(r[1] > 1e7 for r in rows)


def test_zipped_shapefile_in_another_crs_is_reprojected(conn, tmp_path):
    gdf = frame([{"code": "A", "name": "Süd A", "geometry": GERA_A},
                 {"code": "B", "name": "Süd B", "geometry": GERA_B}]).to_crs(3857)
    archive = zip_shapefile(gdf, tmp_path, "testviertel")
    spec = BoundarySpec(level="testviertel", city=GERA, code_field="code", name_field="name")
    summary = import_into(conn, archive, spec)
    assert (summary.read, summary.inserted, summary.updated) == (2, 2, 0)
    assert "3857" in summary.source_crs
    lon, lat = conn.execute(text(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_Centroid(geom), 4326) c "
        "FROM districts WHERE level = 'testviertel' AND code = 'A') x")).one()
    assert lon == pytest.approx(12.065, abs=1e-4) and lat == pytest.approx(50.865, abs=1e-4)
    assert count(conn, "districts", "level = 'testviertel' AND NOT ST_Within("
                 "geom, (SELECT ST_Buffer(geom, 100) FROM municipalities WHERE ags = '16052000'))") == 0


def test_reimport_updates_instead_of_duplicating(conn, tmp_path):
    path = tmp_path / "viertel.gpkg"
    frame([{"code": "A", "name": "A", "geometry": GERA_A}]).to_file(path)
    spec = BoundarySpec(level="testviertel", city=GERA, code_field="code", name_field="name")
    first = import_into(conn, path, spec)
    frame([{"code": "A", "name": "A neu", "geometry": GERA_A}]).to_file(path)
    second = import_into(conn, path, spec)
    assert (first.inserted, second.inserted, second.updated) == (1, 0, 1)
    assert count(conn, "districts", "level = 'testviertel'") == 1
    assert conn.execute(text("SELECT name FROM districts WHERE level = 'testviertel'")).scalar() == "A neu"


def test_broken_feature_refuses_the_whole_file_and_names_it(conn, tmp_path):
    before = count(conn, "districts")
    features = [
        {"type": "Feature", "properties": {"code": c, "name": c}, "geometry": mapping(g)}
        for c, g in (("A", GERA_A), ("X", BOW_TIE), ("B", GERA_B))
    ]
    path = write_geojson_raw(tmp_path / "kaputt.geojson", features)
    spec = BoundarySpec(level="testviertel", city=GERA, code_field="code", name_field="name")
    with pytest.raises(ImportRefused) as err:
        import_into(conn, path, spec)
    message = err.value.detail
    assert "kaputt.geojson" in message and "feature 1" in message and "(X)" in message
    assert "Self-intersection" in message and "nothing stored" in message
    assert count(conn, "districts") == before


def test_problems_found_while_copying_refuse_all_and_name_each(conn, tmp_path):
    """Geometries are checked chunk by chunk while the first chunks are already in the COPY:
    a bow tie in the second chunk and a point in the third refuse the whole file, both are
    named with their feature number and code, and nothing of the file (rows, source) stays;
    the caller's transaction is still usable."""
    import shapely

    from quarters.imports.boundaries import CHUNK

    n = 2 * CHUNK + 5
    bad = {CHUNK + 1: BOW_TIE, 2 * CHUNK + 2: shapely.Point(12.06, 50.86)}
    cell = shapely.affinity.scale(shapely.box(0, 0, 1, 1), 0.001, 0.001, origin=(0, 0))
    features = [{"type": "Feature", "properties": {"code": f"C{i:04d}", "name": f"Zelle {i}"},
                 "geometry": mapping(bad.get(i) or shapely.affinity.translate(
                     cell, 12.0 + (i % 40) * 0.001, 50.8 + (i // 40) * 0.001))}
                for i in range(n)]
    path = write_geojson_raw(tmp_path / "spaet_kaputt.geojson", features)
    spec = BoundarySpec(level="chunkviertel", city=GERA, code_field="code", name_field="name")
    sources = count(conn, "sources")
    with pytest.raises(ImportRefused) as err:
        import_into(conn, path, spec)
    message = err.value.detail
    assert f"feature {CHUNK + 1} (C{CHUNK + 1:04d}): invalid geometry: Self-intersection" in message
    assert f"feature {2 * CHUNK + 2} (C{2 * CHUNK + 2:04d}): geometry type Point" in message
    assert "nothing stored" in message
    assert [e["feature"] for e in err.value.errors] == [CHUNK + 1, 2 * CHUNK + 2]
    assert count(conn, "districts", "level = 'chunkviertel'") == 0
    assert count(conn, "sources") == sources
    # with --repair the bow tie is repaired (the point still refuses the file)
    with pytest.raises(ImportRefused) as err:
        import_into(conn, path, BoundarySpec(level="chunkviertel", city=GERA, code_field="code",
                                             name_field="name", repair=True))
    assert [e["feature"] for e in err.value.errors] == [2 * CHUNK + 2]
    assert count(conn, "districts", "level = 'chunkviertel'") == 0


@pytest.mark.parametrize("repair", [False, True])
def test_lines_and_collections_are_no_areas_with_or_without_repair(conn, tmp_path, repair):
    """A MultiLineString (valid or not) and a GeometryCollection are refused as not an area,
    named with feature and code, also with ``--repair`` (which only repairs areas)."""
    import shapely

    lines = {1: shapely.MultiLineString([[(12.06, 50.86), (12.07, 50.87)]]),
             2: shapely.from_wkt("MULTILINESTRING ((12.06 50.86, 12.06 50.86))"),  # invalid
             3: shapely.GeometryCollection([shapely.Point(12.06, 50.86)])}
    features = [{"type": "Feature", "properties": {"code": f"L{i}", "name": f"Linie {i}"},
                 "geometry": mapping(lines.get(i, GERA_A if i % 2 else GERA_B))}
                for i in range(5)]
    path = write_geojson_raw(tmp_path / "linien.geojson", features)
    spec = BoundarySpec(level="linienviertel", city=GERA, code_field="code", name_field="name",
                        repair=repair)
    with pytest.raises(ImportRefused) as err:
        import_into(conn, path, spec)
    assert [(e["feature"], e["code"]) for e in err.value.errors] == [
        (1, "boundaries.not_an_area"), (2, "boundaries.not_an_area"),
        (3, "boundaries.not_an_area")]
    assert "feature 1 (L1): geometry type MultiLineString" in err.value.detail
    assert count(conn, "districts", "level = 'linienviertel'") == 0


def test_reprojection_matches_geopandas_to_crs(tmp_path):
    """The importer's reprojection (ragged arrays; geopandas' path for 3-D input) gives the
    coordinates of GeoDataFrame.to_crs, as MultiPolygons."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from quarters.imports.boundaries import reprojector
    from quarters.settings import STORAGE_SRID

    polys = [GERA_A, GERA_B, BOW_TIE]
    cases = {"polygons": polys,
             "mixed": [GERA_A, shapely.MultiPolygon([GERA_B, BOW_TIE])],
             "3-D": [shapely.force_3d(GERA_A), GERA_B]}
    for label, geoms in cases.items():
        source = gpd.GeoSeries(geoms, crs=4326)
        got = reprojector(source.crs)(np.asarray(source.values, dtype=object))
        want = source.to_crs(STORAGE_SRID).values
        assert set(shapely.get_type_id(got)) == {6}, label
        assert np.array_equal(shapely.get_coordinates(got), shapely.get_coordinates(want)), label


def test_file_without_crs_is_refused(conn, tmp_path):
    shp = tmp_path / "nocrs.shp"
    frame([{"code": "A", "name": "A", "geometry": GERA_A}], crs=None).to_file(shp)
    (tmp_path / "nocrs.prj").unlink(missing_ok=True)
    spec = BoundarySpec(level="testviertel", city=GERA, code_field="code", name_field="name")
    with pytest.raises(ImportRefused, match="nocrs.shp.*no coordinate reference system"):
        import_into(conn, shp, spec)


def test_missing_field_is_refused_naming_the_field(conn, tmp_path):
    path = tmp_path / "felder.geojson"
    frame([{"kennung": "A", "name": "A", "geometry": GERA_A}]).to_file(path)
    spec = BoundarySpec(level="testviertel", city=GERA, code_field="code", name_field="name")
    with pytest.raises(ImportRefused, match="missing field.*code.*has: kennung"):
        import_into(conn, path, spec)


@pytest.mark.parametrize("content,suffix,expected", [
    ("not json at all", ".geojson", "not a GeoJSON"),
    ("a,b\n1,2\n", ".txt", "unsupported file type"),
    ("PK\x03\x04broken", ".zip", "not a readable zip"),
])
def test_unreadable_files_are_refused(conn, tmp_path, content, suffix, expected):
    path = tmp_path / f"datei{suffix}"
    path.write_text(content)
    spec = BoundarySpec(level="testviertel", city=GERA, code_field="code", name_field="name")
    with pytest.raises(ImportRefused, match=expected):
        import_into(conn, path, spec)


def test_duplicate_keys_are_refused(conn, tmp_path):
    path = tmp_path / "doppelt.geojson"
    frame([{"code": "A", "name": "A", "geometry": GERA_A},
           {"code": "A", "name": "B", "geometry": GERA_B}]).to_file(path)
    spec = BoundarySpec(level="testviertel", city=GERA, code_field="code", name_field="name")
    with pytest.raises(ImportRefused, match="duplicate code 'A'"):
        import_into(conn, path, spec)


def test_unknown_city_is_refused(conn, tmp_path):
    path = tmp_path / "v.geojson"
    frame([{"code": "A", "name": "A", "geometry": GERA_A}]).to_file(path)
    spec = BoundarySpec(level="testviertel", city="99999999", code_field="code", name_field="name")
    with pytest.raises(ImportRefused, match="city 99999999 is not loaded"):
        import_into(conn, path, spec)


def test_official_stadtviertel_layer_replaces_the_approximation(conn, tmp_path):
    """An import of the city's layer (here: shrunken cells standing in) replaces it, no code change."""
    import geopandas as gpd

    official = gpd.read_postgis(text(
        "SELECT code AS viertel_nr, name AS viertel, ST_Buffer(geom, -5) AS geom FROM districts "
        "WHERE city_ags = '15002000' AND level = 'stadtviertel'"), conn, geom_col="geom")
    path = tmp_path / "stadtviertel_amtlich.gpkg"
    official.to_file(path)
    spec = BoundarySpec(level="stadtviertel", city="15002000", code_field="viertel_nr",
                        name_field="viertel", replace=True)
    summary = import_into(conn, path, spec, source_name="Stadt Halle (Saale), Stadtviertel",
                          licence="dl-de/by-2-0", attribution="© Stadt Halle (Saale)")
    assert (summary.inserted, summary.updated, summary.deleted) == (0, 43, 0)
    where = "city_ags = '15002000' AND level = 'stadtviertel'"
    assert count(conn, "districts", where) == 43
    assert count(conn, "districts", where + " AND approximate") == 0
    assert count(conn, "districts", where + " AND population IS NULL") == 0  # figures kept
    attribution = conn.execute(text(
        f"SELECT DISTINCT s.attribution FROM districts d JOIN sources s ON s.id = d.source_id "
        f"WHERE {where}")).scalar_one()
    assert attribution == "© Stadt Halle (Saale)"


def test_first_load_and_reimport_store_text_and_attributes_exactly(conn, tmp_path):
    """A first load COPYs straight into the table, a re-import goes through the staging table:
    both keep tabs, newlines, backslashes, quotes, umlauts, numbers, dates and missing values
    exactly, over more than one COPY chunk."""
    import shapely

    from quarters.imports.boundaries import CHUNK

    odd = "Tab\there, new\nline, back\\slash \\N, \"quoted\", CR\r, Ümlaut ß"
    cells = shapely.box(0, 0, 1, 1)
    n = CHUNK + 3
    features = [{"type": "Feature", "geometry": mapping(shapely.affinity.translate(
                 shapely.affinity.scale(cells, 0.001, 0.001), 12.05 + (i % 30) * 0.001,
                 50.85 + (i // 30) * 0.001)),
                 "properties": {"code": f"T{i:04d}", "name": f"{odd} {i}", "note": odd,
                                "count": i, "share": i / 7, "empty": None,
                                "when": "2021-09-13"}} for i in range(n)]
    path = write_geojson_raw(tmp_path / "odd.geojson", features)
    spec = BoundarySpec(level="oddviertel", city=GERA, code_field="code", name_field="name")

    def stored() -> dict[str, tuple]:
        rows = conn.execute(text(
            "SELECT code, name, attributes FROM districts WHERE level = 'oddviertel'")).all()
        return {r[0]: (r[1], r[2]) for r in rows}

    def check(rows: dict[str, tuple]) -> None:
        assert len(rows) == n
        for i in (0, CHUNK, n - 1):
            name, attrs = rows[f"T{i:04d}"]
            assert name == f"{odd} {i}"
            # GDAL reads the ISO date as a date; it is stored as Timestamp.isoformat() writes it
            assert attrs == {"note": odd, "count": i, "share": pytest.approx(i / 7),
                             "empty": None, "when": "2021-09-13T00:00:00"}

    ticks: list[tuple[int, int]] = []
    first = import_into(conn, path, spec, progress=lambda d, t: ticks.append((d, t)))
    assert (first.inserted, first.updated) == (n, 0)
    assert ticks == [(CHUNK, n), (n, n)]
    check(stored())
    again = import_into(conn, path, spec)
    assert (again.inserted, again.updated) == (0, n)
    check(stored())
