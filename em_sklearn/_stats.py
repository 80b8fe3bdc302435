"""SuffStats: the additive output of an E-step."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SuffStats:
    """Expected sufficient statistics of a Gaussian mixture, summed over rows.

    Every field is a sum over rows, so the statistics of two disjoint chunks of
    rows add up to the statistics of their union (DESIGN §3). The second
    moments are taken about reference means ``ref`` shared by every chunk of
    one E-step (the E-step's current means), which avoids catastrophic
    cancellation when ``|mean| >> std`` and keeps the sums additive.

    Attributes
    ----------
    nk : ndarray of shape (n_components,)
        ``sum_i r_ik``.
    s1 : ndarray of shape (n_components, n_features)
        ``sum_i r_ik (x_hat_ik - ref_k)``.
    s2 : ndarray of shape (n_components, n_features, n_features) or \
(n_components, n_features)
        ``sum_i r_ik ((x_hat_ik - ref_k)(x_hat_ik - ref_k)' + C_ik)``; only the
        diagonal for 'diag' and 'spherical'.
    ref : ndarray of shape (n_components, n_features)
        The reference means.
    log_likelihood : float
        Observed-data log-likelihood of the rows at the E-step's parameters.
    log_prior : float
        Log prior density of the E-step's parameters (0 without a prior);
        not a sum over rows, so taken from the first of two added statistics.
    n_samples : int or float
        Number of rows summed; the sum of their weights when rows are
        weighted (every other field is then a weighted sum).
    """

    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    ref: np.ndarray
    log_likelihood: float
    n_samples: int
    log_prior: float = 0.0

    @property
    def objective(self):
        """What EM increases: the log-likelihood plus the log-prior."""
        return self.log_likelihood + self.log_prior

    def __add__(self, other):
        if not isinstance(other, SuffStats):
            return NotImplemented
        if other.ref is not self.ref and not np.array_equal(other.ref, self.ref):
            raise ValueError(
                "Cannot add sufficient statistics taken about different "
                "reference means."
            )
        return SuffStats(
            nk=self.nk + other.nk,
            s1=self.s1 + other.s1,
            s2=self.s2 + other.s2,
            ref=self.ref,
            log_likelihood=self.log_likelihood + other.log_likelihood,
            n_samples=self.n_samples + other.n_samples,
            log_prior=self.log_prior,
        )


def column_moments(X0, observed, sample_weight=None):
    """Compute each column's mean and variance over its observed entries.

    Parameters
    ----------
    X0 : ndarray of shape (n_samples, n_features)
        Data with 0 at the missing entries.
    observed : ndarray of bool of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None, default=None
        Row weights of the moments.

    Returns
    -------
    mean : ndarray of shape (n_features,)
        0 for a column with nothing observed.
    var : ndarray of shape (n_features,)
        The (weighted) mean squared deviation, ``ddof=0``; 0 for a column with
        nothing observed.
    """
    if sample_weight is None:
        counts = np.maximum(observed.sum(axis=0), 1)
        mean = X0.sum(axis=0) / counts
        var = (np.where(observed, X0 - mean, 0.0) ** 2).sum(axis=0) / counts
    else:
        counts = sample_weight @ observed
        counts = np.where(counts > 0, counts, 1.0)
        mean = sample_weight @ X0 / counts
        var = sample_weight @ (np.where(observed, X0 - mean, 0.0) ** 2) / counts
    return mean, var
