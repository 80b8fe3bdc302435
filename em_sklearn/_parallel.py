"""Blocks of rows worked on by several processes: ``n_jobs``.

The rows are prepared in this process, then cut into blocks of about
:data:`BLOCK_ROWS` rows at chunk bounds (whatever ``n_jobs``) and handed to
worker processes started by ``fork``: each worker inherits its blocks without
a copy and keeps them. Every later access (E-steps, inference, initialisation, the
standardisation) sends a small function (a partial of a model method holding
the parameters, ``O(k d^2)`` bytes) to the workers and gets the per-block
results back (statistics, ``O(k d^2)``; or rows, for inference). Results are
put back in block order and added in that order, so a fit is the same for any
``n_jobs``, to the last bit.

Where ``fork`` is not available (Windows), the blocks are worked on by a pool
of threads instead: the same results, less speed-up (the kernels make many
small NumPy calls that hold the GIL).

``fork`` copies only the calling thread: a lock held by another thread of the
caller at that moment stays held in the worker. The workers only run NumPy on
the blocks they inherited, and Python >= 3.12's DeprecationWarning about
forking a process with threads (OpenBLAS's) is silenced at the fork; a
``spawn`` or ``forkserver`` start, which would send the blocks to the workers
instead, is not implemented.
"""

import multiprocessing
import os
import threading
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits

from ._missing_data import BlockedData, _Blocks, split_blocks

# Rows per block when a fit is split into blocks. Blocks are worked on in
# parallel; their statistics are added in block order. Below two blocks'
# worth of rows, data stays one block (and one process).
BLOCK_ROWS = 2**16


def prepare_blocks(prepare, X, sample_weight, n_jobs, block_rows=BLOCK_ROWS):
    """Prepare ``X`` in blocks of about ``block_rows`` rows, worked on by ``n_jobs``.

    Parameters
    ----------
    prepare : callable
        ``prepare(X, sample_weight)``: a model's ``prepare``, returning a
        :class:`MissingData` or a family's own prepared rows that can be cut
        (``block(lo, hi)``: ``CopulaData``, ``ProductData``); rows that cannot
        be cut stay one block.
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    n_jobs : int
        Number of workers (already resolved: >= 1).
    block_rows : int, default=BLOCK_ROWS

    Returns
    -------
    data : MissingData, BlockedData or WorkerBlocks
        One block when ``n_samples < 2 * block_rows``; otherwise the prepared
        rows cut into blocks at chunk bounds (``split_blocks``: the same
        chunks, hence the same work, as one block), in a :class:`WorkerBlocks`
        when ``n_jobs > 1``. Close it (``data.close()``, or ``with``) when done.
    """
    data = prepare(X, sample_weight)
    if data.n_samples < 2 * block_rows or not hasattr(data, "block"):
        return data
    blocks, row_index = split_blocks(data, block_rows)
    if n_jobs == 1:
        return BlockedData(blocks, row_index)
    return WorkerBlocks(blocks, n_jobs, row_index=row_index)


def close(data):
    """Stop ``data``'s workers, if it has any."""
    if isinstance(data, WorkerBlocks):
        data.close()


class WorkerBlocks(_Blocks):
    """Blocks held by worker processes (or threads); see the module docstring.

    Parameters
    ----------
    blocks : tuple of MissingData
    n_jobs : int
        Number of workers; the blocks are dealt out to them in turn.
    processes : bool or None, default=None
        Forked processes (True) or threads (False); None: processes where
        ``fork`` is available.
    row_index : tuple of ndarray or None, default=None
        See :class:`~em_sklearn._missing_data.BlockedData`.
    """

    # Set at construction (the blocks are elsewhere), in place of
    # _Blocks.total_weight, which would add the blocks' weights.
    total_weight = None

    def __init__(self, blocks, n_jobs, processes=None, row_index=None):
        self.row_index = row_index
        self.n_samples = sum(block.n_samples for block in blocks)
        self.n_features = blocks[0].n_features
        self.total_weight = sum(block.block_weight for block in blocks)
        self._n_blocks = len(blocks)
        n_workers = min(n_jobs, len(blocks))
        # Worker w holds blocks w, w + n_workers, ...: blocks hold rows sorted
        # by their number of missing entries (the later, the costlier), so
        # dealing them out balances the work better than consecutive runs.
        self._assignment = [
            list(range(w, len(blocks), n_workers)) for w in range(n_workers)
        ]
        runs = [[blocks[j] for j in indices] for indices in self._assignment]
        if processes is None:
            processes = "fork" in multiprocessing.get_all_start_methods()
        if processes:
            self._pool = _ForkedWorkers(runs)
        else:
            self._pool = _ThreadWorkers(runs)
        self._finalizer = weakref.finalize(self, self._pool.close)

    @property
    def blocks(self):
        raise AttributeError(
            "The blocks of WorkerBlocks live in worker processes: use map_blocks."
        )

    @property
    def n_blocks(self):
        return self._n_blocks

    def map_blocks(self, fn, per_block=None):
        """Return ``[fn(block) for block in blocks]``, computed by the workers.

        With ``per_block`` (one item per block), ``fn(block, item)``.
        """
        items = [None] * self._n_blocks if per_block is None else list(per_block)
        per_worker = [[items[j] for j in indices] for indices in self._assignment]
        replies = self._pool.map(fn, per_block is not None, per_worker)
        results = [None] * self._n_blocks
        for indices, values in zip(self._assignment, replies, strict=True):
            for j, value in zip(indices, values, strict=True):
                results[j] = value
        return results

    def close(self):
        """Stop the workers (also done when the object is garbage-collected)."""
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Blocks handed to a worker at fork time, then dropped here: the parent keeps
# no reference to them, so the worker's copy (shared until written) is the only
# one left.
_HANDOFF = {}


def _serve(connection, key):
    """A worker's loop: apply each function received to its blocks, send back."""
    blocks = _HANDOFF.pop(key)
    with threadpool_limits(limits=1, user_api="blas"):
        while True:
            try:
                fn = connection.recv()
            except EOFError:
                return
            if fn is None:
                return
            fn, with_items, items = fn
            try:
                if with_items:
                    values = [fn(b, i) for b, i in zip(blocks, items, strict=True)]
                else:
                    values = [fn(block) for block in blocks]
                result = ("ok", values)
            except BaseException as exc:  # sent to the parent, raised there
                result = ("error", exc)
            connection.send(result)


class _ForkedWorkers:
    """One forked process per run of blocks, each talking through a pipe."""

    def __init__(self, runs):
        context = multiprocessing.get_context("fork")
        self._lock = threading.Lock()
        self._connections, self._processes = [], []
        for run in runs:
            parent, child = context.Pipe()
            key = id(run)
            _HANDOFF[key] = run
            process = context.Process(target=_serve, args=(child, key), daemon=True)
            try:
                with warnings.catch_warnings():
                    # Python >= 3.12 warns when forking a process that has
                    # threads (OpenBLAS's): the workers only run NumPy on
                    # inherited arrays.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    process.start()
            finally:
                del _HANDOFF[key]
            child.close()
            self._connections.append(parent)
            self._processes.append(process)
        self._pid = os.getpid()

    def map(self, fn, with_items, items):
        """Apply ``fn`` to every worker's blocks; one list of results per worker."""
        with self._lock:  # one request at a time per pool
            try:
                for connection, worker_items in zip(
                    self._connections, items, strict=True
                ):
                    connection.send((fn, with_items, worker_items))
                replies = [connection.recv() for connection in self._connections]
            except (EOFError, OSError) as exc:
                raise RuntimeError(
                    "A worker process of n_jobs stopped (killed, or out of memory?). "
                    "Fit again with a smaller n_jobs, or n_jobs=None."
                ) from exc
        for status, value in replies:
            if status == "error":
                raise value
        return [value for _, value in replies]

    def close(self):
        if os.getpid() != self._pid:
            return  # a forked child must not stop its parent's workers
        for connection in self._connections:
            try:
                connection.send(None)
                connection.close()
            except (OSError, ValueError):
                pass
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()


class _ThreadWorkers:
    """The same protocol with threads (where ``fork`` is not available)."""

    def __init__(self, runs):
        self._runs = runs
        self._executor = ThreadPoolExecutor(max_workers=len(runs))

    def map(self, fn, with_items, items):
        """Apply ``fn`` to every worker's blocks; one list of results per worker."""

        def run(blocks, items):
            if with_items:
                return [fn(b, i) for b, i in zip(blocks, items, strict=True)]
            return [fn(block) for block in blocks]

        return list(self._executor.map(run, self._runs, items))

    def close(self):
        self._executor.shutdown(wait=True)
