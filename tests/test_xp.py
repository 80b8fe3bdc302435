"""The device E-step (``_device_data``, ``_gaussian._xp``) against the NumPy engine.

The mixture layer drives both: the same model's ``e_step``, ``log_resp``,
``conditional_mean`` and ``posterior_draw`` on rows prepared for the NumPy
engine and on the same rows prepared on an array API device.

Runs on ``array-api-strict``, which checks that only the standard is used and
simulates devices: ``device1`` (outputs must stay on it), and ``no_float64``
(float32 only). Its ``no_x64`` device (int32 indexing) cannot be tested:
array-api-strict's own ``argsort`` returns int64 there and raises, before any
code of ours runs.
"""

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose

xps = pytest.importorskip(
    "array_api_strict",
    reason="the array API tests need array-api-strict (the 'test' extra)",
)

from em_sklearn._array_api import to_numpy  # noqa: E402
from em_sklearn._device_data import SOLVERS, prepare_device_data  # noqa: E402
from em_sklearn._gaussian import GaussianParams, gaussian_mixture  # noqa: E402
from em_sklearn._gaussian._cholesky import (  # noqa: E402
    COVARIANCE_TYPES,
    compute_precision_cholesky,
)
from em_sklearn._mixture import MixtureParams  # noqa: E402

CPU = xps.Device("CPU_DEVICE")
FIELDS = ("log_likelihood", "nk", "s1", "s2", "log_prob_norm", "resp", "x_hat")


def _problem(seed, n_samples, n_features, n_components, covariance_type, rate):
    """Random parameters and rows near the means, ``rate`` of the entries MCAR.

    With a positive rate the first two rows have nothing observed and the third
    is complete, so both special cases are always present.
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 3.0))
    means = rng.normal(scale=2.0, size=(n_components, n_features))
    k, d = n_components, n_features
    if covariance_type == "full":
        A = rng.normal(size=(k, d, d))
        covariances = A @ np.swapaxes(A, 1, 2) / d + 0.5 * np.eye(d)
    elif covariance_type == "tied":
        A = rng.normal(size=(d, d))
        covariances = A @ A.T / d + 0.5 * np.eye(d)
    elif covariance_type == "diag":
        covariances = rng.uniform(0.5, 2.0, size=(k, d))
    else:
        covariances = rng.uniform(0.5, 2.0, size=k)
    prec_chol = compute_precision_cholesky(covariances, covariance_type)
    labels = rng.choice(k, size=n_samples, p=weights)
    X = means[labels] + rng.normal(size=(n_samples, d))
    if rate:
        missing = rng.random(X.shape) < rate
        missing[:2] = True
        missing[2] = False
        X[missing] = np.nan
    return X, weights, means, prec_chol


def _run(X, weights, means, prec_chol, covariance_type, data):
    """Every E-step and inference quantity of ``data``, as float64 NumPy arrays."""
    n_components = len(weights)
    model = gaussian_mixture(n_components, covariance_type, 0.0)
    params = MixtureParams(
        np.asarray(weights, dtype=np.float64),
        GaussianParams.from_precisions_cholesky(
            np.asarray(means, dtype=np.float64),
            np.asarray(prec_chol, dtype=np.float64),
            covariance_type,
        ),
    )
    stats = model.e_step(params, data)
    log_prob_norm, log_resp = model.log_resp(params, data)
    return {
        "log_likelihood": np.float64(stats.log_likelihood),
        "nk": stats.nk,
        "s1": stats.components.s1,
        "s2": stats.components.s2,
        "ref": stats.components.ref,
        "log_prob_norm": to_numpy(log_prob_norm),
        "resp": np.exp(to_numpy(log_resp)),
        "x_hat": np.where(
            np.isnan(X), to_numpy(model.conditional_mean(params, data)), 0.0
        ),
    }


def _both(
    X,
    weights,
    means,
    prec_chol,
    covariance_type,
    *,
    sample_weight=None,
    device=CPU,
    dtype=np.float64,
    **settings,
):
    """The NumPy engine's results and the device's, the device's arrays kept."""
    host = gaussian_mixture(len(weights), covariance_type, 0.0).prepare(
        X.astype(dtype).astype(np.float64), sample_weight
    )
    data = prepare_device_data(
        xps.asarray(X.astype(dtype), device=device),
        len(weights),
        None
        if sample_weight is None
        else xps.asarray(sample_weight.astype(dtype), device=device),
        **settings,
    )
    return (
        _run(X, weights, means, prec_chol, covariance_type, host),
        _run(X, weights, means, prec_chol, covariance_type, data),
        data,
    )


def _assert_equal(result, expected, rtol, atol, fields=FIELDS):
    for name in fields:
        actual, desired = result[name], expected[name]
        assert_allclose(
            actual,
            desired,
            rtol=rtol,
            atol=atol * max(np.max(np.abs(desired)), 1e-300),
            err_msg=name,
        )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("missing_rate", [0.0, 0.2, 0.6])
@pytest.mark.parametrize("n_components", [1, 3])
@pytest.mark.parametrize("n_features", [1, 6])
def test_e_step_equals_numpy_engine(
    covariance_type, solver, missing_rate, n_components, n_features, global_random_seed
):
    """nk, s1, s2, the log-likelihood and the per-row results equal the NumPy E-step."""
    problem = _problem(
        global_random_seed, 120, n_features, n_components, covariance_type, missing_rate
    )
    expected, result, _ = _both(*problem, covariance_type, solver=solver)
    # Same formulas, other order of operations: rounding only. atol is
    # relative to each array's largest entry (entries of s1 and s2 may sum
    # to nearly 0).
    _assert_equal(result, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_outputs_follow_the_namespace_and_device_of_X(
    covariance_type, solver, global_random_seed
):
    """On array-api-strict's 'device1', rows and results stay arrays of its, there."""
    device = xps.Device("device1")
    problem = _problem(global_random_seed, 150, 4, 3, covariance_type, 0.3)
    expected, result, data = _both(
        *problem, covariance_type, solver=solver, device=device
    )
    model = gaussian_mixture(3, covariance_type, 0.0)
    params = model.initial_params(data, np.random.RandomState(0))
    for out in (
        *model.log_resp(params, data),
        model.conditional_mean(params, data),
        model.posterior_draw(params, data, np.random.RandomState(0)),
    ):
        assert isinstance(out, type(data.groups[0].X0))
        assert out.device == device
        assert out.dtype == xps.float64
    _assert_equal(result, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("device_name", ["CPU_DEVICE", "no_float64"])
def test_float32_within_scikit_learn_tolerances(
    covariance_type, solver, device_name, global_random_seed
):
    """float32 rows: within rtol 1e-4 / atol 5e-4 of the float64 E-step.

    'no_float64' is array-api-strict's device without float64: the device
    path makes no float64 array (it would raise there).
    """
    problem = _problem(global_random_seed, 300, 6, 3, covariance_type, 0.2)
    # The same float32 values, computed in float64 by the NumPy engine.
    expected, result, data = _both(
        *problem,
        covariance_type,
        solver=solver,
        device=xps.Device(device_name),
        dtype=np.float32,
    )
    assert data.dtype == xps.float32
    # scikit-learn's float32 tolerances for its array API tests, about each
    # array's largest entry.
    _assert_equal(result, expected, rtol=1e-4, atol=5e-4)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_chunks_do_not_change_the_statistics(covariance_type, global_random_seed):
    """Tiny chunks and one chunk per group agree to rounding; groups are by count."""
    problem = _problem(global_random_seed, 200, 5, 2, covariance_type, 0.3)
    whole, _, data = _both(*problem, covariance_type)
    assert [group.n_missing for group in data.groups] == sorted(
        {int(s) for s in np.isnan(problem[0]).sum(axis=1)}
    )
    _, chunked, data = _both(*problem, covariance_type, block_elements=64)
    assert len(data.chunks) > 2 * len(data.groups)
    _assert_equal(chunked, whole, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_weight(covariance_type, global_random_seed):
    """Weighted rows equal the NumPy engine's weighted E-step."""
    X, weights, means, prec_chol = _problem(
        global_random_seed, 150, 4, 3, covariance_type, 0.3
    )
    rng = np.random.default_rng(global_random_seed + 1)
    sample_weight = rng.uniform(0.1, 3.0, size=len(X))
    expected, result, _ = _both(
        X, weights, means, prec_chol, covariance_type, sample_weight=sample_weight
    )
    _assert_equal(result, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_posterior_draws_have_the_conditional_moments(
    covariance_type, global_random_seed
):
    """Many draws of one row's missing entries: their mean and covariance are the
    conditional mean and covariance of the NumPy engine (Monte Carlo error)."""
    X, weights, means, prec_chol = _problem(
        global_random_seed, 4, 4, 2, covariance_type, 0.0
    )
    row = X[3].copy()
    row[[0, 2]] = np.nan
    n_draws = 4000
    rows = np.tile(row, (n_draws, 1))
    model = gaussian_mixture(2, covariance_type, 0.0)
    params = MixtureParams(
        weights,
        GaussianParams.from_precisions_cholesky(means, prec_chol, covariance_type),
    )
    data = prepare_device_data(xps.asarray(rows), 2)
    draws = to_numpy(
        model.posterior_draw(params, data, np.random.RandomState(global_random_seed))
    )
    assert_allclose(draws[:, [1, 3]], rows[:, [1, 3]])  # observed: the input
    # The NumPy engine's conditional mean; the covariance by its draws.
    host = model.prepare(rows)
    expected_mean = model.conditional_mean(params, host)[0, [0, 2]]
    host_draws = model.posterior_draw(params, host, np.random.RandomState(1))
    expected_cov = np.cov(host_draws[:, [0, 2]].T)
    sd = np.sqrt(np.diag(expected_cov))
    assert_allclose(
        draws[:, [0, 2]].mean(axis=0),
        expected_mean,
        atol=5 * sd.max() / np.sqrt(n_draws),
    )
    assert_allclose(
        np.cov(draws[:, [0, 2]].T), expected_cov, rtol=0.15, atol=0.15 * sd.max() ** 2
    )


def test_invalid_arguments_are_refused():
    """Unknown solvers and integer rows raise, naming what is wrong."""
    X = xps.asarray(np.zeros((3, 2)))
    msg = "solver must be one of ('sweep', 'cholesky'). Got 'lu' instead."
    with pytest.raises(ValueError, match=re.escape(msg)):
        prepare_device_data(X, 1, solver="lu")
    # The dtype is printed as the namespace prints it (array_api_strict.int64).
    msg = re.escape("X must have a real floating dtype. Got ") + ".*int64 instead"
    with pytest.raises(TypeError, match=msg):
        prepare_device_data(xps.asarray(np.zeros((3, 2), dtype=np.int64)), 1)
