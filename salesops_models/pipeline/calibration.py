"""Calibration of the pipeline model from CRM history: transitions, holding times, sizes, creation.

The same function runs on a full stage history (every stage a deal entered, with its date) and on a
snapshot that only knows when a deal was engaged and when it closed (Maven CRM): the stage history
then holds one open-stage row and one won/lost row per deal, and stages never observed to exit move
to the next open stage.

Censoring is part of the default: a deal still open has not exited its stage (right censoring),
the exits are Aalen-Johansen cumulative incidences, and the mass still undecided after the longest
observed holding time is an explicit *never decided* outcome (it closes as lost). An export that
only shows deals closed on or after some date (old cohorts seen only if they closed late) is
left-truncated; visits that started before that date enter the risk sets late (delayed entry).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from salesops_models.data.company import StageSet
from salesops_models.data.schema import LOST, OPEN, WON
from salesops_models.errors import DataValidationError, ScenarioError, format_rows
from salesops_models.pipeline.drift import DRIFT_MODES, ConversionDrift, estimate_conversion_drift
from salesops_models.pipeline.survival import CumulativeIncidence, aalen_johansen, follow_up_check
from salesops_models.pipeline.uncertainty import ParameterUncertainty, estimate_uncertainty

log = logging.getLogger(__name__)

MIN_GROUP_WON = 5  # fewer won deals than this in a size group: draw from the pooled sizes instead
# won deal values are also pooled by quantile bins of the created-to-won cycle (size_cycle_cells):
# a group of n won deals gets floor(n ** (1/3)) bins, the rate at which a histogram estimator's
# bias and variance balance, and never a bin with fewer than MIN_CELL_WON deals (20 values give a
# cell mean a standard error of 0.22 standard deviations of the values)
MIN_CELL_WON = 20
POOLED = "*"
RESIDUAL_MODES = ("no_decision", "redistribute")


# Above this share of late entrants among the deals followed past the longest decision, the
# never-decided share rests mostly on cohorts engaged before the export's window: warn (a majority,
# not a fitted threshold).
PLATEAU_LATE_ENTRY_LIMIT = 0.5


class CalibrationWarning(UserWarning):
    """The history cannot identify part of the calibration; the message names the problem and the fix."""


@dataclass
class PipelineCalibration:
    """Everything the simulation needs, estimated from history known on ``as_of``.

    States are the open stages in process order followed by the won and the lost outcome; state
    ``i`` of an array is ``states[i]``.

    Attributes
    ----------
    states
        Open stages, then the won label, then the lost label.
    transition_counts
        Observed stage exits ``counts[i, j]`` (open ``i`` to any ``j``) [deals]; open deals add none.
    transition_matrix
        Jump-chain matrix ``P`` (rows of open stages sum to 1; absorbing rows are the identity).
    atom_stage, atom_state, atom_days, atom_prob
        For each open stage, the discrete joint distribution of (next state, holding time [days]):
        atom ``k`` leaves ``atom_stage[k]`` for ``atom_state[k]`` after ``atom_days[k]`` days with
        probability ``atom_prob[k]``; sorted by stage, then days.
    entry_stage
        Index of the stage new deals enter (the most common first stage in the history).
    rep_ids, weekly_rate
        Reps and their de-seasonalised opportunity creation rate [deals/week].
    season
        Creation multipliers by calendar month, January first (mean 1).
    quarter_end_pull
        Share of won deals closing in a quarter's first two months moved to its last month [0-1].
    size_groups, size_pool, size_offset, size_count
        Won deal values [currency] grouped by ``size_by`` (the last group pools all won deals).
    rep_group_mix
        Share of each size group among each rep's won deals of the last year (rows sum to 1).
    diagnostics
        Headline calibration figures (naive and censoring-aware win rates, the assumption used for
        the undecided mass, follow-up and truncation checks, stale deal counts...).
    atom_dest
        Destination class of each atom: ``atom_state``, or :attr:`never` for the never-decided atom
        (it ends lost; the class lets the posterior treat it as an outcome of its own).
    uncertainty
        Posterior and over-dispersion figures for the calibrated (uncertain) simulation mode.
    observed_from
        First day the export can show an exit (left-truncation point), or ``None``.
    creation_trend, creation_trend_se, rate_reference
        Growth of creation [log per year], its standard error, and the date the creation rates
        refer to (the middle of the rate window); a day ``d`` creates at ``exp(g (d - ref))`` times the rate.
    cycle_edges, cell_offset, cell_count
        Won deal values by size group *and* created-to-won cycle (:func:`size_cycle_cells`; no cells
        with ``size_by_cycle`` off): row ``g`` of ``cycle_edges`` holds the interior edges of group
        ``g``'s cycle bins [days] (quantiles of its won cycles, padded with +inf), and cell
        ``(g, b)`` of the size pool holds group ``g``'s won values with a cycle in bin ``b``
        (a row of ``cell_count`` all 0: too few won deals, the group's whole pool is used). A new
        deal's value is drawn from the cell of its simulated cycle, so size and cycle length come
        together as in history (big deals take longer).
    drift, open_created
        The trend of conversion over creation cohorts (:mod:`~salesops_models.pipeline.drift`;
        not used unless ``conversion_drift`` asks and the data identify it) and the mean creation
        date of the deals open on ``as_of`` (the cohort the open pipeline is shifted as).
    """

    states: tuple[str, ...]
    n_open: int
    as_of: pd.Timestamp
    transition_counts: np.ndarray
    transition_matrix: np.ndarray
    atom_stage: np.ndarray
    atom_state: np.ndarray
    atom_days: np.ndarray
    atom_prob: np.ndarray
    entry_stage: int
    rep_ids: np.ndarray
    weekly_rate: np.ndarray
    season: np.ndarray
    quarter_end_pull: float
    size_by: str
    size_groups: tuple[str, ...]
    size_pool: np.ndarray
    size_offset: np.ndarray
    size_count: np.ndarray
    rep_group_mix: np.ndarray
    diagnostics: dict[str, float | int | str] = field(default_factory=dict)
    atom_dest: np.ndarray | None = None
    uncertainty: ParameterUncertainty | None = None
    observed_from: pd.Timestamp | None = None
    creation_trend: float = 0.0
    creation_trend_se: float = 0.0
    rate_reference: pd.Timestamp | None = None
    cycle_edges: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    cell_offset: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    cell_count: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    drift: ConversionDrift = field(default_factory=ConversionDrift)
    open_created: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        if self.atom_dest is None:
            self.atom_dest = np.asarray(self.atom_state, np.int64).copy()

    def for_roster(
        self, rep_ids: np.ndarray, weekly_rate: np.ndarray, rep_group_mix: np.ndarray
    ) -> PipelineCalibration:
        """This calibration for a plan's roster: every per-rep array re-keyed to ``rep_ids``.

        Parameters
        ----------
        rep_ids
            The plan's reps (planned hires included).
        weekly_rate
            Their creation rates under the plan [deals/week].
        rep_group_mix
            Their size-group mixes (rows sum to 1).

        Notes
        -----
        The per-rep uncertainty figures follow their rep (a hire gets the priors, see
        :meth:`ParameterUncertainty.for_roster`); replacing ``rep_ids`` alone would leave them
        keyed to the calibrated reps.
        """
        ids = np.asarray(rep_ids, dtype=object)
        unc = None if self.uncertainty is None else self.uncertainty.for_roster(self.rep_ids, ids)
        return replace(
            self,
            rep_ids=ids,
            weekly_rate=np.asarray(weekly_rate, float),
            rep_group_mix=np.asarray(rep_group_mix, float),
            uncertainty=unc,
        )

    @property
    def won(self) -> int:
        """Index of the won state."""
        return self.n_open

    @property
    def lost(self) -> int:
        """Index of the lost state."""
        return self.n_open + 1

    @property
    def never(self) -> int:
        """Destination class of the never-decided atom (its state is :attr:`lost`)."""
        return self.n_open + 2

    @property
    def n_dest(self) -> int:
        """Destination classes: open stages, won, lost, never decided."""
        return self.n_open + 3

    def dest_prob(self) -> np.ndarray:
        """Exit probabilities ``(n_open, n_dest)`` by destination class (never decided apart)."""
        out = np.zeros((self.n_open, self.n_dest))
        np.add.at(out, (self.atom_stage, self.atom_dest), self.atom_prob)
        return out

    def never_decided(self) -> np.ndarray:
        """Share of each open stage's visits that never reach an outcome [0-1]."""
        return self.dest_prob()[:, self.never]

    def stage_index(self, label: str) -> int:
        """Index of a state label; raises ``KeyError`` naming the known states."""
        try:
            return self.states.index(label)
        except ValueError:
            raise KeyError(f"unknown stage {label!r}; known stages are {list(self.states)}") from None

    def max_holding_days(self) -> np.ndarray:
        """Longest observed holding time of each open stage [days] (-1 if never exited); the
        never-decided atom is not a holding time and does not count."""
        out = np.full(self.n_open, -1, dtype=np.int64)
        for i in range(self.n_open):
            sel = (self.atom_stage == i) & (self.atom_dest != self.never)
            if sel.any():
                out[i] = int(self.atom_days[sel].max())
        return out

    def mean_holding_days(self) -> np.ndarray:
        """Mean holding time of each open stage over all its exits [days]."""
        return np.array(
            [
                float(np.sum(self.atom_prob[self.atom_stage == i] * self.atom_days[self.atom_stage == i]))
                for i in range(self.n_open)
            ]
        )

    def mean_won_amount(self, group: int | None = None) -> float:
        """Mean won deal value of a size group (default: the pooled group) [currency]."""
        g = len(self.size_groups) - 1 if group is None else group
        o, c = int(self.size_offset[g]), int(self.size_count[g])
        return float(self.size_pool[o : o + c].mean()) if c else 0.0

    def win_rate_created(self, date: pd.Timestamp | str) -> float:
        """Win probability from entry of a deal created on ``date`` [0-1]: the point chain, moved along
        the conversion drift when one is used (up to ``as_of``, as the simulation does)."""
        from salesops_models.pipeline.markov import absorbing_chain
        from salesops_models.pipeline.uncertainty import tilt_scale, tilted_matrix

        P = self.transition_matrix
        if self.drift.used:
            x = self.drift.shift(min(pd.Timestamp(date), self.as_of))
            P = tilted_matrix(P, self.n_open, tilt_scale(P, self.n_open, self.entry_stage) * x)
        return float(absorbing_chain(P, self.n_open).win_probability[self.entry_stage])

    def summary(self) -> dict[str, float | int | str]:
        """Headline figures of the calibration."""
        from salesops_models.pipeline.markov import absorbing_chain

        chain = absorbing_chain(self.transition_matrix, self.n_open)
        out: dict[str, float | int | str] = {
            "win_rate_from_entry": float(chain.win_probability[self.entry_stage]),
            "entry_stage": self.states[self.entry_stage],
            "creation_per_week": float(self.weekly_rate.sum()),
            "creation_growth_per_year": float(np.expm1(self.creation_trend)),
            "creation_growth_se": float(self.creation_trend_se),
            "quarter_end_pull": float(self.quarter_end_pull),
            "mean_won_amount": self.mean_won_amount(),
        }
        out.update(self.diagnostics)
        if self.uncertainty is not None:
            out.update(self.uncertainty.summary())
        return out


# --------------------------------------------------------------------------------------------
# stage history -> stage visits
# --------------------------------------------------------------------------------------------


def stage_visits(
    opportunities: pd.DataFrame, stage_history: pd.DataFrame, stages: StageSet, as_of: pd.Timestamp
) -> pd.DataFrame:
    """One row per stage visit: ``opportunity_id, stage, entered_date, next_stage, days``.

    ``next_stage`` is NA (and ``days`` the age on ``as_of``) for the visit a deal is still in: a
    right-censored holding time. Rows dated after ``as_of`` are ignored. Closed deals whose history
    lacks the won/lost row get it from ``opportunities.close_date``. When ``stage_history`` is empty,
    each deal gets one visit of its current stage (open deals) or of the first open stage (closed
    deals), entered on ``created_date``.

    Parameters
    ----------
    opportunities
        Canonical opportunities (current state at ``as_of``).
    stage_history
        Canonical stage history (may be empty).
    stages
        The sales process.
    as_of
        Snapshot date.

    Returns
    -------
    pandas.DataFrame
        Visits of open stages only (exits to won/lost are in ``next_stage``).
    """
    as_of = pd.Timestamp(as_of)
    known = set(stages.all_stages)
    rank = {s: i for i, s in enumerate(stages.all_stages)}
    opp = opportunities[["opportunity_id", "stage", "status", "created_date", "close_date"]].copy()
    if len(stage_history):
        sh = stage_history[["opportunity_id", "stage", "entered_date"]].copy()
        bad = ~sh["stage"].isin(known)
        if bad.any():
            raise DataValidationError(
                "stage_history",
                [
                    f"column 'stage': unknown label(s) {sorted(set(sh.loc[bad, 'stage'].astype(str)))[:5]} at "
                    f"{format_rows(list(sh.index[bad]))}; known stages are {list(known)}."
                ],
            )
    else:
        first = stages.open_stages[0]
        start_stage = opp["stage"].where(opp["status"] == OPEN, first)
        sh = pd.DataFrame(
            {
                "opportunity_id": opp["opportunity_id"],
                "stage": start_stage,
                "entered_date": opp["created_date"],
            }
        )
    sh = sh[sh["entered_date"].notna() & (sh["entered_date"] <= as_of)]
    # closed deals: make sure the outcome row is there
    closed = opp[opp["status"].isin([WON, LOST]) & opp["close_date"].notna() & (opp["close_date"] <= as_of)]
    outcome = closed["status"].map({WON: stages.won, LOST: stages.lost})
    has_outcome = sh[sh["stage"].isin([stages.won, stages.lost])]["opportunity_id"]
    add = closed[~closed["opportunity_id"].isin(set(has_outcome))]
    if len(add):
        sh = pd.concat(
            [
                sh,
                pd.DataFrame(
                    {
                        "opportunity_id": add["opportunity_id"],
                        "stage": outcome.loc[add.index],
                        "entered_date": add["close_date"],
                    }
                ),
            ],
            ignore_index=True,
        )
    sh = sh.assign(_rank=sh["stage"].map(rank)).sort_values(["opportunity_id", "entered_date", "_rank"])
    # a repeated label (re-entry of the same stage on consecutive rows) is one visit
    code = pd.Series(pd.factorize(sh["opportunity_id"])[0], index=sh.index)
    stage_code = pd.Series(sh["stage"].map(rank).to_numpy(int), index=sh.index)
    same = (code == code.shift(fill_value=-1)) & (stage_code == stage_code.shift(fill_value=-1))
    sh, code = sh[~same].reset_index(drop=True), code[~same].reset_index(drop=True)
    same_next = code.shift(-1, fill_value=-1) == code
    nxt_stage = sh["stage"].shift(-1).where(same_next)
    nxt_date = sh["entered_date"].shift(-1).where(same_next)
    absorbing = sh["stage"].isin([stages.won, stages.lost])
    # rows after an absorbing row (a reopened deal) are cut: the first outcome counts
    prior_abs = absorbing.astype(int).groupby(code).cumsum() - absorbing.astype(int)
    after_abs = prior_abs > 0
    visits = sh.assign(next_stage=nxt_stage, next_date=nxt_date)[~absorbing & ~after_abs]
    status = opp.set_index("opportunity_id")["status"]
    still_open = visits["next_stage"].isna()
    open_ids = set(status.index[status == OPEN])
    # a last open-stage visit of a deal that closed without an outcome row cannot happen (added above);
    # a last visit of a deal that is not open is dropped rather than guessed
    keep = ~still_open | visits["opportunity_id"].isin(open_ids)
    visits = visits[keep].copy()
    end = visits["next_date"].where(visits["next_stage"].notna(), as_of)
    visits["days"] = (end - visits["entered_date"]).dt.days.astype("int64")
    return visits[["opportunity_id", "stage", "entered_date", "next_stage", "days"]].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# the calibration
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# the calibration
# --------------------------------------------------------------------------------------------


def calibrate_pipeline(
    opportunities: pd.DataFrame,
    stage_history: pd.DataFrame,
    reps: pd.DataFrame,
    stages: StageSet,
    as_of: pd.Timestamp | str,
    *,
    rate_window_weeks: int = 26,
    seasonality: str = "auto",
    quarter_end_pull: float | None = None,
    size_by: str = "product",
    history_start: pd.Timestamp | str | None = None,
    residual: str = "no_decision",
    observed_from: pd.Timestamp | str | None = "auto",
    creation_trend: str = "auto",
    size_by_cycle: bool = False,
    conversion_drift: str = "none",
) -> PipelineCalibration:
    """Estimate the pipeline model from CRM history known on ``as_of``.

    Parameters
    ----------
    opportunities, stage_history, reps
        Canonical tables (see ``salesops_models.data.schema``).
    stages
        Open stages in process order and the won/lost labels.
    as_of
        Snapshot date: history after it is ignored; deals open on it are right-censored.
    rate_window_weeks
        Weeks before ``as_of`` over which creation rates are counted [weeks] (never before
        ``observed_from``: deals created earlier are only partly in the export).
    seasonality
        'month', 'none' or 'auto' (month when >= 24 full months of creation dates exist).
    creation_trend
        'auto' (a growth trend of creation fitted when >= 24 full months exist), 'fit' (always, from
        >= 6 months) or 'none'; rates are the window's level, moved along the trend from the window's
        middle.
    quarter_end_pull
        Fixed quarter-end pull [0-1]; ``None`` calibrates it from won close dates.
    size_by
        Column grouping won deal values ('product', 'segment' or 'none').
    size_by_cycle
        Also pool won deal values by bins of their created-to-won cycle within each size group
        (:func:`size_cycle_cells`), so a new deal's value follows its simulated cycle; false draws
        a value independent of the cycle.
    history_start
        Only deals created on/after this date inform transitions and holding times.
    residual
        The mass still undecided after the longest observed holding time (the plateau of the
        cumulative incidence): 'no_decision' (default) makes it an explicit *never decided*
        outcome that closes as lost one day after that time; 'redistribute' spreads it over the
        destinations in the odds of closed deals (win rate = won / (won + lost), which assumes
        every open deal will be decided; with no explicit losses that is 1.0).
    observed_from
        First day the export can show an exit: deals created earlier are in it only if they were
        still open then (left truncation). 'auto' takes the earliest won/lost date in the history;
        a date sets it; ``None`` assumes no truncation. Visits that started earlier enter the risk
        sets late (delayed entry); visits that ended before it are dropped.
    conversion_drift
        'none' (default): conversion is constant over creation cohorts. 'auto': fit a trend of the
        logit win probability in creation date (:func:`~salesops_models.pipeline.drift.estimate_conversion_drift`)
        and use it when the data identify it; 'fit': use it whenever it can be fitted
        (``diagnostics['conversion_drift']`` says what was used).

    Returns
    -------
    PipelineCalibration
        With ``diagnostics`` stating the assumption used for the undecided mass, the follow-up
        check, the truncation correction and the censoring-aware win rates, and ``uncertainty``
        (:class:`~salesops_models.pipeline.uncertainty.ParameterUncertainty`).

    Warns
    -----
    CalibrationWarning
        When the follow-up is too short for the incidence to reach its plateau (the share that
        never decides is then not identified and the win rate is a lower bound), when that share
        rests mostly on deals engaged before the export's window (``plateau_late_entry_share``
        above one half), or when ``residual='redistribute'`` meets an export without explicit losses.

    Notes
    -----
    Exits of stage :math:`i` are competing risks: with each visit at risk on
    :math:`(e_v, T_v]` (:math:`e_v` the delayed entry, open visits censored at their age on
    ``as_of``), the Aalen-Johansen estimator gives the cumulative incidence :math:`I_j(t)` of each
    destination :math:`j` (:func:`~salesops_models.pipeline.survival.aalen_johansen`). The atoms
    of the semi-Markov process are its increments :math:`p_{ijk} = \\Delta I_j(t_k)`; the mass
    :math:`1 - \\sum_j I_j(t_{max})` left when the longest observed holding time has passed is the
    never-decided atom (residual 'no_decision'), so :math:`P_{ij} = I_j(t_{max})` and the Markov
    oracle is rebuilt from the atoms. With 'redistribute',
    :math:`P_{ij} = n_{ij} / \\sum_k n_{ik}` over observed exits and :math:`p_{ijk} = P_{ij}\\,
    \\Delta I_j(t_k) / I_j(t_{max})`. A stage never seen to exit moves to the next open stage with
    probability 1 (snapshots know only the stage a deal was engaged in).

    Creation: :math:`\\lambda_r = n_r / \\sum_{w \\in window} s_{m(w)}` deals a week, with
    :math:`s_m` the calendar-month multipliers (ratio to a centred 12-month moving average).
    Quarter-end pull: :math:`\\pi = (s_3 - b_3) / (1 - b_3)`, :math:`s_3` the share of won deals
    closing in a quarter's last month, :math:`b_3` that month's share of the quarter's days.
    """
    if creation_trend not in ("auto", "fit", "none"):
        raise ScenarioError(f"pipeline.creation_trend: got {creation_trend!r}; use 'auto', 'fit' or 'none'.")
    if conversion_drift not in DRIFT_MODES:
        raise ScenarioError(f"pipeline.conversion_drift: got {conversion_drift!r}; use 'auto', 'fit' or 'none'.")
    if residual not in RESIDUAL_MODES:
        raise ScenarioError(
            f"pipeline.residual: got {residual!r}; use 'no_decision' (censoring-aware, the default) or "
            "'redistribute' (closed-deal odds)."
        )
    as_of = pd.Timestamp(as_of)
    states = stages.all_stages
    n_open = len(stages.open_stages)
    index = {s: i for i, s in enumerate(states)}
    opp = opportunities.copy()
    problems = []
    for col in ("opportunity_id", "rep_id", "stage", "status"):
        if col not in opp.columns:
            problems.append(f"missing column '{col}'; map it in the CRM mapping file.")
    if problems:
        raise DataValidationError("opportunities", problems)

    visits = stage_visits(opp, stage_history, stages, as_of)
    window = _observed_from(visits, observed_from, as_of, stages)
    if history_start is not None:
        start = pd.Timestamp(history_start)
        first_entry = visits.groupby("opportunity_id")["entered_date"].transform("min")
        visits = visits[first_entry >= start]
    visits, n_delayed, n_dropped = _delayed_entry(visits, window)
    if visits.empty:
        raise DataValidationError(
            "opportunities",
            [f"no stage visits with dates on or before {as_of.date()}; check created_date/stage_history."],
        )

    # ---- transitions: counts of observed exits ----------------------------------------------------
    exited = visits[visits["next_stage"].notna()]
    counts = np.zeros((len(states), len(states)))
    fi = exited["stage"].map(index).to_numpy()
    ti = exited["next_stage"].map(index).to_numpy()
    np.add.at(counts, (fi, ti), 1.0)
    P = np.zeros_like(counts)
    overall_won = counts[:n_open, index[stages.won]].sum()
    overall_lost = counts[:n_open, index[stages.lost]].sum()
    for i in range(n_open):
        tot = counts[i].sum()
        if tot > 0:
            P[i] = counts[i] / tot
        elif i + 1 < n_open:
            P[i, i + 1] = 1.0
        else:
            w = overall_won / max(overall_won + overall_lost, 1.0)
            P[i, index[stages.won]] = w
            P[i, index[stages.lost]] = 1.0 - w
    P[n_open, n_open] = P[n_open + 1, n_open + 1] = 1.0

    # ---- holding times and exits: Aalen-Johansen per stage ----------------------------------------
    never = n_open + 2
    a_stage, a_state, a_dest, a_days, a_prob = [], [], [], [], []
    kappa = np.full(n_open, np.inf)  # concentration of the split among decided exits
    kappa_undecided = np.full(n_open, np.inf)  # ... of the never-decided share
    unidentified: list[str] = []
    for i, label in enumerate(stages.open_stages):
        v = visits[visits["stage"] == label]
        ex = v[v["next_stage"].notna()]
        if ex.empty:
            for j in np.flatnonzero(P[i] > 0):
                # never seen to exit: an instantaneous pass-through (snapshots) or the company odds
                a_stage.append(i)
                a_state.append(int(j))
                a_dest.append(int(j))
                a_days.append(0)
                a_prob.append(float(P[i, j]))
            continue
        dests = sorted(set(ex["next_stage"].map(index)))
        code = {d: k + 1 for k, d in enumerate(dests)}
        status = v["next_stage"].map(index).map(code).fillna(0).astype(int).to_numpy()
        ci = aalen_johansen(v["days"].to_numpy(float), status, len(dests), v["entry"].to_numpy(float))
        decided = 0.0
        for d in dests:
            cinc = ci.incidence[code[d] - 1]
            inc = np.diff(np.concatenate([[0.0], cinc]))
            total = cinc[-1]
            sel = inc > 0
            if total <= 0 or not sel.any():
                continue
            decided += total
            weight = P[i, d] / total if residual == "redistribute" else 1.0
            for t, m in zip(ci.times[sel], inc[sel], strict=True):
                a_stage.append(i)
                a_state.append(int(d))
                a_dest.append(int(d))
                a_days.append(int(round(t)))
                a_prob.append(float(weight * m))
        kappa[i] = counts[i].sum()
        if residual == "no_decision":
            # the split among decided exits is as certain as the number of exits seen; the undecided
            # share as its Greenwood variance (few visits watched past the last decision: wide)
            kappa_undecided[i] = _concentration(ci)
            if decided < 1.0 - 1e-12:
                a_stage.append(i)
                a_state.append(index[stages.lost])
                a_dest.append(never)
                a_days.append(int(round(ex["days"].max())) + 1)
                a_prob.append(1.0 - decided)
            check = follow_up_check(ci)
            if not check.identified and decided < 1.0 - 1e-12:
                unidentified.append(f"{label} ({check.reason})")
    atoms = pd.DataFrame({"stage": a_stage, "state": a_state, "dest": a_dest, "days": a_days, "prob": a_prob})
    atoms = atoms.groupby(["stage", "days", "state", "dest"], as_index=False)["prob"].sum()
    atoms["prob"] = atoms["prob"] / atoms.groupby("stage")["prob"].transform("sum")
    if residual == "no_decision":
        for i in range(n_open):
            sel = atoms["stage"] == i
            P[i] = 0.0
            np.add.at(P[i], atoms.loc[sel, "state"].to_numpy(int), atoms.loc[sel, "prob"].to_numpy(float))

    # ---- censoring-aware diagnostics ------------------------------------------------------------
    diagnostics: dict[str, float | int | str] = {}
    n_won = int((opp["status"] == WON).sum())
    n_lost = int((opp["status"] == LOST).sum())
    diagnostics["naive_win_rate"] = n_won / max(n_won + n_lost, 1)
    diagnostics["closed_deals"] = n_won + n_lost
    diagnostics["open_deals"] = int((opp["status"] == OPEN).sum())
    diagnostics["explicit_losses"] = int(overall_lost > 0)
    diagnostics["observed_from"] = "" if window is None else str(window.date())
    diagnostics["left_truncated_visits"] = n_delayed
    diagnostics["visits_dropped_before_window"] = n_dropped
    deals = _deal_outcomes(visits, opp, stages)
    diagnostics.update(_competing_risks_from_entry(deals))
    drift = estimate_conversion_drift(deals, as_of, conversion_drift)
    diagnostics.update(drift.summary())
    open_start = deals.loc[deals["status"] == 0, "start"]
    open_created = (
        pd.Timestamp(open_start.min() + (open_start - open_start.min()).mean()).normalize()
        if len(open_start)
        else None
    )
    warn: list[str] = []
    if residual == "no_decision":
        diagnostics["win_rate_assumption"] = (
            "cumulative incidence (Aalen-Johansen; open deals censored, late cohorts entered late); "
            "deals undecided after the longest observed time never close (no_decision)"
        )
        diagnostics["follow_up_identified"] = int(not unidentified)
        late_share = float(diagnostics.get("plateau_late_entry_share", 0.0))
        if late_share > PLATEAU_LATE_ENTRY_LIMIT and diagnostics.get("cif_still_open", 0.0) > 0:
            warn.append(
                f"the share of deals that never close ({diagnostics['cif_still_open']:.3f}) is read mostly from "
                f"deals engaged before the export's window ({late_share:.0%} of the "
                f"{diagnostics['plateau_deals']} deals followed past the longest cycle entered late): it holds "
                "only if those deals behave like today's, and the open pipeline may convert worse than "
                "calibrated. Fix: check the open pipeline's conversion in a backtest "
                "(salesops_models.backtest.decompose_horizon, benchmarks/pipeline_decomposition.py), or "
                "export a history that starts at least one sales cycle before the deals to forecast."
            )
        if unidentified:
            warn.append(
                "follow-up too short to tell deals that never close from deals still to close in "
                f"stage(s) {', '.join(unidentified)}: the calibrated win rate is a lower bound. Fix: export a "
                "longer history (follow-up well beyond the longest sales cycle), export lost deals with "
                "their close dates, or set pipeline.residual: redistribute if every open deal will be decided."
            )
    else:
        diagnostics["win_rate_assumption"] = (
            "closed-deal odds (redistribute): every open deal is assumed to be decided, won/(won+lost)"
        )
        diagnostics["follow_up_identified"] = 1
        if overall_lost == 0 and diagnostics["open_deals"] > 0:
            warn.append(
                "the export has no lost deals: with residual 'redistribute' the win rate of closed deals is "
                "1.0 and every open deal is forecast to be won. Fix: set pipeline.residual: no_decision (the "
                "default), or export lost deals with their close dates."
            )
    for msg in warn:
        log.warning("pipeline calibration: %s", msg)
        warnings.warn(msg, CalibrationWarning, stacklevel=2)
    diagnostics["calibration_warnings"] = " | ".join(warn)

    entry_counts = (
        visits.sort_values("entered_date").groupby("opportunity_id")["stage"].first().value_counts()
    )
    entry_stage = index[entry_counts.index[0]] if len(entry_counts) else 0

    # ---- creation rates and seasonality -------------------------------------------------------
    rep_ids = _rep_ids(reps, opp)
    created = opp.loc[
        opp["created_date"].notna() & (opp["created_date"] <= as_of), ["rep_id", "created_date"]
    ]
    if window is not None:
        # deals created before the window are in the export only if still open then: undercounted
        created = created[created["created_date"] >= window]
    first_created = window if window is not None else created["created_date"].min()
    monthly = _monthly_creation(
        created["created_date"], pd.Timestamp(first_created) if pd.notna(first_created) else as_of, as_of
    )
    season = _season(monthly, seasonality)
    trend, trend_se = _creation_trend(monthly, season, creation_trend)
    rate_start = as_of - pd.Timedelta(weeks=rate_window_weeks)
    if window is not None and rate_start < window - pd.Timedelta(days=1):
        rate_start = window - pd.Timedelta(days=1)
    rate_reference = rate_start + (as_of - rate_start) / 2

    def exposure(start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
        # with a trend, a block's exposure counts at the creation level of its middle
        grow = np.exp(trend * ((start + (end - start) / 2) - rate_reference).days / 365.25)
        return _exposure_weeks(reps, rep_ids, start, end, season) * grow

    rate_counts = _counts_in(created, rep_ids, rate_start, as_of)
    rate_exposure = _exposure_weeks(reps, rep_ids, rate_start, as_of, season)
    with np.errstate(divide="ignore", invalid="ignore"):
        weekly_rate = np.where(rate_exposure > 0, rate_counts / rate_exposure, 0.0)

    # ---- quarter-end pull ---------------------------------------------------------------------
    won_close = opp.loc[
        (opp["status"] == WON) & opp["close_date"].notna() & (opp["close_date"] <= as_of), "close_date"
    ]
    pull = _quarter_end_pull(won_close) if quarter_end_pull is None else float(quarter_end_pull)

    # ---- deal sizes ---------------------------------------------------------------------------
    groups, pool, offset, count, mix = _sizes(opp, rep_ids, as_of, size_by, rate_window_weeks)
    # one bin is no conditioning: every group draws from its whole pool (the switch off)
    cycle_edges, pool, cell_offset, cell_count = size_cycle_cells(
        opp, as_of, size_by, groups, pool, bins=None if size_by_cycle else 1
    )
    # cycle bins per size group, e.g. "Core:4 Plus:0 *:4" (0: value drawn independent of the cycle)
    diagnostics["size_cycle_bins"] = " ".join(
        f"{g}:{int((cell_count[k] > 0).sum())}" for k, g in enumerate(groups)
    )

    # ---- parameter uncertainty and over-dispersion ----------------------------------------------
    first = window if window is not None else created["created_date"].min()
    uncertainty = estimate_uncertainty(
        exit_concentration=kappa,
        undecided_concentration=kappa_undecided,
        transition_matrix=P,
        n_open=n_open,
        entry_stage=entry_stage,
        rep_ids=rep_ids,
        created=created,
        exposure=exposure,
        rate_counts=rate_counts,
        rate_weeks=(as_of - rate_start).days / 7.0,
        deals=deals,
        first_date=pd.Timestamp(first) if pd.notna(first) else as_of,
        as_of=as_of,
    )

    return PipelineCalibration(
        states=tuple(states),
        n_open=n_open,
        as_of=as_of,
        transition_counts=counts,
        transition_matrix=P,
        atom_stage=atoms["stage"].to_numpy(np.int64),
        atom_state=atoms["state"].to_numpy(np.int64),
        atom_days=atoms["days"].to_numpy(np.int64),
        atom_prob=atoms["prob"].to_numpy(np.float64),
        entry_stage=entry_stage,
        rep_ids=rep_ids,
        weekly_rate=weekly_rate,
        season=season,
        quarter_end_pull=pull,
        size_by=size_by,
        size_groups=groups,
        size_pool=pool,
        size_offset=offset,
        size_count=count,
        rep_group_mix=mix,
        diagnostics=diagnostics,
        atom_dest=atoms["dest"].to_numpy(np.int64),
        uncertainty=uncertainty,
        observed_from=window,
        creation_trend=trend,
        creation_trend_se=trend_se,
        rate_reference=rate_reference,
        cycle_edges=cycle_edges,
        cell_offset=cell_offset,
        cell_count=cell_count,
        drift=drift,
        open_created=open_created,
    )


def _concentration(ci: CumulativeIncidence) -> float:
    """Beta concentration of the undecided share :math:`\\nu = S(t_{max})`: :math:`\\nu(1-\\nu)/\\mathrm{se}^2`
    with the Greenwood standard error (``inf`` when the share is 0 or has no variance)."""
    if not ci.survival.size:
        return np.inf
    nu, se = float(ci.survival[-1]), float(ci.survival_se[-1])
    return nu * (1 - nu) / se**2 if 0 < nu < 1 and se > 0 else np.inf


def _observed_from(
    visits: pd.DataFrame, observed_from: pd.Timestamp | str | None, as_of: pd.Timestamp, stages: StageSet
) -> pd.Timestamp | None:
    """The left-truncation point: the earliest won/lost date ('auto'), a given date, or ``None``.

    Exports select deals by their outcome (a deal that closed before the export's window is missing,
    whatever stages it passed earlier), so the window starts at the earliest close, not at the earliest
    stage change: stage changes before it belong to deals that were still open then.
    """
    if observed_from is None or (isinstance(observed_from, str) and observed_from.lower() == "none"):
        return None
    if isinstance(observed_from, str) and observed_from.lower() == "auto":
        ex = visits[visits["next_stage"].isin([stages.won, stages.lost])]
        if ex.empty:
            return None
        return pd.Timestamp((ex["entered_date"] + pd.to_timedelta(ex["days"], unit="D")).min()).normalize()
    try:
        window = pd.Timestamp(observed_from)
    except (ValueError, TypeError):
        raise ScenarioError(
            f"pipeline.observed_from: got {observed_from!r}; use 'auto', 'none' or an ISO date (YYYY-MM-DD)."
        ) from None
    if window > as_of:
        raise ScenarioError(
            f"pipeline.observed_from {window.date()} is after the snapshot date {as_of.date()}; use an earlier "
            "date, 'auto' or 'none'."
        )
    return window


def _delayed_entry(visits: pd.DataFrame, window: pd.Timestamp | None) -> tuple[pd.DataFrame, int, int]:
    """Add ``entry`` (delayed entry [days], -1 for none) and drop visits that ended before ``window``.

    A visit that started before the window is in the export only because its deal had not closed by
    the window: it was known to be still running on day ``window - entered - 1`` of the visit.
    """
    v = visits.copy()
    if window is None:
        v["entry"] = -1
        return v, 0, 0
    lead = (window - v["entered_date"]).dt.days
    end = v["entered_date"] + pd.to_timedelta(v["days"], unit="D")
    ended_before = v["next_stage"].notna() & (end < window)
    v = v[~ended_before].copy()
    lead = lead[~ended_before]
    v["entry"] = np.where(lead > 0, lead - 1, -1).astype(np.int64)
    return v, int((lead > 0).sum()), int(ended_before.sum())


def _deal_outcomes(visits: pd.DataFrame, opp: pd.DataFrame, stages: StageSet) -> pd.DataFrame:
    """One row per deal from its first visit: ``start, time, status (1 won, 2 lost, 0 open), entry, rep_id``."""
    v = visits.sort_values(["opportunity_id", "entered_date"])
    g = v.groupby("opportunity_id", sort=False)
    d = pd.DataFrame(
        {
            "start": g["entered_date"].first(),
            "entry": g["entry"].first(),
            "end_stage": g["next_stage"].last(),
            "last_entered": g["entered_date"].last(),
            "last_days": g["days"].last(),
        }
    )
    d["time"] = (d["last_entered"] - d["start"]).dt.days + d["last_days"]
    d["status"] = d["end_stage"].map({stages.won: 1, stages.lost: 2}).fillna(0).astype(int)
    # a deal that reached its first visit late has its delayed entry counted from its start
    d["entry"] = d["entry"].astype(np.int64)
    rep = opp.set_index(opp["opportunity_id"].astype(str))["rep_id"].astype(str)
    d["rep_id"] = rep.reindex(d.index.astype(str)).to_numpy()
    return d[["start", "time", "status", "entry", "rep_id"]].reset_index(drop=True)


def _competing_risks_from_entry(deals: pd.DataFrame) -> dict[str, float]:
    """Cumulative incidence of won and lost from first entry, open deals censored (diagnostic)."""
    if not (deals["status"] == 1).any():
        return {}
    ci = aalen_johansen(
        deals["time"].to_numpy(float), deals["status"].to_numpy(np.int64), 2, deals["entry"].to_numpy(float)
    )
    won, lost = float(ci.final[0]), float(ci.final[1])
    check = follow_up_check(ci)
    longest = float(deals.loc[deals["status"] > 0, "time"].max())
    # the never-decided share is read off the deals followed past the longest decision; which of
    # them entered late (engaged before the export's window) says on whose behaviour it rests
    watched = deals["time"] >= longest
    return {
        "cif_won_by_max_time": won,
        "cif_won_se": float(ci.final_se[0]),
        "cif_lost_by_max_time": lost,
        "cif_still_open": max(0.0, 1.0 - won - lost),
        "cif_max_days": longest,
        "follow_up_days": check.follow_up_days,
        "late_decision_share": check.late_share,
        "plateau_deals": int(watched.sum()),
        "plateau_late_entry_share": float((deals.loc[watched, "entry"] >= 0).mean()) if watched.any() else 0.0,
    }


def _rep_ids(reps: pd.DataFrame, opp: pd.DataFrame) -> np.ndarray:
    ids = list(reps["rep_id"].astype(str)) if "rep_id" in reps else []
    extra = sorted(set(opp["rep_id"].astype(str)) - set(ids))
    return np.array(ids + extra, dtype=object)


def _monthly_creation(created: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Deals created in each calendar month lying wholly inside ``[start, end]`` [deals/month]."""
    if created.empty:
        return pd.Series(dtype=float)
    months = pd.period_range(start.to_period("M"), end.to_period("M"), freq="M")
    full = [
        m for m in months if m.start_time >= start.normalize() and m.end_time.normalize() <= end.normalize()
    ]
    counts = created.dt.to_period("M").value_counts()
    return counts.reindex(pd.PeriodIndex(full, freq="M"), fill_value=0).astype(float).sort_index()


def _season(monthly: pd.Series, mode: str) -> np.ndarray:
    """Calendar-month creation multipliers (mean 1) by ratio to a centred 12-month moving average."""
    flat = np.ones(12)
    if mode == "none" or monthly.empty:
        return flat
    if mode == "auto" and len(monthly) < 24:
        return flat
    if len(monthly) < 13:
        log.warning("seasonality='month' needs at least 13 full months of creation dates; using flat rates")
        return flat
    ma = monthly.rolling(12, center=True).mean().rolling(2, center=True).mean().shift(-1)
    ratio = (monthly / ma).dropna()
    ratio = ratio[np.isfinite(ratio)]
    by_month = ratio.groupby(ratio.index.month).mean().reindex(range(1, 13))
    if by_month.isna().any():
        by_month = by_month.fillna(1.0)
    s = by_month.to_numpy(float)
    return s / s.mean()


def _creation_trend(monthly: pd.Series, season: np.ndarray, mode: str) -> tuple[float, float]:
    """Growth of deal creation [log per year] and its standard error, from de-seasonalised months.

    Notes
    -----
    Quasi-Poisson regression :math:`\\log E[n_m] = \\alpha + g\\, t_m + \\log(s_{month(m)} d_m)` over the full
    months of the observed window (:math:`t_m` in years, :math:`d_m` the month's days); the standard
    error is scaled by the Pearson dispersion. 'auto' fits it with at least 24 months, like the
    seasonality, so that one season cannot pass for a trend.
    """
    if mode == "none" or (mode == "auto" and len(monthly) < 24) or len(monthly) < 6 or monthly.sum() <= 0:
        return 0.0, 0.0
    import statsmodels.api as sm

    t = np.asarray([(m.start_time - monthly.index[0].start_time).days / 365.25 for m in monthly.index])
    offset = np.log(season[monthly.index.month - 1] * monthly.index.days_in_month.to_numpy(float))
    X = sm.add_constant(t)
    fit = sm.GLM(monthly.to_numpy(float), X, family=sm.families.Poisson(), offset=offset).fit(scale="X2")
    return float(fit.params[1]), float(fit.bse[1])


def _counts_in(
    created: pd.DataFrame, rep_ids: np.ndarray, start: pd.Timestamp, end: pd.Timestamp
) -> np.ndarray:
    """Deals created in ``(start, end]`` per rep [deals]."""
    sel = created[(created["created_date"] > start) & (created["created_date"] <= end)]
    return sel["rep_id"].astype(str).value_counts().reindex(rep_ids, fill_value=0).to_numpy(float)


def _exposure_weeks(
    reps: pd.DataFrame, rep_ids: np.ndarray, start: pd.Timestamp, end: pd.Timestamp, season: np.ndarray
) -> np.ndarray:
    """Seasonal exposure of each rep in ``(start, end]`` [weeks]: days weighted by the month's
    creation multiplier; a rep hired inside the interval counts from his hire date."""
    days = pd.date_range(start + pd.Timedelta(days=1), end, freq="D")
    day_weight = season[days.month.to_numpy() - 1] / 7.0
    cum = np.concatenate([[0.0], np.cumsum(day_weight)])
    exposure = np.full(len(rep_ids), cum[-1])
    if "hire_date" in reps:
        hire = reps.set_index(reps["rep_id"].astype(str))["hire_date"].reindex(rep_ids)
        hire = pd.to_datetime(hire)
        later = hire.notna() & (hire > start)
        if later.any():
            k = np.clip(((hire[later] - start).dt.days - 1).to_numpy(int), 0, len(days))
            exposure[later.to_numpy()] = cum[-1] - cum[k]
    return exposure


def _quarter_end_pull(won_close: pd.Series) -> float:
    if won_close.empty:
        return 0.0
    lo, hi = won_close.min(), won_close.max()
    q = won_close.dt.to_period("Q")
    qs = sorted(set(q))
    complete = [p for p in qs if p.start_time >= lo.normalize() and p.end_time.normalize() <= hi]
    if not complete:
        return 0.0
    sel = q.isin(complete)
    month_in_q = (won_close[sel].dt.month - 1) % 3
    s3 = float((month_in_q == 2).mean())
    days_m3 = sum(
        ((p.end_time.normalize() - (p.end_time.normalize().replace(day=1))).days + 1) for p in complete
    )
    days_q = sum(((p.end_time.normalize() - p.start_time.normalize()).days + 1) for p in complete)
    b3 = days_m3 / days_q
    return float(max(0.0, (s3 - b3) / (1.0 - b3)))


def _sizes(
    opp: pd.DataFrame, rep_ids: np.ndarray, as_of: pd.Timestamp, size_by: str, window_weeks: int
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    won = opp[(opp["status"] == WON) & opp["amount"].notna() & (opp["close_date"] <= as_of)]
    if won.empty:
        raise DataValidationError(
            "opportunities",
            [
                f"no won deals with an amount closed on or before {as_of.date()}; deal sizes cannot be calibrated."
            ],
        )
    labels: list[str] = []
    chunks: list[np.ndarray] = []
    if size_by != "none" and size_by in opp.columns:
        g = won[size_by].astype("string")
        for label, vals in won["amount"].groupby(g, dropna=True):
            if len(vals) >= MIN_GROUP_WON:
                labels.append(str(label))
                chunks.append(np.sort(vals.to_numpy(float)))
    labels.append(POOLED)
    chunks.append(np.sort(won["amount"].to_numpy(float)))
    count = np.array([len(c) for c in chunks], dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    pool = np.concatenate(chunks)
    # each rep's mix of size groups among the deals he won over the last year (the size of a *won*
    # deal is drawn: the chain does not depend on the group, so the won mix is the right one),
    # shrunk to the company mix with one pseudo-deal so a rep with no wins gets the company mix
    gi = {label: k for k, label in enumerate(labels)}
    mix = np.zeros((len(rep_ids), len(labels)))
    start = as_of - pd.Timedelta(weeks=max(window_weeks, 52))
    recent = won[won["close_date"] > start]
    if recent.empty:
        recent = won
    if size_by != "none" and size_by in opp.columns:
        grp = (
            recent[size_by]
            .astype("string")
            .map(lambda s: gi.get(s, gi[POOLED]) if pd.notna(s) else gi[POOLED])
        )
    else:
        grp = pd.Series(gi[POOLED], index=recent.index)
    ridx = {r: k for k, r in enumerate(rep_ids)}
    ri = recent["rep_id"].astype(str).map(ridx).to_numpy()
    np.add.at(mix, (ri, grp.to_numpy(int)), 1.0)
    company = mix.sum(axis=0)
    company = company / company.sum() if company.sum() > 0 else np.eye(len(labels))[-1]
    mix = (mix + company) / (mix.sum(axis=1, keepdims=True) + 1.0)
    return tuple(labels), pool, offset, count, mix


def size_cycle_cells(
    opp: pd.DataFrame,
    as_of: pd.Timestamp,
    size_by: str,
    groups: tuple[str, ...],
    pool: np.ndarray,
    bins: int | None = None,
    min_cell: int = MIN_CELL_WON,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Won deal values by size group and created-to-won cycle bin, appended to the size pool.

    Parameters
    ----------
    opp
        Opportunities (won deals with an amount, a created and a close date on or before ``as_of``
        are used: nothing after the snapshot).
    as_of
        Snapshot date.
    size_by, groups
        The size grouping and its labels (:func:`_sizes`; the last label pools every won deal).
    pool
        The size pool of the groups [currency].
    bins
        Most cycle bins per group (quantiles of the group's won cycles); ``None``: no cap beyond
        the rule below; 1: no cells (every value independent of the cycle).
    min_cell
        The fewest won deals every bin of a group needs.

    Returns
    -------
    tuple
        ``(edges, pool, cell_offset, cell_count)``: each group's interior bin edges [days]
        (groups x ``B - 1``, padded with +inf, ``B`` the most bins of any group), the pool with the
        cells appended, and each cell's offset and count in it (groups x ``B``; a group whose row
        counts 0 draws from its whole pool).

    Notes
    -----
    The cells estimate the conditional distribution of a won deal's value given its group and its
    cycle length, :math:`F(v \mid g, b)`, non-parametrically (no functional form for how value
    grows with the cycle). Selection by the export (deals won by ``as_of``: recent cohorts only
    with short cycles; left truncation: old cohorts only with long ones) acts on the creation date
    and the cycle, not on the value given the cycle, so the conditional is estimated without bias
    from the won deals known on ``as_of`` even though the cycles themselves are censored; the
    value's marginal in the simulation then follows the simulated cycles.

    A group of :math:`n` won deals gets :math:`k` bins, the largest
    :math:`k \le \min(\lfloor n^{1/3} \rfloor, n / \text{min\_cell}, \text{bins})` whose every
    quantile bin holds at least ``min_cell`` won deals (ties in the cycle can make bins unequal),
    and none when even two bins cannot. :math:`n^{1/3}` bins is the rate at which a histogram's
    squared bias (the value varies inside a bin) and variance (fewer deals per bin) balance: bins
    shrink as history grows, but slowly, so a small export gets a few wide bins (80 won deals:
    quartiles) and a large one finer bins. Either all of a group's draws are conditional or none
    are, so a group's values are never mixed from a conditional cell and a pool that contains that
    cell's deals again.
    """
    n_groups = len(groups)
    cap = len(opp) if bins is None else bins
    won = opp[
        (opp["status"] == WON)
        & opp["amount"].notna()
        & opp["created_date"].notna()
        & opp["close_date"].notna()
        & (opp["close_date"] <= as_of)
    ]
    most = max(1, min(cap, int(np.cbrt(len(won))), len(won) // min_cell))
    edges = np.full((n_groups, most - 1), np.inf)
    offset = np.zeros((n_groups, most), np.int64)
    count = np.zeros((n_groups, most), np.int64)
    if most < 2:
        return edges, pool, offset, count
    # a close recorded before the creation (a data-entry slip) is a cycle of 0 days
    cycle = (won["close_date"] - won["created_date"]).dt.days.clip(lower=0).to_numpy(float)
    amount = won["amount"].to_numpy(float)
    label = won[size_by].astype("string") if size_by != "none" and size_by in won.columns else None
    chunks = [pool]
    end = pool.size
    for k, group in enumerate(groups):
        if group == POOLED or label is None:
            member = np.ones(len(won), bool)
        else:
            member = (label == group).fillna(False).to_numpy(bool)
        c, a = cycle[member], amount[member]
        for n_bins in range(min(most, int(np.cbrt(c.size)), c.size // min_cell), 1, -1):
            e = np.unique(np.quantile(c, np.arange(1, n_bins) / n_bins))
            b = np.searchsorted(e, c, side="right")
            sizes = np.bincount(b, minlength=e.size + 1)
            if e.size == n_bins - 1 and sizes.min() >= min_cell:
                edges[k, : e.size] = e
                for j in range(n_bins):
                    vals = np.sort(a[b == j])
                    offset[k, j], count[k, j] = end, vals.size
                    chunks.append(vals)
                    end += vals.size
                break
    return edges, np.concatenate(chunks), offset, count


def size_group_of(calibration: PipelineCalibration, values: pd.Series) -> np.ndarray:
    """Size-group index of each value of the ``size_by`` column (unknown values: the pooled group)."""
    gi = {label: k for k, label in enumerate(calibration.size_groups)}
    pooled = gi[POOLED]
    return np.array([gi.get(str(v), pooled) if pd.notna(v) else pooled for v in values], dtype=np.int64)
