"""Response classes for GeoJSON and problem details."""

from __future__ import annotations

from fastapi.responses import JSONResponse, Response


class GeoJSONResponse(Response):
    """GeoJSON (RFC 7946) whose body is already serialised."""

    media_type = "application/geo+json"


class RawJSONResponse(Response):
    """JSON whose body is already serialised."""

    media_type = "application/json"


class ProblemResponse(JSONResponse):
    """RFC 9457 problem details."""

    media_type = "application/problem+json"


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "status", "title", "detail"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "integer"},
        "title": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "request_id": {"type": "string"},
    },
}
_PROBLEM = {"content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}}
PROBLEM_RESPONSES: dict[int | str, dict] = {
    status: {"description": text, **_PROBLEM} for status, text in {
        400: "Malformed request (parameter, JSON, text)",
        401: "Sign-in needed",
        403: "Not allowed for this role (or CSRF token missing)",
        404: "Not found",
        412: "Changed in the meantime (If-Match does not match)",
        413: "Body too large",
        415: "Unsupported content type",
        422: "Well-formed input that breaks a rule",
        428: "If-Match missing",
        429: "Too many requests",
        500: "Unexpected error (problem body names the request id)",
        503: "Database unavailable, try again (Retry-After)",
    }.items()
}
