"""With one component, EM's fixed point is the observed-data MLE.

The oracle maximises the observed-data log-likelihood of a multivariate normal
directly with ``scipy.optimize`` (no EM, no conditional expectations): each
row's contribution is ``multivariate_normal.logpdf`` of its observed entries
under the observed marginal ``N(mu_o, S_oo)``, as in DESIGN §2.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from em_sklearn import EMClusterer
from em_sklearn._gaussian import COVARIANCE_TYPES

N_SAMPLES, N_FEATURES, MISSING_RATE = 150, 3, 0.25


def _incomplete_normal_data(seed):
    """Draw correlated normal rows and hide ~25% of the entries completely at random."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N_FEATURES, N_FEATURES))
    cov = A @ A.T + 0.5 * np.eye(N_FEATURES)  # correlated, so 'full' != 'diag'
    mean = rng.normal(scale=2.0, size=N_FEATURES)
    X = rng.multivariate_normal(mean, cov, size=N_SAMPLES)
    X[rng.random(X.shape) < MISSING_RATE] = np.nan  # MCAR
    return X


def _observed_log_likelihood(X, mean, cov):
    """Sum over rows of log N(x_o; mu_o, S_oo), grouping rows by observed pattern."""
    observed = ~np.isnan(X)
    patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    total = 0.0
    for j, o in enumerate(patterns):
        if not o.any():  # a row with nothing observed has likelihood 1
            continue
        rows = X[inverse.ravel() == j][:, o]
        total += np.sum(multivariate_normal.logpdf(rows, mean[o], cov[np.ix_(o, o)]))
    return total


def _unpack(theta, covariance_type):
    """Map unconstrained parameters to (mean, dense covariance)."""
    d = N_FEATURES
    mean = theta[:d]
    rest = theta[d:]
    if covariance_type in ("full", "tied"):  # one component: tied == full
        L = np.zeros((d, d))
        L[np.tril_indices(d)] = rest
        L[np.diag_indices(d)] = np.exp(np.diag(L))  # log-diagonal Cholesky factor
        return mean, L @ L.T
    if covariance_type == "diag":
        return mean, np.diag(np.exp(rest))  # log-variances
    return mean, np.exp(rest[0]) * np.eye(d)  # spherical: one log-variance


def _initial_theta(X, covariance_type):
    """Start from the column means and variances of the observed values."""
    mean = np.nanmean(X, axis=0)
    var = np.nanvar(X, axis=0)
    if covariance_type in ("full", "tied"):
        L = np.diag(0.5 * np.log(var))  # log of the Cholesky diagonal sqrt(var)
        return np.concatenate([mean, L[np.tril_indices(N_FEATURES)]])
    if covariance_type == "diag":
        return np.concatenate([mean, np.log(var)])
    return np.concatenate([mean, [np.log(var.mean())]])


def _direct_mle(X, covariance_type):
    """Maximise the observed-data log-likelihood by BFGS; return mean, cov, result."""
    n_samples = X.shape[0]

    def neg_mean_log_likelihood(theta):
        mean, cov = _unpack(theta, covariance_type)
        return -_observed_log_likelihood(X, mean, cov) / n_samples

    result = minimize(
        neg_mean_log_likelihood,
        _initial_theta(X, covariance_type),
        method="BFGS",
        jac="3-point",  # central differences: gradient error ~ eps**(2/3)
        options={"gtol": 1e-9, "maxiter": 10_000},
    )
    mean, cov = _unpack(result.x, covariance_type)
    return mean, cov, result


def _dense_covariance(estimator):
    """Return the fitted single component's covariance as a dense matrix."""
    cov = estimator.covariances_
    return {
        "full": lambda: cov[0],
        "tied": lambda: cov,
        "diag": lambda: np.diag(cov[0]),
        "spherical": lambda: cov[0] * np.eye(N_FEATURES),
    }[estimator.covariance_type]()


def _fit_em(X, covariance_type):
    return EMClusterer(
        n_components=1,
        covariance_type=covariance_type,
        tol=1e-12,
        max_iter=5000,
        reg_covar=0.0,  # the pure MLE; reg_covar=0 is allowed
        random_state=0,
    ).fit(X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_equals_direct_mle(covariance_type, global_random_seed):
    """EM's mean and covariance equal scipy.optimize's observed-data MLE to 1e-4."""
    X = _incomplete_normal_data(global_random_seed)
    em = _fit_em(X, covariance_type)
    assert em.converged_
    mean, cov, result = _direct_mle(X, covariance_type)
    # The optimiser stops on gradient noise (~1e-10) rather than gtol, so its
    # status may be "precision loss"; its gradient must still be tiny.
    assert np.max(np.abs(result.jac)) < 1e-6

    # The requirement: agreement to 1e-4 on O(1-10) quantities. Observed
    # differences are ~1e-7 (EM stops on tol=1e-12 in mean log-likelihood).
    assert_allclose(em.means_[0], mean, rtol=0, atol=1e-4)
    assert_allclose(_dense_covariance(em), cov, rtol=0, atol=1e-4)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_log_likelihood_not_below_direct_mle(covariance_type, global_random_seed):
    """The log-likelihood at EM's solution is >= the optimiser's, to 1e-9 relative."""
    X = _incomplete_normal_data(global_random_seed)
    em = _fit_em(X, covariance_type)
    mean, cov, _ = _direct_mle(X, covariance_type)
    ll_em = _observed_log_likelihood(X, em.means_[0], _dense_covariance(em))
    ll_opt = _observed_log_likelihood(X, mean, cov)
    assert ll_em >= ll_opt - 1e-9 * abs(ll_opt)
    # score() reports the same observed-data log-likelihood, per sample; both
    # are float64 sums of ~150 O(1-10) terms.
    assert_allclose(em.score(X) * X.shape[0], ll_em, rtol=1e-12, atol=1e-10)


def test_diag_mle_is_columnwise(global_random_seed):
    """With diagonal S the MLE is each column's observed mean and (ddof=0) variance."""
    X = _incomplete_normal_data(global_random_seed)
    em = _fit_em(X, "diag")
    # With diagonal S the likelihood factorises over columns, so EM's fixed point is
    # closed-form; EM stops ~1e-7 away from it.
    assert_allclose(em.means_[0], np.nanmean(X, axis=0), rtol=0, atol=1e-5)
    assert_allclose(em.covariances_[0], np.nanvar(X, axis=0), rtol=0, atol=1e-5)
