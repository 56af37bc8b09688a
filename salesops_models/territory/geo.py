"""Distances between accounts and rep home bases, and the candidate (account, rep) pairs.

Notes
-----
Great-circle (haversine) distance on a sphere of radius :data:`EARTH_RADIUS_KM`:

.. math::

    d = 2 R \\arcsin \\sqrt{\\sin^2\\frac{\\varphi_2-\\varphi_1}{2}
        + \\cos\\varphi_1 \\cos\\varphi_2 \\sin^2\\frac{\\lambda_2-\\lambda_1}{2}}

with latitudes :math:`\\varphi` and longitudes :math:`\\lambda` in radians.
"""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance [km] between points given in degrees; broadcasts like numpy.

    Parameters
    ----------
    lat1, lon1
        Latitude and longitude of the first points [deg].
    lat2, lon2
        Latitude and longitude of the second points [deg].

    Returns
    -------
    numpy.ndarray
        Distances [km].
    """
    p1, l1, p2, l2 = (np.radians(np.asarray(a, dtype=float)) for a in (lat1, lon1, lat2, lon2))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


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
