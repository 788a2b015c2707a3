"""The data version held in memory, so that a read need not ask the database for it.

Every write bumps ``data_version`` in its own transaction (migration 0007), and the bump sends
``NOTIFY quarters_data_version`` with the new version (migration 0014). A read answers from
its page cache, ETag and 304 with the version it *knows* only while that is still the newest
one it can have been told of; otherwise it reads the version from the database (one small
statement) and learns it. Never stale, because:

- A write through the API learns the committed version (``learn``, from ``get_conn`` after the
  commit) **before** its answer is sent, and that raises a counter shared by every worker of
  the host (``FileCounter``: an 8-byte memory-mapped file that ``quarters serve`` hands its
  workers; one process: ``LocalCounter``). A worker uses its known version only while the
  counter equals it, so the next request to any worker of that host, sent after the client
  got the write's answer, reads the new version from the database.
- Writes from elsewhere (the CLI, psql, another host's containers) raise the counter when their
  notification arrives (at their commit, usually within milliseconds), and a heartbeat reads
  the version every ``HEARTBEAT_S`` in case one was missed. For these the window between their
  commit and the notification remains: ``QUARTERS_DATA_VERSION_CHECK=request`` closes it by
  reading the version on every request (README, Scaling out).
- Without a working LISTEN connection (not yet connected, lost, reconnecting) nothing is known:
  every read asks the database, as with ``request``. With a read replica
  (``QUARTERS_READ_DATABASE_URL``) the version is always read per request, from the replica
  the data comes from.

The counter only grows (``raise_to``), so two writers can never lower it below a version a
client was already answered for.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import mmap
import os
import struct
import tempfile
import threading
from datetime import datetime
from pathlib import Path

import psycopg

from quarters import services
from quarters.db import application_name, database_url
from quarters.settings import Settings

log = logging.getLogger("quarters")

CHANNEL = "quarters_data_version"
HEARTBEAT_S = 5.0
RETRY_S = 1.0
_SLOT = struct.Struct("<q")

Version = tuple[int, datetime]


class LocalCounter:
    """The newest version seen, for the workers of one process."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def get(self) -> int:
        """The newest version any writer or notification of this process raised it to."""
        return self.value

    def raise_to(self, version: int) -> None:
        """Make it at least ``version`` (never lower)."""
        with self._lock:
            if version > self.value:
                self.value = version


class FileCounter:
    """The newest version seen, shared by the worker processes of one host through an 8-byte
    memory-mapped file (a raise takes an exclusive lock on the file, a read is a load)."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR)
        if os.fstat(self.fd).st_size < _SLOT.size:
            os.ftruncate(self.fd, _SLOT.size)
        self.map = mmap.mmap(self.fd, _SLOT.size)
        self._lock = threading.Lock()  # flock does not exclude threads of one process

    def get(self) -> int:
        """The newest version any worker raised it to."""
        return _SLOT.unpack_from(self.map)[0]

    def raise_to(self, version: int) -> None:
        """Make it at least ``version`` (never lower)."""
        with self._lock:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                if version > self.get():
                    _SLOT.pack_into(self.map, 0, version)
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Unmap and close the file."""
        self.map.close()
        os.close(self.fd)


def new_version_file() -> Path:
    """A fresh counter file for the workers of one server (in /dev/shm where there is one)."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    fd, name = tempfile.mkstemp(prefix="quarters-version-", dir=folder)
    os.ftruncate(fd, _SLOT.size)
    os.close(fd)
    return Path(name)


class VersionWatch:
    """What a worker knows of the data version (see the module text for when it may use it)."""

    def __init__(self, counter: LocalCounter | FileCounter, enabled: bool) -> None:
        self.counter = counter
        self.enabled = enabled  # False: read per request (setting, replica)
        self.listening = False
        self.known: Version | None = None

    def cached(self) -> Version | None:
        """The version to answer with without asking the database, or None (ask it)."""
        known = self.known
        if self.listening and known is not None and self.counter.get() == known[0]:
            return known
        return None

    def learn(self, version: int, changed: datetime) -> None:
        """A version read from the database (committed): remember it, raise the counter."""
        known = self.known
        if known is None or version > known[0]:
            self.known = (version, changed)
        self.counter.raise_to(version)

    async def current(self, runner) -> Version:  # noqa: ANN001
        """The version to answer with: the known one, else read by ``runner`` (and learnt)."""
        cached = self.cached()
        if cached is not None:
            return cached
        version, changed = await runner.first((services.DATA_VERSION_SQL, {}))
        if self.enabled:
            self.learn(version, changed)
        return version, changed

    async def listen(self, conninfo: str) -> None:
        """LISTEN for bumps until cancelled; reconnects after a lost connection (meanwhile
        nothing is known, every read asks the database)."""
        while True:
            try:
                await self._listen_once(conninfo)
            except asyncio.CancelledError:
                self.listening = False
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: forget, retry
                if self.listening:
                    log.warning("data version notifications lost (%s); reading the version "
                                "per request until reconnected", str(exc).split("\n")[0])
                self.listening = False
                await asyncio.sleep(RETRY_S)

    async def _listen_once(self, conninfo: str) -> None:
        async with await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True,
                application_name=f"{application_name()}-version") as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            # LISTEN first, then read: a commit after this read is notified
            self.learn(*await (await conn.execute(services.DATA_VERSION_SQL)).fetchone())
            self.listening = True
            while True:
                async for note in conn.notifies(timeout=HEARTBEAT_S):
                    if note.payload.isdigit():
                        self.counter.raise_to(int(note.payload))
                self.learn(*await (await conn.execute(services.DATA_VERSION_SQL)).fetchone())


def make_watch(settings: Settings) -> VersionWatch:
    """The watch of one worker: kept in memory unless the settings or a replica rule it out,
    shared through ``settings.version_file`` when ``quarters serve`` runs several workers."""
    enabled = settings.data_version_check == "auto" and not settings.read_database_url
    counter: LocalCounter | FileCounter = LocalCounter()
    if enabled and settings.version_file is not None:
        counter = FileCounter(settings.version_file)
    return VersionWatch(counter, enabled)


def listen_conninfo(settings: Settings) -> str:
    """Where the watch listens: the primary, as the runtime role."""
    url = database_url(settings, start=False, role="app")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
