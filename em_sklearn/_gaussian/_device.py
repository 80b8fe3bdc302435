"""The Gaussian family's data hooks on an array API device (DESIGN §9).

``GaussianFamily`` hands a :class:`~em_sklearn._device_data.DeviceData` block
(and the terms and accumulators made from it) to the functions here; every
other hook (M-step, prior, SQUAREM, attributes) is the family's own, on the
host: it works on ``n_components * n_features**2`` numbers per iteration,
which a GPU would run as a string of tiny kernel launches. So one E-step
moves the parameters to the device once and the statistics back once, and
the EM loop, the M-step and the mixture layer are the same code as on the CPU.

The kernels are in ``_xp``; this module walks a block's chunks, accumulates
the statistics in X's dtype on X's device, and does inference (conditional
means, posterior draws) there.
"""

from dataclasses import dataclass

import numpy as np

from .._array_api import device as _device_of
from .._array_api import namespace, to_numpy
from .._device_data import BLOCK_ELEMENTS
from ._stats import GaussianStats
from ._xp import (
    device_params,
    diag_s2,
    diag_terms,
    full_s2,
    full_terms,
    nothing_observed_s2,
)


@dataclass(frozen=True)
class DeviceTerms:
    """One chunk's E-step quantities, on the device.

    Attributes
    ----------
    chunk : DeviceChunk
    log_prob : array of shape (n_rows, n_components)
        Log-density of each row's observed entries under each component.
    nothing_observed : bool
    dev : array of shape (n_components, n_rows, n_features) or None
        ``x_hat_k - mu_k`` (None when nothing is observed: it is 0).
    cond_cov : array of shape (K or 1, n_rows, s, s) or None
        ``C_mm`` ('full' and 'tied' with ``0 < s < n_features``).
    onehot : array of shape (n_rows, s, n_features) or None
        Each row's missing columns, one-hot.
    missing : array of bool of shape (n_rows, n_features)
    missing_cols : array of shape (n_rows, s) or None
    params : DeviceParams
    """

    chunk: object
    log_prob: object
    nothing_observed: bool
    dev: object
    cond_cov: object
    onehot: object
    missing: object
    missing_cols: object
    params: object


class DeviceAccumulator:
    """Running sums of one block's E-step on the device."""

    def __init__(self, params, block):
        self.xp = block.xp
        self.params = device_params(
            block.xp,
            block.device,
            block.dtype,
            params.means,
            params.precisions_cholesky,
            params.covariance_type,
        )
        self.s1 = 0.0
        self.s2 = 0.0


def iter_terms(family, params, block, accumulator=None):
    """Yield ``(chunk, DeviceTerms)`` for every chunk of ``block``."""
    xp = block.xp
    ct = family.covariance_type
    dp = (
        accumulator.params
        if accumulator is not None
        else DeviceAccumulator(params, block).params
    )
    n_components = params.means.shape[0]
    for chunk in block.chunks:
        X0, missing, cols = block.rows_of(chunk)
        s, n_rows = chunk.n_missing, X0.shape[0]
        cond_cov = onehot = None
        if s == block.n_features:
            # Nothing observed (DESIGN §2): likelihood 1, x_hat = mu, C = S.
            log_prob = xp.zeros(
                (n_rows, n_components), dtype=block.dtype, device=block.device
            )
            yield (
                chunk,
                DeviceTerms(chunk, log_prob, True, None, None, None, missing, None, dp),
            )
            continue
        if ct in ("full", "tied"):
            log_prob, dev, cond_cov, onehot = full_terms(
                xp, dp, X0, missing if s else None, cols, block.solver
            )
        else:
            log_prob, dev = diag_terms(xp, dp, X0, missing if s else None, s)
        yield (
            chunk,
            DeviceTerms(
                chunk,
                xp.matrix_transpose(log_prob),
                False,
                dev,
                cond_cov,
                onehot,
                missing,
                cols,
                dp,
            ),
        )


def accumulate(accumulator, terms, resp):
    """Add one chunk's expected moments (``resp`` already weighted, (n, K))."""
    acc, xp, dp = accumulator, accumulator.xp, terms.params
    full = dp.covariance_type in ("full", "tied")
    resp_t = xp.matrix_transpose(resp)  # (K, n_rows)
    if terms.nothing_observed:
        acc.s2 = acc.s2 + nothing_observed_s2(xp, dp, xp.sum(resp_t, axis=1))
        return
    acc.s1 = acc.s1 + xp.matmul(resp_t[:, None, :], terms.dev)[:, 0, :]
    if full:
        s2 = full_s2(xp, resp_t, terms.dev, terms.cond_cov, terms.onehot)
    else:
        missing = None if terms.chunk.n_missing == 0 else terms.missing
        s2 = diag_s2(xp, dp, resp_t, terms.dev, missing)
    acc.s2 = acc.s2 + s2


def statistics(accumulator):
    """The block's statistics on the host (float64), about the device means."""
    acc, xp = accumulator, accumulator.xp
    means = acc.params.means
    n_components, n_features = means.shape
    full = acc.params.covariance_type in ("full", "tied")
    shape = (n_components, n_features) + ((n_features,) if full else ())
    s1, s2 = acc.s1, acc.s2
    if not hasattr(s2, "shape"):  # no chunk (or only empty rows)
        s2 = xp.zeros(shape, dtype=means.dtype, device=_device_of(means)) + s2
    if not hasattr(s1, "shape"):
        s1 = xp.zeros(
            (n_components, n_features), dtype=means.dtype, device=_device_of(means)
        )
    if full:
        # The stacked product is symmetric only to rounding.
        s2 = 0.5 * (s2 + xp.matrix_transpose(s2))
    # About the means as the device held them (rounded to X's dtype).
    return GaussianStats(s1=to_numpy(s1), s2=to_numpy(s2), ref=to_numpy(means))


def complete_data_statistics(family, X, resp, block_elements=BLOCK_ELEMENTS):
    """Statistics of complete rows under ``resp`` (initialisation), on the host.

    About each component's own weighted mean, computed first: in float32 the
    NumPy family's moments about the data's centre would lose a component of
    a few rows to cancellation (k-means++ starts: one row, a zero scatter).
    Rows are taken in blocks of about ``block_elements / (K d)`` rows.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    resp : array of shape (n_samples, n_components)
        Already weighted.
    """
    xp = namespace(X)
    (n_samples, n_features), n_components = X.shape, resp.shape[1]
    step = max(1, block_elements // (n_components * n_features))
    blocks = [slice(lo, min(lo + step, n_samples)) for lo in range(0, n_samples, step)]
    nk = xp.sum(resp, axis=0)
    sums = sum(xp.matmul(xp.matrix_transpose(resp[b, :]), X[b, :]) for b in blocks)
    ref = sums / xp.where(nk > 0, nk, xp.ones_like(nk))[:, None]  # (K, d)
    full = family.covariance_type in ("full", "tied")
    s1 = s2 = 0.0
    for b in blocks:
        diff = X[None, b, :] - ref[:, None, :]  # (K, rows, d)
        weighted = xp.matrix_transpose(resp[b, :])[:, :, None] * diff
        s1 = s1 + xp.sum(weighted, axis=1)
        if full:
            s2 = s2 + xp.matmul(xp.matrix_transpose(weighted), diff)
        else:
            s2 = s2 + xp.sum(weighted * diff, axis=1)
    return GaussianStats(s1=to_numpy(s1), s2=to_numpy(s2), ref=to_numpy(ref))


def conditional_mean(terms, resp):
    """``E[x | x_o] = sum_k r_ik x_hat_ik`` for a chunk's rows (observed: input)."""
    xp = namespace(resp)
    x_hat = xp.matmul(resp, terms.params.means)  # (n_rows, d)
    if terms.dev is not None:
        x_hat = x_hat + xp.sum(
            xp.matrix_transpose(resp)[:, :, None] * terms.dev, axis=0
        )
    return x_hat


def posterior_draw(params, terms, component, random_state):
    """Draw a chunk's missing entries given each row's drawn component.

    As the NumPy family: ``x_hat + L z`` with ``L`` the Cholesky factor of the
    drawn component's ``C_mm`` and ``z`` standard normal, drawn on the host by
    ``random_state`` (one ``(n_rows, s)`` draw per chunk) and moved to the
    device; the factorisation is batched over the rows (``linalg.cholesky``).

    Parameters
    ----------
    params : GaussianParams
        On the host (the covariances of rows with nothing observed).
    terms : DeviceTerms
    component : array of int of shape (n_rows,)
    random_state : RandomState

    Returns
    -------
    X_draw : array of shape (n_rows, n_features)
    """
    dp = terms.params
    xp = namespace(dp.means)
    dtype, device = dp.means.dtype, _device_of(dp.means)
    n_components, n_features = dp.means.shape
    n_rows, s = terms.log_prob.shape[0], terms.chunk.n_missing
    onehot_k = xp.astype(
        component[:, None] == xp.arange(n_components, device=device)[None, :], dtype
    )  # (n_rows, K)
    x = conditional_mean(terms, onehot_k)
    if s == 0:
        return x
    z = xp.asarray(
        random_state.standard_normal((n_rows, s)), dtype=dtype, device=device
    )
    ct = dp.covariance_type
    if terms.nothing_observed:
        covariances = params.covariances
        if ct in ("full", "tied"):
            chol = np.linalg.cholesky(
                np.broadcast_to(covariances, (n_components, n_features, n_features))
            )
        else:
            variances = np.broadcast_to(
                covariances.reshape(n_components, -1), (n_components, n_features)
            )
            chol = np.sqrt(variances)[:, :, None] * np.eye(n_features)
        chol = xp.asarray(chol, dtype=dtype, device=device)  # (K, d, d)
        chol = xp.sum(onehot_k[:, :, None, None] * chol[None, ...], axis=1)
        return x + xp.matmul(chol, z[:, :, None])[:, :, 0]
    cols = terms.missing_cols
    onehot = terms.onehot
    if onehot is None:
        columns = xp.arange(n_features, dtype=cols.dtype, device=device)
        onehot = xp.astype(cols[:, :, None] == columns[None, None, :], dtype)
    if ct in ("full", "tied"):
        cond_cov = terms.cond_cov  # (K or 1, n_rows, s, s)
        if cond_cov.shape[0] == 1:
            cov = cond_cov[0, ...]
        else:
            weights = xp.matrix_transpose(onehot_k)[:, :, None, None]
            cov = xp.sum(weights * cond_cov, axis=0)  # (n_rows, s, s)
        noise = xp.matmul(xp.linalg.cholesky(cov), z[:, :, None])[:, :, 0]
    else:
        variances = xp.matmul(onehot_k, 1.0 / dp.precisions)  # (n_rows, d)
        sd = xp.sqrt(xp.take_along_axis(variances, cols, axis=1))  # (n_rows, s)
        noise = sd * z
    return x + xp.matmul(noise[:, None, :], onehot)[:, 0, :]
