"""DataFrames of every kind: pandas and polars in, pandas and polars out."""

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from em_sklearn import EMClusterer, EMImputer

pd = pytest.importorskip("pandas", reason="pandas is needed for DataFrame tests")

COLUMNS = ["alcohol", "ash", "hue"]


@pytest.fixture
def pl():
    """The polars module; only the polars tests need it (the others run without)."""
    return pytest.importorskip("polars", reason="polars is needed for polars tests")


def _data(seed, n_samples=60, missing=0.2):
    """Correlated data with NaN holes, and the same data as a pandas frame."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 3)) @ np.array(
        [[1.0, 0.5, 0.2], [0.0, 1.0, 0.4], [0.0, 0.0, 1.0]]
    )
    X[rng.random(X.shape) < missing] = np.nan
    X[:, 0][np.isnan(X).all(axis=1)] = 0.0  # every row keeps an observed entry
    index = pd.Index(np.arange(1000, 1000 + n_samples) * 3, name="wine_id")
    return X, pd.DataFrame(X, columns=COLUMNS, index=index)


ESTIMATORS = [
    EMImputer(random_state=0),
    EMImputer(add_indicator=True, random_state=0),
    EMClusterer(n_components=2, random_state=0),
]
IDS = ["EMImputer", "EMImputer-indicator", "EMClusterer"]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_set_output_pandas_names_values_and_index(estimator, global_random_seed):
    """transform="pandas" gives the names out, the numbers and the input index."""
    X, frame = _data(global_random_seed)
    expected = estimator.fit(X).transform(X)
    est = estimator.__class__(**estimator.get_params()).set_output(transform="pandas")
    out = est.fit(frame).transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert_array_equal(out.columns, est.get_feature_names_out())
    assert out.index.equals(frame.index)
    # Same data, same seed; only the frame conversion differs.
    assert_allclose(out.to_numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_set_output_polars_names_and_values(estimator, global_random_seed, pl):
    """transform="polars" gives a polars frame with the names out and the numbers."""
    X, frame = _data(global_random_seed)
    expected = estimator.fit(X).transform(X)
    est = estimator.__class__(**estimator.get_params()).set_output(transform="polars")
    out = est.fit(frame).transform(frame)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == est.get_feature_names_out().tolist()
    assert_allclose(out.to_numpy(), expected, rtol=1e-12, atol=1e-12)


def test_indicator_feature_names():
    """add_indicator appends missingindicator_<name> for each feature with holes."""
    X, frame = _data(0)
    frame = frame.assign(ash=frame["ash"].fillna(0.0))  # 'ash' has no hole
    est = EMImputer(add_indicator=True, random_state=0).fit(frame)
    assert est.get_feature_names_out().tolist() == COLUMNS + [
        "missingindicator_alcohol",
        "missingindicator_hue",
    ]


@pytest.mark.parametrize(
    "Estimator", [EMImputer, EMClusterer], ids=lambda c: c.__name__
)
def test_polars_input_nulls_are_missing(Estimator, global_random_seed, pl):
    """A polars frame with nulls (and NaN) gives the result of the NaN ndarray."""
    X, _ = _data(global_random_seed)
    rng = np.random.default_rng(global_random_seed)
    as_null = np.isnan(X) & (rng.random(X.shape) < 0.5)  # half null, half NaN
    frame = pl.DataFrame(
        {
            name: pl.Series(
                name,
                [
                    None if n else float(v)
                    for v, n in zip(X[:, j], as_null[:, j], strict=True)
                ],
            )
            for j, name in enumerate(COLUMNS)
        }
    )
    assert frame.null_count().sum_horizontal().item() == as_null.sum()
    est = Estimator(random_state=0).fit(frame)
    assert est.feature_names_in_.tolist() == COLUMNS
    expected = Estimator(random_state=0).fit(X).transform(X)
    assert_allclose(est.transform(frame), expected, rtol=1e-12, atol=1e-12)


def test_polars_integer_and_boolean_columns(pl):
    """Polars Int64 (with null) and Boolean columns come back with their dtypes.

    The integer column is continuous, imputed as a rounded number; the boolean
    one is binary, imputed as a boolean.
    """
    frame = pl.DataFrame(
        {
            "count": pl.Series([1, 2, None, 4, 5, 6], dtype=pl.Int64),
            "flag": pl.Series([True, False, True, None, False, True]),
            "size": [1.5, 2.5, 3.5, 4.0, None, 6.5],
        }
    )
    out = EMImputer(random_state=0).fit_transform(frame)
    assert isinstance(out, pl.DataFrame)
    assert out.schema == frame.schema
    assert out.null_count().sum_horizontal().item() == 0
    assert out["count"].to_list()[:2] == [1, 2]
    assert out["count"].to_list()[3:] == [4, 5, 6]
    assert out["flag"].to_list()[:3] == [True, False, True]


def test_polars_text_column_refused_without_categorical_features(pl):
    """With categorical_features=None a polars text column is refused by name."""
    frame = pl.DataFrame({"alcohol": [1.0, None, 3.0], "region": ["a", "b", "c"]})
    msg = (
        "EMImputer: column 'region' holds categories but is not in "
        "categorical_features"
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        EMImputer(categorical_features=None).fit(frame)


@pytest.mark.parametrize(
    "Estimator", [EMImputer, EMClusterer], ids=lambda c: c.__name__
)
def test_pandas_nullable_dtypes_and_pd_na(Estimator, global_random_seed):
    """Nullable Float64/Int64 columns with pd.NA give the result of the NaN ndarray."""
    X, frame = _data(global_random_seed)
    X[:, 2] = np.where(np.isnan(X[:, 2]), np.nan, np.round(X[:, 2] * 10))
    nullable = pd.DataFrame(
        {
            "alcohol": pd.array(frame["alcohol"], dtype="Float64"),
            "ash": pd.array(
                [pd.NA if np.isnan(v) else v for v in X[:, 1]], dtype="Float64"
            ),
            "hue": pd.array(
                [pd.NA if np.isnan(v) else int(v) for v in X[:, 2]], dtype="Int64"
            ),
        },
        index=frame.index,
    )
    est = Estimator(random_state=0).set_output(transform="pandas").fit(nullable)
    out = est.transform(nullable)
    expected = Estimator(random_state=0).fit(X).transform(X)
    if Estimator is EMImputer:
        # The Int64 column's imputations are integers (rounded).
        assert out["hue"].dtype == "Int64"
        expected[:, 2] = np.rint(expected[:, 2])
    assert out.index.equals(frame.index)
    assert_allclose(out.to_numpy(dtype=float), expected, rtol=1e-12, atol=1e-12)


def test_pandas_object_column_with_pd_na():
    """An object column holding numbers and pd.NA is numeric with a hole."""
    frame = pd.DataFrame(
        {
            "a": pd.Series([1.0, pd.NA, 3.0, 4.0], dtype=object),
            "b": [2.0, 4.0, 6.0, 8.1],
        }
    )
    out = EMImputer(random_state=0).fit_transform(frame)
    assert not np.isnan(out).any()
    assert_array_equal(out[[0, 2, 3], 0], [1.0, 3.0, 4.0])


def test_pandas_text_column_refused_without_categorical_features():
    """With categorical_features=None a pandas text column is refused by name."""
    frame = pd.DataFrame({"alcohol": [1.0, np.nan, 3.0], "region": ["a", "b", "c"]})
    msg = "EMClusterer: column 'region' holds categories but is not in"
    with pytest.raises(ValueError, match=re.escape(msg)):
        EMClusterer(categorical_features=None).fit(frame)


def test_keep_empty_features_pandas_names():
    """With keep_empty_features the empty column keeps its name and is filled with 0."""
    X, frame = _data(0)
    frame["hue"] = np.nan
    est = EMImputer(keep_empty_features=True, random_state=0)
    out = est.set_output(transform="pandas").fit(frame).transform(frame)
    assert out.columns.tolist() == COLUMNS
    assert_array_equal(out["hue"], 0.0)
