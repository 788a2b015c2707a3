"""The boundary importer's streamed write path (issue 10 item 6, sessions 5 and 6): the
layer's CRS and fields are checked from its info, its features (attributes and geometries)
arrive in batches from a reader thread and each is checked and COPYed (binary, plain WKB,
jsonb's binary input) while the next one is read. The stored rows are those of the previous
write path (hex EWKB and JSON text in COPY's text format), byte for byte; problems in the last
batch still refuse the whole file, naming every problem, and store nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import orjson
import pytest
import shapely
from shapely.geometry import mapping
from sqlalchemy import text

from geofiles import BOW_TIE, write_geojson_raw
from quarters.errors import ImportRefused
from quarters.imports import boundaries
from quarters.imports.boundaries import CHUNK, BoundarySpec, import_into
from quarters.imports.data_load import BKG_DIR
from quarters.safefiles import Limits
from quarters.settings import STORAGE_SRID

GERA = "16052000"
N = 2 * CHUNK + 100  # three batches, the last one short
ODD = "Tab\there, back\\slash, new\nline, Umlaut äöü"


def count(conn, table: str, where: str = "TRUE") -> int:  # noqa: ANN001
    return conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()


def _outline_expression(conn, table: str) -> str:  # noqa: ANN001
    """The generated column's expression of ``table.geom_wgs84`` as PostgreSQL holds it."""
    return conn.execute(text(
        "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a"
        " ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
        " WHERE d.adrelid = CAST(:t AS regclass) AND a.attname = 'geom_wgs84'"),
        {"t": table}).scalar_one()


def _old_path(conn, path, spec: BoundarySpec, table: str):  # noqa: ANN001, ANN202
    """The file prepared as a whole and COPYed as session 4 did it (text format, JSON text,
    ``SRID=25832;`` + hex EWKB) into a temp table ``old_path`` whose outline is generated as
    in ``table``; returns the number of rows."""
    gdf, summary = boundaries.load_boundaries(path, spec)
    cols = boundaries.Columns.of(gdf, spec, boundaries.multi)
    keys, option = cols.keys, orjson.OPT_SERIALIZE_NUMPY
    attrs = [orjson.dumps(dict(zip(keys, row, strict=True)), option=option,
                          default=boundaries._json_default).decode()
             for row in zip(*cols.values, strict=True)] if keys else ["{}"] * len(gdf)
    ewkb = [f"SRID={STORAGE_SRID};{w.hex()}"
            for w in shapely.to_wkb(np.asarray(gdf.geometry.array, dtype=object))]
    ars, bez = cols._text_of("ARS", 0, len(gdf)), cols._text_of("BEZ", 0, len(gdf))
    conn.execute(text(
        "CREATE TEMP TABLE old_path (code text, ars text, name text, bez text, parent text,"
        f" attributes jsonb, geom geometry(MultiPolygon, {STORAGE_SRID}),"
        f" geom_wgs84 geometry GENERATED ALWAYS AS ({_outline_expression(conn, table)}) STORED)"
        " ON COMMIT DROP"))
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(
            "COPY old_path (code, ars, name, bez, parent, attributes, geom) FROM STDIN") as copy:
        for row in zip(cols.codes, ars, cols.names, bez, cols.parents, attrs, ewkb, strict=True):
            copy.write_row(row)
    return len(gdf)


def _differing(conn, table: str, key: str, where: str = "TRUE") -> tuple[int, int]:  # noqa: ANN001
    """(rows compared, rows whose geometry, outline, attributes or names differ by a byte)."""
    extra = ("OR t.ars IS DISTINCT FROM o.ars OR t.bez IS DISTINCT FROM o.bez"
             if table != "districts" else "OR t.parent_name IS DISTINCT FROM o.parent")
    return tuple(conn.execute(text(
        "SELECT count(*), count(*) FILTER (WHERE ST_AsEWKB(t.geom) <> ST_AsEWKB(o.geom)"
        " OR ST_AsEWKB(t.geom_wgs84) <> ST_AsEWKB(o.geom_wgs84)"
        " OR t.attributes::text <> o.attributes::text OR t.name <> o.name " + extra + ")"
        f" FROM {table} t JOIN old_path o ON o.code = t.{key} WHERE {where}")).one())


def _cells(n: int, bad: dict[int, object] | None = None, same: dict[int, int] | None = None,
           ) -> list[dict]:
    """``n`` small squares in Gera with attributes of every kind (a tab, backslash, newline
    and umlauts in a text; an integer that is missing only in the last batch; dates; floats);
    ``bad``: geometries replacing some; ``same``: feature → feature whose code it repeats."""
    bad, same = bad or {}, same or {}
    cell = shapely.affinity.scale(shapely.box(0, 0, 1, 1), 0.001, 0.001, origin=(0, 0))
    return [{"type": "Feature",
             "properties": {"code": f"C{same.get(i, i):04d}", "name": f"{ODD} {i}",
                            "bezirk": None if i % 3 else f"Bezirk {i % 7}",
                            "count": None if i == n - 1 else i, "share": i / 7,
                            "note": ODD if i % 2 else None,
                            "when": (dt.date(2021, 9, 13) + dt.timedelta(days=i)).isoformat()},
             "geometry": mapping(bad.get(i) or shapely.affinity.translate(
                 cell, 12.0 + (i % 40) * 0.001, 50.8 + (i // 40) * 0.001))}
            for i in range(n)]


def _spec(**kw) -> BoundarySpec:  # noqa: ANN003
    return BoundarySpec(level="streamviertel", city=GERA, code_field="code", name_field="name",
                        parent_field="bezirk", **kw)


@pytest.fixture(autouse=True)
def batches_of_one_chunk(monkeypatch, request) -> None:  # noqa: ANN001
    """The stream reads batches of one COPY chunk here (it reads several by default, as the
    municipalities test does), so that a problem can sit in a later batch of the file."""
    if "municipalities" not in request.node.name:
        monkeypatch.setattr(boundaries, "STREAM_BATCH", CHUNK)


@pytest.fixture
def read_whole(monkeypatch):  # noqa: ANN201
    """The files the importer read whole (``load_boundaries``) instead of streaming them."""
    names: list[str] = []
    load = boundaries.load_boundaries

    def counted(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        names.append(path.name)
        return load(path, *args, **kwargs)

    monkeypatch.setattr(boundaries, "load_boundaries", counted)
    return names


@pytest.fixture
def copies(monkeypatch):  # noqa: ANN201
    """The tables the importer COPYed into (the target itself on a first load, else _stage)."""
    tables: list[str] = []
    copy = boundaries._copy

    def counted(conn, sql, *args):  # noqa: ANN001, ANN002, ANN202
        tables.append(sql.split()[1])
        return copy(conn, sql, *args)

    monkeypatch.setattr(boundaries, "_copy", counted)
    return tables


def test_streamed_first_load_stores_the_rows_of_the_previous_write_path(conn, tmp_path,
                                                                      read_whole, copies):
    """A first load of districts in three batches (straight COPY into the table), streamed:
    every row equals, byte for byte, what the session-4 text COPY stored (geometry, generated
    outline, attribute JSON, names, parent); an integer missing only in the last batch stays
    an integer in every batch."""
    path = write_geojson_raw(tmp_path / "viertel.geojson", _cells(N))
    ticks: list[tuple[int, int]] = []
    summary = import_into(conn, path, _spec(), progress=lambda d, t: ticks.append((d, t)))
    assert read_whole == [] and copies == ["districts"]  # straight into the table
    assert (summary.inserted, summary.updated) == (N, 0)
    assert ticks == [(CHUNK, N), (2 * CHUNK, N), (N, N)]
    assert _old_path(conn, path, _spec(), "districts") == N
    assert _differing(conn, "districts", "code", "level = 'streamviertel'") == (N, 0)
    stored = conn.execute(text(
        "SELECT attributes FROM districts WHERE level = 'streamviertel' AND code = :c"),
        {"c": f"C{N - 1:04d}"}).scalar_one()
    assert stored["note"] == ODD and stored["count"] is None
    counts = conn.execute(text(
        "SELECT jsonb_typeof(attributes->'count'), attributes->>'count' FROM districts"
        " WHERE level = 'streamviertel' AND code IN ('C0005', 'C1005')")).all()
    assert sorted(counts) == [("number", "1005"), ("number", "5")]


def test_municipalities_stored_as_by_the_previous_write_path(conn, settings, read_whole,
                                                            copies):
    """The 10,997 municipalities: as loaded (whole file, binary COPY) and again after a
    streamed re-import (staging table + upsert), each row is what the session-4 write path
    stored, byte for byte."""
    path = settings.data_dir / BKG_DIR / "VG5000_GEM.shp"
    spec = BoundarySpec(level="gemeinde", repair=True)
    n = _old_path(conn, path, spec, "municipalities")
    assert n > 10_000
    assert _differing(conn, "municipalities", "ags") == (n, 0)
    read_whole.clear()  # _old_path read it whole
    summary = import_into(conn, path, spec)
    assert read_whole == [] and copies == ["_stage"]  # streamed, then upserted
    assert (summary.inserted, summary.updated, summary.read) == (0, n, n)
    assert set(summary.phases) >= {"attributes", "first_chunk", "last_chunk", "written"}
    assert _differing(conn, "municipalities", "ags") == (n, 0)


def test_duplicate_key_in_the_last_batch_names_both_rows_and_stores_nothing(conn, tmp_path,
                                                                          read_whole):
    """A code of the last batch repeating one of the first stops the stream (the first
    batches are already in the COPY); the file is read whole, the refusal names both
    features, and nothing is stored."""
    last = N - 2
    path = write_geojson_raw(tmp_path / "doppelt_spaet.geojson", _cells(N, same={last: 3}))
    sources = count(conn, "sources")
    with pytest.raises(ImportRefused) as err:
        import_into(conn, path, _spec())
    assert "duplicate code 'C0003'" in err.value.detail
    [problem] = err.value.errors
    assert problem["code"] == "boundaries.duplicate_code" and problem["features"] == [3, last]
    assert read_whole == ["doppelt_spaet.geojson"]
    assert count(conn, "districts", "level = 'streamviertel'") == 0
    assert count(conn, "sources") == sources


def test_problems_in_the_first_and_the_last_batch_are_both_named(conn, tmp_path, read_whole):
    """A bow tie in the first batch and a point in the last (short) one: the COPY of the
    first batches is cancelled, both are named, nothing of the file stays."""
    bad = {2: BOW_TIE, N - 1: shapely.Point(12.06, 50.86)}
    path = write_geojson_raw(tmp_path / "kaputt.geojson", _cells(N, bad=bad))
    sources = count(conn, "sources")
    with pytest.raises(ImportRefused) as err:
        import_into(conn, path, _spec())
    assert [e["feature"] for e in err.value.errors] == [2, N - 1]
    assert read_whole == []  # named by the stream itself
    assert f"feature {N - 1} (C{N - 1:04d}): geometry type Point" in err.value.detail
    assert count(conn, "districts", "level = 'streamviertel'") == 0
    assert count(conn, "sources") == sources
    # the caller's transaction goes on: the same file without the point is stored
    path = write_geojson_raw(tmp_path / "heil.geojson", _cells(N))
    assert import_into(conn, path, _spec()).inserted == N


def test_vertex_cap_passed_by_a_later_batch_refuses_and_stores_nothing(conn, tmp_path,
                                                                      monkeypatch, read_whole,
                                                                      copies):
    """The vertex cap is applied as the batches arrive: passed only by the second batch, it
    refuses the file after the first batch went into the COPY; nothing is stored."""
    capped = dataclasses.replace(Limits.of(), max_vertices=5 * CHUNK + 10)
    monkeypatch.setattr(Limits, "of", classmethod(lambda cls, settings=None: capped))
    path = write_geojson_raw(tmp_path / "viele.geojson", _cells(N))
    sources = count(conn, "sources")
    with pytest.raises(ImportRefused) as err:
        import_into(conn, path, _spec())
    assert err.value.code == "file.too_many_vertices"
    assert read_whole == [] and copies == ["districts"]  # refused while the COPY ran
    assert count(conn, "districts", "level = 'streamviertel'") == 0
    assert count(conn, "sources") == sources


def test_zipped_shapefile_streams_from_its_unpacked_copy(conn, tmp_path, read_whole):
    """A zipped shapefile is unpacked into the scratch folder, which stays until the last
    batch is read; the summary names the zip."""
    import geopandas as gpd

    from geofiles import zip_shapefile

    gdf = gpd.GeoDataFrame.from_features(_cells(N), crs=4326)[["code", "name", "geometry"]]
    archive = zip_shapefile(gdf, tmp_path, "gepackt")
    summary = import_into(conn, archive, BoundarySpec(level="streamviertel", city=GERA,
                                                      code_field="code", name_field="name"))
    assert summary.inserted == N and summary.path.endswith("gepackt.zip")
    assert read_whole == []
    assert count(conn, "districts", "level = 'streamviertel'") == N


# -- what the stream leaves to the whole-file reader ---------------------------------------------
# Refused a little way into the stream, or not streamed at all, the file is read whole, so that
# the answer is the one of the whole-file path (every problem named, in the file's order).
SKEWED = shapely.Polygon([(10, 50), (14, 50), (14, 50.5), (10, 50.5)],
                         [[(12, 50.0001), (12.1, 50.2), (11.9, 50.2)]])  # valid in 4326 only


def test_a_reprojection_problem_first_does_not_hide_a_later_duplicate(conn, tmp_path,
                                                                     read_whole):
    """The first feature turns invalid once projected (raised at once while streaming), a
    code of the last batch repeats another: the refusal is the whole file's, naming the
    duplicate."""
    assert SKEWED.is_valid and not boundaries.reprojector(4326)(np.array([SKEWED]))[0].is_valid
    path = write_geojson_raw(tmp_path / "schief.geojson",
                             _cells(N, bad={0: SKEWED}, same={N - 2: 3}))
    with pytest.raises(ImportRefused) as err:
        import_into(conn, path, _spec())
    assert [e["code"] for e in err.value.errors] == ["boundaries.duplicate_code"]
    assert read_whole == ["schief.geojson"]
    assert count(conn, "districts", "level = 'streamviertel'") == 0


def test_a_city_not_loaded_is_named_after_the_files_own_problems(conn, tmp_path):
    path = write_geojson_raw(tmp_path / "fremd.geojson", _cells(N, same={N - 2: 3}))
    with pytest.raises(ImportRefused) as err:
        import_into(conn, path, dataclasses.replace(_spec(), city="99999999"))
    assert err.value.code == "boundaries.refused"
    with pytest.raises(ImportRefused) as err:  # a sound file: then the city
        import_into(conn, write_geojson_raw(tmp_path / "heil.geojson", _cells(N)),
                    dataclasses.replace(_spec(), city="99999999"))
    assert err.value.code == "boundaries.city_not_loaded"


def test_a_stream_that_ends_early_is_read_whole_and_stored(conn, tmp_path, read_whole,
                                                           monkeypatch):
    """A layer whose features differ from its stated count (here: the count says one more)
    stops the stream; the whole-file read stores what the file holds."""
    from quarters.safefiles import FeatureStream

    opened = FeatureStream.open

    def one_more(self):  # noqa: ANN001, ANN202
        info = opened(self)
        self.expected += 1
        return info

    monkeypatch.setattr(FeatureStream, "open", one_more)
    path = write_geojson_raw(tmp_path / "kurz.geojson", _cells(N))
    assert import_into(conn, path, _spec()).inserted == N
    assert read_whole == ["kurz.geojson"]


def test_a_datetime_field_is_read_whole(conn, tmp_path, read_whole):
    """Date-times (and other fields the stream would not give exactly as the whole-file
    reader) send the file the whole-file way from the start."""
    cells = _cells(N)
    for i, cell in enumerate(cells):
        cell["properties"]["seit"] = f"2021-09-13T10:{i % 60:02d}:00"
    path = write_geojson_raw(tmp_path / "zeiten.geojson", cells)
    assert import_into(conn, path, _spec()).inserted == N
    assert read_whole == ["zeiten.geojson"]


def test_the_reader_stays_a_few_batches_ahead_and_close_drops_them(tmp_path):
    """The reader waits for room after STREAM_AHEAD batches (a slow database does not pull the
    whole file into memory); close stops it and drops what it had read."""
    import time

    from quarters.safefiles import STREAM_AHEAD, FeatureStream

    path = write_geojson_raw(tmp_path / "viele.geojson", _cells(400))
    stream = FeatureStream(path, path.name, "geojson", Limits.of(), batch=10)
    stream.open()
    deadline = time.monotonic() + 10
    while stream._queue.qsize() < STREAM_AHEAD and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # time enough to read far more, were there room
    assert stream._queue.qsize() == STREAM_AHEAD
    stream.close()
    assert not stream._thread.is_alive() and stream._queue.empty()


def test_a_latin1_shapefile_without_cpg_is_read_by_the_row_reader(conn, tmp_path, read_whole):
    """A shapefile in Latin-1 with neither a .cpg nor a code page byte: GDAL's Arrow stream
    passes its bytes through (not UTF-8), so it is read whole by the row reader, which
    decodes them; the umlauts are stored as written (it was a 500 or "unreadable")."""
    import geopandas as gpd

    names = ["Gera Süd", "Ölmühle", "Straße"]
    gdf = gpd.GeoDataFrame({"code": ["L1", "L2", "L3"], "name": names}, crs=4326, geometry=[
        shapely.box(12.0 + i * 0.01, 50.8, 12.005 + i * 0.01, 50.805) for i in range(3)])
    gdf.to_file(tmp_path / "latin1.shp", encoding="ISO-8859-1")
    (tmp_path / "latin1.cpg").unlink(missing_ok=True)
    dbf = bytearray((tmp_path / "latin1.dbf").read_bytes())
    dbf[29] = 0  # no code page (language driver id)
    (tmp_path / "latin1.dbf").write_bytes(bytes(dbf))
    spec = BoundarySpec(level="streamviertel", city=GERA, code_field="code", name_field="name")
    assert import_into(conn, tmp_path / "latin1.shp", spec).inserted == 3
    assert read_whole == ["latin1.shp"]
    assert conn.execute(text("SELECT array_agg(name ORDER BY code) FROM districts"
                             " WHERE level = 'streamviertel'")).scalar_one() == names


def test_codes_that_differ_only_by_spaces_are_one_code(conn, tmp_path):
    """Codes are stored trimmed, so " C0003" repeats "C0003": refused as a duplicate naming
    both features (it was the database's unique violation, a 500)."""
    cells = _cells(N)
    cells[N - 2]["properties"]["code"] = " C0003 "
    path = write_geojson_raw(tmp_path / "leerzeichen.geojson", cells)
    with pytest.raises(ImportRefused) as err:
        import_into(conn, path, _spec())
    [problem] = err.value.errors
    assert problem["code"] == "boundaries.duplicate_code" and problem["features"] == [3, N - 2]
    assert count(conn, "districts", "level = 'streamviertel'") == 0
