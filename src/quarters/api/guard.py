"""Pure ASGI guard: the path and the query string must be well-formed UTF-8 text.

Refuses (400 problem+json, before any route runs) invalid percent-encoding, bytes that are not
UTF-8 (this includes encoded surrogates), NUL and other control characters in the path or in
any query name or value. Routes can then treat every path and query value as clean text.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from quarters.api.errors import coded_bytes

_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_QUERY_BYTES = 16_384


def problem_in(part: str, raw: bytes, plus_is_space: bool) -> str | None:
    """Why a raw (percent-encoded) path or query string is refused (a catalogue code), or
    None."""
    if _BAD_PERCENT.search(raw):
        return "request.bad_percent"
    pieces = raw.replace(b"+", b" ").split(b"&") if plus_is_space else [raw]
    for piece in pieces:
        for item in piece.split(b"=") if plus_is_space else [piece]:
            try:
                text = unquote_to_bytes(item).decode("utf-8")
            except UnicodeDecodeError:
                return "request.not_utf8"
            if _CONTROL.search(text):
                return "request.control_character"
    return None


class RequestGuard:
    """Answer 400 to requests whose path or query string is not clean text."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        """Check the request line; pass clean requests on."""
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
            part, code = "query", None
            if len(query) > MAX_QUERY_BYTES:
                code = "request.query_too_long"
            else:
                code = problem_in("path", raw_path.split(b"?")[0], plus_is_space=False)
                if code:
                    part = "path"
                else:
                    code = problem_in("query", query, plus_is_space=True)
            if code:
                headers, body = coded_bytes(scope, 400, code, "bad_request", part=part,
                                            max=MAX_QUERY_BYTES)
                await send({"type": "http.response.start", "status": 400, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
