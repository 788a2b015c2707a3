"""Boundary files (GeoJSON, GeoPackage, zipped Shapefile) → municipalities, counties or
districts: read within caps, checked, reprojected, stored with their source in one transaction.

:func:`import_boundaries` / :func:`import_into` are the use-case (CLI, API upload);
:func:`load_boundaries` and :func:`write_boundaries` its two halves (also used by
``quarters data load``)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import stat
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyproj
import shapely
from geopandas.array import transform as gpd_transform
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection, Engine, text

from quarters.errors import ImportRefused, item
from quarters.geometry import problem_code, repair, to_multi
from quarters.indicators.provenance import encode_text
from quarters.layers import map_codes, overlaps, refuse_overlaps
from quarters.messages import Note
from quarters.safefiles import (
    FeatureStream,
    Limits,
    StreamFailed,
    check_file,
    kind_of,
    read_frame,
    scratch_dir,
    unpack_shapefile,
)
from quarters.settings import STORAGE_SRID
from quarters.sources import upsert_source

log = logging.getLogger("quarters.imports")
Progress = Callable[[int, int], None]
ALLOWED_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")
BOUNDARY_KINDS = ("geojson", "gpkg", "shp", "zip")
MAX_ERRORS_SHOWN = 20

LEVEL_TABLES = {"gemeinde": "municipalities", "kreis": "counties"}
DEFAULT_FIELDS = {"gemeinde": ("AGS", "GEN"), "kreis": ("AGS", "GEN")}


@dataclass
class BoundarySpec:
    """What a boundary file holds and where it goes."""

    level: str
    code_field: str | None = None
    name_field: str | None = None
    city: str | None = None  # AGS of the city, for district levels
    layer: str | None = None
    parent_field: str | None = None
    repair: bool = False
    replace: bool = False  # delete rows of this city/level that the file does not contain
    add: bool = False  # keep existing units that the new ones overlap (a second layer on purpose)
    approximate: bool = False
    code_map: dict[str, str] | None = None  # file code → stored code (see quarters.layers)
    code_rule: str | None = None  # e.g. "last2"

    @property
    def table(self) -> str:
        """Target table of this level."""
        return LEVEL_TABLES.get(self.level, "districts")

    def fields(self) -> tuple[str, str]:
        """(code field, name field), with the defaults of BKG data for Gemeinden/Kreise."""
        code, name = DEFAULT_FIELDS.get(self.level, (None, None))
        code, name = self.code_field or code, self.name_field or name
        if not code or not name:
            raise ImportRefused(code="boundaries.needs_fields", params={"level": self.level})
        return code, name


@dataclass
class ImportSummary:
    """What an import did."""

    path: str
    table: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    repaired: list[str] = field(default_factory=list)
    source_crs: str = ""
    mapped: int = 0  # codes changed by the code map / rule
    warnings: list[str] = field(default_factory=list)
    # seconds since ``started`` at the end of each phase (see import_into)
    phases: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter, repr=False)

    def mark(self, phase: str) -> None:
        """Note the end of a phase (``phases``: a time-line of the import for profiling)."""
        self.phases[phase] = time.perf_counter() - self.started


def file_checksum(path: Path) -> str:
    """sha256 of a file (of all sidecar files for a shapefile)."""
    digest = hashlib.sha256()
    files = [path]
    if path.suffix.lower() == ".shp":
        files = sorted(p for p in path.parent.glob(path.stem + ".*"))
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()


def read_file(path: Path, layer: str | None = None, limits: Limits | None = None,
              name: str | None = None) -> gpd.GeoDataFrame:
    """Read GeoJSON, GeoPackage or (zipped) Shapefile as its extension claims; refuse anything
    else, files whose content does not match, and files beyond the caps."""
    limits = limits or Limits.of()
    name = name or path.name
    kind = kind_of(path, name, BOUNDARY_KINDS)
    check_file(path, name, kind, limits)
    if kind == "zip":
        with scratch_dir(limits) as folder:
            shp = unpack_shapefile(path, name, folder, limits)
            return read_frame(shp, name, "shp", limits, layer, arrow=True)
    if kind == "shp":
        _check_sidecars(path, name, limits)
    return read_frame(path, name, kind, limits, layer, arrow=True)


def _check_sidecars(path: Path, name: str, limits: Limits) -> None:
    """The parts of a shapefile next to it must be regular files within the size cap."""
    total = 0
    for part in path.parent.glob(path.stem + ".*"):
        info = part.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise ImportRefused(code="boundaries.part_not_regular",
                                params={"name": name, "part": part.suffix})
        total += info.st_size
    if total > limits.max_bytes:
        raise ImportRefused(code="boundaries.parts_too_large",
                            params={"name": name, "size": total, "max": limits.max_bytes})


def check_frame(gdf: gpd.GeoDataFrame, name: str, spec: BoundarySpec, *,
                geometries: bool = True) -> list[dict[str, Any]]:
    """Check CRS, fields, keys and geometries; return the problems found (empty when fine).
    ``geometries=False`` leaves the geometries to :func:`write_boundaries` (chunk by chunk,
    while the database takes the rows), unless the file is refused anyway."""
    code_field, name_field = spec.fields()
    if gdf.crs is None:
        return [_file_error(name, "boundaries.no_crs")]
    missing = [f for f in (code_field, name_field, spec.parent_field) if f and f not in gdf.columns]
    if missing:
        have = ", ".join(c for c in gdf.columns if c != "geometry")
        return [_file_error(name, "boundaries.missing_fields", missing=", ".join(missing), have=have)]
    if len(gdf) == 0:
        return [_file_error(name, "boundaries.no_features")]
    errors: list[dict[str, Any]] = []
    codes = gdf[code_field].astype("string").str.strip()  # as stored
    for idx in gdf.index[codes.isna() | (codes == "")]:
        errors.append(_feature_error(name, idx, None, "boundaries.empty_code", field=code_field))
    doubles = codes[codes.duplicated(keep=False)].dropna()
    for code, rows in doubles.groupby(doubles, sort=False).groups.items():
        errors.append({**_file_error(name, "boundaries.duplicate_code", field=code_field, value=code),
                       "unit": code, "features": [int(i) for i in rows]})
    if geometries or errors:
        errors += geometry_problems(np.asarray(gdf.geometry.array, dtype=object),
                                    gdf.index.tolist(), codes.tolist(), name, spec)
    return errors


AREA_TYPES = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


def geometry_problems(geoms: np.ndarray, index: list[Any], codes: list[Any], name: str,
                      spec: BoundarySpec) -> list[dict[str, Any]]:
    """Features whose geometry cannot be stored (missing, empty, not an area, invalid unless
    ``spec.repair``), checked in the file's CRS; all at once, only suspects one by one.
    With ``spec.repair`` an invalid area is no problem here (it is repaired once stored in the
    storage CRS), so its validity is not tested twice."""
    areas = np.isin(shapely.get_type_id(geoms), AREA_TYPES)
    valid = True if spec.repair else shapely.is_valid(geoms)
    suspicious = ~(valid & areas & ~shapely.is_empty(geoms))
    errors = []
    for i in np.flatnonzero(suspicious):
        found = problem_code(geoms[i])
        if found and not (spec.repair and found[0] == "boundaries.invalid"):
            errors.append(_feature_error(name, index[i], codes[i], found[0], **found[1]))
    return errors


def _file_error(name: str, code: str, **params: Any) -> dict[str, Any]:
    return {**item(None, code, file=name, **params), "file": name}


def _feature_error(name: str, idx: Any, unit: Any, code: str, **params: Any) -> dict[str, Any]:
    unit = None if pd.isna(unit) else str(unit)
    return {**item(None, code, **params), "file": name, "feature": int(idx), "unit": unit}


def prepare(gdf: gpd.GeoDataFrame, spec: BoundarySpec, summary: ImportSummary) -> gpd.GeoDataFrame:
    """Reproject to the storage CRS, repair when asked, promote to MultiPolygon (on the whole
    geometry array; only the invalid ones are handled one by one)."""
    summary.source_crs = gdf.crs.to_string()
    cols = Columns.of(gdf, spec, reprojector(gdf.crs))
    geoms = cols.stored_geoms(0, len(gdf), spec, summary)
    return gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=STORAGE_SRID))


@functools.lru_cache(maxsize=16)
def _transformer(crs: pyproj.CRS) -> pyproj.Transformer:
    """pyproj's transformer from ``crs`` into the storage CRS (kept: building one costs
    30–100 ms; geopandas keeps its own the same way)."""
    return pyproj.Transformer.from_crs(crs, STORAGE_SRID, always_xy=True)


def reprojector(crs: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Geometries from ``crs`` into the storage CRS, as MultiPolygons: the coordinates that
    ``GeoDataFrame.to_crs`` gives (same pyproj transformer), moved through shapely's ragged
    arrays (one pass, no per-geometry copies) when all are 2-D areas."""
    transformer = _transformer(crs)

    def project(geoms: np.ndarray) -> np.ndarray:
        types = shapely.get_type_id(geoms)
        if len(geoms) and (((types == 3) | (types == 6)).all() and not shapely.has_z(geoms).any()
                           and not shapely.is_empty(geoms).any()):
            kind, coords, offsets = shapely.to_ragged_array(geoms)
            x, y = transformer.transform(coords[:, 0], coords[:, 1])
            geoms = shapely.from_ragged_array(kind, np.column_stack([x, y]), offsets)
            return geoms if kind == shapely.GeometryType.MULTIPOLYGON else multi(geoms)
        return multi(gpd_transform(geoms, transformer.transform))

    return project


def multi(geoms: np.ndarray) -> np.ndarray:
    """:func:`quarters.geometry.to_multi` over an array (non-empty Polygons at once)."""
    geoms = np.array(geoms, dtype=object)
    polys = (shapely.get_type_id(geoms) == 3) & ~shapely.is_empty(geoms)
    if polys.any():
        geoms[polys] = shapely.multipolygons(geoms[polys][:, np.newaxis])
    for i in np.flatnonzero(shapely.get_type_id(geoms) == 3):
        geoms[i] = to_multi(geoms[i])
    return geoms


def refuse(errors: list[dict[str, Any]], name: str) -> ImportRefused:
    """Build the refusal that names file, feature and problem."""
    shown = [_where(e, name) for e in errors[:MAX_ERRORS_SHOWN]]
    rest = len(errors) - len(shown)
    return ImportRefused(code="boundaries.refused", errors=errors, params={
        "file": name, "problems": shown,
        "more": {"code": "boundaries.more", "params": {"count": rest}} if rest else ""})


def _where(e: dict[str, Any], name: str) -> dict[str, Any]:
    """One problem of the refusal's line: file, feature (unit), problem."""
    problem = {"code": e["code"], "params": e["params"]}
    if "feature" not in e:
        return {"code": "boundaries.in_file", "params": {"file": e.get("file", name),
                                                         "problem": problem}}
    return {"code": "boundaries.at_feature", "params": {
        "file": e.get("file", name), "feature": str(e["feature"]),
        "unit": f" ({e['unit']})" if e.get("unit") else "", "problem": problem}}


def load_boundaries(path: Path, spec: BoundarySpec, limits: Limits | None = None, *,
                    reproject: bool = True) -> tuple[gpd.GeoDataFrame, ImportSummary]:
    """Read and check a boundary file; raise ImportRefused naming every problem. With
    ``reproject=False`` the frame stays in the file's CRS and :func:`write_boundaries`
    (``reproject=True``) checks its geometries and prepares them chunk by chunk while the
    database takes the rows (a problem found there refuses the import all the same)."""
    summary = ImportSummary(path=str(path), table=spec.table)
    gdf = read_file(path, spec.layer, limits)
    errors = check_frame(gdf, path.name, spec, geometries=reproject)
    if errors:
        raise refuse(errors, path.name)
    summary.read = len(gdf)
    if spec.code_map or spec.code_rule:
        gdf, summary.mapped = map_codes(gdf, spec.fields()[0], path.name, spec.code_map,
                                        spec.code_rule)
    summary.source_crs = gdf.crs.to_string()
    return (prepare(gdf, spec, summary) if reproject else gdf), summary


def write_boundaries(
    conn: Connection,
    gdf: gpd.GeoDataFrame | None,
    spec: BoundarySpec,
    source_id: int,
    summary: ImportSummary,
    progress: Progress | None = None,
    *,
    reproject: bool = False,
    stream: FeatureStream | None = None,
) -> ImportSummary:
    """Store the rows (same transaction); ``reproject``: the frame is still in its file's CRS
    and is prepared (:func:`prepare`) chunk by chunk while psycopg sends the previous chunk.
    ``stream`` instead of a frame: the file's features come in batches (file order,
    :class:`quarters.safefiles.FeatureStream`, in ``summary.source_crs``), each checked and
    COPYed as it arrives; a batch whose keys are empty or repeat an earlier one raises
    :class:`WholeFileNeeded` (the caller reads the file whole, so that the refusal names every
    problem). A first load (no stored row of the table, or of the city and level) is COPYed
    straight into the table; otherwise the rows are COPYed into a staging table and upserted
    from there. Writers of the table wait meanwhile (readers do not)."""
    if spec.table == "districts" and spec.replace and spec.add:
        raise ImportRefused(code="boundaries.replace_and_add")
    params = {"source": source_id, "city": spec.city, "level": spec.level,
              "approximate": spec.approximate, "srid": STORAGE_SRID}
    name = Path(summary.path).name
    if stream is None:
        crs, total = gdf.crs, len(gdf)
        whole = Columns.of(gdf, spec, name=name)  # taken out of pandas once, cut in chunks
        parts: Iterable[tuple[Columns, int, int]] = (
            (whole, start, min(start + CHUNK, total)) for start in range(0, total, CHUNK))
    else:
        crs, total = pyproj.CRS(summary.source_crs), stream.expected
        parts = _checked_parts(stream, spec, name)
    project = reprojector(crs) if reproject else multi
    errors: list[dict[str, Any]] = []  # problems found in the geometries, chunk by chunk

    def batches(build: Callable[[Columns, int, int], bytes]) -> Iterator[tuple[int, bytes]]:
        for cols, a, b in parts:
            cols.project, cols.check, cols.errors = project, reproject, errors
            if data := build(cols, a, b):
                if "first_chunk" not in summary.phases:
                    summary.mark("first_chunk")
                yield b - a, data
        summary.mark("last_chunk")
        if errors:  # raised inside the COPY: it is cancelled, nothing stored
            raise refuse(errors, name)

    conn.execute(text(f"LOCK TABLE {spec.table} IN SHARE ROW EXCLUSIVE MODE"))
    if conn.execute(text(FIRST_LOAD[spec.table]), params).scalar_one():
        rows = batches(lambda cols, a, b: cols.rows(a, b, spec, params, summary))
        summary.inserted = _copy(conn, COPY_INTO[spec.table], rows, total, progress)
        summary.mark("copied")
        return summary
    conn.execute(text("DROP TABLE IF EXISTS _stage"))
    conn.execute(text(
        "CREATE TEMP TABLE _stage (code text, name text, parent text, attrs jsonb, wkb bytea)"
        " ON COMMIT DROP"
    ))
    _copy(conn, "COPY _stage (code, name, parent, attrs, wkb) FROM STDIN (FORMAT binary)",
          batches(lambda cols, a, b: cols.stage_rows(a, b, spec, summary)), total, progress)
    summary.mark("copied")
    if spec.table == "districts":
        _one_layer(conn, spec, summary, params)
    sql = UPSERTS[spec.table]
    result = conn.execute(text(sql), params).all()
    summary.inserted = sum(1 for r in result if r.inserted)
    summary.updated = len(result) - summary.inserted
    if spec.replace and spec.table == "districts":
        summary.deleted = conn.execute(text(
            "DELETE FROM districts WHERE city_ags = :city AND level = :level"
            " AND code NOT IN (SELECT code FROM _stage)"
        ), params).rowcount
    conn.execute(text("DROP TABLE _stage"))
    return summary


class WholeFileNeeded(Exception):
    """A streamed batch has a key problem: read the file whole (the refusal names them all)."""


def _checked_parts(stream: FeatureStream, spec: BoundarySpec, name: str
                   ) -> Iterator[tuple[Columns, int, int]]:
    """The stream's batches as columns in chunks, their keys checked as they come (none
    empty, none repeating one seen before)."""
    code_field = spec.fields()[0]
    seen: set[str] = set()
    for frame, geoms in stream:
        codes = frame[code_field].astype("string").str.strip()  # as stored
        if (codes.isna() | (codes == "")).any() or codes.duplicated().any() \
                or not seen.isdisjoint(codes):
            raise WholeFileNeeded
        seen.update(codes)
        cols = Columns.of(frame, spec, name=name, geoms=geoms)
        for start in range(0, len(frame), CHUNK):
            yield cols, start, min(start + CHUNK, len(frame))


CHUNK = 500  # rows per COPY write (and per progress tick)
STREAM_BATCH = 4 * CHUNK  # features per batch of the stream
_JSONB = b"\x01"  # jsonb's binary format: version 1, then the JSON text


@dataclass
class Columns:
    """The columns of a boundary frame as COPY wants them, taken out of pandas once; the rows
    of a chunk are cut from these lists (no frame per chunk)."""

    index: list[Any]
    codes: list[str]
    names: list[str]
    parents: list[str | None]
    keys: list[str]  # attribute names
    values: list[list[Any]]  # attribute columns, JSON-ready
    geoms: np.ndarray  # in the file's CRS
    project: Callable[[np.ndarray], np.ndarray]
    name: str = ""  # the file, for problems found while the rows are written
    check: bool = False  # check the geometries (in the file's CRS) chunk by chunk
    errors: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, gdf: pd.DataFrame, spec: BoundarySpec,
           project: Callable[[np.ndarray], np.ndarray] = multi, *, name: str = "",
           check: bool = False, geoms: np.ndarray | None = None) -> Columns:
        """The columns of a frame whose fields and keys are checked; ``project`` turns its
        geometries (the frame's, or ``geoms`` beside a frame of attributes only) into the
        stored MultiPolygons; ``check``: :func:`geometry_problems` chunk by chunk first."""
        code_field, name_field = spec.fields()
        skip = {code_field, name_field}
        if geoms is None:
            skip.add(gdf.geometry.name)
            geoms = np.asarray(gdf.geometry.array, dtype=object)
        parents = ([None if pd.isna(v) else str(v) for v in gdf[spec.parent_field]]
                   if spec.parent_field else [None] * len(gdf))
        keys = [c for c in gdf.columns if c not in skip]
        return cls(index=gdf.index.tolist(),
                   codes=gdf[code_field].astype(str).str.strip().tolist(),
                   names=gdf[name_field].astype(str).str.strip().tolist(), parents=parents,
                   keys=keys, values=[_json_ready(gdf[c]) for c in keys], geoms=geoms,
                   project=project, name=name, check=check)

    def stored_geoms(self, start: int, stop: int, spec: BoundarySpec,
                     summary: ImportSummary) -> np.ndarray:
        """MultiPolygons of rows start…stop in the storage CRS; those that reprojection made
        invalid are repaired (``spec.repair``) or refused. None once a problem was found
        (the rest is only checked, so that the refusal names every problem)."""
        if self.check:
            self.errors += geometry_problems(self.geoms[start:stop], self.index[start:stop],
                                             self.codes[start:stop], self.name, spec)
        if self.errors:
            return None
        geoms = self.project(self.geoms[start:stop])
        for i in np.flatnonzero(~shapely.is_valid(geoms)):
            row, geom = start + i, geoms[i]
            if not spec.repair:
                raise ImportRefused(code="boundaries.invalid_after_reprojection", params={
                    "feature": str(self.index[row]), "unit": self.codes[row],
                    "reason": shapely.is_valid_reason(geom)})
            summary.repaired.append(f"{self.codes[row]} {self.names[row]}: "
                                    f"{shapely.is_valid_reason(geom)}")
            geoms[i] = to_multi(repair(geom))
        return geoms

    def rows(self, start: int, stop: int, spec: BoundarySpec, params: dict[str, Any],
             summary: ImportSummary) -> bytes:
        """Rows start…stop of the target table's binary COPY (see :data:`COPY_INTO`); the
        geometries as plain WKB (PostGIS gives them the column's SRID)."""
        geoms = self.stored_geoms(start, stop, spec, summary)
        if geoms is None:
            return b""
        wkb = shapely.to_wkb(geoms).tolist()
        codes, names = _utf8(self.codes[start:stop]), _utf8(self.names[start:stop])
        attrs = self._attrs(start, stop)
        source = int(params["source"]).to_bytes(4, "big", signed=True)
        if spec.table == "districts":
            flag = b"\x01" if spec.approximate else b"\x00"
            return _binary([_utf8([spec.city])[0], _utf8([spec.level])[0], codes, names,
                            _utf8(self.parents[start:stop]), flag, attrs, source, wkb],
                           stop - start)
        ars, bez = (_utf8(self._text_of(key, start, stop)) for key in ("ARS", "BEZ"))
        return _binary([codes, ars, names, bez, attrs, source, wkb], stop - start)

    def stage_rows(self, start: int, stop: int, spec: BoundarySpec,
                   summary: ImportSummary) -> bytes:
        """Rows start…stop of the staging table ``_stage`` (code, name, parent, attrs, wkb),
        binary COPY."""
        geoms = self.stored_geoms(start, stop, spec, summary)
        if geoms is None:
            return b""
        return _binary([_utf8(self.codes[start:stop]), _utf8(self.names[start:stop]),
                        _utf8(self.parents[start:stop]), self._attrs(start, stop),
                        shapely.to_wkb(geoms).tolist()], stop - start)

    def _attrs(self, start: int, stop: int) -> list[bytes] | bytes:
        """The attributes of rows start…stop as jsonb's binary input: the version byte and
        one JSON object each (missing values null)."""
        if not self.keys:
            return _JSONB + b"{}"
        keys, dumps, option = self.keys, orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
        return [_JSONB + dumps(dict(zip(keys, row, strict=True)), option=option,
                               default=_json_default)
                for row in zip(*(v[start:stop] for v in self.values), strict=True)]

    def _text_of(self, key: str, start: int, stop: int) -> list[str | None]:
        """An attribute as ``attributes->>key`` gives it (NULL when absent)."""
        if key not in self.keys:
            return [None] * (stop - start)
        return [v if type(v) is str else _json_text(v)
                for v in self.values[self.keys.index(key)][start:stop]]


def _json_ready(column: pd.Series) -> list[Any]:
    """A column's values as the attribute JSON holds them (timestamps ISO 8601)."""
    return _iso(column) if str(column.dtype).startswith("datetime") else column.tolist()


def _json_text(value: Any) -> str | None:
    """What PostgreSQL's ``->>`` gives for this attribute value."""
    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=_json_default).decode()


def _iso(column: pd.Series) -> list[str | None]:
    """Timestamps as ``Timestamp.isoformat()`` writes them (whole seconds at once)."""
    values = column.to_numpy()
    if values.dtype.kind == "M" and (values.astype("datetime64[s]") == values)[~pd.isna(values)].all():
        text = np.datetime_as_string(values, unit="s")
        return [None if t == "NaT" else str(t) for t in text.tolist()]
    return [None if pd.isna(v) else v.isoformat() for v in column.tolist()]


_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # binary COPY header: no flags, no extension
_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"  # field length -1
_length = struct.Struct(">i").pack


def _utf8(values: list[str | None]) -> list[bytes | None]:
    """Text values as binary COPY sends them (the connection speaks UTF-8, see _copy)."""
    if None in values:
        return [None if v is None else v.encode() for v in values]
    return list(map(str.encode, values))


def _binary(columns: list[list[bytes | None] | bytes | None], n: int) -> bytes:
    """``n`` rows of binary COPY data from columns of field values (bytes in the column
    type's binary format; None is NULL; a single bytes value: the same in every row). The
    rows are interleaved by ``zip``/``chain`` and joined once: no Python code per field
    (psycopg's ``write_row`` runs its dumpers per field)."""
    streams: list[Iterable[bytes]] = [itertools.repeat(len(columns).to_bytes(2, "big"), n)]
    for column in columns:
        if column is None or isinstance(column, bytes):
            streams += [itertools.repeat(_NULL if column is None else _length(len(column)), n),
                        itertools.repeat(column or b"", n)]
        elif None in column:
            streams += [[_NULL if v is None else _length(len(v)) for v in column],
                        [b"" if v is None else v for v in column]]
        else:
            streams += [list(map(_length, map(len, column))), column]
    return b"".join(itertools.chain.from_iterable(zip(*streams, strict=True)))


def _copy(conn: Connection, sql: str, chunks: Iterable[tuple[int, bytes]], total: int,
          progress: Progress | None) -> int:
    """Binary COPY of the chunks (rows, data) (psycopg sends one while the next is built);
    return the number of rows."""
    raw = conn.connection.driver_connection
    if raw.info.encoding != "utf-8":
        raw.execute("SET LOCAL client_encoding = 'UTF8'")  # what _utf8 writes
    done = 0
    with raw.cursor() as cur:
        # a worker thread sends the rows: the next chunk is built while the socket waits
        with cur.copy(sql, writer=QueuedLibpqWriter(cur)) as copy:
            copy.write(_SIGNATURE)
            for rows, data in chunks:
                copy.write(data)
                done += rows
                if progress:
                    progress(done, total)
            copy.write(_TRAILER)
        return cur.rowcount


def _one_layer(conn: Connection, spec: BoundarySpec, summary: ImportSummary,
               params: dict[str, Any]) -> None:
    """Refuse a second layer over the existing units of the city and level (unless --replace
    or --add); warn when --replace drops units that carry indicator values."""
    name = Path(summary.path).name
    existing = conn.execute(text(
        "SELECT count(*) FROM districts WHERE city_ags = :city AND level = :level"),
        params).scalar_one()
    if not existing:
        return
    found = overlaps(conn, params)
    if found and not (spec.replace or spec.add):
        raise refuse_overlaps(found, name, spec.level, spec.city or "", summary.read, existing)
    if found and spec.add:
        summary.warnings.append(Note("add_overlaps", count=len(found), level=spec.level))
    if spec.replace:
        orphaned = conn.execute(text(
            "SELECT count(DISTINCT unit_code) FROM indicator_values WHERE level = :level"
            " AND unit_code IN (SELECT code FROM districts WHERE city_ags = :city"
            " AND level = :level AND code NOT IN (SELECT code FROM _stage))"), params).scalar_one()
        if orphaned:
            summary.warnings.append(Note("replace_orphans", count=orphaned, level=spec.level))


def _json_default(value: Any) -> Any:
    """orjson fallback: missing values become null, other objects their text."""
    if value is None or pd.isna(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


_GEOM = "ST_Multi(ST_GeomFromWKB(s.wkb, :srid))"


def _admin_upsert(table: str) -> str:
    """Upsert of BKG administrative areas (Gemeinden, Kreise), keyed by AGS."""
    return f"""
        INSERT INTO {table} (ags, ars, name, bez, attributes, source_id, geom)
        SELECT s.code, s.attrs->>'ARS', s.name, s.attrs->>'BEZ', s.attrs, :source, {_GEOM}
        FROM _stage s
        ON CONFLICT (ags) DO UPDATE SET ars = EXCLUDED.ars, name = EXCLUDED.name,
            bez = EXCLUDED.bez, attributes = EXCLUDED.attributes,
            source_id = EXCLUDED.source_id, geom = EXCLUDED.geom
        RETURNING (xmax = 0) AS inserted"""


UPSERTS = {
    "municipalities": _admin_upsert("municipalities"),
    "counties": _admin_upsert("counties"),
    "districts": f"""
        INSERT INTO districts (city_ags, level, code, name, parent_name, approximate,
                               attributes, source_id, geom)
        SELECT :city, :level, s.code, s.name, s.parent, :approximate, s.attrs, :source, {_GEOM}
        FROM _stage s
        ON CONFLICT (city_ags, level, code) DO UPDATE SET name = EXCLUDED.name,
            parent_name = COALESCE(EXCLUDED.parent_name, districts.parent_name),
            approximate = EXCLUDED.approximate,
            attributes = districts.attributes || EXCLUDED.attributes,
            source_id = EXCLUDED.source_id, geom = EXCLUDED.geom
        RETURNING (xmax = 0) AS inserted""",
}


_ADMIN = "(ags, ars, name, bez, attributes, source_id, geom) FROM STDIN (FORMAT binary)"
COPY_INTO = {
    "municipalities": f"COPY municipalities {_ADMIN}",
    "counties": f"COPY counties {_ADMIN}",
    "districts": "COPY districts (city_ags, level, code, name, parent_name, approximate,"
                 " attributes, source_id, geom) FROM STDIN (FORMAT binary)",
}
# True when the table (of the city and level) holds no row yet: COPY straight into it
FIRST_LOAD = {
    "municipalities": "SELECT NOT EXISTS (SELECT 1 FROM municipalities)",
    "counties": "SELECT NOT EXISTS (SELECT 1 FROM counties)",
    "districts": "SELECT NOT EXISTS (SELECT 1 FROM districts WHERE city_ags = :city"
                 " AND level = :level)",
}


def import_boundaries(engine: Engine, path: Path, spec: BoundarySpec, **kwargs) -> ImportSummary:
    """Import a boundary file in its own transaction (all or nothing)."""
    with engine.begin() as conn:
        summary = import_into(conn, path, spec, **kwargs)
    summary.mark("committed")
    return summary


def import_into(
    conn: Connection,
    path: Path,
    spec: BoundarySpec,
    *,
    source_name: str | None = None,
    licence: str = "nicht angegeben",
    attribution: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Check the file, then store it with its source inside the caller's transaction.

    The layer's CRS and fields are checked first; its features follow in batches from a
    reader thread (:class:`quarters.safefiles.FeatureStream`) and each batch is checked
    (keys, geometries), reprojected and COPYed while the next one is read and the database
    takes the previous one. A file with a problem in its keys (or one the stream cannot give,
    or one whose codes are mapped) is read whole instead, so that the refusal names every
    problem."""
    started = time.perf_counter()  # of the time-line in ImportSummary.phases
    if spec.table == "districts" and not spec.city:
        raise ImportRefused(code="boundaries.needs_city",
                            params={"name": path.name, "level": spec.level})
    with ThreadPoolExecutor(1) as pool, contextlib.ExitStack() as stack:
        checksum = pool.submit(file_checksum, path)  # sha256 releases the GIL: beside the read
        # a district file for a city not loaded: its own problems are named first (whole)
        opened = open_boundaries(path, spec, stack) if _city_loaded(conn, spec) else None
        if opened is not None:
            summary, stream = opened
            summary.started = started
            summary.mark("attributes")
            try:
                return _store(conn, path, spec, summary, checksum.result(), progress,
                              source_name, licence, attribution, stream=stream)
            except (WholeFileNeeded, StreamFailed):
                stream.close()
            except ImportRefused as exc:  # raised at once: a later batch may hold more
                if exc.code != "boundaries.invalid_after_reprojection":
                    raise
                stream.close()
        gdf, summary = load_boundaries(path, spec, reproject=False)  # refuses, naming all
        summary.started = started
        summary.mark("attributes")
        return _store(conn, path, spec, summary, checksum.result(), progress, source_name,
                      licence, attribution, gdf=gdf)


def _store(conn: Connection, path: Path, spec: BoundarySpec, summary: ImportSummary,
           checksum: str, progress: Progress | None, source_name: str | None, licence: str,
           attribution: str | None, *, gdf: gpd.GeoDataFrame | None = None,
           stream: FeatureStream | None = None) -> ImportSummary:
    """The source and the rows of a checked file (a frame or a stream) in a savepoint."""
    if not _city_loaded(conn, spec):
        raise ImportRefused(code="boundaries.city_not_loaded",
                            params={"name": path.name, "city": spec.city})
    # A problem found while the rows are written (they are checked chunk by chunk) rolls
    # back to here: the caller's transaction holds nothing of this file.
    with conn.begin_nested():
        src = upsert_source(
            conn, f"import:{spec.table}:{spec.level}:{path.name}"[:80],
            name=source_name or path.name, licence=licence,
            attribution=attribution or source_name or path.name, checksum=checksum,
            note=encode_text(Note("boundaries.source_imported", file=path.name,
                                  count=summary.read)),
        )
        summary.mark("source")
        write_boundaries(conn, gdf, spec, src, summary, progress, reproject=True,
                         stream=stream)
        summary.mark("written")
    summary.mark("released")
    log.debug("import of %s: %s", path.name,
              ", ".join(f"{k} {v:.3f} s" for k, v in summary.phases.items()))
    return summary


def _city_loaded(conn: Connection, spec: BoundarySpec) -> bool:
    """Whether the city of a district file (if any) is a stored municipality."""
    return not spec.city or conn.execute(
        text("SELECT 1 FROM municipalities WHERE ags = :a"), {"a": spec.city}).first() is not None


# what the stream reads as the whole-file reader would (other fields: read whole)
STREAMED_TYPES = {"OFTString", "OFTInteger", "OFTInteger64", "OFTReal", "OFTDate"}
STREAMED_SUBTYPES = {"OFSTNone", "OFSTBoolean", "OFSTInt16", "OFSTFloat32"}


def open_boundaries(path: Path, spec: BoundarySpec, stack: contextlib.ExitStack,
                    limits: Limits | None = None
                    ) -> tuple[ImportSummary, FeatureStream] | None:
    """The checks of :func:`load_boundaries` that the layer's info answers (CRS, fields, a
    feature) and the stream of its features, already reading (closed with ``stack``); None
    when these find a problem, the codes are mapped (a clash needs all codes) or a field is
    of a kind the stream does not give as the whole-file reader (then
    :func:`load_boundaries` reads it whole and names every problem)."""
    if spec.code_map or spec.code_rule:
        return None
    limits = limits or Limits.of()
    original, name = path, path.name
    kind = kind_of(path, name, BOUNDARY_KINDS)
    check_file(path, name, kind, limits)
    if kind == "zip":
        path, kind = unpack_shapefile(path, name, stack.enter_context(scratch_dir(limits)),
                                      limits), "shp"
    elif kind == "shp":
        _check_sidecars(path, name, limits)
    # batches of several chunks: a batch's columns are taken out of pandas at once
    stream = FeatureStream(path, name, kind, limits, spec.layer, STREAM_BATCH)
    stack.callback(stream.close)
    info = stream.open()
    fields = set(info["fields"])
    wanted = {f for f in (*spec.fields(), spec.parent_field) if f}
    if (info.get("crs") is None or not wanted <= fields or stream.expected <= 0
            or not set(info["ogr_types"]) <= STREAMED_TYPES
            or not set(info["ogr_subtypes"]) <= STREAMED_SUBTYPES):
        stream.close()
        return None
    summary = ImportSummary(path=str(original), table=spec.table, read=stream.expected,
                            source_crs=pyproj.CRS(info["crs"]).to_string())
    return summary, stream
