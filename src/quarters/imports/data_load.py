"""`quarters data load`: the catalogue's sources, BKG boundaries, Halle's Stadtviertel, pilot quarters."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from quarters.approximate import approximate_districts
from quarters.errors import ImportRefused, SetupError
from quarters.geometry import problem_code, to_multi
from quarters.imports.boundaries import (
    BoundarySpec,
    ImportSummary,
    load_boundaries,
    write_boundaries,
)
from quarters.messages import Note
from quarters.settings import HALLE_AGS, PROJECT_CITIES, STORAGE_SRID, Settings
from quarters.sources import load_catalogue_sources, source_id

if TYPE_CHECKING:
    from quarters.indicators.values import IndicatorReport

Step = Callable[[Note | str, int, int], None]  # (label: a Note or a file name, done, total)

BKG_KEY = "bkg-vg5000-2021"
STADTVIERTEL_KEY = "halle-stadtviertel-facts"
QUARTERS_KEY = "quarters-pilot-quarters"
BKG_DIR = Path("raw/bkg-vg5000-2021")
STADTVIERTEL_FACTS = Path("facts/halle_stadtviertel.csv")


@dataclass
class LoadReport:
    """What a data load did, step by step."""

    imports: list[ImportSummary] = field(default_factory=list)
    notes: list[Note | str] = field(default_factory=list)  # written out by the CLI
    warnings: list[Note | str] = field(default_factory=list)


def load_bkg(conn: Connection, data_dir: Path, progress: Step | None = None) -> list[ImportSummary]:
    """Load the VG5000 Gemeinden and Kreise and mark the project cities."""
    src = source_id(conn, BKG_KEY)
    summaries = []
    for level, name in (("gemeinde", "VG5000_GEM.shp"), ("kreis", "VG5000_KRS.shp")):
        path = data_dir / BKG_DIR / name
        if not path.exists():
            raise SetupError(code="data.file_missing_fetch", params={"path": str(path)})
        # BKG's own file has 3 self-touching rings; repairing is explicit and reported.
        spec = BoundarySpec(level=level, repair=True)
        gdf, summary = load_boundaries(path, spec, reproject=False)
        tick = (lambda d, t, label=name: progress(label, d, t)) if progress else None
        summaries.append(write_boundaries(conn, gdf, spec, src, summary, tick, reproject=True))
    conn.execute(text("UPDATE municipalities SET project_city = (ags = ANY(:cities))"),
                 {"cities": list(PROJECT_CITIES)})
    return summaries


def _city_boundary(conn: Connection, ags: str) -> shapely.Geometry:
    wkb = conn.execute(text("SELECT ST_AsBinary(geom) FROM municipalities WHERE ags = :a"),
                       {"a": ags}).scalar()
    if wkb is None:
        raise SetupError(code="data.municipality_not_loaded", params={"ags": ags})
    return shapely.from_wkb(bytes(wkb))


def load_stadtviertel(conn: Connection, data_dir: Path) -> ImportSummary:
    """Build approximate outlines of Halle's 43 Stadtviertel from facts and store them."""
    facts = pd.read_csv(data_dir / STADTVIERTEL_FACTS, dtype=str, keep_default_na=False)
    cells = approximate_districts(facts, _city_boundary(conn, HALLE_AGS))
    cells["code"] = cells["code"].str.split().str[-1]  # "1 01" → official 2-digit code "01"
    spec = BoundarySpec(level="stadtviertel", code_field="code", name_field="name",
                        city=HALLE_AGS, parent_field="stadtbezirk", approximate=True)
    summary = ImportSummary(path=str(data_dir / STADTVIERTEL_FACTS), table="districts",
                            read=len(cells), source_crs=f"EPSG:{STORAGE_SRID}")
    write_boundaries(conn, cells, spec, source_id(conn, STADTVIERTEL_KEY), summary)
    conn.execute(text("""
        UPDATE districts SET
            area_ha_official = (attributes->>'area_ha_stated')::float,
            population = (attributes->>'population')::int,
            population_date = NULLIF(attributes->>'population_date', '')
        WHERE city_ags = :city AND level = 'stadtviertel'
    """), {"city": HALLE_AGS})
    return summary


def _read_authored(path: Path) -> gpd.GeoDataFrame:
    gdf = gpd.read_file(path)
    if gdf.crs is None:
        raise ImportRefused(code="data.no_crs", params={"file": path.name})
    gdf = gdf.to_crs(STORAGE_SRID)
    for idx, geom in gdf.geometry.items():
        found = problem_code(geom)
        if found:
            raise ImportRefused(code="data.feature_geometry", params={
                "file": path.name, "index": int(idx), "slug": str(gdf.at[idx, "slug"]),
                "reason": {"code": found[0], "params": found[1]}})
    return gdf


_QUARTER_COLS = ("slug", "name", "name_en", "description", "approximate", "method",
                 "stated_area_ha", "area_source")


def _authored_row(row: pd.Series, src: int) -> dict[str, Any]:
    values = {c: (None if c not in row or _missing(row[c]) else row[c]) for c in _QUARTER_COLS}
    sources = row.get("sources")
    values["sources"] = json.dumps(sources if isinstance(sources, list) else
                                   json.loads(sources) if isinstance(sources, str) else [])
    values["approximate"] = bool(values["approximate"]) if values["approximate"] is not None else True
    values["wkb"] = shapely.to_wkb(to_multi(row.geometry))
    values["src"], values["srid"] = src, STORAGE_SRID
    return values


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (list, dict)) and pd.isna(value))


def load_pilot_quarters(conn: Connection, geo_dir: Path) -> int:
    """Load the project's own pilot quarters and their sites (upsert by slug)."""
    src = source_id(conn, QUARTERS_KEY)
    quarters = _read_authored(geo_dir / "pilot_quarters.geojson")
    cols = ", ".join(_QUARTER_COLS)
    binds = ", ".join(":" + c for c in _QUARTER_COLS)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in _QUARTER_COLS[1:])
    for _, row in quarters.iterrows():
        conn.execute(text(f"""
            INSERT INTO quarters ({cols}, city_ags, theme, sources, source_id, geom)
            VALUES ({binds}, :city, :theme, CAST(:sources AS jsonb), :src,
                    ST_GeomFromWKB(:wkb, :srid))
            ON CONFLICT (slug) DO UPDATE SET {sets}, city_ags = EXCLUDED.city_ags,
                theme = EXCLUDED.theme, sources = EXCLUDED.sources,
                source_id = EXCLUDED.source_id, geom = EXCLUDED.geom
        """), {**_authored_row(row, src), "city": row["city_ags"], "theme": row.get("theme")})
    sites = _read_authored(geo_dir / "sites.geojson")
    for _, row in sites.iterrows():
        quarter = conn.execute(text("SELECT id FROM quarters WHERE slug = :s"),
                               {"s": row["quarter_slug"]}).scalar()
        if quarter is None:
            raise ImportRefused(code="data.site_unknown_quarter", params={
                "slug": str(row["slug"]), "quarter": str(row["quarter_slug"])})
        conn.execute(text(f"""
            INSERT INTO sites ({cols}, quarter_id, sources, source_id, geom)
            VALUES ({binds}, :quarter, CAST(:sources AS jsonb), :src, ST_GeomFromWKB(:wkb, :srid))
            ON CONFLICT (slug) DO UPDATE SET {sets}, quarter_id = EXCLUDED.quarter_id,
                sources = EXCLUDED.sources, source_id = EXCLUDED.source_id, geom = EXCLUDED.geom
        """), {**_authored_row(row, src), "quarter": quarter})
    return len(quarters) + len(sites)


def load_all(engine: Engine, settings: Settings, catalogue: Any,
             progress: Step | None = None) -> LoadReport:
    """Load everything in one transaction: all or nothing."""
    report = LoadReport()
    with engine.begin() as conn:
        load_catalogue_sources(conn, catalogue)
        report.imports += load_bkg(conn, settings.data_dir, progress)
        if progress:
            progress(Note("step_stadtviertel"), 0, 1)
        report.imports.append(load_stadtviertel(conn, settings.data_dir))
        if progress:
            progress(Note("step_stadtviertel"), 1, 1)
        count = load_pilot_quarters(conn, settings.geo_dir)
        report.notes.append(Note("pilot_quarters_loaded", count=count))
        from quarters.imports.seed import load_seed

        seeded = load_seed(conn, settings.geo_dir)
        report.notes.append(Note("seed_loaded", editions=seeded.get("editions", 0),
                                 created=seeded.get("created", 0), kept=seeded.get("kept", 0)))
        indicators = load_indicators(conn, settings)
        report.notes += indicators.notes
        report.warnings += indicators.warnings
    # Fresh statistics, so the planner does not guess on the tables it has just filled.
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    return report


def load_indicators(conn: Connection, settings: Settings) -> IndicatorReport:
    """Indicator values: Destatis, Halle's Stadtviertel, computed ones (notes and warnings as
    :class:`~quarters.messages.Note`)."""
    from quarters.indicators.loaders import load_all_indicators

    return load_all_indicators(conn, settings.data_dir)
