"""The CLI's usage errors (a missing or unknown option, a bad value, an unknown command) from the
one catalogue (``cli.usage_*`` in ``web/i18n/{de,en}.json``), in the CLI's language.

typer (0.29 has its own copy of click, ``typer._click``) writes these messages in English and
checks values with pydantic. The command classes of :mod:`quarters.cli_help` catch its
``UsageError`` where it is raised — while a command parses its arguments, while a group resolves
its subcommand — and raise a :class:`CatalogueUsageError` with the catalogue's text and the same
context, so typer prints it as before (usage line, the translated "Try … --help" hint, exit
code 2). A bad value says why from pydantic's error type (the ``problem.validation.*`` texts the
API uses). typer gives no codes for the kinds it raises as plain messages (unknown command,
missing command, extra arguments, an option's value): those are read from the exception's class
and the message's fixed English start. An error of another kind keeps typer's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from typer._click import exceptions as click_errors

from quarters.messages import t

UsageError = click_errors.UsageError
EXTRA = "Got unexpected extra argument(s) ("  # typer's text, followed by the arguments and ")"


class CatalogueUsageError(UsageError):
    """A usage error whose message already comes from the catalogue."""


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in sorted(names))


def _hint(exc: Any) -> str:
    hint = exc.param_hint
    if hint is not None:
        return hint if isinstance(hint, str) else " / ".join(f"'{h}'" for h in hint)
    return exc.param.get_error_hint() if exc.param is not None else "?"


def _choices(param: Any) -> list[str] | None:
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and desc.is_choice and desc.choices is not None:
        return [str(getattr(c, "value", c)) for c in desc.choices]
    return None


def _reason(exc: Any, lang: str) -> str | None:
    """Why a value is bad, from pydantic's error (the API's ``problem.validation.*`` texts)."""
    from pydantic import ValidationError

    from quarters.validation import pydantic_items

    cause = exc.__cause__
    if not isinstance(cause, ValidationError):
        return None
    items = pydantic_items(cause.errors())
    if not items or items[0]["code"] == "validation.invalid":
        return None
    return t(f"problem.{items[0]['code']}", lang, **items[0].get("params", {}))


def _bad_value(exc: Any, lang: str) -> str:
    name = _hint(exc)
    if (choices := _choices(exc.param)) is not None:
        return t("cli.usage_invalid", lang, name=name,
                 reason=t("cli.usage_choose_from", lang, choices=_quoted(choices)))
    reason = _reason(exc, lang) or exc.message  # the project's own reason as it gave it
    if not reason:
        return t("cli.usage_bad_value_of", lang, name=name)
    return t("cli.usage_invalid", lang, name=name, reason=reason)


def _missing(exc: Any, lang: str) -> str:
    name = _hint(exc)
    kind = exc.param_type or getattr(exc.param, "param_type_name", "option")
    text = t("cli.usage_missing_argument" if kind == "argument" else "cli.usage_missing_option",
             lang, name=name)
    if (choices := _choices(exc.param)) is not None:
        text += " " + t("cli.usage_choose_from", lang, choices=_quoted(choices))
    return text


def _suggest(close: Sequence[str] | None, lang: str) -> str:
    return " " + t("cli.usage_did_you_mean", lang, names=_quoted(close)) if close else ""


def _between(message: str, left: str, right: str) -> str:
    return message.partition(left)[2].rpartition(right)[0]


def usage_text(exc: Exception, lang: str) -> str | None:
    """The catalogue's text for the usage error ``exc`` in ``lang``, None for a kind of error
    the catalogue has no text for."""
    if isinstance(exc, CatalogueUsageError) or not isinstance(exc, UsageError):
        return None
    if isinstance(exc, click_errors.MissingParameter):
        return _missing(exc, lang)
    if isinstance(exc, click_errors.BadParameter):
        return _bad_value(exc, lang)
    if isinstance(exc, click_errors.NoSuchOption):
        return (t("cli.usage_no_such_option", lang, name=f"'{exc.option_name}'")
                + _suggest(exc.possibilities, lang))
    if isinstance(exc, click_errors.BadOptionUsage):
        key = ("cli.usage_option_takes_no_value" if "does not take" in exc.message
               else "cli.usage_option_needs_value")
        return t(key, lang, name=f"'{exc.option_name}'")
    message = exc.message or ""
    if message.startswith("No such command"):
        name = _between(message, "'", "'") or _between(message, '"', '"')
        known = list(getattr(exc.ctx.command, "commands", {})) if exc.ctx else []
        import difflib

        return (t("cli.usage_no_such_command", lang, name=f"'{name}'")
                + _suggest(difflib.get_close_matches(name, known), lang))
    if message == "Missing command.":
        return t("cli.usage_missing_command", lang)
    if message.startswith(EXTRA):
        extra = message.removeprefix(EXTRA).removesuffix(")")
        return t("cli.usage_extra_arguments", lang, args=extra)
    return None


def localised(exc: Exception, lang: str, ctx: Any = None) -> Exception:
    """``exc`` with the catalogue's text (the same exception when there is none); ``ctx``: the
    command's context when the error has none (so the usage line and the hint are printed)."""
    text = usage_text(exc, lang)
    if text is None:
        return exc
    return CatalogueUsageError(text, ctx=getattr(exc, "ctx", None) or ctx)

