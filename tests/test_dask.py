"""Dask input: blocks kept by the workers give the in-memory fit; lazy inference."""

import re
import subprocess
import sys
import warnings
from functools import partial

import numpy as np
import pytest
from _helpers import FITTED
from numpy.testing import assert_allclose, assert_array_equal

from em_sklearn import EMClusterer, EMImputer
from em_sklearn._missing_data import BlockedData

dask = pytest.importorskip("dask", reason="the Dask tests need em_sklearn[dask]")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

from em_sklearn import _dask  # noqa: E402  (after the skips: needs dask)

N_SAMPLES, N_FEATURES, N_COMPONENTS = 400, 3, 3

# Row chunks of the dask input (each sums to N_SAMPLES).
CHUNKINGS = {
    "one-block": (400,),
    "uneven": (57, 130, 6, 207),
    "block-below-n_components": (2, 198, 200),  # 2 rows < 3 components
    "block-all-nan": (150, 50, 200),  # the 50-row block has nothing observed
}


@pytest.fixture(scope="module")
def client():
    """A cluster of two worker processes with one thread each."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # start-up chatter (ports, deprecations)
        cluster = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        )
        client = distributed.Client(cluster, set_as_default=False)
    yield client
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.close()
        cluster.close()


@pytest.fixture(params=["threads", "distributed"])
def scheduler(request, client):
    """Run the test with dask's threaded scheduler, then on the cluster."""
    target = client if request.param == "distributed" else "threads"
    with dask.config.set(scheduler=target):
        yield request.param


def _data(seed, chunks=(N_SAMPLES,)):
    """Three clusters, 20% of entries missing, a row with nothing observed."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(N_COMPONENTS, N_FEATURES))
    X = centers[rng.integers(N_COMPONENTS, size=N_SAMPLES)]
    X = X + rng.normal(size=X.shape)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[3] = np.nan
    if chunks == CHUNKINGS["block-all-nan"]:
        X[150:200] = np.nan
    return X, centers


def _init(centers, covariance_type="full"):
    """Initial values that fix the start (no random initialisation)."""
    k, d = centers.shape
    precisions = {
        "full": np.stack([np.eye(d)] * k),
        "tied": np.eye(d),
        "diag": np.ones((k, d)),
        "spherical": np.ones(k),
    }[covariance_type]
    return {
        "weights_init": np.full(k, 1.0 / k),
        "means_init": centers,
        "precisions_init": precisions,
        "covariance_type": covariance_type,
    }


def _estimator(cls, centers, **params):
    params = {"tol": 1e-8, "max_iter": 200, **params}
    if cls is EMImputer:
        return EMImputer(N_COMPONENTS, **_init(centers), **params)
    return EMClusterer(N_COMPONENTS, **_init(centers), **params)


def _assert_same_fit(fitted, expected, rtol):
    for name in FITTED:
        actual, desired = getattr(fitted, name), getattr(expected, name)
        if name in ("n_iter_", "converged_"):
            assert actual == desired, name
        else:
            # rtol: the blocks' statistics are added in another order than
            # in memory (rounding only); atol for entries that are ~0.
            assert_allclose(actual, desired, rtol=rtol, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("cls", [EMClusterer, EMImputer], ids=lambda c: c.__name__)
def test_fit_equals_in_memory_fit(cls, chunking, scheduler, global_random_seed):
    """From the same initial values, a Dask fit is the in-memory fit (to 1e-10)."""
    X, centers = _data(global_random_seed, CHUNKINGS[chunking])
    expected = _estimator(cls, centers).fit(X)
    X_dask = da.from_array(X, chunks=(CHUNKINGS[chunking], 2))  # columns rechunked
    fitted = _estimator(cls, centers).fit(X_dask)
    _assert_same_fit(fitted, expected, rtol=1e-10)
    assert fitted.n_features_in_ == N_FEATURES


@pytest.mark.parametrize("covariance_type", ["tied", "diag", "spherical"])
def test_fit_equals_in_memory_fit_other_covariances(covariance_type, scheduler):
    """The other covariance types over uneven blocks, also with SQUAREM."""
    X, centers = _data(0)
    params = {**_init(centers, covariance_type), "accelerate": "squarem", "tol": 1e-8}
    expected = EMClusterer(N_COMPONENTS, **params).fit(X)
    fitted = EMClusterer(N_COMPONENTS, **params).fit(
        da.from_array(X, chunks=(CHUNKINGS["uneven"], N_FEATURES))
    )
    _assert_same_fit(fitted, expected, rtol=1e-10)


def _same_blocks_fit(cls, X, centers, chunks):
    """The in-memory engine on blocks cut at the dask chunks (no row dropped)."""
    estimator = _estimator(cls, centers)
    _dask._check_stand_in(estimator, X, reset=True)  # as fit's own checks
    estimator._set_layout(np.ones(X.shape[1], dtype=bool))
    model = estimator._model()
    bounds = np.cumsum((0, *chunks))
    blocks = tuple(
        model.prepare(X[lo:hi][~np.isnan(X[lo:hi]).all(axis=1)])
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        if not np.isnan(X[lo:hi]).all()
    )
    data = estimator._fit_prepared(
        BlockedData(blocks), estimator._user_values(X.shape[1])
    )
    return estimator, data


@pytest.mark.parametrize("cls", [EMClusterer, EMImputer], ids=lambda c: c.__name__)
def test_fit_on_the_same_blocks_is_exact(cls, scheduler, global_random_seed):
    """With the in-memory engine's blocks and order, the fit is the same bit for bit.

    Up to FAN_IN blocks the tree adds the blocks' statistics in block order,
    as ``BlockedData.map_reduce`` does.
    """
    chunks = CHUNKINGS["block-all-nan"]
    X, centers = _data(global_random_seed, chunks)
    X[3] = 1.0  # no empty row outside the empty block
    expected, _ = _same_blocks_fit(cls, X, centers, chunks)
    fitted = _estimator(cls, centers).fit(da.from_array(X, chunks=(chunks, 3)))
    _assert_same_fit(fitted, expected, rtol=0.0)


def test_tree_order_does_not_depend_on_the_scheduler(client, global_random_seed):
    """More blocks than FAN_IN: threads and the cluster give the same bits."""
    X, centers = _data(global_random_seed)
    X_dask = da.from_array(X, chunks=(23, N_FEATURES))  # 18 blocks: a 3-level tree
    assert X_dask.numblocks[0] > 2 * _dask.FAN_IN
    fits = []
    for target in ("threads", client):
        with dask.config.set(scheduler=target):
            fits.append(_estimator(EMClusterer, centers).fit(X_dask))
    _assert_same_fit(fits[1], fits[0], rtol=0.0)
    _assert_same_fit(fits[0], _estimator(EMClusterer, centers).fit(X), rtol=1e-10)


def test_blocks_do_not_move(client):
    """No prepared block, and no chunk of X, moves after the blocks are made.

    Every E-step's tasks are pinned to the worker holding their block: the
    workers' transfer logs (what the task stream shows as transfers) hold
    only the per-block statistics on their way to the tree's sums, and the
    per-iteration graph depends only on the blocks and the parameters.
    """
    X, centers = _data(1)
    X_dask = client.persist(da.from_array(X, chunks=(50, N_FEATURES)))

    def clear(dask_worker):
        dask_worker.transfer_incoming_log.clear()

    def moved(dask_worker):
        return [str(key) for entry in dask_worker.transfer_incoming_log
                for key in entry["keys"]]

    client.run(clear)
    with dask.config.set(scheduler=client):
        fitted = _estimator(EMClusterer, centers, max_iter=5, tol=0.0)
        with pytest.warns(Warning, match="did not converge"):
            fitted.fit(X_dask)
    keys = [key for keys in client.run(moved).values() for key in keys]
    assert not [key for key in keys if "em-block" in key or "array" in key]
    # Only statistics and parameters moved: at most one statistic per block
    # and one copy of the parameters per worker in each E-step.
    moved_stats = [key for key in keys if key.startswith("em-map-")]
    moved_params = [key for key in keys if key.startswith("em-params-")]
    assert len(moved_stats) + len(moved_params) == len(keys)
    assert len(moved_stats) <= 5 * X_dask.numblocks[0]


def test_lost_block_is_an_error(client):
    """A block whose worker changed makes the fit raise, not fit stale rows."""
    X, centers = _data(2)
    with dask.config.set(scheduler=client):
        model = EMClusterer(N_COMPONENTS)._model()
        template = EMClusterer(N_COMPONENTS)
        template.n_features_in_ = N_FEATURES
        parts = list(da.from_array(X, chunks=(100, 3)).to_delayed().ravel())
        data, _ = _dask.DaskBlocks.prepare(
            partial(_dask._prepare_chunk, template, model), parts, N_FEATURES
        )
        key = data._blocks[0].key
        data._backend._holders[key] = frozenset({"tcp://127.0.0.1:1"})
        with pytest.raises(RuntimeError, match="was lost"):
            data.observed_counts()
        data.close()


def test_default_initialisation_from_a_sample(scheduler, monkeypatch):
    """Without initial values, init_params runs on a sample of the blocks' rows."""
    X, centers = _data(3)
    monkeypatch.setattr(_dask.DaskBlocks, "init_rows", 60)
    sizes = []
    original = _dask.DaskBlocks.mean_filled

    def mean_filled(self):
        X_filled, weights = original(self)
        sizes.append(len(X_filled))
        return X_filled, weights

    monkeypatch.setattr(_dask.DaskBlocks, "mean_filled", mean_filled)
    params = {"tol": 1e-10, "max_iter": 500, "random_state": 0, "n_init": 2}
    fitted = EMClusterer(N_COMPONENTS, **params).fit(
        da.from_array(X, chunks=(CHUNKINGS["uneven"], N_FEATURES))
    )
    assert sizes and max(sizes) == 60  # of 400 rows
    # Well-separated clusters: the same maximum as in memory, whatever start.
    expected = EMClusterer(N_COMPONENTS, **params).fit(X)
    order = np.argsort(fitted.means_[:, 0])
    expected_order = np.argsort(expected.means_[:, 0])
    assert_allclose(
        fitted.means_[order], expected.means_[expected_order], rtol=1e-5, atol=1e-6
    )
    assert_allclose(fitted.lower_bound_, expected.lower_bound_, rtol=1e-8)


@pytest.mark.parametrize("options", [{"prior": "default"}, {"n_init": 2}])
def test_fit_with_prior_or_restarts(options, scheduler):
    """A default prior (a one-component fit first) and restarts run on blocks."""
    X, centers = _data(4)
    params = {"tol": 1e-10, "max_iter": 500, "random_state": 0, **options}
    X_dask = da.from_array(X, chunks=(CHUNKINGS["uneven"], N_FEATURES))
    fitted = EMImputer(N_COMPONENTS, **_init(centers), **params).fit(X_dask)
    expected = EMImputer(N_COMPONENTS, **_init(centers), **params).fit(X)
    # The prior's scale comes from a one-component fit started from the
    # sample (to tol=1e-8): the same maximum, not the same bits.
    assert_allclose(fitted.means_, expected.means_, rtol=1e-6, atol=1e-8)
    assert_allclose(fitted.lower_bound_, expected.lower_bound_, rtol=1e-8)


def _frame(X):
    return pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])])


def test_inference_is_lazy_and_equals_in_memory(scheduler):
    """predict, predict_proba, score_samples, transform: lazy, chunk by chunk."""
    X, centers = _data(5)
    chunks = CHUNKINGS["uneven"]
    X_dask = da.from_array(X, chunks=(chunks, N_FEATURES))
    clusterer = _estimator(EMClusterer, centers).fit(X)
    imputer = _estimator(EMImputer, centers).fit(X)
    results = {
        "predict_proba": (clusterer.predict_proba(X_dask), clusterer.predict_proba(X)),
        "predict": (clusterer.predict(X_dask), clusterer.predict(X)),
        "score_samples": (clusterer.score_samples(X_dask), clusterer.score_samples(X)),
        "transform": (imputer.transform(X_dask), imputer.transform(X)),
    }
    for name, (lazy, expected) in results.items():
        assert isinstance(lazy, da.Array), name
        assert lazy.chunks[0] == chunks, name  # one output chunk per input chunk
        # Per-row results; the rows are computed in other groups than in
        # memory (BLAS rounding only).
        assert_allclose(lazy.compute(), expected, rtol=1e-12, atol=1e-12, err_msg=name)


def test_fit_predict_and_fit_transform_are_lazy(scheduler):
    """fit_predict and fit_transform fit, then return the lazy inference of X."""
    X, centers = _data(6)
    X_dask = da.from_array(X, chunks=(CHUNKINGS["uneven"], N_FEATURES))
    clusterer = _estimator(EMClusterer, centers)
    labels = clusterer.fit_predict(X_dask)
    assert isinstance(labels, da.Array) and clusterer.labels_ is labels
    expected = _estimator(EMClusterer, centers).fit_predict(X)
    assert_array_equal(labels.compute(), expected)
    imputer = _estimator(EMImputer, centers, add_indicator=True)
    imputed = imputer.fit_transform(X_dask)
    expected = _estimator(EMImputer, centers, add_indicator=True).fit_transform(X)
    assert isinstance(imputed, da.Array)
    assert_allclose(imputed.compute(), expected, rtol=1e-10, atol=1e-12)
    # Observed entries come back bit for bit.
    observed = ~np.isnan(X)
    assert_array_equal(imputed.compute()[:, :N_FEATURES][observed], X[observed])


def test_dataframe_input_and_feature_names(scheduler):
    """A dask DataFrame: names recorded, checked at inference, float32 kept."""
    X, centers = _data(7)
    frame = _frame(X.astype(np.float32))
    frame_dask = dd.from_pandas(frame, npartitions=3)
    imputer = _estimator(EMImputer, centers).fit(frame_dask)
    assert_array_equal(imputer.feature_names_in_, frame.columns)
    expected = _estimator(EMImputer, centers).fit(frame)
    _assert_same_fit(imputer, expected, rtol=1e-10)
    imputed = imputer.transform(frame_dask)
    assert imputed.dtype == np.float32
    assert_array_equal(imputed.compute(), expected.transform(frame))
    renamed = frame_dask.rename(columns={"c1": "other"})
    with pytest.raises(ValueError, match="other"):
        imputer.transform(renamed)


def test_wrong_number_of_columns(scheduler):
    """Inference on a dask array of another width fails at once, not at compute."""
    X, centers = _data(8)
    clusterer = _estimator(EMClusterer, centers).fit(da.from_array(X, chunks=100))
    narrow = da.from_array(X[:, :2], chunks=100)
    with pytest.raises(ValueError, match="X has 2 features, but EMClusterer is "
                       "expecting 3 features as input"):
        clusterer.predict(narrow)


def test_non_numeric_columns_are_refused(scheduler):
    """A text or date column of a dask DataFrame is refused, named, before any work."""
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "city": list("abcd")})
    frame_dask = dd.from_pandas(frame, npartitions=2)
    with pytest.raises(ValueError, match="column 'city'"):
        EMClusterer(1).fit(frame_dask)
    dates = pd.DataFrame(
        {"x": [1.0, 2.0], "when": pd.to_datetime(["2020-01-01", "2020-01-02"])}
    )
    with pytest.raises(ValueError, match="column 'when' holds dates"):
        EMImputer().fit(dd.from_pandas(dates, npartitions=1))


def test_chunk_values_are_checked_on_the_workers(scheduler):
    """Infinity in a chunk fails the fit with the in-memory message."""
    X, _ = _data(9)
    X[250, 1] = np.inf
    with pytest.raises(ValueError, match=re.escape("Input X contains infinity")):
        EMClusterer(2).fit(da.from_array(X, chunks=100))


def test_unsupported_inputs_are_refused():
    """sample_weight, 1-d arrays and other collections give clear errors."""
    X, _ = _data(10)
    X_dask = da.from_array(X, chunks=100)
    with pytest.raises(ValueError, match="sample_weight is not supported"):
        EMClusterer(2).fit(X_dask, sample_weight=np.ones(N_SAMPLES))
    with pytest.raises(ValueError, match="Expected a 2-dimensional dask array"):
        EMClusterer(2).fit(X_dask[:, 0])
    with pytest.raises(TypeError, match="accepts a dask array or a dask DataFrame"):
        EMClusterer(2).fit(dask.delayed(X))
    with dask.config.set(scheduler="processes"):
        with pytest.raises(ValueError, match="multiprocessing scheduler"):
            EMClusterer(2).fit(X_dask)
    imputer = EMImputer().set_output(transform="pandas")
    with pytest.raises(ValueError, match="set_output\\(transform='pandas'\\) is not"):
        imputer.fit_transform(X_dask)
    with pytest.raises(ValueError, match="does not know"):
        EMClusterer(2).fit(X_dask[:, da.from_array(np.array([True, False, True]))])


def test_empty_columns(scheduler):
    """A column with no observed value: the imputer drops it (warning), the
    clusterer refuses it, both as in memory."""
    X, centers = _data(11)
    X[:, 1] = np.nan
    X_dask = da.from_array(X, chunks=(CHUNKINGS["uneven"], N_FEATURES))
    with pytest.raises(ValueError, match="cannot fit column\\(s\\) at index 1"):
        EMClusterer(2).fit(X_dask)
    params = {"tol": 1e-8, **_init(centers[:, [0, 2]])}
    with pytest.warns(UserWarning, match=re.escape("Skipping features without any")):
        imputer = EMImputer(N_COMPONENTS, **params).fit(X_dask)
    with pytest.warns(UserWarning, match=re.escape("Skipping features without any")):
        expected = EMImputer(N_COMPONENTS, **params).fit(X)
    assert_allclose(imputer.means_, expected.means_, rtol=1e-10)
    assert_allclose(imputer.transform(X_dask).compute(), expected.transform(X),
                    rtol=1e-10, atol=1e-12)


def test_sample_posterior_draws_per_chunk(scheduler):
    """Posterior draws: reproducible with an int random_state, distinct per chunk."""
    X = np.tile([[1.0, np.nan], [2.0, 4.0], [3.0, 6.0]], (40, 1))
    X_dask = da.from_array(X, chunks=60)  # two chunks with the same rows
    imputer = EMImputer(sample_posterior=True, random_state=0).fit(X)
    first = imputer.transform(X_dask).compute()
    assert_array_equal(first, imputer.transform(X_dask).compute())
    assert not np.array_equal(first[:60], first[60:])


def test_the_core_does_not_import_dask():
    """em_sklearn imports, fits and infers without importing dask."""
    code = (
        "import sys, numpy as np; from em_sklearn import EMImputer; "
        "EMImputer().fit_transform(np.array([[1.0, np.nan], [2.0, 3.0], [0.0, 1.0]]));"
        "assert 'dask' not in sys.modules, 'dask imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
