"""Simulated bookings by calendar quarter: the per-quarter view of a :class:`PipelineSimulation`.

The simulation keeps bookings per trial x rep x month; plans pay and reps are judged by quarter.
:func:`quarterly_bookings_samples` sums the months of each quarter and puts the bookings already
closed before the snapshot (:func:`closed_to_date_by_period`) into the quarter they closed in, so
that the quarters of a trial add up to that trial's plan-year bookings in ``rep_bookings_samples``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesops_models.data.schema import WON
from salesops_models.errors import SalesopsError
from salesops_models.pipeline.simulation import PipelineSimulation


def quarter_labels(periods: Sequence[str]) -> list[str]:
    """The quarter (``YYYY-Qn``) of each monthly period label (``YYYY-MM``).

    Raises
    ------
    SalesopsError
        A label is not a month (e.g. ``all`` for a simulation without a horizon).
    """
    try:
        months = pd.PeriodIndex(list(periods), freq="M")
    except (ValueError, TypeError) as exc:
        raise SalesopsError(
            f"periods {list(periods)[:3]}...: quarterly bookings need monthly periods 'YYYY-MM' "
            "(simulate with a plan-year horizon)"
        ) from exc
    return [f"{p.year}-Q{p.quarter}" for p in months]


def closed_to_date_by_period(
    opportunities: pd.DataFrame, rep_ids: Sequence[str], edges: pd.DatetimeIndex, as_of: pd.Timestamp
) -> np.ndarray:
    """Won value closed between the horizon's start and ``as_of``, per rep and period [currency].

    Parameters
    ----------
    opportunities
        Canonical opportunities (``status``, ``close_date``, ``amount``, ``rep_id``).
    rep_ids
        Reps (rows of the result).
    edges
        Period edges: ``len(edges) - 1`` periods, period ``k`` is ``[edges[k], edges[k+1])``.
    as_of
        Snapshot date; deals closed after it are simulated, not counted here.

    Returns
    -------
    numpy.ndarray
        Shape (reps, periods). Its row sums equal :func:`~salesops_models.pipeline.closed_to_date`
        whenever ``as_of`` lies before the last edge.
    """
    start = pd.Timestamp(edges[0])
    won = opportunities[
        (opportunities["status"] == WON)
        & (opportunities["close_date"] >= start)
        & (opportunities["close_date"] <= pd.Timestamp(as_of))
    ]
    out = np.zeros((len(rep_ids), len(edges) - 1))
    if won.empty:
        return out
    period = np.searchsorted(edges.to_numpy(), won["close_date"].to_numpy(), side="right") - 1
    keep = (period >= 0) & (period < len(edges) - 1)
    row = pd.Index([str(r) for r in rep_ids]).get_indexer(won["rep_id"].astype(str))
    keep &= row >= 0
    np.add.at(out, (row[keep], period[keep]), won["amount"].to_numpy(float)[keep])
    return out


def quarterly_bookings_samples(
    sim: PipelineSimulation, closed_by_period: np.ndarray | None = None
) -> pd.DataFrame:
    """Simulated bookings per trial, rep and calendar quarter [currency].

    Parameters
    ----------
    sim
        A simulation over monthly periods (``sim.periods`` like ``2026-01``).
    closed_by_period
        Bookings already closed, shape (reps, periods) [currency] (see
        :func:`closed_to_date_by_period`); default: ``sim.closed_to_date`` must be zero.

    Returns
    -------
    pandas.DataFrame
        Long table ``trial``, ``rep_id``, ``quarter`` (``YYYY-Qn``), ``bookings``; for every trial and
        rep the quarters add up to the plan-year bookings of ``sim.rep_bookings_samples()``.

    Raises
    ------
    SalesopsError
        The closed-to-date bookings cannot be placed in quarters.
    """
    n_reps, n_periods = sim.bookings.shape[1:]
    if closed_by_period is None:
        if np.any(sim.closed_to_date != 0):
            raise SalesopsError(
                "the simulation carries bookings closed before the snapshot; pass closed_by_period "
                "(closed_to_date_by_period) so they land in the quarter they closed in"
            )
        closed_by_period = np.zeros((n_reps, n_periods))
    if closed_by_period.shape != (n_reps, n_periods):
        raise SalesopsError(
            f"closed_by_period has shape {closed_by_period.shape}; expected (reps, periods) = "
            f"({n_reps}, {n_periods})"
        )
    if not np.allclose(closed_by_period.sum(axis=1), sim.closed_to_date, rtol=1e-9, atol=1e-6):
        raise SalesopsError(
            "closed_by_period does not add up to the simulation's closed_to_date per rep; build both from "
            "the same opportunities, horizon start and as_of"
        )
    labels = quarter_labels(sim.periods)
    quarters = list(dict.fromkeys(labels))  # first-seen order: the calendar order of the periods
    col = np.array([quarters.index(q) for q in labels])
    monthly = sim.bookings + closed_by_period[None, :, :]
    by_q = np.zeros((sim.bookings.shape[0], n_reps, len(quarters)))
    for k in range(len(quarters)):
        by_q[:, :, k] = monthly[:, :, col == k].sum(axis=2)
    t, r, q = by_q.shape
    return pd.DataFrame(
        {
            "trial": np.repeat(np.arange(t, dtype=np.int64), r * q),
            "rep_id": np.tile(np.repeat(sim.rep_ids.astype(str), q), t),
            "quarter": np.tile(np.array(quarters, dtype=object), t * r),
            "bookings": by_q.ravel(),
        }
    ).astype({"quarter": "string", "rep_id": "string"})
