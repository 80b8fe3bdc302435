"""Missingness bookkeeping: rows sorted by their number of missing entries, in chunks."""

from dataclasses import dataclass

import numpy as np

# Working-set budgets, in float64 elements: the (s, s, rows) blocks of one chunk
# stay in cache (~2 MB), and the per-component (rows, d) arrays stay near 16 MB.
_BLOCK_ELEMENTS = 2**18
_ROW_ELEMENTS = 2**21


@dataclass(frozen=True)
class Chunk:
    """A contiguous run of sorted rows that share their number of missing entries.

    Attributes
    ----------
    start, stop : int
        The run's bounds in the sorted data (``MissingData.X[start:stop]``).
    rows : ndarray of shape (n_rows,)
        The same rows' indices in the caller's data.
    missing_cols : ndarray of shape (n_rows, n_missing)
        Sorted indices of each row's missing columns.
    """

    start: int
    stop: int
    rows: np.ndarray
    missing_cols: np.ndarray

    @property
    def n_missing(self):
        return self.missing_cols.shape[1]


@dataclass(frozen=True)
class MissingData:
    """Data prepared once per fit (or inference call) for the E-step.

    Rows are stored sorted by their number of missing entries so that every
    chunk is a contiguous slice; ``order`` maps sorted rows back.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        Sorted float64 data with missing entries set to 0.
    missing_mask : ndarray of shape (n_samples, n_features)
        Sorted; True where an entry is missing.
    order : ndarray of shape (n_samples,)
        ``X[j]`` is row ``order[j]`` of the caller's data.
    chunks : list of Chunk
        Every row in exactly one chunk.
    """

    X: np.ndarray
    missing_mask: np.ndarray
    order: np.ndarray
    chunks: list

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    def unsort(self, values):
        """Return ``values`` (one row per sorted row) in the caller's row order."""
        out = np.empty_like(values)
        out[self.order] = values
        return out


def prepare_missing_data(X, n_components):
    """Sort the rows of ``X`` by number of missing entries and cut them into chunks.

    Chunk sizes keep the working set bounded whatever ``n_samples``: about
    ``2**18`` elements of ``(s, s)`` blocks and ``2**21`` elements of
    per-component ``(rows, n_features)`` arrays.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data with NaN for missing entries.
    n_components : int
        Number of mixture components (sizes the chunks).

    Returns
    -------
    data : MissingData
    """
    missing_mask = np.isnan(X)
    n_samples, n_features = X.shape
    counts = missing_mask.sum(axis=1)
    order = np.argsort(counts, kind="stable")
    missing_mask = missing_mask[order]
    X_sorted = X[order].astype(np.float64)
    X_sorted[missing_mask] = 0.0
    bounds = np.searchsorted(counts[order], np.arange(n_features + 2))
    chunks = []
    for s in range(n_features + 1):
        lo, hi = int(bounds[s]), int(bounds[s + 1])
        if lo == hi:
            continue
        cols = np.nonzero(missing_mask[lo:hi])[1].reshape(hi - lo, s).astype(np.intp)
        step = max(
            64,
            min(
                _BLOCK_ELEMENTS // max(s * s, 1),
                _ROW_ELEMENTS // (n_components * n_features + 1),
            ),
        )
        for start in range(lo, hi, step):
            stop = min(start + step, hi)
            chunks.append(
                Chunk(start, stop, order[start:stop], cols[start - lo : stop - lo])
            )
    return MissingData(X=X_sorted, missing_mask=missing_mask, order=order, chunks=chunks)
