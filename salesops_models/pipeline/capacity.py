"""Capacity-limited reps: a simpy event simulation of the same pipeline process.

Each rep sells a limited number of hours a week. Every stage visit of a deal needs some of its rep's
selling hours (``effort_hours``); a deal waits in the rep's queue until he has time, then spends
the calibrated holding time in the stage. Where reps have spare time the timing equals the
vectorised model's; where they do not, deals queue and close later (or after the horizon). Win
and loss probabilities never change: capacity moves *when* deals close, not *whether*.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import simpy

from salesops_models.errors import SalesopsError
from salesops_models.pipeline.calibration import PipelineCalibration
from salesops_models.pipeline.simulation import (
    GAP,
    SimulationInputs,
    block_seed,
    draw_atoms,
    new_deal_size_cells,
)

log = logging.getLogger(__name__)

Routing = Literal["owner", "round_robin", "capacity_aware"]


def effort_vector(calibration: PipelineCalibration, effort_hours: float | dict[str, float]) -> np.ndarray:
    """Effort per open stage [h/visit] from one number or a mapping stage label -> hours."""
    n = calibration.n_open
    if isinstance(effort_hours, dict):
        unknown = sorted(set(effort_hours) - set(calibration.states[:n]))
        if unknown:
            raise SalesopsError(
                f"pipeline.capacity.effort_hours: unknown stage(s) {unknown}; open stages are "
                f"{list(calibration.states[:n])}."
            )
        return np.array([float(effort_hours.get(s, 0.0)) for s in calibration.states[:n]])
    return np.full(n, float(effort_hours))


@dataclass
class CapacityResult:
    """Bookings and time use of the capacity model, per trial.

    Attributes
    ----------
    bookings
        (trials, reps, periods) won value closing in each period [currency].
    won, lost
        Deals won / lost inside the horizon per trial [deals].
    busy_days
        (trials, reps) days of selling time used inside the horizon [days].
    queue_days
        Mean wait of a stage visit for its rep, per trial [days].
    horizon_days
        Length of the horizon [days].
    """

    rep_ids: np.ndarray
    periods: list[str]
    bookings: np.ndarray
    won: np.ndarray
    lost: np.ndarray
    busy_days: np.ndarray
    queue_days: np.ndarray
    horizon_days: int
    routing: str

    def total_bookings(self) -> np.ndarray:
        return self.bookings.sum(axis=(1, 2))

    def rep_summary(self) -> pd.DataFrame:
        """Per rep: bookings mean/p10/p50/p90 [currency] and utilisation [0-1]."""
        rb = self.bookings.sum(axis=2)
        q = np.percentile(rb, [10, 50, 90], axis=0)
        return pd.DataFrame(
            {
                "rep_id": self.rep_ids.astype(str),
                "mean": rb.mean(axis=0),
                "p10": q[0],
                "p50": q[1],
                "p90": q[2],
                "utilisation": self.busy_days.mean(axis=0) / self.horizon_days,
            }
        )

    def summary(self) -> dict[str, float]:
        tot = self.total_bookings()
        with np.errstate(invalid="ignore", divide="ignore"):
            wr = self.won.sum() / (self.won.sum() + self.lost.sum())
        return {
            "trials": len(tot),
            "bookings_mean": float(tot.mean()),
            "bookings_se": float(tot.std(ddof=1) / np.sqrt(len(tot))) if len(tot) > 1 else float("nan"),
            "bookings_p10": float(np.percentile(tot, 10)),
            "bookings_p50": float(np.percentile(tot, 50)),
            "bookings_p90": float(np.percentile(tot, 90)),
            "win_rate": float(wr),
            "utilisation": float(self.busy_days.mean() / self.horizon_days),
            "queue_days_mean": float(np.nanmean(self.queue_days)),
        }


def _paths(
    inp: SimulationInputs,
    rng: np.random.Generator,
    state: np.ndarray,
    clock_offset: np.ndarray,
    first: np.ndarray | None,
) -> tuple[list[list[tuple[int, int]]], np.ndarray]:
    """Draw each token's stage visits ``[(stage, holding days), ...]`` and final state.

    ``first`` (open deals) holds the conditional first-draw points; paths stop once the
    unconstrained clock passes the horizon (capacity can only delay a deal further).
    """
    n = state.size
    H = inp.horizon_days or 10**9
    steps: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    clock = clock_offset.astype(np.int64).copy()
    active = np.arange(n)
    cur = state.astype(np.int64).copy()
    for step in range(inp.max_steps):
        if not active.size:
            break
        if step == 0 and first is not None:
            v = first[active]
            k = draw_atoms(inp, v)
            hold = np.maximum(inp.atom_days[k] - inp.deal_age[active], 1)
        else:
            v = GAP * cur[active] + rng.random(active.size)
            k = draw_atoms(inp, v)
            hold = inp.atom_days[k].astype(np.int64)
        for t, s, h in zip(active.tolist(), cur[active].tolist(), hold.tolist(), strict=True):
            steps[t].append((s, h))
        cur[active] = inp.atom_next[k]
        clock[active] += hold
        still = (cur[active] < inp.n_open) & (clock[active] <= H)
        active = active[still]
    return steps, cur


def simulate_capacity(
    inputs: SimulationInputs,
    rep_ids: np.ndarray,
    *,
    selling_hours: np.ndarray,
    effort_hours: np.ndarray,
    routing: Routing = "owner",
    trials: int = 10,
    seed: np.random.SeedSequence | int = 0,
    periods: list[str] | None = None,
) -> CapacityResult:
    """Simulate ``trials`` horizons with capacity-limited reps (simpy), one seed block per trial.

    Parameters
    ----------
    inputs
        Compiled arrays (:func:`~salesops_models.pipeline.simulation.compile_inputs`) with a horizon.
    rep_ids
        Reps in the order of ``inputs``.
    selling_hours
        Selling hours of each rep a week [h/week] (after any admin-time what-if).
    effort_hours
        Rep effort each open stage visit needs [h/visit], one per open stage.
    routing
        'owner': new deals arrive per rep at his calibrated rate (the vectorised model's rule);
        'round_robin': the pooled arrivals are dealt to reps in turn; 'capacity_aware': each
        arrival goes to the rep with the least queued work (ties: lowest index).
    trials
        Number of trials; trial ``t`` draws from ``SeedSequence(entropy, spawn_key=(*key, t))``.

    Notes
    -----
    A visit of stage :math:`i` takes the rep :math:`e_i / (S_r / 7)` days of exclusive time
    (FIFO queue), then the deal waits the rest of its holding time,
    :math:`\\max(h - e_i / (S_r/7), 0)`; with no queue and :math:`e_i/(S_r/7) \\le h` the close
    date equals the vectorised model's. Utilisation is :math:`\\sum` work days / horizon days.
    """
    inp = inputs
    if inp.horizon_days is None:
        raise SalesopsError("simulate_capacity needs a horizon: compile the inputs with period_edges.")
    H = inp.horizon_days
    R, P = inp.n_reps, inp.n_periods
    sell = np.asarray(selling_hours, float)
    if sell.shape != (R,) or (sell <= 0).any():
        raise SalesopsError(
            f"selling_hours must be {R} positive numbers [h/week], one per rep; got shape {sell.shape}."
        )
    effort = np.asarray(effort_hours, float)
    if effort.shape != (inp.n_open,) or (effort < 0).any():
        raise SalesopsError(
            f"effort_hours must be {inp.n_open} non-negative numbers [h/visit], one per open stage."
        )
    rate = sell / 7.0  # selling hours a day
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    bookings = np.zeros((trials, R, P))
    won = np.zeros(trials, np.int64)
    lost = np.zeros(trials, np.int64)
    busy = np.zeros((trials, R))
    queue = np.full(trials, np.nan)
    for t in range(trials):
        rng = np.random.default_rng(block_seed(ss, t))
        res = _one_trial(inp, rng, rate, effort, routing)
        bookings[t], won[t], lost[t], busy[t], queue[t] = res
    return CapacityResult(
        rep_ids=np.asarray(rep_ids),
        periods=periods or [f"p{k}" for k in range(P)],
        bookings=bookings,
        won=won,
        lost=lost,
        busy_days=busy,
        queue_days=queue,
        horizon_days=H,
        routing=routing,
    )


def _one_trial(
    inp: SimulationInputs, rng: np.random.Generator, rate: np.ndarray, effort: np.ndarray, routing: str
) -> tuple[np.ndarray, int, int, np.ndarray, float]:
    H = inp.horizon_days
    assert H is not None
    R, P = inp.n_reps, inp.n_periods
    D = inp.deal_lo.size
    # ---- open deals ----------------------------------------------------------------------------
    first = inp.deal_lo + rng.random(D) * inp.deal_span
    open_paths, open_final = _paths(inp, rng, np.zeros(D, np.int64), np.zeros(D, np.int64), first)
    # ---- new deals --------------------------------------------------------------------------------
    counts = rng.poisson(inp.new_rate)
    if routing != "owner":
        pooled = counts.sum(axis=0)  # arrivals per week, owner decided on arrival
        rep_w = np.repeat(np.arange(pooled.size), pooled)
        new_owner = np.full(rep_w.size, -1, np.int64)
        new_week = rep_w
    else:
        cell = np.repeat(np.arange(counts.size), counts.ravel())
        new_owner, new_week = np.divmod(cell, counts.shape[1])
    n_new = new_week.size
    created = inp.week_start[new_week] + (rng.random(n_new) * inp.week_len[new_week]).astype(np.int64)
    order = np.argsort(created, kind="stable")
    created, new_owner = created[order], new_owner[order]
    group_u = rng.random(n_new)
    new_paths, new_final = _paths(inp, rng, np.full(n_new, inp.entry_stage, np.int64), created, None)
    amount_u = rng.random(D + n_new)
    pull_u = rng.random(D + n_new)

    env = simpy.Environment()
    reps = [simpy.Resource(env, capacity=1) for _ in range(R)]
    bookings = np.zeros((R, P))
    stats = {"won": 0, "lost": 0, "wait": 0.0, "visits": 0}
    busy = np.zeros(R)
    rr = {"next": 0}

    def close(token: int, rep: int, final: int, day_float: float, group: int, amount: float) -> None:
        day = int(np.floor(day_float + 1e-9))
        if day < 1 or day > H:
            return
        if final == inp.n_open + 1:
            stats["lost"] += 1
            return
        if final != inp.n_open:
            return
        stats["won"] += 1
        if np.isnan(amount):
            # a new deal's value follows its cycle, queueing included, as in the vectorised model
            if token >= D:
                off, cnt = new_deal_size_cells(inp, np.array([group]), np.array([day - created[token - D]]))
            else:
                off, cnt = inp.size_offset[[group]], inp.size_count[[group]]
            amount = inp.size_pool[int(off[0]) + int(amount_u[token] * int(cnt[0]))]
        length = inp.pull_len[day]
        if inp.pull > 0 and length > 0 and pull_u[token] < inp.pull:
            day = int(inp.pull_start[day] + int(pull_u[token] / inp.pull * length))
        p = inp.period_of_day[day]
        if p >= 0:
            bookings[rep, p] += amount

    def deal(
        token: int, rep: int, start: float, path: list[tuple[int, int]], final: int, group: int, amount: float
    ):  # type: ignore[no-untyped-def]
        if start > 0:
            yield env.timeout(start)
        if rep < 0:  # routed on arrival
            if routing == "round_robin":
                rep = rr["next"] % R
                rr["next"] += 1
            else:
                load = [len(r.queue) + r.count for r in reps]
                rep = int(np.argmin(np.asarray(load) / rate))
            group = int((inp.mix_rows[rep] < group_u[token - D]).sum())
        for stage, hold in path:
            work = effort[stage] / rate[rep]
            asked = env.now
            with reps[rep].request() as req:
                yield req
                stats["wait"] += env.now - asked
                stats["visits"] += 1
                begin = env.now
                yield env.timeout(work)
                busy[rep] += max(0.0, min(env.now, H) - min(begin, H))
            if hold > work:
                yield env.timeout(hold - work)
            if env.now > H:
                return
        close(token, rep, final, env.now, group, amount)

    for d in range(D):
        env.process(
            deal(
                d,
                int(inp.deal_rep[d]),
                0.0,
                open_paths[d],
                int(open_final[d]),
                int(inp.deal_group[d]),
                float(inp.deal_amount[d]),
            )
        )
    for j in range(n_new):
        owner = int(new_owner[j])
        grp = int((inp.mix_rows[owner] < group_u[j]).sum()) if owner >= 0 else -1
        env.process(deal(D + j, owner, float(created[j]), new_paths[j], int(new_final[j]), grp, float("nan")))
    env.run(until=H + 1)
    wait = stats["wait"] / stats["visits"] if stats["visits"] else float("nan")
    return bookings, stats["won"], stats["lost"], busy, wait
