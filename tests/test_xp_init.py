"""The array API initialisation (``_xp_kmeans``) against the NumPy path.

``initial_resp`` on an ``array-api-strict`` array must make the same draws
from the ``RandomState`` as on the NumPy copy of the data, hence the same
responsibilities, and leave the ``RandomState`` in the same state. The
devices of ``array-api-strict`` check that the outputs stay on the input's
device (``device1``) and that float32 data need no float64 (``no_float64``).

On well-separated blobs the results must be identical. On overlapping
clusters a label could in principle differ at a distance near-tie, since
the summation orders differ (BLAS, scikit-learn's chunked Cython sums, the
namespace's reductions), so only 99% agreement of the k-means labels is
required there (the rows chosen by k-means++ must still be the same); in
practice they agree exactly too.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning

xps = pytest.importorskip(
    "array_api_strict",
    reason="the array API tests need array-api-strict (the 'test' extra)",
)

from em_sklearn._array_api import device, namespace, to_numpy  # noqa: E402
from em_sklearn._init import INIT_PARAMS, initial_resp  # noqa: E402
from em_sklearn._xp_kmeans import (  # noqa: E402
    _lloyd,
    xp_initial_resp,
    xp_kmeans,
    xp_kmeans_plusplus,
)

CPU = xps.Device("CPU_DEVICE")
DEVICE1 = xps.Device("device1")
NO_FLOAT64 = xps.Device("no_float64")
# (device, dtype): no_float64 has float32 only.
PLACES = [
    pytest.param(CPU, np.float64, id="cpu-float64"),
    pytest.param(CPU, np.float32, id="cpu-float32"),
    pytest.param(DEVICE1, np.float64, id="device1-float64"),
    pytest.param(DEVICE1, np.float32, id="device1-float32"),
    pytest.param(NO_FLOAT64, np.float32, id="no_float64-float32"),
]


def _data(kind, seed, dtype, weighted):
    """Data, weights (or None) and the number of components."""
    if kind == "separated":
        n_samples, n_features, n_components = 400, 2 + seed % 5, 2 + seed % 4
        X, _ = make_blobs(
            n_samples, n_features, centers=n_components, random_state=seed
        )
    else:  # overlapping clusters, far from the origin (the centring matters)
        n_samples, n_features, n_components = 600, 3, 5
        X, _ = make_blobs(
            n_samples, n_features, centers=4, cluster_std=3.0, random_state=seed
        )
        X += 50.0
    X = X.astype(dtype)
    w = None
    if weighted:
        w = np.random.RandomState(seed + 1000).uniform(0.5, 2.0, n_samples)
        w = w.astype(dtype)
    return X, w, n_components


def _both(X, w, n_components, init_params, seed, dev):
    """NumPy and device responsibilities, and each side's next draw."""
    rs_np = np.random.RandomState(seed)
    resp_np = initial_resp(
        X.copy(), n_components, init_params, rs_np, None if w is None else w.copy()
    )
    X_dev = xps.asarray(X, device=dev)
    w_dev = None if w is None else xps.asarray(w, device=dev)
    rs_dev = np.random.RandomState(seed)
    resp_dev = initial_resp(X_dev, n_components, init_params, rs_dev, w_dev)
    assert namespace(resp_dev) is xps
    assert device(resp_dev) == dev
    assert resp_dev.dtype == X_dev.dtype
    assert resp_dev.shape == (X.shape[0], n_components)
    return (
        resp_np,
        to_numpy(resp_dev, dtype=None),
        rs_np.randint(1e9),
        rs_dev.randint(1e9),
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dev, dtype", PLACES)
@pytest.mark.parametrize("kind", ["separated", "overlapping"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_same_as_numpy(dev, dtype, kind, weighted, init_params, seed):
    X, w, n_components = _data(kind, seed, dtype, weighted)
    resp_np, resp_dev, next_np, next_dev = _both(
        X, w, n_components, init_params, seed, dev
    )
    # The same draws: the RandomState is left in the same state.
    assert next_np == next_dev
    # The NumPy path returns float64; float32 data give float32 on the device.
    expected = resp_np.astype(dtype)
    if kind == "separated" or init_params in ("random", "random_from_data"):
        assert_array_equal(resp_dev, expected)
    elif init_params == "k-means++":
        # The same rows chosen, in the same order.
        assert_array_equal(resp_dev, expected)
        assert_array_equal(np.argmax(resp_dev, axis=0), np.argmax(expected, axis=0))
    else:  # k-means on overlapping clusters: near-ties may differ
        agree = np.mean(np.argmax(resp_dev, axis=1) == np.argmax(expected, axis=1))
        assert agree >= 0.99


@pytest.mark.parametrize("dev, dtype", PLACES)
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_one_component_is_ones(dev, dtype, init_params):
    X, _, _ = _data("separated", 0, dtype, False)
    rs = np.random.RandomState(0)
    resp = initial_resp(xps.asarray(X, device=dev), 1, init_params, rs)
    assert device(resp) == dev
    assert_array_equal(to_numpy(resp, dtype=None), np.ones((X.shape[0], 1), dtype))
    # Nothing drawn, as on the NumPy path.
    assert rs.randint(1e9) == np.random.RandomState(0).randint(1e9)


def test_numpy_input_keeps_numpy_path():
    X, w, k = _data("separated", 1, np.float64, True)
    resp = initial_resp(X, k, "kmeans", np.random.RandomState(0), w)
    assert type(resp) is np.ndarray
    assert resp.dtype == np.float64


@pytest.mark.parametrize("dev, dtype", PLACES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_kmeans_matches_sklearn(dev, dtype, weighted):
    """Labels, centers and iterations of ``KMeans(n_init=1)``."""
    X, w, _ = _data("overlapping", 3, dtype, weighted)
    km = KMeans(6, n_init=1, random_state=3).fit(X.copy(), sample_weight=w)
    labels, centers, n_iter = xp_kmeans(
        xps.asarray(X, device=dev),
        6,
        sample_weight=None if w is None else xps.asarray(w, device=dev),
        random_state=3,
    )
    assert device(labels) == device(centers) == dev
    assert_array_equal(to_numpy(labels, dtype=None), km.labels_)
    assert n_iter == km.n_iter_
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    assert_allclose(to_numpy(centers), km.cluster_centers_, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dev, dtype", PLACES)
def test_kmeans_plusplus_matches_sklearn(dev, dtype):
    from sklearn.cluster import kmeans_plusplus

    X, w, _ = _data("overlapping", 4, dtype, True)
    centers_np, indices_np = kmeans_plusplus(X, 7, sample_weight=w, random_state=4)
    centers, indices = xp_kmeans_plusplus(
        xps.asarray(X, device=dev),
        7,
        sample_weight=xps.asarray(w, device=dev),
        random_state=4,
    )
    assert device(centers) == device(indices) == dev
    assert_array_equal(to_numpy(indices, dtype=None), indices_np)
    assert_array_equal(to_numpy(centers, dtype=None), centers_np)


@pytest.mark.parametrize("dev, dtype", PLACES)
@pytest.mark.parametrize("n_far", [1, 2, 3])
def test_lloyd_relocates_empty_clusters_as_sklearn(dev, dtype, n_far):
    """Initial centers far away leave clusters empty: they are relocated."""
    _kmeans = pytest.importorskip("sklearn.cluster._kmeans")
    X, w, _ = _data("separated", 2, dtype, True)
    rs = np.random.RandomState(0)
    centers = X[rs.choice(X.shape[0], 6, replace=False)].copy()
    centers[:n_far] = 1e3 + 10.0 * np.arange(n_far)[:, None]
    labels_np, _, centers_np, n_iter_np = _kmeans._kmeans_single_lloyd(
        X, w, centers.copy(), max_iter=300, tol=1e-4, n_threads=1
    )
    labels, centers_dev, n_iter = _lloyd(
        *(xps.asarray(a, device=dev) for a in (X, w, centers)), 300, 1e-4
    )
    assert device(labels) == device(centers_dev) == dev
    assert_array_equal(to_numpy(labels, dtype=None), labels_np)
    assert n_iter == n_iter_np
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_allclose(to_numpy(centers_dev), centers_np, rtol=rtol, atol=rtol)


def test_duplicate_points_warn_as_sklearn():
    """More clusters than distinct rows: no relocation, the same warning."""
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 50, axis=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        expected = KMeans(3, n_init=1, random_state=0).fit(X).labels_
        labels, _, _ = xp_kmeans(xps.asarray(X, device=DEVICE1), 3, random_state=0)
    messages = [str(r.message) for r in record if r.category is ConvergenceWarning]
    assert len(messages) == 2 and messages[0] == messages[1]
    assert_array_equal(to_numpy(labels, dtype=None), expected)


def test_errors():
    X = xps.asarray(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=4"):
        xp_kmeans(X, 4)
    with pytest.raises(ValueError, match="Unknown init_params"):
        xp_initial_resp(X, 2, "nope", np.random.RandomState(0))
    with pytest.raises(TypeError, match="float32 or float64"):
        xp_initial_resp(
            xps.asarray(np.zeros((3, 2), dtype=np.int64)),
            2,
            "random",
            np.random.RandomState(0),
        )
