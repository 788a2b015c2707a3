"""Bulk import and export of measures: GeoJSON, GeoPackage, CSV (WKT or lon/lat columns).

Imports are all-or-nothing: every row is checked first, every problem is reported with its
row number, and only a clean file is written, in the caller's transaction.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from pydantic import ValidationError
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from quarters import measures
from quarters.errors import ImportRefused, InvalidParameter, QuartersError, item, render_items
from quarters.geometry import GeometryProblem, parse_geojson
from quarters.measures import Actor
from quarters.safefiles import Limits, check_counts, check_file, kind_of, read_frame
from quarters.schemas import MeasureProperties
from quarters.validation import pydantic_items

LIST_FIELDS = ("partners", "editions")
JSON_FIELDS = ("milestones", "links", "transfer")
FORMATS = {"geojson": "application/geo+json", "gpkg": "application/geopackage+sqlite3",
           "csv": "text/csv; charset=utf-8"}
MAX_ROWS = 10_000
log = logging.getLogger("quarters.imports")
MEASURE_KINDS = ("geojson", "gpkg", "csv")


@dataclass
class ImportReport:
    """Outcome of a (dry-run) import."""

    rows: int = 0
    created: list[int] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    valid: int = 0  # rows that passed every check (a dry run's "would create")

    def as_dict(self, lang: str = "de") -> dict[str, Any]:
        """JSON-friendly form; every problem with ``code``, ``params`` and ``problem`` in
        ``lang``."""
        return {"rows": self.rows, "created": self.created,
                "problems": render_items(self.problems, lang, "invalid_input"),
                "dry_run": self.dry_run, "stored": bool(self.created), "valid": self.valid}


def read_rows(path: Path, name: str | None = None, limits: Limits | None = None
              ) -> list[tuple[dict[str, Any], Any]]:
    """(properties, GeoJSON geometry or None) per row of a GeoJSON, GeoPackage or CSV file,
    opened only as the format its name (``name``, as the user gave it) claims."""
    limits = limits or Limits.of()
    name = name or path.name
    kind = kind_of(path, name, MEASURE_KINDS)
    check_file(path, name, kind, limits)
    if kind == "csv":
        rows = _read_csv(path, name)
    elif kind == "geojson":
        rows = _read_geojson(path, name)
    else:
        gdf = read_frame(path, name, kind, limits)
        if gdf.crs is None:
            raise ImportRefused(code="file.no_crs", params={"name": name})
        gdf = gdf.to_crs(4326)
        rows = []
        for _, row in gdf.iterrows():
            props = {k: _cell(v) for k, v in row.items() if k != "geometry"}
            geom = None if row.geometry is None else json.loads(shapely.to_geojson(row.geometry))
            rows.append((_decode_lists(props), geom))
    check_counts(name, len(rows), sum(_positions(g) for _, g in rows), limits)
    return rows


def _read_geojson(path: Path, name: str) -> list[tuple[dict[str, Any], Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"),
                          parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except RecursionError:
        raise ImportRefused(code="file.json_too_deep", params={"name": name}) from None
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise ImportRefused(code="file.bad_json_at", params={
                "name": name, "line": exc.lineno, "column": exc.colno, "reason": exc.msg}) from None
        raise ImportRefused(code="file.bad_json", params={"name": name}) from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ImportRefused(code="file.not_feature_collection", params={"name": name})
    features = data.get("features", [])
    if not isinstance(features, list):
        raise ImportRefused(code="file.features_not_list", params={"name": name})
    return [(f.get("properties") or {}, f.get("geometry")) if isinstance(f, dict) else ({}, None)
            for f in features]


def _positions(geometry: Any) -> int:
    """Number of positions (vertices) in a GeoJSON geometry, without trusting its shape."""
    if not isinstance(geometry, dict):
        return 0
    stack, count = [geometry.get("coordinates")], 0
    for geom in geometry.get("geometries") or [] if isinstance(
            geometry.get("geometries"), list) else []:
        stack.append(geom.get("coordinates") if isinstance(geom, dict) else None)
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            if item and all(isinstance(v, (int, float)) for v in item):
                count += 1
            else:
                stack.extend(item)
    return count


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
                empty = None if key == "transfer" else []
                props[key] = json.loads(props[key]) if props[key].strip() else empty
            except ValueError:
                pass  # left as text: validation names the field
    for key in ("budget_planned", "budget_spent"):
        if isinstance(props.get(key), int):
            props[key] = float(props[key])
    if isinstance(props.get("parent_id"), float) and props["parent_id"].is_integer():
        props["parent_id"] = int(props["parent_id"])
    return props


def _read_csv(path: Path, name: str) -> list[tuple[dict[str, Any], Any]]:
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(code="file.not_utf8", params={"name": name}) from None
    if "\x00" in content:
        raise ImportRefused(code="file.nul_bytes", params={"name": name})
    rows = []
    try:
        records = list(csv.DictReader(io.StringIO(content)))
    except csv.Error as exc:
        raise ImportRefused(code="file.bad_csv", params={"name": name, "reason": str(exc)[:80]}) from None
    for n, record in enumerate(records, start=1):
        if None in record:
            raise ImportRefused(code="file.csv_row_cells", params={"name": name, "row": n})
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
            for e in pydantic_items(exc.errors()):
                row_problems.append({"row": n, "field": e["pointer"].lstrip("/")[:80] or "row",
                                     **e})
        try:
            geom = parse_geojson(geometry)
        except GeometryProblem as exc:
            geom = None
            row_problems.append({"row": n, "field": exc.pointer.lstrip("/"),
                                 **item(exc.pointer, exc.code, **exc.params)})
        if row_problems:
            problems.extend(row_problems)
        else:
            valid.append((n, record, geom))
    return valid, problems


def import_measures(conn: Connection, path: Path, actor: Actor, *, dry_run: bool = False,
                    name: str | None = None, limits: Limits | None = None) -> ImportReport:
    """Check all rows, then (unless dry-run) create them as drafts; all or nothing.

    ``name`` is the file's name as the user gave it (the path may be a temp file)."""
    name = name or path.name
    rows = read_rows(path, name, limits)
    if len(rows) > MAX_ROWS:
        raise ImportRefused(code="file.too_many_rows",
                            params={"name": name, "count": len(rows), "max": MAX_ROWS})
    report = ImportReport(rows=len(rows), dry_run=dry_run)
    valid, report.problems = check_rows(rows)
    savepoint = conn.begin_nested()
    try:
        for n, record, geom in valid:
            row_savepoint = conn.begin_nested()
            try:
                created = measures.create(conn, record, geom, actor)
                row_savepoint.commit()
                report.created.append(created["id"])
            except ImportRefused:
                raise
            except QuartersError as exc:  # place/parent/edition checks in the database
                row_savepoint.rollback()
                report.problems.append({"row": n, "field": (exc.pointer or "").lstrip("/"),
                                        **item(exc.pointer, exc.code, **exc.params)})
            except SQLAlchemyError as exc:  # its message names tables and values: log it only
                row_savepoint.rollback()
                log.info("import row %d refused by the database: %s", n,
                         str(exc).splitlines()[0])
                report.problems.append({"row": n, "field": "",
                                        **item(None, "file.row_refused_by_database")})
        report.valid = len(report.created)
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
        raise ImportRefused(code="file.import_refused", errors=report.problems,
                            params={"name": name, "count": len(report.problems)})
    return report


# -- export -----------------------------------------------------------------------------------
def export(conn: Connection, relation: str, fmt: str) -> bytes:
    """All measures of a relation (what the caller may see) as GeoJSON, GeoPackage or CSV."""
    if fmt not in FORMATS:
        raise InvalidParameter(code="file.export_format", pointer="format",
                               params={"allowed": ", ".join(FORMATS)})
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


