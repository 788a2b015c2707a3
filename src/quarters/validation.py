"""Checks of text and numbers that come from outside: one place, used by every entry point.

Everything here raises the project's own 4xx errors (``quarters.errors``), never anything else.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from quarters.errors import BadRequest, InvalidParameter

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
        raise InvalidParameter(f"{name}: '{excerpt(raw)}' is not an integer")
    value = int(raw)
    if minimum is not None and value < minimum:
        raise InvalidParameter(f"{name}: must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidParameter(f"{name}: must be at most {maximum}, got {value}")
    return value


def control_problem(text: str, multiline: bool = False) -> str | None:
    """Why ``text`` may not be stored (a control character or a lone surrogate), or None."""
    pattern = _CONTROL_MULTILINE if multiline else _CONTROL_SINGLE_LINE
    found = pattern.search(text)
    if found:
        return f"control character U+{ord(found.group()):04X} is not allowed"
    if _SURROGATE.search(text):
        return "invalid character (lone surrogate)"
    return None


def check_text(text: str, multiline: bool = False) -> str:
    """``text`` unchanged, or ValueError (for pydantic validators) naming the bad character."""
    problem = control_problem(text, multiline)
    if problem:
        raise ValueError(problem)
    return text


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
            raise BadRequest(f"JSON nested too deeply (max {MAX_JSON_DEPTH} levels)") from None
        raise BadRequest(f"body is not valid JSON: {reason}") from None
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
                problem = "invalid character (NUL or lone surrogate)"
                raise BadRequest(f"{pointer or '/'}: {problem}",
                                 errors=[{"pointer": pointer or "/", "problem": problem}])
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"JSON nested too deeply (max {MAX_JSON_DEPTH} levels)")
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
        raise ValueError("not an integer (ASCII digits with an optional leading minus)")
    return value


AsciiInt = Annotated[int, BeforeValidator(ascii_int)]
