"""Small named test geometries and helpers that write them as files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
from shapely.geometry import Polygon, box

# Two squares in Gera (EPSG:4326) and a bow-tie (self-intersecting) polygon.
GERA_A = box(12.06, 50.86, 12.07, 50.87)
GERA_B = box(12.07, 50.86, 12.08, 50.87)
BOW_TIE = Polygon([(12.06, 50.88), (12.07, 50.89), (12.07, 50.88), (12.06, 50.89), (12.06, 50.88)])


def frame(rows: list[dict], crs: str | int | None = 4326) -> gpd.GeoDataFrame:
    """GeoDataFrame from dicts with a 'geometry' key."""
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)


def write_geojson_raw(path: Path, features: list[dict]) -> Path:
    """Write a FeatureCollection as plain JSON (to include broken geometries verbatim)."""
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def zip_shapefile(gdf: gpd.GeoDataFrame, folder: Path, name: str) -> Path:
    """Write a shapefile and zip its parts."""
    shp = folder / f"{name}.shp"
    gdf.to_file(shp)
    archive = folder / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in folder.glob(f"{name}.*"):
            if part.suffix != ".zip":
                zf.write(part, part.name)
    return archive
