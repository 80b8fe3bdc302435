"""E-step of a Gaussian mixture with missing entries on any array API namespace.

The first building block of the GPU path (DESIGN §9): the expected sufficient
statistics ``nk``, ``s1``, ``s2`` and the observed-data log-likelihood of
DESIGN §2-§3, written against the array API standard only (core functions,
plus ``linalg`` for the optional Cholesky solver), so that one code runs on
NumPy, CuPy, PyTorch (CPU or CUDA) and ``array-api-strict``, and every array
it returns is in the input's namespace and on its device. Nothing here calls
NumPy on the data.

Designed for a GPU rather than transliterated from the CPU kernels
(``_kernels``, ``_sweep``):

* **Grouping, once per data set** (:func:`prepare_groups`): rows are sorted by
  their number ``s`` of missing entries (one ``argsort``) and cut into at most
  ``n_features + 1`` groups; each group keeps its zero-filled rows, its mask
  and each row's sorted missing columns ``(n_rows, s)``. The only host
  synchronisation is reading the ``n_features + 2`` group bounds.
* **Batched over rows and components**: for a block of a group every
  component's precision ``P_k`` gives ``y = d0 P_k`` for all rows at once
  (``d0 = x - mu_k`` with zeros at the missing entries), and the missing
  blocks ``P_k,mm`` of all rows and components are gathered by one ``take``
  into one array (``(K, s, s, n_rows)``, batch last, for the sweep). They
  are inverted in one batch: ``solver='sweep'`` runs a Gauss-Jordan sweep
  written as elementwise operations (``s`` rank-one passes over the batch,
  so ``O(s^3)`` memory traffic per row; no ``linalg`` needed), or
  ``solver='cholesky'`` calls ``linalg.cholesky`` and ``linalg.inv`` on the
  batch. Either gives ``C_mm = inv(P_mm)`` and ``log det P_mm``; then
  ``b = y_m``, ``z = C_mm b``, ``x_hat_m - mu_m = -z`` and the observed
  quadratic form ``d0' y - b' z`` (the precision form of DESIGN §2).
* **Statistics without scatter-add** (the standard has none): with ``E`` the
  one-hot ``(s, n_features)`` map of a row's missing columns, ``-z`` is put in
  place by ``z E`` and the conditional covariances by stacking each row's
  ``(1 + s, n_features)`` rows ``[dev; C_mm E]`` (weighted) against
  ``[dev; E]``: one matrix product per block gives
  ``sum_i r_ik (dev dev' + E' C_mm E)``. It costs ``(1 + s)`` times the
  complete rows' product, a dense GEMM that a GPU runs at full speed, instead
  of a scatter (a namespace with ``index_add`` could replace it).
* **Memory bounded by a block**: a group is processed in blocks of rows so
  that the largest temporaries hold about ``block_elements`` elements.
* **Exact**: the same formulas as the NumPy E-step, so the statistics agree
  with it to rounding (the tests ask 1e-10 relative in float64). Rows with
  nothing observed take the explicit branch of DESIGN §2 (``r = pi``,
  ``x_hat = mu``, ``C = S``, no likelihood); 'diag' and 'spherical' need no
  block inverse (the conditional mean of a missing entry is ``mu_kj``, its
  variance ``S_kjj``).

The statistics are about reference means ``ref`` (the current means unless
given), as :class:`~em_sklearn._gaussian.GaussianStats` holds them.
:func:`reference_e_step` computes the same quantities with the NumPy engine,
for tests and benchmarks.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

_LOG_2PI = math.log(2 * math.pi)

SOLVERS = ("sweep", "cholesky")
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class EStepResult(NamedTuple):
    """What one E-step returns, every array in the input's namespace and device.

    Attributes
    ----------
    log_likelihood : array of shape ()
        Observed-data log-likelihood of the rows (weighted by sample weights).
    nk : array of shape (n_components,)
        ``sum_i w_i r_ik``.
    s1 : array of shape (n_components, n_features)
        ``sum_i w_i r_ik (x_hat_ik - ref_k)``.
    s2 : array of shape (n_components, n_features, n_features) or \
(n_components, n_features)
        ``sum_i w_i r_ik ((x_hat_ik - ref_k)(x_hat_ik - ref_k)' + C_ik)``;
        only the diagonal for 'diag' and 'spherical'.
    log_prob_norm : array of shape (n_samples,) or None
        Each row's observed-data log-likelihood (0 if nothing is observed),
        in the caller's row order; None unless ``return_rows``.
    resp : array of shape (n_samples, n_components) or None
        Responsibilities (not multiplied by the sample weights), in the
        caller's row order; None unless ``return_rows``.
    """

    log_likelihood: object
    nk: object
    s1: object
    s2: object
    log_prob_norm: object = None
    resp: object = None


@dataclass(frozen=True)
class _Group:
    """The rows of prepared data that have ``n_missing`` missing entries.

    X0 : (n_rows, n_features), zero at the missing entries.
    missing : (n_rows, n_features) bool.
    missing_cols : (n_rows, n_missing) sorted missing columns (indexing dtype),
        or None when ``n_missing`` is 0 or ``n_features``.
    sample_weight : (n_rows,) or None.
    """

    n_missing: int
    X0: object
    missing: object
    missing_cols: object
    sample_weight: object


@dataclass(frozen=True)
class GroupedRows:
    """Rows grouped by their number of missing entries, in X's namespace and device.

    Made once per data set by :func:`prepare_groups` and reused by every
    E-step (the grouping is a per-fit constant).

    Attributes
    ----------
    xp : namespace
    device : device of the arrays
    n_samples, n_features : int
    groups : tuple of _Group
        In increasing number of missing entries; empty groups left out.
    inverse : array of shape (n_samples,)
        Position of each caller's row in the concatenated groups.
    weighted : bool
        Whether sample weights were given.
    """

    xp: object
    device: object
    n_samples: int
    n_features: int
    groups: tuple
    inverse: object
    weighted: bool

    @property
    def dtype(self):
        return self.groups[0].X0.dtype


def _namespace(*arrays, xp=None):
    if xp is not None:
        return xp
    import array_api_compat

    return array_api_compat.array_namespace(*arrays)


def _device(x):
    import array_api_compat

    return array_api_compat.device(x)


def _index_dtype(xp, device):
    """The namespace's default indexing dtype on ``device`` (int32 without int64)."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return xp.int64
    return info().default_dtypes(device=device)["indexing"]


def prepare_groups(X, sample_weight=None, *, xp=None):
    """Group the rows of ``X`` by their number of missing entries (NaN).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Real floating; NaN for missing entries. Its namespace, device and
        dtype are those of every array made here and by :func:`xp_e_step`.
    sample_weight : array of shape (n_samples,) or None, default=None
    xp : namespace or None, default=None
        Taken from ``X`` when None (``array_api_compat.array_namespace``).

    Returns
    -------
    data : GroupedRows
    """
    xp = _namespace(X, xp=xp)
    if not xp.isdtype(X.dtype, "real floating"):
        raise TypeError(f"X must have a real floating dtype. Got {X.dtype} instead.")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array X but got shape {X.shape}.")
    device = _device(X)
    n_samples, n_features = X.shape
    index = _index_dtype(xp, device)
    missing = xp.isnan(X)
    counts = xp.sum(xp.astype(missing, index), axis=1, dtype=index)  # (n_samples,)
    order = xp.argsort(counts, stable=True)
    counts = xp.take(counts, order)
    bounds = xp.searchsorted(
        counts, xp.arange(n_features + 2, dtype=index, device=device)
    )
    # The one synchronisation with the host: n_features + 2 integers.
    bounds = [int(bounds[i]) for i in range(n_features + 2)]
    X_sorted = xp.take(X, order, axis=0)
    missing = xp.take(missing, order, axis=0)
    X0 = xp.where(missing, xp.zeros_like(X_sorted), X_sorted)
    if sample_weight is not None:
        sample_weight = xp.asarray(sample_weight, dtype=X.dtype, device=device)
        sample_weight = xp.take(sample_weight, order)
    groups = []
    for n_missing in range(n_features + 1):
        lo, hi = bounds[n_missing], bounds[n_missing + 1]
        if hi == lo:
            continue
        group_missing = missing[lo:hi, :]
        missing_cols = None
        if 0 < n_missing < n_features:
            # A stable sort puts the missing columns (key 0) first, in order.
            key = xp.astype(xp.logical_not(group_missing), index)
            missing_cols = xp.argsort(key, axis=1, stable=True)[:, :n_missing]
        groups.append(
            _Group(
                n_missing,
                X0[lo:hi, :],
                group_missing,
                missing_cols,
                None if sample_weight is None else sample_weight[lo:hi],
            )
        )
    return GroupedRows(
        xp=xp,
        device=device,
        n_samples=n_samples,
        n_features=n_features,
        groups=tuple(groups),
        inverse=xp.argsort(order),
        weighted=sample_weight is not None,
    )


@dataclass(frozen=True)
class _Params:
    """The parameters as the kernels use them, in the data's namespace and dtype.

    log_weights : (K,), -inf for a zero weight.
    means : (K, d).
    precisions : (K or 1, d, d) for 'full' and 'tied'; (K, d) for 'diag' and
        'spherical' (the spherical value repeated).
    precisions_cholesky : same shapes as ``precisions``.
    log_det_chol : (K,) half the log-determinant of each precision.
    """

    covariance_type: str
    log_weights: object
    weights: object
    means: object
    precisions: object
    precisions_cholesky: object
    log_det_chol: object


def _check_params(xp, dtype, device, weights, means, precisions_cholesky, ct):
    def asarray(a):
        return xp.asarray(a, dtype=dtype, device=device)

    weights, means, prec_chol = map(asarray, (weights, means, precisions_cholesky))
    n_components, n_features = means.shape
    if ct in ("full", "tied"):
        if ct == "tied":
            prec_chol = xp.reshape(prec_chol, (1, n_features, n_features))
        precisions = xp.matmul(prec_chol, xp.matrix_transpose(prec_chol))
        flat = xp.reshape(prec_chol, (prec_chol.shape[0], n_features * n_features))
        index = _index_dtype(xp, device)
        diagonal = xp.take(
            flat,
            xp.arange(n_features, dtype=index, device=device) * (n_features + 1),
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
    positive = weights > 0
    log_weights = xp.where(
        positive,
        xp.log(xp.where(positive, weights, xp.ones_like(weights))),
        xp.full_like(weights, -math.inf),
    )
    return _Params(ct, log_weights, weights, means, precisions, prec_chol, log_det_chol)


def xp_e_step(
    X,
    weights,
    means,
    precisions_cholesky,
    covariance_type="full",
    *,
    ref=None,
    sample_weight=None,
    solver="sweep",
    block_elements=2**24,
    return_rows=False,
    xp=None,
):
    """Compute a Gaussian mixture's E-step on rows with missing entries (array API).

    Parameters
    ----------
    X : array of shape (n_samples, n_features), or GroupedRows
        Real floating data with NaN for missing entries, or the output of
        :func:`prepare_groups` (prepared once, reused by every E-step).
    weights : array of shape (n_components,)
    means : array of shape (n_components, n_features)
    precisions_cholesky : array
        scikit-learn's ``precisions_cholesky_``: ``U`` with ``P = U U'``, of
        shape (n_components, n_features, n_features) if 'full',
        (n_features, n_features) if 'tied', (n_components, n_features) if
        'diag', (n_components,) if 'spherical'.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    ref : array of shape (n_components, n_features) or None, default=None
        Reference means of ``s1`` and ``s2``; None: ``means``.
    sample_weight : array of shape (n_samples,) or None, default=None
        Only with an array ``X`` (a ``GroupedRows`` carries its own).
    solver : {'sweep', 'cholesky'}, default='sweep'
        How the missing blocks of the precisions are inverted, in one batch:

        - 'sweep': a batch-last Gauss-Jordan sweep in elementwise operations
          (``s`` passes; core standard only). Issue 14's torch prototype of
          this form ran about 3x faster than batched Cholesky calls on an
          H200 (this code is not measured on a GPU yet).
        - 'cholesky': ``linalg.cholesky`` then ``linalg.inv`` of the factor
          (needs the ``linalg`` extension).
    block_elements : int, default=2**24
        Rows are processed in blocks whose largest temporaries hold about this
        many elements (``n_components * n_features * (s + 1)`` per row).
    return_rows : bool, default=False
        Also return each row's log-likelihood and responsibilities.
    xp : namespace or None, default=None
        Taken from ``X`` when None.

    Returns
    -------
    result : EStepResult
        In ``X``'s namespace, device and dtype. The arithmetic is in X's
        dtype (float32 input: float32 statistics).
    """
    if covariance_type not in _COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {_COVARIANCE_TYPES}. "
            f"Got {covariance_type!r} instead."
        )
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}. Got {solver!r} instead.")
    if isinstance(X, GroupedRows):
        if sample_weight is not None:
            raise ValueError(
                "Give sample_weight to prepare_groups, not with prepared rows."
            )
        data = X
    else:
        data = prepare_groups(X, sample_weight, xp=xp)
    xp, device, dtype = data.xp, data.device, data.dtype
    params = _check_params(
        xp, dtype, device, weights, means, precisions_cholesky, covariance_type
    )
    n_components, n_features = params.means.shape
    if n_features != data.n_features:
        raise ValueError(
            f"Expected means with {data.n_features} features but got {n_features}."
        )
    full = covariance_type in ("full", "tied")
    log_likelihood = xp.zeros((), dtype=dtype, device=device)
    nk = xp.zeros((n_components,), dtype=dtype, device=device)
    s1 = xp.zeros((n_components, n_features), dtype=dtype, device=device)
    s2 = xp.zeros(
        (n_components, n_features) + ((n_features,) if full else ()),
        dtype=dtype,
        device=device,
    )
    rows_log_prob_norm, rows_log_resp = [], []
    for group in data.groups:
        s = group.n_missing
        if s == n_features:
            # Nothing observed (DESIGN §2): r = pi, x_hat = mu, C = S, and no
            # likelihood, exactly.
            n_rows = group.X0.shape[0]
            total = (
                float(n_rows)
                if group.sample_weight is None
                else xp.sum(group.sample_weight)
            )
            nk_group = params.weights * total  # (K,)
            nk = nk + nk_group
            s2 = s2 + _nothing_observed_s2(xp, params, nk_group)
            if return_rows:
                rows_log_prob_norm.append(
                    xp.zeros((n_rows,), dtype=dtype, device=device)
                )
                rows_log_resp.append(
                    xp.broadcast_to(params.log_weights[:, None], (n_components, n_rows))
                )
            continue
        block_rows = max(1, block_elements // (n_components * n_features * (s + 1)))
        for start in range(0, group.X0.shape[0], block_rows):
            stop = min(start + block_rows, group.X0.shape[0])
            X0 = group.X0[start:stop, :]
            missing = group.missing[start:stop, :] if s else None
            cols = (
                None
                if group.missing_cols is None
                else group.missing_cols[start:stop, :]
            )
            if full:
                log_prob, dev, cond_cov, onehot = _full_terms(
                    xp, params, X0, missing, cols, solver
                )
            else:
                log_prob, dev = _diag_terms(xp, params, X0, missing, s)
            log_prob_norm, log_resp = _log_responsibilities(
                xp, log_prob, params.log_weights
            )
            resp = xp.exp(log_resp)  # (K, n_rows)
            if group.sample_weight is None:
                log_likelihood = log_likelihood + xp.sum(log_prob_norm)
            else:
                w = group.sample_weight[start:stop]
                log_likelihood = log_likelihood + xp.sum(w * log_prob_norm)
                resp = resp * w[None, :]
            nk = nk + xp.sum(resp, axis=1)
            s1 = s1 + xp.matmul(resp[:, None, :], dev)[:, 0, :]
            if full:
                s2 = s2 + _full_s2(xp, resp, dev, cond_cov, onehot)
            else:
                s2 = s2 + _diag_s2(xp, params, resp, dev, missing)
            if return_rows:
                rows_log_prob_norm.append(log_prob_norm)
                rows_log_resp.append(log_resp)
    if full:
        # The stacked product is symmetric only to rounding.
        s2 = 0.5 * (s2 + xp.matrix_transpose(s2))
    if ref is not None:
        s1, s2 = _recentre(
            xp, s1, s2, nk, params.means, xp.asarray(ref, dtype=dtype, device=device)
        )
    if not return_rows:
        return EStepResult(log_likelihood, nk, s1, s2)
    log_prob_norm = xp.take(xp.concat(rows_log_prob_norm), data.inverse)
    log_resp = xp.concat(rows_log_resp, axis=1)  # (K, n_samples), sorted
    resp = xp.take(xp.exp(xp.matrix_transpose(log_resp)), data.inverse, axis=0)
    return EStepResult(log_likelihood, nk, s1, s2, log_prob_norm, resp)


def _log_responsibilities(xp, log_prob, log_weights):
    """Log-sum-exp over components (axis 0) of ``log_prob + log_weights``.

    Returns
    -------
    log_prob_norm : array of shape (n_rows,)
    log_resp : array of shape (n_components, n_rows)
    """
    weighted = log_prob + log_weights[:, None]  # (K, n_rows)
    top = xp.max(weighted, axis=0)
    top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
    log_prob_norm = xp.log(xp.sum(xp.exp(weighted - top[None, :]), axis=0)) + top
    return log_prob_norm, weighted - log_prob_norm[None, :]


# -- 'full' and 'tied' ------------------------------------------------------------


def _full_terms(xp, params, X0, missing, missing_cols, solver):
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
    if missing is not None:
        diff = xp.where(missing[None, :, :], xp.zeros_like(diff), diff)
    y = xp.matmul(diff, precisions)  # (K, n_rows, d): P d0
    quad = xp.sum(diff * y, axis=2)  # (K, n_rows)
    log_det = params.log_det_chol[:, None]  # (K, 1)
    if missing is None:
        log_prob = -0.5 * (n_features * _LOG_2PI + quad) + log_det
        return log_prob, diff, None, None
    n_rows, s = missing_cols.shape
    b = xp.take_along_axis(
        y,
        xp.broadcast_to(missing_cols[None, :, :], (n_components, n_rows, s)),
        axis=2,
    )  # (K, n_rows, s): (P d0)_m = P_mo (x_o - mu_o)
    cond_cov, log_det_mm = _invert_missing_blocks(xp, precisions, missing_cols, solver)
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


def _invert_missing_blocks(xp, precisions, missing_cols, solver):
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
    log_det = xp.zeros((A.shape[0], A.shape[3]), dtype=A.dtype, device=device)
    for p in range(s):
        is_p = xp.astype(positions == p, A.dtype)  # (s,)
        not_p = 1.0 - is_p
        keep = xp.reshape(not_p[:, None] * not_p[None, :], (1, s, s, 1))
        pivot = A[:, p : p + 1, p : p + 1, :]  # (n_batch, 1, 1, n_rows)
        u = A[:, :, p : p + 1, :] * xp.reshape(not_p, (1, s, 1, 1)) - xp.reshape(
            is_p, (1, s, 1, 1)
        )  # (n_batch, s, 1, n_rows)
        v = (
            A[:, p : p + 1, :, :] * xp.reshape(not_p, (1, 1, s, 1))
            - xp.reshape(is_p, (1, 1, s, 1))
        ) / pivot  # (n_batch, 1, s, n_rows)
        A = A * keep - u * v
        log_det = log_det + xp.log(pivot[:, 0, 0, :])
    return A, log_det


def _full_s2(xp, resp, dev, cond_cov, onehot):
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


def _nothing_observed_s2(xp, params, nk_group):
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


def _diag_terms(xp, params, X0, missing, s):
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


def _diag_s2(xp, params, resp, dev, missing):
    """``sum_i r_ik (dev^2 + C_ik)``, ``C`` the variances at the missing entries."""
    s2 = xp.matmul(resp[:, None, :], dev * dev)[:, 0, :]  # (K, d)
    if missing is None:
        return s2
    missing = xp.astype(missing, dev.dtype)
    return s2 + xp.matmul(resp, missing) / params.precisions


def _recentre(xp, s1, s2, nk, means, ref):
    """Express moments about ``means`` about ``ref`` instead (exact; ``_stats``)."""
    delta = means - ref  # (K, d)
    s1_ref = s1 + nk[:, None] * delta
    if s2.ndim == 3:
        cross = s1[:, :, None] * delta[:, None, :]
        s2 = (
            s2
            + cross
            + xp.matrix_transpose(cross)
            + nk[:, None, None] * (delta[:, :, None] * delta[:, None, :])
        )
    else:
        s2 = s2 + 2.0 * s1 * delta + nk[:, None] * delta * delta
    return s1_ref, s2


# -- the NumPy engine, for comparison ----------------------------------------------


def reference_e_step(
    X,
    weights,
    means,
    precisions_cholesky,
    covariance_type="full",
    *,
    ref=None,
    sample_weight=None,
):
    """Compute :func:`xp_e_step`'s quantities with the NumPy engine (float64).

    Parameters are NumPy arrays (or convertible), as for :func:`xp_e_step`.

    Returns
    -------
    result : EStepResult
        NumPy arrays (the log-likelihood a float), rows in the caller's order.
    """
    import numpy as np

    from .._mixture import MixtureParams
    from ._model import gaussian_mixture
    from ._params import GaussianParams
    from ._stats import recentre

    def asarray(a):
        return np.asarray(a, dtype=np.float64)

    weights, means, prec_chol = map(asarray, (weights, means, precisions_cholesky))
    components = GaussianParams.from_precisions_cholesky(
        means, prec_chol, covariance_type
    )
    params = MixtureParams(weights, components)
    model = gaussian_mixture(len(weights), covariance_type, 0.0)
    data = model.prepare(
        asarray(X), None if sample_weight is None else asarray(sample_weight)
    )
    stats = model.e_step(params, data)
    moments = stats.components
    if ref is not None:
        moments = recentre(moments, stats.nk, asarray(ref))
    log_prob_norm, log_resp = model.log_resp(params, data)
    return EStepResult(
        stats.log_likelihood,
        stats.nk,
        moments.s1,
        moments.s2,
        log_prob_norm,
        np.exp(log_resp),
    )
