"""Streaming fits: ``partial_fit`` by online EM (Cappé & Moulines, 2009).

Each call of ``partial_fit`` is one step on one batch of rows (DESIGN §8).
The E-step of the batch at the current parameters gives its statistics per
unit of weight, ``sbar_t`` (``MixtureStats`` summed over the batch's rows and
divided by their total weight); the running statistics move towards them,

    s_t = s_{t-1} + gamma_t (sbar_t - s_{t-1}),    gamma_t = t ** -alpha,

with ``alpha = learning_decay`` in (1/2, 1]: Cappé & Moulines' schedule
``(t + t0) ** -alpha`` with ``t0 = 0``, so that ``gamma_1 = 1`` and the stream
starts at the first batch's statistics (no initial statistics are needed).
``sum gamma_t = inf`` and ``sum gamma_t ** 2 < inf``, the conditions of their
convergence result; ``alpha = 1`` gives the plain mean of the batches'
statistics. The parameters of the next E-step are the M-step of ``N s_t``,
``N`` the weight of the rows seen (so that a prior weighs against as many
rows as the stream has seen).

The fitted parameters (the estimator's attributes) are the M-step of the
running statistics averaged over the steps with weights proportional to
``t``, ``a_t = a_{t-1} + 2 / (t + 1) (s_t - a_{t-1})``: Polyak-Ruppert
averaging, which Cappé & Moulines pair with ``alpha < 1``, in the
polynomial-decay form of Shamir & Zhang (2013), which forgets the early
steps. Measured on 100 streams of 150 batches of 200 rows of a 3-component
mixture with 20% missing (the long-stream test of ``tests/test_online.py``,
seeds 0-99), the averaged fit's means are within 0.46 standard errors (root
mean square; median over streams, at most 0.80) of the batch
maximum-likelihood fit on all the rows, against 1.50 (at most 2.66) for the
last iterate, and it loses 2.4 (at most 4.8) in total log-likelihood against
it, where the batch fit's own error costs it about ``p / 2 = 14.5`` against
the truth. ``alpha = 0.6`` did best with averaging (0.7 without).

The first step does not update the parameters, as Cappé & Moulines advise
against M-steps from the first few rows: it only starts the running
statistics, at parameters fitted to the first batch as ``fit`` does
(initialisation, then EM to convergence; the standardisation, the features
kept and a default prior's hyperparameters are taken from that batch), or at
the fitted parameters when ``fit`` came before. Fitting the first batch to
convergence (best of ``n_init`` starts) rather than starting the stream at
k-means matters: one E-step per batch moves the parameters too little to
leave a poor start. With ``n_components='auto'`` the first batch chooses the
number of components.

The Gaussian statistics are moments about reference means (the E-step's
means, ``GaussianStats``): the running and averaged statistics are
re-centred (:func:`~em_sklearn._gaussian._stats.recentre`) about the batch's
means before they are combined.
"""

from dataclasses import dataclass, replace

from ._array_api import informative_rows, keep_rows
from ._categorical import CategoricalStats
from ._gaussian import GaussianStats
from ._gaussian._stats import recentre
from ._mixture import MixtureStats
from ._parallel import close
from ._product import ProductStats
from ._threads import single_blas_thread


@dataclass(frozen=True)
class OnlineState:
    """Where a stream of ``partial_fit`` calls stands.

    Frozen: each call makes a new one, so that a failed call leaves the
    estimator's state as it was (``_BaseEM._unchanged_on_failure``).

    Attributes
    ----------
    model : MixtureModel
        Built at the stream's first call (a default prior from that batch).
    params : MixtureParams
        The fitted (averaged) parameters, in the model's units: the object
        the estimator's ``_model_params`` is (a ``fit`` since the last call
        replaces it, and the next call starts a new stream).
    working : MixtureParams
        The parameters of the next E-step, ``m_step(N s_t)``.
    stats : MixtureStats
        The running statistics ``s_t`` per unit of weight (``n_samples`` 1).
    average : MixtureStats
        Their weighted average ``a_t``, likewise.
    total_weight : float
        Weight of the informative rows seen (their number when unweighted).
    n_steps : int
        Steps taken (batches with at least one informative row).
    """

    model: object
    params: object
    working: object
    stats: MixtureStats
    average: MixtureStats
    total_weight: float
    n_steps: int


def step_size(t, decay):
    """Return the step size ``gamma_t = t ** -decay`` (1 at the first step)."""
    return float(t) ** -decay


def online_update(running, batch, gamma):
    """One step of the running statistics towards a batch's (per unit of weight).

    Parameters
    ----------
    running : MixtureStats or None
        The running statistics per unit of weight; None at the first step.
    batch : MixtureStats
        A batch's E-step statistics (sums over its rows, ``n_samples`` > 0).
    gamma : float
        The step size, in (0, 1].

    Returns
    -------
    running : MixtureStats
        ``running + gamma * (batch / batch.n_samples - running)``, about the
        batch's reference means; ``n_samples`` is 1.
    """
    batch = _per_unit(batch)
    if running is None or gamma == 1.0:
        return batch
    return _combine(running, batch, gamma)


def total_statistics(running, total_weight):
    """Return statistics per unit of weight as sums over ``total_weight`` rows."""
    return MixtureStats(
        nk=running.nk * total_weight,
        components=_scaled(running.components, total_weight),
        log_likelihood=running.log_likelihood * total_weight,
        n_samples=total_weight,
    )


def _per_unit(stats):
    return MixtureStats(
        nk=stats.nk / stats.n_samples,
        components=_scaled(stats.components, 1.0 / stats.n_samples),
        log_likelihood=stats.log_likelihood / stats.n_samples,
        n_samples=1.0,
    )


def _combine(old, new, gamma):
    """``(1 - gamma) old + gamma new`` (per unit of weight), about ``new``'s means."""
    components = _recentred(old.components, old.nk, new.components)
    return MixtureStats(
        nk=(1.0 - gamma) * old.nk + gamma * new.nk,
        components=_scaled(components, 1.0 - gamma) + _scaled(new.components, gamma),
        log_likelihood=(1.0 - gamma) * old.log_likelihood + gamma * new.log_likelihood,
        n_samples=1.0,
    )


def _scaled(stats, factor):
    """Multiply a family's additive statistics by ``factor`` (references kept)."""
    if isinstance(stats, GaussianStats):
        return replace(stats, s1=stats.s1 * factor, s2=stats.s2 * factor)
    if isinstance(stats, CategoricalStats):
        return CategoricalStats(tuple(c * factor for c in stats.counts))
    if isinstance(stats, ProductStats):
        return ProductStats(tuple(_scaled(part, factor) for part in stats.parts))
    raise TypeError(
        f"Online EM cannot rescale statistics of type {type(stats).__name__}."
    )


def _recentred(stats, nk, like):
    """Express a family's statistics about the reference means of ``like``'s."""
    if isinstance(stats, GaussianStats):
        return recentre(stats, nk, like.ref)
    if isinstance(stats, ProductStats):
        return ProductStats(
            tuple(
                _recentred(part, nk, other)
                for part, other in zip(stats.parts, like.parts, strict=True)
            )
        )
    return stats  # counts (categorical) have no reference


def partial_fit_model(estimator, X, sample_weight=None):
    """Take one online-EM step of ``estimator`` on a batch and set its attributes.

    Sets the parameters' attributes (``weights_``, ``means_``, ...),
    ``prior_``, ``n_components_``, ``lower_bound_``, ``n_steps_`` and
    ``n_samples_seen_``.

    Parameters
    ----------
    estimator : _BaseEM
        Its hooks prepare the rows, build the model and map parameters to
        attributes, as in ``fit``; ``learning_decay`` sets the step sizes.
    X : ndarray of shape (n_samples, n_features)
        The batch, validated and in the model's columns (NaN for missing).
    sample_weight : ndarray of shape (n_samples,) or None, default=None
        Checked row weights.

    Raises
    ------
    ValueError
        When a stream starts on fewer rows with an observed value (and a
        positive weight) than ``n_components``.
    """
    n_rows = X.shape[0]
    X, sample_weight = keep_rows(
        X, sample_weight, informative_rows(X, sample_weight)
    )
    state = _stream_of(estimator)
    if state is None:
        fewest = getattr(estimator, "_min_components", None)  # n_components='auto'
        n_components = estimator.n_components if fewest is None else fewest()
        if X.shape[0] < n_components:
            weighted = "" if sample_weight is None else " and a positive sample_weight"
            raise ValueError(
                f"Expected at least n_components rows with an observed value{weighted} "
                "in the first batch of partial_fit but got n_components = "
                f"{n_components}, rows with an observed value{weighted} = "
                f"{X.shape[0]}. Pass a larger first batch or reduce n_components."
            )
        model, working, std, data = _start(estimator, X, sample_weight)
        params, state = working, OnlineState(model, None, working, None, None, 0.0, 0)
        n_seen = 0
    else:
        if estimator.n_components not in ("auto", state.params.n_components):
            raise ValueError(
                "partial_fit continues a stream whose n_components is "
                f"{state.params.n_components!r}; got {estimator.n_components!r}. "
                "Call fit, or partial_fit on a clone, to start afresh."
            )
        n_seen = estimator.n_samples_seen_
        if not X.shape[0]:
            estimator.n_samples_seen_ = n_seen + n_rows
            return  # nothing observed: no step
        model, working, params = state.model, state.working, state.params
        std = estimator._standardization
        data = estimator._prepare(
            X if std is None else std.standardize(X), sample_weight
        )
    try:
        with single_blas_thread():
            batch = model.e_step(working, data)
        offset = 0.0 if std is None else std.objective_offset(
            data, model.n_components, with_prior=False
        )
    finally:
        close(data)
    t = state.n_steps + 1
    running = online_update(
        state.stats, batch, step_size(t, estimator.learning_decay)
    )
    average = online_update(state.average, total_statistics(running, 1.0), 2 / (t + 1))
    total_weight = state.total_weight + batch.n_samples
    if t > 1:  # the first step only starts the statistics (see the module)
        with single_blas_thread():
            working = model.m_step(total_statistics(running, total_weight))
            params = model.m_step(total_statistics(average, total_weight))
    params_out, prior_ = params, estimator._prior_attribute(model)
    if std is not None:
        params_out = std.params_to_original(params)
        prior_ = std.prior_to_original(prior_)
    for name, value in model.attributes(params_out).items():
        setattr(estimator, name, value)
    estimator._model_params = params
    estimator._standardization = std
    estimator.prior_ = prior_
    estimator.n_components_ = model.n_components
    estimator.lower_bound_ = batch.log_likelihood / batch.n_samples - offset
    estimator.n_steps_ = t
    estimator.n_samples_seen_ = n_seen + n_rows
    estimator._online_state = OnlineState(
        model, params, working, running, average, total_weight, t
    )


def _stream_of(estimator):
    """The estimator's stream, or None when the next call starts one.

    A stream starts at the first call and at the first call after ``fit``
    (which replaces ``_model_params``, the object the stream's ``params`` is).
    """
    state = getattr(estimator, "_online_state", None)
    if state is None or state.params is not getattr(estimator, "_model_params", None):
        return None
    return state


def _start(estimator, X, sample_weight):
    """Start a stream on its first batch: parameters, model and prepared rows.

    A new estimator is first fitted to the batch as ``fit`` does
    (``_BaseEM._fit_model``: initialisation, EM to convergence, the
    standardisation and a default prior's hyperparameters from the batch);
    after ``fit`` the stream starts from the fitted parameters instead. The
    model is rebuilt with the fit's prior hyperparameters (``prior_``).

    Returns
    -------
    model, params, std, data
        ``data`` is the batch prepared (and standardised): the caller closes it.
    """
    if getattr(estimator, "_model_params", None) is None:
        data = estimator._fit_model(X, sample_weight)  # in model units
        std = estimator._standardization
    else:
        std = estimator._standardization
        data = estimator._prepare(
            X if std is None else std.standardize(X), sample_weight
        )
    try:
        prior = estimator.prior_
        values = {"prior": None if prior is None else dict(prior)}
        if std is not None:
            values = std.values_to_model(values)
        with single_blas_thread():
            model = estimator._build_model(data, **values)
    except BaseException:
        close(data)
        raise
    return model, estimator._model_params, std, data
