"""Service endpoints: health, sources and attribution, map configuration."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from quarters import services
from quarters.api.deps import ConnDep, SettingsDep
from quarters.schemas import ACTION_FIELDS, PRECISIONS, STATUSES

router = APIRouter(prefix="/api", tags=["service"])


@router.get("/health", summary="Database reachable, PostGIS version")
def health(conn: ConnDep) -> JSONResponse:
    """Report whether the database answers and which PostGIS it runs."""
    return JSONResponse({"status": "ok", "database": "reachable", **services.health(conn)})


@router.get("/sources", summary="Data sources, licences and attributions")
def sources(conn: ConnDep) -> dict:
    """Every data source loaded, with the attribution text a map must show."""
    return {"sources": services.sources(conn)}


@router.get("/config", summary="Settings the web map needs")
def config(conn: ConnDep, settings: SettingsDep) -> dict:
    """Background tiles and the project cities with their extents."""
    return {
        "tile_url": settings.tile_url,
        "tile_attribution": settings.tile_attribution,
        "cities": services.project_cities(conn),
        "action_fields": ACTION_FIELDS,
        "statuses": list(STATUSES),
        "location_precisions": list(PRECISIONS),
    }
