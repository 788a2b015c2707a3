"""`quarters analyze …` and `quarters import indicators`: thin wrappers around the services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quarters.cli_help import App
from quarters.cli_text import choose_language, language, num, pick, say
from quarters.messages import note_text, t
from quarters.settings import get_settings

analyze_app = App(no_args_is_help=True)  # help: the catalogue's cli.help.analyze.*
console = Console(stderr=True)


def _engine():  # noqa: ANN202
    from quarters.db import make_engine
    from quarters.migrate import migrated

    return migrated(make_engine(get_settings()))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.percentage:>3.0f} %"), TimeElapsedColumn(),
                    console=console, disable=not console.is_terminal)


@analyze_app.command("transfer")
def transfer_command(
    reference: Annotated[str, typer.Option()],
    level: Annotated[str, typer.Option()] = "gemeinde",
    indicator: Annotated[list[str] | None, typer.Option()] = None,
    weight: Annotated[list[str] | None, typer.Option()] = None,
    top: Annotated[int, typer.Option()] = 10,
    out: Annotated[Path, typer.Option()] = Path("report.html"),
    method: Annotated[str, typer.Option()] = "zscore",
    metric: Annotated[str, typer.Option()] = "euclidean",
    missing: Annotated[str, typer.Option()] = "drop_indicator",
    sensitivity: Annotated[bool, typer.Option()] = True,
    runs: Annotated[int, typer.Option()] = 200,
    types: Annotated[bool, typer.Option()] = True,
    k: Annotated[int | None, typer.Option()] = None,
    classes: Annotated[str, typer.Option()] = "quantiles",
    k_classes: Annotated[int, typer.Option()] = 5,
    tiles: Annotated[bool, typer.Option()] = False,
    filter: Annotated[str | None, typer.Option("--filter")] = None,  # noqa: A002
    lang: Annotated[str | None, typer.Option("--lang")] = None,
) -> None:
    """Rank candidates by similarity to a reference and write report.html, .csv and .gpkg."""
    import pandas as pd

    from quarters.report import write_report
    from quarters.transfer import TransferParams, parse_weights, run_transfer

    choose_language(lang)
    settings = get_settings()
    engine = _engine()
    params = TransferParams(reference=reference, level=level, indicators=indicator or None,
                            weights=parse_weights(weight) or None, method=method, metric=metric,
                            missing=missing, top=top, sensitivity=sensitivity, runs=runs,
                            types=types, k=k, filter=filter)
    lang = language()
    with _progress() as progress, engine.connect() as conn:
        task = progress.add_task(t("cli.analysis", lang), total=100)

        def analysis_step(label: Any, done: int, total: int) -> None:  # a Note
            progress.update(task, description=escape(note_text(label, lang)),
                            completed=60 * done / max(total, 1))

        def report_step(label: str, done: int, total: int) -> None:  # in lang already
            progress.update(task, description=escape(label),
                            completed=60 + 35 * done / max(total, 1))

        res = run_transfer(conn, params, analysis_step)
        paths = write_report(conn, res, out, settings, scheme=classes, k=k_classes, tiles=tiles,
                             progress=report_step, lang=lang)
        progress.update(task, description=t("cli.done", lang), completed=100)
    engine.dispose()
    table = Table(title=say("cli.transfer_title", name=res.reference.name,
                            units=pick(res.level.label_de, res.level.label_en)))
    for col in ("report.col_rank", "report.col_name", "report.col_code", "report.col_score",
                "report.col_percentile", "report.col_band", "report.col_same_type"):
        table.add_column(say(col))
    for code, r in res.top.iterrows():
        same = r.get("same_type")
        pct = "" if pd.isna(r["percentile"]) else num(r["percentile"], 1)
        band = "" if pd.isna(r["band_de"]) else str(pick(r["band_de"], r["band_en"]))
        table.add_row(str(int(r["rank"])), escape(str(r["name"]))
                      + (" *" if r["approximate"] else ""), code, num(r["score"], 1), pct, band,
                      "" if same is None else say("report.yes" if same else "report.no"))
    console.print(table)
    console.print(say("cli.indicators", keys=", ".join(d.key for d in res.indicators)))
    if res.ranking["approximate"].any():
        console.print(say("cli.approximate"))
    if res.params.filter:
        console.print(say("cli.filter", filter=res.params.filter, count=len(res.ranking),
                          out=res.n_filtered_out))
    if res.part_of_reference:
        console.print(say("cli.part_of_reference", units=", ".join(
            f"{p['name']} ({p['code']})" for p in res.part_of_reference)))
    for w in res.warnings:
        console.print(f"[yellow]{say('server.cli_note')}[/] {escape(note_text(w, lang))}",
                      highlight=False)
    for kind, path in paths.items():
        console.print(f"{kind}: {escape(str(path))}" if path
                      else f"{kind}: {say('cli.no_gpkg')}")


@analyze_app.command("cross-city")
def cross_city_command(
    level: Annotated[str, typer.Option()] = "gemeinde",
    indicator: Annotated[list[str] | None, typer.Option()] = None,
    weight: Annotated[list[str] | None, typer.Option()] = None,
    top: int = 10,
) -> None:
    """Which municipalities (or Kreise) resemble Halle (Saale), which resemble Gera."""
    from quarters.transfer import cross_city, parse_weights

    engine = _engine()
    with engine.connect() as conn:
        result = cross_city(conn, level, indicator or None, parse_weights(weight) or None, top)
    engine.dispose()
    for city in result["cities"]:
        table = Table(title=say("cli.similar_to", name=city["name"]))
        for col in ("report.col_rank", "report.col_name", "report.col_code", "report.col_score"):
            table.add_column(say(col))
        for row in city["rows"]:
            table.add_row(str(row["rank"]), escape(row["name"]), row["code"], num(row["score"], 1))
        console.print(table)
    for pair in result["pair"]:
        console.print(say("cli.pair", city=pair["city"], other=pair["in_ranking_of"],
                          rank=pair["rank"], count=result["n_candidates"],
                          score=num(pair["score"], 1),
                          why=pick(pair["explanation_de"], pair.get("explanation_en"))))


@analyze_app.command("indicators")
def indicators_command() -> None:
    """List the indicators with their units and coverage per level."""
    from quarters.indicators.levels import available_levels
    from quarters.indicators.reading import catalogue, default_indicators

    engine = _engine()
    with engine.connect() as conn:
        items = catalogue(conn)
        defaults = {lv.name: default_indicators(conn, lv) for lv in available_levels(conn)}
    engine.dispose()
    table = Table(title=say("cli.indicators_title"))
    for col in ("cli.col_key", "report.col_name", "cli.col_unit", "cli.col_aggregation",
                "cli.col_coverage", "cli.col_default_at", "cli.col_source"):
        table.add_column(say(col))
    for it in items:
        cov = "; ".join(f"{lvl}: {c['values']}/{c['missing']}/{c['absent']}"
                        for lvl, c in it["coverage"].items())
        at = ", ".join(lvl for lvl, keys in defaults.items() if it["key"] in keys)
        src = "; ".join(f"{lvl}: {', '.join(c['sources'])} {' … '.join(c['ref_dates'])}"
                        for lvl, c in it["coverage"].items())
        table.add_row(it["key"], escape(pick(it["name_de"], it.get("name_en"))), it["unit"],
                      it["aggregation"], cov, at, escape(src))
    console.print(table)
    console.print(say("cli.defaults", rule=t("report.m_defaults_text", language())))


@analyze_app.command("refresh")
def refresh_command() -> None:
    """Recompute the computed indicators (areas, measures per area/inhabitants, profiles)."""
    from quarters.indicators.computed import refresh_computed

    engine = _engine()
    with engine.begin() as conn:
        report = refresh_computed(conn)
    engine.dispose()
    lang = language()
    for (ind, lvl), (values, missing) in sorted(report.written.items()):
        console.print(say("cli.refresh_line", indicator=ind, level=lvl, count=values,
                          missing=missing))
    for note in report.notes:
        console.print(note_text(note, lang), markup=False)
    for w in report.warnings:
        console.print(f"[yellow]{say('server.cli_note')}[/] {escape(note_text(w, lang))}")


@analyze_app.command("profile")
def profile_command(quarter: str) -> None:
    """Show a pilot quarter's indicator profile with the derivation of each value."""
    from quarters.profiles import quarter_profile

    engine = _engine()
    with engine.connect() as conn:
        prof = quarter_profile(conn, quarter)
    engine.dispose()
    table = Table(title=say("cli.profile_title", name=prof["quarter"]["name"],
                            level=str(prof["source_level"]), share=num(100 * prof["coverage"], 0)))
    for col in ("cli.col_indicator", "cli.col_value", "cli.col_unit", "cli.col_derivation"):
        table.add_column(say(col))
    from quarters.indicators.provenance import render

    for v in prof["values"]:
        value = "–" if v["value"] is None else num(v["value"], 2)
        table.add_row(v["indicator"], value, v["unit"],
                      escape(render(v["derivation"] or v["missing_reason"], language())))
    console.print(table)


def import_indicators(
    path: Path,
    level: Annotated[str, typer.Option()],
    ref_date: Annotated[str | None, typer.Option()] = None,
    key_column: Annotated[str | None, typer.Option()] = None,
    decimal: Annotated[str, typer.Option()] = ".",
    source_name: Annotated[str | None, typer.Option()] = None,
    licence: Annotated[str, typer.Option()] = "nicht angegeben",
    attribution: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Import indicator values from CSV in one transaction (all or nothing).

    Long layout: key column, indicator, value and optionally unit, ref_date, missing_reason,
    source, licence. Wide layout: key column plus one column per indicator, its unit in square
    brackets after the name. Empty cells are stored as explicitly missing.
    """
    from quarters.imports.indicator_tables import import_indicators as run

    engine = _engine()
    with engine.begin() as conn:
        summary = run(conn, path, level, ref_date=ref_date, key_column=key_column,
                      decimal=decimal, source_name=source_name, licence=licence,
                      attribution=attribution)
    engine.dispose()
    console.print(f"[green]{escape(path.name)}[/]: " + say(
        "cli.indicators_imported", rows=summary.rows, count=summary.values,
        missing=summary.missing, new=summary.inserted, updated=summary.updated,
        indicators=", ".join(summary.indicators), level=summary.level))
    if summary.new_indicators:
        console.print(say("cli.new_indicators", keys=", ".join(summary.new_indicators)))
    for note in summary.notes:
        console.print(escape(note_text(note, language())))
