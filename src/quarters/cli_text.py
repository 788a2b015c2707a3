"""The CLI's words: its language and its messages from the one catalogue (``cli.*`` keys of
``web/i18n/{de,en}.json``).

The language: ``--lang``, then the ``QUARTERS_LANG`` setting (environment or ``.env``), then
the environment's ``LANG`` when it is German or English (``en_GB.UTF-8``), else German.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from quarters.messages import cli_language, format_fixed, t
from quarters.settings import get_settings


def choose_language(option: str | None) -> None:
    """``--lang``: the ``QUARTERS_LANG`` setting for this run (None: leave it)."""
    import os

    if option is None:
        return
    if option not in ("de", "en"):
        raise typer.BadParameter("de or en", param_hint="--lang")
    os.environ["QUARTERS_LANG"] = option
    get_settings.cache_clear()


def language() -> str:
    """``de`` or ``en`` for this run of the CLI (settings that do not load: ``LANG``)."""
    from pydantic import ValidationError

    try:
        setting = get_settings().lang
    except ValidationError:  # the CLI says so in its error line
        setting = None
    return cli_language(setting)


def say(key: str, /, **values: Any) -> str:
    """The catalogue's ``key`` in the CLI's language, escaped for rich markup (numbers written
    as the language writes them)."""
    return escape(t(key, language(), **values))


def num(value: Any, digits: int = 1) -> str:
    """A number with ``digits`` decimals in the CLI's language (``1.234,5`` / ``1,234.5``)."""
    return format_fixed(value, digits, language())


def pick(de: Any, en: Any) -> Any:
    """The German or English one of a pair from the data (German when there is no English)."""
    return en if language() == "en" and en else de
