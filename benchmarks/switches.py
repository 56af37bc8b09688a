"""Command-line switches the benchmarks share: compare a model setting's values in one run."""

from __future__ import annotations

import argparse
import itertools
from typing import Any

SIZE_BY_CYCLE_CHOICES = ("default", "on", "off", "both")
CONVERSION_DRIFT_CHOICES = ("default", "auto", "fit", "none", "both", "all")


def _add_setting(ap: argparse.ArgumentParser, key: str, choices: tuple[str, ...], help_text: str) -> None:
    """Add ``--<key with dashes>`` choosing the values of ``pipeline.<key>`` to run."""
    ap.add_argument(f"--{key.replace('_', '-')}", choices=choices, default="default", help=help_text)


def add_size_by_cycle(ap: argparse.ArgumentParser, what: str) -> None:
    """Add ``--size-by-cycle default|on|off|both`` (``pipeline.size_by_cycle`` of ``what``)."""
    _add_setting(
        ap,
        "size_by_cycle",
        SIZE_BY_CYCLE_CHOICES,
        f"pipeline.size_by_cycle of {what}: the default, on, off, or both in this run (off first: "
        "the independent-draw model is the baseline of the comparison).",
    )


def size_by_cycle_variants(choice: str) -> dict[str, bool | None]:
    """Label -> setting of each run the choice asks for (``None``: the scenario's or model's default)."""
    return {
        "default": {"default": None},
        "on": {"on": True},
        "off": {"off": False},
        "both": {"off": False, "on": True},
    }[choice]


def add_conversion_drift(ap: argparse.ArgumentParser, what: str) -> None:
    """Add ``--conversion-drift default|auto|fit|none|both|all`` (``pipeline.conversion_drift`` of ``what``)."""
    _add_setting(
        ap,
        "conversion_drift",
        CONVERSION_DRIFT_CHOICES,
        f"pipeline.conversion_drift of {what}: the default, auto, fit, none, both (none, auto) or all "
        "(none, auto, fit) in this run (none first: the constant-conversion model is the baseline).",
    )


def conversion_drift_variants(choice: str) -> dict[str, str | None]:
    """Label -> setting of each run the choice asks for (``None``: the scenario's or model's default)."""
    return {
        "default": {"default": None},
        "auto": {"auto": "auto"},
        "none": {"none": "none"},
        "fit": {"fit": "fit"},
        "both": {"none": "none", "auto": "auto"},
        "all": {"none": "none", "auto": "auto", "fit": "fit"},
    }[choice]


def pipeline_variants(size_by_cycle: str, conversion_drift: str) -> dict[str, dict[str, Any]]:
    """Label -> ``pipeline:`` overrides of every combination the two switches ask for (a label names
    only the settings given explicitly; ``{}`` with label ``""``: the defaults)."""
    out: dict[str, dict[str, Any]] = {}
    for (cyc_name, cyc), (drift_name, drift) in itertools.product(
        size_by_cycle_variants(size_by_cycle).items(), conversion_drift_variants(conversion_drift).items()
    ):
        overrides: dict[str, Any] = {}
        parts = []
        if cyc is not None:
            overrides["size_by_cycle"] = cyc
            parts.append(f"size_by_cycle {cyc_name}")
        if drift is not None:
            overrides["conversion_drift"] = drift
            parts.append(f"conversion_drift {drift_name}")
        out["".join(f"[{p}] " for p in parts)] = overrides
    return out
