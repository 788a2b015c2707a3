"""Writing indicator values: one value belongs to (indicator, level, unit_code, ref_date);
missing values are explicit rows with ``value`` NULL and a ``missing_reason``. Reasons and
derivations are notes (:mod:`quarters.indicators.provenance`) or free text."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from quarters.indicators.provenance import NOT_GIVEN, NOT_GIVEN_SQL, encode

REF_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
VALUE_COLUMNS = ["indicator", "level", "unit_code", "ref_date", "value", "missing_reason",
                 "derivation", "source_id"]


WRITE_CHUNK = 20_000  # rows per statement: keeps each statement far below statement_timeout


BATCH_TIMEOUT = "300s"  # statement timeout inside load/refresh transactions (batch work)


def write_values(conn: Connection, rows: pd.DataFrame) -> tuple[int, int]:
    """Upsert value rows (columns VALUE_COLUMNS) via COPY; return (inserted, updated).

    NaN values become NULL and must have a missing_reason (the table enforces it). Reasons and
    derivations are notes or free text (stored by :func:`provenance.encode`). Large frames are
    written in chunks of WRITE_CHUNK rows.
    """
    inserted = updated = 0
    for start in range(0, len(rows), WRITE_CHUNK):
        i, u = _write_chunk(conn, rows.iloc[start:start + WRITE_CHUNK])
        inserted, updated = inserted + i, updated + u
    return inserted, updated


def _write_chunk(conn: Connection, rows: pd.DataFrame) -> tuple[int, int]:
    if rows.empty:
        return 0, 0
    conn.execute(text("DROP TABLE IF EXISTS _iv_stage"))
    conn.execute(text(
        "CREATE TEMP TABLE _iv_stage (indicator text, level text, unit_code text, ref_date text,"
        " value float8, missing_reason jsonb, derivation jsonb, source_id int) ON COMMIT DROP"))
    raw = conn.connection.driver_connection
    frame = rows[VALUE_COLUMNS]
    encoded: dict[Any, str | None] = {}  # the rows share few notes: each is encoded once

    def stored(note: Any) -> str | None:
        key = id(note) if isinstance(note, dict) else note
        if key not in encoded:
            encoded[key] = encode(note)
        return encoded[key]

    with raw.cursor() as cur, cur.copy("COPY _iv_stage FROM STDIN") as copy:
        for rec in frame.itertuples(index=False, name=None):
            ind, lvl, code, ref, value, reason, deriv, src = rec
            value = None if value is None or (isinstance(value, float) and math.isnan(value)) \
                else float(value)
            copy.write_row((ind, lvl, str(code), str(ref), value, stored(reason), stored(deriv),
                            int(src)))
    flags = conn.execute(text("""
        INSERT INTO indicator_values (indicator, level, unit_code, ref_date, value,
                                      missing_reason, derivation, source_id)
        SELECT indicator, level, unit_code, ref_date, value,
               CASE WHEN value IS NULL THEN COALESCE(missing_reason, CAST(:not_given AS jsonb)) END,
               derivation, source_id
        FROM _iv_stage
        ON CONFLICT ON CONSTRAINT indicator_values_key DO UPDATE SET value = EXCLUDED.value,
            missing_reason = EXCLUDED.missing_reason, derivation = EXCLUDED.derivation,
            source_id = EXCLUDED.source_id, loaded_at = now()
        RETURNING (xmax = 0)
    """), {"not_given": NOT_GIVEN_SQL}).scalars().all()
    conn.execute(text("DROP TABLE _iv_stage"))
    inserted = sum(1 for f in flags if f)
    return inserted, len(flags) - inserted


def _rows(indicator: str, level: str, codes: Sequence[str], values: Sequence[float | None],
          ref_date: str | Sequence[str], source_id: int | Sequence[int],
          reasons: Sequence[Any] | None = None,
          derivation: Any = None) -> pd.DataFrame:
    n = len(codes)

    def col(x: Any) -> list:
        return list(x) if isinstance(x, (list, tuple, np.ndarray, pd.Series)) else [x] * n

    vals = [None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)
            for v in values]
    rs = col(reasons) if reasons is not None else [None] * n
    rs = [r if v is None else None for v, r in zip(vals, rs, strict=True)]
    rs = [r or (NOT_GIVEN if v is None else None) for v, r in zip(vals, rs, strict=True)]
    return pd.DataFrame({
        "indicator": indicator, "level": level, "unit_code": list(codes), "ref_date": col(ref_date),
        "value": vals, "missing_reason": rs, "derivation": col(derivation),
        "source_id": col(source_id)})


@dataclass
class IndicatorReport:
    """What an indicator load did."""

    written: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, frame: pd.DataFrame, inserted: int, updated: int) -> None:
        """Count values and explicit missing values per (indicator, level)."""
        for (ind, lvl), grp in frame.groupby(["indicator", "level"], sort=True):
            v = int(grp["value"].notna().sum())
            self.written[(ind, lvl)] = (v, len(grp) - v)

    def merge(self, other: IndicatorReport) -> None:
        """Add another report's content."""
        self.written.update(other.written)
        self.notes += other.notes
        self.warnings += other.warnings

    def lines(self) -> list[str]:
        """One line per (indicator, level) plus notes and warnings."""
        out = [f"{ind} ({lvl}): {v} values, {m} explicitly missing"
               for (ind, lvl), (v, m) in sorted(self.written.items())]
        return out + self.notes + [f"warning: {w}" for w in self.warnings]


def batch_timeout(conn: Connection) -> None:
    """Allow long statements for the rest of this transaction only (loads are batch work)."""
    if conn.in_transaction():
        conn.execute(text(f"SET LOCAL statement_timeout = '{BATCH_TIMEOUT}'"))
