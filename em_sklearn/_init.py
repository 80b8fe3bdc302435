"""Initial parameters: init_params strategies and user-supplied initial values."""

import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus

from ._gaussian import GaussianParams
from ._linalg import compute_precision_cholesky_from_precisions
from ._stats import SuffStats

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def mean_filled(data):
    """Return the data with each missing entry replaced by its column's observed mean.

    The means are weighted by the sample weights, if any.

    Rows stay in ``data``'s (sorted) order: one copy of the data, no more.

    Parameters
    ----------
    data : MissingData

    Returns
    -------
    X_filled : ndarray of shape (n_samples, n_features)
    """
    if data.weights is None:
        counts = (~data.missing_mask).sum(axis=0)
        col_means = data.X.sum(axis=0) / np.maximum(counts, 1)
    else:
        # Weighted observed means (missing entries of data.X are 0).
        counts = data.weights @ ~data.missing_mask
        col_means = data.weights @ data.X / np.where(counts > 0, counts, 1)
    return np.where(data.missing_mask, col_means, data.X)


def initial_resp(X_filled, n_components, init_params, random_state, sample_weight=None):
    """Compute initial responsibilities as ``GaussianMixture`` does.

    With sample weights, k-means and k-means++ are weighted and
    'random_from_data' draws rows with probability proportional to their
    weight, so a row of weight ``w`` acts as ``w`` copies of itself.

    Parameters
    ----------
    X_filled : ndarray of shape (n_samples, n_features)
        Mean-filled data.
    n_components : int
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}
    random_state : RandomState
    sample_weight : ndarray of shape (n_samples,) or None, default=None

    Returns
    -------
    resp : ndarray of shape (n_samples, n_components)
    """
    n_samples = X_filled.shape[0]
    if n_components == 1 and init_params in ("kmeans", "random"):
        # Every such start gives all-ones responsibilities: skip the k-means fit.
        return np.ones((n_samples, 1))
    resp = np.zeros((n_samples, n_components))
    if init_params == "kmeans":
        labels = (
            # copy_x=False: X_filled is our own temporary; saves a copy of the data.
            KMeans(
                n_clusters=n_components, n_init=1, random_state=random_state, copy_x=False
            )
            .fit(X_filled, sample_weight=sample_weight)
            .labels_
        )
        resp[np.arange(n_samples), labels] = 1
    elif init_params == "random":
        resp = random_state.uniform(size=(n_samples, n_components))
        resp /= resp.sum(axis=1)[:, np.newaxis]
    elif init_params == "random_from_data":
        p = None if sample_weight is None else sample_weight / sample_weight.sum()
        indices = random_state.choice(n_samples, size=n_components, replace=False, p=p)
        resp[indices, np.arange(n_components)] = 1
    else:  # "k-means++"
        _, indices = kmeans_plusplus(
            X_filled, n_components, sample_weight=sample_weight, random_state=random_state
        )
        resp[indices, np.arange(n_components)] = 1
    return resp


def _complete_data_stats(X, resp, covariance_type, sample_weight=None):
    """Compute sufficient statistics of complete data ``X`` under ``resp``."""
    n_components = resp.shape[1]
    if sample_weight is not None:
        resp = resp * sample_weight[:, None]
    center = X.mean(axis=0)
    diff = X - center  # (n_samples, n_features)
    if covariance_type in ("full", "tied"):
        s2 = np.stack([(diff * resp[:, k : k + 1]).T @ diff for k in range(n_components)])
    else:
        s2 = resp.T @ (diff * diff)
    return SuffStats(
        nk=resp.sum(axis=0),
        s1=resp.T @ diff,
        s2=s2,
        ref=np.tile(center, (n_components, 1)),
        log_likelihood=0.0,
        n_samples=X.shape[0] if sample_weight is None else float(sample_weight.sum()),
    )


class Initializer:
    """Initial parameters for one fit, as ``GaussianMixture`` makes them.

    Responsibilities from ``init_params`` on a mean-filled copy of the data
    give weights, means and covariances by one M-step; user-supplied
    ``weights_init``, ``means_init`` and ``precisions_init`` (already checked)
    replace the corresponding estimates. When all three are given no
    responsibilities are computed and the random state is not used.

    Parameters
    ----------
    model : GaussianMixtureModel
        Supplies ``n_components``, ``covariance_type`` and the M-step.
    init_params : str
    weights_init, means_init, precisions_init : ndarray or None
    """

    def __init__(self, model, init_params, weights_init, means_init, precisions_init):
        self.model = model
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init

    def __call__(self, data, random_state):
        model = self.model
        ct = model.covariance_type
        user = (self.weights_init, self.means_init, self.precisions_init)
        if any(value is None for value in user):
            X_filled = mean_filled(data)
            resp = initial_resp(
                X_filled, model.n_components, self.init_params, random_state, data.weights
            )
            estimate = model.m_step(_complete_data_stats(X_filled, resp, ct, data.weights))
        else:
            estimate = None
        weights = estimate.weights if self.weights_init is None else self.weights_init
        means = estimate.means if self.means_init is None else self.means_init
        if self.precisions_init is None:
            return GaussianParams(
                weights, means, estimate.covariances, estimate.precisions_cholesky, ct
            )
        prec_chol = compute_precision_cholesky_from_precisions(self.precisions_init, ct)
        return GaussianParams.from_precisions_cholesky(weights, means, prec_chol, ct)
