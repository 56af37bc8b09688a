"""The ``salesops`` command line: validate, run, batch, report, kpi, data."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from salesops_models import __version__
from salesops_models.errors import SalesopsError

log = logging.getLogger("salesops_models")


def _setup_logging(quiet: bool, verbose: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("pyomo").setLevel(logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.WARNING)


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
def validate(paths: tuple[Path, ...]) -> None:
    """Validate scenario files (or folders of them) without running anything."""
    from salesops_models.scenario import validate_all

    try:
        good, errors = validate_all(list(paths))
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    for sc in good:
        click.echo(f"ok       {sc.name}")
    for e in errors:
        click.echo(f"INVALID  {e}", err=True)
    if errors:
        sys.exit(1)


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_root",
    default="results",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Results root; a new batch folder is created inside it.",
)
@click.option("--batch-id", default=None, help="Name of the new batch folder (default: time-stamped).")
def run(scenario: Path, out_root: Path, batch_id: str | None) -> None:
    """Run one scenario in-process (no notebooks) into a new results folder."""
    from salesops_models.scenario import load_scenario
    from salesops_models.workflow.results import new_batch_dir, scenario_dir, write_summary
    from salesops_models.workflow.runner import run_scenario

    try:
        sc = load_scenario(scenario)
        batch_dir = new_batch_dir(out_root, batch_id)
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    outcome = run_scenario(sc, scenario_dir(batch_dir, sc.name))
    write_summary(batch_dir, [outcome.metrics])
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
@click.pass_context
def batch(
    ctx: click.Context,
    paths: tuple[Path, ...],
    out_root: Path,
    workers: int | None,
    scheduler: str | None,
    no_notebooks: bool,
    batch_id: str | None,
) -> None:
    """Validate every scenario, then run them all; a failed scenario never stops the others."""
    from salesops_models.workflow.batch import run_batch

    try:
        outcome = run_batch(
            list(paths),
            out_root,
            workers=workers,
            scheduler=scheduler,
            notebooks=not no_notebooks,
            quiet=ctx.obj["quiet"],
            batch_id=batch_id,
        )
    except SalesopsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"results: {Path(outcome.batch_dir).resolve()}")
    if outcome.index_html:
        click.echo(f"report:  {Path(outcome.index_html).resolve()}")
    if outcome.failed:
        click.echo(f"FAILED scenarios: {', '.join(outcome.failed)} (see their logs/ folders)", err=True)
        sys.exit(1)


@main.command()
@click.argument("batch_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def report(batch_dir: Path) -> None:
    """(Re)build a batch's index.html from its results."""
    from salesops_models.workflow.report import build_index

    click.echo(str(build_index(batch_dir)))


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


@data.command("sample")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder to write the tables to."
)
@click.option("--seed", default=7, show_default=True)
@click.option("--accounts", "n_accounts", default=2000, show_default=True)
@click.option("--reps", "n_reps", default=40, show_default=True)
@click.option("--years", default=3, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--force", is_flag=True, help="Write into a folder that already holds tables.")
def data_sample(
    out_dir: Path, seed: int, n_accounts: int, n_reps: int, years: int, fmt: str, force: bool
) -> None:
    """Write the generated sample company's canonical tables to a folder."""
    from salesops_models.data import generate_sample_company

    if (out_dir / "company.json").exists() and not force:
        raise click.ClickException(f"{out_dir} already holds a company; use --force to overwrite it.")
    company = generate_sample_company(seed=seed, n_accounts=n_accounts, n_reps=n_reps, years=years)
    company.to_dir(out_dir, fmt)
    click.echo(f"wrote {company.summary()} to {out_dir}")


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
