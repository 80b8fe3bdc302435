"""Missingness bookkeeping: group rows by their number of missing entries, in chunks."""

from dataclasses import dataclass

import numpy as np

# Working-set budget per chunk, in float64 elements (about 16 MB).
_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Chunk:
    """Rows that share the same number of missing entries.

    Attributes
    ----------
    rows : ndarray of shape (n_rows,)
        Indices of the rows in the data.
    missing_cols : ndarray of shape (n_rows, n_missing)
        Sorted indices of each row's missing columns.
    """

    rows: np.ndarray
    missing_cols: np.ndarray

    @property
    def n_missing(self):
        return self.missing_cols.shape[1]


@dataclass(frozen=True)
class MissingData:
    """Data prepared once per fit (or per inference call) for the E-step.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        float64 data with missing entries set to 0.
    missing_mask : ndarray of shape (n_samples, n_features)
        True where an entry is missing.
    chunks : list of Chunk
        Every row in exactly one chunk.
    """

    X: np.ndarray
    missing_mask: np.ndarray
    chunks: list

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]


def prepare_missing_data(X, n_components):
    """Split ``X`` into zero-filled values, a missing mask and row chunks.

    Rows are grouped by their number of missing entries ``s``; each group is cut
    into chunks whose working set (about ``n_components * rows * (s*s + 2d)``
    floats) stays near a fixed budget, so memory does not grow with n.

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
    X0 = np.where(missing_mask, 0.0, X).astype(np.float64, copy=False)
    n_samples, n_features = X.shape
    counts = missing_mask.sum(axis=1)
    order = np.argsort(counts, kind="stable")
    bounds = np.searchsorted(counts[order], np.arange(n_features + 2))
    chunks = []
    for s in range(n_features + 1):
        rows_s = order[bounds[s] : bounds[s + 1]]
        if rows_s.size == 0:
            continue
        cols = np.nonzero(missing_mask[rows_s])[1].reshape(rows_s.size, s)
        step = max(64, _CHUNK_ELEMENTS // (n_components * (s * s + 2 * n_features)))
        for start in range(0, rows_s.size, step):
            chunks.append(
                Chunk(rows=rows_s[start : start + step], missing_cols=cols[start : start + step])
            )
    return MissingData(X=X0, missing_mask=missing_mask, chunks=chunks)
