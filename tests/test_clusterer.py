"""EMClusterer: equality with GaussianMixture on complete data, and its API with NaN."""

import math
import re

import numpy as np
import pytest
from _helpers import full_covariances
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV

from em_sklearn import EMClusterer, EMImputer
from em_sklearn._gaussian import COVARIANCE_TYPES

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
CONVERGENCE_MSG = "Best performing initialization did not converge"


def _blobs(rng, n_samples=300, n_features=3, separation=2.5):
    """Three overlapping Gaussian blobs with unequal scales (tens of EM iterations)."""
    centers = separation * np.eye(3, n_features)
    centers[2] = -centers[2]
    labels = rng.integers(0, 3, n_samples)
    scales = np.linspace(0.8, 1.2, n_features)
    return centers[labels] + rng.standard_normal((n_samples, n_features)) * scales


def _mcar(rng, X, fraction=0.2):
    """Return a copy of X with each entry missing (MCAR) with probability `fraction`."""
    X = X.copy()
    X[rng.random(X.shape) < fraction] = np.nan
    return X


def _n_parameters(covariance_type, n_components, n_features):
    """Free parameters of a Gaussian mixture, counted by hand."""
    k, d = n_components, n_features
    covariance = {
        "full": k * d * (d + 1) // 2,
        "tied": d * (d + 1) // 2,
        "diag": k * d,
        "spherical": k,
    }[covariance_type]
    return covariance + k * d + (k - 1)


def _full_covariances(estimator):
    """The fitted covariances as an (n_components, n_features, n_features) stack."""
    return full_covariances(
        estimator.covariance_type, estimator.covariances_, *estimator.means_.shape
    )


FITTED_ATTRIBUTES = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
)


def _assert_same_mixture(em, gm):
    # Same floating-point algorithm up to summation order (moments about a
    # reference point, additive statistics): differences are ~1e-12 after
    # hundreds of iterations; 1e-6 is the equality the package promises.
    for attribute in FITTED_ATTRIBUTES:
        assert_allclose(
            getattr(em, attribute),
            getattr(gm, attribute),
            rtol=1e-6,
            atol=1e-6,
            err_msg=attribute,
        )
    assert_allclose(em.lower_bound_, gm.lower_bound_, rtol=1e-6, atol=1e-6)
    # After a 'k-means++' or 'random_from_data' start each component holds one
    # point, so the first bound is computed at covariances = reg_covar (~-2.6e6,
    # precisions ~1e6): rounding is amplified there to ~2e-6 relative.
    if hasattr(gm, "lower_bounds_"):  # GaussianMixture records it since 1.7
        assert_allclose(em.lower_bounds_[0], gm.lower_bounds_[0], rtol=1e-5, atol=1e-6)
        assert_allclose(
            em.lower_bounds_[1:], gm.lower_bounds_[1:], rtol=1e-6, atol=1e-6
        )
    assert em.n_iter_ == gm.n_iter_
    assert em.converged_ == gm.converged_


# scikit-learn's tied-covariance estimator computes X.T @ X over *all* rows,
# which is the resp-weighted scatter only when every row's responsibilities sum
# to 1. 'k-means++' and 'random_from_data' give one-hot responsibilities to
# n_components rows only, so GaussianMixture starts from a covariance ~n/3 times
# the data scale, while EMClusterer starts from the (correct) within-component
# scatter of those rows, i.e. reg_covar. The fits then reach different optima.
_SKLEARN_TIED_INIT = pytest.mark.xfail(
    strict=True,
    reason="GaussianMixture's tied initial covariance ignores resp for rows with "
    "zero responsibility ('k-means++', 'random_from_data'); EMClusterer does not",
)


@pytest.mark.parametrize(
    "covariance_type, init_params",
    [
        pytest.param(
            ct,
            ip,
            marks=_SKLEARN_TIED_INIT
            if ct == "tied" and ip in ("k-means++", "random_from_data")
            else (),
        )
        for ct in COVARIANCE_TYPES
        for ip in INIT_PARAMS
    ],
)
def test_equals_gaussian_mixture_same_random_state(
    covariance_type, init_params, global_random_seed
):
    """On complete data, same random_state and init_params give GaussianMixture's fit
    (and labels, probabilities, scores).
    """
    rng = np.random.default_rng(global_random_seed)
    X = _blobs(rng)
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        init_params=init_params,
        random_state=0,
        tol=1e-5,  # 2-150 iterations on this data
        max_iter=1000,
    )
    gm = GaussianMixture(**params)
    gm_labels = gm.fit_predict(X)
    em = EMClusterer(**params)
    em_labels = em.fit_predict(X)
    _assert_same_mixture(em, gm)
    assert_array_equal(em_labels, gm_labels)
    # Same parameters to 1e-6: probabilities and log-densities agree as closely.
    assert_allclose(em.predict_proba(X), gm.predict_proba(X), rtol=1e-6, atol=1e-6)
    assert_allclose(em.score_samples(X), gm.score_samples(X), rtol=1e-6, atol=1e-6)
    assert_allclose(em.score(X), gm.score(X), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_equals_gaussian_mixture_several_inits(covariance_type, global_random_seed):
    """With n_init=3 (shared random state, best start) EM equals GaussianMixture."""
    rng = np.random.default_rng(global_random_seed)
    X = _blobs(rng)
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        init_params="random_from_data",
        random_state=1,
        tol=1e-5,
        max_iter=1000,
        n_init=3,
    )
    gm = GaussianMixture(**params).fit(X)
    em = EMClusterer(**params).fit(X)
    _assert_same_mixture(em, gm)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_empty_component_update_equals_gaussian_mixture(covariance_type):
    """A component that receives (almost) no responsibility gets GaussianMixture's
    M-step update, mean included.

    From means_init [[4.5], [100]] on X = 0..9 the second component's
    responsibilities underflow to 0. scikit-learn's update is
    mean = sum_i r_i x_i / (sum_i r_i + 10 eps) = 0; the same formula must hold
    however the statistics are accumulated.
    """
    X = np.arange(10.0).reshape(-1, 1)
    precisions = {
        "full": [[[1.0]], [[1.0]]],
        "tied": [[1.0]],
        "diag": [[1.0], [1.0]],
        "spherical": [1.0, 1.0],
    }[covariance_type]
    params = dict(
        n_components=2,
        covariance_type=covariance_type,
        weights_init=[0.5, 0.5],
        means_init=[[4.5], [100.0]],
        precisions_init=precisions,
        max_iter=1,
    )
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        gm = GaussianMixture(**params).fit(X)
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        em = EMClusterer(**params).fit(X)
    assert_allclose(gm.means_, [[4.5], [0.0]], rtol=0, atol=1e-12)  # the reference
    # One M-step from identical responsibilities: rounding only.
    for attribute in FITTED_ATTRIBUTES:
        assert_allclose(
            getattr(em, attribute), getattr(gm, attribute), rtol=1e-9, atol=1e-9
        )


def _user_init(covariance_type, n_features, rng):
    """Initial weights, means and precisions of the shape each covariance type needs."""
    weights = np.array([0.5, 0.3, 0.2])
    means = rng.normal(scale=2.0, size=(3, n_features))
    a = rng.normal(size=(3, n_features, n_features))
    full = a @ a.transpose(0, 2, 1) + n_features * np.eye(n_features)
    precisions = {
        "full": full,
        "tied": full[0],
        "diag": rng.uniform(0.5, 2.0, size=(3, n_features)),
        "spherical": rng.uniform(0.5, 2.0, size=3),
    }[covariance_type]
    return weights, means, precisions


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_equals_gaussian_mixture_user_init(covariance_type, global_random_seed):
    """On complete data, the same weights_init, means_init and precisions_init give
    GaussianMixture's fit.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _blobs(rng)
    weights, means, precisions = _user_init(covariance_type, X.shape[1], rng)
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        weights_init=weights,
        means_init=means,
        precisions_init=precisions,
        tol=1e-5,
        max_iter=1000,
    )
    # GaussianMixture writes the checked arrays back into its parameters: give
    # it its own copies so that this test does not depend on that.
    gm = GaussianMixture(
        **{
            **params,
            "weights_init": weights.copy(),
            "means_init": means.copy(),
            "precisions_init": precisions.copy(),
        }
    ).fit(X)
    em = EMClusterer(**params).fit(X)
    _assert_same_mixture(em, gm)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_max_iter_zero_gives_initial_parameters(covariance_type, global_random_seed):
    """With max_iter=0 the fitted parameters are the initial ones, as GaussianMixture's,
    with no warning.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _blobs(rng)
    params = dict(
        n_components=3, covariance_type=covariance_type, max_iter=0, random_state=0
    )
    gm = GaussianMixture(**params).fit(X)
    em = EMClusterer(**params).fit(X)
    # One M-step on k-means responsibilities: rounding only.
    for attribute in FITTED_ATTRIBUTES:
        assert_allclose(
            getattr(em, attribute), getattr(gm, attribute), rtol=1e-9, atol=1e-9
        )
    assert em.n_iter_ == 0
    assert em.lower_bound_ == -np.inf
    assert em.converged_ is False


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_predict_equals_fit_then_predict(covariance_type, global_random_seed):
    """fit_predict(X) equals fit(X).predict(X) and labels_, with NaN in X."""
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _blobs(rng))
    params = dict(
        n_components=3, covariance_type=covariance_type, random_state=0, tol=1e-4
    )
    est = EMClusterer(**params)
    labels = est.fit_predict(X)
    assert_array_equal(labels, est.labels_)
    assert_array_equal(labels, EMClusterer(**params).fit(X).predict(X))
    assert labels.shape == (X.shape[0],)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_predict_consistent_without_convergence(
    covariance_type, global_random_seed
):
    """fit_predict equals fit().predict even when stopped early (the final E-step is at
    the returned parameters).
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _blobs(rng))
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        random_state=0,
        init_params="random",
        max_iter=2,
        tol=0.0,
    )
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        labels = EMClusterer(**params).fit_predict(X)
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        predicted = EMClusterer(**params).fit(X).predict(X)
    assert_array_equal(labels, predicted)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bic_aic_by_hand(covariance_type, global_random_seed):
    """bic = -2 log L + p log n, aic = -2 log L + 2 p (p by hand, L observed-data)."""
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _blobs(rng, n_features=4))
    n_samples, n_features = X.shape
    est = EMClusterer(
        n_components=3, covariance_type=covariance_type, random_state=0
    ).fit(X)
    p = _n_parameters(covariance_type, 3, n_features)
    log_likelihood = est.score_samples(X).sum()
    # Same sums in a different order: rounding only.
    assert_allclose(
        est.bic(X), -2 * log_likelihood + p * math.log(n_samples), rtol=1e-12, atol=1e-9
    )
    assert_allclose(est.aic(X), -2 * log_likelihood + 2 * p, rtol=1e-12, atol=1e-9)
    assert_allclose(
        est.bic(X),
        -2 * est.score(X) * n_samples + p * math.log(n_samples),
        rtol=1e-12,
        atol=1e-9,
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bic_aic_equal_gaussian_mixture(covariance_type, global_random_seed):
    """On complete data bic and aic equal GaussianMixture's."""
    rng = np.random.default_rng(global_random_seed)
    X = _blobs(rng)
    params = dict(
        n_components=3, covariance_type=covariance_type, random_state=0, tol=1e-5
    )
    gm = GaussianMixture(**params).fit(X)
    em = EMClusterer(**params).fit(X)
    # Parameters agree to ~1e-12; the criteria are sums over 300 rows.
    assert_allclose(em.bic(X), gm.bic(X), rtol=1e-9, atol=1e-6)
    assert_allclose(em.aic(X), gm.aic(X), rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample(covariance_type, global_random_seed):
    """sample returns complete rows and labels whose per-component means and covariances
    match the fit.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _blobs(rng))
    est = EMClusterer(
        n_components=3, covariance_type=covariance_type, random_state=0
    ).fit(X)
    n = 30_000
    X_new, y_new = est.sample(n)
    assert X_new.shape == (n, X.shape[1])
    assert y_new.shape == (n,)
    assert not np.isnan(X_new).any()
    assert set(np.unique(y_new)) <= {0, 1, 2}
    # Rows come grouped by component.
    assert np.all(np.diff(y_new) >= 0)
    counts = np.bincount(y_new, minlength=3)
    # Multinomial counts: sd <= sqrt(n / 4) ~ 87, i.e. < 0.003 in proportion;
    # 0.02 is > 6 sd.
    assert_allclose(counts / n, est.weights_, rtol=0, atol=0.02)
    covariances = _full_covariances(est)
    for k in range(3):
        X_k = X_new[y_new == k]
        # Each component has >= ~3000 rows with variances <= ~2: the sd of a
        # sample mean is <= 0.03 and of a sample covariance <= ~0.05; 0.2 is
        # a safe bound that still catches a wrong component or scale.
        assert_allclose(X_k.mean(axis=0), est.means_[k], rtol=0, atol=0.2)
        assert_allclose(np.cov(X_k, rowvar=False), covariances[k], rtol=0, atol=0.2)


def test_sample_reproducible_and_validated():
    """sample is reproducible with an int random_state and rejects n_samples < 1."""
    rng = np.random.default_rng(0)
    est = EMClusterer(n_components=2, random_state=3).fit(_blobs(rng, n_features=2))
    X1, y1 = est.sample(10)
    X2, y2 = est.sample(10)
    assert_array_equal(X1, X2)
    assert_array_equal(y1, y2)
    msg = "Invalid value for 'n_samples': 0. The sampling requires at least one sample."
    with pytest.raises(ValueError, match=re.escape(msg)):
        est.sample(0)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_transform_is_predict_proba(covariance_type, global_random_seed):
    """transform equals predict_proba, rows are probabilities summing to 1 and predict
    is their argmax, with NaN.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _blobs(rng))
    est = EMClusterer(
        n_components=3, covariance_type=covariance_type, random_state=0
    ).fit(X)
    proba = est.predict_proba(X)
    assert_array_equal(est.transform(X), proba)
    assert proba.shape == (X.shape[0], 3)
    assert np.all((proba >= 0) & (proba <= 1))
    # Exponentiated log-responsibilities normalised by logsumexp: rounding only.
    assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert_array_equal(est.predict(X), proba.argmax(axis=1))
    assert_array_equal(est.fit_transform(X), proba)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_row_with_nothing_observed(covariance_type, global_random_seed):
    """A row with nothing observed has log-likelihood exactly 0 and responsibilities
    equal to the weights.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _blobs(rng))
    est = EMClusterer(
        n_components=3, covariance_type=covariance_type, random_state=0
    ).fit(X)
    empty = np.full((2, X.shape[1]), np.nan)
    # Exactly 0, not log(sum(weights_)) ~ +-1e-16: DESIGN §2 says such a row
    # contributes nothing to the likelihood.
    assert_array_equal(est.score_samples(empty), [0.0, 0.0])
    assert est.score(empty) == 0.0
    # log(w) then exp: rounding only.
    assert_allclose(
        est.predict_proba(empty), np.tile(est.weights_, (2, 1)), rtol=1e-12, atol=0
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_rows_with_nothing_observed_do_not_change_fit(
    covariance_type, global_random_seed
):
    """Adding rows with nothing observed to the training data leaves the fitted mixture
    unchanged.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _blobs(rng))
    X_padded = np.vstack(
        [np.full((7, X.shape[1]), np.nan), X, np.full((5, X.shape[1]), np.nan)]
    )
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    est = EMClusterer(**params).fit(X)
    padded = EMClusterer(**params).fit(X_padded)
    for attribute in FITTED_ATTRIBUTES:
        # The same rows enter the same computation: exact up to rounding.
        assert_allclose(
            getattr(padded, attribute), getattr(est, attribute), rtol=1e-12, atol=1e-12
        )
    assert padded.n_iter_ == est.n_iter_
    assert padded.labels_.shape == (X_padded.shape[0],)
    assert_array_equal(padded.labels_[7:-5], est.labels_)


@pytest.mark.parametrize("seed", [0])
def test_grid_search_picks_true_number_of_components(seed):
    """GridSearchCV by held-out likelihood picks 3 components on 3 blobs with 20% NaN.

    A statistical test with a fixed data seed: with this configuration 97 of
    seeds 0-99 pick 3 (the others pick 4, whose held-out score is within
    0.02 of 3's), so it does not take ``global_random_seed``'s contract.
    """
    rng = np.random.default_rng(seed)
    n_samples, n_features = 300, 4
    centers = np.zeros((3, n_features))
    centers[1, 0] = centers[2, 1] = 6.0
    X = centers[rng.integers(0, 3, n_samples)] + rng.standard_normal(
        (n_samples, n_features)
    )
    X = _mcar(rng, X, 0.2)
    search = GridSearchCV(
        EMClusterer(random_state=0), {"n_components": range(1, 7)}
    ).fit(X)
    assert search.best_params_ == {"n_components": 3}
    scores = search.cv_results_["mean_test_score"]
    assert np.argmax(scores) == 2
    # 1 and 2 components are far worse than 3 on separated blobs.
    assert scores[2] - scores[1] > 0.1
    assert search.best_estimator_.weights_.shape == (3,)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_warm_start_second_fit_continues(covariance_type, global_random_seed, capsys):
    """With warm_start a second fit on the same data starts from the first's solution,
    once, ignoring n_init.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _blobs(rng))
    est = EMClusterer(
        n_components=3,
        covariance_type=covariance_type,
        warm_start=True,
        random_state=0,
        tol=1e-6,
        max_iter=1000,
        n_init=3,
        verbose=1,
        verbose_interval=1000,
    )
    est.fit(X)
    first_out = capsys.readouterr().out
    assert first_out.count("Initialization ") == 2 * 3  # begin + end per start
    first_means = est.means_.copy()
    est.fit(X)
    second_out = capsys.readouterr().out
    assert second_out.splitlines() == ["Initialization 0", "Initialization converged."]
    # Already converged: the first change is |L(theta*) - lower_bound_| < tol.
    assert est.n_iter_ == 1
    assert est.converged_ is True
    # One more EM step from a fixed point (to tol=1e-6) barely moves the means.
    assert_allclose(est.means_, first_means, rtol=0, atol=1e-2)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_warm_start_equals_longer_cold_fit(covariance_type, global_random_seed):
    """Two warm-started fits of 4 and 6 iterations equal one cold fit of 10 iterations,
    with NaN.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _blobs(rng))
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        random_state=0,
        init_params="random",
        tol=0.0,
    )
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        cold = EMClusterer(max_iter=10, **params).fit(X)
    warm = EMClusterer(max_iter=4, warm_start=True, **params)
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        warm.fit(X)
    warm.set_params(max_iter=6)
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        warm.fit(X)
    assert warm.n_iter_ == 6
    # The same operations in the same order: equal up to rounding.
    for attribute in FITTED_ATTRIBUTES:
        assert_allclose(
            getattr(warm, attribute), getattr(cold, attribute), rtol=1e-10, atol=1e-12
        )
    assert_allclose(warm.lower_bounds_, cold.lower_bounds_[4:], rtol=1e-12, atol=0)


def test_warm_start_false_refits_from_scratch():
    """Without warm_start a second fit is identical to the first (no state leaks across
    fits).
    """
    rng = np.random.default_rng(0)
    X = _mcar(rng, _blobs(rng))
    est = EMClusterer(n_components=3, random_state=0)
    first = est.fit(X).means_.copy()
    n_iter = est.n_iter_
    assert_array_equal(est.fit(X).means_, first)
    assert est.n_iter_ == n_iter


def _shape_msg(name, expected, got):
    return f"The parameter {name!r} should have the shape of {expected}, but got {got}."


def _pd_msg(covariance_type, k):
    return (
        f"'{covariance_type} precision' should be symmetric, positive-definite "
        f"(component {k} is not)."
    )


ASYMMETRIC = np.stack([np.eye(2), [[1.0, 0.5], [0.0, 1.0]], np.eye(2)])


@pytest.mark.parametrize(
    "params, msg",
    [
        ({"weights_init": [0.5, 0.5]}, _shape_msg("weights_init", (3,), (2,))),
        (
            {"weights_init": [0.5, 0.3, 0.1]},
            "The parameter 'weights_init' should be normalized, but got "
            "sum(weights) = 0.90000.",
        ),
        (
            {"weights_init": [1.2, -0.1, -0.1]},  # sums to 1 but out of range
            "The parameter 'weights_init' should be in the range [0, 1], but got max "
            "value 1.20000, min value -0.10000.",
        ),
        ({"means_init": np.zeros((2, 2))}, _shape_msg("means_init", (3, 2), (2, 2))),
        ({"means_init": np.zeros((3, 3))}, _shape_msg("means_init", (3, 2), (3, 3))),
        (
            {"means_init": np.zeros((3, 2, 1))},  # 3-D: must still name the parameter
            _shape_msg("means_init", (3, 2), (3, 2, 1)),
        ),
        ({"precisions_init": np.ones((3, 2, 2))}, _pd_msg("full", 0)),  # singular
        ({"precisions_init": ASYMMETRIC}, _pd_msg("full", 1)),
        (
            {"precisions_init": np.ones((2, 2, 2))},
            _shape_msg("precisions_init", (3, 2, 2), (2, 2, 2)),
        ),
        (
            {"covariance_type": "tied", "precisions_init": np.ones((3, 2, 2))},
            _shape_msg("precisions_init", (2, 2), (3, 2, 2)),
        ),
        (
            {"covariance_type": "tied", "precisions_init": [[1.0, 2.0], [2.0, 1.0]]},
            _pd_msg("tied", 0),  # eigenvalues -1 and 3
        ),
        (
            {"covariance_type": "diag", "precisions_init": np.ones((3, 3))},
            _shape_msg("precisions_init", (3, 2), (3, 3)),
        ),
        (
            {"covariance_type": "diag", "precisions_init": [[1, 1], [1, 0], [1, 1]]},
            "'diag precision' should be positive.",
        ),
        (
            {"covariance_type": "spherical", "precisions_init": [1.0, 1.0]},
            _shape_msg("precisions_init", (3,), (2,)),
        ),
        (
            {"covariance_type": "spherical", "precisions_init": [1.0, -1.0, 1.0]},
            "'spherical precision' should be positive.",
        ),
    ],
)
def test_user_init_validation(params, msg):
    """Wrong user initial arrays raise a ValueError saying what was expected and what
    was given.
    """
    rng = np.random.default_rng(0)
    X = _mcar(rng, _blobs(rng, n_features=2))
    est = EMClusterer(n_components=3, **params)
    with pytest.raises(ValueError, match=re.escape(msg)):
        est.fit(X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("as_list", [False, True])
def test_user_init_not_written_back(covariance_type, as_list, global_random_seed):
    """fit never writes the checked initial arrays back: get_params is the same objects
    with the same values.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _blobs(rng))
    weights, means, precisions = _user_init(covariance_type, X.shape[1], rng)
    inits = {
        "weights_init": weights,
        "means_init": means,
        "precisions_init": precisions,
    }
    if as_list:
        inits = {name: value.tolist() for name, value in inits.items()}
    copies = {name: np.array(value) for name, value in inits.items()}
    est = EMClusterer(n_components=3, covariance_type=covariance_type, **inits)
    before = est.get_params()
    est.fit(X)
    after = est.get_params()
    assert after.keys() == before.keys()
    for name, value in inits.items():
        assert after[name] is value
        assert_array_equal(np.asarray(after[name]), copies[name])
    for name in before.keys() - inits.keys():
        assert after[name] == before[name]
    # The clone round trip still works after fit.
    cloned = clone(est).get_params()
    for name in inits:
        assert_array_equal(np.asarray(cloned[name]), copies[name])


def test_fitted_attributes_do_not_alias_user_init():
    """Fitted attributes never share memory with the user's initial arrays, so changing
    one later cannot change the other (checked at max_iter=0, where they are equal).
    """
    rng = np.random.default_rng(0)
    X = _mcar(rng, _blobs(rng, n_features=2))
    weights, means, precisions = _user_init("diag", 2, rng)
    est = EMClusterer(
        n_components=3,
        covariance_type="diag",
        weights_init=weights,
        means_init=means,
        precisions_init=precisions,
        max_iter=0,
    ).fit(X)
    assert_array_equal(est.weights_, weights)
    assert_array_equal(est.means_, means)
    assert not np.shares_memory(est.weights_, weights)
    assert not np.shares_memory(est.means_, means)


def test_verbose_prints_progress(capsys):
    """verbose=1 prints each initialization, every verbose_interval-th iteration and the
    final status.
    """
    rng = np.random.default_rng(0)
    X = _mcar(rng, _blobs(rng))
    est = EMClusterer(
        n_components=3, random_state=0, verbose=1, verbose_interval=1, n_init=2
    )
    est.fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Initialization 0"
    assert "Initialization 1" in lines
    assert lines[-1] == "Initialization converged."
    second = lines[lines.index("Initialization 1") + 1 : -1]
    assert second == [f"  Iteration {i}" for i in range(1, len(second) + 1)]


def test_verbose_two_prints_timings(capsys):
    """verbose=2 adds timings, log-likelihood changes and the lower bound."""
    rng = np.random.default_rng(0)
    X = _mcar(rng, _blobs(rng))
    est = EMClusterer(
        n_components=3, random_state=0, verbose=2, verbose_interval=2
    ).fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Initialization 0"
    assert all("time lapse" in line and "ll change" in line for line in lines[1:-1])
    assert len(lines) == 2 + est.n_iter_ // 2
    assert re.fullmatch(
        rf"Initialization converged\. time lapse \d+\.\d{{5}}s\t lower bound "
        rf"{re.escape(f'{est.lower_bound_:.5f}')}\.",
        lines[-1],
    )


def test_verbose_zero_is_silent(capsys):
    """The default verbose=0 prints nothing."""
    rng = np.random.default_rng(0)
    EMClusterer(n_components=3, random_state=0).fit(_mcar(rng, _blobs(rng)))
    assert capsys.readouterr().out == ""


def test_blas_is_pinned_to_one_thread_inside_fit_and_inference(monkeypatch):
    """E-steps and inference run with one BLAS thread; the caller's limit returns.

    Two OpenBLAS threads made the E-step's small products several times slower
    on 2-core machines (benchmarks/RESULTS.md), so fits and inference pin BLAS
    to one thread whatever the caller's threadpoolctl limit, and restore it.
    """
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from em_sklearn._mixture import MixtureModel

    def blas_threads():
        return [
            info["num_threads"]
            for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"
        ]

    if not blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    seen = []
    for method in ("e_step", "log_resp", "conditional_mean"):
        original = getattr(MixtureModel, method)

        def spy(self, *args, _original=original, **kwargs):
            seen.append(blas_threads())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(MixtureModel, method, spy)
    rng = np.random.default_rng(0)
    X = _mcar(rng, _blobs(rng))
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        EMClusterer(3, random_state=0).fit(X).predict(X)
        EMImputer().fit(X).transform(X)
        after = blas_threads()
    assert len(seen) >= 4
    assert all(threads == [1] * len(threads) for threads in seen)
    assert after == before


def test_float32_attributes_and_outputs():
    """float32 input: fitted arrays and outputs in float32, as GaussianMixture's;
    the fit runs in float64, so they are the float64 fit's values rounded."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(100, 3)), rng.normal(4.0, size=(100, 3))])
    params = dict(n_components=2, random_state=0, tol=1e-8)
    fitted = EMClusterer(**params).fit(X.astype(np.float32))
    reference = EMClusterer(**params).fit(X.astype(np.float32).astype(np.float64))
    gm = GaussianMixture(**params).fit(X.astype(np.float32))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        value = getattr(fitted, name)
        assert value.dtype == getattr(gm, name).dtype == np.float32, name
        assert_allclose(value, getattr(reference, name).astype(np.float32))
    X32 = X.astype(np.float32)
    for method in ("predict_proba", "score_samples", "transform"):
        assert getattr(fitted, method)(X32).dtype == np.float32, method
    assert fitted.predict(X32).dtype.kind == "i"
