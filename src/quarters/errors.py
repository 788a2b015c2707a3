"""Project exceptions and the one table that maps them to HTTP status codes."""

from __future__ import annotations

from typing import Any


class QuartersError(Exception):
    """Base class of all errors quarters reports to its users."""

    title = "Fehler"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None,
                 extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra or {}
        self.headers = headers or {}


class SetupError(QuartersError):
    """The machine lacks something quarters needs (a package, an account)."""

    title = "Einrichtung unvollständig"


class DatabaseUnavailable(QuartersError):
    """The database cannot be reached."""

    title = "Datenbank nicht erreichbar"


class NotFound(QuartersError):
    """The requested resource does not exist."""

    title = "Nicht gefunden"


class InvalidParameter(QuartersError):
    """A query parameter is malformed (OGC API: 400)."""

    title = "Ungültiger Parameter"


class InvalidInput(QuartersError):
    """Well-formed input that breaks a rule (invalid geometry, missing field, ...)."""

    title = "Ungültige Eingabe"


class ImportRefused(InvalidInput):
    """A file import was refused; nothing was stored."""

    title = "Import abgelehnt"


class BadRequest(QuartersError):
    """Malformed request body (not JSON, non-finite numbers, too deep)."""

    title = "Ungültige Anfrage"


class Unauthorized(QuartersError):
    """Sign-in needed."""

    title = "Anmeldung erforderlich"


class Forbidden(QuartersError):
    """Signed in, but not allowed."""

    title = "Keine Berechtigung"


class PreconditionRequired(QuartersError):
    """A write without If-Match."""

    title = "If-Match fehlt"


class PreconditionFailed(QuartersError):
    """A write against a version that is no longer current."""

    title = "Zwischenzeitlich geändert"


class PayloadTooLarge(QuartersError):
    """The body exceeds the size limit."""

    title = "Anfrage zu groß"


class UnsupportedMediaType(QuartersError):
    """The body is not JSON (or the expected file type)."""

    title = "Falscher Inhaltstyp"


class NotAcceptable(QuartersError):
    """The Accept header rules out every media type the resource has."""

    title = "Format nicht verfügbar"


class TooManyRequests(QuartersError):
    """Rate limit reached."""

    title = "Zu viele Anfragen"


class ServiceBusy(QuartersError):
    """The server is at a limit (analysis slots, time); the client may retry later (503)."""

    title = "Dienst ausgelastet"


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


def problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """Build an RFC 9457 problem body (a long detail is cut: answers never echo much input)."""
    if len(detail) > MAX_DETAIL:
        detail = detail[:MAX_DETAIL] + "…"
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail}
    body.update({k: v for k, v in extra.items() if v})
    return body
