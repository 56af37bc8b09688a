"""Hierarchical forecasts that add up: company > region > rep, or any (grouped) levels.

Base forecasts are made for every node of the hierarchy, then reconciled with a matrix
:math:`G` so that the reconciled forecasts :math:`\\tilde y = S G \\hat y` are coherent: every
aggregate equals the sum of its children.

Formulation
-----------
==============  =============================================================================
symbol          meaning
==============  =============================================================================
:math:`S`       summing matrix, :math:`n \\times b`: row :math:`i` has a 1 for every bottom series
                under node :math:`i` (the identity block for the bottom level itself)
:math:`\\hat y`  base forecasts of all :math:`n` nodes at one horizon step
:math:`W`       covariance (or weight) matrix of the base forecast errors, :math:`n \\times n`
:math:`G`       :math:`b \\times n` matrix mapping base forecasts to bottom-level forecasts
==============  =============================================================================

Methods (``method=``):

- ``bottom_up``: :math:`G = [0 \\mid I_b]`, the bottom base forecasts summed up.
- ``top_down``: :math:`G = p\\,e_1^\\top`, the top forecast split by the proportions of the
  historical averages :math:`p_j = \\sum_t y_{j,t} / \\sum_t y_{\\text{top},t}` (Gross & Sohl, method F).
- ``ols``: :math:`G = (S^\\top S)^{-1} S^\\top` (:math:`W = I`).
- ``wls_struct``: :math:`W = \\mathrm{diag}(S\\mathbf{1})`, the number of bottom series under each node.
- ``wls_var``: :math:`W = \\mathrm{diag}(\\hat\\sigma_i^2)` from in-sample one-step errors.
- ``mint_shrink``: MinT, :math:`W` = the in-sample error covariance shrunk towards its diagonal
  (Schäfer & Strimmer 2005; Wickramasuriya, Athanasopoulos & Hyndman 2019).

For the GLS methods :math:`G = (S^\\top W^{-1} S)^{-1} S^\\top W^{-1}`. Variances are floored at
:math:`10^{-8}` times their largest value so that near-constant series keep :math:`W` invertible.

Quantiles of reconciled forecasts (Gaussian method): the base forecast error of node :math:`i`
at step :math:`h` has standard deviation :math:`\\sigma_{i,h} = (q_{95} - q_{05}) / (2 z_{0.95})`
read from its base quantiles, and errors are correlated with the shrunk correlation matrix
:math:`R` of the in-sample one-step errors (identity when residuals are too short), so
:math:`\\Sigma_h = D_h R D_h` with :math:`D_h = \\mathrm{diag}(\\sigma_{\\cdot,h})`. The reconciled
errors have covariance :math:`S G \\Sigma_h G^\\top S^\\top` and the quantiles are
:math:`\\tilde y_{i,h} + z_p \\tilde\\sigma_{i,h}` (Panagiotelis et al. 2023 show reconciling a
Gaussian keeps it Gaussian). The reconciled means add up exactly; quantiles do not, and should not.

Calibrated quantiles (``interval_method="calibrated"``, the default of :func:`forecast_hierarchy`):
the forecasts every node's model made from the calibration origins
(:mod:`~salesops_models.forecast.intervals`) are reconciled with the same :math:`G`, and the
reconciled forecasts' errors, standardised by the Gaussian :math:`\\tilde\\sigma_{i,h}` above, give
empirical quantiles per step, pooled over the nodes of each level (over all nodes for a level of
fewer than :data:`MIN_LEVEL_POOL` series). The intervals are thus calibrated on the product that
is reported, reconciliation included.

Non-negativity: when requested and a reconciled bottom forecast is negative, the bottom level is
clipped at 0 and re-aggregated with :math:`S` (coherence is kept), and ``clipped`` is set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from salesops_models.errors import DataValidationError
from salesops_models.forecast.forecaster import SeriesForecast
from salesops_models.forecast.intervals import (
    CALIBRATION_ORIGINS,
    Calibration,
    calibrate,
    errors_at_origins,
)
from salesops_models.forecast.parallel import forecast_many
from salesops_models.forecast.schema import QUANTILE_LEVELS, quantile_column, quantile_columns

log = logging.getLogger(__name__)

METHODS = ("bottom_up", "top_down", "ols", "wls_struct", "wls_var", "mint_shrink")

#: A level with fewer series than this is calibrated on the errors of every node of the hierarchy.
MIN_LEVEL_POOL = 10


@dataclass
class Hierarchy:
    """Nodes of a hierarchy and its summing matrix.

    Attributes
    ----------
    nodes
        One row per node (top first, bottom last): ``level`` (level name), ``series`` (label) and
        one column per key (NA where the level aggregates it away).
    S
        Summing matrix :math:`n \\times b` [-].
    bottom
        One row per bottom series with its key columns, in the column order of :math:`S`.
    """

    nodes: pd.DataFrame
    S: np.ndarray
    bottom: pd.DataFrame
    level_names: list[str]
    bottom_keys: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return self.S.shape[0]

    @property
    def b(self) -> int:
        return self.S.shape[1]

    @property
    def bottom_labels(self) -> list[str]:
        return list(self.nodes["series"].iloc[self.n - self.b :])

    def aggregate(self, bottom_values: np.ndarray) -> np.ndarray:
        """All nodes from bottom values: :math:`Y = Y_b S^\\top` (rows: periods)."""
        return np.asarray(self.sparse @ np.asarray(bottom_values, float).T).T

    @cached_property
    def sparse(self) -> Any:
        """:math:`S` as a ``scipy.sparse`` CSR matrix (one non-zero per bottom series and level)."""
        from scipy import sparse

        return sparse.csr_matrix(self.S)


def build_hierarchy(
    bottom: pd.DataFrame,
    levels: Sequence[Sequence[str]],
    level_names: Sequence[str] | None = None,
    *,
    label: str = "path",
    top_label: str = "total",
) -> Hierarchy:
    """Build the nodes and summing matrix of a hierarchical or grouped structure.

    Parameters
    ----------
    bottom
        One row per bottom series with its key columns (e.g. ``region``, ``rep_id``).
    levels
        Key columns of each level, top first; ``()`` is the grand total and the last entry must
        identify bottom rows uniquely. Company > region > rep: ``[(), ("region",), ("region", "rep_id")]``.
        Grouped (fpp3 tourism): ``[(), ("state",), ("state", "region"), ("purpose",),
        ("state", "purpose"), ("state", "region", "purpose")]``.
    level_names
        A name per level (default: the key columns joined with "/", "total" for the top).
    label
        ``"path"``: series labels join the key values with "/"; ``"last"``: the last key value only.
    """
    levels = [tuple(lv) for lv in levels]
    if not levels:
        raise DataValidationError(
            "hierarchy", ["no levels given; pass e.g. [(), ('region',), ('region', 'rep_id')]."]
        )
    keys = sorted({c for lv in levels for c in lv})
    missing = [c for c in keys if c not in bottom.columns]
    if missing:
        raise DataValidationError("hierarchy", [f"bottom table lacks key column(s) {missing}."])
    last = list(levels[-1])
    if bottom.duplicated(subset=last).any():
        raise DataValidationError(
            "hierarchy", [f"the bottom level {last} does not identify series uniquely; add a key column."]
        )
    bottom = bottom[keys].reset_index(drop=True).astype(str)
    names = list(level_names) if level_names else ["/".join(lv) or "total" for lv in levels]
    rows, mats = [], []
    for lv, lname in zip(levels, names, strict=True):
        if not lv:
            groups = {(): np.arange(len(bottom))}
        else:
            groups = {
                k if isinstance(k, tuple) else (k,): v
                for k, v in bottom.groupby(list(lv), sort=True).indices.items()
            }
        for key, members in groups.items():
            vec = np.zeros(len(bottom))
            vec[members] = 1.0
            mats.append(vec)
            if not lv:
                lab = top_label
            else:
                lab = "/".join(key) if label == "path" else str(key[-1])
            row = {"level": lname, "series": lab}
            row.update({c: (dict(zip(lv, key, strict=True)).get(c, pd.NA)) for c in keys})
            rows.append(row)
    S = np.vstack(mats)
    nodes = pd.DataFrame(rows)
    # the last level must be the bottom itself, in bottom order
    b = len(bottom)
    bottom_block = S[-b:]
    order = np.argmax(bottom_block, axis=1)
    if not np.allclose(bottom_block.sum(axis=1), 1) or len(set(order)) != b:
        raise DataValidationError(
            "hierarchy", ["the last level must have exactly one node per bottom series."]
        )
    bottom = bottom.iloc[order].reset_index(drop=True)
    S = S[:, order]
    if nodes.duplicated(subset=["level", "series"]).any():
        raise DataValidationError("hierarchy", ["series labels repeat within a level; use label='path'."])
    return Hierarchy(nodes, S, bottom, names, tuple(last))


def shrinkage_intensity(residuals: np.ndarray) -> float:
    """Schäfer-Strimmer :math:`\\lambda` of :func:`shrunk_covariance`, computed without forming any n x n matrix."""
    x = np.asarray(residuals, float)
    t = x.shape[0]
    sd = np.sqrt(np.maximum(np.mean(x**2, axis=0), 0))
    xs = x / np.where(sd > 0, sd, 1.0)
    # sums over i != j of r_ij^2 and of Var(r_ij), with r = Xs'Xs / t, through t x t matrices:
    # sum_ij (Xs'Xs)_ij^2 = ||Xs Xs'||_F^2 and sum_ij (X2'X2)_ij = sum_t (row sum of X2)_t^2
    g = xs @ xs.T
    sum_r2 = (np.sum(g * g) - np.sum(np.sum(xs**2, axis=0) ** 2)) / t**2
    x2 = xs**2
    sum_w2 = np.sum(x2.sum(axis=1) ** 2) - np.sum(x2**2)
    # Var(r_ij) = (sum_t w_tij^2 - t rbar_ij^2) / (t (t - 1)) with w_tij = x_ti x_tj, rbar = r
    var_sum = (sum_w2 - t * sum_r2) / (t * (t - 1))
    return float(np.clip(var_sum / sum_r2, 0.0, 1.0)) if sum_r2 > 0 else 1.0


def shrunk_covariance(residuals: np.ndarray) -> tuple[np.ndarray, float]:
    """Covariance of one-step errors shrunk towards its diagonal (Schäfer & Strimmer 2005).

    Parameters
    ----------
    residuals
        :math:`T \\times n` in-sample one-step errors [unit].

    Returns
    -------
    (ndarray, float)
        :math:`\\hat W = \\lambda\\,\\mathrm{diag}(\\hat\\Sigma) + (1-\\lambda)\\hat\\Sigma` and :math:`\\lambda`.

    Notes
    -----
    :math:`\\hat\\Sigma = E^\\top E / T` and
    :math:`\\lambda = \\sum_{i\\ne j}\\widehat{\\mathrm{Var}}(r_{ij}) / \\sum_{i\\ne j} r_{ij}^2` clipped to
    [0, 1], as in the R ``hts`` package (``shrink.estim``).
    """
    x = np.asarray(residuals, float)
    t = x.shape[0]
    cov = x.T @ x / t
    sd = np.sqrt(np.maximum(np.diag(cov), 0))
    sd_safe = np.where(sd > 0, sd, 1.0)
    xs = x / sd_safe
    v = (1.0 / (t * (t - 1))) * ((xs**2).T @ (xs**2) - (xs.T @ xs) ** 2 / t)
    np.fill_diagonal(v, 0.0)
    cor = cov / np.outer(sd_safe, sd_safe)
    d = cor**2
    np.fill_diagonal(d, 0.0)
    lam = float(np.clip(v.sum() / d.sum(), 0.0, 1.0)) if d.sum() > 0 else 1.0
    shrunk = lam * np.diag(np.diag(cov)) + (1 - lam) * cov
    return shrunk, lam


def _floor_diag(w: np.ndarray) -> np.ndarray:
    d = np.diag(w).copy()
    floor = max(float(d.max()) * 1e-8, 1e-12)
    w = w.copy()
    w[np.diag_indices_from(w)] = np.maximum(d, floor)
    return w


def reconciliation_matrix(
    S: np.ndarray,
    method: str,
    *,
    residuals: np.ndarray | None = None,
    history: np.ndarray | None = None,
) -> np.ndarray:
    """The :math:`b \\times n` matrix :math:`G` of a reconciliation method (see the module notes).

    Parameters
    ----------
    S
        Summing matrix.
    method
        One of :data:`METHODS`.
    residuals
        :math:`T \\times n` one-step errors (``wls_var``, ``mint_shrink``).
    history
        :math:`T \\times n` history of all nodes (``top_down`` proportions).
    """
    n, b = S.shape
    if method == "bottom_up":
        return np.hstack([np.zeros((b, n - b)), np.eye(b)])
    if method == "top_down":
        if history is None:
            raise DataValidationError("reconciliation", ["top_down needs the history of all nodes."])
        top = int(np.argmax(S.sum(axis=1)))
        if not np.allclose(S[top], 1):
            raise DataValidationError(
                "reconciliation", ["top_down needs a grand-total level (levels start with ())."]
            )
        hist = np.asarray(history, float)
        total = hist[:, top].sum()
        if total == 0:
            raise DataValidationError(
                "reconciliation", ["top_down: the total history sums to 0; no proportions."]
            )
        p = hist[:, n - b :].sum(axis=0) / total
        g = np.zeros((b, n))
        g[:, top] = p
        return g
    if method == "ols":
        w_inv = np.eye(n)
    elif method == "wls_struct":
        w_inv = np.diag(1.0 / S.sum(axis=1))
    elif method in ("wls_var", "mint_shrink"):
        if residuals is None or len(residuals) < 3:
            raise DataValidationError(
                "reconciliation", [f"{method} needs in-sample residuals of every node (at least 3 periods)."]
            )
        res = np.asarray(residuals, float)
        if method == "wls_var":
            w = _floor_diag(np.diag(np.mean(res**2, axis=0)))
        else:
            w = _floor_diag(shrunk_covariance(res)[0])
        w_inv = np.linalg.pinv(w) if method == "mint_shrink" else np.diag(1.0 / np.diag(w))
    else:
        raise DataValidationError(
            "reconciliation", [f"unknown method {method!r}; choose one of {', '.join(METHODS)}."]
        )
    a = S.T @ w_inv @ S
    return np.linalg.solve(a, S.T @ w_inv)


#: Hierarchies with more nodes than this reconcile without forming G (Woodbury solves, see
#: :class:`Reconciler`), and their reconciled Gaussian quantiles use each node's base standard deviation.
DENSE_LIMIT = 1500


class Reconciler:
    """Maps base forecasts of all nodes to reconciled bottom forecasts, :math:`G \\hat y`.

    Up to :data:`DENSE_LIMIT` nodes :math:`G` is formed (:func:`reconciliation_matrix`). Above, the
    GLS methods never form it: with :math:`W = D + LL^\\top` (diagonal :math:`D`; for MinT-shrink
    :math:`D = \\lambda\\,\\mathrm{diag}\\hat\\Sigma` floored and :math:`LL^\\top = (1-\\lambda)E^\\top E/T`
    from the :math:`T \\times n` residuals :math:`E`) and the summing matrix split into the identity
    (bottom) and the aggregate rows :math:`A`,

    .. math::
        S^\\top W^{-1} S = D_b^{-1} + V Q V^\\top, \\quad V = [A^\\top D_a^{-1/2}\\!\\cdot, P],\\;
        P = S^\\top D^{-1} L, \\; Q = \\mathrm{diag}(D_a^{-1}, -(I + L^\\top D^{-1} L)^{-1})

    and both :math:`W^{-1}` and :math:`(S^\\top W^{-1} S)^{-1}` are applied by the Woodbury identity,
    with inner systems of size (aggregate nodes + residual periods). Cost
    :math:`O(b\\,(n_a + T)^2)` instead of :math:`O(n^3)`; tests check it against the dense :math:`G`.
    """

    def __init__(
        self,
        S: np.ndarray,
        method: str,
        *,
        residuals: np.ndarray | None = None,
        history: np.ndarray | None = None,
        dense_limit: int = DENSE_LIMIT,
    ) -> None:
        n, b = S.shape
        self.n, self.b, self.method = n, b, method
        self.shrinkage = float("nan")
        self.g: np.ndarray | None = None
        if method == "bottom_up":
            return
        if method == "top_down" or n <= dense_limit:
            self.g = reconciliation_matrix(S, method, residuals=residuals, history=history)
            return
        if method not in METHODS:
            raise DataValidationError(
                "reconciliation", [f"unknown method {method!r}; choose one of {', '.join(METHODS)}."]
            )
        from scipy import sparse

        low = np.zeros((n, 0))
        if method == "ols":
            d = np.ones(n)
        elif method == "wls_struct":
            d = S.sum(axis=1).astype(float)
        else:
            if residuals is None or len(residuals) < 3:
                raise DataValidationError(
                    "reconciliation", [f"{method} needs in-sample residuals of every node (at least 3 periods)."]
                )
            e = np.asarray(residuals, float)
            t = e.shape[0]
            var = np.mean(e**2, axis=0)
            floor = max(float(var.max()) * 1e-8, 1e-12)
            if method == "wls_var":
                d = np.maximum(var, floor)
            else:
                lam = shrinkage_intensity(e)
                self.shrinkage = lam
                # W = lam diag(S) + (1 - lam) E'E/T; the diagonal floor lifts W_ii to at least `floor`
                d = lam * var + np.maximum(floor - var, 0.0)
                d = np.maximum(d, floor * 1e-6)
                low = np.sqrt((1.0 - lam) / t) * e.T
        self.d = d
        self.low = low
        a = sparse.csr_matrix(S[: n - b])
        self.a = a
        self.db = d[n - b :]
        # W^{-1} = D^{-1} - D^{-1} L K^{-1} L' D^{-1}, K = I + L' D^{-1} L
        dl = low / d[:, None]
        self.dl = dl
        self.k_inv = np.linalg.inv(np.eye(low.shape[1]) + low.T @ dl) if low.shape[1] else np.zeros((0, 0))
        # S' W^{-1} S = D_b^{-1} + A' D_a^{-1} A - P K^{-1} P',  P = S' D^{-1} L
        p = dl[n - b :] + a.T @ dl[: n - b]
        v = np.hstack([a.T.toarray(), p])
        q_inv = np.zeros((v.shape[1], v.shape[1]))
        na = n - b
        q_inv[:na, :na] = np.diag(d[:na])
        q_inv[na:, na:] = -(np.eye(low.shape[1]) + low.T @ dl) if low.shape[1] else np.zeros((0, 0))
        inner = q_inv + v.T @ (self.db[:, None] * v)
        self.v = v
        self.inner = np.linalg.inv(inner)

    def bottom(self, yhat: np.ndarray) -> np.ndarray:
        """Reconciled bottom forecasts ``(b, K)`` from base forecasts ``(n, K)`` of every node."""
        y = np.asarray(yhat, float)
        if self.method == "bottom_up":
            return y[self.n - self.b :].copy()
        if self.g is not None:
            return self.g @ y
        # rhs = S' W^{-1} y
        w_inv_y = y / self.d[:, None]
        if self.low.shape[1]:
            w_inv_y -= self.dl @ (self.k_inv @ (self.dl.T @ y))
        rhs = w_inv_y[self.n - self.b :] + self.a.T @ w_inv_y[: self.n - self.b]
        # (S' W^{-1} S)^{-1} rhs by Woodbury around D_b^{-1}
        db_rhs = self.db[:, None] * rhs
        return db_rhs - self.db[:, None] * (self.v @ (self.inner @ (self.v.T @ db_rhs)))

    def matrix(self) -> np.ndarray:
        """:math:`G` (``b x n``), formed on request (dense; large hierarchies only for tests)."""
        if self.g is not None:
            return self.g
        return self.bottom(np.eye(self.n))


def _residual_matrix(forecasts: Sequence[SeriesForecast]) -> np.ndarray | None:
    lengths = [len(f.residuals) for f in forecasts]
    k = min(lengths) if lengths else 0
    if k < 3:
        return None
    return np.column_stack([f.residuals[len(f.residuals) - k :] for f in forecasts])


def reconcile(
    hierarchy: Hierarchy,
    base: Sequence[pd.DataFrame],
    method: str,
    *,
    residuals: np.ndarray | None = None,
    history: np.ndarray | None = None,
    levels: tuple[float, ...] = QUANTILE_LEVELS,
    nonnegative: bool = False,
) -> tuple[list[pd.DataFrame], dict[str, Any]]:
    """Reconcile base forecast frames (one per node, in node order) with ``method``.

    Returns
    -------
    (list of DataFrame, dict)
        Reconciled frames (``mean`` + quantile columns) per node, and facts: ``G``, ``clipped``,
        ``shrinkage`` (MinT :math:`\\lambda`), ``quantile_method``.
    """
    if len(base) != hierarchy.n:
        raise DataValidationError("reconciliation", [f"{len(base)} base forecasts for {hierarchy.n} nodes."])
    S = hierarchy.S
    rec = Reconciler(S, method, residuals=residuals, history=history)
    yhat = np.column_stack([fr["mean"].to_numpy(float) for fr in base])  # h x n
    bottom = rec.bottom(yhat.T).T  # h x b
    clipped = False
    if nonnegative and (bottom < 0).any():
        bottom = np.clip(bottom, 0.0, None)
        clipped = True
    mean = hierarchy.aggregate(bottom)  # h x n
    # Gaussian quantiles: base sd per node and step from the 90% band, correlation from residuals
    z95 = float(ndtri(0.95))
    lo, hi = quantile_column(0.05), quantile_column(0.95)
    sd = np.column_stack(
        [
            (fr[hi].to_numpy(float) - fr[lo].to_numpy(float)) / (2 * z95)
            if lo in fr and hi in fr
            else np.zeros(len(fr))
            for fr in base
        ]
    )
    lam = rec.shrinkage
    if hierarchy.n <= DENSE_LIMIT:
        g = rec.matrix()
        corr = np.eye(hierarchy.n)
        if residuals is not None and len(residuals) >= 3:
            cov, lam = shrunk_covariance(np.asarray(residuals, float))
            d = np.sqrt(np.maximum(np.diag(cov), 0))
            d = np.where(d > 0, d, 1.0)
            corr = cov / np.outer(d, d)
            np.fill_diagonal(corr, 1.0)
        sgm = S @ g
        rec_sd = np.empty_like(mean)
        for step in range(mean.shape[0]):
            sigma = corr * np.outer(sd[step], sd[step])
            rec_sd[step] = np.sqrt(np.maximum(np.sum((sgm @ sigma) * sgm, axis=1), 0.0))
        quantile_method = "gaussian: S G (D R D) G' S', R = shrunk residual correlation"
    else:
        # n x n products are out of reach: each node keeps its base standard deviation
        rec_sd = sd
        quantile_method = f"gaussian: base standard deviations (more than {DENSE_LIMIT} nodes)"
    z = ndtri(np.asarray(levels, float))
    qs = mean[:, :, None] + rec_sd[:, :, None] * z[None, None, :]  # h x n x levels
    if nonnegative and (qs < 0).any():
        qs = np.clip(qs, 0.0, None)
        clipped = True
    cols = ["mean", *quantile_columns(levels)]
    frames = [
        pd.DataFrame(np.column_stack([mean[:, i], qs[:, i, :]]), index=base[i].index, columns=cols)
        for i in range(hierarchy.n)
    ]
    info = {
        "G": rec.g,
        "reconciler": rec,
        "clipped": clipped,
        "shrinkage": lam,
        "sd": rec_sd,
        "quantile_method": quantile_method,
    }
    return frames, info


def calibrate_reconciled(
    hierarchy: Hierarchy,
    fits: Sequence[SeriesForecast],
    frames: Sequence[pd.DataFrame],
    reconciler: Reconciler,
    sd: np.ndarray,
    history: np.ndarray,
    *,
    levels: tuple[float, ...] = QUANTILE_LEVELS,
    nonnegative: bool = False,
    calibration_method: str = "shrunk_scale",
) -> tuple[list[pd.DataFrame], bool]:
    """Quantiles of reconciled forecasts from the reconciled forecasts of the calibration origins.

    Parameters
    ----------
    hierarchy
        The structure.
    fits
        Base forecasts per node (node order) with their ``rolling_errors`` (same origins for all).
    frames
        Reconciled frames per node (``mean`` is kept; quantiles are replaced).
    reconciler
        The :class:`Reconciler` of the reconciled frames.
    sd
        Reconciled Gaussian standard deviations, ``horizon x n`` [unit].
    history
        ``T x n`` history of every node [unit].
    calibration_method
        :func:`~salesops_models.forecast.intervals.calibrate`, per level (or over every node).

    Returns
    -------
    (list of DataFrame, bool)
        Frames with calibrated quantiles (unchanged when a node has no origin forecasts) and whether
        quantiles were clipped at 0.
    """
    errs = [f.rolling_errors for f in fits]
    if any(e is None for e in errs) or len({tuple(e.origins) for e in errs}) != 1:  # type: ignore[union-attr]
        log.info("calibrated reconciliation skipped: not every node has forecasts from the same origins")
        return list(frames), False
    origins = errs[0].origins  # type: ignore[union-attr]
    base = np.stack([e.forecasts for e in errs])  # type: ignore[union-attr]  # n x k x h
    n, k, hh = base.shape
    # a node without a forecast at some origin and step leaves that cell out (NaN) everywhere
    flat = base.reshape(n, k * hh)
    missing = np.isnan(flat).any(axis=0)
    bottom = reconciler.bottom(np.where(missing[None, :], 0.0, flat))
    bottom[:, missing] = np.nan
    if nonnegative:
        bottom = np.clip(bottom, 0.0, None)
    rec = np.asarray(hierarchy.sparse @ bottom).reshape(n, k, hh)
    h = len(frames[0])
    samples = []
    for i in range(hierarchy.n):
        mean = frames[i]["mean"].to_numpy(float)
        samples.append(errors_at_origins(history[:, i], origins, rec[i, :, :h], mean, sd[:, i]))
    node_level = hierarchy.nodes["level"].to_numpy()
    everything = calibrate(samples, h, levels, calibration_method)
    clipped = False
    out = []
    cols = quantile_columns(levels)
    by_level: dict[str, Calibration] = {}
    first_columns = list(frames[0].columns)
    first_positions = frames[0].columns.get_indexer(cols)
    for i in range(hierarchy.n):
        lv = node_level[i]
        if lv not in by_level:
            members = [samples[j] for j in np.where(node_level == lv)[0]]
            by_level[lv] = (
                calibrate(members, h, levels, calibration_method) if len(members) >= MIN_LEVEL_POOL else everything
            )
        cal = by_level[lv] if np.isfinite(by_level[lv].offsets).all() else everything
        fr = frames[i]
        if np.isfinite(cal.offsets).all():
            q = cal.quantiles(fr["mean"].to_numpy(float), samples[i])
            if nonnegative and (q < 0).any():
                q = np.clip(q, 0.0, None)
                clipped = True
            # a new frame from one array: assigning the quantile columns in place cost 2 ms a node
            values = fr.to_numpy(float, copy=True)
            same = list(fr.columns) == first_columns
            values[:, first_positions if same else fr.columns.get_indexer(cols)] = q
            fr = pd.DataFrame(values, index=fr.index, columns=fr.columns)
        else:
            fr = fr.copy()
        out.append(fr)
    return out, clipped


@dataclass
class HierarchyForecast:
    """Base and reconciled forecasts of every node.

    Attributes
    ----------
    hierarchy
        The structure.
    base
        Long table: ``level, series, period, mean, q05 ... q95, model`` (base forecasts).
    reconciled
        Long table by method: the same columns plus ``method``.
    fits
        One row per node: ``level, series, model, fallbacks, clipped, filled_periods``.
    clipped
        Methods whose reconciled forecasts were clipped at 0.
    """

    hierarchy: Hierarchy
    base: pd.DataFrame
    reconciled: dict[str, pd.DataFrame]
    fits: pd.DataFrame
    clipped: dict[str, bool] = field(default_factory=dict)
    shrinkage: float = float("nan")
    #: wall time of the phases, ``fit`` (base forecasts) and ``reconcile`` (every method) [s]; reported only
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Node count, fallbacks, clipping and the top-level total of every method [unit]."""
        top = self.hierarchy.nodes["series"].iloc[0]
        out: dict[str, Any] = {
            "n_nodes": self.hierarchy.n,
            "n_bottom": self.hierarchy.b,
            "n_fallbacks": int((self.fits["fallbacks"] > 0).sum()),
            "base_total": float(self.base.loc[self.base["series"] == top, "mean"].sum()),
        }
        for m, df in self.reconciled.items():
            out[f"{m}_total"] = float(df.loc[df["series"] == top, "mean"].sum())
            out[f"{m}_clipped"] = bool(self.clipped.get(m, False))
        return out


def _long(h: Hierarchy, frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One long table ``level, series, period, <frame columns>`` of the nodes' frames, in node order."""
    if len(frames) != h.n:
        raise DataValidationError("reconciliation", [f"{len(frames)} forecast frames for {h.n} nodes."])
    columns = list(frames[0].columns) if frames else []
    arrays = [fr.to_numpy() for fr in frames]  # float64 exactly when every column is float64
    if frames and all(
        a.dtype == np.float64 and list(fr.columns) == columns for a, fr in zip(arrays, frames, strict=True)
    ):
        # built once from stacked arrays: one frame per node and a concat of thousands of them took
        # 40% of the time of a 5,000-series hierarchy (pandas insert/copy per frame)
        lengths = [len(fr) for fr in frames]
        out = pd.DataFrame(np.concatenate(arrays), columns=columns)
        out.insert(0, "period", frames[0].index.append([fr.index for fr in frames[1:]]))
        out.insert(0, "series", np.repeat(h.nodes["series"].to_numpy(), lengths))
        out.insert(0, "level", np.repeat(h.nodes["level"].to_numpy(), lengths))
        return out
    out = []
    for (_, node), fr in zip(h.nodes.iterrows(), frames, strict=True):
        df = fr.copy()
        df.insert(0, "period", df.index)
        df.insert(0, "series", node["series"])
        df.insert(0, "level", node["level"])
        out.append(df.reset_index(drop=True))
    return pd.concat(out, ignore_index=True)


def forecast_hierarchy(
    bottom_history: pd.DataFrame,
    hierarchy: Hierarchy,
    horizon: int,
    *,
    model: str | Mapping[str, str] = "ets_damped",
    season_length: int = 12,
    methods: Sequence[str] = ("mint_shrink",),
    levels: tuple[float, ...] = QUANTILE_LEVELS,
    nonnegative: bool = True,
    n_jobs: int = 1,
    progress: bool = False,
    seed: int | None = None,
    interval_method: str = "calibrated",
    calibration_source: str = "refit",
    calibration_origins_count: int = CALIBRATION_ORIGINS,
    calibration_method: str = "shrunk_scale",
    client: Any = None,
    bound_factor: float = 10.0,
) -> HierarchyForecast:
    """Base forecasts for every node, reconciled by each of ``methods``.

    Parameters
    ----------
    bottom_history
        Periods x bottom series [unit/period], columns in the order of ``hierarchy.bottom_labels``
        (or labelled with them), complete ``PeriodIndex``.
    hierarchy
        From :func:`build_hierarchy`.
    horizon
        Periods to forecast.
    model
        Family for all nodes, or one per level name.
    methods
        Reconciliation methods (:data:`METHODS`).
    nonnegative
        Clip at 0 (flagged) in base and reconciled forecasts.
    n_jobs, progress, seed, client
        See :func:`~salesops_models.forecast.parallel.forecast_many`.
    interval_method, calibration_source, calibration_origins_count, calibration_method
        See :func:`~salesops_models.forecast.forecaster.forecast_series`. With ``"calibrated"`` the
        reconciled quantiles are calibrated on reconciled forecasts from the calibration origins
        (:func:`calibrate_reconciled`); with ``"gaussian"`` they are the Gaussian ones.
    bound_factor
        A model whose forecast exceeds this multiple of the node's history maximum is rejected for
        its fallback [-] (:func:`~salesops_models.forecast.forecaster.forecast_series`).
    """
    started = time.perf_counter()
    labels = hierarchy.bottom_labels
    if list(bottom_history.columns) != labels:
        missing = [c for c in labels if c not in bottom_history.columns]
        if missing and hierarchy.bottom_keys:
            # columns may name bottom series by their last key (e.g. rep_id) instead of the full path
            alt = hierarchy.bottom[hierarchy.bottom_keys[-1]].tolist()
            if len(set(alt)) == len(alt) and all(a in bottom_history.columns for a in alt):
                bottom_history = bottom_history[alt].set_axis(labels, axis=1)
                missing = []
        if missing:
            raise DataValidationError(
                "bottom_history", [f"missing bottom series {missing[:5]}; columns must be the bottom labels."]
            )
        bottom_history = bottom_history[labels]
    all_hist = hierarchy.aggregate(bottom_history.to_numpy(float))
    index = bottom_history.index
    node_ids = [f"{i}" for i in range(hierarchy.n)]
    histories = {nid: pd.Series(all_hist[:, i], index=index) for i, nid in enumerate(node_ids)}
    # the same per-series settings for every level's batch
    options: dict[str, Any] = {
        "levels": levels,
        "nonnegative": nonnegative,
        "client": client,
        "keep_errors": True,
        "interval_method": interval_method,
        "calibration_source": calibration_source,
        "calibration_origins_count": calibration_origins_count,
        "calibration_method": calibration_method,
        "bound_factor": bound_factor,
    }
    if isinstance(model, Mapping):
        fits: dict[str, SeriesForecast] = {}
        for lvl in hierarchy.level_names:
            ids = [nid for nid, lv in zip(node_ids, hierarchy.nodes["level"], strict=True) if lv == lvl]
            fam = model.get(lvl, "ets_damped")
            part = forecast_many(
                {i: histories[i] for i in ids},
                horizon,
                model=fam,
                season_length=season_length,
                n_jobs=n_jobs,
                progress=progress,
                seed=None if seed is None else seed + len(fits),
                **options,
            )
            fits.update(part)
        fits = {nid: fits[nid] for nid in node_ids}
    else:
        fits = forecast_many(
            histories,
            horizon,
            model=model,
            season_length=season_length,
            n_jobs=n_jobs,
            progress=progress,
            seed=seed,
            **options,
        )
    fitted = time.perf_counter()
    base_frames = [fits[nid].forecast for nid in node_ids]
    resid = _residual_matrix([fits[nid] for nid in node_ids])
    reconciled, clipped = {}, {}
    lam = float("nan")
    for method in methods:
        try:
            frames, info = reconcile(
                hierarchy,
                base_frames,
                method,
                residuals=resid,
                history=all_hist,
                levels=levels,
                nonnegative=nonnegative,
            )
        except (DataValidationError, np.linalg.LinAlgError) as exc:
            if method in ("wls_var", "mint_shrink"):
                log.warning("reconciliation %s impossible (%s); using wls_struct instead", method, exc)
                frames, info = reconcile(
                    hierarchy, base_frames, "wls_struct", levels=levels, nonnegative=nonnegative
                )
            else:
                raise
        lam = info["shrinkage"]
        if interval_method == "calibrated":
            frames, q_clipped = calibrate_reconciled(
                hierarchy,
                [fits[nid] for nid in node_ids],
                frames,
                info["reconciler"],
                info["sd"],
                all_hist,
                levels=levels,
                nonnegative=nonnegative,
                calibration_method=calibration_method,
            )
            info["clipped"] = info["clipped"] or q_clipped
        df = _long(hierarchy, frames)
        df["method"] = method
        reconciled[method] = df
        clipped[method] = info["clipped"]
    base = _long(hierarchy, base_frames)
    base["model"] = np.repeat([fits[nid].model for nid in node_ids], horizon)
    fit_table = hierarchy.nodes[["level", "series"]].copy()
    fit_table["model"] = [fits[nid].model for nid in node_ids]
    fit_table["fallbacks"] = [len(fits[nid].fallbacks) for nid in node_ids]
    fit_table["fallback_detail"] = ["; ".join(fits[nid].fallbacks) for nid in node_ids]
    fit_table["clipped"] = [fits[nid].clipped for nid in node_ids]
    fit_table["filled_periods"] = [fits[nid].filled_periods for nid in node_ids]
    timings = {"fit": fitted - started, "reconcile": time.perf_counter() - fitted}
    return HierarchyForecast(hierarchy, base, reconciled, fit_table, clipped, lam, timings)


def coherence_error(hierarchy: Hierarchy, long: pd.DataFrame, value: str = "mean") -> float:
    """Largest absolute gap between each node and the sum of its bottom series [unit].

    Notes
    -----
    :math:`\\max_{h,i} |\\tilde y_{i,h} - (S \\tilde y_{b,h})_i|`; 0 up to rounding for a coherent forecast.
    """
    pivot = long.pivot_table(index="period", columns=["level", "series"], values=value, sort=False)
    cols = list(zip(hierarchy.nodes["level"], hierarchy.nodes["series"], strict=True))
    values = pivot[cols].to_numpy(float)
    bottom = values[:, hierarchy.n - hierarchy.b :]
    return float(np.max(np.abs(values - bottom @ hierarchy.S.T)))
