"""THE EM loop: restarts, warm start, convergence, SQUAREM, progress. Knows no model.

A model plugs in through the hooks of :class:`EMModel` (pmtk3's and hmmlearn's
contract): initial parameters, an E-step returning additive statistics
(:class:`Statistics`), an M-step from statistics alone (no data), and the log
prior density of the parameters (0 for maximum likelihood), computed once per
iteration outside the statistics. What EM increases is the objective
``(stats.log_likelihood + model.log_prior(params)) / stats.n_samples``.

The order of operations is scikit-learn's ``BaseMixture.fit_predict``: E-step
at the current parameters, M-step, lower bound from that E-step, stop when
``abs(change) < tol``; the best initialisation is the one with the largest
lower bound, and ``converged`` is that initialisation's flag.
"""

import time
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.exceptions import ConvergenceWarning


class Statistics(Protocol):
    """What an E-step returns: sums over rows that add (``a + b``) over blocks."""

    log_likelihood: float  # observed-data log-likelihood at the E-step's parameters
    n_samples: float  # number of rows (sum of their weights) summed

    def __add__(self, other): ...


class EMModel(Protocol):
    """The hooks the loop calls (``_mixture.MixtureModel`` implements them)."""

    def initial_params(self, data, random_state):
        """Return initial parameters (one call per initialisation)."""

    def e_step(self, params, data) -> Statistics:
        """Return the expected sufficient statistics of ``data`` at ``params``."""

    def m_step(self, stats):
        """Return the parameters that maximise the expected objective."""

    def log_prior(self, params) -> float:
        """Return the log prior density of ``params`` (0 without a prior)."""

    def flatten(self, params):
        """Return ``params`` as one vector (SQUAREM only)."""

    def unflatten(self, vector, like):
        """Rebuild parameters shaped as ``like`` (SQUAREM only).

        Raises ValueError for a vector that is not a valid parameter, e.g. a
        covariance that is not positive definite.
        """


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
    accelerate=None,
    verbose=0,
    verbose_interval=10,
):
    """Fit ``model`` to ``data`` by EM, keeping the best of ``n_init`` starts.

    Parameters
    ----------
    model : EMModel
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
    accelerate : {None, 'squarem'}, default=None
        None: plain EM. 'squarem': SQUAREM extrapolation (see
        :func:`_iterate`); every iteration is still one E-step.
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
        params, lower_bound, lower_bounds, n_iter, converged = _iterate(
            model, data, params, lower_bound, max_iter, tol, accelerate, progress
        )
        if max_iter == 0:
            lower_bound = -np.inf
        else:
            progress.init_end(lower_bound, converged)
        # As scikit-learn: with only -inf bounds (max_iter=0) the last start wins.
        if (
            best is None
            or lower_bound > best.lower_bound
            or best.lower_bound == -np.inf
        ):
            best = EMResult(params, lower_bound, lower_bounds, n_iter, converged)
    if not best.converged and max_iter > 0:
        warnings.warn(
            "Best performing initialization did not converge. Try different init "
            "parameters, or increase max_iter, tol, or check for degenerate data.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return best


def _iterate(model, data, params, lower_bound, max_iter, tol, accelerate, progress):
    """Run EM iterations from ``params`` until convergence or ``max_iter`` E-steps.

    With ``accelerate='squarem'`` (Varadhan & Roland, 2008, scheme SqS3), two
    EM updates ``t0 -> t1 -> t2`` give ``r = t1 - t0`` and
    ``v = t2 - 2 t1 + t0``; the extrapolated point is
    ``t' = t0 + 2 a r + a^2 v`` with ``a = |r| / |v|`` clipped to
    ``[1, step_max]`` (``a = 1`` gives ``t2``). The next E-step evaluates
    ``t'``: if its log-likelihood is below that of ``t1`` the point is rejected
    and EM goes on from ``t2``; otherwise ``t'`` starts the next cycle (its
    M-step is the stabilising EM update). As in the R package SQUAREM,
    ``step_max`` starts at 1, is multiplied by 4 each time the step reaches
    it and divided by 4 after a rejection. An invalid ``t'`` (a weight not
    positive, a covariance not positive definite) halves the step towards
    ``t2``. Every recorded
    log-likelihood is therefore at least the one before it.

    Returns
    -------
    params, lower_bound, lower_bounds, n_iter, converged
    """
    lower_bounds = []
    stage, theta0, fallback, step_max, step = 0, None, None, 1.0, 1.0
    for n_iter in range(1, max_iter + 1):
        stats = model.e_step(params, data)
        current = (stats.log_likelihood + model.log_prior(params)) / stats.n_samples
        if stage == 2 and not current >= lower_bound:
            # The extrapolated point lost likelihood: fall back to plain EM.
            params, stage = fallback, 0
            step_max = max(1.0, step_max / 4.0)
            continue
        change = current - lower_bound
        lower_bound = current
        lower_bounds.append(current)
        progress.iteration(n_iter, change)
        updated = model.m_step(stats)
        if abs(change) < tol:
            return updated, lower_bound, lower_bounds, n_iter, True
        if accelerate == "squarem":
            if stage != 1:
                # A new cycle starts here; an accepted extrapolated point is its
                # t0, so the E-step that checked it is not wasted.
                theta0, stage = params, 1
            else:
                stage = 0
                proposal, step = _squarem_proposal(
                    model, theta0, params, updated, step_max
                )
                if step >= step_max:
                    step_max *= 4.0
                if proposal is not None:
                    params, fallback, stage = proposal, updated, 2
                    continue
        params = updated
    if stage == 2:
        params = fallback
    return params, lower_bound, lower_bounds, max_iter, False


def _squarem_proposal(model, theta0, theta1, theta2, step_max, max_halvings=5):
    """Extrapolate three successive EM iterates (SqS3).

    Returns
    -------
    proposal : params or None
        None when the step is 1 (the proposal would be ``theta2``) or no valid
        point was found.
    step : float
        The step length used.
    """
    x0, x1, x2 = model.flatten(theta0), model.flatten(theta1), model.flatten(theta2)
    r = x1 - x0
    v = x2 - x1 - r
    norm_v = np.linalg.norm(v)
    if not norm_v > 0:
        return None, 1.0
    step = min(np.linalg.norm(r) / norm_v, step_max)
    for _ in range(max_halvings):
        if step <= 1.0:
            return None, 1.0
        try:
            return model.unflatten(x0 + 2 * step * r + step**2 * v, like=theta0), step
        except ValueError:
            step = (step + 1.0) / 2.0
    return None, step


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
