"""The array API E-step (``_gaussian._xp``) against the NumPy engine's E-step.

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
array_api_compat = pytest.importorskip(
    "array_api_compat",
    reason="the array API tests need array-api-compat (the 'test' extra)",
)

from em_sklearn._gaussian._cholesky import (  # noqa: E402
    COVARIANCE_TYPES,
    compute_precision_cholesky,
)
from em_sklearn._gaussian._xp import (  # noqa: E402
    SOLVERS,
    prepare_groups,
    reference_e_step,
    xp_e_step,
)

CPU = xps.Device("CPU_DEVICE")
FIELDS = ("log_likelihood", "nk", "s1", "s2", "log_prob_norm", "resp")


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


def _numpy(a):
    """A float64 NumPy copy of an array-api-strict array (from any device)."""
    return np.asarray(a.to_device(CPU), dtype=np.float64)


def _assert_e_step_equal(result, expected, rtol, atol, fields=FIELDS):
    for name in fields:
        actual, desired = _numpy(getattr(result, name)), getattr(expected, name)
        assert_allclose(
            actual,
            desired,
            rtol=rtol,
            atol=atol * np.max(np.abs(desired)),
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
    X, weights, means, prec_chol = _problem(
        global_random_seed, 120, n_features, n_components, covariance_type, missing_rate
    )
    expected = reference_e_step(X, weights, means, prec_chol, covariance_type)
    result = xp_e_step(
        *map(xps.asarray, (X, weights, means, prec_chol)),
        covariance_type,
        solver=solver,
        return_rows=True,
    )
    # Same formulas, other order of operations: rounding only. atol is
    # relative to each array's largest entry (entries of s1 and s2 may sum
    # to nearly 0).
    _assert_e_step_equal(result, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_outputs_follow_the_namespace_and_device_of_X(
    covariance_type, solver, global_random_seed
):
    """On array-api-strict's 'device1', every output is an array of its, there."""
    device = xps.Device("device1")
    X, weights, means, prec_chol = _problem(
        global_random_seed, 150, 4, 3, covariance_type, 0.3
    )
    result = xp_e_step(
        *(xps.asarray(a, device=device) for a in (X, weights, means, prec_chol)),
        covariance_type,
        solver=solver,
        return_rows=True,
    )
    for name in FIELDS:
        out = getattr(result, name)
        assert array_api_compat.array_namespace(out) is xps, name
        assert out.device == device, name
        assert out.dtype == xps.float64, name
    expected = reference_e_step(X, weights, means, prec_chol, covariance_type)
    _assert_e_step_equal(result, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("device_name", ["CPU_DEVICE", "no_float64"])
def test_float32_within_scikit_learn_tolerances(
    covariance_type, solver, device_name, global_random_seed
):
    """float32 in, float32 out, within rtol 1e-4 / atol 5e-4 of the float64 E-step.

    'no_float64' is array-api-strict's device without float64: the E-step
    makes no float64 array (it would raise there), so it runs unchanged.
    """
    device = xps.Device(device_name)
    X, weights, means, prec_chol = (
        a.astype(np.float32)
        for a in _problem(global_random_seed, 300, 6, 3, covariance_type, 0.2)
    )
    result = xp_e_step(
        *(xps.asarray(a, device=device) for a in (X, weights, means, prec_chol)),
        covariance_type,
        solver=solver,
        return_rows=True,
    )
    for name in FIELDS:
        out = getattr(result, name)
        assert out.dtype == xps.float32, name
        assert out.device == device, name
    # The same float32 values, computed in float64 by the NumPy engine.
    expected = reference_e_step(X, weights, means, prec_chol, covariance_type)
    for name in FIELDS:
        # scikit-learn's float32 tolerances for its array API tests.
        assert_allclose(
            _numpy(getattr(result, name)),
            getattr(expected, name),
            rtol=1e-4,
            atol=5e-4,
            err_msg=name,
        )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_blocks_and_prepared_rows_do_not_change_the_statistics(
    covariance_type, global_random_seed
):
    """Tiny blocks, prepared rows and the whole data at once agree to rounding."""
    X, weights, means, prec_chol = _problem(
        global_random_seed, 200, 5, 2, covariance_type, 0.3
    )
    arrays = [xps.asarray(a) for a in (X, weights, means, prec_chol)]
    whole = xp_e_step(*arrays, covariance_type, return_rows=True)
    data = prepare_groups(arrays[0])
    assert [group.n_missing for group in data.groups] == sorted(
        {int(s) for s in np.isnan(X).sum(axis=1)}
    )
    blocked = xp_e_step(
        data, *arrays[1:], covariance_type, block_elements=64, return_rows=True
    )
    # Sums over other blocks of rows: rounding only.
    _assert_e_step_equal(blocked, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_weight_and_reference_means(covariance_type, global_random_seed):
    """Weighted rows and moments about other reference means equal NumPy's E-step."""
    X, weights, means, prec_chol = _problem(
        global_random_seed, 150, 4, 3, covariance_type, 0.3
    )
    rng = np.random.default_rng(global_random_seed + 1)
    sample_weight = rng.uniform(0.1, 3.0, size=len(X))
    ref = means + rng.normal(scale=0.5, size=means.shape)
    expected = reference_e_step(
        X,
        weights,
        means,
        prec_chol,
        covariance_type,
        ref=ref,
        sample_weight=sample_weight,
    )
    result = xp_e_step(
        *map(xps.asarray, (X, weights, means, prec_chol)),
        covariance_type,
        ref=xps.asarray(ref),
        sample_weight=xps.asarray(sample_weight),
        return_rows=True,
    )
    _assert_e_step_equal(result, expected, rtol=1e-10, atol=1e-10)


def test_numpy_input_gives_numpy_output():
    """Plain NumPy arrays go through array_api_compat's wrapper and come back NumPy."""
    X, weights, means, prec_chol = _problem(0, 80, 3, 2, "full", 0.3)
    result = xp_e_step(X, weights, means, prec_chol, "full")
    # NumPy returns 0-d results as NumPy scalars.
    assert isinstance(result.log_likelihood, np.float64)
    assert all(isinstance(getattr(result, n), np.ndarray) for n in FIELDS[1:4])
    expected = reference_e_step(X, weights, means, prec_chol, "full")
    for name in FIELDS[:4]:
        assert_allclose(
            getattr(result, name), getattr(expected, name), rtol=1e-10, atol=0
        )


def test_invalid_arguments_are_refused():
    """Unknown covariance types and solvers, and weights given twice, raise."""
    X, weights, means, prec_chol = (
        xps.asarray(a) for a in _problem(0, 20, 2, 1, "full", 0.0)
    )
    msg = "covariance_type must be one of ('full', 'tied', 'diag', 'spherical'). "
    with pytest.raises(ValueError, match=re.escape(msg + "Got 'lower' instead.")):
        xp_e_step(X, weights, means, prec_chol, "lower")
    msg = "solver must be one of ('sweep', 'cholesky'). Got 'lu' instead."
    with pytest.raises(ValueError, match=re.escape(msg)):
        xp_e_step(X, weights, means, prec_chol, solver="lu")
    msg = "Give sample_weight to prepare_groups, not with prepared rows."
    with pytest.raises(ValueError, match=re.escape(msg)):
        xp_e_step(prepare_groups(X), weights, means, prec_chol, sample_weight=weights)
    # The dtype is printed as the namespace prints it (array_api_strict.int64).
    msg = re.escape("X must have a real floating dtype. Got ") + ".*int64 instead"
    with pytest.raises(TypeError, match=msg):
        prepare_groups(xps.asarray(np.zeros((3, 2), dtype=np.int64)))
