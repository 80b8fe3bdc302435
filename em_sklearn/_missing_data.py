"""Prepared data: rows sorted by missingness and cut into chunks, in blocks of rows.

What the EM loop, the mixture layer and the emission families see of the data.
A :class:`MissingData` is one block of rows held in this process; a
:class:`BlockedData` is several, whose statistics add up (the E-step of the
whole is the sum of the E-steps of its blocks, DESIGN §3, §8).
"""

import functools
import operator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChunkSettings:
    """How rows are grouped into chunks: working-set budgets and pattern grouping.

    Attributes
    ----------
    block_elements : int, default=2**19
        Budget, in float64 elements, of the packed ``(s + 1, s + 1)`` blocks one
        component sweeps for a chunk of rows with ``s`` missing entries. The
        symmetric sweep makes a few NumPy calls per row of the block and pivot,
        so bigger chunks amortise them (see benchmarks/RESULTS.md).
    row_elements : int, default=2**19
        Budget of all components' ``(rows, n_features)`` arrays of a chunk.
    min_pattern_rows : int, default=64
        A missingness pattern with ``s`` missing entries shared by at least
        ``max(min_pattern_rows, pattern_work // s**3)`` rows gets chunks of its
        own, where one inverse of each component's missing block serves every
        row. The per-row sweep costs about ``s**3`` and a chunk a fixed ~0.3 ms
        of NumPy calls: with ``s`` = 1 or 2 grouping pays only for thousands of
        rows, with ``s`` = 8 for a few hundred.
    pattern_work : int, default=2**17
        See ``min_pattern_rows``.
    """

    block_elements: int = 2**19
    row_elements: int = 2**19
    min_pattern_rows: int = 64
    pattern_work: int = 2**17


@dataclass(frozen=True)
class Chunk:
    """A contiguous run of sorted rows that share their number of missing entries.

    Attributes
    ----------
    start, stop : int
        The run's bounds in the sorted data (``MissingData.X[start:stop]``).
    rows : ndarray of shape (n_rows,) or slice
        Where the rows' results go in the block's output: their indices in
        the caller's data, or (blocks cut by ``split_blocks``) a slice of the
        block's stored order.
    missing_cols : ndarray of shape (n_rows, n_missing)
        Sorted indices of each row's missing columns, in the smallest unsigned
        integer type that holds them (widen before arithmetic).
    shared : bool
        True when every row of the chunk has the same missing columns.
    """

    start: int
    stop: int
    rows: np.ndarray
    missing_cols: np.ndarray
    shared: bool = False

    @property
    def n_missing(self):
        return self.missing_cols.shape[1]


class _Blocks:
    """How the E-step, inference and initialisation visit blocks of rows.

    Everything goes through :meth:`map_blocks` (``fn`` applied to each block,
    results in block order): a container whose blocks live elsewhere (in
    worker processes, on a cluster) overrides it and ``n_samples``,
    ``n_features`` and ``total_weight``, and nothing upstream changes. The
    ``fn`` given are picklable (partials of methods, ``operator`` callers).
    ``map_reduce`` is the one place where per-block statistics are added.
    """

    def map_blocks(self, fn, per_block=None):
        """Return ``[fn(block) for block in blocks]``, in block order.

        With ``per_block`` (a sequence, one item per block), return
        ``[fn(block, item) ...]`` instead.
        """
        if per_block is None:
            return [fn(block) for block in self.blocks]
        pairs = zip(self.blocks, per_block, strict=True)
        return [fn(block, item) for block, item in pairs]

    @property
    def n_blocks(self):
        return len(self.blocks)

    def map_reduce(self, fn):
        """Return ``fn(block_0) + fn(block_1) + ...``, added in block order."""
        return functools.reduce(operator.add, self.map_blocks(fn))

    # Where each block's rows go in the caller's order (``split_blocks``); None
    # when the blocks are consecutive runs of the caller's rows.
    row_index = None

    def map_rows(self, fn):
        """Return ``fn(block)`` of every block, put together in the caller's row order.

        ``fn`` returns one array (rows first) or a tuple of arrays per block.
        """
        parts = self.map_blocks(fn)
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], tuple):
            return tuple(
                self._stack(list(group)) for group in zip(*parts, strict=True)
            )
        return self._stack(parts)

    def _stack(self, parts):
        if self.row_index is None:
            return np.concatenate(parts)
        out = np.empty((self.n_samples, *parts[0].shape[1:]), dtype=parts[0].dtype)
        for rows, part in zip(self.row_index, parts, strict=True):
            out[rows] = part
        return out

    @property
    def total_weight(self):
        """Sum of the sample weights (the number of rows when unweighted)."""
        return sum(block.block_weight for block in self.blocks)

    def observed_counts(self):
        """Each column's (weighted) number of observed entries over all blocks."""
        return sum(self.map_blocks(operator.methodcaller("observed_counts")))

    def column_means(self):
        """Each column's (weighted) mean over its observed entries; 0 if none.

        Returns
        -------
        mean : ndarray of shape (n_features,)
        """
        parts = self.map_blocks(_count_and_sum)
        counts = sum(count for count, _ in parts)
        sums = sum(total for _, total in parts)
        return sums / np.where(counts > 0, counts, 1)

    def column_moments(self):
        """Each column's (weighted) mean and variance over its observed entries.

        Blocks are combined exactly (Chan et al.'s pairwise update of the
        squared deviations), so the result does not depend on how the rows
        are blocked beyond rounding.

        Returns
        -------
        mean : ndarray of shape (n_features,)
            0 for a column with nothing observed.
        var : ndarray of shape (n_features,)
            The (weighted) mean squared deviation, ``ddof=0``; 0 for a column
            with nothing observed.
        """
        parts = self.map_blocks(_count_and_moments)
        if len(parts) == 1:
            return parts[0][1:]
        count, mean, m2 = 0.0, 0.0, 0.0
        for n_b, mean_b, var_b in parts:
            total = count + n_b
            safe = np.where(total > 0, total, 1.0)
            delta = mean_b - mean
            m2 = m2 + var_b * n_b + delta**2 * count * n_b / safe
            mean = mean + delta * n_b / safe
            count = total
        return mean, m2 / np.where(count > 0, count, 1.0)

    def mean_filled(self):
        """Return every row with its missing entries replaced by the column means.

        In the caller's row order, whatever the blocks and the sorting of rows
        by missingness, so that initialisation (which clusters these rows) does
        not depend on them: every engine (blocks, worker processes, an array
        API device) starts from the same draws on the same rows.

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
        weights : ndarray of shape (n_samples,) or None
            The rows' sample weights, in the same order; None when unweighted.
        """
        parts = self.map_blocks(functools.partial(_mean_filled, self.column_means()))
        if len(parts) == 1:
            return parts[0]
        filled = self._stack([X_filled for X_filled, _ in parts])
        if all(weights is None for _, weights in parts):
            return filled, None
        weights = [
            np.ones(len(X_filled)) if w is None else w for X_filled, w in parts
        ]
        return filled, self._stack(weights)


def _count_and_sum(block):
    return block.observed_counts(), block.observed_sums()


def _count_and_moments(block):
    return (block.observed_counts(), *block.column_moments())


def _mean_filled(means, block):
    """``block``'s mean-filled rows and weights, in its output order."""
    weights = block.weights
    return (
        block.in_row_order(block.filled_with(means)),
        None if weights is None else block.in_row_order(weights),
    )


def in_row_order(chunks, values):
    """Rows of ``values`` (in the stored, sorted order) put where ``chunks`` say.

    Parameters
    ----------
    chunks : list of Chunk
    values : ndarray of shape (n_samples, ...)

    Returns
    -------
    out : ndarray of shape (n_samples, ...)
        ``out[chunk.rows] = values[chunk.start:chunk.stop]`` for every chunk:
        the caller's order for a block prepared whole, the block's stored
        order for a block cut by :func:`split_blocks`.
    """
    out = np.empty_like(values)
    for chunk in chunks:
        out[chunk.rows] = values[chunk.start : chunk.stop]
    return out


@dataclass(frozen=True)
class MissingData(_Blocks):
    """One block of rows, prepared once per fit (or inference call) for the E-step.

    Rows are stored sorted by their number of missing entries so that every
    chunk is a contiguous slice; ``order`` maps sorted rows back.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        Sorted float64 data with missing entries set to 0.
    missing_mask : ndarray of shape (n_samples, n_features)
        Sorted; True where an entry is missing.
    order : ndarray of shape (n_samples,)
        ``X[j]`` is row ``order[j]`` of the caller's data (of this block).
    chunks : list of Chunk
        Every row in exactly one chunk.
    weights : ndarray of shape (n_samples,) or None
        Sorted sample weights; None when every row weighs 1.
    """

    X: np.ndarray
    missing_mask: np.ndarray
    order: np.ndarray
    chunks: list
    weights: np.ndarray | None = None

    @property
    def blocks(self):
        return (self,)

    def filled_with(self, means):
        """The rows with every missing entry replaced by ``means`` (a copy)."""
        return np.where(self.missing_mask, means, self.X)

    def in_row_order(self, values):
        """Stored rows of ``values`` in the block's output order (see
        :func:`in_row_order`)."""
        return in_row_order(self.chunks, values)

    def block(self, lo, hi):
        """Sorted rows ``lo:hi`` (at chunk bounds) as a block of their own: views,
        the same chunks, their results in the block's stored order."""
        chunks = [
            Chunk(
                c.start - lo,
                c.stop - lo,
                slice(c.start - lo, c.stop - lo),  # the block's stored order
                c.missing_cols,
                c.shared,
            )
            for c in self.chunks
            if lo <= c.start < hi
        ]
        return self._rows(lo, hi, chunks)

    def _rows(self, lo, hi, chunks):
        return MissingData(
            self.X[lo:hi],
            self.missing_mask[lo:hi],
            self.order[lo:hi],
            chunks,
            None if self.weights is None else self.weights[lo:hi],
        )

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def block_weight(self):
        """Sum of this block's sample weights (its number of rows when unweighted)."""
        return self.n_samples if self.weights is None else float(self.weights.sum())

    def chunk_weights(self, chunk):
        """Return the weights of ``chunk``'s rows, or None when unweighted."""
        return None if self.weights is None else self.weights[chunk.start : chunk.stop]

    def observed_counts(self):
        """Return each column's (weighted) number of observed entries."""
        if self.weights is None:
            return (~self.missing_mask).sum(axis=0)
        return self.weights @ ~self.missing_mask

    def observed_sums(self):
        """Return each column's (weighted) sum of observed entries."""
        return self.X.sum(axis=0) if self.weights is None else self.weights @ self.X

    def column_moments(self):
        """Each column's (weighted) mean and variance over its observed entries."""
        return column_moments(self.X, ~self.missing_mask, self.weights)


@dataclass(frozen=True)
class BlockedData(_Blocks):
    """Several blocks of rows, each a :class:`MissingData` of its own.

    The E-step's statistics are the sum of the blocks' (in block order).

    Attributes
    ----------
    blocks : tuple of MissingData
    row_index : tuple of ndarray or None, default=None
        Each block's rows in the caller's order (see :func:`split_blocks`);
        None when the caller's rows are the blocks' rows one after the other.
    """

    blocks: tuple
    row_index: tuple | None = None

    def mean_filled(self):
        """See :meth:`_Blocks.mean_filled`; filled into one array, block by block."""
        means = self.column_means()
        filled = np.empty((self.n_samples, self.n_features))
        weighted = any(block.weights is not None for block in self.blocks)
        weights = np.ones(self.n_samples) if weighted else None
        start = 0
        for i, block in enumerate(self.blocks):
            rows = (
                slice(start, start + block.n_samples)
                if self.row_index is None
                else self.row_index[i]
            )
            filled[rows] = block.in_row_order(block.filled_with(means))
            if block.weights is not None:
                weights[rows] = block.in_row_order(block.weights)
            start += block.n_samples
        return filled, weights

    @property
    def n_samples(self):
        return sum(block.n_samples for block in self.blocks)

    @property
    def n_features(self):
        return self.blocks[0].n_features


def column_moments(X0, observed, sample_weight=None):
    """Compute each column's mean and variance over its observed entries.

    Parameters
    ----------
    X0 : ndarray of shape (n_samples, n_features)
        Data with 0 at the missing entries.
    observed : ndarray of bool of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None, default=None
        Row weights of the moments.

    Returns
    -------
    mean : ndarray of shape (n_features,)
        0 for a column with nothing observed.
    var : ndarray of shape (n_features,)
        The (weighted) mean squared deviation, ``ddof=0``; 0 for a column with
        nothing observed.
    """
    if sample_weight is None:
        counts = np.maximum(observed.sum(axis=0), 1)
        mean = X0.sum(axis=0) / counts
        var = (np.where(observed, X0 - mean, 0.0) ** 2).sum(axis=0) / counts
    else:
        counts = sample_weight @ observed
        counts = np.where(counts > 0, counts, 1.0)
        mean = sample_weight @ X0 / counts
        var = sample_weight @ (np.where(observed, X0 - mean, 0.0) ** 2) / counts
    return mean, var


def _pattern_ids(missing_mask):
    """Label each row by its exact missingness pattern.

    Rows are bit-packed; up to 64 features the packed bytes are one exact
    ``uint64`` key (``np.unique`` on rows with ``axis=0`` is an order of
    magnitude slower at a million rows).

    Returns
    -------
    ids : ndarray of shape (n_samples,)
    counts : ndarray of shape (n_patterns,)
    """
    packed = np.packbits(missing_mask, axis=1)
    n_bytes = packed.shape[1]
    if n_bytes <= 8:
        padded = np.zeros((packed.shape[0], 8), dtype=np.uint8)
        padded[:, :n_bytes] = packed
        keys = padded.view(np.uint64).ravel()
    else:
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, n_bytes))).ravel()
    _, ids, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return ids.ravel(), counts


def prepare_missing_data(X, n_components, sample_weight=None, *, settings=None):
    """Sort the rows of ``X`` by missingness and cut them into chunks.

    Rows whose exact pattern of ``s`` missing entries is shared by enough rows
    (see :class:`ChunkSettings`) come first, one run per pattern (``shared``
    chunks); the other rows follow, grouped by their number of missing entries
    ``s``. Chunk sizes keep the working set bounded whatever ``n_samples``, so
    that it stays in cache and its memory is reused rather than freshly mapped.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data with NaN for missing entries.
    n_components : int
        Number of mixture components (sizes the chunks).
    sample_weight : ndarray of shape (n_samples,) or None, default=None
        Row weights, stored in the sorted order.
    settings : ChunkSettings or None, default=None
        Chunk budgets and pattern grouping; None for the defaults.

    Returns
    -------
    data : MissingData
    """
    settings = ChunkSettings() if settings is None else settings
    missing_mask = np.isnan(X)
    n_samples, n_features = X.shape
    counts = missing_mask.sum(axis=1)
    ids, pattern_counts = _pattern_ids(missing_mask)
    needed = np.maximum(
        settings.min_pattern_rows,
        settings.pattern_work // np.maximum(counts, 1) ** 3,
    )
    frequent = (pattern_counts[ids] >= needed) & (counts > 0)
    # Sort key: frequent patterns first (by pattern), then the rest by count.
    key = np.where(frequent, ids, len(pattern_counts) + counts)
    order = np.argsort(key, kind="stable")
    # np.take gathers rows 2-3x faster than fancy indexing; the result is new.
    missing_mask = np.take(missing_mask, order, axis=0)
    X_sorted = np.take(X, order, axis=0).astype(np.float64, copy=False)
    sorted_key = key[order]
    bounds = np.flatnonzero(np.diff(sorted_key)) + 1
    bounds = np.concatenate([[0], bounds, [n_samples]])
    row_budget = settings.row_elements // (n_components * n_features + 1)
    chunks = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        lo, hi = int(lo), int(hi)
        shared = bool(frequent[order[lo]])
        s = int(counts[order[lo]])
        # Flat positions of the run's missing entries, row by row (s per row):
        # zero them in X and read their columns (7x faster than 2-D np.nonzero).
        flat = np.flatnonzero(missing_mask[lo:hi])
        np.put(X_sorted[lo:hi], flat, 0.0)  # a contiguous view: written through
        # Stored in the smallest integer type (1 byte up to 256 columns: it
        # was a fifth of the prepared data at 20% missing); widened per chunk.
        cols = (flat % n_features).astype(np.min_scalar_type(n_features - 1))
        cols = cols.reshape(hi - lo, s)
        # Packed upper triangle of the swept (s + 1, s + 1) matrix.
        packed_size = 1 if shared else (s + 1) * (s + 2) // 2
        step = max(64, min(settings.block_elements // packed_size, row_budget))
        for start in range(lo, hi, step):
            stop = min(start + step, hi)
            rows, run_cols = order[start:stop], cols[start - lo : stop - lo]
            chunks.append(Chunk(start, stop, rows, run_cols, shared))
    weights = None if sample_weight is None else sample_weight[order]
    return MissingData(X_sorted, missing_mask, order, chunks, weights)


def split_blocks(data, block_rows):
    """Cut prepared rows into blocks of about ``block_rows`` rows, at chunk bounds.

    The blocks are views of ``data``'s arrays (no copy) and keep its chunks
    exactly, so their E-steps do the same work as ``data``'s; a block ends at
    the first chunk boundary at or after ``block_rows`` rows (the last block
    takes what is left, and is at least half a block). Inference results of a
    block are in its stored order; ``row_index`` puts them back in the caller's.

    Parameters
    ----------
    data : MissingData, or a family's prepared rows with ``chunks``, ``order``,
        ``n_samples`` and ``block(lo, hi)`` (``CopulaData``, ``ProductData``)
    block_rows : int

    Returns
    -------
    blocks : tuple of the same type as ``data``
    row_index : tuple of ndarray
        Block ``j``'s rows in the caller's order (``data.order`` sliced).
    """
    bounds, start = [], 0
    for chunk in data.chunks:
        if chunk.stop - start >= block_rows and data.n_samples - chunk.stop >= (
            block_rows // 2
        ):
            bounds.append((start, chunk.stop))
            start = chunk.stop
    bounds.append((start, data.n_samples))
    blocks = [data.block(lo, hi) for lo, hi in bounds]
    return tuple(blocks), tuple(data.order[lo:hi] for lo, hi in bounds)
