"""Distances between accounts and rep home bases (haversine, see :mod:`salesops_models.geo`), and the
candidate (account, rep) pairs."""

from __future__ import annotations

import numpy as np

from salesops_models.geo import EARTH_RADIUS_KM, haversine_km

__all__ = ["EARTH_RADIUS_KM", "haversine_km", "distance_matrix_km", "candidate_mask"]


def distance_matrix_km(
    lat: np.ndarray, lon: np.ndarray, home_lat: np.ndarray, home_lon: np.ndarray
) -> np.ndarray:
    """Matrix ``D[a, r]`` of haversine distances [km] from each account to each rep home base."""
    return haversine_km(
        np.asarray(lat, dtype=float)[:, None],
        np.asarray(lon, dtype=float)[:, None],
        np.asarray(home_lat, dtype=float)[None, :],
        np.asarray(home_lon, dtype=float)[None, :],
    )


def candidate_mask(distance: np.ndarray, k: int | None, always: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of allowed (account, rep) pairs: each account's ``k`` nearest reps plus ``always``.

    Parameters
    ----------
    distance
        Distance matrix ``D[a, r]`` [km].
    k
        Number of nearest reps kept per account; ``None`` or ``k >= n_reps`` keeps every pair.
    always
        Boolean matrix of pairs kept whatever their distance (current owner, locks).

    Returns
    -------
    numpy.ndarray
        Boolean matrix of the shape of ``distance``.
    """
    n_acc, n_rep = distance.shape
    if k is None or k >= n_rep:
        mask = np.ones((n_acc, n_rep), dtype=bool)
    else:
        nearest = np.argpartition(distance, k - 1, axis=1)[:, :k]
        mask = np.zeros((n_acc, n_rep), dtype=bool)
        mask[np.arange(n_acc)[:, None], nearest] = True
    if always is not None:
        mask |= always
    return mask
