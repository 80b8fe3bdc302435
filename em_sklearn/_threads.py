"""BLAS thread pinning for the E-step and inference."""

import threading
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

_CONTROLLER = []
_LOCK = threading.Lock()
# Fits and inference calls running now (in any thread), and the limiter that
# the first of them installed; the last to finish restores the limits.
_ACTIVE = {"depth": 0, "limiter": None}


@contextmanager
def single_blas_thread():
    """Limit BLAS to one thread while the block runs; restore it afterwards.

    The E-step's matrix products are small (``n_features`` wide) and run
    between NumPy element-wise passes; on a 2-core machine two OpenBLAS
    threads made an EM iteration several times slower (benchmarks/RESULTS.md).

    The BLAS limit is global to the process, so the calls running in several
    threads at once share one limit: the first to enter saves the caller's
    limits and sets one thread, the last to leave restores them (a per-call
    save and restore would race: one call could restore the limits while
    another still runs, and the other then "restore" one thread for good).
    """
    with _LOCK:
        if _ACTIVE["depth"] == 0:
            if not _CONTROLLER:
                _CONTROLLER.append(ThreadpoolController())  # about 1 ms, once
            _ACTIVE["limiter"] = _CONTROLLER[0].limit(limits=1, user_api="blas")
        _ACTIVE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _ACTIVE["depth"] -= 1
            if _ACTIVE["depth"] == 0:
                _ACTIVE["limiter"].restore_original_limits()
                _ACTIVE["limiter"] = None
