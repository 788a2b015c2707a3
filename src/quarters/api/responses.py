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
