"""The vector tile cache: never stale, because every key holds the data version.

A tile is stored under (collection, tile matrix set, z, x, y, data version); every write bumps
the version (migration 0007), so a tile built before a write is simply never asked for again.
An in-process LRU answers repeated tiles without the database; the optional disk directory
(``QUARTERS_TILE_CACHE_DIR``) is shared by workers and survives restarts. Files are written
to a temporary name and renamed (atomic), one directory per data version; older versions'
directories are removed when a newer one is created.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple


class TileKey(NamedTuple):
    """What a tile depends on."""

    collection: str
    tms: str
    z: int
    x: int
    y: int
    version: int

    def filename(self) -> str:
        """File of the tile inside its version's directory."""
        return f"{self.collection}-{self.tms}-{self.z}-{self.x}-{self.y}.mvt"


class TileCache:
    """LRU in memory (``size`` tiles; 0 disables it) plus an optional directory."""

    def __init__(self, size: int, directory: Path | None = None) -> None:
        self.size = size
        self.directory = Path(directory) if directory else None
        self._tiles: OrderedDict[TileKey, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._newest_dir = -1
        self.hits = {"memory": 0, "disk": 0, "miss": 0}

    def get(self, key: TileKey, *, disk: bool = True) -> tuple[bytes | None, str]:
        """(tile or None, where it came from: 'memory', 'disk' or 'miss'). ``disk=False``:
        memory only, and a miss is not counted (the caller asks again with the disk)."""
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
                self.hits["memory"] += 1
                return tile, "memory"
        if not disk:
            return None, "miss"
        if self.directory is not None:
            try:
                tile = (self._version_dir(key.version) / key.filename()).read_bytes()
            except OSError:
                tile = None
            if tile is not None:
                self._remember(key, tile)
                self.hits["disk"] += 1
                return tile, "disk"
        self.hits["miss"] += 1
        return None, "miss"

    def put(self, key: TileKey, tile: bytes) -> None:
        """Keep a freshly built tile (in memory and, when configured, on disk)."""
        self._remember(key, tile)
        if self.directory is not None:
            self._write(key, tile)

    def _remember(self, key: TileKey, tile: bytes) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._tiles[key] = tile
            self._tiles.move_to_end(key)
            while len(self._tiles) > self.size:
                self._tiles.popitem(last=False)

    def _version_dir(self, version: int) -> Path:
        return self.directory / f"v{version}"

    def _write(self, key: TileKey, tile: bytes) -> None:
        folder = self._version_dir(key.version)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out:
                out.write(tile)
            os.replace(tmp, folder / key.filename())
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            return  # a full or read-only disk costs speed, never an answer
        if key.version > self._newest_dir:
            self._newest_dir = key.version
            self._prune(key.version)

    def _prune(self, newest: int) -> None:
        """Remove the directories of older data versions (never read again)."""
        for entry in self.directory.glob("v*"):
            name = entry.name[1:]
            if name.isdigit() and int(name) < newest:
                shutil.rmtree(entry, ignore_errors=True)
