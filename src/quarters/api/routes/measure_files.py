"""Bulk import (all or nothing, with dry-run) and export of measures."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from quarters.api.deps import ConnDep, PlannerDep, SettingsDep, UserDep
from quarters.api.routes.measures import _relation
from quarters.api.uploads import receive_file, upload_body_schema
from quarters.imports import measure_files
from quarters.importtmp import remove_quietly
from quarters.measures import Actor
from quarters.messages import request_language
from quarters.safefiles import Limits

router = APIRouter(prefix="/api/measures", tags=["measures"])
SUFFIXES = (".geojson", ".json", ".gpkg", ".csv")


@router.get("/export", summary="Export measures (what you may see)")
def export(conn: ConnDep, user: UserDep,
           format: Literal["geojson", "gpkg", "csv"] = "geojson") -> Response:  # noqa: A002
    """All measures visible to the caller as GeoJSON, GeoPackage or CSV."""
    body = measure_files.export(conn, _relation(user), format)
    suffix = {"geojson": "geojson", "gpkg": "gpkg", "csv": "csv"}[format]
    return Response(body, media_type=measure_files.FORMATS[format], headers={
        "Content-Disposition": f'attachment; filename="massnahmen.{suffix}"'})


@router.post("/import", summary="Import measures (all or nothing; dry_run reports problems)",
             openapi_extra=upload_body_schema("file"))
async def import_file(request: Request, conn: ConnDep, user: PlannerDep, settings: SettingsDep,
                      dry_run: bool = False) -> dict:
    """Import a GeoJSON, GeoPackage or CSV file (multipart field ``file``) of measures as
    drafts. The sign-in and role are checked before a byte of the file is read."""
    upload = await receive_file(request, settings.import_tmp, settings.max_upload_bytes,
                                SUFFIXES)
    try:
        report = await run_in_threadpool(
            measure_files.import_measures, conn, upload.path, Actor.of(user), dry_run=dry_run,
            name=upload.name, limits=Limits.of(settings))
    finally:
        remove_quietly(upload.path)
    return report.as_dict(request_language(request))
