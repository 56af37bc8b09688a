"""Absorbing Markov chain: the exact oracle of the pipeline Monte Carlo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salesops_models.errors import SalesopsError


@dataclass(frozen=True)
class AbsorbingChain:
    """Exact absorption figures of a pipeline jump chain with open states first.

    Attributes
    ----------
    fundamental
        :math:`N = (I - Q)^{-1}`: expected visits to open stage ``j`` starting from ``i`` [visits].
    absorption
        :math:`B = N R`: probability of ending won (column 0) or lost (column 1) from each open stage.
    expected_steps
        :math:`t = N \\mathbf{1}`: expected stage visits before closing [visits].
    """

    fundamental: np.ndarray
    absorption: np.ndarray
    expected_steps: np.ndarray

    @property
    def win_probability(self) -> np.ndarray:
        """Probability of ending won from each open stage [0-1]."""
        return self.absorption[:, 0]

    def expected_time(self, mean_holding_days: np.ndarray) -> np.ndarray:
        """Expected days to close from each open stage, :math:`N d` [days]."""
        return self.fundamental @ np.asarray(mean_holding_days, dtype=float)

    def summary(self) -> dict[str, float]:
        return {f"win_probability_{i}": float(p) for i, p in enumerate(self.win_probability)}


def absorbing_chain(transition_matrix: np.ndarray, n_open: int) -> AbsorbingChain:
    """Solve the absorbing chain of a pipeline.

    Parameters
    ----------
    transition_matrix
        Square matrix over ``n_open`` open stages followed by the won and the lost state.
    n_open
        Number of open (transient) stages.

    Returns
    -------
    AbsorbingChain

    Notes
    -----
    In canonical form :math:`P = [[Q, R], [0, I]]`, :math:`N = (I - Q)^{-1}`, :math:`B = NR` and
    the expected number of steps is :math:`N\\mathbf{1}` (Grinstead & Snell, *Introduction to
    Probability*, section 11.2). Back-transitions between open stages are allowed.
    """
    P = np.asarray(transition_matrix, dtype=float)
    if P.shape != (n_open + 2, n_open + 2):
        raise SalesopsError(
            f"transition_matrix has shape {P.shape}; expected ({n_open + 2}, {n_open + 2}) for {n_open} open stages "
            "plus won and lost."
        )
    Q = P[:n_open, :n_open]
    R = P[:n_open, n_open:]
    try:
        N = np.linalg.inv(np.eye(n_open) - Q)
    except np.linalg.LinAlgError:
        raise SalesopsError(
            "transition_matrix: some open stage can never reach won or lost (I - Q is singular); "
            "check the stage history for deals that only cycle between open stages."
        ) from None
    return AbsorbingChain(fundamental=N, absorption=N @ R, expected_steps=N.sum(axis=1))
