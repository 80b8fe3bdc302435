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
    sweep_solve,
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
    cond_cov : list over components of (s, s, n_rows) ``C_mm`` (batch last), or
        None. For 'tied' every component shares one array. For 'diag' and
        'spherical' the conditional variances are read from the parameters.
    block_index : (s, s, n_rows) flat index of each row's missing block in a
        (d, d) matrix, or None (no missing entry, or 'diag'/'spherical').
    """

    log_prob: np.ndarray
    dev: list | None
    cond_cov: list | None
    block_index: np.ndarray | None = None


def _solve_blocks(prec, flat, rhs, shared):
    """Invert the missing blocks ``P_mm`` of ``prec`` and solve ``P_mm z = b``.

    Parameters
    ----------
    prec : ndarray of shape (n_features, n_features)
    flat : ndarray of shape (s, s, n_rows)
        Flat indices of each row's missing block in ``prec`` (batch last).
    rhs : ndarray of shape (s, n_rhs, n_rows)
        Right-hand sides ``b`` (one or one per component).
    shared : bool
        Every row has the same block: invert it once.

    Returns
    -------
    cond_cov : ndarray of shape (s, s, n_rows), or (s, s, 1) if ``shared``
        ``inv(P_mm)``.
    z : ndarray of shape (s, n_rhs, n_rows)
    log_det : ndarray of shape (n_rows,), or (1,) if ``shared``
        ``log det P_mm``.
    """
    s, n_rhs, n_rows = rhs.shape
    if shared:
        cond_cov = np.take(prec, flat[:, :, :1])
        z = rhs.reshape(s, n_rhs * n_rows, 1).copy()
        log_det = sweep_solve(cond_cov, z)
        return cond_cov, z.reshape(s, n_rhs, n_rows), log_det
    cond_cov = np.take(prec, flat)
    z = rhs.copy()
    log_det = sweep_solve(cond_cov, z)
    return cond_cov, z, log_det


def _full_chunk_terms(X0, chunk, params, precisions, need_dev, need_cov):
    """Compute a chunk's terms for 'full' and 'tied' covariances (precision form).

    For each component: ``y = d0 @ P`` with ``d0`` the deviation zeroed at the
    missing entries, ``b = y_m``; one sweep of the stacked ``P_mm`` blocks gives
    ``C_mm = inv(P_mm)``, ``z = C_mm b`` and ``logdet P_mm``; then
    ``x_hat_m - mu_m = -z`` and the observed-marginal quadratic form is
    ``d0' y - b' z`` (DESIGN §2). 'tied' shares one sweep between components.
    """
    n_rows, n_features = X0.shape
    missing_cols = chunk.missing_cols
    n_missing = chunk.n_missing
    tied = params.covariance_type == "tied"
    means = params.means
    n_components = means.shape[0]
    log_det_chol = np.broadcast_to(
        compute_log_det_cholesky(
            params.precisions_cholesky, params.covariance_type, n_features
        ),
        (n_components,),
    )
    if n_missing == n_features:
        # Nothing observed (DESIGN §2): r = weights, x_hat = mu_k, C = S_k and
        # no likelihood, exactly, rather than logdet S + logdet P cancelling.
        covariances = np.broadcast_to(
            params.covariances, (n_components, n_features, n_features)
        )
        return _ChunkTerms(
            np.zeros((n_rows, n_components)),
            [np.zeros((n_rows, n_features)) for _ in range(n_components)]
            if need_dev
            else None,
            [cov[:, :, None] for cov in covariances] if need_cov else None,
        )
    diffs, ys = [], []
    for k in range(n_components):
        diff = X0 - means[k]  # (n_rows, n_features)
        if n_missing:
            np.put_along_axis(diff, missing_cols, 0.0, axis=1)
        diffs.append(diff)
        ys.append(diff @ (precisions if tied else precisions[k]))
    log_prob = np.empty((n_rows, n_components))  # (n_rows, n_components)
    covs = [] if need_cov else None
    if n_missing:
        cols_t = missing_cols.T  # (s, n_rows)
        # Flat indices of each row's missing block in a (d, d) matrix, batch last.
        flat = cols_t[:, None, :] * n_features + cols_t[None, :, :]  # (s, s, n_rows)
        b = np.stack(
            [np.take_along_axis(y, missing_cols, axis=1).T for y in ys], axis=1
        )  # (s, n_components, n_rows)
        if tied:
            cond_cov, z, log_det_mm = _solve_blocks(precisions, flat, b, chunk.shared)
    for k in range(n_components):
        diff = diffs[k]
        quad = np.einsum("ij,ij->i", diff, ys[k])
        log_det = log_det_chol[k]
        if n_missing:
            if tied:
                z_k = z[:, k]
            else:
                cond_cov, z_k, log_det_mm = _solve_blocks(
                    precisions[k], flat, b[:, k : k + 1], chunk.shared
                )
                z_k = z_k[:, 0]
            quad -= np.einsum("ij,ij->j", b[:, k], z_k)
            log_det = log_det - 0.5 * log_det_mm
            if need_dev:
                np.put_along_axis(diff, missing_cols, -z_k.T, axis=1)
            if need_cov:
                covs.append(cond_cov)
        log_prob[:, k] = -0.5 * ((n_features - n_missing) * _LOG_2PI + quad) + log_det
    return _ChunkTerms(
        log_prob, diffs if need_dev else None, covs, flat if n_missing else None
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
                s2 += _scatter_blocks(
                    chunk.missing_cols, terms.block_index, resp, terms.cond_cov, n_features
                )
            if not full:
                # Missing entries add their conditional variance S_kjj.
                variances = np.broadcast_to(
                    params.covariances.reshape(n_components, -1), (n_components, n_features)
                )
                missing = data.missing_mask[chunk.start : chunk.stop].astype(np.float64)
                s2 += (resp.T @ missing) * variances
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
            rows = slice(chunk.start, chunk.stop)
            log_prob_norm[rows], log_resp[rows] = _log_responsibilities(
                terms.log_prob, params.weights, chunk.n_missing == data.n_features
            )
        return data.unsort(log_prob_norm), data.unsort(log_resp)

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
            out[chunk.start : chunk.stop] = x_hat
        return data.unsort(out)

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
                    cond_cov = np.moveaxis(terms.cond_cov[k], 2, 0)  # (n or 1, s, s)
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
            out[chunk.start : chunk.stop] = x
        return data.unsort(out)

    def _iter_terms(self, params, data, *, need_dev, need_cov):
        """Yield ``(chunk, _ChunkTerms)`` for every chunk of ``data``."""
        full = self.covariance_type in ("full", "tied")
        precisions = params.precisions if full else None
        for chunk in data.chunks:
            X0 = data.X[chunk.start : chunk.stop]
            if full:
                terms = _full_chunk_terms(X0, chunk, params, precisions, need_dev, need_cov)
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


def _scatter_blocks(missing_cols, block_index, resp, cond_covs, n_features):
    """Compute ``sum_i r_ik C_ik`` with each row's ``C_ik`` placed at its missing block.

    Parameters
    ----------
    missing_cols : ndarray of shape (n_rows, s)
    block_index : ndarray of shape (s, s, n_rows)
        Flat index of each row's missing block in a (d, d) matrix.
    resp : ndarray of shape (n_rows, n_components)
    cond_covs : list over components of ndarray of shape (s, s, n_rows)
        Batch last; last axis of length 1 when all rows share one block.
    n_features : int

    Returns
    -------
    scatter : ndarray of shape (n_components, n_features, n_features)
    """
    n_components = resp.shape[1]
    if cond_covs[0].shape[2] == 1:
        # One block for every row: weight it by the summed responsibilities.
        out = np.zeros((n_components, n_features, n_features))
        block = np.ix_(np.arange(n_components), missing_cols[0], missing_cols[0])
        out[block] = np.stack(cond_covs)[..., 0] * resp.sum(axis=0)[:, None, None]
        return out
    flat = block_index.ravel()  # (s*s*n_rows,)
    size = n_features * n_features
    out = np.empty((n_components, n_features, n_features))
    for k, cond_cov in enumerate(cond_covs):
        # One bincount per component over shared indices replaces a
        # scatter-add per row.
        out[k] = np.bincount(
            flat, weights=(cond_cov * resp[:, k]).ravel(), minlength=size
        ).reshape(n_features, n_features)
    return out
