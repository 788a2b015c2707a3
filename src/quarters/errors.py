"""Project exceptions and the one table that maps them to HTTP status codes."""

from __future__ import annotations

from typing import Any


class QuartersError(Exception):
    """Base class of all errors quarters reports to its users.

    An error names a catalogue ``code`` (``problem.<code>`` in ``web/i18n/*.json``), its
    ``params`` and, where it has one, the ``pointer`` (JSON pointer or parameter name) it is
    about; :meth:`text` writes it out in a language. ``errors`` lists the single problems,
    each made by :func:`item`. ``str(exc)`` is the English text (for logs). A plain ``detail``
    without a code is the old form: it is sent as it is, under the class's code.
    """

    title = "Fehler"
    kind = "error"

    def __init__(self, detail: str | None = None, *, code: str | None = None,
                 params: dict[str, Any] | None = None, pointer: str | None = None,
                 errors: list[dict[str, Any]] | None = None,
                 extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        self.code = code or self.kind
        self.params = params or {}
        self.pointer = pointer
        self.plain = None if code else (detail or "")
        self.errors = errors or []
        self.extra = extra or {}
        self.headers = headers or {}
        super().__init__(self.text("en"))

    def text(self, lang: str = "de") -> str:
        """The detail in ``lang``."""
        from quarters.messages import t

        if self.plain is not None:
            return self.plain
        return t(f"problem.{self.code}", lang, **self.params)

    @property
    def detail(self) -> str:
        """The English detail (logs, messages that embed it)."""
        return self.text("en")

    def title_in(self, lang: str = "de") -> str:
        """The title in ``lang``."""
        from quarters.messages import has, t

        key = f"problem.title.{self.kind}"
        return t(key, lang) if has(key) else self.title


def item(pointer: str | None, code: str, /, **params: Any) -> dict[str, Any]:
    """One entry of an error's ``errors`` list (written out per language by the handler)."""
    return {"pointer": pointer, "code": code, "params": params}


def render_items(errors: list[dict[str, Any]], lang: str, default_code: str) -> list[dict[str, Any]]:
    """``errors`` with ``problem`` in ``lang``; old entries (text only) keep their text."""
    from quarters.messages import t

    out = []
    for e in errors:
        entry = dict(e)
        if "code" in entry and "problem" not in entry:
            entry["params"] = dict(entry.get("params") or {})
            entry["problem"] = t(f"problem.{entry['code']}", lang, **entry["params"])
        else:
            entry.setdefault("code", default_code)
            entry.setdefault("params", {})
        out.append(entry)
    return out


def error_text(exc: QuartersError, lang: str = "de") -> str:
    """The detail of ``exc`` in ``lang`` and, for an error with single problems, those too
    (the CLI's one line)."""
    head = exc.text(lang)
    if not exc.errors or exc.plain is not None:
        return head
    from quarters.messages import t

    parts = []
    for e in render_items(exc.errors, lang, exc.code):
        where = [t("server.row", lang, row=e["row"])] if e.get("row") else []
        where += [e["pointer"]] if e.get("pointer") else []
        parts.append(f"{' '.join(where)}: {e['problem']}" if where else e["problem"])
    return head + " " + "; ".join(parts)


class SetupError(QuartersError):
    """The machine lacks something quarters needs (a package, an account)."""

    title = "Einrichtung unvollständig"
    kind = "setup"


class DatabaseUnavailable(QuartersError):
    """The database cannot be reached."""

    title = "Datenbank nicht erreichbar"
    kind = "database_unavailable"


class NotFound(QuartersError):
    """The requested resource does not exist."""

    title = "Nicht gefunden"
    kind = "not_found"


class InvalidParameter(QuartersError):
    """A query parameter is malformed (OGC API: 400)."""

    title = "Ungültiger Parameter"
    kind = "invalid_parameter"


class InvalidInput(QuartersError):
    """Well-formed input that breaks a rule (invalid geometry, missing field, ...)."""

    title = "Ungültige Eingabe"
    kind = "invalid_input"


class InvalidValue(InvalidInput, ValueError):
    """A value the analysis core refuses (a weight, an option, a table); a ValueError, so
    callers that skip a step on bad data still catch it, sent as 422 where it reaches a request."""


class ImportRefused(InvalidInput):
    """A file import was refused; nothing was stored."""

    title = "Import abgelehnt"
    kind = "import_refused"


class BadRequest(QuartersError):
    """Malformed request body (not JSON, non-finite numbers, too deep)."""

    title = "Ungültige Anfrage"
    kind = "bad_request"


class Unauthorized(QuartersError):
    """Sign-in needed."""

    title = "Anmeldung erforderlich"
    kind = "unauthorized"


class Forbidden(QuartersError):
    """Signed in, but not allowed."""

    title = "Keine Berechtigung"
    kind = "forbidden"


class PreconditionRequired(QuartersError):
    """A write without If-Match."""

    title = "If-Match fehlt"
    kind = "precondition_required"


class PreconditionFailed(QuartersError):
    """A write against a version that is no longer current."""

    title = "Zwischenzeitlich geändert"
    kind = "precondition_failed"


class PayloadTooLarge(QuartersError):
    """The body exceeds the size limit."""

    title = "Anfrage zu groß"
    kind = "payload_too_large"


class UnsupportedMediaType(QuartersError):
    """The body is not JSON (or the expected file type)."""

    title = "Falscher Inhaltstyp"
    kind = "unsupported_media_type"


class NotAcceptable(QuartersError):
    """The Accept header rules out every media type the resource has."""

    title = "Format nicht verfügbar"
    kind = "not_acceptable"


class TooManyRequests(QuartersError):
    """Rate limit reached."""

    title = "Zu viele Anfragen"
    kind = "too_many_requests"


class ServiceBusy(QuartersError):
    """The server is at a limit (analysis slots, time); the client may retry later (503)."""

    title = "Dienst ausgelastet"
    kind = "service_busy"


STATUS_CODES: dict[type[QuartersError], int] = {
    NotFound: 404,
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    NotAcceptable: 406,
    UnsupportedMediaType: 415,
    PreconditionRequired: 428,
    TooManyRequests: 429,
    InvalidParameter: 400,
    ImportRefused: 422,
    InvalidInput: 422,
    DatabaseUnavailable: 503,
    ServiceBusy: 503,
    SetupError: 500,
}


def status_for(exc: QuartersError) -> int:
    """Return the HTTP status for an exception (most specific class wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


MAX_DETAIL = 600


def problem(status: int, title: str, detail: str, *, code: str = "error",
            params: dict[str, Any] | None = None, pointer: str | None = None,
            **extra: Any) -> dict[str, Any]:
    """Build an RFC 9457 problem body with the catalogue ``code``, its ``params`` and the
    ``pointer`` (a long detail is cut: answers never echo much input)."""
    if len(detail) > MAX_DETAIL:
        detail = detail[:MAX_DETAIL] + "…"
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail,
            "code": code, "params": params or {}}
    if pointer:
        body["pointer"] = pointer
    body.update({k: v for k, v in extra.items() if v})
    return body


def problem_of(exc: QuartersError, lang: str = "de") -> dict[str, Any]:
    """The problem body of ``exc`` in ``lang``."""
    return problem(status_for(exc), exc.title_in(lang), exc.text(lang), code=exc.code,
                   params=exc.params, pointer=exc.pointer,
                   errors=render_items(exc.errors, lang, exc.code), **exc.extra)


def coded(status: int, code: str, lang: str, kind: str = "error", /, **params: Any) -> dict[str, Any]:
    """A problem body straight from a catalogue code (for handlers without an exception)."""
    from quarters.messages import t

    return problem(status, t(f"problem.title.{kind}", lang), t(f"problem.{code}", lang, **params),
                   code=code, params=params)
