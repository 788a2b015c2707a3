"""The CLI's ``--help`` from the one catalogue (``web/i18n/{de,en}.json``), in the CLI's language.

Keys: ``cli.help.<command path>`` for a command or group (``cli.help.app`` for ``quarters``
itself, ``cli.help.import.boundaries``), ``cli.help.<command path>.<parameter>`` for its
options and arguments (``cli.help.import.boundaries.code_field``) and ``cli.help.word.*`` for
typer's own words (Usage, Options, Commands, ``[default: …]``, the ``--help`` option); click's
usage errors through :mod:`quarters.cli_usage` (``cli.usage_*``).

The texts are set on the click objects when help is rendered (typer builds them anew on every
run), so the language is the one of this run. ``--help`` is an eager option: click handles it
before the values of the other options, so a command with a ``--lang`` option reads that option
from its arguments before click parses them (``quarters --lang en --help``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer
from rich.markup import escape
from typer import rich_utils
from typer.core import TyperArgument, TyperCommand, TyperGroup

from quarters.cli_text import choose_language, language
from quarters.cli_usage import UsageError, localised
from quarters.messages import LANGUAGES, t

HELP = "cli.help."


def help_key(path: Sequence[str], param: str | None = None) -> str:
    """The catalogue key of the help of the command at ``path`` (names below ``quarters``) or
    of its parameter ``param`` (the Python name, ``all_`` → ``all``)."""
    parts = [name.replace("-", "_") for name in path] or ["app"]
    if param is not None:
        parts.append(param.rstrip("_"))
    return HELP + ".".join(parts)


def word(name: str, lang: str, /, **values: Any) -> str:
    """One of typer's own words (``cli.help.word.<name>``) in ``lang``."""
    return t(f"{HELP}word.{name}", lang, **values)


def _lang_argument(args: Sequence[str], *, group: bool) -> str | None:
    """The value of ``--lang`` in ``args`` (a group: before its subcommand's name)."""
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            break
        if arg == "--lang":
            return next(rest, None)
        if arg.startswith("--lang="):
            return arg.partition("=")[2]
        if group and not arg.startswith("-"):
            break
    return None


def _typer_words(lang: str) -> None:
    """typer's words of the option table and of usage errors: module constants of
    ``typer.rich_utils`` (typer has no other way to set them), set for this run's language."""
    rich_utils.DEFAULT_STRING = word("default", lang, value="{}")
    rich_utils.REQUIRED_LONG_STRING = word("required", lang)
    rich_utils.ENVVAR_STRING = word("env_var", lang, name="{}")
    rich_utils.ERRORS_PANEL_TITLE = word("error", lang)
    rich_utils.RICH_HELP = word("try_help", lang, command="[blue]'{command_path} {help_option}'[/]")
    rich_utils.ABORTED_TEXT = word("aborted", lang)


def _path(ctx: typer.Context) -> list[str]:
    """The command names below the root of ``ctx`` (``["import", "boundaries"]``)."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return names[::-1]


def localise(command: Any, path: Sequence[str], lang: str) -> None:
    """Set the help of ``command`` (at ``path``) and of its parameters from the catalogue."""
    command.help = escape(t(help_key(path), lang))
    command.short_help = None
    command.rich_help_panel = word("commands", lang)
    command.options_metavar = word("options_metavar", lang)
    if isinstance(command, TyperGroup):
        command.subcommand_metavar = word("subcommand_metavar", lang)
    for param in command.params:
        param.help = escape(t(help_key(path, param.name), lang))
        param.rich_help_panel = word("arguments" if isinstance(param, TyperArgument)
                                     else "options", lang)


class _FromCatalogue:
    """What the group and the command classes share: ``--lang`` before ``--help``, help texts,
    the usage line and the help option in the CLI's language."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        """Read ``--lang`` first (when the command has it), then parse as click does."""
        if any(p.name == "lang" for p in self.params):
            value = _lang_argument(args, group=isinstance(self, TyperGroup))
            if value in LANGUAGES:
                choose_language(value)
        lang = language()
        _typer_words(lang)
        localise(self, _path(ctx), lang)  # also the usage line of an error
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:  # typer's English text → the catalogue's
            raise localised(exc, language(), ctx) from None

    def format_usage(self, ctx: typer.Context, formatter: Any) -> None:
        """The usage line with the catalogue's word for "Usage"."""
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)),
                              prefix=word("usage", language()) + " ")

    def get_help_option(self, ctx: typer.Context) -> Any:
        """click's ``--help`` option with the catalogue's text."""
        option = super().get_help_option(ctx)
        if option is not None:
            lang = language()
            option.help = word("help", lang)
            option.rich_help_panel = word("options", lang)
        return option

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        """The help of this command (and the one-line help of a group's commands)."""
        lang, path = language(), _path(ctx)
        _typer_words(lang)
        localise(self, path, lang)
        for name, command in getattr(self, "commands", {}).items():
            localise(command, [*path, name], lang)
        super().format_help(ctx, formatter)


class HelpGroup(_FromCatalogue, TyperGroup):
    """A typer group whose help (and usage errors) come from the catalogue."""

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:
        """click's resolution of the subcommand, an unknown command named in the CLI's language."""
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            raise localised(exc, language(), ctx) from None

    def invoke(self, ctx: typer.Context) -> Any:
        """click's invocation, "Missing command." in the CLI's language."""
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            raise localised(exc, language(), ctx) from None


class HelpCommand(_FromCatalogue, TyperCommand):
    """A typer command whose help comes from the catalogue."""


class App(typer.Typer):
    """A typer app whose groups and commands take their help from the catalogue."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=HelpGroup, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        """``typer.Typer.command`` with :class:`HelpCommand`."""
        kwargs.setdefault("cls", HelpCommand)
        return super().command(*args, **kwargs)


def walk(command: Any, path: Sequence[str] = ()) -> list[tuple[list[str], Any]]:
    """Every command and group below (and with) ``command``, each with its path."""
    found = [(list(path), command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += walk(sub, [*path, name])
    return found
