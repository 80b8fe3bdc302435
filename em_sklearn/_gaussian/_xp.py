"""Kernels of the Gaussian E-step with missing entries on any array API namespace.

The device E-step (DESIGN §9; the hooks are in ``_device``, the prepared rows
in ``em_sklearn._device_data``), written against the array API standard only
(core functions, plus ``linalg`` for the optional Cholesky solver and for
posterior draws), so that one code runs on NumPy, CuPy, PyTorch (CPU or CUDA)
and ``array-api-strict``, every array in the input's namespace and on its
device. Designed for a GPU rather than transliterated from the CPU kernels
(``_kernels``, ``_sweep``):

* **Batched over rows and components**: for a chunk of rows sharing their
  number ``s`` of missing entries every component's precision ``P_k`` gives
  ``y = d0 P_k`` for all rows at once (``d0 = x - mu_k`` with zeros at the
  missing entries), and the missing blocks ``P_k,mm`` of all rows and
  components are gathered by one ``take`` into one array (``(K, s, s,
  n_rows)``, batch last, for the sweep). They are inverted in one batch:
  ``solver='sweep'`` runs a Gauss-Jordan sweep written as elementwise
  operations (``s`` rank-one passes over the batch, so ``O(s^3)`` memory
  traffic per row; no ``linalg`` needed), or ``solver='cholesky'`` calls
  ``linalg.cholesky`` and ``linalg.inv`` on the batch. Either gives
  ``C_mm = inv(P_mm)`` and ``log det P_mm``; then ``b = y_m``, ``z = C_mm b``,
  ``x_hat_m - mu_m = -z`` and the observed quadratic form ``d0' y - b' z``
  (the precision form of DESIGN §2).
* **Statistics without scatter-add** (the standard has none): with ``E`` the
  one-hot ``(s, n_features)`` map of a row's missing columns, ``-z`` is put in
  place by ``z E`` and the conditional covariances by stacking each row's
  ``(1 + s, n_features)`` rows ``[dev; C_mm E]`` (weighted) against
  ``[dev; E]``: one matrix product per chunk gives
  ``sum_i r_ik (dev dev' + E' C_mm E)``. It costs ``(1 + s)`` times the
  complete rows' product, a dense GEMM that a GPU runs at full speed, instead
  of a scatter.
* **Exact**: the same formulas as the NumPy E-step, so the statistics agree
  with it to rounding (the tests ask 1e-10 relative in float64). Rows with
  nothing observed take the explicit branch of DESIGN §2 (``r = pi``,
  ``x_hat = mu``, ``C = S``, no likelihood); 'diag' and 'spherical' need no
  block inverse (the conditional mean of a missing entry is ``mu_kj``, its
  variance ``S_kjj``).
"""

import math
from dataclasses import dataclass

from .._array_api import device as _device

_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class DeviceParams:
    """The components' parameters as the kernels use them, on the data's device.

    Attributes
    ----------
    covariance_type : str
    means : array of shape (K, d)
    precisions : array
        (K or 1, d, d) for 'full' and 'tied'; (K, d) for 'diag' and
        'spherical' (the spherical value repeated).
    precisions_cholesky : array of the shape of ``precisions``
    log_det_chol : array of shape (K,)
        Half the log-determinant of each precision.
    """

    covariance_type: str
    means: object
    precisions: object
    precisions_cholesky: object
    log_det_chol: object


def device_params(xp, device, dtype, means, precisions_cholesky, ct):
    """The kernels' parameters from (host) means and precision Cholesky factors.

    Parameters
    ----------
    xp, device, dtype : the data's namespace, device and dtype
    means : ndarray of shape (n_components, n_features)
    precisions_cholesky : ndarray
        scikit-learn's ``precisions_cholesky_`` for ``ct``.
    ct : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    params : DeviceParams
    """

    def asarray(a):
        return xp.asarray(a, dtype=dtype, device=device)

    means, prec_chol = asarray(means), asarray(precisions_cholesky)
    n_components, n_features = means.shape
    if ct in ("full", "tied"):
        if ct == "tied":
            prec_chol = xp.reshape(prec_chol, (1, n_features, n_features))
        precisions = xp.matmul(prec_chol, xp.matrix_transpose(prec_chol))
        flat = xp.reshape(prec_chol, (prec_chol.shape[0], n_features * n_features))
        diagonal = xp.take(
            flat,
            xp.arange(n_features, device=device) * (n_features + 1),
            axis=1,
        )
        log_det_chol = xp.sum(xp.log(diagonal), axis=1)
    else:
        if ct == "spherical":
            prec_chol = xp.reshape(prec_chol, (n_components, 1))
        prec_chol = xp.broadcast_to(prec_chol, (n_components, n_features))
        precisions = prec_chol * prec_chol
        log_det_chol = xp.sum(xp.log(prec_chol), axis=1)
    log_det_chol = xp.broadcast_to(log_det_chol, (n_components,))
    return DeviceParams(ct, means, precisions, prec_chol, log_det_chol)


# -- 'full' and 'tied' ------------------------------------------------------------


def full_terms(xp, params, X0, missing, missing_cols, solver):
    """Log-densities and moments of a block of rows sharing ``s`` (precision form).

    Parameters
    ----------
    X0 : array of shape (n_rows, d)
        Zero at the missing entries.
    missing : array of shape (n_rows, d) bool, or None when ``s`` is 0
    missing_cols : array of shape (n_rows, s), or None when ``s`` is 0

    Returns
    -------
    log_prob : array of shape (K, n_rows)
    dev : array of shape (K, n_rows, d)
        ``x_hat_k - mu_k``.
    cond_cov : array of shape (K or 1, n_rows, s, s), or None
        ``C_mm = inv(P_mm)``.
    onehot : array of shape (n_rows, s, d), or None
        ``onehot[i, a, j] = 1`` where ``j`` is row ``i``'s ``a``-th missing column.
    """
    n_components, n_features = params.means.shape
    precisions = params.precisions  # (K or 1, d, d)
    diff = X0[None, :, :] - params.means[:, None, :]  # (K, n_rows, d)
    log_det = params.log_det_chol[:, None]  # (K, 1)
    if missing is None:
        # Complete rows: ||U' d||^2, a sum of squares (scikit-learn's form).
        # The precision form d' P d loses the digits of a small quadratic
        # form to cancellation when P is ill-conditioned (float32 above all).
        yu = xp.matmul(diff, params.precisions_cholesky)  # (K, n_rows, d)
        quad = xp.sum(yu * yu, axis=2)
        log_prob = -0.5 * (n_features * _LOG_2PI + quad) + log_det
        return log_prob, diff, None, None
    diff = xp.where(missing[None, :, :], xp.zeros_like(diff), diff)
    y = xp.matmul(diff, precisions)  # (K, n_rows, d): P d0
    quad = xp.sum(diff * y, axis=2)  # (K, n_rows)
    n_rows, s = missing_cols.shape
    b = xp.take_along_axis(
        y,
        xp.broadcast_to(missing_cols[None, :, :], (n_components, n_rows, s)),
        axis=2,
    )  # (K, n_rows, s): (P d0)_m = P_mo (x_o - mu_o)
    cond_cov, log_det_mm = invert_missing_blocks(xp, precisions, missing_cols, solver)
    z = xp.matmul(cond_cov, b[:, :, :, None])[:, :, :, 0]  # (K, n_rows, s)
    quad = quad - xp.sum(b * z, axis=2)
    columns = xp.arange(n_features, dtype=missing_cols.dtype, device=_device(X0))
    onehot = xp.astype(
        missing_cols[:, :, None] == columns[None, None, :], X0.dtype
    )  # (n_rows, s, d)
    # x_hat_m - mu_m = -z, put at the missing columns.
    dev = diff - xp.matmul(z[:, :, None, :], onehot)[:, :, 0, :]
    log_det = log_det - 0.5 * log_det_mm  # logdet S_oo = logdet S + logdet P_mm
    log_prob = -0.5 * ((n_features - s) * _LOG_2PI + quad) + log_det
    return log_prob, dev, cond_cov, onehot


def invert_missing_blocks(xp, precisions, missing_cols, solver):
    """Gather every row's ``P_mm`` of every precision and invert them in one batch.

    Parameters
    ----------
    precisions : array of shape (K or 1, d, d)
    missing_cols : array of shape (n_rows, s)
    solver : {'sweep', 'cholesky'}

    Returns
    -------
    cond_cov : array of shape (K or 1, n_rows, s, s)
        ``inv(P_mm)``.
    log_det_mm : array of shape (K or 1, n_rows)
        ``log det P_mm``.
    """
    n_prec, n_features = precisions.shape[0], precisions.shape[1]
    n_rows, s = missing_cols.shape
    flat = missing_cols[:, :, None] * n_features + missing_cols[:, None, :]
    batch_last = solver == "sweep"
    if batch_last:
        flat = xp.permute_dims(flat, (1, 2, 0))  # (s, s, n_rows)
    blocks = xp.take(
        xp.reshape(precisions, (n_prec, n_features * n_features)),
        xp.reshape(flat, (-1,)),
        axis=1,
    )
    if batch_last:
        swept, log_det_mm = _sweep(xp, xp.reshape(blocks, (n_prec, s, s, n_rows)))
        # Sweeping every pivot of P_mm leaves -inv(P_mm).
        return -xp.permute_dims(swept, (0, 3, 1, 2)), log_det_mm
    blocks = xp.reshape(blocks, (n_prec, n_rows, s, s))
    chol = xp.linalg.cholesky(blocks)  # lower
    log_det_mm = 2.0 * xp.sum(xp.log(xp.linalg.diagonal(chol)), axis=2)
    inv_chol = xp.linalg.inv(chol)
    return xp.matmul(xp.matrix_transpose(inv_chol), inv_chol), log_det_mm


def _sweep(xp, A):
    """Sweep a batch of symmetric positive definite matrices on every pivot.

    Gauss-Jordan without pivoting, batch last, as elementwise operations: on
    pivot ``p`` with ``a = A_pp``, ``A_ij -= A_ip A_pj / a``, row and column
    ``p`` are divided by ``a`` and ``A_pp = -1 / a``. After every pivot ``A``
    is ``-inv(A)``, and the pivots (the Schur complements' diagonal) multiply
    to ``det A``. Positive pivots need no pivoting.

    Each pivot is one rank-one update of ``A`` with row and column ``p``
    zeroed, ``A' = A * keep_p - u v'``, with ``u`` column ``p`` whose entry
    ``p`` is -1 and ``v`` row ``p`` over ``a`` whose entry ``p`` is ``-1/a``
    (then ``A'_pj = A_pj / a``, ``A'_ip = A_ip / a``, ``A'_pp = -1/a``, all
    without cancellation): three passes over the batch per pivot, which is
    what bounds an elementwise sweep on a GPU (memory traffic, not flops).

    Parameters
    ----------
    A : array of shape (n_batch, s, s, n_rows)

    Returns
    -------
    swept : array of shape (n_batch, s, s, n_rows)
        ``-inv(A)``.
    log_det : array of shape (n_batch, n_rows)
    """
    s = A.shape[1]
    device = _device(A)
    positions = xp.arange(s, device=device)
    # The pivots' masks, made once (each pivot then takes views of them: on a
    # GPU every elementwise operation is a kernel launch).
    eye = xp.astype(positions[:, None] == positions[None, :], A.dtype)  # (s, s)
    not_eye = 1.0 - eye
    keeps = not_eye[:, :, None] * not_eye[:, None, :]  # (s, s, s)
    pivots = []
    for p in range(s):
        pivot = A[:, p : p + 1, p : p + 1, :]  # (n_batch, 1, 1, n_rows)
        u = A[:, :, p : p + 1, :] * xp.reshape(not_eye[p, :], (1, s, 1, 1)) - (
            xp.reshape(eye[p, :], (1, s, 1, 1))
        )  # (n_batch, s, 1, n_rows)
        v = (
            A[:, p : p + 1, :, :] * xp.reshape(not_eye[p, :], (1, 1, s, 1))
            - xp.reshape(eye[p, :], (1, 1, s, 1))
        ) / pivot  # (n_batch, 1, s, n_rows)
        A = A * xp.reshape(keeps[p, ...], (1, s, s, 1)) - u * v
        pivots.append(pivot[:, 0, 0, :])
    return A, xp.sum(xp.log(xp.stack(pivots)), axis=0)


def full_s2(xp, resp, dev, cond_cov, onehot):
    """``sum_i r_ik (dev dev' + E' C_mm E)`` of a block, one product per component.

    Parameters
    ----------
    resp : array of shape (K, n_rows)
    dev : array of shape (K, n_rows, d)
    cond_cov : array of shape (K or 1, n_rows, s, s), or None
    onehot : array of shape (n_rows, s, d), or None

    Returns
    -------
    s2 : array of shape (K, d, d)
    """
    if cond_cov is None:
        return xp.matmul(xp.matrix_transpose(dev * resp[:, :, None]), dev)
    n_components, n_rows, n_features = dev.shape
    s = onehot.shape[1]
    shape = (n_components, n_rows, s, n_features)
    # Rows of C_mm E (symmetric C_mm) against rows of E: their products summed
    # over the s rows are E' C_mm E, the conditional covariance in place.
    cov_rows = xp.broadcast_to(xp.matmul(cond_cov, onehot), shape)
    left = xp.concat([dev[:, :, None, :], cov_rows], axis=2) * resp[:, :, None, None]
    right = xp.concat(
        [dev[:, :, None, :], xp.broadcast_to(onehot, shape)], axis=2
    )  # (K, n_rows, 1 + s, d)
    stacked = (n_components, n_rows * (s + 1), n_features)
    return xp.matmul(
        xp.matrix_transpose(xp.reshape(left, stacked)), xp.reshape(right, stacked)
    )


def nothing_observed_s2(xp, params, nk_group):
    """``nk_k S_k`` for rows with nothing observed (``x_hat = mu``, ``C = S``)."""
    if params.covariance_type in ("full", "tied"):
        # S = inv(U U') = inv(U)' inv(U); U triangular, inverted by a sweep
        # of P (no linalg needed): the once-per-E-step cost of K d x d inverses.
        precisions = params.precisions
        swept, _ = _sweep(xp, xp.permute_dims(precisions, (1, 2, 0))[None, ...])
        covariances = -xp.permute_dims(swept[0, ...], (2, 0, 1))  # (K or 1, d, d)
        return nk_group[:, None, None] * covariances
    return nk_group[:, None] / params.precisions


# -- 'diag' and 'spherical' -------------------------------------------------------


def diag_terms(xp, params, X0, missing, s):
    """Log-densities and deviations of a block of rows, diagonal covariances.

    The observed-marginal density is the product over the observed entries;
    a missing entry's deviation is 0 (``x_hat = mu``).

    Returns
    -------
    log_prob : array of shape (K, n_rows)
    dev : array of shape (K, n_rows, d)
    """
    n_features = params.means.shape[1]
    diff = X0[None, :, :] - params.means[:, None, :]  # (K, n_rows, d)
    if missing is None:
        log_det = params.log_det_chol[:, None]
    else:
        diff = xp.where(missing[None, :, :], xp.zeros_like(diff), diff)
        observed = xp.astype(xp.logical_not(missing), X0.dtype)  # (n_rows, d)
        log_det = xp.matmul(
            xp.log(params.precisions_cholesky), xp.matrix_transpose(observed)
        )  # (K, n_rows)
    quad = xp.sum(diff * diff * params.precisions[:, None, :], axis=2)
    log_prob = -0.5 * ((n_features - s) * _LOG_2PI + quad) + log_det
    return log_prob, diff


def diag_s2(xp, params, resp, dev, missing):
    """``sum_i r_ik (dev^2 + C_ik)``, ``C`` the variances at the missing entries."""
    s2 = xp.matmul(resp[:, None, :], dev * dev)[:, 0, :]  # (K, d)
    if missing is None:
        return s2
    missing = xp.astype(missing, dev.dtype)
    return s2 + xp.matmul(resp, missing) / params.precisions
