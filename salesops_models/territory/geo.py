"""Distances between accounts and rep home bases (haversine, see :mod:`salesops_models.geo`), and the
candidate (account, rep) pairs."""

from __future__ import annotations

import numpy as np

from salesops_models.geo import EARTH_RADIUS_KM, haversine_km

__all__ = ["EARTH_RADIUS_KM", "haversine_km", "distance_matrix_km", "candidate_mask"]


#: Cells (accounts x reps) of the distance matrix worked on at a time: the haversine's temporaries and
#: the candidate search stay at a few such blocks (~4 MB each) instead of several copies of the whole
#: matrix (1 GB each at 250,000 x 500).
BLOCK_CELLS = 1 << 19


def row_blocks(n_rows: int, n_cols: int) -> list[slice]:
    """Consecutive row slices of about :data:`BLOCK_CELLS` cells each."""
    step = max(1, BLOCK_CELLS // max(n_cols, 1))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def distance_matrix_km(
    lat: np.ndarray, lon: np.ndarray, home_lat: np.ndarray, home_lon: np.ndarray
) -> np.ndarray:
    """Matrix ``D[a, r]`` of haversine distances [km] from each account to each rep home base.

    Computed in blocks of rows, so that the only full-size array is the result.
    """
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    h_lat = np.asarray(home_lat, dtype=float)[None, :]
    h_lon = np.asarray(home_lon, dtype=float)[None, :]
    out = np.empty((len(lat), h_lat.shape[1]))
    for rows in row_blocks(*out.shape):
        out[rows] = haversine_km(lat[rows, None], lon[rows, None], h_lat, h_lon)
    return out


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
        mask = np.zeros((n_acc, n_rep), dtype=bool)
        for rows in row_blocks(n_acc, n_rep):  # argpartition's index array block by block
            nearest = np.argpartition(distance[rows], k - 1, axis=1)[:, :k]
            mask[np.arange(rows.start, rows.stop)[:, None], nearest] = True
    if always is not None:
        mask |= always
    return mask
