"""Reports: each scenario's ``report.html``, the batch's ``index.html``, and the notebooks' HTML.

Everything is rendered from Jinja2 templates (``workflow/templates/``, autoescaped) and is one
self-contained file: inline CSS, charts as base64 PNG (drawn in :mod:`.charts`), no script and no
external resource, so a page opens offline and from an e-mail attachment. The pages read the results
through :class:`~salesops_models.workflow.collect.ScenarioResults` and build view objects
(:mod:`.views`, :mod:`.sections`); a table a stage did not write becomes a note saying why.

- :func:`publish_scenario` (end of a scenario run): the exports (:mod:`.exports`), the code-free HTML
  of the executed notebooks (``notebooks.html``) and ``report.html``.
- :func:`build_index`: ``index.html`` of a batch.

The chart helpers that notebooks call (``report.show(report.forecast_fan_chart(...))``) are
available here too.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd

from salesops_models.errors import SalesopsError
from salesops_models.workflow import chart_cache
from salesops_models.workflow.cache import StageCache, read_pointer
from salesops_models.workflow.chart_cache import ChartCache
from salesops_models.workflow.charts import (
    attainment_chart,
    commission_cost_chart,
    figure_png,
    forecast_fan_chart,
    pipeline_total_chart,
    png_data_uri,
    single,
    territory_balance_chart,
    territory_map,
)
from salesops_models.workflow.collect import (
    STATUS_NOT_RUN,
    STATUS_PARTIAL,
    ScenarioResults,
    load_changes,
    load_metrics,
    scenario_dirs,
)
from salesops_models.workflow.sensitivity import sensitivity_section
from salesops_models.workflow.templating import TEMPLATES, render, write_text_atomic
from salesops_models.workflow.views import Block, Column, Section, figure, guarded, note, table, text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "account_points",
    "attainment_chart",
    "build_index",
    "build_scenario_report",
    "commission_cost_chart",
    "export_notebooks_html",
    "figure_png",
    "forecast_fan_chart",
    "metrics_frame",
    "pipeline_total_chart",
    "png_data_uri",
    "publish_scenario",
    "show",
    "single",
    "territory_balance_chart",
    "territory_map",
]

log = logging.getLogger(__name__)

REPORT = "report.html"
NOTEBOOKS_HTML = "notebooks.html"


# ------------------------------------------------------------------------------------------------
# notebook helpers
# ------------------------------------------------------------------------------------------------


def show(fig: Figure | None, note: str = "no data for this chart") -> None:
    """Display a figure in a notebook as a PNG (whatever the matplotlib backend), or a note."""
    from IPython.display import Image, display

    if fig is None:
        display(note)
        return
    display(Image(data=figure_png(fig), format="png"))


def metrics_frame(metrics: Mapping[str, Any], prefix: str | None = None) -> pd.DataFrame:
    """Metrics as a two-column table (``metric``, ``value``) for display; ``prefix`` filters names."""
    rows = [(k, v) for k, v in metrics.items() if prefix is None or str(k).startswith(prefix)]
    return pd.DataFrame(rows, columns=["metric", "value"]).set_index("metric")


def account_points(
    out_dir: str | os.PathLike[str], assignments: pd.DataFrame, accounts: pd.DataFrame | None = None
) -> pd.DataFrame | None:
    """Assignments joined with the accounts' coordinates, or None when none are found.

    Coordinates come from ``assignments`` itself, else ``accounts``, else the scenario's data cache
    (``out_dir/data/accounts.parquet``).
    """
    if {"lat", "lon"} <= set(assignments.columns):
        return assignments
    if accounts is None or not {"account_id", "lat", "lon"} <= set(accounts.columns):
        accounts = ScenarioResults(out_dir).company("accounts")
    if accounts is None or not {"account_id", "lat", "lon"} <= set(accounts.columns):
        return None
    acc = accounts[["account_id", "lat", "lon"]]
    return assignments.merge(acc, on="account_id", how="left").dropna(subset=["lat", "lon"])


# ------------------------------------------------------------------------------------------------
# notebooks.html (nbconvert, no code)
# ------------------------------------------------------------------------------------------------

SKIP_TAGS = {"parameters", "injected-parameters", "remove-cell"}


def combine_notebooks(notebooks: Sequence[Path], title: str, intro: str = "") -> Any:
    """One notebook holding the cells of ``notebooks`` in order, without plumbing cells.

    ``title`` and ``intro`` are escaped (markdown passes raw HTML through).
    """
    import nbformat

    combined = nbformat.v4.new_notebook()
    head = f"# {html.escape(title)}"
    if intro:
        head += "\n\n" + html.escape(intro)
    combined.cells.append(nbformat.v4.new_markdown_cell(head))
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            tags = set(cell.get("metadata", {}).get("tags", []))
            if tags & SKIP_TAGS:
                continue
            if cell.cell_type == "code":  # warnings on stderr stay in the executed notebook and logs
                cell = copy.deepcopy(cell)
                cell.outputs = [o for o in cell.get("outputs", []) if o.get("name") != "stderr"]
            combined.cells.append(cell)
        for key in ("kernelspec", "language_info"):
            if key in nb.metadata and key not in combined.metadata:
                combined.metadata[key] = nb.metadata[key]
    combined.metadata["title"] = title
    return combined


def notebook_html(nb: Any) -> str:
    """HTML of a notebook without code inputs or prompts, and without any script (no CDN)."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    cfg = Config()
    cfg.TagRemovePreprocessor.enabled = True
    cfg.TagRemovePreprocessor.remove_cell_tags = ("remove-cell",)
    cfg.TagRemovePreprocessor.remove_input_tags = ("remove-input",)
    cfg.TemplateExporter.exclude_input = True
    cfg.TemplateExporter.exclude_input_prompt = True
    cfg.TemplateExporter.exclude_output_prompt = True
    exporter = HTMLExporter(
        config=cfg,
        template_name="lab",
        template_file="salesops_report.html.j2",
        extra_template_paths=[str(TEMPLATES)],
    )
    body, _ = exporter.from_notebook_node(nb)
    return body


def executed_notebooks(out_dir: Path) -> list[Path]:
    """The executed notebooks of a scenario, in the batch's notebook order."""
    from salesops_models.workflow.notebooks import NOTEBOOKS

    order = {spec.name: i for i, spec in enumerate(NOTEBOOKS)}
    found = list((out_dir / "notebooks").glob("*.ipynb"))
    return sorted(found, key=lambda p: (order.get(p.stem, len(order)), p.stem))


def export_notebooks_html(
    out_dir: str | os.PathLike[str], notebooks: Sequence[Path] | None = None, intro: str = ""
) -> Path | None:
    """Write ``out_dir/notebooks.html``: the executed notebooks combined, without code.

    Parameters
    ----------
    out_dir
        The scenario's results folder.
    notebooks
        Executed notebooks in order (default: ``out_dir/notebooks/*.ipynb`` in the batch order).
    intro
        A line under the title (status, description).

    Returns
    -------
    pathlib.Path or None
        The page, or None when there is no executed notebook.
    """
    out = Path(out_dir)
    notebooks = executed_notebooks(out) if notebooks is None else list(notebooks)
    if not notebooks:
        return None
    nb = combine_notebooks(notebooks, f"Scenario {out.name}: notebooks", intro)
    return write_text_atomic(out / NOTEBOOKS_HTML, notebook_html(nb))


# ------------------------------------------------------------------------------------------------
# report.html
# ------------------------------------------------------------------------------------------------


def _now() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _downloads(out: Path) -> list[tuple[str, str]]:
    from salesops_models.workflow.exports import CRM_FILE, PLAN_WORKBOOK, STATEMENTS

    candidates = [
        (PLAN_WORKBOOK, "plan.xlsx: quotas, commission cost by month, territories, assumptions (finance)"),
        (CRM_FILE, "assignments_crm.csv: account owners before and after (CRM import)"),
        (f"{STATEMENTS}/index.html", "Payout statements, one per rep"),
        (NOTEBOOKS_HTML, "The analysis notebooks, without code"),
        ("scenario.resolved.yaml", "The resolved scenario (YAML)"),
    ]
    links = [(label, quote(name)) for name, label in candidates if (out / name).exists()]
    for log_file in sorted((out / "logs").glob("*.log")) if (out / "logs").is_dir() else []:
        links.append((f"Log: {log_file.name}", quote(f"logs/{log_file.name}")))
    return links


def build_scenario_report(
    out_dir: str | os.PathLike[str],
    status: str | None = None,
    error: str | None = None,
    link_index: bool = False,
    cache: StageCache | None = None,
    results: ScenarioResults | None = None,
) -> Path:
    """Write ``out_dir/report.html`` from the scenario's tables and return its path.

    Parameters
    ----------
    out_dir
        The scenario's results folder.
    status, error
        The run's outcome when ``metrics.json`` is not merged yet (default: from ``metrics.json``).
    link_index
        Link to the batch's ``../index.html`` even though it is not written yet (a batch writes it
        after its scenarios); without it the link appears only when the page exists.
    cache
        The stage cache whose folder also keeps the drawn charts
        (:mod:`~salesops_models.workflow.chart_cache`; default: the one the scenario folder's
        ``cache.json`` names, if any). Without one every chart is drawn; the page is the same.
    results
        The scenario's tables already read for ``out_dir`` with the same ``status`` and ``error``
        (:func:`publish_scenario` shares one with the exports, so tables are read and derived
        figures computed once); default: read here.

    Notes
    -----
    Sections: overview (headline figures, files, stage states), territories, revenue forecast,
    pipeline Monte Carlo, quotas, commission cost, sales KPIs and how the figures were computed
    (see :mod:`.sections`). Links to ``plan.xlsx``, ``assignments_crm.csv``, the statements and the
    notebooks appear when those files exist, so write the exports first (:func:`publish_scenario`).
    """
    from salesops_models.workflow import derived
    from salesops_models.workflow.sections import SECTIONS, overview_section

    out = Path(out_dir)
    results = results if results is not None else ScenarioResults(out, status, error)
    stage_cache = cache if cache is not None else read_pointer(out)
    with chart_cache.using(ChartCache.beside(stage_cache) if stage_cache is not None else None):
        sections = [guarded(build, results, title) for title, build in SECTIONS]
    # the overview comes first but is built last: it lists the damaged tables the sections met
    sections.insert(0, overview_section(results, _downloads(out)))
    page = render(
        "scenario.html.j2",
        name=results.name,
        description=str(results.resolved.get("description") or ""),
        status=results.status,
        error=results.metrics.get("error") or "",
        plan_year=derived.plan_year(results) or "",
        generated=_now(),
        index_href="../index.html" if link_index or (out.parent / "index.html").exists() else "",
        sections=sections,
    )
    path = write_text_atomic(out / REPORT, page)
    log.info("wrote %s", path)
    return path


@dataclass
class Published:
    """What :func:`publish_scenario` wrote (output name -> path) and the problems it logged."""

    written: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def publish_scenario(
    out_dir: str | os.PathLike[str],
    notebooks: Sequence[Path] | None = None,
    status: str | None = None,
    error: str | None = None,
    link_index: bool = False,
    cache: StageCache | None = None,
) -> Published:
    """Everything a finished scenario hands on: the exports, ``notebooks.html`` and ``report.html``.

    Parameters
    ----------
    out_dir
        The scenario's results folder.
    notebooks
        Executed notebooks for ``notebooks.html`` (default: those in ``out_dir/notebooks``; an empty
        list writes none).
    status, error
        The run's outcome when ``metrics.json`` is not merged yet.
    link_index
        Link the report to the batch's ``index.html`` (see :func:`build_scenario_report`).
    cache
        The stage cache that also keeps the report's charts (see :func:`build_scenario_report`).

    Returns
    -------
    Published
        Never raises: a problem with one output is logged with its traceback, listed in
        ``problems``, and the other outputs are still written (a report problem must not hide the
        scenario's results).
    """
    from salesops_models.workflow.exports import write_scenario_exports

    out = Path(out_dir)
    done = Published()

    def attempt(name: str, build: Any) -> Any:
        try:
            return build()
        except Exception as exc:
            log.exception("%s: %s not written", out, name)
            done.problems.append(f"{name} not written: {type(exc).__name__}: {exc}")
            return None

    # one results object for the exports and the report: each table is read, and each derived
    # figure (the quarterly attainment risk) computed, once
    results = attempt("results", lambda: ScenarioResults(out, status, error))
    exports = attempt("exports", lambda: write_scenario_exports(results)) if results is not None else None
    if exports is not None:
        done.written.update(exports.files)
        done.problems += [f"{name} not written: {why}" for name, why in exports.failed.items()]
    if notebooks is None or notebooks:
        intro = str(ScenarioResults(out).resolved.get("description") or "")
        page = attempt(NOTEBOOKS_HTML, lambda: export_notebooks_html(out, notebooks, intro))
        if page is not None:
            done.written[NOTEBOOKS_HTML] = page
    page = attempt(REPORT, lambda: build_scenario_report(out, status, error, link_index, cache, results))
    if page is not None:
        done.written[REPORT] = page
    return done


# ------------------------------------------------------------------------------------------------
# index.html
# ------------------------------------------------------------------------------------------------

# (metric, header, unit/explanation, format)
COMPARISON: tuple[Column, ...] = (
    Column("quota_total", "Total quota", "money", "currency"),
    Column("pipeline_bookings_p10", "Bookings P10", "money", "simulated, currency"),
    Column("pipeline_bookings_p50", "Bookings P50", "money", "simulated, currency"),
    Column("pipeline_bookings_p90", "Bookings P90", "money", "simulated, currency"),
    Column("comp_share_at_quota", "Reps at quota", "share", "share of reps"),
    Column("comp_cost_p50", "Commission cost P50", "money", "currency"),
    Column("comp_cost_p90", "Commission cost P90", "money", "currency"),
    Column("comp_cost_of_sales", "Cost of sales", "share", "commission / bookings"),
    Column("territory_balance_max_min", "Balance max/min", "ratio", "1 = perfectly balanced"),
    Column("territory_balance_cv", "Balance CV", "ratio", "0 = perfectly balanced"),
    Column("territory_disruption_share", "Disruption", "share", "share of value moved"),
    Column("forecast_backtest_mape", "Forecast MAPE", "share", "backtest"),
    Column("territory_status", "Solver status", "text", "territory MILP"),
    Column("territory_mip_gap", "MIP gap", "share", "territory MILP"),
)


def _scenario_link(name: str, dirs: Mapping[str, Path], target: str) -> str | None:
    d = dirs.get(name)
    return f"{quote(name)}/{quote(target)}" if d is not None and (d / target).exists() else None


def _row_class(rec: Mapping[str, Any]) -> str:
    status = rec.get("status")
    if status == "ok":
        return ""
    return "incomplete" if status in (STATUS_PARTIAL, STATUS_NOT_RUN) else "failed"


def _comparison_section(metrics: pd.DataFrame, dirs: Mapping[str, Path]) -> Section:
    frame = metrics.reset_index(names="scenario")
    frame["status"] = frame["status"].fillna("unknown").astype(str)
    block = table(
        frame,
        [Column("scenario", "Scenario"), Column("status", "Status"), *COMPARISON],
        id="comparison",
        key="scenario",
        links={"scenario": lambda rec: _scenario_link(str(rec["scenario"]), dirs, REPORT)},
        row_class=_row_class,
        cell_class=lambda k, v: f"status-{str(v).replace(' ', '-')}" if k == "status" else "",
    )
    return Section("summary", "Comparison").add(
        block,
        note(
            "Bookings percentiles come from the pipeline Monte Carlo; cost of sales is commission cost over "
            "bookings; balance is the headline metric of the territory plan (every metric is in each "
            "scenario's report)."
        ),  # fmt: skip
    )


def _tail(path: Path, lines: int = 25) -> str:
    try:
        content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(content[-lines:])


def _failures_section(metrics: pd.DataFrame, dirs: Mapping[str, Path], batch: Path) -> Section:
    s = Section("failures", "Failures")
    failed = [str(n) for n, st in metrics["status"].items() if st != "ok"]
    if not failed:
        return s.add(text("None: every scenario completed."))
    for name in failed:
        err = metrics.at[name, "error"] if "error" in metrics.columns else None
        s.add(Block("heading", title=name), text(f"Error: {err or 'unknown error'}"))
        d = dirs.get(name)
        if d is None:
            continue
        logs = sorted((d / "logs").glob("*.log")) if (d / "logs").is_dir() else []
        executed = sorted((d / "notebooks").glob("*.ipynb")) if (d / "notebooks").is_dir() else []
        links = [(f"log {p.name}", quote(p.relative_to(batch).as_posix())) for p in logs]
        links += [(f"notebook {p.name}", quote(p.relative_to(batch).as_posix())) for p in executed]
        if (d / REPORT).exists():
            links.append(("what the scenario computed before it failed", f"{quote(name)}/{REPORT}"))
        if links:
            s.add(Block("links", links=links))
        if logs:
            main = d / "logs" / "batch.log"
            tail = _tail(main if main.exists() else logs[0])
            if tail:
                s.add(Block("pre", title="Last lines of the log", text=tail))
    return s


def _charts_section(dirs: Mapping[str, Path]) -> Section:
    results = {n: ScenarioResults(d) for n, d in dirs.items()}

    def tables(key: str) -> dict[str, pd.DataFrame]:
        out = {}
        for n, r in results.items():
            df = r.table(key)
            if df is not None and len(df):
                out[n] = df
        return out

    points = {}
    for name, df in tables("assignments").items():
        p = account_points(dirs[name], df, results[name].company("accounts"))
        if p is not None and len(p):
            points[name] = p
    return Section("charts", "Charts").add(
        figure("Forecast fan chart", forecast_fan_chart(tables("forecast")), "no scenario wrote a forecast table."),
        figure("Attainment distribution", attainment_chart(tables("bookings_samples"), tables("quotas")),
               "needs the rep_bookings_samples and quotas tables; no scenario wrote both."),
        figure("Commission cost distribution", commission_cost_chart(tables("cost_samples")),
               "no scenario wrote comp_cost_samples."),
        figure("Territory balance", territory_balance_chart(tables("territories")), "no scenario wrote territories."),
        figure("Territory map", territory_map(points), "no scenario wrote assignments with account coordinates."),
    )  # fmt: skip


def _yaml_value(v: Any) -> str:
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return "null" if v is None else str(v)


def _changes_section(changes: Mapping[str, Mapping[str, Any]]) -> Section:
    s = Section("changes", "What each scenario changes versus its base")
    for name, info in changes.items():
        base = info.get("base")
        items = info.get("changes") or []
        s.add(Block("heading", title=f"{name} vs {base}" if base else name))
        if not base:
            s.add(note("No base scenario (extends nothing)."))
        elif not items:
            s.add(note("No setting differs."))
        else:
            frame = pd.DataFrame(
                [{"key": c.get("key"), "base": _yaml_value(c.get("base")), "value": _yaml_value(c.get("value"))}
                 for c in items]
            )  # fmt: skip
            s.add(table(frame, [Column("key", "Setting"), Column("base", "Base"), Column("value", "This scenario")],
                        id=f"changes-{name}"))  # fmt: skip
    return s if s.blocks else s.add(note("No scenario information."))


def _scenarios_section(metrics: pd.DataFrame, dirs: Mapping[str, Path]) -> Section:
    from salesops_models.workflow.exports import CRM_FILE, PLAN_WORKBOOK, STATEMENTS

    rows = []
    for name in metrics.index:
        name = str(name)
        r = ScenarioResults(dirs[name]) if name in dirs else None
        rows.append(
            {
                "scenario": name,
                "description": str(r.resolved.get("description") or "") if r else "",
                "report": "report" if _scenario_link(name, dirs, REPORT) else "none",
                "plan": "plan.xlsx" if _scenario_link(name, dirs, PLAN_WORKBOOK) else "none",
                "crm": "CSV" if _scenario_link(name, dirs, CRM_FILE) else "none",
                "statements": "statements"
                if _scenario_link(name, dirs, f"{STATEMENTS}/index.html")
                else "none",
            }
        )

    def link(target: str) -> Any:
        return lambda rec: _scenario_link(str(rec["scenario"]), dirs, target)

    block = table(
        pd.DataFrame(rows),
        [Column("scenario", "Scenario"), Column("description", "Description"), Column("report", "Report"),
         Column("plan", "Finance"), Column("crm", "CRM assignments"), Column("statements", "Payout statements")],
        id="scenarios",
        key="scenario",
        links={"report": link(REPORT), "plan": link(PLAN_WORKBOOK), "crm": link(CRM_FILE),
               "statements": link(f"{STATEMENTS}/index.html")},
    )  # fmt: skip
    return Section("files", "Scenarios and their files").add(block)


def _watchlist_section(dirs: Mapping[str, Path], n: int = 5) -> Section:
    """Per scenario, the reps least likely to reach quota (and, with quarterly samples, the quarter
    that is hardest for them)."""
    from salesops_models.workflow import derived
    from salesops_models.workflow.sections import p_class

    s = Section("watchlist", "Reps least likely to reach quota")
    for name, d in dirs.items():
        r = ScenarioResults(d)
        risk = derived.attainment_risk(r)
        if risk is not None:
            frame = risk.by_rep.head(n)
            cols = [Column("rep_id", "Rep"), Column("quota_year", "Annual quota", "money"),
                    Column("p_attain_year", "P(make the year)", "pct0"), Column("worst_quarter", "Hardest quarter"),
                    Column("worst_p_attain", "P(make that quarter)", "pct0")]  # fmt: skip
        else:
            q = r.table("quotas")
            if q is None or not {"p_attain", "rep_id"} <= set(q.columns):
                continue
            frame = q.nsmallest(n, "p_attain")
            cols = [Column("rep_id", "Rep"), Column("quota", "Quota", "money"),
                    Column("p_attain", "P(reach quota)", "share")]  # fmt: skip
        s.add(Block("heading", title=name))
        s.add(table(frame, cols, id=f"watchlist-{name}", key="rep_id",
                    cell_class=lambda k, v: p_class(k, v) if k.startswith(("p_", "worst_p")) else ""))  # fmt: skip
    return s if s.blocks else s.add(note("No scenario wrote quotas with p_attain."))


def _provenance(dirs: Mapping[str, Path]) -> dict[str, Any]:
    for d in dirs.values():
        prov = ScenarioResults(d).resolved.get("_provenance")
        if prov:
            return dict(prov)
    return {}


def build_index(batch_dir: str | os.PathLike[str]) -> Path:
    """Write ``batch_dir/index.html``: the leadership page of a batch; return its path.

    Sections: the comparison table (one row per scenario), the failures with their errors and log
    tails, charts (forecast fan chart, attainment distribution, commission cost distribution,
    territory balance of every balanced metric, territory map), what each scenario changed versus
    its base, each scenario's description and files (report, plan.xlsx, CRM assignments, payout
    statements), and the reps least likely to reach quota.
    """
    batch = Path(batch_dir).resolve()
    dirs = scenario_dirs(batch)
    metrics = load_metrics(batch)  # a row for every scenario, also after a kill (collect.read_metrics_file)
    if metrics.empty and not dirs:
        raise SalesopsError(
            f"{batch}: no scenario results here (no sub-folder with a scenario.resolved.yaml); give the "
            "folder of one batch, results/<batch-id>, as printed by 'salesops batch'."
        )
    if "status" not in metrics.columns:
        metrics["status"] = "unknown"
    metrics["status"] = metrics["status"].fillna("unknown")
    prov = _provenance(dirs)
    status = metrics["status"].astype(str)
    n_unfinished = {st: int((status == st).sum()) for st in (STATUS_PARTIAL, STATUS_NOT_RUN)}
    n_failed = int((status != "ok").sum()) - sum(n_unfinished.values())
    sections = [
        _comparison_section(metrics, dirs),
        _failures_section(metrics, dirs, batch),
        _charts_section(dirs),
        _changes_section(load_changes(batch)),
        _scenarios_section(metrics, dirs),
        _watchlist_section(dirs),
    ]
    sensitivity = sensitivity_section(batch, metrics)
    if sensitivity is not None:  # a batch with sweeps: what moves the outputs, first
        sections.insert(1, sensitivity)
    page = render(
        "index.html.j2",
        batch=batch.name,
        n_scenarios=len(metrics),
        n_ok=int((status == "ok").sum()),
        n_failed=n_failed,
        unfinished="".join(f", {n} {st}" for st, n in n_unfinished.items() if n),
        generated=_now(),
        version=prov.get("package_version", "?"),
        commit=prov.get("git_commit") or "unknown",
        sections=sections,
    )
    path = write_text_atomic(batch / "index.html", page)
    log.info("wrote %s", path)
    return path
