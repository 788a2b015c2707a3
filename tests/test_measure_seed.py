"""Pure tests (no database) of the authored measure seed data/geo/measures.geojson."""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import shape

REPO = Path(__file__).resolve().parents[1]
MEASURES_FILE = REPO / "data" / "geo" / "measures.geojson"
QUARTERS_FILE = REPO / "data" / "geo" / "pilot_quarters.geojson"
DATA_DIR = Path(
    os.environ.get("QUARTERS_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
BOUNDARY_FILE = DATA_DIR / "raw" / "bkg-vg5000-2021" / "halle_gera_gemeinde_vg5000_wgs84.geojson"
METRIC = 25832
BOUNDARY_BUFFER_M = 3000

HALLE = "15002000"
GERA = "16052000"
ACTION_FIELDS = {
    HALLE: {"Bildung", "Wirtschaft", "Mobilität", "Verwaltung"},
    GERA: {
        "Wirtschaft",
        "Bildung und Kultur",
        "Energie und Umwelt",
        "Städtebau, Stadtentwicklung und Verkehr",
        "Bürgerbeteiligung und Verwaltung",
    },
}
STATUSES = {"idee", "geplant", "in_umsetzung", "abgeschlossen", "eingestellt"}
MILESTONE_STATUSES = {"erreicht", "offen", "verschoben"}
PRECISIONS = {"exact", "approximate", "city", "unknown"}
NULL_GEOMETRY_PRECISIONS = {"city", "unknown"}
QUARTER_SLUGS = {"wirtschaftsquartier-hallescher-osten", "bildungsquartier-neustadt"}
LICENCE = "CC BY 4.0, quarters project; facts from the cited sources"
GERA_PACKAGE = "gera-pilotprojekte-2021"
PROPERTIES = {
    "slug", "city_ags", "title", "summary", "description", "plain_summary", "action_field",
    "status", "start_date", "end_date", "milestones", "budget_planned", "budget_spent",
    "funding_line", "responsible_unit", "partners", "parent_slug", "links", "source", "licence",
    "location_precision", "location_note", "editions", "quarter_slug", "note",
}
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EDITION_RE = {HALLE: re.compile(r"^halle-\d{4}$"), GERA: re.compile(r"^gera-\d{4}$")}


def _features() -> list[dict]:
    return json.loads(MEASURES_FILE.read_text(encoding="utf-8"))["features"]


FEATURES = _features()
IDS = [f["properties"]["slug"] for f in FEATURES]
BY_SLUG = {f["properties"]["slug"]: f for f in FEATURES}


def _date(value: str) -> date:
    assert isinstance(value, str) and DATE_RE.match(value), value
    return date.fromisoformat(value)


def _metric(geom) -> shapely.Geometry:
    return gpd.GeoSeries([geom], crs=4326).to_crs(METRIC).iloc[0]


@pytest.fixture(scope="module")
def boundaries() -> dict[str, shapely.Geometry]:
    gdf = gpd.read_file(BOUNDARY_FILE).to_crs(METRIC)
    return {ags: gdf.loc[gdf["AGS"] == ags].geometry.iloc[0] for ags in (HALLE, GERA)}


# --- the file as a whole -----------------------------------------------------------------

def test_file_parses_with_geopandas():
    gdf = gpd.read_file(MEASURES_FILE)
    assert len(gdf) == len(FEATURES) > 0
    assert gdf.crs is None or gdf.crs.to_epsg() == 4326
    raw = json.loads(MEASURES_FILE.read_text(encoding="utf-8"))
    assert raw["type"] == "FeatureCollection"
    assert "crs" not in raw  # RFC 7946: no crs member, WGS84 lon/lat implied


def test_slugs_are_unique_and_kebab_case():
    assert len(IDS) == len(set(IDS))
    for slug in IDS:
        assert SLUG_RE.match(slug), slug


def test_both_cities_are_present():
    cities = {f["properties"]["city_ags"] for f in FEATURES}
    assert cities == {HALLE, GERA}


# --- per-feature properties --------------------------------------------------------------

@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_properties_are_complete_and_typed(feature):
    p = feature["properties"]
    assert feature["type"] == "Feature"
    assert set(p) == PROPERTIES, set(p) ^ PROPERTIES
    assert p["city_ags"] in ACTION_FIELDS
    assert isinstance(p["title"], str) and 0 < len(p["title"]) <= 200
    assert isinstance(p["summary"], str) and 0 < len(p["summary"]) <= 500
    assert isinstance(p["description"], str) and p["description"].strip()
    assert p["plain_summary"] is None or (isinstance(p["plain_summary"], str)
                                          and p["plain_summary"].strip())
    assert isinstance(p["funding_line"], str) and p["funding_line"].strip()
    assert isinstance(p["responsible_unit"], str) and p["responsible_unit"].strip()
    assert isinstance(p["partners"], list)
    assert all(isinstance(x, str) and x.strip() for x in p["partners"])
    assert p["note"] is None or (isinstance(p["note"], str) and p["note"].strip())
    assert p["licence"] == LICENCE
    # the limits of the measure API (quarters.schemas), so the seed can be loaded through it
    assert p["plain_summary"] is None or len(p["plain_summary"]) <= 2_000
    assert len(p["funding_line"]) <= 300 and len(p["responsible_unit"]) <= 300
    assert len(p["partners"]) <= 50 and all(len(x) <= 200 for x in p["partners"])
    assert len(p["source"]) <= 1_000
    assert p["location_note"] is None or len(p["location_note"]) <= 1_000
    assert len(p["links"]) <= 20 and len(p["milestones"]) <= 100
    assert all(len(x["title"]) <= 200 for x in p["links"] + p["milestones"])
    assert all(len(x["url"]) <= 2_000 for x in p["links"])


@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_properties_pass_the_measure_api_schema(feature):
    schemas = pytest.importorskip("quarters.schemas")
    model = schemas.MeasureProperties
    # seed-only keys (slug, parent_slug, quarter_slug, note) are mapped by the loader
    model.model_validate({k: v for k, v in feature["properties"].items()
                          if k in model.model_fields})


@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_action_field_and_status(feature):
    p = feature["properties"]
    assert p["action_field"] in ACTION_FIELDS[p["city_ags"]], p["action_field"]
    assert p["status"] in STATUSES


@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_dates_are_iso_and_ordered(feature):
    p = feature["properties"]
    start = _date(p["start_date"]) if p["start_date"] is not None else None
    end = _date(p["end_date"]) if p["end_date"] is not None else None
    if start and end:
        assert start <= end


@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_milestones_are_well_formed(feature):
    milestones = feature["properties"]["milestones"]
    assert isinstance(milestones, list)
    for m in milestones:
        assert set(m) == {"date", "title", "status"}, m
        _date(m["date"])
        assert isinstance(m["title"], str) and m["title"].strip()
        assert m["status"] in MILESTONE_STATUSES
        if m["status"] == "erreicht":
            assert _date(m["date"]) <= date.today()


@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_budgets_are_non_negative_numbers(feature):
    p = feature["properties"]
    for key in ("budget_planned", "budget_spent"):
        value = p[key]
        if value is not None:
            assert isinstance(value, (int, float)) and not isinstance(value, bool), value
            assert value >= 0


@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_links_and_source(feature):
    p = feature["properties"]
    assert isinstance(p["links"], list) and p["links"]
    for link in p["links"]:
        assert set(link) == {"title", "url"}, link
        assert isinstance(link["title"], str) and link["title"].strip()
        assert isinstance(link["url"], str) and link["url"].strip()
    assert any(re.match(r"^https?://\S+$", link["url"]) for link in p["links"])
    assert isinstance(p["source"], str) and p["source"].strip()


@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_editions(feature):
    p = feature["properties"]
    editions = p["editions"]
    assert isinstance(editions, list) and editions
    assert len(editions) == len(set(editions))
    for key in editions:
        assert EDITION_RE[p["city_ags"]].match(key), key
    if p["city_ags"] == HALLE:
        assert editions == ["halle-2023"]
    if "gera-2024" in editions:
        assert editions == ["gera-2024"]
        assert p["status"] in {"geplant", "in_umsetzung"}


# --- hierarchy ---------------------------------------------------------------------------

@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_parent_exists_in_same_city_and_comes_first(feature):
    p = feature["properties"]
    parent_slug = p["parent_slug"]
    if parent_slug is None:
        return
    assert parent_slug in BY_SLUG, parent_slug
    assert parent_slug != p["slug"]
    assert BY_SLUG[parent_slug]["properties"]["city_ags"] == p["city_ags"]
    # parents precede children, so a loader can insert in file order
    assert IDS.index(parent_slug) < IDS.index(p["slug"])


def test_hierarchy_has_no_cycles():
    for slug in IDS:
        seen = set()
        while slug is not None:
            assert slug not in seen, f"cycle through {slug}"
            seen.add(slug)
            slug = BY_SLUG[slug]["properties"]["parent_slug"]


def test_halle_packages():
    for package in ("hal-plan", "smart-haneu", "integrierte-mobilitaet"):
        assert BY_SLUG[package]["properties"]["parent_slug"] is None
        assert BY_SLUG[package]["properties"]["city_ags"] == HALLE
    children = {s for s, f in BY_SLUG.items() if f["properties"]["parent_slug"] == "smart-haneu"}
    assert "smart-haneu-bildungszentrum-passage-13" in children
    assert BY_SLUG["halle-mobilitaet-sensornetz"]["properties"]["parent_slug"] == (
        "integrierte-mobilitaet")


def test_gera_has_exactly_fourteen_pilots_in_the_2021_edition():
    package = BY_SLUG[GERA_PACKAGE]["properties"]
    assert package["city_ags"] == GERA and package["parent_slug"] is None
    assert "gera-2021" in package["editions"]
    # the 516,000 EUR are the total of all 14 pilots: on the package, never split per pilot
    assert package["budget_planned"] == 516000
    pilots = [f["properties"] for f in FEATURES
              if f["properties"]["parent_slug"] == GERA_PACKAGE]
    assert len(pilots) == 14
    for pilot in pilots:
        assert "gera-2021" in pilot["editions"]
        assert pilot["budget_planned"] is None and pilot["budget_spent"] is None
        assert pilot["status"] == "abgeschlossen"


# --- location ----------------------------------------------------------------------------

@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_geometry_null_exactly_for_city_and_unknown(feature):
    p = feature["properties"]
    assert p["location_precision"] in PRECISIONS
    if p["location_precision"] in NULL_GEOMETRY_PRECISIONS:
        assert feature["geometry"] is None
    else:
        assert feature["geometry"] is not None


@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_location_note(feature):
    p = feature["properties"]
    note = p["location_note"]
    if p["location_precision"] != "exact":
        assert isinstance(note, str) and note.strip()
    if p["location_precision"] == "unknown":
        assert "Ort nicht bekannt" in note


def _rings(geom):
    polygons = [geom] if geom.geom_type == "Polygon" else list(getattr(geom, "geoms", []))
    for polygon in polygons:
        if polygon.geom_type == "Polygon":
            yield polygon.exterior, True
            for interior in polygon.interiors:
                yield interior, False


def _coordinates(obj):
    if isinstance(obj, (int, float)):
        yield obj
    else:
        for item in obj:
            yield from _coordinates(item)


FEATURES_WITH_GEOMETRY = [f for f in FEATURES if f["geometry"] is not None]


@pytest.mark.parametrize("feature", FEATURES_WITH_GEOMETRY,
                         ids=[f["properties"]["slug"] for f in FEATURES_WITH_GEOMETRY])
def test_geometry_is_valid_rfc7946_and_inside_the_city(feature, boundaries):
    geom = shape(feature["geometry"])
    assert geom.is_valid and not geom.is_empty
    for value in _coordinates(feature["geometry"]["coordinates"]):
        assert round(value, 6) == value
    for x, y in shapely.get_coordinates(geom):
        assert 5 < x < 16 and 47 < y < 56  # lon/lat order, inside Germany
    for ring, exterior in _rings(geom):
        assert ring.is_ccw == exterior  # RFC 7946: exterior CCW, holes CW
    city = boundaries[feature["properties"]["city_ags"]]
    assert _metric(geom).within(city.buffer(BOUNDARY_BUFFER_M)), feature["properties"]["slug"]


@pytest.mark.parametrize("feature", FEATURES, ids=IDS)
def test_quarter_slug(feature):
    p = feature["properties"]
    if p["quarter_slug"] is None:
        return
    assert p["quarter_slug"] in QUARTER_SLUGS
    assert p["city_ags"] == HALLE
    if feature["geometry"] is not None:
        quarters = {q["properties"]["slug"]: shape(q["geometry"])
                    for q in json.loads(QUARTERS_FILE.read_text(encoding="utf-8"))["features"]}
        assert shape(feature["geometry"]).intersects(quarters[p["quarter_slug"]])


def test_place_notes_speak_to_citizens_not_developers():
    """The place note is shown on /massnahmen/{id}: no loader, null geometry or other
    developer words (it said "Geometrie null, der Loader verwendet die Stadtgrenze")."""
    developer = re.compile(r"\b(loader|geometrie null|null-geometrie|geometry|fallback)\b", re.I)
    for feature in json.loads(MEASURES_FILE.read_text(encoding="utf-8"))["features"]:
        note = feature["properties"].get("location_note") or ""
        assert not developer.search(note), (feature["properties"]["title"], note)
