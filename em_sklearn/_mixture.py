"""The mixture layer: weights, responsibilities and likelihood over any emission family.

:class:`MixtureModel` is what the EM loop (``_em.run_em``) drives. It owns
what every finite mixture shares: the mixing weights (and their Dirichlet
prior), log-sum-exp responsibilities, sample weights, the skipping of
negligible (row, component) pairs and the observed-data log-likelihood. The
components' distribution is an *emission family* (``_gaussian.GaussianFamily``,
or a ``_product.ProductFamily`` of families over blocks of columns), which
supplies, per chunk of prepared rows (:class:`EmissionFamily`):

* ``iter_terms(params, block, accumulator=None)``: ``(chunk, terms)`` with
  ``terms.log_prob`` (n_rows, n_components), the log-density of each row's
  observed entries under each component, and ``terms.nothing_observed``;
* ``accumulator(params, block)``, ``accumulate(acc, terms, resp, rows)`` and
  ``statistics(acc)``: its additive statistics given the responsibilities;
* ``m_step(stats, raw_nk, nk)`` and ``log_prior(params)``;
* for inference, ``conditional_mean(params, terms, resp)`` and
  ``posterior_draw(params, terms, component, random_state)``;
* ``prepare(X, n_components, sample_weight, settings)``: the family's
  prepared block of rows (``_missing_data``);
* ``complete_data_statistics``, ``fully_initialised`` and
  ``initial_params``: initialisation from responsibilities and the user's
  initial values;
* ``flatten``/``unflatten`` (SQUAREM), ``n_parameters``, ``sample``,
  ``attributes`` and ``params_from_attributes``.

Nothing here knows which family it drives.
"""

from dataclasses import dataclass
from functools import partial
from typing import Protocol

import numpy as np
from scipy.special import gammaln

from ._array_api import device, namespace, to_numpy
from ._init import initial_resp


class EmissionFamily(Protocol):
    """The hooks a family of component distributions gives the mixture layer."""

    def prepare(self, X, n_components, sample_weight=None, settings=None): ...

    def iter_terms(self, params, block, accumulator=None): ...

    def accumulator(self, params, block): ...

    def accumulate(self, accumulator, terms, resp, rows): ...

    def statistics(self, accumulator): ...

    def complete_data_statistics(self, X, resp): ...

    @property
    def fully_initialised(self) -> bool: ...

    def m_step(self, stats, raw_nk, nk): ...

    def log_prior(self, params): ...

    def initial_params(self, estimate): ...

    def flatten(self, params): ...

    def unflatten(self, vector, like): ...

    def conditional_mean(self, params, terms, resp): ...

    def posterior_draw(self, params, terms, component, random_state): ...

    def n_parameters(self, params): ...

    def sample(self, params, counts, random_state): ...

    def attributes(self, params): ...

    def params_from_attributes(self, estimator): ...


@dataclass(frozen=True)
class MixtureParams:
    """Parameters of a mixture.

    Attributes
    ----------
    weights : ndarray of shape (n_components,)
    components : object
        The emission family's parameters of every component.
    """

    weights: np.ndarray
    components: object

    @property
    def n_components(self):
        return self.weights.shape[0]


@dataclass(frozen=True)
class MixtureStats:
    """Expected sufficient statistics of a mixture, summed over rows.

    Every field is a sum over rows, so the statistics of two disjoint blocks
    of rows add up to the statistics of their union (DESIGN §3, §8). The log
    prior is not a sum over rows: the loop adds it once per iteration.

    Attributes
    ----------
    nk : ndarray of shape (n_components,)
        ``sum_i w_i r_ik``.
    components : object
        The emission family's additive statistics.
    log_likelihood : float
        Observed-data log-likelihood of the rows at the E-step's parameters.
    n_samples : int or float
        Number of rows summed; the sum of their weights when rows are weighted.
    """

    nk: np.ndarray
    components: object
    log_likelihood: float
    n_samples: float

    def __add__(self, other):
        if not isinstance(other, MixtureStats):
            return NotImplemented
        return MixtureStats(
            nk=self.nk + other.nk,
            components=self.components + other.components,
            log_likelihood=self.log_likelihood + other.log_likelihood,
            n_samples=self.n_samples + other.n_samples,
        )


class MixtureModel:
    """A finite mixture of one emission family, as hooks for the EM loop.

    Built whole; stateless afterwards: parameters go in and come out as
    :class:`MixtureParams`, statistics as :class:`MixtureStats`.

    Parameters
    ----------
    family : EmissionFamily
    n_components : int
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
default='kmeans'
        How the initial responsibilities are drawn (``_init.initial_resp``).
    weights_init : ndarray of shape (n_components,) or None, default=None
        Checked user initial weights.
    weight_concentration : float or None, default=None
        None: maximum-likelihood weights. Otherwise the concentration
        ``alpha >= 1`` of a symmetric Dirichlet prior on the weights (MAP).
    negligible : float, default=2**-60
        The E-step skips a (row, component) pair whose responsibility is
        below this fraction of the component's mean responsibility over the
        chunk: the pairs skipped in a chunk carry at most ``negligible`` of
        the component's weight there, far below the rounding of the sums
        they would be added to. The log-likelihood always uses every pair.
    chunk_settings : ChunkSettings or None, default=None
        How :meth:`prepare` chunks rows.
    """

    def __init__(
        self,
        family,
        n_components,
        *,
        init_params="kmeans",
        weights_init=None,
        weight_concentration=None,
        negligible=2.0**-60,
        chunk_settings=None,
    ):
        self.family = family
        self.n_components = n_components
        self.init_params = init_params
        self.weights_init = weights_init
        self.weight_concentration = weight_concentration
        self.negligible = negligible
        self.chunk_settings = chunk_settings

    def prepare(self, X, sample_weight=None):
        """Prepare ``X`` (NaN for missing) for the E-step and inference."""
        return self.family.prepare(
            X, self.n_components, sample_weight, settings=self.chunk_settings
        )

    # -- hooks for the EM loop ------------------------------------------------

    def initial_params(self, data, random_state):
        """Initial parameters, as ``GaussianMixture`` makes them (one call per start).

        Responsibilities from ``init_params`` on a mean-filled copy of the data
        give the parameters by one M-step; the user's initial values replace
        the corresponding estimates. When every initial value is given no
        responsibilities are computed and the random state is not used.
        """
        estimate = None
        if self.weights_init is None or not self.family.fully_initialised:
            X_filled, weights = data.mean_filled()
            # A family may give the clustering other features than its values
            # (level codes are not distances): ``init_features``, if it has one.
            features = getattr(self.family, "init_features", None)
            resp = initial_resp(
                X_filled if features is None else features(X_filled),
                self.n_components,
                self.init_params,
                random_state,
                weights,
            )
            if weights is not None:
                resp = resp * weights[:, None]
            xp = namespace(resp)
            stats = MixtureStats(
                nk=to_numpy(xp.sum(resp, axis=0)),
                components=self.family.complete_data_statistics(X_filled, resp),
                log_likelihood=0.0,
                n_samples=(
                    X_filled.shape[0] if weights is None else float(xp.sum(weights))
                ),
            )
            estimate = self.m_step(stats)
        weights = estimate.weights if self.weights_init is None else self.weights_init
        components = self.family.initial_params(
            None if estimate is None else estimate.components
        )
        return MixtureParams(weights, components)

    def e_step(self, params, data):
        """Compute the expected sufficient statistics at ``params``.

        The sum of the statistics of ``data``'s blocks (``data.map_reduce``).

        Returns
        -------
        stats : MixtureStats
            Summed over all rows (each multiplied by its sample weight), with
            the observed-data log-likelihood at ``params``.
        """
        return data.map_reduce(partial(self._block_statistics, params))

    def _block_statistics(self, params, block):
        """E-step of one block of rows (see :meth:`e_step`)."""
        family = self.family
        # Sums stay in the block's namespace (on its device) until the end:
        # one transfer to the host per block and E-step.
        nk, log_likelihood = None, 0.0
        acc = family.accumulator(params.components, block)
        for chunk, terms, log_prob_norm, log_resp in self._iter_responsibilities(
            params, block, acc
        ):
            resp = _exp(log_resp)
            on_host = isinstance(resp, np.ndarray)
            xp = np if on_host else namespace(resp)
            weights = block.chunk_weights(chunk)
            if weights is None:
                log_likelihood = log_likelihood + xp.sum(log_prob_norm)
            else:
                # A row of weight w counts as w copies of itself: every
                # statistic is linear in its responsibilities.
                log_likelihood = log_likelihood + weights @ log_prob_norm
                resp = resp * weights[:, None]
            nk_chunk = xp.sum(resp, axis=0)
            nk = nk_chunk if nk is None else nk + nk_chunk
            if on_host:
                rows = [
                    _significant_rows(r, total, self.negligible)
                    for r, total in zip(resp.T, nk_chunk, strict=True)
                ]
            else:  # a device computes every pair rather than gather a subset
                rows = [None] * params.n_components
            family.accumulate(acc, terms, resp, rows)
        return MixtureStats(
            nk=np.zeros(params.n_components) if nk is None else to_numpy(nk),
            components=family.statistics(acc),
            log_likelihood=float(log_likelihood),
            n_samples=block.block_weight,
        )

    def m_step(self, stats):
        """Compute the parameters that maximise the expected log-likelihood (+ prior).

        ``nk`` gets ``10 * eps`` as in scikit-learn; with a Dirichlet prior
        the weights are its posterior mode
        ``(n_k + alpha - 1) / (n + K (alpha - 1))``.

        Returns
        -------
        params : MixtureParams
        """
        raw_nk = stats.nk
        nk = raw_nk + 10 * np.finfo(np.float64).eps
        alpha = self.weight_concentration
        if alpha is None:
            weights = nk / nk.sum()
        else:
            weights = (nk + alpha - 1) / (nk.sum() + len(nk) * (alpha - 1))
        return MixtureParams(weights, self.family.m_step(stats.components, raw_nk, nk))

    def log_prior(self, params):
        """Log prior density of ``params`` (0 for maximum likelihood)."""
        log_prior = self.family.log_prior(params.components)
        alpha = self.weight_concentration
        if alpha is not None:
            n_components = params.n_components
            log_prior += gammaln(n_components * alpha) - n_components * gammaln(alpha)
            if alpha != 1:  # (a zero weight under a flat prior is no -inf * 0)
                with np.errstate(divide="ignore"):
                    log_prior += (alpha - 1) * np.log(params.weights).sum()
        return float(log_prior)

    def flatten(self, params):
        """Concatenate weights and the family's parameters into one vector (SQUAREM)."""
        return np.concatenate([params.weights, self.family.flatten(params.components)])

    def unflatten(self, vector, like):
        """Rebuild parameters shaped as ``like`` from :meth:`flatten`'s vector.

        Raises
        ------
        ValueError
            If a weight is not positive or the family's parameters are invalid
            (e.g. a covariance not positive definite).
        """
        weights, components = np.split(vector, [like.weights.size])
        if not np.all(weights > 0):
            raise ValueError("Extrapolated weights are not all positive.")
        return MixtureParams(
            weights / weights.sum(), self.family.unflatten(components, like.components)
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
        return data.map_rows(partial(self._block_log_resp, params))

    def conditional_mean(self, params, data):
        """Compute ``E[x | x_o]`` for every row, mixing components by responsibility.

        Observed entries of the result equal the zero-filled input; callers put
        the original observed values back (DESIGN §4).

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features)
        """
        return data.map_rows(partial(self._block_conditional_mean, params))

    def posterior_draw(self, params, data, random_state):
        """Draw every row's missing entries from their conditional distribution.

        For each row a component ``k`` is drawn with the row's
        responsibilities (by inverse CDF), then the family draws the missing
        entries given ``k`` (DESIGN §4). Rows are visited in the prepared
        order, so a given ``random_state`` gives the same draws for the same
        input (the one generator runs through the blocks in order).

        Returns
        -------
        X_draw : ndarray of shape (n_samples, n_features)
            Drawn values at the missing entries; the observed entries equal
            the zero-filled input (callers put the original values back).
        """
        if data.n_blocks == 1:
            return data.map_rows(partial(self._block_draw, params, random_state))
        # Blocks may be drawn in other processes: one seed per block, drawn
        # here, so the draws do not depend on who computes them.
        seeds = random_state.randint(np.iinfo(np.int32).max, size=data.n_blocks)
        parts = data.map_blocks(partial(self._seeded_block_draw, params), seeds)
        return np.concatenate(parts)

    def _seeded_block_draw(self, params, block, seed):
        return self._block_draw(params, np.random.RandomState(seed), block)

    def _iter_responsibilities(self, params, block, accumulator=None):
        """Yield ``(chunk, terms, log_prob_norm, log_resp)`` for each chunk.

        ``accumulator`` (an E-step's) is passed on to the family's terms.
        """
        with np.errstate(divide="ignore"):
            log_weights = np.log(params.weights)  # a zero weight gives -inf
        if getattr(block, "on_device", False):
            log_weights = block.from_host(log_weights)
        terms_of = self.family.iter_terms(params.components, block, accumulator)
        for chunk, terms in terms_of:
            log_prob_norm, log_resp = _log_responsibilities(
                terms.log_prob, log_weights, terms.nothing_observed
            )
            yield chunk, terms, log_prob_norm, log_resp

    def _block_log_resp(self, params, block):
        if getattr(block, "on_device", False):
            parts = [
                (chunk_log_prob, chunk_log_resp)
                for _, _, chunk_log_prob, chunk_log_resp in self._iter_responsibilities(
                    params, block
                )
            ]
            return tuple(
                block.in_row_order(list(part)) for part in zip(*parts, strict=True)
            )
        log_prob_norm = np.empty(block.n_samples)
        log_resp = np.empty((block.n_samples, params.n_components))
        for chunk, _, chunk_log_prob, chunk_log_resp in self._iter_responsibilities(
            params, block
        ):
            # Written straight to the caller's row order (no unsorted copy).
            log_prob_norm[chunk.rows] = chunk_log_prob
            log_resp[chunk.rows] = chunk_log_resp
        return log_prob_norm, log_resp

    def _block_conditional_mean(self, params, block):
        return self._per_chunk(block, params, self._chunk_conditional_mean)

    def _chunk_conditional_mean(self, params, terms, resp):
        return self.family.conditional_mean(params.components, terms, resp)

    def _block_draw(self, params, random_state, block):
        draw = partial(self._chunk_draw, random_state=random_state)
        return self._per_chunk(block, params, draw)

    def _chunk_draw(self, params, terms, resp, random_state):
        # The component by inverse CDF of one uniform per row, drawn on the host.
        u = random_state.uniform(size=resp.shape[0])  # (n_rows,)
        if isinstance(resp, np.ndarray):
            component = (np.cumsum(resp, axis=1)[:, :-1] < u[:, None]).sum(axis=1)
        else:
            xp = namespace(resp)
            u = xp.asarray(u, dtype=resp.dtype, device=device(resp))
            below = xp.cumulative_sum(resp, axis=1)[:, :-1] < u[:, None]
            component = xp.sum(xp.astype(below, xp.int64), axis=1)
        return self.family.posterior_draw(
            params.components, terms, component, random_state
        )

    def _per_chunk(self, block, params, fn):
        """``fn(params, terms, resp)`` of every chunk of ``block``, rows in order."""
        chunks = self._iter_responsibilities(params, block)
        if getattr(block, "on_device", False):
            parts = [
                fn(params, terms, _exp(log_resp)) for _, terms, _, log_resp in chunks
            ]
            return block.in_row_order(parts)
        out = np.empty((block.n_samples, block.n_features))
        for chunk, terms, _, log_resp in chunks:
            out[chunk.rows] = fn(params, terms, _exp(log_resp))
        return out

    # -- parameters -----------------------------------------------------------

    def n_parameters(self, params):
        """Number of free parameters: ``K - 1`` weights and the family's."""
        return int(
            params.n_components - 1 + self.family.n_parameters(params.components)
        )

    def sample(self, params, n_samples, random_state):
        """Generate complete rows from the mixture, grouped by component.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
        """
        counts = random_state.multinomial(n_samples, params.weights)
        X = self.family.sample(params.components, counts, random_state)
        return X, np.repeat(np.arange(params.n_components), counts)

    def attributes(self, params):
        """Map parameters to scikit-learn's fitted attributes (a dict)."""
        return {"weights_": params.weights, **self.family.attributes(params.components)}

    def params_from_attributes(self, estimator):
        """Read parameters back from an estimator's fitted attributes."""
        return MixtureParams(
            to_numpy(estimator.weights_), self.family.params_from_attributes(estimator)
        )


def _log_responsibilities(log_prob, log_weights, nothing_observed):
    """Compute per-row log-likelihoods and log-responsibilities by log-sum-exp.

    In ``log_prob``'s namespace (NumPy's fast path, or the array API).

    Parameters
    ----------
    log_prob : array of shape (n_rows, n_components)
    log_weights : array of shape (n_components,)
        In ``log_prob``'s namespace; -inf for a zero weight.
    nothing_observed : bool
        The rows have no observed entry: their likelihood is exactly 1 and
        their responsibilities are the weights (DESIGN §2).

    Returns
    -------
    log_prob_norm : ndarray of shape (n_rows,)
    log_resp : ndarray of shape (n_rows, n_components)
    """
    weighted = log_prob + log_weights
    if not isinstance(log_prob, np.ndarray):
        xp = namespace(log_prob)
        if nothing_observed:
            return xp.zeros_like(log_prob[:, 0]), weighted
        top = xp.max(weighted, axis=1)
        top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
        log_prob_norm = xp.log(xp.sum(xp.exp(weighted - top[:, None]), axis=1)) + top
        return log_prob_norm, weighted - log_prob_norm[:, None]
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


def _exp(log_resp):
    """Exponentiate log-responsibilities (underflow to 0 is expected)."""
    if not isinstance(log_resp, np.ndarray):
        return namespace(log_resp).exp(log_resp)
    with np.errstate(under="ignore"):
        return np.exp(log_resp)


def _significant_rows(r, total, negligible):
    """Select the rows whose responsibility is not negligible (see ``MixtureModel``).

    Parameters
    ----------
    r : ndarray of shape (n_rows,)
        One component's responsibilities over a chunk.
    total : float
        Their sum.
    negligible : float

    Returns
    -------
    rows : ndarray of int, or None
        None when nearly every row counts (taking a subset would cost more
        than it saves).
    """
    keep = r > negligible * total / len(r)
    n_keep = np.count_nonzero(keep)
    if n_keep > 0.8 * len(r):
        return None
    return np.flatnonzero(keep)
