"""Reports: the charts the notebooks show, each scenario's code-free ``report.html``, and the
batch's ``index.html`` for leadership.

``index.html`` is one self-contained file: inline CSS, charts as base64 PNG, no script and no
external resource, so it opens offline and from an e-mail attachment. Every string that comes from
data (scenario names and descriptions, rep ids, error messages, log lines) goes through
:func:`html.escape`.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import html
import io
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salesops_models.errors import SalesopsError
from salesops_models.safe_io import atomic_write_text, load_yaml
from salesops_models.workflow.collect import (
    STATUS_NOT_RUN,
    STATUS_PARTIAL,
    load_changes,
    load_metrics,
    scenario_dirs,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_PANELS = 6  # small-multiple charts show at most this many scenarios


# ------------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------------


def _new_figure(n_panels: int = 1, width: float = 9.0, panel_height: float = 3.2) -> tuple[Figure, list[Any]]:
    from matplotlib.figure import Figure

    ncols = min(3, max(1, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(width, panel_height * nrows), dpi=90, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def figure_png(fig: Figure) -> bytes:
    """The PNG bytes of a matplotlib figure (built with the object API, so no pyplot state leaks)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def show(fig: Figure | None, note: str = "no data for this chart") -> None:
    """Display a figure in a notebook as a PNG (whatever the matplotlib backend), or a note."""
    from IPython.display import Image, display

    if fig is None:
        display(note)
        return
    display(Image(data=figure_png(fig), format="png"))


def single(name: str, df: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """``{name: df}`` when ``df`` is a non-empty table, else ``{}``: the input of the chart functions."""
    return {name: df} if df is not None and len(df) else {}


def by_scenario(stacked: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Split a table from ``collect.load_table`` into ``{scenario: table}``."""
    if stacked.empty:
        return {}
    return {str(k): g.droplevel(0) for k, g in stacked.groupby(level=0, sort=False)}


def _limit(tables: Mapping[str, Any]) -> list[str]:
    names = list(tables)
    if len(names) > MAX_PANELS:
        log.info("chart shows the first %d of %d scenarios", MAX_PANELS, len(names))
    return names[:MAX_PANELS]


def _top_series(forecast: pd.DataFrame) -> pd.DataFrame:
    """The company-level series of a forecast table: level 'total'/'company'/'all', else the level
    with the fewest series, and its first series."""
    df = forecast
    if "level" in df.columns:
        levels = df["level"].astype(str)
        preferred = [lv for lv in ("total", "company", "all") if (levels == lv).any()]
        if preferred:
            df = df[levels == preferred[0]]
        else:
            counts = (
                df.groupby(levels)["series"].nunique() if "series" in df.columns else levels.value_counts()
            )
            df = df[levels == counts.idxmin()]
    if "series" in df.columns and df["series"].nunique() > 1:
        df = df[df["series"] == df["series"].iloc[0]]
    if "model" in df.columns and df["model"].nunique() > 1:
        df = df[df["model"] == df["model"].iloc[0]]
    return df.sort_values("month") if "month" in df.columns else df


def forecast_fan_chart(forecasts: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Fan chart of the company-level bookings forecast of each scenario.

    Parameters
    ----------
    forecasts
        Scenario -> ``forecast`` table (``month``, ``q50`` and any of ``q05/q95``, ``q10/q90``,
        ``q25/q75``) [currency per month].
    """
    names = [n for n in _limit(forecasts) if {"month", "q50"} <= set(forecasts[n].columns)]
    if not names:
        return None
    fig, axes = _new_figure(len(names))
    for ax, name in zip(axes, names, strict=True):
        df = _top_series(forecasts[name])
        x = pd.to_datetime(df["month"])
        for lo, hi, alpha in (("q05", "q95", 0.15), ("q10", "q90", 0.2), ("q25", "q75", 0.3)):
            if lo in df and hi in df:
                ax.fill_between(x, df[lo], df[hi], color="tab:blue", alpha=alpha, lw=0, label=f"{lo}-{hi}")
        ax.plot(x, df["q50"], color="tab:blue", lw=1.5, label="median")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", rotation=45)
    axes[0].set_ylabel("bookings per month")
    axes[0].legend(fontsize=6, loc="upper left")
    fig.suptitle("Plan-year bookings forecast (company level)", fontsize=10)
    return fig


def attainment_samples(samples: pd.DataFrame, quotas: pd.DataFrame) -> pd.Series:
    """Attainment of every (trial, rep): simulated plan-year bookings over the rep's quota [ratio].

    Notes
    -----
    :math:`a_{t,r} = B_{t,r} / Q_r` for trial :math:`t` and rep :math:`r`; reps without a positive
    quota are left out.
    """
    q = quotas.set_index("rep_id")["quota"] if "rep_id" in quotas.columns else quotas["quota"]
    q = q[q > 0]
    merged = samples[samples["rep_id"].isin(q.index)]
    return merged["bookings"].to_numpy(float) / merged["rep_id"].map(q).to_numpy(float)


def attainment_chart(
    samples: Mapping[str, pd.DataFrame], quotas: Mapping[str, pd.DataFrame]
) -> Figure | None:
    """Distribution of rep attainment (all trials x reps) per scenario, with the quota line at 100%."""
    names = [n for n in _limit(samples) if n in quotas]
    if not names:
        return None
    fig, (ax,) = _new_figure(1, width=7.5, panel_height=3.6)
    bins = np.linspace(0, 3, 61)
    for name in names:
        a = np.asarray(attainment_samples(samples[name], quotas[name]))
        if a.size == 0:
            continue
        ax.hist(np.clip(a, 0, 3), bins=bins, density=True, histtype="step", lw=1.4,
                label=f"{name}: {np.mean(a >= 1):.0%} at quota")  # fmt: skip
    ax.axvline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xlabel("attainment (bookings / quota), clipped at 300%")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title("Rep attainment distribution (all trials and reps)", fontsize=10)
    return fig


def commission_cost_chart(costs: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Distribution of the total commission cost per trial, per scenario [currency]."""
    names = [n for n in _limit(costs) if "total_cost" in costs[n].columns]
    if not names:
        return None
    fig, (ax,) = _new_figure(1, width=7.5, panel_height=3.6)
    values = {n: costs[n]["total_cost"].to_numpy(float) for n in names}
    lo = min(v.min() for v in values.values())
    hi = max(v.max() for v in values.values())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 41)
    for name, v in values.items():
        ax.hist(v, bins=bins, density=True, histtype="step", lw=1.4,
                label=f"{name}: P50 {np.quantile(v, 0.5):,.0f}, P90 {np.quantile(v, 0.9):,.0f}")  # fmt: skip
    ax.set_xlabel("total commission cost per trial")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title("Commission cost distribution", fontsize=10)
    return fig


def _deviation_column(territories: pd.DataFrame) -> str | None:
    cols = [c for c in territories.columns if str(c).endswith("_deviation")]
    return cols[0] if cols else None


def territory_balance_chart(territories: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Box plot per scenario of each territory's deviation from its target on the headline metric [%]."""
    names = [n for n in territories if _deviation_column(territories[n]) is not None][: 3 * MAX_PANELS]
    if not names:
        return None
    fig, (ax,) = _new_figure(1, width=7.5, panel_height=3.6)
    data = [100 * territories[n][_deviation_column(territories[n])].to_numpy(float) for n in names]
    ax.boxplot(data, tick_labels=names, showmeans=True)
    ax.axhline(0, color="black", lw=0.8)
    metric = str(_deviation_column(territories[names[0]])).removesuffix("_deviation")
    ax.set_ylabel(f"{metric}: deviation from target [%]")
    ax.tick_params(axis="x", labelsize=7, rotation=20)
    ax.set_title("Territory balance (one point per territory)", fontsize=10)
    return fig


def territory_map(points: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Accounts on a lon/lat map coloured by their assigned rep, one panel per scenario.

    Parameters
    ----------
    points
        Scenario -> table with ``lat``, ``lon`` [degrees] and ``rep_id`` (and optionally ``moved``).
    """
    names = [n for n in _limit(points) if {"lat", "lon", "rep_id"} <= set(points[n].columns)]
    if not names:
        return None
    fig, axes = _new_figure(len(names), panel_height=3.0)
    for ax, name in zip(axes, names, strict=True):
        df = points[name]
        codes = pd.Categorical(df["rep_id"].astype(str)).codes
        ax.scatter(df["lon"], df["lat"], c=codes % 20, cmap="tab20", s=4, lw=0)
        if "moved" in df.columns:
            moved = df[df["moved"].astype(bool)]
            ax.scatter(
                moved["lon"], moved["lat"], facecolors="none", edgecolors="black", s=14, lw=0.3, alpha=0.5
            )
        ax.set_title(f"{name} ({df['rep_id'].nunique()} territories)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_aspect("equal", adjustable="datalim")
    fig.suptitle("Territory map (circled: accounts that change owner)", fontsize=10)
    return fig


def pipeline_total_chart(samples: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Distribution of the simulated plan-year bookings of the whole team (sum over reps per trial)."""
    names = [n for n in _limit(samples) if {"trial", "bookings"} <= set(samples[n].columns)]
    if not names:
        return None
    fig, (ax,) = _new_figure(1, width=7.5, panel_height=3.6)
    for name in names:
        total = samples[name].groupby("trial")["bookings"].sum().to_numpy(float)
        p10, p50, p90 = np.quantile(total, [0.1, 0.5, 0.9])
        ax.hist(total, bins=40, density=True, histtype="step", lw=1.4,
                label=f"{name}: P10 {p10:,.0f} / P50 {p50:,.0f} / P90 {p90:,.0f}")  # fmt: skip
    ax.set_xlabel("simulated plan-year bookings, all reps")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title("Pipeline Monte Carlo: team bookings", fontsize=10)
    return fig


def metrics_frame(metrics: Mapping[str, Any], prefix: str | None = None) -> pd.DataFrame:
    """Metrics as a two-column table (``metric``, ``value``) for display; ``prefix`` filters names."""
    rows = [(k, v) for k, v in metrics.items() if prefix is None or str(k).startswith(prefix)]
    return pd.DataFrame(rows, columns=["metric", "value"]).set_index("metric")


def account_points(
    out_dir: str | os.PathLike[str], assignments: pd.DataFrame, accounts: pd.DataFrame | None = None
) -> pd.DataFrame | None:
    """Assignments joined with the accounts' coordinates, or None when none are found.

    Coordinates come from ``assignments`` itself, else ``accounts``, else an ``accounts*.parquet``
    in the scenario's data cache (``out_dir/data``).
    """
    if {"lat", "lon"} <= set(assignments.columns):
        return assignments
    if accounts is not None and {"account_id", "lat", "lon"} <= set(accounts.columns):
        acc = accounts[["account_id", "lat", "lon"]]
        return assignments.merge(acc, on="account_id", how="left").dropna(subset=["lat", "lon"])
    for f in sorted(Path(out_dir, "data").rglob("accounts*.parquet")):
        try:
            acc = pd.read_parquet(f, columns=["account_id", "lat", "lon"])
        except (KeyError, ValueError, OSError):
            continue
        return assignments.merge(acc, on="account_id", how="left").dropna(subset=["lat", "lon"])
    return None


# ------------------------------------------------------------------------------------------------
# per-scenario report.html (nbconvert, no code)
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


def export_scenario_report(
    out_dir: str | os.PathLike[str], notebooks: Sequence[Path] | None = None, intro: str = ""
) -> Path | None:
    """Write ``out_dir/report.html`` from the executed notebooks under ``out_dir/notebooks/``.

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
        The report, or None when there is no executed notebook.
    """
    from salesops_models.workflow.notebooks import NOTEBOOKS

    out = Path(out_dir)
    if notebooks is None:
        order = {spec.name: i for i, spec in enumerate(NOTEBOOKS)}
        found = list((out / "notebooks").glob("*.ipynb"))
        notebooks = sorted(found, key=lambda p: (order.get(p.stem, len(order)), p.stem))
    if not notebooks:
        return None
    nb = combine_notebooks(notebooks, f"Scenario {out.name}", intro)
    return atomic_write_text(out / "report.html", notebook_html(nb))


# ------------------------------------------------------------------------------------------------
# index.html
# ------------------------------------------------------------------------------------------------


def e(value: Any) -> str:
    """Escape any value for HTML text and attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _money(v: Any) -> str:
    return f"{float(v):,.0f}"


def _share(v: Any) -> str:
    return f"{100 * float(v):.1f}%"


def _ratio(v: Any) -> str:
    return f"{float(v):.3f}"


def _text(v: Any) -> str:
    return str(v)


# (header, unit/explanation, metric names tried in order, formatter)
COMPARISON: tuple[tuple[str, str, tuple[str, ...], Callable[[Any], str]], ...] = (
    ("Total quota", "currency", ("quota_total",), _money),
    ("Bookings P10", "simulated, currency", ("pipeline_bookings_p10",), _money),
    ("Bookings P50", "simulated, currency", ("pipeline_bookings_p50",), _money),
    ("Bookings P90", "simulated, currency", ("pipeline_bookings_p90",), _money),
    ("Reps at quota", "share of reps", ("comp_share_at_quota",), _share),
    ("Commission cost P50", "currency", ("comp_cost_p50",), _money),
    ("Commission cost P90", "currency", ("comp_cost_p90",), _money),
    ("Cost of sales", "commission / bookings", ("comp_cost_of_sales",), _share),
    ("Balance max/min", "1 = perfectly balanced", ("territory_balance_max_min",), _ratio),
    ("Balance CV", "0 = perfectly balanced", ("territory_balance_cv",), _ratio),
    ("Disruption", "share of value moved", ("territory_disruption_share",), _share),
    ("Forecast MAPE", "backtest", ("forecast_backtest_mape",), _share),
    ("Solver status", "territory MILP", ("territory_status",), _text),
    ("MIP gap", "territory MILP", ("territory_mip_gap",), _share),
)

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#1d2430;padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;
padding-bottom:.2rem}h3{font-size:1rem}
.meta{color:#57606a;font-size:.85rem}
table{border-collapse:collapse;font-size:.82rem;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;vertical-align:top}
th{background:#f6f8fa;text-align:left}th small{display:block;font-weight:normal;color:#57606a}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fff1f0}tr.incomplete td{background:#fff8c5}
.status-ok{color:#1a7f37;font-weight:600}.status-failed{color:#cf222e;font-weight:600}
.status-partial,.status-not-run{color:#9a6700;font-weight:600}
.na{color:#8c959f}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.75rem;max-height:20rem}
img{max-width:100%;height:auto;border:1px solid #eaeef2}
.note{color:#57606a;font-style:italic}
.scroll{overflow-x:auto}
"""


def _cell(metrics: Mapping[str, Any], keys: Sequence[str], fmt: Callable[[Any], str]) -> str:
    for k in keys:
        v = metrics.get(k)
        if not _is_missing(v):
            try:
                return f'<td class="num">{e(fmt(v))}</td>'
            except (TypeError, ValueError):
                return f'<td class="num">{e(v)}</td>'
    return '<td class="num na">n/a</td>'


def comparison_table(metrics: pd.DataFrame, links: Mapping[str, str]) -> str:
    """The comparison table: one row per scenario, the headline metrics as columns (HTML)."""
    head = "".join(f"<th>{e(h)}<small>{e(u)}</small></th>" for h, u, _, _ in COMPARISON)
    rows = []
    for name, row in metrics.iterrows():
        m = {k: v for k, v in row.items()}
        status = str(m.get("status") or "unknown")
        link = links.get(str(name))
        label = f'<a href="{e(link)}">{e(name)}</a>' if link else e(name)
        incomplete = status in (STATUS_PARTIAL, STATUS_NOT_RUN)
        cls = ' class="incomplete"' if incomplete else (' class="failed"' if status != "ok" else "")
        cells = "".join(_cell(m, keys, fmt) for _, _, keys, fmt in COMPARISON)
        rows.append(
            f'<tr{cls} data-scenario="{e(name)}"><td>{label}</td>'
            f'<td class="status-{e(status.replace(" ", "-"))}">{e(status)}</td>{cells}</tr>'
        )
    return (
        '<div class="scroll"><table id="comparison"><thead><tr><th>Scenario</th><th>Status</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _failure_section(metrics: pd.DataFrame, dirs: Mapping[str, Path], batch_dir: Path) -> str:
    failed = [n for n, s in metrics.get("status", pd.Series(dtype=str)).items() if s != "ok"]
    if not failed:
        return "<p>None: every scenario completed.</p>"
    parts = []
    for name in failed:
        err = metrics.at[name, "error"] if "error" in metrics.columns else None
        parts.append(f"<h3>{e(name)}</h3><p><strong>Error:</strong> {e(err or 'unknown error')}</p>")
        d = dirs.get(str(name))
        if d is None:
            continue
        logs = sorted((d / "logs").glob("*.log")) if (d / "logs").is_dir() else []
        if logs:
            links = ", ".join(
                f'<a href="{e(p.relative_to(batch_dir).as_posix())}">{e(p.name)}</a>' for p in logs
            )
            parts.append(f"<p>Logs: {links}</p>")
            main = d / "logs" / "batch.log"
            tail = _tail(main if main.exists() else logs[0])
            if tail:
                parts.append(f"<pre>{e(tail)}</pre>")
        executed = sorted((d / "notebooks").glob("*.ipynb")) if (d / "notebooks").is_dir() else []
        if executed:
            links = ", ".join(
                f'<a href="{e(p.relative_to(batch_dir).as_posix())}">{e(p.name)}</a>' for p in executed
            )
            parts.append(f"<p>Executed notebooks: {links}</p>")
    return "".join(parts)


def _changes_section(changes: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for name, info in changes.items():
        base = info.get("base")
        items = info.get("changes") or []
        if not base:
            parts.append(f"<h3>{e(name)}</h3><p class='note'>No base scenario (extends nothing).</p>")
            continue
        if not items:
            parts.append(
                f"<h3>{e(name)} <small>vs {e(base)}</small></h3><p class='note'>No setting differs.</p>"
            )
            continue
        rows = "".join(
            f"<tr><td><code>{e(c.get('key'))}</code></td><td>{e(_yaml_value(c.get('base')))}</td>"
            f"<td>{e(_yaml_value(c.get('value')))}</td></tr>"
            for c in items
        )
        parts.append(
            f"<h3>{e(name)} <small>vs {e(base)}</small></h3><table class='changes'><thead><tr><th>Setting</th>"
            f"<th>Base</th><th>This scenario</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return "".join(parts) or "<p class='note'>No scenario information.</p>"


def _yaml_value(v: Any) -> str:
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return "null" if v is None else str(v)


def _read_tables(dirs: Mapping[str, Path], table: str) -> dict[str, pd.DataFrame]:
    out = {}
    for name, d in dirs.items():
        f = d / f"{table}.parquet"
        if f.exists():
            try:
                df = pd.read_parquet(f)
            except (OSError, ValueError) as exc:
                log.warning("%s: cannot read table %s: %s", f, table, exc)
                continue
            if len(df):
                out[name] = df
    return out


def _figure_block(title: str, fig: Figure | None, missing: str) -> str:
    if fig is None:
        return f"<h3>{e(title)}</h3><p class='note'>{e(missing)}</p>"
    uri = png_data_uri(figure_png(fig))
    return f'<h3>{e(title)}</h3><img class="chart" src="{uri}" alt="{e(title)}">'


def _charts_section(dirs: Mapping[str, Path]) -> str:
    forecasts = _read_tables(dirs, "forecast")
    samples = _read_tables(dirs, "rep_bookings_samples")
    quotas = _read_tables(dirs, "quotas")
    costs = _read_tables(dirs, "comp_cost_samples")
    territories = _read_tables(dirs, "territories")
    points = {}
    for name, df in _read_tables(dirs, "assignments").items():
        p = account_points(dirs[name], df)
        if p is not None and len(p):
            points[name] = p
    blocks = [
        _figure_block(
            "Forecast fan chart", forecast_fan_chart(forecasts), "No scenario wrote a forecast table."
        ),
        _figure_block(
            "Attainment distribution",
            attainment_chart(samples, quotas),
            "Needs the rep_bookings_samples and quotas tables; no scenario wrote both.",
        ),
        _figure_block(
            "Commission cost distribution",
            commission_cost_chart(costs),
            "No scenario wrote comp_cost_samples.",
        ),
        _figure_block(
            "Territory balance", territory_balance_chart(territories), "No scenario wrote territories."
        ),
        _figure_block(
            "Territory map", territory_map(points), "No scenario wrote assignments with account coordinates."
        ),
    ]
    return "".join(blocks)


def _rep_watchlist(dirs: Mapping[str, Path], n: int = 5) -> str:
    """Per scenario, the reps least likely to reach quota (rep ids are data: escaped)."""
    parts = []
    for name, q in _read_tables(dirs, "quotas").items():
        if "p_attain" not in q.columns or "rep_id" not in q.columns:
            continue
        low = q.nsmallest(n, "p_attain")
        rows = "".join(
            f"<tr><td>{e(r.rep_id)}</td><td class='num'>{e(_money(r.quota) if 'quota' in q.columns else '')}</td>"
            f"<td class='num'>{e(_share(r.p_attain))}</td></tr>"
            for r in low.itertuples()
        )
        parts.append(
            f"<h3>{e(name)}</h3><table class='watchlist'><thead><tr><th>Rep</th><th>Quota</th>"
            f"<th>P(reach quota)</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return "".join(parts) or "<p class='note'>No scenario wrote quotas with p_attain.</p>"


def _resolved(d: Path) -> dict[str, Any]:
    """A scenario's ``scenario.resolved.yaml`` as a dict; {} when missing or damaged."""
    f = d / "scenario.resolved.yaml"
    if not f.exists():
        return {}
    try:
        doc = load_yaml(f, "resolved scenario")
    except SalesopsError as exc:
        log.warning("%s", exc)
        return {}
    return doc if isinstance(doc, dict) else {}


def _provenance(dirs: Mapping[str, Path]) -> dict[str, Any]:
    for d in dirs.values():
        doc = _resolved(d)
        if doc:
            return dict(doc.get("_provenance") or {})
    return {}


def _descriptions(dirs: Mapping[str, Path]) -> dict[str, str]:
    return {name: str(_resolved(d).get("description") or "") for name, d in dirs.items()}


def build_index(batch_dir: str | os.PathLike[str]) -> Path:
    """Write ``batch_dir/index.html``: the leadership page of a batch; return its path.

    Sections: the comparison table (one row per scenario), the failures with their errors and log
    tails, charts (forecast fan chart, attainment distribution, commission cost distribution,
    territory balance, territory map), what each scenario changed versus its base, and each
    scenario's description, report link and reps least likely to reach quota.
    """
    batch = Path(batch_dir).resolve()
    dirs = scenario_dirs(batch)
    metrics = load_metrics(batch)  # never raises on a damaged file: see collect.read_metrics_file
    if metrics.empty and not dirs:
        raise SalesopsError(
            f"{batch}: no scenario results here (no sub-folder with a scenario.resolved.yaml); give the "
            "folder of one batch, results/<batch-id>, as printed by 'salesops batch'."
        )
    if "status" not in metrics.columns:
        metrics["status"] = "unknown"
    links = {n: f"{n}/report.html" for n, d in dirs.items() if (d / "report.html").exists()}
    prov = _provenance(dirs)
    descriptions = _descriptions(dirs)
    status = metrics["status"].astype(str)
    n_ok, n_failed = int((status == "ok").sum()), int((status != "ok").sum())
    n_open = {s: int((status == s).sum()) for s in (STATUS_PARTIAL, STATUS_NOT_RUN)}
    unfinished = "".join(f", {n} {s}" for s, n in n_open.items() if n)
    desc_rows = "".join(
        f"<tr><td>{e(n)}</td><td>{e(descriptions.get(str(n), ''))}</td><td>"
        + (f'<a href="{e(links[str(n)])}">report</a>' if str(n) in links else "<span class='na'>none</span>")
        + "</td></tr>"
        for n in metrics.index
    )
    now = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Scenario batch {e(batch.name)}</title><style>{CSS}</style></head>
<body>
<h1>Scenario batch {e(batch.name)}</h1>
<p class="meta">{len(metrics)} scenario(s), {n_ok} completed, {n_failed - sum(n_open.values())} failed{e(unfinished)}.
Generated {e(now)}; package {e(prov.get("package_version", "?"))}, commit {e(prov.get("git_commit") or "unknown")}.</p>
<h2>Comparison</h2>
{comparison_table(metrics, links)}
<p class="note">Bookings percentiles come from the pipeline Monte Carlo; cost of sales is commission cost over
bookings; balance is the headline workload metric of the territory plan.</p>
<h2 id="failures">Failures</h2>
{_failure_section(metrics, dirs, batch)}
<h2>Charts</h2>
{_charts_section(dirs)}
<h2>What each scenario changes versus its base</h2>
{_changes_section(load_changes(batch))}
<h2>Scenarios</h2>
<table><thead><tr><th>Scenario</th><th>Description</th><th>Report</th></tr></thead><tbody>{desc_rows}</tbody></table>
<h2>Reps least likely to reach quota</h2>
{_rep_watchlist(dirs)}
</body></html>
"""
    path = atomic_write_text(batch / "index.html", page)
    log.info("wrote %s", path)
    return path
