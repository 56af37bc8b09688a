"""Territory benchmarks: solve every instance of one benchmark family folder and compare with its reference.

Usage::

    python benchmarks/territory.py FAMILY_DIR [--json PATH] [--time-limit SECONDS] [--filter TEXT]
    python benchmarks/territory.py scale [--json PATH] [--time-limit SECONDS] [--accounts N] [--reps R] [--pulp]
    python benchmarks/territory.py sample-contiguity [--scenario scenarios/baseline.yaml] [--json PATH]

FAMILY_DIR is laid out as a folder of ``../shared/benchmarks/territory/``; the family is recognised
from its files:

- ``pfizer_*_bricks.csv`` (Pfizer case): current plan distance, then min distance and min disruption
  for the three workload intervals.
- ``pmed*.txt`` + ``reference.csv`` (OR-Library pmed): shortest-path distances, exact p-median.
- ``pmedcap1_*.txt`` (OR-Library pmedcap1): floor(Euclidean) distances, capacitated p-median.
- ``county/`` / ``tract/`` + ``reference.csv`` with cut edges (Validi & Buchanan): contiguous
  balanced districting minimising cut edges (spanning-tree + pair re-split heuristic, then the
  single-commodity-flow MILP started from it).
- ``instances/`` + ``best_known.csv`` (DTDP, Aly et al.): min max-diameter with three balanced
  activities; balanced assignment start + variable neighbourhood search (work limits, repeatable).

``scale`` is not a folder: it builds the sample company at 10,000 accounts x 100 reps (``--accounts``,
``--reps``) and solves the alignment with two metrics within +-5% and a disruption budget, reporting
the time of every phase, peak memory (``ru_maxrss``), the machine load and the proven gap, and
(``--pulp``) the same formulation in PuLP + CBC side by side.

``sample-contiguity`` is not a folder either: the bundled sample company as ``make run`` builds it
(``--scenario``, default ``scenarios/baseline.yaml``, loaded and solved through the package's own
scenario loader, data source and territory settings) with ``territory.contiguity: true``. It prints,
per territory, whether it is connected and in how many pieces (recounted here over the adjacency
graph with scipy, independently of the solver's own count), the proven gap, the time and the load.

Every row printed: instance, objective name, objective, reference, relative gap to the reference,
proven MIP gap, seconds. Timings on a shared 2-core machine are inflated by contention.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from salesops_models.territory import BalanceMetric, SolverOptions, assign_territories, evaluate_plan
from salesops_models.territory.design import p_median
from salesops_models.territory.heuristics import SearchLimits

log = logging.getLogger("benchmarks.territory")


@dataclass
class Record:
    instance: str
    objective_name: str
    objective: float
    reference: float
    gap_to_reference: float
    mip_gap: float
    seconds: float
    status: str = ""
    note: str = ""


def rel(obj: float, ref: float) -> float:
    if not (np.isfinite(obj) and np.isfinite(ref)):
        return math.nan
    return (obj - ref) / abs(ref) if ref != 0 else obj - ref


# ---------------------------------------------------------------------------------------------------
# Pfizer
# ---------------------------------------------------------------------------------------------------


def run_pfizer(folder: Path, time_limit: float, filt: str | None) -> list[Record]:
    out: list[Record] = []
    ref = pd.read_csv(folder / "reference.csv", dtype=str).set_index(["workload_interval", "objective"])[
        "value"
    ]
    for bricks in sorted(folder.glob("pfizer_*_bricks.csv")):
        name = bricks.name.replace("_bricks.csv", "")
        if filt and filt not in name:
            continue
        b = pd.read_csv(bricks)
        n_sr = len([c for c in b.columns if c.startswith("dist_sr")])
        acc = pd.DataFrame(
            {
                "account_id": b.brick.astype(str),
                "index_value": b.index_value,
                "owner_rep_id": "SR" + b.current_sr.astype(str),
            }
        )
        reps = pd.DataFrame({"rep_id": [f"SR{i}" for i in range(1, n_sr + 1)]})
        dist = pd.DataFrame(
            b[[f"dist_sr{i}_km" for i in range(1, n_sr + 1)]].to_numpy(),
            index=acc.account_id,
            columns=reps.rep_id,
        )
        t = time.perf_counter()
        cur = evaluate_plan(
            acc, reps, balance=[BalanceMetric("index_value", 0.2)], travel_weight_column=None, distance=dist
        )
        r_cur = float(ref.get(("current_assignment", "total_distance_km"), "nan"))
        out.append(
            Record(
                name,
                "current_distance_km",
                cur.travel,
                r_cur,
                rel(cur.travel, r_cur),
                0.0,
                time.perf_counter() - t,
                "given",
            )
        )
        for interval, tol in (("[0.8,1.2]", 0.2), ("[0.85,1.15]", 0.15), ("[0.9,1.1]", 0.1)):
            common = dict(
                balance=[BalanceMetric("index_value", tol)],
                travel_weight_column=None,
                distance=dist,
                disruption_column="index_value",
                normalize=False,
                solver=SolverOptions(time_limit=time_limit, mip_gap=0.0),
            )
            for label, kw, attr, key in (
                ("min_distance_km", {}, "travel", "min_total_distance_km"),
                (
                    "min_disruption",
                    {"travel_weight": 0.0, "disruption_weight": 1.0},
                    "disruption",
                    "min_disruption_index_weighted",
                ),
            ):
                res = assign_territories(acc, reps, **common, **kw)
                value = float(getattr(res, attr))
                r = float(ref.get((interval, key), "nan"))
                out.append(
                    Record(
                        f"{name}{interval}",
                        label,
                        value,
                        r,
                        rel(round(value, 4), r),
                        res.solve.gap,
                        res.solve.seconds + res.build_seconds,
                        res.status,
                    )
                )
    return out


# ---------------------------------------------------------------------------------------------------
# OR-Library pmed and pmedcap1
# ---------------------------------------------------------------------------------------------------


def read_pmed(path: Path) -> tuple[np.ndarray, int]:
    """All-pairs shortest paths of an OR-Library pmed file (a repeated edge: the last one counts)."""
    from scipy.sparse.csgraph import shortest_path

    tokens = path.read_text().split()
    n, m, p = int(tokens[0]), int(tokens[1]), int(tokens[2])
    w = np.zeros((n, n))
    vals = np.array(tokens[3 : 3 + 3 * m], dtype=float).reshape(m, 3)
    for i, j, c in vals:  # in file order, so the last occurrence wins
        w[int(i) - 1, int(j) - 1] = c
        w[int(j) - 1, int(i) - 1] = c
    return shortest_path(w, method="D", directed=False), p


def run_pmed(folder: Path, time_limit: float, filt: str | None) -> list[Record]:
    ref = pd.read_csv(folder / "reference.csv")
    out = []
    for row in ref.itertuples():
        if filt and filt not in row.instance:
            continue
        d, p = read_pmed(folder / f"{row.instance}.txt")
        t = time.perf_counter()
        res = p_median(d, p, solver=SolverOptions(time_limit=time_limit, mip_gap=0.0))
        sec = time.perf_counter() - t
        out.append(
            Record(
                row.instance,
                f"p-median n={len(d)} p={p}",
                res.objective,
                float(row.optimal_objective),
                rel(res.objective, float(row.optimal_objective)),
                res.solve.gap,
                sec,
                res.solve.status,
            )
        )
        print_record(out[-1])
    return out


def read_pmedcap(path: Path) -> tuple[np.ndarray, np.ndarray, int, float]:
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    n, p, cap = int(lines[1][0]), int(lines[1][1]), float(lines[1][2])
    pts = np.array([[float(v) for v in ln[:4]] for ln in lines[2 : 2 + n]])
    xy, demand = pts[:, 1:3], pts[:, 3]
    d = np.floor(np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2)))  # OR-Library: truncated
    return d, demand, p, cap


def run_pmedcap(folder: Path, time_limit: float, filt: str | None) -> list[Record]:
    ref = pd.read_csv(folder / "reference.csv")
    out = []
    for row in ref.itertuples():
        if filt and filt not in row.instance:
            continue
        d, demand, p, cap = read_pmedcap(folder / row.instance)
        t = time.perf_counter()
        res = p_median(
            d, p, demand=demand, capacity=cap, solver=SolverOptions(time_limit=time_limit, mip_gap=0.0)
        )
        sec = time.perf_counter() - t
        out.append(
            Record(
                row.instance.replace(".txt", ""),
                f"cap. p-median n={len(d)} p={p}",
                res.objective,
                float(row.optimal_objective),
                rel(res.objective, float(row.optimal_objective)),
                res.solve.gap,
                sec,
                res.solve.status,
            )
        )
        print_record(out[-1])
    return out


# ---------------------------------------------------------------------------------------------------
# Scale
# ---------------------------------------------------------------------------------------------------


def machine_load() -> str:
    """The 1-, 5- and 15-minute load averages, as ``uptime`` prints them (2 cores: above 2 is contention)."""
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far [MB] (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time of this process so far, user + system [s]: on a loaded machine the wall clock counts the
    time other processes had the cores; this does not."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def phase_line(phases: dict[str, float]) -> str:
    return "; ".join(f"{k} {v:.1f}s" for k, v in phases.items()) or "(MILP path: no phase times)"


def run_sample_contiguity(scenario_path: Path) -> list[Record]:
    """The sample company of a scenario with ``territory.contiguity: true``, as the territory stage runs it."""
    from scipy.sparse.csgraph import connected_components

    from salesops_models.scenario import load_scenario
    from salesops_models.territory.contiguity import (
        adjacency_from_locations,
        adjacency_from_table,
        units_of_accounts,
    )
    from salesops_models.territory.scenario import alignment_arguments
    from salesops_models.workflow.datasource import load_company

    load_before = machine_load()
    scenario = load_scenario(scenario_path)
    scenario.territory.contiguity = True
    t = time.perf_counter()
    company = load_company(scenario.data, plan_year=scenario.plan_year)
    gen = time.perf_counter() - t
    accounts, reps = company.accounts.copy(), company.reps.copy()
    args = alignment_arguments(scenario.territory, accounts)
    t, cpu = time.perf_counter(), cpu_seconds()
    res = assign_territories(accounts, reps, **args.kwargs)
    wall, cpu = time.perf_counter() - t, cpu_seconds() - cpu
    load_after = machine_load()
    s = res.summary()
    # recount the pieces over the same graph rule (Delaunay, long edges cut), with scipy's components
    unit_ids, unit_of = units_of_accounts(accounts, scenario.territory.contiguity_unit)
    if args.kwargs["adjacency"] is not None:
        graph = adjacency_from_table(args.kwargs["adjacency"], unit_ids, unit_of)
    else:
        lat, lon = accounts["lat"].to_numpy(float), accounts["lon"].to_numpy(float)
        graph = adjacency_from_locations(lat, lon, unit_ids, unit_of)
    owner = res.assignments.set_index("account_id").loc[accounts["account_id"].astype(str), "rep_id"]
    pieces = {}
    for rep in reps["rep_id"].astype(str):
        units = np.unique(graph.unit_of_account[(owner == rep).to_numpy()])
        sub = graph.matrix[units][:, units]
        pieces[rep] = int(connected_components(sub, directed=False)[0]) if len(units) else 0
    connected = sum(v == 1 for v in pieces.values())
    solver_pieces = dict(zip(res.territories["rep_id"].astype(str), res.territories["pieces"], strict=True))
    print(f"sample company {len(accounts)} x {len(reps)}, contiguity: true ({scenario_path})")
    for rep, n in pieces.items():
        print(
            f"    {rep:<10} connected {'yes' if n == 1 else 'no ':<3} pieces {n} "
            f"(solver's count {solver_pieces.get(rep, '-')})"
        )
    tol = ", ".join(f"{b.column} +-{b.tolerance:g}" for b in args.kwargs["balance"])
    note = (
        f"{connected} of {len(pieces)} territories connected (max pieces {max(pieces.values())}); "
        f"bands {tol}; max |dev| "
        + ", ".join(f"{m} {s[f'max_abs_deviation_{m}']:.4f}" for m in res.metrics)
        + f"; moved {s['moved']}, disruption share {s['disruption_share']:.3f}; cuts "
        f"{s.get('contiguity_cuts', 0)}; path {s['solver_path']}; data {gen:.1f}s; alignment wall "
        f"{wall:.1f}s, CPU {cpu:.1f}s (build {res.build_seconds:.1f}s, solve {s['seconds']:.1f}s); phases "
        f"{phase_line(res.phase_seconds)}; stopped by clock {res.stopped_by_clock or 'no'}; "
        f"peak RSS {peak_rss_mb():.0f} MB; {load_before} before, {load_after} after"
    )
    rec = Record(
        f"sample_{len(accounts)}x{len(reps)}_contiguous",
        "objective (travel + disruption)",
        s["objective"],
        math.nan,  # no published reference: the proven bound is in mip_gap
        math.nan,
        s["mip_gap"],
        wall,
        s["status"],
        note,
    )
    print_record(rec)
    return [rec]


def run_scale(
    time_limit: float,
    n_accounts: int,
    n_reps: int,
    with_pulp: bool,
    candidate_k: int,
    budget: float,
    limits: SearchLimits | None = None,
) -> list[Record]:
    from salesops_models.data import generate_sample_company

    load_before = machine_load()
    t = time.perf_counter()
    company = generate_sample_company(seed=7, n_accounts=n_accounts, n_reps=n_reps)
    gen = time.perf_counter() - t
    rss_data = peak_rss_mb()
    balance = [BalanceMetric("workload_hours", 0.05), BalanceMetric("potential", 0.05)]
    kwargs = dict(
        balance=balance,
        candidate_k=candidate_k,
        disruption_column="revenue_last_year",
        disruption_budget=budget,
        limits=limits or SearchLimits(),
    )
    t, cpu = time.perf_counter(), cpu_seconds()
    res = assign_territories(
        company.accounts, company.reps, solver=SolverOptions(time_limit=time_limit, mip_gap=0.01), **kwargs
    )
    wall, cpu = time.perf_counter() - t, cpu_seconds() - cpu
    peak_mb = peak_rss_mb()
    load_after = machine_load()
    s = res.summary()
    lim = kwargs["limits"]
    check = plan_check(company.accounts, company.reps, res.assignments, balance, budget)
    note = (
        f"{n_accounts}x{n_reps}, k={candidate_k}, pairs={s['candidate_pairs']}, budget={budget:.0%}; "
        f"work limits: rins_rounds {lim.rins_rounds}, neighbourhood_rounds {lim.neighbourhood_rounds}, "
        f"nodes {lim.neighbourhood_nodes}; "
        f"sample generation {gen:.1f}s; model build {res.build_seconds:.1f}s; solve {s['seconds']:.1f}s; "
        f"wall {wall:.1f}s (CPU {cpu:.1f}s); phases {phase_line(res.phase_seconds)}; stopped by clock "
        f"{res.stopped_by_clock or 'no'}; peak RSS {peak_mb:.0f} MB (after sample generation "
        f"{rss_data:.0f} MB); bound {s['bound']:.4f}; max |dev| workload "
        f"{s['max_abs_deviation_workload_hours']:.4f} potential {s['max_abs_deviation_potential']:.4f}; "
        f"disruption share {s['disruption_share']:.4f}; moved {s['moved']}; notes {res.notes}; "
        f"independent check: {check}; {load_before} before, {load_after} after"
    )
    recs = [
        Record(
            f"sample_{n_accounts}x{n_reps}",
            "normalised travel (HiGHS, "
            + ("LP bound + rounding)" if s["solver_path"] == "lp_rounding" else "MILP via Pyomo)"),
            s["objective"],
            math.nan,  # no published reference: the proven bound is in mip_gap
            math.nan,
            s["mip_gap"],
            res.build_seconds + s["seconds"],
            s["status"],
            note,
        )
    ]
    print_record(recs[-1])
    if with_pulp:
        recs.append(
            run_scale_pulp(company, balance, candidate_k, budget, time_limit, s["mip_gap"], s["bound"])
        )
        print_record(recs[-1])
    return recs


def plan_check(
    accounts: pd.DataFrame, reps: pd.DataFrame, assignments: pd.DataFrame, balance: list, budget: float
) -> str:
    """The plan recomputed from the tables alone: every account once, every rep's load of every balanced
    metric within its band around the capacity-weighted mean, the revenue that changed owner within the
    budget. Returns ``"ok"`` or what failed."""
    problems = []
    got = assignments.set_index("account_id")["rep_id"].astype(str)
    ids = accounts["account_id"].astype(str)
    if got.index.duplicated().any() or len(got) != len(ids) or set(got.index) != set(ids):
        problems.append("accounts not assigned exactly once")
    rep_of = got.reindex(ids).to_numpy()
    cap = reps.set_index(reps["rep_id"].astype(str))["capacity"].astype(float)
    for b in balance:
        load = (
            pd.Series(accounts[b.column].to_numpy(float))
            .groupby(rep_of)
            .sum()
            .reindex(cap.index, fill_value=0)
        )
        target = accounts[b.column].sum() * cap / cap.sum()
        dev = float((load / target - 1).abs().max())
        if dev > b.tolerance + 1e-9:
            problems.append(f"{b.column} off its band by {dev:.4f}")
    owner = accounts["owner_rep_id"].astype(str).to_numpy()
    value = accounts["revenue_last_year"].to_numpy(float)
    owned = pd.Series(owner).isin(cap.index).to_numpy()
    share = value[owned & (rep_of != owner)].sum() / value[owned].sum()
    if share > budget + 1e-9:
        problems.append(f"disruption share {share:.4f} over the budget")
    return "ok" if not problems else "; ".join(problems)


def scale_instance(company, balance, candidate_k):  # type: ignore[no-untyped-def]
    """The scale runs' instance: workload as the territory load, last year's revenue as the value, no locks."""
    from salesops_models.territory.instance import prepare_instance

    return prepare_instance(
        company.accounts,
        company.reps,
        balance,
        None,
        "workload_hours",
        "revenue_last_year",
        None,
        candidate_k,
    )


def run_scale_bound(
    n_accounts: int, n_reps: int, candidate_k: int, budget: float, steps: int
) -> list[Record]:
    """Only the instance and its Lagrangian bound (no plan): time and memory of the whole-company arrays."""
    from salesops_models.data import generate_sample_company
    from salesops_models.territory.instance import Objective, objective_scales
    from salesops_models.territory.lagrangian import lagrangian_bound
    from salesops_models.territory.neighbourhood import PairTerms

    load_before = machine_load()
    t = time.perf_counter()
    company = generate_sample_company(seed=7, n_accounts=n_accounts, n_reps=n_reps)
    gen, rss_data = time.perf_counter() - t, peak_rss_mb()
    balance = [BalanceMetric("workload_hours", 0.05), BalanceMetric("potential", 0.05)]
    t, cpu = time.perf_counter(), cpu_seconds()
    inst = scale_instance(company, balance, candidate_k)
    objective = Objective(1.0, 0.0, objective_scales(inst, True), disruption_budget=budget)
    terms = PairTerms.of(inst, objective)
    prep, rss_prep = time.perf_counter() - t, peak_rss_mb()
    t = time.perf_counter()
    lag = lagrangian_bound(inst, terms, objective, iterations=steps)
    bound_s = time.perf_counter() - t
    cpu = cpu_seconds() - cpu
    rec = Record(
        f"sample_{n_accounts}x{n_reps}",
        "Lagrangian bound of normalised travel (no plan)",
        math.nan,
        math.nan,
        math.nan,
        math.nan,
        prep + bound_s,
        "bound only",
        f"bound {lag.bound:.6g} after {lag.iterations} steps; pairs {len(inst.pair_a)}; sample generation "
        f"{gen:.1f}s (peak RSS {rss_data:.0f} MB); instance + pair terms {prep:.1f}s (peak RSS "
        f"{rss_prep:.0f} MB); bound {bound_s:.1f}s; CPU {cpu:.1f}s; peak RSS {peak_rss_mb():.0f} MB; "
        f"{load_before} before, {machine_load()} after",
    )
    print_record(rec)
    return [rec]


def scale_limits(rins_rounds: int | None, neighbourhood_rounds: int | None) -> SearchLimits:
    """The package's default work limits, with the search rounds given on the command line."""
    base = SearchLimits()
    return replace(
        base,
        rins_rounds=base.rins_rounds if rins_rounds is None else rins_rounds,
        neighbourhood_rounds=base.neighbourhood_rounds
        if neighbourhood_rounds is None
        else neighbourhood_rounds,
    )


def run_scale_pulp(company, balance, candidate_k, budget, time_limit, highs_gap, highs_bound) -> Record:  # type: ignore[no-untyped-def]
    """The same strict formulation in PuLP + CBC (no warm start: CBC via PuLP takes none by default)."""
    import pulp

    from salesops_models.territory.instance import objective_scales

    t = time.perf_counter()
    inst = scale_instance(company, balance, candidate_k)
    t_scale, _ = objective_scales(inst, True)
    cost = inst.weight[inst.pair_a] * inst.distance[inst.pair_a, inst.pair_r] / t_scale
    prob = pulp.LpProblem("alignment", pulp.LpMinimize)
    x = [pulp.LpVariable(f"x{p}", cat="Binary") for p in range(len(inst.pair_a))]
    prob += pulp.lpSum(float(c) * v for c, v in zip(cost, x, strict=True))
    by_a: dict[int, list[int]] = {}
    by_r: dict[int, list[int]] = {}
    for p, (a, r) in enumerate(zip(inst.pair_a, inst.pair_r, strict=True)):
        by_a.setdefault(int(a), []).append(p)
        by_r.setdefault(int(r), []).append(p)
    for ps in by_a.values():
        prob += pulp.lpSum(x[p] for p in ps) == 1
    for k in range(len(balance)):
        for r, ps in by_r.items():
            load = pulp.lpSum(float(inst.metric_values[k, inst.pair_a[p]]) * x[p] for p in ps)
            prob += load <= float(inst.upper[k, r])
            prob += load >= float(inst.lower[k, r])
    owned = np.flatnonzero(inst.owner_pair >= 0)
    V = inst.owned_value
    prob += pulp.lpSum(float(inst.value[a]) * x[int(inst.owner_pair[a])] for a in owned) >= (1 - budget) * V
    build = time.perf_counter() - t
    log_path = Path(tempfile.mkdtemp(prefix="territory-cbc-")) / "cbc.log"
    t = time.perf_counter()
    status = prob.solve(
        pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=0.01, threads=1, logPath=str(log_path))
    )
    sec = time.perf_counter() - t
    obj = pulp.value(prob.objective)
    obj = float(obj) if obj is not None and prob.sol_status > 0 else math.nan
    cbc_bound = cbc_lower_bound(log_path)
    # CBC's own bound, and the HiGHS LP bound of the same model (valid for every plan of it)
    gap = rel(obj, cbc_bound) if np.isfinite(cbc_bound) else math.nan
    return Record(
        f"sample_{len(inst.account_ids)}x{len(inst.rep_ids)}",
        "normalised travel (PuLP + CBC)",
        obj,
        math.nan,
        math.nan,
        gap,
        build + sec,
        f"{pulp.LpStatus.get(status, str(status))} / {pulp.LpSolution.get(prob.sol_status, '')}",
        f"build {build:.1f}s, solve {sec:.1f}s (limit {time_limit:.0f}s, gapRel 0.01, 1 thread); CBC "
        f"lower bound {cbc_bound:.6g}; gap of its plan to the HiGHS LP bound {highs_bound:.6g}: "
        f"{100 * rel(obj, highs_bound) if np.isfinite(obj) else math.nan:.3f}%; HiGHS gap in the same "
        f"run {100 * highs_gap:.3f}%; peak RSS {peak_rss_mb():.0f} MB; {machine_load()}; log {log_path}",
    )


def cbc_lower_bound(log_path: Path) -> float:
    """The best bound CBC printed in its log (``Lower bound:`` at the end, else the last
    ``best possible`` of its progress lines); NaN when it printed none."""
    if not log_path.exists():
        return math.nan
    text = log_path.read_text(errors="replace")
    found = re.findall(r"Lower bound:\s*([-0-9.eE+]+)", text)
    if not found:
        found = re.findall(r"best possible ([-0-9.eE+]+)", text)
    if not found:
        found = re.findall(r"Objective value:\s*([-0-9.eE+]+)", text) if "Optimal" in text else []
    return float(found[-1]) if found else math.nan


# ---------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------


def print_record(r: Record) -> None:
    def f(v: float, spec: str) -> str:
        return format(v, spec) if isinstance(v, float) and np.isfinite(v) else "-"

    print(
        f"{r.instance:<28} {r.objective_name:<34} obj {f(r.objective, '12.4f')} ref {f(r.reference, '12.4f')} "
        f"gap_ref {f(100 * r.gap_to_reference, '8.3f')}% mip_gap {f(100 * r.mip_gap, '7.3f')}% "
        f"{r.seconds:8.2f}s {r.status}",
        flush=True,
    )
    if r.note:
        print(f"    {r.note}", flush=True)


def family_of(folder: Path) -> str:
    if any(folder.glob("pfizer_*_bricks.csv")):
        return "pfizer"
    if any(folder.glob("pmedcap1_*.txt")):
        return "pmedcap1"
    if any(folder.glob("pmed*.txt")):
        return "pmed"
    if (folder / "county").is_dir() or (folder / "tract").is_dir():
        return "political"
    if (folder / "instances").is_dir() and (folder / "best_known.csv").exists():
        return "dtdp"
    raise SystemExit(f"{folder}: not a known territory benchmark family layout (see the module docstring).")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family_dir", help="benchmark family folder, 'scale' or 'sample-contiguity'")
    ap.add_argument("--json", type=Path, help="write the records as a JSON list")
    ap.add_argument("--time-limit", type=float, default=120.0, help="per instance [s]")
    ap.add_argument("--filter", default=None, help="only instances whose name contains TEXT")
    ap.add_argument("--accounts", type=int, default=10_000, help="scale: accounts")
    ap.add_argument("--reps", type=int, default=100, help="scale: reps")
    ap.add_argument(
        "--candidate-k",
        type=int,
        default=30,
        help="scale: nearest reps per account (at 10 the LP is infeasible)",
    )
    ap.add_argument("--budget", type=float, default=0.3, help="scale: disruption budget [0-1]")
    ap.add_argument("--pulp", action="store_true", help="scale: also solve with PuLP + CBC")
    ap.add_argument(
        "--bound-only",
        type=int,
        default=None,
        metavar="STEPS",
        help="scale: only the instance and its Lagrangian bound after STEPS steps (time and memory)",
    )
    ap.add_argument(
        "--rins-rounds", type=int, default=None, help="scale: relaxation-induced search rounds (work limit)"
    )
    ap.add_argument(
        "--neighbourhood-rounds",
        type=int,
        default=None,
        help="scale: rounds of the group neighbourhood search over all territories (work limit)",
    )
    ap.add_argument(
        "--lagrangian-pairs",
        type=int,
        default=None,
        help="scale: candidate pairs from which the Lagrangian path is taken (default: the package's)",
    )
    ap.add_argument(
        "--regional-pairs",
        type=int,
        default=None,
        help="scale: candidate pairs from which the alignment goes by regions (default: the package's)",
    )
    ap.add_argument(
        "--region-reps",
        type=int,
        default=None,
        help="scale: reps per region at most (default: the package's)",
    )
    ap.add_argument(
        "--aggregate-pairs",
        type=int,
        default=None,
        help="scale: candidate pairs from which the alignment solves blocks of accounts first "
        "(default: the package's; 0: always; -1: never)",
    )
    ap.add_argument(
        "--block-pairs",
        type=int,
        default=None,
        help="scale: pairs the block instance aims at (sets the block size; default: the package's)",
    )
    ap.add_argument(
        "--scenario",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml",
        help="sample-contiguity: the scenario whose company and territory settings are used",
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("pyomo.contrib.solver.solvers.highs").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    if args.lagrangian_pairs is not None:
        from salesops_models.territory import lp_round

        lp_round.LAGRANGIAN_PAIRS = args.lagrangian_pairs
    if args.regional_pairs is not None or args.region_reps is not None:
        from salesops_models.territory import regions

        if args.regional_pairs is not None:
            regions.REGIONAL_PAIRS = args.regional_pairs
        if args.region_reps is not None:
            regions.REGION_REPS = args.region_reps
    if args.aggregate_pairs is not None or args.block_pairs is not None:
        from salesops_models.territory import aggregate

        if args.aggregate_pairs is not None:
            aggregate.AGGREGATE_PAIRS = None if args.aggregate_pairs < 0 else args.aggregate_pairs
        if args.block_pairs is not None:
            aggregate.BLOCK_PAIRS = args.block_pairs
    if args.family_dir == "scale" and args.bound_only:
        records = run_scale_bound(args.accounts, args.reps, args.candidate_k, args.budget, args.bound_only)
    elif args.family_dir == "scale":
        records = run_scale(
            args.time_limit,
            args.accounts,
            args.reps,
            args.pulp,
            args.candidate_k,
            args.budget,
            scale_limits(args.rins_rounds, args.neighbourhood_rounds),
        )
    elif args.family_dir == "sample-contiguity":
        records = run_sample_contiguity(args.scenario)
    else:
        folder = Path(args.family_dir)
        fam = family_of(folder)
        runner = {
            "pfizer": run_pfizer,
            "pmed": run_pmed,
            "pmedcap1": run_pmedcap,
            "political": run_political,
            "dtdp": run_dtdp,
        }[fam]
        records = runner(folder, args.time_limit, args.filter)
        if fam == "pfizer":
            for r in records:
                print_record(r)
    # summary
    ok = [r for r in records if np.isfinite(r.gap_to_reference)]
    matched = sum(abs(r.gap_to_reference) <= 1e-6 for r in ok)
    print(
        f"\nsummary: {len(records)} records, {matched} match the reference (|gap| <= 1e-6), "
        f"{sum(r.gap_to_reference < -1e-6 for r in ok)} beat it, "
        f"mean gap to reference {100 * np.mean([r.gap_to_reference for r in ok]) if ok else math.nan:.3f}%, "
        f"total {time.perf_counter() - t0:.1f}s"
    )
    if args.json:
        args.json.write_text(json.dumps([_clean(asdict(r)) for r in records], indent=1))
    return 0


def _clean(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}


def run_political(folder: Path, time_limit: float, filt: str | None) -> list[Record]:
    from salesops_models.territory.districting import read_dual_graph, solve_cut_edges

    ref = pd.read_csv(folder / "reference.csv")
    out = []
    for row in ref.itertuples():
        if filt and filt not in row.file:
            continue
        if row.level != "county" and not filt:
            continue  # tract graphs only on request (--filter tract)
        graph = read_dual_graph(folder / row.file)
        t = time.perf_counter()
        res = solve_cut_edges(graph, int(row.k), int(row.L), int(row.U), time_limit=time_limit)
        sec = time.perf_counter() - t
        reference = float(row.min_cut_edges_contiguous_UB)
        out.append(
            Record(
                f"{row.state}_{row.level}",
                f"cut edges, contiguous, k={row.k}",
                res.objective,
                reference,
                rel(res.objective, reference),
                res.gap,
                sec,
                res.status,
                res.note,
            )
        )
        print_record(out[-1])
    return out


def run_dtdp(folder: Path, time_limit: float, filt: str | None) -> list[Record]:
    from salesops_models.territory.dtdp import read_dtdp, solve_dtdp

    ref = pd.read_csv(folder / "best_known.csv")
    out = []
    for row in ref.itertuples():
        if filt and filt not in row.instance:
            continue
        if not np.isfinite(row.best_known_max_diameter):
            continue  # Center/Diagonal: no valid reference for these files
        path = next((folder / "instances").rglob(f"{row.instance}.graphml.gz"))
        inst = read_dtdp(path)
        t = time.perf_counter()
        res = solve_dtdp(inst, p=int(row.p_territories), tau=float(row.tau), time_limit=time_limit)
        sec = time.perf_counter() - t
        out.append(
            Record(
                row.instance,
                "max diameter (graph shortest path)",
                res.objective,
                float(row.best_known_max_diameter),
                rel(res.objective, float(row.best_known_max_diameter)),
                res.gap,
                sec,
                res.status,
                res.note,
            )
        )
        print_record(out[-1])
    return out


if __name__ == "__main__":
    sys.exit(main())
