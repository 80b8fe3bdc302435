"""Missingness bookkeeping: rows sorted by missingness and cut into chunks.

Only the default chunk settings are used: the properties tested here hold
whatever the working-set budgets and pattern-grouping thresholds are.
"""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from em_sklearn._missing_data import (  # the one line to change if the module moves
    Chunk,
    MissingData,
    _pattern_ids,
    prepare_missing_data,
)

# At the default settings a pattern with s missing entries gets ``shared``
# chunks once max(64, 2**17 // s**3) rows share it: 64 rows when s >= 13.
FREQUENT_ROWS = 64


def _data(rng, n_samples, n_features, missing, n_empty=3, n_complete=5):
    """Normal data with MCAR holes, some all-NaN rows and some complete rows."""
    X = rng.normal(size=(n_samples, n_features))
    X[rng.random(X.shape) < missing] = np.nan
    rows = rng.permutation(n_samples)
    X[rows[:n_empty]] = np.nan
    X[rows[n_empty : n_empty + n_complete]] = rng.normal(size=(n_complete, n_features))
    return X


def _with_frequent_pattern(rng, X, n_missing, n_rows):
    """Give ``n_rows`` random rows of ``X`` one pattern of ``n_missing`` holes."""
    X = X.copy()
    cols = np.sort(rng.choice(X.shape[1], size=n_missing, replace=False))
    rows = rng.choice(X.shape[0], size=n_rows, replace=False)
    X[rows] = rng.normal(size=(n_rows, X.shape[1]))
    X[np.ix_(rows, cols)] = np.nan
    return X, rows, cols


def _check_round_trip(X, data):
    """Un-sorting ``data`` gives back ``X`` (0 at its holes) and its NaN mask."""
    assert isinstance(data, MissingData)
    n_samples = X.shape[0]
    assert_array_equal(np.sort(data.order), np.arange(n_samples))
    unsort = np.argsort(data.order)
    assert data.X.dtype == np.float64
    expected = np.where(np.isnan(X), 0.0, X).astype(np.float64)
    assert_array_equal(data.X[unsort], expected)
    assert_array_equal(data.missing_mask[unsort], np.isnan(X))
    assert data.X.shape == data.missing_mask.shape == X.shape


def _check_chunks(X, data):
    """Chunks tile [0, n) in order and list each row's missing columns exactly."""
    n_samples, n_features = X.shape
    assert all(isinstance(chunk, Chunk) for chunk in data.chunks)
    starts = [chunk.start for chunk in data.chunks]
    stops = [chunk.stop for chunk in data.chunks]
    assert starts[0] == 0
    assert stops[-1] == n_samples
    assert_array_equal(starts[1:], stops[:-1])
    assert all(start < stop for start, stop in zip(starts, stops, strict=True))
    rows = np.concatenate([chunk.rows for chunk in data.chunks])
    assert_array_equal(np.sort(rows), np.arange(n_samples))  # each row exactly once
    expected_dtype = np.uint8 if n_features <= 256 else np.uint16
    missing = np.isnan(X)
    for chunk in data.chunks:
        assert_array_equal(chunk.rows, data.order[chunk.start : chunk.stop])
        assert chunk.missing_cols.dtype == expected_dtype
        assert chunk.missing_cols.shape == (chunk.stop - chunk.start, chunk.n_missing)
        for row, cols in zip(chunk.rows, chunk.missing_cols, strict=True):
            assert_array_equal(cols, np.flatnonzero(missing[row]))
        if chunk.shared:
            assert chunk.n_missing > 0
            assert_array_equal(
                data.missing_mask[chunk.start : chunk.stop],
                np.broadcast_to(
                    data.missing_mask[chunk.start], missing[chunk.rows].shape
                ),
            )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_components", [1, 200])
@pytest.mark.parametrize(
    "n_samples, n_features, missing",
    [(1, 1, 0.0), (40, 1, 0.5), (300, 5, 0.2), (300, 70, 0.02), (150, 300, 0.3)],
)
def test_round_trip(
    n_samples, n_features, missing, n_components, dtype, global_random_seed
):
    """Un-sorting the prepared data gives X with 0 at its holes and its NaN mask."""
    rng = np.random.default_rng(global_random_seed)
    X = _data(rng, n_samples, n_features, missing, n_empty=0, n_complete=0)
    X = X.astype(dtype)
    data = prepare_missing_data(X, n_components)
    _check_round_trip(X, data)


@pytest.mark.parametrize("n_components", [1, 200])
@pytest.mark.parametrize(
    "n_samples, n_features, missing",
    [(40, 1, 0.5), (300, 5, 0.2), (300, 70, 0.02), (150, 300, 0.3)],
)
def test_chunks_tile_the_rows(
    n_samples, n_features, missing, n_components, global_random_seed
):
    """Every row is in exactly one chunk; chunks are contiguous and cover [0, n)."""
    rng = np.random.default_rng(global_random_seed)
    X = _data(rng, n_samples, n_features, missing)
    data = prepare_missing_data(X, n_components)
    _check_chunks(X, data)


@pytest.mark.parametrize(
    "n_features, dtype",
    [
        (1, np.uint8),
        (9, np.uint8),
        (255, np.uint8),
        (256, np.uint8),
        (257, np.uint16),
        (300, np.uint16),
    ],
)
def test_missing_cols_exact_and_smallest_dtype(n_features, dtype, global_random_seed):
    """missing_cols lists each row's holes, sorted, in the smallest unsigned type."""
    rng = np.random.default_rng(global_random_seed)
    X = _data(rng, 60, n_features, 0.3)
    X[0, -1] = np.nan  # the largest column index is stored
    data = prepare_missing_data(X, 1)
    missing = np.isnan(X)
    for chunk in data.chunks:
        assert chunk.missing_cols.dtype == dtype
        n_missing = missing[chunk.rows].sum(axis=1)
        assert_array_equal(n_missing, chunk.n_missing)  # one count per chunk
        for row, cols in zip(chunk.rows, chunk.missing_cols, strict=True):
            assert_array_equal(cols, np.flatnonzero(missing[row]))
    assert max(c.missing_cols.max(initial=0) for c in data.chunks) == n_features - 1


@pytest.mark.parametrize("n_features", [1, 7, 8, 9, 63, 64, 65, 130, 300])
def test_pattern_ids_label_equal_masks_equally(n_features, global_random_seed):
    """Two rows get the same id iff their masks are equal; counts count them."""
    rng = np.random.default_rng(global_random_seed)
    pool = rng.random((6, n_features)) < 0.4
    mask = pool[rng.integers(len(pool), size=150)]
    # Rows one bit away from a pool row, at the first and last columns (the
    # edges of the packed bytes), must get ids of their own.
    near = pool[rng.integers(len(pool), size=20)].copy()
    near[:10, 0] ^= True
    near[10:, -1] ^= True
    mask = np.concatenate([mask, near, np.zeros((3, n_features), bool)])
    mask = mask[rng.permutation(len(mask))]
    ids, counts = _pattern_ids(mask)
    _, ref_ids, ref_counts = np.unique(
        mask, axis=0, return_inverse=True, return_counts=True
    )
    ref_ids = ref_ids.ravel()
    assert ids.shape == (len(mask),)
    assert len(counts) == len(ref_counts)
    assert_array_equal(
        ids[:, None] == ids[None, :], ref_ids[:, None] == ref_ids[None, :]
    )
    assert_array_equal(counts[ids], ref_counts[ref_ids])
    assert counts.sum() == len(mask)


@pytest.mark.parametrize("n_components", [1, 200])
@pytest.mark.parametrize(
    "n_features, n_missing, n_frequent",
    [(70, 16, FREQUENT_ROWS), (70, 16, 200), (300, 64, FREQUENT_ROWS), (300, 64, 150)],
)
def test_many_columns_with_a_frequent_pattern(
    n_features, n_missing, n_frequent, n_components, global_random_seed
):
    """Over 64 columns, a frequent pattern gets shared chunks and rows round-trip."""
    rng = np.random.default_rng(global_random_seed)
    X = _data(rng, 300, n_features, 0.2)
    X, frequent_rows, cols = _with_frequent_pattern(rng, X, n_missing, n_frequent)
    data = prepare_missing_data(X, n_components)
    _check_round_trip(X, data)
    _check_chunks(X, data)
    shared = [chunk for chunk in data.chunks if chunk.shared]
    assert shared
    shared_rows = np.concatenate([chunk.rows for chunk in shared])
    assert_array_equal(np.sort(shared_rows), np.sort(frequent_rows))
    for chunk in shared:
        assert_array_equal(
            chunk.missing_cols, np.broadcast_to(cols, chunk.missing_cols.shape)
        )


def test_pattern_below_the_threshold_is_not_shared(global_random_seed):
    """One row fewer than the default threshold and the pattern is not shared."""
    rng = np.random.default_rng(global_random_seed)
    X = _data(rng, 300, 300, 0.2)
    X, _, _ = _with_frequent_pattern(rng, X, 64, FREQUENT_ROWS - 1)
    data = prepare_missing_data(X, 1)
    _check_chunks(X, data)
    assert not any(chunk.shared for chunk in data.chunks)


@pytest.mark.parametrize("n_components", [1, 200])
@pytest.mark.parametrize("n_features", [3, 70, 300])
def test_sample_weights_follow_the_rows(n_features, n_components, global_random_seed):
    """Sorted weights are the caller's weights permuted with the rows."""
    rng = np.random.default_rng(global_random_seed)
    X = _data(rng, 250, n_features, 0.2)
    w = rng.random(len(X))
    data = prepare_missing_data(X, n_components, sample_weight=w)
    assert_array_equal(data.weights, w[data.order])
    for chunk in data.chunks:
        assert_array_equal(data.chunk_weights(chunk), w[chunk.rows])
    assert prepare_missing_data(X, n_components).weights is None


@pytest.mark.parametrize("n_features", [1, 4, 70, 300])
def test_all_nan_and_complete_rows(n_features, global_random_seed):
    """All-NaN rows and complete rows are chunked like any other row."""
    rng = np.random.default_rng(global_random_seed)
    X = _data(rng, 100, n_features, 0.2, n_empty=4, n_complete=6)
    data = prepare_missing_data(X, 2)
    _check_round_trip(X, data)
    _check_chunks(X, data)
    missing = np.isnan(X)
    empty_rows = np.flatnonzero(missing.all(axis=1))
    complete_rows = np.flatnonzero(~missing.any(axis=1))
    assert len(empty_rows) >= 4
    assert len(complete_rows) >= 6
    in_empty = [c.rows for c in data.chunks if c.n_missing == n_features]
    in_complete = [c.rows for c in data.chunks if c.n_missing == 0]
    assert_array_equal(np.sort(np.concatenate(in_empty)), empty_rows)
    assert_array_equal(np.sort(np.concatenate(in_complete)), complete_rows)
    for chunk in data.chunks:
        if chunk.n_missing == n_features:
            assert_array_equal(
                chunk.missing_cols,
                np.broadcast_to(np.arange(n_features), chunk.missing_cols.shape),
            )
            assert_array_equal(data.X[chunk.start : chunk.stop], 0.0)
        if chunk.n_missing == 0:
            assert_array_equal(data.X[chunk.start : chunk.stop], X[chunk.rows])
