"""Chunk kernels of the Gaussian family: log-densities and moments of a chunk of rows.

Formulas are those of DESIGN §2. For 'full' and 'tied' the kernels use the
precision form: with ``P`` the precision of a component and ``m`` a row's
missing set,

* ``C_mm = inv(P_mm)`` (conditional covariance of the missing block),
* ``x_hat_m = mu_m - C_mm P_mo (x_o - mu_o)`` (conditional mean),
* ``logdet S_oo = logdet S + logdet P_mm``,
* ``(x_o-mu_o)' inv(S_oo) (x_o-mu_o) = d0' P d0 - b' C_mm b`` with ``d0`` the
  deviation with zeros at the missing entries and ``b = (P d0)_m``.

so a row costs ``O(|m|^3)`` on top of the complete-data work. For 'diag' and
'spherical' the observed-marginal density is the product over observed
entries, the conditional mean of a missing entry is ``mu_kj`` and its
conditional variance ``S_kjj``.
"""

import math
from dataclasses import dataclass

import numpy as np

from ._cholesky import compute_log_det_cholesky
from ._sweep import (
    complete_sweep_packed,
    eliminate_packed,
    packed_positions,
    sweep_packed,
)

_LOG_2PI = math.log(2 * math.pi)


class ChunkTerms:
    """What one chunk of rows yields under every component.

    ``log_prob`` (n_rows, n_components), the observed-marginal log-densities,
    is computed at once. Each component's deviations and conditional
    covariances are read by :meth:`moments`, for all rows or a subset. Unless
    the chunk was swept at once, the missing blocks of 'full' and 'tied' are
    only eliminated up front (:func:`eliminate_packed`, enough for the
    densities) and the rest of the sweep runs in :meth:`moments`, for 'full'
    only for the rows asked for.

    Parameters
    ----------
    chunk : Chunk
        The chunk of rows.
    log_prob : ndarray of shape (n_rows, n_components)
    diffs : list over components of ndarray of shape (n_rows, n_features)
        ``x_hat_k - mu_k``; still zero at the missing entries of rows whose
        blocks are pending.
    covs : list over components of ndarray of shape (n_tri, n_rows or 1), or None
        Finished upper triangles of ``C_mm``, packed in the order of
        ``np.triu_indices(s)`` with the batch last (see ``packed_positions``);
        last axis of length 1 when every row shares one block. None for 'diag'
        and 'spherical' (the conditional variances are read from the
        parameters) and for rows without missing entries.
    block_index : ndarray of shape (n_tri, n_rows or 1), or None
        Flat index of each packed entry in a (d, d) matrix (always in its
        upper triangle, missing columns being sorted).
    pending : list over components of ndarray, or None
        Eliminated ``[[0, B'], [B, -P_mm]]`` (see ``_reduce_blocks``) whose
        sweep is still to be completed; for 'tied' one array (with one
        right-hand side per component) shared by every component.
    missing_cols : ndarray of shape (s, n_rows), or None
        Each row's missing columns, transposed.
    """

    def __init__(
        self,
        chunk,
        log_prob,
        diffs,
        covs=None,
        block_index=None,
        pending=None,
        missing_cols=None,
    ):
        self.chunk = chunk
        self.log_prob = log_prob
        self._diffs = diffs
        self._covs = covs
        self._block_index = block_index
        self._pending = pending
        self._missing_cols = missing_cols
        self._done = False

    @property
    def nothing_observed(self):
        """Whether no entry of the chunk's rows is observed (DESIGN §2)."""
        return self.chunk.n_missing == self._diffs[0].shape[1]

    def moments(self, rows, need_cov=True):
        """Return every component's deviations and conditional covariances.

        Parameters
        ----------
        rows : list over components of (ndarray of int, or None)
            The rows wanted for each component (positions in the chunk); None
            for all of them.
        need_cov : bool, default=True
            False lets 'full' skip the conditional covariances.

        Call it at most once (the pending sweeps are completed in place).

        Returns
        -------
        moments : list over components of tuples ``(dev, cond_cov, block_index)``
            dev : ndarray of shape (n_wanted, n_features)
                ``x_hat_k - mu_k``.
            cond_cov : ndarray of shape (n_tri, n_wanted or 1), or None
                Packed upper triangles of ``C_k,mm`` (None when not needed,
                for 'diag' and 'spherical', and when nothing is missing).
            block_index : ndarray of shape (n_tri, n_wanted or 1), or None
                Flat index of each packed entry in a (d, d) matrix.
        """
        if self._done:
            raise RuntimeError("moments() was already called for this chunk.")
        self._done = True
        if self._pending is not None and len(self._pending) < len(self._diffs):
            self._finish_tied()
        if self._pending is not None:
            return self._finish(rows, need_cov)
        out = []
        for k, wanted in enumerate(rows):
            dev = self._diffs[k]
            if wanted is not None:
                dev = np.take(dev, wanted, axis=0)
            if self._covs is None or not need_cov:
                out.append((dev, None, None))
                continue
            cond_cov, block_index = self._covs[k], self._block_index
            if wanted is not None and block_index.shape[1] > 1:
                cond_cov = np.take(cond_cov, wanted, axis=1)
                block_index = np.take(block_index, wanted, axis=1)
            out.append((dev, cond_cov, block_index))
        return out

    def _finish(self, rows, need_cov):
        """Complete the pending sweeps of 'full' for the rows wanted.

        A component wanted for every row is completed in place. The wanted
        columns of the others are gathered into one array and completed in
        one call: a chunk's components share their block size, and the wider
        array amortises NumPy's per-call cost (the E-step keeps about a
        quarter of the rows per component on well-separated data).
        """
        n_vars = self._missing_cols.shape[0] + 1
        n_features = self._diffs[0].shape[1]
        subsets = [k for k, wanted in enumerate(rows) if wanted is not None]
        blocks = list(self._pending)
        if subsets:
            # Taken one by one then joined: 2.5x faster than taking into slices
            # of one array (a non-contiguous ``out`` is buffered).
            stacked = np.concatenate(
                [np.take(self._pending[k], rows[k], axis=1) for k in subsets], axis=1
            )
            complete_sweep_packed(stacked, n_vars, 1, leading_only=not need_cov)
            start = 0
            for k in subsets:
                blocks[k] = stacked[:, start : start + rows[k].size]
                start += rows[k].size
        for k, wanted in enumerate(rows):
            if wanted is None:
                complete_sweep_packed(blocks[k], n_vars, 1, leading_only=not need_cov)
        self._pending = None  # completed in place or copied: only once
        out = []
        for k, (wanted, block) in enumerate(zip(rows, blocks, strict=True)):
            missing_cols, block_index = self._missing_cols, self._block_index
            if wanted is None:
                dev = self._diffs[k]
            else:
                dev = np.take(self._diffs[k], wanted, axis=0)
                missing_cols = np.take(missing_cols, wanted, axis=1)
                block_index = np.take(block_index, wanted, axis=1) if need_cov else None
            dev_m, cond_cov = _swept_parts(block, n_vars, 1, 0)
            dev.reshape(-1)[_missing_index(missing_cols, n_features)] = dev_m
            out.append((dev, cond_cov, block_index) if need_cov else (dev, None, None))
        return out

    def _finish_tied(self):
        """Complete the one sweep that 'tied' shares, for every row and component."""
        (packed,) = self._pending
        n_components, n_features = len(self._diffs), self._diffs[0].shape[1]
        n_vars = n_components + self._missing_cols.shape[0]
        complete_sweep_packed(packed, n_vars, n_components)
        missing_index = _missing_index(self._missing_cols, n_features)
        self._covs = []
        for k, diff in enumerate(self._diffs):
            dev_m, cond_cov = _swept_parts(packed, n_vars, n_components, k)
            diff.reshape(-1)[missing_index] = dev_m
            self._covs.append(cond_cov)
        self._pending = None


class SweepPolicy:
    """Whether the E-step sweeps a chunk's blocks at once or only eliminates them.

    Completing the sweep for only the (row, component) pairs that count saves
    work when few do (about a quarter on well-separated clusters), but costs
    more NumPy calls, a copy and a second pass over memory when most do
    (overlapping clusters: an E-step measured 1.07-1.14x the one with
    one-pass sweeps). The share
    kept in the last chunk predicts the next one: rows are sorted by their
    number of missing entries, not by cluster. 'tied' always sweeps at once:
    its one block per row serves every component, so every row needs it.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    sweep_above : float
        Share of (row, component) pairs kept above which a chunk is swept at
        once (see ``GaussianFamily``).
    """

    def __init__(self, covariance_type, sweep_above):
        self.always = covariance_type == "tied"
        self.sweep = self.always
        self.sweep_above = sweep_above

    def update(self, rows, n_rows):
        """Record the rows kept per component (``_significant_rows``) in a chunk."""
        if not self.always:
            kept = sum(n_rows if wanted is None else wanted.size for wanted in rows)
            self.sweep = kept > self.sweep_above * len(rows) * n_rows


def _reduce_blocks(neg_prec, block_index, ys, missing_index, sweep):
    """Gather the stacked ``[[0, B'], [B, -P_mm]]`` of every row and reduce them.

    The right-hand sides ``b = y_m`` of every ``y`` in ``ys`` are the leading
    variables. :func:`eliminate_packed` gives ``b' C_mm b`` and
    ``log det P_mm`` (the log-densities); :func:`complete_sweep_packed` can
    later give ``C_mm = inv(P_mm)`` and ``-C_mm b`` (the deviations).
    :func:`sweep_packed` gives all of it in one pass.

    Parameters
    ----------
    neg_prec : ndarray of shape (n_features, n_features)
        ``-P``.
    block_index : ndarray of shape (n_tri, n_rows)
        Flat indices of each row's packed missing block in ``neg_prec``.
    ys : list of ndarray of shape (n_rows, n_features)
        ``y = d0 @ P`` (one per component for 'tied', else one).
    missing_index : ndarray of shape (s, n_rows)
        Flat index of each row's missing entries in a (n_rows, n_features) array.
    sweep : bool
        Sweep (True) or only eliminate (False).

    Returns
    -------
    packed : ndarray of shape (n_vars * (n_vars + 1) // 2, n_rows)
        The swept or eliminated matrices, ``n_vars = len(ys) + s``.
    quad : list of ndarray of shape (n_rows,)
        ``b' C_mm b`` for each ``y``.
    log_det : ndarray of shape (n_rows,)
        ``log det P_mm``.
    """
    n_rhs, n_rows = len(ys), missing_index.shape[1]
    n_vars = n_rhs + missing_index.shape[0]
    positions = packed_positions(n_vars)
    starts = np.diagonal(positions)
    packed = np.empty((positions[-1, -1] + 1, n_rows))
    for i, y in enumerate(ys):
        # Row i of the packed matrix: (i, i..n_rhs-1) zeros, then (i, m) = b.
        packed[starts[i] : starts[i] + n_rhs - i] = 0.0
        np.take(
            y,
            missing_index,
            out=packed[starts[i] + n_rhs - i : starts[i + 1]],
            mode="clip",  # the bounds check would buffer ``out``
        )
    np.take(neg_prec, block_index, out=packed[starts[n_rhs] :], mode="clip")
    log_det = (sweep_packed if sweep else eliminate_packed)(packed, n_vars, n_rhs)
    return packed, [packed[starts[i]] for i in range(n_rhs)], log_det


@dataclass(frozen=True)
class PassConstants:
    """What every chunk of one pass over the data shares.

    precisions : ``GaussianParams.precisions``: (n_components, n_features,
        n_features), or (n_features, n_features) for 'tied'.
    log_det_chol : (n_components,) ``compute_log_det_cholesky`` of each component.
    mean_rows : (n_components, max_rows, n_features) each component's mean
        repeated on every row, so that ``X0 - mean_rows[k, :n_rows]`` is one
        contiguous operation (broadcasting a row over (n, d) with small d runs
        d-long inner loops: 2.4x slower).
    """

    precisions: np.ndarray
    log_det_chol: np.ndarray
    mean_rows: np.ndarray

    @classmethod
    def of(cls, params, data):
        max_rows = max((chunk.stop - chunk.start for chunk in data.chunks), default=0)
        return cls(
            precisions=params.precisions,
            log_det_chol=np.broadcast_to(
                compute_log_det_cholesky(
                    params.precisions_cholesky, params.covariance_type, data.n_features
                ),
                (params.n_components,),
            ),
            mean_rows=np.repeat(params.means[:, None, :], max_rows, axis=1),
        )


def full_chunk_terms(X0, chunk, params, constants, sweep=False):
    """Compute a chunk's terms for 'full' and 'tied' covariances (precision form).

    For each component: ``y = d0 @ P`` with ``d0`` the deviation zeroed at the
    missing entries, ``b = y_m``; eliminating the stacked
    ``[[0, b'], [b, -P_mm]]`` gives ``b' z`` (``z = C_mm b``) and
    ``logdet P_mm``, so the observed-marginal quadratic form is ``d0' y - b' z``
    (DESIGN §2). Completing the sweep gives ``C_mm = inv(P_mm)`` and
    ``x_hat_m - mu_m = -z``: at once when ``sweep`` is True, else later and
    for the rows asked for (``ChunkTerms.moments``). 'tied' shares one
    elimination between components; a chunk whose rows share one block
    inverts it once.

    ``constants`` holds what every chunk of the pass shares.
    """
    n_rows, n_features = X0.shape
    n_missing = chunk.n_missing
    tied = params.covariance_type == "tied"
    n_components = params.means.shape[0]
    precisions, log_det_chol = constants.precisions, constants.log_det_chol
    if n_missing == n_features:
        # Nothing observed (DESIGN §2): r = weights, x_hat = mu_k, C = S_k and
        # no likelihood, exactly, rather than logdet S + logdet P cancelling.
        covariances = np.broadcast_to(
            params.covariances, (n_components, n_features, n_features)
        )
        rows, cols = np.triu_indices(n_features)
        return ChunkTerms(
            chunk,
            np.zeros((n_rows, n_components)),
            [np.zeros((n_rows, n_features)) for _ in range(n_components)],
            [cov[rows, cols][:, None] for cov in covariances],
            (rows * n_features + cols)[:, None],
        )
    if n_missing:
        cols_t, missing_index = _chunk_missing(chunk, n_features)
        rows, cols = np.triu_indices(n_missing)
        # Flat index of each row's packed missing block in a (d, d) matrix.
        block_cols = cols_t[:, :1] if chunk.shared else cols_t
        # (n_tri, n_rows or 1)
        block_index = block_cols[rows] * n_features + block_cols[cols]
    diffs, ys = [], []
    for k in range(n_components):
        diff = X0 - constants.mean_rows[k, :n_rows]  # (n_rows, n_features), contiguous
        if n_missing:
            # Assigning through the flat view is 2x faster than np.put.
            diff.reshape(-1)[missing_index] = 0.0
        diffs.append(diff)
        ys.append(diff @ (precisions if tied else precisions[k]))
    log_prob = np.empty((n_rows, n_components))
    shared, per_row = n_missing and chunk.shared, n_missing and not chunk.shared
    covs = [] if shared or (per_row and sweep) else None
    pending = [] if per_row and not sweep else None
    for k in range(n_components):
        # One component at a time, so that its arrays are still in cache.
        diff, y = diffs[k], ys[k]
        quad = np.einsum("ij,ij->i", diff, y)
        log_det = log_det_chol[k]
        if shared:
            # One block for every row: invert it once, then one product.
            if k == 0 or not tied:
                neg_prec = -(precisions if tied else precisions[k])
                cond_cov = np.take(neg_prec, block_index)  # (n_tri, 1)
                log_det_mm = sweep_packed(cond_cov, n_missing, 0)
            b = np.take(y, missing_index)  # (s, n_rows)
            z = cond_cov[packed_positions(n_missing), 0] @ b
            quad -= np.einsum("ij,ij->j", b, z)
            diff.reshape(-1)[missing_index] = -z
            covs.append(cond_cov)
        elif per_row:
            if k == 0 or not tied:  # 'tied': one reduction for every component
                packed, quads_m, log_det_mm = _reduce_blocks(
                    -(precisions if tied else precisions[k]),
                    block_index,
                    ys if tied else [y],
                    missing_index,
                    sweep,
                )
            rhs = k if tied else 0
            quad -= quads_m[rhs]
            if sweep:
                n_rhs = n_components if tied else 1
                dev_m, cond_cov = _swept_parts(packed, n_rhs + n_missing, n_rhs, rhs)
                diff.reshape(-1)[missing_index] = dev_m
                covs.append(cond_cov)
            elif k == 0 or not tied:
                pending.append(packed)
        if n_missing:
            log_det = log_det - 0.5 * log_det_mm
        log_prob[:, k] = -0.5 * ((n_features - n_missing) * _LOG_2PI + quad) + log_det
    return ChunkTerms(
        chunk,
        log_prob,
        diffs,
        covs,
        block_index if n_missing else None,
        pending,
        cols_t if pending is not None else None,
    )


def _chunk_missing(chunk, n_features):
    """Return a chunk's missing columns, transposed and widened, and their flat index.

    Returns
    -------
    cols_t : ndarray of shape (s, n_rows), intp
        (``Chunk.missing_cols`` is stored in a small integer type.)
    missing_index : ndarray of shape (s, n_rows)
        See :func:`_missing_index`.
    """
    cols_t = np.ascontiguousarray(chunk.missing_cols.T, dtype=np.intp)
    return cols_t, _missing_index(cols_t, n_features)


def _missing_index(missing_cols, n_features):
    """Flat index of each missing entry in a (n_rows, n_features) array.

    Parameters
    ----------
    missing_cols : ndarray of shape (s, n_rows)
        Each row's missing columns, transposed.
    n_features : int

    Returns
    -------
    missing_index : ndarray of shape (s, n_rows)
    """
    return missing_cols + n_features * np.arange(missing_cols.shape[1])


def _swept_parts(packed, n_vars, n_rhs, rhs):
    """Read one right-hand side's ``-z = x_hat_m - mu_m``, and ``C_mm``, when swept.

    Row ``rhs`` of the swept ``[[0, B'], [B, -P_mm]]`` (``n_rhs`` leading
    variables, ``n_vars`` in all) is ``(quad, ..., -z')``; its trailing block
    is ``C_mm``.

    Returns
    -------
    dev_m : ndarray of shape (s, n_rows)
    cond_cov : ndarray of shape (n_tri, n_rows)
        Views of ``packed``.
    """
    starts = np.diagonal(packed_positions(n_vars))
    return packed[starts[rhs] + n_rhs - rhs : starts[rhs + 1]], packed[starts[n_rhs] :]


def diag_chunk_terms(X0, chunk, params, constants):
    """Compute a chunk's terms for 'diag' and 'spherical' covariances.

    The observed-marginal density is the product over observed entries;
    missing entries have deviation 0 (``x_hat = mu``). Every row of a chunk
    has the same number of missing entries, and the log-determinant of its
    observed variances is the full one less that of the missing entries.
    """
    n_rows, n_features = X0.shape
    n_missing = chunk.n_missing
    n_components = params.means.shape[0]
    prec_chol = np.broadcast_to(
        params.precisions_cholesky.reshape(n_components, -1), (n_components, n_features)
    )
    if n_missing:
        cols_t, missing_index = _chunk_missing(chunk, n_features)
        if n_missing == n_features:
            log_det = np.zeros((n_components, 1))  # nothing observed: exactly 0
        else:
            log_prec = np.log(prec_chol)
            missing_log_det = np.take(log_prec, cols_t, axis=1).sum(axis=1)
            log_det = constants.log_det_chol[:, None] - missing_log_det  # (K, n_rows)
    else:
        log_det = constants.log_det_chol[:, None]
    log_prob = np.empty((n_rows, n_components))
    devs = []
    for k in range(n_components):
        diff = X0 - constants.mean_rows[k, :n_rows]  # (n_rows, n_features), contiguous
        if n_missing:
            diff.reshape(-1)[missing_index] = 0.0
        quad = (diff * diff) @ (prec_chol[k] ** 2)
        n_observed = n_features - n_missing
        log_prob[:, k] = -0.5 * (n_observed * _LOG_2PI + quad) + log_det[k]
        devs.append(diff)
    return ChunkTerms(chunk, log_prob, devs)



def scatter_block(block_index, r, cond_cov, out):
    """Add ``sum_i r_i C_i``, each row's packed ``C_i`` placed at its missing block.

    Only the upper triangle of the (d, d) sum is written (the packed entries).

    Parameters
    ----------
    block_index : ndarray of shape (n_tri, n_rows) or (n_tri, 1)
        Flat index of each packed entry in a (d, d) matrix.
    r : ndarray of shape (n_rows,)
    cond_cov : ndarray of shape (n_tri, n_rows) or (n_tri, 1)
        Packed upper triangles, batch last; last axis of length 1 when all
        rows share one block.
    out : ndarray of shape (n_features, n_features)
        Contiguous; accumulated into.
    """
    out = out.reshape(-1)  # a view
    if block_index.shape[1] == 1:
        # One block for every row: weight it by the summed responsibilities.
        out[block_index[:, 0]] += cond_cov[:, 0] * r.sum()
        return
    # One bincount over shared indices replaces a scatter-add per row.
    weights = (cond_cov * r).ravel()
    out += np.bincount(block_index.ravel(), weights=weights, minlength=out.size)
