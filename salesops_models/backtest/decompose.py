"""Where a pipeline backtest goes wrong: the horizon's won revenue split by where the wins come from.

At a cutoff the pipeline model forecasts the won revenue of a horizon ``[start, end)`` as the sum of
two parts with different drivers:

- **open**: wins from the deals open on the cutoff (the open pipeline: its size, the age of its
  deals and their conversion inside the horizon);
- **new**: wins from deals created after the cutoff (creation rate, in-horizon conversion, cycle).

:func:`decompose_horizon` simulates each part on its own (open deals without creation, creation
without open deals; the same calibration and settings as the backtest) and sets beside each what
really happened, in count, value, mean won size, conversion and created-to-won cycle.
:func:`open_pipeline_by_age` splits the open part further by the deals' age on the cutoff and
says what became of them (won or lost inside the horizon, still open at the export's end).

The parts are simulated separately, so a trial's parameter draws (§2a of docs/pipeline.md) are not
shared between them: their means add up to the mean of the joint run, their quantiles do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.backtest.pipeline import calibrate_at_cutoff
from salesops_models.backtest.snapshot import company_at
from salesops_models.data.company import CompanyData
from salesops_models.data.schema import LOST, OPEN, WON
from salesops_models.pipeline.calibration import PipelineCalibration
from salesops_models.pipeline.config import PipelineConfig
from salesops_models.pipeline.simulation import compile_inputs, simulate_pipeline

# Age bands of the open pipeline on the cutoff [days in the current stage]: fresh, a month,
# a quarter, older than a quarter. The last band is open-ended.
AGE_BANDS = (0, 15, 31, 61, 91, 121)


@dataclass
class HorizonDecomposition:
    """The horizon's won revenue at one cutoff, by part, model against actual.

    Attributes
    ----------
    cutoff, start, end
        The cutoff and the horizon ``[start, end)``.
    table
        One row per part (``open``, ``new``): ``deals`` (open deals on the cutoff that the model
        keeps live / deals created in the horizon; model mean and actual), ``won`` (deals won inside
        the horizon; model mean, P10, P90 and actual), ``value`` (won value inside the horizon
        [currency]; model mean, P10, P90 and actual), ``won_size`` (mean won value per won deal
        [currency]), ``conversion`` (won inside the horizon / deals [-]) and, for the new part,
        ``cycle_days`` (mean created-to-won days of the deals won inside the horizon [days]).
        Model columns start with ``model_``, actual ones with ``actual_``.
    by_age
        The open part by age band on the cutoff (:func:`open_pipeline_by_age`); empty when not asked.
    """

    cutoff: pd.Timestamp
    start: pd.Timestamp
    end: pd.Timestamp
    table: pd.DataFrame
    by_age: pd.DataFrame


def _created(opportunities: pd.DataFrame, stage_history: pd.DataFrame) -> pd.Series:
    """Creation date of each deal: its own, else its first stage-history date (as :func:`snapshot_at`)."""
    first = stage_history.groupby("opportunity_id")["entered_date"].min()
    return opportunities["created_date"].fillna(opportunities["opportunity_id"].map(first))


def _summary(x: np.ndarray) -> tuple[float, float, float]:
    """Mean, P10 and P90 of a sample."""
    q10, q90 = np.percentile(x, [10, 90])
    return float(np.mean(x)), float(q10), float(q90)


def _simulate_part(
    cal: PipelineCalibration,
    deals: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    cfg: PipelineConfig,
    *,
    new_deals: bool,
    trials: int,
    seed: np.random.SeedSequence,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Won value, won deals, created deals, new deals won and their summed cycle days per trial."""
    inputs = compile_inputs(
        cal,
        deals,
        [start, end],
        age_aware=cfg.age_aware,
        stale_policy=cfg.stale_policy,
        uncertainty=cfg.uncertainty,
        new_deals=new_deals,
    )
    sim = simulate_pipeline(
        inputs,
        cal.rep_ids,
        trials=trials,
        block_size=cfg.block_size,
        seed=seed,
    )
    return sim.bookings.sum(axis=(1, 2)), sim.won, sim.created, sim.new_won, sim.new_cycle_days


def decompose_horizon(
    company: CompanyData,
    cutoff: pd.Timestamp | str,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    cfg: PipelineConfig | None = None,
    *,
    trials: int = 1000,
    seed: np.random.SeedSequence | int = 0,
    by_age: bool = True,
) -> HorizonDecomposition:
    """Split the horizon's won revenue into wins from open deals and from new deals, model and actual.

    Parameters
    ----------
    company
        The full history (the actuals come from it); it is cut at ``cutoff`` with
        :func:`~salesops_models.backtest.snapshot.company_at` for the model.
    cutoff
        Last day of known history.
    start, end
        Horizon [first day, day after the last]; ``start`` after ``cutoff``.
    cfg
        Pipeline settings (default: the package defaults).
    trials, seed
        Monte Carlo trials and seed of each part (the same seed for both parts).
    by_age
        Also split the open part by age band (one more simulation per band).

    Returns
    -------
    HorizonDecomposition
        The table of both parts; the actual ``value`` of the two parts adds up to the won value of
        the horizon (:func:`~salesops_models.backtest.snapshot.won_in`).
    """
    cfg = cfg or PipelineConfig()
    cutoff, start, end = pd.Timestamp(cutoff), pd.Timestamp(start), pd.Timestamp(end)
    seed = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    known = company_at(company, cutoff)
    cal, deals, _ = calibrate_at_cutoff(known, cfg)
    live = deals if cfg.stale_policy == "fresh" else deals[~deals["stale"]]
    runs = {
        "open": _simulate_part(cal, deals, start, end, cfg, new_deals=False, trials=trials, seed=seed),
        "new": _simulate_part(cal, deals.iloc[:0], start, end, cfg, new_deals=True, trials=trials, seed=seed),
    }

    opp = company.opportunities
    created = _created(opp, company.stage_history)
    won_h = (opp["status"] == WON) & (opp["close_date"] >= start) & (opp["close_date"] < end)
    after = created > cutoff
    actual_deals = {"open": len(live), "new": int((after & (created < end)).sum())}
    actual_won = {"open": opp[won_h & ~after], "new": opp[won_h & after]}

    rows = []
    for part, (value, won, made, new_won, new_days) in runs.items():
        a = actual_won[part]
        m_deals = float(np.mean(made)) if part == "new" else float(len(live))
        row: dict[str, Any] = {"part": part, "model_deals": m_deals, "actual_deals": actual_deals[part]}
        for name, x, act in (("won", won, len(a)), ("value", value, float(a["amount"].sum()))):
            mean, q10, q90 = _summary(np.asarray(x, float))
            row |= {f"model_{name}": mean, f"model_{name}_p10": q10, f"model_{name}_p90": q90}
            row[f"actual_{name}"] = act
        row["model_won_size"] = row["model_value"] / row["model_won"] if row["model_won"] else np.nan
        row["actual_won_size"] = float(a["amount"].mean()) if len(a) else np.nan
        row["model_conversion"] = row["model_won"] / m_deals if m_deals else np.nan
        row["actual_conversion"] = len(a) / actual_deals[part] if actual_deals[part] else np.nan
        if part == "new":
            row["model_cycle_days"] = float(np.sum(new_days) / np.sum(new_won)) if np.sum(new_won) else np.nan
            cyc = (a["close_date"] - created[a.index]).dt.days
            row["actual_cycle_days"] = float(cyc.mean()) if len(a) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    ages = (
        open_pipeline_by_age(company, cal, deals, start, end, cfg, trials=trials, seed=seed)
        if by_age
        else pd.DataFrame()
    )
    return HorizonDecomposition(cutoff, start, end, table, ages)


def open_pipeline_by_age(
    company: CompanyData,
    cal: PipelineCalibration,
    deals: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    cfg: PipelineConfig,
    *,
    trials: int,
    seed: np.random.SeedSequence,
) -> pd.DataFrame:
    """The open pipeline on the cutoff by age band: the model's and the real fate of its deals.

    Returns
    -------
    pandas.DataFrame
        One row per age band (``age_from``, ``age_to`` [days], ``to`` open-ended in the last band):
        ``deals``, ``stale`` (share the model drops as dead pipeline), ``model_won`` (share won inside
        the horizon, mean over trials), ``actual_won`` / ``actual_lost`` (shares won / lost inside
        the horizon), ``actual_won_later`` / ``actual_lost_later`` (after it) and ``actual_open_at_end``
        (still open on the export's ``as_of``: deals that may never be decided).
    """
    full = company.opportunities.set_index("opportunity_id")
    edges = np.asarray(AGE_BANDS + (np.iinfo(np.int64).max,))
    band = np.searchsorted(edges, deals["age_days"].to_numpy(np.int64), side="right") - 1
    rows = []
    for b in range(len(AGE_BANDS)):
        part = deals[band == b]
        if part.empty:
            continue
        won = _simulate_part(cal, part, start, end, cfg, new_deals=False, trials=trials, seed=seed)[1]
        real = full.loc[part["opportunity_id"]]
        inside = real["close_date"] < end
        rows.append(
            {
                "age_from": int(edges[b]),
                "age_to": int(edges[b + 1]) if b + 1 < len(AGE_BANDS) else None,
                "deals": len(part),
                "stale": float(part["stale"].mean()),
                "model_won": float(np.mean(won)) / len(part),
                "actual_won": float(((real["status"] == WON) & inside).mean()),
                "actual_lost": float(((real["status"] == LOST) & inside).mean()),
                "actual_won_later": float(((real["status"] == WON) & ~inside).mean()),
                "actual_lost_later": float(((real["status"] == LOST) & ~inside).mean()),
                "actual_open_at_end": float((real["status"] == OPEN).mean()),
            }
        )
    return pd.DataFrame(rows)
