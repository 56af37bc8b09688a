"""The result of an alignment: :class:`AlignmentResult`, its tables and headline figures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.territory.solver import SolveInfo


def balance_index(load: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Max/min ratio and coefficient of variation of capacity-adjusted loads.

    Parameters
    ----------
    load
        Metric total of each territory [metric unit].
    target
        Capacity-weighted target of each territory [metric unit].

    Returns
    -------
    tuple of float
        ``(max_min, cv)``.

    Notes
    -----
    With the relative load :math:`\\rho_r = L_r / T_r` of territory :math:`r`,
    ``max_min`` :math:`= \\max_r \\rho_r / \\min_r \\rho_r` (inf if a territory is empty) and
    ``cv`` :math:`= \\mathrm{std}(\\rho) / \\mathrm{mean}(\\rho)` (population standard deviation).
    A perfectly balanced plan has 1 and 0.
    """
    keep = target > 0
    rho = load[keep] / target[keep]
    if rho.size == 0:
        return math.nan, math.nan
    lo, hi = float(rho.min()), float(rho.max())
    max_min = math.inf if lo <= 0 else hi / lo
    mean = float(rho.mean())
    cv = float(rho.std() / mean) if mean > 0 else math.nan
    return max_min, cv


@dataclass
class AlignmentResult:
    """An account-to-rep alignment and how good it is.

    Attributes
    ----------
    assignments
        One row per account: ``account_id``, ``rep_id``, ``previous_rep_id``, ``moved``, ``locked``,
        ``distance_km``, ``travel`` and the balanced metric columns.
    territories
        One row per rep: ``rep_id``, ``capacity``, ``accounts``, for each balanced metric ``m`` the
        columns ``m``, ``m_target``, ``m_deviation`` (relative to target), ``m_lower``, ``m_upper``;
        ``travel``, ``distance_km``, ``accounts_in``, ``accounts_out``.
    solve
        Status, objective, bound, gap and seconds of the solve that produced the plan.
    metrics
        Names of the balanced metrics, first is the headline metric.
    travel
        Total travel term :math:`\\sum_a w_a d_{a,r(a)}` [km x weight unit].
    disruption
        Value of accounts that change owner [value unit].
    disruption_share
        ``disruption`` over the value of all accounts with a current owner [0-1].
    moved
        Number of accounts that change owner.
    diagnosis
        When the tolerances could not be met: one row per (territory, metric) outside its band, with
        how far it lies outside (empty otherwise).
    relaxation
        When the tolerances could not be met: one row per constraint family with the tolerance asked
        for and the tolerance the nearest plan needs (empty otherwise).
    disconnected_territories
        Territories whose accounts do not form one connected piece of the adjacency graph (None if no
        graph was given).
    build_seconds
        Time to prepare the data and build the Pyomo model [s].
    candidate_pairs
        Number of candidate (account, rep) pairs.
    notes
        What the solve path found on the way (LP bound, fallbacks), for the log and the report.
    stopped_by_clock
        Steps the wall-clock safety net stopped (empty: the plan came from work limits alone and is
        the same on any machine; see :mod:`~salesops_models.territory.solver`).
    contiguity
        The adjacency graph and the contiguity rule: ``imposed``, ``graph`` (``"table"`` or
        ``"locations"``), ``units``, ``edges``, ``cuts`` (separator cuts added), ``exempt`` (rep ids);
        empty without a graph.
    travel_basis
        Where distances came from: ``"haversine"``, ``"distance table"`` or ``"none"`` (no locations:
        no travel and no compactness in the objective).
    versions
        Python and library versions the plan was computed with (:func:`~salesops_models.territory.solver.solver_versions`).
    phase_seconds
        Wall-clock time of each step of the large-scale path [s] (instance preparation, adjacency graph,
        LP build and solve, rounding, searches, result tables); empty on the MILP path.
    """

    assignments: pd.DataFrame
    territories: pd.DataFrame
    solve: SolveInfo
    metrics: list[str]
    travel: float
    disruption: float
    disruption_share: float
    moved: int
    diagnosis: pd.DataFrame = field(default_factory=pd.DataFrame)
    relaxation: pd.DataFrame = field(default_factory=pd.DataFrame)
    disconnected_territories: int | None = None
    build_seconds: float = 0.0
    candidate_pairs: int = 0
    notes: list[str] = field(default_factory=list)
    stopped_by_clock: list[str] = field(default_factory=list)
    travel_basis: str = "haversine"
    contiguity: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.solve.status

    def balance(self, metric: str | None = None) -> tuple[float, float]:
        """``(max_min, cv)`` of ``metric`` (default: the first balanced metric); see :func:`balance_index`."""
        m = metric or self.metrics[0]
        t = self.territories
        return balance_index(t[m].to_numpy(float), t[f"{m}_target"].to_numpy(float))

    def summary(self) -> dict[str, Any]:
        """Headline figures: status, objective, bound, gap, seconds, balance, disruption, moves."""
        max_min, cv = self.balance() if self.metrics else (math.nan, math.nan)
        out: dict[str, Any] = {
            "status": self.solve.status,
            "objective": self.solve.objective,
            "bound": self.solve.bound,
            "mip_gap": self.solve.gap,
            "seconds": self.solve.seconds,
            "build_seconds": self.build_seconds,
            "solver_path": "lp_rounding" if self.solve.termination == "lp_rounding" else "milp",
            "accounts": int(len(self.assignments)),
            "territories": int(len(self.territories)),
            "candidate_pairs": int(self.candidate_pairs),
            "nodes": int(self.solve.nodes),
            "time_limit_hit": bool(self.stopped_by_clock or self.solve.time_limit_hit),
            "travel_basis": self.travel_basis,
            "travel": self.travel,
            "disruption": self.disruption,
            "disruption_share": self.disruption_share,
            "moved": int(self.moved),
            "balance_max_min": max_min,
            "balance_cv": cv,
        }
        for m in self.metrics:
            mm, c = self.balance(m)
            out[f"balance_max_min_{m}"] = mm
            out[f"balance_cv_{m}"] = c
            out[f"max_abs_deviation_{m}"] = float(self.territories[f"{m}_deviation"].abs().max())
        if self.disconnected_territories is not None:
            out["disconnected_territories"] = int(self.disconnected_territories)
        if self.contiguity:
            out["contiguity"] = bool(self.contiguity["imposed"])
            out["contiguity_cuts"] = int(self.contiguity["cuts"])
        if not self.relaxation.empty:
            out["relaxation_needed"] = "; ".join(
                f"{r.constraint}: {r.requested:g} -> {r.required:.4g}"
                for r in self.relaxation.itertuples()
                if r.binding
            )
        return out
