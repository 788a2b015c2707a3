"""One layer per level: code mapping of a district file and the check that it does not
silently lay a second layer over the existing units of the same city and level.

A new unit whose area lies by more than :data:`OVERLAP_SHARE` inside existing units of the
same city and level with *other* codes (codes the file does not contain, so they would stay)
would double the level. Such an import is refused, naming the overlapping units, unless the
caller says ``replace`` (the existing units not in the file are removed) or ``add`` (both kept
on purpose). A code map (``old,new`` CSV) or a rule (``lastN``: the last N characters) lets
official codes meet the stored ones, so values keyed by code (indicator values) and measures
(linked to the district row) stay attached.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
from sqlalchemy import Connection, text

from quarters.errors import ImportRefused, item
from quarters.safefiles import Limits, check_counts, check_file

OVERLAP_SHARE = 0.5  # more than half of the new unit's area inside existing units
SHOWN = 5  # overlapping units named in the refusal
RULE = re.compile(r"^last([1-9])$")
RULES_HELP = "lastN (keep the last N characters, e.g. last2: 571 → 71)"


def read_code_map(path: Path, limits: Limits | None = None) -> dict[str, str]:
    """``old,new`` pairs from a CSV (header ``old,new`` or any two columns); refused with the
    row named when a row is incomplete or an old code repeats."""
    limits = limits or Limits.of()
    name = path.name
    if path.suffix.lower() != ".csv":
        raise ImportRefused(code="layers.code_map_csv", params={"file": name})
    check_file(path, name, "csv", limits)
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(code="layers.code_map_utf8", params={"file": name}) from None
    sep = ";" if content.count(";") > content.count(",") else ","
    rows = list(csv.reader(io.StringIO(content), delimiter=sep))
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["old", "new"]:
        rows = rows[1:]
    check_counts(name, len(rows), 0, limits)
    mapping: dict[str, str] = {}
    errors = []
    for n, row in enumerate(rows, start=2):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            errors.append({**item(None, "layers.code_map_two_values", row=n), "row": n})
        elif cells[0] in mapping:
            errors.append({**item(None, "layers.code_map_twice", row=n, old=cells[0][:40]),
                           "row": n})
        else:
            mapping[cells[0]] = cells[1]
    if errors:
        raise ImportRefused(code="layers.code_map_refused", errors=errors, params={
            "file": name, "problems": [{"code": e["code"], "params": e["params"]}
                                       for e in errors[:20]]})
    if not mapping:
        raise ImportRefused(code="layers.code_map_empty", params={"file": name})
    return mapping


def check_rule(rule: str) -> str:
    """The rule if it is known, else ImportRefused naming the rules."""
    if not RULE.match(rule):
        raise ImportRefused(code="layers.unknown_rule", pointer="code_rule",
                            params={"rule": rule[:40]})
    return rule


def map_codes(gdf: gpd.GeoDataFrame, code_field: str, name: str,
              code_map: dict[str, str] | None = None, code_rule: str | None = None
              ) -> tuple[gpd.GeoDataFrame, int]:
    """Apply the code map (first) and the rule to the code column; return (frame, codes
    changed). Codes not in the map stay as they are. Refused when two units end up with one
    code."""
    if not code_map and not code_rule:
        return gdf, 0
    codes = gdf[code_field].astype(str).str.strip()
    new = codes.map(lambda c: code_map.get(c, c)) if code_map else codes
    if code_rule:
        n = int(RULE.match(check_rule(code_rule)).group(1))
        new = new.str[-n:]
    clash = new[new.duplicated(keep=False)]
    if len(clash):
        pairs = sorted({f"{o} → {c}" for o, c in zip(codes[clash.index], clash, strict=True)})
        raise ImportRefused(code="layers.code_clash",
                            params={"file": name, "pairs": ", ".join(pairs[:10])})
    out = gdf.copy()
    out[code_field] = new
    return out, int((new != codes).sum())


_OVERLAPS = """
    WITH n AS (SELECT s.code, s.name, ST_GeomFromWKB(s.wkb, :srid) AS g FROM _stage s),
    hit AS (
        SELECT n.code, n.name, d.code AS old_code, d.name AS old_name,
               ST_Area(ST_Intersection(n.g, d.geom)) AS shared, ST_Area(n.g) AS area
        FROM n JOIN districts d ON d.city_ags = :city AND d.level = :level
             AND d.geom && n.g AND ST_Intersects(d.geom, n.g)
        WHERE d.code NOT IN (SELECT code FROM _stage))
    SELECT code, name, sum(shared) / NULLIF(max(area), 0) AS share,
           array_agg(old_code || ' ' || old_name ORDER BY shared DESC) AS existing
    FROM hit GROUP BY code, name
    HAVING sum(shared) > :share * max(area)
    ORDER BY share DESC, code
"""


def overlaps(conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Staged units (table ``_stage``) lying by more than half inside existing units of the
    same city and level whose codes the file does not contain."""
    rows = conn.execute(text(_OVERLAPS), {**params, "share": OVERLAP_SHARE}).mappings().all()
    return [{"code": r["code"], "name": r["name"], "share": round(float(r["share"]), 3),
             "existing": list(r["existing"])} for r in rows]


def refuse_overlaps(found: list[dict[str, Any]], name: str, level: str, city: str,
                    read: int, existing: int) -> ImportRefused:
    """The refusal naming a few overlapping units, their count and the way out."""
    shown = [{"code": "layers.overlap_shown", "params": {
        "unit": f["code"], "name": f["name"], "percent": round(100 * f["share"]),
        "existing": ", ".join(f["existing"][:3])}} for f in found[:SHOWN]]
    more = {"code": "layers.more", "params": {"count": len(found) - SHOWN}} \
        if len(found) > SHOWN else ""
    return ImportRefused(code="layers.overlap", params={
        "file": name, "count": len(found), "read": read, "existing": existing, "level": level,
        "city": city, "shown": shown, "more": more},
        errors=[{**item(None, "layers.overlaps_unit", unit=f["code"],
                        existing=", ".join(f["existing"]), percent=round(100 * f["share"])),
                 "file": name, "unit": f["code"]} for f in found])
