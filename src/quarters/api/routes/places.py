"""Place search of the public map (districts, quarters, sites, measures, places in the data)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from quarters import placesearch
from quarters.api.deps import ConnDep, SettingsDep

router = APIRouter(prefix="/api", tags=["public"])


@router.get("/places", summary="Search places: districts, quarters, sites, measures, municipalities")
def places(conn: ConnDep, settings: SettingsDep,
           q: Annotated[str | None, Query(max_length=placesearch.MAX_QUERY,
                                          description="part of a name (2–100 characters)")] = None,
           kind: Annotated[list[str] | None, Query(description="only these kinds: " +
                                                   ", ".join(placesearch.KINDS))] = None,
           city_ags: Annotated[str | None, Query(pattern=r"^[0-9]{8}$",
                                                 description="only places of this city (AGS)")] = None,
           limit: Annotated[int, Query(ge=1, le=placesearch.LIST_LIMIT)] = 10) -> dict:
    """Places whose name contains ``q`` (best first, at most 20), each with a CRS84 bbox and
    a point inside; measures are the published ones. Without ``q``: every district, quarter
    or site (``kind`` required). With the ``geocoder_url`` setting, a search with few local
    places also asks that geocoder."""
    kinds = [k for part in (kind or []) for k in part.split(",") if k] or None
    found = placesearch.search(conn, q, kinds=kinds,
                               city_ags=city_ags, limit=limit)
    if q and settings.geocoder_url and kinds is None and city_ags is None \
            and len(found) < min(limit, placesearch.MAX_LIMIT):
        found += placesearch.geocode(settings.geocoder_url, q.strip(),
                                     min(limit, placesearch.MAX_LIMIT) - len(found))
    return {"query": q, "places": found}
