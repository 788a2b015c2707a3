"""Citizens' paths: near me, Atom feeds of a place, stable page addresses."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from quarters import feeds, places, services
from quarters.api.deps import ConnDep, ConnectDep, SettingsDep, version_watch
from quarters.api.pages import render_page
from quarters.api.routes.measures import points_answer
from quarters.api.routes.meta import config as map_config
from quarters.errors import DatabaseUnavailable, InvalidParameter, NotFound
from quarters.messages import request_language
from quarters.validation import AsciiInt

logger = logging.getLogger(__name__)
router = APIRouter(tags=["public"])


@router.get("/api/near", summary="Published measures near a point or a district")
def near(conn: ConnDep, settings: SettingsDep,
         lon: float | None = Query(None, ge=-180, le=180),
         lat: float | None = Query(None, ge=-90, le=90),
         district: Annotated[AsciiInt | None, Query(ge=1, le=2_147_483_647)] = None,
         radius: float = Query(1000, gt=0)) -> dict:
    """Measures within ``radius`` metres, nearest first, with the district and its quarters."""
    if radius > settings.near_max_radius_m:
        raise InvalidParameter(code="near.radius", pointer="radius",
                               params={"max": settings.near_max_radius_m})
    if district is not None:
        lon, lat, _ = places.centre_of_district(conn, district)
    elif lon is None or lat is None:
        raise InvalidParameter(code="near.no_place")
    return places.near(conn, lon, lat, radius)


@router.get("/api/feeds/changes.atom", summary="Atom feed of published changes at a place")
def changes_feed(request: Request, conn: ConnDep,
                 district: Annotated[AsciiInt | None, Query(ge=1, le=2_147_483_647)] = None,
                 quarter: str | None = Query(None, max_length=80),
                 lon: float | None = None, lat: float | None = None,
                 radius: float | None = None) -> Response:
    """New measures, status changes and milestones for a district, a quarter or a circle."""
    condition, params, place = feeds.place_filter(conn, district=district, quarter=quarter,
                                                  lon=lon, lat=lat, radius_m=radius)
    base = str(request.base_url).rstrip("/")
    body = feeds.atom(conn, base, str(request.url), place, feeds.events(conn, condition, params),
                      request_language(request))
    return Response(body, media_type="application/atom+xml; charset=utf-8")


def _page(request: Request, settings, name: str, data: dict | None = None,  # noqa: ANN001
          context: dict | None = None) -> Response:
    if not (settings.web_dir / name).exists():
        raise NotFound(code="page.missing", params={"name": name})
    return render_page(request, settings.web_dir, name, data, context)


# The map page embeds what its first view needs, the same bodies as /api/config and
# /api/measures/points?limit=10000&format=clusters (web/index.html, main.js): no request and
# no wait for them before the first paint. The clusters only for the unfiltered view
# without ?map= (the page draws the others from its own index, see main.js).
FIRST_VIEW_CLUSTERS = (("limit", "10000"), ("format", "clusters"))
OWN_VIEW_PARAMS = ("q", "city", "field", "status", "quarter", "district", "map")


@router.get("/", include_in_schema=False)
@router.get("/index.html", include_in_schema=False)
def map_page(request: Request, settings: SettingsDep, connect: ConnectDep) -> Response:
    """The public map with its configuration and first-view clusters embedded; without a
    database the page is rendered without them (its scripts then ask and report)."""
    own_view = any((request.query_params.get(name) or "").strip() for name in OWN_VIEW_PARAMS)
    try:
        data = _first_view_data(request, settings, connect, own_view)
    except (SQLAlchemyError, DatabaseUnavailable) as exc:
        logger.warning("map page without embedded data: %s", type(exc).__name__)
        data = {}
    return _page(request, settings, "index.html", data, {"own_view": own_view})


def _first_view_data(request: Request, settings, connect, own_view: bool) -> dict:  # noqa: ANN001
    """Configuration (and clusters) for the map page; kept per data version when this worker
    knows the version without asking (quarters.api.dataversion), so the page then needs no
    database at all, and a publish shows on the next page view."""
    watch = version_watch(request.app)
    known = watch.cached() if watch is not None else None
    cache = request.app.state.__dict__.setdefault("map_page_data", {})
    if known is not None and (known[0], own_view) in cache:
        return cache[(known[0], own_view)]
    data: dict = {}
    with connect() as conn:
        # read before the data: a write in between only makes the entry's key older
        version = services.data_version(conn) if watch is not None else None
        data["config"] = jsonable_encoder(map_config(conn, settings))
        if not own_view:
            data["clusters"] = points_answer(request.app, conn, settings,
                                             list(FIRST_VIEW_CLUSTERS), "clusters")[1]
    if version is not None:
        watch.learn(*version)
        for key in [k for k in cache if k[0] != version[0]]:
            del cache[key]
        cache[(version[0], own_view)] = data
    return data


@router.get("/massnahmen/{measure_id}", include_in_schema=False)
def measure_page(request: Request, measure_id: AsciiInt, settings: SettingsDep) -> Response:
    """Stable address of a measure's page."""
    return _page(request, settings, "measure.html")


@router.get("/ideen/{idea_id}", include_in_schema=False)
def idea_page(request: Request, idea_id: AsciiInt, settings: SettingsDep) -> Response:
    """Stable address of an idea's page."""
    return _page(request, settings, "idea.html")
