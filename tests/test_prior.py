"""MAP estimation under the conjugate prior of Fraley & Raftery (2007).

Independent references: scipy.stats densities for the prior, the textbook
normal-inverse-Wishart posterior for one component on complete data, and
scipy.optimize maximising the observed-data log-posterior directly (no EM)
for one component with missing entries.
"""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import minimize
from scipy.stats import dirichlet, invgamma, invwishart, multivariate_normal, norm
from sklearn.exceptions import ConvergenceWarning
from test_mle import (
    N_FEATURES,
    _dense_covariance,
    _incomplete_normal_data,
    _initial_theta,
    _observed_log_likelihood,
    _unpack,
)

from em_sklearn import EMClusterer, EMImputer
from em_sklearn._gaussian import (
    COVARIANCE_TYPES,
    GaussianFamily,
    GaussianParams,
    GaussianPrior,
)
from em_sklearn._mixture import MixtureModel, MixtureParams

ESTIMATORS = [EMClusterer, EMImputer]


def _strong_prior(covariance_type, n_features=N_FEATURES):
    """User hyperparameters strong enough to move the estimate far from the MLE."""
    scale = {
        "full": 3.0 * np.eye(n_features) + 0.5,
        "tied": 3.0 * np.eye(n_features) + 0.5,
        "diag": np.linspace(1.0, 4.0, n_features),
        "spherical": 2.5,
    }[covariance_type]
    return {
        "weight_concentration_prior": 2.0,
        "mean_prior": np.linspace(-1.0, 1.0, n_features),
        "mean_precision_prior": 5.0,
        "degrees_of_freedom_prior": n_features + 6.0,
        "covariance_prior": scale,
    }


def _scipy_log_prior(prior, weights, means, covariances, covariance_type):
    """The prior's log-density from scipy.stats, term by term."""
    alpha = prior["weight_concentration_prior"]
    mu0 = prior["mean_prior"]
    kappa = prior["mean_precision_prior"]
    nu = prior["degrees_of_freedom_prior"]
    lam = prior["covariance_prior"]
    n_components, n_features = means.shape
    total = (
        dirichlet.logpdf(weights, np.full(n_components, alpha))
        if n_components > 1
        else 0.0
    )
    for k in range(n_components):
        if covariance_type == "full":
            cov = covariances[k]
            total += invwishart.logpdf(cov, df=nu, scale=lam)
        elif covariance_type == "tied":
            cov = covariances
        elif covariance_type == "diag":
            var = covariances[k]
            total += invgamma.logpdf(var, 0.5 * nu, scale=0.5 * lam).sum()
            total += norm.logpdf(means[k], mu0, np.sqrt(var / kappa)).sum()
            continue
        else:
            cov = covariances[k] * np.eye(n_features)
            total += invgamma.logpdf(covariances[k], 0.5 * nu, scale=0.5 * lam)
        total += multivariate_normal.logpdf(means[k], mu0, cov / kappa)
    if covariance_type == "tied":
        total += invwishart.logpdf(covariances, df=nu, scale=lam)
    return total


def _random_params(covariance_type, n_components, n_features, seed):
    rng = np.random.RandomState(seed)
    weights = rng.dirichlet(np.ones(n_components))
    means = rng.normal(size=(n_components, n_features))
    A = rng.normal(size=(n_components, n_features, n_features))
    full = A @ np.swapaxes(A, 1, 2) + np.eye(n_features)
    covariances = {
        "full": full,
        "tied": full[0],
        "diag": rng.uniform(0.5, 2.0, size=(n_components, n_features)),
        "spherical": rng.uniform(0.5, 2.0, size=n_components),
    }[covariance_type]
    return MixtureParams(
        weights, GaussianParams.from_covariances(means, covariances, covariance_type)
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_density_equals_scipy(covariance_type, global_random_seed):
    """log_density is the Dirichlet + inverse-Wishart (or gamma) + normal density."""
    values = _strong_prior(covariance_type, n_features=4)
    alpha, *niw = values.values()
    family = GaussianFamily(
        covariance_type, 0.0, prior=GaussianPrior(*niw, covariance_type)
    )
    model = MixtureModel(family, 3, weight_concentration=alpha)
    params = _random_params(covariance_type, 3, 4, global_random_seed)
    expected = _scipy_log_prior(
        values,
        params.weights,
        params.components.means,
        params.components.covariances,
        covariance_type,
    )
    assert_allclose(model.log_prior(params), expected, rtol=1e-12)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_one_component_complete_data_is_the_closed_form_posterior_mode(Estimator):
    """k=1, complete data: the NIW posterior mode (Murphy 2012, section 4.6.3.4)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 3)) + 2.0
    values = _strong_prior("full")
    est = Estimator(prior=values, reg_covar=0.0, tol=1e-14, max_iter=50).fit(X)
    # Posterior NIW(m_n, kappa_n, nu_n, S_n), then its mode.
    n, d = X.shape
    xbar = X.mean(axis=0)
    kappa_n = values["mean_precision_prior"] + n
    nu_n = values["degrees_of_freedom_prior"] + n
    m_n = (values["mean_precision_prior"] * values["mean_prior"] + n * xbar) / kappa_n
    centred = X - xbar
    dev = xbar - values["mean_prior"]
    S_n = (
        values["covariance_prior"]
        + centred.T @ centred
        + values["mean_precision_prior"] * n / kappa_n * np.outer(dev, dev)
    )
    assert_allclose(est.means_[0], m_n, rtol=1e-10)
    assert_allclose(est.covariances_[0], S_n / (nu_n + d + 2), rtol=1e-10)
    assert_allclose(est.weights_, [1.0])


def test_default_hyperparameters_are_fraley_raftery():
    """On complete data the default prior is mclust's defaultPrior."""
    rng = np.random.RandomState(1)
    X = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 3))
    expected_scale = np.cov(X.T) / 4 ** (2 / 3)
    for ct, scale in [
        ("full", expected_scale),
        ("tied", expected_scale),
        ("diag", np.diag(expected_scale)),
        ("spherical", np.trace(expected_scale) / 3),
    ]:
        est = EMClusterer(
            4, covariance_type=ct, prior="default", reg_covar=0.0, random_state=0
        ).fit(X)
        prior = est.prior_
        assert prior["weight_concentration_prior"] == 1.0
        assert prior["mean_precision_prior"] == 0.01
        assert prior["degrees_of_freedom_prior"] == 5.0
        assert_allclose(prior["mean_prior"], X.mean(axis=0), rtol=1e-12)
        assert_allclose(prior["covariance_prior"], scale, rtol=1e-10)


def _direct_map(X, covariance_type, values):
    """Maximise the observed-data log-likelihood + log-prior of one Gaussian by BFGS."""
    n_samples = X.shape[0]

    def shaped(cov):
        return {
            "full": lambda: cov[None],
            "tied": lambda: cov,
            "diag": lambda: np.diag(cov)[None],
            "spherical": lambda: np.array([cov[0, 0]]),
        }[covariance_type]()

    def objective(theta):
        mean, cov = _unpack(theta, covariance_type)
        log_post = _observed_log_likelihood(X, mean, cov) + _scipy_log_prior(
            values, np.ones(1), mean[None], shaped(cov), covariance_type
        )
        return -log_post / n_samples

    result = minimize(
        objective,
        _initial_theta(X, covariance_type),
        method="BFGS",
        jac="3-point",
        options={"gtol": 1e-9, "maxiter": 10_000},
    )
    return (*_unpack(result.x, covariance_type), result)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_map_equals_direct_maximisation(covariance_type, global_random_seed):
    """k=1, 25% MCAR: EM's MAP equals scipy.optimize's maximum of the log-posterior."""
    X = _incomplete_normal_data(global_random_seed)
    values = _strong_prior(covariance_type)
    em = EMClusterer(
        covariance_type=covariance_type,
        prior=values,
        reg_covar=0.0,
        tol=1e-12,
        max_iter=5000,
    ).fit(X)
    mean, cov, result = _direct_map(X, covariance_type, values)
    assert np.max(np.abs(result.jac)) < 1e-6
    assert_allclose(em.means_[0], mean, rtol=0, atol=1e-5)
    assert_allclose(_dense_covariance(em), cov, rtol=0, atol=1e-5)
    # The prior matters here: the maximum-likelihood estimate is far away.
    mle = EMClusterer(
        covariance_type=covariance_type, reg_covar=0.0, tol=1e-12, max_iter=5000
    ).fit(X)
    assert np.max(np.abs(mle.means_[0] - mean)) > 1e-2


def _log_posterior_per_row(est, X):
    """(log-likelihood + log-prior) / n from score_samples and scipy.stats."""
    log_prior = _scipy_log_prior(
        est.prior_, est.weights_, est.means_, est.covariances_, est.covariance_type
    )
    return est.score_samples(X).mean() + log_prior / X.shape[0]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("accelerate", [None, "squarem"])
def test_log_posterior_never_decreases(Estimator, covariance_type, accelerate):
    """EM (and accepted SQUAREM steps) never lower the log-posterior, lower_bound_.

    reg_covar=0 makes the M-step the exact maximiser. At convergence
    lower_bound_ equals the log-posterior recomputed from score_samples and
    scipy.stats in original units (for EMImputer this checks that its
    internal standardisation is undone, prior included).
    """
    rng = np.random.RandomState(3)
    centers = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 6.0, 5.0]])
    X = centers[rng.randint(3, size=200)] + rng.normal(size=(200, 3)) * [1.0, 2.0, 0.5]
    X = X * [1.0, 10.0, 0.1] + [0.0, 100.0, -3.0]  # scales the imputer standardises
    X[rng.uniform(size=X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    est = Estimator(
        n_components=3,
        covariance_type=covariance_type,
        prior="default",
        reg_covar=0.0,
        tol=1e-11,
        max_iter=3000,
        accelerate=accelerate,
        random_state=0,
    ).fit(X)
    bounds = np.array(est.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))
    assert est.converged_
    assert_allclose(est.lower_bound_, _log_posterior_per_row(est, X), rtol=0, atol=1e-8)


def _collapsing_data():
    """Thirty spread points and three identical ones, where ML collapses a component."""
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(30, 2)), np.tile([8.0, 8.0], (3, 1))])
    X[rng.uniform(size=X.shape) < 0.1] = np.nan
    X[30:] = [8.0, 8.0]
    return X


def _smallest_variance(est, k):
    """Smallest eigenvalue of component k's covariance."""
    cov = np.atleast_2d(est.covariances_[k])
    return np.linalg.eigvalsh(cov).min() if est.covariance_type == "full" else cov.min()


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_prior_keeps_a_collapsing_component_well_defined(covariance_type):
    """Maximum likelihood collapses onto three equal points; MAP does not."""
    X = _collapsing_data()
    kwargs = dict(
        n_components=2,
        covariance_type=covariance_type,
        reg_covar=0.0,
        means_init=[[0.0, 0.0], [8.0, 8.0]],
        tol=1e-10,
        max_iter=500,
    )
    try:
        mle = EMClusterer(**kwargs).fit(X)
    except ValueError as exc:  # the variance hit exactly 0
        assert "ill-defined covariance" in str(exc)
    else:  # or it is rounding noise: the likelihood is unbounded there
        assert _smallest_variance(mle, mle.predict(X[30:31])[0]) < 1e-10
    est = EMClusterer(prior="default", **kwargs).fit(X)
    assert est.converged_
    # The component keeps its three points, with a covariance bounded below by
    # the prior: Sigma >= Lambda / (nu + n_k + d + 2) (and alike for diag, spherical).
    assert est.predict(X[30:]).tolist() == [est.predict(X[30:31])[0]] * 3
    k = est.predict(X[30:31])[0]
    assert_allclose(est.weights_[k] * len(X), 3.0, atol=0.05)
    lam = np.atleast_1d(est.prior_["covariance_prior"])
    # nu = d + 2 = 4, n_k = 3, d = 2.
    floor = {
        "full": lambda: np.linalg.eigvalsh(lam).min() / (4 + 3 + 2 + 2),
        "diag": lambda: lam.min() / (4 + 3 + 3),
        "spherical": lambda: lam[0] / (4 + 4 * 2 + 2),
    }[covariance_type]()
    assert _smallest_variance(est, k) >= floor * 0.99
    assert np.all(np.isfinite(est.score_samples(X)))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_user_prior_in_original_units_for_the_imputer(covariance_type):
    """EMImputer takes hyperparameters in original units: its MAP equals EMClusterer's.

    With one component the MAP is unique, and the prior given in the
    original units is the same prior in any units: the imputer (which fits
    standardised columns) and the clusterer (raw units) must agree.
    """
    X = _incomplete_normal_data(0) * [1.0, 50.0, 0.02] + [0.0, -20.0, 3.0]
    values = _strong_prior(covariance_type)
    if covariance_type == "spherical":
        X = _incomplete_normal_data(0) * 30.0  # one common scale for 'spherical'
    kwargs = dict(
        covariance_type=covariance_type,
        prior=values,
        reg_covar=0.0,
        tol=1e-13,
        max_iter=5000,
    )
    imputer = EMImputer(**kwargs).fit(X)
    clusterer = EMClusterer(**kwargs).fit(X)
    assert_allclose(imputer.means_, clusterer.means_, rtol=1e-7, atol=1e-9)
    assert_allclose(imputer.covariances_, clusterer.covariances_, rtol=1e-6)
    assert_allclose(imputer.lower_bound_, clusterer.lower_bound_, rtol=1e-9)
    for key, value in values.items():
        assert_allclose(imputer.prior_[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_weights_flow_through_the_prior(Estimator):
    """Integer weights with the default prior equal repeated rows with it."""
    X = _incomplete_normal_data(1)
    weights = np.random.RandomState(0).randint(0, 4, size=len(X))
    kwargs = dict(
        n_components=2,
        prior="default",
        tol=0.0,
        max_iter=20,
        means_init=[[-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]],
        weights_init=[0.5, 0.5],
        precisions_init=np.tile(np.eye(3), (2, 1, 1)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = Estimator(**kwargs).fit(X, sample_weight=weights)
        repeated = Estimator(**kwargs).fit(np.repeat(X, weights, axis=0))
    for key in weighted.prior_:
        assert_allclose(
            weighted.prior_[key], repeated.prior_[key], rtol=1e-9, err_msg=key
        )
    for name in ["weights_", "means_", "covariances_"]:
        assert_allclose(
            getattr(weighted, name),
            getattr(repeated, name),
            rtol=1e-8,
            atol=1e-10,
            err_msg=name,
        )
    assert_allclose(weighted.lower_bound_, repeated.lower_bound_, rtol=1e-10)


def test_bic_uses_the_likelihood_not_the_posterior():
    """bic/aic are -2 log-likelihood + penalty at the MAP estimate (as in mclust)."""
    X = _incomplete_normal_data(2)
    est = EMClusterer(n_components=2, prior="default", random_state=0).fit(X)
    log_likelihood = est.score_samples(X).sum()
    n_parameters = 2 * 6 + 2 * 3 + 1
    assert_allclose(est.bic(X), -2 * log_likelihood + n_parameters * np.log(len(X)))
    assert_allclose(est.aic(X), -2 * log_likelihood + 2 * n_parameters)


def test_no_prior_attribute_is_none():
    assert EMClusterer().fit(_incomplete_normal_data(0)).prior_ is None


@pytest.mark.parametrize(
    "covariance_type, prior, message",
    [
        ("full", {"mean": [0, 0, 0]}, "Unknown key(s) ['mean'] in prior"),
        ("full", {"mean_prior": [0, 0]}, "prior['mean_prior'] must be 3 finite values"),
        (
            "full",
            {"covariance_prior": np.eye(2)},
            "prior['covariance_prior'] must have shape (3, 3)",
        ),
        (
            "full",
            {"covariance_prior": -np.eye(3)},
            "prior['covariance_prior'] must be symmetric positive definite",
        ),
        (
            "diag",
            {"covariance_prior": [1.0, 0.0, 1.0]},
            "prior['covariance_prior'] must be positive and finite",
        ),
        (
            "spherical",
            {"covariance_prior": [1.0]},
            "prior['covariance_prior'] must have shape ()",
        ),
        (
            "full",
            {"weight_concentration_prior": 0.5},
            "prior['weight_concentration_prior'] must be a finite number >= 1",
        ),
        (
            "full",
            {"mean_precision_prior": 0.0},
            "prior['mean_precision_prior'] must be a finite number > 0",
        ),
        (
            "full",
            {"degrees_of_freedom_prior": 2.0},
            "prior['degrees_of_freedom_prior'] must be a finite number > 2",
        ),
        (
            "diag",
            {"degrees_of_freedom_prior": "5"},
            "prior['degrees_of_freedom_prior'] must be a finite number > 0",
        ),
    ],
)
def test_bad_prior_raises(covariance_type, prior, message):
    """Each bad hyperparameter is refused with a message naming it."""
    X = _incomplete_normal_data(0)
    with pytest.raises(ValueError, match=re.escape(message)):
        EMClusterer(covariance_type=covariance_type, prior=prior).fit(X)


def test_prior_parameter_is_validated():
    with pytest.raises(
        ValueError, match="The 'prior' parameter of EMClusterer must be"
    ):
        EMClusterer(prior="mclust").fit(_incomplete_normal_data(0))


def test_default_scale_falls_back_to_observed_variances():
    """When the one-Gaussian fit is degenerate, the default scale is diagonal.

    Columns 0 and 1 are observed together in two rows only: their maximum-
    likelihood correlation is +-1 and the covariance singular, which would
    give a prior scale that prevents nothing. The observed variances stand in.
    """
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    X[2:20, 0] = np.nan
    X[20:, 1] = np.nan
    est = EMClusterer(
        n_components=2, prior="default", reg_covar=0.0, random_state=0
    ).fit(X)
    n_features, n_components = 3, 2
    observed_var = np.nanvar(X, axis=0) * 40 / 39
    expected = np.diag(observed_var) / n_components ** (2 / n_features)
    assert_allclose(est.prior_["covariance_prior"], expected, rtol=1e-12)
    assert_allclose(est.prior_["mean_prior"], np.nanmean(X, axis=0), rtol=1e-12)


def test_default_prior_refuses_a_column_without_spread():
    """A column with one observed value leaves no scale: the error names it."""
    X = _incomplete_normal_data(0)
    X[:, 2] = np.nan
    X[0, 2] = 1.5
    msg = "prior='default' cannot set covariance_prior: feature(s) [2] have no spread"
    with pytest.raises(ValueError, match=re.escape(msg)):
        EMClusterer(prior="default", reg_covar=0.0).fit(X)
    # Given a scale, or reg_covar > 0, the fit goes ahead.
    EMClusterer(prior={"covariance_prior": np.eye(3)}, reg_covar=0.0).fit(X)
    EMClusterer(prior="default").fit(X)
