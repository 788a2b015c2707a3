"""The provenance notes of indicator values: ``indicator_values.derivation`` (how a value was
made) and ``missing_reason`` (why it is missing).

A note is a :class:`~quarters.messages.Note` — ``{"code": …, "params": {…}}``, written out
from the one catalogue (``warning.deriv.*``, ``warning.missing.*`` in ``web/i18n/{de,en}.json``)
in the reader's language — or free text (a reason from a user's CSV file, the facts tables):
free text is never translated and renders as it is. A param may itself be a note (the reasons
of the districts behind a missing profile value); it is written out in the same language.

Stored in the jsonb columns (migration 0015): a note as ``{"code", "params"}``, free text as
``{"text": …}``. Rows of older databases (plain text, or any other JSON) read as free text.
Text columns (an indicator's description, a source's note, a level's outline note) hold a note
as that JSON text and free text as it is (:func:`encode_text`, :func:`decode_text`). This module
is the one place that encodes, decodes and renders a stored note.
"""

from __future__ import annotations

import json
from typing import Any

from quarters.messages import DEFAULT_LANGUAGE, Note, note_json, note_text

NOT_GIVEN = Note("missing.not_given")  # a missing value nobody gave a reason for
NOT_GIVEN_SQL = json.dumps({"code": "missing.not_given", "params": {}})
# the confidence words of the facts tables (data/facts/*.csv), written out per language
CONFIDENCE = {"high": Note("deriv.confidence_high"), "medium": Note("deriv.confidence_medium"),
              "low": Note("deriv.confidence_low")}


def confidence(word: str) -> Note | str:
    """A facts table's confidence (high, medium, low) as a note; another word as it is."""
    return CONFIDENCE.get(str(word).strip().lower(), word)


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data (a note as a plain dict, nested notes too)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def encode(note: Any) -> str | None:
    """The JSON text stored for ``note``: a note as ``{"code", "params"}``, any other value
    as free text ``{"text": …}``; None (or NaN) for no note."""
    if note is None or (isinstance(note, float) and note != note):
        return None
    if isinstance(note, dict) and "code" in note:
        body = {"code": note["code"], "params": _plain(note.get("params") or {})}
    else:
        body = {"text": str(note)}
    return json.dumps(body, ensure_ascii=False, default=str)


def _revive(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("code"), str) \
            and isinstance(value.get("params", {}), dict) and set(value) <= {"code", "params"}:
        return Note(value["code"], **{k: _revive(v) for k, v in (value.get("params") or {}).items()})
    if isinstance(value, list):
        return [_revive(v) for v in value]
    return value


def decode(stored: Any) -> Note | str | None:
    """A note from the column: :class:`Note` (nested notes revived), free text as ``str``,
    None for no note. Tolerates old rows: plain text (or a JSON string) is free text, any other
    JSON its text."""
    if stored is None or isinstance(stored, Note):
        return stored
    if isinstance(stored, float) and stored != stored:  # NaN of a frame: no note
        return None
    if isinstance(stored, str):  # a JSON string value, or text of an old row: free text
        return stored
    if isinstance(stored, dict):
        if set(stored) == {"text"}:
            return str(stored["text"])
        note = _revive(stored)
        return note if isinstance(note, Note) else json.dumps(stored, ensure_ascii=False)
    return str(stored)


def encode_text(value: Note | str | None) -> str | None:
    """What a text column stores for a note or free text (an indicator's description, a
    source's note, a level's outline note): a note as the JSON text of :func:`encode`, free
    text as it is."""
    if isinstance(value, dict) and "code" in value:
        return encode(value)
    return value


def decode_text(stored: str | None) -> Note | str | None:
    """What :func:`encode_text` stored: a :class:`Note` from the JSON text of one, any other
    text (free text, older rows) as it is."""
    if not stored or not stored.startswith("{"):
        return stored
    try:
        value = json.loads(stored)
    except ValueError:
        return stored
    note = decode(value) if isinstance(value, dict) and "code" in value else None
    return note if isinstance(note, Note) else stored


def render(note: Any, lang: str = DEFAULT_LANGUAGE) -> str:
    """The note in ``lang`` ("" for none); free text as it is."""
    note = decode(note)
    return "" if note is None else note_text(note, lang)


def as_json(note: Any, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any] | None:
    """The note as the API sends it: ``code``, ``params`` (to render it oneself) and
    ``detail`` in ``lang``; free text as code ``text``; None for no note."""
    note = decode(note)
    if note is None:
        return None
    out = note_json(note, lang)
    out["params"] = _plain(out["params"])
    return out


class Renderer:
    """:func:`as_json` with a memory: the rows of a table share few distinct notes."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._seen: dict[str, dict[str, Any] | None] = {}

    def __call__(self, note: Any) -> dict[str, Any] | None:
        """:func:`as_json` of ``note`` in the renderer's language."""
        if note is None:
            return None
        key = encode(note) or ""
        if key not in self._seen:
            self._seen[key] = as_json(note, self.lang)
        return self._seen[key]
