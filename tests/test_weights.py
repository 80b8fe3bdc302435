"""Sample weights: a row of integer weight w is w copies of itself, weight 0 no row.

The reference is always the unweighted fit on a data set with the rows
repeated (or dropped): an independent computation of what a weighted fit
must return.
"""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data

from em_sklearn import EMClusterer, EMImputer

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
ESTIMATORS = [EMClusterer, EMImputer]
_CENTERS = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 0.0], [0.0, 7.0, 6.0]])
FITTED = ["weights_", "means_", "covariances_", "precisions_cholesky_"]


def _blobs(seed, n=60, missing=0.2):
    """Three separated blobs in 3-D with ``missing`` MCAR entries and no empty row."""
    rng = np.random.RandomState(seed)
    X = _CENTERS[rng.randint(3, size=n)] + rng.normal(size=(n, 3))
    X[rng.uniform(size=X.shape) < missing] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    return X


def _user_init(covariance_type, n_components=3, n_features=3):
    """Initial values that make the fit deterministic (no random draw at all)."""
    if (n_components, n_features) == (3, 3):
        means = _CENTERS + 0.5
    else:
        means = np.linspace(0.0, 6.0, n_components)[:, None] + np.arange(n_features)
    precisions = {
        "full": np.tile(np.eye(n_features), (n_components, 1, 1)),
        "tied": np.eye(n_features),
        "diag": np.ones((n_components, n_features)),
        "spherical": np.ones(n_components),
    }[covariance_type]
    return dict(
        weights_init=np.full(n_components, 1.0 / n_components),
        means_init=means,
        precisions_init=precisions,
    )


def _assert_same_fit(a, b, rtol=1e-9, atol=1e-9):
    for name in FITTED:
        assert_allclose(
            getattr(a, name), getattr(b, name), rtol=rtol, atol=atol, err_msg=name
        )
    assert_allclose(a.lower_bound_, b.lower_bound_, rtol=rtol, atol=atol)
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("missing", [0.0, 0.25])
def test_integer_weights_equal_repeated_rows(Estimator, covariance_type, missing):
    """Integer weights give the fit and imputations of repeated rows, to rounding."""
    X = _blobs(0, missing=missing)
    weights = np.random.RandomState(1).randint(0, 4, size=len(X))
    kwargs = dict(n_components=3, covariance_type=covariance_type, max_iter=30, tol=0.0)
    kwargs.update(_user_init(covariance_type))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = Estimator(**kwargs).fit(X, sample_weight=weights)
        repeated = Estimator(**kwargs).fit(np.repeat(X, weights, axis=0))
    _assert_same_fit(weighted, repeated)
    if Estimator is EMImputer:
        assert_allclose(
            weighted.transform(X), repeated.transform(X), rtol=1e-9, atol=1e-9
        )
    else:
        assert_array_equal(weighted.predict(X), repeated.predict(X))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_weights_equal_repeated_rows_with_default_init(Estimator, global_random_seed):
    """With the default k-means start, weighted and repeated fits reach one optimum.

    The k-means start draws rows at random, so the two fits start apart; on
    separated blobs both end at the same maximum (compared after sorting the
    components by their mean).
    """
    X = _blobs(global_random_seed, n=90)
    weights = np.random.RandomState(global_random_seed).randint(1, 4, size=len(X))
    kwargs = dict(n_components=3, tol=1e-10, max_iter=1000, n_init=3, random_state=0)
    weighted = Estimator(**kwargs).fit(X, sample_weight=weights)
    repeated = Estimator(**kwargs).fit(np.repeat(X, weights, axis=0))
    a, b = np.argsort(weighted.means_[:, 1]), np.argsort(repeated.means_[:, 1])
    assert_allclose(weighted.means_[a], repeated.means_[b], atol=1e-6)
    assert_allclose(weighted.covariances_[a], repeated.covariances_[b], atol=1e-6)
    assert_allclose(weighted.weights_[a], repeated.weights_[b], atol=1e-6)
    assert_allclose(weighted.lower_bound_, repeated.lower_bound_, atol=1e-9)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize(
    "init_params", ["kmeans", "k-means++", "random", "random_from_data"]
)
def test_zero_weights_equal_dropped_rows(Estimator, init_params):
    """Weight 0 is the fit without those rows, random start included."""
    X = _blobs(3)
    rng = np.random.RandomState(4)
    weights = rng.randint(0, 3, size=len(X)).astype(float)
    weights[:5] = 0.0
    keep = weights > 0
    kwargs = dict(n_components=3, init_params=init_params, random_state=7, n_init=2)
    weighted = Estimator(**kwargs).fit(X, sample_weight=weights)
    dropped = Estimator(**kwargs).fit(X[keep], sample_weight=weights[keep])
    # Equal to rounding only: BLAS may round a product of equal arrays at
    # other addresses differently.
    _assert_same_fit(weighted, dropped)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_unit_weights_equal_no_weights(Estimator):
    """sample_weight of ones is the unweighted fit, to the last random draw."""
    X = _blobs(5)
    kwargs = dict(n_components=3, init_params="random_from_data", random_state=0)
    weighted = Estimator(**kwargs).fit(X, sample_weight=np.ones(len(X)))
    plain = Estimator(**kwargs).fit(X)
    for name in FITTED:
        assert_array_equal(getattr(weighted, name), getattr(plain, name), err_msg=name)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_weights_are_relative(Estimator):
    """Multiplying every weight by a constant leaves the fit unchanged."""
    X = _blobs(6)
    weights = np.random.RandomState(0).uniform(0.5, 2.0, size=len(X))
    kwargs = dict(n_components=3, tol=1e-8, max_iter=500, **_user_init("full"))
    a = Estimator(**kwargs).fit(X, sample_weight=weights)
    b = Estimator(**kwargs).fit(X, sample_weight=3.7 * weights)
    _assert_same_fit(a, b, rtol=1e-8, atol=1e-10)


def test_weights_flow_through_warm_start():
    """Warm-started weighted fits follow the repeated rows' warm-started fits."""
    X = _blobs(8)
    weights = np.random.RandomState(2).randint(1, 4, size=len(X))
    kwargs = dict(
        n_components=3, max_iter=3, tol=0.0, warm_start=True, **_user_init("full")
    )
    weighted, repeated = EMClusterer(**kwargs), EMClusterer(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            weighted.fit(X, sample_weight=weights)
            repeated.fit(np.repeat(X, weights, axis=0))
            _assert_same_fit(weighted, repeated)


def test_lower_bound_is_the_weighted_mean_log_likelihood():
    """lower_bound_ is the weighted mean of score_samples at convergence."""
    X = _blobs(9)
    weights = np.random.RandomState(3).uniform(0.1, 3.0, size=len(X))
    est = EMClusterer(n_components=3, tol=1e-12, max_iter=2000, random_state=0)
    est.fit(X, sample_weight=weights)
    expected = np.average(est.score_samples(X), weights=weights)
    assert_allclose(est.lower_bound_, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_sklearn_weight_equivalence_with_deterministic_init(Estimator):
    """scikit-learn's own repeated-rows check passes once the start is deterministic.

    (With the random k-means start the check compares fits from different
    starts; see tests/test_common.py.)
    """
    # The check draws 15 rows of 30 features; 'diag' keeps the covariances
    # well defined on so few rows.
    estimator = Estimator(
        n_components=2,
        covariance_type="diag",
        max_iter=20,
        tol=0.0,
        **_user_init("diag", n_components=2, n_features=30),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_sample_weight_equivalence_on_dense_data(Estimator.__name__, estimator)


def test_weights_in_pipeline_and_fit_transform():
    """sample_weight reaches the imputer through fit_transform and Pipeline.fit."""
    X = _blobs(10)
    weights = np.random.RandomState(5).randint(1, 4, size=len(X))
    direct = EMImputer(random_state=0).fit(X, sample_weight=weights).transform(X)
    assert_allclose(
        EMImputer(random_state=0).fit_transform(X, sample_weight=weights), direct
    )
    pipe = make_pipeline(EMImputer(random_state=0), EMClusterer(n_components=3))
    pipe.fit(X, emimputer__sample_weight=weights, emclusterer__sample_weight=weights)
    assert_allclose(pipe[0].transform(X), direct)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize(
    "sample_weight, message",
    [
        (-np.ones(60), "Negative values in data passed to `sample_weight`"),
        (np.ones(59), "sample_weight.shape == (59,), expected (60,)"),
        (np.full(60, np.nan), "Input sample_weight contains NaN"),
        # scikit-learn >= 1.7 words it, our own check before.
        (np.zeros(60), "(non-zero|zero on every row)"),
    ],
)
def test_bad_weights_raise(Estimator, sample_weight, message):
    """Negative, misshapen, non-finite or all-zero weights are refused, saying which."""
    X = _blobs(11)
    pattern = message if message.startswith("(") else re.escape(message)
    with pytest.raises(ValueError, match=pattern):
        Estimator(n_components=2).fit(X, sample_weight=sample_weight)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_weight_only_on_empty_rows_raises(Estimator):
    """Positive weight on too few rows with an observed value is refused."""
    X = _blobs(12)
    X[:3] = np.nan
    weights = np.zeros(len(X))
    weights[:4] = 1.0
    with pytest.raises(ValueError, match="and a positive sample_weight = 1"):
        Estimator(n_components=2).fit(X, sample_weight=weights)
