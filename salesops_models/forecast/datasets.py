"""Readers for forecasting-competition files in the long layout of ``shared/benchmarks/forecast``.

A series file has columns ``unique_id, t, split, y`` (``split`` is ``train`` or ``test``); its
sibling ``<name>_series_info.csv`` gives ``seasonal_period`` and ``h`` per series. M4 files come in
the original wide layout (``V1`` = id, then values) and are read with :func:`read_m4_wide`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError


@dataclass
class CompetitionSet:
    """Training and test values of a set of series, with their seasonal period and horizon."""

    name: str
    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    season_length: dict[str, int]
    horizon: dict[str, int]
    info: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def ids(self) -> list[str]:
        return list(self.train)

    def __len__(self) -> int:
        return len(self.train)

    def subset(self, ids: list[str]) -> CompetitionSet:
        """The same set restricted to ``ids`` (in that order)."""
        return CompetitionSet(
            self.name,
            {i: self.train[i] for i in ids},
            {i: self.test[i] for i in ids},
            {i: self.season_length[i] for i in ids},
            {i: self.horizon[i] for i in ids},
            self.info[self.info["unique_id"].isin(ids)] if len(self.info) else self.info,
        )


def default_info_path(series_path: Path) -> Path:
    """``m3_yearly.csv`` -> ``m3_yearly_series_info.csv`` in the same folder."""
    return series_path.with_name(series_path.stem + "_series_info.csv")


def read_long_series(series_path: str | Path, info_path: str | Path | None = None) -> CompetitionSet:
    """Read a long-format competition file and its series info.

    Parameters
    ----------
    series_path
        CSV with ``unique_id, t, split, y``.
    info_path
        CSV with ``unique_id, seasonal_period, h`` (default: the sibling ``*_series_info.csv``).
    """
    series_path = Path(series_path)
    info_path = Path(info_path) if info_path else default_info_path(series_path)
    for p in (series_path, info_path):
        if not p.exists():
            raise DataValidationError(str(p), ["file not found; check the path (or SALESOPS_BENCHMARKS)."])
    df = pd.read_csv(series_path, dtype={"unique_id": str})
    missing = {"unique_id", "t", "split", "y"} - set(df.columns)
    if missing:
        raise DataValidationError(
            str(series_path), [f"missing column(s) {sorted(missing)}; expected unique_id,t,split,y."]
        )
    info = pd.read_csv(info_path, dtype={"unique_id": str})
    for col in ("seasonal_period", "h"):
        if col not in info:
            raise DataValidationError(str(info_path), [f"missing column '{col}'."])
    df = df.sort_values(["unique_id", "t"], kind="stable")
    train, test = {}, {}
    for (sid, split), g in df.groupby(["unique_id", "split"], sort=False):
        (train if split == "train" else test)[str(sid)] = g["y"].to_numpy(float)
    order = [str(i) for i in info["unique_id"] if str(i) in train]
    m = dict(zip(info["unique_id"].astype(str), info["seasonal_period"].astype(int), strict=True))
    h = dict(zip(info["unique_id"].astype(str), info["h"].astype(int), strict=True))
    return CompetitionSet(
        series_path.stem,
        {i: train[i] for i in order},
        {i: test.get(i, np.array([])) for i in order},
        {i: m[i] for i in order},
        {i: h[i] for i in order},
        info,
    )


def read_m4_wide(train_path: str | Path, test_path: str | Path, season_length: int) -> CompetitionSet:
    """Read an original M4 ``*-train.csv`` / ``*-test.csv`` pair (wide, ragged rows)."""
    train_path, test_path = Path(train_path), Path(test_path)

    def _read(p: Path) -> dict[str, np.ndarray]:
        out = {}
        raw = pd.read_csv(p, dtype={"V1": str})
        values = raw.drop(columns="V1").to_numpy(float)
        for sid, row in zip(raw["V1"], values, strict=True):
            out[str(sid)] = row[~np.isnan(row)]
        return out

    tr, te = _read(train_path), _read(test_path)
    ids = list(tr)
    return CompetitionSet(
        train_path.stem.replace("-train", ""),
        tr,
        {i: te[i] for i in ids},
        dict.fromkeys(ids, season_length),
        {i: len(te[i]) for i in ids},
    )


def read_submitted_forecasts(path: str | Path, method: str) -> dict[str, np.ndarray]:
    """Point forecasts of one original M3 submission (``unique_id, method, f1..fh``)."""
    df = pd.read_csv(path, dtype={"unique_id": str})
    sub = df[df["method"] == method]
    if sub.empty:
        methods = sorted(df["method"].unique())
        raise DataValidationError(str(path), [f"no rows for method {method!r}; methods are {methods}."])
    fcols = [c for c in df.columns if c.startswith("f") and c[1:].isdigit()]
    out = {}
    for sid, row in zip(sub["unique_id"], sub[fcols].to_numpy(float), strict=True):
        out[str(sid)] = row[~np.isnan(row)]
    return out
