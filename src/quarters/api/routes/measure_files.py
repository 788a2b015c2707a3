"""Bulk import (all or nothing, with dry-run) and export of measures."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from quarters import measure_io
from quarters.api.deps import ConnDep, PlannerDep, SettingsDep, UserDep
from quarters.api.routes.measures import _relation
from quarters.db import commit
from quarters.errors import ImportRefused, PayloadTooLarge
from quarters.measures import Actor

router = APIRouter(prefix="/api/measures", tags=["measures"])
SUFFIXES = (".geojson", ".json", ".gpkg", ".csv")


@router.get("/export", summary="Export measures (what you may see)")
def export(conn: ConnDep, user: UserDep,
           format: Literal["geojson", "gpkg", "csv"] = "geojson") -> Response:  # noqa: A002
    """All measures visible to the caller as GeoJSON, GeoPackage or CSV."""
    body = measure_io.export(conn, _relation(user), format)
    suffix = {"geojson": "geojson", "gpkg": "gpkg", "csv": "csv"}[format]
    return Response(body, media_type=measure_io.FORMATS[format], headers={
        "Content-Disposition": f'attachment; filename="massnahmen.{suffix}"'})


@router.post("/import", summary="Import measures (all or nothing; dry_run reports problems)")
async def import_file(file: UploadFile, request: Request, conn: ConnDep, user: PlannerDep,
                      settings: SettingsDep, dry_run: bool = False) -> dict:
    """Import a GeoJSON, GeoPackage or CSV file of measures as drafts."""
    name = Path(file.filename or "upload").name
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise ImportRefused(f"{name}: unsupported file type (use .geojson, .gpkg or .csv)")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"upload{suffix}"
        size = 0
        with target.open("wb") as out:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > settings.max_upload_bytes:
                    raise PayloadTooLarge(f"{name}: larger than {settings.max_upload_bytes} bytes")
                out.write(chunk)
        target = target.rename(Path(tmp) / name) if name.lower().endswith(suffix) else target
        report = await run_in_threadpool(measure_io.import_measures, conn, target,
                                         Actor.of(user), dry_run=dry_run)
    if report.created:
        await run_in_threadpool(commit, conn)
    return report.as_dict()
