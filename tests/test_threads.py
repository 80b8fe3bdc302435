"""BLAS thread pinning (``_threads.single_blas_thread``) when calls overlap."""

import threading

import pytest

from em_sklearn._threads import single_blas_thread

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads():
    return [
        info["num_threads"]
        for info in threadpoolctl.threadpool_info()
        if info["user_api"] == "blas"
    ]


def _release_blas_control():
    """Forget which Python thread controls OpenBLAS's limits (threadpoolctl >= 3.8).

    threadpoolctl lets one live thread at a time set OpenBLAS's process-wide
    limits; an earlier test's limit in the main thread would make it that one.
    """
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    if hasattr(controller, "clear_controlling_thread"):
        controller.clear_controlling_thread(force=True)


def test_overlapping_calls_in_threads_restore_the_callers_limit():
    """Two pinned blocks that overlap in two threads keep one BLAS thread while
    either runs, and the process's limit is back after both (non-regression: a
    per-call save and restore left the process at one thread for good)."""
    if not _blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    _release_blas_control()
    inside = [threading.Event(), threading.Event()]
    leave = [threading.Event(), threading.Event()]
    seen = []

    def run(i):
        if i == 1:
            inside[0].wait(10)
        with single_blas_thread():
            inside[i].set()
            leave[i].wait(10)

    before = _blas_threads()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    inside[1].wait(10)
    leave[0].set()  # the first to enter leaves first
    threads[0].join(10)
    seen.append(_blas_threads())  # the second still runs
    leave[1].set()
    threads[1].join(10)
    after = _blas_threads()
    _release_blas_control()
    assert all(n == 1 for n in seen[0])
    assert after == before


def test_nested_calls_restore_once():
    """A pinned block inside another keeps one thread until the outer one ends."""
    if not _blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = _blas_threads()
        with single_blas_thread():
            with single_blas_thread():
                pass
            middle = _blas_threads()
        after = _blas_threads()
    assert all(n == 1 for n in middle)
    assert after == before
