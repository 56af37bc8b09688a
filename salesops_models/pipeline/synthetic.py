"""A CRM history drawn from a known pipeline process: ground truth for tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salesops_models.data.company import StageSet
from salesops_models.data.schema import LOST, OPEN, WON

# The reference process of the tests and the benchmark: three open stages (Qualify, Propose,
# Negotiate), then Won and Lost; a skip (Qualify -> Negotiate), back-transitions (Propose ->
# Qualify, Negotiate -> Propose) and losses at every stage. Rows sum to 1.
EXAMPLE_TRANSITIONS = np.array(
    [
        [0.0, 0.6, 0.15, 0.0, 0.25],
        [0.05, 0.0, 0.7, 0.05, 0.2],
        [0.0, 0.1, 0.0, 0.6, 0.3],
        [0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 1.0],
    ]
)
EXAMPLE_HOLDING_DAYS = np.array([10.0, 20.0, 15.0])  # mean days in each open stage
CYCLE_REFERENCE_DAYS = 30.0  # cycle at which a cycle-dependent value has the median amount [days]


@dataclass
class SyntheticHistory:
    """Canonical tables drawn from a known jump chain with geometric holding times."""

    opportunities: pd.DataFrame
    stage_history: pd.DataFrame
    reps: pd.DataFrame
    stages: StageSet
    as_of: pd.Timestamp
    transition_matrix: np.ndarray
    mean_holding_days: np.ndarray


def synthetic_history(
    transition_matrix: np.ndarray,
    mean_holding_days: np.ndarray,
    *,
    open_stages: tuple[str, ...] = ("Qualify", "Propose", "Negotiate"),
    n_reps: int = 5,
    deals_per_rep_week: float = 3.0,
    weeks: int = 104,
    as_of: str = "2025-12-31",
    amount_median: float = 10_000.0,
    amount_sigma: float = 0.8,
    amount_cycle_elasticity: float = 0.0,
    seed: int = 0,
) -> SyntheticHistory:
    """Draw a CRM history (full stage history, right-censored at ``as_of``) from a known process.

    Parameters
    ----------
    transition_matrix
        Jump chain over ``open_stages`` then won, lost (rows of open stages sum to 1).
    mean_holding_days
        Mean holding time of each open stage [days]; holding times are geometric on 1, 2, ...
    n_reps, deals_per_rep_week, weeks
        Creation: Poisson arrivals per rep [deals/week] over ``weeks`` weeks before ``as_of``.
    amount_median, amount_sigma
        Lognormal deal values [currency], known on every deal (open ones included).
    amount_cycle_elasticity
        Elasticity :math:`\\beta` of the value to the deal's created-to-close cycle :math:`c`
        [-]: the median value is ``amount_median * (c / CYCLE_REFERENCE_DAYS) ** beta`` (big deals
        take longer). A deal open on ``as_of`` runs on (unrecorded) to learn its cycle. 0: values
        independent of the cycle, and the same draws as before the parameter existed.
    """
    rng = np.random.default_rng(seed)
    P = np.asarray(transition_matrix, float)
    n_open = len(open_stages)
    stages = StageSet(tuple(open_stages))
    labels = (*open_stages, stages.won, stages.lost)
    end = pd.Timestamp(as_of)
    start = end - pd.Timedelta(weeks=weeks)
    total_days = (end - start).days
    n = rng.poisson(deals_per_rep_week * weeks * n_reps)
    rep = rng.integers(0, n_reps, n)
    created_off = np.sort(rng.integers(1, total_days + 1, n))
    rows_id, rows_stage, rows_day = [], [], []
    status, final_stage, close_off = [], [], []
    cycle = np.zeros(n)
    cum = np.cumsum(P, axis=1)
    for d in range(n):
        s, t = 0, int(created_off[d])
        oid = f"S{d:06d}"
        while True:
            rows_id.append(oid)
            rows_stage.append(labels[s])
            rows_day.append(t)
            if s >= n_open:
                status.append(WON if s == n_open else LOST)
                final_stage.append(labels[s])
                close_off.append(t)
                break
            hold = int(rng.geometric(1.0 / mean_holding_days[s]))
            nxt = int(np.searchsorted(cum[s], rng.random(), side="right"))
            if t + hold > total_days:
                status.append(OPEN)  # still in stage s on as_of: right-censored
                final_stage.append(labels[s])
                close_off.append(-1)
                if amount_cycle_elasticity:
                    cycle[d] = (
                        _run_to_close(rng, cum, mean_holding_days, n_open, nxt, t + hold) - created_off[d]
                    )
                break
            s, t = nxt, t + hold
            cycle[d] = t - created_off[d]
    sh = pd.DataFrame(
        {
            "opportunity_id": rows_id,
            "stage": rows_stage,
            "entered_date": start + pd.to_timedelta(rows_day, unit="D"),
        }
    )
    close = pd.Series(start + pd.to_timedelta(np.maximum(close_off, 0), unit="D"))
    close[np.asarray(close_off) < 0] = pd.NaT
    scale = amount_median
    if amount_cycle_elasticity:
        scale = amount_median * (np.maximum(cycle, 1.0) / CYCLE_REFERENCE_DAYS) ** amount_cycle_elasticity
    amount = np.round(scale * np.exp(amount_sigma * rng.standard_normal(n)), 0)
    products = np.array(["Core", "Plus"])[rng.integers(0, 2, n)]
    opp = pd.DataFrame(
        {
            "opportunity_id": [f"S{d:06d}" for d in range(n)],
            "rep_id": [f"R{r + 1:02d}" for r in rep],
            "product": products,
            "created_date": start + pd.to_timedelta(created_off, unit="D"),
            "stage": final_stage,
            "status": status,
            "close_date": close.to_numpy(),
            "amount": amount,
        }
    )
    reps = pd.DataFrame(
        {"rep_id": [f"R{r + 1:02d}" for r in range(n_reps)], "region": "North", "weekly_hours": 40.0}
    )
    return SyntheticHistory(opp, sh, reps, stages, end, P, np.asarray(mean_holding_days, float))


def _run_to_close(
    rng: np.random.Generator, cum: np.ndarray, mean_holding_days: np.ndarray, n_open: int, s: int, t: int
) -> int:
    """Day a deal entering state ``s`` on day ``t`` is won or lost, after the snapshot [day]."""
    while s < n_open:
        t += int(rng.geometric(1.0 / mean_holding_days[s]))
        s = int(np.searchsorted(cum[s], rng.random(), side="right"))
    return t


def true_value_closed(
    transition_matrix: np.ndarray,
    mean_holding_days: np.ndarray,
    horizon_days: int,
    *,
    amount_median: float,
    amount_sigma: float,
    amount_cycle_elasticity: float,
    deals: int = 200_000,
    seed: int = 1,
) -> tuple[float, float]:
    """Mean value of a won deal created in a horizon and won inside it, in the true process.

    Deals are created uniformly over the ``horizon_days`` days and run through the jump chain with
    geometric holding times (vectorised over deals); the expected value given the cycle is exact
    (lognormal mean), so only the cycles are Monte Carlo.

    Returns
    -------
    tuple
        ``(mean value [currency], won share)``: of deals created in the horizon, the mean expected
        value of those won by its end, and the share won by then [0-1].
    """
    rng = np.random.default_rng(seed)
    cum = np.cumsum(np.asarray(transition_matrix, float), axis=1)
    n_open = len(mean_holding_days)
    created = rng.integers(1, horizon_days + 1, deals)
    state = np.zeros(deals, np.int64)
    t = created.copy()
    active = np.ones(deals, bool)
    while active.any():
        i = np.flatnonzero(active)
        hold = rng.geometric(1.0 / np.asarray(mean_holding_days, float)[state[i]])
        u = rng.random(i.size)
        t[i] += hold
        state[i] = (cum[state[i]] <= u[:, None]).sum(axis=1)  # searchsorted "right", row-wise
        active[i] = (state[i] < n_open) & (t[i] <= horizon_days)
    won = (state == n_open) & (t <= horizon_days)
    cycle = np.maximum(t[won] - created[won], 1).astype(float)
    value = (
        amount_median
        * np.exp(amount_sigma**2 / 2)
        * (cycle / CYCLE_REFERENCE_DAYS) ** amount_cycle_elasticity
    )
    return float(value.mean()), float(won.mean())


def synthetic_funnel(
    *,
    conversion: float = 0.10,
    median_days: float = 45.0,
    sigma: float = 0.8,
    leads_per_week: float = 60.0,
    weeks: int = 104,
    n_reps: int = 4,
    as_of: str = "2025-12-31",
    window_start: str | None = None,
    amount: float = 5_000.0,
    seed: int = 0,
    conversion_drift: float = 0.0,
) -> SyntheticHistory:
    """A lead funnel exported with won and still-open leads only (no explicit losses), e.g. MQLs.

    Parameters
    ----------
    conversion
        Share of leads that are ever won [0-1]; the others stay open for ever.
    median_days, sigma
        Time from creation to win: lognormal with this median [days] and log-sd.
    leads_per_week, weeks, n_reps
        Poisson lead creation [leads/week] over ``weeks`` weeks before ``as_of``, spread over reps.
    window_start
        Left truncation: an export that only shows leads open on or created after this date (leads won
        before it are missing). ``None``: every lead is in the export.
    amount
        Value of a won lead [currency].
    conversion_drift
        Trend of the logit conversion in creation date [logit per year]: a lead created ``y`` years
        before ``as_of`` converts with ``expit(logit(conversion) - conversion_drift * y)``, so
        ``conversion`` is the rate of leads created on ``as_of``. 0: constant (the same draws).

    Returns
    -------
    SyntheticHistory
        One open stage ``Lead``; leads won after ``as_of`` are open on it (right-censored).
        ``transition_matrix`` holds the truth (never-converting leads in the lost column).
    """
    rng = np.random.default_rng(seed)
    stages = StageSet(("Lead",))
    end = pd.Timestamp(as_of)
    start = end - pd.Timedelta(weeks=weeks)
    n = int(rng.poisson(leads_per_week * weeks))
    created = start + pd.to_timedelta(np.sort(rng.integers(1, (end - start).days + 1, n)), unit="D")
    years_before = ((end - created).days / 365.25).to_numpy(float)
    logit = np.log(conversion / (1.0 - conversion)) - conversion_drift * years_before
    converts = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    days = np.ceil(median_days * np.exp(sigma * rng.standard_normal(n))).astype(int)
    won_date = created + pd.to_timedelta(days, unit="D")
    won = converts & (won_date <= end)
    keep = np.ones(n, bool)
    if window_start is not None:
        keep = ~(won & (won_date < pd.Timestamp(window_start)))
    opp = pd.DataFrame(
        {
            "opportunity_id": [f"L{i:06d}" for i in range(n)],
            "rep_id": [f"R{r + 1:02d}" for r in rng.integers(0, n_reps, n)],
            "product": "Core",
            "created_date": created,
            "stage": np.where(won, stages.won, "Lead"),
            "status": np.where(won, WON, OPEN),
            "close_date": pd.Series(won_date).where(won).to_numpy(),
            "amount": np.where(won, amount, np.nan),
        }
    )[keep].reset_index(drop=True)
    reps = pd.DataFrame({"rep_id": [f"R{r + 1:02d}" for r in range(n_reps)], "region": "North"})
    P = np.array([[0.0, conversion, 1.0 - conversion], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    empty = pd.DataFrame(columns=["opportunity_id", "stage", "entered_date"])
    mean_days = median_days * np.exp(sigma**2 / 2)
    return SyntheticHistory(opp, empty, reps, stages, end, P, np.array([mean_days]))
