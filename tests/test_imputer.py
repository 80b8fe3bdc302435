"""EMImputer: what transform returns, feature handling, pandas and pipelines."""

import re

import numpy as np
import pandas as pd
import pytest
from _helpers import full_covariances
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline

from em_sklearn import EMClusterer, EMImputer
from em_sklearn._gaussian import COVARIANCE_TYPES

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
EMPTY_MSG = "Skipping features without any observed values"


def _correlated(rng, n_samples=200, n_features=4):
    """Correlated data from two shifted Gaussian clusters, columns of unequal scale."""
    a = rng.normal(size=(n_features, n_features))
    X = rng.standard_normal((n_samples, n_features)) @ a
    X[: n_samples // 2] += 4.0
    return X * np.linspace(1.0, 3.0, n_features)


def _mcar(rng, X, fraction=0.2):
    """Return a copy of X with each entry missing (MCAR) with probability `fraction`."""
    X = X.copy()
    X[rng.random(X.shape) < fraction] = np.nan
    return X


def _full_covariance(imputer, k):
    """Component k's covariance as an (n_features, n_features) matrix, any type."""
    return full_covariances(
        imputer.covariance_type, imputer.covariances_, *imputer.means_.shape
    )[k]


@pytest.mark.parametrize("n_components", [1, 2, 3])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_observed_entries_unchanged_and_output_finite(
    covariance_type, n_components, global_random_seed
):
    """transform returns observed entries bit for bit and fills every missing entry with
    a finite number.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _correlated(rng))
    X[3] = np.nan  # a row with nothing observed
    X_new = _mcar(rng, _correlated(rng, n_samples=50), 0.5)
    imputer = EMImputer(
        n_components=n_components, covariance_type=covariance_type, random_state=0
    ).fit(X)
    for data in (X, X_new):
        out = imputer.transform(data)
        observed = ~np.isnan(data)
        assert out.shape == data.shape
        assert out.dtype == data.dtype
        assert np.array_equal(out[observed], data[observed])
        assert np.isfinite(out).all()
    assert np.array_equal(imputer.fit_transform(X)[~np.isnan(X)], X[~np.isnan(X)])


@pytest.mark.parametrize("sample_posterior", [False, True])
@pytest.mark.parametrize(
    "empty_row",
    [
        False,  # fit_transform reuses the rows prepared for the fit
        True,  # a row with nothing observed is left out of the fit: prepared again
    ],
)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_transform_equals_fit_then_transform(
    covariance_type, empty_row, sample_posterior, global_random_seed
):
    """fit_transform(X) equals fit(X).transform(X) bit for bit."""
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _correlated(rng))
    X[np.isnan(X).all(axis=1), 0] = 1.0
    if empty_row:
        X[3] = np.nan
    params = dict(
        n_components=2,
        covariance_type=covariance_type,
        sample_posterior=sample_posterior,
        add_indicator=True,
        random_state=0,
    )
    assert_array_equal(
        EMImputer(**params).fit_transform(X), EMImputer(**params).fit(X).transform(X)
    )


@pytest.mark.parametrize("empty_feature", [False, True])
def test_result_does_not_depend_on_memory_layout(empty_feature, global_random_seed):
    """C- and Fortran-ordered copies of X are imputed bit for bit alike."""
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _correlated(rng))
    if empty_feature:
        X = np.column_stack([X, np.full(len(X), np.nan)])
    imputer = EMImputer(n_components=2, keep_empty_features=True, random_state=0)
    assert_array_equal(
        imputer.fit_transform(np.ascontiguousarray(X)),
        imputer.fit_transform(np.asfortranarray(X)),
    )


def test_transform_does_not_modify_input():
    """transform leaves its input array untouched (NaN included)."""
    rng = np.random.default_rng(0)
    X = _mcar(rng, _correlated(rng))
    X_copy = X.copy()
    EMImputer(random_state=0).fit(X).transform(X)
    assert_array_equal(X, X_copy)  # NaN compare equal in assert_array_equal


ORIGIN_X = np.array([2, np.nan, 6, 8, np.nan, 10, 12, 14, np.nan, 18]).reshape(-1, 1)


@pytest.mark.parametrize("random_state", [0, 1, 2])
@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_origin_example_imputes_observed_mean(init_params, random_state):
    """In 1-D every missing entry is imputed with the mean of the observed values, 10.0.

    Derivation. In 1-D a missing entry is a row with nothing observed, so its
    responsibilities are the weights ``pi_k`` and its imputation is the mixture
    mean ``sum_k pi_k mu_k``. Rows with nothing observed do not change the fit
    (their observed-data likelihood is 1 whatever the parameters), so the
    M-step only sees the ``n_obs`` observed rows and gives
    ``pi_k = (1/n_obs) sum_i r_ik`` and ``mu_k = sum_i r_ik x_i / sum_i r_ik``.
    Hence ``sum_k pi_k mu_k = (1/n_obs) sum_i x_i sum_k r_ik = (1/n_obs) sum_i
    x_i``, because ``sum_k r_ik = 1``: the mean of the observed values
    ``(2 + 6 + 8 + 10 + 12 + 14 + 18) / 7 = 70 / 7 = 10``. This holds at any EM
    fixed point (indeed after any M-step), whichever local optimum or saddle
    EM reached and however the components are labelled.
    """
    imputer = EMImputer(
        n_components=2,
        init_params=init_params,
        random_state=random_state,
        tol=1e-12,
        max_iter=10_000,
    )
    out = imputer.fit_transform(ORIGIN_X)
    # Slow linear convergence from some random starts: check the settings
    # really converged rather than relying on the identity holding anyway.
    assert imputer.converged_
    missing = np.isnan(ORIGIN_X[:, 0])
    # The identity is exact algebra; only rounding (and the 10 * eps added to
    # nk) separates the result from 10: ~1e-14.
    assert_allclose(out[missing, 0], 10.0, rtol=0, atol=1e-6)
    assert_array_equal(out[~missing, 0], ORIGIN_X[~missing, 0])
    assert_allclose(imputer.weights_ @ imputer.means_[:, 0], 10.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n_components", [1, 3])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_row_with_nothing_observed_gets_mixture_mean(
    covariance_type, n_components, global_random_seed
):
    """A row with nothing observed is imputed with the mixture mean sum_k weights_k
    means_k.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _correlated(rng))
    imputer = EMImputer(
        n_components=n_components, covariance_type=covariance_type, random_state=0
    ).fit(X)
    out = imputer.transform(np.full((3, X.shape[1]), np.nan))
    expected = imputer.weights_ @ imputer.means_
    # The responsibilities of such a row should be the weights exactly; they
    # currently carry a cond(S) * eps error from log det S + log det P_mm (~5e-11
    # for seed 4, 'full', 3 components), which 1e-9 tolerates. The exactness
    # itself is tested in test_clusterer.py::test_row_with_nothing_observed.
    assert_allclose(out, np.tile(expected, (3, 1)), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_single_component_imputation_is_regression_prediction(
    covariance_type, global_random_seed
):
    """With one component, a missing entry is mu_m + S_mo S_oo^-1 (x_o - mu_o) from the
    fitted means_ and covariances_.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _correlated(rng)
    n_samples, n_features = X.shape
    missing_col = rng.integers(0, n_features, n_samples // 2)
    rows = np.arange(n_samples // 2)
    X[rows, missing_col] = np.nan
    imputer = EMImputer(covariance_type=covariance_type, tol=1e-8, max_iter=1000).fit(X)
    out = imputer.transform(X)
    mu = imputer.means_[0]
    S = _full_covariance(imputer, 0)
    for i, m in zip(rows, missing_col, strict=True):
        o = np.arange(n_features) != m
        expected = mu[m] + S[m, o] @ np.linalg.solve(S[np.ix_(o, o)], X[i, o] - mu[o])
        # Two ways to solve the same well-conditioned system: rounding only.
        assert_allclose(out[i, m], expected, rtol=1e-9, atol=1e-9)
    # Complete rows come back unchanged.
    assert_array_equal(out[n_samples // 2 :], X[n_samples // 2 :])


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_diagonal_single_component_imputes_column_mean(
    covariance_type, global_random_seed
):
    """With one diagonal component the observed entries say nothing about the missing
    ones: imputation is means_.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _correlated(rng))
    imputer = EMImputer(covariance_type=covariance_type, random_state=0).fit(X)
    out = imputer.transform(X)
    missing = np.isnan(X)
    expected = np.broadcast_to(imputer.means_[0], X.shape)
    # r = 1 exactly for a single component: rounding only.
    assert_allclose(out[missing], expected[missing], rtol=1e-12, atol=1e-12)


def _frame_with_partial_missing(rng):
    X = _correlated(rng, n_features=3)
    X[rng.random(len(X)) < 0.2, 0] = np.nan
    X[rng.random(len(X)) < 0.3, 2] = np.nan
    return pd.DataFrame(X, columns=["a", "b", "c"])


def test_add_indicator_columns_and_names(global_random_seed):
    """add_indicator appends one indicator per feature missing at fit, named
    missingindicator_<name>.
    """
    rng = np.random.default_rng(global_random_seed)
    frame = _frame_with_partial_missing(rng)
    imputer = EMImputer(add_indicator=True, random_state=0).fit(frame)
    out = imputer.transform(frame)
    names = imputer.get_feature_names_out()
    assert_array_equal(
        names, ["a", "b", "c", "missingindicator_a", "missingindicator_c"]
    )
    assert out.shape == (len(frame), 5)
    X = frame.to_numpy()
    assert_array_equal(out[:, 3:], np.isnan(X[:, [0, 2]]).astype(float))
    assert_array_equal(
        out[:, :3], EMImputer(random_state=0).fit(frame).transform(frame)
    )
    # A feature complete at fit but missing later is imputed without a new column.
    frame_new = frame.copy()
    frame_new.loc[0, "b"] = np.nan
    out_new = imputer.transform(frame_new)
    assert out_new.shape == (len(frame), 5)
    assert np.isfinite(out_new).all()


def test_add_indicator_off_has_no_indicator():
    """Without add_indicator there is no indicator_ and no extra column."""
    rng = np.random.default_rng(0)
    frame = _frame_with_partial_missing(rng)
    imputer = EMImputer(random_state=0).fit(frame)
    assert imputer.indicator_ is None
    assert_array_equal(imputer.get_feature_names_out(), ["a", "b", "c"])


def _with_empty_column(rng):
    X = _mcar(rng, _correlated(rng, n_features=3))
    X[:, 1] = np.nan
    return X


@pytest.mark.parametrize("add_indicator", [False, True])
def test_empty_feature_dropped_with_warning(add_indicator, global_random_seed):
    """By default a feature with no observed value is dropped, with a UserWarning naming
    it; names agree with the output.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _with_empty_column(rng)
    imputer = EMImputer(add_indicator=add_indicator, random_state=0)
    with pytest.warns(UserWarning, match=re.escape(f"{EMPTY_MSG}: ['x1']")):
        out = imputer.fit_transform(X)
    names = imputer.get_feature_names_out()
    assert out.shape[1] == len(names)
    expected = ["x0", "x2"]
    if add_indicator:
        expected += [
            "missingindicator_x0",
            "missingindicator_x1",
            "missingindicator_x2",
        ]
    assert_array_equal(names, expected)
    observed = ~np.isnan(X[:, [0, 2]])
    assert np.array_equal(out[:, :2][observed], X[:, [0, 2]][observed])
    assert np.isfinite(out).all()
    assert imputer.means_.shape == (1, 2)


def test_empty_feature_warning_names_dataframe_column():
    """The empty-feature warning names the DataFrame column."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(_with_empty_column(rng), columns=["a", "b", "c"])
    with pytest.warns(UserWarning, match=re.escape(f"{EMPTY_MSG}: ['b']")):
        EMImputer(random_state=0).fit(frame)


@pytest.mark.parametrize("add_indicator", [False, True])
def test_keep_empty_features_fills_with_zero(add_indicator, global_random_seed):
    """With keep_empty_features=True the empty feature is kept, filled with 0, without a
    warning; names agree.
    """
    rng = np.random.default_rng(global_random_seed)
    X = _with_empty_column(rng)
    imputer = EMImputer(
        keep_empty_features=True, add_indicator=add_indicator, random_state=0
    )
    out = imputer.fit_transform(X)  # warnings are errors: none expected
    names = imputer.get_feature_names_out()
    assert out.shape[1] == len(names)
    expected = ["x0", "x1", "x2"]
    if add_indicator:
        expected += [
            "missingindicator_x0",
            "missingindicator_x1",
            "missingindicator_x2",
        ]
    assert_array_equal(names, expected)
    assert_array_equal(out[:, 1], 0.0)
    # The other columns are what the imputer gives without the empty column.
    with pytest.warns(UserWarning, match=EMPTY_MSG):
        dropped = EMImputer(random_state=0).fit_transform(X)
    assert_array_equal(out[:, [0, 2]], dropped)


def test_keep_empty_features_keeps_later_observed_values():
    """A kept empty feature observed at transform time returns its observed values
    unchanged (only missing entries get 0), as SimpleImputer does.
    """
    rng = np.random.default_rng(0)
    X = _with_empty_column(rng)
    imputer = EMImputer(keep_empty_features=True, random_state=0).fit(X)
    X_new = np.array([[1.0, 5.0, 2.0], [1.0, np.nan, 2.0]])
    out = imputer.transform(X_new)
    assert out[0, 1] == 5.0
    assert out[1, 1] == 0.0


def test_set_output_pandas():
    """set_output(transform='pandas') returns a DataFrame with get_feature_names_out
    columns and the input index.
    """
    rng = np.random.default_rng(0)
    frame = _frame_with_partial_missing(rng)
    frame.index = frame.index + 100
    imputer = EMImputer(add_indicator=True, random_state=0).set_output(
        transform="pandas"
    )
    out = imputer.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert_array_equal(out.columns, imputer.get_feature_names_out())
    assert_array_equal(out.index, frame.index)
    assert not out.isna().any().any()
    out2 = imputer.transform(frame)
    assert isinstance(out2, pd.DataFrame)
    pd.testing.assert_frame_equal(out, out2)
    # On a NumPy input the columns are x0, x1, ...
    out_np = (
        EMImputer(random_state=0)
        .set_output(transform="pandas")
        .fit_transform(frame.to_numpy())
    )
    assert list(out_np.columns) == ["x0", "x1", "x2"]


def test_dataframe_missing_markers():
    """pd.NA, None and nullable Float64/Int64 missing values count as missing and are
    imputed; feature_names_in_ is set.
    """
    rng = np.random.default_rng(0)
    X = _correlated(rng, n_features=4)
    X[:, 3] = np.round(X[:, 3])
    missing = rng.random(X.shape) < 0.2

    def with_marker(j, marker, cast=float):
        return [
            marker if m else cast(v)
            for m, v in zip(missing[:, j], X[:, j], strict=True)
        ]

    frame = pd.DataFrame(
        {
            "plain": np.where(missing[:, 0], np.nan, X[:, 0]),
            "float64_na": pd.array(with_marker(1, pd.NA), dtype="Float64"),
            "object_none": pd.Series(with_marker(2, None), dtype=object),
            "int64_na": pd.array(with_marker(3, pd.NA, int), dtype="Int64"),
        }
    )
    assert frame.dtypes.astype(str).tolist() == [
        "float64",
        "Float64",
        "object",
        "Int64",
    ]
    imputer = EMImputer(random_state=0).fit(frame)
    assert_array_equal(imputer.feature_names_in_, frame.columns)
    assert imputer.n_features_in_ == 4
    out = imputer.transform(frame)
    # The Int64 column makes the output a frame with the input's dtypes.
    assert out.dtypes.to_dict() == frame.dtypes.to_dict()
    out = out.to_numpy(dtype=np.float64)
    assert np.isfinite(out).all()
    X_nan = np.where(missing, np.nan, X)
    assert_array_equal(out[~missing], X[~missing])
    # The same as imputing the equivalent float array (fitted without names),
    # the Int64 column's imputations rounded to integers.
    expected = EMImputer(random_state=0).fit(X_nan).transform(X_nan)
    expected[:, 3] = np.rint(expected[:, 3])
    assert_array_equal(out, expected)


def test_string_column_refused_without_categorical_features():
    """With categorical_features=None a text column raises naming the column."""
    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "city": ["x", "y", "z", "w"]})
    msg = "EMImputer: column 'city' holds categories but is not in categorical_features"
    with pytest.raises(ValueError, match=re.escape(msg)):
        EMImputer(categorical_features=None).fit(frame)


def test_string_values_in_array_refused_without_categorical_features():
    """A NumPy object array of text with categorical_features=None names the column."""
    X = np.array([[1.0, "a"], [2.0, "b"], [3.0, "c"]], dtype=object)
    msg = "EMImputer: column 1 holds categories but is not in categorical_features"
    with pytest.raises(ValueError, match=re.escape(msg)):
        EMImputer(categorical_features=None).fit(X)


@pytest.mark.parametrize("where", ["fit", "transform"])
def test_infinite_value_error_names_column(where):
    """An infinite value raises a ValueError naming the column, in fit and transform."""
    frame = pd.DataFrame(
        {"a": [1.0, 2.0, np.nan, 4.0, 5.0], "b": [1.0, 3.0, 2.0, 5.0, 4.0]}
    )
    bad = frame.copy()
    bad.loc[1, "b"] = np.inf
    msg = "Input X contains infinity in column(s) 'b'."
    with pytest.raises(ValueError, match=re.escape(msg)):
        if where == "fit":
            EMImputer().fit(bad)
        else:
            EMImputer().fit(frame).transform(bad)


def _classification(seed):
    X, y = make_classification(
        n_samples=200, n_features=5, n_informative=3, n_redundant=1, random_state=seed
    )
    rng = np.random.default_rng(seed)
    return _mcar(rng, X, 0.2), y


def test_grid_search_over_pipeline(global_random_seed):
    """EMImputer works inside Pipeline + GridSearchCV on n_components and the pipeline
    predicts.
    """
    X, y = _classification(global_random_seed)
    pipe = Pipeline(
        [
            ("emimputer", EMImputer(random_state=0)),
            ("logisticregression", LogisticRegression()),
        ]
    )
    search = GridSearchCV(pipe, {"emimputer__n_components": [1, 2]}, cv=3).fit(X, y)
    assert search.best_params_["emimputer__n_components"] in (1, 2)
    predictions = search.predict(X)
    assert predictions.shape == y.shape
    assert set(np.unique(predictions)) <= {0, 1}
    # A learnable problem: far better than chance even with 20% missing.
    assert search.score(X, y) > 0.6


def test_make_pipeline():
    """make_pipeline(EMImputer(), LogisticRegression()) fits and predicts on data with
    NaN.
    """
    X, y = _classification(0)
    pipe = make_pipeline(
        EMImputer(n_components=2, random_state=0), LogisticRegression()
    )
    pipe.fit(X, y)
    assert pipe.predict(X).shape == y.shape
    assert "emimputer" in pipe.named_steps


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_is_mean_of_score_samples(covariance_type, global_random_seed):
    """score is the mean of score_samples, which equals EMClusterer's for the same
    parameters (the imputer's, in original units).
    """
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _correlated(rng))
    params = dict(n_components=2, covariance_type=covariance_type, random_state=0)
    imputer = EMImputer(**params).fit(X)
    samples = imputer.score_samples(X)
    assert samples.shape == (X.shape[0],)
    assert np.isfinite(samples).all()
    # np.mean of the same array: rounding only.
    assert_allclose(imputer.score(X), samples.mean(), rtol=1e-12, atol=0)
    # EMImputer fits on standardised columns (its Notes), so its fit differs from
    # EMClusterer's; a clusterer holding the imputer's parameters (max_iter=0
    # keeps the initial values) must give the same log-likelihoods.
    clusterer = EMClusterer(
        **params,
        max_iter=0,
        weights_init=imputer.weights_,
        means_init=imputer.means_,
        precisions_init=imputer.precisions_,
    ).fit(X)
    # Precisions -> Cholesky -> covariances round trip: rounding only.
    assert_allclose(samples, clusterer.score_samples(X), rtol=1e-9, atol=1e-9)


def test_score_ignores_dropped_empty_feature():
    """With an empty feature dropped, score_samples uses the remaining features only."""
    rng = np.random.default_rng(0)
    X = _with_empty_column(rng)
    with pytest.warns(UserWarning, match=EMPTY_MSG):
        imputer = EMImputer(random_state=0).fit(X)
    reduced = EMImputer(random_state=0).fit(X[:, [0, 2]])
    # Same data after dropping: same fit, same log-likelihoods.
    assert_allclose(
        imputer.score_samples(X),
        reduced.score_samples(X[:, [0, 2]]),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_in_float32_out(covariance_type, global_random_seed):
    """float32 input gives float32 output, observed entries unchanged bit for bit."""
    rng = np.random.default_rng(global_random_seed)
    X = _mcar(rng, _correlated(rng)).astype(np.float32)
    imputer = EMImputer(n_components=2, covariance_type=covariance_type, random_state=0)
    out = imputer.fit_transform(X)
    assert out.dtype == np.float32
    observed = ~np.isnan(X)
    assert np.array_equal(out[observed], X[observed])
    assert np.isfinite(out).all()
    # The model runs in float64: the float32 output is the float64 result rounded.
    out64 = (
        EMImputer(n_components=2, covariance_type=covariance_type, random_state=0)
        .fit(X.astype(np.float64))
        .transform(X.astype(np.float64))
    )
    assert_allclose(out, out64, rtol=1e-6, atol=1e-5)


def test_float32_dataframe_stays_float32():
    """A DataFrame whose columns are all float32 gives float32 output."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(_mcar(rng, _correlated(rng, n_features=3)).astype(np.float32))
    frame.columns = ["a", "b", "c"]
    out = EMImputer(random_state=0).fit_transform(frame)
    assert out.dtype == np.float32
