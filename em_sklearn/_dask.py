"""Dask input: fit on prepared blocks kept by the workers; infer lazily, block by block.

``fit``, ``fit_predict`` and ``fit_transform`` of both estimators accept a
dask array or a dask DataFrame (the optional extra ``em_sklearn[dask]``).
Each chunk of rows is validated and prepared (sorted by missingness, cut into
chunks) once, by the worker that computes it, and kept there for the whole
fit: a :class:`DaskBlocks` holds the blocks as futures (with the distributed
scheduler) or as persisted values (the local schedulers). Every pass over the
data goes through :meth:`DaskBlocks.map_blocks`, so the EM loop and the
estimators' fitting code (``_BaseEM._fit_prepared``) run unchanged:

* each E-step sends one function holding the parameters to the workers
  (``O(k d^2)`` bytes each), runs it on every block where the block is (the
  tasks are pinned to the block's worker: a block never moves), and adds the
  per-block statistics (``O(k d^2)`` each) in a fixed tree: consecutive groups
  of :data:`FAN_IN` blocks, summed in block order, then groups of those sums.
  The order does not depend on the scheduling, so a fit is the same, to the
  last bit, on any cluster and any local scheduler; with up to ``FAN_IN``
  blocks it is exactly the in-process order (``BlockedData.map_reduce``);
* the M-step runs in this process;
* the imputer's standardisation changes the blocks in place, on their
  workers (the tasks are pinned there). A block that Dask would recompute
  after the loss of its worker would miss that change, so a fit whose blocks
  moved or were lost raises a RuntimeError instead (fit again).

Initialisation does not pull the data to the client: with ``weights_init``,
``means_init`` and ``precisions_init`` all given, the fit starts from them
exactly as in memory; otherwise
``init_params`` runs on a sample of at most :attr:`DaskBlocks.init_rows` rows
(mean-filled), drawn from every block in proportion to its size with fixed
per-block seeds. On data larger than that the default start therefore differs
from the in-memory fit's (which clusters every row).

``transform``, ``predict``, ``predict_proba`` and ``score_samples`` of a
dask collection return a lazy dask array, one output chunk per input chunk of
rows, computed by the fitted estimator on that chunk. ``fit_transform`` and
``fit_predict`` fit, then return that lazy result (computing it reads ``X``
again). With ``sample_posterior=True`` each chunk draws from its own seed,
drawn from ``random_state`` (reproducible with an int, but not the draws of
an in-memory ``transform``). ``n_jobs`` is ignored: the workers are the
parallelism.

Worker environment: Dask starts its worker processes with
``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``),
which made the E-step 1.5-2.3x slower in a worker than in this process
(every temporary array mapped and faulted in afresh): while em_sklearn's
tasks run in a worker, :func:`kernel_malloc` sets glibc's thresholds to its
own defaults' ceilings, and puts Dask's back after them.

Not supported with Dask input (each refused with a ValueError saying so):
``sample_weight``; nominal or ordinal columns and ``marginal='copula'``
(their levels and marginals would need every row first); a
``set_output`` container (the output is lazy); dask's multiprocessing
scheduler (it would move every block at every pass).
"""

import copy
import ctypes
import functools
import operator
import os
import platform
import sys
import threading
import uuid
from contextlib import contextmanager
from functools import partial

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._missing_data import _Blocks
from ._threads import single_blas_thread
from ._validation import check_no_empty_columns, check_X

# Statistics of consecutive groups of FAN_IN blocks are added in block order,
# then the group sums the same way, and so on up the tree.
FAN_IN = 8


def is_dask_collection(X):
    """Whether ``X`` is a dask collection (without importing dask)."""
    dask = sys.modules.get("dask")  # a dask collection implies dask is imported
    return dask is not None and dask.is_dask_collection(X)


# -- public entry points (called by the estimators' methods) ------------------


def fit(estimator, X, sample_weight=None):
    """Fit ``estimator`` to the dask collection ``X``; return the estimator."""
    _refuse_sample_weight(sample_weight)
    with estimator._unchanged_on_failure():
        parts, _, dtype = _row_parts(estimator, X, reset=True)
        _fit_parts(estimator, parts, dtype)
    return estimator


def fit_predict(estimator, X, sample_weight=None):
    """Fit the clusterer to ``X``; return (and keep in ``labels_``) lazy labels."""
    fit(estimator, X, sample_weight)
    estimator.labels_ = predict(estimator, X)
    return estimator.labels_


def fit_transform(estimator, X, sample_weight=None):
    """Fit the imputer to ``X``; return ``X`` imputed, lazily."""
    _refuse_output_container(estimator)
    fit(estimator, X, sample_weight)
    return transform(estimator, X)


def transform(estimator, X):
    """Lazy ``estimator.transform`` of the dask collection ``X``, chunk by chunk."""
    check_is_fitted(estimator)
    _refuse_output_container(estimator)
    n_out = len(estimator.get_feature_names_out())
    return _lazy_inference(estimator, X, "transform", (n_out,))


def predict_proba(estimator, X):
    """Lazy ``predict_proba`` of ``X``: (n_samples, n_components) dask array."""
    check_is_fitted(estimator)
    n_components = getattr(estimator, "n_components_", estimator.n_components)
    return _lazy_inference(estimator, X, "predict_proba", (n_components,))


def predict(estimator, X):
    """Lazy ``predict`` of ``X``: (n_samples,) dask array of labels."""
    return predict_proba(estimator, X).argmax(axis=1)


def score_samples(estimator, X):
    """Lazy ``score_samples`` of ``X``: (n_samples,) dask array."""
    check_is_fitted(estimator)
    return _lazy_inference(estimator, X, "score_samples", ())


# -- validation ----------------------------------------------------------------


def _refuse_sample_weight(sample_weight):
    if sample_weight is not None:
        raise ValueError(
            "sample_weight is not supported with a dask X. Fit on a NumPy or "
            "pandas X to weight rows, or pass sample_weight=None."
        )


def _row_parts(estimator, X, *, reset):
    """Check ``X``'s columns on its metadata and return its chunks of rows.

    The checks of :func:`~em_sklearn._validation.check_X` run at once on a
    stand-in with ``X``'s columns and dtypes (number of columns, feature
    names, numeric dtypes; ``reset=True`` records ``n_features_in_`` and
    ``feature_names_in_``); the values of each chunk are checked (infinity,
    non-numeric objects) when the chunk is computed.

    Returns
    -------
    parts : list of Delayed
        One per chunk of rows: an ndarray (all columns in one chunk) or a
        pandas DataFrame.
    lengths : list of float
        Rows per chunk (NaN where unknown, as for a DataFrame's partitions).
    dtype : numpy dtype
        float32 or float64: the dtype ``check_X`` converts ``X`` to.
    """
    import dask.array as da
    import dask.dataframe as dd

    name = type(estimator).__name__
    if isinstance(X, da.Array):
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2-dimensional dask array but got {X.ndim} "
                f"dimension(s), shape {X.shape}. Reshape X to (n_samples, "
                "n_features)."
            )
        if np.isnan(X.shape[1]):
            raise ValueError(
                f"{name} needs X's number of columns, which this dask array does "
                "not know. Call X.compute_chunk_sizes() first."
            )
        stand_in = np.zeros((1, X.shape[1]), dtype=X.dtype)
        X = X.rechunk({1: -1})  # every column of a row in one block
        # optimize_graph=False: dask < 2025.x handed the keys of a persisted
        # array (not its chunks) to tasks built on its optimised Delayed.
        parts = list(X.to_delayed(optimize_graph=False).ravel())
        lengths = [float(n) for n in X.chunks[0]]
    elif isinstance(X, dd.DataFrame):
        stand_in = X._meta_nonempty  # a pandas DataFrame with X's columns
        parts = list(X.to_delayed())
        lengths = [np.nan] * len(parts)
    else:
        raise TypeError(
            f"{name} accepts a dask array or a dask DataFrame; got "
            f"{type(X).__name__}. Convert it (for instance with to_dask_array() "
            "or to_frame()) or compute it."
        )
    dtype = _check_stand_in(estimator, stand_in, reset=reset)
    return parts, lengths, dtype


def _check_stand_in(estimator, stand_in, *, reset):
    """Run the estimator's checks of ``X`` on a stand-in with its columns.

    Only numeric (continuous) columns are accepted: a nominal or ordinal
    column's levels, or a copula's marginals, would have to be read from
    every row first.

    Returns
    -------
    dtype : numpy dtype
        float32 or float64: what ``check_X`` makes of ``X``.
    """
    dtype = check_X(estimator, stand_in, reset=reset).dtype  # numbers only
    check = getattr(estimator, "_check_X", None)  # records the column types
    if check is not None:
        check(stand_in, reset=reset)
    types = getattr(estimator, "_column_types", None)
    typed = types is not None and getattr(types, "typed", True)
    if typed or getattr(estimator, "marginal", "gaussian") == "copula":
        raise ValueError(
            f"{type(estimator).__name__} fits a dask X with continuous columns "
            "only (no categorical_features or ordinal_features, "
            "marginal='gaussian'). Fit on a NumPy or pandas X, or encode those "
            "columns as numbers."
        )
    return dtype


def _chunk_template(estimator):
    """An unfitted copy of ``estimator`` that checks chunks like it.

    It carries only what ``check_X(..., reset=False)`` reads (the number and
    names of the features), so that each chunk's task stays small.
    """
    from sklearn.base import clone

    template = clone(estimator).set_params(n_jobs=None)
    template.n_features_in_ = estimator.n_features_in_
    if hasattr(estimator, "feature_names_in_"):
        template.feature_names_in_ = estimator.feature_names_in_
    return template


def _for_chunks(estimator):
    """A shallow copy of the fitted ``estimator`` to run on each chunk.

    One process per chunk (``n_jobs=None``), plain arrays out (no
    ``set_output`` container), and without lazy results of earlier calls
    (``labels_`` of a Dask ``fit_predict``), which would travel with it.
    """
    fitted = copy.copy(estimator)
    for name, value in list(vars(fitted).items()):
        if is_dask_collection(value):
            delattr(fitted, name)
    fitted.n_jobs = None
    fitted._sklearn_output_config = {}
    return fitted


def _refuse_output_container(estimator):
    """Refuse ``set_output(transform='pandas'/'polars')``: the result is lazy."""
    from sklearn import get_config

    config = getattr(estimator, "_sklearn_output_config", {}).get(
        "transform", get_config()["transform_output"]
    )
    if config != "default":
        raise ValueError(
            f"set_output(transform={config!r}) is not supported with a dask X: "
            "the output is a lazy dask array. Call set_output(transform='default') "
            "(or convert the computed result)."
        )


# -- fitting -------------------------------------------------------------------


def _fit_parts(estimator, parts, dtype):
    """Prepare the chunks on the workers and fit; see ``_BaseEM._fit_model``."""
    from ._imputer import EMImputer

    imputer = isinstance(estimator, EMImputer)
    estimator._set_layout(np.ones(estimator.n_features_in_, dtype=bool))
    model = estimator._model()
    data, n_rows = DaskBlocks.prepare(
        partial(_prepare_chunk, _chunk_template(estimator), model),
        parts,
        estimator.n_features_in_,
    )
    try:
        observed = data.observed_counts()  # (n_features_in_,)
        empty = observed == 0
        if imputer:
            estimator._set_empty_features(empty, stacklevel=5)
        else:
            check_no_empty_columns(estimator, np.where(empty, np.nan, 0.0)[None])
        fewest = getattr(estimator, "_min_components", None)  # n_components='auto'
        n_components = estimator.n_components if fewest is None else fewest()
        if data.n_samples < n_components:
            raise ValueError(
                "Expected at least n_components rows with an observed value but "
                f"got n_components = {n_components}, rows with an observed "
                f"value = {data.n_samples}. Reduce n_components or provide more "
                "data."
            )
        if imputer and empty.any():
            estimator._set_layout(~empty)
            data = data.derive(partial(_select_columns, model, ~empty))
        values = estimator._user_values(data.n_features)
        if estimator.warm_start and hasattr(estimator, "converged_"):
            estimator._check_warm_start(data.n_features)
        data = estimator._fit_prepared(data, values, dtype=dtype)
    finally:
        data.close()
    if imputer:
        _imputer_indicator(estimator, observed, n_rows)


def _prepare_chunk(template, model, part):
    """Validate one chunk of rows and prepare its rows with an observed value."""
    X = check_X(template, part, reset=False)
    informative = ~np.isnan(X).all(axis=1)
    if not informative.any():
        return None  # no block: nothing observed
    X = np.ascontiguousarray(X if informative.all() else X[informative])
    with kernel_malloc():
        return model.prepare(X)


def _select_columns(model, keep, block):
    """Prepare again one block's rows on the columns ``keep`` (no other data).

    The block's rows are put back in their original order with NaN at the
    missing entries: the result is what preparing those columns of the chunk
    would have given (dropped columns have no observed entry, so every row
    keeps one).
    """
    X = np.empty_like(block.X)
    X[block.order] = np.where(block.missing_mask, np.nan, block.X)
    return model.prepare(np.ascontiguousarray(X[:, keep]))


def _imputer_indicator(estimator, observed, n_rows):
    """Fit the imputer's ``indicator_`` on which columns had a missing entry."""
    from sklearn.impute import MissingIndicator

    estimator.indicator_ = None
    if estimator.add_indicator:
        # The indicator only records which columns had a missing value.
        has_missing = np.where(observed < n_rows, np.nan, 0.0)[None]
        estimator.indicator_ = MissingIndicator(error_on_new=False).fit(has_missing)


# -- inference -----------------------------------------------------------------


def _lazy_inference(estimator, X, method, tail):
    """Apply ``estimator.<method>`` to each chunk of rows of ``X``, lazily.

    Returns
    -------
    result : dask array of shape (n_samples, *tail)
        One chunk per chunk of rows of ``X`` (of unknown length for a
        DataFrame's partitions).
    """
    import dask
    import dask.array as da

    # X's float dtype, as the in-memory methods give (float32 stays float32).
    parts, lengths, dtype = _row_parts(estimator, X, reset=False)
    fitted = _for_chunks(estimator)
    seeds = [None] * len(parts)
    if getattr(estimator, "sample_posterior", False):
        # One seed per chunk, drawn here: the chunks' draws are independent.
        seeds = check_random_state(estimator.random_state).randint(
            np.iinfo(np.int32).max, size=len(parts)
        )
    # One key holds the fitted estimator; every chunk's task depends on it (with
    # distributed, it goes to each worker once).
    fitted = dask.delayed(fitted, pure=False)
    apply = dask.delayed(_apply_method, pure=False)
    blocks = [
        da.from_delayed(
            apply(fitted, method, part, seed),
            shape=(n, *tail),
            dtype=dtype,
            meta=np.empty((0,) * (1 + len(tail)), dtype=dtype),
        )
        for part, n, seed in zip(parts, lengths, seeds, strict=True)
    ]
    return da.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]


def _apply_method(estimator, method, part, seed=None):
    """Run ``estimator.<method>(part)`` (with its own seed for posterior draws)."""
    if seed is not None:
        estimator = copy.copy(estimator)
        estimator.random_state = int(seed)
    with kernel_malloc():
        return getattr(estimator, method)(part)


# -- blocks kept by Dask -------------------------------------------------------


class DaskBlocks(_Blocks):
    """Prepared blocks of rows kept by Dask workers (or by a local scheduler).

    Build with :meth:`prepare`. Every access goes through :meth:`map_blocks`
    (tasks pinned to the worker holding each block) and :meth:`map_reduce`
    (statistics added in a fixed tree); see the module docstring.

    Attributes
    ----------
    init_rows : int
        Most rows that :meth:`mean_filled` (initialisation) brings to this
        process.
    """

    init_rows = 2**16

    def __init__(self, backend, blocks, sizes, weights, n_features):
        self._backend = backend
        self._blocks = list(blocks)
        self._sizes = list(sizes)  # rows of each block
        self._weights = list(weights)  # total weight of each block
        self._n_features = n_features

    @classmethod
    def prepare(cls, prepare_part, parts, n_features):
        """Prepare every chunk of rows on the workers and keep the blocks there.

        Parameters
        ----------
        prepare_part : callable
            ``prepare_part(part) -> MissingData``.
        parts : list of Delayed
            Chunks of rows.
        n_features : int
            Columns of every block.

        Returns
        -------
        data : DaskBlocks
            The non-empty blocks (a chunk whose rows have no observed value
            gives none).
        n_rows : int
            Rows of all the chunks, empty rows included.
        """
        import dask

        backend = _backend()
        token = uuid.uuid4().hex[:12]
        blocks = [
            dask.delayed(prepare_part, pure=False)(
                part, dask_key_name=f"em-block-{token}-{j}"
            )
            for j, part in enumerate(parts)
        ]
        lengths = [dask.delayed(len, pure=False)(part) for part in parts]
        blocks, n_rows = backend.persist(blocks, lengths)
        every = cls(backend, blocks, [0] * len(blocks), [0] * len(blocks), n_features)
        sizes = every.map_blocks(_block_summary)
        keep = [j for j, (n, _) in enumerate(sizes) if n > 0]
        data = cls(
            backend,
            [blocks[j] for j in keep],
            [sizes[j][0] for j in keep],
            [sizes[j][1] for j in keep],
            n_features,
        )
        every._blocks = [blocks[j] for j in range(len(blocks)) if j not in set(keep)]
        every.close()  # the empty blocks
        return data, int(sum(n_rows))

    @property
    def blocks(self):
        raise AttributeError(
            "The blocks of DaskBlocks live on Dask workers: use map_blocks."
        )

    @property
    def n_blocks(self):
        return len(self._blocks)

    @property
    def n_samples(self):
        return int(sum(self._sizes))

    @property
    def n_features(self):
        return self._n_features

    @property
    def total_weight(self):
        return sum(self._weights)

    def map_blocks(self, fn, per_block=None):
        """Return ``[fn(block) for block in blocks]``, computed where the blocks are.

        With ``per_block`` (one item per block), ``fn(block, item)``.
        """
        return self._backend.gather(self._backend.map(fn, self._blocks, per_block))

    def map_reduce(self, fn):
        """Return the sum of ``fn(block)`` over the blocks, added in a fixed tree.

        Consecutive groups of :data:`FAN_IN` results are added in block order
        on the workers, then the group sums alike, up to one; with up to
        ``FAN_IN`` blocks this is ``BlockedData.map_reduce``'s order.
        """
        backend = self._backend
        parts = backend.map(fn, self._blocks)
        while len(parts) > 1:
            parts = [
                backend.submit(_sum_in_order, *parts[i : i + FAN_IN])
                for i in range(0, len(parts), FAN_IN)
            ]
        return backend.gather(parts)[0]

    def derive(self, fn):
        """Return the blocks ``fn(block)``, computed and kept where the blocks are.

        ``fn`` keeps a block's rows (it may change its columns). The blocks of
        ``self`` are released.
        """
        blocks = self._backend.derive(fn, self._blocks)
        sizes, weights = self._sizes, self._weights
        self.close()
        derived = self.__class__(self._backend, blocks, sizes, weights, 0)
        derived._n_features = derived.map_blocks(_block_features)[0]
        return derived

    def observed_counts(self):
        """Each column's (weighted) number of observed entries over all blocks."""
        if not self._blocks:
            return np.zeros(self.n_features)
        return super().observed_counts()

    def mean_filled(self):
        """Mean-filled rows of a sample of at most :attr:`init_rows` rows.

        Every block gives rows in proportion to its size (all of them when the
        data have at most ``init_rows`` rows), chosen with a fixed seed per
        block; column means are those of all the rows. What initialisation
        clusters instead of every row.

        Returns
        -------
        X_filled : ndarray of shape (n_sample, n_features)
        weights : ndarray of shape (n_sample,) or None
        """
        n_samples = self.n_samples
        if n_samples <= self.init_rows:
            counts = self._sizes
        else:
            # init_rows in all, shared in proportion to the blocks' sizes
            # (largest remainders).
            quotas = np.array(self._sizes) * (self.init_rows / n_samples)
            counts = np.floor(quotas).astype(int)
            extra = self.init_rows - counts.sum()
            counts[np.argsort(counts - quotas, kind="stable")[:extra]] += 1
            counts = counts.tolist()
        parts = self.map_blocks(
            partial(_sample_filled, self.column_means()),
            [(count, j) for j, count in enumerate(counts)],
        )
        filled = np.concatenate([X for X, _ in parts])
        if all(w is None for _, w in parts):
            return filled, None
        weights = [np.ones(len(X)) if w is None else w for X, w in parts]
        return filled, np.concatenate(weights)

    def close(self):
        """Release the blocks (also done when the object is garbage-collected)."""
        self._backend.release(self._blocks)
        self._blocks = []


def _block_summary(block):
    if block is None:
        return 0, 0.0
    return block.n_samples, block.block_weight


def _block_features(block):
    return block.n_features


def _sum_in_order(*parts):
    return functools.reduce(operator.add, parts)


def _sample_filled(means, block, item):
    """``count`` rows of ``block`` (all when it has no more), mean-filled."""
    count, seed = item
    X, missing, weights = block.X, block.missing_mask, block.weights
    if count < block.n_samples:
        rows = np.sort(
            np.random.RandomState(seed).choice(block.n_samples, count, replace=False)
        )
        X, missing = X[rows], missing[rows]
        weights = None if weights is None else weights[rows]
    return np.where(missing, means, X), weights


def _identity(value):
    return value


def _call(fn, block, *item):
    """Run ``fn`` on a block where the block is: one BLAS thread, malloc tuned."""
    with kernel_malloc(), single_blas_thread():
        return fn(block, *item)


# -- schedulers ----------------------------------------------------------------


def _backend():
    """The distributed client's backend if dask would use one, else the local one."""
    from dask.base import get_scheduler, named_schedulers

    scheduler = get_scheduler()
    client = getattr(scheduler, "__self__", None)
    if client is not None and type(client).__name__ == "Client":
        return _DistributedBackend(client)
    if scheduler is not None and scheduler is named_schedulers.get("processes"):
        raise ValueError(
            "em_sklearn fits a dask X with the threaded or synchronous scheduler, "
            "or on a distributed cluster; the multiprocessing scheduler would "
            "send every block to a new process at each iteration. Use "
            "dask.config.set(scheduler='threads') or a distributed.Client."
        )
    return _LocalBackend(scheduler)


class _DistributedBackend:
    """Blocks as futures on ``distributed`` workers; tasks pinned to them."""

    def __init__(self, client):
        self.client = client
        self._holders = {}  # block key -> the worker it was computed on

    def persist(self, blocks, others):
        """Compute ``blocks`` and ``others`` (Delayed) in one graph.

        Returns the blocks' futures (kept on the workers) and the values of
        ``others`` (small, gathered here).
        """
        futures = self.client.compute(list(blocks) + list(others))
        block_futures = self._settle(futures[: len(blocks)])
        return block_futures, self.client.gather(futures[len(blocks) :])

    def _settle(self, futures):
        """Wait for block futures, raise their errors, record where they are."""
        for future in futures:
            error = future.exception()  # waits; None, or the task's exception
            if error is not None:
                raise error
        who_has = self.client.who_has(futures)
        for future in futures:
            self._holders[future.key] = frozenset(who_has.get(future.key, ()))
        return futures

    def map(self, fn, blocks, per_block=None):
        """Submit ``_call(fn, block[, item])`` on each block's worker; futures."""
        client = self.client
        token = uuid.uuid4().hex[:12]
        who_has = client.who_has(blocks)
        for block in blocks:
            if frozenset(who_has.get(block.key, ())) != self._holders[block.key]:
                raise RuntimeError(
                    "A Dask worker holding prepared rows of this fit was lost (or "
                    "its rows moved) during the fit: the rows it held would not "
                    "be as the fit left them. Fit again."
                )
        # The parameters leave this process once, as a task's result that the
        # block tasks depend on (fetched once by each other worker); a
        # scatter would cost a round trip.
        fn = client.submit(_identity, fn, key=f"em-params-{token}")
        items = [()] * len(blocks) if per_block is None else [(i,) for i in per_block]
        return [
            client.submit(
                _call,
                fn,
                block,
                *item,
                key=f"em-map-{token}-{j}",
                workers=sorted(self._holders[block.key]) or None,
                allow_other_workers=False,
            )
            for j, (block, item) in enumerate(zip(blocks, items, strict=True))
        ]

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, key=f"em-sum-{uuid.uuid4().hex[:16]}")

    def derive(self, fn, blocks):
        """Futures of ``fn(block)``, computed and kept on each block's worker."""
        return self._settle(self.map(fn, blocks))

    def gather(self, futures):
        return self.client.gather(futures)

    def release(self, futures):
        for future in futures:
            self._holders.pop(future.key, None)
            future.release()


class _LocalBackend:
    """Blocks persisted in this process; tasks run by a local dask scheduler.

    (The multiprocessing scheduler would move the blocks at every pass: use
    the threaded one, or ``distributed``.)
    """

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def persist(self, blocks, others):
        import dask

        persisted = dask.persist(*blocks, *others, scheduler=self.scheduler)
        blocks, others = persisted[: len(blocks)], persisted[len(blocks) :]
        return list(blocks), list(dask.compute(*others, scheduler="sync"))

    def map(self, fn, blocks, per_block=None):
        import dask

        items = [()] * len(blocks) if per_block is None else [(i,) for i in per_block]
        call = dask.delayed(_call, pure=False)
        pairs = zip(blocks, items, strict=True)
        return [call(fn, block, *item) for block, item in pairs]

    def submit(self, fn, *args):
        import dask

        return dask.delayed(fn, pure=False)(*args)

    def derive(self, fn, blocks):
        import dask

        return list(dask.persist(*self.map(fn, blocks), scheduler=self.scheduler))

    def gather(self, tasks):
        import dask

        return list(dask.compute(*tasks, scheduler=self.scheduler))

    def release(self, tasks):
        pass


# -- worker environment ----------------------------------------------------------

# glibc's mallopt parameters (malloc.h) and its default mmap threshold.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DEFAULT_MMAP_THRESHOLD = 128 * 2**10
# While the kernels run: glibc's own ceilings for its dynamic thresholds on
# 64-bit systems (mmap threshold up to 32 MiB, trim threshold twice that).
_KERNEL_MMAP_THRESHOLD = 32 * 2**20
_KERNEL_TRIM_THRESHOLD = 64 * 2**20
_MALLOC_LOCK = threading.Lock()
_MALLOC = {"depth": 0, "libc": None, "checked": False}


def _worker_libc():
    """glibc, in a Dask worker started with ``MALLOC_TRIM_THRESHOLD_``; else None."""
    if _MALLOC["checked"]:
        return _MALLOC["libc"]
    _MALLOC["checked"] = True
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or platform.libc_ver()[0] != "glibc":
        return None
    try:
        from distributed import get_worker

        get_worker()  # a ValueError outside a worker (the variable set for others)
        _MALLOC["libc"] = ctypes.CDLL(None)  # the process's own C library
        _MALLOC["libc"].mallopt  # noqa: B018  (an AttributeError if absent)
    except (ImportError, ValueError, OSError, AttributeError):
        _MALLOC["libc"] = None
    return _MALLOC["libc"]


@contextmanager
def kernel_malloc():
    """Let the kernels reuse freed memory while they run in a Dask worker.

    Dask starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536`` so that
    freed memory goes back to the system. Setting that variable also fixes
    glibc's mmap threshold at 128 KiB (it otherwise grows with the blocks
    freed, up to 32 MiB): every temporary array of the E-step above 128 KiB is
    then mapped afresh, its pages faulted in and zeroed, and unmapped, and the
    top of the heap is given back as soon as it is freed. Measured
    (``benchmarks/dask_bench.py``, one E-step of 200,000 rows, d=20, k=5, 20%
    missing): about 210,000 page faults instead of none, 1.5-2.3x the time.

    While at least one em_sklearn task runs in the worker, this sets the mmap
    and trim thresholds to glibc's own dynamic ceilings (32 and 64 MiB); the
    last task to finish puts back the thresholds the variables gave. Only in
    a Dask worker process started with the variable, on glibc; elsewhere it
    does nothing.
    """
    libc = _worker_libc()
    if libc is None:
        yield
        return
    with _MALLOC_LOCK:
        if _MALLOC["depth"] == 0:
            libc.mallopt(_M_MMAP_THRESHOLD, _KERNEL_MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _KERNEL_TRIM_THRESHOLD)
        _MALLOC["depth"] += 1
    try:
        yield
    finally:
        with _MALLOC_LOCK:
            _MALLOC["depth"] -= 1
            if _MALLOC["depth"] == 0:
                trim = int(os.environ["MALLOC_TRIM_THRESHOLD_"])
                mmap = int(
                    os.environ.get("MALLOC_MMAP_THRESHOLD_", _DEFAULT_MMAP_THRESHOLD)
                )
                libc.mallopt(_M_TRIM_THRESHOLD, trim)
                libc.mallopt(_M_MMAP_THRESHOLD, mmap)
