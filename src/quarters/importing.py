"""Import use-cases that combine a file, its source record and one transaction."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, text

from quarters.errors import ImportRefused
from quarters.ingest import (
    BoundarySpec,
    ImportSummary,
    Progress,
    file_checksum,
    load_boundaries,
    write_boundaries,
)
from quarters.loading import upsert_source


def import_boundaries(engine: Engine, path: Path, spec: BoundarySpec, **kwargs) -> ImportSummary:
    """Import a boundary file in its own transaction (all or nothing)."""
    with engine.begin() as conn:
        return import_into(conn, path, spec, **kwargs)


def import_into(
    conn: Connection,
    path: Path,
    spec: BoundarySpec,
    *,
    source_name: str | None = None,
    licence: str = "nicht angegeben",
    attribution: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Check the file, then store it with its source inside the caller's transaction."""
    if spec.table == "districts" and not spec.city:
        raise ImportRefused(f"{path.name}: level '{spec.level}' needs --city (AGS of the city)")
    gdf, summary = load_boundaries(path, spec, reproject=False)
    if spec.city and not conn.execute(
        text("SELECT 1 FROM municipalities WHERE ags = :a"), {"a": spec.city}
    ).first():
        raise ImportRefused(f"{path.name}: city {spec.city} is not loaded "
                            "(run 'quarters data load' first or check the AGS)")
    src = upsert_source(
        conn, f"import:{spec.table}:{spec.level}:{path.name}"[:80],
        name=source_name or path.name, licence=licence,
        attribution=attribution or source_name or path.name, checksum=file_checksum(path),
        note=f"imported from {path.name} ({summary.read} features)",
    )
    return write_boundaries(conn, gdf, spec, src, summary, progress, reproject=True)
