"""THE EM loop: restarts, warm start, convergence, progress. Knows nothing about Gaussians.

A model plugs in through three hooks (pmtk3's and hmmlearn's contract):

* ``model.initial_params(data, random_state) -> params``
* ``model.e_step(params, data) -> stats`` with ``stats.log_likelihood`` (at
  ``params``) and ``stats.n_samples``; statistics add over rows;
* ``model.m_step(stats) -> params`` (no data).

The order of operations is scikit-learn's ``BaseMixture.fit_predict``: E-step
at the current parameters, M-step, lower bound from that E-step, stop when
``abs(change) < tol``; the best initialisation is the one with the largest
lower bound, and ``converged`` is that initialisation's flag.
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning


@dataclass(frozen=True)
class EMResult:
    """Outcome of :func:`run_em`.

    Attributes
    ----------
    params : object
        The best initialisation's final parameters.
    lower_bound : float
        Its last mean observed-data log-likelihood (``-inf`` if ``max_iter=0``).
    lower_bounds : list of float
        Its mean log-likelihood at every iteration.
    n_iter : int
        Its number of iterations.
    converged : bool
        Whether it converged.
    """

    params: object
    lower_bound: float
    lower_bounds: list
    n_iter: int
    converged: bool


def run_em(
    model,
    data,
    *,
    n_init,
    max_iter,
    tol,
    random_state,
    warm_start=None,
    verbose=0,
    verbose_interval=10,
):
    """Fit ``model`` to ``data`` by EM, keeping the best of ``n_init`` starts.

    Parameters
    ----------
    model : object
        Provides ``initial_params``, ``e_step`` and ``m_step``.
    data : object
        Passed to the hooks unchanged.
    n_init : int
        Number of initialisations (ignored when ``warm_start`` is given).
    max_iter : int
        Maximum number of EM iterations per initialisation.
    tol : float
        Convergence threshold on the change of the mean log-likelihood.
    random_state : RandomState
        One generator shared by every initialisation.
    warm_start : tuple (params, lower_bound) or None
        Start once from these parameters instead of initialising.
    verbose : int, default=0
        0: silent; 1: one line per initialisation and per ``verbose_interval``
        iterations; 2: with timings and log-likelihood changes.
    verbose_interval : int, default=10

    Returns
    -------
    result : EMResult
    """
    progress = _Progress(verbose, verbose_interval)
    if warm_start is not None:
        n_init = 1
    best = None
    for init in range(n_init):
        progress.init_begin(init)
        if warm_start is None:
            params = model.initial_params(data, random_state)
            lower_bound = -np.inf
        else:
            params, lower_bound = warm_start
        lower_bounds = []
        converged = False
        n_iter = 0
        for n_iter in range(1, max_iter + 1):
            previous = lower_bound
            stats = model.e_step(params, data)
            params = model.m_step(stats)
            lower_bound = stats.log_likelihood / stats.n_samples
            lower_bounds.append(lower_bound)
            change = lower_bound - previous
            progress.iteration(n_iter, change)
            if abs(change) < tol:
                converged = True
                break
        if max_iter == 0:
            lower_bound = -np.inf
        else:
            progress.init_end(lower_bound, converged)
        # As scikit-learn: with only -inf bounds (max_iter=0) the last start wins.
        if best is None or lower_bound > best.lower_bound or best.lower_bound == -np.inf:
            best = EMResult(params, lower_bound, lower_bounds, n_iter, converged)
    if not best.converged and max_iter > 0:
        warnings.warn(
            "Best performing initialization did not converge. Try different init "
            "parameters, or increase max_iter, tol, or check for degenerate data.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return best


class _Progress:
    """Per-iteration progress printing for ``verbose`` (the only printing place)."""

    def __init__(self, verbose, interval):
        self.verbose = verbose
        self.interval = interval

    def init_begin(self, init):
        if self.verbose:
            print(f"Initialization {init}")
            self.t_init = self.t_iter = time.perf_counter()

    def iteration(self, n_iter, change):
        if not self.verbose or n_iter % self.interval:
            return
        if self.verbose == 1:
            print(f"  Iteration {n_iter}")
        else:
            now = time.perf_counter()
            print(
                f"  Iteration {n_iter}\t time lapse {now - self.t_iter:.5f}s\t "
                f"ll change {change:.5f}"
            )
            self.t_iter = now

    def init_end(self, lower_bound, converged):
        if not self.verbose:
            return
        status = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {status}.")
        else:
            elapsed = time.perf_counter() - self.t_init
            print(
                f"Initialization {status}. time lapse {elapsed:.5f}s\t "
                f"lower bound {lower_bound:.5f}."
            )
