"""fit on a numpy.memmap (or any array that slices by rows), block by block."""

import re
import tracemalloc
import warnings

import numpy as np
import pytest
from _helpers import init_values
from numpy.testing import assert_allclose, assert_array_equal

from em_sklearn import EMClusterer, EMImputer
from em_sklearn._gaussian import COVARIANCE_TYPES
from em_sklearn._out_of_core import RowBlocks, is_out_of_core

ESTIMATORS = [EMClusterer, EMImputer]
BLOCK_ROWS = 200  # small blocks, so that a test's data make several


def _ids(cls):
    return cls.__name__


def _blocked(Estimator, block_rows=BLOCK_ROWS):
    """The estimator class with another block size (a setting, not a parameter)."""
    return type(Estimator.__name__, (Estimator,), {"_block_rows": block_rows})


def _data(seed, n_samples=1030, n_features=4):
    """Two clusters, columns on different scales, MCAR holes, a row with
    nothing observed; the last block is short (1030 rows in blocks of 200)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) @ rng.normal(size=(n_features,) * 2)
    X[: n_samples // 3] += 4.0
    X *= np.logspace(-2, 3, n_features)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[5] = np.nan
    return X


def _memmap(tmp_path, X, name="X.dat"):
    """A read-only memmap of X, written to a file under tmp_path."""
    path = tmp_path / name
    out = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    out[:] = X
    out.flush()
    del out
    return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)


FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_")


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(
    "options",
    [{}, {"weighted": True}, {"accelerate": "squarem"}, {"prior": "default"}],
    ids=["plain", "weighted", "squarem", "prior"],
)
def test_memmap_fit_equals_in_memory_fit(
    Estimator, covariance_type, options, tmp_path, global_random_seed
):
    """From the same initial values, the fit on a memmap read block by block
    equals the in-memory fit (blocks of the same size) to 1e-10."""
    X = _data(global_random_seed)
    options = dict(options)
    # Both fits add the same terms in other groupings, so they differ by
    # rounding (measured over seeds 0-29: 8e-12 of the largest entry). SQUAREM
    # extrapolates by up to its step length squared (2e-11; a lower bound at
    # an extrapolated point 1.1e-10). prior='default' sets its hyperparameters
    # by an inner SQUAREM fit stopped at tol=1e-8 (_gaussian._model), whose
    # stopping point moves with rounding (4e-7; its mean_prior 7e-7).
    rtol = {"accelerate": 1e-9, "prior": 1e-5}.get(next(iter(options), None), 1e-10)
    sample_weight = None
    if options.pop("weighted", False):
        rng = np.random.default_rng(global_random_seed)
        sample_weight = rng.integers(0, 4, size=X.shape[0]).astype(float)
    kw = {
        "covariance_type": covariance_type,
        "tol": 1e-6,
        "max_iter": 200,
        **options,
        **init_values(Estimator, X, covariance_type),
    }
    Blocked = _blocked(Estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is not the point here
        in_memory = Blocked(2, **kw).fit(X, sample_weight=sample_weight)
        X_map = _memmap(tmp_path, X)
        assert is_out_of_core(X_map, BLOCK_ROWS)
        out_of_core = Blocked(2, **kw).fit(X_map, sample_weight=sample_weight)
    assert out_of_core.n_iter_ == in_memory.n_iter_
    assert out_of_core.converged_ == in_memory.converged_
    # The same sums over other groupings of the rows: rounding only.
    for name in FITTED:
        want = getattr(in_memory, name)
        assert_allclose(
            getattr(out_of_core, name),
            want,
            rtol=rtol,
            atol=rtol * np.abs(want).max(),
            err_msg=name,
        )
    assert_allclose(out_of_core.lower_bounds_, in_memory.lower_bounds_, rtol=rtol)
    assert out_of_core.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_peak_memory_is_bounded_by_the_block_size(Estimator, covariance_type, tmp_path):
    """Fitting a 15 MiB memmap in blocks of 256 KiB allocates at most 16 blocks
    (4 MiB) at any time, whatever the number of rows."""
    n_samples, n_features, block_rows = 250_000, 8, 4096
    path = tmp_path / "big.dat"
    X_map = np.memmap(path, dtype=np.float64, mode="w+", shape=(n_samples, n_features))
    rng = np.random.default_rng(0)
    for lo in range(0, n_samples, 50_000):
        part = rng.normal(size=(50_000, n_features))
        part[: 50_000 // 3] += 3.0
        part[rng.random(part.shape) < 0.2] = np.nan
        X_map[lo : lo + 50_000] = part
    X_map.flush()
    del X_map, part
    X_map = np.memmap(path, dtype=np.float64, mode="r", shape=(n_samples, n_features))
    file_bytes = n_samples * n_features * 8
    block_bytes = block_rows * n_features * 8
    allowed = 16 * block_bytes
    assert allowed < file_bytes / 3  # the file does not fit in what is allowed
    est = _blocked(Estimator, block_rows)(
        3, covariance_type=covariance_type, max_iter=2, random_state=0
    )
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # two iterations do not converge
            est.fit(X_map)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Measured: 7-10 blocks (1.7-2.5 MiB); the in-memory fit of the same rows
    # peaks at 71 MiB.
    assert peak < allowed, f"peak {peak / 2**20:.2f} MiB"
    assert est.means_.shape == (3, n_features)


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_inference_on_a_memmap_equals_in_memory(Estimator, tmp_path):
    """transform, predict_proba, predict and score_samples of a memmap run block
    by block and give the in-memory results (observed entries kept exactly)."""
    X = _data(1)
    Blocked = _blocked(Estimator)
    est = Blocked(2, random_state=0).fit(X)
    X_map = _memmap(tmp_path, X)
    # Per-row results computed in other chunks of rows: rounding only.
    assert_allclose(est.score_samples(X_map), est.score_samples(X), rtol=1e-12)
    assert est.score(X_map) == pytest.approx(est.score(X), rel=1e-12)
    if Estimator is EMImputer:
        filled = est.transform(X_map)
        assert_allclose(filled, est.transform(X), rtol=1e-12, atol=1e-9)
        observed = ~np.isnan(X)
        assert_array_equal(filled[observed], X[observed])
    else:
        assert_allclose(est.predict_proba(X_map), est.predict_proba(X), atol=1e-12)
        assert_array_equal(est.predict(X_map), est.predict(X))


def test_fit_predict_and_fit_transform_of_a_memmap(tmp_path):
    """fit_predict and fit_transform fit block by block and return the labels or
    the imputed rows of every row; fit alone keeps no labels_ (one per row)."""
    X = _data(2)
    X_map = _memmap(tmp_path, X)
    clusterer = _blocked(EMClusterer)(2, random_state=0)
    labels = clusterer.fit_predict(X_map)
    assert_array_equal(labels, clusterer.predict(X))
    assert not hasattr(_blocked(EMClusterer)(2, random_state=0).fit(X_map), "labels_")
    imputer = _blocked(EMImputer)(random_state=0, add_indicator=True)
    filled = imputer.fit_transform(X_map)
    assert_array_equal(filled, imputer.transform(X_map))
    assert filled.shape == (X.shape[0], 2 * X.shape[1])


def test_posterior_draws_of_a_memmap_are_independent_across_blocks(tmp_path):
    """sample_posterior draws one seed per block: reproducible with an int
    random_state, and blocks with the same rows get different draws."""
    X = np.tile(_data(3)[:BLOCK_ROWS], (3, 1))  # three identical blocks
    X_map = _memmap(tmp_path, X)
    imputer = _blocked(EMImputer)(sample_posterior=True, random_state=0).fit(X)
    first, again = imputer.transform(X_map), imputer.transform(X_map)
    assert_array_equal(first, again)
    missing = np.isnan(X[:BLOCK_ROWS])
    blocks = first.reshape(3, BLOCK_ROWS, -1)
    assert not np.allclose(blocks[0][missing], blocks[1][missing])


def test_default_initialisation_on_a_sample_of_rows(tmp_path, global_random_seed):
    """Without initial values, init_params runs on a sample of rows (of the
    size RowBlocks.init_rows): on two clear clusters the fit finds them, as
    the in-memory fit does."""
    X = _data(global_random_seed, n_samples=2000)
    X_map = _memmap(tmp_path, X)
    Blocked = _blocked(EMClusterer)
    est = Blocked(2, random_state=0, tol=1e-8, max_iter=500).fit(X_map)
    ref = Blocked(2, random_state=0, tol=1e-8, max_iter=500).fit(X)
    # Both converge to the same maximum from different starts (to tol: the
    # likelihood is flat enough there that the means agree to ~1%).
    assert est.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-6)
    order = np.argsort(est.means_[:, -1]), np.argsort(ref.means_[:, -1])
    scale = np.nanstd(X, axis=0)
    assert_allclose(
        est.means_[order[0]] / scale, ref.means_[order[1]] / scale, atol=0.05
    )


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_memmap_validation(Estimator, tmp_path):
    """Every block is validated: infinity in the last block names its column;
    an empty column is refused (clusterer) or dropped with a warning (imputer);
    later calls check the number of features."""
    X = _data(4)
    X_inf = X.copy()
    X_inf[-1, 2] = np.inf
    with pytest.raises(ValueError, match=re.escape("infinity in column(s) at index 2")):
        _blocked(Estimator)().fit(_memmap(tmp_path, X_inf, "inf.dat"))
    X_empty = X.copy()
    X_empty[:, 1] = np.nan
    X_map = _memmap(tmp_path, X_empty, "empty.dat")
    if Estimator is EMClusterer:
        msg = "EMClusterer cannot fit column(s) at index 1: they have no observed"
        with pytest.raises(ValueError, match=re.escape(msg)):
            _blocked(Estimator)().fit(X_map)
    else:
        with pytest.warns(UserWarning, match=re.escape("['x1']")):
            est = _blocked(Estimator)().fit(X_map)
        assert est.means_.shape == (1, X.shape[1] - 1)
        assert est.transform(X_map).shape == X.shape[:1] + (X.shape[1] - 1,)
    est = _blocked(Estimator)().fit(_memmap(tmp_path, X))
    with pytest.raises(ValueError, match="X has 3 features"):
        est.score_samples(_memmap(tmp_path, X[:, :3].copy(), "narrow.dat"))


class RowStore:
    """A minimal array of another library: a dtype, a shape, row slices."""

    def __init__(self, array):
        self._array = array
        self.dtype = array.dtype
        self.shape = array.shape

    def __getitem__(self, index):
        return np.array(self._array[index])


@pytest.mark.parametrize("source", ["row_store", "int_memmap", "h5py"])
def test_other_row_sliceable_arrays(source, tmp_path):
    """An object that slices by rows (h5py dataset, integers in a memmap) is
    fitted block by block like a float memmap."""
    X = np.round(_data(5) * 10)
    if source == "row_store":
        X_in = RowStore(X)
    elif source == "int_memmap":
        X = np.nan_to_num(X, nan=0.0)
        X_in = _memmap(tmp_path, X.astype(np.int32))
    else:
        h5py = pytest.importorskip("h5py", reason="h5py is not installed")
        f = h5py.File(tmp_path / "X.h5", "w")
        X_in = f.create_dataset("X", data=X)
    assert is_out_of_core(X_in, BLOCK_ROWS)
    kw = init_values(EMImputer, X, "full")
    est = _blocked(EMImputer)(2, **kw).fit(X_in)
    ref = _blocked(EMImputer)(2, **kw).fit(X)
    # Rounding, relative to the largest entry (some means are about 0).
    for got, want in [(est.means_, ref.means_), (est.covariances_, ref.covariances_)]:
        assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


def test_which_inputs_are_read_block_by_block(tmp_path):
    """Memmaps and row-sliceable arrays of two blocks or more; not small ones,
    not in-memory arrays, DataFrames or sparse matrices."""
    pd = pytest.importorskip("pandas")
    sparse = pytest.importorskip("scipy.sparse")
    X = _data(6, n_samples=400)
    assert is_out_of_core(_memmap(tmp_path, X), 200)
    assert not is_out_of_core(_memmap(tmp_path, X[:399].copy(), "small.dat"), 200)
    assert not is_out_of_core(X, 200)
    assert not is_out_of_core(pd.DataFrame(X), 200)
    assert not is_out_of_core(sparse.csr_matrix(np.nan_to_num(X)), 200)
    assert RowBlocks.init_rows is None  # the sample defaults to one block
