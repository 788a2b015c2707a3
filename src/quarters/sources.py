"""Source records (table ``sources``): every boundary, indicator value and measure import
names where its data came from, under which licence and attribution — written and found here."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from quarters.errors import SetupError

COMPUTED_KEY = "quarters-computed"


def upsert_source(conn: Connection, key: str, **fields: Any) -> int:
    """Insert or update a row of the sources table and return its id."""
    cols = ["name", "publisher", "licence", "licence_url", "attribution", "url", "retrieved",
            "checksum", "note"]
    values = {c: fields.get(c) for c in cols}
    values["key"] = key
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols)
    return conn.execute(text(
        f"INSERT INTO sources (key, {', '.join(cols)}) VALUES (:key, {', '.join(':' + c for c in cols)})"
        f" ON CONFLICT (key) DO UPDATE SET {sets} RETURNING id"
    ), values).scalar_one()


def source_id(conn: Connection, key: str) -> int:
    """Id of a loaded source, or a clear error."""
    found = conn.execute(text("SELECT id FROM sources WHERE key = :k"), {"k": key}).scalar()
    if found is None:
        raise SetupError(code="data.source_not_loaded", params={"key": key})
    return found


def computed_source(conn: Connection) -> int:
    """The source row that stands for values computed inside quarters."""
    return upsert_source(
        conn, COMPUTED_KEY,
        name="In quarters berechnete Indikatoren (aus Geometrien, Maßnahmen und Einwohnerzahlen)",
        publisher="quarters project",
        licence="wie die Eingangsdaten (siehe derivation je Wert und deren Quellen)",
        attribution="Berechnung: quarters-Projekt; Eingangsdaten: siehe Quellen der "
                    "verwendeten Geometrien, Maßnahmen und Einwohnerzahlen",
        note="Werte werden bei jedem 'quarters data load' und 'quarters analyze refresh' neu "
             "berechnet; die Herleitung steht in indicator_values.derivation.")


def load_catalogue_sources(conn: Connection, catalogue: Any) -> dict[str, int]:
    """Store every catalogue entry as a source row (attribution of derived data where it applies)."""
    ids = {}
    for key, entry in catalogue.datasets.items():
        retrieved = entry.retrieved
        ids[key] = upsert_source(
            conn, key,
            name=entry.name, publisher=entry.publisher, licence=entry.licence,
            licence_url=entry.licence_url,
            attribution=entry.attribution_derived or entry.attribution,
            url=entry.download_url or entry.landing_page,
            retrieved=retrieved if isinstance(retrieved, date) else None,
            checksum=entry.sha256, note=entry.note,
        )
    return ids
