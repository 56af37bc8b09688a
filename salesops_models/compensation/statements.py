"""Every rep's calculation trace over the same inputs the engine used: what a payout statement shows.

:func:`payout_traces` runs :func:`~salesops_models.compensation.trace.payout_trace` for each rep at a
quantile of the rep's simulated bookings (the median by default), with the rep's own product mix,
quarterly quota shares, deal sizes and relief taken from the :class:`CompInputs` the cost simulation
ran on, so a statement and the cost figures never disagree about a rep's inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesops_models.compensation.attainment import AttainmentSamples
from salesops_models.compensation.plan import CompPlan
from salesops_models.compensation.simulation import CompInputs
from salesops_models.compensation.trace import payout_trace

TRACE_COLUMNS = [
    "rep_id",
    "plan",
    "step",
    "component",
    "formula",
    "amount",
    "unit",
    "note",
    "bookings",
    "quota",
]


def rep_product_mix(inputs: CompInputs, rep_id: str) -> dict[str, float] | None:
    """A rep's share of bookings by product [0-1]; reps without history get the company mean mix."""
    mix = inputs.product_mix
    if mix is None:
        return None
    row = mix.reindex([str(rep_id)]).fillna(mix.mean()).iloc[0]
    return {str(k): float(v) for k, v in row.items()}


def payout_traces(
    plan: CompPlan,
    samples: AttainmentSamples,
    inputs: CompInputs,
    *,
    rep_ids: Sequence[str] | None = None,
    quantile: float = 0.5,
) -> pd.DataFrame:
    """The calculation trace of every rep (or of ``rep_ids``) at a quantile of its simulated bookings.

    Parameters
    ----------
    plan
        The plan (the scenario's primary plan).
    samples
        The attainment set the plan was costed on (bookings per rep and trial, quotas).
    inputs
        The engine's other inputs: product mix, deal sizes, relief, quarterly quota shares.
    rep_ids
        Only these reps (default: all of ``samples``), in this order.
    quantile
        Which of the rep's simulated annual bookings to trace [0-1] (0.5: the median trial).

    Returns
    -------
    pandas.DataFrame
        One row per step: ``rep_id``, ``plan``, ``step`` (1, 2, ... per rep), ``component``,
        ``formula``, ``amount`` [``unit``], ``unit`` (currency, fraction, factor), ``note``,
        ``bookings`` (the traced annual bookings [currency]) and ``quota`` (annual, before relief
        [currency]).
    """
    reps = list(samples.rep_ids) if rep_ids is None else [str(r) for r in rep_ids]
    position = {str(r): i for i, r in enumerate(samples.rep_ids)}
    unknown = [r for r in reps if r not in position]
    if unknown:
        raise KeyError(f"reps {unknown[:3]} are not in the attainment set '{samples.label}'")
    shares = inputs.quota_period_shares
    frames = []
    for rep in reps:
        i = position[rep]
        bookings = float(np.quantile(samples.bookings[i], quantile))
        period_shares = None
        if plan.periods > 1 and shares is not None:
            s = np.asarray(shares, float)
            period_shares = [float(x) for x in (s[:, i] if s.ndim == 2 else s)]
        trace = payout_trace(
            plan,
            bookings,
            float(samples.quota[i]),
            rep_id=rep,
            product_mix=rep_product_mix(inputs, rep),
            quota_period_shares=period_shares,
            deal_size=inputs.deal_size,
            quota_relief=float(inputs.quota_relief.get(rep, 0.0)),
        )
        frame = trace.to_frame()
        frame.insert(0, "step", np.arange(1, len(frame) + 1))
        frames.append(
            frame.assign(rep_id=rep, plan=plan.name, bookings=bookings, quota=float(samples.quota[i]))
        )
    if not frames:
        return pd.DataFrame(columns=TRACE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[TRACE_COLUMNS]
