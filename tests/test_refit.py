"""Refits that cannot work: refused warm starts, and failed fits that change nothing."""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.mixture import GaussianMixture

from em_sklearn import EMClusterer, EMImputer, MixtureDisplay

ESTIMATORS = [EMImputer, EMClusterer]


def _data(seed, n_features=3, n_samples=80):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    X[: n_samples // 2] += 4.0
    X[rng.random(X.shape) < 0.2] = np.nan
    X[:, 0][np.isnan(X).all(axis=1)] = 0.0
    return X


def _quiet_fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is not the point here
        return estimator.fit(X)


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize(
    "change, expected",
    [
        ({"n_components": 3}, "whose n_components is 2; got 3."),
        ({"covariance_type": "diag"}, "whose covariance_type is 'full'; got 'diag'."),
        ({"n_features": 4}, "whose number of features is 3; got 4."),
    ],
)
def test_warm_start_refuses_a_changed_model(
    Estimator, change, expected, global_random_seed
):
    """A warm start with another n_components, covariance_type or number of
    features raises a ValueError saying what changed (scikit-learn's
    GaussianMixture ends in a broadcasting error or ignores the change)."""
    X = _data(global_random_seed)
    est = _quiet_fit(Estimator(2, warm_start=True, random_state=0), X)
    params = {k: v for k, v in change.items() if k != "n_features"}
    est.set_params(**params)
    X_new = _data(global_random_seed, n_features=change.get("n_features", 3))
    msg = "warm_start=True continues the previous fit, " + expected
    with pytest.raises(ValueError, match=re.escape(msg)):
        est.fit(X_new)


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=lambda e: e.__name__)
def test_failed_refit_leaves_the_estimator_unchanged(Estimator, global_random_seed):
    """A refit that fails (here: too few rows for n_components, with another
    number of features) leaves every attribute as the last good fit left it,
    so the estimator still transforms/predicts the old data identically."""
    X = _data(global_random_seed)
    est = _quiet_fit(Estimator(2, random_state=0), X)
    before = est.transform(X)
    state = {k: v for k, v in vars(est).items() if k.endswith("_")}
    est.set_params(n_components=50)
    with pytest.raises(ValueError, match="Expected at least n_components rows"):
        est.fit(_data(global_random_seed, n_features=4, n_samples=10))
    est.set_params(n_components=2)
    assert est.n_features_in_ == 3
    assert set(k for k in vars(est) if k.endswith("_")) == set(state)
    assert_array_equal(est.transform(X), before)


def test_mixture_display_accepts_gaussian_mixture(global_random_seed):
    """MixtureDisplay.from_estimator draws scikit-learn's GaussianMixture too
    (on complete data), with its own labels and no imputed points."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X = np.nan_to_num(_data(global_random_seed))
    gm = GaussianMixture(2, random_state=0).fit(X)
    display = MixtureDisplay.from_estimator(gm, X, features=(0, 2))
    assert_array_equal(display.labels, gm.predict(X))
    assert not display.imputed_mask.any()
    assert_array_equal(display.X_plot, X[:, [0, 2]])
    import matplotlib.pyplot as plt

    plt.close("all")
