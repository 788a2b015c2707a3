"""OGC API Tiles: Mapbox Vector Tiles decoded and compared with the database, the published
view as the only source of measures, the never-stale cache (memory, disk, ETag/304) and 4xx
for tiles that do not exist."""

from __future__ import annotations

import json

import mapbox_vector_tile
import morecantile
import pytest
from openapi_spec_validator import validate
from sqlalchemy import text

from factories import bearer, measure_feature
from quarters.collections import COLLECTIONS
from quarters.tiles import BUFFER, EXTENT, TILE_MATRIX_SETS, tile_bounds, tile_sql

HALLE = (11.97, 51.48)
MEASURE_CENTRE = (11.9975, 51.4795)  # inside factories.HALLE_POLYGON
WM = "WebMercatorQuad"
UTM = "ETRS89UTM32Quad"
MVT = "application/vnd.mapbox-vector-tile"


def tile_of(lon: float, lat: float, z: int, tms: str = WM) -> morecantile.Tile:
    return TILE_MATRIX_SETS[tms].tile(lon, lat, z)


def tile_url(collection: str, t: morecantile.Tile, tms: str = WM) -> str:
    return f"/api/collections/{collection}/tiles/{tms}/{t.z}/{t.y}/{t.x}"


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body) if body else {}


def get_tile(client, collection: str, t: morecantile.Tile, tms: str = WM, **headers):
    response = client.get(tile_url(collection, t, tms), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MVT
    return response


def layer_features(body: bytes, layer: str) -> list[dict]:
    return decode(body).get(layer, {}).get("features", [])


def expected_ids(conn, table: str, id_column: str, t: morecantile.Tile, tms: str = WM,
                 where: str = "TRUE") -> set:
    """Ids of rows meeting the buffered tile, asked of PostGIS independently of quarters.tiles
    (ST_TileEnvelope with its margin for WebMercatorQuad, morecantile's bounds otherwise)."""
    margin = BUFFER / EXTENT
    if tms == WM:
        env = f"ST_TileEnvelope({t.z}, {t.x}, {t.y}, margin => {margin})"
        geom = "ST_Transform(t.geom, 3857)"
    else:
        b = TILE_MATRIX_SETS[tms].xy_bounds(t)
        m = (b.right - b.left) * margin
        env = f"ST_MakeEnvelope({b.left - m}, {b.bottom - m}, {b.right + m}, {b.top + m}, 25832)"
        geom = "t.geom"
    rows = conn.execute(text(f"SELECT t.{id_column} FROM {table} t "
                             f"WHERE ST_Intersects({geom}, {env}) AND {where}")).scalars()
    return set(rows)


# -- tile matrix sets and metadata ------------------------------------------------------------
def test_tile_matrix_sets_web_mercator_and_etrs89_utm32(client):
    body = client.get("/api/tileMatrixSets").json()
    ids = {t["id"] for t in body["tileMatrixSets"]}
    assert ids == {WM, UTM}
    utm = client.get(f"/api/tileMatrixSets/{UTM}").json()
    assert utm["crs"].endswith("/EPSG/0/25832")
    level0 = utm["tileMatrices"][0]
    assert level0["pointOfOrigin"] == [-46133.17, 6301219.54]
    assert round(level0["scaleDenominator"], 2) == 17471320.75
    wm = client.get(f"/api/tileMatrixSets/{WM}").json()
    assert wm["crs"].endswith("/EPSG/0/3857") and len(wm["tileMatrices"]) == 23
    missing = client.get("/api/tileMatrixSets/NoSuchGrid")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_tilesets_metadata_and_tilejson(client):
    tilesets = client.get("/api/collections/districts/tiles").json()["tilesets"]
    assert {t["crs"].rsplit("/", 1)[1] for t in tilesets} == {"3857", "25832"}
    for t in tilesets:
        item = next(link for link in t["links"] if link["rel"] == "item")
        assert item["type"] == MVT and item["href"].endswith("{tileMatrix}/{tileRow}/{tileCol}")
    meta = client.get(f"/api/collections/municipalities/tiles/{WM}").json()
    layer = meta["layers"][0]
    assert layer["id"] == "municipalities" and layer["geometryDimension"] == 2
    assert set(layer["propertiesSchema"]["properties"]) == {"ags", "name", "bez", "kreis",
                                                            "project_city"}
    assert 5 < meta["boundingBox"]["lowerLeft"][0] < 6.5
    tj = client.get(f"/api/collections/municipalities/tiles/{WM}/tilejson.json").json()
    assert tj["tilejson"] == "3.0.0" and tj["tiles"][0].endswith(f"/{WM}/{{z}}/{{y}}/{{x}}")
    assert "GeoBasis-DE / BKG" in tj["attribution"]
    assert tj["vector_layers"][0]["id"] == "municipalities"
    assert client.get(f"/api/collections/municipalities/tiles/{UTM}/tilejson.json"
                      ).status_code == 404


def test_conformance_and_ogc_openapi_document_name_the_tiles(client):
    classes = client.get("/api/conformance").json()["conformsTo"]
    for name in ("core", "tileset", "tilesets-list", "mvt"):
        assert f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}" in classes
    doc = client.get("/api/ogc/openapi.json").json()
    validate(doc)
    assert "/tileMatrixSets" in doc["paths"]
    tile_path = "/collections/measures/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
    op = doc["paths"][tile_path]["get"]
    assert MVT in op["responses"]["200"]["content"]
    assert "/collections/municipalities/tiles/{tileMatrixSetId}/tilejson.json" in doc["paths"]


# -- tile content against the database ---------------------------------------------------------
def test_z14_halle_districts_tile_matches_the_database(client, conn):
    t = tile_of(*HALLE, 14)
    features = layer_features(get_tile(client, "districts", t).content, "districts")
    ids = {f["id"] for f in features}
    assert ids and ids == expected_ids(conn, "districts", "id", t)
    names = dict(conn.execute(text("SELECT id, name FROM districts WHERE id = ANY(:ids)"),
                              {"ids": list(ids)}).all())
    for f in features:
        props = f["properties"]
        assert set(props) <= {"id", "name", "code", "level", "city_ags", "stadtbezirk",
                              "approximate", "area_ha", "population"}
        assert props["id"] == f["id"] and props["name"] == names[f["id"]]
        assert "geom" not in props and "__geom" not in props and "__fid" not in props


def test_z8_municipalities_tile_counts_and_properties(client, conn):
    t = tile_of(*HALLE, 8)
    features = layer_features(get_tile(client, "municipalities", t).content, "municipalities")
    by_ags = {f["properties"]["ags"]: f for f in features}
    expected = expected_ids(conn, "municipalities", "ags", t)
    assert len(features) == len(by_ags) == len(expected) > 100
    assert set(by_ags) == expected
    halle = by_ags["15002000"]["properties"]
    assert halle["name"] == "Halle (Saale)" and halle["kreis"] == "15002"
    assert halle["project_city"] is True
    assert set(halle) == {"ags", "name", "bez", "kreis", "project_city"}


def test_etrs89_utm32_tile_matches_the_database(client, conn):
    t = tile_of(*HALLE, 10, UTM)
    features = layer_features(get_tile(client, "districts", t, UTM).content, "districts")
    ids = {f["id"] for f in features}
    assert ids and ids == expected_ids(conn, "districts", "id", t, UTM)


def _pairs(coords) -> int:
    if coords and isinstance(coords[0], (int, float)):
        return 1
    return sum(_pairs(c) for c in coords)


def test_polygons_are_simplified_per_zoom_and_points_stay_exact(client, conn):
    """Polygons carry fewer vertices than ST_AsMVTGeom's grid snapping alone leaves (the
    tolerance, half a screen pixel, is in metres 2^z times finer at each zoom); points are
    not simplified."""
    for z in (6, 7):  # from z9 on VG5000 (1:5,000,000) is coarser than the tolerance
        t = tile_of(*HALLE, z)
        features = layer_features(get_tile(client, "municipalities", t).content, "municipalities")
        in_tile = sum(_pairs(f["geometry"]["coordinates"]) for f in features)
        plain = conn.execute(text(
            f"SELECT sum(ST_NPoints(ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope("
            f"{t.z}, {t.x}, {t.y}), {EXTENT}, {BUFFER}, true))) FROM municipalities "
            f"WHERE ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope({t.z}, {t.x}, {t.y}, "
            f"margin => {BUFFER / EXTENT}))")).scalar_one()
        assert in_tile < plain, (z, in_tile, plain)
    t = tile_of(*HALLE, 12)
    points = layer_features(get_tile(client, "measures-points", t).content, "measures-points")
    expected = expected_ids(conn, "measures_public", "id", t, where="ST_Dimension(t.geom) = 0")
    assert {f["id"] for f in points} == expected


@pytest.mark.parametrize("collection", ["municipalities", "measures"])
def test_each_row_is_encoded_once(conn, collection):
    """ST_AsMVTGeom (clipping, snapping, validating) runs once per row: a filter on its
    result in the flattened subquery made PostgreSQL compute it twice (half of a z8 tile of
    the municipalities); ST_AsMVT leaves the rows outside the buffered tile (NULL) out."""
    tms = TILE_MATRIX_SETS[WM]
    t = tile_of(*HALLE, 8)
    b = tile_bounds(tms, t.z, t.x, t.y)
    params = dict(zip(("x0", "y0", "x1", "y1"), b.box, strict=True))
    params.update(zip(("sx0", "sy0", "sx1", "sy1"), b.storage_box, strict=True))
    params.update(layer=collection, tol=b.tolerance, cell=b.cell)
    plan = [row[0] for row in conn.execute(
        text("EXPLAIN (VERBOSE) " + tile_sql(COLLECTIONS[collection], 3857)), params)]
    calls = [line for line in plan if "st_asmvtgeom" in line.lower()]
    assert len(calls) == 1 and "Output:" in calls[0], plan
    assert sum(line.lower().count("st_asmvtgeom(") for line in plan) == 1, plan


def test_a_draft_is_never_in_a_tile_and_a_publish_shows_on_the_next_request(client, conn):
    planner = bearer(client, conn, "planner")
    t = tile_of(*MEASURE_CENTRE, 14)
    before = get_tile(client, "measures", t)
    created = client.post("/api/collections/measures/items",
                          content=json.dumps(measure_feature(title="Kachel-Entwurf")),
                          headers={**planner, "Content-Type": "application/geo+json"})
    assert created.status_code == 201, created.text
    mid = created.json()["id"]
    draft = get_tile(client, "measures", t)
    assert mid not in {f["id"] for f in layer_features(draft.content, "measures")}
    # a draft is a write too: the version moved, yet the draft is not in the new tile
    assert draft.headers["etag"] != before.headers["etag"]
    for z in (10, 14, 16):
        staff = client.get(tile_url("measures", tile_of(*MEASURE_CENTRE, z)), headers=planner)
        assert mid not in {f["id"] for f in layer_features(staff.content, "measures")}
    assert client.get(tile_url("measures", t)).headers["x-tile-cache"] == "memory"

    published = client.post(f"/api/measures/{mid}/publish",
                            headers={**planner, "If-Match": created.headers["etag"]})
    assert published.status_code == 200, published.text
    after = client.get(tile_url("measures", t), headers={"If-None-Match": draft.headers["etag"]})
    assert after.status_code == 200 and after.headers["x-tile-cache"] == "miss"
    mine = [f for f in layer_features(after.content, "measures") if f["id"] == mid]
    assert len(mine) == 1
    assert mine[0]["properties"]["title"] == "Kachel-Entwurf"
    assert mine[0]["properties"]["status"] == "geplant"


# -- points grouped per screen pixel ----------------------------------------------------------
def _add_points(conn, xy: list[tuple[float, float]], published: bool, title: str) -> list[int]:
    """Measures at the given EPSG:25832 points (ids in the order given)."""
    return [conn.execute(text(
        "INSERT INTO measures (city_ags, title, action_field, status, geom, published, "
        "location_precision) VALUES ('15002000', :title, 'Mobilität', 'geplant', "
        "ST_SetSRID(ST_MakePoint(:x, :y), 25832), :published, 'exact') RETURNING id"),
        {"title": f"{title} {i}", "x": x, "y": y, "published": published}).scalar_one()
        for i, (x, y) in enumerate(xy)]


def _pixel_cluster(conn, t: morecantile.Tile, tms: str, n: int, step: float):
    """``n`` points ``step`` m apart along x around the centre of an empty pixel cell of tile
    ``t`` (no published point there yet): (cell centre, points)."""
    b = tile_bounds(TILE_MATRIX_SETS[tms], t.z, t.x, t.y)
    sx0, sy0, sx1, sy1 = b.storage_box
    col, row = int((sx1 - sx0) / b.cell * 0.4), int((sy1 - sy0) / b.cell * 0.45)
    for _ in range(50):  # an empty cell near 40 %/45 % of the tile
        cx, cy = sx0 + (col + 0.5) * b.cell, sy0 + (row + 0.5) * b.cell
        taken = conn.execute(text(
            "SELECT count(*) FROM measures WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, "
            "25832)"), {"x0": cx - b.cell, "y0": cy - b.cell, "x1": cx + b.cell,
                        "y1": cy + b.cell}).scalar_one()
        if not taken:
            break
        col += 3
    assert not taken
    assert (n - 1) * step < b.cell  # all n fit in the cell
    return (cx, cy), [(cx + (i - (n - 1) / 2) * step, cy) for i in range(n)]


def _points(features: list[dict]) -> list[dict]:
    return [f for f in features if f["geometry"]["type"] in ("Point", "MultiPoint")]


def test_points_in_one_pixel_become_one_feature_with_point_count(client, conn):
    """40 published points within one screen pixel of a z10 tile are ONE feature: the lowest
    published id with its properties, point_count 40; drafts in the same pixel (lower ids)
    are neither counted nor chosen. At z16 (pixel ≈ 1.5 m) the same points, 2 m apart, are
    each a feature of their own with point_count 1."""
    t = tile_of(*HALLE, 10)
    _, xy = _pixel_cluster(conn, t, WM, 40, 2.0)
    drafts = _add_points(conn, xy[:5], False, "Kachel-Entwurf")
    ids = _add_points(conn, xy, True, "Kachel-Punkt")
    assert min(drafts) < min(ids)
    features = layer_features(get_tile(client, "measures", t).content, "measures")
    mine = [f for f in features if f["id"] in set(ids) | set(drafts)]
    assert len(mine) == 1, mine
    assert mine[0]["id"] == min(ids) and mine[0]["geometry"]["type"] == "Point"
    assert mine[0]["properties"]["point_count"] == 40
    assert mine[0]["properties"]["title"] == "Kachel-Punkt 0"
    assert mine[0]["properties"]["id"] == min(ids)
    # the kind collection of points groups the same way
    kind = layer_features(get_tile(client, "measures-points", t).content, "measures-points")
    assert [(f["id"], f["properties"]["point_count"]) for f in kind
            if f["id"] in set(ids)] == [(min(ids), 40)]

    t16 = tile_of(*conn.execute(text(
        "SELECT ST_X(g), ST_Y(g) FROM ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 25832), "
        "4326) g"), {"x": xy[20][0], "y": xy[20][1]}).one(), 16)
    features = layer_features(get_tile(client, "measures", t16).content, "measures")
    in_tile = expected_ids(conn, "measures_public", "id", t16,
                           where=f"t.id = ANY(ARRAY{ids})")
    assert len(in_tile) >= 20
    separate = {f["id"]: f["properties"]["point_count"] for f in features
                if f["id"] in set(ids)}
    assert separate == dict.fromkeys(in_tile, 1)


def test_sum_of_point_count_is_the_published_points_and_shapes_are_unchanged(client, conn):
    """In an ETRS89UTM32Quad tile (cells = the grid's own pixels) the point_counts add up to
    the published points of the buffered tile, drafts excluded, with fewer features than
    points; lines and polygons are the features they were (the same as in the
    measures-lines/-areas tiles, which never group), without point_count."""
    t = tile_of(*HALLE, 6, UTM)  # a pixel is 76 m
    _, xy = _pixel_cluster(conn, t, UTM, 30, 2.0)
    _add_points(conn, xy, True, "Kachel-Punkt")
    _add_points(conn, xy[:7], False, "Kachel-Entwurf")
    features = layer_features(get_tile(client, "measures", t, UTM).content, "measures")
    points = _points(features)
    published = expected_ids(conn, "measures_public", "id", t, UTM,
                             where="ST_GeometryType(t.geom) = 'ST_Point'")
    assert sum(f["properties"]["point_count"] for f in points) == len(published) >= 30
    assert len(points) < len(published) - 28
    assert {f["id"] for f in points} <= published

    shapes = [f for f in features if f not in points]
    assert {f["id"] for f in shapes} == expected_ids(
        conn, "measures_public", "id", t, UTM, where="ST_Dimension(t.geom) > 0")
    assert shapes and all("point_count" not in f["properties"] for f in shapes)
    by_kind = {}
    for kind in ("measures-lines", "measures-areas"):
        for f in layer_features(get_tile(client, kind, t, UTM).content, kind):
            by_kind[f["id"]] = f["geometry"]["coordinates"]
    for f in shapes:
        coords = f["geometry"]["coordinates"]
        assert by_kind[f["id"]] in (coords, [coords]), f["id"]


def test_tileset_metadata_names_point_count_for_point_collections(client):
    for collection in ("measures", "measures-points"):
        meta = client.get(f"/api/collections/{collection}/tiles/{WM}").json()
        schema = meta["layers"][0]["propertiesSchema"]["properties"]
        assert schema["point_count"]["type"] == "integer"
    for collection in ("measures-lines", "districts"):
        meta = client.get(f"/api/collections/{collection}/tiles/{WM}").json()
        assert "point_count" not in meta["layers"][0]["propertiesSchema"]["properties"]
    doc = client.get("/api/ogc/openapi.json").json()
    tile_path = "/collections/measures/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
    assert "point_count" in doc["paths"][tile_path]["get"]["summary"]


def test_304_and_memory_cache_hit_after_the_first_request(client):
    t = tile_of(*HALLE, 13)
    first = get_tile(client, "districts", t)
    assert first.headers["x-tile-cache"] == "miss"
    cache_control = first.headers["cache-control"]
    assert cache_control.startswith("public") and "max-age=" in cache_control
    second = get_tile(client, "districts", t)
    assert second.headers["x-tile-cache"] == "memory" and second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    unchanged = client.get(tile_url("districts", t), headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == first.headers["etag"]
    other = get_tile(client, "districts", tile_of(*HALLE, 12))
    assert other.headers["etag"] != first.headers["etag"]


def test_disk_cache_is_shared_and_survives_a_new_process(app, client, tmp_path, conn):
    app.state.settings = app.state.settings.model_copy(
        update={"tile_cache_dir": tmp_path, "tile_cache_size": 0})
    t = tile_of(*HALLE, 12)
    first = get_tile(client, "quarters", t)
    assert first.headers["x-tile-cache"] == "miss"
    files = list(tmp_path.glob("v*/quarters-WebMercatorQuad-12-*.mvt"))
    assert len(files) == 1 and files[0].read_bytes() == first.content
    assert not list(tmp_path.glob("v*/.tmp-*"))  # written atomically, nothing left over
    app.state.tile_cache = None  # as a fresh worker: an empty memory, the same directory
    again = get_tile(client, "quarters", t)
    assert again.headers["x-tile-cache"] == "disk" and again.content == first.content
    # a write moves to a new version directory and removes the old one
    conn.execute(text("UPDATE quarters SET name = name"))
    fresh = get_tile(client, "quarters", t)
    assert fresh.headers["x-tile-cache"] == "miss"
    assert {p.parent.name for p in tmp_path.glob("v*/*.mvt")} == {files[0].parent.name[:1] + str(
        int(files[0].parent.name[1:]) + 1)}


@pytest.mark.parametrize("path", [
    f"/api/collections/districts/tiles/{WM}/23/0/0",
    f"/api/collections/districts/tiles/{WM}/14/16384/0",
    f"/api/collections/districts/tiles/{WM}/14/0/16384",
    f"/api/collections/districts/tiles/{WM}/-1/0/0",
    f"/api/collections/districts/tiles/{WM}/3/-1/0",
    f"/api/collections/districts/tiles/{UTM}/18/0/0",
    f"/api/collections/districts/tiles/{UTM}/1/2/0",
    f"/api/collections/districts/tiles/{WM}/99999999999999999999/0/0",
    "/api/collections/districts/tiles/NoSuchGrid/1/0/0",
    f"/api/collections/nothing/tiles/{WM}/1/0/0",
])
def test_tiles_that_do_not_exist_are_404_problems(client, path):
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("zyx", ["a/0/0", "1/0.5/0", "1/0/x", "1/0/1e3"])
def test_malformed_tile_addresses_are_400_problems(client, zyx):
    response = client.get(f"/api/collections/districts/tiles/{WM}/{zyx}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
