"""Command-line switches the benchmarks share: compare a model setting's values in one run."""

from __future__ import annotations

import argparse

SIZE_BY_CYCLE_CHOICES = ("default", "on", "off", "both")


def add_size_by_cycle(ap: argparse.ArgumentParser, what: str) -> None:
    """Add ``--size-by-cycle default|on|off|both`` (``pipeline.size_by_cycle`` of ``what``)."""
    ap.add_argument(
        "--size-by-cycle",
        choices=SIZE_BY_CYCLE_CHOICES,
        default="default",
        help=f"pipeline.size_by_cycle of {what}: the default, on, off, or both in this run (off first: "
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
