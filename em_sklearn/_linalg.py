"""Numerical primitives: precision Cholesky factors, log-determinants, conversions."""

import functools

import numpy as np
from scipy import linalg
from threadpoolctl import ThreadpoolController

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

_THREADPOOLS = []


def single_blas_thread():
    """Return a context manager that limits BLAS to one thread.

    The E-step's matrix products are small (``n_features`` wide) and run
    between NumPy element-wise passes; on a 2-core machine two OpenBLAS
    threads made an EM iteration several times slower (benchmarks/RESULTS.md).
    The controller is created once (about 1 ms); entering the limit costs
    about 10 microseconds.
    """
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api="blas")


_ILL_DEFINED = (
    "Fitting the mixture model failed because {what} has an ill-defined "
    "covariance (for instance caused by singleton or collapsed samples, or by "
    "a component estimated from few observed values). Try to decrease the "
    "number of components, increase reg_covar, set prior='default' (MAP "
    "estimation), or scale the input data."
)


def compute_precision_cholesky(covariances, covariance_type):
    """Compute the Cholesky factor of the precision of each covariance.

    The factor ``U`` satisfies ``precision = U @ U.T`` (as in scikit-learn's
    ``precisions_cholesky_``).

    Parameters
    ----------
    covariances : ndarray
        Shape ``(n_components, n_features, n_features)`` if 'full',
        ``(n_features, n_features)`` if 'tied', ``(n_components, n_features)``
        if 'diag', ``(n_components,)`` if 'spherical'.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    precisions_cholesky : ndarray of the same shape as ``covariances``.

    Raises
    ------
    ValueError
        If a covariance is not positive definite; the message names the component.
    """
    if covariance_type in ("diag", "spherical"):
        bad = np.nonzero(~(covariances > 0.0).reshape(len(covariances), -1).all(1))[0]
        if bad.size:
            raise ValueError(_ILL_DEFINED.format(what=f"component {bad[0]}"))
        return 1.0 / np.sqrt(covariances)
    stacked = covariances[np.newaxis] if covariance_type == "tied" else covariances
    # A collapsed component can turn the statistics into NaN or inf.
    bad = np.nonzero(~np.isfinite(stacked).reshape(len(stacked), -1).all(1))[0]
    if bad.size:
        what = "the tied covariance" if covariance_type == "tied" else (
            f"component {bad[0]}"
        )
        raise ValueError(_ILL_DEFINED.format(what=what))
    n_features = stacked.shape[-1]
    eye = np.eye(n_features)
    out = np.empty_like(stacked)
    for k, covariance in enumerate(stacked):
        try:
            cov_chol = linalg.cholesky(covariance, lower=True)
        except linalg.LinAlgError:
            what = "the tied covariance" if covariance_type == "tied" else (
                f"component {k}"
            )
            raise ValueError(_ILL_DEFINED.format(what=what)) from None
        out[k] = linalg.solve_triangular(cov_chol, eye, lower=True).T
    return out[0] if covariance_type == "tied" else out


def compute_precision_cholesky_from_precisions(precisions, covariance_type):
    """Compute an upper Cholesky factor ``U`` with ``precision = U @ U.T``.

    Parameters
    ----------
    precisions : ndarray
        Precisions in the shape of ``covariance_type`` (see
        :func:`compute_precision_cholesky`).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    precisions_cholesky : ndarray of the same shape.
    """
    if covariance_type in ("diag", "spherical"):
        return np.sqrt(precisions)
    # Reversing rows and columns turns a lower factor into the upper one.
    flipped = precisions[..., ::-1, ::-1]
    return np.linalg.cholesky(flipped)[..., ::-1, ::-1].copy()


def compute_precisions(precisions_cholesky, covariance_type):
    """Compute precisions ``U @ U.T`` from their Cholesky factors.

    Parameters
    ----------
    precisions_cholesky : ndarray
        Shapes as in :func:`compute_precision_cholesky`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    precisions : ndarray of the same shape.
    """
    if covariance_type in ("diag", "spherical"):
        return precisions_cholesky**2
    return precisions_cholesky @ np.swapaxes(precisions_cholesky, -1, -2)


def compute_covariances(precisions_cholesky, covariance_type):
    """Compute covariances from precision Cholesky factors.

    ``inv(U @ U.T) = inv(U).T @ inv(U)`` with one triangular solve per factor.

    Parameters
    ----------
    precisions_cholesky : ndarray
        Shapes as in :func:`compute_precision_cholesky`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    covariances : ndarray of the same shape.
    """
    if covariance_type in ("diag", "spherical"):
        return 1.0 / precisions_cholesky**2
    stacked = (
        precisions_cholesky[np.newaxis]
        if covariance_type == "tied"
        else precisions_cholesky
    )
    eye = np.eye(stacked.shape[-1])
    out = np.empty_like(stacked)
    for k, prec_chol in enumerate(stacked):
        # prec_chol is upper triangular when it comes from sklearn's or our
        # factorisations; a general solve keeps user-supplied factors working.
        inv_chol = linalg.solve(prec_chol, eye)
        out[k] = inv_chol.T @ inv_chol
    return out[0] if covariance_type == "tied" else out


def compute_log_det_cholesky(precisions_cholesky, covariance_type, n_features):
    """Compute ``log det`` of each precision Cholesky factor.

    Parameters
    ----------
    precisions_cholesky : ndarray
        Shapes as in :func:`compute_precision_cholesky`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    n_features : int

    Returns
    -------
    log_det_chol : ndarray of shape (n_components,) or float for 'tied'.
        Half the log-determinant of the precision.
    """
    if covariance_type == "full":
        return np.log(np.diagonal(precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diagonal(precisions_cholesky)).sum()
    if covariance_type == "diag":
        return np.log(precisions_cholesky).sum(axis=1)
    return n_features * np.log(precisions_cholesky)


@functools.cache
def packed_positions(n_vars):
    """Map (row, column) of a symmetric matrix to its packed upper-triangle row.

    The upper triangle is stored row by row (the order of
    ``np.triu_indices(n_vars)``): row ``i`` of the matrix is the contiguous run
    ``positions[i, i] : positions[i, i] + n_vars - i``.

    Parameters
    ----------
    n_vars : int

    Returns
    -------
    positions : ndarray of shape (n_vars, n_vars)
        ``positions[i, j]`` is the packed index of entry ``(min(i, j), max(i, j))``;
        symmetric. Read-only (cached).
    """
    rows, cols = np.triu_indices(n_vars)
    positions = np.empty((n_vars, n_vars), dtype=np.intp)
    positions[rows, cols] = np.arange(rows.size)
    positions[cols, rows] = np.arange(rows.size)
    positions.setflags(write=False)
    return positions


def sweep_packed(packed, n_vars, first_pivot):
    """Sweep a batch of symmetric matrices on their trailing pivots, in place.

    The symmetric sweep operator (Dempster's, as in Goodnight 1979) on the
    pivots ``K = first_pivot .. n_vars - 1`` of a symmetric ``M`` with leading
    block ``U`` gives, when ``M_KK`` is negative definite (so that no pivoting is
    needed),

    ``[[M_UU - M_UK inv(M_KK) M_KU, M_UK inv(M_KK)], [., -inv(M_KK)]]``.

    The E-step sweeps ``M = [[0, b'], [b, -P_mm]]`` to get
    ``C_mm = inv(P_mm)``, ``-C_mm b`` and ``b' C_mm b`` in one pass (the
    negative block makes ``-inv`` come out as ``+C_mm``). Only the upper
    triangle is stored and updated, packed with the batch axis last, so each
    pivot is one vectorised rank-one update of about half the entries of a
    full Gauss-Jordan step (measured 1.1-3x faster than the full sweep on the
    E-step's blocks, and it never writes a full-size temporary).

    Parameters
    ----------
    packed : ndarray of shape (n_vars * (n_vars + 1) // 2, n)
        Upper triangles in the order of :func:`packed_positions`, batch last.
        Overwritten by the swept matrices.
    n_vars : int
    first_pivot : int
        The first swept variable; the leading block is left unswept.

    Returns
    -------
    log_det : ndarray of shape (n,)
        ``log det(-M_KK)`` from the pivots.
    """
    positions = packed_positions(n_vars)
    n = packed.shape[1]
    log_det = np.zeros(n)
    column = np.empty((n_vars, n))  # column p of the current matrix
    scaled = np.empty((n_vars, n))  # the same divided by the pivot
    update = np.empty((n_vars, n))
    for p in range(first_pivot, n_vars):
        # mode="clip" skips the bounds check that would buffer ``out``.
        np.take(packed, positions[p], axis=0, out=column, mode="clip")
        pivot = column[p]  # (n,), negative
        log_det += np.log(-pivot)
        np.divide(column, pivot, out=scaled)
        for i in range(n_vars):
            if i == p:
                continue
            # Row i's stored run (i, i..n_vars-1) minus column_i column_j / pivot;
            # its entry (i, p) is overwritten below.
            start, width = positions[i, i], n_vars - i
            np.multiply(scaled[i], column[i:], out=update[:width])
            row = packed[start : start + width]
            np.subtract(row, update[:width], out=row)
        np.divide(-1.0, pivot, out=scaled[p])
        packed[positions[p]] = scaled
    return log_det
