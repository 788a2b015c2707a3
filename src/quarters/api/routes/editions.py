"""Strategy editions: list, the map as of an edition, the difference between two."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from quarters import editions
from quarters.api.deps import AdminDep, ConnDep, UserDep
from quarters.api.responses import GeoJSONResponse
from quarters.errors import NotFound


def _public(user) -> bool:  # noqa: ANN001
    """Only planners and admins see drafts (moderators see what the public sees)."""
    return user is None or not user.can("planner")

router = APIRouter(prefix="/api/editions", tags=["editions"])


@router.get("", summary="Strategy editions")
def list_editions(conn: ConnDep, user: UserDep) -> dict:
    """All editions with the number of measures in each."""
    return {"editions": editions.list_editions(conn, public=_public(user))}


@router.get("/diff", summary="Difference between two editions")
def diff(conn: ConnDep, user: UserDep, from_: str = Query(alias="from", max_length=40),
         to: str = Query(max_length=40)) -> dict:
    """Measures added, removed and changed from one edition to the next."""
    return editions.diff(conn, from_, to, public=_public(user))


@router.get("/{key}/measures", summary="The map as of an edition",
            response_class=GeoJSONResponse, response_model=None,
            responses={200: {"content": {"application/geo+json": {"schema": {"type": "object"}}}}})
def edition_measures(key: Annotated[str, Path(max_length=40)], conn: ConnDep,
                     user: UserDep) -> GeoJSONResponse:
    """The measures of an edition as recorded in it."""
    return GeoJSONResponse(editions.edition_map(conn, key, public=_public(user)))


@router.post("/{key}/freeze", summary="Freeze an edition (admin)")
def freeze(key: Annotated[str, Path(max_length=40)], conn: ConnDep, user: AdminDep) -> dict:
    """Fix the snapshots of an edition: later changes of its measures no longer alter it."""
    from sqlalchemy import text

    done = conn.execute(text("UPDATE editions SET frozen = true WHERE key = :k RETURNING key"),
                        {"k": key}).first()
    if done is None:
        raise NotFound(code="edition.unknown", params={"key": key[:80]})
    return {"key": key, "frozen": True}
