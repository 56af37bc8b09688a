"""Territory alignment with fixed rep home bases: the public API.

:func:`assign_territories` prepares the instance (:mod:`~salesops_models.territory.instance`), then

- for large instances (from :data:`LP_ROUNDING_PAIRS` candidate pairs, or on request) solves the LP
  relaxation and rounds it (:mod:`~salesops_models.territory.lp_round`): a plan with a proven gap
  without the MILP;
- otherwise starts HiGHS on the exact model (:mod:`~salesops_models.territory.milp`, where the
  formulation is written) from a heuristic plan (:mod:`~salesops_models.territory.heuristics`).

:func:`evaluate_plan` scores a given plan with the same tables (:mod:`~salesops_models.territory.tables`),
:func:`disruption_tradeoff` traces travel against disruption.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

import networkx as nx
import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError, SalesopsError, format_rows
from salesops_models.territory import aggregate, regions
from salesops_models.territory.contiguity import AdjacencyGraph, Contiguity, adjacency_graph
from salesops_models.territory.heuristics import SearchLimits, connected_plan, greedy_start, polish
from salesops_models.territory.instance import (
    ACCOUNT_COUNT,
    AlignmentInstance,
    BalanceMetric,
    Objective,
    objective_scales,
    prepare_instance,
    require_columns,
)
from salesops_models.territory.lp_round import lp_round
from salesops_models.territory.milp import build_alignment_model, solve_alignment_model
from salesops_models.territory.neighbourhood import PairTerms
from salesops_models.territory.result import AlignmentResult
from salesops_models.territory.solver import (
    FEASIBLE,
    INFEASIBLE,
    OPTIMAL,
    RELAXED,
    Deadline,
    SolveInfo,
    SolverOptions,
    relative_gap,
    solver_versions,
)
from salesops_models.territory.tables import diagnose_plan, plan_tables

__all__ = [
    "ACCOUNT_COUNT",
    "LP_ROUNDING_PAIRS",
    "DEFAULT_SOLVER",
    "BalanceMetric",
    "SearchLimits",
    "assign_territories",
    "disruption_tradeoff",
    "evaluate_plan",
]

log = logging.getLogger(__name__)

#: Candidate pairs from which ``assign_territories`` starts with the LP relaxation and its rounding.
LP_ROUNDING_PAIRS = 10_000
#: Branch-and-bound nodes of the alignment MILP by default (the work limit that makes it reproducible).
DEFAULT_NODE_LIMIT = 300
#: The solver options of :func:`assign_territories` by default: work-limited, the clock only as a safety net.
DEFAULT_SOLVER = SolverOptions(time_limit=600.0, mip_gap=1e-4, node_limit=DEFAULT_NODE_LIMIT)


def assign_territories(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    *,
    balance: Sequence[BalanceMetric] = (BalanceMetric("workload_hours", 0.10),),
    travel_weight_column: str | None = "workload_hours",
    distance: pd.DataFrame | None = None,
    travel_weight: float = 1.0,
    disruption_column: str | None = None,
    disruption_weight: float = 0.0,
    disruption_budget: float | None = None,
    max_moves: int | None = None,
    locks: Mapping[str, str] | None = None,
    candidate_k: int | None = None,
    adjacency: nx.Graph | pd.DataFrame | None = None,
    contiguity: bool = False,
    contiguity_exceptions: Sequence[str] = (),
    contiguity_unit: str | None = None,
    warm_start: bool = True,
    heuristic_seconds: float | None = None,
    elastic_first: bool = True,
    normalize: bool = True,
    lp_rounding: bool | None = None,
    solver: SolverOptions | None = None,
    limits: SearchLimits | None = None,
) -> AlignmentResult:
    """Assign every account to one rep: compact, balanced and with limited disruption.

    Parameters
    ----------
    accounts
        One row per account: ``account_id``, ``lat``/``lon`` [deg] (unless ``distance`` is given),
        ``owner_rep_id`` (today's alignment; optional) and the metric columns named in ``balance``,
        ``travel_weight_column`` and ``disruption_column``.
    reps
        One row per rep: ``rep_id``, ``home_lat``/``home_lon`` [deg] (unless ``distance`` is given)
        and ``capacity`` [0-1] (default 1): a rep's target share of each metric is proportional to it.
    balance
        Metrics to balance, each with its tolerance around the capacity-weighted target.
    travel_weight_column
        Account column weighting distance in the travel term (workload hours: travel ~ visits);
        ``None`` weighs every account 1.
    distance
        Optional distance table [km] (index account_id, columns rep_id); default haversine between
        account and rep home base.
    travel_weight, disruption_weight
        Weights of the (normalised) travel and disruption terms of the objective [-].
    disruption_column
        Account column valuing a change of owner (e.g. ``revenue_last_year``); ``None`` counts accounts.
    disruption_budget
        Largest share of today's owned value that may change owner [0-1] (epsilon constraint).
    max_moves
        Largest number of accounts that may change owner.
    locks
        ``account_id -> rep_id`` assignments that must hold ("stay" = the current owner, "go" = another rep).
    candidate_k
        Keep only each account's ``candidate_k`` nearest reps (plus its owner and lock); ``None`` keeps all.
    adjacency
        Which units touch: a table of unit pairs (first two columns), or a ``networkx.Graph`` over unit
        ids. ``None``: the Delaunay graph of the account locations with long edges cut (see
        :mod:`~salesops_models.territory.contiguity`), or no graph without locations. With a graph the
        result counts the territories in pieces.
    contiguity
        Every territory must be connected over the graph (separator cuts, a cut loop on every MILP).
    contiguity_exceptions
        Rep ids whose territories may be in pieces.
    contiguity_unit
        Accounts column naming the unit of an account (e.g. a ZIP code); ``None``: each account is a unit.
    warm_start
        Start HiGHS from today's alignment rebalanced by :func:`greedy_start`.
    heuristic_seconds
        Wall-clock safety net of each of the two heuristic steps (greedy rebalancing, then polishing) [s];
        ``None``: only the whole alignment's (``solver.time_limit``). Their work limits are ``limits``.
    elastic_first
        Solve the elastic model straight away (default): it always has a plan, its bound is a valid
        bound of the strict model, and when its relaxations end at 0 its plan is a plan of the strict
        model. ``False`` solves the strict model first and falls back to the elastic one only when the
        strict model has no plan (which proves infeasibility when HiGHS says so).
    normalize
        Divide travel and disruption by their scales (see Notes of the module) so the weights are unit-free.
    lp_rounding
        Solve the LP relaxation first and round it (:mod:`~salesops_models.territory.lp_round`): a
        rounded plan that meets every constraint is returned with the LP bound and its proven gap,
        without the MILP. Without such a plan the (elastic) MILP runs and gives the diagnosis. ``None``
        (default): on from :data:`LP_ROUNDING_PAIRS` candidate pairs. An infeasible LP proves that no
        plan meets the bands. When :data:`~salesops_models.territory.regions.REGIONAL_PAIRS` is set (opt-in), from that many pairs (with
        account locations, without contiguity) the plan comes from regional alignments and the bound
        from the whole company's Lagrangian (:mod:`~salesops_models.territory.regions`); the LP path
        runs when they find no plan. From :data:`~salesops_models.territory.aggregate.AGGREGATE_PAIRS`
        pairs (without contiguity or a move cap) the plan comes from blocks of neighbouring accounts
        solved first, then improved account by account, and the bound is the Lagrangian value over
        every account pair at the block LP's duals (:mod:`~salesops_models.territory.aggregate`).
    solver
        MIP gap, node limit (the work limit of each MILP), threads; ``time_limit`` is the wall-clock
        safety net of the whole alignment (heuristics, LP and MILP together). Default
        :data:`DEFAULT_SOLVER`. See :class:`SolverOptions`.
    limits
        Work limits of the heuristics and the neighbourhood search (default :class:`SearchLimits`).

    Returns
    -------
    AlignmentResult
        The plan, per-territory table, solve status/objective/bound/gap/time. When the tolerances
        cannot all be met, the status is ``"relaxed"``: the plan is the nearest one (elastic model)
        and ``diagnosis`` / ``relaxation`` say which territories and metrics conflict and by how much
        each tolerance must widen. Nothing is raised for infeasible data. ``stopped_by_clock`` names the
        steps the wall-clock safety net stopped (empty: the plan is reproducible bit for bit).
    """
    solver = solver or DEFAULT_SOLVER
    limits = limits or SearchLimits()
    deadline = Deadline(solver.time_limit)
    tick = time.perf_counter()
    inst = prepare_instance(
        accounts, reps, balance, distance, travel_weight_column, disruption_column, locks, candidate_k
    )
    phases = {"prepare instance": time.perf_counter() - tick}
    notes: list[str] = []
    start_assign = None
    if not inst.has_travel:
        travel_weight, disruption_weight, note = objective_without_travel(inst, disruption_weight)
        notes.append(note)
        log.warning("alignment: %s", note)
    objective = Objective(
        travel_weight, disruption_weight, objective_scales(inst, normalize), disruption_budget, max_moves
    )
    lap = time.perf_counter()
    graph = adjacency_graph(accounts, inst, adjacency, contiguity_unit)
    phases["adjacency graph"] = time.perf_counter() - lap
    rule = None
    if contiguity:
        if graph is None:
            notes.append("contiguity not imposed: no adjacency table and no account locations")
            log.warning("alignment: %s", notes[-1])
        else:
            rule = Contiguity(graph, frozenset(_rep_positions(inst, contiguity_exceptions)))
            rule.validate(inst)
    terms = PairTerms.of(inst, objective)
    lp = None
    if lp_rounding or (lp_rounding is None and len(inst.pair_a) >= LP_ROUNDING_PAIRS):
        regional = regions.REGIONAL_PAIRS
        if rule is None and inst.lat is not None and regional is not None and len(inst.pair_a) >= regional:
            # whole companies: regional alignments and the whole company's Lagrangian bound (the LP of
            # 100,000 x 300 was not solved in minutes); the LP path runs only when they find no plan
            lp, split = regions.regional_plan(inst, objective, solver, limits=limits, deadline=deadline)
            if lp.assign is not None and split is not None:
                notes.append(f"whole company by {int(split.region.max()) + 1} regions of reps")
            else:
                notes.append(f"regional alignment found no plan ({lp.lp_status}); LP path")
                lp = None
        blocks = aggregate.AGGREGATE_PAIRS
        if lp is None and rule is None and max_moves is None and blocks is not None and len(inst.pair_a) >= blocks:
            # whole companies: blocks of neighbouring accounts first (their LP in seconds to a minute),
            # then the accounts; the bound is the Lagrangian value over every account pair at the block
            # LP's duals. The account-level LP path runs only when the blocks give no plan
            lp = aggregate.aggregated_plan(inst, objective, solver, limits=limits, deadline=deadline)
            if lp.assign is not None:
                notes.append("whole company by blocks of neighbouring accounts, then the accounts")
            else:
                notes.append(f"the block path found no plan ({lp.lp_status}); LP path")
                lp = None
        if lp is None:
            lp = lp_round(inst, objective, solver, limits=limits, contiguity=rule, deadline=deadline)
        if lp.lp_status == "infeasible":
            notes.append("LP relaxation infeasible: no plan meets every band with these candidates")
        elif np.isfinite(lp.bound):
            kind = "Lagrangian" if lp.lp_status == "lagrangian" else "LP relaxation"
            notes.append(
                f"{kind} bound {lp.bound:.6g}; rounded plan "
                + (f"{lp.objective:.6g} (gap {lp.gap:.2%})" if lp.assign is not None else "not found")
                + f" in {lp.seconds:.1f}s"
            )
        if lp.assign is not None:
            # the plan meets every constraint and its gap is proven by the LP bound; at the sizes this
            # path is for, the MILP could not improve either within the time left (10,000 x 100: the
            # Pyomo build alone takes ~20 s and HiGHS does not finish the root LP in a minute)
            info = SolveInfo(
                status=OPTIMAL if lp.gap <= 1e-9 else FEASIBLE,
                objective=lp.objective,
                bound=lp.bound,
                gap=lp.gap,
                seconds=lp.seconds - lp.build_seconds,
                termination="lp_rounding",
            )
            build_seconds = time.perf_counter() - tick - lp.seconds + lp.build_seconds
            lap = time.perf_counter()
            res = _result(
                inst, lp.assign, accounts, graph, info, build_seconds, notes, rule, deadline=deadline
            )
            res.phase_seconds = phases | lp.phase_seconds | {"result tables": time.perf_counter() - lap}
            return res
    if warm_start:
        start_assign = greedy_start(
            inst, max_moves, max_steps=limits.rebalance_steps, deadline=deadline.within(heuristic_seconds)
        )
        start_assign = polish(
            inst,
            start_assign,
            objective,
            passes=limits.polish_passes,
            deadline=deadline.within(heuristic_seconds),
        )
    model = build_alignment_model(inst, objective, elastic=elastic_first)
    build_seconds = time.perf_counter() - tick
    log.info(
        "alignment: %d accounts x %d reps, %d candidate pairs, %d metrics; built in %.2fs",
        len(inst.account_ids),
        len(inst.rep_ids),
        len(inst.pair_a),
        len(inst.metric_names),
        build_seconds,
    )
    connect = None
    if rule is not None:

        def connect(plan: np.ndarray) -> np.ndarray:
            return connected_plan(inst, rule, plan, objective, limits, deadline.within(heuristic_seconds))

        if start_assign is not None:
            start_assign = connect(start_assign)
    rounds = limits.contiguity_rounds
    info, assign = solve_alignment_model(
        model, inst, solver, start_assign, terms, rule, rounds, deadline, "MILP", connect
    )
    diagnosis = relaxation = pd.DataFrame()
    strict: SolveInfo | None = None
    if not elastic_first and info.status in (OPTIMAL, FEASIBLE):
        if lp is not None and np.isfinite(lp.bound) and not (info.bound >= lp.bound):
            info = replace(info, bound=lp.bound, gap=relative_gap(info.objective, lp.bound))
    else:
        if elastic_first:
            info_e = info
        else:
            strict = info
            notes.append(f"strict model: {strict.status} ({strict.termination}) after {strict.seconds:.1f}s")
            elastic = build_alignment_model(inst, objective, elastic=True)
            info_e, assign = solve_alignment_model(
                elastic, inst, solver, start_assign, terms, rule, rounds, deadline, "elastic MILP", connect
            )
        if assign is None and start_assign is not None:
            assign = start_assign
            notes.append("the MILP found no plan within its limits; the plan is the heuristic start")
        elif assign is None:
            raise SalesopsError(
                f"territory alignment: the MILP found no plan ({info_e.termination}, {info_e.nodes} nodes); "
                "raise territory.node_limit or enable warm_start."
            )
        diagnosis, relaxation = diagnose_plan(inst, assign, max_moves, disruption_budget)
        needs_relax = bool(relaxation["binding"].any()) if not relaxation.empty else False
        if not needs_relax:
            diagnosis = pd.DataFrame()
        if needs_relax:
            status = RELAXED
            if strict is not None and strict.status != INFEASIBLE:
                notes.append("the strict model was not proven infeasible (it stopped without a plan)")
        elif info_e.has_solution:
            status = info_e.status
        else:
            status = FEASIBLE
        # the elastic bound is a valid bound of the strict model (the strict model is a restriction)
        objective = terms.objective(inst, assign)
        bound = info_e.bound
        if lp is not None and np.isfinite(lp.bound) and not (bound >= lp.bound):
            bound = lp.bound  # the LP relaxation's bound is the better one
        info = SolveInfo(
            status=status,
            objective=objective if not needs_relax else info_e.objective,
            bound=bound if not needs_relax else info_e.bound,
            gap=relative_gap(objective, bound) if not needs_relax else info_e.gap,
            seconds=(strict.seconds if strict else 0.0) + info_e.seconds,
            termination=(f"strict={strict.termination}; " if strict else "")
            + f"elastic={info_e.termination}",
            nodes=info_e.nodes,
            time_limit_hit=info_e.time_limit_hit or (strict is not None and strict.time_limit_hit),
        )
        if needs_relax:
            log.warning(
                "alignment: the tolerances cannot all be met; nearest plan needs %s",
                "; ".join(
                    f"{r.constraint} {r.requested:g}->{r.required:.4g}"
                    for r in relaxation.itertuples()
                    if r.binding
                ),
            )
    return _result(
        inst,
        assign,
        accounts,
        graph,
        info,
        build_seconds,
        notes,
        rule,
        diagnosis,
        relaxation,
        deadline=deadline,
    )


def objective_without_travel(inst: AlignmentInstance, disruption_weight: float) -> tuple[float, float, str]:
    """Weights of travel and disruption when no locations are known, and the note that says so.

    Travel drops out. If disruption had no weight, it gets weight 1, so that the plan keeps as many
    accounts with today's owner as the bands allow instead of an arbitrary balanced plan.
    """
    weight = disruption_weight if disruption_weight > 0 else 1.0
    owned = int((inst.owner >= 0).sum())
    note = (
        "no account or rep locations (and no distance table): territories are balanced without travel "
        "and compactness"
        + (
            f"; the objective is the disruption (weight {weight:g})"
            if owned
            else "; no owners: any balanced plan"
        )
    )
    return 0.0, weight, note


def _rep_positions(inst: AlignmentInstance, rep_ids: Sequence[str]) -> list[int]:
    pos = {r: i for i, r in enumerate(inst.rep_ids)}
    unknown = [r for r in rep_ids if str(r) not in pos]
    if unknown:
        raise SalesopsError(
            f"contiguity_exceptions: unknown rep_id(s) {unknown[:5]}; name reps of the reps table "
            f"(e.g. {list(inst.rep_ids[:3])})."
        )
    return [pos[str(r)] for r in rep_ids]


def _result(
    inst: AlignmentInstance,
    assign: np.ndarray,
    accounts: pd.DataFrame,
    graph: AdjacencyGraph | None,
    info: SolveInfo,
    build_seconds: float,
    notes: list[str],
    rule: Contiguity | None = None,
    diagnosis: pd.DataFrame | None = None,
    relaxation: pd.DataFrame | None = None,
    *,
    deadline: Deadline,
) -> AlignmentResult:
    asg, ter, disruption, share, moved, disconnected = plan_tables(inst, assign, accounts, graph)
    contiguity = {}
    if graph is not None:
        contiguity = {
            "imposed": rule is not None,
            "graph": graph.source,
            "units": graph.n_units,
            "edges": graph.n_edges,
            "cuts": len(rule.cuts) if rule is not None else 0,
            "exempt": sorted(str(inst.rep_ids[r]) for r in rule.exempt) if rule is not None else [],
        }
    return AlignmentResult(
        assignments=asg,
        territories=ter,
        solve=info,
        metrics=list(inst.metric_names),
        travel=float(asg["travel"].sum()),
        disruption=disruption,
        disruption_share=share,
        moved=moved,
        diagnosis=pd.DataFrame() if diagnosis is None else diagnosis,
        relaxation=pd.DataFrame() if relaxation is None else relaxation,
        disconnected_territories=disconnected,
        build_seconds=build_seconds,
        candidate_pairs=len(inst.pair_a),
        notes=notes,
        stopped_by_clock=list(deadline.fired),
        travel_basis=inst.travel_basis,
        contiguity=contiguity,
        versions=solver_versions(),
    )


def disruption_tradeoff(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    budgets: Sequence[float],
    **kwargs: object,
) -> pd.DataFrame:
    """Trace the travel-versus-disruption curve with a disruption budget (epsilon constraint).

    Parameters
    ----------
    accounts, reps
        As for :func:`assign_territories`.
    budgets
        Disruption budgets to solve for, shares of today's owned value [0-1].
    **kwargs
        Further arguments of :func:`assign_territories` (``disruption_budget`` and
        ``disruption_weight`` are set here).

    Returns
    -------
    pandas.DataFrame
        One row per budget: ``budget``, ``status``, ``travel``, ``disruption``, ``disruption_share``,
        ``moved``, ``mip_gap``, ``seconds``.
    """
    rows = []
    for b in budgets:
        res = assign_territories(accounts, reps, disruption_budget=float(b), disruption_weight=0.0, **kwargs)  # type: ignore[arg-type]
        s = res.summary()
        rows.append(
            {
                "budget": float(b),
                "status": s["status"],
                "travel": s["travel"],
                "disruption": s["disruption"],
                "disruption_share": s["disruption_share"],
                "moved": s["moved"],
                "mip_gap": s["mip_gap"],
                "seconds": s["seconds"],
            }
        )
    return pd.DataFrame(rows)


def evaluate_plan(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    rep_of_account: pd.Series | None = None,
    *,
    balance: Sequence[BalanceMetric] = (BalanceMetric("workload_hours", 0.10),),
    travel_weight_column: str | None = "workload_hours",
    distance: pd.DataFrame | None = None,
    disruption_column: str | None = None,
    adjacency: nx.Graph | pd.DataFrame | None = None,
    contiguity_unit: str | None = None,
) -> AlignmentResult:
    """Score a given plan (default: today's, ``owner_rep_id``) with the tables of :func:`assign_territories`.

    Parameters
    ----------
    rep_of_account
        ``rep_id`` per account, indexed by ``account_id``; default the ``owner_rep_id`` column.

    Returns
    -------
    AlignmentResult
        With ``solve.status == "given"`` and no objective; travel, balance and disruption as computed.
    """
    inst = prepare_instance(
        accounts, reps, balance, distance, travel_weight_column, disruption_column, None, None
    )
    pos = {r: i for i, r in enumerate(inst.rep_ids)}
    if rep_of_account is None:
        require_columns(accounts, "accounts", ["owner_rep_id"], "scoring today's plan")
        rep_of_account = pd.Series(accounts["owner_rep_id"].to_numpy(), index=inst.account_ids)
    plan = pd.Series(rep_of_account).astype("string")
    plan.index = plan.index.map(str)
    reps_for = plan.reindex(inst.account_ids)
    unknown = reps_for.isna() | ~reps_for.isin(list(pos))
    if unknown.any():
        raise DataValidationError(
            "plan",
            [
                f"accounts {format_rows(list(inst.account_ids[unknown.to_numpy()]))} have no rep of the reps table "
                "in the plan; give every account a known rep_id."
            ],
        )
    assign = reps_for.map(pos).to_numpy(int)
    graph = adjacency_graph(accounts, inst, adjacency, contiguity_unit)
    asg, ter, disruption, share, moved, disconnected = plan_tables(inst, assign, accounts, graph)
    return AlignmentResult(
        assignments=asg,
        territories=ter,
        solve=SolveInfo(status="given"),
        metrics=list(inst.metric_names),
        travel=float(asg["travel"].sum()),
        disruption=disruption,
        disruption_share=share,
        moved=moved,
        disconnected_territories=disconnected,
        candidate_pairs=len(inst.pair_a),
        travel_basis=inst.travel_basis,
    )
