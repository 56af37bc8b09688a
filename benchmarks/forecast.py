"""Benchmark the forecasters on forecasting-competition data (M3, M4, tourism) and the AU tourism hierarchy.

Usage
-----
    python benchmarks/forecast.py SERIES.csv [--info INFO.csv] [--json PATH] [--models combination,theta]
                                  [--peer statsforecast] [--sample N --seed S] [--n-jobs 1]
                                  [--calibration-method shrunk_scale,pooled]
    python benchmarks/forecast.py --scale N [--products 10] [--workers K] [--compare-workers 1]
                                  [--seed S] [--profile] [--json PATH]

``SERIES.csv`` is one of:

- a long file ``unique_id,t,split,y`` with its ``<name>_series_info.csv`` (M3, tourism);
- an M4 ``<Freq>-train.csv`` (the sibling ``<Freq>-test.csv`` is read too; ``--season-length``);
- ``tourism_au_quarterly_hierarchical.csv``: the fpp3 section 11.4 protocol (train to 2015 Q4, test
  2016 Q1 - 2017 Q4, ETS base forecasts of all 425 series, bottom-up / OLS / WLS / MinT-shrink),
  accuracy per level before and after reconciliation.

``--scale N`` needs no file: N rep x product monthly series drawn from the sample company's patterns
are forecast, backtested and reconciled as the forecast stage does, timed end to end and per phase,
with peak memory and load (``benchmarks/forecast_scale.py``; ``--workers K`` fits on a local Dask
cluster, ``--compare-workers 1`` checks the numbers are identical with another worker count).

Every series is forecast over its official horizon by each model in ``--models`` (default: the
automatic forecaster, the combination of ETS, ARIMA and Theta) and by Naive2, the baseline measured
in the same run. Printed per model: sMAPE = mean 200|y-f|/(|y|+|f|) [%], MASE (in-sample seasonal
naive scale), MAPE [%], coverage of the 95% interval, MSIS (alpha = 0.05), blow-ups (fallbacks)
and seconds, and the ratio to Naive2 and to the published figure where one exists. Averages: per
series over the horizon, then over series (the M3/M4 convention).

The statsforecast peer pins pandas < 3: install it in its own virtualenv, never the project's
(``python -m venv /tmp/sfvenv && /tmp/sfvenv/bin/pip install statsforecast``) and pass
``--peer-python /tmp/sfvenv/bin/python``.

Timings on the shared 2-core build machine are inflated by other work running at the same time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from salesops_models.forecast import metrics as fm  # noqa: E402
from salesops_models.forecast.datasets import CompetitionSet, read_long_series, read_m4_wide  # noqa: E402
from salesops_models.forecast.evaluation import score_forecasts  # noqa: E402
from salesops_models.forecast.forecaster import finish_forecasts  # noqa: E402
from salesops_models.forecast.parallel import fit_many, forecast_many  # noqa: E402

LEVELS = (0.025, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.975)

# Published reference figures (sMAPE [%], MASE, MAPE [%]) for context; sources in
# shared/benchmarks/forecast/published/. None = not published for that set.
PUBLISHED = {
    "m3_yearly": {
        "Theta (submitted, recomputed)": (16.974, 2.806, None),
        "ForecastPro": (17.271, 3.026, None),
    },
    "m3_monthly": {
        "Theta (submitted, recomputed)": (13.892, 0.858, None),
        "ForecastPro": (13.898, 0.848, None),
    },
    "m3_other": {"Theta (submitted, recomputed)": (4.41, 1.904, None), "ForecastPro": (4.604, 1.92, None)},
    "tourism_monthly": {"ETS (Tcomp)": (None, 1.54, None)},
    "tourism_quarterly": {"ETS (Tcomp)": (None, 1.59, None)},
    "tourism_yearly": {"Theta (Tcomp)": (None, 2.73, None)},
    "Weekly": {"Theta (M4 benchmark)": (9.093, None, None)},
}

log = logging.getLogger("benchmarks.forecast")


def load(path: Path, info: Path | None, season_length: int | None) -> CompetitionSet:
    if path.name.endswith("-train.csv"):
        test = path.with_name(path.name.replace("-train.csv", "-test.csv"))
        m = season_length or {"Weekly": 1, "Hourly": 24, "Daily": 1}.get(path.name.split("-")[0], 1)
        return read_m4_wide(path, test, m)
    data = read_long_series(path, info)
    if season_length:
        data.season_length = dict.fromkeys(data.ids, season_length)
    return data


def score(data: CompetitionSet, forecasts: dict, seconds: float, model: str) -> dict:
    per = score_forecasts(forecasts, data.train, data.test, data.season_length, 0.95)
    return {
        "model": model,
        "smape": float(per["smape"].mean()),
        "mase": float(np.nanmean(per["mase"])),
        "mape": float(np.nanmean(per["mape"])),
        "coverage95": float(per["coverage"].mean()),
        "msis": float(np.nanmean(per["msis"])),
        "smape_median": float(per["smape"].median()),
        "mase_median": float(np.nanmedian(per["mase"])),
        "n_mase_undefined": int(per["mase"].isna().sum()),
        "n_fallback": int(per["fallback"].sum()),
        "n_member_failed": int(per["model"].str.contains("failed:", regex=False).sum()),
        "seconds": seconds,
        "n_series": len(per),
    }


def warm_up(data: CompetitionSet, model: str, **kwargs: object) -> None:
    """Fit two series first so that compiled kernels are loaded (numba) before any timing."""
    ids = data.ids[:2]
    forecast_many(
        {i: data.train[i] for i in ids},
        {i: data.horizon[i] for i in ids},
        model=model,
        season_length={i: data.season_length[i] for i in ids},
        levels=LEVELS,
        **kwargs,
    )


def run_ours(
    data: CompetitionSet, model: str, n_jobs: int, progress: bool, **kwargs: object
) -> tuple[dict, dict]:
    fits = run_ours_calibrated(data, model, n_jobs, progress, (None,), **kwargs)
    return fits[None]


def run_ours_calibrated(
    data: CompetitionSet,
    model: str,
    n_jobs: int,
    progress: bool,
    methods: tuple[str | None, ...],
    **kwargs: object,
) -> dict[str | None, tuple[dict, dict]]:
    """Fit every series once, then calibrate the intervals by each of ``methods`` (None: the default).

    The point forecasts are the same for every method (one set of fits); ``seconds`` is the fit
    plus that method's calibration.
    """
    warm_up(data, model, **kwargs)
    t0 = time.perf_counter()
    drafts = fit_many(
        data.train,
        data.horizon,
        model=model,
        season_length=data.season_length,
        n_jobs=n_jobs,
        progress=progress,
        seed=20240101,
        levels=LEVELS,
        **kwargs,
    )
    fit_seconds = time.perf_counter() - t0
    out: dict[str | None, tuple[dict, dict]] = {}
    for method in methods:
        t1 = time.perf_counter()
        fc = {r.series: r for r in finish_forecasts(drafts, calibration_method=method)}
        out[method] = (fc, {"seconds": fit_seconds + time.perf_counter() - t1})
    return out


PEER_WORKER = r"""
import sys, time, pickle, numpy as np
from statsforecast.models import AutoETS
tasks = pickle.load(open(sys.argv[1], "rb"))
out = {}
for sid, y, h, m in tasks[:2]:  # warm-up, as for ours
    AutoETS(season_length=m).forecast(y=np.asarray(y, float), h=h, level=[95])
t0 = time.perf_counter()
for sid, y, h, m in tasks:
    try:
        r = AutoETS(season_length=m).forecast(y=np.asarray(y, float), h=h, level=[95])
        out[sid] = (np.asarray(r["mean"]), np.asarray(r["lo-95"]), np.asarray(r["hi-95"]), "")
    except Exception as exc:
        out[sid] = (None, None, None, repr(exc))
out["__seconds__"] = time.perf_counter() - t0
pickle.dump(out, open(sys.argv[2], "wb"))
"""


def run_statsforecast(data: CompetitionSet, python: str) -> dict | None:
    """statsforecast AutoETS on the same series (benchmark-only peer), in its own interpreter.

    statsforecast 2.1 pins pandas < 3, so it lives in a separate virtualenv (``--peer-python``);
    only the fit loop is timed there, the same as for our models.
    """
    import pickle
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.pkl", Path(tmp) / "out.pkl"
        tasks = [(sid, data.train[sid], data.horizon[sid], data.season_length[sid]) for sid in data.ids]
        src.write_bytes(pickle.dumps(tasks))
        proc = subprocess.run([python, "-c", PEER_WORKER, str(src), str(dst)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"statsforecast peer failed with {python}: {proc.stderr.strip().splitlines()[-1:]}")
            return None
        res = pickle.loads(dst.read_bytes())
    seconds = res.pop("__seconds__")
    rows, failed = [], 0
    for sid in data.ids:
        m, h, y = data.season_length[sid], data.horizon[sid], data.train[sid]
        f, lo, hi, err = res[sid]
        if f is None:
            failed += 1
            f = lo = hi = np.full(h, y[-1])
        yt = data.test[sid][:h]
        rows.append(
            {
                "smape": fm.smape(yt, f),
                "mase": fm.mase(yt, f, y, m),
                "mape": fm.mape(yt, f),
                "coverage95": fm.coverage(yt, lo, hi),
                "msis": fm.msis(yt, lo, hi, y, m, 0.05),
            }
        )
    per = pd.DataFrame(rows)
    return {
        "model": "statsforecast AutoETS",
        "smape": float(per["smape"].mean()),
        "mase": float(np.nanmean(per["mase"])),
        "mape": float(np.nanmean(per["mape"])),
        "coverage95": float(per["coverage95"].mean()),
        "msis": float(np.nanmean(per["msis"])),
        "smape_median": float(per["smape"].median()),
        "mase_median": float(np.nanmedian(per["mase"])),
        "n_fallback": failed,
        "seconds": seconds,
        "n_series": len(per),
    }


def print_table(name: str, rows: list[dict], baseline: dict | None) -> None:
    print(f"\n{name}: {rows[0]['n_series']} series")
    print(
        f"{'model':34s} {'sMAPE':>7s} {'MASE':>7s} {'MAPE':>7s} {'cov95':>6s} {'MSIS':>8s} "
        f"{'blowups':>7s} {'seconds':>8s} {'sMAPE/N2':>8s} {'MASE/N2':>8s}"
    )
    for r in rows:
        rel_s = r["smape"] / baseline["smape"] if baseline else float("nan")
        rel_m = r["mase"] / baseline["mase"] if baseline else float("nan")
        print(
            f"{r['model'][:34]:34s} {r['smape']:7.3f} {r['mase']:7.3f} {r['mape']:7.2f} {r['coverage95']:6.3f} "
            f"{r['msis']:8.3f} {r.get('n_fallback', 0):7d} {r['seconds']:8.1f} {rel_s:8.3f} {rel_m:8.3f}"
        )
    for ref, (s, m, p) in PUBLISHED.get(name, {}).items():
        fmt = lambda v, w=7, d=3: f"{v:{w}.{d}f}" if v is not None else " " * (w - 1) + "-"  # noqa: E731
        print(f"{'published: ' + ref:34s} {fmt(s)} {fmt(m)} {fmt(p, 7, 2)}")


# ------------------------------------------------------------------------------------------------
# Australian tourism hierarchy (fpp3 11.4)
# ------------------------------------------------------------------------------------------------


def run_tourism_hierarchy(path: Path, model: str, n_jobs: int, progress: bool) -> dict:
    from salesops_models.forecast.hierarchy import build_hierarchy, forecast_hierarchy

    raw = pd.read_csv(path)
    raw["period"] = pd.PeriodIndex(raw["quarter"].str.replace(" ", ""), freq="Q")
    raw["bottom"] = raw["state"] + "/" + raw["region"] + "/" + raw["purpose"]
    panel = raw.pivot_table(
        index="period", columns="bottom", values="trips_thousands", aggfunc="sum"
    ).sort_index()
    keys = raw.drop_duplicates("bottom")[["bottom", "state", "region", "purpose"]]
    keys = keys.set_index("bottom").loc[panel.columns].reset_index()
    # region names are unique within a state; the bottom key is state/region/purpose
    levels = [
        (),
        ("state",),
        ("state", "region"),
        ("purpose",),
        ("state", "purpose"),
        ("state", "region", "purpose"),
    ]
    names = ["total", "state", "region", "purpose", "state_purpose", "bottom"]
    h = build_hierarchy(keys[["state", "region", "purpose"]], levels, names)
    panel.columns = h.bottom_labels if list(keys["bottom"]) == h.bottom_labels else panel.columns
    panel = panel[h.bottom_labels]
    train = panel[panel.index <= pd.Period("2015Q4", "Q")]
    test = panel[panel.index > pd.Period("2015Q4", "Q")]
    methods = ["bottom_up", "ols", "wls_struct", "wls_var", "mint_shrink"]
    t0 = time.perf_counter()
    res = forecast_hierarchy(
        train,
        h,
        len(test),
        model=model,
        season_length=4,
        methods=methods,
        nonnegative=True,
        n_jobs=n_jobs,
        progress=progress,
        seed=1,
    )
    seconds = time.perf_counter() - t0
    all_train = h.aggregate(train.to_numpy())
    all_test = h.aggregate(test.to_numpy())
    node_level = h.nodes["level"].to_numpy()

    def accuracy(long: pd.DataFrame) -> pd.DataFrame:
        fc = np.column_stack([g["mean"].to_numpy() for _, g in long.groupby(["level", "series"], sort=False)])
        rows = []
        for i in range(h.n):
            scale = fm.seasonal_naive_scale(all_train[:, i], 4)
            err = all_test[:, i] - fc[:, i]
            rows.append(
                {
                    "level": node_level[i],
                    "mase": np.mean(np.abs(err)) / scale if scale > 0 else np.nan,
                    "rmsse": np.sqrt(np.mean(err**2) / np.mean(np.diff(all_train[:, i], 4) ** 2))
                    if np.mean(np.diff(all_train[:, i], 4) ** 2) > 0
                    else np.nan,
                    "mse": np.mean(err**2),
                }
            )
        return pd.DataFrame(rows)

    # naive (seasonal naive) forecasts for relMSE, as in Nixtla's baselines
    snaive = np.vstack([all_train[-4:]] * 2)[: len(test)]
    naive_mse = pd.DataFrame({"level": node_level, "mse": np.mean((all_test - snaive) ** 2, axis=0)})
    tables = {"base": accuracy(res.base)}
    for m in methods:
        tables[m] = accuracy(res.reconciled[m])
    order = names
    print(
        f"\nAustralian tourism hierarchy (fpp3 11.4): {h.n} series ({h.b} bottom), base model {model}, "
        f"fit {seconds:.1f} s"
    )
    print("MASE (seasonal naive scale, m=4), mean per level:")
    print(f"{'method':12s} " + " ".join(f"{lv:>13s}" for lv in order) + f" {'all':>8s}")
    out = {"seconds": seconds, "n_series": h.n, "methods": {}}
    for meth, tab in tables.items():
        by = tab.groupby("level")["mase"].mean()
        print(f"{meth:12s} " + " ".join(f"{by[lv]:13.3f}" for lv in order) + f" {tab['mase'].mean():8.3f}")
        rel = tab["mse"].sum() / naive_mse["mse"].sum()
        out["methods"][meth] = {
            "mase_by_level": by.to_dict(),
            "mase_all": float(tab["mase"].mean()),
            "rmsse_all": float(tab["rmsse"].mean()),
            "relmse_vs_snaive_total": float(rel),
        }
    print(
        "relMSE vs seasonal naive (sum of MSE over all series): "
        + ", ".join(f"{k} {v['relmse_vs_snaive_total']:.3f}" for k, v in out["methods"].items())
    )
    print(f"MinT shrinkage lambda: {res.shrinkage:.3f}; clipped: {res.clipped}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("series", type=Path, nargs="?", default=None)
    ap.add_argument("--info", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--models", default="combination", help="comma-separated families (default: combination)")
    ap.add_argument("--no-baseline", action="store_true", help="do not run Naive2")
    ap.add_argument("--peer", choices=["statsforecast"], default=None)
    ap.add_argument(
        "--peer-python",
        default=os.environ.get("STATSFORECAST_PYTHON", sys.executable),
        help="interpreter with statsforecast installed (it pins pandas<3; keep it in its own venv)",
    )
    ap.add_argument("--season-length", type=int, default=None)
    ap.add_argument("--sample", type=int, default=None, help="a stated random subsample of N series")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument(
        "--interval-method",
        choices=["calibrated", "gaussian"],
        default="calibrated",
        help="quantiles from rolling-origin errors (default) or the models' Gaussian ones",
    )
    ap.add_argument("--calibration-source", choices=["refit", "refilter"], default="refit")
    ap.add_argument(
        "--calibration-method",
        default="shrunk_scale",
        help="comma-separated: shrunk_scale (default), pooled (the method before); with several, every "
        "series is fitted once and each method calibrates the same fits (rows 'model [method]')",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time ours and the peer N times, alternating, and compare the medians (a busy machine)",
    )
    ap.add_argument("--scale", type=int, default=None, help="time N generated rep x product series end to end")
    ap.add_argument("--products", type=int, default=10, help="--scale: products per rep")
    ap.add_argument("--workers", type=int, default=1, help="--scale: Dask worker processes (1: in-process)")
    ap.add_argument(
        "--compare-workers", type=int, default=None, help="--scale: run again with this many workers and compare"
    )
    ap.add_argument("--profile", action="store_true", help="--scale: cProfile of the main process")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.scale is not None:
        from forecast_scale import run_scale

        out = run_scale(
            args.scale,
            n_products=args.products,
            workers=args.workers,
            compare_workers=args.compare_workers,
            seed=args.seed,
            profile=args.profile,
        )
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=2))
        return 0
    if args.series is None:
        ap.error("give a SERIES.csv file or --scale N")
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    if "trips_thousands" in args.series.read_text().split("\n", 1)[0]:
        out = run_tourism_hierarchy(
            args.series, models[0] if args.models != "combination" else "ets", args.n_jobs, args.progress
        )
        if args.json:
            args.json.write_text(json.dumps(out, indent=2))
        return 0

    data = load(args.series, args.info, args.season_length)
    name = data.name.replace("-train", "")
    if args.sample and args.sample < len(data):
        rng = np.random.default_rng(args.seed)
        ids = sorted(rng.choice(data.ids, size=args.sample, replace=False).tolist())
        data = data.subset(ids)
        name_shown = f"{name} (random subsample of {args.sample}, seed {args.seed})"
        print(
            f"NOTE: scoring a random subsample of {args.sample} of the series (seed {args.seed}), not the full set."
        )
    else:
        name_shown = name
    rows, baseline = [], None
    if not args.no_baseline and "naive2" not in models:
        models = [*models, "naive2"]
    opts = {"interval_method": args.interval_method, "calibration_source": args.calibration_source}
    methods = tuple(m.strip() for m in args.calibration_method.split(",") if m.strip())
    for model in models:
        ran = run_ours_calibrated(data, model, args.n_jobs, args.progress, methods, **opts)
        for method, (fc, info) in ran.items():
            label = model if len(methods) == 1 else f"{model} [{method}]"
            r = score(data, fc, info["seconds"], label)
            r["interval_method"] = args.interval_method
            r["calibration_method"] = method
            rows.append(r)
            if model == "naive2" and baseline is None:
                baseline = r
            print(
                f"  {label}: sMAPE {r['smape']:.3f}, MASE {r['mase']:.3f}, cov95 {r['coverage95']:.3f}, "
                f"MSIS {r['msis']:.3f}, {r['seconds']:.1f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    ratio = None
    if args.peer == "statsforecast":
        peer = run_statsforecast(data, args.peer_python)
        if peer:
            ours = rows[0]
            ours_times, peer_times = [ours["seconds"]], [peer["seconds"]]
            for _ in range(args.repeat - 1):
                ours_times.append(run_ours(data, ours["model"].split(" [")[0], args.n_jobs, False, **opts)[1]["seconds"])
                again = run_statsforecast(data, args.peer_python)
                peer_times.append(again["seconds"] if again else float("nan"))
            ours["seconds"] = float(np.median(ours_times))
            peer["seconds"] = float(np.median(peer_times))
            rows.append(peer)
            ratio = ours["seconds"] / peer["seconds"]
            print(
                f"  time ratio {ours['model']} / statsforecast AutoETS: {ratio:.2f} (median of {args.repeat}: "
                f"ours {ours['seconds']:.2f} s, peer {peer['seconds']:.2f} s; runs ours "
                f"{', '.join(f'{t:.2f}' for t in ours_times)}, peer {', '.join(f'{t:.2f}' for t in peer_times)}; "
                f"load {os.getloadavg()[0]:.1f})"
            )
    print_table(name_shown if name_shown != name else name, rows, baseline)
    if name_shown != name:
        print("(subsample: published figures refer to the full set)")
    if args.json:
        first = rows[0]
        record = {k: first[k] for k in ("smape", "mase", "mape", "coverage95", "msis", "seconds", "n_series")}
        record.update(
            {
                "dataset": name_shown,
                "model": first["model"],
                "time_ratio_vs_autoets": ratio,
                "load_average": os.getloadavg()[0],
                "all": rows,
            }
        )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
