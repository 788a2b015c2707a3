"""Pure tests (no database) of the authored pilot quarters/sites and approximate_districts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, shape

from quarters.approximate import approximate_districts

REPO = Path(__file__).resolve().parents[1]
GEO = REPO / "data" / "geo"
DATA_DIR = Path(
    os.environ.get("QUARTERS_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
BOUNDARY_FILE = DATA_DIR / "raw" / "bkg-vg5000-2021" / "halle_gera_gemeinde_vg5000_wgs84.geojson"
FACTS_FILE = DATA_DIR / "facts" / "halle_stadtviertel.csv"
HALLE_HBF = Point(11.986667, 51.478056)
S_BAHN_NEUSTADT = Point(11.920611, 51.480444)
METRIC = 25832
# Honest bound for the median |cell area / stated area - 1|; measured about 0.3 %.
MEDIAN_DEVIATION_LIMIT = 0.02


def _features(name: str) -> list[dict]:
    return json.loads((GEO / name).read_text(encoding="utf-8"))["features"]


def _by_slug(name: str) -> dict[str, dict]:
    return {f["properties"]["slug"]: f for f in _features(name)}


def _metric(geom) -> shapely.Geometry:
    return gpd.GeoSeries([geom], crs=4326).to_crs(METRIC).iloc[0]


@pytest.fixture(scope="module")
def halle_wgs84():
    gdf = gpd.read_file(BOUNDARY_FILE)
    return gdf.loc[gdf["AGS"] == "15002000"].geometry.iloc[0]


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    gdf = gpd.read_file(BOUNDARY_FILE)
    boundary = gdf.loc[gdf["AGS"] == "15002000"].to_crs(METRIC).geometry.iloc[0]
    facts = pd.read_csv(FACTS_FILE, dtype=str)
    result = approximate_districts(facts, boundary)
    result.attrs["boundary"] = boundary
    return result


# --- authored pilot quarters and sites ---------------------------------------------------

@pytest.mark.parametrize("name", ["pilot_quarters.geojson", "sites.geojson"])
def test_authored_features_are_valid_and_labelled(name):
    features = _features(name)
    assert len(features) == 2
    for feature in features:
        props = feature["properties"]
        geom = shape(feature["geometry"])
        assert geom.geom_type == "Polygon" and geom.is_valid and not geom.is_empty
        assert geom.exterior.is_ccw
        for x, y in geom.exterior.coords:
            assert -180 <= x <= 180 and -90 <= y <= 90
            assert round(x, 6) == x and round(y, 6) == y
        assert props["approximate"] is True
        assert props["method"] and "not an official boundary" in props["method"]
        assert props["sources"] and all(isinstance(s, str) and s for s in props["sources"])
        assert props["city_ags"] == "15002000"
        assert props["licence"] and props["description"] and props["name_en"]
        stated = props["stated_area_ha"]
        if stated is not None:
            area_ha = _metric(geom).area / 1e4
            assert abs(area_ha / stated - 1) < 0.25, (props["slug"], area_ha, stated)
            assert props["area_source"]


def test_quarter_and_site_slugs():
    quarters = _by_slug("pilot_quarters.geojson")
    sites = _by_slug("sites.geojson")
    assert set(quarters) == {"wirtschaftsquartier-hallescher-osten", "bildungsquartier-neustadt"}
    assert set(sites) == {"raw-gelaende", "star-park"}
    assert quarters["wirtschaftsquartier-hallescher-osten"]["properties"]["stated_area_ha"] is None
    assert quarters["bildungsquartier-neustadt"]["properties"]["stated_area_ha"] == 985.5
    for site in sites.values():
        assert site["properties"]["quarter_slug"] == "wirtschaftsquartier-hallescher-osten"


def test_sites_lie_inside_the_wirtschaftsquartier():
    quarter = shape(_by_slug("pilot_quarters.geojson")["wirtschaftsquartier-hallescher-osten"]
                    ["geometry"])
    for site in _by_slug("sites.geojson").values():
        assert quarter.contains(shape(site["geometry"])), site["properties"]["slug"]


def test_star_park_crosses_the_city_boundary(halle_wgs84):
    star = _metric(shape(_by_slug("sites.geojson")["star-park"]["geometry"]))
    halle = _metric(halle_wgs84)
    inside = star.intersection(halle).area
    assert 0.05 * star.area < inside < 0.95 * star.area


def test_raw_gelaende_is_south_east_of_and_near_the_hauptbahnhof():
    raw = shape(_by_slug("sites.geojson")["raw-gelaende"]["geometry"])
    centre = raw.centroid
    assert centre.x > HALLE_HBF.x and centre.y < HALLE_HBF.y
    assert _metric(raw).distance(_metric(HALLE_HBF)) < 1500


def test_bildungsquartier_contains_the_s_bahn_station():
    quarter = shape(_by_slug("pilot_quarters.geojson")["bildungsquartier-neustadt"]["geometry"])
    assert quarter.contains(S_BAHN_NEUSTADT)


# --- approximate_districts ---------------------------------------------------------------

def test_districts_shape_and_columns(districts):
    assert len(districts) == 43
    assert districts.crs.to_epsg() == METRIC
    for column in ["code", "code3", "name", "stadtteil", "stadtbezirk_nr", "stadtbezirk",
                   "area_ha_stated", "population", "population_date", "approximate",
                   "centre_method", "area_ha_cell", "area_deviation", "source", "licence",
                   "confidence"]:
        assert column in districts.columns
    assert districts["code"].iloc[0] == "1 01"
    assert districts["approximate"].all()
    assert all(g.geom_type == "MultiPolygon" and g.is_valid and not g.is_empty
               for g in districts.geometry)
    assert districts["code"].is_unique


def test_districts_tile_the_boundary(districts):
    boundary = districts.attrs["boundary"]
    union = shapely.union_all(list(districts.geometry))
    assert union.symmetric_difference(boundary).area < 0.005 * boundary.area
    geoms = list(districts.geometry)
    tree = shapely.STRtree(geoms)
    for i, j in zip(*tree.query(geoms, predicate="intersects"), strict=True):
        if i < j:
            assert geoms[i].intersection(geoms[j]).area < 1.0, (i, j)


def test_cells_contain_their_facts_centres(districts):
    facts = districts[districts["centre_method"] == "facts"]
    assert len(facts) == 40
    centres = gpd.GeoSeries.from_xy(facts["centre_lon"], facts["centre_lat"], crs=4326)
    for geom, centre in zip(facts.geometry, centres.to_crs(METRIC), strict=True):
        assert geom.contains(centre)


def test_missing_centres_are_estimated_and_documented(districts):
    estimated = districts[districts["centre_method"] != "facts"]
    assert set(estimated["code"]) == {"3 08", "5 72", "5 73"}
    assert estimated["centre_method"].str.startswith("estimated:").all()


def test_cell_areas_match_the_stated_areas(districts):
    deviation = districts["area_deviation"].astype(float).abs()
    assert np.median(deviation) < MEDIAN_DEVIATION_LIMIT
    recomputed = districts.geometry.area / 1e4
    assert np.allclose(recomputed, districts["area_ha_cell"].astype(float))


def test_neustadt_cells_match_halle_neustadt(districts):
    neustadt = districts[districts["stadtteil"] == "Neustadt"]
    assert len(neustadt) == 4
    area_ha = neustadt.geometry.area.sum() / 1e4
    assert abs(area_ha / 985.5 - 1) < 0.25


def test_unrelated_row_order_and_missing_area_are_handled(districts):
    facts = pd.read_csv(FACTS_FILE, dtype=str).sample(frac=1.0, random_state=1)
    facts.loc[facts["code"] == "2 05", "area_ha"] = ""
    result = approximate_districts(facts, districts.attrs["boundary"], gradient_iterations=20)
    assert len(result) == 43
    assert result.loc[result["code"] == "2 05", "area_ha_stated"].iloc[0] is None
    assert list(result["code"]) == list(facts["code"])
