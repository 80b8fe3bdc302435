"""The categorical family (latent classes over nominal columns), with Gaussians too."""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from em_sklearn import EMClusterer
from em_sklearn._base import _BaseEM
from em_sklearn._categorical import CategoricalFamily
from em_sklearn._gaussian import GaussianFamily
from em_sklearn._mixture import MixtureModel
from em_sklearn._product import ProductFamily
from em_sklearn._validation import check_X

N_LEVELS = (3, 2, 4)


class _Classes(_BaseEM):
    """A latent class model (or a product with Gaussian columns) through _BaseEM."""

    n_init, init_params, warm_start, accelerate = 1, "random", False, None
    verbose, verbose_interval = 0, 10

    def __init__(
        self,
        n_components=1,
        *,
        gaussian_columns=(),
        tol=1e-3,
        max_iter=100,
        random_state=None,
    ):
        self.n_components = n_components
        self.gaussian_columns = gaussian_columns
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def _model(self):
        categorical = CategoricalFamily(N_LEVELS)
        if not self.gaussian_columns:
            return MixtureModel(categorical, self.n_components)
        n = len(self.gaussian_columns)
        columns = list(range(n, n + len(N_LEVELS)))
        family = ProductFamily(
            [(GaussianFamily("full", 1e-6), list(range(n))), (categorical, columns)]
        )
        return MixtureModel(family, self.n_components)

    def _build_model(self, data, **values):
        model = self._model()
        return MixtureModel(
            model.family, self.n_components, init_params=self.init_params
        )

    def fit(self, X, y=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence is not the point here
            self._fit_model(check_X(self, X, reset=True))
        return self


def _codes(seed, n_samples=400, missing=0.2):
    """Two latent classes over three nominal columns, 20% missing."""
    rng = np.random.default_rng(seed)
    theta = [
        np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]),
        np.array([[0.8, 0.2], [0.3, 0.7]]),
        np.array([[0.4, 0.4, 0.1, 0.1], [0.1, 0.1, 0.4, 0.4]]),
    ]
    labels = rng.integers(0, 2, n_samples)
    X = np.column_stack(
        [
            (rng.random(n_samples)[:, None] > np.cumsum(t[labels], axis=1)).sum(1)
            for t in theta
        ]
    ).astype(np.float64)
    X[rng.random(X.shape) < missing] = np.nan
    return X, labels


def _oracle(X, weights, probabilities):
    """Per-row log-likelihood and responsibilities, with a loop over components."""
    observed = ~np.isnan(X)
    codes = np.nan_to_num(X).astype(int)
    log_joint = np.stack(
        [
            np.log(w)
            + sum(
                np.where(observed[:, j], np.log(p[k][codes[:, j]]), 0.0)
                for j, p in enumerate(probabilities)
            )
            for k, w in enumerate(weights)
        ],
        axis=1,
    )
    log_prob = logsumexp(log_joint, axis=1)
    return log_prob, np.exp(log_joint - log_prob[:, None])


def test_one_class_is_the_observed_frequencies(global_random_seed):
    """k=1: each column's level probabilities are its observed frequencies."""
    X, _ = _codes(global_random_seed)
    est = _Classes(1, tol=1e-12).fit(X)
    for j, p in enumerate(est.category_probabilities_):
        column = X[:, j][~np.isnan(X[:, j])]
        frequencies = np.bincount(column.astype(int), minlength=N_LEVELS[j])
        assert_allclose(p[0], frequencies / len(column), rtol=1e-12, atol=1e-14)


def test_latent_classes_reach_the_numerical_maximum(global_random_seed):
    """k=2 with NaN: EM stops at a point BFGS cannot improve (softmax parameters)."""
    X, _ = _codes(global_random_seed)
    est = _Classes(2, tol=1e-12, max_iter=3000, random_state=0).fit(X)
    bounds = np.asarray(est.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))

    def unpack(theta):
        logits = np.split(theta, np.cumsum([1] + [2 * n for n in N_LEVELS])[:-1])
        w = np.exp(logits[0][0]) / (1 + np.exp(logits[0][0]))
        probs = []
        for z, n in zip(logits[1:], N_LEVELS, strict=True):
            z = z.reshape(2, n)
            probs.append(np.exp(z - logsumexp(z, axis=1, keepdims=True)))
        return [w, 1 - w], probs

    def negative(theta):
        weights, probs = unpack(theta)
        return -_oracle(X, weights, probs)[0].sum()

    w0 = est.weights_[0]
    start = np.concatenate(
        [[np.log(w0 / (1 - w0))]]
        + [np.log(p).ravel() for p in est.category_probabilities_]
    )
    found = minimize(negative, start + 0.05, method="BFGS", tol=1e-12)
    assert -found.fun <= -negative(start) + 1e-6


def test_inference_matches_oracle(global_random_seed):
    """score_samples and imputations (the most probable level) equal the oracle."""
    X, _ = _codes(global_random_seed)
    est = _Classes(2, random_state=0).fit(X)
    log_prob, resp = _oracle(X, est.weights_, est.category_probabilities_)
    assert_allclose(est.score_samples(X), log_prob, rtol=1e-12, atol=1e-12)
    X_hat = est._impute(X)
    missing = np.isnan(X)
    for j, p in enumerate(est.category_probabilities_):
        expected = np.argmax(resp @ p, axis=1)
        assert_array_equal(X_hat[missing[:, j], j], expected[missing[:, j]])
    assert_array_equal(X_hat[~missing], X[~missing])


def test_posterior_draws_are_levels_and_keep_observed_codes():
    """Drawn entries are valid levels; observed codes come back unchanged."""
    X, _ = _codes(0)
    est = _Classes(2, random_state=0).fit(X)
    draws = est._impute(X, random_state=np.random.RandomState(0))
    missing = np.isnan(X)
    assert_array_equal(draws[~missing], X[~missing])
    for j, n in enumerate(N_LEVELS):
        assert set(np.unique(draws[:, j])) <= set(range(n))


def test_product_with_gaussians_factorises_with_one_component(global_random_seed):
    """k=1, Gaussian columns x nominal columns: the Gaussian block is the
    Gaussian MLE alone and the levels' probabilities the observed frequencies."""
    codes, labels = _codes(global_random_seed)
    rng = np.random.default_rng(global_random_seed)
    G = rng.normal(size=(len(codes), 2)) + 3.0 * labels[:, None]
    G[rng.random(G.shape) < 0.2] = np.nan
    X = np.hstack([G, codes])
    est = _Classes(1, gaussian_columns=(0, 1), tol=1e-13, max_iter=5000).fit(X)
    alone = EMClusterer(1, tol=1e-13, max_iter=5000).fit(G)
    assert_allclose(est.means_, alone.means_, rtol=1e-7, atol=1e-9)
    assert_allclose(est.covariances_, alone.covariances_, rtol=1e-7, atol=1e-9)
    column = codes[:, 0][~np.isnan(codes[:, 0])]
    frequencies = np.bincount(column.astype(int), minlength=3) / len(column)
    assert_allclose(est.category_probabilities_[0][0], frequencies, rtol=1e-12)


def test_product_with_gaussians_score_matches_oracle(global_random_seed):
    """k=2 mixed columns: per-row log-likelihoods equal Gaussian x categorical."""
    codes, labels = _codes(global_random_seed, n_samples=150)
    rng = np.random.default_rng(global_random_seed)
    G = rng.normal(size=(len(codes), 2)) + 3.0 * labels[:, None]
    G[rng.random(G.shape) < 0.2] = np.nan
    X = np.hstack([G, codes])
    est = _Classes(2, gaussian_columns=(0, 1), random_state=0).fit(X)
    log_joint = np.zeros((len(X), 2))
    for k in range(2):
        for i, g in enumerate(G):
            o = ~np.isnan(g)
            if o.any():
                cov = est.covariances_[k][np.ix_(o, o)]
                log_joint[i, k] = multivariate_normal.logpdf(
                    g[o], est.means_[k][o], cov
                )
    observed = ~np.isnan(codes)
    integer = np.nan_to_num(codes).astype(int)
    for k in range(2):
        log_joint[:, k] += np.log(est.weights_[k]) + sum(
            np.where(observed[:, j], np.log(p[k][integer[:, j]]), 0.0)
            for j, p in enumerate(est.category_probabilities_)
        )
    expected = logsumexp(log_joint, axis=1)  # rows with nothing observed: 0
    assert_allclose(est.score_samples(X), expected, rtol=1e-11, atol=1e-12)


def test_codes_outside_the_levels_are_refused():
    """A value that is not one of the column's level codes raises, naming both."""
    X, _ = _codes(0)
    X[5, 1] = 2.0  # column 1 has levels 0 and 1
    msg = "Column 1 must hold level codes 0 to 1 (or NaN). Got 2.0 instead."
    with pytest.raises(ValueError, match=re.escape(msg)):
        _Classes(2).fit(X)


def test_init_features_one_hot_levels_and_frequencies_for_missing():
    """The initial clustering sees levels one-hot (two levels 1 apart); a
    mean-filled (missing) entry sees the observed level frequencies."""
    family = CategoricalFamily([3])
    X = np.array([[0.0], [2.0], [2.0], [4.0 / 3.0]])  # the last one was missing
    features = family.init_features(X)
    expected = np.array(
        [[1, 0, 0], [0, 0, 1], [0, 0, 1], [1 / 3, 0, 2 / 3]]
    ) / np.sqrt(2.0)
    np.testing.assert_allclose(features, expected, atol=1e-15)
    assert np.linalg.norm(features[0] - features[1]) == pytest.approx(1.0)
