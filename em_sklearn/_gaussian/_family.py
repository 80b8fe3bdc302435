"""GaussianFamily: Gaussian components with missing entries, as emission hooks.

The mixture layer (``_mixture``) owns the weights and responsibilities; this
family supplies, per chunk of prepared rows, the log-densities of the observed
entries under each component (``iter_terms``), the additive statistics given
the responsibilities (``accumulate``), the M-step from statistics, and the
conditional moments and draws of the missing entries for inference. The fast
kernels (packed sweep, two-phase elimination, shared-pattern chunks) live in
``_kernels`` and ``_sweep``. Rows on an array API device (a ``DeviceData``,
their terms and accumulators) go to the device hooks of ``_device`` instead,
one line at the top of each data hook; the M-step, the prior, SQUAREM and the
attributes are the same for both (on the host).
"""

import numpy as np

from .._array_api import to_numpy
from .._device_data import prepare_device_data
from .._missing_data import prepare_missing_data
from . import _device
from ._cholesky import compute_precision_cholesky_from_precisions, compute_precisions
from ._kernels import (
    PassConstants,
    SweepPolicy,
    diag_chunk_terms,
    full_chunk_terms,
    scatter_block,
)
from ._params import GaussianParams
from ._stats import GaussianStats
from ._sweep import packed_positions


class _Accumulator:
    """Running sums of one block's E-step (see ``GaussianFamily.accumulate``)."""

    def __init__(self, params, block, policy):
        n_components, n_features = params.means.shape
        self.full = params.covariance_type in ("full", "tied")
        self.params = params
        self.block = block
        self.policy = policy
        self.s1 = np.zeros((n_components, n_features))
        shape = (n_components, n_features) + ((n_features,) if self.full else ())
        self.s2 = np.zeros(shape)
        # sum_i r_ik C_ik, upper triangles only (C_ik is packed that way).
        self.cond_scatter = np.zeros(shape) if self.full else None


class GaussianFamily:
    """Gaussian components (full, tied, diagonal or spherical) with missing entries.

    Built whole: every setting is a constructor argument, and the object is
    not changed afterwards. Parameters go in and come out as
    :class:`GaussianParams`, statistics as :class:`GaussianStats`.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
        Non-negative regularisation added to the diagonal of covariances.
    prior : GaussianPrior or None, default=None
        None: maximum likelihood. Otherwise the M-step returns the posterior
        mode of the means and covariances and ``log_prior`` their log prior
        density (see ``_prior``).
    means_init : ndarray of shape (n_components, n_features) or None, default=None
        Checked user initial means; they replace the estimated ones.
    precisions_init : ndarray or None, default=None
        Checked user initial precisions, in the covariance type's shape.
    sweep_above : float, default=0.6
        Above this share of (row, component) pairs kept in the previous chunk
        the E-step sweeps a chunk's missing blocks in one pass; below it, it
        eliminates them all and completes the sweep for the kept pairs only
        (``SweepPolicy``). Measured break-even (n=100k, d=20, k=5): about 0.5
        at 20% missing, 0.8 at 40%; on either side of 0.6 the wrong choice cost
        at most 4-8%.
    """

    def __init__(
        self,
        covariance_type,
        reg_covar,
        *,
        prior=None,
        means_init=None,
        precisions_init=None,
        sweep_above=0.6,
    ):
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.prior = prior
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.sweep_above = sweep_above

    # -- data ------------------------------------------------------------------

    def prepare(self, X, n_components, sample_weight=None, settings=None):
        """Prepare rows for this family: sorted by missingness, in chunks.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Data with NaN for missing entries.
        n_components : int
        sample_weight : ndarray of shape (n_samples,) or None, default=None
        settings : ChunkSettings or None, default=None

        Returns
        -------
        data : MissingData or DeviceData
            A DeviceData for an array of another array API namespace (see
            ``_device``).
        """
        if not isinstance(X, np.ndarray):
            return prepare_device_data(X, n_components, sample_weight)
        return prepare_missing_data(X, n_components, sample_weight, settings=settings)

    # -- E-step ----------------------------------------------------------------

    def iter_terms(self, params, block, accumulator=None):
        """Yield ``(chunk, ChunkTerms)`` for every chunk of ``block``.

        ``terms.log_prob`` (n_rows, n_components) is the log-density of each
        row's observed entries under each component. With an ``accumulator``
        (an E-step) its sweep policy says whether to sweep the missing blocks
        at once; otherwise (inference) they are only eliminated, and completed
        when the moments are asked for.
        """
        if getattr(block, "on_device", False):
            yield from _device.iter_terms(self, params, block, accumulator)
            return
        full = self.covariance_type in ("full", "tied")
        constants = PassConstants.of(params, block)
        policy = None if accumulator is None else accumulator.policy
        for chunk in block.chunks:
            X0 = block.X[chunk.start : chunk.stop]
            if full:
                sweep = policy is not None and policy.sweep
                terms = full_chunk_terms(X0, chunk, params, constants, sweep)
            else:
                terms = diag_chunk_terms(X0, chunk, params, constants)
            yield chunk, terms

    def accumulator(self, params, block):
        """Return empty running sums for one block's E-step."""
        if getattr(block, "on_device", False):
            return _device.DeviceAccumulator(params, block)
        return _Accumulator(
            params, block, SweepPolicy(self.covariance_type, self.sweep_above)
        )

    def accumulate(self, accumulator, terms, resp, rows):
        """Add one chunk's expected first and second moments.

        Parameters
        ----------
        accumulator : object from :meth:`accumulator`
        terms : ChunkTerms
        resp : ndarray of shape (n_rows, n_components)
            Responsibilities, already multiplied by the rows' sample weights.
        rows : list over components of (ndarray of int, or None)
            The rows whose responsibility is not negligible (None: all).
        """
        if isinstance(accumulator, _device.DeviceAccumulator):
            return _device.accumulate(accumulator, terms, resp)
        acc, chunk = accumulator, terms.chunk
        full = acc.full
        if chunk.n_missing and not chunk.shared:
            acc.policy.update(rows, len(resp))
        moments = terms.moments(rows, need_cov=full)
        for k, (dev, cond_cov, block_index) in enumerate(moments):
            r = resp[:, k] if rows[k] is None else resp[rows[k], k]
            acc.s1[k] += r @ dev
            if full:
                # w.T @ w on one buffer is a symmetric rank-k update (SYRK).
                w = dev * np.sqrt(r)[:, None]
                acc.s2[k] += w.T @ w
            else:
                acc.s2[k] += r @ (dev * dev)
            if cond_cov is not None:
                scatter_block(block_index, r, cond_cov, acc.cond_scatter[k])
        if not full and chunk.n_missing:
            # Missing entries add their conditional variance S_kjj.
            n_components, n_features = acc.params.means.shape
            variances = np.broadcast_to(
                acc.params.covariances.reshape(n_components, -1),
                (n_components, n_features),
            )
            block = acc.block
            missing = block.missing_mask[chunk.start : chunk.stop].astype(np.float64)
            acc.s2 += (resp.T @ missing) * variances

    def statistics(self, accumulator):
        """Return the block's statistics once every chunk was accumulated."""
        if isinstance(accumulator, _device.DeviceAccumulator):
            return _device.statistics(accumulator)
        acc = accumulator
        s2 = acc.s2
        if acc.full:
            cond = acc.cond_scatter
            s2 += cond + np.swapaxes(np.triu(cond, 1), 1, 2)
        return GaussianStats(s1=acc.s1, s2=s2, ref=acc.params.means)

    def complete_data_statistics(self, X, resp):
        """Compute the statistics of complete rows ``X`` under ``resp`` (for init).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        resp : ndarray of shape (n_samples, n_components)
            Responsibilities, already multiplied by the sample weights.

        Returns
        -------
        stats : GaussianStats
            About the data's mean.
        """
        if not isinstance(X, np.ndarray):
            return _device.complete_data_statistics(self, X, resp)
        n_components = resp.shape[1]
        center = X.mean(axis=0)
        diff = X - center  # (n_samples, n_features)
        if self.covariance_type in ("full", "tied"):
            s2 = np.stack(
                [(diff * resp[:, k : k + 1]).T @ diff for k in range(n_components)]
            )
        else:
            s2 = resp.T @ (diff * diff)
        return GaussianStats(
            s1=resp.T @ diff, s2=s2, ref=np.tile(center, (n_components, 1))
        )

    # -- M-step ----------------------------------------------------------------

    def m_step(self, stats, raw_nk, nk):
        """Compute the means and covariances that maximise the expected log-likelihood.

        ``nk`` is ``raw_nk + 10 * eps`` and ``reg_covar`` is added after
        dividing by it, exactly as in scikit-learn, so that on complete data the
        updates equal ``GaussianMixture``'s to rounding. With a prior, the
        parameters maximise the expected log-likelihood plus the log-prior (the
        posterior mode of ``_prior``), ``reg_covar`` added likewise.

        Parameters
        ----------
        stats : GaussianStats
        raw_nk : ndarray of shape (n_components,)
            Expected counts.
        nk : ndarray of shape (n_components,)
            ``raw_nk + 10 * eps``.

        Returns
        -------
        params : GaussianParams
        """
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
            idx = np.arange(means.shape[1])
            if self.prior is not None:
                means, covariances = self.prior.posterior_mode(nk, means, scatter)
                covariances[..., idx, idx] += self.reg_covar
            elif ct == "full":
                covariances = scatter / nk[:, None, None]
                covariances[:, idx, idx] += self.reg_covar
            else:
                covariances = scatter.sum(axis=0) / nk.sum()
                covariances.flat[:: means.shape[1] + 1] += self.reg_covar
        else:
            scatter = stats.s2 - 2 * stats.s1 * delta + raw_nk[:, None] * delta**2
            if self.prior is not None:
                means, covariances = self.prior.posterior_mode(nk, means, scatter)
                covariances = covariances + self.reg_covar
            else:
                covariances = scatter / nk[:, None] + self.reg_covar
                if ct == "spherical":
                    covariances = covariances.mean(axis=1)
        return GaussianParams.from_covariances(means, covariances, ct)

    def log_prior(self, params):
        """Log prior density of the means and covariances (0 without a prior)."""
        return 0.0 if self.prior is None else self.prior.log_density(params)

    # -- initialisation --------------------------------------------------------

    @property
    def fully_initialised(self):
        """Whether the user gave every initial value (no estimate is needed)."""
        return self.means_init is not None and self.precisions_init is not None

    def initial_params(self, estimate):
        """Replace the estimated initial values by the user's, where given.

        Parameters
        ----------
        estimate : GaussianParams or None
            One M-step from initial responsibilities; None when
            :attr:`fully_initialised`.

        Returns
        -------
        params : GaussianParams
        """
        ct = self.covariance_type
        means = estimate.means if self.means_init is None else self.means_init
        if self.precisions_init is None:
            return GaussianParams(
                means, estimate.covariances, estimate.precisions_cholesky, ct
            )
        prec_chol = compute_precision_cholesky_from_precisions(self.precisions_init, ct)
        return GaussianParams.from_precisions_cholesky(means, prec_chol, ct)

    # -- SQUAREM ---------------------------------------------------------------

    def flatten(self, params):
        """Concatenate means and covariances into one vector."""
        return np.concatenate([params.means.ravel(), params.covariances.ravel()])

    def unflatten(self, vector, like):
        """Rebuild parameters shaped as ``like`` (ValueError if not pos. definite)."""
        means, covariances = np.split(vector, [like.means.size])
        return GaussianParams.from_covariances(
            means.reshape(like.means.shape),
            covariances.reshape(like.covariances.shape),
            self.covariance_type,
        )

    # -- inference -------------------------------------------------------------

    def conditional_mean(self, params, terms, resp):
        """Compute ``E[x | x_o] = sum_k r_ik x_hat_ik`` for a chunk's rows.

        Observed entries of the result equal the zero-filled input; callers
        put the original observed values back (DESIGN §4).

        Returns
        -------
        X_hat : ndarray of shape (n_rows, n_features)
        """
        if isinstance(terms, _device.DeviceTerms):
            return _device.conditional_mean(terms, resp)
        x_hat = resp @ params.means  # (n_rows, n_features)
        moments = terms.moments([None] * params.n_components, need_cov=False)
        for k, (dev, _, _) in enumerate(moments):
            x_hat += resp[:, k : k + 1] * dev
        return x_hat

    def posterior_draw(self, params, terms, component, random_state):
        """Draw a chunk's missing entries given each row's drawn component.

        The missing block of row ``i`` is drawn jointly from
        ``N(x_hat_ik,m, C_ik,mm)`` (DESIGN §4): ``x_hat + L z`` with ``L`` the
        Cholesky factor of ``C_mm`` (batched over the rows) and ``z`` standard
        normal. For 'diag' and 'spherical' ``C_mm`` is diagonal with the
        component's variances.

        Parameters
        ----------
        params : GaussianParams
        terms : ChunkTerms
        component : ndarray of int of shape (n_rows,)
        random_state : RandomState

        Returns
        -------
        X_draw : ndarray of shape (n_rows, n_features)
            Drawn values at the missing entries; the observed entries equal
            the zero-filled input.
        """
        if isinstance(terms, _device.DeviceTerms):
            return _device.posterior_draw(params, terms, component, random_state)
        chunk = terms.chunk
        full = self.covariance_type in ("full", "tied")
        n_components, n_features = params.means.shape
        n_rows, n_missing = chunk.missing_cols.shape
        z = random_state.standard_normal((n_rows, n_missing))  # (n_rows, s)
        x = np.empty((n_rows, n_features))
        noise = np.empty((n_rows, n_missing))
        drawn = [np.flatnonzero(component == k) for k in range(n_components)]
        moments = terms.moments(drawn, need_cov=full)
        for k, (rows, (dev, cond_cov, _)) in enumerate(
            zip(drawn, moments, strict=True)
        ):
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
                variances = params.covariances.reshape(n_components, -1)
                variances = np.broadcast_to(variances, (n_components, n_features))
                sd = np.sqrt(variances[k][chunk.missing_cols[rows]])  # (rows, s)
                noise[rows] = sd * z[rows]
        if n_missing:
            x_m = np.take_along_axis(x, chunk.missing_cols, axis=1)
            np.put_along_axis(x, chunk.missing_cols, x_m + noise, axis=1)
        return x

    # -- parameters and fitted attributes --------------------------------------

    def n_parameters(self, params):
        """Number of free parameters of the components (sklearn's count)."""
        return params.n_parameters()

    def sample(self, params, counts, random_state):
        """Draw ``counts[k]`` complete rows from each component ``k``, in order."""
        return params.sample(counts, random_state)

    def attributes(self, params):
        """Map parameters to scikit-learn's fitted attributes (a dict)."""
        return {
            "means_": params.means,
            "covariances_": params.covariances,
            "precisions_cholesky_": params.precisions_cholesky,
            "precisions_": compute_precisions(
                params.precisions_cholesky, self.covariance_type
            ),
        }

    def params_from_attributes(self, estimator):
        """Read parameters back from an estimator's fitted attributes."""
        # (on the host: attributes of an array API fit are on its device)
        return GaussianParams(
            to_numpy(estimator.means_),
            to_numpy(estimator.covariances_),
            to_numpy(estimator.precisions_cholesky_),
            self.covariance_type,
        )
