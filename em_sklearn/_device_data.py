"""Prepared rows on an array API device: what the E-step and inference see there.

The device counterpart of :class:`~em_sklearn._missing_data.MissingData`
(DESIGN §9), for inputs of another array library under scikit-learn's
``array_api_dispatch`` (torch, CuPy, ``array-api-strict``). Designed for a
GPU rather than copied from the CPU layout:

* **Grouped once per data set** (:func:`prepare_device_data`): rows are sorted
  by their number ``s`` of missing entries (one stable ``argsort``) and cut
  into at most ``n_features + 1`` groups; each keeps its zero-filled rows, its
  mask and each row's sorted missing columns ``(n_rows, s)``. The only host
  synchronisation is reading the ``n_features + 2`` group bounds (and the total
  weight). The CPU layout's finer grouping by missingness *pattern* pays for
  its per-chunk NumPy calls; on a device, one batched kernel per group does.
* **Chunks bound the memory**: a group is visited in chunks of rows whose
  largest temporaries (``n_components * n_features * (s + 1)`` elements per
  row) hold about ``block_elements`` elements.
* Every array stays in X's namespace and on its device; what goes to the host
  is the per-column moments (standardisation, initialisation) and, in the
  E-step, the statistics (``n_components * n_features**2`` numbers).

It implements the :class:`~em_sklearn._missing_data._Blocks` interface that
the mixture layer and the estimators use (one block: itself), plus
:meth:`DeviceData.in_row_order` (results back in the caller's row order) and
:meth:`DeviceData.from_host` (parameters to the device).
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._array_api import device as device_of
from ._array_api import from_numpy, namespace, to_numpy
from ._missing_data import _Blocks

# Elements of the largest temporaries of one chunk (see the module docstring):
# 2**24 float64 are 128 MiB, small on a GPU, and big enough to keep kernels long.
BLOCK_ELEMENTS = 2**24

SOLVERS = ("sweep", "cholesky")


def index_dtype(xp, device):
    """The namespace's default indexing dtype on ``device`` (int32 without int64)."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return xp.int64
    return info().default_dtypes(device=device)["indexing"]


@dataclass(frozen=True)
class Group:
    """The prepared rows that have ``n_missing`` missing entries.

    Attributes
    ----------
    n_missing : int
    X0 : array of shape (n_rows, n_features)
        Zero at the missing entries.
    missing : array of bool of shape (n_rows, n_features)
    missing_cols : array of shape (n_rows, n_missing) or None
        Each row's missing columns, sorted (indexing dtype); None when
        ``n_missing`` is 0 or ``n_features``.
    sample_weight : array of shape (n_rows,) or None
    """

    n_missing: int
    X0: object
    missing: object
    missing_cols: object
    sample_weight: object


@dataclass(frozen=True)
class DeviceChunk:
    """Rows ``start:stop`` of group ``group`` (see :class:`DeviceData`)."""

    group: int
    start: int
    stop: int
    n_missing: int


@dataclass(frozen=True, eq=False)
class DeviceData(_Blocks):
    """Rows on a device, grouped by number of missing entries, in chunks.

    Attributes
    ----------
    groups : tuple of Group
        In increasing number of missing entries; empty groups left out.
    chunks : tuple of DeviceChunk
        Every row in exactly one chunk, in group order.
    inverse : array of shape (n_samples,)
        Position of each caller's row in the concatenated groups.
    n_samples, n_features : int
    block_weight : float or int
        Sum of the sample weights (the number of rows when unweighted).
    solver : {'sweep', 'cholesky'}
        How the E-step inverts the missing blocks of the precisions, in one
        batch per chunk (``_gaussian._xp``): a batch-last Gauss-Jordan sweep
        in elementwise operations (core standard only), or ``linalg.cholesky``
        and ``linalg.inv``. Issue 14's torch prototype of the sweep ran about
        3x faster than batched Cholesky calls on an H200 (this code is not
        measured on a GPU yet).
    """

    groups: tuple
    chunks: tuple
    inverse: object
    n_samples: int
    n_features: int
    block_weight: float
    solver: str = "sweep"

    on_device = True

    @property
    def blocks(self):
        return (self,)

    # (asked for at every chunk: found once)
    @cached_property
    def xp(self):
        return namespace(self.groups[0].X0)

    @cached_property
    def device(self):
        return device_of(self.groups[0].X0)

    @property
    def dtype(self):
        return self.groups[0].X0.dtype

    @property
    def weights(self):
        """Sorted sample weights, or None when unweighted."""
        if self.groups[0].sample_weight is None:
            return None
        return self.xp.concat([group.sample_weight for group in self.groups])

    def rows_of(self, chunk):
        """``(X0, missing, missing_cols)`` of ``chunk``'s rows."""
        group = self.groups[chunk.group]
        lo, hi = chunk.start, chunk.stop
        cols = group.missing_cols
        return (
            group.X0[lo:hi, :],
            group.missing[lo:hi, :],
            None if cols is None else cols[lo:hi, :],
        )

    def chunk_weights(self, chunk):
        """The weights of ``chunk``'s rows, or None when unweighted."""
        weights = self.groups[chunk.group].sample_weight
        return None if weights is None else weights[chunk.start : chunk.stop]

    def from_host(self, a):
        """NumPy array ``a`` as an array of the data's namespace, device and dtype."""
        return from_numpy(a, self.xp, self.device, self.dtype)

    def in_row_order(self, parts):
        """Per-chunk results (rows first, in chunk order) in the caller's row order."""
        xp = self.xp
        return xp.take(xp.concat(parts, axis=0), self.inverse, axis=0)

    # -- column summaries (to the host) --------------------------------------

    def _column_sums(self, values):
        """``sum_i w_i values_i`` over every group, per column, on the host."""
        xp = self.xp
        total = 0.0
        for group, v in zip(self.groups, values, strict=True):
            w = group.sample_weight
            total = total + (xp.sum(v, axis=0) if w is None else xp.matmul(w, v))
        return to_numpy(total)

    def observed_counts(self):
        """Each column's (weighted) number of observed entries (NumPy)."""
        xp = self.xp
        return self._column_sums(
            [xp.astype(~group.missing, self.dtype) for group in self.groups]
        )

    def observed_sums(self):
        """Each column's (weighted) sum of observed entries (NumPy)."""
        return self._column_sums([group.X0 for group in self.groups])

    def column_moments(self):
        """Each column's (weighted) mean and variance over its observed entries.

        Two passes on the device (the mean, then the squared deviations about
        it), as :func:`~em_sklearn._missing_data.column_moments`; NumPy float64
        results.
        """
        xp = self.xp
        counts = self.observed_counts()
        counts = np.where(counts > 0, counts, 1.0)
        mean = self.observed_sums() / counts
        mean_dev = self.from_host(mean)
        squares = [
            xp.where(group.missing, 0.0, group.X0 - mean_dev) ** 2
            for group in self.groups
        ]
        return mean, self._column_sums(squares) / counts

    def filled_with(self, means):
        """The rows, sorted, with every missing entry replaced by ``means``."""
        xp = self.xp
        means = self.from_host(np.asarray(means, dtype=np.float64))
        return xp.concat(
            [xp.where(group.missing, means, group.X0) for group in self.groups]
        )

    def mean_filled(self):
        """Rows with missing entries set to the column means, in the caller's order.

        What initialisation clusters (on the device): the rows the NumPy path
        clusters, in the same order, so that both start from the same draws.

        Returns
        -------
        X_filled : array of shape (n_samples, n_features)
        weights : array of shape (n_samples,) or None
        """
        xp = self.xp
        filled = xp.take(self.filled_with(self.column_means()), self.inverse, axis=0)
        weights = self.weights
        if weights is not None:
            weights = xp.take(weights, self.inverse)
        return filled, weights

    def standardized(self, std):
        """The rows as ``(x - center) / scale`` (missing entries stay 0), a copy."""
        xp = self.xp
        center, scale = self.from_host(std.center), self.from_host(std.scale)
        groups = tuple(
            Group(
                g.n_missing,
                xp.where(g.missing, 0.0, (g.X0 - center) / scale),
                g.missing,
                g.missing_cols,
                g.sample_weight,
            )
            for g in self.groups
        )
        return DeviceData(
            groups,
            self.chunks,
            self.inverse,
            self.n_samples,
            self.n_features,
            self.block_weight,
            self.solver,
        )


def prepare_device_data(
    X,
    n_components,
    sample_weight=None,
    *,
    block_elements=BLOCK_ELEMENTS,
    solver="sweep",
):
    """Group the rows of ``X`` by their number of missing entries (NaN).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Real floating, NaN for missing entries. Its namespace, device and
        dtype are those of every array made here and from here.
    n_components : int
        Sizes the chunks (``block_elements``).
    sample_weight : array of shape (n_samples,) or None, default=None
        In any namespace (NumPy weights are moved to X's device).
    block_elements : int, default=BLOCK_ELEMENTS
        The chunks' working-set budget (see the module docstring).
    solver : {'sweep', 'cholesky'}, default='sweep'
        See :class:`DeviceData`.

    Returns
    -------
    data : DeviceData
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}. Got {solver!r} instead.")
    xp = namespace(X)
    if not xp.isdtype(X.dtype, "real floating"):
        raise TypeError(f"X must have a real floating dtype. Got {X.dtype} instead.")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array X but got shape {X.shape}.")
    device = device_of(X)
    n_samples, n_features = X.shape
    index = index_dtype(xp, device)
    missing = xp.isnan(X)
    counts = xp.sum(xp.astype(missing, index), axis=1, dtype=index)  # (n_samples,)
    order = xp.argsort(counts, stable=True)
    counts = xp.take(counts, order)
    bounds = xp.searchsorted(
        counts, xp.arange(n_features + 2, dtype=index, device=device)
    )
    # The one synchronisation with the host: n_features + 2 integers.
    bounds = [int(b) for b in to_numpy(bounds, dtype=None)]
    X_sorted = xp.take(X, order, axis=0)
    missing = xp.take(missing, order, axis=0)
    X0 = xp.where(missing, xp.zeros_like(X_sorted), X_sorted)
    block_weight = n_samples
    if sample_weight is not None:
        if isinstance(sample_weight, np.ndarray):
            sample_weight = from_numpy(sample_weight, xp, device, X.dtype)
        sample_weight = xp.take(xp.astype(sample_weight, X.dtype), order)
        block_weight = float(xp.sum(sample_weight))
    groups, chunks = [], []
    for n_missing in range(n_features + 1):
        lo, hi = bounds[n_missing], bounds[n_missing + 1]
        if hi == lo:
            continue
        group_missing = missing[lo:hi, :]
        missing_cols = None
        if 0 < n_missing < n_features:
            # A stable sort puts the missing columns (key 0) first, in order.
            key = xp.astype(xp.logical_not(group_missing), index)
            missing_cols = xp.argsort(key, axis=1, stable=True)[:, :n_missing]
        g = len(groups)
        groups.append(
            Group(
                n_missing,
                X0[lo:hi, :],
                group_missing,
                missing_cols,
                None if sample_weight is None else sample_weight[lo:hi],
            )
        )
        per_row = n_components * n_features * (n_missing + 1)
        rows = max(1, block_elements // per_row)
        chunks += [
            DeviceChunk(g, start, min(start + rows, hi - lo), n_missing)
            for start in range(0, hi - lo, rows)
        ]
    return DeviceData(
        groups=tuple(groups),
        chunks=tuple(chunks),
        inverse=xp.argsort(order),
        n_samples=n_samples,
        n_features=n_features,
        block_weight=block_weight,
        solver=solver,
    )
