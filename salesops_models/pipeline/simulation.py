"""Vectorised Monte Carlo of the pipeline: trials x deals, in seeded blocks of trials.

Each trial plays today's open pipeline and the deals created during the horizon through the
calibrated semi-Markov process (destination class, then holding time, from one uniform), then sums
the won values by rep and period. In the calibrated mode every trial first draws its own parameters
(:mod:`~salesops_models.pipeline.uncertainty`); in the point mode all trials share the point
calibration. Trials come in fixed-size blocks; block ``b`` draws its Monte Carlo from
``SeedSequence(entropy, spawn_key=(*key, b))`` and its trials' parameters from
``spawn_key=(*key, b, 1)``, so the result does not depend on how blocks are grouped into chunks,
processes or Dask tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from salesops_models.data.company import StageSet
from salesops_models.data.schema import OPEN, WON
from salesops_models.errors import SalesopsError
from salesops_models.pipeline import _kernels
from salesops_models.pipeline.calibration import PipelineCalibration, size_group_of, stage_visits
from salesops_models.pipeline.uncertainty import (
    SHOCK_WEEKS,
    BlockParameters,
    UncertaintyInputs,
    bootstrap_position,
    draw_block_parameters,
    gamma_shape,
    point_parameters,
    progress_mask,
    tilt_scale,
)

log = logging.getLogger(__name__)

GAP = 2.0  # stage i's cumulative atom masses live in [GAP*i, GAP*i + 1]: no rounding across stages


# --------------------------------------------------------------------------------------------
# the open pipeline
# --------------------------------------------------------------------------------------------


def open_pipeline(
    calibration: PipelineCalibration,
    opportunities: pd.DataFrame,
    stage_history: pd.DataFrame,
    stages: StageSet,
    *,
    use_open_amounts: bool = True,
) -> pd.DataFrame:
    """The deals open on ``calibration.as_of`` with what the simulation needs.

    Returns
    -------
    pandas.DataFrame
        ``opportunity_id, rep_id, stage, age_days, age_known, amount, size_group, p_win_fresh,
        p_win_age_aware, stale``. ``age_days`` is the time spent in the current stage [days] (0 when
        the history has no date for it: ``age_known`` false). ``amount`` is NaN when the value must
        be drawn. ``p_win_*`` are exact win probabilities from the absorbing chain.
    """
    from salesops_models.pipeline.markov import absorbing_chain

    cal = calibration
    opp = opportunities[opportunities["status"] == OPEN].copy()
    opp = opp[opp["stage"].isin(stages.open_stages)]
    visits = stage_visits(opportunities, stage_history, stages, cal.as_of)
    cur = visits[visits["next_stage"].isna()].drop_duplicates("opportunity_id", keep="last")
    cur = cur.set_index("opportunity_id")
    opp = opp.join(cur[["stage", "days"]].rename(columns={"stage": "visit_stage"}), on="opportunity_id")
    known = opp["days"].notna() & (opp["visit_stage"] == opp["stage"])
    age = opp["days"].where(known, 0).fillna(0).astype("int64")
    amount = opp["amount"].astype(float) if use_open_amounts else pd.Series(np.nan, index=opp.index)
    amount = amount.where(amount > 0)
    group_col = opp[cal.size_by] if cal.size_by in opp.columns else pd.Series(pd.NA, index=opp.index)
    stage_idx = opp["stage"].map({s: i for i, s in enumerate(cal.states)}).to_numpy(np.int64)
    chain = absorbing_chain(cal.transition_matrix, cal.n_open)
    p_fresh = chain.win_probability[stage_idx]
    p_age, stale = age_aware_win_probability(cal, stage_idx, age.to_numpy(np.int64))
    return pd.DataFrame(
        {
            "opportunity_id": opp["opportunity_id"].astype(str).to_numpy(),
            "rep_id": opp["rep_id"].astype(str).to_numpy(),
            "stage": opp["stage"].astype(str).to_numpy(),
            "age_days": age.to_numpy(),
            "age_known": known.to_numpy(bool),
            "amount": amount.to_numpy(float),
            "size_group": size_group_of(cal, group_col),
            "p_win_fresh": p_fresh,
            "p_win_age_aware": p_age,
            "stale": stale,
        }
    )


def age_aware_win_probability(
    calibration: PipelineCalibration, stage: np.ndarray, age: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact P(win | stage, age) and the stale flag of open deals.

    Notes
    -----
    With atoms :math:`(j_k, t_k, p_k)` of stage :math:`i`,
    :math:`P(\\text{win} \\mid i, a) = \\sum_{t_k > a} p_k B_{j_k,\\text{won}} / \\sum_{t_k > a} p_k`,
    :math:`B` the absorption probabilities (1 for won, 0 for lost). A deal older than every atom
    of its stage is stale (its row is NaN here; the stale policy decides).
    """
    from salesops_models.pipeline.markov import absorbing_chain

    cal = calibration
    chain = absorbing_chain(cal.transition_matrix, cal.n_open)
    b_won = np.concatenate([chain.win_probability, [1.0, 0.0]])
    p = np.full(len(stage), np.nan)
    stale = np.zeros(len(stage), dtype=bool)
    for i in range(cal.n_open):
        sel = np.flatnonzero(stage == i)
        if not sel.size:
            continue
        at = cal.atom_stage == i
        days, prob, nxt = cal.atom_days[at], cal.atom_prob[at], cal.atom_state[at]
        later = (days[None, :] > age[sel, None]) | (age[sel, None] <= 0)
        mass = later @ prob
        win = later @ (prob * b_won[nxt])
        with np.errstate(invalid="ignore", divide="ignore"):
            p[sel] = np.where(mass > 0, win / mass, np.nan)
        stale[sel] = mass <= 0
    return p, stale


# --------------------------------------------------------------------------------------------
# compiled arrays (picklable, what a Dask task receives)
# --------------------------------------------------------------------------------------------

UNCERTAINTY_MODES = ("calibrated", "point")
EXIT_WIDTHS = (2, 4, 8)  # exit tables are padded to the smallest width that holds every stage's exits


@dataclass(frozen=True)
class SimulationInputs:
    """Plain arrays of one simulation: the calibrated process, the open deals, the horizon.

    Days are counted from ``as_of`` (day 0); an event on day ``t`` with ``1 <= t <= horizon_days``
    falls in period ``period_of_day[t]`` (-1: before the first period).

    Two layouts of the same holding-time atoms exist. ``atom_*`` (stage ``i``'s cumulative masses
    in ``[GAP*i, GAP*i + 1]``, ``deal_lo``/``deal_span``) serves the simpy capacity model. The
    vectorised run draws a destination class first (from per-trial exit probabilities
    ``dest_prob``, tilted by conversion shocks) and then the holding time from that destination's
    conditional atoms: segment ``seg_id[i, j]`` has its cumulative masses in
    ``[GAP*s, GAP*s + 1]`` of ``seg_cum``; ``deal_seg_lo[d, j]`` is the conditional mass already
    ruled out by deal ``d``'s age and ``deal_seg_surv = 1 - deal_seg_lo`` (0 off the support).
    The kernels walk each stage's exits with mass, padded to ``exit_width`` per stage:
    ``pad_dest[i, q]`` (``pad_valid`` false beyond the stage's exits), ``pad_succ``, ``pad_seg``, and
    per deal ``deal_pad_lo``/``deal_pad_surv`` (zero survival on padding).
    ``draw`` says which the run uses: 'segment' (per-trial parameters) or 'stage' (the point
    calibration: one lookup per visit, as fast as before parameter uncertainty existed; same
    distribution, other numbers).
    """

    n_open: int
    n_reps: int
    atom_cum: np.ndarray
    atom_next: np.ndarray
    atom_days: np.ndarray
    deal_lo: np.ndarray
    deal_span: np.ndarray
    deal_age: np.ndarray
    deal_rep: np.ndarray
    deal_amount: np.ndarray
    deal_group: np.ndarray
    size_pool: np.ndarray
    size_offset: np.ndarray
    size_count: np.ndarray
    horizon_days: int | None
    period_of_day: np.ndarray
    n_periods: int
    pull: float
    pull_start: np.ndarray
    pull_len: np.ndarray
    new_rate: np.ndarray
    week_start: np.ndarray
    week_len: np.ndarray
    mix_cum: np.ndarray
    mix_rows: np.ndarray
    n_groups: int
    entry_stage: int
    guide: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))
    guide_scale: float = 1.0
    guide_passes: int = 0
    max_steps: int = 200
    n_dest: int = 0
    dest_prob: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    success: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    seg_id: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    seg_cum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seg_next: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    seg_days: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    seg_guide: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))
    seg_guide_scale: float = 1.0
    seg_guide_passes: int = 0
    deal_stage: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    deal_seg_lo: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    deal_seg_surv: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    exit_width: int = 1
    pad_dest: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.int64))
    pad_valid: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), bool))
    pad_succ: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), bool))
    pad_seg: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.int64))
    deal_pad_lo: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    deal_pad_surv: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    week_quarter: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    week_years: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_quarters: int = 0
    uncertainty: UncertaintyInputs | None = None
    draw: str = "stage"
    cycle_edges: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    cell_offset: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    cell_count: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    cohort_odds: np.ndarray | None = None

    @property
    def n_cohorts(self) -> int:
        """Conversion cohorts: the open deals, then new deals by horizon quarter."""
        return 1 + self.n_quarters


def compile_inputs(
    calibration: PipelineCalibration,
    deals: pd.DataFrame,
    period_edges: Sequence[pd.Timestamp] | None,
    *,
    creation_scale: np.ndarray | None = None,
    age_aware: bool = True,
    stale_policy: str = "lost",
    new_deals: bool = True,
    max_steps: int = 200,
    uncertainty: str = "calibrated",
) -> SimulationInputs:
    """Turn a calibration, an open pipeline and period edges into :class:`SimulationInputs`.

    Parameters
    ----------
    calibration
        The calibrated process.
    deals
        Open deals as returned by :func:`open_pipeline`.
    period_edges
        Increasing dates ``e_0 < e_1 < ... < e_P``; period ``k`` is ``[e_k, e_{k+1})``. The horizon
        ends the day before ``e_P``. ``None``: no horizon (every deal runs to won or lost; no new
        deals), the setting of the Markov-chain oracle.
    creation_scale
        Multiplier of each rep's creation rate (``calibration.rep_ids`` order) [-].
    age_aware
        Condition the first step of an open deal on its age in stage.
    stale_policy
        'lost' drops deals older than every observed exit of their stage; 'fresh' restarts them.
    new_deals
        Create deals during the horizon at the calibrated rates.
    uncertainty
        'calibrated': every trial draws its own parameters and shocks
        (:mod:`~salesops_models.pipeline.uncertainty`); 'point': every trial uses the point
        calibration (Monte Carlo noise only; the setting of the Markov oracle tests).
    """
    if uncertainty not in UNCERTAINTY_MODES:
        raise SalesopsError(f"pipeline.uncertainty: got {uncertainty!r}; use 'calibrated' or 'point'.")
    cal = calibration
    # ---- atoms, by stage (capacity model) and by destination segment (vectorised run) ---------------
    order = np.lexsort((cal.atom_days, cal.atom_stage))
    a_stage, a_days, a_next, a_prob = (
        cal.atom_stage[order],
        cal.atom_days[order],
        cal.atom_state[order],
        cal.atom_prob[order],
    )
    cum = np.empty(len(a_prob))
    for i in range(cal.n_open):
        sel = np.flatnonzero(a_stage == i)
        if not sel.size:
            raise SalesopsError(f"calibration: open stage {cal.states[i]!r} has no holding-time atoms.")
        c = np.cumsum(a_prob[sel])
        c = c / c[-1]
        c[-1] = 1.0
        cum[sel] = GAP * i + c
    n_dest = cal.n_dest
    assert cal.atom_dest is not None
    dest_prob = cal.dest_prob()
    dest_prob = dest_prob / dest_prob.sum(axis=1, keepdims=True)
    seg_order = np.lexsort((cal.atom_days, cal.atom_dest, cal.atom_stage))
    s_stage, s_dest = cal.atom_stage[seg_order], cal.atom_dest[seg_order]
    s_days, s_next, s_prob = cal.atom_days[seg_order], cal.atom_state[seg_order], cal.atom_prob[seg_order]
    seg_key = s_stage * n_dest + s_dest
    keys = np.unique(seg_key)
    seg_id = np.full((cal.n_open, n_dest), -1, np.int32)
    seg_id.ravel()[keys] = np.arange(keys.size, dtype=np.int32)
    seg_cum = np.empty(len(s_prob))
    for k, key in enumerate(keys):
        sel = np.flatnonzero(seg_key == key)
        c = np.cumsum(s_prob[sel])
        c = c / c[-1]
        c[-1] = 1.0
        seg_cum[sel] = GAP * k + c
    # ---- deals ------------------------------------------------------------------------------------
    ridx = {r: k for k, r in enumerate(cal.rep_ids)}
    missing = sorted(set(deals["rep_id"]) - set(ridx))
    if missing:
        raise SalesopsError(
            f"open deals: rep_id(s) {missing[:5]} are not among the calibrated reps; add them to the reps table."
        )
    stage = deals["stage"].map({s: i for i, s in enumerate(cal.states)}).to_numpy(np.int64)
    age = deals["age_days"].to_numpy(np.int64) if age_aware else np.zeros(len(deals), np.int64)
    lo = np.zeros(len(deals))
    seg_lo = np.ones((len(deals), n_dest))
    for i in range(cal.n_open):
        sel = np.flatnonzero(stage == i)
        if not sel.size:
            continue
        at = np.flatnonzero(a_stage == i)
        # mass of atoms with holding time <= age: those outcomes are already ruled out
        # (age 0, or unknown: the deal has just entered; nothing is ruled out)
        k = np.where(age[sel] > 0, np.searchsorted(a_days[at], age[sel], side="right"), 0)
        base = np.concatenate([[0.0], cum[at] - GAP * i])
        lo[sel] = base[k]
        for j in range(n_dest):
            s = seg_id[i, j]
            if s < 0:
                continue
            at_s = np.flatnonzero((s_stage == i) & (s_dest == j))
            k = np.where(age[sel] > 0, np.searchsorted(s_days[at_s], age[sel], side="right"), 0)
            base = np.concatenate([[0.0], seg_cum[at_s] - GAP * s])
            seg_lo[sel, j] = base[k]
    stale = lo >= 1.0 - 1e-12
    if stale.any():
        if stale_policy == "lost":
            log.info(
                "%d open deal(s) older than every observed exit of their stage: counted lost", stale.sum()
            )
        else:
            lo[stale], age[stale] = 0.0, 0
            seg_lo[stale] = np.where(seg_id[stage[stale]] >= 0, 0.0, 1.0)
    keep = ~stale if stale_policy == "lost" else np.ones(len(deals), bool)
    lo_abs = GAP * stage + lo
    span = 1.0 - lo
    seg_surv = 1.0 - seg_lo
    # ---- horizon ------------------------------------------------------------------------------
    as_of = pd.Timestamp(cal.as_of).normalize()
    if period_edges is None:
        horizon = None
        period_of_day = np.zeros(1, np.int64)
        n_periods = 1
        pull_start = pull_len = np.zeros(1, np.int64)
    else:
        edges = pd.DatetimeIndex(pd.to_datetime(list(period_edges))).normalize()
        if len(edges) < 2 or not edges.is_monotonic_increasing or edges[-1] <= as_of:
            raise SalesopsError(
                f"period_edges {list(edges.date)} must be >= 2 increasing dates ending after as_of {as_of.date()}."
            )
        horizon = int((edges[-1] - as_of).days) - 1
        days = as_of + pd.to_timedelta(np.arange(horizon + 1), unit="D")
        period_of_day = np.searchsorted(edges.to_numpy(), days.to_numpy(), side="right") - 1
        period_of_day[(days < edges[0]) | (days >= edges[-1])] = -1
        n_periods = len(edges) - 1
        # quarter-end pull: a close in month 1 or 2 of a quarter may move into month 3
        q_end = pd.DatetimeIndex(days.to_period("Q").end_time).normalize()
        m3 = pd.DatetimeIndex(q_end.to_period("M").start_time)  # first day of the quarter's last month
        in_m12 = days < m3
        inside = q_end <= as_of + pd.Timedelta(days=horizon)
        pull_start = ((m3 - as_of).days).to_numpy(np.int64)
        pull_len = np.where(in_m12 & inside, (q_end - m3).days + 1, 0).astype(np.int64)
    # ---- new deals --------------------------------------------------------------------------
    n_reps = len(cal.rep_ids)
    if horizon is not None and new_deals:
        week_start = np.arange(1, horizon + 1, 7, dtype=np.int64)
        week_len = np.minimum(7, horizon + 1 - week_start).astype(np.int64)
        mid = as_of + pd.to_timedelta(week_start + 3, unit="D")
        season = cal.season[np.asarray(mid.month) - 1]
        scale = np.ones(n_reps) if creation_scale is None else np.asarray(creation_scale, float)
        if scale.shape != (n_reps,):
            raise SalesopsError(f"creation_scale has shape {scale.shape}; expected ({n_reps},), one per rep.")
        new_rate = (cal.weekly_rate * scale)[:, None] * season[None, :] * (week_len / 7.0)[None, :]
        ref = cal.rate_reference if cal.rate_reference is not None else as_of
        week_years = np.asarray((mid - pd.Timestamp(ref)).days, float) / 365.25
        if cal.creation_trend:
            new_rate = new_rate * np.exp(cal.creation_trend * week_years)[None, :]
        week_quarter = ((week_start - 1) // (7 * SHOCK_WEEKS)).astype(np.int64)
        n_quarters = int(week_quarter.max()) + 1 if week_quarter.size else 0
    else:
        week_start = week_len = np.zeros(0, np.int64)
        new_rate = np.zeros((n_reps, 0))
        week_years = np.zeros(0)
        week_quarter = np.zeros(0, np.int64)
        n_quarters = 0
    g = cal.rep_group_mix.shape[1]
    mix = np.cumsum(cal.rep_group_mix, axis=1)
    mix = mix / mix[:, -1:]
    mix[:, -1] = 1.0
    mix_cum = (mix + GAP * np.arange(n_reps)[:, None]).ravel()
    guide, scale_g, passes = _guide_table(cum, cal.n_open)
    seg_guide, seg_scale, seg_passes = _guide_table(seg_cum, int(keys.size))
    # each stage's support (destinations with mass), for the kernels' short loops
    success = progress_mask(cal.n_open, n_dest)
    widths = (dest_prob > 0).sum(axis=1)
    k_max = int(widths.max()) if cal.n_open else 1
    width = next((w for w in EXIT_WIDTHS if w >= k_max), k_max)
    pad_dest = np.zeros((cal.n_open, width), np.int64)
    pad_valid = np.zeros((cal.n_open, width), bool)
    for i in range(cal.n_open):
        js = np.flatnonzero(dest_prob[i] > 0)
        pad_dest[i, : js.size] = js
        pad_valid[i, : js.size] = True
    pad_seg = np.where(pad_valid, seg_id[np.arange(cal.n_open)[:, None], pad_dest], 0).astype(np.int64)
    d_stage = stage[keep]
    rows_lo = seg_lo[keep]
    pad_lo = np.where(pad_valid[d_stage], rows_lo[np.arange(d_stage.size)[:, None], pad_dest[d_stage]], 1.0)
    # ---- conversion drift: each cohort's years from the drift's reference ------------------------
    cohort_years = np.zeros(1 + n_quarters)
    cohort_odds = None
    if cal.drift.used:
        open_date = as_of if cal.open_created is None else min(pd.Timestamp(cal.open_created), as_of)
        cohort_years[0] = cal.drift.years(open_date)
        cohort_years[1:] = cal.drift.years(as_of)  # carried to the snapshot, not extrapolated
        scale_c = (
            cal.uncertainty.tilt_scale
            if cal.uncertainty is not None
            else tilt_scale(cal.transition_matrix, cal.n_open, cal.entry_stage)
        )
        cohort_odds = np.exp(scale_c * cal.drift.slope * cohort_years)
    unc = None
    if uncertainty == "calibrated" and cal.uncertainty is not None:
        unc = _uncertainty_inputs(cal, dest_prob)
        if cal.drift.used:
            unc = replace(
                unc, drift_slope=cal.drift.slope, drift_sd=cal.drift.slope_se, cohort_years=cohort_years
            )
    return SimulationInputs(
        guide=guide,
        guide_scale=scale_g,
        guide_passes=passes,
        n_open=cal.n_open,
        n_reps=n_reps,
        atom_cum=cum,
        atom_next=a_next.astype(np.int32),
        atom_days=a_days.astype(np.int32),
        deal_lo=lo_abs[keep],
        deal_span=span[keep],
        deal_age=age[keep].astype(np.int32),
        deal_rep=deals["rep_id"].map(ridx).to_numpy(np.int64)[keep],
        deal_amount=deals["amount"].to_numpy(float)[keep],
        deal_group=deals["size_group"].to_numpy(np.int64)[keep],
        size_pool=cal.size_pool,
        size_offset=cal.size_offset,
        size_count=cal.size_count,
        horizon_days=horizon,
        period_of_day=period_of_day.astype(np.int64),
        n_periods=n_periods,
        pull=float(cal.quarter_end_pull) if horizon is not None else 0.0,
        pull_start=pull_start,
        pull_len=pull_len,
        new_rate=new_rate,
        week_start=week_start,
        week_len=week_len,
        mix_cum=mix_cum,
        mix_rows=mix[:, :-1].copy(),
        n_groups=g,
        entry_stage=cal.entry_stage,
        max_steps=max_steps,
        n_dest=n_dest,
        dest_prob=dest_prob,
        success=success,
        seg_id=seg_id,
        seg_cum=seg_cum,
        seg_next=s_next.astype(np.int32),
        seg_days=s_days.astype(np.int32),
        seg_guide=seg_guide,
        seg_guide_scale=seg_scale,
        seg_guide_passes=seg_passes,
        deal_stage=stage[keep],
        deal_seg_lo=np.ascontiguousarray(seg_lo[keep]),
        deal_seg_surv=np.ascontiguousarray(seg_surv[keep]),
        exit_width=width,
        pad_dest=pad_dest,
        pad_valid=pad_valid,
        pad_succ=success[np.arange(cal.n_open)[:, None], pad_dest] & pad_valid,
        pad_seg=pad_seg,
        deal_pad_lo=np.ascontiguousarray(pad_lo),
        deal_pad_surv=np.ascontiguousarray(1.0 - pad_lo),
        week_quarter=week_quarter,
        week_years=week_years,
        n_quarters=n_quarters,
        uncertainty=unc,
        # the per-stage draw has no cohorts: a drift needs the segment draw in the point mode too
        draw="segment" if unc is not None or cohort_odds is not None else "stage",
        cycle_edges=np.asarray(cal.cycle_edges, float).reshape(len(cal.size_count), -1),
        cell_offset=np.asarray(cal.cell_offset, np.int64).reshape(len(cal.size_count), -1),
        cell_count=np.asarray(cal.cell_count, np.int64).reshape(len(cal.size_count), -1),
        cohort_odds=cohort_odds,
    )


def _uncertainty_inputs(cal: PipelineCalibration, dest_prob: np.ndarray) -> UncertaintyInputs:
    """The calibration's :class:`ParameterUncertainty` as the arrays a block draws from."""
    u = cal.uncertainty
    assert u is not None
    kappa = np.asarray(u.exit_concentration, float)
    kappa_nu = (
        np.asarray(u.undecided_concentration, float)
        if u.undecided_concentration.size
        else np.full(cal.n_open, np.inf)
    )
    never = cal.never
    alpha = np.zeros_like(dest_prob)
    undecided = np.tile([0.0, 1.0], (cal.n_open, 1))
    for i in range(cal.n_open):
        nu = dest_prob[i, never]
        decided = dest_prob[i].copy()
        decided[never] = 0.0
        q = decided / decided.sum()
        support = q > 0
        if np.isfinite(kappa[i]) and kappa[i] > 0 and support.sum() > 1:
            alpha[i] = np.where(support, kappa[i] * q, 0.0)
        else:
            # a single exit, or no uncertainty: a Dirichlet so concentrated that it is the point
            alpha[i] = np.where(support, 1e12 * q, 0.0)
        if nu > 0:
            k = kappa_nu[i] if np.isfinite(kappa_nu[i]) else 1e12
            undecided[i] = (k * nu, k * (1.0 - nu))
    n_reps = len(cal.rep_ids)

    def per_rep(x: np.ndarray, fill: float) -> np.ndarray:
        x = np.asarray(x, float)
        return x if x.size == n_reps else np.full(n_reps, fill)

    return UncertaintyInputs(
        alpha=alpha,
        undecided=undecided,
        success=progress_mask(cal.n_open, cal.n_dest),
        rate_shape=per_rep(u.rate_shape, np.inf),
        level_shape=float(u.level_shape),
        company_shape=gamma_shape(u.creation_company_var),
        rep_shape=gamma_shape(u.creation_rep_var),
        cohort_sd=float(np.sqrt(u.conversion_cohort_var)),
        level_sd=float(np.sqrt(u.conversion_level_var)),
        rep_mean=per_rep(u.rep_logit_mean, 0.0),
        rep_sd=np.sqrt(per_rep(u.rep_logit_var, 0.0)),
        tilt_scale=float(u.tilt_scale),
        trend_sd=float(cal.creation_trend_se),
    )


def _guide_table(cum: np.ndarray, n_bands: int, max_passes: int = 2) -> tuple[np.ndarray, float, int]:
    """Guide table of the inverse CDF (Chen and Asau): ``guide[floor(v*M)]`` is the first atom whose
    cumulative mass is >= the bucket's lower edge; at most ``passes`` steps reach the exact atom.
    ``M`` doubles until ``passes <= max_passes`` or the table reaches 2^20 entries."""
    M = 1024
    while True:
        edges = np.arange(int(GAP * n_bands * M) + 1) / M
        guide = np.searchsorted(cum, edges, side="left")
        guide = np.minimum(guide, len(cum) - 1)
        passes = int(np.max(np.diff(guide))) if len(guide) > 1 else 0
        if passes <= max_passes or M >= 2**18 or 2 * edges.size > 2**20:
            return guide[:-1].astype(np.int32), float(M), passes
        M *= 2


def draw_atoms(inp: SimulationInputs, v: np.ndarray) -> np.ndarray:
    """Atom index of each point ``v`` (stage offset + cumulative mass): the first atom with
    ``atom_cum >= v``, found through the guide table (exact; same result as ``searchsorted``)."""
    idx = inp.guide[(v * inp.guide_scale).astype(np.int32)]
    for _ in range(inp.guide_passes):
        idx += inp.atom_cum[idx] < v
    return idx


def draw_segment_atoms(inp: SimulationInputs, v: np.ndarray) -> np.ndarray:
    """:func:`draw_atoms` for the destination-segment layout (``seg_cum``)."""
    idx = inp.seg_guide[(v * inp.seg_guide_scale).astype(np.int32)]
    for _ in range(inp.seg_guide_passes):
        idx += inp.seg_cum[idx] < v
    return idx


def choose_destination(m: np.ndarray, x_unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column and the uniform left inside it, for rows of unnormalised masses ``m`` (k, K).

    Column ``j`` is the first whose running sum exceeds ``x = x_unit * total``; the uniform inside it
    is ``(x - sum_{<j}) / m_j``. The numba kernels do the same arithmetic in the same order
    (sequential sums), so both give the same numbers bit for bit.
    """
    acc = np.cumsum(m, axis=1)
    x = x_unit * acc[:, -1]
    j = (acc <= x[:, None]).sum(axis=1)
    last = m.shape[1] - 1 - np.argmax(m[:, ::-1] > 0, axis=1)
    j = np.minimum(j, last)
    rows = np.arange(m.shape[0])
    prev = np.where(j > 0, acc[rows, np.maximum(j - 1, 0)], 0.0)
    return j, (x - prev) / m[rows, j]


def _pick_share(cw: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column of the first running share above ``u`` (rows of ``cw`` end at 1.0) and the uniform left
    inside it, ``(u - cw[j-1]) / (cw[j] - cw[j-1])``: the arithmetic of the kernels' advance step."""
    rows = np.arange(u.size)
    j = (cw <= u[:, None]).sum(axis=1)
    prev = np.where(j > 0, cw[rows, np.maximum(j - 1, 0)], 0.0)
    return j, (u - prev) / (cw[rows, j] - prev)


def exit_tables(inp: SimulationInputs, params: BlockParameters, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each trial's tilted exit masses and their running shares, padded to ``exit_width`` per stage.

    Returns
    -------
    mass, cum
        ``(n, cohorts, reps, stages, width)``: ``mass[t, c, r, i, q] = P_t[i, dest] * w`` for the
        stage's ``q``-th exit, ``w`` the progress-odds multiplier ``cohort_odds[t, c] * rep_odds[t, r]``
        when the exit is progress (else 1), 0 on padding; ``cum`` the running share within the stage,
        1.0 exactly from the stage's last exit on. Computed once per block in numpy; the numba and numpy
        paths both read them.
    """
    stride = 1 if params.dest_prob.shape[0] > 1 else 0
    rows = np.arange(n) * stride
    stages = np.arange(inp.n_open)[:, None]
    p = np.where(inp.pad_valid, params.dest_prob[rows][:, stages, inp.pad_dest], 0.0)  # (n, S, W)
    odds = params.cohort_odds[:, :, None] * params.rep_odds[:, None, :]  # (n, C, R)
    mass = np.where(inp.pad_succ, odds[..., None, None], 1.0) * p[:, None, None, :, :]
    cum = np.cumsum(mass, axis=-1)
    cum /= cum[..., -1:]
    last = inp.pad_valid.sum(axis=1) - 1  # the stage's last exit
    cum[..., np.arange(inp.exit_width)[None, :] >= last[:, None]] = 1.0
    return mass, cum


# --------------------------------------------------------------------------------------------
# one block of trials
# --------------------------------------------------------------------------------------------


@dataclass
class BlockResult:
    """Arrays of one block of trials (``n`` trials)."""

    bookings: np.ndarray  # (n, reps, periods) [currency]
    won: np.ndarray  # (n,) deals won inside the horizon
    lost: np.ndarray  # (n,) deals lost inside the horizon
    created: np.ndarray  # (n,) deals created during the horizon
    new_won: np.ndarray  # (n,) of those, won inside the horizon
    new_cycle_days: np.ndarray  # (n,) sum of created-to-won days of new won deals
    unresolved: np.ndarray  # (n,) tokens still open after max_steps (infinite horizon only)
    won_by_rep: np.ndarray  # (reps,) deals won inside the horizon, summed over the block's trials
    lost_by_rep: np.ndarray  # (reps,) deals lost inside the horizon, summed over the block's trials
    draws: int = 0  # uniform and Poisson numbers drawn


def block_seed(seed: np.random.SeedSequence, block: int) -> np.random.SeedSequence:
    """The seed of block ``block``: child ``block`` of ``seed``, rebuilt without shared state."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, block))


def parameter_seed(seed: np.random.SeedSequence, block: int) -> np.random.SeedSequence:
    """The seed of block ``block``'s parameter draws: child ``(block, 1)`` of ``seed``, a stream apart
    from the block's simulation stream, so the point and calibrated modes share their Monte Carlo draws."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, block, 1))


def simulate_blocks(
    inputs: SimulationInputs,
    blocks: Sequence[int],
    seed: np.random.SeedSequence,
    trials: int,
    block_size: int,
) -> BlockResult:
    """Simulate the given blocks of trials and concatenate them: the unit of a Dask task.

    Parameters
    ----------
    inputs
        Compiled arrays.
    blocks
        Block indices; block ``b`` holds trials ``[b*block_size, min((b+1)*block_size, trials))``.
    seed
        The run's seed sequence; block ``b`` uses :func:`block_seed` ``(seed, b)`` for the Monte
        Carlo and :func:`parameter_seed` ``(seed, b)`` for its trials' parameters.
    trials, block_size
        Total trials of the run and trials per block.
    """
    parts = []
    for b in blocks:
        n = min(block_size, trials - b * block_size)
        if n <= 0:
            raise SalesopsError(
                f"block {b} is past the last trial ({trials} trials, {block_size} per block)."
            )
        if inputs.uncertainty is not None:
            params = draw_block_parameters(
                inputs.uncertainty,
                np.random.default_rng(parameter_seed(seed, b)),
                n,
                n_cohorts=inputs.n_cohorts,
                week_quarter=inputs.week_quarter,
                week_years=inputs.week_years,
                n_quarters=inputs.n_quarters,
                size_offset=inputs.size_offset,
                size_count=inputs.size_count,
            )
        else:
            params = point_parameters(
                inputs.dest_prob, n, inputs.n_cohorts, inputs.n_reps, inputs.cohort_odds
            )
        parts.append(_simulate_block(inputs, np.random.default_rng(block_seed(seed, b)), n, params))
    return BlockResult(
        bookings=np.concatenate([p.bookings for p in parts]),
        won=np.concatenate([p.won for p in parts]),
        lost=np.concatenate([p.lost for p in parts]),
        created=np.concatenate([p.created for p in parts]),
        new_won=np.concatenate([p.new_won for p in parts]),
        new_cycle_days=np.concatenate([p.new_cycle_days for p in parts]),
        unresolved=np.concatenate([p.unresolved for p in parts]),
        won_by_rep=np.sum([p.won_by_rep for p in parts], axis=0),
        lost_by_rep=np.sum([p.lost_by_rep for p in parts], axis=0),
        draws=sum(p.draws for p in parts),
    )


NO_HORIZON = np.iinfo(np.int64).max
EMPTY = np.zeros(0, np.int64)


@dataclass
class _Tokens:
    """Who the tokens of one :func:`_advance` call are: open deals (flat ``trial * D + deal``) or new
    deals (explicit ``trial``, ``cohort`` and ``rep`` per token)."""

    n_deals: int = 0
    trial: np.ndarray = field(default_factory=lambda: EMPTY)
    cohort: np.ndarray = field(default_factory=lambda: EMPTY)
    rep: np.ndarray = field(default_factory=lambda: EMPTY)

    def lookup(self, inp: SimulationInputs, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.n_deals:
            t, d = np.divmod(j, self.n_deals)
            return t, np.zeros_like(t), inp.deal_rep[d]
        return self.trial[j], self.cohort[j], self.rep[j]


def _advance(
    inp: SimulationInputs,
    rng: np.random.Generator,
    state: np.ndarray,
    clock: np.ndarray,
    params: BlockParameters | None = None,
    tokens: _Tokens | None = None,
    active: np.ndarray | None = None,
    tables: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[int, int]:
    """Move tokens (in place) through fresh stage visits until won, lost or past the horizon.

    Each visit draws its destination class from the token's trial, cohort and rep (the cumulative
    exit shares of :func:`exit_tables`) and then its holding time from the destination's atoms, with
    one uniform. Returns the number of uniforms drawn and the number of tokens still open after
    ``max_steps``. Without ``params`` and ``tokens``: the point calibration, every token in trial 0,
    cohort 0, rep 0.
    """
    if inp.draw == "stage":
        return _advance_stage(inp, rng, state, clock, active)
    if params is None:
        params = point_parameters(inp.dest_prob, 1, inp.n_cohorts, max(inp.n_reps, 1), inp.cohort_odds)
    if tables is None:
        tables = exit_tables(inp, params, params.cohort_odds.shape[0])
    cum = tables[1]
    if tokens is None:
        zero = np.zeros(state.size, np.int64)
        tokens = _Tokens(trial=zero, cohort=zero, rep=zero)
    draws = 0
    horizon = inp.horizon_days
    if active is None:
        active = (
            np.flatnonzero(state < inp.n_open)
            if horizon is None
            else np.flatnonzero((state < inp.n_open) & (clock <= horizon))
        )
    if _kernels.AVAILABLE:
        h = NO_HORIZON if horizon is None else horizon
        advance_step = _kernels.exit_kernels(inp.exit_width)[1]
        for _ in range(inp.max_steps):
            if not active.size:
                return draws, 0
            u = rng.random(active.size)
            draws += active.size
            active = advance_step(
                active,
                u,
                state,
                clock,
                tokens.n_deals,
                inp.deal_rep,
                tokens.trial,
                tokens.cohort,
                tokens.rep,
                cum,
                inp.pad_seg,
                GAP,
                inp.seg_guide,
                inp.seg_guide_scale,
                inp.seg_guide_passes,
                inp.seg_cum,
                inp.seg_next,
                inp.seg_days,
                inp.n_open,
                h,
            )
        return draws, int(active.size)
    for _ in range(inp.max_steps):
        if not active.size:
            return draws, 0
        u = rng.random(active.size)
        draws += active.size
        t, c, r = tokens.lookup(inp, active)
        s = state[active]
        j, u2 = _pick_share(cum[t, c, r, s], u)
        k = draw_segment_atoms(inp, GAP * inp.pad_seg[s, j] + u2)
        s_new = inp.seg_next[k]
        c_new = clock[active] + inp.seg_days[k]
        state[active] = s_new
        clock[active] = c_new
        still = s_new < inp.n_open
        if horizon is not None:
            still &= c_new <= horizon
        active = active[still]
    return draws, int(active.size)


def _advance_stage(
    inp: SimulationInputs,
    rng: np.random.Generator,
    state: np.ndarray,
    clock: np.ndarray,
    active: np.ndarray | None = None,
) -> tuple[int, int]:
    """:func:`_advance` for the point calibration: next state and holding time in one lookup of the
    stage layout ``atom_cum`` (every token shares the same exit probabilities)."""
    draws = 0
    horizon = inp.horizon_days
    if active is None:
        active = (
            np.flatnonzero(state < inp.n_open)
            if horizon is None
            else np.flatnonzero((state < inp.n_open) & (clock <= horizon))
        )
    if _kernels.AVAILABLE:
        h = NO_HORIZON if horizon is None else horizon
        for _ in range(inp.max_steps):
            if not active.size:
                return draws, 0
            u = rng.random(active.size)
            draws += active.size
            active = _kernels.advance_step_stage(
                active,
                u,
                state,
                clock,
                GAP,
                inp.guide,
                inp.guide_scale,
                inp.guide_passes,
                inp.atom_cum,
                inp.atom_next,
                inp.atom_days,
                inp.n_open,
                h,
            )
        return draws, int(active.size)
    for _ in range(inp.max_steps):
        if not active.size:
            return draws, 0
        u = rng.random(active.size)
        draws += active.size
        u += GAP * state[active]
        k = draw_atoms(inp, u)
        s = inp.atom_next[k]
        c = clock[active] + inp.atom_days[k]
        state[active] = s
        clock[active] = c
        still = s < inp.n_open
        if horizon is not None:
            still &= c <= horizon
        active = active[still]
    return draws, int(active.size)


def _pull(inp: SimulationInputs, day: np.ndarray, pull_len: np.ndarray, u: np.ndarray) -> None:
    """Quarter-end pull, in place: a won close in a quarter's first two months moves, with
    probability ``pull``, to a uniform day of its last month (``u`` one uniform per candidate)."""
    length = pull_len[day]
    cand = np.flatnonzero(length > 0)
    move = u < inp.pull
    mc = cand[move]
    day[mc] = inp.pull_start[day[mc]] + (u[move] / inp.pull * length[mc]).astype(np.int64)


def _first_step_stage(
    inp: SimulationInputs, u: np.ndarray, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """First exit of every open deal in every trial with the point calibration (stage layout)."""
    n, D = u.shape
    if _kernels.AVAILABLE:
        state = np.empty((n, D), np.int32)
        clock = np.empty((n, D), np.int32)
        _kernels.first_step_stage(
            u,
            inp.deal_lo,
            inp.deal_span,
            inp.deal_age,
            inp.guide,
            inp.guide_scale,
            inp.guide_passes,
            inp.atom_cum,
            inp.atom_next,
            inp.atom_days,
            state,
            clock,
        )
        return state, clock, _kernels.active_tokens(state, clock, inp.n_open, h)
    u = u * inp.deal_span
    u += inp.deal_lo
    k = draw_atoms(inp, u)
    state = inp.atom_next[k]
    clock = inp.atom_days[k] - inp.deal_age
    np.maximum(clock, 1, out=clock)  # an open deal closes tomorrow at the earliest
    return state, clock, None


def _size_position(inp: SimulationInputs, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Pool position of a uniform ``u`` in a size group."""
    return inp.size_offset[group] + (u * inp.size_count[group]).astype(np.int64)


def new_deal_size_cells(
    inp: SimulationInputs, group: np.ndarray, cycle: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Offset and count in the size pool of the values won new deals draw from [positions].

    Parameters
    ----------
    inp
        Compiled inputs (``cycle_edges``, ``cell_offset``, ``cell_count`` from the calibration).
    group
        Size group of each won deal.
    cycle
        Its simulated created-to-won cycle [days].

    Returns
    -------
    tuple
        ``(offset, count)``: the cell of the deal's group and cycle bin when the calibration has
        cells for the group (so a deal that needed long to close is drawn from the values of deals
        that needed long in history), else the group's whole pool.
    """
    off, cnt = inp.size_offset[group], inp.size_count[group]
    if not inp.cell_count.any() or not group.size:
        return off, cnt
    # bin = number of the group's interior edges <= cycle (searchsorted 'right'; +inf pads)
    b = (inp.cycle_edges[group] <= cycle[:, None]).sum(axis=1)
    c_off, c_cnt = inp.cell_offset[group, b], inp.cell_count[group, b]
    use = c_cnt > 0
    return np.where(use, c_off, off), np.where(use, c_cnt, cnt)


def _simulate_block(
    inp: SimulationInputs, rng: np.random.Generator, n: int, params: BlockParameters
) -> BlockResult:
    H = inp.horizon_days
    won_state = inp.n_open
    lost_state = inp.n_open + 1
    D = inp.deal_lo.size
    R, P = inp.n_reps, inp.n_periods
    boot = params.size_key is not None
    size_key = np.uint64(params.size_key if boot else 0)
    draws = 0
    # ---- open deals: first step conditional on age, then fresh steps --------------------------
    u = rng.random((n, D))
    draws += u.size
    h = NO_HORIZON if H is None else H
    tables = None
    if inp.draw == "stage":
        state, clock, first_active = _first_step_stage(inp, u, h)
    else:
        tables = exit_tables(inp, params, n)
        mass = tables[0]
        state = np.empty((n, D), np.int32)
        clock = np.empty((n, D), np.int32)
        if _kernels.AVAILABLE:
            _kernels.exit_kernels(inp.exit_width)[0](
                u,
                inp.deal_stage,
                inp.deal_rep,
                inp.deal_pad_lo,
                inp.deal_pad_surv,
                inp.deal_age,
                mass,
                tables[1],
                inp.pad_seg,
                GAP,
                inp.seg_guide,
                inp.seg_guide_scale,
                inp.seg_guide_passes,
                inp.seg_cum,
                inp.seg_next,
                inp.seg_days,
                state,
                clock,
            )
            del u
            first_active = _kernels.active_tokens(state, clock, inp.n_open, h)
        else:
            t_idx = np.repeat(np.arange(n), D)
            d_idx = np.tile(np.arange(D), n)
            uu = u.ravel()
            del u
            s0 = inp.deal_stage[d_idx]
            r0 = inp.deal_rep[d_idx]
            fresh = inp.deal_age[d_idx] <= 0
            v = np.empty(d_idx.size)
            # deals that have just entered their stage: the trial's running exit shares (as a new visit)
            f = np.flatnonzero(fresh)
            if f.size:
                j, u2 = _pick_share(tables[1][t_idx[f], 0, r0[f], s0[f]], uu[f])
                v[f] = GAP * inp.pad_seg[s0[f], j] + u2
            # deals with an age: exit masses times the conditional survival beyond it
            a = np.flatnonzero(~fresh)
            if a.size:
                da = d_idx[a]
                m = mass[t_idx[a], 0, r0[a], s0[a]] * inp.deal_pad_surv[da]
                j, u2 = choose_destination(m, uu[a])
                v[a] = GAP * inp.pad_seg[s0[a], j] + inp.deal_pad_lo[da, j] + u2 * inp.deal_pad_surv[da, j]
            k = draw_segment_atoms(inp, v)
            del v
            state.ravel()[:] = inp.seg_next[k]
            c = inp.seg_days[k] - inp.deal_age[d_idx]
            np.maximum(c, 1, out=c)  # an open deal closes tomorrow at the earliest
            clock.ravel()[:] = c
            del k, c, t_idx, d_idx
            first_active = None
    d_more, unresolved_open = _advance(
        inp,
        rng,
        state.reshape(-1),
        clock.reshape(-1),
        params,
        _Tokens(n_deals=max(D, 1)),
        first_active,
        tables,
    )
    draws += d_more
    # ---- new deals ------------------------------------------------------------------------------
    if inp.new_rate.size:
        rate = inp.new_rate if params.creation is None else inp.new_rate[None, :, :] * params.creation
        counts = rng.poisson(np.broadcast_to(rate, (n, *inp.new_rate.shape)))
        draws += counts.size
        flat = counts.ravel()
        where = np.flatnonzero(flat)
        reps_of = flat[where]
        cell_trial, rest = np.divmod(where, R * inp.new_rate.shape[1])
        cell_rep, cell_week = np.divmod(rest, inp.new_rate.shape[1])
        new_trial = np.repeat(cell_trial, reps_of)
        new_rep = np.repeat(cell_rep, reps_of)
        new_week = np.repeat(cell_week, reps_of)
        n_new = new_trial.size
        u = rng.random(2 * n_new)
        draws += u.size
        created = inp.week_start[new_week] + (u[:n_new] * inp.week_len[new_week]).astype(np.int64)
        # size group: the number of the rep's cumulative mix shares below the uniform
        g = (inp.mix_rows[new_rep] < u[n_new:, None]).sum(axis=1)
        new_state = np.full(n_new, inp.entry_stage, dtype=np.int64)
        new_clock = created.copy()
        tokens = _Tokens(trial=new_trial, cohort=1 + inp.week_quarter[new_week], rep=new_rep)
        d_more, _ = _advance(inp, rng, new_state, new_clock, params, tokens, None, tables)
        draws += d_more
    else:
        n_new = 0
        new_trial = new_rep = g = created = np.zeros(0, np.int64)
        new_state = new_clock = np.zeros(0, np.int64)
    # ---- outcomes inside the horizon ------------------------------------------------------------
    # random numbers, in this order: open deals' unknown values, new deals' values, quarter-end pulls
    pulling = H is not None and inp.pull > 0
    pull_len = inp.pull_len if pulling else np.zeros(0, np.int64)
    if _kernels.AVAILABLE:
        t_o, deal_o, won_open, lost_open, won_per_deal, lost_per_deal, n_unknown, n_cand_o = (
            _kernels.outcomes(state, clock, won_state, lost_state, h, inp.deal_amount, pull_len)
        )
    else:
        won_mask = state == won_state
        lost_mask = state == lost_state
        if H is not None:
            inside = clock <= H
            won_mask &= inside
            lost_mask &= inside
        t_o, deal_o = np.nonzero(won_mask)
        won_open = won_mask.sum(axis=1)
        lost_open = lost_mask.sum(axis=1)
        won_per_deal = won_mask.sum(axis=0)
        lost_per_deal = lost_mask.sum(axis=0)
        n_unknown = int(np.isnan(inp.deal_amount[deal_o]).sum())
        n_cand_o = int((pull_len[clock[t_o, deal_o]] > 0).sum()) if pulling else 0
    u_amt_o = rng.random(n_unknown)
    draws += n_unknown
    if n_new:
        if H is None:
            won_n = np.flatnonzero(new_state == won_state)
            lost_n = np.flatnonzero(new_state == lost_state)
        else:
            won_n = np.flatnonzero((new_state == won_state) & (new_clock <= H))
            lost_n = np.flatnonzero((new_state == lost_state) & (new_clock <= H))
        uu = rng.random(won_n.size)
        draws += uu.size
        grp_n = g[won_n]
        off_n, cnt_n = new_deal_size_cells(inp, grp_n, new_clock[won_n] - created[won_n])
        pos = off_n + (uu * cnt_n).astype(np.int64)
        if boot:
            pos = bootstrap_position(int(size_key), new_trial[won_n], pos, off_n, cnt_n)
        amt_n = inp.size_pool[pos]
    else:
        won_n = lost_n = np.zeros(0, np.int64)
        amt_n = np.zeros(0)
    day_n = new_clock[won_n].astype(np.int64)
    len_n = pull_len[day_n] if pulling else np.zeros(0, np.int64)
    n_cand_n = int((len_n > 0).sum()) if pulling else 0
    u_pull = rng.random(n_cand_o + n_cand_n) if pulling else np.zeros(0)
    draws += u_pull.size
    bookings = np.zeros(n * R * P)
    if _kernels.AVAILABLE:
        _kernels.book_open(
            t_o,
            deal_o,
            clock,
            inp.deal_amount,
            inp.deal_group,
            inp.deal_rep,
            u_amt_o,
            u_pull[:n_cand_o],
            inp.size_pool,
            inp.size_offset,
            inp.size_count,
            boot,
            size_key,
            inp.pull,
            inp.pull_start,
            pull_len,
            inp.period_of_day,
            R,
            P,
            H is None,
            bookings,
        )
    else:
        amt_o = inp.deal_amount[deal_o]
        unknown = np.flatnonzero(np.isnan(amt_o))
        grp_o = inp.deal_group[deal_o[unknown]]
        pos = _size_position(inp, grp_o, u_amt_o)
        if boot:
            pos = bootstrap_position(
                int(size_key), t_o[unknown], pos, inp.size_offset[grp_o], inp.size_count[grp_o]
            )
        amt_o[unknown] = inp.size_pool[pos]
        day_o = clock[t_o, deal_o].astype(np.int64)
        if pulling:
            _pull(inp, day_o, pull_len, u_pull[:n_cand_o])
        period = np.zeros(day_o.size, np.int64) if H is None else inp.period_of_day[day_o]
        ok = period >= 0
        key = (t_o[ok] * R + inp.deal_rep[deal_o[ok]]) * P + period[ok]
        bookings += np.bincount(key, weights=amt_o[ok], minlength=n * R * P)
    if won_n.size:
        if pulling:
            _pull(inp, day_n, pull_len, u_pull[n_cand_o:])
        period = np.zeros(day_n.size, np.int64) if H is None else inp.period_of_day[day_n]
        ok = period >= 0
        key = (new_trial[won_n][ok] * R + new_rep[won_n][ok]) * P + period[ok]
        bookings += np.bincount(key, weights=amt_n[ok], minlength=n * R * P)
    bookings = bookings.reshape(n, R, P)
    won = won_open + np.bincount(new_trial[won_n], minlength=n)
    lost = lost_open + np.bincount(new_trial[lost_n], minlength=n)
    created_n = np.bincount(new_trial, minlength=n) if n_new else np.zeros(n, np.int64)
    new_won = np.bincount(new_trial[won_n], minlength=n) if n_new else np.zeros(n, np.int64)
    cyc = (
        np.bincount(new_trial[won_n], weights=(new_clock[won_n] - created[won_n]).astype(float), minlength=n)
        if n_new
        else np.zeros(n)
    )
    unresolved = np.zeros(n, np.int64)
    if unresolved_open:
        unresolved = (state < inp.n_open).sum(axis=1)  # only without a horizon (max_steps reached)
    won_by_rep = np.bincount(inp.deal_rep, weights=won_per_deal, minlength=R) + np.bincount(
        new_rep[won_n], minlength=R
    )
    lost_by_rep = np.bincount(inp.deal_rep, weights=lost_per_deal, minlength=R) + np.bincount(
        new_rep[lost_n], minlength=R
    )
    return BlockResult(
        bookings, won, lost, created_n, new_won, cyc, unresolved, won_by_rep, lost_by_rep, draws
    )


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


@dataclass
class PipelineSimulation:
    """Simulated bookings of a pipeline: trials x reps x periods, with KPI samples.

    Attributes
    ----------
    rep_ids
        Reps (axis 1 of ``bookings``).
    periods
        Period labels (axis 2), e.g. ``2026-01``; ``all`` without a horizon.
    bookings
        Won value closing in each period, per trial and rep [currency].
    closed_to_date
        Won value already booked in the periods before ``as_of``, per rep [currency]; added by
        :meth:`rep_bookings`.
    won, lost
        Deals won and lost inside the horizon, per trial [deals].
    created, new_won, new_cycle_days
        Deals created during the horizon, those of them won, and their summed created-to-won days.
    """

    rep_ids: np.ndarray
    periods: list[str]
    bookings: np.ndarray
    closed_to_date: np.ndarray
    won: np.ndarray
    lost: np.ndarray
    created: np.ndarray
    new_won: np.ndarray
    new_cycle_days: np.ndarray
    unresolved: np.ndarray
    won_by_rep: np.ndarray
    lost_by_rep: np.ndarray
    draws: int
    trials: int
    block_size: int
    meta: dict[str, object] = field(default_factory=dict)

    def rep_bookings(self) -> np.ndarray:
        """Bookings per trial and rep over all periods, closed-to-date included [currency]."""
        return self.bookings.sum(axis=2) + self.closed_to_date[None, :]

    def total_bookings(self) -> np.ndarray:
        """Company bookings per trial [currency]."""
        return self.rep_bookings().sum(axis=1)

    def win_rate(self) -> np.ndarray:
        """Won / (won + lost) among deals closed inside the horizon, per trial [0-1]."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.won / (self.won + self.lost)

    def cycle_days(self) -> np.ndarray:
        """Mean created-to-won days of deals created and won inside the horizon, per trial [days]."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.new_cycle_days / self.new_won

    def rep_bookings_samples(self) -> pd.DataFrame:
        """Long table ``trial, rep_id, bookings`` (the ``rep_bookings_samples`` contract)."""
        rb = self.rep_bookings()
        t, r = rb.shape
        return pd.DataFrame(
            {
                "trial": np.repeat(np.arange(t, dtype=np.int64), r),
                "rep_id": np.tile(self.rep_ids.astype(str), t),
                "bookings": rb.ravel(),
            }
        )

    def rep_summary(self) -> pd.DataFrame:
        """Per rep: bookings mean, std, p10, p50, p90 [currency], closed-to-date [currency], simulated
        win rate of deals closing inside the horizon [0-1] and won deals a trial [deals]."""
        rb = self.rep_bookings()
        q = np.percentile(rb, [10, 50, 90], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            win_rate = self.won_by_rep / (self.won_by_rep + self.lost_by_rep)
        return pd.DataFrame(
            {
                "rep_id": self.rep_ids.astype(str),
                "mean": rb.mean(axis=0),
                "std": rb.std(axis=0, ddof=1) if rb.shape[0] > 1 else np.zeros(rb.shape[1]),
                "p10": q[0],
                "p50": q[1],
                "p90": q[2],
                "closed_to_date": self.closed_to_date,
                "win_rate": win_rate,
                "won_deals_mean": self.won_by_rep / self.trials,
            }
        )

    def period_summary(self) -> pd.DataFrame:
        """Per period: company bookings mean, p10, p50, p90 [currency]."""
        tot = self.bookings.sum(axis=1)
        q = np.percentile(tot, [10, 50, 90], axis=0)
        return pd.DataFrame(
            {"period": self.periods, "mean": tot.mean(axis=0), "p10": q[0], "p50": q[1], "p90": q[2]}
        )

    def summary(self) -> dict[str, float | int]:
        """Headline figures: company bookings P10/P50/P90, win rate, cycle, revenue per rep."""
        tot = self.total_bookings()
        q = np.percentile(tot, [10, 50, 90])
        wr = self.win_rate()
        cyc = self.cycle_days()
        rb = self.rep_bookings()
        return {
            "trials": int(self.trials),
            "bookings_mean": float(tot.mean()),
            "bookings_se": float(tot.std(ddof=1) / np.sqrt(len(tot))) if len(tot) > 1 else float("nan"),
            "bookings_p10": float(q[0]),
            "bookings_p50": float(q[1]),
            "bookings_p90": float(q[2]),
            "win_rate": float(np.nanmean(wr)) if np.isfinite(wr).any() else float("nan"),
            "cycle_days": float(np.nanmean(cyc)) if np.isfinite(cyc).any() else float("nan"),
            "revenue_per_rep_p50": float(np.median(rb.mean(axis=1))),
            "deals_created_mean": float(self.created.mean()),
            "unresolved_mean": float(self.unresolved.mean()),
        }


def simulate_pipeline(
    inputs: SimulationInputs,
    rep_ids: np.ndarray,
    *,
    trials: int,
    block_size: int,
    seed: np.random.SeedSequence | int,
    periods: list[str] | None = None,
    closed_to_date: np.ndarray | None = None,
    blocks_per_chunk: int | None = None,
    client: object | None = None,
    executor: object | None = None,
) -> PipelineSimulation:
    """Run ``trials`` trials in blocks; optionally as Dask tasks.

    Parameters
    ----------
    inputs
        From :func:`compile_inputs`.
    rep_ids
        Rep ids in the order of ``inputs`` (``calibration.rep_ids``).
    trials, block_size
        Number of trials and trials per random block. The numbers depend on both, never on chunking.
    seed
        Master seed or seed sequence of the run.
    periods
        Period labels (default ``p0, p1, ...``).
    closed_to_date
        Won value already booked inside the periods before ``as_of``, per rep [currency].
    blocks_per_chunk
        Blocks per chunk (per Dask task); default: all blocks in one chunk (serial) or one block
        per task (with ``client``).
    client
        A ``dask.distributed.Client``: chunks run as tasks ``simulate_blocks(inputs, blocks, ...)``.
    executor
        Alternatively a ``concurrent.futures`` executor (e.g. a thread pool: numpy releases the GIL
        in the heavy loops); chunks run through ``executor.map``.

    Notes
    -----
    Block ``b`` draws from ``SeedSequence(entropy, spawn_key=(*key, b))``: the result is bit for
    bit the same for any ``blocks_per_chunk`` and any number of workers.
    """
    if trials < 1 or block_size < 1:
        raise SalesopsError(f"trials ({trials}) and block_size ({block_size}) must be >= 1.")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    n_blocks = -(-trials // block_size)
    per = blocks_per_chunk or (1 if client is not None or executor is not None else n_blocks)
    chunks = [list(range(s, min(s + per, n_blocks))) for s in range(0, n_blocks, per)]
    if executor is not None:
        parts = list(
            executor.map(  # type: ignore[attr-defined]
                lambda c: simulate_blocks(inputs, c, ss, trials, block_size), chunks
            )
        )
    elif client is None:
        parts = [simulate_blocks(inputs, c, ss, trials, block_size) for c in chunks]
    else:
        scattered = client.scatter(inputs, broadcast=True)  # type: ignore[attr-defined]
        futures = [
            client.submit(  # type: ignore[attr-defined]
                simulate_blocks,
                scattered,
                c,
                ss,
                trials,
                block_size,
                key=f"pipeline-blocks-{c[0]}-{ss.entropy}",
                pure=False,
            )
            for c in chunks
        ]
        parts = client.gather(futures)  # type: ignore[attr-defined]
    names = ("bookings", "won", "lost", "created", "new_won", "new_cycle_days", "unresolved")
    cat = {name: np.concatenate([getattr(p, name) for p in parts]) for name in names}
    return PipelineSimulation(
        rep_ids=np.asarray(rep_ids),
        periods=periods or [f"p{k}" for k in range(inputs.n_periods)],
        bookings=cat["bookings"],
        closed_to_date=np.zeros(inputs.n_reps)
        if closed_to_date is None
        else np.asarray(closed_to_date, float),
        won=cat["won"],
        lost=cat["lost"],
        created=cat["created"],
        new_won=cat["new_won"],
        new_cycle_days=cat["new_cycle_days"],
        unresolved=cat["unresolved"],
        won_by_rep=np.sum([p.won_by_rep for p in parts], axis=0),
        lost_by_rep=np.sum([p.lost_by_rep for p in parts], axis=0),
        draws=int(sum(p.draws for p in parts)),
        trials=trials,
        block_size=block_size,
    )


def closed_to_date(
    opportunities: pd.DataFrame, rep_ids: np.ndarray, start: pd.Timestamp, as_of: pd.Timestamp
) -> np.ndarray:
    """Won value with ``start <= close_date <= as_of``, per rep [currency]."""
    won = opportunities[
        (opportunities["status"] == WON)
        & (opportunities["close_date"] >= pd.Timestamp(start))
        & (opportunities["close_date"] <= pd.Timestamp(as_of))
    ]
    s = won.groupby(won["rep_id"].astype(str))["amount"].sum()
    return s.reindex(list(rep_ids), fill_value=0.0).to_numpy(float)
