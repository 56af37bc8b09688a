"""Great-circle distances, shared by the sample company and the territory model.

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
