"""Input types the estimators refuse (docs/input_contract.rst): duplicate column
names, dates and times, complex numbers, polars LazyFrames; float32 overflow."""

import datetime
import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from em_sklearn import EMClusterer, EMImputer

ESTIMATORS = [EMClusterer, EMImputer]
_ids = lambda c: c.__name__  # noqa: E731


def _numeric(seed, n_samples=30, n_features=2):
    """Random finite data with a few NaN holes (every row keeps column 0)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    X[:, 1:][rng.random((n_samples, n_features - 1)) < 0.2] = np.nan
    return X


def _after_fit(est, X):
    """transform for EMImputer, predict for EMClusterer: the call after fit."""
    return est.transform(X) if isinstance(est, EMImputer) else est.predict(X)


def _assert_raises_in_fit_and_after(Estimator, bad, good, error, msg):
    """``bad`` raises ``error`` with ``msg`` in fit, and after a fit on ``good``."""
    with pytest.raises(error, match=re.escape(msg)):
        Estimator(random_state=0).fit(bad)
    est = Estimator(random_state=0).fit(good)
    with pytest.raises(error, match=re.escape(msg)):
        _after_fit(est, bad)
    with pytest.raises(error, match=re.escape(msg)):
        est.score_samples(bad)


# -- duplicate column names -------------------------------------------------


def _duplicate_string_names(X):
    return pd.DataFrame(X, columns=["a", "a"]), "'a'"


def _duplicate_string_names_non_numeric(X):
    frame = pd.DataFrame({"a": X[:, 0], "b": ["x"] * len(X)})
    return frame.set_axis(["a", "a"], axis=1), "'a'"


def _duplicate_integer_names(X):
    # What pd.concat(axis=1) of two unnamed frames gives: columns [0, 0].
    return pd.concat([pd.DataFrame(X[:, :1]), pd.DataFrame(X[:, 1:])], axis=1), "0"


def _duplicate_multiindex(X):
    columns = pd.MultiIndex.from_tuples([("wine", "ash"), ("wine", "ash")])
    return pd.DataFrame(X, columns=columns), "('wine', 'ash')"


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize(
    "make",
    [
        _duplicate_string_names,
        _duplicate_string_names_non_numeric,
        _duplicate_integer_names,
        _duplicate_multiindex,
    ],
    ids=["str", "str-non-numeric", "int-from-concat", "multiindex"],
)
def test_duplicate_column_names_raise_naming_them(Estimator, make, global_random_seed):
    """A pandas DataFrame with a column label used twice (string, integer or
    MultiIndex) raises a ValueError naming it, in fit and afterwards."""
    X = _numeric(global_random_seed)
    bad, label = make(X)
    good = pd.DataFrame(X, columns=["a", "b"])
    msg = (
        f"{Estimator.__name__} requires unique column names; column(s) {label} "
        "appear more than once. Rename them so that each column has its own name "
        "(for instance with df.columns = [...])."
    )
    _assert_raises_in_fit_and_after(Estimator, bad, good, ValueError, msg)


def test_polars_cannot_hold_duplicate_column_names():
    """Polars refuses duplicate column names itself (pl.DataFrame and horizontal
    concatenation raise DuplicateError), so no polars frame with them reaches the
    estimators."""
    pl = pytest.importorskip("polars")
    with pytest.raises(pl.exceptions.DuplicateError):
        pl.DataFrame([pl.Series("a", [1.0]), pl.Series("a", [2.0])])
    with pytest.raises(pl.exceptions.DuplicateError):
        pl.concat(
            [pl.DataFrame({"a": [1.0]}), pl.DataFrame({"a": [2.0]})],
            how="horizontal",
        )


# -- dates, times and durations -----------------------------------------------


def _numpy_dates(n, nat):
    days = np.datetime64("2024-01-01", "D") + np.arange(n)
    if nat:
        days[::4] = np.datetime64("NaT")
    return days


def _numpy_datetime64(X, nat):
    return _numpy_dates(len(X), nat).reshape(-1, 1).repeat(2, axis=1)


def _numpy_timedelta64(X, nat):
    days = _numpy_dates(len(X), nat) - np.datetime64("2024-01-01", "D")
    return days.reshape(-1, 1).repeat(2, axis=1)


def _pandas_column(values):
    def make(X):
        return pd.DataFrame({"a": X[:, 0], "d": values(len(X))})

    return make


def _polars_column(values):
    def make(X):
        pl = pytest.importorskip("polars")
        return pl.DataFrame({"a": X[:, 0]}).with_columns(values(pl, len(X)).alias("d"))

    return make


def _arrow_column(arrow_type, values):
    def make(X):
        pa = pytest.importorskip("pyarrow")
        dtype = pd.ArrowDtype(getattr(pa, arrow_type[0])(*arrow_type[1:]))
        return pd.DataFrame({"a": X[:, 0], "d": pd.Series(values(len(X)), dtype=dtype)})

    return make


def _stamps(n):
    return pd.date_range("2024-01-01", periods=n, freq="D")


DATE_CASES = {
    "numpy-datetime64-NaT": lambda X: _numpy_datetime64(X, nat=True),
    "numpy-datetime64": lambda X: _numpy_datetime64(X, nat=False),
    "numpy-timedelta64-NaT": lambda X: _numpy_timedelta64(X, nat=True),
    "numpy-timedelta64": lambda X: _numpy_timedelta64(X, nat=False),
    "pandas-datetime64": _pandas_column(_stamps),
    "pandas-datetime64-NaT": _pandas_column(lambda n: _stamps(n).insert(0, pd.NaT)[:n]),
    "pandas-datetime64-tz": _pandas_column(lambda n: _stamps(n).tz_localize("UTC")),
    "pandas-timedelta": _pandas_column(lambda n: _stamps(n) - _stamps(n)[0]),
    "pandas-period": _pandas_column(lambda n: _stamps(n).to_period("D")),
    "pandas-object-dates": _pandas_column(
        lambda n: pd.Series(list(_stamps(n).date), dtype=object)
    ),
    "polars-datetime": _polars_column(lambda pl, n: pl.lit(_stamps(n).to_numpy())),
    "polars-date": _polars_column(
        lambda pl, n: pl.Series([datetime.date(2024, 1, 1)] * n)
    ),
    "polars-duration": _polars_column(lambda pl, n: pl.duration(days=pl.int_range(n))),
    "polars-time": _polars_column(lambda pl, n: pl.lit(datetime.time(12, 30))),
    "arrow-timestamp": _arrow_column(("timestamp", "s"), _stamps),
    "arrow-timestamp-tz": _arrow_column(
        ("timestamp", "s", "UTC"), lambda n: _stamps(n).tz_localize("UTC")
    ),
    "arrow-date": _arrow_column(("date32",), lambda n: list(_stamps(n).date)),
    "arrow-time": _arrow_column(("time64", "us"), lambda n: [datetime.time(1)] * n),
    "arrow-duration": _arrow_column(
        ("duration", "s"), lambda n: _stamps(n) - _stamps(n)[0]
    ),
    "arrow-interval": _arrow_column(
        ("month_day_nano_interval",), lambda n: [(1, 2, 3)] * n
    ),
}


def _dtype_and_numeric_twin(bad, X):
    """The refused dtype as the message prints it, and numeric data shaped alike."""
    if isinstance(bad, np.ndarray):
        return bad.dtype, X
    if isinstance(bad, pd.DataFrame):
        return bad["d"].dtype, pd.DataFrame({"a": X[:, 0], "d": X[:, 1]})
    return bad.schema["d"], type(bad)({"a": X[:, 0], "d": X[:, 1]})


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize("case", list(DATE_CASES))
def test_dates_and_times_raise_naming_the_column(Estimator, case, global_random_seed):
    """Dates, times, durations and periods (NumPy, pandas, polars or Arrow, with or
    without NaT) raise a ValueError naming the column, never become numbers."""
    X = _numeric(global_random_seed)
    bad = DATE_CASES[case](X)
    dtype, good = _dtype_and_numeric_twin(bad, X)
    subject = "X holds" if isinstance(bad, np.ndarray) else "column 'd' holds"
    msg = (
        f"{Estimator.__name__} requires numeric columns; {subject} dates or times "
        f"(dtype {dtype}), not numbers. Convert them to numbers if that is what you "
        "mean (for instance days since an origin) or drop them."
    )
    _assert_raises_in_fit_and_after(Estimator, bad, good, ValueError, msg)


# -- complex numbers ----------------------------------------------------------


def _object_array_with_complex(X):
    bad = X.astype(object)
    bad[0, 1] = 1 + 2j
    return bad, "column(s) at index 1 hold", np.dtype(object)


def _pandas_object_complex(X):
    bad = pd.DataFrame({"a": X[:, 0], "c": X[:, 1].astype(object)})
    bad.loc[0, "c"] = 1 + 2j
    return bad, "column 'c' holds", np.dtype(object)


def _polars_object_complex(X):
    # Polars has no complex dtype: Python complex numbers make an Object column.
    pl = pytest.importorskip("polars")
    bad = pl.DataFrame({"a": X[:, 0]}).with_columns(
        pl.Series("c", [1 + 2j] * len(X), dtype=pl.Object)
    )
    return bad, "column 'c' holds", bad.schema["c"]


COMPLEX_CASES = {
    "numpy-complex64": lambda X: (X.astype(np.complex64), "X holds", "complex64"),
    "numpy-complex128": lambda X: (X + 1j, "X holds", "complex128"),
    "numpy-real-valued-complex128": lambda X: (
        X.astype(np.complex128),
        "X holds",
        "complex128",
    ),
    "list-of-complex": lambda X: ((X + 1j).tolist(), "X holds", "complex128"),
    "pandas-complex": lambda X: (
        pd.DataFrame({"a": X[:, 0], "c": X[:, 1] + 1j}),
        "column 'c' holds",
        "complex128",
    ),
    "pandas-real-valued-complex": lambda X: (
        pd.DataFrame({"a": X[:, 0], "c": X[:, 1].astype(np.complex64)}),
        "column 'c' holds",
        "complex64",
    ),
    "numpy-object": _object_array_with_complex,
    "pandas-object": _pandas_object_complex,
    "polars-object": _polars_object_complex,
}


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize("case", list(COMPLEX_CASES))
def test_complex_numbers_raise_naming_the_column(Estimator, case, global_random_seed):
    """Complex numbers (NumPy, pandas or object columns; even with zero imaginary
    parts) raise a ValueError naming the column, never lose their imaginary part."""
    X = _numeric(global_random_seed)
    bad, subject, dtype = COMPLEX_CASES[case](X)
    if isinstance(bad, pd.DataFrame):
        good = pd.DataFrame(X, columns=bad.columns)
    elif isinstance(bad, list | np.ndarray):
        good = X
    else:
        good = type(bad)({name: X[:, j] for j, name in enumerate(bad.columns)})
    msg = (
        f"Complex data not supported by {Estimator.__name__}; {subject} complex "
        f"numbers (dtype {dtype}). Split them into real columns (for instance real "
        "and imaginary parts) or drop them."
    )
    _assert_raises_in_fit_and_after(Estimator, bad, good, ValueError, msg)


# -- polars LazyFrame ---------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_polars_lazyframe_raises_type_error(Estimator, global_random_seed):
    """A polars LazyFrame raises a TypeError telling the user to collect it, as
    scikit-learn accepts no LazyFrame either."""
    pl = pytest.importorskip("polars")
    X = _numeric(global_random_seed)
    good = pl.DataFrame({"a": X[:, 0], "b": X[:, 1]})
    msg = (
        f"{Estimator.__name__} requires data in memory; X is a polars LazyFrame, a "
        "query not yet run. Call X.collect() first and pass the DataFrame it returns."
    )
    _assert_raises_in_fit_and_after(Estimator, good.lazy(), good, TypeError, msg)


# -- float32 overflow ---------------------------------------------------------


def test_float32_imputation_beyond_its_range_is_clipped_with_warning(
    global_random_seed,
):
    """float32 input whose imputations exceed float32's range gives finite float32
    output (clipped to its largest value) with a UserWarning, never inf."""
    rng = np.random.default_rng(global_random_seed)
    a = 1.2e38 + 4e36 * rng.normal(size=100)
    X = np.c_[a, 2.5 * a].astype(np.float32)  # every entry finite in float32
    imputer = EMImputer(random_state=0).fit(X)
    X_new = np.array([[1.4e38, np.nan], [np.nan, -3.3e38]], dtype=np.float32)
    msg = "Imputed values beyond the range of float32 were clipped"
    with pytest.warns(UserWarning, match=re.escape(msg)):
        out = imputer.transform(X_new)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out[0, 1] == np.finfo(np.float32).max  # 2.5 * 1.4e38 does not fit
    observed = ~np.isnan(X_new)
    assert_array_equal(out[observed], X_new[observed])
