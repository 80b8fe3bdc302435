"""Dask: time per EM iteration against in-process, bytes moved, worker malloc.

Run from the repository root after ``pip install ".[dask]"``::

    python benchmarks/dask_bench.py            # n=1,000,000, d=20, k=5
    python benchmarks/dask_bench.py --quick    # n=200,000
    python benchmarks/dask_bench.py --only malloc

Three parts, printed as markdown tables:

* **iteration**: time of one EM iteration (E-step over every block plus the
  M-step) on data already prepared, from the same parameters: in-process with
  ``n_jobs=1`` and ``n_jobs=2`` (blocks of 2**16 rows cut from one
  preparation of all rows), in-process on the blocks Dask makes (each chunk
  of 2**16 rows prepared alone: more, smaller chunks of rows for the
  kernels), and on a ``distributed.LocalCluster`` of 1 and 2 worker
  processes (one thread each, chunks of 2**16 rows). The settings are timed
  alternately, ``--repeat`` rounds; best and median are shown, and the CPU
  time of this process and all its children (workers, scheduler) per
  iteration, less sensitive to a busy machine. Dask's overhead at the same
  core count is the ratio of the Dask time to the in-process one.
* **bytes**: what one iteration moves on the 2-worker cluster: the
  parameters sent to each worker (the pickled per-block function, measured),
  the per-block statistics moved between workers to the tree's sums (the
  workers' transfer logs) and the sum sent back, against the formula
  ``params ~ k d^2`` and ``stats ~ k d^2`` floats per block.
* **malloc**: one E-step of one 200,000-row block inside a worker process
  started with Dask's ``MALLOC_TRIM_THRESHOLD_=65536``, as is and inside
  ``em_sklearn._dask.kernel_malloc`` (what every em_sklearn task in a worker
  runs in: mmap/trim thresholds 32/64 MiB while it runs), in a worker
  without the variable, and in this process; with the minor page faults per
  E-step (a count, so less sensitive to a busy machine than the times).
"""

import argparse
import os
import pickle
import resource
import statistics
import time
import warnings
from functools import partial

import numpy as np


def make_data(n, d, k, missing, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    X = centers[rng.integers(k, size=n)] + rng.normal(size=(n, d))
    X[rng.random(X.shape) < missing] = np.nan
    init = {
        "weights_init": np.full(k, 1.0 / k),
        "means_init": centers,
        "precisions_init": np.stack([np.eye(d)] * k),
    }
    return X, init


def _cpu_seconds():
    """CPU time (user + system) of this process and all its descendants."""
    import psutil  # a dependency of distributed

    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _one_iteration(model, params, data):
    from em_sklearn._threads import single_blas_thread

    with single_blas_thread():  # as fits do (workers pin themselves)
        stats = model.e_step(params, data)
        return model.m_step(stats)


def _cluster(n_workers, **kwargs):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        **kwargs,
    )
    return cluster, Client(cluster, set_as_default=False)


def bench_iteration(n, d, k, missing, repeat, clients):
    """Rows of the iteration table and the bytes table for one missing fraction."""
    import dask
    import dask.array as da

    from em_sklearn import EMClusterer, _dask
    from em_sklearn._missing_data import BlockedData

    X, init = make_data(n, d, k, missing)
    estimator = EMClusterer(k, **init)
    estimator.n_features_in_ = d
    values = estimator._user_values(d)
    settings = {}
    for n_jobs in (1, 2):
        job = EMClusterer(k, n_jobs=n_jobs, **init)
        data = job._prepare(X)
        model = job._build_model(data, **values)
        settings[f"in-process n_jobs={n_jobs}"] = (model, data, None, n_jobs)
    # The blocks Dask makes (each chunk prepared alone), in this process: the
    # cost of the blocking apart from that of Dask's machinery.
    chunk_blocks = tuple(
        estimator._model().prepare(X[start : start + 2**16])
        for start in range(0, n, 2**16)
    )
    settings["in-process, Dask's blocks"] = (
        settings["in-process n_jobs=1"][0], BlockedData(chunk_blocks), None, 1
    )
    template = _dask._chunk_template(estimator)
    for n_workers, client in clients.items():
        with dask.config.set(scheduler=client):
            X_dask = da.from_array(X, chunks=(2**16, d))
            data, _ = _dask.DaskBlocks.prepare(
                partial(_dask._prepare_chunk, template, estimator._model()),
                list(X_dask.to_delayed().ravel()),
                d,
            )
        settings[f"dask {n_workers} worker(s)"] = (model, data, client, n_workers)
    model = settings["in-process n_jobs=1"][0]
    params = model.initial_params(settings["in-process n_jobs=1"][1], None)
    times = {name: [] for name in settings}
    cpu = {name: [] for name in settings}
    for _ in range(repeat):
        for name, (model, data, client, _) in settings.items():
            with dask.config.set(scheduler=client or "sync"):
                cpu_start, start = _cpu_seconds(), time.perf_counter()
                _one_iteration(model, params, data)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(_cpu_seconds() - cpu_start)
    rows = []
    base = {c: min(times[f"in-process n_jobs={c}"]) for c in (1, 2)}
    base_cpu = min(cpu["in-process n_jobs=1"])
    for name, values_ in times.items():
        cores = settings[name][3]
        rows.append(
            (
                f"{missing:.0%}",
                name,
                f"{min(values_) * 1e3:.0f}",
                f"{statistics.median(values_) * 1e3:.0f}",
                f"{min(values_) / base[cores]:.2f}",
                f"{min(cpu[name]) * 1e3:.0f}",
                f"{min(cpu[name]) / base_cpu:.2f}",
            )
        )
    bytes_rows = bench_bytes(model, params, settings["dask 2 worker(s)"][1], clients[2])
    for _, data, _, _ in settings.values():
        if hasattr(data, "close"):
            data.close()
    return rows, bytes_rows


def bench_bytes(model, params, data, client):
    """Bytes one E-step moves on a cluster (measured) against the formula."""
    import dask

    k, d = params.components.means.shape

    def clear(dask_worker):
        dask_worker.transfer_incoming_log.clear()

    def moved(dask_worker):
        # The log's sizes are dask's sizeof estimates: count the keys instead.
        return sum(len(entry["keys"]) for entry in dask_worker.transfer_incoming_log)

    fn = partial(model._block_statistics, params)
    fn_bytes = len(pickle.dumps(fn, protocol=5))
    with dask.config.set(scheduler=client):
        client.run(clear)
        stats = model.e_step(params, data)
        n_moved = sum(client.run(moved).values())
    stats_bytes = len(pickle.dumps(stats, protocol=5))
    n_workers = len(client.scheduler_info()["workers"])
    formula = k * d * d * 8
    return [
        ("parameters, per worker", f"{fn_bytes:,}", f"{formula:,}", n_workers),
        (
            "statistics, per block",
            f"{stats_bytes:,}",
            f"{formula:,}",
            data.n_blocks,
        ),
        (
            "statistics moved between workers to the tree's sums",
            f"{n_moved * stats_bytes:,}",
            f"{n_moved * formula:,}",
            n_moved,
        ),
        ("sum of the statistics, back to this process", f"{stats_bytes:,}",
         f"{formula:,}", 1),
    ]


def _estep_in_worker(n, reps, tune):
    """Median seconds and minor page faults of one E-step, in this process."""
    from contextlib import nullcontext

    from em_sklearn import _dask
    from em_sklearn._gaussian import gaussian_mixture
    from em_sklearn._threads import single_blas_thread

    X, _ = make_data(n, 20, 5, 0.2)
    model = gaussian_mixture(5, "full", 1e-6)
    block = model.prepare(X)
    params = model.initial_params(block, np.random.RandomState(0))
    seconds, faults = [], []
    with _dask.kernel_malloc() if tune else nullcontext(), single_blas_thread():
        model.e_step(params, block)
        for _ in range(reps):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            model.e_step(params, block)
            seconds.append(time.perf_counter() - start)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return (
        os.environ.get("MALLOC_TRIM_THRESHOLD_", "unset"),
        statistics.median(seconds),
        min(seconds),
        statistics.median(faults),
    )


def bench_malloc(n, reps):
    import dask
    import distributed  # noqa: F401  (its config defaults, before config.set)

    rows = []
    rows.append(("this process", *_estep_in_worker(n, reps, tune=False)))
    # Without the variable first: starting a nanny puts Dask's pre-spawn
    # variables in this process's environment, which later workers inherit.
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    key = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
    with dask.config.set({key: None}):
        cluster, client = _cluster(1)
    with cluster, client:
        result = client.submit(_estep_in_worker, n, reps, False, pure=False).result()
        rows.append(("worker, variable unset", *result))
    cluster, client = _cluster(1)
    with cluster, client:
        for _ in range(2):  # alternately
            for tune, label in (
                (False, "worker, Dask's default"),
                (True, "same, in kernel_malloc"),
            ):
                result = client.submit(
                    _estep_in_worker, n, reps, tune, pure=False
                ).result()
                rows.append((label, *result))
    return [
        (label, env, f"{med * 1e3:.0f}", f"{best * 1e3:.0f}", f"{faults:,.0f}")
        for label, env, med, best, faults in rows
    ]


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n=200,000")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only", choices=("iteration", "malloc"), default=None, help="one part"
    )
    args = parser.parse_args()
    n = args.n or (200_000 if args.quick else 1_000_000)
    d, k = 20, 5
    warnings.simplefilter("ignore")
    if args.only in (None, "malloc"):
        rows = bench_malloc(200_000, reps=5)
        print("\nOne E-step of a 200,000-row block (d=20, k=5, full, 20% MCAR):\n")
        header = ("where", "MALLOC_TRIM_THRESHOLD_", "median ms", "best ms",
                  "minor faults")
        print(table(header, rows))
    if args.only in (None, "iteration"):
        clusters = {w: _cluster(w) for w in (1, 2)}
        clients = {w: client for w, (_, client) in clusters.items()}
        try:
            all_rows, all_bytes = [], []
            for missing in (0.0, 0.2):
                rows, bytes_rows = bench_iteration(
                    n, d, k, missing, args.repeat, clients
                )
                all_rows += rows
                all_bytes += [(f"{missing:.0%}", *row) for row in bytes_rows]
        finally:
            for cluster, client in clusters.values():
                client.close()
                cluster.close()
        print(f"\nTime per EM iteration, n={n:,} d={d} k={k} full, "
              f"{os.cpu_count()} cores, best of {args.repeat} (alternately):\n")
        header = ("MCAR", "setting", "wall best ms", "wall median ms",
                  "wall vs in-process, same cores", "CPU ms (all processes)",
                  "CPU vs in-process n_jobs=1")
        print(table(header, all_rows))
        print("\nBytes moved per EM iteration (2 workers), measured vs formula "
              "(k d^2 float64):\n")
        header = ("MCAR", "what", "bytes", "formula bytes", "count")
        print(table(header, all_bytes))


if __name__ == "__main__":
    main()
