"""The packed sweep kernels of ``_gaussian._sweep`` against dense linear algebra.

The E-step's missing blocks go through :func:`eliminate_packed` (for the
log-densities) and :func:`complete_sweep_packed` (for the conditional means and
covariances). Here both are checked on random batches against the textbook
block formulas computed with ``np.linalg``.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from em_sklearn._gaussian._sweep import (
    complete_sweep_packed,
    eliminate_packed,
    packed_positions,
    sweep_packed,
)

N_BATCH = 50


def _random_batch(rng, n_lead, n_pivots):
    """Symmetric ``M = [[M_UU, M_UK], [M_KU, M_KK]]``, ``M_KK`` negative definite."""
    n_vars = n_lead + n_pivots
    A = rng.normal(size=(N_BATCH, n_pivots, n_pivots))
    M = rng.normal(size=(N_BATCH, n_vars, n_vars))
    M = M + np.swapaxes(M, 1, 2)
    M[:, n_lead:, n_lead:] = -(A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(n_pivots))
    return M


def _pack(M):
    rows, cols = np.triu_indices(M.shape[1])
    return np.ascontiguousarray(M[:, rows, cols].T)  # (n_tri, N_BATCH)


def _unpack(packed, n_vars):
    return np.moveaxis(packed[packed_positions(n_vars)], 2, 0)  # (N_BATCH, n, n)


def _swept(M, n_lead):
    """The dense sweep of the trailing block (the formula in sweep_packed's doc)."""
    M_UU, M_UK, M_KK = (
        M[:, :n_lead, :n_lead],
        M[:, :n_lead, n_lead:],
        M[:, n_lead:, n_lead:],
    )
    inv_KK = np.linalg.inv(M_KK)
    gain = M_UK @ inv_KK
    return np.block(
        [
            [M_UU - gain @ np.swapaxes(M_UK, 1, 2), gain],
            [np.swapaxes(gain, 1, 2), -inv_KK],
        ]
    )


@pytest.mark.parametrize("n_lead", [0, 1, 3])
@pytest.mark.parametrize("n_pivots", [1, 2, 7])
def test_sweep_packed_matches_block_formula(n_lead, n_pivots, global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    M = _random_batch(rng, n_lead, n_pivots)
    n_vars = n_lead + n_pivots
    packed = _pack(M)
    log_det = sweep_packed(packed, n_vars, n_lead)
    assert_allclose(_unpack(packed, n_vars), _swept(M, n_lead), rtol=1e-10, atol=1e-12)
    sign, expected = np.linalg.slogdet(-M[:, n_lead:, n_lead:])
    assert np.all(sign == 1)
    assert_allclose(log_det, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_lead", [0, 1, 3])
@pytest.mark.parametrize("n_pivots", [1, 2, 7])
def test_eliminate_packed_gives_schur_complement_and_log_det(
    n_lead, n_pivots, global_random_seed
):
    """After elimination alone the leading block and log-determinant are final."""
    rng = np.random.default_rng(global_random_seed)
    M = _random_batch(rng, n_lead, n_pivots)
    n_vars = n_lead + n_pivots
    packed = _pack(M)
    log_det = eliminate_packed(packed, n_vars, n_lead)
    expected = _swept(M, n_lead)
    eliminated = _unpack(packed, n_vars)
    assert_allclose(
        eliminated[:, :n_lead, :n_lead],
        expected[:, :n_lead, :n_lead],
        rtol=1e-10,
        atol=1e-12,
    )
    # The pivots are those of LDL' of M_KK: their product is det(M_KK).
    pivots = np.diagonal(eliminated[:, n_lead:, n_lead:], axis1=1, axis2=2)
    assert np.all(pivots < 0)
    assert_allclose(
        log_det, np.linalg.slogdet(-M[:, n_lead:, n_lead:])[1], rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("n_lead", [1, 3])
def test_complete_leading_only_gives_the_solutions(n_lead, global_random_seed):
    """``leading_only=True`` back-substitutes ``M_UK inv(M_KK)`` and nothing else."""
    rng = np.random.default_rng(global_random_seed)
    n_pivots = 5
    M = _random_batch(rng, n_lead, n_pivots)
    n_vars = n_lead + n_pivots
    packed = _pack(M)
    eliminate_packed(packed, n_vars, n_lead)
    before = packed.copy()
    complete_sweep_packed(packed, n_vars, n_lead, leading_only=True)
    result, expected = _unpack(packed, n_vars), _swept(M, n_lead)
    assert_allclose(result[:, :n_lead], expected[:, :n_lead], rtol=1e-10, atol=1e-12)
    # The pivot block keeps its eliminated values.
    assert_allclose(
        _unpack(before, n_vars)[:, n_lead:, n_lead:],
        result[:, n_lead:, n_lead:],
        rtol=0,
        atol=0,
    )


def test_complete_works_on_a_column_subset():
    """Completing some columns of an eliminated batch equals sweeping them alone."""
    rng = np.random.default_rng(0)
    M = _random_batch(rng, 1, 6)
    packed = _pack(M)
    eliminate_packed(packed, 7, 1)
    wanted = np.array([3, 0, 41, 17])
    subset = np.take(packed, wanted, axis=1)
    complete_sweep_packed(subset, 7, 1)
    alone = _pack(M[wanted])
    sweep_packed(alone, 7, 1)
    assert_allclose(subset, alone, rtol=1e-13, atol=1e-14)
