"""A real OGC API Features client (GDAL's OAPIF driver, shipped in pyogrio) reads every collection."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import httpx
import pyogrio
import pytest

from quarters.collections import COLLECTIONS

EXPECTED_MINIMUM = {"municipalities": 10_997, "counties": 401, "districts": 43,
                    "quarters": 2, "sites": 2, "measures": 30, "measures-points": 1,
                    "measures-areas": 20}


def test_gdal_lists_every_collection(live_server):
    layers = {row[0] for row in pyogrio.list_layers(f"OAPIF:{live_server}/api")}
    assert layers == set(COLLECTIONS)


@pytest.mark.parametrize("collection", ["districts", "quarters", "sites", "counties", "measures",
                                        "measures-points", "measures-areas"])
def test_gdal_reads_collection(live_server, collection):
    gdf = pyogrio.read_dataframe(f"OAPIF:{live_server}/api", layer=collection)
    assert len(gdf) >= EXPECTED_MINIMUM[collection]
    assert gdf.crs.to_epsg() == 25832  # GDAL asks for the advertised storage CRS (Part 2)
    assert gdf.geometry.is_valid.all()
    assert ("title" if collection.startswith("measures") else "name") in gdf.columns


def test_gdal_pages_through_all_municipalities(live_server):
    gdf = pyogrio.read_dataframe(f"OAPIF:{live_server}/api", layer="municipalities",
                                 columns=["ags", "name"])
    assert len(gdf) == 10_997
    assert gdf["ags"].is_unique


def test_gdal_bbox_filter_is_sent_to_the_server(live_server):
    from pyproj import Transformer

    to_utm = Transformer.from_crs(4326, 25832, always_xy=True)
    (x0, x1), (y0, y1) = to_utm.transform([12.0, 12.1], [50.85, 50.9])
    gdf = pyogrio.read_dataframe(f"OAPIF:{live_server}/api", layer="municipalities",
                                 bbox=(x0, y0, x1, y1))
    assert "Gera" in set(gdf["name"]) and len(gdf) < 30


# -- server-side filters: GDAL turns simple -where clauses into queryable parameters and
#    datetime when the OpenAPI definition declares them (issue 9) -------------------------------
ATTRIBUTE_FILTERS = {
    # collection: (where, property, value) – one feature each, except the measure kinds
    "municipalities": ("name = 'Gera'", "name", "Gera"),
    "counties": ("name = 'Gera'", "name", "Gera"),
    "districts": ("name = 'Nördliche Neustadt'", "name", "Nördliche Neustadt"),
    "quarters": ("slug = 'bildungsquartier-neustadt'", "slug", "bildungsquartier-neustadt"),
    "sites": ("slug = 'star-park'", "slug", "star-park"),
    "measures": ("status = 'geplant'", "status", "geplant"),
    "measures-points": ("status = 'geplant'", "status", "geplant"),
    "measures-lines": ("status = 'geplant'", "status", "geplant"),
    "measures-areas": ("status = 'geplant'", "status", "geplant"),
}
DATE_FILTERS = {  # collections with a temporal property: where, parameter GDAL must send
    "municipalities": "name = 'Gera' AND population_date >= '2019-01-01'",
    "counties": "name = 'Gera' AND population_date >= '2019-01-01'",
    "districts": "population_date >= '2020-12-31'",
    "measures": "start_date >= '2000-01-01'",
    "measures-areas": "start_date >= '2000-01-01'",
}


def _expected(live_server: str, collection: str, prop: str | None = None, value=None) -> set:
    """Ids by filtering the whole collection here, on the client (independent of the server's
    filter code); municipalities and counties are too big, their filter names one feature."""
    if collection in ("municipalities", "counties"):
        body = httpx.get(f"{live_server}/api/collections/{collection}/items",
                         params={"limit": 10_000, "name": value}).json()
        return {f["id"] for f in body["features"]}
    features = httpx.get(f"{live_server}/api/collections/{collection}/items",
                         params={"limit": 10_000}).json()["features"]
    return {f["id"] for f in features if prop is None or f["properties"][prop] == value}


def _dated(live_server: str, collection: str, since: str, name: str | None = None) -> set:
    params = {"limit": 10_000, **({"name": name} if name else {})}
    features = httpx.get(f"{live_server}/api/collections/{collection}/items",
                         params=params).json()["features"]
    out = set()
    for f in features:
        p = f["properties"]
        start = p.get("start_date") or p.get("population_date")
        end = p.get("end_date") if "end_date" in p else p.get("population_date")
        if (start or end) and (end is None or end >= since):
            out.add(f["id"])
    return out


def _item_fetches(debug: str, collection: str) -> list[str]:
    return re.findall(rf"Fetch\(([^)]*/collections/{re.escape(collection)}/items\?[^)]*)\)", debug)


@pytest.mark.parametrize("collection", list(ATTRIBUTE_FILTERS))
def test_pyogrio_filters_attributes_on_the_server(live_server, collection, capfd):
    where, prop, value = ATTRIBUTE_FILTERS[collection]
    pyogrio.set_gdal_config_options({"CPL_DEBUG": "ON"})
    try:
        gdf = pyogrio.read_dataframe(f"OAPIF:{live_server}/api", layer=collection, where=where)
    finally:
        pyogrio.set_gdal_config_options({"CPL_DEBUG": None})
    fetched = _item_fetches(capfd.readouterr().err, collection)
    expected = _expected(live_server, collection, prop, value)
    if expected:
        ids = gdf["id"]
        if ids.ndim == 2:  # the feature id and an "id" property
            ids = ids.iloc[:, -1]
        assert set(ids.astype(str)) == {str(i) for i in expected}
        assert any(f"{prop}=" in url for url in fetched), fetched  # sent, not filtered here
    else:
        assert len(gdf) == 0


@pytest.mark.parametrize("collection", list(DATE_FILTERS))
def test_pyogrio_sends_date_filters_as_datetime(live_server, collection, capfd):
    where = DATE_FILTERS[collection]
    pyogrio.set_gdal_config_options({"CPL_DEBUG": "ON"})
    try:
        gdf = pyogrio.read_dataframe(f"OAPIF:{live_server}/api", layer=collection, where=where)
    finally:
        pyogrio.set_gdal_config_options({"CPL_DEBUG": None})
    fetched = _item_fetches(capfd.readouterr().err, collection)
    assert any("datetime=" in url for url in fetched), fetched
    since = re.search(r"'(\d{4}-\d{2}-\d{2})'", where)[1]
    expected = _dated(live_server, collection, since, "Gera" if "'Gera'" in where else None)
    assert len(gdf) == len(expected) > 0


OGRINFO = shutil.which("ogrinfo")
needs_ogrinfo = pytest.mark.skipif(
    OGRINFO is None, reason="Debian's gdal-bin (GDAL 3.6, ogrinfo) is not installed: "
                            "run scripts/install-system.sh as root")


def _ogrinfo(live_server: str, collection: str, where: str) -> tuple[int, list[str]]:
    run = subprocess.run([OGRINFO, "-ro", "-q", "--debug", "on", f"OAPIF:{live_server}/api",
                          collection, "-where", where], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.count(f"OGRFeature({collection})"), _item_fetches(run.stderr, collection)


@needs_ogrinfo
@pytest.mark.parametrize("collection", list(ATTRIBUTE_FILTERS))
def test_ogrinfo_36_filters_attributes_on_the_server(live_server, collection):
    where, prop, value = ATTRIBUTE_FILTERS[collection]
    count, fetched = _ogrinfo(live_server, collection, where)
    expected = _expected(live_server, collection, prop, value)
    assert count == len(expected)
    if expected:
        assert any(f"{prop}=" in url for url in fetched), fetched


@needs_ogrinfo
@pytest.mark.parametrize("collection", list(DATE_FILTERS))
def test_ogrinfo_36_sends_date_filters_as_datetime(live_server, collection):
    where = DATE_FILTERS[collection]
    count, fetched = _ogrinfo(live_server, collection, where)
    assert any("datetime=" in url for url in fetched), fetched
    since = re.search(r"'(\d{4}-\d{2}-\d{2})'", where)[1]
    expected = _dated(live_server, collection, since, "Gera" if "'Gera'" in where else None)
    assert count == len(expected) > 0


@needs_ogrinfo
@pytest.mark.slow
def test_gdal_36_reads_all_municipalities_page_by_page(live_server, tmp_path):
    """GDAL 3.6 pages by 10: 1,100 requests for 10,997 municipalities, each exactly once.
    (How long it takes is a benchmark figure, bench/README.md, not a test: a busy machine
    would fail a time limit.)"""
    out = tmp_path / "municipalities.gpkg"
    t0 = time.perf_counter()
    run = subprocess.run([shutil.which("ogr2ogr"), "-f", "GPKG", str(out),
                          f"OAPIF:{live_server}/api", "municipalities"],
                         capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    assert run.returncode == 0, run.stderr[-2000:]
    print(f"GDAL 3.6 full read of municipalities: {elapsed:.1f} s")
    read = pyogrio.read_dataframe(out, layer="municipalities", read_geometry=False)
    assert len(read) == 10_997
    assert read["ags"].is_unique and read["ags"].notna().all()
