"""Helpers shared by several test modules (written once, independently of the
library's own code)."""

import warnings

import numpy as np

# The attributes a fit sets, compared between two ways of fitting the same rows.
FITTED = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_cholesky_",
    "lower_bound_",
    "lower_bounds_",
    "n_iter_",
    "converged_",
)


def full_covariances(covariance_type, covariances, n_components, n_features):
    """Covariances of any type as an (n_components, n_features, n_features) stack."""
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return np.broadcast_to(covariances, (n_components, n_features, n_features))
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in covariances])
    return np.stack([c * np.eye(n_features) for c in covariances])


def init_values(Estimator, X, covariance_type, n_components=2):
    """Initial values from a short fit, as constructor arguments."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is not the point here
        init = Estimator(
            n_components,
            covariance_type=covariance_type,
            max_iter=2,
            random_state=0,
        ).fit(X)
    return {
        "weights_init": init.weights_,
        "means_init": init.means_,
        "precisions_init": init.precisions_,
    }
