"""Bulk import and export of measures: GeoJSON, GeoPackage, CSV (WKT or lon/lat columns).

Imports are all-or-nothing: every row is checked first, every problem is reported with its
row number, and only a clean file is written, in the caller's transaction.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from pydantic import ValidationError
from sqlalchemy import Connection, text

from quarters import measures
from quarters.errors import ImportRefused, InvalidParameter
from quarters.geometry import GeometryProblem, parse_geojson
from quarters.measures import Actor
from quarters.schemas import MeasureProperties

LIST_FIELDS = ("partners", "editions")
JSON_FIELDS = ("milestones", "links")
FORMATS = {"geojson": "application/geo+json", "gpkg": "application/geopackage+sqlite3",
           "csv": "text/csv; charset=utf-8"}
MAX_ROWS = 10_000


@dataclass
class ImportReport:
    """Outcome of a (dry-run) import."""

    rows: int = 0
    created: list[int] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"rows": self.rows, "created": self.created, "problems": self.problems,
                "dry_run": self.dry_run, "stored": bool(self.created)}


def read_rows(path: Path) -> list[tuple[dict[str, Any], Any]]:
    """(properties, GeoJSON geometry or None) per row of a GeoJSON, GeoPackage or CSV file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".geojson", ".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"),
                              parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ImportRefused(f"{path.name}: not valid JSON ({str(exc)[:80]})") from None
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise ImportRefused(f"{path.name}: expected a GeoJSON FeatureCollection")
        return [(f.get("properties") or {}, f.get("geometry")) if isinstance(f, dict) else ({}, None)
                for f in data.get("features", [])]
    if suffix == ".gpkg":
        try:
            gdf = pyogrio.read_dataframe(path)
        except Exception as exc:
            raise ImportRefused(f"{path.name}: cannot be read ({str(exc).splitlines()[0]})") from None
        if gdf.crs is None:
            raise ImportRefused(f"{path.name}: no coordinate reference system")
        gdf = gdf.to_crs(4326)
        rows = []
        for _, row in gdf.iterrows():
            props = {k: _cell(v) for k, v in row.items() if k != "geometry"}
            geom = None if row.geometry is None else json.loads(shapely.to_geojson(row.geometry))
            rows.append((_decode_lists(props), geom))
        return rows
    raise ImportRefused(f"{path.name}: unsupported file type (use .geojson, .gpkg or .csv)")


def _cell(value: Any) -> Any:
    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _decode_lists(props: dict[str, Any]) -> dict[str, Any]:
    for key in LIST_FIELDS:
        if isinstance(props.get(key), str):
            props[key] = [p.strip() for p in props[key].split(";") if p.strip()]
    for key in JSON_FIELDS:
        if isinstance(props.get(key), str):
            try:
                props[key] = json.loads(props[key]) if props[key].strip() else []
            except ValueError:
                pass  # left as text: validation names the field
    for key in ("budget_planned", "budget_spent"):
        if isinstance(props.get(key), int):
            props[key] = float(props[key])
    if isinstance(props.get("parent_id"), float) and props["parent_id"].is_integer():
        props["parent_id"] = int(props["parent_id"])
    return props


def _read_csv(path: Path) -> list[tuple[dict[str, Any], Any]]:
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(f"{path.name}: not UTF-8 text") from None
    rows = []
    for record in csv.DictReader(io.StringIO(content)):
        if None in record:
            raise ImportRefused(f"{path.name}: a row has more cells than the header")
        props = {k: (v if v != "" else None) for k, v in record.items()}
        geom = _csv_geometry(props)
        for key in ("budget_planned", "budget_spent"):
            if props.get(key) is not None:
                try:
                    props[key] = float(props[key])
                except ValueError:
                    pass  # validation reports the wrong type
        if props.get("parent_id") and str(props["parent_id"]).isdigit():
            props["parent_id"] = int(props["parent_id"])
        rows.append((_decode_lists(props), geom))
    return rows


def _csv_geometry(props: dict[str, Any]) -> Any:
    wkt, lon, lat = props.pop("wkt", None), props.pop("lon", None), props.pop("lat", None)
    if wkt:
        try:
            return json.loads(shapely.to_geojson(shapely.from_wkt(wkt)))
        except Exception:
            return {"type": "invalid WKT", "coordinates": None}
    if lon is not None or lat is not None:
        try:
            return {"type": "Point", "coordinates": [float(lon), float(lat)]}
        except (TypeError, ValueError):
            return {"type": "Point", "coordinates": [lon, lat]}
    return None


def check_rows(rows: list[tuple[dict, Any]]) -> tuple[list, list[dict[str, Any]]]:
    """Validate every row; return (valid (props, geom) pairs, problems with row numbers)."""
    valid, problems = [], []
    for n, (props, geometry) in enumerate(rows, start=1):
        fields = {k: v for k, v in props.items() if v is not None}
        row_problems = []
        try:
            record = MeasureProperties.model_validate(fields)
        except ValidationError as exc:
            record = None
            for e in exc.errors():
                loc = "/".join(str(p) for p in e["loc"]) or "row"
                message = "unknown field" if e["type"] == "extra_forbidden" else \
                    e["msg"].removeprefix("Value error, ")
                row_problems.append({"row": n, "field": loc, "problem": message})
        try:
            geom = parse_geojson(geometry)
        except GeometryProblem as exc:
            geom = None
            row_problems.append({"row": n, "field": exc.pointer.lstrip("/"), "problem": exc.problem})
        if row_problems:
            problems.extend(row_problems)
        else:
            valid.append((n, record, geom))
    return valid, problems


def import_measures(conn: Connection, path: Path, actor: Actor, *,
                    dry_run: bool = False) -> ImportReport:
    """Check all rows, then (unless dry-run) create them as drafts; all or nothing."""
    rows = read_rows(path)
    if len(rows) > MAX_ROWS:
        raise ImportRefused(f"{path.name}: {len(rows)} rows; at most {MAX_ROWS} per import")
    report = ImportReport(rows=len(rows), dry_run=dry_run)
    valid, report.problems = check_rows(rows)
    savepoint = conn.begin_nested()
    try:
        for n, record, geom in valid:
            try:
                created = measures.create(conn, record, geom, actor)
                report.created.append(created["id"])
            except ImportRefused:
                raise
            except Exception as exc:  # place/parent/edition checks in the database
                detail = getattr(exc, "detail", None) or str(exc).splitlines()[0]
                report.problems.append({"row": n, "field": "", "problem": detail})
        if report.problems or dry_run:
            savepoint.rollback()
            report.created = []
        else:
            savepoint.commit()
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    if report.problems and not dry_run:
        lines = "; ".join(f"row {p['row']}{' ' + p['field'] if p['field'] else ''}: {p['problem']}"
                          for p in report.problems[:20])
        raise ImportRefused(f"{path.name}: import refused, nothing stored. {lines}",
                            errors=report.problems)
    return report


# -- export -----------------------------------------------------------------------------------
def export(conn: Connection, relation: str, fmt: str) -> bytes:
    """All measures of a relation (what the caller may see) as GeoJSON, GeoPackage or CSV."""
    if fmt not in FORMATS:
        raise InvalidParameter(f"format must be one of {', '.join(FORMATS)}")
    ids = [r[0] for r in conn.execute(text(f"SELECT id FROM {relation} ORDER BY id"))]
    records = [measures.get(conn, i, relation) for i in ids]
    if fmt == "geojson":
        return json.dumps({"type": "FeatureCollection",
                           "features": [measures.feature(r) for r in records]},
                          ensure_ascii=False).encode()
    flat = [_flat(r) for r in records]
    if fmt == "csv":
        out = io.StringIO()
        columns = [c for c in flat[0] if c != "geometry"] if flat else ["id", "title", "wkt"]
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for row in flat:
            row["wkt"] = row.pop("geometry").wkt
            writer.writerow(row)
        return out.getvalue().encode("utf-8")
    for row in flat:
        row.pop("wkt", None)
    gdf = gpd.GeoDataFrame(flat, geometry="geometry", crs=4326) if flat else \
        gpd.GeoDataFrame({"title": []}, geometry=gpd.GeoSeries([], crs=4326))
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "measures.gpkg"
        gdf.to_file(target, driver="GPKG", layer="measures")
        return target.read_bytes()


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    row = {}
    for key, value in record.items():
        if key == "geometry":
            row["geometry"] = shapely.geometry.shape(value)
        elif key in LIST_FIELDS or key == "quarters":
            row[key] = "; ".join(str(v) for v in value or [])
        elif isinstance(value, (list, dict)):
            row[key] = json.dumps(value, ensure_ascii=False)
        else:
            row[key] = value
    row.setdefault("wkt", None)
    return row


