"""The engine's seams: a second family in one module, products, blocks of rows.

``_poisson_family.py`` (beside this file) is a new emission family written only
against the contract of ``em_sklearn._mixture``; it runs through the same loop,
mixture layer and estimator base as the Gaussian. ``ProductFamily`` combines
it with the Gaussian over blocks of columns. ``BlockedData`` holds rows in
several blocks whose statistics add up.
"""

import re

import numpy as np
import pytest
from _poisson_family import PoissonFamily, PoissonMixtureClusterer, PoissonParams
from numpy.testing import assert_allclose
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, poisson

from em_sklearn import EMClusterer
from em_sklearn._base import _BaseEM
from em_sklearn._em import run_em
from em_sklearn._gaussian import COVARIANCE_TYPES, GaussianFamily, GaussianStats
from em_sklearn._missing_data import BlockedData, prepare_missing_data
from em_sklearn._mixture import MixtureModel, MixtureParams
from em_sklearn._product import ProductFamily, ProductStats
from em_sklearn._validation import check_X

GAUSSIAN_COLUMNS, POISSON_COLUMNS = [0, 2], [1]


def _counts(seed, n_samples=400, rates=((2.0, 9.0, 0.5), (12.0, 1.0, 4.0))):
    """Counts from a two-component Poisson mixture with 20% of entries missing."""
    rng = np.random.default_rng(seed)
    rates = np.asarray(rates)
    labels = rng.integers(0, len(rates), n_samples)
    X = rng.poisson(rates[labels]).astype(np.float64)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[0] = np.nan  # a row with nothing observed
    return X


def _poisson_oracle(X, weights, rates):
    """Per-row observed-data log-likelihood, a loop over components with scipy."""
    observed = ~np.isnan(X)
    per_component = [
        np.log(w) + np.where(observed, poisson.logpmf(np.nan_to_num(X), rate), 0).sum(1)
        for w, rate in zip(weights, rates, strict=True)
    ]
    return logsumexp(np.stack(per_component, axis=1), axis=1)


# ---------------------------------------------------------------------------
# A second family: independent Poisson columns
# ---------------------------------------------------------------------------


def test_poisson_one_component_is_the_observed_mean(global_random_seed):
    """k=1: the MLE of each rate is the mean of the column's observed counts."""
    X = _counts(global_random_seed)
    est = PoissonMixtureClusterer(1, tol=1e-12).fit(X)
    # One M-step gives the closed form; the sums differ by rounding only.
    assert_allclose(est.rates_[0], np.nanmean(X, axis=0), rtol=1e-13, atol=0)
    assert_allclose(est.weights_, [1.0], rtol=1e-14, atol=0)
    informative = ~np.isnan(X).all(axis=1)
    expected = _poisson_oracle(X[informative], est.weights_, est.rates_).mean()
    assert_allclose(est.lower_bound_, expected, rtol=1e-12, atol=0)


def test_poisson_mixture_is_the_numerical_maximum_likelihood(global_random_seed):
    """k=2 with NaN: EM reaches the maximum that BFGS finds on the likelihood."""
    X = _counts(global_random_seed)
    est = PoissonMixtureClusterer(
        2, tol=1e-13, max_iter=5000, accelerate="squarem", random_state=0
    ).fit(X)

    def negative_log_likelihood(theta):
        logit, log_rates = theta[0], theta[1:].reshape(2, 3)
        w = 1.0 / (1.0 + np.exp(-logit))
        return -_poisson_oracle(X, [w, 1.0 - w], np.exp(log_rates)).sum()

    w0 = est.weights_[0]
    start = np.concatenate([[np.log(w0 / (1 - w0))], np.log(est.rates_).ravel()])
    # BFGS from a perturbed EM solution climbs back to it.
    found = minimize(negative_log_likelihood, start + 0.05, method="BFGS", tol=1e-12)
    assert -found.fun <= -negative_log_likelihood(start) + 1e-7
    w = 1.0 / (1.0 + np.exp(-found.x[0]))
    # The optimum is flat to ~1e-12 in the likelihood: parameters to ~1e-5.
    assert_allclose(est.weights_, [w, 1 - w], rtol=0, atol=1e-5)
    assert_allclose(est.rates_, np.exp(found.x[1:]).reshape(2, 3), rtol=1e-5, atol=0)


@pytest.mark.parametrize("accelerate", [None, "squarem"])
def test_poisson_likelihood_never_decreases(accelerate, global_random_seed):
    """EM (and SQUAREM) on the Poisson family never lowers the likelihood."""
    X = _counts(global_random_seed)
    est = PoissonMixtureClusterer(
        2, tol=0.0, max_iter=60, accelerate=accelerate, random_state=1
    )
    with pytest.warns(Warning, match="did not converge"):
        est.fit(X)
    bounds = np.asarray(est.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))


def test_poisson_inference_matches_oracle(global_random_seed):
    """score_samples, predict_proba and imputation equal the scipy oracle."""
    X = _counts(global_random_seed)
    est = PoissonMixtureClusterer(2, random_state=0).fit(X)
    log_prob = _poisson_oracle(X, est.weights_, est.rates_)
    assert_allclose(est.score_samples(X), log_prob, rtol=1e-12, atol=1e-12)
    observed = ~np.isnan(X)
    log_joint = np.stack(
        [
            np.log(w)
            + np.where(observed, poisson.logpmf(np.nan_to_num(X), r), 0).sum(1)
            for w, r in zip(est.weights_, est.rates_, strict=True)
        ],
        axis=1,
    )
    resp = np.exp(log_joint - log_prob[:, None])
    assert_allclose(est.predict_proba(X), resp, rtol=1e-11, atol=1e-13)
    X_hat = est.impute(X)
    assert_allclose(
        X_hat[~observed], (resp @ est.rates_)[~observed], rtol=1e-12, atol=0
    )
    assert np.array_equal(X_hat[observed], X[observed])


# ---------------------------------------------------------------------------
# A product of families: Gaussian columns x Poisson columns
# ---------------------------------------------------------------------------


class _ProductClusterer(_BaseEM):
    """Gaussian columns [0, 2] times a Poisson column [1], through ``_BaseEM``."""

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        max_iter=100,
        random_state=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    n_init, init_params, warm_start, accelerate = 1, "kmeans", False, None
    verbose, verbose_interval = 0, 10

    def _family(self):
        gaussian = GaussianFamily(self.covariance_type, 1e-6)
        return ProductFamily(
            [(gaussian, GAUSSIAN_COLUMNS), (PoissonFamily(), POISSON_COLUMNS)]
        )

    def _model(self):
        return MixtureModel(self._family(), self.n_components)

    def _build_model(self, data, **values):
        return self._model()

    def fit(self, X, y=None):
        self._fit_model(check_X(self, X, reset=True))
        return self


def _mixed(seed, n_samples=500):
    """Two clusters: Gaussian columns 0 and 2, a count column 1; 20% missing."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n_samples)
    X = np.empty((n_samples, 3))
    X[:, [0, 2]] = rng.normal(size=(n_samples, 2)) @ [[1.0, 0.6], [0.0, 0.8]]
    X[:, [0, 2]] += 4.0 * labels[:, None]
    X[:, 1] = rng.poisson(np.where(labels == 1, 8.0, 2.0))
    X[rng.random(X.shape) < 0.2] = np.nan
    X[0] = np.nan
    return X


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_product_with_one_component_factorises(covariance_type, global_random_seed):
    """k=1: the Gaussian block is the Gaussian MLE alone, the rate the observed mean."""
    X = _mixed(global_random_seed)
    options = dict(covariance_type=covariance_type, tol=1e-13, max_iter=5000)
    est = _ProductClusterer(1, **options).fit(X)
    alone = EMClusterer(1, **options).fit(X[:, GAUSSIAN_COLUMNS])
    # Rows observing only the count column take part in the product's EM (they
    # slow it, not move its fixed point): the same maximum, to EM's tolerance.
    assert_allclose(est.means_, alone.means_, rtol=1e-7, atol=1e-9)
    assert_allclose(est.covariances_, alone.covariances_, rtol=1e-7, atol=1e-9)
    assert_allclose(
        est.rates_[0], np.nanmean(X[:, POISSON_COLUMNS], axis=0), rtol=1e-13
    )


def _product_oracle(X, weights, means, covariances, rates, covariance_type):
    """Per-row log-likelihood and responsibilities, row by row with scipy."""
    n_samples = len(X)
    log_joint = np.zeros((n_samples, len(weights)))
    for k, w in enumerate(weights):
        cov = {
            "full": lambda k=k: covariances[k],
            "tied": lambda k=k: covariances,
            "diag": lambda k=k: np.diag(covariances[k]),
            "spherical": lambda k=k: covariances[k] * np.eye(2),
        }[covariance_type]()
        for i in range(n_samples):
            g = X[i, GAUSSIAN_COLUMNS]
            o = ~np.isnan(g)
            log_joint[i, k] = np.log(w)
            if o.any():
                log_joint[i, k] += multivariate_normal.logpdf(
                    g[o], means[k][o], cov[np.ix_(o, o)]
                )
            if not np.isnan(X[i, POISSON_COLUMNS[0]]):
                log_joint[i, k] += poisson.logpmf(X[i, POISSON_COLUMNS[0]], rates[k, 0])
    log_prob = logsumexp(log_joint, axis=1)
    return log_prob, np.exp(log_joint - log_prob[:, None])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_product_inference_matches_oracle(covariance_type, global_random_seed):
    """k=2: per-row likelihoods, responsibilities and imputations equal the oracle."""
    X = _mixed(global_random_seed, n_samples=120)
    est = _ProductClusterer(2, covariance_type=covariance_type, random_state=0).fit(X)
    log_prob, resp = _product_oracle(
        X, est.weights_, est.means_, est.covariances_, est.rates_, covariance_type
    )
    assert_allclose(est.score_samples(X), log_prob, rtol=1e-11, atol=1e-11)
    assert_allclose(np.exp(est._log_resp(X)[1]), resp, rtol=1e-10, atol=1e-12)
    X_hat = est._impute(X)
    missing = np.isnan(X)
    poisson_missing = missing[:, POISSON_COLUMNS[0]]
    assert_allclose(
        X_hat[poisson_missing, POISSON_COLUMNS[0]],
        (resp @ est.rates_[:, 0])[poisson_missing],
        rtol=1e-11,
        atol=0,
    )
    bounds = np.asarray(est.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))


def test_product_columns_must_partition_the_features():
    """A product whose columns overlap or leave one out is refused by name."""
    msg = (
        "The columns of a product's families must partition the features; "
        "got [[0, 1], [1]]."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        ProductFamily([(GaussianFamily("full", 0.0), [0, 1]), (PoissonFamily(), [1])])


def test_product_stats_add_part_by_part():
    """ProductStats add each family's statistics with its own ``+``."""
    a = ProductStats(
        (GaussianStats(np.ones((1, 2)), np.ones((1, 2)), np.zeros((1, 2))),)
    )
    b = ProductStats(
        (GaussianStats(np.ones((1, 2)), 2 * np.ones((1, 2)), np.zeros((1, 2))),)
    )
    total = a + b
    assert_allclose(total.parts[0].s1, 2.0, rtol=0, atol=0)
    assert_allclose(total.parts[0].s2, 3.0, rtol=0, atol=0)


# ---------------------------------------------------------------------------
# Blocks of rows: statistics add, inference stacks, a fit is the same fit
# ---------------------------------------------------------------------------


def _gaussian_data(seed, n_samples=300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 4)) @ rng.normal(size=(4, 4))
    X[: n_samples // 2] += 3.0
    X[rng.random(X.shape) < 0.25] = np.nan
    X[5] = np.nan
    return X


def _blocked(X, bounds, n_components):
    return BlockedData(
        tuple(
            prepare_missing_data(X[lo:hi], n_components)
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        )
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_e_step_over_blocks_is_the_sum_of_block_e_steps(
    covariance_type, global_random_seed
):
    """e_step(BlockedData) == sum of the blocks' e_steps, and the whole to rounding."""
    X = _gaussian_data(global_random_seed)
    model = MixtureModel(GaussianFamily(covariance_type, 1e-6), 2)
    params = model.initial_params(prepare_missing_data(X, 2), np.random.RandomState(0))
    blocks = _blocked(X, [0, 7, 120, 300], 2)  # uneven, one block of 7 rows
    stats = model.e_step(params, blocks)
    by_hand = sum(
        (model.e_step(params, block) for block in blocks.blocks[1:]),
        model.e_step(params, blocks.blocks[0]),
    )
    assert stats.log_likelihood == by_hand.log_likelihood  # same order of addition
    assert_allclose(stats.components.s2, by_hand.components.s2, rtol=0, atol=0)
    whole = model.e_step(params, prepare_missing_data(X, 2))
    assert stats.n_samples == whole.n_samples == len(X)
    assert_allclose(stats.log_likelihood, whole.log_likelihood, rtol=1e-13, atol=0)
    assert_allclose(stats.nk, whole.nk, rtol=1e-13, atol=0)
    assert_allclose(stats.components.s1, whole.components.s1, rtol=1e-12, atol=1e-11)
    assert_allclose(stats.components.s2, whole.components.s2, rtol=1e-12, atol=1e-11)


def test_statistics_about_different_reference_means_are_refused():
    """Adding Gaussian statistics taken about different means raises, naming why."""
    a = GaussianStats(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)))
    b = GaussianStats(np.zeros((1, 2)), np.zeros((1, 2)), np.ones((1, 2)))
    msg = "Cannot add sufficient statistics taken about different reference means"
    with pytest.raises(ValueError, match=re.escape(msg)):
        a + b


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_and_inference_over_blocks_equal_in_memory(
    covariance_type, global_random_seed
):
    """run_em on blocks gives the in-memory fit; inference stacks the blocks' rows."""
    X = _gaussian_data(global_random_seed)
    model = MixtureModel(GaussianFamily(covariance_type, 1e-6), 2)
    # One start for both: k-means would see the blocks' rows in another order.
    start = model.initial_params(prepare_missing_data(X, 2), np.random.RandomState(0))
    options = dict(
        n_init=1,
        max_iter=2000,
        tol=1e-8,
        random_state=None,
        warm_start=(start, -np.inf),
    )
    whole = run_em(model, prepare_missing_data(X, 2), **options)
    blocks = _blocked(X, [0, 1, 150, 300], 2)  # a block of one row
    blocked = run_em(model, blocks, **options)
    assert blocked.n_iter == whole.n_iter
    assert blocked.converged == whole.converged
    # The same iterations; sums over rows in another order differ by rounding,
    # which EM's contraction carries along: ~1e-12 after 50 iterations.
    assert_allclose(blocked.lower_bounds, whole.lower_bounds, rtol=1e-10, atol=0)
    assert_allclose(
        blocked.params.components.covariances,
        whole.params.components.covariances,
        rtol=1e-8,
        atol=1e-10,
    )
    log_prob, log_resp = model.log_resp(whole.params, blocks)
    expected_prob, expected_resp = model.log_resp(
        whole.params, prepare_missing_data(X, 2)
    )
    # A row may be in a chunk of its own pattern in one preparation and not in
    # the other (one inverse per chunk vs one per row): 1e-11 of rounding.
    assert_allclose(log_prob, expected_prob, rtol=1e-10, atol=1e-12)
    assert_allclose(log_resp, expected_resp, rtol=1e-10, atol=1e-10)
    assert_allclose(
        model.conditional_mean(whole.params, blocks),
        model.conditional_mean(whole.params, prepare_missing_data(X, 2)),
        rtol=1e-10,
        atol=1e-12,
    )


def test_poisson_params_flatten_round_trip():
    """SQUAREM's flatten/unflatten of the mixture round-trips; bad rates are refused."""
    model = MixtureModel(PoissonFamily(), 2)
    params = MixtureParams(
        np.array([0.25, 0.75]), PoissonParams(np.array([[1.0], [2.0]]))
    )
    again = model.unflatten(model.flatten(params), like=params)
    assert_allclose(again.weights, params.weights, rtol=0, atol=0)
    assert_allclose(again.components.rates, params.components.rates, rtol=0, atol=0)
    with pytest.raises(ValueError, match="rates are not all positive"):
        model.unflatten(np.array([0.5, 0.5, -1.0, 1.0]), like=params)
