"""Service endpoints: health, sources and attribution, map configuration."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from quarters import services, vocabulary
from quarters.api.deps import ConnDep, SettingsDep
from quarters.messages import request_language

router = APIRouter(prefix="/api", tags=["service"])


@router.get("/health", summary="Database reachable, PostGIS version")
def health(conn: ConnDep) -> JSONResponse:
    """Report whether the database answers and which PostGIS it runs."""
    return JSONResponse({"status": "ok", "database": "reachable", **services.health(conn)})


@router.get("/sources", summary="Data sources, licences and attributions")
def sources(request: Request, conn: ConnDep) -> dict:
    """Every data source loaded, with the attribution text a map must show (notes of the
    catalogue in the request's language)."""
    return {"sources": services.sources(conn, request_language(request))}


@router.get("/config", summary="Settings, vocabularies and limits the pages need")
def config(conn: ConnDep, settings: SettingsDep) -> dict:
    """Background tiles, the project cities with their extents, and the vocabularies and
    limits of quarters.vocabulary (the one definition the server checks against): measure
    statuses (in order) and their colours, location precisions, action fields per city, idea
    states, field lengths (``limits.measure``, ``limits.idea``), money and year ranges."""
    return {
        "tile_url": settings.tile_url,
        "tile_attribution": settings.tile_attribution,
        "cities": services.project_cities(conn),
        **vocabulary.config(),
    }
