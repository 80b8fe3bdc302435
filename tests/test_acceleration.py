"""SQUAREM acceleration: same optimum as plain EM, monotone, fewer E-steps."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from em_sklearn import EMClusterer, EMImputer
from em_sklearn._em import run_em
from em_sklearn._gaussian import COVARIANCE_TYPES, GaussianFamily
from em_sklearn._missing_data import prepare_missing_data
from em_sklearn._mixture import MixtureModel


def _mar_data(seed, n=400, d=4, rate=1.0):
    """Correlated normal rows; columns 1.. missing w.p. rate * logistic(2 x0)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d))
    Z = rng.multivariate_normal(rng.normal(size=d), A @ A.T + np.eye(d), n)
    mask = rng.random((n, d)) < rate / (1 + np.exp(-2 * Z[:, [0]]))
    mask[:, 0] = False
    X = Z.copy()
    X[mask] = np.nan
    return X


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_squarem_reaches_plain_em_optimum(covariance_type, global_random_seed):
    """With one component (one optimum) SQUAREM ends at plain EM's parameters."""
    # About 30% missing: plain EM's rate is then far enough from 1 that its
    # stopping point (gain < 1e-13 per step) is within ~1e-9 of the optimum.
    X = _mar_data(global_random_seed, rate=0.6)
    fits = [
        EMImputer(
            covariance_type=covariance_type, tol=1e-13, max_iter=20000, accelerate=acc
        ).fit(X)
        for acc in (None, "squarem")
    ]
    plain, squarem = fits
    assert plain.converged_ and squarem.converged_
    # Both stop where one EM step gains < 1e-13 per row; the parameters then
    # agree far below the 1e-6 the issue asks for.
    assert_allclose(squarem.means_, plain.means_, rtol=1e-6, atol=1e-6)
    assert_allclose(squarem.covariances_, plain.covariances_, rtol=1e-6, atol=1e-6)
    assert squarem.lower_bound_ >= plain.lower_bound_ - 1e-9


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_squarem_never_lowers_likelihood(covariance_type, global_random_seed):
    """With exact EM (reg_covar=0, one component) each recorded bound is >= the last."""
    X = _mar_data(global_random_seed, n=300, d=3)
    # reg_covar > 0 makes the M-step maximise a penalised objective, whose
    # observed-data likelihood may dip slightly near a collapse (plain EM and
    # GaussianMixture too); reg_covar=0 is exact EM.
    fit = EMClusterer(
        covariance_type=covariance_type,
        reg_covar=0.0,
        tol=1e-10,
        max_iter=3000,
        accelerate="squarem",
    ).fit(X)
    bounds = np.asarray(fit.lower_bounds_)
    # Rounding of a sum over 300 rows of O(10) terms: 1e-12 relative.
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))


class _RecordingModel(MixtureModel):
    """The Gaussian mixture, recording which E-steps evaluate extrapolated points."""

    def __init__(self, *args):
        super().__init__(*args)
        self.extrapolated = []
        self.log = []

    def unflatten(self, vector, like):
        params = super().unflatten(vector, like)
        self.extrapolated.append(params)
        return params

    def e_step(self, params, data):
        stats = super().e_step(params, data)
        is_extrapolated = any(params is p for p in self.extrapolated)
        self.log.append((is_extrapolated, stats.log_likelihood / stats.n_samples))
        return stats


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_accepted_extrapolations_never_lower_likelihood(
    covariance_type, global_random_seed
):
    """An extrapolated point is kept only if its likelihood is >= the last bound."""
    X = _mar_data(global_random_seed, n=300, d=3)
    model = _RecordingModel(GaussianFamily(covariance_type, 1e-6), 3)
    result = run_em(
        model,
        prepare_missing_data(X, 3),
        n_init=1,
        max_iter=500,
        tol=1e-10,
        random_state=np.random.RandomState(0),
        accelerate="squarem",
    )
    expected, previous, n_extrapolated = [], -np.inf, 0
    for is_extrapolated, bound in model.log:
        n_extrapolated += is_extrapolated
        if is_extrapolated and bound < previous:
            continue  # rejected: EM goes on from the plain update
        expected.append(bound)
        previous = bound
    assert n_extrapolated > 0
    # The recorded bounds are exactly those the acceptance rule keeps.
    assert result.lower_bounds == expected


def test_squarem_needs_fewer_e_steps_on_slow_case():
    """On a 50% MAR case where plain EM is slow SQUAREM needs >= 3x fewer E-steps."""
    X = _mar_data(0, n=300, d=5)
    steps = {}
    for acc in (None, "squarem"):
        fit = EMImputer(tol=1e-10, max_iter=20000, accelerate=acc).fit(X)
        steps[acc] = fit.n_iter_
    assert steps["squarem"] * 3 <= steps[None], steps
