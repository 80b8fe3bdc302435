"""Array API helpers: which namespace and device an array lives in, and moves.

The one place that imports scikit-learn's vendored ``array_api_compat`` and its
array API configuration (private API, kept here as ``_validation`` keeps the
rest). The estimators follow scikit-learn's convention: with
``sklearn.set_config(array_api_dispatch=True)`` an input that is not a NumPy
array (torch, CuPy, ``array-api-strict``) is worked on in its own namespace
and on its own device, and fitted attributes and outputs follow it.
"""

import numpy as np
from sklearn import get_config
from sklearn.externals import array_api_compat
from sklearn.utils._array_api import (  # noqa: F401
    check_same_namespace,
    supported_float_dtypes,
)


def namespace(*arrays):
    """The array API namespace of ``arrays`` (NumPy's wrapped for NumPy arrays)."""
    return array_api_compat.array_namespace(*arrays)


def device(x):
    """The device ``x`` is on."""
    return array_api_compat.device(x)


def is_numpy(xp):
    """Whether ``xp`` is NumPy (or its array API wrapper)."""
    return xp is np or array_api_compat.is_numpy_namespace(xp)


def on_device(X):
    """Whether ``X`` goes the array API way: dispatch on and not a NumPy array.

    NumPy arrays (and everything that is not an array: lists, DataFrames)
    take the NumPy path whatever the configuration.
    """
    if not get_config().get("array_api_dispatch", False):
        return False
    if isinstance(X, np.ndarray) or array_api_compat.is_dask_array(X):
        return False  # (dask collections have their own path, ``_dask``)
    return array_api_compat.is_array_api_obj(X)


def host_input(X):
    """``X`` for the NumPy path when dispatch is off: arrays of other libraries
    converted by ``np.asarray`` (as ``check_array`` does), the rest unchanged.

    Raises a ValueError (saying to switch dispatch on) for arrays NumPy cannot
    read, such as torch tensors on a GPU.
    """
    if (
        isinstance(X, np.ndarray)
        or array_api_compat.is_dask_array(X)
        or not array_api_compat.is_array_api_obj(X)
    ):
        return X
    try:
        return np.asarray(X)
    except (TypeError, RuntimeError, ValueError) as exc:
        raise ValueError(
            f"X is an array of {type(X).__module__} that NumPy cannot read "
            f"({exc}). To fit it where it is, switch scikit-learn's array API "
            "dispatch on: sklearn.set_config(array_api_dispatch=True)."
        ) from exc


def to_numpy(x, dtype=np.float64):
    """A NumPy copy of array ``x`` (on the host), as ``dtype`` (None: keep it)."""
    if isinstance(x, np.ndarray):
        return x if dtype is None else x.astype(dtype, copy=False)
    xp = namespace(x)
    if hasattr(x, "get") and not hasattr(x, "cpu"):  # CuPy
        out = x.get()
    elif hasattr(x, "detach"):  # torch
        out = x.detach().cpu().numpy()
    else:
        # Other namespaces (array-api-strict): through the CPU device.
        cpu = _cpu_device(xp)
        out = np.asarray(xp.asarray(x, device=cpu) if cpu is not None else x)
    return out if dtype is None else out.astype(dtype, copy=False)


def _cpu_device(xp):
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return None
    devices = info().devices()
    return devices[0] if devices else None


def from_numpy(a, xp, device, dtype=None):
    """``a`` (NumPy, on the host) as an array of ``xp`` on ``device``."""
    a = np.ascontiguousarray(a)
    if dtype is None:
        return xp.asarray(a, device=device)
    return xp.asarray(a, dtype=dtype, device=device)


def column_any(X, test):
    """Whether ``xp.<test>(X)`` holds anywhere in each column (NumPy bool)."""
    xp = np if isinstance(X, np.ndarray) else namespace(X)
    return to_numpy(xp.any(getattr(xp, test)(X), axis=0), dtype=None)


def column_all(X, test):
    """Whether ``xp.<test>(X)`` holds everywhere in each column (NumPy bool)."""
    xp = np if isinstance(X, np.ndarray) else namespace(X)
    return to_numpy(xp.all(getattr(xp, test)(X), axis=0), dtype=None)


def observed_rows(X):
    """Whether each row of ``X`` has an observed (not NaN) entry (NumPy bool)."""
    if isinstance(X, np.ndarray):
        return ~np.isnan(X).all(axis=1)
    xp = namespace(X)
    return to_numpy(xp.any(~xp.isnan(X), axis=1), dtype=None)


def informative_rows(X, sample_weight=None):
    """Rows that inform a fit: an observed entry and a positive weight (NumPy bool).

    A row with nothing observed has likelihood 1 whatever the parameters, and
    a row of weight 0 counts as no row.
    """
    informative = observed_rows(X)
    if sample_weight is not None:
        informative &= sample_weight > 0
    return informative


def keep_rows(X, sample_weight, rows):
    """``X`` and ``sample_weight`` (or None) at the rows where ``rows`` is True."""
    if rows.all():
        return X, sample_weight
    return take(X, rows), None if sample_weight is None else sample_weight[rows]


def take(X, indices, axis=0):
    """``X`` at NumPy ``indices`` (ints or a bool mask) along ``axis``."""
    if isinstance(X, np.ndarray):
        return X[indices] if axis == 0 else X[:, indices]
    if indices.dtype == bool:
        indices = np.flatnonzero(indices)
    xp = namespace(X)
    return xp.take(X, xp.asarray(indices, device=device(X)), axis=axis)


def mean(x):
    """The mean of array ``x`` as a Python float."""
    if isinstance(x, np.ndarray):
        return float(np.mean(x))
    return float(namespace(x).mean(x))


def like(a, x):
    """NumPy (or scalar-like) ``a`` in the namespace and on the device of ``x``.

    Floats take ``x``'s dtype; NumPy ``x`` (or None) gives ``a`` unchanged.
    """
    if x is None or isinstance(x, np.ndarray):
        return a
    a = np.asarray(a)
    dtype = x.dtype if a.dtype.kind == "f" else None
    return from_numpy(a, namespace(x), device(x), dtype)


def check_host(estimator, X, method):
    """Refuse an array API input where only NumPy's path exists (ValueError)."""
    if on_device(X):
        raise ValueError(
            f"{type(estimator).__name__}.{method} works on NumPy arrays and "
            "DataFrames only; with array_api_dispatch on, it got an array of "
            f"{namespace(X).__name__}. Use fit on the whole array, or convert the "
            "batches to NumPy."
        )


def argmax(a, axis):
    """``argmax`` of array ``a`` along ``axis``, in its namespace."""
    if isinstance(a, np.ndarray) or array_api_compat.is_dask_array(a):
        return a.argmax(axis=axis)
    return namespace(a).argmax(a, axis=axis)


def exp(a):
    """``exp`` of array ``a``, in its namespace."""
    if isinstance(a, np.ndarray):
        return np.exp(a)
    return namespace(a).exp(a)
