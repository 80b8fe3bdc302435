"""Both estimators under scikit-learn's array API dispatch ("everything follows X").

Inputs of ``array-api-strict`` (its CPU device, its simulated ``device1`` and
its float32-only ``no_float64`` device) and of torch on the CPU (where torch is
installed: it is in the 'test' extra) are fitted and inferred on in their own
namespace and device; fitted attributes and outputs must stay there, in X's
dtype, and equal the NumPy path's: to 1e-10 relative in float64, to
scikit-learn's float32 tolerances (rtol 1e-4, atol 5e-4) in float32.
"""

import re
import warnings

import numpy as np
import pytest
import sklearn
from _helpers import init_values
from numpy.testing import assert_allclose
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning

from em_sklearn import EMClusterer, EMImputer
from em_sklearn._array_api import device, namespace, to_numpy

xps = pytest.importorskip(
    "array_api_strict", reason="the array API tests need array-api-strict"
)

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
ATTRIBUTES = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
)


def _targets():
    """(id, to_array, dtype name) of every namespace, device and dtype tested."""

    def strict(name, dtype):
        def to_array(a):
            return xps.asarray(a.astype(dtype), device=xps.Device(name))

        return to_array

    targets = [
        ("strict-cpu-float64", strict("CPU_DEVICE", np.float64), "float64"),
        ("strict-device1-float64", strict("device1", np.float64), "float64"),
        ("strict-no_float64-float32", strict("no_float64", np.float32), "float32"),
    ]
    try:
        import torch
    except ImportError:  # torch is in the 'test' extra; elsewhere it may lack
        return targets

    def as_torch(dtype):
        def to_array(a):
            return torch.asarray(a.astype(dtype), device="cpu")

        return to_array

    return targets + [
        ("torch-cpu-float64", as_torch(np.float64), "float64"),
        ("torch-cpu-float32", as_torch(np.float32), "float32"),
    ]


TARGETS = _targets()
TARGET_IDS = [t[0] for t in TARGETS]


@pytest.fixture(params=TARGETS, ids=TARGET_IDS)
def target(request):
    return request.param


@pytest.fixture(autouse=True)
def dispatch():
    with sklearn.config_context(array_api_dispatch=True):
        yield


def _tolerances(dtype):
    """rtol, atol: 1e-10 in float64; scikit-learn's float32 array API tolerances."""
    return (1e-10, 1e-10) if dtype == "float64" else (1e-4, 5e-4)


def _assert_follows(out, X):
    """``out`` is an array of X's namespace, on X's device."""
    assert namespace(out) is namespace(X)
    assert device(out) == device(X)


def _assert_close(actual, desired, dtype, scale=None):
    rtol, atol = _tolerances(dtype)
    desired = np.asarray(desired, dtype=np.float64)
    scale = np.max(np.abs(desired)) if scale is None else scale
    assert_allclose(to_numpy(actual), desired, rtol=rtol, atol=atol * max(scale, 1))


def _data(seed, n_samples=300, n_features=4, rate=0.2, centers=3):
    X, _ = make_blobs(n_samples, n_features, centers=centers, random_state=seed)
    rng = np.random.default_rng(seed)
    X[rng.random(X.shape) < rate] = np.nan
    X[0] = np.nan  # a row with nothing observed
    return X


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_clusterer_follows_X_and_equals_numpy(target, covariance_type):
    """Fitted attributes and every output follow X and equal the NumPy path's."""
    _, to_array, dtype = target
    X = _data(0).astype(dtype)
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        tol=1e-8,
        max_iter=500,
        **init_values(EMClusterer, X, covariance_type, 3),
    )
    expected = EMClusterer(**params).fit(X)
    Xd = to_array(X)
    fitted = EMClusterer(**params).fit(Xd)
    for name in ATTRIBUTES:
        value = getattr(fitted, name)
        _assert_follows(value, Xd)
        assert value.dtype == Xd.dtype, name
        _assert_close(value, getattr(expected, name), dtype)
    assert fitted.n_iter_ == expected.n_iter_ or dtype == "float32"
    for method in ("predict_proba", "score_samples", "transform"):
        out = getattr(fitted, method)(Xd)
        _assert_follows(out, Xd)
        _assert_close(out, getattr(expected, method)(X), dtype)
    labels = fitted.predict(Xd)
    _assert_follows(labels, Xd)
    agree = np.mean(to_numpy(labels, dtype=None) == expected.predict(X))
    assert agree == 1.0 or (dtype == "float32" and agree > 0.99)
    assert fitted.score(Xd) == pytest.approx(
        expected.score(X), rel=_tolerances(dtype)[0]
    )
    assert fitted.bic(Xd) == pytest.approx(expected.bic(X), rel=_tolerances(dtype)[0])
    samples, sample_labels = fitted.sample(7)
    _assert_follows(samples, Xd)
    _assert_follows(sample_labels, Xd)
    assert tuple(samples.shape) == (7, 4)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_imputer_follows_X_and_equals_numpy(target, covariance_type):
    """transform, indicator and empty features: on X's device, equal to NumPy's."""
    _, to_array, dtype = target
    X = _data(1).astype(dtype)
    X[:, 2] = np.nan  # empty at fit time: kept as zeros
    X_new = _data(2).astype(dtype)
    params = dict(
        n_components=2,
        covariance_type=covariance_type,
        tol=1e-8,
        max_iter=500,
        random_state=0,
        add_indicator=True,
        keep_empty_features=True,
    )
    expected = EMImputer(**params).fit(X)
    Xd = to_array(X)
    fitted = EMImputer(**params).fit(Xd)
    for Xin, Xin_d in ((X, Xd), (X_new, to_array(X_new))):
        out = fitted.transform(Xin_d)
        _assert_follows(out, Xd)
        assert out.dtype == Xd.dtype
        desired = expected.transform(Xin)
        _assert_close(out, desired, dtype)
        observed = ~np.isnan(Xin)
        # Observed entries are the input's, bit for bit.
        assert np.array_equal(to_numpy(out, dtype=None)[:, :4][observed], Xin[observed])


def test_sample_weight_squarem_and_prior_equal_numpy(target):
    """Weighted rows, SQUAREM and the default prior: the same fit as NumPy's."""
    _, to_array, dtype = target
    X = _data(3).astype(dtype)
    rng = np.random.default_rng(3)
    sample_weight = rng.uniform(0.2, 3.0, size=len(X))
    sample_weight[5] = 0.0
    params = dict(
        n_components=3,
        tol=1e-8,
        max_iter=500,
        accelerate="squarem",
        prior="default",
        **init_values(EMClusterer, X, "full", 3),
    )
    expected = EMImputer(**params).fit(X, sample_weight=sample_weight)
    Xd = to_array(X)
    fitted = EMImputer(**params).fit(Xd, sample_weight=to_array(sample_weight))
    for name in ATTRIBUTES:
        _assert_close(getattr(fitted, name), getattr(expected, name), dtype)
    _assert_close(fitted.transform(Xd), expected.transform(X), dtype)
    assert fitted.lower_bound_ == pytest.approx(
        expected.lower_bound_, rel=_tolerances(dtype)[0]
    )


@pytest.mark.parametrize(
    "init_params", ["kmeans", "k-means++", "random", "random_from_data"]
)
def test_initialisation_on_the_device_equals_numpy(target, init_params):
    """On complete rows, every init_params gives the NumPy path's fit.

    The k-means (and its k-means++ seeding) runs on the device with the same
    random draws as scikit-learn's (``_xp_kmeans``); on complete rows both
    paths cluster the rows in the same order.
    """
    _, to_array, dtype = target
    X, _ = make_blobs(400, 3, centers=4, random_state=5)
    X = X.astype(dtype)
    params = dict(
        n_components=4, init_params=init_params, random_state=7, tol=1e-8, max_iter=300
    )
    expected = EMClusterer(**params).fit(X)
    fitted = EMClusterer(**params).fit(to_array(X))
    _assert_close(fitted.means_, expected.means_, dtype)
    _assert_close(fitted.weights_, expected.weights_, dtype)


@pytest.mark.parametrize("init_params", ["kmeans", "random", "random_from_data"])
def test_missing_rows_and_random_starts_equal_numpy(target, init_params):
    """With missing entries, random starts too give the NumPy path's fit: both
    cluster the mean-filled rows in the caller's order with the same draws.

    Not in float32 from single rows ('random_from_data'): their covariance is
    ``reg_covar``, so the first responsibilities are 0 or 1 decided by
    log-densities of order 1e6, where float32's rounding can flip a near tie
    and lead EM to another optimum.
    """
    _, to_array, dtype = target
    if dtype == "float32" and init_params == "random_from_data":
        pytest.skip("float32 from single-row starts: see the docstring")
    X = _data(4, n_samples=500, rate=0.25)
    X = X.astype(dtype)
    params = dict(
        n_components=3, random_state=0, tol=1e-8, max_iter=500, init_params=init_params
    )
    expected = EMImputer(**params).fit(X)
    Xd = to_array(X)
    fitted = EMImputer(**params).fit(Xd)
    _assert_close(fitted.means_, expected.means_, dtype)
    _assert_close(fitted.transform(Xd), expected.transform(X), dtype)
    _assert_close(fitted.score_samples(Xd), expected.score_samples(X), dtype)


def test_posterior_draws_follow_X(target):
    """sample_posterior: draws on X's device, observed entries unchanged, the
    draws' mean near the conditional mean."""
    _, to_array, dtype = target
    X = _data(6, n_samples=400)
    X = X.astype(dtype)
    Xd = to_array(X)
    params = dict(n_components=2, random_state=0)
    mean = EMImputer(**params).fit(Xd).transform(Xd)
    drawn = EMImputer(**params, sample_posterior=True).fit(Xd)
    draws = np.stack([to_numpy(drawn.transform(Xd)) for _ in range(1)])
    out = drawn.transform(Xd)
    _assert_follows(out, Xd)
    observed = ~np.isnan(X)
    assert np.array_equal(to_numpy(out, dtype=None)[observed], X[observed])
    missing = ~observed
    residual = draws[0][missing] - to_numpy(mean)[missing]
    # Draws scatter about the conditional mean: centred, not all equal to it.
    assert abs(residual.mean()) < 4 * residual.std() / np.sqrt(missing.sum())
    assert residual.std() > 0.05


def test_n_components_auto_and_warm_start(target):
    """BIC's choice of k and a warm start run on the device too."""
    _, to_array, dtype = target
    X = _data(7, rate=0.1).astype(dtype)
    Xd = to_array(X)
    expected = EMClusterer(n_components="auto", random_state=0).fit(X)
    fitted = EMClusterer(n_components="auto", random_state=0).fit(Xd)
    assert fitted.n_components_ == expected.n_components_
    _assert_follows(fitted.means_, Xd)
    warm = EMClusterer(n_components=3, warm_start=True, max_iter=5, random_state=0)
    warm.fit(Xd)
    first = to_numpy(warm.means_)
    warm.fit(Xd)
    _assert_follows(warm.means_, Xd)
    assert warm.lower_bounds_[0] >= -np.inf and np.isfinite(first).all()


def test_numpy_input_keeps_the_numpy_path():
    """Under dispatch, NumPy arrays are fitted and returned as NumPy arrays."""
    X = _data(8)
    fitted = EMImputer(n_components=2, random_state=0).fit(X)
    assert isinstance(fitted.means_, np.ndarray)
    assert isinstance(fitted.transform(X), np.ndarray)


def test_what_the_device_path_refuses():
    """Mixed-type settings and partial_fit name what needs the NumPy path."""
    Xd = xps.asarray(_data(9))
    msg = re.escape("marginal='copula' needs the NumPy path")
    with pytest.raises(ValueError, match=msg):
        EMImputer(marginal="copula").fit(Xd)
    msg = re.escape("categorical_features=[0] needs the NumPy path")
    with pytest.raises(ValueError, match=msg):
        EMImputer(categorical_features=[0]).fit(Xd)
    msg = "EMClusterer.partial_fit works on NumPy arrays and DataFrames only"
    with pytest.raises(ValueError, match=msg):
        EMClusterer().partial_fit(Xd)
    msg = "Input X contains infinity in column"
    X = _data(9)
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match=msg):
        EMImputer().fit(xps.asarray(X))


def _namespace_combinations():
    """scikit-learn's (namespace, device, dtype) combinations, those installed."""
    from sklearn.utils._array_api import yield_namespace_device_dtype_combinations

    combinations = []
    for (
        namespace_name,
        device_name,
        dtype_name,
    ) in yield_namespace_device_dtype_combinations():
        try:
            __import__(namespace_name)
        except ImportError:
            continue
        if namespace_name in ("torch", "cupy") and device_name not in (None, "cpu"):
            continue  # a GPU: measured by benchmarks/gpu.py, not in CI
        combinations.append((namespace_name, device_name, dtype_name))
    return combinations


@pytest.mark.parametrize(
    "estimator",
    [EMClusterer(n_components=3), EMImputer()],
    ids=["EMClusterer", "EMImputer"],
)
@pytest.mark.parametrize("combination", _namespace_combinations(), ids=str)
def test_scikit_learn_array_api_checks(estimator, combination):
    """scikit-learn's own array API checks: attributes and outputs in X's
    namespace, device and dtype; another namespace refused after fit.

    In float32 a ConvergenceWarning is allowed (see ``tests/test_common.py``:
    the check's data are rank-deficient and EM cycles at float32's rounding).
    """
    from sklearn.utils.estimator_checks import (
        check_array_api_input,
        check_array_api_same_namespace,
    )

    namespace_name, device_name, dtype_name = combination
    name = type(estimator).__name__
    with warnings.catch_warnings():
        if dtype_name == "float32":
            warnings.simplefilter("ignore", ConvergenceWarning)
        check_array_api_input(
            name,
            estimator,
            array_namespace=namespace_name,
            device_name=device_name,
            dtype_name=dtype_name,
        )
    if namespace_name != "numpy":  # (no other namespace to refuse)
        check_array_api_same_namespace(
            name, estimator, array_namespace=namespace_name, device_name=device_name
        )


def test_grid_search_and_pipeline_on_torch():
    """GridSearchCV (choosing n_components by held-out likelihood) and a Pipeline
    with scikit-learn's StandardScaler run on torch tensors, results in torch."""
    torch = pytest.importorskip("torch")
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = _data(10, n_samples=300, rate=0.2)
    Xt = torch.asarray(X)
    search = GridSearchCV(
        EMClusterer(random_state=0), {"n_components": [1, 2, 3, 4]}, cv=3
    ).fit(Xt)
    expected = GridSearchCV(
        EMClusterer(random_state=0), {"n_components": [1, 2, 3, 4]}, cv=3
    ).fit(X)
    assert search.best_params_ == expected.best_params_
    _assert_follows(search.best_estimator_.means_, Xt)
    pipeline = make_pipeline(
        StandardScaler(), EMImputer(n_components=2, random_state=0)
    )
    out = pipeline.fit_transform(Xt)
    _assert_follows(out, Xt)
    assert not bool(torch.isnan(out).any())
