"""Checks of text and numbers that come from outside: one place, used by every entry point.

Everything here raises the project's own 4xx errors (``quarters.errors``), never anything else.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from quarters.errors import BadRequest, InvalidParameter
from quarters.errors import item as error_item

MAX_JSON_DEPTH = 64
EXCERPT = 40

_INT = re.compile(r"-?[0-9]{1,18}")
# C0 controls and DEL; tab, newline and carriage return are allowed in multi-line fields only.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_SINGLE_LINE = _CONTROL
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Characters XML 1.0 cannot carry at all (even escaped).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def excerpt(value: object, length: int = EXCERPT) -> str:
    """A short, printable excerpt of user input for an error message (never the whole input)."""
    text = value if isinstance(value, str) else repr(value)
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub("\ufffd", text))
    return text if len(text) <= length else text[:length] + "…"


def parse_int(raw: str | None, name: str, default: int | None = None, *,
              minimum: int | None = None, maximum: int | None = None) -> int | None:
    """An integer from a query or path value: ASCII digits with an optional leading minus only.

    ``²``, ``٣``, ``+5``, ``--5``, `` 5`` and ``1_000`` are refused (400), as are numbers
    outside ``minimum``..``maximum`` and more than 18 digits.
    """
    if raw is None:
        return default
    if not isinstance(raw, str) or not _INT.fullmatch(raw):
        raise InvalidParameter(code="param.not_integer", pointer=name,
                               params={"name": name, "value": excerpt(raw)})
    value = int(raw)
    if minimum is not None and value < minimum:
        raise InvalidParameter(code="param.too_small", pointer=name,
                               params={"name": name, "minimum": minimum, "value": value})
    if maximum is not None and value > maximum:
        raise InvalidParameter(code="param.too_large", pointer=name,
                               params={"name": name, "maximum": maximum, "value": value})
    return value


def control_code(text: str, multiline: bool = False) -> tuple[str, dict[str, Any]] | None:
    """Why ``text`` may not be stored, as ``(code, params)`` (a control character or a lone
    surrogate), or None."""
    pattern = _CONTROL_MULTILINE if multiline else _CONTROL_SINGLE_LINE
    found = pattern.search(text)
    if found:
        return "text.control_character", {"char": f"U+{ord(found.group()):04X}"}
    if _SURROGATE.search(text):
        return "text.lone_surrogate", {}
    return None


def control_problem(text: str, multiline: bool = False) -> str | None:
    """Why ``text`` may not be stored (English, for import reports), or None."""
    from quarters.messages import t

    found = control_code(text, multiline)
    return None if found is None else t(f"problem.{found[0]}", "en", **found[1])


def check_text(text: str, multiline: bool = False) -> str:
    """``text`` unchanged, or a pydantic error (its type is the catalogue code) naming the bad
    character."""
    found = control_code(text, multiline)
    if found:
        raise custom_error(*found)
    return text


def custom_error(code: str, params: dict[str, Any] | None = None) -> PydanticCustomError:
    """A pydantic validation error whose type is the catalogue code ``code``."""
    from quarters.messages import t

    params = params or {}
    return PydanticCustomError(code, t(f"problem.{code}", "en", **params).replace("{", "(")
                               .replace("}", ")"), params)


# pydantic's error types that have a text of their own (``problem.validation.<type>``); the
# others are "invalid value". Our validators raise :func:`custom_error` with a catalogue code.
_PYDANTIC_CTX = ("min_length", "max_length", "ge", "gt", "le", "lt", "pattern", "expected",
                 "multiple_of")


def pydantic_items(errors: list[dict[str, Any]], prefix: str = "") -> list[dict[str, Any]]:
    """pydantic's ``exc.errors()`` as coded entries of a problem's ``errors`` (see
    :func:`quarters.errors.item`): body places as JSON pointers, query, path and header
    values by their parameter name."""
    from quarters.messages import has

    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        kind = e.get("type", "")
        if loc and loc[-1] == "[key]":  # a bad key of a mapping (a district code)
            loc.pop()
        if loc and loc[0] in ("query", "path", "header", "cookie"):
            pointer = loc[1] if len(loc) == 2 else ".".join(loc[1:])
        else:
            if loc and loc[0] == "body":
                loc = loc[1:]
            pointer = (prefix + "/" + "/".join(loc)).replace("//", "/") if loc or prefix else "/"
        ctx = e.get("ctx") or {}
        if "field" in ctx and loc[-1:] != [ctx["field"]]:  # a rule over several fields names one
            pointer = pointer.rstrip("/") + "/" + str(ctx["field"])
        if has(f"problem.{kind}"):
            code, params = kind, dict(ctx)
        elif has(f"problem.validation.{kind}"):
            code = f"validation.{kind}"
            params = {k: ctx[k] for k in _PYDANTIC_CTX if k in ctx}
        else:
            code, params = "validation.invalid", {}
        params = {k: v if isinstance(v, int | float | str | bool) or v is None else str(v)
                  for k, v in params.items()}
        out.append(error_item(pointer, code, **params))
    return out


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (for feeds of stored texts)."""
    return _NOT_XML.sub("", text)


def parse_json(raw: bytes) -> Any:
    """Parse a JSON body strictly: UTF-8, no NaN/Infinity, no NUL or lone surrogate in any
    string or key, at most ``MAX_JSON_DEPTH`` levels of arrays/objects. Errors are 400."""
    import orjson

    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = str(exc).split(":")[0]
        if "depth" in reason or "recursion" in reason:
            raise BadRequest(code="json.too_deep", params={"max": MAX_JSON_DEPTH}) from None
        raise BadRequest(code="json.invalid", params={"reason": reason}) from None
    check_json(value)
    return value


def check_json(value: Any) -> None:
    """Refuse documents deeper than ``MAX_JSON_DEPTH`` or with NUL in a string or key (400,
    naming the JSON pointer of the first offending place)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, pointer = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or _SURROGATE.search(item):
                raise BadRequest(code="json.invalid_character", pointer=pointer or "/",
                                 errors=[error_item(pointer or "/", "json.invalid_character")])
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(code="json.too_deep", params={"max": MAX_JSON_DEPTH})
            if isinstance(item, list):
                stack.extend((child, depth + 1, f"{pointer}/{i}") for i, child in enumerate(item))
                continue
            for key, child in item.items():
                step = f"{pointer}/{_escape(key)}"
                stack.append((key, depth + 1, step))
                stack.append((child, depth + 1, step))


def _escape(key: str) -> str:
    """A JSON pointer reference token (RFC 6901), cut short and without NUL."""
    return excerpt(key.replace("~", "~0").replace("/", "~1"))


def ascii_int(value: Any) -> Any:
    """pydantic BeforeValidator: query/path integers are ASCII digits (optional minus) only —
    pydantic alone would also take ``+5``, `` 5`` and ``1_000``."""
    if isinstance(value, str) and not _INT.fullmatch(value):
        raise custom_error("validation.not_ascii_integer")
    return value


AsciiInt = Annotated[int, BeforeValidator(ascii_int)]
