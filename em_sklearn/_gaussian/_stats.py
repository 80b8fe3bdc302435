"""GaussianStats: the additive statistics of the Gaussian components."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GaussianStats:
    """Expected first and second moments of each component, summed over rows.

    Every field but ``ref`` is a sum over rows, so the statistics of two
    disjoint blocks of rows add up to the statistics of their union (DESIGN
    §3). The moments are taken about reference means ``ref`` shared by every
    block of one E-step (the E-step's current means), which avoids
    catastrophic cancellation when ``|mean| >> std`` and keeps the sums
    additive. The counts ``nk`` are the mixture's (``MixtureStats.nk``).

    Attributes
    ----------
    s1 : ndarray of shape (n_components, n_features)
        ``sum_i r_ik (x_hat_ik - ref_k)``.
    s2 : ndarray of shape (n_components, n_features, n_features) or \
(n_components, n_features)
        ``sum_i r_ik ((x_hat_ik - ref_k)(x_hat_ik - ref_k)' + C_ik)``; only the
        diagonal for 'diag' and 'spherical'.
    ref : ndarray of shape (n_components, n_features)
        The reference means.
    """

    s1: np.ndarray
    s2: np.ndarray
    ref: np.ndarray

    def __add__(self, other):
        if not isinstance(other, GaussianStats):
            return NotImplemented
        if other.ref is not self.ref and not np.array_equal(other.ref, self.ref):
            raise ValueError(
                "Cannot add sufficient statistics taken about different "
                "reference means; re-centre them first."
            )
        return GaussianStats(s1=self.s1 + other.s1, s2=self.s2 + other.s2, ref=self.ref)
