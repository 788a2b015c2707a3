"""A real OGC API Features client (GDAL's OAPIF driver, shipped in pyogrio) reads every collection."""

from __future__ import annotations

import pyogrio
import pytest

from quarters.collections import COLLECTIONS

EXPECTED_MINIMUM = {"municipalities": 10_997, "counties": 401, "districts": 43,
                    "quarters": 2, "sites": 2, "measures": 30}


def test_gdal_lists_every_collection(live_server):
    layers = {row[0] for row in pyogrio.list_layers(f"OAPIF:{live_server}/api")}
    assert layers == set(COLLECTIONS)


@pytest.mark.parametrize("collection", ["districts", "quarters", "sites", "counties", "measures"])
def test_gdal_reads_collection(live_server, collection):
    gdf = pyogrio.read_dataframe(f"OAPIF:{live_server}/api", layer=collection)
    assert len(gdf) >= EXPECTED_MINIMUM[collection]
    assert gdf.crs.to_epsg() == 25832  # GDAL asks for the advertised storage CRS (Part 2)
    assert gdf.geometry.is_valid.all()
    assert ("title" if collection == "measures" else "name") in gdf.columns


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
