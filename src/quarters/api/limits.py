"""Request bodies are bounded as the bytes arrive (pure ASGI, before any route reads them).

Two kinds, one setting each: uploads (``max_upload_bytes``, the paths in ``UPLOAD_PATHS``)
and every other body (``max_body_bytes``, JSON). A declared ``Content-Length`` over the limit
of a JSON body is answered with 413 at once, without reading a byte; an upload's declared size
is judged when the route first reads the body, i.e. after authentication, so an anonymous
upload gets 401 and is never read. Streamed bodies (chunked, without ``Content-Length``) are
counted chunk by chunk and refused as soon as they pass the limit.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quarters.api.responses import ProblemResponse
from quarters.errors import coded
from quarters.messages import scope_language

UPLOAD_PATHS = frozenset({"/api/measures/import"})


class BodyTooLarge(HTTPException):
    """The body passed its limit (an HTTPException, so FastAPI's body parsing re-raises it)."""

    def __init__(self, kind: str, limit: int) -> None:
        super().__init__(413, f"{kind} larger than {limit} bytes")
        self.kind, self.limit = kind, limit


def too_large_response(scope: Scope, kind: str, limit: int) -> ProblemResponse:
    """413 problem+json in the request's language; the connection is closed (the rest of the
    body is not read)."""
    body = coded(413, f"request.{kind}_too_large", scope_language(scope), "payload_too_large",
                 limit=limit)
    return ProblemResponse(body, status_code=413, headers={"Connection": "close"})


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number (ASCII digits only), else None."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            return int(value) if value.isdigit() and value.isascii() else None
    return None


class BodyLimits:
    """Refuse bodies over their kind's limit with 413 application/problem+json."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int,
                 upload_paths: frozenset[str] = UPLOAD_PATHS) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a receive that counts the body's bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"] in self.upload_paths
        kind, limit = ("upload", self.max_upload_bytes) if upload else \
            ("body", self.max_body_bytes)
        declared = declared_length(scope)
        if declared is not None and declared > limit and not upload:
            await too_large_response(scope, kind, limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise BodyTooLarge(kind, limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(kind, limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await too_large_response(scope, exc.kind, exc.limit)(scope, receive, send)


def add_body_limits(app, max_body_bytes: int, max_upload_bytes: int) -> None:  # noqa: ANN001
    """Install the middleware and the handler that answers its exception inside the app."""

    async def _too_large(request, exc: BodyTooLarge) -> ProblemResponse:  # noqa: ANN001
        return too_large_response(request.scope, exc.kind, exc.limit)

    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_middleware(BodyLimits, max_body_bytes=max_body_bytes,
                       max_upload_bytes=max_upload_bytes)
