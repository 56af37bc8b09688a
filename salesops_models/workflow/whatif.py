"""Interactive what-if for analysts: change one planning lever, re-run only what it affects.

The notebook ``notebooks/whatif.ipynb`` builds four widgets and wires them to a :class:`WhatIf`;
everything else is here, so the callbacks are tested without a browser:

=========================  =====================================  ===============================
lever (widget)             scenario key                           stages it re-runs
=========================  =====================================  ===============================
company target             ``company_target``                     quota, compensation
territory balance          ``territory.balance[0].tolerance``     territory and every later stage
admin time to selling      ``pipeline.admin_time_reduction``      pipeline, reconcile, quota, comp.
commission plan            ``compensation.primary_plan``          compensation
=========================  =====================================  ===============================

Which stages re-run is not decided here: every run goes through
:func:`~salesops_models.workflow.runner.run_scenario` with a
:class:`~salesops_models.workflow.cache.StageCache`, whose keys (the stage contracts' config keys
and upstream tables' content) restore every stage whose inputs did not change. Each run writes a
fresh folder, so a table left by an earlier setting can never leak into a later one; the previous
folder is removed once the new run is complete.

A value the model refuses (a negative target, a tolerance of 1 or more, a plan the scenario does
not cost) or a run that fails (a balance band no territory plan can meet) comes back as a
:class:`WhatIfResult` with a ``message`` the notebook shows in its output area; no traceback.
"""

from __future__ import annotations

import html
import itertools
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from salesops_models.errors import SalesopsError, ScenarioError
from salesops_models.scenario import Scenario, load_scenario
from salesops_models.workflow.cache import StageCache, default_cache_dir
from salesops_models.workflow.contracts import STAGE_ORDER

log = logging.getLogger(__name__)

#: a rep is "likely to make quota" when his probability of reaching it is at least this [0-1]
LIKELY_AT_QUOTA = 0.5

#: widget lever -> (label shown to the analyst, scenario key it sets)
LEVERS: dict[str, tuple[str, str]] = {
    "company_target": ("Company target", "company_target"),
    "balance_tolerance": ("Territory balance tolerance", "territory.balance[0].tolerance"),
    "admin_time_reduction": ("Admin time turned into selling", "pipeline.admin_time_reduction"),
    "commission_plan": ("Commission plan", "compensation.primary_plan"),
}


@dataclass(frozen=True)
class WhatIfSettings:
    """The four levers of the what-if.

    Attributes
    ----------
    company_target
        Company bookings target of the plan year [currency]; None: the forecast-based target.
    balance_tolerance
        Half-width of the band around each territory's target of the headline balance metric
        (the scenario's first ``territory.balance`` entry) [0-1].
    admin_time_reduction
        Share of each rep's admin (non-selling) hours turned into selling time [0-1].
    commission_plan
        The plan behind the cost figures: one entry of the scenario's ``compensation.plans``.
    """

    company_target: float | None
    balance_tolerance: float
    admin_time_reduction: float
    commission_plan: str

    @classmethod
    def of(cls, scenario: Scenario) -> WhatIfSettings:
        """The settings a scenario already carries."""
        comp = scenario.compensation
        return cls(
            company_target=scenario.company_target,
            balance_tolerance=scenario.territory.balance[0].tolerance,
            admin_time_reduction=scenario.pipeline.admin_time_reduction,
            commission_plan=comp.primary_plan or comp.plans[0],
        )


@dataclass(frozen=True)
class Headline:
    """The figures the what-if shows after every change (all over the simulated plan year).

    Attributes
    ----------
    bookings_p50
        Median company bookings of the pipeline simulation [currency].
    comp_cost_p10, comp_cost_p50, comp_cost_p90
        Quantiles of the total commission cost (base + variable) of the plan [currency].
    share_likely_at_quota
        Share of reps whose probability of reaching quota is at least :data:`LIKELY_AT_QUOTA` [0-1].
    expected_share_at_quota
        Expected share of reps at or above quota, averaged over trials [0-1].
    company_target
        The company target the quotas were set against (the forecast-based one when unset) [currency].
    reps
        Quota-carrying reps [reps].
    """

    bookings_p50: float
    comp_cost_p10: float
    comp_cost_p50: float
    comp_cost_p90: float
    share_likely_at_quota: float
    expected_share_at_quota: float
    company_target: float
    reps: int


@dataclass
class WhatIfResult:
    """One what-if run: its settings, figures and which stages were computed or restored.

    ``message`` is set (and ``headline`` None) when the settings were refused or the run failed.
    """

    settings: WhatIfSettings
    headline: Headline | None = None
    computed: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    seconds: float = 0.0
    out_dir: Path | None = None
    message: str | None = None
    cost_samples: pd.Series | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.message is None and self.headline is not None


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _plan_label(plan: str) -> str:
    """A plan entry as the analyst knows it: a shipped plan's name, or a plan file's stem."""
    return Path(plan).stem if plan.endswith((".yaml", ".yml")) else plan


def read_headline(out_dir: str | os.PathLike[str]) -> Headline:
    """The headline figures of a completed scenario folder.

    Raises
    ------
    SalesopsError
        When the folder lacks the pipeline, quota or compensation outputs (stage disabled or failed).
    """
    out_dir = Path(out_dir)
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
        cost = pd.read_parquet(out_dir / "comp_cost_samples.parquet", columns=["total_cost"])["total_cost"]
        p_attain = pd.read_parquet(out_dir / "payouts_summary.parquet", columns=["p_attain"])["p_attain"]
    except (OSError, ValueError, KeyError) as exc:
        raise SalesopsError(
            f"{out_dir}: the what-if needs the pipeline, quota and compensation outputs ({exc}); "
            "enable those stages in the scenario."
        ) from exc
    q = cost.quantile([0.1, 0.5, 0.9])
    return Headline(
        bookings_p50=float(metrics.get("pipeline_bookings_p50", math.nan)),
        comp_cost_p10=float(q[0.1]),
        comp_cost_p50=float(q[0.5]),
        comp_cost_p90=float(q[0.9]),
        share_likely_at_quota=float((p_attain >= LIKELY_AT_QUOTA).mean()),
        expected_share_at_quota=float(metrics.get("comp_share_at_quota", math.nan)),
        company_target=float(metrics.get("quota_company_target", math.nan)),
        reps=int(len(p_attain)),
    )


def cache_hits(out_dir: str | os.PathLike[str]) -> dict[str, int]:
    """``stage -> 1`` (restored from the cache) or ``0`` (computed), from ``stages/*.timings.json``."""
    hits = {}
    for stage in STAGE_ORDER:
        f = Path(out_dir) / "stages" / f"{stage}.timings.json"
        if f.is_file():
            hits[stage] = int(json.loads(f.read_text(encoding="utf-8")).get(f"{stage}_cache_hit", 0))
    return hits


class WhatIf:
    """A scenario and the levers an analyst moves; each change re-runs only the affected stages.

    Parameters
    ----------
    scenario
        The base scenario (validated).
    out_root
        Folder of the what-if's runs (``run-<n>/``, the latest kept) and, by default, its cache.
    cache
        Stage cache (default :func:`~salesops_models.workflow.cache.default_cache_dir` of
        ``out_root``: ``$SALESOPS_CACHE_DIR`` or ``<out_root>/.cache``), shared with batches that
        use the same folder.
    """

    def __init__(self, scenario: Scenario, out_root: str | os.PathLike[str], cache: StageCache | None = None):
        self.base = scenario
        self.out_root = Path(out_root)
        self.cache = cache if cache is not None else StageCache(default_cache_dir(self.out_root))
        self.settings = WhatIfSettings.of(scenario)
        self.baseline: WhatIfResult | None = None
        self.last: WhatIfResult | None = None
        self._runs = itertools.count(1)

    @classmethod
    def from_path(
        cls,
        scenario_path: str | os.PathLike[str],
        out_dir: str | os.PathLike[str] | None = None,
        seed: int | None = None,
    ) -> WhatIf:
        """The what-if of a scenario file (a notebook's parameters: path, results folder, seed).

        ``out_dir`` None: ``results/whatif/<scenario name>`` of the source checkout, so the cache
        outlives the notebook session.
        """
        from salesops_models.workflow.notebooks import _resolve_scenario_path, notebooks_dir

        scenario = load_scenario(_resolve_scenario_path(scenario_path))
        if seed is not None:
            scenario = scenario.model_copy(update={"seed": int(seed)})
        root = Path(out_dir) if out_dir else notebooks_dir().parent / "results" / "whatif" / scenario.name
        return cls(scenario, root)

    # --------------------------------------------------------------------------------------------
    # the levers
    # --------------------------------------------------------------------------------------------

    @property
    def plans(self) -> list[tuple[str, str]]:
        """``(label, plan entry)`` of every plan the scenario costs (the dropdown's options)."""
        return [(_plan_label(p), p) for p in self.base.compensation.plans]

    def _checked(self, settings: WhatIfSettings) -> WhatIfSettings:
        """The settings as the model takes them, or a ScenarioError naming the lever and the fix."""

        def bad(lever: str, value: Any, fix: str) -> ScenarioError:
            label, key = LEVERS[lever]
            return ScenarioError(f"{label} ({key}) = {value!r}: {fix}")

        raw_target = target = settings.company_target
        if target is not None:
            try:
                target = float(target)
            except (TypeError, ValueError):
                raise bad("company_target", raw_target, "not a number; enter an amount in currency.") from None
            if not math.isfinite(target) or target < 0:
                raise bad(
                    "company_target", raw_target, "must be a positive amount (0 or empty: the forecast-based target)."
                )
            target = target or None  # 0 in a number box: back to the forecast-based target
        numbers = {}
        for lever, low, high in (("balance_tolerance", 0.0, 1.0), ("admin_time_reduction", 0.0, 1.0)):
            raw = getattr(settings, lever)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise bad(lever, raw, "not a number; enter a share between 0 and 1.") from None
            top_ok = value < high if lever == "balance_tolerance" else value <= high
            if not (math.isfinite(value) and value >= low and top_ok):
                rng = "[0, 1)" if lever == "balance_tolerance" else "[0, 1]"
                raise bad(lever, raw, f"must be a share in {rng}, e.g. 0.15 for 15%.")
            numbers[lever] = value
        entries = [p for _, p in self.plans]
        plan = settings.commission_plan
        if plan not in entries:
            by_label = {label: p for label, p in self.plans}
            if plan not in by_label:
                raise bad(
                    "commission_plan",
                    plan,
                    f"not a plan this scenario costs; choose one of {', '.join(by_label)} "
                    "(or add the plan to compensation.plans in the scenario file).",
                )
            plan = by_label[plan]
        return WhatIfSettings(target, numbers["balance_tolerance"], numbers["admin_time_reduction"], plan)

    def scenario_for(self, settings: WhatIfSettings) -> Scenario:
        """The base scenario with the levers set, validated like a scenario file.

        Raises
        ------
        ScenarioError
            A lever's value the model refuses, naming the lever, its scenario key and the fix.
        """
        settings = self._checked(settings)
        doc = self.base.model_dump(mode="json")
        doc["company_target"] = settings.company_target
        doc["territory"]["balance"][0]["tolerance"] = settings.balance_tolerance
        doc["pipeline"]["admin_time_reduction"] = settings.admin_time_reduction
        doc["compensation"]["primary_plan"] = settings.commission_plan
        try:
            return Scenario.model_validate(doc)
        except ValidationError as exc:  # the range checks above should have caught it; say which key
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ScenarioError(f"what-if settings refused: {where}: {first['msg']}") from None

    # --------------------------------------------------------------------------------------------
    # running
    # --------------------------------------------------------------------------------------------

    def run(self, settings: WhatIfSettings | None = None) -> WhatIfResult:
        """Run the scenario with ``settings`` (default: the current ones) through the cache.

        Never raises for a user mistake or a failed model run: the result's ``message`` says what
        went wrong and the current settings stay as they were.
        """
        from salesops_models.workflow.runner import run_scenario

        settings = settings if settings is not None else self.settings
        try:
            scenario = self.scenario_for(settings)
        except SalesopsError as exc:
            return self._remember(WhatIfResult(settings, message=str(exc)), keep=False)
        out = self.out_root / f"run-{next(self._runs)}" / scenario.name
        while out.parent.exists():  # a folder of an earlier session: never mix its tables in
            out = self.out_root / f"run-{next(self._runs)}" / scenario.name
        t0 = time.perf_counter()
        outcome = run_scenario(scenario, out, cache=self.cache)
        seconds = time.perf_counter() - t0
        hits = cache_hits(out)
        result = WhatIfResult(
            WhatIfSettings.of(scenario),
            computed=tuple(s for s, h in hits.items() if not h),
            restored=tuple(s for s, h in hits.items() if h),
            seconds=seconds,
            out_dir=out,
        )
        if outcome.status != "ok":
            result.message = (
                f"the run with these settings failed ({outcome.error}); the figures shown are the last "
                f"good ones. Details: {out / 'logs' / 'run.log'}"
            )
            return self._remember(result, keep=False)
        try:
            result.headline = read_headline(out)
            result.cost_samples = pd.read_parquet(out / "comp_cost_samples.parquet")["total_cost"]
        except SalesopsError as exc:
            result.message = str(exc)
            return self._remember(result, keep=False)
        log.info("what-if %s: computed %s, restored %s in %.1f s", scenario.name, result.computed, result.restored, seconds)
        return self._remember(result, keep=True)

    def _remember(self, result: WhatIfResult, keep: bool) -> WhatIfResult:
        if keep:
            previous = self.last.out_dir if self.last is not None else None
            keep_dirs = {r.out_dir for r in (self.baseline, result) if r is not None}
            if previous is not None and previous not in keep_dirs:
                shutil.rmtree(previous.parent, ignore_errors=True)
            self.settings = result.settings
            self.last = result
            if self.baseline is None:
                self.baseline = result
        return result

    def apply(self, **changes: Any) -> WhatIfResult:
        """Move one or more levers (names of :class:`WhatIfSettings`) and run."""
        unknown = set(changes) - set(LEVERS)
        if unknown:
            return WhatIfResult(
                self.settings, message=f"unknown lever(s) {', '.join(sorted(unknown))}; levers are {', '.join(LEVERS)}."
            )
        # replace() does not validate: _checked() does, with the lever's name in the message
        return self.run(replace(self.settings, **changes))

    def trial_moves(self) -> dict[str, Any]:
        """A new value for each lever, cheapest re-run first: what the notebook's headless run sets.

        Another commission plan (compensation only), the company target +10% (quota onwards),
        admin time to selling +0.1 (pipeline onwards), balance tolerance +0.05 (every stage). Each
        is a value the lever's widget accepts, moved from the current settings.
        """
        s = self.settings
        others = [p for _, p in self.plans if p != s.commission_plan]
        target = s.company_target
        if target is None and self.last is not None and self.last.headline is not None:
            target = self.last.headline.company_target
        return {
            "commission_plan": others[0] if others else s.commission_plan,
            "company_target": round(1.1 * target, 2) if target else None,
            "admin_time_reduction": round(min(1.0, s.admin_time_reduction + 0.1), 4),
            "balance_tolerance": round(min(0.5, s.balance_tolerance + 0.05), 4),
        }

    # the widgets' callbacks (``widget.observe(whatif.on_..., names="value")``): a change dict in
    def on_target(self, change: dict[str, Any]) -> WhatIfResult:
        return self.apply(company_target=change["new"])

    def on_balance_tolerance(self, change: dict[str, Any]) -> WhatIfResult:
        return self.apply(balance_tolerance=change["new"])

    def on_admin_time(self, change: dict[str, Any]) -> WhatIfResult:
        return self.apply(admin_time_reduction=change["new"])

    def on_commission_plan(self, change: dict[str, Any]) -> WhatIfResult:
        return self.apply(commission_plan=change["new"])

    # --------------------------------------------------------------------------------------------
    # presentation helpers (HTML and a figure; the notebook only displays them)
    # --------------------------------------------------------------------------------------------

    def summary_html(self, result: WhatIfResult) -> str:
        """The headline figures against the first run's, which stages ran, or the message."""
        if result.message is not None:
            return f'<p style="color:#b00020"><b>Not applied:</b> {html.escape(result.message)}</p>'
        assert result.headline is not None
        now = asdict(result.headline)
        base = asdict(self.baseline.headline) if self.baseline and self.baseline.headline else now
        rows = [
            ("Company target", "company_target", _money),
            ("Bookings P50", "bookings_p50", _money),
            ("Commission cost P10", "comp_cost_p10", _money),
            ("Commission cost P50", "comp_cost_p50", _money),
            ("Commission cost P90", "comp_cost_p90", _money),
            (f"Reps likely to make quota (P(attain) >= {LIKELY_AT_QUOTA:.0%})", "share_likely_at_quota", "{:.0%}".format),
            ("Expected share of reps at quota", "expected_share_at_quota", "{:.0%}".format),
        ]
        body = "".join(
            f"<tr><td>{label}</td><td style='text-align:right'>{fmt(now[k])}</td>"
            f"<td style='text-align:right'>{fmt(base[k])}</td></tr>"
            for label, k, fmt in rows
        )
        ran = ", ".join(result.computed) or "none"
        return (
            f"<table><tr><th></th><th>now</th><th>first run</th></tr>{body}</table>"
            f"<p>Plan: {html.escape(_plan_label(result.settings.commission_plan))}. "
            f"Recomputed: {html.escape(ran)}; restored from the cache: {len(result.restored)} stage(s); "
            f"{result.seconds:.1f} s.</p>"
        )

    def cost_chart_png(self, result: WhatIfResult) -> bytes:
        """Histogram of the plan's commission cost with P10/P50/P90, and the first run's P50 (PNG)."""
        from io import BytesIO

        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 2.6))
        ax = fig.add_subplot()
        if result.cost_samples is None or result.headline is None:
            ax.set_axis_off()
        else:
            self._draw_costs(ax, result)
        fig.tight_layout()
        buf = BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        return buf.getvalue()

    def _draw_costs(self, ax: Any, result: WhatIfResult) -> None:
        assert result.headline is not None and result.cost_samples is not None
        h = result.headline
        ax.hist(result.cost_samples, bins=30, color="#8fb3d9")
        for x, style in ((h.comp_cost_p10, ":"), (h.comp_cost_p50, "-"), (h.comp_cost_p90, ":")):
            ax.axvline(x, color="#1f4e79", linestyle=style)
        if self.baseline is not None and self.baseline.headline is not None and self.baseline is not result:
            ax.axvline(self.baseline.headline.comp_cost_p50, color="#c0392b", linestyle="--", label="first run P50")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlabel("commission cost of the plan year [currency] (P10, P50, P90 marked)")
        ax.set_ylabel("trials")
