"""Pipeline model: bookings distributions from the CRM pipeline (Monte Carlo, Markov oracle, simpy).

Calibrate the process from history (:func:`calibrate_pipeline`), list today's open deals with
their exact win probabilities (:func:`open_pipeline`), compile the arrays of a run
(:func:`compile_inputs`) and simulate trials x reps x periods in seeded blocks
(:func:`simulate_pipeline`, Dask-ready via :func:`simulate_blocks`). :func:`absorbing_chain` is
the exact oracle, :func:`simulate_capacity` the simpy model of reps with limited selling hours.
Parameter uncertainty and over-dispersion live in :mod:`.uncertainty`, the survival estimators in
:mod:`.survival`; the honest check against what happened is the backtest harness,
:mod:`salesops_models.backtest`.
"""

from salesops_models.pipeline.calibration import (
    CalibrationWarning,
    PipelineCalibration,
    calibrate_pipeline,
    stage_visits,
)
from salesops_models.pipeline.capacity import CapacityResult, effort_vector, simulate_capacity
from salesops_models.pipeline.markov import AbsorbingChain, absorbing_chain
from salesops_models.pipeline.quarters import closed_to_date_by_period, quarterly_bookings_samples
from salesops_models.pipeline.scaling import (
    CreationPlan,
    CreationResponse,
    admin_time_scale,
    calibrate_creation_response,
    plan_creation_rates,
    selling_admin_hours,
)
from salesops_models.pipeline.simulation import (
    PipelineSimulation,
    SimulationInputs,
    age_aware_win_probability,
    closed_to_date,
    compile_inputs,
    open_pipeline,
    simulate_blocks,
    simulate_pipeline,
)
from salesops_models.pipeline.synthetic import SyntheticHistory, synthetic_history
from salesops_models.pipeline.uncertainty import ParameterUncertainty

__all__ = [
    "AbsorbingChain",
    "CalibrationWarning",
    "CapacityResult",
    "CreationPlan",
    "CreationResponse",
    "ParameterUncertainty",
    "PipelineCalibration",
    "PipelineSimulation",
    "SimulationInputs",
    "SyntheticHistory",
    "absorbing_chain",
    "admin_time_scale",
    "age_aware_win_probability",
    "calibrate_creation_response",
    "calibrate_pipeline",
    "closed_to_date",
    "closed_to_date_by_period",
    "compile_inputs",
    "effort_vector",
    "open_pipeline",
    "plan_creation_rates",
    "quarterly_bookings_samples",
    "selling_admin_hours",
    "simulate_blocks",
    "simulate_capacity",
    "simulate_pipeline",
    "stage_visits",
    "synthetic_history",
]
