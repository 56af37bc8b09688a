"""Where the Maven pipeline backtest errs: next-quarter wins from open deals and from new deals.

    nice -n 10 .venv/bin/python benchmarks/pipeline_decomposition.py [--trials 1000] [--json PATH]
        [--no-age] [--set KEY=VALUE ...]

At each monthly cutoff of ``benchmarks/calibration.py`` (2017-04-30 ... 2017-09-30, horizon the three
calendar months after the cutoff) the pipeline model is calibrated on what was known then, and the
won revenue of the horizon is split into wins from the deals open on the cutoff and from the deals
created after it (:func:`salesops_models.backtest.decompose.decompose_horizon`), each beside what
really happened: deals, deals won, won value, mean won size, conversion inside the horizon and the
created-to-won cycle of new wins. The open part is split further by the deals' age on the cutoff.
Default pipeline settings unless ``--set`` changes a key of the scenario's ``pipeline:`` section
(e.g. ``--set conversion_drift=fit --set observed_from=none``; values are read as YAML); seeds as the backtest harness
(``SeedSequence(2017, spawn_key=(k,))`` at the k-th cutoff). Prints measured figures only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from salesops_models.backtest import horizon_of  # noqa: E402
from salesops_models.backtest.decompose import decompose_horizon  # noqa: E402
from salesops_models.testing import benchmarks_dir  # noqa: E402

MAVEN_CUTOFFS = ("2017-04-30", "2017-05-31", "2017-06-30", "2017-07-31", "2017-08-31", "2017-09-30")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--json", type=Path, default=None, help="write the tables as JSON records here")
    ap.add_argument("--no-age", action="store_true", help="skip the open pipeline's age bands")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a pipeline setting other than its default (repeatable), e.g. conversion_drift=fit",
    )
    args = ap.parse_args(argv)

    import warnings

    from salesops_models.data import load_crm_export
    from salesops_models.pipeline.calibration import CalibrationWarning
    from salesops_models.pipeline.config import PipelineConfig

    warnings.simplefilter("ignore", CalibrationWarning)
    import yaml

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set {item!r}: write KEY=VALUE, e.g. conversion_drift=fit")
        parsed = yaml.safe_load(value)
        # a date stays the ISO string the config expects
        overrides[key.strip()] = parsed.isoformat() if isinstance(parsed, datetime.date) else parsed
    try:
        cfg = PipelineConfig(**overrides)
    except ValueError as exc:
        ap.error(f"--set: {exc}")
    company = load_crm_export(benchmarks_dir() / "crm" / "maven_crm_sales_opportunities", "maven")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    parts, ages = [], []
    t0 = time.perf_counter()
    for k, cut in enumerate(MAVEN_CUTOFFS):
        cutoff = pd.Timestamp(cut)
        start, end = horizon_of(cutoff, 3)
        d = decompose_horizon(
            company,
            cutoff,
            start,
            end,
            cfg,
            trials=args.trials,
            seed=np.random.SeedSequence(2017, spawn_key=(k,)),
            by_age=not args.no_age,
        )
        parts.append(d.table.assign(cutoff=cut))
        if not d.by_age.empty:
            ages.append(d.by_age.assign(cutoff=cut))
    elapsed = time.perf_counter() - t0
    table = pd.concat(parts, ignore_index=True)
    cols = [
        "cutoff",
        "part",
        "model_deals",
        "actual_deals",
        "model_won",
        "actual_won",
        "model_value",
        "model_value_p10",
        "model_value_p90",
        "actual_value",
        "model_won_size",
        "actual_won_size",
        "model_conversion",
        "actual_conversion",
        "model_cycle_days",
        "actual_cycle_days",
    ]
    print("Next-quarter wins by part, model (mean over trials) against actual:")
    print(table[cols].round(3).to_string(index=False))
    ratio = table.pivot(index="cutoff", columns="part", values="model_value") / table.pivot(
        index="cutoff", columns="part", values="actual_value"
    )
    print("\nmodel mean / actual won value, by part:")
    print(ratio.round(3).to_string())
    by_age = pd.concat(ages, ignore_index=True) if ages else pd.DataFrame()
    if not by_age.empty:
        print(
            "\nOpen pipeline on the cutoff by age band [days]: share won inside the horizon and what became of it"
        )
        print(by_age.round(3).to_string(index=False))
    print(
        f"\n{args.trials} trials per part, {elapsed:.1f} s, load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    if args.json:
        out = {
            "settings": overrides or "default",
            "parts": table.to_dict("records"),
            "by_age": by_age.to_dict("records"),
        }
        args.json.write_text(json.dumps(out, indent=2, default=float))
        print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
