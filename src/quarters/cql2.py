"""CQL2 filters, ``sortby`` and ``properties`` (OGC API Features Part 3) over an allow-list.

The public API is three functions and two small types::

    compile_filter(filter, lang, queryables, filter_crs=None) -> Compiled(sql, params)
    parse_sortby("name,-population", queryables) -> ["t.name ASC", "t.population DESC"]
    parse_properties("name,population", queryables) -> ["name", "population"]

``queryables`` maps each name a client may use to ``Field(sql, type)`` (or a plain
``(sql, type)`` tuple): ``sql`` is a trusted SQL expression of the caller (``"t.name"``),
``type`` one of ``string``, ``integer``, ``number``, ``boolean``, ``date``, ``datetime``,
``geometry``. The geometry queryable is called ``geometry`` and its SQL must be in the
storage CRS (EPSG:25832). Nothing of the client's text ever reaches the SQL: names are looked
up in the allow-list, every literal becomes a bound parameter (``:cql2_0``, ``:cql2_1`` …).

Parsing is pygeofilter's (its CQL2 text grammar and transformer, extended here for what the
grammar lacks: ``S_DWITHIN``, function-style ``T_…`` predicates, ``''`` inside strings,
``INTERVAL`` with dates, ``'..'`` and properties; its CQL2 JSON walker, with ``s_dwithin``,
``between``, ``t_…``, ``bbox`` and ``interval`` handled before it). Anything outside what is
supported — an unknown property, a function other than ``CASEI``, arithmetic, a syntax error —
raises :class:`~quarters.errors.InvalidParameter` saying what and where.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import lark
import numpy as np
import pyproj
import shapely
from lark import v_args
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json.parser import walk_cql_json
from pygeofilter.parsers.cql2_text import parser as _text_parser
from shapely.geometry import box, shape

from quarters.errors import InvalidParameter
from quarters.settings import STORAGE_SRID

logging.getLogger("lark").setLevel(logging.WARNING)  # pygeofilter turns lark's debug log on

TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "geometry")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
FILTER_CRS = {  # filter-crs → (SRID, axes swapped: EPSG:4326 is latitude first)
    CRS84: (4326, False), "OGC:CRS84": (4326, False), "CRS84": (4326, False),
    "http://www.opengis.net/def/crs/EPSG/0/4326": (4326, True), "EPSG:4326": (4326, True),
    f"http://www.opengis.net/def/crs/EPSG/0/{STORAGE_SRID}": (STORAGE_SRID, False),
    f"EPSG:{STORAGE_SRID}": (STORAGE_SRID, False),
}
# Everything quarters stores lies in Germany; longitude/latitude literals are clipped to this
# box (plus any S_DWITHIN distance) before they are projected to UTM 32, so a world-sized
# polygon neither breaks the projection nor changes an answer.
DATA_REGION = (-10.0, 35.0, 35.0, 72.0)
MAX_FILTER_CHARS = 20_000
MAX_DEPTH = 64
MAX_DISTANCE_M = 500_000
MAX_LIST = 1000
SPATIAL = ("s_intersects", "s_disjoint", "s_within", "s_contains", "s_dwithin")


@dataclass(frozen=True)
class Field:
    """One allowed name: the caller's SQL expression and its type (see ``TYPES``)."""

    sql: str
    type: str = "string"


@dataclass(frozen=True)
class Compiled:
    """A filter as an SQL condition with bound parameters (use ``text(sql)`` with ``params``)."""

    sql: str
    params: dict[str, Any]


def _fields(queryables: Mapping[str, Field | tuple[str, str]]) -> dict[str, Field]:
    out = {}
    for name, field in queryables.items():
        f = field if isinstance(field, Field) else Field(*field)
        if f.type not in TYPES:
            raise ValueError(f"queryable {name}: unknown type {f.type!r}")
        out[name] = f
    return out


def _bad(code: str, where: str = "filter", /, **params: Any) -> InvalidParameter:
    """A refused filter, sortby, filter-lang or filter-crs value (400), catalogue code
    ``cql2.<code>``; ``where`` is the parameter."""
    return InvalidParameter(code=f"cql2.{code}", pointer=where, params=params)


def _lookup(fields: dict[str, Field], name: Any, what: str) -> Field:
    if not isinstance(name, str) or name not in fields:
        near = [n for n in fields if isinstance(name, str) and n.lower() == name.lower()]
        code = "unknown_property_hint" if near else "unknown_property"
        raise _bad(code, what, name=str(name)[:80], hint=near[0] if near else "",
                   allowed=", ".join(sorted(fields)))
    return fields[name]


# -- sortby and properties --------------------------------------------------------------------
def parse_sortby(text: str, queryables: Mapping[str, Field | tuple[str, str]]) -> list[str]:
    """``"name,-population"`` → ``["t.name ASC", "t.population DESC"]`` (``+``/``-`` prefix;
    a ``+`` that arrived as a space counts as ``+``). Unknown or repeated names → 400."""
    fields = _fields(queryables)
    order, seen = [], set()
    for raw in text.split(","):
        item = raw.strip()
        direction = "ASC"
        if item[:1] in "+-" and item:
            direction = "DESC" if item[0] == "-" else "ASC"
            item = item[1:].strip()
        if not item:
            raise _bad("sortby_empty_item", "sortby", text=text[:200])
        field = _lookup(fields, item, "sortby")
        if field.type == "geometry":
            raise _bad("sortby_geometry", "sortby", name=item)
        if item in seen:
            raise _bad("sortby_twice", "sortby", name=item)
        seen.add(item)
        order.append(f"{field.sql} {direction}")
    return order


def parse_properties(text: str, queryables: Mapping[str, Field | tuple[str, str]]) -> list[str]:
    """``"name,population"`` → ``["name", "population"]`` in the given order, duplicates
    dropped; an empty value selects no properties; unknown names → 400."""
    fields = _fields(queryables)
    names: list[str] = []
    for raw in text.split(",") if text.strip() else []:
        name = raw.strip()
        _lookup(fields, name, "properties")
        if name not in names:
            names.append(name)
    return names


# -- parsing ----------------------------------------------------------------------------------
@dataclass
class _Temporal(ast.Predicate):
    """A temporal predicate by its CQL2 name (pygeofilter maps T_INTERSECTS to overlaps)."""

    op: str
    lhs: Any
    rhs: Any


@dataclass
class _Bound:
    """An INTERVAL bound as written: a string ('..' or ISO) or a property."""

    value: Any


_GRAMMAR_EXTRA = r'''
%override SINGLE_QUOTED: /'(?:[^']|'')*'/
%override attribute: /[a-zA-Z_][a-zA-Z_:0-9.]*/ | DOUBLE_QUOTED
%extend spatial_predicate: DWITHIN_FUNC "(" expression "," expression "," full_number ")" -> dwithin
DWITHIN_FUNC.2: "S_DWITHIN"i
%extend temporal_predicate: _binary_temporal_predicate_func "(" expression "," expression ")" -> temporal_func
%override interval: "INTERVAL"i "(" interval_bound "," interval_bound ")"
interval_bound: SINGLE_QUOTED | attribute
%override date: "DATE"i "(" SINGLE_QUOTED ")"
%override timestamp: "TIMESTAMP"i "(" SINGLE_QUOTED ")"
'''


def _instant(raw: str, kind: str = "any") -> date | datetime:
    """Strict ISO 8601 date or timestamp (naive timestamps are UTC)."""
    try:
        if kind == "date" or (kind == "any" and len(raw) == 10):
            return date.fromisoformat(raw)
        value = datetime.fromisoformat(raw)
    except (ValueError, TypeError):
        raise _bad("not_a_date" if kind == "date" else "not_a_timestamp",
                   value=str(raw)[:40]) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@v_args(meta=False, inline=True)
class _Transformer(_text_parser.CQLTransformer):
    def SINGLE_QUOTED(self, token):  # noqa: ANN001, ANN201, N802, D102
        return str(token)[1:-1].replace("''", "'")

    def wkt__geometry_with_srid(self, srid, geometry):  # noqa: ANN001, ANN201, D102
        raise _bad("srid_in_geometry")

    def wkt__multipoint_2(self, *coordinates):  # noqa: ANN001, ANN201, D102
        return {"type": "MultiPoint", "coordinates": coordinates}

    def dwithin(self, _name, lhs, rhs, distance):  # noqa: ANN001, ANN201, D102
        return ast.DistanceWithin(lhs, rhs, distance, "m")

    def binary_temporal_predicate(self, lhs, op, rhs):  # noqa: ANN001, ANN201, D102
        return _Temporal(str(op).lower(), lhs, rhs)

    def temporal_func(self, op, lhs, rhs):  # noqa: ANN001, ANN201, D102
        return _Temporal(str(op).lower(), lhs, rhs)

    def interval_bound(self, value):  # noqa: ANN001, ANN201, D102
        return _Bound(value)

    def interval(self, start, end):  # noqa: ANN001, ANN201, D102
        return values.Interval(start, end)

    def date(self, raw):  # noqa: ANN001, ANN201, D102
        return _instant(raw, "date")

    def timestamp(self, raw):  # noqa: ANN001, ANN201, D102
        return _instant(raw, "timestamp")


@cache
def _text_grammar() -> lark.Lark:
    path = os.path.join(os.path.dirname(_text_parser.__file__), "grammar.lark")
    with open(path, encoding="utf-8") as f:
        grammar = f.read() + _GRAMMAR_EXTRA
    return lark.Lark(grammar, parser="lalr", maybe_placeholders=False, transformer=_Transformer(),
                     import_paths=[os.path.dirname(os.path.dirname(path))], source_path=path)


_TERMINALS = {"SINGLE_QUOTED": "'text'", "DOUBLE_QUOTED": '"name"', "INT": "a number",
              "FLOAT": "a number", "SIGNED_NUMBER": "a number", "LPAR": "(", "RPAR": ")",
              "COMMA": ",", "BOOLEAN": "TRUE/FALSE", "$END": "the end"}


def _syntax_error(text: str, exc: lark.exceptions.UnexpectedInput) -> InvalidParameter:
    pos = getattr(exc, "pos_in_stream", None) or 0
    near = text[pos:pos + 20]
    where = f"{exc.line}:{exc.column}" if getattr(exc, "line", -1) not in (None, -1) \
        else str(pos + 1)
    token = getattr(exc, "token", None)
    if isinstance(exc, lark.exceptions.UnexpectedEOF) or pos >= len(text) \
            or getattr(token, "type", None) == "$END":
        return _bad("ends_early", after=text[-20:])
    expected = sorted({_TERMINALS.get(t, t) for t in getattr(exc, "expected", None)
                       or getattr(exc, "allowed", None) or [] if not t.startswith("__")})
    if not expected:
        return InvalidParameter(code="cql2.syntax", pointer="filter", extra={"position": pos + 1},
                                params={"where": where, "near": near})
    return InvalidParameter(code="cql2.syntax_expected", pointer="filter",
                            extra={"position": pos + 1},
                            params={"where": where, "near": near,
                                    "expected": ", ".join(expected[:8])})


def _parse_text(text: str) -> Any:
    try:
        return _text_grammar().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, InvalidParameter):
            raise exc.orig_exc from None
        raise _bad("unreadable", reason=f"{exc.rule!r}: {str(exc.orig_exc)[:120]}") from None
    except InvalidParameter:
        raise
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, RecursionError) as exc:
        raise _bad("unreadable", reason=f"{type(exc).__name__}: {str(exc)[:120]}") from None


def _json_bound(value: Any) -> Any:
    if isinstance(value, dict) and "property" in value:
        return _Bound(ast.Attribute(value["property"]))
    return _Bound(value)


_GEOJSON_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                  "MultiPolygon", "GeometryCollection")


def _json(node: Any) -> Any:
    """CQL2 JSON → pygeofilter AST: the few nodes pygeofilter 0.4 gets wrong or lacks are
    built here, children first; the rest goes through pygeofilter's walker."""
    if isinstance(node, list):
        return [_json(n) for n in node]
    if not isinstance(node, dict):
        if node is None or isinstance(node, float) and not math.isfinite(node):
            raise _bad("json_value", value=repr(node))
        return node
    if "interval" in node:
        bounds = node["interval"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise _bad("interval_bounds")
        return values.Interval(*(_json_bound(b) for b in bounds))
    if node.get("type") in _GEOJSON_TYPES:  # a geometry (its own "bbox" member is ignored)
        return values.Geometry(node)
    if "bbox" in node:
        return _bbox_literal(node["bbox"])
    if "date" in node:
        return _instant(node["date"], "date")
    if "timestamp" in node:
        return _instant(node["timestamp"], "timestamp")
    if "property" in node:
        if not isinstance(node["property"], str):
            raise _bad("property_not_string")
        return ast.Attribute(node["property"])
    if "filter" in node and "op" not in node:
        return _json(node["filter"])
    if "casei" in node:
        return ast.Function("lower", [_json(node["casei"])])
    if "op" not in node or "type" in node:
        return walk_cql_json(node)
    op, args = node["op"], node.get("args")
    if not isinstance(op, str) or not isinstance(args, list):
        raise _bad("op_args")
    args = _json(args)
    if op == "s_dwithin":
        if len(args) != 3:
            raise _bad("dwithin_args")
        return ast.DistanceWithin(args[0], args[1], args[2], "m")
    if op == "between" and len(args) == 3:
        return ast.Between(args[0], args[1], args[2], False)
    if op.startswith("t_"):
        if len(args) != 2:
            raise _bad("two_arguments", op=op)
        return _Temporal(op, args[0], args[1])
    if op == "like" and len(args) == 2:
        return ast.Like(args[0], args[1], False, "%", "_", "\\", False)
    return walk_cql_json({"op": op, "args": args})


def _refuse_constant(name: str) -> None:
    raise _bad("json_constant", name=name)


def _parse_json(raw: str | dict) -> Any:
    try:
        data = json.loads(raw, parse_constant=_refuse_constant) if isinstance(raw, str) else raw
        return _json(data)
    except InvalidParameter:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidParameter(code="cql2.json_invalid", pointer="filter",
                               params={"position": exc.pos + 1, "reason": exc.msg},
                               extra={"position": exc.pos + 1}) from None
    except RecursionError:
        raise _bad("too_deep") from None
    except Exception as exc:  # noqa: BLE001  pygeofilter's walker raises anything
        raise _bad("unreadable", reason=str(exc)[:160]) from None


# -- compiling --------------------------------------------------------------------------------
_NEG, _POS = "-inf", "+inf"  # open interval ends
_SCALAR_KIND = {"string": "string", "integer": "number", "number": "number",
                "boolean": "boolean", "date": "time", "datetime": "time", "geometry": "geometry"}
_COMPARISONS = {ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
                ast.GreaterThan: ">", ast.GreaterEqual: ">="}
# CQL2 temporal relations as conditions on the start (s) and end (e) of a and b.
_TEMPORAL = {
    "t_after": [("as", ">", "be")], "t_before": [("ae", "<", "bs")],
    "t_contains": [("as", "<", "bs"), ("ae", ">", "be")],
    "t_during": [("as", ">", "bs"), ("ae", "<", "be")],
    "t_equals": [("as", "=", "bs"), ("ae", "=", "be")],
    "t_finishedby": [("as", "<", "bs"), ("ae", "=", "be")],
    "t_finishes": [("as", ">", "bs"), ("ae", "=", "be")],
    "t_intersects": [("as", "<=", "be"), ("ae", ">=", "bs")],
    "t_meets": [("ae", "=", "bs")], "t_metby": [("as", "=", "be")],
    "t_overlappedby": [("as", ">", "bs"), ("as", "<", "be"), ("ae", ">", "be")],
    "t_overlaps": [("as", "<", "bs"), ("ae", ">", "bs"), ("ae", "<", "be")],
    "t_startedby": [("as", "=", "bs"), ("ae", ">", "be")],
    "t_starts": [("as", "=", "bs"), ("ae", "<", "be")],
}
_TEMPORAL.update({"t_endedby": _TEMPORAL["t_finishedby"], "t_ends": _TEMPORAL["t_finishes"],
                  "t_begunby": _TEMPORAL["t_startedby"], "t_begins": _TEMPORAL["t_starts"]})


@dataclass(frozen=True)
class _Operand:
    sql: str
    kind: str  # string | number | boolean | time | geometry
    literal: Any = None
    is_literal: bool = False


@dataclass
class _Box(values.Geometry):
    """A bbox literal, kept as its numbers (one across the antimeridian is two boxes)."""

    bbox: list[float] | None = None


def _bbox_literal(coords: Any) -> values.Geometry:
    if not isinstance(coords, list) or len(coords) not in (4, 6) or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in coords):
        raise _bad("bbox_numbers")
    minx, miny, maxx, maxy = (coords[0], coords[1], coords[3], coords[4]) if len(coords) == 6 \
        else coords
    return _Box({"type": "Polygon", "coordinates": [[[minx, miny], [maxx, miny], [maxx, maxy],
                                                     [minx, maxy], [minx, miny]]]},
                [minx, miny, maxx, maxy])


@cache
def _to_storage() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(4326, STORAGE_SRID, always_xy=True)


class _Compiler:
    def __init__(self, fields: dict[str, Field], filter_crs: str | None) -> None:
        self.fields = fields
        crs = filter_crs or CRS84
        if crs not in FILTER_CRS:
            raise _bad("filter_crs", "filter-crs", crs=crs[:100],
                       allowed=", ".join(k for k in FILTER_CRS if "://" in k))
        self.srid, self.swap = FILTER_CRS[crs]
        self.params: dict[str, Any] = {}
        self.time_ctx: str | None = None  # date or datetime: the kind of the property compared

    def time_context(self, *nodes: Any) -> str | None:
        """``date`` or ``datetime`` if the temporal properties among ``nodes`` are of that
        type (used to bind literals so that they meet the column in UTC)."""
        kinds = set()
        for node in nodes:
            for n in ([node.start, node.end] if isinstance(node, values.Interval) else [node]):
                n = n.value if isinstance(n, _Bound) else n
                field = self.fields.get(n.name) if isinstance(n, ast.Attribute) else None
                if field is not None and field.type in ("date", "datetime"):
                    kinds.add(field.type)
        return kinds.pop() if len(kinds) == 1 else None

    # literals
    def bind(self, value: Any, cast: str) -> str:
        name = f"cql2_{len(self.params)}"
        self.params[name] = value
        return f"CAST(:{name} AS {cast})"

    def literal(self, value: Any) -> _Operand:
        if isinstance(value, bool):
            return _Operand(self.bind(value, "boolean"), "boolean", value, True)
        if isinstance(value, int):
            cast = "bigint" if -2**63 <= value < 2**63 else "numeric"
            return _Operand(self.bind(value, cast), "number", value, True)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _bad("number_range", value=str(value))
            return _Operand(self.bind(value, "double precision"), "number", value, True)
        if isinstance(value, str):
            return _Operand(self.bind(value, "text"), "string", value, True)
        # Dates and timestamps meet in UTC, whatever the session's TimeZone: a timestamp
        # against a date property becomes a UTC timestamp without zone, a date against a
        # timestamp property UTC midnight.
        if isinstance(value, datetime):
            value = value if value.tzinfo else value.replace(tzinfo=UTC)
            if self.time_ctx == "date":
                naive = value.astimezone(UTC).replace(tzinfo=None)
                return _Operand(self.bind(naive, "timestamp"), "time", value, True)
            return _Operand(self.bind(value, "timestamptz"), "time", value, True)
        if isinstance(value, date):
            if self.time_ctx == "datetime":
                midnight = datetime(value.year, value.month, value.day, tzinfo=UTC)
                return _Operand(self.bind(midnight, "timestamptz"), "time", value, True)
            return _Operand(self.bind(value, "date"), "time", value, True)
        raise _bad("value_type", type=type(value).__name__)

    def scalar(self, node: Any) -> _Operand:
        if isinstance(node, ast.Attribute):
            field = _lookup(self.fields, node.name, "filter")
            return _Operand(field.sql, _SCALAR_KIND[field.type])
        if isinstance(node, ast.Function):
            if node.name.lower() != "lower" or len(node.arguments) != 1:
                raise _bad("function", name=str(node.name)[:60])
            arg = self.scalar(node.arguments[0])
            if arg.kind != "string":
                raise _bad("casei_string")
            return _Operand(f"lower({arg.sql})", "string")
        if isinstance(node, ast.Arithmetic):
            raise _bad("arithmetic")
        if isinstance(node, (values.Geometry, values.Envelope)):
            raise _bad("geometry_value")
        if isinstance(node, (values.Interval, list)):
            raise _bad("interval_value")
        if isinstance(node, ast.Node):
            raise _bad("condition_as_value", type=type(node).__name__)
        return self.literal(node)

    def as_date(self, node: Any, other: Any) -> Any:
        """A string literal compared with a date property is read as a date (GDAL sends
        ``population_date >= '2020-01-01'``)."""
        if isinstance(node, str) and isinstance(other, ast.Attribute):
            field = self.fields.get(other.name)
            if field is not None and field.type in ("date", "datetime"):
                return _instant(node)
        return node

    def pair(self, lhs: Any, rhs: Any, what: str) -> tuple[_Operand, _Operand]:
        a = self.scalar(self.as_date(lhs, rhs))
        return a, self.against(a, lhs, rhs, what)

    def against(self, a: _Operand, lhs: Any, rhs: Any, what: str) -> _Operand:
        """``rhs`` compiled and checked to have the kind of ``a`` (compiled from ``lhs``)."""
        b = self.scalar(self.as_date(rhs, lhs))
        if a.kind != b.kind:
            raise _bad("type_mismatch", op=what, left=_describe(lhs), right=_describe(rhs),
                       left_type=a.kind, right_type=b.kind)
        if a.kind == "geometry":
            raise _bad("compare_geometries", op=what)
        return b

    # conditions
    def condition(self, node: Any, depth: int = 0) -> str:
        if depth > MAX_DEPTH:
            raise _bad("depth", max=MAX_DEPTH)
        d = depth + 1
        if isinstance(node, ast.And):
            return f"({self.condition(node.lhs, d)} AND {self.condition(node.rhs, d)})"
        if isinstance(node, ast.Or):
            return f"({self.condition(node.lhs, d)} OR {self.condition(node.rhs, d)})"
        if isinstance(node, ast.Not):
            return f"(NOT {self.condition(node.sub_node, d)})"
        if isinstance(node, (ast.Comparison, ast.Between, ast.In, _Temporal)):
            parts = [getattr(node, k, None) for k in ("lhs", "rhs", "low", "high", "sub_nodes")]
            if isinstance(parts[-1], list):
                parts.extend(parts.pop())
            self.time_ctx = self.time_context(*parts)
        if type(node) in _COMPARISONS:
            op = _COMPARISONS[type(node)]
            a, b = self.pair(node.lhs, node.rhs, f"'{op}'")
            if a.kind == "boolean" and op not in ("=", "<>"):
                raise _bad("boolean_order", op=op)
            return f"({a.sql} {op} {b.sql})"
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.Between):
            a, lo = self.pair(node.lhs, node.low, "BETWEEN")
            hi = self.against(a, node.lhs, node.high, "BETWEEN")
            neg = "NOT " if node.not_ else ""
            return f"({a.sql} {neg}BETWEEN {lo.sql} AND {hi.sql})"
        if isinstance(node, ast.In):
            items = node.sub_nodes if isinstance(node.sub_nodes, list) else [node.sub_nodes]
            if not items or len(items) > MAX_LIST:
                raise _bad("in_list", max=MAX_LIST)
            a = self.scalar(node.lhs)
            sqls = [self.against(a, node.lhs, item, "IN").sql for item in items]
            neg = "NOT " if node.not_ else ""
            return f"({a.sql} {neg}IN ({', '.join(sqls)}))"
        if isinstance(node, ast.IsNull):
            if not isinstance(node.lhs, ast.Attribute):
                raise _bad("is_null")
            field = _lookup(self.fields, node.lhs.name, "filter")
            return f"({field.sql} IS {'NOT ' if node.not_ else ''}NULL)"
        if isinstance(node, ast.Include):
            return "false" if node.not_ else "true"
        if isinstance(node, (ast.SpatialComparisonPredicate, ast.DistanceWithin, ast.BBox)):
            return self.spatial(node)
        if isinstance(node, _Temporal):
            return self.temporal(node)
        if isinstance(node, ast.TemporalPredicate):  # pygeofilter's own (from JSON)
            return self.temporal(_Temporal(f"t_{node.op.name.lower()}", node.lhs, node.rhs))
        if isinstance(node, ast.Function):
            self.scalar(node)  # names the unsupported function
            raise _bad("function_as_condition")
        if isinstance(node, ast.Node):
            raise _bad("node", type=type(node).__name__)
        raise _bad("value_as_condition", value=_describe(node))

    def like(self, node: ast.Like) -> str:
        a = self.scalar(node.lhs)
        if a.kind != "string" or a.is_literal:
            raise _bad("like_property")
        pattern = node.pattern
        if isinstance(pattern, ast.Function) and len(pattern.arguments) == 1:
            pattern = pattern.arguments[0]  # CASEI('…')
        if not isinstance(pattern, str):
            raise _bad("like_literal")
        if (len(pattern) - len(pattern.rstrip("\\"))) % 2:
            raise _bad("like_escape")
        p = self.scalar(node.pattern)
        if p.kind != "string":
            raise _bad("like_literal")
        op = "ILIKE" if node.nocase else "LIKE"
        return f"({a.sql} {'NOT ' if node.not_ else ''}{op} {p.sql})"

    # spatial
    def spatial(self, node: Any) -> str:
        if isinstance(node, ast.BBox):
            if node.crs:
                raise _bad("bbox_crs")
            name, lhs = "s_intersects", node.lhs
            rhs = _bbox_literal([node.minx, node.miny, node.maxx, node.maxy])
        elif isinstance(node, ast.DistanceWithin):
            name, lhs, rhs = "s_dwithin", node.lhs, node.rhs
        else:
            name, lhs, rhs = f"s_{node.op.name.lower()}", node.lhs, node.rhs
        if name not in SPATIAL:
            raise _bad("spatial_op", op=name.upper(), allowed=", ".join(s.upper() for s in SPATIAL))
        if isinstance(lhs, (values.Geometry, values.Envelope)) and isinstance(rhs, ast.Attribute):
            lhs, rhs = rhs, lhs
            name = {"s_within": "s_contains", "s_contains": "s_within"}.get(name, name)
        if not isinstance(lhs, ast.Attribute) or not isinstance(rhs, (values.Geometry,
                                                                      values.Envelope)):
            raise _bad("spatial_args", op=name.upper())
        field = _lookup(self.fields, lhs.name, "filter")
        if field.type != "geometry":
            raise _bad("spatial_property", op=name.upper(), name=lhs.name, type=field.type)
        distance = 0.0
        if name == "s_dwithin":
            distance = node.distance
            if isinstance(distance, bool) or not isinstance(distance, (int, float)) \
                    or not 0 <= distance <= MAX_DISTANCE_M:
                raise _bad("distance", max=MAX_DISTANCE_M)
        geom, whole = self.geometry(rhs, distance)
        if geom.is_empty or (name == "s_contains" and not whole):
            # the literal lies (partly) outside the area any stored feature can cover
            return "true" if name == "s_disjoint" else "false"
        g = f"ST_GeomFromWKB({self.bind(shapely.to_wkb(geom), 'bytea')}, {STORAGE_SRID})"
        col = field.sql
        if name == "s_dwithin":
            return f"ST_DWithin({col}, {g}, {self.bind(float(distance), 'float8')})"
        return {"s_intersects": f"ST_Intersects({col}, {g})",
                "s_disjoint": f"NOT ST_Intersects({col}, {g})",
                "s_within": f"ST_Within({col}, {g})",
                "s_contains": f"ST_Contains({col}, {g})"}[name]

    def geometry(self, value: Any, distance: float) -> tuple[Any, bool]:
        """The literal in the storage CRS, and whether it was kept whole (not clipped)."""
        try:
            geom = shape(value.__geo_interface__)
        except Exception as exc:  # noqa: BLE001  shapely refuses malformed rings in many ways
            raise _bad("geometry_literal", reason=str(exc)[:100]) from None
        if isinstance(value, _Box):
            geom = self.bbox(value.bbox)
        if "crs" in value.__geo_interface__:
            raise _bad("srid_in_geometry")
        coords = shapely.get_coordinates(geom)
        if geom.is_empty or not np.isfinite(coords).all():
            raise _bad("geometry_empty")
        if self.swap:
            geom = shapely.transform(geom, lambda c: c[:, ::-1])
            coords = coords[:, ::-1]
        if not geom.is_valid:
            raise _bad("geometry_literal", reason=shapely.is_valid_reason(geom))
        if self.srid == STORAGE_SRID:
            if np.abs(coords).max() > 1e8:
                raise _bad("utm_range")
            return geom, True
        if not ((-180 <= coords[:, 0]) & (coords[:, 0] <= 180) & (-90 <= coords[:, 1])
                & (coords[:, 1] <= 90)).all():
            raise _bad("lonlat_range")
        mx = distance / 111_000 / math.cos(math.radians(DATA_REGION[3]))
        my = distance / 111_000
        w, s, e, n = DATA_REGION
        region = box(w - mx, s - my, e + mx, n + my)
        whole = region.contains(geom)
        if not whole:
            geom = geom.intersection(region)
            if geom.is_empty:
                return geom, False
        geom = shapely.segmentize(geom, 0.1)  # straight lines in degrees stay close to it
        tr = _to_storage()
        out = shapely.transform(geom, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
        if not np.isfinite(shapely.get_coordinates(out)).all():
            raise _bad("projection")
        return shapely.make_valid(out) if not out.is_valid else out, whole

    def bbox(self, bbox: list[float]) -> Any:
        """A bbox as written (in the filter CRS's axis order); one that crosses the
        antimeridian (west > east in longitude/latitude) becomes two boxes."""
        x1, y1, x2, y2 = bbox
        if self.swap:  # EPSG:4326: latitude first; the result is swapped back by the caller
            if x1 > x2:
                raise _bad("bbox_south_north")
            if y1 <= y2:
                return box(x1, y1, x2, y2)
            return shapely.MultiPolygon([box(x1, y1, x2, 180), box(x1, -180, x2, y2)])
        if y1 > y2:
            raise _bad("bbox_south_north")
        if x1 <= x2:
            return box(x1, y1, x2, y2)
        if self.srid != 4326:
            raise _bad("bbox_west_east")
        return shapely.MultiPolygon([box(x1, y1, 180, y2), box(-180, y1, x2, y2)])

    # temporal
    def bounds(self, node: Any) -> tuple[str, str]:
        if isinstance(node, values.Interval):
            out = []
            for bound, open_end in ((node.start, _NEG), (node.end, _POS)):
                value = bound.value if isinstance(bound, _Bound) else bound
                if value == ".." or value is None:
                    out.append(open_end)
                    continue
                if isinstance(value, str):
                    value = _instant(value)
                op = self.scalar(value)
                if op.kind != "time":
                    raise _bad("interval_bound", value=_describe(value))
                out.append(op.sql)
            return out[0], out[1]
        op = self.scalar(_instant(node) if isinstance(node, str) else node)
        if op.kind != "time":
            raise _bad("temporal_operand", value=_describe(node))
        return op.sql, op.sql

    def temporal(self, node: _Temporal) -> str:
        if node.op not in _TEMPORAL:
            raise _bad("temporal_op", op=node.op.upper())
        if node.op == "t_disjoint":
            return f"(NOT {self.temporal(_Temporal('t_intersects', node.lhs, node.rhs))})"
        a, b = self.bounds(node.lhs), self.bounds(node.rhs)
        ends = {"as": a[0], "ae": a[1], "bs": b[0], "be": b[1]}
        parts = []
        for x, op, y in _TEMPORAL[node.op]:
            result = _compare_ends(ends[x], op, ends[y])
            if result is False:
                return "false"
            if result is not True:
                parts.append(result)
        return f"({' AND '.join(parts)})" if parts else "true"


def _compare_ends(x: str, op: str, y: str) -> str | bool:
    """``x op y`` where either side may be an open end (−∞/+∞): decided here, or SQL."""
    if x not in (_NEG, _POS) and y not in (_NEG, _POS):
        return f"{x} {op} {y}"
    rank = {_NEG: -1, _POS: 1}
    rx, ry = rank.get(x, 0), rank.get(y, 0)
    if rx == ry:  # the same open end on both sides
        return op in ("=", "<=", ">=")
    return {"<": rx < ry, "<=": rx < ry, ">": rx > ry, ">=": rx > ry, "=": False}[op]


def _describe(node: Any) -> str:
    if isinstance(node, ast.Attribute):
        return str(node.name)
    if isinstance(node, str):
        return f"'{node[:40]}'"
    return str(node)[:40]


def compile_filter(filter: str | dict, lang: str | None,  # noqa: A002
                   queryables: Mapping[str, Field | tuple[str, str]],
                   filter_crs: str | None = None) -> Compiled:
    """Translate a CQL2 filter into an SQL condition over the allow-list ``queryables``.

    ``lang`` is ``cql2-text`` (the default when None) or ``cql2-json`` (``filter`` then a JSON
    string or an already decoded dict); ``filter_crs`` is the CRS of geometry literals (CRS84
    when None; EPSG:4326 with latitude first; EPSG:25832). Raises InvalidParameter (400)."""
    lang = lang or "cql2-text"
    if lang not in ("cql2-text", "cql2-json"):
        raise _bad("filter_lang", "filter-lang", lang=str(lang)[:40])
    compiler = _Compiler(_fields(queryables), filter_crs)
    if isinstance(filter, str):
        if len(filter) > MAX_FILTER_CHARS:
            raise _bad("too_long", max=MAX_FILTER_CHARS)
        if not filter.strip():
            raise _bad("empty")
    tree = _parse_json(filter) if lang == "cql2-json" else _parse_text(str(filter))
    try:
        sql = compiler.condition(tree)
    except RecursionError:
        raise _bad("too_deep") from None
    return Compiled(sql, compiler.params)
