"""EMImputer(sample_posterior=True): draws from the missing block's conditional law."""

import numpy as np
import pytest
from _helpers import full_covariances
from numpy.testing import assert_array_equal
from scipy import stats

from em_sklearn import EMImputer
from em_sklearn._gaussian import COVARIANCE_TYPES

# Every statistical check below allows Z_TOL standard errors: a two-sided
# normal tail of 2 * norm.sf(4.5) = 7e-6 per compared quantity, so the few
# dozen comparisons of this file fail by chance with probability < 1e-3.
Z_TOL = 4.5


def _full_covariances(imputer):
    """The fitted covariances as an (n_components, n_features, n_features) stack."""
    return full_covariances(
        imputer.covariance_type, imputer.covariances_, *imputer.means_.shape
    )


def _correlated_data(seed, n_samples=300):
    """Three correlated Gaussian features on different scales, 20% missing."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, 0.5], [0.3, 0.5, 1.0]])
    X = rng.multivariate_normal([1.0, -2.0, 3.0], cov, size=n_samples)
    X *= [1.0, 10.0, 0.1]
    X[rng.random(X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    return X


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("n_components", [1, 2])
def test_sample_posterior_keeps_observed_entries(
    covariance_type, n_components, global_random_seed
):
    """Posterior draws keep every observed entry bit for bit and fill every hole."""
    X = _correlated_data(global_random_seed)
    imputer = EMImputer(
        n_components,
        covariance_type=covariance_type,
        sample_posterior=True,
        random_state=global_random_seed,
    ).fit(X)
    X_drawn = imputer.transform(X)
    observed = ~np.isnan(X)
    assert_array_equal(X_drawn[observed], X[observed])
    assert np.isfinite(X_drawn).all()


def test_sample_posterior_reproducible(global_random_seed):
    """The same random_state gives the same draws; another one gives other draws."""
    X = _correlated_data(global_random_seed)
    imputer = EMImputer(sample_posterior=True, random_state=0).fit(X)
    first, second = imputer.transform(X), imputer.transform(X)
    assert_array_equal(first, second)
    refit = EMImputer(sample_posterior=True, random_state=0).fit(X).transform(X)
    assert_array_equal(first, refit)
    other = imputer.set_params(random_state=1).transform(X)
    assert not np.array_equal(first[np.isnan(X)], other[np.isnan(X)])


def test_sample_posterior_false_is_conditional_mean(global_random_seed):
    """The default transform is the conditional mean, whatever the random_state."""
    X = _correlated_data(global_random_seed)
    a = EMImputer(random_state=0).fit(X).transform(X)
    b = EMImputer(random_state=0).fit(X).set_params(random_state=1).transform(X)
    assert_array_equal(a, b)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(
    "n_copies",
    [
        20_000,  # one pattern shared by >= 16384 rows: one Cholesky for all
        6_000,  # two patterns, too few rows each: one Cholesky per row
    ],
)
def test_sample_posterior_matches_conditional_gaussian(
    covariance_type, n_copies, global_random_seed
):
    """With k=1, draws of a missing block have its conditional mean and covariance."""
    X = _correlated_data(global_random_seed)
    imputer = EMImputer(
        covariance_type=covariance_type, sample_posterior=True, random_state=0
    ).fit(X)
    mu = imputer.means_[0]
    S = _full_covariances(imputer)[0]
    rows = {
        (0, 1): np.array([np.nan, np.nan, 0.35]),
        (1, 2): np.array([0.5, np.nan, np.nan]),
    }
    patterns = list(rows) if n_copies == 6_000 else [(0, 1)]
    n_draws = n_copies // len(patterns)
    X_new = np.vstack([np.tile(rows[p], (n_draws, 1)) for p in patterns])
    X_drawn = imputer.transform(X_new)
    for j, missing in enumerate(patterns):
        m = list(missing)
        o = [c for c in range(3) if c not in m]
        x_o = rows[missing][o]
        # Textbook conditional Gaussian (Little & Rubin, §11.2).
        gain = S[np.ix_(m, o)] @ np.linalg.inv(S[np.ix_(o, o)])
        cond_mean = mu[m] + gain @ (x_o - mu[o])
        cond_cov = S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
        draws = X_drawn[j * n_draws : (j + 1) * n_draws][:, m]  # (n_draws, 2)
        # The sample mean has standard error sqrt(C_ii / N).
        se_mean = np.sqrt(np.diag(cond_cov) / n_draws)
        assert np.all(np.abs(draws.mean(axis=0) - cond_mean) < Z_TOL * se_mean)
        # A Gaussian sample covariance has variance (C_ii C_jj + C_ij^2) / N.
        var = np.diag(cond_cov)
        se_cov = np.sqrt((np.outer(var, var) + cond_cov**2) / n_draws)
        emp_cov = np.cov(draws, rowvar=False)
        assert np.all(np.abs(emp_cov - cond_cov) < Z_TOL * se_cov)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_posterior_component_frequencies(covariance_type, global_random_seed):
    """With k=2, each component is drawn as often as the row's responsibility for it."""
    rng = np.random.default_rng(global_random_seed)
    n = 400
    # Two clusters overlapping in x0, far apart in x1: the sign of a drawn x1
    # tells which component it came from.
    X = np.vstack(
        [
            np.c_[rng.normal(0.0, 1.0, n), rng.normal(-10.0, 1.0, n)],
            np.c_[rng.normal(1.5, 1.0, n), rng.normal(10.0, 1.0, n)],
        ]
    )
    X[rng.random(2 * n) < 0.2, 1] = np.nan
    imputer = EMImputer(
        2, covariance_type=covariance_type, sample_posterior=True, random_state=0
    ).fit(X)
    x0, n_draws = 0.75, 20_000
    # Responsibilities by hand: pi_k N(x0; mu_k0, S_k00), normalised.
    S = _full_covariances(imputer)
    dens = imputer.weights_ * stats.norm.pdf(
        x0, imputer.means_[:, 0], np.sqrt(S[:, 0, 0])
    )
    resp = dens / dens.sum()
    assert 0.2 < resp.min()  # a row whose component is genuinely uncertain
    drawn = imputer.transform(np.tile([x0, np.nan], (n_draws, 1)))[:, 1]
    upper = np.argmax(imputer.means_[:, 1])
    freq = np.mean(drawn > 0)
    se = np.sqrt(resp[upper] * (1 - resp[upper]) / n_draws)
    assert abs(freq - resp[upper]) < Z_TOL * se
