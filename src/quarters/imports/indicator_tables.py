"""`quarters import indicators`: a user's indicator table (CSV) in one step, all or nothing.

One row per unit (key column ``unit_code``, ``ags``, ``ars`` or ``code``) and one column per
indicator, or long form (``indicator``, ``value``); new indicators get their kind from the unit
(% → share, "je …" → rate), so shares and rates are default indicators at once."""

from __future__ import annotations

import csv
import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from quarters.errors import ImportRefused, InvalidParameter, item
from quarters.indicators.definitions import (
    IndicatorDef,
    definitions,
    ensure_indicators,
    kind_of_unit,
)
from quarters.indicators.levels import Level, get_level, units
from quarters.indicators.provenance import encode_text
from quarters.indicators.values import REF_DATE, write_values
from quarters.messages import Note

MAX_ERRORS_SHOWN = 20




INDICATOR_KEY = re.compile(r"^[a-z][a-z0-9_]{0,79}$")


MISSING_TOKENS = {"", "na", "n/a", "nan", "null", "none", ".", "...", "x", "–", "—"}


KEY_COLUMNS = ("unit_code", "ags", "ars", "code")


META_COLUMNS = {"name", "ref_date", "unit", "source", "licence", "attribution",
                "missing_reason", "indicator", "value", "note"}


@dataclass
class IndicatorImportSummary:
    """What an indicator CSV import did."""

    path: str
    level: str
    rows: int = 0
    values: int = 0
    missing: int = 0
    inserted: int = 0
    updated: int = 0
    new_indicators: list[str] = field(default_factory=list)
    indicators: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _norm_unit(unit: str) -> str:
    u = unicodedata.normalize("NFKC", unit).replace("²", "2").replace("³", "3")
    return re.sub(r"\s+", "", u).lower()


def _sniff_sep(path: Path) -> str:
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline()
    return ";" if first.count(";") > first.count(",") else ("\t" if "\t" in first and
                                                             "," not in first else ",")


def _parse_value(raw: str, decimal: str) -> float | None:
    """Number or None for a missing token; ValueError if not numeric."""
    s = raw.strip()
    if s.lower() in MISSING_TOKENS:
        return None
    s = s.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if decimal == ",":
        s = s.replace(".", "").replace(",", ".")
    value = float(s)  # raises ValueError
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _key_normaliser(conn: Connection, level: Level, key_column: str):  # noqa: ANN202
    """Function raw key → (unit_code or None, note) for the level and key column."""
    known = set(units(conn, level).index)

    def digits(raw: str, n: int) -> str | None:
        s = raw.strip()
        if not (s.isascii() and s.isdigit()) or len(s) > n:
            return None
        return s.zfill(n)  # spreadsheets drop leading zeros of AGS/ARS

    def norm(raw: str) -> str | None:
        if level.table == "municipalities":
            if key_column == "ars":
                s = digits(raw, 12)
                code = s[:5] + s[9:] if s else None
            else:
                code = digits(raw, 8)
        elif level.table == "counties":
            s = digits(raw, 12 if key_column == "ars" else 5) if len(raw.strip()) > 5 \
                else digits(raw, 5)
            code = s[:5] if s else None
        else:
            code = raw.strip()
        return code if code in known else None

    return norm


def import_indicators(
    conn: Connection,
    path: Path,
    level: str,
    *,
    ref_date: str | None = None,
    key_column: str | None = None,
    decimal: str = ".",
    source_name: str | None = None,
    licence: str = "nicht angegeben",
    attribution: str | None = None,
) -> IndicatorImportSummary:
    """Import indicator values from a CSV into the caller's transaction: all or nothing.

    Layouts (detected from the header; separator ``,`` ``;`` or tab; UTF-8, BOM allowed):

    * long: a key column plus ``indicator`` and ``value`` (optional ``unit``, ``ref_date``,
      ``missing_reason``, ``source``, ``licence``, ``attribution``),
    * wide: a key column plus one column per indicator, named ``key`` or ``key [unit]``.

    The key column is ``unit_code``, ``ags``, ``ars`` (municipalities / Kreise) or ``code``
    (district codes as stored, quarter slugs), or the one named by ``key_column``. Empty cells
    and the tokens NA, ".", "x", "…" are stored as explicitly missing (reason from
    ``missing_reason`` or "not given in FILE"). Refused with every problem named (file, row,
    problem): unknown unit key, unknown indicator without a unit, unit clash with the
    indicator's unit, non-numeric value, bad or missing reference date, duplicate rows.
    """
    from quarters.imports.boundaries import file_checksum
    from quarters.safefiles import Limits, check_counts, check_file
    from quarters.sources import upsert_source

    name = path.name
    if decimal not in (".", ","):
        raise InvalidParameter(code="indicators.decimal", pointer="decimal",
                               params={"value": decimal[:10]})
    if ref_date is not None and not REF_DATE.match(ref_date):
        raise InvalidParameter(code="indicators.ref_date", pointer="ref_date",
                               params={"value": ref_date[:40]})
    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        raise ImportRefused(code="file.unsupported_type", params={
            "name": name, "suffix": path.suffix[:20], "allowed": "CSV"})
    limits = Limits.of()
    check_file(path, name, "csv", limits)
    lvl = get_level(conn, level)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            sep=_sniff_sep(path), quoting=csv.QUOTE_MINIMAL)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ImportRefused(code="indicators.not_csv",
                            params={"file": name, "reason": reason}) from exc
    check_counts(name, len(frame), 0, limits)
    frame.columns = [c.strip() for c in frame.columns]
    lower = {c.lower(): c for c in frame.columns}
    key_col = key_column or next((lower[k] for k in KEY_COLUMNS if k in lower), None)
    if key_col is None or key_col not in frame.columns:
        raise ImportRefused(code="indicators.no_key_column", params={
            "file": name, "expected": ", ".join(KEY_COLUMNS),
            "columns": ", ".join(frame.columns)[:300]})
    if frame.empty:
        raise ImportRefused(code="indicators.no_rows", params={"file": name})
    long = "indicator" in lower and "value" in lower
    records: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []

    def get(row: pd.Series, col: str) -> str:
        c = lower.get(col)
        return row[c].strip() if c else ""

    if long:
        for i, row in frame.iterrows():
            records.append({"row": int(i) + 2, "raw_key": row[key_col], "indicator":
                            get(row, "indicator"), "raw": row[lower["value"]],
                            "unit": get(row, "unit"), "ref_date": get(row, "ref_date"),
                            "reason": get(row, "missing_reason"), "source": get(row, "source"),
                            "licence": get(row, "licence"),
                            "attribution": get(row, "attribution")})
    else:
        value_cols = [c for c in frame.columns
                      if c != key_col and c.lower() not in META_COLUMNS and c.lower()
                      not in KEY_COLUMNS]
        if not value_cols:
            raise ImportRefused(code="indicators.no_indicator_columns", params={"file": name})
        heads = {}
        for c in value_cols:
            m = re.fullmatch(r"(.+?)\s*\[(.+)\]", c)
            heads[c] = (m.group(1).strip(), m.group(2).strip()) if m else (c.strip(), "")
        for i, row in frame.iterrows():
            for c in value_cols:
                ind, unit = heads[c]
                records.append({"row": int(i) + 2, "raw_key": row[key_col], "indicator": ind,
                                "raw": row[c], "unit": unit, "ref_date": get(row, "ref_date"),
                                "reason": get(row, "missing_reason"),
                                "source": get(row, "source"), "licence": get(row, "licence"),
                                "attribution": get(row, "attribution")})

    defs = definitions(conn)
    norm = _key_normaliser(conn, lvl, key_col.lower())
    file_units: dict[str, tuple[str, int]] = {}
    seen: dict[tuple[str, str, str], int] = {}
    new: dict[str, str] = {}
    for r in records:
        ind = r["indicator"]

        def problem(pointer: str, code: str, /, **params: Any) -> None:
            errors.append({**item(pointer, code, **params), "row": r["row"]})  # noqa: B023

        if not INDICATOR_KEY.match(ind):
            problem("/indicator", "indicators.bad_key", indicator=ind[:80])
            continue
        code = norm(r["raw_key"])
        if code is None:
            problem(f"/{key_col}", "indicators.unknown_unit", column=key_col,
                    key=r["raw_key"].strip()[:80], label=lvl.label_en, level=lvl.name)
        r["code"] = code
        unit = r["unit"]
        if ind in defs:
            if unit and _norm_unit(unit) != _norm_unit(defs[ind].unit):
                problem("/unit", "indicators.unit_clash", unit=unit[:40], indicator=ind,
                        known=defs[ind].unit)
        elif unit:
            first = file_units.setdefault(ind, (unit, r["row"]))
            if _norm_unit(first[0]) != _norm_unit(unit):
                problem("/unit", "indicators.new_unit_clash", unit=unit[:40], indicator=ind,
                        first=first[0], first_row=first[1])
            new.setdefault(ind, unit)
        else:
            problem("/indicator", "indicators.unknown_indicator", indicator=ind)
        try:
            r["value"] = _parse_value(r["raw"], decimal)
        except ValueError:
            comma = decimal == "." and "," in r["raw"]
            problem("/value", "indicators.not_a_number", value=r["raw"].strip()[:40],
                    indicator=ind, hint={"code": "indicators.decimal_hint"} if comma else "")
            r["value"] = None
        ref = r["ref_date"] or ref_date
        if not ref:
            problem("/ref_date", "indicators.no_ref_date")
        elif not REF_DATE.match(ref):
            problem("/ref_date", "indicators.row_ref_date", value=ref[:40])
        r["ref"] = ref
        if code is not None and ref:
            k = (ind, code, ref)
            if k in seen:
                problem("/", "indicators.duplicate_row", indicator=ind, unit=code, date=ref,
                        first_row=seen[k])
            else:
                seen[k] = r["row"]
    if errors:
        shown = [{"code": "indicators.row", "params": {"file": name, "row": e["row"], "problem": {
            "code": e["code"], "params": e["params"]}}} for e in errors[:MAX_ERRORS_SHOWN]]
        rest = len(errors) - len(shown)
        raise ImportRefused(code="indicators.refused", errors=errors, params={
            "file": name, "problems": shown,
            "more": {"code": "indicators.more", "params": {"count": rest}} if rest else ""})

    checksum = file_checksum(path)
    sources: dict[tuple[str, str, str], int] = {}
    for r in records:
        combo = (r["source"] or source_name or name, r["licence"] or licence,
                 r["attribution"] or attribution or r["source"] or source_name or name)
        if combo not in sources:
            digest = hashlib.sha1("|".join(combo).encode()).hexdigest()[:8]
            sources[combo] = upsert_source(
                conn, f"import:indicators:{lvl.name}:{name}:{digest}"[:80], name=combo[0],
                licence=combo[1], attribution=combo[2], checksum=checksum,
                note=encode_text(Note("indicator.source_imported", file=name)))
        r["source_id"] = sources[combo]
    if new:
        ensure_indicators(conn, [IndicatorDef(k, k, k, u, kind_of_unit(u), "none",
                                              description=Note("indicator.imported",
                                                               file=name))
                                 for k, u in new.items()])
    not_given, imported = Note("missing.not_given_in", file=name), Note("deriv.imported", file=name)
    rows = pd.DataFrame({
        "indicator": [r["indicator"] for r in records], "level": lvl.name,
        "unit_code": [r["code"] for r in records], "ref_date": [r["ref"] for r in records],
        "value": [r["value"] for r in records],
        # the file's own reasons are free text, kept as written
        "missing_reason": [None if r["value"] is not None else
                           (r["reason"] or not_given) for r in records],
        "derivation": [imported] * len(records),
        "source_id": [r["source_id"] for r in records]})
    ins, upd = write_values(conn, rows)
    missing = int(rows["value"].isna().sum())
    summary = IndicatorImportSummary(
        path=str(path), level=lvl.name, rows=len(frame), values=len(rows) - missing,
        missing=missing, inserted=ins, updated=upd, new_indicators=sorted(new),
        indicators=sorted(set(rows["indicator"])))
    if missing:
        summary.notes.append(Note("values_explicitly_missing", count=missing))
    return summary
