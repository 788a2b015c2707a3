"""The HTTP server of ``quarters serve``: uvicorn (httptools) with the limits a public service
needs. uvicorn bounds concurrency, the backlog and idle keep-alive connections itself; it has no
deadline for a request's headers (a client sending one byte per second holds a connection
forever) and no cap on their size. :class:`BoundedHttpProtocol` adds both: the request line and
headers must arrive within ``server_header_timeout_s`` (else 408, and the connection is closed
after a short linger) and be at most ``server_max_header_bytes`` long (else 400 and closed).
TLS, request rates and slow bodies are the reverse proxy's job (see the README).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from quarters.settings import Settings

_TIMEOUT_TEXT = b"request headers did not arrive in time"
REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"content-length: " + str(len(_TIMEOUT_TEXT)).encode() + b"\r\n"
                   b"connection: close\r\n\r\n" + _TIMEOUT_TEXT)
LINGER_S = 0.5  # after a 408: how long the client's late bytes are read and dropped (the
# connection still counts against the concurrency limit meanwhile)


class HeadersTooLarge(Exception):
    """Raised inside the parser: uvicorn answers 400 and closes the connection."""


class BoundedHttpProtocol(HttpToolsProtocol):
    """httptools protocol with a deadline and a size cap for the request line and headers."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 64 * 1024

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._timed_out = False

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers did not arrive in "
                             "%.0f s", self.header_timeout_s)
            self._timed_out = True
            self.transport.write(REQUEST_TIMEOUT)
            if not self.transport.can_write_eof():
                self.transport.close()
                return
            # a lingering close: the 408 and our FIN go out, what the client still sends is
            # read and dropped for a moment; closing at once would answer those bytes with a
            # reset, which can make the client's kernel discard the 408 unread
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)

    def data_received(self, data: bytes) -> None:
        """Parse the request, unless its 408 was sent (then the late bytes are dropped)."""
        if not self._timed_out:
            super().data_received(data)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection has ``header_timeout_s`` to send its first request's headers."""
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline."""
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """Each request (also the next one on a keep-alive connection) gets a deadline."""
        super().on_message_begin()
        self._header_bytes = 0
        self._arm()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            raise HeadersTooLarge

    def on_url(self, url: bytes) -> None:
        """Count the request line against the cap."""
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count each header against the cap."""
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The headers are in: no deadline while the app works (keep-alive takes over after)."""
        self._disarm()
        super().on_headers_complete()


class SettingsHttpProtocol(BoundedHttpProtocol):
    """BoundedHttpProtocol with the deadline and cap of the process's settings: an importable
    class, so each of several worker processes can load it (``http="quarters.server:…"``)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        from quarters.settings import get_settings

        settings = get_settings()
        self.header_timeout_s = float(settings.server_header_timeout_s)
        self.max_header_bytes = int(settings.server_max_header_bytes)
        super().__init__(*args, **kwargs)


def protocol_for(settings: Settings) -> type[BoundedHttpProtocol]:
    """The protocol class with the settings' deadline and cap."""
    return type("QuartersHttpProtocol", (BoundedHttpProtocol,), {
        "header_timeout_s": float(settings.server_header_timeout_s),
        "max_header_bytes": int(settings.server_max_header_bytes)})


def run(app: object, settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve ``app`` (an app, or the import string of an app factory: each worker builds its
    own from the environment) with the limits of the settings until interrupted."""
    import os

    import uvicorn

    from quarters.api.dataversion import new_version_file

    shared = None
    if workers > 1 and settings.version_file is None:
        # the workers share the data version they know through one file (dataversion)
        shared = new_version_file()
        os.environ["QUARTERS_VERSION_FILE"] = str(shared)
    try:
        _serve(uvicorn, app, settings, host, port, workers)
    finally:
        if shared is not None:
            shared.unlink(missing_ok=True)
            os.environ.pop("QUARTERS_VERSION_FILE", None)


def _serve(uvicorn, app: object, settings: Settings, host: str, port: int,  # noqa: ANN001
           workers: int) -> None:
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1;
    # the app reads it itself, only from QUARTERS_TRUSTED_PROXIES (quarters.clients).
    uvicorn.run(app, factory=isinstance(app, str), workers=workers, host=host, port=port,
                log_level="info", access_log=settings.access_log, proxy_headers=False,
                http=protocol_for(settings) if workers == 1 else "quarters.server:SettingsHttpProtocol",
                limit_concurrency=settings.server_limit_concurrency,
                timeout_keep_alive=settings.server_keep_alive_s, backlog=settings.server_backlog,
                h11_max_incomplete_event_size=settings.server_max_header_bytes)
