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


def recentre(stats, nk, ref):
    """Express statistics about other reference means (exact; DESIGN §8).

    With ``d_k = stats.ref_k - ref_k`` and ``x - ref = (x - stats.ref) + d``:
    ``s1' = s1 + nk d`` and ``s2' = s2 + s1 d' + d s1' + nk d d'`` (only the
    diagonal, ``s2 + 2 s1 d + nk d^2``, for 'diag' and 'spherical'). What
    online EM (``_online``) needs before adding statistics taken at different
    parameters; the shift ``d`` is one step's change of the means, so no
    cancellation arises.

    Parameters
    ----------
    stats : GaussianStats
    nk : ndarray of shape (n_components,)
        The expected counts the statistics were summed with.
    ref : ndarray of shape (n_components, n_features)
        The new reference means.

    Returns
    -------
    stats : GaussianStats
        About ``ref`` (the same object, so that ``+`` accepts it at once).
    """
    if ref is stats.ref:
        return stats
    d = stats.ref - ref  # (n_components, n_features)
    s1 = stats.s1 + nk[:, None] * d
    if stats.s2.ndim == 3:
        cross = stats.s1[:, :, None] * d[:, None, :]  # (n_components, d, d)
        s2 = (
            stats.s2
            + cross
            + np.swapaxes(cross, 1, 2)
            + nk[:, None, None] * (d[:, :, None] * d[:, None, :])
        )
    else:
        s2 = stats.s2 + 2.0 * stats.s1 * d + nk[:, None] * d**2
    return GaussianStats(s1=s1, s2=s2, ref=ref)
