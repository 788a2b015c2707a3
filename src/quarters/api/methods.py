"""HTTP method plumbing in front of the routes: HEAD for every GET resource, OPTIONS with the
right ``Allow``, and CORS for reads (GET/HEAD from any allowed origin, never with credentials).

FastAPI routes declared with GET do not answer HEAD; without this the static mount at ``/``
catches HEAD /api/… and answers 404.
"""

from __future__ import annotations

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

READ_METHODS = ("GET", "HEAD")
PROBED = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_REQUEST_HEADERS = {"accept", "accept-language", "content-language", "if-none-match",
                        "if-modified-since", "cache-control"}
CORS_EXPOSED = "ETag, Last-Modified, Cache-Control, Content-Crs, Content-Language, Link"


class Methods:
    """ASGI middleware: HEAD as GET without a body, OPTIONS/Allow, CORS for reads."""

    def __init__(self, app: ASGIApp, routes: list, origins: list[str]) -> None:
        self.app = app
        self.routes = routes  # the application's routes (to compute Allow)
        self.any_origin = "*" in origins
        self.origins = set(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        origin = headers.get("origin")
        cors = self._cors_headers(origin) if origin else []
        if method == "OPTIONS":
            allowed = self._allowed(scope)
            if allowed is not None:
                await self._options(send, allowed, headers, cors)
                return
        if method in READ_METHODS and cors:
            send = _adding(send, cors)
        if method == "HEAD":
            scope = {**scope, "method": "GET"}
            send = _without_body(send)
        await self.app(scope, receive, send)

    def _cors_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        if self.any_origin:
            value = b"*"
        elif origin in self.origins:
            value = origin.encode("latin-1")
        else:
            return []
        out = [(b"access-control-allow-origin", value),
               (b"access-control-expose-headers", CORS_EXPOSED.encode())]
        if not self.any_origin:
            out.append((b"vary", b"Origin"))
        return out

    def _allowed(self, scope: Scope) -> list[str] | None:
        """Methods some route answers at this path (None: no route has this path)."""
        methods = []
        for method in PROBED:
            probe = {**scope, "method": method}
            if any(getattr(route, "methods", True) and not isinstance(route, Mount)
                   and route.matches(probe)[0] == Match.FULL for route in self.routes):
                methods.append(method)
        if not methods:
            return None
        if "GET" in methods:
            methods.insert(1, "HEAD")
        return [*methods, "OPTIONS"]

    async def _options(self, send: Send, allowed: list[str], headers: dict[str, str],
                       cors: list[tuple[bytes, bytes]]) -> None:
        out = [(b"allow", ", ".join(allowed).encode()), (b"content-length", b"0")]
        wanted = headers.get("access-control-request-method")
        asked = {h.strip().lower() for h in headers.get("access-control-request-headers", "")
                 .split(",") if h.strip()}
        if cors and wanted in READ_METHODS and wanted in allowed and asked <= CORS_REQUEST_HEADERS:
            out += cors
            out += [(b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
                    (b"access-control-max-age", b"600")]
            if asked:
                out.append((b"access-control-allow-headers", ", ".join(sorted(asked)).encode()))
        await send({"type": "http.response.start", "status": 204, "headers": out})
        await send({"type": "http.response.body", "body": b""})


def _adding(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {k for k, _ in extra}
            kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
            message = {**message, "headers": kept + extra}
        await send(message)

    return wrapped


def _without_body(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return wrapped
