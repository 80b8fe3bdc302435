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
    compute_covariances,
    compute_log_det_cholesky,
    compute_precision_cholesky,
    compute_precisions,
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


@dataclass
class _ChunkTerms:
    """What one chunk of rows yields under every component.

    log_prob : (n_rows, n_components) observed-marginal log-densities.
    dev : list over components of (n_rows, n_features) ``x_hat_k - mu_k``, or None.
    cond_cov : list over components of (n_tri, n_rows) upper triangles of
        ``C_mm``, packed in the order of ``np.triu_indices(s)`` with the batch
        last (see ``packed_positions``); last axis of length 1 when all rows
        share one block. None when not requested. For 'tied' every component
        shares one array. For 'diag' and 'spherical' the conditional variances
        are read from the parameters.
    block_index : (n_tri, n_rows) or (n_tri, 1) flat index of each packed entry
        in a (d, d) matrix (always in its upper triangle, missing columns being
        sorted), or None (no missing entry, or 'diag'/'spherical').
    """

    log_prob: np.ndarray
    dev: list | None
    cond_cov: list | None
    block_index: np.ndarray | None = None


def _solve_blocks(neg_prec, block_index, ys, missing_index):
    """Invert the missing blocks ``P_mm`` and solve ``P_mm z = b`` for every row.

    One symmetric sweep (:func:`sweep_packed`) of
    ``[[0, B'], [B, -P_mm]]``, with the right-hand sides ``b = y_m`` of every
    ``y`` in ``ys`` as the leading variables, gives ``C_mm = inv(P_mm)``,
    ``-z = -C_mm b`` (the deviation ``x_hat_m - mu_m``), ``b' z`` and
    ``log det P_mm`` at once.

    Parameters
    ----------
    neg_prec : ndarray of shape (n_features, n_features)
        ``-P``.
    block_index : ndarray of shape (n_tri, n_rows) or (n_tri, 1)
        Flat indices of each row's packed missing block in ``neg_prec``; one
        column when every row has the same block (inverted once).
    ys : list of ndarray of shape (n_rows, n_features)
        ``y = d0 @ P`` (one per component for 'tied', else one).
    missing_index : ndarray of shape (s, n_rows)
        Flat index of each row's missing entries in a (n_rows, n_features) array.

    Returns
    -------
    cond_cov : ndarray of shape (n_tri, n_rows) or (n_tri, 1)
        Packed upper triangles of ``C_mm``.
    dev_m : list of ndarray of shape (s, n_rows)
        ``-z`` for each ``y``.
    quad : list of ndarray of shape (n_rows,)
        ``b' z`` for each ``y``.
    log_det : ndarray of shape (n_rows,) or (1,)
        ``log det P_mm``.
    """
    n_missing, n_rows = missing_index.shape
    if block_index.shape[1] == 1:
        # One block for every row: invert it once, then one product per y.
        cond_cov = np.take(neg_prec, block_index)  # (n_tri, 1)
        log_det = sweep_packed(cond_cov, n_missing, 0)
        full = cond_cov[packed_positions(n_missing), 0]  # (s, s)
        dev_m, quad = [], []
        for y in ys:
            b = np.take(y, missing_index)  # (s, n_rows)
            z = full @ b
            quad.append(np.einsum("ij,ij->j", b, z))
            dev_m.append(np.negative(z, out=z))
        return cond_cov, dev_m, quad, log_det
    n_rhs = len(ys)
    n_vars = n_rhs + n_missing
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
    log_det = sweep_packed(packed, n_vars, n_rhs)
    dev_m = [packed[starts[i] + n_rhs - i : starts[i + 1]] for i in range(n_rhs)]
    quad = [packed[starts[i]] for i in range(n_rhs)]
    return packed[starts[n_rhs] :], dev_m, quad, log_det


@dataclass(frozen=True)
class _PassConstants:
    """What every chunk of one pass over the data shares ('full' and 'tied').

    precisions : (n_components, n_features, n_features), or (n_features,
        n_features) for 'tied'.
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


def _full_chunk_terms(X0, chunk, params, constants, need_dev, need_cov):
    """Compute a chunk's terms for 'full' and 'tied' covariances (precision form).

    For each component: ``y = d0 @ P`` with ``d0`` the deviation zeroed at the
    missing entries, ``b = y_m``; one sweep of the stacked ``P_mm`` blocks gives
    ``C_mm = inv(P_mm)``, ``z = C_mm b``, ``b' z`` and ``logdet P_mm``; then
    ``x_hat_m - mu_m = -z`` and the observed-marginal quadratic form is
    ``d0' y - b' z`` (DESIGN §2). 'tied' shares one sweep between components.

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
            [np.zeros((n_rows, n_features)) for _ in range(n_components)]
            if need_dev
            else None,
            [cov[rows, cols][:, None] for cov in covariances] if need_cov else None,
            (rows * n_features + cols)[:, None],
        )
    if n_missing:
        cols_t = np.ascontiguousarray(chunk.missing_cols.T)  # (s, n_rows)
        # Flat index of each missing entry in the chunk's (n_rows, n_features) arrays.
        missing_index = cols_t + n_features * np.arange(n_rows)  # (s, n_rows)
        if chunk.shared:
            cols_t = cols_t[:, :1]
        rows, cols = np.triu_indices(n_missing)
        # Flat index of each row's packed missing block in a (d, d) matrix.
        block_index = cols_t[rows] * n_features + cols_t[cols]  # (n_tri, n_rows or 1)
    diffs, ys = [], []
    for k in range(n_components):
        diff = X0 - constants.mean_rows[k, :n_rows]  # (n_rows, n_features), contiguous
        if n_missing:
            # Assigning through the flat view is 2x faster than np.put.
            diff.reshape(-1)[missing_index] = 0.0
        diffs.append(diff)
        ys.append(diff @ (precisions if tied else precisions[k]))
    log_prob = np.empty((n_rows, n_components))  # (n_rows, n_components)
    covs = [] if need_cov else None
    if n_missing and tied:
        cond_cov, dev_m, quad_m, log_det_mm = _solve_blocks(
            -precisions, block_index, ys, missing_index
        )
    for k in range(n_components):
        diff = diffs[k]
        quad = np.einsum("ij,ij->i", diff, ys[k])
        log_det = log_det_chol[k]
        if n_missing:
            if tied:
                k_rhs = k
            else:
                cond_cov, dev_m, quad_m, log_det_mm = _solve_blocks(
                    -precisions[k], block_index, ys[k : k + 1], missing_index
                )
                k_rhs = 0
            quad -= quad_m[k_rhs]
            log_det = log_det - 0.5 * log_det_mm
            if need_dev:
                diff.reshape(-1)[missing_index] = dev_m[k_rhs]
            if need_cov:
                covs.append(cond_cov)
        log_prob[:, k] = -0.5 * ((n_features - n_missing) * _LOG_2PI + quad) + log_det
    return _ChunkTerms(
        log_prob, diffs if need_dev else None, covs, block_index if n_missing else None
    )


def _diag_chunk_terms(X0, observed, params, need_dev):
    """Compute a chunk's terms for 'diag' and 'spherical' covariances.

    The observed-marginal density is the product over observed entries;
    missing entries have deviation 0 (``x_hat = mu``).
    """
    n_rows, n_features = X0.shape
    means = params.means
    n_components = means.shape[0]
    prec_chol = np.broadcast_to(
        params.precisions_cholesky.reshape(n_components, -1), (n_components, n_features)
    )
    log_prob = np.empty((n_rows, n_components))
    n_observed = observed.sum(axis=1)
    log_det = observed @ np.log(prec_chol).T  # (n_rows, n_components)
    devs = [] if need_dev else None
    for k in range(n_components):
        diff = (X0 - means[k]) * observed  # (n_rows, n_features), 0 where missing
        quad = (diff * diff) @ (prec_chol[k] ** 2)
        log_prob[:, k] = -0.5 * (n_observed * _LOG_2PI + quad) + log_det[:, k]
        if need_dev:
            devs.append(diff)
    return _ChunkTerms(log_prob, devs, None)


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
        for chunk, terms in self._iter_terms(params, data, need_dev=True, need_cov=full):
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
            nk += resp.sum(axis=0)
            for k in range(n_components):
                dev = terms.dev[k]
                r = resp[:, k]
                s1[k] += r @ dev
                if full:
                    # w.T @ w on one buffer is a symmetric rank-k update (SYRK).
                    w = dev * np.sqrt(r)[:, None]
                    s2[k] += w.T @ w
                else:
                    s2[k] += r @ (dev * dev)
            if full and chunk.n_missing:
                _scatter_blocks(terms.block_index, resp, terms.cond_cov, cond_scatter)
            if not full:
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
        for chunk, terms in self._iter_terms(params, data, need_dev=False, need_cov=False):
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
        for chunk, terms in self._iter_terms(params, data, need_dev=True, need_cov=False):
            _, resp = _responsibilities(
                terms.log_prob, params.weights, chunk.n_missing == data.n_features
            )
            x_hat = resp @ params.means  # (n_rows, n_features)
            for k in range(params.n_components):
                x_hat += resp[:, k : k + 1] * terms.dev[k]
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
        chunks = self._iter_terms(params, data, need_dev=True, need_cov=full)
        for chunk, terms in chunks:
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
            for k in range(n_components):
                rows = np.flatnonzero(component == k)
                if not rows.size:
                    continue
                x[rows] = params.means[k] + terms.dev[k][rows]
                if not n_missing:
                    continue
                if full:
                    cond_cov = terms.cond_cov[k][packed_positions(n_missing)]
                    cond_cov = np.moveaxis(cond_cov, 2, 0)  # (n or 1, s, s)
                    if cond_cov.shape[0] > 1:
                        cond_cov = cond_cov[rows]
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

    def _iter_terms(self, params, data, *, need_dev, need_cov):
        """Yield ``(chunk, _ChunkTerms)`` for every chunk of ``data``."""
        full = self.covariance_type in ("full", "tied")
        if full:
            constants = _PassConstants.of(params, data)
        for chunk in data.chunks:
            X0 = data.X[chunk.start : chunk.stop]
            if full:
                terms = _full_chunk_terms(
                    X0, chunk, params, constants, need_dev, need_cov
                )
            else:
                observed = ~data.missing_mask[chunk.start : chunk.stop]
                terms = _diag_chunk_terms(X0, observed, params, need_dev)
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


def _scatter_blocks(block_index, resp, cond_covs, out):
    """Add ``sum_i r_ik C_ik``, each row's packed ``C_ik`` placed at its missing block.

    Only the upper triangle of each (d, d) sum is written (the packed entries).

    Parameters
    ----------
    block_index : ndarray of shape (n_tri, n_rows) or (n_tri, 1)
        Flat index of each packed entry in a (d, d) matrix.
    resp : ndarray of shape (n_rows, n_components)
    cond_covs : list over components of ndarray of shape (n_tri, n_rows) or (n_tri, 1)
        Packed upper triangles, batch last; last axis of length 1 when all
        rows share one block.
    out : ndarray of shape (n_components, n_features, n_features)
        Accumulated into.
    """
    n_components = resp.shape[1]
    out = out.reshape(n_components, -1)  # a view: out is contiguous
    flat = block_index.ravel()  # (n_tri * n_rows,)
    if block_index.shape[1] == 1:
        # One block for every row: weight it by the summed responsibilities.
        nk = resp.sum(axis=0)
        for k, cond_cov in enumerate(cond_covs):
            out[k, flat] += cond_cov[:, 0] * nk[k]
        return
    for k, cond_cov in enumerate(cond_covs):
        # One bincount per component over shared indices replaces a
        # scatter-add per row.
        out[k] += np.bincount(
            flat, weights=(cond_cov * resp[:, k]).ravel(), minlength=out.shape[1]
        )
