"""Input conversion and checks; with ``_array_api``, the only imports of scikit-learn
private API."""

import datetime
import numbers
import sys

import numpy as np
from sklearn.base import _fit_context  # noqa: F401  (re-exported for _base)
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions  # noqa: F401
from sklearn.utils.validation import (  # noqa: F401
    _check_feature_names_in,
    _check_sample_weight,
    _num_samples,
    validate_data,
)

from ._array_api import (
    column_all,
    column_any,
    device,
    namespace,
    on_device,
    supported_float_dtypes,
    to_numpy,
)

__all__ = [
    "Interval",
    "StrOptions",
    "_fit_context",
    "_check_feature_names_in",
    "_num_samples",
    "check_X",
    "check_no_empty_columns",
    "check_sample_weight",
    "check_weights",
    "check_means",
    "check_precisions",
]

_FLOAT_DTYPES = (np.float64, np.float32)


def _column_name(estimator, X, j):
    names = getattr(X, "columns", None)
    if names is None:
        names = getattr(estimator, "feature_names_in_", None)
    return repr(names[j]) if names is not None and j < len(names) else f"at index {j}"


# Values that are dates, times or durations, not numbers (pd.Timestamp and
# pd.Timedelta subclass datetime.datetime and datetime.timedelta).
_DATE_TYPES = (
    datetime.date,
    datetime.time,
    datetime.timedelta,
    np.datetime64,
    np.timedelta64,
)


def _is_complex(value):
    return isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real)


def _is_missing_scalar(value):
    try:
        return bool(value != value)  # NaN, pd.NaT
    except (TypeError, ValueError):
        return value is getattr(sys.modules.get("pandas"), "NA", None)


def _object_values_kind(values):
    """'complex' if any value is complex, 'dates' if every value is a date or
    time (missing markers aside), None otherwise."""
    values = [v for v in values if v is not None and not _is_missing_scalar(v)]
    if any(_is_complex(v) for v in values):
        return "complex"
    if values and all(isinstance(v, _DATE_TYPES) for v in values):
        return "dates"
    return None


def _dates_error(estimator, subject, dtype):
    return ValueError(
        f"{type(estimator).__name__} requires numeric columns; {subject} dates or "
        f"times (dtype {dtype}), not numbers. Convert them to numbers if that is "
        "what you mean (for instance days since an origin) or drop them."
    )


def _complex_error(estimator, subject, dtype):
    return ValueError(
        f"Complex data not supported by {type(estimator).__name__}; {subject} "
        f"complex numbers (dtype {dtype}). Split them into real columns (for "
        "instance real and imaginary parts) or drop them."
    )


def _value_error(estimator, kind, subject, dtype):
    error = _complex_error if kind == "complex" else _dates_error
    return error(estimator, subject, dtype)


def _is_pandas_date_dtype(dtype):
    """Whether a pandas column dtype holds dates, times, durations or periods."""
    import pandas as pd

    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa  # an ArrowDtype exists only with pyarrow

        arrow_type = dtype.pyarrow_dtype
        return pa.types.is_temporal(arrow_type) or pa.types.is_interval(arrow_type)
    return getattr(dtype, "kind", None) in ("m", "M") or isinstance(
        dtype, pd.PeriodDtype
    )


def _check_unique_columns(estimator, frame):
    """Raise a ValueError naming the column labels that appear more than once."""
    columns = frame.columns
    if not columns.has_duplicates:
        return
    repeated = columns[columns.duplicated()].unique()
    repeated = ", ".join(repr(label) for label in repeated)
    raise ValueError(
        f"{type(estimator).__name__} requires unique column names; column(s) "
        f"{repeated} appear more than once. Rename them so that each column has "
        "its own name (for instance with df.columns = [...])."
    )


def _frame_to_numeric(estimator, frame):
    """Convert a pandas DataFrame to float columns, NaN for every missing marker.

    ``pd.NA``, ``None`` and the missing values of nullable ``Float64``/``Int64``
    columns become NaN; duplicate column labels, and a date, complex or other
    non-numeric column, raise a ValueError naming them.
    """
    import pandas as pd

    _check_unique_columns(estimator, frame)
    name = type(estimator).__name__
    columns = {}
    all_float32 = True
    for label, col in frame.items():
        dtype = col.dtype
        if _is_pandas_date_dtype(dtype):
            raise _dates_error(estimator, f"column {label!r} holds", dtype)
        if pd.api.types.is_complex_dtype(dtype):
            raise _complex_error(estimator, f"column {label!r} holds", dtype)
        if pd.api.types.is_bool_dtype(dtype) or (
            pd.api.types.is_numeric_dtype(dtype)
            and not isinstance(dtype, pd.CategoricalDtype)
        ):
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            all_float32 &= dtype == np.float32
        elif pd.api.types.is_object_dtype(dtype) and all(
            isinstance(v, numbers.Real) for v in col[col.notna()]
        ):
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            all_float32 = False
        else:
            kind = (
                _object_values_kind(col[col.notna()])
                if pd.api.types.is_object_dtype(dtype)
                else None
            )
            if kind is not None:
                raise _value_error(estimator, kind, f"column {label!r} holds", dtype)
            raise ValueError(
                f"{name} requires numeric columns; column {label!r} has dtype "
                f"{dtype}. Encode or drop it before imputing (for instance with a "
                "ColumnTransformer)."
            )
        columns[label] = values
    dtype = np.float32 if all_float32 and len(columns) else np.float64
    return pd.DataFrame(
        {label: v.astype(dtype, copy=False) for label, v in columns.items()},
        index=frame.index,
        columns=frame.columns,
    )


def _is_polars_frame(X):
    polars = sys.modules.get("polars")  # never imported here: only if the user did
    return polars is not None and isinstance(X, polars.DataFrame)


def _check_not_lazy(estimator, X):
    """Refuse a polars LazyFrame (a query, not data) with a TypeError."""
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(X, polars.LazyFrame):
        raise TypeError(
            f"{type(estimator).__name__} requires data in memory; X is a polars "
            "LazyFrame, a query not yet run. Call X.collect() first and pass the "
            "DataFrame it returns."
        )


def _polars_to_numeric(estimator, frame):
    """Convert a polars DataFrame to float columns, NaN for every null.

    Numeric and boolean columns are cast to float (``Float32`` stays float32
    when every column is ``Float32``); a date or other non-numeric column
    raises a ValueError naming it. The result is still a polars DataFrame, so
    that ``validate_data`` records its column names. (Polars itself refuses
    duplicate column names and has no complex dtype.)
    """
    import polars as pl

    for label, dtype in zip(frame.columns, frame.dtypes, strict=True):
        if dtype.is_temporal():
            raise _dates_error(estimator, f"column {label!r} holds", dtype)
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            kind = (
                _object_values_kind(frame[label].to_list())
                if dtype == pl.Object
                else None
            )
            if kind is not None:
                raise _value_error(estimator, kind, f"column {label!r} holds", dtype)
            raise ValueError(
                f"{type(estimator).__name__} requires numeric columns; column "
                f"{label!r} has dtype {dtype}. Encode or drop it before imputing "
                "(for instance with a ColumnTransformer)."
            )
    all_float32 = len(frame.columns) > 0 and all(d == pl.Float32 for d in frame.dtypes)
    dtype = pl.Float32 if all_float32 else pl.Float64
    return frame.select(pl.all().cast(dtype).fill_null(float("nan")))


def _check_array_values(estimator, X):
    """Refuse an array (or nested list) of dates, times or complex numbers.

    Such arrays convert to float without error (dates as integer counts, NaT
    as an observed -9.2e18) or with an unhelpful one, so they are checked
    before ``validate_data``: the whole dtype, or each column of an object
    array.
    """
    if isinstance(X, list | tuple):
        try:
            X = np.asarray(X)
        except (ValueError, TypeError):
            return  # ragged: validate_data says so
    dtype = getattr(X, "dtype", None)
    if not isinstance(dtype, np.dtype):
        return
    if dtype.kind in "mM":
        raise _dates_error(estimator, "X holds", dtype)
    if dtype.kind == "c":
        raise _complex_error(estimator, "X holds", dtype)
    if dtype.kind != "O" or np.ndim(X) != 2:
        return
    X = np.asarray(X)
    kinds = [_object_values_kind(X[:, j]) for j in range(X.shape[1])]
    for kind in ("complex", "dates"):
        bad = [j for j, k in enumerate(kinds) if k == kind]
        if bad:
            cols = ", ".join(_column_name(estimator, X, j) for j in bad)
            raise _value_error(estimator, kind, f"column(s) {cols} hold", dtype)


def check_X(estimator, X, *, reset):
    """Validate ``X`` for ``estimator`` and return it as a float ndarray with NaN.

    Parameters
    ----------
    estimator : estimator instance
        Receives ``n_features_in_`` and ``feature_names_in_`` when ``reset``.
    X : array-like or DataFrame of shape (n_samples, n_features)
    reset : bool
        True in ``fit``, False afterwards (checks the features match).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64 or float32
        A new array or the input itself; callers must not write into it.

    Raises
    ------
    ValueError
        For duplicate column names, non-numeric (date, complex, string...)
        columns or infinite values, naming the columns.
    TypeError
        For sparse matrices and polars LazyFrames.
    """
    _check_not_lazy(estimator, X)
    if on_device(X):
        X_checked = _check_device_X(estimator, X, reset)
        _check_finite(estimator, X, column_any(X_checked, "isinf"))
        return X_checked
    if hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc"):
        X = _frame_to_numeric(estimator, X)
    elif _is_polars_frame(X):
        X = _polars_to_numeric(estimator, X)
    else:
        _check_array_values(estimator, X)
    try:
        X_checked = validate_data(
            estimator, X, reset=reset, dtype=_FLOAT_DTYPES, ensure_all_finite=False
        )
    except ValueError as exc:
        if "could not convert" not in str(exc):
            raise
        raise ValueError(_non_numeric_message(estimator, X, exc)) from exc
    _check_finite(estimator, X, np.isinf(X_checked).any(axis=0))
    return X_checked


def _check_finite(estimator, X, infinite):
    """Raise a ValueError naming the columns where ``infinite`` is True."""
    if infinite.any():
        columns = np.flatnonzero(infinite)
        cols = ", ".join(_column_name(estimator, X, j) for j in columns)
        raise ValueError(
            f"Input X contains infinity in column(s) {cols}. NaN is the only "
            "missing-value marker; replace infinite values by NaN (to impute them) "
            "or by finite values."
        )


def _check_device_X(estimator, X, reset):
    """``check_X`` for an array of another array API namespace (``_array_api``).

    The array stays in its namespace and on its device: integers become the
    device's widest float dtype, float64 and float32 are kept.
    """
    return validate_data(
        estimator,
        X,
        reset=reset,
        dtype=supported_float_dtypes(namespace(X), device(X)),
        ensure_all_finite=False,
    )


def check_no_empty_columns(estimator, X):
    """Raise a ValueError naming the columns of ``X`` with no observed value.

    Parameters
    ----------
    estimator : estimator instance
        Fitted on ``X`` (its ``feature_names_in_`` name the columns).
    X : ndarray of shape (n_samples, n_features)
        Validated data, NaN for missing entries.
    """
    empty = column_all(X, "isnan")
    if empty.any():
        cols = ", ".join(
            _column_name(estimator, X, j) for j in np.flatnonzero(empty)
        )
        raise ValueError(
            f"{type(estimator).__name__} cannot fit column(s) {cols}: they have no "
            "observed value, so their means and variances are undetermined. Drop "
            "them before fitting (EMImputer drops such columns with a warning)."
        )


def check_sample_weight(sample_weight, X):
    """Validate ``sample_weight`` for ``X`` and return a float64 copy, or None.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,), float or None
        Non-negative, finite weights; a scalar weights every row alike.
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,) or None
        None when not given or 1 on every row (the unweighted fit).

    Raises
    ------
    ValueError
        For a wrong shape, negative or non-finite weights, or weights that are
        zero on every row.
    """
    if sample_weight is None:
        return None
    if on_device(sample_weight):
        sample_weight = to_numpy(sample_weight)
    if not isinstance(X, np.ndarray):
        X = np.empty((X.shape[0], 0))  # (only its number of rows is read)
    sample_weight = _check_sample_weight(
        sample_weight, X, dtype=np.float64, copy=True, ensure_non_negative=True
    )
    if not sample_weight.any():
        raise ValueError(
            "sample_weight is zero on every row: at least one row needs a positive "
            "weight to fit anything."
        )
    return None if np.all(sample_weight == 1) else sample_weight


def _non_numeric_message(estimator, X, exc):
    arr = np.asarray(X, dtype=object)
    bad = [
        j for j in range(arr.shape[1])
        if not all(isinstance(v, numbers.Real | type(None)) for v in arr[:, j])
    ] if arr.ndim == 2 else []
    where = ", ".join(_column_name(estimator, X, j) for j in bad) or "?"
    return (
        f"{type(estimator).__name__} requires numeric columns; column(s) {where} "
        f"hold non-numeric values ({exc}). Encode or drop them before fitting "
        "(for instance with a ColumnTransformer)."
    )


def _check_shape(param, expected, name):
    """Check an initial array's shape (before any other check, to name it)."""
    shape = tuple(param.shape) if hasattr(param, "shape") else np.shape(param)
    if shape != expected:
        raise ValueError(
            f"The parameter {name!r} should have the shape of {expected}, "
            f"but got {shape}."
        )


def check_weights(weights, n_components):
    """Check user ``weights_init`` and return it as float64.

    Parameters
    ----------
    weights : array-like of shape (n_components,)
    n_components : int

    Returns
    -------
    weights : ndarray of shape (n_components,)
    """
    _check_shape(weights, (n_components,), "weights_init")
    weights = _host(weights)
    # A float32 fit's weights_ sum to 1 to float32's rounding only.
    single = getattr(weights, "dtype", None) == np.float32
    weights = check_array(weights, dtype=np.float64, ensure_2d=False, copy=True)
    if weights.min() < 0.0 or weights.max() > 1.0:
        raise ValueError(
            "The parameter 'weights_init' should be in the range [0, 1], but got "
            f"max value {weights.max():.5f}, min value {weights.min():.5f}."
        )
    if not np.isclose(weights.sum(), 1.0, rtol=0.0, atol=1e-6 if single else 1e-8):
        raise ValueError(
            "The parameter 'weights_init' should be normalized, but got "
            f"sum(weights) = {weights.sum():.5f}."
        )
    return weights / weights.sum() if single else weights


def _host(values):
    """Initial values given as arrays of another array API library, on the host."""
    if on_device(values):
        return to_numpy(values, dtype=None)
    return values


def check_means(means, n_components, n_features):
    """Check user ``means_init`` and return it as float64.

    Returns
    -------
    means : ndarray of shape (n_components, n_features)
    """
    _check_shape(means, (n_components, n_features), "means_init")
    means = check_array(_host(means), dtype=np.float64, ensure_2d=False, copy=True)
    return means


def check_precisions(precisions, covariance_type, n_components, n_features):
    """Check user ``precisions_init`` (shape, symmetry, positive definiteness).

    Returns
    -------
    precisions : ndarray
        ``(n_components, n_features, n_features)`` if 'full',
        ``(n_features, n_features)`` if 'tied', ``(n_components, n_features)``
        if 'diag', ``(n_components,)`` if 'spherical'.
    """
    expected = {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]
    _check_shape(precisions, expected, "precisions_init")
    precisions = check_array(
        _host(precisions),
        dtype=np.float64,
        ensure_2d=False,
        allow_nd=covariance_type == "full",
        copy=True,
    )
    if covariance_type in ("diag", "spherical"):
        if np.any(precisions <= 0.0):
            raise ValueError(f"'{covariance_type} precision' should be positive.")
        return precisions
    stacked = precisions.reshape(-1, n_features, n_features)
    for k, prec in enumerate(stacked):
        if not (np.allclose(prec, prec.T) and np.all(np.linalg.eigvalsh(prec) > 0.0)):
            raise ValueError(
                f"'{covariance_type} precision' should be symmetric, "
                f"positive-definite (component {k} is not)."
            )
    return precisions
