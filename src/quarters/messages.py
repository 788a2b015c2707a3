"""Texts people read, from the one catalogue the pages read too (``web/i18n/{de,en}.json``).

Python uses the keys ``problem.<code>`` (errors), ``warning.<code>`` (notes and warnings of
analyses and imports) and ``server.<name>`` (feed titles, confirmations, the CLI) with the
placeholder syntax of ``web/js/i18n.js`` ``t()``: ``{name}`` (a value ``{"code", "params"}`` is
the problem ``code`` written out); a message may be an object of
plural forms (``{"one": …, "other": …}``) chosen by the value ``count``. Numbers are written
as the pages' ``Intl.NumberFormat`` writes them (``1.234,5`` in German, ``1,234.5`` in English).
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"
CATALOGUE_DIR = Path(__file__).resolve().parents[2] / "web" / "i18n"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@lru_cache(maxsize=4)
def catalogue(lang: str) -> dict[str, Any]:
    """The whole catalogue of ``lang`` (read once)."""
    path = CATALOGUE_DIR / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def has(key: str, lang: str = DEFAULT_LANGUAGE) -> bool:
    """True when the catalogue of ``lang`` has ``key``."""
    return key in catalogue(lang)


def _plural_form(count: Any, lang: str) -> str:
    try:
        return "one" if float(count) == 1 else "other"
    except (TypeError, ValueError):
        return "other"


def format_number(value: float | int, lang: str = DEFAULT_LANGUAGE) -> str:
    """An integer with grouping, other numbers with at most one decimal (like the pages)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        text = f"{int(value):,}"
    else:
        text = f"{float(value):,.1f}".rstrip("0").rstrip(".")
    if lang == "de":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def format_fixed(value: Any, digits: int = 1, lang: str = DEFAULT_LANGUAGE) -> str:
    """A number with exactly ``digits`` decimals and grouping (``1.234,5`` / ``1,234.5``), – for
    no value (the report's and the CLI's tables)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "–"
    if x != x or x in (float("inf"), float("-inf")):
        return "–"
    text = f"{x:,.{digits}f}"
    if text.startswith("-") and not text.strip("-0.,"):  # no "-0,0" for tiny negatives
        text = text[1:]
    return text if lang == "en" else text.translate(str.maketrans(",.", ".,"))


def _value(value: Any, lang: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value, lang)
    if isinstance(value, Note):  # a note inside a note (e.g. the reason of a missing value)
        return value.text(lang)
    if isinstance(value, dict) and "code" in value:  # a problem (or a note) inside a message
        key = f"problem.{value['code']}"
        if not has(key) and has(f"warning.{value['code']}"):  # a note after a JSON round trip
            key = f"warning.{value['code']}"
        return t(key, lang, **(value.get("params") or {}))
    if isinstance(value, list):  # several problems inside a message
        return "; ".join(_value(v, lang) for v in value)
    return "" if value is None else str(value)


def t(key: str, lang: str = DEFAULT_LANGUAGE, /, **values: Any) -> str:
    """The message ``key`` in ``lang`` with its ``{placeholders}`` filled in (German when the
    language lacks the key; the key itself when no catalogue has it)."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    message = catalogue(lang).get(key, catalogue(DEFAULT_LANGUAGE).get(key))
    if message is None:
        return key
    if isinstance(message, dict):
        message = message.get(_plural_form(values.get("count"), lang), message.get("other", ""))

    def fill(match: re.Match) -> str:
        name = match.group(1)
        return _value(values[name], lang) if name in values else match.group(0)

    return _PLACEHOLDER.sub(fill, str(message))


def placeholders(message: Any) -> set[str]:
    """The placeholder names of a catalogue entry (all plural forms together)."""
    forms = message.values() if isinstance(message, dict) else [message]
    return {name for form in forms for name in _PLACEHOLDER.findall(str(form))}


def language(accept_language: str | None, query: str | None = None) -> str:
    """The language of a request: ``?lang=de|en`` first, then the first of de/en named by the
    Accept-Language header, German by default."""
    if query in LANGUAGES:
        return query
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def request_language(request: Any) -> str:
    """:func:`language` of a Starlette request."""
    return language(request.headers.get("accept-language"), request.query_params.get("lang"))


def scope_language(scope: dict[str, Any]) -> str:
    """:func:`language` of a raw ASGI scope (for the pure ASGI layers)."""
    from urllib.parse import parse_qs

    headers = {k.lower(): v for k, v in scope.get("headers", [])}
    accept = headers.get(b"accept-language", b"").decode("latin-1")
    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang", [None])[0]
    return language(accept, query)


def cli_language(option: str | None = None) -> str:
    """The CLI's language: ``--lang``, then ``QUARTERS_LANG``, then ``LANG`` (``en_GB.UTF-8``
    counts as en), German by default."""
    for candidate in (option, os.environ.get("QUARTERS_LANG"), os.environ.get("LANG")):
        code = (candidate or "").strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


class Note(dict):
    """A warning or note for people: ``{"code": …, "params": {…}}``, written out in a
    language by :meth:`text`. A dict, so results with notes stay JSON-serialisable."""

    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(code=code, params=params)

    @property
    def code(self) -> str:
        """The catalogue code (``warning.<code>``)."""
        return self["code"]

    def text(self, lang: str = DEFAULT_LANGUAGE) -> str:
        """The sentence in ``lang``."""
        return t(f"warning.{self['code']}", lang, **self["params"])

    def __str__(self) -> str:
        return self.text("en")


def note_text(note: Any, lang: str = DEFAULT_LANGUAGE) -> str:
    """A warning in ``lang``: a :class:`Note` (or its dict form) from the catalogue, a plain
    string (data texts) as it is."""
    if isinstance(note, dict) and "code" in note:
        return t(f"warning.{note['code']}", lang, **(note.get("params") or {}))
    return str(note)


def note_json(note: Any, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """A warning as the API sends it: ``code``, ``params`` and ``detail`` in ``lang``."""
    if isinstance(note, dict) and "code" in note:
        return {"code": note["code"], "params": dict(note.get("params") or {}),
                "detail": note_text(note, lang)}
    return {"code": "text", "params": {"text": str(note)}, "detail": str(note)}


def localise(body: Any, lang: str = DEFAULT_LANGUAGE) -> Any:
    """``body`` (a JSON-ready answer) with every note (``{"code", "params"}``) written out in
    ``lang``: ``{"code", "params", "detail"}``."""
    if isinstance(body, dict):
        if set(body) == {"code", "params"} and isinstance(body["params"], dict):
            return note_json(body, lang)
        return {k: localise(v, lang) for k, v in body.items()}
    if isinstance(body, list | tuple):
        return [localise(v, lang) for v in body]
    return body
