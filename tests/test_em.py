"""The EM loop alone (``em_sklearn._em.run_em``), driven by stub models.

The stubs know nothing about Gaussians (hmmlearn's ``StubHMM`` idea): one
replays a scripted sequence of log-likelihoods so that every decision of the
loop (stopping, best initialisation, warnings) can be predicted exactly; the
other moves a float towards a fixed point, a tiny but genuine EM-like map.
"""

import re
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from em_sklearn._em import EMResult, run_em

CONVERGENCE_MSG = "Best performing initialization did not converge"


@dataclass(frozen=True)
class StubStats:
    """What the loop reads from an E-step, plus the state the stub M-step needs."""

    log_likelihood: float
    n_samples: int
    state: tuple


class ScriptedModel:
    """A model whose mean log-likelihoods are scripted per initialisation.

    ``scripts[i]`` is the sequence of mean log-likelihoods seen by
    initialisation ``i``: the E-step of iteration ``t`` (1-based) returns
    ``scripts[i][t - 1]`` (the last value repeats). Parameters are the tuple
    ``(init, step)``; the M-step only advances ``step``. The E-step returns the
    *summed* log-likelihood over ``n_samples`` rows so that the loop's division
    by ``n_samples`` is exercised.
    """

    def __init__(self, scripts, n_samples=4):
        self.scripts = [list(s) for s in scripts]
        self.n_samples = n_samples
        self.n_initial_params_calls = 0
        self.random_states = []
        self.e_step_params = []

    def initial_params(self, data, random_state):
        self.random_states.append(random_state)
        init = self.n_initial_params_calls
        self.n_initial_params_calls += 1
        return (init, 0)

    def e_step(self, params, data):
        self.e_step_params.append(params)
        init, step = params
        script = self.scripts[init]
        mean_ll = script[min(step, len(script) - 1)]
        return StubStats(mean_ll * self.n_samples, self.n_samples, params)

    def m_step(self, stats):
        init, step = stats.state
        return (init, step + 1)

    def log_prior(self, params):
        return 0.0


class ContractionModel:
    """A float parameter pulled towards ``fixed_point`` by the M-step.

    ``theta <- fixed_point + rate * (theta - fixed_point)``; the mean
    log-likelihood at ``theta`` is ``level - (theta - fixed_point) ** 2``, so
    it increases monotonically to ``level``, as an EM lower bound does.
    Initial values are drawn from the shared random state.
    """

    def __init__(self, fixed_point=3.0, rate=0.5, level=-1.0, n_samples=10):
        self.fixed_point = fixed_point
        self.rate = rate
        self.level = level
        self.n_samples = n_samples
        self.n_initial_params_calls = 0

    def initial_params(self, data, random_state):
        self.n_initial_params_calls += 1
        return float(random_state.uniform(-10.0, 10.0))

    def e_step(self, params, data):
        mean_ll = self.level - (params - self.fixed_point) ** 2
        return StubStats(mean_ll * self.n_samples, self.n_samples, (params,))

    def m_step(self, stats):
        (theta,) = stats.state
        return self.fixed_point + self.rate * (theta - self.fixed_point)

    def log_prior(self, params):
        return 0.0

    # SQUAREM hooks.
    def flatten(self, params):
        return np.array([params])

    def unflatten(self, vector, like):
        return float(vector[0])


def _run(model, **kwargs):
    options = dict(n_init=1, max_iter=100, tol=1e-3, random_state=check_random_state(0))
    options.update(kwargs)
    return run_em(model, None, **options)


# Mean log-likelihoods whose successive changes are exact binary fractions:
# 4, 2, 1, 0.5, 0.25, 0.125, 0.0625.
DYADIC = [-8.0, -4.0, -2.0, -1.0, -0.5, -0.25, -0.125, -0.0625]


@pytest.mark.parametrize(
    "tol, expected_n_iter",
    [
        (3.0, 3),  # changes 4, 2: stops at the first change below 3
        (0.3, 6),  # first change below 0.3 is 0.25, at iteration 6
        (0.5, 6),  # change 0.5 (iteration 5) is not < 0.5: strict inequality
        (1e-3, 9),  # 0.0625 then a repeated value (change 0) stops at 9
        (0.0, 20),  # abs(change) < 0 never holds: runs to max_iter
    ],
)
def test_stops_at_first_change_below_tol(tol, expected_n_iter):
    """The loop stops at the first iteration whose abs(change) < tol, not before."""
    model = ScriptedModel([DYADIC])
    if expected_n_iter == 20:
        with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
            result = _run(model, tol=tol, max_iter=20)
    else:
        result = _run(model, tol=tol, max_iter=20)
    assert result.n_iter == expected_n_iter
    assert result.converged is (expected_n_iter < 20)
    # Each iteration runs exactly one E-step.
    assert len(model.e_step_params) == expected_n_iter
    expected_bounds = [DYADIC[min(t, len(DYADIC) - 1)] for t in range(expected_n_iter)]
    assert result.lower_bounds == expected_bounds
    assert result.lower_bound == expected_bounds[-1]


def test_lower_bound_is_from_e_step_before_m_step():
    """The lower bound of iteration t is the E-step at the parameters before that
    M-step, divided by n_samples.
    """
    model = ScriptedModel([DYADIC], n_samples=7)
    result = _run(model, tol=0.3, max_iter=20)
    # E-steps ran at steps 0..5; the returned parameters are after the 6th M-step.
    assert [p[1] for p in model.e_step_params] == list(range(6))
    assert result.params == (0, 6)
    # DYADIC values are exact binary fractions: 7 * v / 7 == v exactly.
    assert result.lower_bounds == DYADIC[:6]


def test_log_prior_is_added_once_per_iteration():
    """The objective is (log-likelihood + log-prior of the E-step's params) / n."""

    class PriorModel(ScriptedModel):
        def log_prior(self, params):
            return 10.0 * (1 + params[1])  # depends on the iteration's parameters

    model = PriorModel([[-3.0, -2.0, -1.5]], n_samples=5)
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        result = _run(model, max_iter=3, tol=0.0)
    expected = [(-3.0 * 5 + 10.0) / 5, (-2.0 * 5 + 20.0) / 5, (-1.5 * 5 + 30.0) / 5]
    assert result.lower_bounds == expected


def test_decreasing_likelihood_counts_as_converged():
    """Convergence uses abs(change), so a small decrease also stops the loop."""
    model = ScriptedModel([[-5.0, -1.0, -1.0001, -0.5]])
    result = _run(model, tol=1e-2, max_iter=10)
    assert result.converged is True
    assert result.n_iter == 3
    assert result.lower_bound == -1.0001


def test_first_iteration_never_converges_from_scratch():
    """From a fresh initialisation the first change is +inf, so even a huge tol needs
    two iterations.
    """
    model = ScriptedModel([[-1.0, -1.0]])
    result = _run(model, tol=1e300, max_iter=10)
    assert result.n_iter == 2
    assert result.converged is True


def test_best_initialisation_has_largest_lower_bound():
    """Among n_init starts the one with the largest final lower bound is returned, with
    its own n_iter and bounds.
    """
    scripts = [
        [-9.0, -5.0, -5.0],  # init 0: final -5, converges at iteration 3
        [-9.0, -3.0, -2.0, -2.0],  # init 1: final -2 (best), iteration 4
        [-9.0, -4.0, -4.0],  # init 2: final -4
    ]
    model = ScriptedModel(scripts)
    result = _run(model, n_init=3, tol=1e-6, max_iter=10)
    assert model.n_initial_params_calls == 3
    assert result.params == (1, 4)
    assert result.lower_bound == -2.0
    assert result.lower_bounds == [-9.0, -3.0, -2.0, -2.0]
    assert result.n_iter == 4
    assert result.converged is True


def test_converged_flag_is_the_best_initialisations():
    """converged is the best start's flag: False (with a warning) even if a worse start
    converged.
    """
    scripts = [
        [-9.0, -5.0, -5.0],  # converges, worse
        [-9.0, -4.0, -3.0, -2.0, -1.0, -0.5],  # best, still moving at max_iter
    ]
    model = ScriptedModel(scripts)
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        result = _run(model, n_init=2, tol=1e-6, max_iter=5)
    assert result.params[0] == 1
    assert result.converged is False
    assert result.n_iter == 5
    assert result.lower_bound == -1.0


def test_best_converged_start_gives_no_warning_when_others_did_not():
    """A non-converged worse start neither makes the result non-converged nor warns."""
    scripts = [
        [-9.0, -8.0, -7.0, -6.0, -5.5, -5.2],  # still moving at max_iter, worse
        [-9.0, -1.0, -1.0],  # converges, best
    ]
    model = ScriptedModel(scripts)
    result = _run(model, n_init=2, tol=1e-6, max_iter=5)  # warnings are errors
    assert result.params[0] == 1
    assert result.converged is True


def test_tie_keeps_the_earlier_initialisation():
    """On equal lower bounds the earlier start is kept (strict >), as in sklearn."""
    model = ScriptedModel([[-3.0, -1.0, -1.0], [-2.0, -1.0, -1.0]])
    result = _run(model, n_init=2, tol=1e-6, max_iter=10)
    assert result.params[0] == 0
    assert result.lower_bounds == [-3.0, -1.0, -1.0]


def test_one_random_state_shared_by_all_initialisations():
    """Every initialisation receives the same random-state object, made once by the
    caller.
    """
    model = ScriptedModel([[-1.0]] * 4)
    rng = check_random_state(0)
    run_em(model, None, n_init=4, max_iter=3, tol=1e-6, random_state=rng)
    assert len(model.random_states) == 4
    assert all(state is rng for state in model.random_states)


@pytest.mark.parametrize("n_init", [1, 3])
def test_max_iter_zero(n_init):
    """max_iter=0 runs no E-step, returns the last start's initial parameters, n_iter 0,
    lower bound -inf and no warning.
    """
    model = ScriptedModel([[-1.0]] * n_init)
    result = _run(model, n_init=n_init, max_iter=0)  # warnings are errors
    assert isinstance(result, EMResult)
    assert model.n_initial_params_calls == n_init
    assert model.e_step_params == []
    assert result.params == (n_init - 1, 0)
    assert result.n_iter == 0
    assert result.lower_bound == -np.inf
    assert result.lower_bounds == []
    assert result.converged is False


def test_warm_start_starts_once_from_given_params():
    """With warm_start the loop never initialises, runs once whatever n_init, and starts
    from the given parameters.
    """
    model = ScriptedModel([[-9.0, -3.0, -2.5, -2.5]])
    result = _run(model, n_init=5, tol=1e-6, max_iter=10, warm_start=((0, 1), -4.0))
    assert model.n_initial_params_calls == 0
    assert model.e_step_params[0] == (0, 1)
    assert result.lower_bounds == [-3.0, -2.5, -2.5]
    assert result.n_iter == 3
    assert result.converged is True


def test_warm_start_measures_first_change_from_given_lower_bound():
    """With warm_start the first change is against the given lower bound, so a converged
    fit stops after one iteration.
    """
    model = ScriptedModel([[-2.0, -2.0]])
    result = _run(model, tol=1e-6, max_iter=10, warm_start=((0, 0), -2.0))
    assert result.n_iter == 1
    assert result.converged is True


def test_warm_start_continues_a_cold_run():
    """Two warm runs of m and l iterations equal one cold run of m + l iterations."""
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        cold = _run(
            ContractionModel(), tol=0.0, max_iter=12, random_state=check_random_state(3)
        )
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        first = _run(
            ContractionModel(), tol=0.0, max_iter=5, random_state=check_random_state(3)
        )
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        second = _run(
            ContractionModel(),
            tol=0.0,
            max_iter=7,
            warm_start=(first.params, first.lower_bound),
        )
    # The same floating-point operations in the same order: exact equality.
    assert second.params == cold.params
    assert first.lower_bounds + second.lower_bounds == cold.lower_bounds


def test_contraction_model_converges_to_fixed_point(global_random_seed):
    """On a contraction the loop reaches the fixed point, the bound rises monotonically,
    and n_init>1 keeps one of the starts.
    """
    model = ContractionModel(fixed_point=3.0, rate=0.5, level=-1.0)
    rng = check_random_state(global_random_seed)
    result = run_em(model, None, n_init=3, max_iter=200, tol=1e-12, random_state=rng)
    assert model.n_initial_params_calls == 3
    assert result.converged is True
    # Stopping at |change| < 1e-12 means (theta - 3)^2 ~ 1e-12, i.e. |theta - 3|
    # <= 1e-6 up to the contraction factor.
    assert_allclose(result.params, 3.0, rtol=0, atol=1e-5)
    # The bound approaches its supremum -1 to within tol.
    assert_allclose(result.lower_bound, -1.0, rtol=0, atol=1e-10)
    assert np.all(np.diff(result.lower_bounds) >= 0)


def test_convergence_warning_text():
    """A non-converged best start warns with scikit-learn's ConvergenceWarning text,
    full sentence included.
    """
    model = ScriptedModel([DYADIC])
    msg = (
        "Best performing initialization did not converge. Try different init "
        "parameters, or increase max_iter, tol, or check for degenerate data."
    )
    with pytest.warns(ConvergenceWarning, match=re.escape(msg)) as record:
        _run(model, tol=1e-6, max_iter=3)
    assert len(record) == 1


def test_verbose_zero_prints_nothing(capsys):
    """verbose=0 is silent."""
    _run(ScriptedModel([DYADIC, DYADIC]), n_init=2, tol=0.3, max_iter=20)
    assert capsys.readouterr().out == ""


def test_verbose_one_output(capsys):
    """verbose=1 prints each start, every verbose_interval-th iteration and the final
    status.
    """
    model = ScriptedModel([DYADIC, [-1.0, -1.0]])
    _run(model, n_init=2, tol=0.3, max_iter=20, verbose=1, verbose_interval=2)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "Initialization 0",
        "  Iteration 2",
        "  Iteration 4",
        "  Iteration 6",
        "Initialization converged.",
        "Initialization 1",
        "  Iteration 2",
        "Initialization converged.",
    ]


def test_verbose_one_reports_non_convergence(capsys):
    """verbose=1 says when a start did not converge."""
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        _run(
            ScriptedModel([DYADIC]),
            tol=1e-6,
            max_iter=3,
            verbose=1,
            verbose_interval=10,
        )
    assert capsys.readouterr().out.splitlines() == [
        "Initialization 0",
        "Initialization did not converge.",
    ]


def test_verbose_two_output(capsys):
    """verbose=2 adds timings, log-likelihood changes and the final lower bound."""
    _run(ScriptedModel([DYADIC]), tol=0.3, max_iter=20, verbose=2, verbose_interval=3)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4
    assert out[0] == "Initialization 0"
    number = r"-?\d+\.\d{5}"
    # Iteration 3: change -2 - (-4) = 2; iteration 6: -0.25 - (-0.5) = 0.25.
    assert re.fullmatch(
        rf"  Iteration 3\t time lapse {number}s\t ll change 2\.00000", out[1]
    )
    assert re.fullmatch(
        rf"  Iteration 6\t time lapse {number}s\t ll change 0\.25000", out[2]
    )
    assert re.fullmatch(
        rf"Initialization converged\. time lapse {number}s\t lower bound -0\.25000\.",
        out[3],
    )


def test_verbose_with_max_iter_zero(capsys):
    """With max_iter=0 verbose output announces each start and nothing else."""
    _run(ScriptedModel([[-1.0]] * 2), n_init=2, max_iter=0, verbose=2)
    assert capsys.readouterr().out.splitlines() == [
        "Initialization 0",
        "Initialization 1",
    ]


def test_squarem_reaches_fixed_point_in_fewer_e_steps(global_random_seed):
    """accelerate='squarem' reaches the same fixed point with a non-decreasing bound and
    fewer E-steps than plain EM.
    """
    rng_seed = global_random_seed
    with pytest.warns(ConvergenceWarning, match=CONVERGENCE_MSG):
        # Plain EM halves the distance per step: 10 steps are not enough.
        _run(
            ContractionModel(),
            tol=1e-12,
            max_iter=10,
            random_state=check_random_state(rng_seed),
        )
    plain = _run(
        ContractionModel(),
        tol=1e-12,
        max_iter=200,
        random_state=check_random_state(rng_seed),
    )
    fast = run_em(
        ContractionModel(),
        None,
        n_init=1,
        max_iter=10,
        tol=1e-12,
        random_state=check_random_state(rng_seed),
        accelerate="squarem",
    )
    # On a linear contraction one SQUAREM extrapolation lands on the fixed
    # point up to rounding.
    assert fast.converged is True
    assert fast.n_iter < plain.n_iter
    assert_allclose(fast.params, 3.0, rtol=0, atol=1e-6)
    assert_allclose(fast.lower_bound, plain.lower_bound, rtol=0, atol=1e-10)
    assert np.all(np.diff(fast.lower_bounds) >= 0)
