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


def eliminate_packed(packed, n_vars, first_pivot):
    """Eliminate a batch of symmetric matrices on their trailing pivots, in place.

    Symmetric Gaussian elimination (an ``LDL'`` factorisation of ``M_KK``,
    ``K = first_pivot .. n_vars - 1``, negative definite), applied to the
    leading rows as well. Afterwards

    * the leading block holds ``M_UU - M_UK inv(M_KK) M_KU``, as after a sweep;
    * row ``p`` of ``K`` holds ``(p, p..)`` as it was when ``p`` was pivoted:
      the pivot ``d_p`` and ``d_p`` times row ``p`` of the unit factor ``L'``;
    * entry ``(u, p)`` of a leading row holds ``(M_UK inv(L'))_up``.

    :func:`complete_sweep_packed` turns this into the swept matrix of
    :func:`sweep_packed`. Each pivot updates only the variables not yet
    pivoted: about 1/3 of the work of a sweep (measured 0.36-0.41x its time
    for 4 to 16 pivots), which is all the E-step's log-densities need.

    Parameters
    ----------
    packed : ndarray of shape (n_vars * (n_vars + 1) // 2, n)
        Upper triangles in the order of :func:`packed_positions`, batch last.
        Overwritten.
    n_vars : int
    first_pivot : int

    Returns
    -------
    log_det : ndarray of shape (n,)
        ``log det(-M_KK)``: the sum of the logs of the pivots' magnitudes.
    """
    positions = packed_positions(n_vars)
    n = packed.shape[1]
    log_det = np.zeros(n)
    scaled = np.empty((n_vars, n))
    update = np.empty((n_vars, n))
    factor = np.empty(n)
    for p in range(first_pivot, n_vars):
        start, width = positions[p, p] + 1, n_vars - 1 - p
        pivot = packed[start - 1]  # (n,), negative
        log_det += np.log(-pivot)
        row = packed[start : start + width]  # (p, p+1..): final from here on
        np.divide(row, pivot, out=scaled[:width])
        for u in range(first_pivot):
            np.divide(packed[positions[u, p]], pivot, out=factor)
            for v in range(u, first_pivot):
                packed[positions[u, v]] -= factor * packed[positions[v, p]]
            if width:
                target = packed[positions[u, p + 1] : positions[u, p + 1] + width]
                np.multiply(factor, row, out=update[:width])
                np.subtract(target, update[:width], out=target)
        for j in range(width):
            # Row p + 1 + j's stored run minus its multiple of row p.
            begin = positions[p + 1 + j, p + 1 + j]
            target = packed[begin : begin + width - j]
            np.multiply(scaled[j], row[j:], out=update[: width - j])
            np.subtract(target, update[: width - j], out=target)
    return log_det


def complete_sweep_packed(packed, n_vars, first_pivot, *, leading_only=False):
    """Finish the sweep of matrices eliminated by :func:`eliminate_packed`, in place.

    With ``M_KK = L D L'`` from the elimination (``V = L'`` unit upper
    triangular, ``D`` the pivots), pivots are visited last to first:

    * ``(u, p) <- (u, p) / d_p - V_p,>p . (u, >p)`` for each leading row ``u``
      (back substitution: the row becomes ``M_UK inv(M_KK)``);
    * ``C = inv(M_KK)`` by ``C_p,>p = -V_p,>p C_>p``,
      ``C_pp = 1 / d_p - C_p,>p . V_p,>p``, stored as ``-C``.

    Parameters
    ----------
    packed : ndarray of shape (n_vars * (n_vars + 1) // 2, n)
        The output of :func:`eliminate_packed`; overwritten by the swept
        matrices.
    n_vars : int
    first_pivot : int
    leading_only : bool, default=False
        Only back-substitute the leading rows (``M_UK inv(M_KK)``); the ``K``
        block is left as it was. About ``2 / n_vars`` of the work.
    """
    positions = packed_positions(n_vars)
    n = packed.shape[1]
    v = np.empty((n_vars, n))  # row p of V
    w = np.empty((n_vars, n))  # -C_>p V_p,>p'
    update = np.empty((n_vars, n))
    for p in range(n_vars - 1, first_pivot - 1, -1):
        start, width = positions[p, p] + 1, n_vars - 1 - p
        pivot = packed[start - 1]
        v_p = np.divide(packed[start : start + width], pivot, out=v[:width])
        for u in range(first_pivot):
            at = positions[u, p]
            packed[at] /= pivot
            if width:
                trail = packed[at + 1 : at + 1 + width]  # (u, >p)
                packed[at] -= np.einsum("in,in->n", v_p, trail)
        if leading_only:
            continue
        # w = (-C_>p) v_p, the stored (negated) trailing block times v_p: row j
        # of the packed triangle adds to w_j.. and, transposed, to w_j.
        w_p = w[:width]
        for j in range(width):
            begin = positions[p + 1 + j, p + 1 + j]
            run = packed[begin : begin + width - j]
            if j == 0:
                np.multiply(v_p[0], run, out=w_p)
            else:
                np.multiply(v_p[j], run, out=update[: width - j])
                w_p[j:] += update[: width - j]
            if j + 1 < width:
                w_p[j] += np.einsum("in,in->n", run[1:], v_p[j + 1 :])
        # Stored: -C_pp = w . v_p - 1 / d_p and -C_p,>p = -w.
        if width:
            w_dot_v = np.einsum("in,in->n", w_p, v_p)
            np.subtract(w_dot_v, 1.0 / pivot, out=packed[start - 1])
        else:
            np.divide(-1.0, pivot, out=packed[start - 1])
        np.negative(w_p, out=packed[start : start + width])


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

    :func:`eliminate_packed` followed by :func:`complete_sweep_packed` gives
    the same result in two halves, so that the second can be run for some of
    the matrices only. When every matrix's result is wanted, this one pass
    measured 3-7% faster inside the E-step than the two halves run back to
    back, although the halves timed alone, on one batch, take 0.5-0.9x its
    time.

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
