"""BLAS thread pinning for the E-step and inference."""

from threadpoolctl import ThreadpoolController

_THREADPOOLS = []


def single_blas_thread():
    """Return a context manager that limits BLAS to one thread.

    The E-step's matrix products are small (``n_features`` wide) and run
    between NumPy element-wise passes; on a 2-core machine two OpenBLAS
    threads made an EM iteration several times slower (benchmarks/RESULTS.md).
    The controller is created once (about 1 ms); entering the limit costs
    about 10 microseconds.
    """
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api="blas")
