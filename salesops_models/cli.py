"""The ``salesops`` command line: validate, run, batch, report, kpi, data, track."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from salesops_models import __version__
from salesops_models.errors import SalesopsError
from salesops_models.safe_io import ALLOW_DIRS_ENV
from salesops_models.sweep import SWEEP_LIMIT

log = logging.getLogger("salesops_models")


def _setup_logging(quiet: bool, verbose: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # The level goes on the terminal handler too: a run raises the package logger to INFO for its
    # log file, and those records must not reach the terminal under --quiet.
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
    logging.getLogger("pyomo").setLevel(logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.WARNING)


def _export_allowed_dirs(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> tuple[Path, ...]:
    """Put the --allow-dir folders into SALESOPS_ALLOW_DIRS, so Dask workers and notebook kernels
    started by this process apply the same grant."""
    if value:
        dirs = [str(Path(v).resolve()) for v in value]
        os.environ[ALLOW_DIRS_ENV] = os.pathsep.join(dict.fromkeys(dirs))
    return value


def allow_dir_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--allow-dir DIR`` (repeatable; env SALESOPS_ALLOW_DIRS): widen the path rule."""
    return click.option(
        "--allow-dir",
        "allow_dirs",
        multiple=True,
        envvar=ALLOW_DIRS_ENV,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        callback=_export_allowed_dirs,
        expose_value=False,
        help="Let scenario and mapping files name files inside this folder too (repeatable). By default a "
        "file a scenario names must be inside the scenario's folder, and a mapping's table files inside "
        "the export folder.",
    )(f)


def out_root_option(help: str) -> Callable[..., Any]:
    """``--out DIR``: the results root (default ``results``)."""
    return click.option(
        "--out", "out_root", default="results", show_default=True, type=click.Path(path_type=Path), help=help
    )


def cache_dir_option(more: str = "") -> Callable[..., Any]:
    """``--cache-dir DIR`` (or ``SALESOPS_CACHE_DIR``): the stage cache's folder."""
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar="SALESOPS_CACHE_DIR",
        help="Folder of the stage cache (default: <results root>/.cache, or SALESOPS_CACHE_DIR)." + more,
    )


def cache_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--no-cache`` and ``--cache-dir DIR``: the stage cache of ``run`` and ``batch``."""
    f = cache_dir_option(
        " A stage whose settings, upstream tables, code and seed are unchanged is restored from it instead of "
        "computed."
    )(f)
    return click.option(
        "--no-cache", is_flag=True, help="Compute every stage; neither read nor write the stage cache."
    )(f)


def _stage_cache(no_cache: bool, cache_dir: Path | None, out_root: Path) -> Any:
    from salesops_models.workflow.cache import StageCache, default_cache_dir

    if no_cache:
        return None
    return StageCache(cache_dir.resolve() if cache_dir else default_cache_dir(out_root))


def _unreadable_scenarios(paths: tuple[Path, ...]) -> tuple[int, list[str]]:
    """Read every scenario file and its ``extends`` chain with the light reader, before the models are
    imported: a hostile file (an alias bomb, a device, a huge file) is refused within the memory of a
    bare Python process. Returns how many files read cleanly and one message per file that did not.
    """
    from salesops_models.scenario_source import resolve_document, scenario_files

    try:
        files = scenario_files(list(paths))
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    errors = []
    for f in files:
        try:
            resolve_document(f)
        except SalesopsError as exc:
            errors.append(str(exc))
    return len(files) - len(errors), errors


@click.group()
@click.version_option(__version__, prog_name="salesops")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors (for CI).")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
@click.pass_context
def main(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Sales-operations workbench: territories, quotas, forecasts, pipeline and commission cost."""
    _setup_logging(quiet, verbose)
    ctx.obj = {"quiet": quiet}


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@allow_dir_option
def validate(paths: tuple[Path, ...]) -> None:
    """Check scenario files (or folders of them) and everything they name, without running anything.

    Every file is checked and reported: the scenario itself, its data (CRM export or folder: it is
    loaded), its mapping and its commission plans. Exit code 1 when any has a problem.
    """
    readable, unreadable = _unreadable_scenarios(paths)
    if not readable:  # nothing else to check: answer before the models are imported
        for e in unreadable:
            click.echo(f"INVALID  {e}", err=True)
        sys.exit(1)
    from salesops_models.workflow.preflight import check_scenarios

    try:
        checked = check_scenarios(list(paths), sweep_limit=None)  # validating runs nothing: no limit
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    for sc in checked.scenarios:
        click.echo(f"ok       {sc.name}")
    for w in checked.warnings:
        click.echo(f"WARNING  {w}", err=True)
    for e in checked.errors:
        click.echo(f"INVALID  {e}", err=True)
    if checked.errors:
        sys.exit(1)


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@out_root_option("Results root; a new batch folder is created inside it.")
@click.option("--batch-id", default=None, help="Name of the new batch folder (default: time-stamped).")
@cache_options
@allow_dir_option
@click.pass_context
def run(
    ctx: click.Context,
    scenario: Path,
    out_root: Path,
    batch_id: str | None,
    no_cache: bool,
    cache_dir: Path | None,
) -> None:
    """Run one scenario in-process (no notebooks) into a new results folder."""
    _, unreadable = _unreadable_scenarios((scenario,))
    if unreadable:
        raise click.ClickException("\n".join(unreadable))
    from salesops_models.workflow.preflight import check_scenarios
    from salesops_models.workflow.results import new_batch_dir, scenario_dir, write_summary
    from salesops_models.workflow.runner import run_scenario

    try:
        checked = check_scenarios([scenario], sweep_limit=None)
        if checked.errors:
            raise click.ClickException("\n".join(checked.errors))
        if checked.sweeps:
            raise click.ClickException(
                f"{scenario}: a sweep of {len(checked.scenarios)} child scenarios ('sweep:'); run it with "
                f"'salesops batch {scenario}', or remove 'sweep:' to run the scenario alone."
            )
        for w in checked.warnings:
            log.warning("%s", w)
        sc = checked.scenarios[0]
        batch_dir = new_batch_dir(out_root, batch_id)
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    outcome = run_scenario(sc, scenario_dir(batch_dir, sc.name), cache=_stage_cache(no_cache, cache_dir, out_root))
    write_summary(batch_dir, [outcome.metrics])
    if not ctx.obj["quiet"] or outcome.status != "ok":
        click.echo(f"{outcome.status}: {sc.name} in {outcome.seconds:.1f} s -> {outcome.out_dir}")
    if outcome.status != "ok":
        click.echo(f"error: {outcome.error}\nlog: {outcome.out_dir / 'logs' / 'run.log'}", err=True)
        sys.exit(1)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_root", default="results", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--workers", type=int, default=None, help="Local Dask workers (default: cores, at most scenarios)."
)
@click.option(
    "--scheduler",
    default=None,
    envvar="DASK_SCHEDULER_ADDRESS",
    help="Address of an existing Dask scheduler, e.g. tcp://host:8786 (or DASK_SCHEDULER_ADDRESS).",
)
@click.option("--no-notebooks", is_flag=True, help="Run the stages in-process, without papermill notebooks.")
@click.option("--batch-id", default=None, help="Name of the new batch folder (default: time-stamped).")
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help=f"Run a sweep that expands to more than {SWEEP_LIMIT} child scenarios (refused without it).",
)
@cache_options
@allow_dir_option
@click.pass_context
def batch(
    ctx: click.Context,
    paths: tuple[Path, ...],
    out_root: Path,
    workers: int | None,
    scheduler: str | None,
    no_notebooks: bool,
    batch_id: str | None,
    yes: bool,
    no_cache: bool,
    cache_dir: Path | None,
) -> None:
    """Validate every scenario, then run them all; a failed scenario never stops the others.

    A scenario file with ``sweep:`` (a grid or a list of settings) runs as its child scenarios, one per
    combination; stages they share are computed once through the stage cache.
    """
    readable, unreadable = _unreadable_scenarios(paths)
    if not readable:
        raise click.ClickException("invalid scenario(s); nothing was run:\n" + "\n".join(unreadable))
    from salesops_models.workflow.batch import BatchInterrupted, run_batch

    try:
        outcome = run_batch(
            list(paths),
            out_root,
            workers=workers,
            scheduler=scheduler,
            notebooks=not no_notebooks,
            quiet=ctx.obj["quiet"],
            batch_id=batch_id,
            cache=False if no_cache else (cache_dir or True),
            sweep_limit=None if yes else SWEEP_LIMIT,
        )
    except BatchInterrupted as exc:
        click.echo(str(exc), err=True)
        sys.exit(130)
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"results: {Path(outcome.batch_dir).resolve()}")
    if outcome.index_html:
        click.echo(f"report:  {Path(outcome.index_html).resolve()}")
    if outcome.failed:
        click.echo(f"FAILED scenarios: {', '.join(outcome.failed)} (see their logs/ folders)", err=True)
        sys.exit(1)


_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def _duration_seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s`` or a plain number of days, in seconds."""
    text = value.strip().lower()
    unit = text[-1:] if text[-1:] in _DURATION_UNITS else "d"
    number = text[:-1] if text[-1:] in _DURATION_UNITS else text
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        seconds = float("nan")
    if not seconds >= 0 or seconds == float("inf"):
        raise click.BadParameter(
            f"{value!r} is not a duration; give a number and a unit, e.g. 30d, 12h, 90m (a plain number: days)."
        )
    return seconds


@main.group()
def cache() -> None:
    """The stage cache (restored stages and drawn charts)."""


@cache.command("prune")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    callback=_duration_seconds,
    help="Remove entries not used for this long: 30d, 12h, 90m (a plain number: days).",
)
@out_root_option("Results root whose .cache is pruned (unless --cache-dir or SALESOPS_CACHE_DIR names it).")
@cache_dir_option()
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
def cache_prune(older_than: float, out_root: Path, cache_dir: Path | None, dry_run: bool) -> None:
    """Remove stage and chart cache entries not used for a while (a run that needs one computes it again)."""
    cache = _stage_cache(False, cache_dir, out_root)
    if not cache.root.is_dir():
        raise click.ClickException(f"{cache.root}: no stage cache there; name it with --cache-dir or --out.")
    result = cache.prune(older_than, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{cache.root}: {verb} {result.removed} entries ({result.removed_bytes / 1e6:.1f} MB); "
        f"kept {result.kept} ({result.kept_bytes / 1e6:.1f} MB)"
    )


@main.command()
@click.argument("batch_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def report(batch_dir: Path) -> None:
    """(Re)build a batch's index.html from its results.

    Works on any batch folder, also one whose batch was killed: a damaged or missing metrics.json or
    summary.parquet is rebuilt from what each scenario wrote, and unfinished scenarios are marked
    'partial' or 'not run'.
    """
    from salesops_models.workflow.report import build_index

    try:
        click.echo(str(build_index(batch_dir)))
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("export", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--mapping",
    default="maven",
    show_default=True,
    help="Column-mapping YAML, or the name of a shipped mapping ('maven'). "
    "Use 'canonical' for a folder written by 'salesops data'.",
)
@click.option(
    "--by",
    type=click.Choice(["rep", "manager", "region", "quarter", "none"]),
    default="none",
    help="Also print a table by this group.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (overall KPIs) instead of tables."
)
@allow_dir_option
def kpi(export: Path, mapping: str, by: str, as_json: bool) -> None:
    """Print the sales KPIs of a CRM export (win rate, cycle, revenue per rep, ...)."""
    from salesops_models.data import CompanyData, load_crm_export
    from salesops_models.kpi import company_kpis

    try:
        company = CompanyData.from_dir(export) if mapping == "canonical" else load_crm_export(export, mapping)
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    # The whole export (no trailing-year window): a CRM export is usually one period.
    first = company.opportunities["close_date"].min()
    rep = company_kpis(company, period_start=first)
    if as_json:
        click.echo(json.dumps(rep.overall, indent=2, default=str))
        return
    width = max(len(k) for k in rep.overall)
    for k, v in rep.overall.items():
        click.echo(f"{k:<{width}}  {v:,.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    tables = {"rep": rep.by_rep, "manager": rep.by_manager, "region": rep.by_region, "quarter": rep.by_period}
    if by != "none" and tables.get(by) is not None:
        click.echo("")
        click.echo(tables[by].to_string())
    for note in rep.notes:
        click.echo(f"note: {note}", err=True)


@main.group()
def data() -> None:
    """Sample company and data utilities."""


def _sample_settings_of(path: Path) -> dict[str, Any]:
    """The sample-company generator settings of the scenario at ``path`` (its ``data.sample``)."""
    from salesops_models.scenario import load_scenario

    try:
        scenario = load_scenario(path, trusted=path.name == "scenario.resolved.yaml")
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    if scenario.data.source != "sample":
        raise click.ClickException(
            f"{path}: data.source is {scenario.data.source!r}; --like needs a scenario on the generated "
            "sample company (data.source: sample)."
        )
    return scenario.data.sample.model_dump()


@data.command("sample")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder to write the tables to."
)
@click.option("--seed", default=7, show_default=True)
@click.option("--accounts", "n_accounts", default=2000, show_default=True)
@click.option("--reps", "n_reps", default=40, show_default=True)
@click.option("--years", default=3, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option(
    "--force", is_flag=True, help="Write into a folder that already holds files (overwrites the tables)."
)
@click.option(
    "--through",
    default=None,
    help="Write the plan-year continuation instead: the CRM export taken on this date (ISO) of the year "
    "after the history, deals open at the snapshot playing out their true future.",
)
@click.option(
    "--territories",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --through: account owners for the plan year (account_id, rep_id), e.g. a plan's assignments.parquet.",
)
@click.option(
    "--like",
    "like",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Take every generator setting from this scenario's data.sample section (e.g. a plan's "
    "scenario.resolved.yaml), so the export is the company that scenario planned on.",
)
@allow_dir_option
def data_sample(
    out_dir: Path,
    seed: int,
    n_accounts: int,
    n_reps: int,
    years: int,
    fmt: str,
    force: bool,
    through: str | None,
    territories: Path | None,
    like: Path | None,
) -> None:
    """Write the generated sample company's canonical tables to a folder."""
    from salesops_models.data import generate_sample_company
    from salesops_models.data.sample import plan_year_actuals_from

    if out_dir.exists() and not out_dir.is_dir():
        raise click.ClickException(f"{out_dir} is a file; give a folder to write the tables to.")
    held = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    if held and not force:
        shown = ", ".join(held[:8]) + (f" (+{len(held) - 8} more)" if len(held) > 8 else "")
        raise click.ClickException(
            f"{out_dir} already holds files ({shown}); nothing was written. Give an empty or new folder, "
            "or --force to overwrite the tables in it."
        )
    kwargs: dict[str, Any] = {"seed": seed, "n_accounts": n_accounts, "n_reps": n_reps, "years": years}
    if like is not None:
        ctx = click.get_current_context()
        given = [
            f"--{name.replace('n_', '').replace('_', '-')}"
            for name in kwargs
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        ]
        if given:
            raise click.UsageError(f"--like sets the generator; drop {', '.join(given)} or drop --like.")
        kwargs = _sample_settings_of(like)
    try:
        company = (
            generate_sample_company(**kwargs)
            if through is None and territories is None
            else plan_year_actuals_from(through, territories, **kwargs)
        )
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    company.to_dir(out_dir, fmt)
    click.echo(f"wrote {company.summary()} to {out_dir}")


@main.command()
@click.argument("plan_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--actuals",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Export of the plan year's actuals: a folder written by 'salesops data', or a CRM export with --mapping.",
)
@click.option(
    "--mapping", default=None, help="Column-mapping YAML of a CRM export, or a shipped mapping name."
)
@click.option("--as-of", "as_of", default=None, help="Tracking date (ISO); default: the export's date.")
@click.option(
    "--changes",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Mid-year changes YAML: departures, hires, account moves (docs/tracking.md).",
)
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the tracking history; default PLAN_DIR/tracking (a new run folder each time).",
)
@click.option(
    "--trials", type=click.IntRange(min=1), default=None, help="Monte Carlo trials (default: the plan's)."
)
@allow_dir_option
def track(
    plan_dir: Path,
    actuals: Path,
    mapping: str | None,
    as_of: str | None,
    changes: Path | None,
    out: Path | None,
    trials: int | None,
) -> None:
    """Track a saved plan (results/<batch>/<scenario>) against an export of the plan year's actuals."""
    from salesops_models.tracking import track_plan

    try:
        run = track_plan(
            plan_dir, actuals, mapping=mapping, as_of=as_of, changes=changes, out=out, trials=trials
        )
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"tracking: {run.folder.resolve()}")
    click.echo(f"report:   {run.report.resolve()}")


@main.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--mapping",
    default="maven",
    show_default=True,
    help="For an export folder: column-mapping YAML or shipped mapping name; 'canonical' for a folder written "
    "by 'salesops data'. Ignored for a scenario file.",
)
@click.option(
    "--cutoffs",
    default=None,
    help="Comma-separated cutoff dates (YYYY-MM-DD), each the last day of known history; default: the last six "
    "month ends whose horizon is inside the data.",
)
@click.option("--horizon-months", default=3, show_default=True, type=click.IntRange(1, 36))
@click.option(
    "--models",
    default="pipeline,forecast,rep_attainment,commission",
    show_default=True,
    help="Comma-separated models to score.",
)
@click.option("--trials", default=1000, show_default=True, type=click.IntRange(10, 1_000_000))
@click.option("--seed", default=2017, show_default=True)
@click.option(
    "--out",
    "out_root",
    default="results/backtests",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Root folder; the run writes a new artefact folder inside it.",
)
@allow_dir_option
def backtest(
    source: Path,
    mapping: str,
    cutoffs: str | None,
    horizon_months: int,
    models: str,
    trials: int,
    seed: int,
    out_root: Path,
) -> None:
    """Backtest the bands (pipeline, forecast, rep attainment, commission) at rolling cutoffs.

    SOURCE is a scenario YAML (its data and pipeline settings) or a CRM export folder.
    """
    import pandas as pd

    from salesops_models.backtest import BacktestSettings, default_cutoffs, run_backtest
    from salesops_models.pipeline.config import PipelineConfig

    try:
        if source.is_file():
            from salesops_models.scenario import load_scenario
            from salesops_models.workflow.datasource import load_company

            sc = load_scenario(source)
            company = load_company(sc.data, plan_year=sc.plan_year)
            pipeline_cfg, plan, label = (
                sc.pipeline,
                sc.compensation.primary_plan or sc.compensation.plans[0],
                sc.name,
            )
        else:
            from salesops_models.data import CompanyData, load_crm_export

            company = (
                CompanyData.from_dir(source) if mapping == "canonical" else load_crm_export(source, mapping)
            )
            pipeline_cfg, plan, label = PipelineConfig(), "ae_standard", source.name
        try:
            cuts = (
                tuple(pd.to_datetime(c.strip(), format="%Y-%m-%d") for c in cutoffs.split(",") if c.strip())
                if cutoffs
                else default_cutoffs(company.as_of, horizon_months)
            )
        except ValueError as exc:
            raise click.BadParameter(
                f"{exc}; use dates like 2017-06-30,2017-07-31.", param_hint="--cutoffs"
            ) from None
        settings = BacktestSettings(
            cutoffs=cuts,
            horizon_months=horizon_months,
            models=tuple(m.strip() for m in models.split(",") if m.strip()),
            trials=trials,
            seed=seed,
            pipeline=pipeline_cfg,
            plan=plan,
            label=label,
        )
        report = run_backtest(company, settings)
        folder = report.write(out_root)
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    for model, s in report.summary["models"].items():
        m, n = s["model"], s["naive"]
        skill = "" if s["crps_skill"] is None else f", CRPS skill vs naive {s['crps_skill']:+.2f}"
        click.echo(
            f"{model:<15} P10-P90 {m['coverage_p10_p90']:.2f} (naive {n.get('coverage_p10_p90', float('nan')):.2f}), "
            f"P5-P95 {m['coverage_p05_p95']:.2f}, n={m['n']}{skill}"
        )
    for note in report.summary["skipped"]:
        click.echo(f"skipped: {note}", err=True)
    for note in report.summary["warnings"]:
        click.echo(f"warning: {note}", err=True)
    click.echo(str(folder))


if __name__ == "__main__":  # pragma: no cover
    main()
