"""The Gaussian-mixture model with missing entries: E-step, M-step, imputation.

Formulas are those of DESIGN §2-§4. For 'full' and 'tied' the E-step uses the
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

from ._linalg import (
    complete_sweep_packed,
    compute_covariances,
    compute_log_det_cholesky,
    compute_precision_cholesky,
    compute_precisions,
    eliminate_packed,
    packed_positions,
    sweep_packed,
)
from ._stats import SuffStats

_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class GaussianParams:
    """Parameters of a Gaussian mixture, in scikit-learn's shapes.

    Attributes
    ----------
    weights : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    covariances : ndarray
        ``(n_components, n_features, n_features)`` if 'full',
        ``(n_features, n_features)`` if 'tied', ``(n_components, n_features)``
        if 'diag', ``(n_components,)`` if 'spherical'.
    precisions_cholesky : ndarray of the same shape as ``covariances``.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str

    @classmethod
    def from_covariances(cls, weights, means, covariances, covariance_type):
        """Build parameters, factorising the covariances (may raise ValueError)."""
        return cls(
            weights=weights,
            means=means,
            covariances=covariances,
            precisions_cholesky=compute_precision_cholesky(covariances, covariance_type),
            covariance_type=covariance_type,
        )

    @classmethod
    def from_precisions_cholesky(cls, weights, means, precisions_cholesky, covariance_type):
        """Build parameters from precision Cholesky factors."""
        return cls(
            weights=weights,
            means=means,
            covariances=compute_covariances(precisions_cholesky, covariance_type),
            precisions_cholesky=precisions_cholesky,
            covariance_type=covariance_type,
        )

    @property
    def n_components(self):
        return self.means.shape[0]

    @property
    def precisions(self):
        return compute_precisions(self.precisions_cholesky, self.covariance_type)

    def n_parameters(self):
        """Number of free parameters, counted as scikit-learn's GaussianMixture does."""
        n_components, n_features = self.means.shape
        cov_params = {
            "full": n_components * n_features * (n_features + 1) / 2.0,
            "tied": n_features * (n_features + 1) / 2.0,
            "diag": n_components * n_features,
            "spherical": n_components,
        }[self.covariance_type]
        return int(cov_params + n_components * n_features + n_components - 1)


# ---------------------------------------------------------------------------
# Per-chunk terms: log-densities of the observed entries, deviations of the
# conditional means from the component means, conditional covariances.
# ---------------------------------------------------------------------------

# The E-step skips a (row, component) pair whose responsibility is below this
# fraction of the component's mean responsibility over the chunk: the pairs
# skipped in a chunk carry at most 2**-60 of the component's weight there,
# far below the rounding of the sums they would be added to.
_NEGLIGIBLE = 2.0**-60

# Above this share of (row, component) pairs kept, sweeping every block in one
# pass is cheaper than eliminating all and completing the kept ones (see
# _SweepPolicy). Measured break-even (n=100k, d=20, k=5): about 0.5 at 20%
# missing, 0.8 at 40% (bigger blocks favour completing later); on either side
# of 0.6 the wrong choice cost at most 4-8%.
_SWEEP_ABOVE = 0.6


class _ChunkTerms:
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
        log_prob,
        diffs,
        covs=None,
        block_index=None,
        pending=None,
        missing_cols=None,
    ):
        self.log_prob = log_prob
        self._diffs = diffs
        self._covs = covs
        self._block_index = block_index
        self._pending = pending
        self._missing_cols = missing_cols
        self._done = False

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


class _SweepPolicy:
    """Whether the E-step sweeps a chunk's blocks at once or only eliminates them.

    Completing the sweep for only the (row, component) pairs that count saves
    work when few do (about a quarter on well-separated clusters), but costs
    more NumPy calls, a copy and a second pass over memory when most do
    (overlapping clusters: an E-step measured 1.07-1.14x the one with
    one-pass sweeps). The share
    kept in the last chunk predicts the next one: rows are sorted by their
    number of missing entries, not by cluster. 'tied' always sweeps at once:
    its one block per row serves every component, so every row needs it.
    """

    def __init__(self, covariance_type):
        self.always = covariance_type == "tied"
        self.sweep = self.always

    def update(self, rows, n_rows):
        """Record the rows kept per component (``_significant_rows``) in a chunk."""
        if not self.always:
            kept = sum(n_rows if wanted is None else wanted.size for wanted in rows)
            self.sweep = kept > _SWEEP_ABOVE * len(rows) * n_rows


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
class _PassConstants:
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


def _full_chunk_terms(X0, chunk, params, constants, sweep=False):
    """Compute a chunk's terms for 'full' and 'tied' covariances (precision form).

    For each component: ``y = d0 @ P`` with ``d0`` the deviation zeroed at the
    missing entries, ``b = y_m``; eliminating the stacked
    ``[[0, b'], [b, -P_mm]]`` gives ``b' z`` (``z = C_mm b``) and
    ``logdet P_mm``, so the observed-marginal quadratic form is ``d0' y - b' z``
    (DESIGN §2). Completing the sweep gives ``C_mm = inv(P_mm)`` and
    ``x_hat_m - mu_m = -z``: at once when ``sweep`` is True, else later and
    for the rows asked for (``_ChunkTerms.moments``). 'tied' shares one
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
        return _ChunkTerms(
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
    return _ChunkTerms(
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


def _diag_chunk_terms(X0, chunk, params, constants):
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
    return _ChunkTerms(log_prob, devs)


class GaussianMixtureModel:
    """A Gaussian mixture with missing entries, as hooks for the EM loop.

    The object is stateless: parameters go in and come out as
    :class:`GaussianParams`; statistics come out as :class:`SuffStats`.

    Parameters
    ----------
    n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
        Non-negative regularisation added to the diagonal of covariances.
    initializer : callable
        ``initializer(data, random_state) -> GaussianParams`` (see ``_init``).
    prior : GaussianPrior or None
        None: maximum likelihood. Otherwise the M-step returns the posterior
        mode and the E-step reports the log-prior (see ``_prior``).
    """

    def __init__(self, n_components, covariance_type, reg_covar, initializer=None, prior=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.initializer = initializer
        self.prior = prior

    # -- hooks for the EM loop ------------------------------------------------

    def initial_params(self, data, random_state):
        """Draw initial parameters (one call per initialisation)."""
        return self.initializer(data, random_state)

    def e_step(self, params, data):
        """Compute the expected sufficient statistics at ``params``.

        Parameters
        ----------
        params : GaussianParams
        data : MissingData

        Returns
        -------
        stats : SuffStats
            Summed over all rows of ``data`` (each multiplied by its sample
            weight), with the observed-data log-likelihood at ``params``.
        """
        full = self.covariance_type in ("full", "tied")
        n_components, n_features = params.means.shape
        nk = np.zeros(n_components)
        s1 = np.zeros((n_components, n_features))
        s2 = np.zeros((n_components, n_features, n_features) if full else (n_components, n_features))
        log_likelihood = 0.0
        if full:
            # sum_i r_ik C_ik, upper triangles only (C_ik is packed that way).
            cond_scatter = np.zeros((n_components, n_features, n_features))
        policy = _SweepPolicy(self.covariance_type)
        for chunk, terms in self._iter_terms(params, data, policy):
            log_prob_norm, resp = _responsibilities(
                terms.log_prob, params.weights, chunk.n_missing == n_features
            )
            weights = data.chunk_weights(chunk)
            if weights is None:
                log_likelihood += log_prob_norm.sum()
            else:
                # A row of weight w counts as w copies of itself: every
                # statistic below is linear in its responsibilities.
                log_likelihood += weights @ log_prob_norm
                resp *= weights[:, None]
            nk_chunk = resp.sum(axis=0)
            nk += nk_chunk
            rows = [
                _significant_rows(r, total)
                for r, total in zip(resp.T, nk_chunk, strict=True)
            ]
            if chunk.n_missing and not chunk.shared:
                policy.update(rows, len(resp))
            moments = terms.moments(rows, need_cov=full)
            for k, (dev, cond_cov, block_index) in enumerate(moments):
                r = resp[:, k] if rows[k] is None else resp[rows[k], k]
                s1[k] += r @ dev
                if full:
                    # w.T @ w on one buffer is a symmetric rank-k update (SYRK).
                    w = dev * np.sqrt(r)[:, None]
                    s2[k] += w.T @ w
                else:
                    s2[k] += r @ (dev * dev)
                if cond_cov is not None:
                    _scatter_block(block_index, r, cond_cov, cond_scatter[k])
            if not full and chunk.n_missing:
                # Missing entries add their conditional variance S_kjj.
                variances = np.broadcast_to(
                    params.covariances.reshape(n_components, -1), (n_components, n_features)
                )
                missing = data.missing_mask[chunk.start : chunk.stop].astype(np.float64)
                s2 += (resp.T @ missing) * variances
        if full:
            s2 += cond_scatter + np.swapaxes(np.triu(cond_scatter, 1), 1, 2)
        return SuffStats(
            nk=nk, s1=s1, s2=s2, ref=params.means,
            log_likelihood=float(log_likelihood), n_samples=data.total_weight,
            log_prior=0.0 if self.prior is None else self.prior.log_density(params),
        )

    def m_step(self, stats):
        """Compute the parameters that maximise the expected log-likelihood.

        ``nk`` gets ``10 * eps`` and ``reg_covar`` is added after dividing by
        ``nk``, exactly as in scikit-learn, so that on complete data the updates
        equal ``GaussianMixture``'s to rounding. With a prior, the parameters
        maximise the expected log-likelihood plus the log-prior (the posterior
        mode of ``_prior``), ``reg_covar`` added likewise.

        Parameters
        ----------
        stats : SuffStats

        Returns
        -------
        params : GaussianParams
        """
        raw_nk = stats.nk
        nk = raw_nk + 10 * np.finfo(np.float64).eps
        weights = nk / nk.sum()
        # sum_i r x / nk as in scikit-learn, written about the reference means
        # (an empty component's mean goes to 0, as there).
        means = (raw_nk[:, None] * stats.ref + stats.s1) / nk[:, None]
        delta = means - stats.ref  # (n_components, n_features)
        ct = self.covariance_type
        if ct in ("full", "tied"):
            # sum_i r (x - mu)(x - mu)' from the moments about ref (exact).
            cross = stats.s1[:, :, None] * delta[:, None, :]
            scatter = (
                stats.s2
                - cross
                - np.swapaxes(cross, 1, 2)
                + raw_nk[:, None, None] * (delta[:, :, None] * delta[:, None, :])
            )
            # Exactly symmetric: the sweep's inverses are symmetric only to
            # rounding, and the Cholesky factor reads one triangle.
            scatter = 0.5 * (scatter + np.swapaxes(scatter, 1, 2))
            if self.prior is not None:
                weights, means, covariances = self.prior.posterior_mode(nk, means, scatter)
                idx = np.arange(means.shape[1])
                covariances[..., idx, idx] += self.reg_covar
            elif ct == "full":
                covariances = scatter / nk[:, None, None]
                idx = np.arange(means.shape[1])
                covariances[:, idx, idx] += self.reg_covar
            else:
                covariances = scatter.sum(axis=0) / nk.sum()
                covariances.flat[:: means.shape[1] + 1] += self.reg_covar
        else:
            scatter = stats.s2 - 2 * stats.s1 * delta + raw_nk[:, None] * delta**2
            if self.prior is not None:
                weights, means, covariances = self.prior.posterior_mode(nk, means, scatter)
                covariances = covariances + self.reg_covar
            else:
                covariances = scatter / nk[:, None] + self.reg_covar
                if ct == "spherical":
                    covariances = covariances.mean(axis=1)
        return GaussianParams.from_covariances(weights, means, covariances, ct)

    def flatten(self, params):
        """Concatenate weights, means and covariances into one vector (for SQUAREM)."""
        return np.concatenate(
            [params.weights, params.means.ravel(), params.covariances.ravel()]
        )

    def unflatten(self, vector, like):
        """Rebuild parameters shaped as ``like`` from :meth:`flatten`'s vector.

        Raises
        ------
        ValueError
            If a weight is not positive or a covariance not positive definite.
        """
        sizes = np.cumsum([like.weights.size, like.means.size])
        weights, means, covariances = np.split(vector, sizes)
        if not np.all(weights > 0):
            raise ValueError("Extrapolated weights are not all positive.")
        return GaussianParams.from_covariances(
            weights / weights.sum(),
            means.reshape(like.means.shape),
            covariances.reshape(like.covariances.shape),
            self.covariance_type,
        )

    # -- inference ------------------------------------------------------------

    def log_resp(self, params, data):
        """Compute the per-row log-likelihood and log-responsibilities.

        Returns
        -------
        log_prob_norm : ndarray of shape (n_samples,)
            Observed-data log-likelihood of each row (0 if nothing is observed).
        log_resp : ndarray of shape (n_samples, n_components)
        """
        log_prob_norm = np.empty(data.n_samples)
        log_resp = np.empty((data.n_samples, params.n_components))
        for chunk, terms in self._iter_terms(params, data):
            # Written straight to the caller's row order (no unsorted copy).
            log_prob_norm[chunk.rows], log_resp[chunk.rows] = _log_responsibilities(
                terms.log_prob, params.weights, chunk.n_missing == data.n_features
            )
        return log_prob_norm, log_resp

    def conditional_mean(self, params, data):
        """Compute ``E[x | x_o]`` for every row, mixing components by responsibility.

        Observed entries of the result equal the zero-filled input; callers put
        the original observed values back (DESIGN §4).

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features)
        """
        out = np.empty((data.n_samples, data.n_features))
        for chunk, terms in self._iter_terms(params, data):
            _, resp = _responsibilities(
                terms.log_prob, params.weights, chunk.n_missing == data.n_features
            )
            x_hat = resp @ params.means  # (n_rows, n_features)
            moments = terms.moments([None] * params.n_components, need_cov=False)
            for k, (dev, _, _) in enumerate(moments):
                x_hat += resp[:, k : k + 1] * dev
            out[chunk.rows] = x_hat  # in the caller's row order
        return out

    def posterior_draw(self, params, data, random_state):
        """Draw every row's missing entries from their conditional distribution.

        For each row, a component ``k`` is drawn with the row's
        responsibilities ``r_ik``, then the missing block jointly from
        ``N(x_hat_ik,m, C_ik,mm)`` (DESIGN §4): ``x_hat + L z`` with ``L`` the
        Cholesky factor of ``C_mm`` (batched over the rows of a chunk) and
        ``z`` standard normal. For 'diag' and 'spherical' ``C_mm`` is diagonal
        with the component's variances. Rows are visited in the sorted order of
        ``data``, so a given ``random_state`` gives the same draws for the same
        input.

        Parameters
        ----------
        params : GaussianParams
        data : MissingData
        random_state : numpy.random.RandomState

        Returns
        -------
        X_draw : ndarray of shape (n_samples, n_features)
            Drawn values at the missing entries; the observed entries equal
            the zero-filled input (callers put the original values back).
        """
        full = self.covariance_type in ("full", "tied")
        n_components, n_features = params.means.shape
        variances = None if full else np.broadcast_to(
            params.covariances.reshape(n_components, -1), (n_components, n_features)
        )
        out = np.empty((data.n_samples, n_features))
        for chunk, terms in self._iter_terms(params, data):
            n_rows, n_missing = chunk.missing_cols.shape
            _, resp = _responsibilities(
                terms.log_prob, params.weights, n_missing == n_features
            )
            # Component by inverse CDF of the responsibilities.
            u = random_state.uniform(size=n_rows)  # (n_rows,)
            component = (np.cumsum(resp, axis=1)[:, :-1] < u[:, None]).sum(axis=1)
            z = random_state.standard_normal((n_rows, n_missing))  # (n_rows, s)
            x = np.empty((n_rows, n_features))
            noise = np.empty((n_rows, n_missing))
            drawn = [np.flatnonzero(component == k) for k in range(n_components)]
            moments = terms.moments(drawn, need_cov=full)
            pairs = zip(drawn, moments, strict=True)
            for k, (rows, (dev, cond_cov, _)) in enumerate(pairs):
                if not rows.size:
                    continue
                x[rows] = params.means[k] + dev
                if not n_missing:
                    continue
                if full:
                    cond_cov = cond_cov[packed_positions(n_missing)]
                    cond_cov = np.moveaxis(cond_cov, 2, 0)  # (n_rows or 1, s, s)
                    chol = np.linalg.cholesky(cond_cov)  # lower, (n or 1, s, s)
                    noise[rows] = (chol @ z[rows][:, :, None])[:, :, 0]
                else:
                    sd = np.sqrt(variances[k][chunk.missing_cols[rows]])  # (rows, s)
                    noise[rows] = sd * z[rows]
            if n_missing:
                x_m = np.take_along_axis(x, chunk.missing_cols, axis=1)
                np.put_along_axis(x, chunk.missing_cols, x_m + noise, axis=1)
            out[chunk.rows] = x  # in the caller's row order
        return out

    def _iter_terms(self, params, data, policy=None):
        """Yield ``(chunk, _ChunkTerms)`` for every chunk of ``data``.

        ``policy`` (a :class:`_SweepPolicy`, read at each chunk) says whether
        to sweep the missing blocks at once; by default they are only
        eliminated, and completed when the moments are asked for.
        """
        full = self.covariance_type in ("full", "tied")
        constants = _PassConstants.of(params, data)
        for chunk in data.chunks:
            X0 = data.X[chunk.start : chunk.stop]
            if full:
                terms = _full_chunk_terms(
                    X0, chunk, params, constants, policy is not None and policy.sweep
                )
            else:
                terms = _diag_chunk_terms(X0, chunk, params, constants)
            yield chunk, terms


def _log_responsibilities(log_prob, weights, nothing_observed):
    """Compute per-row log-likelihoods and log-responsibilities by log-sum-exp.

    Parameters
    ----------
    log_prob : ndarray of shape (n_rows, n_components)
    weights : ndarray of shape (n_components,)
    nothing_observed : bool
        The rows have no observed entry: their likelihood is exactly 1 and
        their responsibilities are the weights (DESIGN §2).

    Returns
    -------
    log_prob_norm : ndarray of shape (n_rows,)
    log_resp : ndarray of shape (n_rows, n_components)
    """
    weighted = log_prob + _log_weights(weights)
    if nothing_observed:
        return np.zeros(len(log_prob)), weighted
    # log-sum-exp by hand: scipy's is several times slower on (n, k) arrays.
    # Reductions over the short component axis are done column by column and
    # by a matrix-vector product (NumPy's axis=1 reductions are slow there).
    top = weighted[:, 0].copy()
    for k in range(1, weighted.shape[1]):
        np.maximum(top, weighted[:, k], out=top)
    top[~np.isfinite(top)] = 0.0
    with np.errstate(under="ignore", divide="ignore"):
        total = np.exp(weighted - top[:, None]) @ np.ones(weighted.shape[1])
        log_prob_norm = np.log(total) + top
        return log_prob_norm, weighted - log_prob_norm[:, None]


def _responsibilities(log_prob, weights, nothing_observed):
    """Compute per-row log-likelihoods and responsibilities (see above)."""
    log_prob_norm, log_resp = _log_responsibilities(log_prob, weights, nothing_observed)
    with np.errstate(under="ignore"):
        return log_prob_norm, np.exp(log_resp)


def _log_weights(weights):
    """Compute ``log(weights)``, with ``-inf`` for a zero weight and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(weights)


def _significant_rows(r, total):
    """Select the rows whose responsibility is not negligible (see ``_NEGLIGIBLE``).

    Parameters
    ----------
    r : ndarray of shape (n_rows,)
        One component's responsibilities over a chunk.
    total : float
        Their sum.

    Returns
    -------
    rows : ndarray of int, or None
        None when nearly every row counts (taking a subset would cost more
        than it saves).
    """
    keep = r > _NEGLIGIBLE * total / len(r)
    n_keep = np.count_nonzero(keep)
    if n_keep > 0.8 * len(r):
        return None
    return np.flatnonzero(keep)


def _scatter_block(block_index, r, cond_cov, out):
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
