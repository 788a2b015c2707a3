"""Bodies of OGC API reads kept per data version (never stale).

Every read asks the database for the data version first (one small statement); a body built
in an earlier request of the same version and the same URL is answered from memory, anything
else is built and remembered. A write bumps the version in its own transaction, so the next
request on any worker builds afresh; entries of older versions are dropped as soon as a newer
version is seen. Only the OGC collections are cached: they show published data only, the same
to everyone, so a body depends on nothing but its URL (host, path, query) and the version.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

Version = tuple[int, datetime]


class PageCache:
    """An LRU of response bodies for one data version, bounded in bytes."""

    def __init__(self, max_bytes: int, max_body: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_body = max_body if max_body is not None else max_bytes // 8
        self.version: Version | None = None
        self.bodies: OrderedDict[str, bytes] = OrderedDict()
        self.size = 0

    def get(self, version: Version, url: str) -> bytes | None:
        """The body remembered for ``url`` at ``version`` (None: build it)."""
        if version != self.version:
            return None
        body = self.bodies.get(url)
        if body is not None:
            self.bodies.move_to_end(url)
        return body

    def put(self, version: Version, url: str, body: bytes) -> None:
        """Remember a body built in a snapshot of ``version``."""
        if not self.max_bytes or len(body) > self.max_body:
            return
        if version != self.version:
            self.bodies.clear()
            self.size = 0
            self.version = version
        old = self.bodies.pop(url, None)
        self.size += len(body) - (len(old) if old is not None else 0)
        self.bodies[url] = body
        while self.size > self.max_bytes and self.bodies:
            _, dropped = self.bodies.popitem(last=False)
            self.size -= len(dropped)
