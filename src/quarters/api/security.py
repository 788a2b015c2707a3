"""Security headers on every response (pure ASGI, so the read path stays fast)."""

from __future__ import annotations

from urllib.parse import urlsplit


def content_security_policy(tile_url: str) -> str:
    """CSP without inline script or style; images also from the tile server."""
    parts = urlsplit(tile_url.replace("{s}", "a"))
    tiles = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' data: {tiles}".strip(),
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


class SecurityHeaders:
    """Add CSP, X-Content-Type-Options, Referrer-Policy and friends to every response."""

    def __init__(self, app, tile_url: str) -> None:  # noqa: ANN001
        self.app = app
        csp = content_security_policy(tile_url).encode()
        self.headers = [
            (b"content-security-policy", csp),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"x-frame-options", b"DENY"),
            (b"permissions-policy", b"geolocation=(self), camera=(), microphone=()"),
        ]
        # The interactive API docs (Swagger UI) need inline script; they get a looser policy.
        self.docs_headers = [h for h in self.headers if h[0] != b"content-security-policy"] + [
            (b"content-security-policy", b"default-src 'self' 'unsafe-inline' cdn.jsdelivr.net "
                                         b"fastapi.tiangolo.com data:; frame-ancestors 'none'")]

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        """Pass the request on; add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.docs_headers if scope["path"].startswith("/api/docs") else self.headers

        async def send_with_headers(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)
