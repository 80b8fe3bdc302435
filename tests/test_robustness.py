"""The input contract (docs/input_contract.rst): bad inputs, degenerate fits, state."""

import io
import pickle
import re
import warnings
from contextlib import redirect_stdout

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from em_sklearn import EMClusterer, EMImputer

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
ESTIMATORS = [EMClusterer, EMImputer]
_ids = lambda c: c.__name__  # noqa: E731

_ILL_DEFINED = (
    "has an ill-defined covariance (for instance caused by singleton or collapsed "
    "samples, or by a component estimated from few observed values). Try to "
    "decrease the number of components, increase reg_covar, set prior='default' "
    "(MAP estimation), or scale the input data."
)


def _data(seed, n_samples=60, n_features=3, missing=0.2):
    """Correlated Gaussian data with a fraction of entries missing at random."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_features, n_features))
    X = rng.normal(size=(n_samples, n_features)) @ A + rng.normal(size=n_features)
    X[rng.random(X.shape) < missing] = np.nan
    return X


def _outputs(est, X):
    """Everything a fitted estimator returns for X (to compare two fits)."""
    out = [est.score_samples(X)]
    if isinstance(est, EMImputer):
        out.append(est.transform(X))
    else:
        out += [est.predict_proba(X), est.predict(X)]
    return out


def _assert_same_outputs(a, b):
    for x, y in zip(a, b, strict=True):
        assert_array_equal(x, y)


# -- inputs -----------------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize("frame", [False, True], ids=["ndarray", "DataFrame"])
def test_infinity_raises_naming_columns(Estimator, frame):
    """+inf/-inf raise a ValueError naming the columns, in fit and afterwards."""
    X = _data(0)
    bad = X.copy()
    bad[3, 1], bad[5, 2] = np.inf, -np.inf
    if frame:
        X, bad = (pd.DataFrame(a, columns=["a", "b", "c"]) for a in (X, bad))
        cols = "'b', 'c'"
    else:
        cols = "at index 1, at index 2"
    msg = f"Input X contains infinity in column(s) {cols}. NaN is the only"
    with pytest.raises(ValueError, match=re.escape(msg)):
        Estimator(random_state=0).fit(bad)
    est = Estimator(random_state=0).fit(X)
    with pytest.raises(ValueError, match=re.escape(msg)):
        est.score_samples(bad)


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_pandas_missing_markers_are_nan(Estimator):
    """pd.NA and None in a DataFrame are missing entries, exactly like NaN."""
    X = _data(1)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).astype(object)
    frame.iloc[0, 0], frame.iloc[1, 1] = pd.NA, None
    X_nan = X.copy()
    X_nan[0, 0] = X_nan[1, 1] = np.nan
    est = Estimator(random_state=0).fit(frame)
    frame_nan = pd.DataFrame(X_nan, columns=["a", "b", "c"])
    ref = Estimator(random_state=0).fit(frame_nan)
    _assert_same_outputs(_outputs(est, frame), _outputs(ref, frame_nan))


def test_imputer_empty_column_dropped_with_warning():
    """An empty column is dropped with a UserWarning; width and names agree."""
    X = _data(2)
    X[:, 1] = np.nan
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    msg = "Skipping features without any observed values: ['b']."
    with pytest.warns(UserWarning, match=re.escape(msg)):
        imputer = EMImputer(random_state=0).fit(frame)
    out = imputer.transform(frame)
    assert out.shape == (len(X), 2)
    assert_array_equal(imputer.get_feature_names_out(), ["a", "c"])


@pytest.mark.parametrize("add_indicator", [False, True])
def test_imputer_empty_column_kept(add_indicator):
    """keep_empty_features=True keeps the empty column filled with 0; names agree."""
    X = _data(3)
    X[:, 1] = np.nan
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    imputer = EMImputer(
        keep_empty_features=True, add_indicator=add_indicator, random_state=0
    ).fit(frame)
    out = imputer.transform(frame)
    names = imputer.get_feature_names_out()
    assert out.shape[1] == len(names)
    assert_array_equal(names[:3], ["a", "b", "c"])
    assert_array_equal(out[:, 1], 0.0)


def test_clusterer_empty_column_raises():
    """EMClusterer refuses a column with no observed value, naming it."""
    X = pd.DataFrame(_data(4), columns=["a", "b", "c"])
    X["b"] = np.nan
    msg = (
        "EMClusterer cannot fit column(s) 'b': they have no observed value, so "
        "their means and variances are undetermined. Drop them before fitting"
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        EMClusterer(random_state=0).fit(X)


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_rows_with_nothing_observed_do_not_change_fit(Estimator, covariance_type):
    """Rows with nothing observed leave the parameters equal to a fit without them."""
    X = _data(5)
    X_more = np.vstack([np.full((7, 3), np.nan), X, np.full((3, 3), np.nan)])
    params = dict(n_components=2, covariance_type=covariance_type, random_state=0)
    a = Estimator(**params).fit(X)
    b = Estimator(**params).fit(X_more)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert a.n_iter_ == b.n_iter_


def test_rows_with_nothing_observed_get_mixture_mean():
    """transform fills a row with nothing observed with sum_k pi_k mu_k."""
    X = _data(6)
    imputer = EMImputer(n_components=2, random_state=0).fit(X)
    out = imputer.transform(np.full((2, 3), np.nan))
    # A weighted sum of the means, computed two ways: rounding only.
    assert_allclose(
        out, np.tile(imputer.weights_ @ imputer.means_, (2, 1)), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_fewer_informative_rows_than_components_raises(Estimator):
    """Fewer rows with an observed value than n_components is a ValueError saying so."""
    X = np.full((10, 2), np.nan)
    X[:2] = [[1.0, 2.0], [3.0, np.nan]]
    msg = (
        "Expected at least n_components rows with an observed value but got "
        "n_components = 3, rows with an observed value = 2."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        Estimator(n_components=3).fit(X)


def _constant_column(X):
    X[:, 1] = 5.0
    return X


def _identical_columns(X):
    X[:, 1] = X[:, 0]
    return X


def _duplicate_rows(X):
    return np.vstack([X, X, X])


def _one_feature(X):
    return X[:, :1]


def _one_observed_value(X):
    X[1:, 2] = np.nan
    X[0, 2] = 1.5
    return X


@pytest.mark.parametrize(
    "make",
    [
        _constant_column,
        _identical_columns,
        _duplicate_rows,
        _one_feature,
        _one_observed_value,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_degenerate_columns_give_finite_fit_without_warnings(
    Estimator, covariance_type, make
):
    """Constant/identical columns, duplicate rows, one feature, one observed value:
    a finite fit and no warning (warnings are errors in this suite)."""
    X = make(_data(7, missing=0.1))
    est = Estimator(n_components=2, covariance_type=covariance_type, random_state=0)
    est.fit(X)
    for out in _outputs(est, X):
        assert np.isfinite(out).all()


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_imputer_equivariant_to_column_scales(covariance_type, global_random_seed):
    """Imputations of X D equal D times those of X for scales 1e-8..1e8, and
    score_samples shifts by -sum of log D over each row's observed columns."""
    X = _data(global_random_seed, n_samples=150, n_features=5)
    D = np.array([1e-8, 1e-3, 1.0, 1e4, 1e8])
    params = dict(n_components=2, covariance_type=covariance_type, random_state=0)
    a = EMImputer(**params).fit(X)
    b = EMImputer(**params).fit(X * D)
    # Same standardised data up to rounding of the rescaling; EM iterates amplify
    # that rounding a little.
    assert_allclose(b.transform(X * D), a.transform(X) * D, rtol=1e-6, atol=0)
    shift = (~np.isnan(X)) @ np.log(D)
    assert_allclose(
        b.score_samples(X * D), a.score_samples(X) - shift, rtol=1e-6, atol=1e-6
    )
    assert_allclose(b.means_, a.means_ * D, rtol=1e-6, atol=0)


def test_imputer_spherical_equivariant_to_one_scale(global_random_seed):
    """A spherical model is scale-equivariant for one common scale (it is not
    for per-column scales: isotropy is a statement about the original units)."""
    X = _data(global_random_seed, n_samples=150, n_features=4)
    params = dict(n_components=2, covariance_type="spherical", random_state=0)
    a = EMImputer(**params).fit(X)
    b = EMImputer(**params).fit(X * 1e6)
    # Rescaled data: rounding of the rescaling, amplified by EM iterations.
    assert_allclose(b.transform(X * 1e6), a.transform(X) * 1e6, rtol=1e-6, atol=0)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_imputer_user_inits_in_original_units(covariance_type):
    """means_init/precisions_init are in original units: the fitted parameters
    passed back with max_iter=0 reproduce the same imputations and scores."""
    X = _data(8) * np.array([1e-5, 1.0, 1e5])
    fitted = EMImputer(
        n_components=2, covariance_type=covariance_type, random_state=0
    ).fit(X)
    again = EMImputer(
        n_components=2,
        covariance_type=covariance_type,
        max_iter=0,
        weights_init=fitted.weights_,
        means_init=fitted.means_,
        precisions_init=fitted.precisions_,
    ).fit(X)
    # Precisions -> Cholesky round trip: rounding only.
    assert_allclose(again.transform(X), fitted.transform(X), rtol=1e-9, atol=0)
    assert_allclose(
        again.score_samples(X), fitted.score_samples(X), rtol=1e-9, atol=1e-9
    )


def test_imputer_warm_start_continues_in_original_units():
    """warm_start continues the previous fit: 2 + 2 warm iterations give the
    log-likelihoods of 4 cold ones, in original units."""
    X = _data(9, n_samples=200) * np.array([1e-4, 1.0, 1e4])
    imputer = EMImputer(warm_start=True, max_iter=2, tol=0.0, random_state=0)
    with pytest.warns(ConvergenceWarning):
        imputer.fit(X)
    first = list(imputer.lower_bounds_)
    with pytest.warns(ConvergenceWarning):
        imputer.fit(X)
    with pytest.warns(ConvergenceWarning):
        cold = EMImputer(max_iter=4, tol=0.0, random_state=0).fit(X)
    # Parameters go through the unit conversion and back: rounding only.
    assert_allclose(
        first + imputer.lower_bounds_, cold.lower_bounds_, rtol=1e-9, atol=0
    )
    assert_allclose(imputer.means_, cold.means_, rtol=1e-9, atol=0)


def test_clusterer_keeps_original_units_on_wild_scales():
    """EMClusterer does not standardise (GaussianMixture semantics) and stays finite."""
    X = _data(10) * np.array([1e-8, 1.0, 1e8])
    est = EMClusterer(n_components=2, random_state=0).fit(X)
    assert np.isfinite(est.score_samples(X)).all()
    assert_allclose(est.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12, atol=0)


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_float32_and_int_dtypes(Estimator):
    """float32 in gives float32 out (imputer); int input is accepted as float."""
    X = _data(11)
    est = Estimator(random_state=0).fit(X.astype(np.float32))
    if isinstance(est, EMImputer):
        assert est.transform(X.astype(np.float32)).dtype == np.float32
    X_int = np.round(_data(11, missing=0.0) * 10).astype(np.int64)
    est = Estimator(random_state=0).fit(X_int)
    ref = Estimator(random_state=0).fit(X_int.astype(np.float64))
    _assert_same_outputs(_outputs(est, X_int), _outputs(ref, X_int.astype(float)))
    if isinstance(est, EMImputer):
        assert est.transform(X_int).dtype == np.float64


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize("layout", ["readonly", "memmap", "non_contiguous", "fortran"])
def test_array_layouts_and_input_untouched(Estimator, layout, tmp_path):
    """Read-only, memory-mapped and non-contiguous inputs work, give the results
    of a plain array, and are never modified."""
    X = _data(12)
    if layout == "readonly":
        X_in = X.copy()
        X_in.setflags(write=False)
    elif layout == "memmap":
        X_in = np.memmap(tmp_path / "X.dat", dtype=X.dtype, mode="w+", shape=X.shape)
        X_in[:] = X
        X_in.flush()
        X_in = np.memmap(tmp_path / "X.dat", dtype=X.dtype, mode="r", shape=X.shape)
    elif layout == "non_contiguous":
        wide = np.repeat(X, 2, axis=1)
        X_in = wide[:, ::2]
        assert not X_in.flags.c_contiguous
    else:
        X_in = np.asfortranarray(X)
    before = np.array(X_in, copy=True)
    est = Estimator(n_components=2, random_state=0).fit(X_in)
    out = _outputs(est, X_in)
    assert_array_equal(np.asarray(X_in), before)
    ref = Estimator(n_components=2, random_state=0).fit(X)
    _assert_same_outputs(out, _outputs(ref, X))


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_input_never_modified(Estimator):
    """fit, transform/predict and score leave the input equal to a copy (NaN too)."""
    X = _data(13)
    frame = pd.DataFrame(X.copy(), columns=["a", "b", "c"])
    before_X, before_frame = X.copy(), frame.copy()
    est = Estimator(n_components=2, random_state=0).fit(X)
    _outputs(est, X)
    Estimator(n_components=2, random_state=0).fit(frame)
    assert_array_equal(X, before_X)
    pd.testing.assert_frame_equal(frame, before_frame)


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_input_raises_type_error(Estimator, fmt):
    """A sparse matrix is a TypeError telling the user to densify it."""
    X = sp.random(20, 3, density=0.5, format=fmt, random_state=0)
    msg = (
        "Sparse data was passed for X, but dense data is required. Use '.toarray()' "
        "to convert to a dense numpy array."
    )
    with pytest.raises(TypeError, match=re.escape(msg)):
        Estimator().fit(X)
    est = Estimator(random_state=0).fit(X.toarray())
    with pytest.raises(TypeError, match=re.escape(msg)):
        est.score_samples(X)


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_categorical_columns_refused_when_none_allowed(Estimator):
    """With categorical_features=None, text and category columns raise a
    ValueError naming them and saying what to do."""
    name = Estimator.__name__
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "city": ["x", "y", "z"]})
    msg = (
        f"{name}: column 'city' holds categories but is not in categorical_features. "
        "Add it to categorical_features (or ordinal_features), or drop it."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        Estimator(categorical_features=None).fit(frame)
    frame["city"] = frame["city"].astype("category")
    with pytest.raises(ValueError, match=re.escape(msg)):
        Estimator(categorical_features=None).fit(frame)
    arr = np.array([[1.0, "x"], [2.0, "y"]], dtype=object)
    msg = f"{name}: column 1 holds categories but is not in categorical_features"
    with pytest.raises(ValueError, match=re.escape(msg)):
        Estimator(categorical_features=None).fit(arr)


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_feature_mismatch_gives_sklearn_errors(Estimator):
    """A different number of features or different column names than in fit give
    scikit-learn's usual errors."""
    X = _data(14)
    est = Estimator(random_state=0).fit(X)
    msg = (
        f"X has 2 features, but {Estimator.__name__} is expecting 3 features as input."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        est.score_samples(X[:, :2])
    est = Estimator(random_state=0).fit(pd.DataFrame(X, columns=["a", "b", "c"]))
    msg = "The feature names should match those that were passed during fit."
    with pytest.raises(ValueError, match=re.escape(msg)):
        est.score_samples(pd.DataFrame(X, columns=["a", "b", "z"]))


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_95_percent_missing_fits_and_imputes(Estimator):
    """With 95% of entries missing at random the full model still fits and every
    output is finite, observed entries unchanged."""
    X = _data(15, n_samples=400, n_features=8, missing=0.95)
    est = Estimator(random_state=0, max_iter=500).fit(X)
    for out in _outputs(est, X):
        assert np.isfinite(out).all()
    if isinstance(est, EMImputer):
        out = est.transform(X)
        observed = ~np.isnan(X[:, ~est._empty_features])
        assert_array_equal(out[observed], X[:, ~est._empty_features][observed])


# -- degenerate fits --------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_collapsed_and_vanishing_components_finish_finite(covariance_type):
    """A component started on a single outlier collapses onto it and one started far
    from all data loses all responsibility; reg_covar keeps both defined."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(60, 2)), [[50.0, 50.0]]])
    means_init = np.array([[0.0, 0.0], [1e3, -1e3], [50.0, 50.0]])
    est = EMClusterer(
        n_components=3,
        covariance_type=covariance_type,
        means_init=means_init,
        random_state=0,
    ).fit(X)
    assert est.weights_[1] < 1e-10  # responsibilities went to ~0
    assert_allclose(est.weights_[2], 1 / 61, rtol=1e-6, atol=0)  # the outlier alone
    if covariance_type != "tied":
        # Collapsed onto one point: only reg_covar is left on the diagonal.
        cov = np.asarray(est.covariances_[2])
        diag = np.diag(cov) if cov.ndim == 2 else np.atleast_1d(cov)
        assert_allclose(diag, est.reg_covar, rtol=1e-6, atol=0)
    for out in _outputs(est, X):
        assert np.isfinite(out).all()


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_non_positive_definite_covariance_names_component(covariance_type):
    """With reg_covar=0 and collapsed samples the error names the component and
    suggests increasing reg_covar, never a LinAlgError."""
    # Five distinct points, each four times: three components collapse.
    X = np.tile(np.random.default_rng(0).normal(size=(5, 2)), (4, 1))
    msg = re.escape("Fitting the mixture model failed because component ") + (
        r"\d+ " + re.escape(_ILL_DEFINED)
    )
    with pytest.raises(ValueError, match=msg):
        EMClusterer(
            n_components=3,
            covariance_type=covariance_type,
            reg_covar=0.0,
            random_state=0,
        ).fit(X)


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_max_iter_reached_warns_and_keeps_parameters(Estimator):
    """Reaching max_iter gives a ConvergenceWarning, converged_ False and the last
    (best, EM being monotone) parameters."""
    X = _data(17, n_samples=200)
    msg = "Best performing initialization did not converge."
    with pytest.warns(ConvergenceWarning, match=re.escape(msg)):
        est = Estimator(n_components=2, max_iter=3, tol=0.0, random_state=0).fit(X)
    assert est.converged_ is False
    assert est.n_iter_ == 3
    assert np.all(np.diff(est.lower_bounds_) >= 0)
    for out in _outputs(est, X):
        assert np.isfinite(out).all()


# -- faults and state -------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_pickle_round_trip_bit_identical(Estimator):
    """A pickled fitted estimator gives bit-identical outputs after loading."""
    X = _data(18)
    est = Estimator(n_components=2, random_state=0).fit(X)
    loaded = pickle.loads(pickle.dumps(est))
    _assert_same_outputs(_outputs(loaded, X), _outputs(est, X))


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_clone_refit_and_same_seed_identical(Estimator):
    """clone + refit, and a second fit with the same random_state, are identical."""
    X = _data(19)
    est = Estimator(n_components=3, n_init=2, init_params="random", random_state=3)
    est.fit(X)
    refit = clone(est).fit(X)
    again = Estimator(**est.get_params()).fit(X)
    for other in (refit, again):
        _assert_same_outputs(_outputs(other, X), _outputs(est, X))
        assert_array_equal(other.means_, est.means_)


def test_n_init_restarts_are_independent():
    """Each of the n_init restarts draws a different start from the one RNG; the
    first equals the n_init=1 fit and the best one is kept."""
    X = _data(20, n_samples=200)
    params = dict(
        n_components=3, init_params="random", max_iter=5, tol=0.0, random_state=0
    )
    buffer = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with redirect_stdout(buffer):
            multi = EMClusterer(**params, n_init=4, verbose=2).fit(X)
        single = EMClusterer(**params, n_init=1).fit(X)
    bounds = [
        float(b) for b in re.findall(r"lower bound (-?[\d.]+)\.", buffer.getvalue())
    ]
    assert len(bounds) == 4
    assert len(set(bounds)) == 4  # four different starts
    assert_allclose(bounds[0], single.lower_bound_, rtol=0, atol=1e-5)  # printed .5f
    assert multi.lower_bound_ == max(multi.lower_bound_, single.lower_bound_)
    assert_allclose(multi.lower_bound_, max(bounds), rtol=0, atol=1e-5)


# -- fuzz -------------------------------------------------------------------

# The error messages the contract documents for inputs that pass validation.
_DOCUMENTED_ERRORS = (
    "Expected at least n_components rows with an observed value",
    "Fitting the mixture model failed because",
    "EMClusterer cannot fit column(s)",
)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(1, 200),
    n_features=st.integers(1, 12),
    missing=st.floats(0.0, 0.9),
    n_components=st.integers(1, 4),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    imputer=st.booleans(),
    accelerate=st.sampled_from([None, "squarem"]),
)
def test_fuzz_documented_error_or_finite_output(
    seed,
    n_samples,
    n_features,
    missing,
    n_components,
    covariance_type,
    imputer,
    accelerate,
):
    """Random shapes, masks, scales and parameters: a documented error or finite
    output whose observed entries equal the input's."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-8, 8, size=n_features)
    X = (
        rng.normal(size=(n_samples, n_features)) * scales
        + rng.normal(size=n_features) * scales
    )
    X[rng.random(X.shape) < missing] = np.nan
    Estimator = EMImputer if imputer else EMClusterer
    est = Estimator(
        n_components=n_components,
        covariance_type=covariance_type,
        max_iter=30,
        accelerate=accelerate,
        random_state=seed % 1000,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", "Skipping features", UserWarning)
        try:
            est.fit(X)
        except ValueError as exc:
            assert str(exc).startswith(_DOCUMENTED_ERRORS), str(exc)
            return
    assert np.isfinite(est.score_samples(X)).all()
    if imputer:
        out = est.transform(X)
        assert np.isfinite(out).all()
        kept = X[:, ~est._empty_features]
        observed = ~np.isnan(kept)
        assert_array_equal(out[observed], kept[observed])
    else:
        resp = est.predict_proba(X)
        assert np.isfinite(resp).all()
        assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-10, atol=0)
