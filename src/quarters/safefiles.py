"""Import files are opened only as what their names claim, offline, within caps.

Every import (boundaries, measures, indicators; CLI and API) goes through here:

* the extension decides the format, and the first bytes must match it (magic bytes);
* GDAL gets the driver pinned by a prefix (``GPKG:``, ``GeoJSON:``, ``CSV:``), so a ``.gpkg``
  that is really an OGR VRT is refused instead of read; a shapefile must start with its
  header 0x0000270a;
* while GDAL reads an upload its network and virtual file systems are off;
* a zip is checked (members, sizes, paths) before anything is unpacked, and unpacked into the
  import temp directory, never read through ``/vsizip``;
* caps on file size, layers, features and vertices (settings ``max_import_*``);
* refusals name the file as the user gave it and the problem, never file contents, GDAL
  messages (which carry server paths) or temp paths; those go to the log.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import stat
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyogrio
import pyogrio.errors
import shapely

from quarters.errors import ImportRefused
from quarters.importtmp import process_tmp
from quarters.settings import Settings, get_settings

log = logging.getLogger("quarters.imports")

KINDS = {".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson", ".shp": "shp",
         ".zip": "zip", ".csv": "csv"}
LABELS = {"gpkg": "GeoPackage", "geojson": "GeoJSON", "shp": "Shapefile",
          "zip": "zipped Shapefile", "csv": "CSV"}
SQLITE_MAGIC = b"SQLite format 3\x00"
ZIP_MAGIC = b"PK\x03\x04"
SHP_MAGIC = b"\x00\x00\x27\x0a"
SHP_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")

# GDAL configuration while an upload is read: no network, no surprise file systems.
OFFLINE = {
    "GDAL_HTTP_PROXY": "127.0.0.1:9",  # any HTTP request would go to the discard port
    "GDAL_HTTPS_PROXY": "127.0.0.1:9",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
    "GDAL_HTTP_MAX_RETRY": "0",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".quarters-offline",
    "CPL_VSIL_CURL_USE_HEAD": "NO",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "OGR_SQLITE_ALLOW_VIRTUALOGR": "NO",
    "GDAL_NETRC": "NO",
    "PROJ_NETWORK": "OFF",
}
_gdal_lock = threading.Lock()
_gdal_users = 0  # readers inside offline_gdal()
_gdal_saved: dict = {}  # the configuration before the first of them


@dataclass(frozen=True)
class Limits:
    """Caps of one import, from the settings."""

    max_bytes: int
    max_layers: int
    max_features: int
    max_vertices: int
    max_zip_members: int
    tmp: Path

    @classmethod
    def of(cls, settings: Settings | None = None) -> Limits:
        """The caps of these (or the process') settings."""
        s = settings or get_settings()
        return cls(s.max_import_bytes, s.max_import_layers, s.max_import_features,
                   s.max_import_vertices, s.max_zip_members, s.import_tmp)


def kind_of(path: Path, name: str, allowed: tuple[str, ...]) -> str:
    """The format the file's name claims, if it is one of ``allowed``."""
    kind = KINDS.get(Path(name).suffix.lower())
    if kind not in allowed:
        wanted = ", ".join(LABELS[k] for k in dict.fromkeys(allowed))
        raise ImportRefused(code="file.unsupported_type",
                            params={"name": name, "suffix": Path(name).suffix, "allowed": wanted})
    return kind


def check_file(path: Path, name: str, kind: str, limits: Limits) -> None:
    """Refuse virtual paths, non-regular files, too large files and wrong magic bytes."""
    if "/vsi" in str(path).lower() or str(path).lower().startswith("vsi"):
        raise ImportRefused(code="file.virtual_path", params={"name": name})
    try:
        info = path.lstat()
    except OSError:
        raise ImportRefused(code="file.not_found", params={"name": name}) from None
    if not stat.S_ISREG(info.st_mode):
        raise ImportRefused(code="file.not_regular", params={"name": name})
    if info.st_size > limits.max_bytes:
        raise ImportRefused(code="file.too_large", params={"name": name, "size": info.st_size,
                                                               "max": limits.max_bytes})
    with path.open("rb") as fh:
        head = fh.read(4096)
    if not magic_matches(head, kind):
        raise ImportRefused(code="file.wrong_content",
                            params={"name": name, "format": LABELS[kind]})


def magic_matches(head: bytes, kind: str) -> bool:
    """Whether the first bytes of a file fit the format."""
    if kind == "gpkg":
        return head.startswith(SQLITE_MAGIC)
    if kind == "zip":
        return head.startswith(ZIP_MAGIC)
    if kind == "shp":
        return head.startswith(SHP_MAGIC)
    if kind == "geojson":
        return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n").startswith(b"{")
    if kind == "csv":
        return b"\x00" not in head and not head.startswith((SQLITE_MAGIC, ZIP_MAGIC))
    return False


def gdal_source(path: Path, kind: str) -> str:
    """The path with GDAL's driver pinned (a shapefile has no prefix: its header is checked)."""
    absolute = str(path.resolve())
    prefix = {"gpkg": "GPKG:", "geojson": "GeoJSON:", "csv": "CSV:"}.get(kind, "")
    return prefix + absolute


@contextlib.contextmanager
def offline_gdal() -> Iterator[None]:
    """GDAL without network while an import reads a file (options restored when the last
    reader is done: readers in several threads, e.g. an import's attributes and its
    :class:`FeatureStream`, share the offline configuration)."""
    global _gdal_users, _gdal_saved
    with _gdal_lock:
        if not _gdal_users:
            _gdal_saved = {k: pyogrio.get_gdal_config_option(k) for k in OFFLINE}
            pyogrio.set_gdal_config_options(OFFLINE)
        _gdal_users += 1
    try:
        yield
    finally:
        with _gdal_lock:
            _gdal_users -= 1
            if not _gdal_users:
                pyogrio.set_gdal_config_options(_gdal_saved)


def unpack_shapefile(path: Path, name: str, dest: Path, limits: Limits) -> Path:
    """Check a zip before unpacking it; unpack the one shapefile it holds; return its .shp."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ImportRefused(code="file.bad_zip", params={"name": name}) from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_zip_members:
            raise ImportRefused(code="file.zip_members",
                                params={"name": name, "count": len(members),
                                         "max": limits.max_zip_members})
        total = sum(m.file_size for m in members)
        if total > limits.max_bytes:
            raise ImportRefused(code="file.zip_too_large", params={"name": name, "size": total,
                                                                   "max": limits.max_bytes})
        parts: dict[str, zipfile.ZipInfo] = {}
        stems = set()
        for m in members:
            member = PurePosixPath(m.filename.replace("\\", "/"))
            mode = m.external_attr >> 16
            if member.is_absolute() or ".." in member.parts or ":" in m.filename:
                raise ImportRefused(code="file.zip_outside",
                                    params={"name": name, "member": _short(m.filename)})
            if stat.S_ISLNK(mode):
                raise ImportRefused(code="file.zip_link",
                                    params={"name": name, "member": _short(m.filename)})
            if m.is_dir() or member.name.startswith(".") or "__MACOSX" in member.parts:
                continue
            suffix = member.suffix.lower()
            if suffix in SHP_PARTS:
                stems.add(str(member.with_suffix("")).lower())
                parts[suffix] = m
        if ".shp" not in parts:
            raise ImportRefused(code="file.zip_no_shp", params={"name": name})
        if len(stems) > 1:
            raise ImportRefused(code="file.zip_several", params={"name": name})
        dest.mkdir(parents=True, exist_ok=True)
        for suffix, m in parts.items():
            target = dest / f"layer{suffix}"
            with archive.open(m) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)  # zipfile stops at the declared size
            if target.stat().st_size != m.file_size:
                raise ImportRefused(code="file.zip_damaged",
                                    params={"name": name, "member": _short(m.filename)})
    shp = dest / "layer.shp"
    with shp.open("rb") as fh:
        if not magic_matches(fh.read(4), "shp"):
            raise ImportRefused(code="file.wrong_content",
                                params={"name": name, "format": "Shapefile"})
    return shp


@contextlib.contextmanager
def scratch_dir(limits: Limits) -> Iterator[Path]:
    """A fresh directory under the import temp directory, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="import-", dir=process_tmp(limits.tmp)))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_counts(name: str, features: int, vertices: int, limits: Limits) -> None:
    """Refuse files with more features or vertices than the caps."""
    if features > limits.max_features:
        raise ImportRefused(code="file.too_many_features", params={"name": name, "count": features,
                                                                       "max": limits.max_features})
    if vertices > limits.max_vertices:
        raise ImportRefused(code="file.too_many_vertices", params={"name": name, "count": vertices,
                                                                       "max": limits.max_vertices})


def count_vertices(geoms) -> int:  # noqa: ANN001
    """Vertices of an array of shapely geometries (None counts 0)."""
    return int(shapely.get_num_coordinates(geoms).sum()) if len(geoms) else 0


def read_frame(path: Path, name: str, kind: str, limits: Limits, layer: str | None = None,  # noqa: ANN201
               *, arrow: bool = False):
    """Read a GeoPackage, GeoJSON or (unpacked) Shapefile with the driver pinned, offline,
    within the caps; return a GeoDataFrame. ``path`` is checked by :func:`check_file`.
    ``arrow``: through GDAL's Arrow stream (pyarrow; about half the time of the row reader)."""
    source = _pinned_source(path, name, kind)
    try:
        with offline_gdal():
            _layer_info(source, name, limits, layer)
            gdf = _read_dataframe(source, layer, arrow)
    except ImportRefused:
        raise
    except Exception as exc:  # GDAL's message names server paths: log it, answer plainly
        raise _unreadable(name, kind, exc) from None
    if "geometry" not in gdf.columns:
        raise ImportRefused(code="file.no_geometry", params={"name": name})
    check_counts(name, len(gdf), count_vertices(gdf.geometry.values), limits)
    return gdf


STREAM_AHEAD = 3  # batches the reader of a FeatureStream may read ahead of its caller


class StreamFailed(Exception):
    """The stream could not give the layer as the whole-file reader would (GDAL's Arrow
    stream failed, or the count differs): read the file whole instead, which decides."""


# GDAL's Arrow data as pandas, the same for a whole layer and for each batch of it: dates as
# datetime64, integers with gaps as integers (not floats, which a batch without a gap is not)
ARROW_TO_PANDAS = {"date_as_object": False, "integer_object_nulls": True}


class FeatureStream:
    """The features of a file's layer in batches of ``batch`` (attribute frame indexed by the
    feature's position, shapely array), in file order, read and converted by a thread of its
    own while the caller works on the previous batch (GDAL, Arrow and shapely's WKB parser
    release the GIL). :meth:`open` applies the layer and feature caps, returns pyogrio's
    layer info and starts the reader; the vertex cap is applied as the batches come (the
    batch that passes it raises ``file.too_many_vertices``). Anything else the stream cannot
    give as :func:`read_frame` would (a failing Arrow stream, another feature count than the
    info's) raises :class:`StreamFailed`. :meth:`close` stops the reader."""

    def __init__(self, path: Path, name: str, kind: str, limits: Limits,
                 layer: str | None = None, batch: int = 500) -> None:
        self.source, self.name, self.kind, self.limits = _pinned_source(path, name, kind), \
            name, kind, limits
        self.layer, self.batch, self.expected = layer, batch, 0
        # a few batches ahead of the caller at most (the reader waits for room)
        self._queue: queue.Queue = queue.Queue(maxsize=STREAM_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="quarters-read", daemon=True)

    def open(self) -> dict:
        """Check the layer (caps, a geometry column), start reading; return its info."""
        try:
            with offline_gdal():
                info = _layer_info(self.source, self.name, self.limits, self.layer)
        except ImportRefused:
            raise
        except Exception as exc:
            raise _unreadable(self.name, self.kind, exc) from None
        if info.get("geometry_type") is None:
            raise ImportRefused(code="file.no_geometry", params={"name": self.name})
        self.expected = int(info.get("features", -1))
        self._thread.start()
        return info

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return

    def _read(self) -> None:
        vertices = offset = 0
        try:
            with offline_gdal(), pyogrio.open_arrow(
                    self.source, layer=self.layer, batch_size=self.batch,
                    use_pyarrow=True) as (meta, reader):
                column = meta["geometry_name"] or "wkb_geometry"
                for batch in reader:
                    if self._stop.is_set():
                        return
                    wkb = batch.column(batch.schema.get_field_index(column))
                    if isinstance(wkb.type, pa.BaseExtensionType):
                        wkb = wkb.storage
                    geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False),
                                             on_invalid="raise")
                    vertices += count_vertices(geoms)
                    check_counts(self.name, 0, vertices, self.limits)
                    attributes = batch.drop_columns([column])
                    attributes.validate(full=True)  # text in UTF-8 (else: read whole)
                    frame = pa.Table.from_batches([attributes]).to_pandas(**ARROW_TO_PANDAS)
                    frame.index = range(offset, offset + len(frame))
                    offset += len(frame)
                    self._put((frame, geoms))
        except ImportRefused as exc:
            self._put(exc)
        except Exception as exc:  # noqa: BLE001 - the whole-file reader decides, logged
            log.info("streamed read of %s failed: %s", self.name, str(exc).splitlines()[0]
                     if str(exc) else exc)
            self._put(StreamFailed(str(exc)))
        else:
            self._put(None)

    def __iter__(self) -> Iterator:
        features = 0
        while (item := self._queue.get()) is not None:
            if isinstance(item, (ImportRefused, StreamFailed)):
                raise item
            features += len(item[1])
            if features > self.expected:
                break
            yield item
        if features != self.expected:
            raise StreamFailed(f"{features} features or more for {self.expected}")

    def close(self) -> None:
        """Stop the reader (it ends after the batch it is reading), wait for it and drop the
        batches it had read ahead."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()


def _pinned_source(path: Path, name: str, kind: str) -> str:
    """GDAL's name of the file with its driver pinned (a shapefile's header checked)."""
    source = gdal_source(path, kind)
    if kind == "shp":  # GDAL has no prefix for shapefiles: the header is the pin
        with path.open("rb") as fh:
            if not magic_matches(fh.read(4), "shp"):
                raise ImportRefused(code="file.wrong_content",
                                    params={"name": name, "format": "Shapefile"})
    return source


def _layer_info(source: str, name: str, limits: Limits, layer: str | None) -> dict:
    """pyogrio's info of the layer to read: one layer (or the named one), within the layer
    and feature caps."""
    layers = pyogrio.list_layers(source)
    if len(layers) > limits.max_layers:
        raise ImportRefused(code="file.too_many_layers",
                            params={"name": name, "count": len(layers),
                                                                 "max": limits.max_layers})
    if len(layers) == 0:
        raise ImportRefused(code="file.no_layer", params={"name": name})
    names = [str(n) for n in layers[:, 0]]
    if layer is None and len(names) > 1:
        raise ImportRefused(code="file.several_layers",
                            params={"name": name, "layers": _short(", ".join(names), 200)})
    if layer is not None and layer not in names:
        raise ImportRefused(code="file.unknown_layer",
                            params={"name": name, "layer": _short(layer),
                                                             "layers": _short(", ".join(names), 200)})
    info = pyogrio.read_info(source, layer=layer)
    if info.get("features", -1) > limits.max_features:
        raise ImportRefused(code="file.too_many_features",
                            params={"name": name, "count": info["features"],
                                                               "max": limits.max_features})
    return info


def _unreadable(name: str, kind: str, exc: Exception) -> ImportRefused:
    """The refusal of a file GDAL could not read (its message, which names server paths,
    goes to the log only)."""
    log.info("import of %s refused: %s", name, str(exc).splitlines()[0] if str(exc) else exc)
    return ImportRefused(code="file.unreadable", params={"name": name, "format": LABELS[kind]})


def _read_dataframe(source: str, layer: str | None, arrow: bool, *,  # noqa: ANN202
                    read_geometry: bool = True):
    """pyogrio's reader; with ``arrow`` its Arrow path (dates as datetime64, as the row reader
    gives them), and the row reader for what Arrow cannot take: text not in UTF-8 (a
    shapefile in Latin-1 without a .cpg: GDAL's Arrow stream passes the bytes through, the
    row reader decodes them with the layer's encoding)."""
    if arrow:
        try:
            frame = pyogrio.read_dataframe(source, layer=layer, use_arrow=True,
                                           read_geometry=read_geometry,
                                           arrow_to_pandas_kwargs=ARROW_TO_PANDAS)
            for column in frame.columns:
                if frame[column].dtype == "string":
                    frame[column].array.__arrow_array__().validate(full=True)
            return frame
        except (pa.ArrowException, UnicodeDecodeError) as exc:
            log.info("Arrow read of a layer failed, row reader instead: %s", type(exc).__name__)
        except pyogrio.errors.DataSourceError as exc:
            if "UTF-8" not in str(exc):
                raise
    return pyogrio.read_dataframe(source, layer=layer, read_geometry=read_geometry)


def _short(text: str, n: int = 80) -> str:
    """At most ``n`` characters of a text taken from the input."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= n else text[: n - 1] + "…"
