"""Pure ASGI guard: the path and the query string must be well-formed UTF-8 text.

Refuses (400 problem+json, before any route runs) invalid percent-encoding, bytes that are not
UTF-8 (this includes encoded surrogates), NUL and other control characters in the path or in
any query name or value. Routes can then treat every path and query value as clean text.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from quarters.api.errors import problem_bytes

_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_QUERY_BYTES = 16_384


def problem_in(part: str, raw: bytes, plus_is_space: bool) -> str | None:
    """Why a raw (percent-encoded) path or query string is refused, or None."""
    if _BAD_PERCENT.search(raw):
        return f"invalid percent-encoding in the {part}"
    pieces = raw.replace(b"+", b" ").split(b"&") if plus_is_space else [raw]
    for piece in pieces:
        for item in piece.split(b"=") if plus_is_space else [piece]:
            try:
                text = unquote_to_bytes(item).decode("utf-8")
            except UnicodeDecodeError:
                return f"the {part} is not valid UTF-8 text"
            if _CONTROL.search(text):
                return f"control character (e.g. NUL) in the {part}"
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
            if len(query) > MAX_QUERY_BYTES:
                reason = f"query string longer than {MAX_QUERY_BYTES} bytes"
            else:
                reason = (problem_in("path", raw_path.split(b"?")[0], plus_is_space=False)
                          or problem_in("query string", query, plus_is_space=True))
            if reason:
                headers, body = problem_bytes(400, "Ungültige Anfrage", reason)
                await send({"type": "http.response.start", "status": 400, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
