"""n_jobs: blocks of rows worked on by several processes give the same fit."""

import multiprocessing
import re
import warnings

import numpy as np
import pytest
from _helpers import FITTED
from numpy.testing import assert_allclose, assert_array_equal

from em_sklearn import EMClusterer, EMImputer
from em_sklearn._gaussian import COVARIANCE_TYPES, GaussianFamily
from em_sklearn._missing_data import BlockedData, prepare_missing_data, split_blocks
from em_sklearn._mixture import MixtureModel
from em_sklearn._parallel import WorkerBlocks, prepare_blocks

BLOCK_ROWS = 150  # small blocks, so that a test's data make several


def _data(seed, n_samples=700, n_features=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) @ rng.normal(size=(n_features,) * 2)
    X[: n_samples // 3] += 4.0
    X[rng.random(X.shape) < 0.2] = np.nan
    X[3] = np.nan  # a row with nothing observed
    return X


def _fit(estimator, X, **fit_params):
    estimator._block_rows = BLOCK_ROWS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is not the point here
        return estimator.fit(X, **fit_params)



@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"accelerate": "squarem", "prior": "default"},
        {"init_params": "k-means++", "n_init": 2},
    ],
    ids=["plain", "squarem-prior", "kmeans++"],
)
def test_clusterer_n_jobs_gives_the_same_fit_to_the_bit(
    covariance_type, options, global_random_seed
):
    """EMClusterer with n_jobs=2 and 3 equals n_jobs=1 exactly: parameters,
    lower bounds, iterations, and every inference output."""
    X = _data(global_random_seed)
    w = np.random.default_rng(0).integers(0, 3, len(X)).astype(float)
    fits = [
        _fit(
            EMClusterer(
                3,
                covariance_type=covariance_type,
                random_state=0,
                n_jobs=n_jobs,
                **options,
            ),
            X,
            sample_weight=w,
        )
        for n_jobs in (1, 2, 3)
    ]
    for other in fits[1:]:
        for name in FITTED:
            assert_array_equal(getattr(other, name), getattr(fits[0], name))
        for method in ("predict_proba", "score_samples"):
            assert_array_equal(getattr(other, method)(X), getattr(fits[0], method)(X))


@pytest.mark.parametrize("sample_posterior", [False, True])
def test_imputer_n_jobs_gives_the_same_imputations_to_the_bit(
    sample_posterior, global_random_seed
):
    """EMImputer with n_jobs=2 equals n_jobs=1 exactly, draws included
    (one seed per block, drawn in the calling process)."""
    X = _data(global_random_seed)
    out = []
    for n_jobs in (1, 2):
        imputer = EMImputer(
            2, random_state=0, n_jobs=n_jobs, sample_posterior=sample_posterior
        )
        imputer._block_rows = BLOCK_ROWS
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append((imputer.fit_transform(X), imputer.transform(X)))
    assert_array_equal(out[1][0], out[0][0])
    assert_array_equal(out[1][1], out[0][1])
    observed = ~np.isnan(X)
    assert_array_equal(out[1][0][observed], X[observed])


def test_workers_are_stopped_after_fit_and_inference():
    """No worker process outlives a fit or an inference call."""
    X = _data(0)
    est = _fit(EMClusterer(2, random_state=0, n_jobs=2), X)
    est.predict(X)
    assert multiprocessing.active_children() == []


def test_small_data_stay_one_block_in_this_process():
    """Fewer than two blocks' worth of rows: one block, no worker."""
    X = _data(0, n_samples=2 * BLOCK_ROWS - 1)
    prepare = MixtureModel(GaussianFamily("full", 1e-6), 2).prepare
    data = prepare_blocks(prepare, X, None, n_jobs=4, block_rows=BLOCK_ROWS)
    assert data.n_blocks == 1 and not isinstance(data, WorkerBlocks)
    X = _data(0)
    data = prepare_blocks(prepare, X, None, n_jobs=1, block_rows=BLOCK_ROWS)
    assert data.n_blocks > 1 and isinstance(data, BlockedData)
    # Cut at chunk bounds: the same chunks as one block, every row once.
    whole = prepare(X, None)
    sizes = [c.stop - c.start for block in data.blocks for c in block.chunks]
    assert sizes == [c.stop - c.start for c in whole.chunks]
    assert_array_equal(np.sort(np.concatenate(data.row_index)), np.arange(len(X)))


@pytest.mark.parametrize("processes", [True, False], ids=["processes", "threads"])
def test_worker_blocks_equal_blocks_in_this_process(processes):
    """E-steps and inference over WorkerBlocks (forked processes or threads)
    equal those over the same blocks held here, exactly."""
    X = _data(1)
    blocks = tuple(
        prepare_missing_data(X[lo : lo + BLOCK_ROWS], 2)
        for lo in range(0, len(X), BLOCK_ROWS)
    )
    model = MixtureModel(GaussianFamily("full", 1e-6), 2)
    here = BlockedData(blocks)
    params = model.initial_params(here, np.random.RandomState(0))
    with WorkerBlocks(blocks, 2, processes=processes) as there:
        a, b = model.e_step(params, here), model.e_step(params, there)
        assert a.log_likelihood == b.log_likelihood
        assert_array_equal(a.components.s2, b.components.s2)
        assert_array_equal(
            model.conditional_mean(params, there), model.conditional_mean(params, here)
        )
        assert there.total_weight == here.total_weight == len(X)


def _fail(block):
    raise ValueError(f"block of {block.n_samples} rows refused")


def test_worker_errors_are_raised_here():
    """An exception in a worker is raised in the calling process, and the
    workers keep serving."""
    X = _data(2)
    blocks = tuple(
        prepare_missing_data(X[lo : lo + BLOCK_ROWS], 2)
        for lo in range(0, len(X), BLOCK_ROWS)
    )
    with WorkerBlocks(blocks, 2) as data:
        with pytest.raises(ValueError, match=re.escape("rows refused")):
            data.map_blocks(_fail)
        assert sum(data.map_blocks(_rows)) == len(X)


def _rows(block):
    return block.n_samples


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_inference_over_blocks_equals_one_block(n_jobs, global_random_seed):
    """With the same fitted parameters, inference over blocks (cut at chunk
    bounds, rows put back in the caller's order) equals inference over one
    block: the same chunks, the same arithmetic."""
    X = _data(global_random_seed)
    imputer = EMImputer(2, random_state=0).fit(X)
    clusterer = EMClusterer(2, random_state=0).fit(X)
    expected = (imputer.transform(X), clusterer.predict_proba(X))
    for est in (imputer, clusterer):
        est._block_rows = BLOCK_ROWS
        est.n_jobs = n_jobs
    assert_array_equal(imputer.transform(X), expected[0])
    assert_array_equal(clusterer.predict_proba(X), expected[1])


@pytest.mark.parametrize("weighted", [False, True])
def test_blocks_fill_and_moments_as_one_block(weighted):
    """Blocks cut from one preparation give initialisation the same filled rows
    (column means summed block by block: to rounding), weights and moments."""
    X = _data(3)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X)) if weighted else None
    whole = prepare_missing_data(X, 2, w)
    blocks = BlockedData(*split_blocks(whole, BLOCK_ROWS))
    assert blocks.n_blocks > 1
    filled, weights = blocks.mean_filled()
    expected_filled, expected_weights = whole.mean_filled()
    assert_allclose(filled, expected_filled, rtol=1e-14, atol=1e-15)
    assert_array_equal(weights, expected_weights)
    mean, var = blocks.column_moments()
    expected_mean, expected_var = whole.column_moments()
    assert_allclose(mean, expected_mean, rtol=1e-13, atol=1e-15)
    assert_allclose(var, expected_var, rtol=1e-13, atol=1e-15)


def test_a_dead_worker_gives_a_clear_error():
    """If a worker process dies, the caller gets a RuntimeError saying so."""
    X = _data(2)
    blocks = tuple(
        prepare_missing_data(X[lo : lo + BLOCK_ROWS], 2)
        for lo in range(0, len(X), BLOCK_ROWS)
    )
    with WorkerBlocks(blocks, 2, processes=True) as data:
        for process in data._pool._processes:
            process.kill()
            process.join()
        msg = "A worker process of n_jobs stopped"
        with pytest.raises(RuntimeError, match=re.escape(msg)):
            data.map_blocks(_rows)
