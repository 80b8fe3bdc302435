"""Gaussian-copula components for mixed ordinal, binary and continuous columns.

The model of DESIGN §7 (Zhao & Udell 2020; exact likelihood in R's mdgc,
Christoffersen et al. 2021), with one Gaussian per mixture component in
latent space (a mixture of Gaussian copulas with shared marginals).

* :class:`CopulaMarginals` estimates each column's marginal once, from the
  data: for a continuous column the empirical CDF ``F_j`` (mid-ranks scaled by
  ``n / (n + 1)``) so that an observed value has the latent normal score
  ``z = Phi^-1(F_j(x))``; for an ordinal column (level codes ``0 .. L_j - 1``,
  binary = 2 levels) the latent cut points ``cut_jl = Phi^-1(F_j(l - 1))``
  so that level ``l`` is the interval ``(cut_jl, cut_j,l+1]``. It maps data to
  the model's input (:meth:`CopulaMarginals.to_latent`) and latent
  imputations back to data (:meth:`CopulaMarginals.from_latent`).
* :class:`CopulaFamily` is an emission family (``_mixture.EmissionFamily``)
  on the latent vector ``z``: continuous columns are observed exactly, an
  observed ordinal entry says that ``z_j`` lies in its level's interval, and a
  missing entry is the interval ``(-inf, inf)``. Each component is
  ``N(mu_k, S_k)``; the statistics, M-step, every covariance type,
  ``reg_covar``, the prior and the parameters are those of
  ``_gaussian.GaussianFamily`` (composition). What is new is the E-step:

  1. condition on the exactly observed entries ``O`` (precision form of
     DESIGN §2): ``log N(z_O; mu_O, S_OO)`` and the conditional mean and
     covariance of the other entries ``M``;
  2. a Mendell-Elston sweep over ``M``: each entry with a finite interval in
     turn is truncated to it (truncated-normal mean and variance),
     ``log P(interval)`` is added to the row's log-density, and the other
     entries' mean and covariance follow by the Gaussian regression on it
     (moment matching).

  This gives ``log p(row | k)`` and ``E[z | row, k]``, ``Cov[z | row, k]``,
  from which the Gaussian statistics follow exactly as in the Gaussian
  E-step (DESIGN §3).

What is exact and what is approximate:

* exact when a row has at most one finite interval (one observed ordinal
  entry), for every row when there is no ordinal column (then the family
  equals the Gaussian family), and for 'diag' and 'spherical' covariances
  (the entries are independent given the component, so the box probability
  factorises and the truncations do not interact);
* otherwise the Mendell-Elston approximation (Mendell & Elston 1974; each
  row takes its intervals from the rarest level to the commonest): the
  log-likelihood, the moments, and therefore EM, which then maximises an
  approximate likelihood and is not guaranteed to be monotone (measured:
  decreases of at most ~1e-8 per row, near convergence).
  ``tests/test_copula.py`` measures the error against exact references:
  per-row log-likelihood errors of at most ~0.1 nats for rows with 2-3
  intervals and latent correlations up to ~0.85, and fitted correlations
  within ~4e-3 of the exact maximum-likelihood ones (n=300). The
  approximation is poor for improbable boxes of strongly correlated
  entries (a component of negligible responsibility can be off by nats).

The log-likelihood is that of the latent scores and level probabilities: it
is what EM increases and what ``score`` would report, but it is not a
density of the original continuous values (the empirical CDF has no
Jacobian), so it cannot be compared with a Gaussian model's.

Latent scale: with cut points fixed by the marginals, a binary column's
latent mean and variance are not separately identified (the likelihood is
flat along ``z_j -> c + a (z_j - c)``); level probabilities, imputations and
the latent correlations do not depend on where EM stops along that ridge. A
level that the marginals give a small interval but the data never show
(``n_levels`` larger than the data's, a bootstrap resample) lets the
likelihood grow without bound as that column's latent variance grows: EM
then drifts slowly (measured: latent variance ~1e4 after 2000 iterations)
instead of converging.

Cost: per chunk of ``n`` rows with ``s`` non-exact entries in ``U``
distinct patterns, ``O(K U s^3)`` for the conditioning (one inverse per
pattern and component), ``O(K n s^2)`` for the conditional means and
``O(K n s T^2)`` for a sweep over ``T`` finite intervals, vectorised over
components and rows (batch axes last).
"""

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri, ndtri_exp

from ._gaussian import GaussianFamily, GaussianStats
from ._missing_data import (
    ChunkSettings,
    MissingData,
    column_moments,
    prepare_missing_data,
)

_LOG_2PI = math.log(2 * math.pi)
_HUGE = 1e150  # caps infinite bounds where they multiply a zero density


# ---------------------------------------------------------------------------
# Truncated normal helpers
# ---------------------------------------------------------------------------


def _flip_to_lower_tail(alpha, beta):
    """Mirror intervals that lie right of 0, where ``Phi`` loses its accuracy.

    Returns
    -------
    a, b : ndarray
        ``(-beta, -alpha)`` where ``alpha > 0``, else ``(alpha, beta)``.
    flip : ndarray of bool
    """
    flip = alpha > 0
    return np.where(flip, -beta, alpha), np.where(flip, -alpha, beta), flip


def _log_interval_probability(a, b):
    """Compute ``log(Phi(b) - Phi(a))`` for ``a < b <= inf`` with ``a <= 0``.

    ``log Phi(b) + log(1 - exp(log Phi(a) - log Phi(b)))`` keeps its relative
    accuracy in the lower tail; ``a = -inf`` gives ``log Phi(b)`` exactly.
    """
    log_a, log_b = log_ndtr(a), log_ndtr(b)
    with np.errstate(divide="ignore"):
        return log_b + np.log(-np.expm1(log_a - log_b))


def truncated_normal_moments(alpha, beta):
    """Log-probability, mean and variance of ``N(0, 1)`` truncated to ``(alpha, beta)``.

    Intervals right of 0 are mirrored into the lower tail, where ``Phi``
    keeps its relative accuracy; there ``P = Phi(b) - Phi(a)`` by
    ``scipy.special.ndtr``, and by ``log_ndtr`` (eight times slower) when
    ``b < -20``, where ``Phi`` would underflow. An infinite bound is
    allowed, and both infinite give exactly ``(0, 0, 1)``: truncating to
    ``(-inf, inf)`` is an exact no-op.

    Parameters
    ----------
    alpha, beta : ndarray of the same shape
        Standardised bounds, ``alpha < beta``.

    Returns
    -------
    log_p : ndarray
        ``log(Phi(beta) - Phi(alpha))``.
    mean : ndarray
        ``(phi(alpha) - phi(beta)) / P``.
    var : ndarray
        ``1 + (alpha phi(alpha) - beta phi(beta)) / P - mean**2`` (by a series
        for intervals narrower than about ``1e-3``), clipped to ``[0, 1]``.
    """
    a, b, flip = _flip_to_lower_tail(alpha, beta)
    p = ndtr(b) - ndtr(a)
    tail = b < -20
    if tail.any():
        p = np.where(tail, 1.0, p)
    log_p = np.log(p)
    if tail.any():
        log_p = np.where(tail, _log_interval_probability(a, b), log_p)
    # phi(x) / P in log space; phi(+-inf) = 0 exactly.
    ratio_a = np.exp(-0.5 * a * a - (0.5 * _LOG_2PI) - log_p)
    ratio_b = np.exp(-0.5 * b * b - (0.5 * _LOG_2PI) - log_p)
    mean = ratio_a - ratio_b
    # x phi(x) -> 0 at infinite x: the bound is capped so that inf * 0 is
    # never formed (its ratio is exactly 0 there).
    var = (
        1.0
        + np.maximum(a, -_HUGE) * ratio_a
        - np.minimum(b, _HUGE) * ratio_b
        - mean * mean
    )
    # That difference cancels for narrow intervals (relative error about
    # eps (1 + c^2) / h^2 at half-width h, midpoint c): there the series of
    # the tilted uniform, h^2/3 - h^4 (3 c^2 + 2) / 45, is accurate to
    # O((h max(1, |c|))^4) relative.
    half = 0.5 * (b - a)  # inf for an infinite bound
    if (half < 1e-3).any():
        center = 0.5 * (a + b)
        narrow = half * np.maximum(1.0, np.abs(center)) < 1e-3
        series = half * half * (1 / 3 - half * half * (3 * center * center + 2) / 45)
        var = np.where(narrow, series, var)
    var = np.minimum(np.maximum(var, 0.0), 1.0)
    return log_p, mean * (1.0 - 2.0 * flip), var


def _draw_truncated_standard(alpha, beta, u):
    """Draw ``N(0, 1)`` truncated to ``(alpha, beta)`` by inverse CDF, in log space.

    Parameters
    ----------
    alpha, beta : ndarray
        Standardised bounds (``-inf`` and ``inf`` allowed).
    u : ndarray
        Uniform(0, 1) numbers of the same shape.

    Returns
    -------
    x : ndarray
    """
    a, b, flip = _flip_to_lower_tail(alpha, beta)
    log_a, log_b = log_ndtr(a), log_ndtr(b)
    # log(Phi(a) + u (Phi(b) - Phi(a))), exact at u = 0 and u = 1.
    with np.errstate(divide="ignore"):
        log_q = log_b + np.log(u + (1.0 - u) * np.exp(log_a - log_b))
    x = np.clip(ndtri_exp(np.minimum(log_q, 0.0)), a, b)
    return np.where(flip, -x, x)


def _standard_truncated_mean(lower, upper):
    """Mean of ``N(0, 1)`` truncated to ``(lower, upper)`` (0 for both infinite)."""
    return truncated_normal_moments(lower, upper)[1]


# ---------------------------------------------------------------------------
# Marginals
# ---------------------------------------------------------------------------


def _check_codes(column, n_levels, j):
    """Raise ValueError unless ``column`` holds codes ``0 .. n_levels - 1`` or NaN."""
    values = column[~np.isnan(column)]
    bad = (values != np.floor(values)) | (values < 0) | (values >= n_levels)
    if bad.any():
        raise ValueError(
            f"Column {j} must hold level codes 0 to {n_levels - 1} (or NaN). "
            f"Got {float(values[np.flatnonzero(bad)[0]])!r} instead."
        )


@dataclass(frozen=True)
class CopulaMarginals:
    """Each column's marginal distribution, estimated from its observed entries.

    Continuous column ``j``: the distinct observed values ``v_1 < ... < v_m``
    with (weights ``w_r``, total ``W``, mean row weight ``w0 = W / n_j``) the
    mid-rank CDF values ``F_j(v_r) = (C_{r-1} + (w_r + w0) / 2) / (W + w0)``,
    ``C_r = w_1 + ... + w_r``. Without weights and ties that is
    ``rank / (n + 1)``, the empirical CDF scaled by ``n / (n + 1)`` (DESIGN
    §7); tied values share one score. Ordinal column ``j``: level
    probabilities ``p_jl`` (weighted frequencies) and cut points
    ``cut_jl = Phi^-1(p_j0 + ... + p_j,l-1)``, ``l = 0 .. L_j`` (so
    ``cut_j0 = -inf`` and ``cut_jL = inf``).

    Attributes
    ----------
    ordinal : ndarray of bool of shape (n_features,)
    support : tuple of (ndarray or None)
        Per column, the sorted distinct observed values (continuous; empty
        when nothing is observed); None for ordinal columns.
    cdf : tuple of (ndarray or None)
        Per continuous column, ``F_j`` at ``support``.
    cell_bounds : tuple of (ndarray or None)
        Per continuous column, ``(C_r + w0 / 2) / (W + w0)``, ``r = 1 ..
        m - 1``: the CDF values between which a latent value maps back to
        ``v_r`` when the column is :attr:`discrete` (cells of width
        proportional to each value's weight; each ``F_j(v_r)`` inside its own).
    tails : ndarray of shape (n_features, 2)
        CDF value given to values below the smallest and above the largest
        observed one, ``(w0 / 2) / (W + w0)`` and its mirror (half a rank
        beyond the range); NaN for ordinal columns.
    discrete : ndarray of bool of shape (n_features,)
        Continuous columns whose observed values are all integers: mapped back
        without interpolation, so an imputed count is a count.
    cuts : tuple of (ndarray or None)
        Per ordinal column the ``L_j + 1`` latent cut points; None for
        continuous columns. What :class:`CopulaFamily` takes.
    """

    ordinal: np.ndarray
    support: tuple
    cdf: tuple
    cell_bounds: tuple
    tails: np.ndarray
    discrete: np.ndarray
    cuts: tuple

    @classmethod
    def estimate(cls, X, ordinal, sample_weight=None, n_levels=None):
        """Estimate the marginals from the observed entries of ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            NaN for missing entries; ordinal columns hold level codes.
        ordinal : array-like of bool of shape (n_features,)
            True for ordinal (and binary) columns.
        sample_weight : ndarray of shape (n_samples,) or None, default=None
            Row weights of the empirical CDFs and level frequencies; rows of
            weight 0 are ignored.
        n_levels : sequence of int or None, default=None
            Number of levels of each ordinal column (entries for continuous
            columns are ignored); None: one more than the largest observed
            code. A level never observed gets half the mean row weight as its
            count, so that its interval is not empty.

        Returns
        -------
        marginals : CopulaMarginals

        Raises
        ------
        ValueError
            If ``ordinal`` does not have one entry per column, or an ordinal
            column holds a value that is not a level code.
        """
        X = np.asarray(X, dtype=np.float64)
        n_samples, n_features = X.shape
        ordinal = np.asarray(ordinal, dtype=bool).ravel()
        if ordinal.shape != (n_features,):
            raise ValueError(
                f"Expected ordinal of length {n_features} but got {ordinal.size}."
            )
        weight = (
            np.ones(n_samples)
            if sample_weight is None
            else np.asarray(sample_weight, dtype=np.float64)
        )
        support, cdf, cell_bounds, cuts = [], [], [], []
        tails = np.full((n_features, 2), np.nan)
        discrete = np.zeros(n_features, dtype=bool)
        for j in range(n_features):
            keep = ~np.isnan(X[:, j]) & (weight > 0)
            x, w = X[keep, j], weight[keep]
            if ordinal[j]:
                levels = None if n_levels is None else n_levels[j]
                if levels is None:
                    levels = int(x.max()) + 1 if x.size else 1
                _check_codes(X[:, j], levels, j)
                counts = np.bincount(x.astype(np.intp), weights=w, minlength=levels)
                unseen = counts == 0
                counts[unseen] = 0.5 * w.mean() if w.size else 1.0
                cumulative = np.cumsum(counts[:-1]) / counts.sum()
                cuts.append(np.concatenate([[-np.inf], ndtri(cumulative), [np.inf]]))
                support.append(None)
                cdf.append(None)
                cell_bounds.append(None)
                continue
            values, inverse = np.unique(x, return_inverse=True)
            w_values = np.bincount(inverse, weights=w, minlength=values.size)
            total = w_values.sum()
            w0 = total / max(x.size, 1)
            cum = np.cumsum(w_values)
            support.append(values)
            cdf.append((cum - 0.5 * w_values + 0.5 * w0) / (total + w0))
            cell_bounds.append((cum[:-1] + 0.5 * w0) / (total + w0))
            if values.size:
                tails[j] = np.array([0.5 * w0, total + 0.5 * w0]) / (total + w0)
                discrete[j] = bool(np.all(values == np.round(values)))
            cuts.append(None)
        return cls(
            ordinal,
            tuple(support),
            tuple(cdf),
            tuple(cell_bounds),
            tails,
            discrete,
            tuple(cuts),
        )

    @property
    def n_levels(self):
        """Number of levels of each ordinal column (0 for continuous ones)."""
        return np.array([0 if c is None else c.size - 1 for c in self.cuts])

    def level_probabilities(self, j):
        """Return the level probabilities of ordinal column ``j`` (from its cuts)."""
        return np.diff(ndtr(self.cuts[j]))

    def to_latent(self, X):
        """Map data to the copula model's input.

        Continuous columns become normal scores ``Phi^-1(F_j(x))``: an
        observed value of the fit gets its own score; another value the
        linear interpolation of ``F_j`` between its neighbours, and a value
        beyond the observed range the tail value (half a rank beyond); a
        column with nothing observed at fit maps to 0. Ordinal columns keep
        their level codes. NaN stays NaN.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            A new float64 array.

        Raises
        ------
        ValueError
            If an ordinal column holds a value that is not one of its codes.
        """
        Z = np.array(X, dtype=np.float64)
        for j in range(Z.shape[1]):
            column = Z[:, j]
            if self.ordinal[j]:
                _check_codes(column, self.cuts[j].size - 1, j)
                continue
            observed = ~np.isnan(column)
            values = self.support[j]
            if not values.size:
                column[observed] = 0.0
                continue
            low, high = self.tails[j]
            u = np.interp(column[observed], values, self.cdf[j], left=low, right=high)
            column[observed] = ndtri(u)
        return Z

    def from_latent(self, Z):
        """Map latent values back to data through the empirical quantile functions.

        Continuous column: ``u = Phi(z)``; a :attr:`discrete` column returns
        the observed value whose cell (:attr:`cell_bounds`) holds ``u``,
        another column interpolates ``F_j^-1`` linearly between observed
        values (clipped to their range). Either way the result is within the
        observed range and an observed value's score maps back to it (to
        rounding when interpolated: callers put observed entries back
        themselves). A column with nothing observed at fit gives NaN. Ordinal
        columns (level codes) pass through. NaN stays NaN.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_features)

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            A new float64 array.
        """
        X = np.array(Z, dtype=np.float64)
        for j in range(X.shape[1]):
            if self.ordinal[j]:
                continue
            column = X[:, j]
            present = ~np.isnan(column)
            values = self.support[j]
            if not values.size:
                column[present] = np.nan
                continue
            u = ndtr(column[present])
            if self.discrete[j]:
                column[present] = values[np.searchsorted(self.cell_bounds[j], u)]
            else:
                column[present] = np.interp(u, self.cdf[j], values)
        return X


# ---------------------------------------------------------------------------
# Prepared data
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CopulaData(MissingData):
    """Rows prepared for :class:`CopulaFamily`: a :class:`MissingData` plus bounds.

    ``missing_mask`` marks the entries that are not exactly observed (ordinal
    entries and missing entries), so the chunks group rows by their number
    of such entries and ``Chunk.missing_cols`` lists them.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        Sorted; exactly observed latent values, the level code at observed
        ordinal entries, 0 at missing entries.
    lower, upper : ndarray of shape (n_samples, n_features)
        Sorted latent bounds of each entry that is not exact: the level's
        interval at an observed ordinal entry, ``(-inf, inf)`` at a missing
        one; the value itself at exact entries.
    sweep_order : ndarray of shape (n_samples, n_features)
        Row ``i``'s first ``s_i`` entries order its ``s_i`` non-exact entries
        (positions in ``Chunk.missing_cols``) for the E-step's sweep: finite
        intervals first, the least probable under the standard normal first
        (see :func:`_sweep_order`). Depends on the data only.
    pattern : ndarray of int of shape (n_samples,)
        Each row's pattern of non-exact columns, numbered within its chunk
        (0 .. U - 1): rows of one pattern share the conditioning of every
        component on the exact entries.
    """

    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    sweep_order: np.ndarray | None = None
    pattern: np.ndarray | None = None

    def _informative(self):
        """Observed entries and their initial latent values.

        Returns
        -------
        filled : ndarray of shape (n_samples, n_features)
            Exact values; the truncated standard-normal mean of the interval
            at an observed ordinal entry; 0 at a missing entry.
        observed : ndarray of bool of shape (n_samples, n_features)
            Exact entries and ordinal entries with a finite bound.
        """
        observed = (
            ~self.missing_mask | np.isfinite(self.lower) | np.isfinite(self.upper)
        )
        interval = self.missing_mask & observed
        filled = self.X.copy()
        filled[interval] = _standard_truncated_mean(
            self.lower[interval], self.upper[interval]
        )
        return filled, observed

    def observed_counts(self):
        """Each column's (weighted) number of observed entries (ordinal ones too)."""
        _, observed = self._informative()
        if self.weights is None:
            return observed.sum(axis=0)
        return self.weights @ observed

    def observed_sums(self):
        """Each column's (weighted) sum of initial latent values (see mean_filled)."""
        filled, _ = self._informative()
        return filled.sum(axis=0) if self.weights is None else self.weights @ filled

    def column_moments(self):
        """Each column's mean and variance of the initial latent values."""
        filled, observed = self._informative()
        return column_moments(filled, observed, self.weights)

    def _rows(self, lo, hi, chunks):
        block = super()._rows(lo, hi, chunks)
        return CopulaData(
            block.X,
            block.missing_mask,
            block.order,
            block.chunks,
            block.weights,
            lower=self.lower[lo:hi],
            upper=self.upper[lo:hi],
            sweep_order=self.sweep_order[lo:hi],
            pattern=self.pattern[lo:hi],  # numbered per chunk: cut at chunk bounds
        )

    def filled_with(self, means):
        """Initial latent rows: an ordinal entry gets its interval's truncated
        mean (of the standard normal: the latent margins are), a missing entry
        ``means`` (the column means of those values, in initialisation)."""
        filled, observed = self._informative()
        return np.where(observed, filled, means)


def _row_settings(settings, n_components):
    """Chunk budgets for the copula E-step, which holds ``(s, s, K, rows)`` arrays.

    The Gaussian's budget of ``block_elements`` counts one component's
    packed ``(s + 1, s + 1)`` blocks; the copula sweeps every component's
    full ``s x s`` blocks at once, about ``2 K`` times as many elements, so
    the budget is divided by ``K`` (and doubled).
    """
    settings = ChunkSettings() if settings is None else settings
    return replace(
        settings, block_elements=max(2 * settings.block_elements // n_components, 1)
    )


# ---------------------------------------------------------------------------
# The family
# ---------------------------------------------------------------------------


class _Terms:
    """One chunk's conditional moments under every component (see ``iter_terms``).

    Attributes
    ----------
    chunk : Chunk
    log_prob : ndarray of shape (n_rows, n_components)
        (Approximate) log-density of each row's information under each
        component.
    X0 : ndarray of shape (n_rows, n_features)
        The chunk's prepared rows (``CopulaData.X``).
    cols : ndarray of int of shape (n_rows, s)
        The rows' non-exact columns (sorted).
    lower, upper : ndarray of shape (n_rows, s)
        Their bounds.
    order : ndarray of int of shape (n_rows, s)
        Each row's sweep order of its positions (``CopulaData.sweep_order``).
    means : list over components of ndarray of shape (n_rows, s)
        ``E[z_M | row, k]`` (a transposed view).
    covs : list over components
        ``Cov[z_M | row, k]``: a :class:`_Covariance` for 'full' and 'tied',
        the variances ``(n_rows, s)`` for 'diag' and 'spherical'.
    nothing_observed : bool
    """

    def __init__(self, chunk, log_prob, X0, cols, lower, upper, order, means, covs):
        self.chunk = chunk
        self.order = order
        self.log_prob = log_prob
        self.X0 = X0
        self.cols = cols
        self.lower = lower
        self.upper = upper
        self.means = means
        self.covs = covs
        finite = np.isfinite(lower) | np.isfinite(upper)
        self.nothing_observed = cols.shape[1] == X0.shape[1] and not finite.any()


@dataclass(frozen=True)
class _Covariance:
    """One component's conditional covariances of a chunk's non-exact entries.

    Row ``i``'s covariance is ``patterns[:, :, pattern[i]] - sum_t W_ti W_ti'``:
    the covariance given the exact entries, shared by the rows of a pattern,
    less the Mendell-Elston sweep's rank-one reductions.

    Attributes
    ----------
    patterns : ndarray of shape (s, s, n_patterns)
    pattern : ndarray of int of shape (n_rows,)
    reductions : ndarray of shape (T, s, n_rows) or None
        ``W``; None when no row has a finite interval.
    """

    patterns: np.ndarray
    pattern: np.ndarray
    reductions: np.ndarray | None


class _Accumulator:
    """Running sums of one block's E-step."""

    def __init__(self, params, full):
        n_components, n_features = params.means.shape
        self.params = params
        self.full = full
        self.s1 = np.zeros((n_components, n_features))
        self.s2 = np.zeros((n_components, n_features) + ((n_features,) if full else ()))


class CopulaFamily:
    """Gaussian-copula components: Gaussian in latent space, seen through intervals.

    The input (from :meth:`CopulaMarginals.to_latent`) holds normal scores
    in continuous columns and level codes in ordinal columns (NaN for
    missing). Component ``k`` is ``N(mu_k, S_k)`` on the latent vector; an
    ordinal code ``l`` of column ``j`` says ``cut_jl < z_j <= cut_j,l+1``. See
    the module docstring for the E-step and what is exact.

    Parameters
    ----------
    cuts : sequence of (ndarray or None)
        One entry per column: None for a continuous column, the ``L_j + 1``
        increasing latent cut points (``-inf`` first, ``inf`` last) of an
        ordinal column (:attr:`CopulaMarginals.cuts`).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
    prior : GaussianPrior or None, default=None
        On the latent means and covariances (see ``GaussianFamily``).
    means_init : ndarray of shape (n_components, n_features) or None, default=None
        Latent initial means.
    precisions_init : ndarray or None, default=None
        Latent initial precisions, in the covariance type's shape.
    draw_sweeps : int, default=5
        Gibbs sweeps that :meth:`posterior_draw` runs after its sequential
        draw (see there).

    Raises
    ------
    ValueError
        If an ordinal column's cut points do not increase from ``-inf`` to
        ``inf``.
    """

    def __init__(
        self,
        cuts,
        covariance_type,
        reg_covar,
        *,
        prior=None,
        means_init=None,
        precisions_init=None,
        draw_sweeps=5,
    ):
        self.cuts = tuple(None if c is None else np.asarray(c, float) for c in cuts)
        for j, c in enumerate(self.cuts):
            if c is None:
                continue
            if not (
                c.ndim == 1
                and c.size >= 2
                and c[0] == -np.inf
                and c[-1] == np.inf
                and np.all(np.diff(c) > 0)
            ):
                raise ValueError(
                    f"The cut points of column {j} must increase from -inf to inf. "
                    f"Got {c!r} instead."
                )
        self.ordinal = np.array([c is not None for c in self.cuts], dtype=bool)
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.prior = prior
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.draw_sweeps = draw_sweeps
        self.gaussian = GaussianFamily(
            covariance_type,
            reg_covar,
            prior=prior,
            means_init=means_init,
            precisions_init=precisions_init,
        )

    @property
    def _full(self):
        return self.covariance_type in ("full", "tied")

    # -- data ------------------------------------------------------------------

    def prepare(self, X, n_components, sample_weight=None, settings=None):
        """Prepare latent rows: exact entries, and bounds of the others.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Normal scores in continuous columns, level codes in ordinal ones,
            NaN for missing entries.
        n_components : int
        sample_weight : ndarray of shape (n_samples,) or None, default=None
        settings : ChunkSettings or None, default=None

        Returns
        -------
        data : CopulaData

        Raises
        ------
        ValueError
            If ``X`` does not have one column per cut entry, or an ordinal
            column holds a value that is not one of its codes.
        """
        X = np.asarray(X, dtype=np.float64)
        n_features = len(self.cuts)
        if X.ndim != 2 or X.shape[1] != n_features:
            raise ValueError(f"Expected {n_features} columns but got {X.shape[-1]}.")
        lower = np.where(np.isnan(X), -np.inf, X)  # (n_samples, n_features)
        upper = np.where(np.isnan(X), np.inf, X)
        for j in np.flatnonzero(self.ordinal):
            cuts = self.cuts[j]
            _check_codes(X[:, j], cuts.size - 1, j)
            present = ~np.isnan(X[:, j])
            codes = X[present, j].astype(np.intp)
            lower[present, j] = cuts[codes]
            upper[present, j] = cuts[codes + 1]
        exact = ~np.isnan(X) & ~self.ordinal
        data = prepare_missing_data(
            np.where(exact, X, np.nan),
            n_components,
            sample_weight,
            settings=_row_settings(settings, n_components),
        )
        order = data.order
        X_sorted = data.X
        codes_sorted = np.take(X, order, axis=0)
        ordinal_observed = ~np.isnan(codes_sorted) & self.ordinal
        X_sorted[ordinal_observed] = codes_sorted[ordinal_observed]
        lower, upper = np.take(lower, order, axis=0), np.take(upper, order, axis=0)
        sweep_order = np.zeros(X.shape, dtype=np.min_scalar_type(n_features))
        pattern = np.zeros(len(X), dtype=np.intp)
        for chunk in data.chunks:
            cols = chunk.missing_cols.astype(np.intp)
            rows = slice(chunk.start, chunk.stop)
            sweep_order[rows, : cols.shape[1]] = _sweep_order(
                np.take_along_axis(lower[rows], cols, axis=1),
                np.take_along_axis(upper[rows], cols, axis=1),
            )
            if not chunk.shared and cols.shape[1]:
                pattern[rows] = np.unique(cols, axis=0, return_inverse=True)[1].ravel()
        return CopulaData(
            X_sorted,
            data.missing_mask,
            order,
            data.chunks,
            data.weights,
            lower=lower,
            upper=upper,
            sweep_order=sweep_order,
            pattern=pattern,
        )

    # -- E-step ----------------------------------------------------------------

    def _component_arrays(self, params):
        """Per-component precisions (full) or variances (diag), and log-dets."""
        ct = self.covariance_type
        n_components, n_features = params.means.shape
        if ct in ("full", "tied"):
            prec_chol = params.precisions_cholesky
            if ct == "tied":
                prec_chol = np.broadcast_to(
                    prec_chol, (n_components, n_features, n_features)
                )
            precisions = prec_chol @ np.swapaxes(prec_chol, 1, 2)  # (K, d, d)
            log_det = -2 * np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(1)
            return precisions, log_det  # log det S_k
        variances = np.broadcast_to(
            params.covariances.reshape(n_components, -1), (n_components, n_features)
        )
        return variances, None

    def iter_terms(self, params, block, accumulator=None):
        """Yield ``(chunk, terms)`` for every chunk of ``block``.

        ``terms.log_prob`` (n_rows, n_components) is the log-density of each
        row's exact entries and intervals under each component (the
        Mendell-Elston approximation when a row has several finite
        intervals, 'full' and 'tied' only); the terms also hold each
        component's conditional moments of the non-exact entries.
        """
        arrays, log_det = self._component_arrays(params)
        n_components = params.means.shape[0]
        for chunk in block.chunks:
            sl = slice(chunk.start, chunk.stop)
            X0 = block.X[sl]
            cols = chunk.missing_cols.astype(np.intp)  # (n_rows, s)
            s = cols.shape[1]
            lower = np.take_along_axis(block.lower[sl], cols, axis=1)
            upper = np.take_along_axis(block.upper[sl], cols, axis=1)
            order = block.sweep_order[sl, :s].astype(np.intp)
            if self._full:
                # Every component at once: batch axes (component, row) last.
                pattern = block.pattern[sl]
                log_prob, mean, cov, _ = _condition_full(
                    arrays, log_det, params.means, X0, cols, pattern
                )
                n_finite = (np.isfinite(lower) | np.isfinite(upper)).sum(axis=1)
                reductions = None
                if n_finite.any():
                    mean, reductions, log_p = _sweep_full(
                        mean, cov, pattern, lower.T, upper.T, order, n_finite
                    )
                    log_prob += log_p
                means = [mean[:, k].T for k in range(n_components)]
                covs = [
                    _Covariance(
                        cov[:, :, k],
                        pattern,
                        None if reductions is None else reductions[:, :, k],
                    )
                    for k in range(n_components)
                ]
                log_prob = log_prob.T
            else:
                log_prob, mean, var = _condition_diag(
                    arrays, params.means, X0, cols, lower, upper
                )
                log_prob = log_prob.T
                means, covs = list(mean), list(var)
            yield (
                chunk,
                _Terms(chunk, log_prob, X0, cols, lower, upper, order, means, covs),
            )

    def accumulator(self, params, block):
        """Return empty running sums for one block's E-step."""
        return _Accumulator(params, self._full)

    def accumulate(self, accumulator, terms, resp, rows):
        """Add one chunk's expected first and second moments about the means.

        ``s1_k += sum_i r_ik (z_hat_ik - mu_k)``,
        ``s2_k += sum_i r_ik ((z_hat_ik - mu_k)(z_hat_ik - mu_k)' + C_ik)``
        (diagonals only for 'diag' and 'spherical'), with ``z_hat`` the exact
        entries and the conditional means of the others.

        Parameters
        ----------
        accumulator : object from :meth:`accumulator`
        terms : _Terms
        resp : ndarray of shape (n_rows, n_components)
            Responsibilities, already multiplied by the rows' sample weights.
        rows : list over components of (ndarray of int, or None)
            The rows whose responsibility is not negligible (None: all).
        """
        acc = accumulator
        means = acc.params.means
        n_features = means.shape[1]
        cols = terms.cols
        s = cols.shape[1]
        for k, sel in enumerate(rows):
            sel = slice(None) if sel is None else sel
            r = resp[sel, k]  # (n_sel,)
            mean = terms.means[k][sel]
            dev = terms.X0[sel] - means[k]  # (n_sel, n_features)
            c = cols[sel]
            if s:
                np.put_along_axis(dev, c, mean - means[k][c], axis=1)
            acc.s1[k] += r @ dev
            cov = terms.covs[k]
            if acc.full:
                w = dev * np.sqrt(r)[:, None]
                acc.s2[k] += w.T @ w
                if s:
                    acc.s2[k] += _scatter_full(r, cov, sel, c, n_features)
            else:
                acc.s2[k] += r @ (dev * dev)
                if s:
                    cov = cov[sel]
                    acc.s2[k] += np.bincount(
                        c.ravel(),
                        weights=(cov * r[:, None]).ravel(),
                        minlength=n_features,
                    )

    def statistics(self, accumulator):
        """Return the block's :class:`GaussianStats` (about the E-step's means)."""
        acc = accumulator
        return GaussianStats(s1=acc.s1, s2=acc.s2, ref=acc.params.means)

    def complete_data_statistics(self, X, resp):
        """Statistics of mean-filled latent rows (initialisation; the Gaussian's)."""
        return self.gaussian.complete_data_statistics(X, resp)

    # -- M-step, prior, initialisation, SQUAREM: the Gaussian family's ----------

    def m_step(self, stats, raw_nk, nk):
        """The Gaussian M-step on the latent statistics (``GaussianFamily.m_step``)."""
        return self.gaussian.m_step(stats, raw_nk, nk)

    def log_prior(self, params):
        return self.gaussian.log_prior(params)

    @property
    def fully_initialised(self):
        return self.gaussian.fully_initialised

    def initial_params(self, estimate):
        return self.gaussian.initial_params(estimate)

    def flatten(self, params):
        return self.gaussian.flatten(params)

    def unflatten(self, vector, like):
        return self.gaussian.unflatten(vector, like)

    # -- inference -------------------------------------------------------------

    def conditional_mean(self, params, terms, resp):
        """Compute each row's imputation in the model's input space.

        * continuous missing entry: ``E[z_j | row] = sum_k r_ik E[z_j | row, k]``
          (a latent value: map it back with :meth:`CopulaMarginals.from_latent`);
        * ordinal missing entry: the median level of
          ``P(level l | row) = sum_k r_ik P(cut_jl < z_j <= cut_j,l+1 | row, k)``
          (it minimises the expected absolute error of the level; for a binary
          column it is the most probable level), as a code;
        * observed entries as given (latent score or code).

        ``P(. | row, k)`` is the normal law of ``z_j`` with the moments of
        ``iter_terms``: exact when the row has no finite interval (only exact
        entries observed) or the covariance is 'diag' or 'spherical';
        otherwise ``z_j`` given an interval of another entry is not normal,
        and its law is moment matched (exact moments with one interval).

        Returns
        -------
        X_hat : ndarray of shape (n_rows, n_features)
        """
        out = terms.X0.copy()
        cols = terms.cols
        if not cols.shape[1]:
            return out
        n_rows, s = cols.shape
        is_ordinal = self.ordinal[cols]  # (n_rows, s)
        finite = np.isfinite(terms.lower) | np.isfinite(terms.upper)
        continuous = ~is_ordinal
        if continuous.any():
            mixed = sum(resp[:, k, None] * m for k, m in enumerate(terms.means))
            current = np.take_along_axis(out, cols, axis=1)
            np.put_along_axis(out, cols, np.where(continuous, mixed, current), axis=1)
        target = is_ordinal & ~finite
        if not target.any():
            return out
        sds = [np.sqrt(self._variance(cov)) for cov in terms.covs]  # (n_rows, s)
        for j in np.unique(cols[target]):
            row, pos = np.nonzero(target & (cols == j))
            interior = self.cuts[j][1:-1]  # (L_j - 1,)
            cdf = np.zeros((row.size, interior.size))  # P(z_j <= cut | row)
            for k, (mean, sd) in enumerate(zip(terms.means, sds, strict=True)):
                standardised = (interior - mean[row, pos, None]) / sd[row, pos, None]
                cdf += resp[row, k, None] * ndtr(standardised)
            out[row, j] = (cdf < 0.5).sum(axis=1)
        return out

    def _variance(self, cov):
        """Conditional variances ``(n_rows, s)`` from a terms' covariance entry."""
        if not self._full:
            return cov
        variances = np.diagonal(cov.patterns, axis1=0, axis2=1)[cov.pattern]
        if cov.reductions is not None:
            variances = variances - np.einsum(
                "usn,usn->ns", cov.reductions, cov.reductions
            )
        return variances

    def posterior_draw(self, params, terms, component, random_state):
        """Draw each row's non-exact entries given its drawn component.

        With ``z_M | z_O, k ~ N(m, C)`` (exact conditioning on the exact
        entries), the entries of ``M`` are first drawn one after the other,
        those with a finite interval first, each from its current conditional
        (truncated to its interval), the others' conditional law updated on
        the drawn value; then :attr:`draw_sweeps` Gibbs sweeps redraw each
        entry from its exact conditional given all the others (a univariate
        normal from the precision ``P_MM``, truncated to the interval).

        The sequential draw is exact when the row has at most one finite
        interval; with several it is approximate (the first entries ignore
        the later intervals: GHK's proposal), and the Gibbs sweeps move it
        towards the exact truncated law (a Markov chain, exact only in the
        limit). For 'diag' and 'spherical' the entries are independent and
        every draw is exact.

        Parameters
        ----------
        params : GaussianParams
        terms : _Terms
        component : ndarray of int of shape (n_rows,)
        random_state : RandomState

        Returns
        -------
        X_draw : ndarray of shape (n_rows, n_features)
            Latent draws at continuous missing entries, drawn level codes at
            ordinal missing entries; observed entries as given.
        """
        out = terms.X0.copy()
        cols = terms.cols
        n_rows, s = cols.shape
        if not s:
            return out
        u = random_state.uniform(size=(1 + self.draw_sweeps, n_rows, s))
        draw = np.empty((n_rows, s))
        arrays, log_det = self._component_arrays(params)
        for k in range(params.means.shape[0]):
            rows = np.flatnonzero(component == k)
            if not rows.size:
                continue
            lower, upper = terms.lower[rows], terms.upper[rows]
            if self._full:
                one = slice(k, k + 1)
                # Renumbered 0 .. U - 1 within these rows.
                _, pattern = np.unique(terms.covs[k].pattern[rows], return_inverse=True)
                _, mean, cov, prec = _condition_full(
                    arrays[one],
                    log_det[one],
                    params.means[one],
                    terms.X0[rows],
                    cols[rows],
                    pattern,
                )
                draw[rows] = _draw_full(
                    mean[:, 0],
                    cov[:, :, 0, pattern],
                    prec[:, :, 0, pattern],
                    lower.T,
                    upper.T,
                    terms.order[rows],
                    u[:, rows],
                    self.draw_sweeps,
                ).T
            else:
                mean = params.means[k][cols[rows]]
                sd = np.sqrt(arrays[k][cols[rows]])
                draw[rows] = mean + sd * _draw_truncated_standard(
                    (lower - mean) / sd, (upper - mean) / sd, u[0, rows]
                )
        is_ordinal = self.ordinal[cols]
        finite = np.isfinite(terms.lower) | np.isfinite(terms.upper)
        values = np.where(is_ordinal, np.take_along_axis(out, cols, axis=1), draw)
        for j in np.unique(cols[is_ordinal & ~finite]):
            row, pos = np.nonzero(is_ordinal & ~finite & (cols == j))
            values[row, pos] = np.searchsorted(self.cuts[j][1:-1], draw[row, pos])
        np.put_along_axis(out, cols, values, axis=1)
        return out

    # -- parameters and fitted attributes --------------------------------------

    def n_parameters(self, params):
        """Number of free latent parameters (the Gaussian count; cuts not counted)."""
        return self.gaussian.n_parameters(params)

    def sample(self, params, counts, random_state):
        """Draw latent rows from each component and cut ordinal columns into codes.

        Returns
        -------
        X : ndarray of shape (counts.sum(), n_features)
            Latent values in continuous columns (map them with
            :meth:`CopulaMarginals.from_latent`), codes in ordinal ones.
        """
        Z = self.gaussian.sample(params, counts, random_state)
        for j in np.flatnonzero(self.ordinal):
            Z[:, j] = np.searchsorted(self.cuts[j][1:-1], Z[:, j])
        return Z

    def attributes(self, params):
        """The Gaussian's fitted attributes, of the latent components."""
        return self.gaussian.attributes(params)

    def params_from_attributes(self, estimator):
        return self.gaussian.params_from_attributes(estimator)


# ---------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------


def _condition_full(precisions, log_det_covs, means, X0, cols, pattern):
    """Condition every component on each row's exact entries (precision form).

    DESIGN §2 with ``M`` the row's non-exact entries: ``C = inv(P_MM)``,
    ``m = mu_M - C (P d0)_M``, ``logdet S_OO = logdet S + logdet P_MM`` and
    ``d_O' inv(S_OO) d_O = d0' P d0 - (P d0)_M' C (P d0)_M``, ``d0`` the
    deviation with zeros on ``M``. ``C`` depends on the pattern only: one
    inverse per pattern and component, all of them at once by
    :func:`_sweep_inverse` (batch axes last, components before patterns).

    Parameters
    ----------
    precisions : ndarray of shape (n_components, n_features, n_features)
    log_det_covs : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    X0 : ndarray of shape (n_rows, n_features)
    cols : ndarray of int of shape (n_rows, s)
    pattern : ndarray of int of shape (n_rows,)
        Rows with the same ``cols`` have the same number, ``0 .. U - 1``.

    Returns
    -------
    log_norm : ndarray of shape (n_components, n_rows)
        ``log N(z_O; mu_O, S_OO)`` (0 when nothing is exact).
    mean : ndarray of shape (s, n_components, n_rows)
    cov : ndarray of shape (s, s, n_components, U)
        ``C`` of each pattern.
    prec : ndarray of shape (s, s, n_components, U) or None
        ``P_MM`` of each pattern (None when ``s = 0``).
    """
    n_rows, s = cols.shape
    n_components, n_features = means.shape
    dev = X0 - means[:, None, :]  # (K, n_rows, n_features)
    if s:
        np.put_along_axis(dev, np.broadcast_to(cols, dev.shape[:2] + (s,)), 0.0, 2)
    g = dev @ precisions  # (K, n_rows, n_features)
    quad = np.einsum("kij,kij->ki", dev, g)
    log_det_covs = log_det_covs[:, None]
    if not s:
        log_norm = -0.5 * (n_features * _LOG_2PI + log_det_covs + quad)
        empty = np.empty((0, 0, n_components, 1))
        return log_norm, np.empty((0, n_components, n_rows)), empty, None
    # The first row of each pattern gives its columns.
    _, first = np.unique(pattern, return_index=True)
    by_pattern = cols[first].T[:, None, None, :]  # (s, 1, 1, U)
    prec = np.moveaxis(precisions, 0, -1)[
        by_pattern, np.swapaxes(by_pattern, 0, 1), np.arange(n_components)[:, None]
    ]  # (s, s, K, U)
    cov, log_det_prec_mm = _sweep_inverse(prec)
    g_m = np.moveaxis(
        np.take_along_axis(g, np.broadcast_to(cols, g.shape[:2] + (s,)), axis=2),
        2,
        0,
    )  # (s, K, n_rows)
    if first.size == 1:
        cg = np.einsum("ijk,jkn->ikn", cov[..., 0], g_m)
    else:
        cg = np.einsum("ijkn,jkn->ikn", cov[..., pattern], g_m)  # (s, K, n_rows)
    mean = np.moveaxis(means[:, cols], 2, 0) - cg
    if s == n_features:
        log_norm = np.zeros((n_components, n_rows))
    else:
        log_norm = -0.5 * (
            (n_features - s) * _LOG_2PI
            + log_det_covs
            + log_det_prec_mm[:, pattern]
            + quad
            - np.einsum("ikn,ikn->kn", g_m, cg)
        )
    return log_norm, mean, cov, prec


def _sweep_inverse(matrices):
    """Invert symmetric positive definite matrices, batch last, by the sweep operator.

    Sweeping pivot ``k`` maps ``a_kk -> -1 / a_kk``, ``a_ik -> a_ik / a_kk``
    and ``a_ij -> a_ij - a_ik a_kj / a_kk``; sweeping every pivot gives
    ``-inv(A)``, and the pivots are the successive Schur complements, whose
    logs add up to ``log det A``. ``s`` NumPy passes over ``(s, s, n)``
    arrays: much faster than ``np.linalg`` on a stack of small matrices,
    which pays a LAPACK call per matrix.

    Parameters
    ----------
    matrices : ndarray of shape (s, s, ...)

    Returns
    -------
    inverse : ndarray of shape (s, s, ...)
    log_det : ndarray of shape (...)
    """
    a = matrices.copy()
    log_det = np.zeros(a.shape[2:])
    for k in range(a.shape[0]):
        pivot = a[k, k].copy()  # (n,)
        log_det += np.log(pivot)
        row = a[k].copy()  # (s, ...)
        scaled = row / pivot
        a -= row[:, None] * scaled[None, :]
        a[k, :] = scaled
        a[:, k] = scaled
        a[k, k] = -1.0 / pivot
    a *= -1.0
    return a, log_det


def _sweep_order(lower, upper):
    """Each row's sweep order: finite intervals first, the least probable first.

    Probabilities under the standard normal (the latent margins: the rarest
    level first). The order depends on the data only, so the approximate
    log-likelihood is a smooth function of the parameters. Ranking by the
    conditional law at the current parameters (Gibbons & Genz's ordering)
    was measured about 20% more accurate on random boxes, but it makes the
    approximation jump where two ranks swap, and approximate EM then cycled
    (period ~5, changes of 1e-6 per row) instead of converging.

    Parameters
    ----------
    lower, upper : ndarray of shape (n_rows, s)

    Returns
    -------
    order : ndarray of int of shape (n_rows, s)
    """
    finite = np.isfinite(lower) | np.isfinite(upper)  # (n_rows, s)
    probability = np.where(
        lower > 0, ndtr(-lower) - ndtr(-upper), ndtr(upper) - ndtr(lower)
    )
    return np.argsort(np.where(finite, probability, 2.0), axis=1, kind="stable")


def _sweep_full(mean, cov, pattern, lower, upper, order, n_finite):
    """Mendell-Elston sweep: truncate each finite interval in turn, moment matching.

    At step ``t`` each row's entry ``p = order[i, t]`` has the current
    ``N(m_p, v_p)`` (under each component); its truncation to
    ``(lower_p, upper_p)`` has probability ``P``, mean ``m'_p`` and variance
    ``v'_p``; then ``m += c (m'_p - m_p) / v_p`` and
    ``C += c c' (v'_p - v_p) / v_p**2`` with ``c = C[:, p]`` (the Gaussian
    regression of the other entries on ``z_p``), and ``log P`` is added to
    the row's log-density. A row whose entry at step ``t`` has the interval
    ``(-inf, inf)`` gets exactly zero updates; entries without a finite
    interval are only updated through the others.

    Truncation never increases a variance (``v'_p <= v_p``), so the updates
    are rank-one reductions ``C_t = C_0 - sum_{u<t} w_u w_u'`` with
    ``w_t = c_t sqrt((v_t - v'_t) / v_t**2)``: a step needs only the column
    ``c_t = C_0[:, p] - sum_{u<t} w_u w_u[p]``, ``O(s t)`` per row instead of
    the ``O(s^2)`` of updating ``C``. Batch axes (component, row) last.

    Parameters
    ----------
    mean : ndarray of shape (s, n_components, n_rows)
    cov : ndarray of shape (s, s, n_components, U)
        ``C_0`` of each pattern.
    pattern : ndarray of int of shape (n_rows,)
    lower, upper : ndarray of shape (s, n_rows)
    order : ndarray of int of shape (n_rows, s)
        Each row's sweep order (finite intervals first, :func:`_sweep_order`).
    n_finite : ndarray of int of shape (n_rows,)
        Each row's number of finite intervals.

    Returns
    -------
    mean : ndarray of shape (s, n_components, n_rows)
    reductions : ndarray of shape (T, s, n_components, n_rows)
        The ``w_t``, ``T = n_finite.max()`` (zero where a row has fewer).
    log_p : ndarray of shape (n_components, n_rows)
    """
    s, n_components, n_rows = mean.shape
    n_steps = int(n_finite.max())
    mean = mean.copy()
    reductions = np.zeros((n_steps, s, n_components, n_rows))
    log_p = np.zeros((n_components, n_rows))
    component = np.arange(n_components)[:, None]
    for t in range(n_steps):
        rows = np.flatnonzero(n_finite > t)
        if rows.size >= n_rows // 2:
            # Cheaper than gathering the rows: a row whose interval at this
            # step is (-inf, inf) gets exactly zero updates.
            rows = slice(None)
            index = np.arange(n_rows)
        else:
            index = rows
        p = order[rows, t]  # (n_sel,)
        # c_t = C_0[:, p] - sum_{u<t} w_u w_u[p]
        # Advanced indexing leaves the gathered axis last in memory: copy to
        # rows-last order, which the updates below stream through (4x faster).
        c = np.ascontiguousarray(cov[:, p, component, pattern[index]])  # (s, K, n)
        local = np.arange(p.size)
        if t:
            done = reductions[:t, :, :, rows]  # (t, s, K, n_sel)
            at_p = np.ascontiguousarray(done[:, p, component, local])  # (t, K, n)
            c -= np.einsum("uski,uki->ski", done, at_p)
        m_p = mean[p, component, index]  # (K, n_sel)
        v = c[p, component, local]
        sd = np.sqrt(v)
        log_pt, shift, ratio = truncated_normal_moments(
            (lower[p, index] - m_p) / sd, (upper[p, index] - m_p) / sd
        )
        mean[:, :, rows] += c * (shift / sd)
        reductions[t][:, :, rows] = c * np.sqrt((1.0 - ratio) / v)
        log_p[:, rows] += log_pt
    return mean, reductions, log_p


def _condition_diag(variances, means, X0, cols, lower, upper):
    """Log-densities and moments under diagonal covariances (exact), all components.

    The entries are independent given the component: the exact entries give
    ``sum_O log N(z_j; mu_j, S_jj)``, each interval its own probability and
    truncated moments.

    Parameters
    ----------
    variances, means : ndarray of shape (n_components, n_features)
    X0 : ndarray of shape (n_rows, n_features)
    cols : ndarray of int of shape (n_rows, s)
    lower, upper : ndarray of shape (n_rows, s)

    Returns
    -------
    log_norm : ndarray of shape (n_components, n_rows)
    mean, var : ndarray of shape (n_components, n_rows, s)
    """
    dev = X0 - means[:, None, :]  # (K, n_rows, n_features)
    if cols.shape[1]:
        np.put_along_axis(
            dev, np.broadcast_to(cols, dev.shape[:2] + cols.shape[1:]), 0.0, 2
        )
    per_entry = _LOG_2PI + np.log(variances)  # (K, n_features)
    quad = np.einsum("knd,knd,kd->kn", dev, dev, 1 / variances)
    log_norm = -0.5 * (
        per_entry.sum(axis=1)[:, None] - per_entry[:, cols].sum(axis=2) + quad
    )
    mean, var = means[:, cols], variances[:, cols]  # (K, n_rows, s)
    if not (np.isfinite(lower) | np.isfinite(upper)).any():
        return log_norm, mean, var
    sd = np.sqrt(var)
    log_p, shift, ratio = truncated_normal_moments(
        (lower - mean) / sd, (upper - mean) / sd
    )
    return log_norm + log_p.sum(axis=2), mean + sd * shift, var * ratio


def _dense_covariance(cov, rows=slice(None)):
    """Each selected row's conditional covariance, batch last (see ``_Covariance``).

    For inspection and the tests; the E-step never forms it (``_scatter_full``).

    Parameters
    ----------
    cov : _Covariance
    rows : slice or ndarray of int, default=slice(None)

    Returns
    -------
    dense : ndarray of shape (s, s, n_sel)
    """
    dense = cov.patterns[:, :, cov.pattern[rows]]
    if cov.reductions is not None:
        reductions = cov.reductions[:, :, rows]
        dense -= np.einsum("usn,utn->stn", reductions, reductions)
    return dense


def _scatter_full(r, cov, rows, cols, n_features):
    """``sum_i r_i C_i`` placed at each row's ``(cols_i, cols_i)`` block.

    The pattern covariances are weighted by their rows' total weight and
    added pattern by pattern (a ``bincount``); the sweep's reductions
    ``sum_i r_i sum_t w_ti w_ti'`` are one matrix product ``W' W`` of the
    ``w_ti sqrt(r_i)`` written into full-width rows ``(T n, n_features)``.

    Parameters
    ----------
    r : ndarray of shape (n_sel,)
        Weights of the rows ``rows``.
    cov : _Covariance
    rows : slice or ndarray of int
    cols : ndarray of int of shape (n_sel, s)
        The selected rows' columns.
    n_features : int

    Returns
    -------
    scatter : ndarray of shape (n_features, n_features)
    """
    s = cols.shape[1]
    pattern = cov.pattern[rows]
    n_patterns = cov.patterns.shape[-1]
    weight = np.bincount(pattern, weights=r, minlength=n_patterns)  # (U,)
    _, first = np.unique(pattern, return_index=True)
    by_pattern = np.zeros((n_patterns, s), dtype=np.intp)
    by_pattern[pattern[first]] = cols[first]
    by_pattern = by_pattern.T  # (s, U)
    flat = by_pattern[:, None, :] * n_features + by_pattern[None, :, :]  # (s, s, U)
    out = np.bincount(
        flat.ravel(),
        weights=(cov.patterns * weight).ravel(),
        minlength=n_features * n_features,
    ).reshape(n_features, n_features)
    if cov.reductions is not None:
        reductions = cov.reductions[:, :, rows] * np.sqrt(r)  # (T, s, n_sel)
        wide = np.zeros((len(reductions), len(r), n_features))  # (T, n_sel, d)
        np.put_along_axis(
            wide,
            np.broadcast_to(cols, wide.shape[:2] + (s,)),
            np.swapaxes(reductions, 1, 2),
            axis=2,
        )
        wide = wide.reshape(-1, n_features)
        out -= wide.T @ wide
    return out


def _draw_full(mean, cov, prec, lower, upper, order, u, n_sweeps):
    """Draw ``z_M`` given its Gaussian ``N(mean, cov)`` and per-entry intervals.

    Sequential draw in each row's sweep order (finite intervals first), then
    ``n_sweeps`` Gibbs sweeps with the precision ``prec`` (see
    ``CopulaFamily.posterior_draw``). Batch last.

    Parameters
    ----------
    mean : ndarray of shape (s, n_rows)
    cov, prec : ndarray of shape (s, s, n_rows or 1)
    lower, upper : ndarray of shape (s, n_rows)
    order : ndarray of int of shape (n_rows, s)
    u : ndarray of shape (1 + n_sweeps, n_rows, s)
        Uniform numbers.
    n_sweeps : int

    Returns
    -------
    z : ndarray of shape (s, n_rows)
    """
    s, n_rows = mean.shape
    every = np.arange(n_rows)
    m = mean.copy()
    C = np.array(np.broadcast_to(cov, (s, s, n_rows)))
    z = np.empty((s, n_rows))
    for t in range(s):
        p = order[:, t]
        v = np.maximum(C[p, p, every], np.finfo(np.float64).tiny)
        sd = np.sqrt(v)
        m_p = m[p, every]
        z_p = m_p + sd * _draw_truncated_standard(
            (lower[p, every] - m_p) / sd, (upper[p, every] - m_p) / sd, u[0, :, t]
        )
        z[p, every] = z_p
        c = np.ascontiguousarray(C[:, p, every])  # (s, n_rows)
        m += c * ((z_p - m_p) / v)
        C -= c[:, None, :] * (c / v)[None, :, :]
    for sweep in range(n_sweeps):
        for t in range(s):
            q = prec[t]  # (s, n_rows or 1)
            q_tt = q[t]
            dz = z - mean
            # E[z_t | z_-t] = m_t - sum_{j != t} Q_tj (z_j - m_j) / Q_tt
            cond = mean[t] - ((dz * q).sum(axis=0) - q_tt * dz[t]) / q_tt
            sd = 1.0 / np.sqrt(q_tt)
            z[t] = cond + sd * _draw_truncated_standard(
                (lower[t] - cond) / sd, (upper[t] - cond) / sd, u[1 + sweep, :, t]
            )
    return z
