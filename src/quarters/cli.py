"""The `quarters` command: thin wrappers that parse, call a function and print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quarters.cli_help import App
from quarters.cli_text import choose_language, language, say
from quarters.errors import NotFound, QuartersError, SetupError
from quarters.messages import note_text, t
from quarters.settings import Settings, get_settings

# The help texts are the catalogue's cli.help.* keys (quarters.cli_help), in the CLI's language.
app = App(no_args_is_help=True)
db_app = App()
data_app = App()
import_app = App()
app.add_typer(db_app, name="db")


@app.callback()
def _options(lang: Annotated[str | None, typer.Option("--lang")] = None) -> None:
    """quarters – Quartiersplanung für Halle (Saale) und Gera."""
    choose_language(lang)


app.add_typer(data_app, name="data")
app.add_typer(import_app, name="import")
users_app = App()
export_app = App()
app.add_typer(users_app, name="users")
app.add_typer(export_app, name="export")
console = Console(stderr=True)
FETCH_KEYS = {"downloaded": "cli.fetch_downloaded", "present": "cli.fetch_present",
              "manual": "cli.fetch_manual", "skipped": "cli.fetch_skipped"}


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=not console.is_terminal)


def _engine(settings: Settings, *, migrate: bool = True, full: bool = False):  # noqa: ANN202
    """An engine on the database, migrated to the newest revision unless it is there already
    (checked without loading Alembic: start-up time of every command). ``full``: always run
    the upgrade, which also sets the runtime role's grants (`db start`, `db upgrade`, `serve`:
    a cluster of an older version gains its roles there)."""
    from quarters.db import make_engine
    from quarters.migrate import migrated, upgrade

    engine = make_engine(settings)
    if full:
        upgrade(engine)
        return engine
    return migrated(engine) if migrate else engine


# -- db -------------------------------------------------------------------------------------
@db_app.command("start")
def db_start() -> None:
    """Start the embedded cluster (creating it on first use) and apply migrations."""
    settings = get_settings()
    if not settings.embedded:
        console.print(say("cli.db_external"))
    engine = _engine(settings, full=True)
    engine.dispose()
    console.print(f"[green]{say('cli.db_ready')}[/]"
                  + (f" ({say('cli.db_port', port=str(settings.db_port))})"
                     if settings.embedded else ""))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster."""
    from quarters.db import cluster_for

    cluster_for(get_settings()).stop()
    console.print(say("cli.db_stopped"))


@db_app.command("status")
def db_status() -> None:
    """Say whether the database runs and which schema revision it has."""
    from quarters.db import cluster_for

    settings = get_settings()
    if settings.embedded:
        cluster = cluster_for(settings)
        running = cluster.running()
        state = (f"[green]{say('cli.db_state_running')}[/]" if running
                 else f"[yellow]{say('cli.db_state_stopped')}[/]")  # markup, not escaped
        console.print(t("cli.db_cluster", language(), pgdata=escape(str(cluster.pgdata)),
                        state=state, address=f"127.0.0.1:{settings.db_port}"))
        if not running:
            raise typer.Exit(3)
    from quarters.migrate import current

    engine = _engine(settings, migrate=False)
    console.print(say("cli.schema_revision",
                      revision=current(engine) or t("cli.schema_none", language())))
    engine.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (and set the runtime role's grants again)."""
    _engine(get_settings(), full=True).dispose()
    console.print(f"[green]{say('cli.schema_up_to_date')}[/]")


# -- data -----------------------------------------------------------------------------------
@data_app.command("load")
def data_load() -> None:
    """Load the sources, all Gemeinden and Kreise (BKG VG5000), Halle's Stadtviertel, the pilot quarters."""
    from quarters.catalogue import load_catalogue
    from quarters.imports.data_load import load_all

    settings = get_settings()
    engine = _engine(settings)
    with _progress() as progress:
        tasks: dict[str, int] = {}

        def step(label: Any, done: int, total: int) -> None:  # a Note or a file name
            text = escape(note_text(label, language()))
            if text not in tasks:
                tasks[text] = progress.add_task(text, total=total)
            progress.update(tasks[text], completed=done)

        report = load_all(engine, settings, load_catalogue(settings.catalogue), step)
    engine.dispose()
    table = Table(title=say("cli.load_title"))
    for col in ("cli.col_file", "cli.col_table", "cli.col_read", "cli.col_new", "cli.col_updated",
                "cli.col_repaired"):
        table.add_column(say(col))
    for s in report.imports:
        table.add_row(Path(s.path).name, s.table, str(s.read), str(s.inserted), str(s.updated),
                      str(len(s.repaired)))
    console.print(table)
    for s in report.imports:
        for r in s.repaired:
            console.print("  " + say("cli.repaired_structure", what=str(r)))
    for note in report.notes:
        console.print(escape(note_text(note, language())))
    for w in report.warnings:
        console.print(f"[yellow]{say('server.cli_note')}[/] {escape(note_text(w, language()))}")


@data_app.command("fetch")
def data_fetch(only: Annotated[list[str] | None, typer.Option()] = None) -> None:
    """Download the catalogued datasets that have an official address; say where to get the rest."""
    from quarters.catalogue import load_catalogue
    from quarters.fetch import fetch

    settings = get_settings()
    results = fetch(load_catalogue(settings.catalogue), settings.data_dir, only=only)
    lang = language()
    for r in results:
        console.print(f"{r.key}: {say(FETCH_KEYS[r.status])}")
        for note in r.notes:
            console.print("  " + escape(note_text(note, lang)))


@data_app.command("status")
def data_status() -> None:
    """Check which catalogued files are present in QUARTERS_DATA_DIR and match their checksums."""
    from quarters.catalogue import check_local, format_status_table, load_catalogue

    settings = get_settings()
    console.print(say("cli.data_dir", path=str(settings.data_dir)))
    console.print(format_status_table(check_local(load_catalogue(settings.catalogue),
                                                  settings.data_dir), language()))


# -- import ---------------------------------------------------------------------------------
@import_app.command("boundaries")
def import_boundaries(
    path: Path,
    level: Annotated[str, typer.Option()],
    city: Annotated[str | None, typer.Option()] = None,
    code_field: Annotated[str | None, typer.Option()] = None,
    name_field: Annotated[str | None, typer.Option()] = None,
    parent_field: Annotated[str | None, typer.Option()] = None,
    layer: Annotated[str | None, typer.Option()] = None,
    repair: Annotated[bool, typer.Option()] = False,
    replace: Annotated[bool, typer.Option()] = False,
    add: Annotated[bool, typer.Option()] = False,
    code_map: Annotated[Path | None, typer.Option()] = None,
    code_rule: Annotated[str | None, typer.Option()] = None,
    source_name: Annotated[str | None, typer.Option()] = None,
    licence: Annotated[str, typer.Option()] = "nicht angegeben",
    attribution: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Import boundaries from GeoJSON, GeoPackage or (zipped) Shapefile in one transaction."""
    from quarters.imports.boundaries import import_boundaries as run

    settings = get_settings()
    engine = _engine(settings)
    from quarters.imports.boundaries import BoundarySpec
    from quarters.layers import check_rule, read_code_map

    spec = BoundarySpec(level=level, city=city, code_field=code_field, name_field=name_field,
                        parent_field=parent_field, layer=layer, repair=repair, replace=replace,
                        add=add, code_map=read_code_map(code_map) if code_map else None,
                        code_rule=check_rule(code_rule) if code_rule else None)
    with _progress() as progress:
        task = progress.add_task(path.name, total=None)
        summary = run(engine, path, spec, source_name=source_name, licence=licence,
                      attribution=attribution,
                      progress=lambda d, t: progress.update(task, completed=d, total=t))
    engine.dispose()
    console.print(f"[green]{escape(path.name)}[/]: " + say(
        "cli.boundaries_done", read=summary.read, new=summary.inserted, updated=summary.updated,
        removed=summary.deleted, table=summary.table, crs=str(summary.source_crs)))
    if summary.mapped:
        console.print("  " + say("cli.codes_mapped", count=summary.mapped))
    for r in summary.repaired:
        console.print("  " + say("cli.repaired", what=str(r)))
    for w in summary.warnings:
        console.print(f"  [yellow]{say('server.cli_note')}[/] {escape(note_text(w, language()))}")


@import_app.command("measures")
def import_measures(
    path: Path,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    actor: Annotated[str, typer.Option()] = "cli-import",
) -> None:
    """Import measures (GeoJSON, GeoPackage, CSV with WKT or lon/lat) as drafts, all or nothing."""
    from quarters.imports.measure_files import import_measures as run
    from quarters.measures import Actor

    engine = _engine(get_settings())
    try:
        with engine.begin() as conn:
            report = run(conn, path, Actor(None, actor), dry_run=dry_run)
    finally:  # a refused import: main() prints the problems, row by row, in the CLI's language
        engine.dispose()
    from quarters.errors import render_items

    lang = language()
    for p in render_items(report.problems, lang, "invalid_input"):
        console.print(f"  {t('server.row', lang, row=p['row'])}: {p['field']} {p['problem']}",
                      soft_wrap=True, markup=False)
    good = report.rows - len({p["row"] for p in report.problems})
    console.print(say("cli.measures_checked" if dry_run else "cli.measures_imported",
                      file=path.name, count=report.rows, problems=len(report.problems),
                      drafts=good))
    if report.problems:
        raise typer.Exit(1)


@export_app.command("measures")
def export_measures(
    out: Path,
    all_: Annotated[bool, typer.Option("--all")] = False,
) -> None:
    """Export measures (published only unless --all) as .geojson, .gpkg or .csv by file suffix."""
    from quarters.imports.measure_files import export

    fmt = out.suffix.lower().lstrip(".")
    engine = _engine(get_settings())
    with engine.connect() as conn:
        out.write_bytes(export(conn, "measures_current" if all_ else "measures_public", fmt))
    engine.dispose()
    console.print(say("cli.wrote", path=str(out)))


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option()],
    display_name: Annotated[str | None, typer.Option()] = None,
    password: Annotated[str | None, typer.Option(envvar="QUARTERS_NEW_PASSWORD")] = None,
) -> None:
    """Create an account (argon2 hash) or reset its password and role (its sessions end)."""
    from quarters.auth import add_user

    if password is None:
        password = typer.prompt(t("cli.password", language()), hide_input=True,
                                confirmation_prompt=True)
    engine = _engine(get_settings())
    with engine.begin() as conn:
        user = add_user(conn, username, password, role, display_name)
    engine.dispose()
    console.print(say("cli.account_ready", user=user.username, role=user.role))


@users_app.command("deactivate")
def users_deactivate(username: str) -> None:
    """Lock an account: it can no longer sign in and its sessions end (`users add` reopens it)."""
    from quarters.auth import deactivate

    engine = _engine(get_settings())
    with engine.begin() as conn:
        found = deactivate(conn, username)
    engine.dispose()
    if not found:
        raise NotFound(code="auth.no_account", params={"user": username})
    console.print(say("cli.account_deactivated", user=username))


# -- serve ----------------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Serve the map and the API (starts the embedded database on demand) with the limits of
    the QUARTERS_SERVER_* settings; in production put a TLS reverse proxy in front."""
    import os

    from quarters import server
    from quarters.settings import client_secret

    settings = get_settings()
    _engine(settings, full=True).dispose()
    client_secret(settings)  # made once here (embedded: kept in the home), the workers share it
    host, port = host or settings.host, port or settings.port
    workers = workers or os.cpu_count() or 1
    console.print(say("cli.serving", url=f"http://{host}:{port}/",
                      api=f"http://{host}:{port}/api", count=workers))
    server.run("quarters.api:create_app", settings, host, port, workers=workers)


def _settings() -> Settings:
    """The settings, or a :class:`SetupError` naming each bad ``QUARTERS_*`` variable."""
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        from quarters.validation import pydantic_items

        items = pydantic_items(exc.errors())
        for entry, error in zip(items, exc.errors(), strict=True):
            entry["pointer"] = "QUARTERS_" + "_".join(str(p) for p in error["loc"]).upper()
        raise SetupError(code="settings.invalid", errors=items) from None


def main() -> None:
    """Entry point of the console script: project errors become one clear line and exit 2."""
    import contextlib

    from quarters.importtmp import remove_stale

    try:
        settings = _settings()
        with contextlib.suppress(OSError):  # temp files a killed import left behind
            remove_stale(settings.import_tmp)
        app(prog_name="quarters")
    except QuartersError as exc:
        from quarters.errors import error_text

        lang = language()
        console.print(f"[red]{t('server.cli_error', lang)}[/] {escape(error_text(exc, lang))}",
                      soft_wrap=True, markup=True, highlight=False)
        raise SystemExit(2) from None


from quarters.cli_analysis import analyze_app, import_indicators  # noqa: E402

app.add_typer(analyze_app, name="analyze")
import_app.command("indicators")(import_indicators)
