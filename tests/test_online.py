"""partial_fit: online EM over batches of rows (Cappé & Moulines 2009)."""

import pickle
import re
import warnings

import numpy as np
import pytest
from _helpers import init_values
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from em_sklearn import EMClusterer, EMImputer
from em_sklearn._gaussian import COVARIANCE_TYPES, GaussianStats
from em_sklearn._gaussian._stats import recentre
from em_sklearn._online import online_update, step_size, total_statistics

ESTIMATORS = [EMClusterer, EMImputer]

# The true mixture of the stream tests: three well-separated components.
MEANS = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [0.0, 4.0, 4.0]])
CHOL = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [-0.3, 0.2, 0.8]])
WEIGHTS = np.array([0.5, 0.3, 0.2])


def _ids(cls):
    return cls.__name__


def _stream(seed, n_batches, batch_rows, missing=0.2):
    """Rows of the true mixture with MCAR holes, as batches and all together.

    Every row keeps an observed entry, so that batches of equal size have
    equal weight (rows with nothing observed are left out of the fit).
    """
    rng = np.random.default_rng(seed)
    n_samples = n_batches * batch_rows
    z = rng.choice(3, size=n_samples, p=WEIGHTS)
    X = MEANS[z] + rng.normal(size=(n_samples, 3)) @ CHOL.T
    holes = rng.random(X.shape) < missing
    holes[holes.all(axis=1), 0] = False
    X[holes] = np.nan
    return np.split(X, n_batches), X


def _order(means):
    """Components in a fixed order (the true means differ in x0 + 10 x2)."""
    return np.argsort(means[:, 0] + 10.0 * means[:, 2])


# -- the running statistics ----------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_running_statistics_with_one_over_t_equal_one_e_step(
    covariance_type, global_random_seed
):
    """With gamma_t = 1/t and no M-step between them, the running statistics of
    equal batches are the E-step of their concatenation (to 1e-10)."""
    batches, X = _stream(global_random_seed, n_batches=7, batch_rows=60)
    est = EMClusterer(3, covariance_type=covariance_type, random_state=0).fit(X)
    model, params = est._model(), est._model_params
    running = None
    for t, batch in enumerate(batches, start=1):
        stats = model.e_step(params, model.prepare(batch))
        running = online_update(running, stats, step_size(t, 1.0))
    streamed = total_statistics(running, X.shape[0])
    whole = model.e_step(params, model.prepare(X))
    # Sums of the same terms in another order and scaled by 1/n then n: rounding.
    for got, want in [
        (streamed.nk, whole.nk),
        (streamed.components.s1, whole.components.s1),
        (streamed.components.s2, whole.components.s2),
        (streamed.log_likelihood, whole.log_likelihood),
    ]:
        assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_recentred_statistics_equal_moments_about_the_new_reference(
    covariance_type, global_random_seed
):
    """Re-centring moments taken about one reference gives the moments about
    another, and leaves the M-step unchanged."""
    rng = np.random.default_rng(global_random_seed)
    X = rng.normal(size=(50, 3)) * 3.0 + 10.0
    resp = rng.dirichlet(np.ones(2), size=50)  # (50, 2)
    nk = resp.sum(axis=0)
    old, new = rng.normal(size=(2, 3)) + 10.0, rng.normal(size=(2, 3)) + 10.0

    def moments(ref):
        s1 = np.stack([resp[:, k] @ (X - ref[k]) for k in range(2)])
        dev = X[None] - ref[:, None]  # (2, 50, 3)
        s2 = np.einsum("kn,kni,knj->kij", resp.T, dev, dev)
        if covariance_type in ("diag", "spherical"):
            s2 = np.einsum("kii->ki", s2)
        return GaussianStats(s1=s1, s2=s2, ref=ref)

    got = recentre(moments(old), nk, new)
    want = moments(new)
    assert got.ref is new
    # Exact algebra; rounding of sums of terms of size ~100.
    assert_allclose(got.s1, want.s1, rtol=1e-12, atol=1e-10)
    assert_allclose(got.s2, want.s2, rtol=1e-12, atol=1e-10)


def test_step_size_schedule():
    """gamma_t = t^-alpha: 1 at the first step, 1/t with alpha = 1."""
    assert step_size(1, 0.6) == 1.0
    assert_allclose(step_size(10, 1.0), 0.1, rtol=1e-15)
    assert_allclose(step_size(4, 0.5), 0.5, rtol=1e-15)


# -- the estimators --------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_two_calls_are_one_em_iteration_on_both_batches(
    covariance_type, global_random_seed
):
    """The first call fits its batch as fit does; with learning_decay=1 the
    next E-step runs at one batch-EM iteration on both batches from there."""
    (b1, b2, b3), _ = _stream(global_random_seed, n_batches=3, batch_rows=200)
    settings = {"covariance_type": covariance_type, "random_state": 0}
    first = EMClusterer(2, **settings).fit(b1)
    est = EMClusterer(2, learning_decay=1.0, **settings).partial_fit(b1)
    assert_array_equal(est.means_, first.means_)
    assert (est.n_iter_, est.converged_) == (first.n_iter_, first.converged_)
    est.partial_fit(b2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one iteration does not converge
        batch = EMClusterer(
            2,
            covariance_type=covariance_type,
            max_iter=1,
            weights_init=first.weights_,
            means_init=first.means_,
            precisions_init=first.precisions_,
        ).fit(np.vstack([b1, b2]))
    working = est._online_state.working.components
    # The same sums, in another order and scaled by 1/n then n.
    assert_allclose(working.means, batch.means_, rtol=1e-10, atol=1e-10)
    assert_allclose(working.covariances, batch.covariances_, rtol=1e-10, atol=1e-10)
    # The third call's lower bound is b3's log-likelihood at those parameters.
    est.partial_fit(b3)
    assert_allclose(est.lower_bound_, batch.score(b3), rtol=1e-10)


def test_long_stream_reaches_the_batch_maximum_likelihood_fit(global_random_seed):
    """On a long stream the fitted means are within sampling error of the batch
    maximum-likelihood fit on all the rows, and so is its log-likelihood."""
    batches, X = _stream(global_random_seed, n_batches=150, batch_rows=200)
    # n_init=3: with one start, EM stays at a local maximum for some seeds
    # (two components on one cluster), in the batch fit as on the first batch.
    ref = EMClusterer(3, tol=1e-10, max_iter=2000, n_init=3, random_state=0).fit(X)
    est = EMClusterer(3, n_init=3, random_state=0)
    for batch in batches:
        est.partial_fit(batch)
    assert est.n_steps_ == 150 and est.n_samples_seen_ == X.shape[0]
    o, r = _order(est.means_), _order(ref.means_)
    # Standard errors of the ML means (ignoring the information lost to holes,
    # which makes the true ones larger).
    se = np.sqrt(
        ref.covariances_[r].diagonal(axis1=1, axis2=2)
        / (X.shape[0] * ref.weights_[r][:, None])
    )
    z = (est.means_[o] - ref.means_[r]) / se
    # Measured over seeds 0-99: at most 1.75 (root mean square 0.12-0.80).
    assert np.abs(z).max() < 3.0
    # The ML fit's own error costs it chi2(p) / 2 (p/2 on average) in
    # log-likelihood against the truth; the stream must lose less than that
    # against the ML fit (measured over seeds 0-99: 1.3-4.8, p/2 = 14.5).
    gap = (ref.score(X) - est.score(X)) * X.shape[0]
    n_parameters = ref._n_parameters()
    assert -1e-6 < gap < n_parameters / 2


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_imputer_streams_in_original_units(Estimator, global_random_seed):
    """Columns on very different scales: with reg_covar=0, EM is affine
    equivariant, so the imputer (standardised) and the clusterer (raw) streams
    give the same fitted attributes after every call."""
    batches, _ = _stream(global_random_seed, n_batches=5, batch_rows=100)
    scale, shift = np.array([1e-3, 1.0, 1e4]), np.array([5.0, -1e3, 1e6])
    clusterer = EMClusterer(reg_covar=0.0)
    imputer = EMImputer(reg_covar=0.0)
    for batch in batches:
        batch = batch * scale + shift
        clusterer.partial_fit(batch)
        imputer.partial_fit(batch)
        # Standardising and back: rounding relative to the entries' size.
        assert_allclose(imputer.means_, clusterer.means_, rtol=1e-10)
        assert_allclose(
            imputer.covariances_,
            clusterer.covariances_,
            rtol=1e-8,
            atol=1e-10 * np.abs(clusterer.covariances_).max(),
        )
        assert_allclose(imputer.lower_bound_, clusterer.lower_bound_, rtol=1e-10)
    X_new = batches[0] * scale + shift
    filled = imputer.transform(X_new)
    assert not np.isnan(filled).any()
    assert_array_equal(filled[~np.isnan(X_new)], X_new[~np.isnan(X_new)])


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_integer_weights_equal_repeated_rows(Estimator, global_random_seed):
    """A row of weight w in a batch counts as w copies of itself."""
    batches, _ = _stream(global_random_seed, n_batches=4, batch_rows=80)
    rng = np.random.default_rng(global_random_seed)
    weighted, repeated = Estimator(2, random_state=0), Estimator(2, random_state=0)
    init = init_values(Estimator, batches[0], "full")
    weighted.set_params(**init)
    repeated.set_params(**init)
    for batch in batches:
        w = rng.integers(0, 3, size=len(batch))
        w[0] = 1  # every batch has a row to fit
        weighted.partial_fit(batch, sample_weight=w)
        repeated.partial_fit(np.repeat(batch, w, axis=0))
    # The same sums in another order.
    assert_allclose(weighted.means_, repeated.means_, rtol=1e-10, atol=1e-10)
    assert_allclose(
        weighted.covariances_, repeated.covariances_, rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_stream_attributes_and_feature_checks(Estimator):
    """The first call initialises and sets n_features_in_; later calls check
    the features, count rows, and skip batches with nothing observed."""
    batches, _ = _stream(0, n_batches=3, batch_rows=50)
    est = Estimator(2, random_state=0).partial_fit(batches[0])
    assert (est.n_steps_, est.n_samples_seen_, est.n_features_in_) == (1, 50, 3)
    est.partial_fit(batches[1])
    assert (est.n_steps_, est.n_samples_seen_) == (2, 100)
    means = est.means_.copy()
    est.partial_fit(np.full((4, 3), np.nan))
    assert (est.n_steps_, est.n_samples_seen_) == (2, 104)
    assert_array_equal(est.means_, means)
    with pytest.raises(ValueError, match="X has 2 features"):
        est.partial_fit(batches[2][:, :2])
    assert (est.n_steps_, est.n_samples_seen_) == (2, 104)  # unchanged
    est.partial_fit(batches[2])
    assert est.n_steps_ == 3
    assert est.score(batches[2]) == pytest.approx(est.score_samples(batches[2]).mean())


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_first_batch_needs_n_components_observed_rows(Estimator):
    """A first batch with fewer informative rows than components is refused."""
    X = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, np.nan]])
    msg = (
        "Expected at least n_components rows with an observed value in the first "
        "batch of partial_fit but got n_components = 3, rows with an observed "
        "value = 2. Pass a larger first batch or reduce n_components."
    )
    est = Estimator(3)
    with pytest.raises(ValueError, match=re.escape(msg)):
        est.partial_fit(X)
    assert not hasattr(est, "n_features_in_")


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_partial_fit_after_fit_starts_from_the_fitted_parameters(Estimator):
    """After fit, partial_fit starts a new stream from the fitted parameters;
    a later fit starts afresh again."""
    batches, X = _stream(1, n_batches=3, batch_rows=100)
    est = Estimator(2, random_state=0).fit(X)
    fitted = est.means_.copy()
    est.partial_fit(batches[0])
    assert est.n_steps_ == 1
    assert_allclose(est.means_, fitted, rtol=1e-12)  # no M-step at the first step
    est.partial_fit(batches[1])
    assert est.n_steps_ == 2
    assert not np.allclose(est.means_, fitted, rtol=1e-12)
    est.fit(X)
    est.partial_fit(batches[2])
    assert est.n_steps_ == 1


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=_ids)
def test_pickled_stream_continues_identically(Estimator):
    """An estimator pickled mid-stream continues exactly as the original."""
    batches, _ = _stream(2, n_batches=4, batch_rows=100)
    est = Estimator(2, random_state=0)
    for batch in batches[:2]:
        est.partial_fit(batch)
    copy = pickle.loads(pickle.dumps(est))
    for batch in batches[2:]:
        est.partial_fit(batch)
        copy.partial_fit(batch)
    assert copy.n_steps_ == 4
    assert_array_equal(copy.means_, est.means_)
    assert_array_equal(copy.covariances_, est.covariances_)
    assert not hasattr(clone(est), "n_steps_")


def test_partial_fit_parameter_checks():
    """learning_decay must lie in (0.5, 1]; the number of components is fixed
    by the first batch (n_components='auto': chosen on it)."""
    batches, X = _stream(0, n_batches=2, batch_rows=100)
    for decay in (0.5, 1.5):
        with pytest.raises(InvalidParameterError, match="learning_decay"):
            EMClusterer(learning_decay=decay).partial_fit(X)
    est = EMImputer(n_components="auto", random_state=0).partial_fit(batches[0])
    assert est.means_.shape == (est.n_components_, 3)
    est.partial_fit(batches[1])
    est.set_params(n_components=est.n_components_ + 1)
    msg = (
        f"partial_fit continues a stream whose n_components is "
        f"{est.n_components_}; got {est.n_components_ + 1}. Call fit, or "
        "partial_fit on a clone, to start afresh."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        est.partial_fit(batches[1])


def test_imputer_first_batch_fixes_empty_features_and_indicator():
    """Features with nothing observed in the first batch are dropped for the
    whole stream (with a warning); the indicator's features come from it."""
    batches, _ = _stream(3, n_batches=2, batch_rows=50)
    first = batches[0].copy()
    first[:, 2] = np.nan
    imputer = EMImputer(add_indicator=True)
    with pytest.warns(UserWarning, match="in the first batch: \\['x2'\\]"):
        imputer.partial_fit(first)
    imputer.partial_fit(batches[1])
    assert imputer.means_.shape == (1, 2)
    out = imputer.transform(batches[1])
    assert out.shape == (50, 2 + 3)  # kept features, then one indicator per column


def test_partial_fit_under_dask_ml_incremental():
    """dask_ml.wrappers.Incremental feeds the blocks of a dask array to
    partial_fit: the same fit as calling partial_fit on them in order."""
    pytest.importorskip("dask_ml", reason="dask-ml is not installed")
    import dask
    import dask.array as da
    from dask_ml.wrappers import Incremental

    batches, X = _stream(4, n_batches=6, batch_rows=100)
    X_dask = da.from_array(X, chunks=(100, 3))
    with dask.config.set(scheduler="threads"):
        wrapped = Incremental(EMClusterer(3, random_state=0), shuffle_blocks=False)
        wrapped.fit(X_dask)
        labels = wrapped.predict(X_dask).compute()
    est = EMClusterer(3, random_state=0)
    for batch in batches:
        est.partial_fit(batch)
    fitted = wrapped.estimator_
    assert fitted.n_steps_ == 6
    assert_array_equal(fitted.means_, est.means_)
    assert_array_equal(fitted.covariances_, est.covariances_)
    assert_array_equal(labels, est.predict(X))
