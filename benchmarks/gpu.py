"""GPU benchmark of em_sklearn on array API devices (issue 14): one command, one table.

On a machine with a CUDA GPU and torch::

    python benchmarks/gpu.py                      # n=1M, d=20 and 50, k=5

and, to exercise every code path on a CPU at tiny sizes::

    python benchmarks/gpu.py --quick --device cpu
    python benchmarks/gpu.py --quick --device cpu --namespace array_api_strict

(at those sizes the timings, the differences of two fits above all, are noise:
the quick mode checks that every path runs and agrees with NumPy).

For every d, dtype (float64, float32), MCAR fraction (0, 20, 40%) and solver
of the missing blocks ('sweep', 'cholesky') it prints, in one markdown table:

* ``prepare ms``: the time of ``em_sklearn._device_data.prepare_device_data``
  (rows grouped by their number of missing entries on X's device), the device
  synchronised after it;
* ``E-step ms``: one E-step of the Gaussian mixture model ('full'
  covariances), ``model.e_step(params, data)`` on the prepared rows, the one
  transfer of its statistics to the host included: the best of ``--repeat``
  runs after one warm-up, the device synchronised around each;
* ``EM iteration ms``: the time of one iteration (device E-step, host M-step)
  of ``EMClusterer(covariance_type='full', tol=0)`` fitted on the device array
  under ``array_api_dispatch`` (original units, default ``reg_covar``), as the
  difference of two fits of different ``max_iter`` (``--iters``) from the
  same initial parameters (``weights_init``, ``means_init``,
  ``precisions_init``: the generating mixture's) divided by the difference:
  validation, preparation, initialisation and the final E-step cancel out.
  The estimators take no solver: for these fits the benchmark makes their
  ``prepare_device_data`` use the row's solver and ``--block-elements``;
* ``GM iteration ms``: the same for scikit-learn's ``GaussianMixture`` through
  the array API on the same namespace and device, on the same rows complete
  (it refuses NaN); "n/a (...)" where it fails;
* ``ratio``: EM iteration over GM iteration, against the issue's targets
  (complete data at most 1x, 20% MCAR 3x, 40% MCAR 6x);
* ``check``: the device E-step's statistics on the first ``--check-rows`` rows
  against the NumPy engine's (``model.e_step`` on ``model.prepare`` of the
  same rows in float64, same parameters), as the largest error over ``nk``,
  ``s1``, ``s2`` and the log-likelihood divided by its tolerance (1e-10
  relative to each array's largest entry in float64; atol 5e-4 plus rtol 1e-4
  of each array's largest entry in float32): at most 1 passes.

``--numpy-engine`` adds the NumPy engine's E-step on the host's CPU.

After the table, ``EMImputer(n_components=5, max_iter=10, tol=0).fit_transform``
on a device array (n=10,000,000, d=20, 20% MCAR, float32 and float64; the
library's default solver and chunks): seconds in all, seconds over
``n_iter_`` (initialisation and imputation included; also per million rows,
to set the two sizes side by side) and, with torch on CUDA, the peak device
memory (``torch.cuda.max_memory_allocated``, the input included); then the
same on NumPy arrays (the CPU engine) at ``--cpu-n`` rows for reference.
Errors (out of memory above all) are reported in the table instead of
stopping it. ``--no-table`` and ``--no-imputer`` run one part alone (two
shorter commands).

CPU threads: ``--threads`` (default: every core with a GPU, one with
``--device cpu``) limits BLAS and OpenMP (threadpoolctl) and torch's intra-op
threads for the whole run; the NumPy engine's fits pin BLAS to one thread
themselves and use ``--cpu-jobs`` processes (``n_jobs``).
"""

import os

# scikit-learn's array API support needs SciPy's, switched on before import.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import threadpoolctl  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from em_sklearn import EMClusterer, EMImputer  # noqa: E402
from em_sklearn._device_data import (  # noqa: E402
    BLOCK_ELEMENTS,
    SOLVERS,
    prepare_device_data,
)
from em_sklearn._gaussian import (  # noqa: E402
    GaussianParams,
    _family,
    gaussian_mixture,
)
from em_sklearn._gaussian._cholesky import compute_precision_cholesky  # noqa: E402
from em_sklearn._mixture import MixtureParams  # noqa: E402

warnings.simplefilter("ignore", ConvergenceWarning)

TARGETS = {0.0: 1.0, 0.2: 3.0, 0.4: 6.0}  # issue 14: ratio to GaussianMixture
REG_COVAR = 1e-6  # EMClusterer's and GaussianMixture's default


# -- namespaces and devices ---------------------------------------------------


def namespace(name, device):
    """Return ``(xp, device, synchronise)`` for a namespace name and device kind."""
    if name == "torch":
        import array_api_compat.torch as xp
        import torch

        dev = torch.device(device)
        if dev.type == "cuda":
            return xp, dev, torch.cuda.synchronize
        return xp, dev, lambda: None
    if name == "cupy":
        import array_api_compat.cupy as xp
        import cupy

        return xp, cupy.cuda.Device(), lambda: cupy.cuda.Device().synchronize()
    if name == "array_api_strict":
        import array_api_strict as xp

        return xp, xp.Device("CPU_DEVICE"), lambda: None
    raise ValueError(f"Unknown namespace {name!r}.")


def default_namespace():
    try:
        import torch  # noqa: F401

        return "torch"
    except ImportError:
        return "cupy"


def device_description(name, device):
    """The device in words (the GPU's name where torch or CuPy says it)."""
    if name == "torch" and device.type == "cuda":
        import torch

        return f"{device} ({torch.cuda.get_device_name(device)})"
    if name == "cupy":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(device.id)
        return f"cuda:{device.id} ({props['name'].decode()})"
    return str(device)


def peak_memory(name, device):
    """``(reset, read)``: the peak device memory, with torch on CUDA (else None)."""
    if name == "torch" and device.type == "cuda":
        import torch

        return (
            lambda: torch.cuda.reset_peak_memory_stats(device),
            lambda: torch.cuda.max_memory_allocated(device),
        )
    return (lambda: None), (lambda: None)


def free_device_memory(name):
    gc.collect()
    if name == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# -- data ---------------------------------------------------------------------


def mixture(n, d, k, seed=0):
    """Rows of a k-component Gaussian mixture with correlated features; its parameters.

    Returns
    -------
    X : ndarray of shape (n, d)
    weights, means, covariances : the generating mixture's.
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(0.0, 3.0, (k, d))
    factors = rng.normal(size=(k, d, d)) / np.sqrt(d) + np.eye(d)
    covariances = factors @ np.swapaxes(factors, 1, 2) + 0.1 * np.eye(d)
    labels = rng.choice(k, size=n, p=weights)
    X = np.empty((n, d))
    for j in range(k):
        rows = np.flatnonzero(labels == j)
        noise = rng.standard_normal((rows.size, d))
        X[rows] = means[j] + noise @ factors[j].T
    return X, weights, means, covariances


def mcar(X, fraction, seed=1):
    """A copy of ``X`` with each entry missing with probability ``fraction``."""
    out = X.copy()
    if fraction:
        out[np.random.default_rng(seed).random(X.shape) < fraction] = np.nan
    return out


# -- timing -------------------------------------------------------------------


def best_time(fn, repeat, synchronise):
    """Best wall time of ``repeat`` calls of ``fn`` after one warm-up call."""
    fn()
    synchronise()
    times = []
    for _ in range(repeat):
        gc.collect()
        synchronise()
        start = time.perf_counter()
        fn()
        synchronise()
        times.append(time.perf_counter() - start)
    return min(times)


def error_text(exc):
    lines = str(exc).splitlines() or [""]
    return f"n/a ({type(exc).__name__}: {lines[0][:60]})"


def iteration_time(fit, iters, repeat, synchronise):
    """Seconds per iteration of ``fit(max_iter)``, or an error text.

    The difference of the best times of two fits of different ``max_iter``,
    over the difference: what both fits do once cancels out.
    """
    m1, m2 = iters
    try:
        with sklearn.config_context(array_api_dispatch=True):
            t1 = best_time(lambda: fit(m1), repeat, synchronise)
            t2 = best_time(lambda: fit(m2), repeat, synchronise)
    except Exception as exc:  # report, do not stop the table
        return error_text(exc)
    return (t2 - t1) / (m2 - m1) if t2 > t1 else float("nan")


@contextmanager
def estimator_rows(solver, block_elements):
    """Make the estimators prepare device rows with ``solver`` and ``block_elements``.

    ``EMClusterer`` has no parameter for either (the library's defaults): for
    the benchmark's fits, the Gaussian family's ``prepare_device_data`` is
    swapped for one with these settings, and restored afterwards.
    """
    original = _family.prepare_device_data
    _family.prepare_device_data = functools.partial(
        original, solver=solver, block_elements=block_elements
    )
    try:
        yield
    finally:
        _family.prepare_device_data = original


def em_iteration(X, init, k, iters, repeat, synchronise, solver, block_elements):
    """Seconds per iteration of EMClusterer on device array X, or an error text."""

    def fit(max_iter):
        clusterer = EMClusterer(
            k, covariance_type="full", max_iter=max_iter, tol=0.0, **init
        )
        clusterer.fit(X)

    with estimator_rows(solver, block_elements):
        return iteration_time(fit, iters, repeat, synchronise)


def gaussian_mixture_iteration(X, init, k, iters, repeat, synchronise):
    """Seconds per iteration of GaussianMixture (array API) on X, or an error text."""

    def fit(max_iter):
        # The array API GaussianMixture accepts only random initialisations;
        # with every *_init given they decide nothing.
        GaussianMixture(
            k,
            covariance_type="full",
            max_iter=max_iter,
            tol=0.0,
            init_params="random",
            random_state=0,
            **init,
        ).fit(X)

    return iteration_time(fit, iters, repeat, synchronise)


# -- the check against the NumPy engine ----------------------------------------


def statistics(stats):
    """The E-step's statistics by name, as float64 NumPy arrays (host)."""
    return {
        "log_likelihood": np.float64(stats.log_likelihood),
        "nk": np.asarray(stats.nk, dtype=np.float64),
        "s1": np.asarray(stats.components.s1, dtype=np.float64),
        "s2": np.asarray(stats.components.s2, dtype=np.float64),
    }


def check(result, expected, dtype_name):
    """Largest error of nk, s1, s2, log-likelihood over its tolerance (<= 1 passes)."""
    actual, desired = statistics(result), statistics(expected)
    worst = 0.0
    for name, want in desired.items():
        if dtype_name == "float64":
            tolerance = 1e-10 * np.max(np.abs(want))
        else:
            # Sums over thousands of rows: rtol against the array's scale, so
            # that an entry summing to nearly 0 is not held to 5e-4.
            tolerance = 5e-4 + 1e-4 * np.max(np.abs(want))
        error = np.max(np.abs(actual[name] - want))
        worst = max(worst, float(error / tolerance) if tolerance else float(error))
    return worst


# -- EMImputer at scale ---------------------------------------------------------


def imputer_rows(args, name, xp, device, synchronise, k=5, d=20, fraction=0.2):
    """Table rows of EMImputer.fit_transform on the device and on the CPU."""
    n_device = args.imputer_n or (20_000 if args.quick else 10_000_000)
    n_cpu = args.cpu_n or (20_000 if args.quick else 1_000_000)
    reset, read = peak_memory(name, device)
    label = "CPU" if name == "array_api_strict" else str(device)
    rows = []
    for where, n in ((f"{name} on {label}", n_device), ("NumPy (CPU)", n_cpu)):
        on_host = where.startswith("NumPy")
        try:
            X64 = mcar(mixture(n, d, k)[0], fraction)
        except Exception as exc:  # the host's memory
            X64, failure = None, error_text(exc)
        for dtype_name in args.dtypes.split(","):
            cells = [where, f"{n:,}", dtype_name]
            X = None
            try:
                if X64 is None:
                    raise RuntimeError(failure)
                X = X64.astype(dtype_name)
                if not on_host:
                    X = xp.asarray(X, device=device)
                    synchronise()
                imputer = EMImputer(
                    n_components=k,
                    max_iter=10,
                    tol=0.0,
                    random_state=0,
                    n_jobs=args.cpu_jobs if on_host else None,
                )
                reset()
                with sklearn.config_context(array_api_dispatch=not on_host):
                    start = time.perf_counter()
                    imputed = imputer.fit_transform(X)
                    synchronise()
                    seconds = time.perf_counter() - start
                del imputed
                peak = None if on_host else read()
                per_iteration = seconds / imputer.n_iter_
                cells += [
                    f"{seconds:.2f}",
                    str(imputer.n_iter_),
                    f"{per_iteration * 1e3:.1f}",
                    f"{per_iteration * 1e3 * 1e6 / n:.1f}",
                    "-" if peak is None else f"{peak / 2**30:.2f} GiB",
                ]
            except Exception as exc:  # out of memory above all: report it
                cells += [error_text(exc), "-", "-", "-", "-"]
            del X
            free_device_memory(name)
            line = "| " + " | ".join(cells) + " |"
            print(line, flush=True)
            rows.append(line)
        del X64
    return rows


# -- main -----------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    parser.add_argument(
        "--device", default=None, help="'cuda' (default if any) or 'cpu'"
    )
    parser.add_argument(
        "--namespace",
        choices=["torch", "cupy", "array_api_strict"],
        default=None,
        help="default: torch if importable, else CuPy",
    )
    parser.add_argument("--n", type=int, default=None, help="rows (1,000,000)")
    parser.add_argument("--features", default=None, help="comma list (20,50)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--missing", default="0,0.2,0.4", help="MCAR fractions")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--solvers", default=",".join(SOLVERS))
    parser.add_argument("--repeat", type=int, default=None, help="best of (5)")
    parser.add_argument("--block-elements", type=int, default=BLOCK_ELEMENTS)
    parser.add_argument("--check-rows", type=int, default=20_000)
    parser.add_argument(
        "--iters",
        "--gm-iters",
        default=None,
        help="max_iter of the two fits (2,12; quick: 2,6)",
    )
    parser.add_argument("--no-em", action="store_true", help="skip EMClusterer")
    parser.add_argument("--no-gm", action="store_true", help="skip GaussianMixture")
    parser.add_argument(
        "--numpy-engine", action="store_true", help="also time the NumPy E-step (CPU)"
    )
    parser.add_argument(
        "--no-table", action="store_true", help="skip the table (imputer only)"
    )
    parser.add_argument(
        "--no-imputer", action="store_true", help="skip EMImputer at scale"
    )
    parser.add_argument(
        "--imputer-n", type=int, default=None, help="device rows (10,000,000)"
    )
    parser.add_argument(
        "--cpu-n", type=int, default=None, help="NumPy imputer rows (1,000,000)"
    )
    parser.add_argument(
        "--cpu-jobs", type=int, default=None, help="n_jobs of the NumPy imputer"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (all; cpu: 1)"
    )
    parser.add_argument("--output", default=None, help="also write the table here")
    args = parser.parse_args(argv)

    name = args.namespace or default_namespace()
    if args.device is None:
        args.device = "cpu"
        if name == "cupy":
            args.device = "cuda"
        elif name == "torch":
            import torch

            args.device = "cuda" if torch.cuda.is_available() else "cpu"
    # On the CPU, one thread by default: torch's OpenMP threads spin, and with
    # two of them on a busy 2-core machine a fit ran 10x slower than with one.
    on_cpu = args.device == "cpu" or name == "array_api_strict"
    threads = args.threads or (1 if on_cpu else os.cpu_count() or 1)
    with threadpoolctl.threadpool_limits(limits=threads):
        if name == "torch":
            import torch

            torch.set_num_threads(threads)
        run(args, name, threads)


def run(args, name, threads):
    xp, device, synchronise = namespace(name, args.device)
    n = args.n or (2_000 if args.quick else 1_000_000)
    features = [
        int(d) for d in (args.features or ("5,8" if args.quick else "20,50")).split(",")
    ]
    repeat = args.repeat or (2 if args.quick else 5)
    fractions = [float(f) for f in args.missing.split(",")]
    dtypes = args.dtypes.split(",")
    solvers = args.solvers.split(",")
    iters = tuple(
        int(m) for m in (args.iters or ("2,6" if args.quick else "2,12")).split(",")
    )
    k = args.k
    torch_threads = (
        f", torch {sys.modules['torch'].get_num_threads()} intra-op"
        if "torch" in sys.modules
        else ""
    )

    header = [
        f"# em_sklearn on an array API device: {name} on "
        f"{device_description(name, device)}",
        "",
        f"n={n:,}, k={k}, 'full' covariances; Python {platform.python_version()}, "
        f"scikit-learn {sklearn.__version__}, NumPy {np.__version__}"
        + (
            f", torch {sys.modules['torch'].__version__}"
            if "torch" in sys.modules
            else ""
        )
        + f"; block_elements={args.block_elements}; best of {repeat} after a "
        f"warm-up; iterations timed as fits of max_iter {iters[0]} and {iters[1]}.",
        "",
        f"CPU threads: {threads} (threadpoolctl BLAS/OpenMP limit{torch_threads}) "
        f"of {os.cpu_count()} cores.",
        "",
    ]
    columns = [
        "d",
        "dtype",
        "MCAR",
        "solver",
        "prepare ms",
        "E-step ms",
        "EM iteration ms",
        "GM iteration ms",
        "ratio",
        "target",
        "check",
    ]
    if args.numpy_engine:
        columns.insert(6, "NumPy E-step ms")
    lines = header + [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    print("\n".join(lines), flush=True)

    model = gaussian_mixture(k, "full", REG_COVAR)
    for d in [] if args.no_table else features:
        X_full, weights, means, covariances = mixture(n, d, k)
        prec_chol = compute_precision_cholesky(covariances, "full")
        params = MixtureParams(
            weights, GaussianParams.from_precisions_cholesky(means, prec_chol, "full")
        )
        em_init = dict(
            weights_init=weights,
            means_init=means,
            precisions_init=np.linalg.inv(covariances),
        )
        for dtype_name in dtypes:
            dtype = getattr(xp, dtype_name)
            np_dtype = np.dtype(dtype_name)
            gm = None
            if not args.no_gm:
                X_complete = xp.asarray(X_full.astype(np_dtype), device=device)
                init = {
                    key: xp.asarray(value.astype(np_dtype), dtype=dtype, device=device)
                    for key, value in em_init.items()
                }
                gm = gaussian_mixture_iteration(
                    X_complete, init, k, iters, repeat, synchronise
                )
                del X_complete
            for fraction in fractions:
                X_np = mcar(X_full, fraction).astype(np_dtype)
                X = xp.asarray(X_np, device=device)
                rows = min(args.check_rows, n)
                X_rows = X_np[:rows].astype(np.float64)
                expected = model.e_step(params, model.prepare(X_rows))
                numpy_time = None
                if args.numpy_engine:
                    numpy_time = numpy_e_step_time(model, params, X_np, repeat)
                for solver in solvers:
                    prepare = functools.partial(
                        prepare_device_data,
                        n_components=k,
                        block_elements=args.block_elements,
                        solver=solver,
                    )
                    synchronise()
                    start = time.perf_counter()
                    data = prepare(X)
                    synchronise()
                    prepare_time = time.perf_counter() - start
                    seconds = best_time(
                        lambda data=data, params=params: model.e_step(params, data),
                        repeat,
                        synchronise,
                    )
                    del data
                    result = model.e_step(params, prepare(X[:rows, :]))
                    worst = check(result, expected, dtype_name)
                    em = None
                    if not args.no_em:
                        em = em_iteration(
                            X,
                            em_init,
                            k,
                            iters,
                            repeat,
                            synchronise,
                            solver,
                            args.block_elements,
                        )
                    cells = [
                        str(d),
                        dtype_name,
                        f"{fraction:.0%}",
                        solver,
                        f"{prepare_time * 1e3:.1f}",
                        f"{seconds * 1e3:.2f}",
                    ]
                    if args.numpy_engine:
                        cells.append(f"{numpy_time * 1e3:.1f}")
                    cells += [
                        milliseconds(em),
                        milliseconds(gm),
                        *ratio_cells(em, gm, TARGETS.get(fraction)),
                        f"{worst:.2g} " + ("ok" if worst <= 1 else "FAILED"),
                    ]
                    line = "| " + " | ".join(cells) + " |"
                    print(line, flush=True)
                    lines.append(line)
                del X
                free_device_memory(name)

    if not args.no_imputer:
        imputer_header = [
            "",
            "EMImputer(n_components=5, max_iter=10, tol=0).fit_transform, d=20, "
            "20% MCAR (seconds include initialisation and imputation; the peak "
            "device memory includes the input; NumPy: "
            f"n_jobs={args.cpu_jobs}, BLAS pinned to one thread by the fit):",
            "",
            "| path | n | dtype | seconds | n_iter_ | ms / iteration "
            "| ms / iteration / 1M rows | peak device memory |",
            "|---|---|---|---|---|---|---|---|",
        ]
        print("\n".join(imputer_header), flush=True)
        lines += imputer_header + imputer_rows(args, name, xp, device, synchronise)
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n")


def milliseconds(value):
    """A cell for seconds per iteration, an error text or nothing measured."""
    if value is None:
        return "skipped"
    if isinstance(value, float):
        return f"{value * 1e3:.2f}"
    return value


def ratio_cells(em, gm, target):
    """The ratio and target cells of EM iteration over GM iteration."""
    if not (isinstance(em, float) and isinstance(gm, float)):
        return ["-", "-"]
    ratio = em / gm
    if target is None:
        return [f"{ratio:.2f}x", "-"]
    return [
        f"{ratio:.2f}x",
        f"<= {target:g}x " + ("ok" if ratio <= target else "MISSED"),
    ]


def numpy_e_step_time(model, params, X_np, repeat):
    """Best time of the NumPy engine's E-step on the host (rows prepared once)."""
    data = model.prepare(X_np.astype(np.float64))
    return best_time(lambda: model.e_step(params, data), repeat, lambda: None)


if __name__ == "__main__":
    main()
