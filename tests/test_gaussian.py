"""E-step and M-step of the Gaussian mixture with NaN, against naive oracles.

The oracles are deliberately slow and literal: a Python loop over rows using
``scipy.stats.multivariate_normal`` on the observed coordinates ``x_o`` and the
textbook conditional-Gaussian formulas (DESIGN §2),

* ``x_hat_m = mu_m + S_mo inv(S_oo) (x_o - mu_o)``,
* ``C_mm = S_mm - S_mo inv(S_oo) S_om``,

which is everything the package's precision form is supposed to reproduce.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters

from em_sklearn import EMClusterer, _mixture
from em_sklearn._gaussian import (
    COVARIANCE_TYPES,
    GaussianFamily,
    GaussianParams,
    GaussianStats,
    _kernels,
)
from em_sklearn._missing_data import ChunkSettings, prepare_missing_data
from em_sklearn._mixture import MixtureModel, MixtureParams, MixtureStats

N_SAMPLES, N_FEATURES, N_COMPONENTS = 200, 4, 3
MISSING_RATE = 0.3


# ---------------------------------------------------------------------------
# Helpers: the model with its Gaussian fields read as attributes, random
# parameters, random incomplete data, the naive oracle.
# ---------------------------------------------------------------------------


class _Params(MixtureParams):
    """Mixture parameters whose Gaussian fields read as attributes (for oracles)."""

    means = property(lambda self: self.components.means)
    covariances = property(lambda self: self.components.covariances)
    precisions_cholesky = property(lambda self: self.components.precisions_cholesky)
    covariance_type = property(lambda self: self.components.covariance_type)
    precisions = property(lambda self: self.components.precisions)

    @classmethod
    def from_covariances(cls, weights, means, covariances, covariance_type):
        components = GaussianParams.from_covariances(
            means, covariances, covariance_type
        )
        return cls(weights, components)


class _Stats(MixtureStats):
    """Mixture statistics whose Gaussian moments read as attributes."""

    s1 = property(lambda self: self.components.s1)
    s2 = property(lambda self: self.components.s2)
    ref = property(lambda self: self.components.ref)

    def __add__(self, other):
        return _Stats(**vars(MixtureStats.__add__(self, other)))


class _Model(MixtureModel):
    """The Gaussian mixture, answering with ``_Params`` and ``_Stats``."""

    def __init__(self, n_components, covariance_type, reg_covar, **settings):
        sweep_above = settings.pop("sweep_above", 0.6)
        family = GaussianFamily(covariance_type, reg_covar, sweep_above=sweep_above)
        super().__init__(family, n_components, **settings)

    def e_step(self, params, data):
        return _Stats(**vars(super().e_step(params, data)))

    def m_step(self, stats):
        return _Params(**vars(super().m_step(stats)))


def _random_params(rng, n_components, n_features, covariance_type):
    """Draw well-conditioned random mixture parameters of the given type."""
    weights = rng.dirichlet(np.full(n_components, 3.0))
    means = rng.normal(scale=2.0, size=(n_components, n_features))
    if covariance_type == "full":
        A = rng.normal(size=(n_components, n_features, n_features))
        covariances = A @ np.swapaxes(A, 1, 2) / n_features + 0.5 * np.eye(n_features)
    elif covariance_type == "tied":
        A = rng.normal(size=(n_features, n_features))
        covariances = A @ A.T / n_features + 0.5 * np.eye(n_features)
    elif covariance_type == "diag":
        covariances = rng.uniform(0.5, 2.0, size=(n_components, n_features))
    else:  # spherical
        covariances = rng.uniform(0.5, 2.0, size=n_components)
    return _Params.from_covariances(weights, means, covariances, covariance_type)


def _dense_covariance(params, k):
    """Return component ``k``'s covariance as a dense (d, d) matrix."""
    n_features = params.means.shape[1]
    ct = params.covariance_type
    if ct == "full":
        return params.covariances[k]
    if ct == "tied":
        return params.covariances
    if ct == "diag":
        return np.diag(params.covariances[k])
    return params.covariances[k] * np.eye(n_features)


def _random_incomplete_data(rng, params, n_samples, missing_rate):
    """Draw rows near the components' means and hide ~missing_rate of the entries.

    Row 0 has nothing observed and row 1 is complete, so both special cases are
    always present.
    """
    n_components, n_features = params.means.shape
    labels = rng.choice(n_components, size=n_samples, p=params.weights)
    X = params.means[labels] + rng.normal(size=(n_samples, n_features))
    missing_mask = rng.random((n_samples, n_features)) < missing_rate
    missing_mask[0] = True  # a row with nothing observed
    missing_mask[1] = False  # a complete row
    X[missing_mask] = np.nan
    return X


def _naive_e_step(params, X):
    """Compute the E-step row by row with scipy and textbook conditional Gaussians.

    Returns
    -------
    oracle : dict
        ``log_prob_norm (n,)``, ``resp (n, K)``, ``x_hat (n, K, d)`` per-component
        conditional means, ``nk (K,)``, ``s1 (K, d)`` and ``s2 (K, d, d)`` about
        ``params.means``, ``log_likelihood`` (float).
    """
    n_samples, n_features = X.shape
    n_components = params.n_components
    log_prob = np.zeros((n_samples, n_components))  # (n, K); 0 if nothing observed
    x_hat = np.empty((n_samples, n_components, n_features))  # (n, K, d)
    cond_cov = np.zeros((n_samples, n_components, n_features, n_features))
    for i in range(n_samples):
        o = ~np.isnan(X[i])
        m = ~o
        for k in range(n_components):
            S = _dense_covariance(params, k)
            mu = params.means[k]
            x_hat[i, k, o] = X[i, o]
            if not o.any():
                x_hat[i, k] = mu
                cond_cov[i, k] = S
                continue
            S_oo = S[np.ix_(o, o)]
            S_mo = S[np.ix_(m, o)]
            log_prob[i, k] = multivariate_normal.logpdf(X[i, o], mu[o], S_oo)
            gain = S_mo @ np.linalg.inv(S_oo)  # (|m|, |o|)
            x_hat[i, k, m] = mu[m] + gain @ (X[i, o] - mu[o])
            cond_cov[i, k][np.ix_(m, m)] = S[np.ix_(m, m)] - gain @ S_mo.T
    weighted = log_prob + np.log(params.weights)
    log_prob_norm = logsumexp(weighted, axis=1)
    resp = np.exp(weighted - log_prob_norm[:, None])
    dev = x_hat - params.means[None]  # (n, K, d)
    s2 = np.einsum("ik,ikj,ikl->kjl", resp, dev, dev) + np.einsum(
        "ik,ikjl->kjl", resp, cond_cov
    )
    return {
        "log_prob_norm": log_prob_norm,
        "resp": resp,
        "x_hat": x_hat,
        "nk": resp.sum(axis=0),
        "s1": np.einsum("ik,ikj->kj", resp, dev),
        "s2": s2,
        "log_likelihood": log_prob_norm.sum(),
    }


def _setup(seed, covariance_type, settings=None):
    """Draw random parameters, incomplete data, the model and its prepared data."""
    rng = np.random.default_rng(seed)
    params = _random_params(rng, N_COMPONENTS, N_FEATURES, covariance_type)
    X = _random_incomplete_data(rng, params, N_SAMPLES, MISSING_RATE)
    model = _Model(N_COMPONENTS, covariance_type, reg_covar=0.0)
    data = prepare_missing_data(X, N_COMPONENTS, settings=settings)
    return params, X, model, data


# ---------------------------------------------------------------------------
# E-step and inference against the oracle
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_e_step_matches_naive_oracle(covariance_type, global_random_seed):
    """The E-step's nk, s1, s2 and log-likelihood equal a per-row scipy oracle."""
    params, X, model, data = _setup(global_random_seed, covariance_type)
    stats = model.e_step(params, data)
    oracle = _naive_e_step(params, X)

    assert stats.n_samples == N_SAMPLES
    # The reference point is exactly the E-step's means (B6.5).
    assert_allclose(stats.ref, params.means, rtol=0, atol=0)
    # Both are float64 computations of the same sums by different algebra
    # (precision form vs. covariance form); observed differences are ~1e-13.
    assert_allclose(
        stats.log_likelihood, oracle["log_likelihood"], rtol=1e-11, atol=1e-10
    )
    assert_allclose(stats.nk, oracle["nk"], rtol=1e-10, atol=1e-10)
    assert_allclose(stats.s1, oracle["s1"], rtol=1e-10, atol=1e-10)
    if covariance_type in ("full", "tied"):
        expected_s2 = oracle["s2"]
    else:  # only the diagonal is kept for diag/spherical
        expected_s2 = np.diagonal(oracle["s2"], axis1=1, axis2=2)
    assert stats.s2.shape == expected_s2.shape
    assert_allclose(stats.s2, expected_s2, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_e_step_matches_naive_oracle_with_grouped_patterns(
    covariance_type, global_random_seed
):
    """With frequent patterns in shared chunks, the E-step still equals the oracle."""
    # Patterns with at least ten rows (here those with one or two missing
    # entries) get shared chunks, the other rows per-row chunks of at most 64
    # rows, so both kinds of chunk occur.
    settings = ChunkSettings(
        min_pattern_rows=10,
        pattern_work=0,
        row_elements=64 * (N_COMPONENTS * N_FEATURES + 1),
    )
    params, X, model, data = _setup(global_random_seed, covariance_type, settings)
    assert any(chunk.shared for chunk in data.chunks)
    assert any(not chunk.shared and chunk.n_missing for chunk in data.chunks)
    stats = model.e_step(params, data)
    oracle = _naive_e_step(params, X)
    # Same tolerances and reasons as test_e_step_matches_naive_oracle.
    assert_allclose(
        stats.log_likelihood, oracle["log_likelihood"], rtol=1e-11, atol=1e-10
    )
    assert_allclose(stats.nk, oracle["nk"], rtol=1e-10, atol=1e-10)
    assert_allclose(stats.s1, oracle["s1"], rtol=1e-10, atol=1e-10)
    expected_s2 = oracle["s2"]
    if covariance_type in ("diag", "spherical"):
        expected_s2 = np.diagonal(expected_s2, axis1=1, axis2=2)
    assert_allclose(stats.s2, expected_s2, rtol=1e-10, atol=1e-10)
    X_hat = model.conditional_mean(params, data)
    expected = np.einsum("ik,ikj->ij", oracle["resp"], oracle["x_hat"])  # (n, d)
    missing_mask = np.isnan(X)
    assert_allclose(X_hat[missing_mask], expected[missing_mask], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_e_step_skips_negligible_pairs_only_below_rounding(
    covariance_type, global_random_seed, monkeypatch
):
    """Skipping pairs of negligible responsibility changes nothing measurable.

    On well-separated components most (row, component) responsibilities
    underflow far below 2**-60 of the component's mean; the E-step leaves those
    pairs out of the moments (``_significant_rows``). Its statistics must still
    equal the oracle's, and equal the E-step that keeps every pair to within a
    few roundings.
    """
    rng = np.random.default_rng(global_random_seed)
    n_features = 6
    params = _random_params(rng, N_COMPONENTS, n_features, covariance_type)
    params = _Params.from_covariances(
        params.weights, 4.0 * params.means, params.covariances, covariance_type
    )
    X = _random_incomplete_data(rng, params, 600, MISSING_RATE)
    model = _Model(N_COMPONENTS, covariance_type, reg_covar=0.0)
    data = prepare_missing_data(X, N_COMPONENTS)
    oracle = _naive_e_step(params, X)
    assert np.mean(oracle["resp"] < 2.0**-60 * oracle["resp"].mean(axis=0)) > 0.3

    selected = []
    significant_rows = _mixture._significant_rows

    def spy(r, total, negligible):
        rows = significant_rows(r, total, negligible)
        selected.append(rows is not None)
        return rows

    monkeypatch.setattr(_mixture, "_significant_rows", spy)
    stats = model.e_step(params, data)
    assert any(selected)  # pairs were skipped
    monkeypatch.setattr(_mixture, "_significant_rows", significant_rows)
    every_pair = _Model(
        N_COMPONENTS, covariance_type, reg_covar=0.0, negligible=0.0
    ).e_step(params, data)

    scale = np.abs(every_pair.s2).max()
    assert stats.log_likelihood == every_pair.log_likelihood  # never skipped
    assert_allclose(stats.nk, every_pair.nk, rtol=1e-15, atol=0)
    assert_allclose(stats.s1, every_pair.s1, rtol=0, atol=1e-14 * scale)
    assert_allclose(stats.s2, every_pair.s2, rtol=0, atol=1e-14 * scale)
    assert_allclose(stats.s1, oracle["s1"], rtol=1e-10, atol=1e-10)
    expected_s2 = oracle["s2"]
    if covariance_type in ("diag", "spherical"):
        expected_s2 = np.diagonal(expected_s2, axis1=1, axis2=2)
    assert_allclose(stats.s2, expected_s2, rtol=1e-10, atol=1e-10)


def test_sweeping_at_once_equals_completing_later(global_random_seed, monkeypatch):
    """Both ways of reducing the missing blocks give the same E-step.

    ``SweepPolicy`` sweeps a chunk's blocks in one pass when most pairs were
    kept in the previous chunk, else eliminates them and completes the kept
    pairs later. Forced either way over many small chunks, the statistics
    agree to rounding and with the oracle ('full'; 'tied' always sweeps at
    once, and completing its blocks later is what ``conditional_mean`` and
    ``posterior_draw`` do, checked against the oracle elsewhere).
    """
    settings = ChunkSettings(row_elements=16 * (N_COMPONENTS * N_FEATURES + 1))
    params, X, _, data = _setup(global_random_seed, "full", settings)
    oracle = _naive_e_step(params, X)
    reduce_blocks, swept_now = _kernels._reduce_blocks, []

    def spy(*args):
        swept_now.append(args[-1])
        return reduce_blocks(*args)

    monkeypatch.setattr(_kernels, "_reduce_blocks", spy)
    results = {}
    for threshold in (-1.0, 2.0):  # sweep from the second chunk on / never
        model = _Model(N_COMPONENTS, "full", reg_covar=0.0, sweep_above=threshold)
        swept_now.clear()
        results[threshold] = model.e_step(params, data)
        assert any(swept_now) == (threshold < 0) and not all(swept_now)
    swept, completed = results[-1.0], results[2.0]
    assert_allclose(swept.log_likelihood, completed.log_likelihood, rtol=1e-14, atol=0)
    assert_allclose(swept.s1, completed.s1, rtol=1e-12, atol=1e-13)
    assert_allclose(swept.s2, completed.s2, rtol=1e-12, atol=1e-13)
    for stats in (swept, completed):
        assert_allclose(stats.s1, oracle["s1"], rtol=1e-10, atol=1e-10)
        assert_allclose(stats.s2, oracle["s2"], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_resp_matches_naive_oracle(covariance_type, global_random_seed):
    """Per-row log-likelihoods and log-responsibilities equal the scipy oracle."""
    params, X, model, data = _setup(global_random_seed, covariance_type)
    log_prob_norm, log_resp = model.log_resp(params, data)
    oracle = _naive_e_step(params, X)
    # Same quantity, different algebra; per-row values are O(1-10) and agree to ~1e-14.
    assert_allclose(log_prob_norm, oracle["log_prob_norm"], rtol=1e-11, atol=1e-11)
    assert_allclose(np.exp(log_resp), oracle["resp"], rtol=1e-10, atol=1e-12)
    assert_allclose(
        log_resp, np.log(oracle["resp"]), rtol=1e-10, atol=1e-10
    )  # the oracle's responsibilities stay far from underflow on this data


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_conditional_mean_matches_naive_oracle(covariance_type, global_random_seed):
    """Missing entries of conditional_mean equal sum_k r_ik x_hat_ik,m of the oracle."""
    params, X, model, data = _setup(global_random_seed, covariance_type)
    X_hat = model.conditional_mean(params, data)
    oracle = _naive_e_step(params, X)
    expected = np.einsum("ik,ikj->ij", oracle["resp"], oracle["x_hat"])  # (n, d)
    missing_mask = np.isnan(X)
    # Conditional means are O(1-5); both sides are exact formulas in float64.
    assert_allclose(X_hat[missing_mask], expected[missing_mask], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_conditional_mean_keeps_observed_entries(covariance_type, global_random_seed):
    """Observed entries of conditional_mean equal the input's observed values."""
    params, X, model, data = _setup(global_random_seed, covariance_type)
    X_hat = model.conditional_mean(params, data)
    observed = ~np.isnan(X)
    # E[x_o | x_o] = x_o; forming it as sum_k r_k (mu_k + (x_o - mu_k)) is exact
    # up to a few ulps of O(1-5) values, so allow that much.
    assert_allclose(X_hat[observed], X[observed], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_rows_without_observed_entries(covariance_type, global_random_seed):
    """A row with nothing observed has r = pi, log-lik 0, x_hat = mu_k, C = S_k."""
    rng = np.random.default_rng(global_random_seed)
    params = _random_params(rng, N_COMPONENTS, N_FEATURES, covariance_type)
    n_empty = 5
    data = prepare_missing_data(np.full((n_empty, N_FEATURES), np.nan), N_COMPONENTS)
    model = _Model(N_COMPONENTS, covariance_type, reg_covar=0.0)

    log_prob_norm, log_resp = model.log_resp(params, data)
    # logdet S_oo = logdet S + logdet P_mm cancels to rounding for an empty o.
    assert_allclose(log_prob_norm, 0.0, rtol=0, atol=1e-12)
    assert_allclose(
        log_resp, np.tile(np.log(params.weights), (n_empty, 1)), rtol=1e-12, atol=1e-12
    )  # same cancellation, on O(1) log-weights

    stats = model.e_step(params, data)
    dense = np.stack([_dense_covariance(params, k) for k in range(N_COMPONENTS)])
    expected_s2 = n_empty * params.weights[:, None, None] * dense
    if covariance_type in ("diag", "spherical"):
        expected_s2 = np.diagonal(expected_s2, axis1=1, axis2=2)
    # Sums of five identical terms: agreement to a few ulps, plus the cancellation.
    assert_allclose(stats.log_likelihood, 0.0, rtol=0, atol=1e-11)
    assert_allclose(stats.nk, n_empty * params.weights, rtol=1e-12, atol=1e-12)
    assert_allclose(stats.s1, 0.0, rtol=0, atol=1e-12)
    assert_allclose(stats.s2, expected_s2, rtol=1e-12, atol=1e-12)

    X_hat = model.conditional_mean(params, data)
    # The mixture mean sum_k pi_k mu_k, to rounding of O(1) values.
    assert_allclose(
        X_hat,
        np.tile(params.weights @ params.means, (n_empty, 1)),
        rtol=1e-12,
        atol=1e-12,
    )


# ---------------------------------------------------------------------------
# M-step
# ---------------------------------------------------------------------------


def _complete_stats(X, resp, ref):
    """Build statistics of complete data X under resp, about the reference means ref."""
    dev = X[:, None, :] - ref[None]  # (n, K, d)
    return _Stats(
        nk=resp.sum(axis=0),
        components=GaussianStats(
            s1=np.einsum("ik,ikj->kj", resp, dev),
            s2=np.einsum("ik,ikj,ikl->kjl", resp, dev, dev),
            ref=ref,
        ),
        log_likelihood=0.0,
        n_samples=X.shape[0],
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_matches_sklearn_on_complete_data(covariance_type, global_random_seed):
    """On complete data m_step equals sklearn's _estimate_gaussian_parameters."""
    rng = np.random.default_rng(global_random_seed)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)) + rng.normal(scale=3, size=N_FEATURES)
    resp = rng.dirichlet(np.ones(N_COMPONENTS), size=N_SAMPLES)  # rows sum to 1
    ref = rng.normal(size=(N_COMPONENTS, N_FEATURES))  # any reference point works
    stats = _complete_stats(X, resp, ref)
    if covariance_type in ("diag", "spherical"):
        diagonal = np.diagonal(stats.s2, axis1=1, axis2=2).copy()
        stats = _Stats(
            stats.nk,
            GaussianStats(stats.s1, diagonal, stats.ref),
            stats.log_likelihood,
            stats.n_samples,
        )
    reg_covar = 1e-6
    model = _Model(N_COMPONENTS, covariance_type, reg_covar=reg_covar)
    params = model.m_step(stats)

    nk, means, covariances = _estimate_gaussian_parameters(
        X, resp, reg_covar, covariance_type
    )
    # Same update; sklearn uses raw moments (X'X - nk mu mu') for tied/diag/spherical,
    # so agreement is limited by its cancellation on O(10) values: ~1e-13.
    assert_allclose(params.weights, nk / nk.sum(), rtol=1e-12, atol=1e-14)
    assert_allclose(params.means, means, rtol=1e-11, atol=1e-12)
    assert params.covariances.shape == covariances.shape
    assert_allclose(params.covariances, covariances, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_of_oracle_statistics_is_textbook(covariance_type, global_random_seed):
    """m_step(e_step) gives the textbook pi, mu and S (+reg) from the oracle's sums."""
    rng = np.random.default_rng(global_random_seed)
    params = _random_params(rng, N_COMPONENTS, N_FEATURES, covariance_type)
    X = _random_incomplete_data(rng, params, N_SAMPLES, MISSING_RATE)
    reg_covar = 1e-3
    model = _Model(N_COMPONENTS, covariance_type, reg_covar=reg_covar)
    new = model.m_step(model.e_step(params, prepare_missing_data(X, N_COMPONENTS)))

    oracle = _naive_e_step(params, X)
    nk = oracle["nk"]
    mu = params.means + oracle["s1"] / nk[:, None]
    dev = oracle["x_hat"] - mu[None]  # (n, K, d) about the new means
    x_hat_cov = np.einsum("ik,ikj,ikl->kjl", oracle["resp"], dev, dev)
    cond_part = oracle["s2"] - np.einsum(
        "ik,ikj,ikl->kjl",
        oracle["resp"],
        oracle["x_hat"] - params.means[None],
        oracle["x_hat"] - params.means[None],
    )  # sum_i r_ik C_ik
    scatter = x_hat_cov + cond_part  # (K, d, d)
    eye = np.eye(N_FEATURES)
    expected = {
        "full": scatter / nk[:, None, None] + reg_covar * eye,
        "tied": scatter.sum(axis=0) / nk.sum() + reg_covar * eye,
        "diag": np.diagonal(scatter, axis1=1, axis2=2) / nk[:, None] + reg_covar,
        "spherical": np.diagonal(scatter, axis1=1, axis2=2).mean(axis=1) / nk
        + reg_covar,
    }[covariance_type]
    # Textbook formulas on oracle sums vs. the package's reference-point algebra:
    # differences are a few hundred ulps of O(1-10) values.
    assert_allclose(new.weights, nk / N_SAMPLES, rtol=1e-10, atol=1e-12)
    assert_allclose(new.means, mu, rtol=1e-10, atol=1e-10)
    assert_allclose(new.covariances, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(
    "covariance_type", ["full", "tied"]
)  # the types with off-diagonals
def test_m_step_covariances_are_symmetric(covariance_type, global_random_seed):
    """m_step covariances are exactly symmetric and inverse to its precisions.

    The precision Cholesky factor is computed from one triangle of the
    covariance, so any asymmetry silently changes the model that the next
    E-step uses. Near a singular covariance (data close to a 4-dimensional
    subspace of R^5, 30% missing) the conditional covariances of the missing
    blocks are where asymmetry would come from.
    """
    rng = np.random.default_rng(global_random_seed)
    n_samples, n_features = 30, 5
    A = rng.normal(size=(n_features, n_features - 1))
    mean = rng.normal(size=n_features)
    X = mean + rng.normal(size=(n_samples, n_features - 1)) @ A.T
    X += 1e-4 * rng.normal(size=X.shape)  # barely off the subspace
    X[rng.random(X.shape) < 0.3] = np.nan
    covariance = A @ A.T + 1e-8 * np.eye(n_features)  # condition number ~1e9
    params = _Params.from_covariances(
        np.ones(1),
        mean[None],
        covariance[None] if covariance_type == "full" else covariance,
        covariance_type,
    )
    model = _Model(1, covariance_type, reg_covar=0.0)
    new = model.m_step(model.e_step(params, prepare_missing_data(X, 1)))

    S = new.covariances.reshape(-1, n_features, n_features)
    # Exact: the Cholesky factorisation reads one triangle only.
    assert_allclose(S, np.swapaxes(S, 1, 2), rtol=0, atol=0)
    P = new.precisions.reshape(-1, n_features, n_features)
    # With a symmetric S, S @ inv(S) = I up to eps * cond(S) ~ 1e-7 (observed
    # <= 1.3e-7 over 100 seeds); an asymmetry comparable to the smallest
    # eigenvalue shows up as an O(1e-3 - 1e-1) error.
    assert_allclose(
        S @ P, np.broadcast_to(np.eye(n_features), S.shape), rtol=0, atol=1e-5
    )


# ---------------------------------------------------------------------------
# Additivity and offset robustness
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_suff_stats_are_additive(covariance_type, global_random_seed):
    """e_step on the union of two row sets equals the sum of e_step on each set."""
    rng = np.random.default_rng(global_random_seed)
    params = _random_params(rng, N_COMPONENTS, N_FEATURES, covariance_type)
    X = _random_incomplete_data(rng, params, N_SAMPLES, MISSING_RATE)
    model = _Model(N_COMPONENTS, covariance_type, reg_covar=0.0)
    perm = rng.permutation(N_SAMPLES)
    rows_a, rows_b = perm[:70], perm[70:]  # arbitrary, interleaved split

    whole = model.e_step(params, prepare_missing_data(X, N_COMPONENTS))
    stats_a = model.e_step(params, prepare_missing_data(X[rows_a], N_COMPONENTS))
    stats_b = model.e_step(params, prepare_missing_data(X[rows_b], N_COMPONENTS))
    summed = stats_a + stats_b

    assert summed.n_samples == whole.n_samples == N_SAMPLES
    # Same row terms summed in a different order: rounding only.
    assert_allclose(summed.log_likelihood, whole.log_likelihood, rtol=1e-12, atol=1e-10)
    assert_allclose(summed.nk, whole.nk, rtol=1e-12, atol=1e-12)
    assert_allclose(summed.s1, whole.s1, rtol=1e-12, atol=1e-11)
    assert_allclose(summed.s2, whole.s2, rtol=1e-12, atol=1e-11)
    assert_allclose(summed.ref, whole.ref, rtol=0, atol=0)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_is_invariant_to_a_large_offset(covariance_type, global_random_seed):
    """Fitting X + 1e6 gives the covariances and means (+1e6) of fitting centred X."""
    rng = np.random.default_rng(global_random_seed)
    n_components, n_features, offset = 2, 3, 1e6
    X = rng.normal(size=(300, n_features))
    X[:150] += 3.0  # two clusters
    X -= X.mean(axis=0)  # centred
    X[rng.random(X.shape) < 0.2] = np.nan
    X[0] = np.nan  # a row with nothing observed
    means_init = np.array([[1.5] * n_features, [-1.5] * n_features])
    precisions_init = {
        "full": np.stack([np.eye(n_features)] * n_components),
        "tied": np.eye(n_features),
        "diag": np.ones((n_components, n_features)),
        "spherical": np.ones(n_components),
    }[covariance_type]

    def fit(data, means):
        est = EMClusterer(
            n_components,
            covariance_type=covariance_type,
            weights_init=[0.5, 0.5],
            means_init=means,
            precisions_init=precisions_init,
            tol=0.0,
            max_iter=15,
        )
        with pytest.warns(ConvergenceWarning, match="did not converge"):
            return est.fit(data)

    centred = fit(X, means_init)
    shifted = fit(X + offset, means_init + offset)
    # The inputs X + 1e6 are themselves rounded to ulp(1e6) ~ 1.2e-10; with second
    # moments about the current means the covariances agree to ~1e-11 (observed),
    # while raw moments (s2/N - mu mu') would lose ~1e12 * eps ~ 1e-4.
    assert_allclose(shifted.covariances_, centred.covariances_, rtol=1e-8, atol=1e-9)
    assert_allclose(shifted.means_ - offset, centred.means_, rtol=0, atol=1e-8)
    assert_allclose(shifted.weights_, centred.weights_, rtol=1e-7, atol=1e-9)
