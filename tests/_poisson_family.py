"""A second emission family in one module: independent Poisson columns.

Written only against the family contract of ``em_sklearn._mixture``, to prove
that a new family needs no change to the loop, the mixture layer or the
estimator base. Each component has one rate per column; columns are
independent given the component, so a missing entry simply drops out of the
row's density (exact EM). The M-step is ``rate_kj = sum_i r_ik x_ij / sum_i
r_ik`` over the rows where column ``j`` is observed.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from em_sklearn._base import _BaseEM
from em_sklearn._missing_data import prepare_missing_data
from em_sklearn._mixture import MixtureModel
from em_sklearn._validation import check_X


@dataclass(frozen=True)
class PoissonParams:
    rates: np.ndarray  # (n_components, n_features), positive


@dataclass(frozen=True)
class PoissonStats:
    sum_x: np.ndarray  # (n_components, n_features): sum_i r_ik x_ij [observed]
    count: np.ndarray  # (n_components, n_features): sum_i r_ik [observed]

    def __add__(self, other):
        return PoissonStats(self.sum_x + other.sum_x, self.count + other.count)


class _Terms:
    def __init__(self, chunk, log_prob, X0, observed):
        self.chunk = chunk
        self.log_prob = log_prob  # (n_rows, n_components)
        self.X0 = X0  # (n_rows, n_features), 0 where missing
        self.observed = observed  # (n_rows, n_features) bool
        self.nothing_observed = not observed.any()


class _Accumulator:
    def __init__(self, n_components, n_features):
        self.sum_x = np.zeros((n_components, n_features))
        self.count = np.zeros((n_components, n_features))


class PoissonFamily:
    """Independent Poisson columns (no prior, no user initial values)."""

    fully_initialised = False

    def prepare(self, X, n_components, sample_weight=None, settings=None):
        return prepare_missing_data(X, n_components, sample_weight, settings=settings)

    def iter_terms(self, params, block, accumulator=None):
        log_rates = np.log(params.rates)  # (K, d)
        for chunk in block.chunks:
            X0 = block.X[chunk.start : chunk.stop]
            observed = ~block.missing_mask[chunk.start : chunk.stop]
            log_factorial = (gammaln(X0 + 1.0) * observed).sum(axis=1)  # (n_rows,)
            log_prob = X0 @ log_rates.T - observed @ params.rates.T
            yield chunk, _Terms(chunk, log_prob - log_factorial[:, None], X0, observed)

    def accumulator(self, params, block):
        return _Accumulator(*params.rates.shape)

    def accumulate(self, accumulator, terms, resp, rows):
        accumulator.sum_x += resp.T @ terms.X0
        accumulator.count += resp.T @ terms.observed

    def statistics(self, accumulator):
        return PoissonStats(accumulator.sum_x, accumulator.count)

    def complete_data_statistics(self, X, resp):
        return PoissonStats(resp.T @ X, resp.T @ np.ones_like(X))

    def m_step(self, stats, raw_nk, nk):
        return PoissonParams(stats.sum_x / np.maximum(stats.count, 1e-300))

    def log_prior(self, params):
        return 0.0

    def initial_params(self, estimate):
        return estimate

    def flatten(self, params):
        return params.rates.ravel()

    def unflatten(self, vector, like):
        if not np.all(vector > 0):
            raise ValueError("Extrapolated rates are not all positive.")
        return PoissonParams(vector.reshape(like.rates.shape))

    def conditional_mean(self, params, terms, resp):
        return np.where(terms.observed, terms.X0, resp @ params.rates)

    def posterior_draw(self, params, terms, component, random_state):
        draws = random_state.poisson(params.rates[component]).astype(np.float64)
        return np.where(terms.observed, terms.X0, draws)

    def n_parameters(self, params):
        return params.rates.size

    def sample(self, params, counts, random_state):
        labels = np.repeat(np.arange(len(counts)), counts)
        return random_state.poisson(params.rates[labels]).astype(np.float64)

    def attributes(self, params):
        return {"rates_": params.rates}

    def params_from_attributes(self, estimator):
        return PoissonParams(estimator.rates_)


class PoissonMixtureClusterer(_BaseEM):
    """The package's estimator machinery (``_BaseEM``) on the Poisson family.

    Only the model hooks are new; fitting (restarts, warm start, SQUAREM,
    sample weights) and inference come from the base unchanged.
    """

    def __init__(
        self,
        n_components=1,
        *,
        tol=1e-3,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        random_state=None,
        warm_start=False,
        accelerate=None,
        verbose=0,
        verbose_interval=10,
    ):
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.warm_start = warm_start
        self.accelerate = accelerate
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    def _model(self):
        return MixtureModel(PoissonFamily(), self.n_components)

    def _build_model(self, data, **values):
        return MixtureModel(
            PoissonFamily(), self.n_components, init_params=self.init_params
        )

    def fit(self, X, y=None, sample_weight=None):
        self._fit_model(check_X(self, X, reset=True), sample_weight)
        return self

    def predict_proba(self, X):
        return np.exp(self._log_resp(check_X(self, X, reset=False))[1])

    def impute(self, X):
        X = check_X(self, X, reset=False)
        return np.where(np.isnan(X), self._impute(X), X)
