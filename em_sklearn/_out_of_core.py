"""Out-of-core input: fit and infer on a ``numpy.memmap`` read block by block.

``fit`` on a ``numpy.memmap`` (or on any 2-D array of another library that
slices by rows, e.g. an h5py dataset or a zarr array) of at least two blocks
(``2 * _block_rows`` rows, 2**17 by default) never holds more than one block
of its rows in memory. A :class:`RowBlocks` reads ``X[start:stop]`` for each
block of ``_block_rows`` consecutive rows, prepares it (sorts its rows by
missingness, cuts chunks: ``prepare_missing_data``) and applies the pass's
function to it, at every pass: every E-step rereads the file, and the fitting
code (``_BaseEM._fit_prepared``, the EM loop, the model) runs unchanged on it
(DESIGN §8). Peak memory is a few times one block (its rows as float64, the
prepared copy, the E-step's chunk temporaries), whatever the number of rows.

The in-memory fit adds its statistics over blocks of the same size (cut from
one sorted copy of all the rows), so both fits compute the same sums in
another grouping: from the same initial values they agree to rounding
(``tests/test_out_of_core.py``: 1e-10).

What differs from an in-memory fit:

* Validation: one first pass reads every block through ``check_X`` (infinity,
  dtype, number of features) and counts each column's observed entries (the
  clusterer refuses a column with none; the imputer drops it with a warning,
  as ``fit`` does). Only continuous columns are supported (no
  ``categorical_features``/``ordinal_features``, ``marginal='gaussian'``).
* Initialisation: with ``weights_init``, ``means_init`` and
  ``precisions_init`` all given the fit starts from them exactly as in
  memory; otherwise ``init_params`` runs on a sample of at most
  :attr:`RowBlocks.init_rows` rows (``_block_rows`` by default), one drawn
  at random in each of as many equal strata of rows (with
  ``random_state``), mean-filled with the column means of all the rows.
* The clusterer's ``labels_`` (one label per row) is not set by ``fit``;
  ``fit_predict`` returns the labels, computed block by block.
* ``n_jobs`` is not used: blocks are read and worked on one after the other.

``transform``, ``predict_proba``, ``predict`` and ``score_samples`` of such
an ``X`` run the estimator's method on one block at a time and fill the
result (an ndarray in memory) block by block; posterior draws
(``sample_posterior=True``) use one seed per block, drawn from
``random_state``.
"""

import copy
import sys
from dataclasses import dataclass

import numpy as np
from sklearn import get_config
from sklearn.impute import MissingIndicator
from sklearn.utils import check_random_state

from ._array_api import informative_rows, keep_rows, on_device
from ._missing_data import _Blocks
from ._validation import check_no_empty_columns

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def is_out_of_core(X, block_rows):
    """Whether ``X`` is read block by block: a memmap, or a row-sliceable array.

    Parameters
    ----------
    X : object
        What the user passed.
    block_rows : int
        Rows per block; ``X`` needs at least two blocks' worth (below that,
        loading it costs no more than the blocks would).

    Returns
    -------
    out_of_core : bool
        True for a 2-D ``numpy.memmap``, or an object of another library
        that has a NumPy ``dtype``, a 2-D ``shape`` and ``__getitem__``
        (h5py datasets, zarr arrays), of at least ``2 * block_rows`` rows.
        In-memory arrays, DataFrames, sparse matrices and dask collections
        are not.
    """
    if isinstance(X, np.ndarray):
        if not isinstance(X, np.memmap):
            return False
    elif on_device(X) or not _slices_by_rows(X):  # (CuPy arrays slice by rows)
        return False
    shape = getattr(X, "shape", ())
    return len(shape) == 2 and shape[0] >= 2 * block_rows


def _slices_by_rows(X):
    if not isinstance(getattr(X, "dtype", None), np.dtype):
        return False
    if not hasattr(X, "__getitem__") or hasattr(X, "columns"):
        return False  # DataFrames (pandas, polars) have their own path
    if hasattr(X, "__dask_graph__") or hasattr(X, "__cuda_array_interface__"):
        return False
    sparse = sys.modules.get("scipy.sparse")
    return sparse is None or not sparse.issparse(X)


# -- fitting -------------------------------------------------------------------


def fit(estimator, X, sample_weight=None):
    """Fit ``estimator`` to the out-of-core ``X``; return the estimator.

    The work of ``fit`` (and of ``_BaseEM._fit_model`` before
    ``_fit_prepared``) on rows read block by block; see the module docstring.
    ``sample_weight`` (an in-memory array, or None) is checked here.
    """
    from ._imputer import EMImputer  # (the estimators import this module)
    from ._validation import check_sample_weight

    if not get_config()["skip_parameter_validation"]:
        estimator._validate_params()  # (EMClusterer.fit has no _fit_context)
    imputer = isinstance(estimator, EMImputer)
    with estimator._unchanged_on_failure():
        sample_weight = check_sample_weight(sample_weight, X)
        scan = _scan(estimator, X, sample_weight)
        empty = scan.observed == 0
        if imputer:
            _imputer_columns(estimator, empty, scan)
        else:
            # The check's message, on a one-row stand-in for the columns.
            check_no_empty_columns(estimator, np.where(empty, np.nan, 0.0)[None])
            estimator._set_layout(np.ones(len(empty), dtype=bool))
        if getattr(estimator, "_layout", None) is not None:
            raise ValueError(
                f"{type(estimator).__name__} fits a numpy.memmap block by block "
                "with continuous columns only (marginal='gaussian'). Load it "
                "(np.asarray(X)) to fit it in memory."
            )
        fewest = getattr(estimator, "_min_components", None)  # n_components='auto'
        n_components = estimator.n_components if fewest is None else fewest()
        if scan.n_informative < n_components:
            weighted = "" if sample_weight is None else " and a positive sample_weight"
            raise ValueError(
                f"Expected at least n_components rows with an observed value{weighted} "
                f"but got n_components = {n_components}, rows with an observed "
                f"value{weighted} = {scan.n_informative}. Reduce n_components or "
                "provide more data."
            )
        data = RowBlocks.of(estimator, X, sample_weight, scan)
        values = estimator._user_values(data.n_features)
        if estimator.warm_start and hasattr(estimator, "converged_"):
            estimator._check_warm_start(data.n_features)
        estimator._fit_prepared(data, values, dtype=_float_dtype(X))
        vars(estimator).pop("labels_", None)  # one per row: not kept (see above)
    return estimator


@dataclass(frozen=True)
class _Scan:
    """What the validation pass learnt about ``X`` (all its columns).

    Attributes
    ----------
    n_samples : int
    observed : ndarray of shape (n_features_in_,)
        Each column's number of observed entries.
    bounds : tuple of (int, int)
        The blocks with at least one informative row (an observed entry and
        a positive weight).
    n_informative : int
        Number of informative rows.
    total_weight : float
        Their total weight (their number when unweighted).
    sample : ndarray of shape (n_sample, n_features_in_)
        The initialisation's sample of rows, validated (all NaN rows too).
    sample_index : ndarray of shape (n_sample,)
        Their rows in ``X``.
    """

    n_samples: int
    observed: np.ndarray
    bounds: tuple
    n_informative: int
    total_weight: float
    sample: np.ndarray
    sample_index: np.ndarray


def _block_bounds(n_samples, block_rows):
    """``(start, stop)`` of blocks of ``block_rows`` consecutive rows (and the rest)."""
    starts = range(0, n_samples, block_rows)
    return [(start, min(start + block_rows, n_samples)) for start in starts]


def _scan(estimator, X, sample_weight):
    """Validate every block of ``X`` (``reset`` on the first); count; draw the sample.

    Sets ``n_features_in_`` (and removes ``feature_names_in_``) as ``check_X``
    does in ``fit``.
    """
    n_samples = X.shape[0]
    block_rows = estimator._block_rows
    init_rows = RowBlocks.init_rows or block_rows
    sample_index = _stratified_sample(
        n_samples, min(init_rows, n_samples), check_random_state(estimator.random_state)
    )
    observed, bounds, samples = 0, [], []
    n_informative, total_weight = 0, 0.0
    for lo, hi in _block_bounds(n_samples, block_rows):
        block = _check_block(estimator, X[lo:hi], reset=lo == 0)
        missing = np.isnan(block)
        observed = observed + (~missing).sum(axis=0)
        informative = ~missing.all(axis=1)
        if sample_weight is not None:
            w = sample_weight[lo:hi]
            informative &= w > 0
            total_weight += float(w[informative].sum())
        count = int(informative.sum())
        n_informative += count
        if count:
            bounds.append((lo, hi))
        in_block = sample_index[(sample_index >= lo) & (sample_index < hi)]
        samples.append(block[in_block - lo])
    if sample_weight is None:
        total_weight = float(n_informative)
    return _Scan(
        n_samples,
        observed,
        tuple(bounds),
        n_informative,
        total_weight,
        np.concatenate(samples),
        sample_index,
    )


def _check_block(estimator, rows, *, reset):
    """``check_X`` of one block of rows (an ndarray: no other path is taken)."""
    rows = np.asarray(rows)
    if reset:
        check = getattr(estimator, "_check_X", None)
        if check is not None:
            block = check(rows, reset=True)
            if getattr(estimator, "_column_types", None) is not None:
                raise ValueError(
                    f"{type(estimator).__name__} fits a numpy.memmap block by "
                    "block with continuous columns only (no categorical_features "
                    "or ordinal_features). Load it (np.asarray(X)) to fit typed "
                    "columns."
                )
            return block
    from ._validation import check_X

    return check_X(estimator, rows, reset=reset)


def _stratified_sample(n_samples, size, random_state):
    """One row drawn at random in each of ``size`` equal strata, sorted.

    O(size) memory (drawing ``size`` rows without replacement from
    ``n_samples`` can need O(n_samples)), every row equally likely within
    its stratum, and the sample spread over the whole file.
    """
    edges = (np.arange(size + 1) * n_samples) // size  # (size + 1,)
    return edges[:-1] + (random_state.random_sample(size) * np.diff(edges)).astype(
        np.intp
    )


def _imputer_columns(estimator, empty, scan):
    """Drop (or keep) the imputer's empty features and fit its indicator, as ``fit``."""
    estimator._set_empty_features(empty, stacklevel=4)
    estimator._set_layout(~empty)
    estimator.indicator_ = None
    if estimator.add_indicator:
        # The indicator only records which columns had a missing value.
        has_missing = np.where(scan.observed < scan.n_samples, np.nan, 0.0)[None]
        estimator.indicator_ = MissingIndicator(error_on_new=False).fit(has_missing)


class RowBlocks(_Blocks):
    """Rows of an out-of-core array, read and prepared anew at every pass.

    Each block is ``X[start:stop]`` converted to float (as ``check_X`` does),
    restricted to the model's columns, without its rows that have nothing
    observed or a zero weight, standardised (after :meth:`standardized`) and
    prepared; ``map_blocks`` applies its function to it and drops it.

    Parameters
    ----------
    source : array that slices by rows
    bounds : tuple of (int, int)
        The blocks' rows in ``source``.
    columns : callable
        ``columns(X_block)``: the model's columns of a validated block (the
        estimator's ``_model_input``).
    prepare : callable
        ``prepare(X, sample_weight) -> MissingData`` (the model's).
    sample_weight : ndarray of shape (n_rows,) or None
    n_samples : int
        Informative rows (those the fit uses).
    n_features : int
        The model's columns.
    total_weight : float
    sample : ndarray of shape (n_sample, n_features_in_)
        Rows for the initialisation (:meth:`mean_filled`), validated.
    sample_weight_of_sample : ndarray of shape (n_sample,) or None
    transform : callable or None, default=None
        ``transform(X)`` of each block before it is prepared (the
        standardisation).
    """

    # Set at construction (the blocks are elsewhere), in place of
    # _Blocks.total_weight, which would add the blocks' weights.
    total_weight = None

    # Rows of the initialisation's sample; None: ``_block_rows``.
    init_rows = None

    def __init__(
        self,
        source,
        bounds,
        columns,
        prepare,
        sample_weight,
        n_samples,
        n_features,
        total_weight,
        sample,
        sample_weight_of_sample,
        transform=None,
    ):
        self.source = source
        self.bounds = bounds
        self.columns = columns
        self.prepare = prepare
        self.sample_weight = sample_weight
        self.n_samples = n_samples
        self.n_features = n_features
        self.total_weight = total_weight
        self.sample = sample
        self.sample_weight_of_sample = sample_weight_of_sample
        self.transform = transform

    @classmethod
    def of(cls, estimator, X, sample_weight, scan):
        """The rows of ``X`` that ``estimator`` fits, after :func:`_scan`."""
        columns = estimator._model_input
        return cls(
            source=X,
            bounds=scan.bounds,
            columns=columns,
            prepare=estimator._model().prepare,
            sample_weight=sample_weight,
            n_samples=scan.n_informative,
            n_features=columns(scan.sample[:0]).shape[1],
            total_weight=scan.total_weight,
            sample=scan.sample,
            sample_weight_of_sample=(
                None if sample_weight is None else sample_weight[scan.sample_index]
            ),
        )

    @property
    def blocks(self):
        raise AttributeError(
            "The blocks of RowBlocks are read from X at each pass: use map_blocks."
        )

    @property
    def n_blocks(self):
        return len(self.bounds)

    def standardized(self, standardization):
        """The same rows, standardised as they are read (see ``_standardize``)."""
        view = copy.copy(self)
        view.transform = standardization.standardize
        return view

    def _rows(self, X, sample_weight):
        """Model rows of validated ``X``: informative only, transformed."""
        X = self.columns(X)
        X, sample_weight = keep_rows(
            X, sample_weight, informative_rows(X, sample_weight)
        )
        if self.transform is not None:
            X = self.transform(X)
        return X, sample_weight

    def read(self, index):
        """Read, convert and prepare block ``index``; return a MissingData."""
        lo, hi = self.bounds[index]
        X = np.asarray(self.source[lo:hi])
        if X.dtype not in _FLOAT_DTYPES:
            X = X.astype(np.float64)  # as check_X converts
        w = None if self.sample_weight is None else self.sample_weight[lo:hi]
        X, w = self._rows(X, w)
        return self.prepare(np.ascontiguousarray(X), w)

    def map_blocks(self, fn, per_block=None):
        """Return ``[fn(block) for block in blocks]``, each block read anew.

        With ``per_block`` (one item per block), ``fn(block, item)``.
        """
        items = [None] * self.n_blocks if per_block is None else list(per_block)
        if len(items) != self.n_blocks:
            raise ValueError(
                f"Expected one item per block but got {len(items)} items for "
                f"{self.n_blocks} blocks."
            )
        results = []
        for index, item in enumerate(items):
            block = self.read(index)
            results.append(fn(block) if per_block is None else fn(block, item))
            del block  # one block at a time
        return results

    def map_rows(self, fn):
        raise AttributeError(
            "Rows read block by block are not kept: infer on X itself, block by "
            "block (transform, predict_proba and score_samples do)."
        )

    def mean_filled(self):
        """The initialisation's sample, mean-filled with all the rows' column means.

        Returns
        -------
        X_filled : ndarray of shape (n_sample_rows, n_features)
            The sample's informative rows, in the model's units.
        weights : ndarray of shape (n_sample_rows,) or None
        """
        means = self.column_means()  # a pass over every row
        X, weights = self._rows(self.sample, self.sample_weight_of_sample)
        X = np.array(X, dtype=np.float64)  # our own copy, filled in place
        np.copyto(X, means, where=np.isnan(X))
        return X, weights


# -- inference -----------------------------------------------------------------


def infer(estimator, method, X):
    """Run ``estimator.<method>`` on each block of ``X``; return the whole result.

    Parameters
    ----------
    estimator : fitted estimator
    method : str
        'transform', 'predict_proba' or 'score_samples': a method whose output
        has one row per input row.
    X : out-of-core array

    Returns
    -------
    result : ndarray of shape (n_samples, ...)
        Filled block by block (the only copy of the output in memory).
    """
    fitted = copy.copy(estimator)  # plain arrays from each block
    fitted._sklearn_output_config = {}
    bounds = _block_bounds(X.shape[0], estimator._block_rows)
    seeds = [None] * len(bounds)
    if getattr(estimator, "sample_posterior", False) and method == "transform":
        # One seed per block, drawn here: the blocks' draws are independent.
        seeds = check_random_state(estimator.random_state).randint(
            np.iinfo(np.int32).max, size=len(bounds)
        )
    out = None
    for (lo, hi), seed in zip(bounds, seeds, strict=True):
        part = fitted
        if seed is not None:
            part = copy.copy(fitted)
            part.random_state = int(seed)
        values = np.asarray(getattr(part, method)(np.asarray(X[lo:hi])))
        if out is None:
            out = np.empty((X.shape[0], *values.shape[1:]), dtype=values.dtype)
        out[lo:hi] = values
    return out


def _float_dtype(X):
    """The float dtype of fitted arrays and outputs for ``X`` (float32 stays)."""
    return np.float32 if np.dtype(X.dtype) == np.float32 else np.float64
