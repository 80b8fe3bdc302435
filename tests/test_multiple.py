"""multiple_impute (bootstrap-EM) and pool_rubin (Rubin's rules): the coverage proof."""

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from em_sklearn import EMImputer, multiple_impute, pool_rubin


def test_pool_rubin_matches_hand_computation():
    """Pooled estimate, W, B, T, df and interval equal Rubin's formulas by hand."""
    q = np.array([1.0, 1.3, 0.9, 1.2])
    u = np.array([0.04, 0.05, 0.03, 0.04])
    pooled = pool_rubin(q, u)
    m, q_bar, w = 4, 1.1, 0.04
    b = np.sum((q - q_bar) ** 2) / (m - 1)
    t = w + (1 + 1 / m) * b
    df = (m - 1) * (1 + w / ((1 + 1 / m) * b)) ** 2
    half = stats.t.ppf(0.975, df) * np.sqrt(t)
    # Same formulas in another order: agreement to rounding.
    assert_allclose(
        [pooled.estimate, pooled.within, pooled.between, pooled.total, pooled.df],
        [q_bar, w, b, t, df],
        rtol=1e-12,
        atol=0,
    )
    assert_allclose(pooled.conf_int, [q_bar - half, q_bar + half], rtol=1e-12, atol=0)
    assert isinstance(pooled.estimate, float)


def test_pool_rubin_barnard_rubin_df(global_random_seed):
    """Barnard-Rubin df follow their formula and stay below df_complete and Rubin's."""
    rng = np.random.default_rng(global_random_seed)
    q, u = rng.normal(size=10), rng.uniform(0.5, 1.5, size=10)
    classic = pool_rubin(q, u)
    small = pool_rubin(q, u, df_complete=30)
    lam = classic.fmi
    df_obs = 31 / 33 * 30 * (1 - lam)
    # Same formula in another order: agreement to rounding.
    assert_allclose(small.df, 1 / (1 / classic.df + 1 / df_obs), rtol=1e-12, atol=0)
    assert small.df <= min(30, classic.df)


def test_pool_rubin_vector_is_entrywise(global_random_seed):
    """A vector estimand is pooled entry by entry, as the scalars would be."""
    rng = np.random.default_rng(global_random_seed)
    q, u = rng.normal(size=(5, 3)), rng.uniform(0.5, 1.5, size=(5, 3))
    pooled = pool_rubin(q, u, df_complete=50)
    assert pooled.conf_int.shape == (3, 2)
    for j in range(3):
        single = pool_rubin(q[:, j], u[:, j], df_complete=50)
        # Identical arithmetic on one column: equal to rounding.
        assert_allclose(pooled.conf_int[j], single.conf_int, rtol=1e-12, atol=0)
        assert_allclose(pooled.df[j], single.df, rtol=1e-12, atol=0)


def test_pool_rubin_no_between_variance():
    """Identical estimates (nothing missing) give B = 0, T = W and a normal interval."""
    pooled = pool_rubin([2.0, 2.0, 2.0], [0.25, 0.25, 0.25])
    assert pooled.between == 0 and pooled.total == 0.25
    assert pooled.df == np.inf
    # t with infinite df is the normal: half-width 1.96 * 0.5.
    assert_allclose(
        pooled.conf_int,
        2.0 + np.array([-1, 1]) * stats.norm.ppf(0.975) * 0.5,
        rtol=1e-12,
        atol=0,
    )


@pytest.mark.parametrize(
    "estimates, variances, msg",
    [
        ([1.0], [1.0], "Expected at least 2 imputations but got m = 1."),
        (
            [1.0, 2.0],
            [1.0],
            "Expected estimates and variances of the same shape (m,) or "
            "(m, n_estimands) but got (2,) and (1,).",
        ),
    ],
)
def test_pool_rubin_errors(estimates, variances, msg):
    """Too few imputations or mismatched shapes raise a ValueError saying so."""
    with pytest.raises(ValueError, match=re.escape(msg)):
        pool_rubin(estimates, variances)


_ARRAY_MSG = (
    "{name} must be a numeric array of shape (m,) or (m, n_estimands). "
    "Got {value} instead."
)


@pytest.mark.parametrize(
    "estimates, variances, msg",
    [
        (
            [[1.0, 2.0], [3.0]],
            [[1.0, 1.0], [1.0, 1.0]],
            _ARRAY_MSG.format(name="estimates", value="[[1.0, 2.0], [3.0]]"),
        ),
        (
            [1.0, 2.0],
            ["a", "b"],
            _ARRAY_MSG.format(name="variances", value="['a', 'b']"),
        ),
    ],
    ids=["ragged-estimates", "string-variances"],
)
def test_pool_rubin_non_numeric_or_ragged(estimates, variances, msg):
    """Ragged or non-numeric estimates or variances raise a ValueError naming which."""
    with pytest.raises(ValueError, match=re.escape(msg)):
        pool_rubin(estimates, variances)


@pytest.mark.parametrize(
    "estimates, variances",
    [
        ([1.0], [1.0]),
        ([], []),
        ([[1.0, 2.0]], [[1.0, 1.0]]),
    ],
)
def test_pool_rubin_fewer_than_two_imputations(estimates, variances):
    """m < 2 (scalar or vector estimand) raises: B needs two imputations."""
    m = len(estimates)
    msg = (
        f"Expected at least 2 imputations but got m = {m}. Between-imputation "
        "variance needs m >= 2."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        pool_rubin(estimates, variances)


def test_pool_rubin_vector_shape_mismatch():
    """Vector estimates with variances of another shape raise, giving both shapes."""
    msg = (
        "Expected estimates and variances of the same shape (m,) or "
        "(m, n_estimands) but got (3, 2) and (3,)."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        pool_rubin(np.ones((3, 2)), np.ones(3))


_Q = [[1.0, 2.0], [1.2, 2.1], [0.8, 1.9]]
_U = [[0.04, 0.1], [0.05, 0.1], [0.03, 0.1]]


def _with(rows, index, value):
    """Return a copy of the nested list ``rows`` with ``rows[index] = value``."""
    out = np.array(rows)
    out[index] = value
    return out


_FINITE_MSG = (
    "{at} must be finite. Got {value} instead. Check the analysis of that "
    "completed dataset."
)
_VARIANCE_MSG = (
    "{at} must be a finite number >= 0 (the squared standard error of {q}). "
    "Got {value} instead."
)


@pytest.mark.parametrize(
    "estimates, variances, msg",
    [
        (
            [1.0, np.nan, 1.2],
            [0.04, 0.05, 0.03],
            _FINITE_MSG.format(at="estimates[1]", value="nan"),
        ),
        (
            [1.0, 1.1, -np.inf],
            [0.04, 0.05, 0.03],
            _FINITE_MSG.format(at="estimates[2]", value="-inf"),
        ),
        (
            [1.0, 1.1, 1.2],
            [0.04, -0.05, 0.03],
            _VARIANCE_MSG.format(at="variances[1]", q="estimates[1]", value="-0.05"),
        ),
        (
            [1.0, 1.1, 1.2],
            [np.nan, 0.05, 0.03],
            _VARIANCE_MSG.format(at="variances[0]", q="estimates[0]", value="nan"),
        ),
        (
            [1.0, 1.1, 1.2],
            [0.04, 0.05, np.inf],
            _VARIANCE_MSG.format(at="variances[2]", q="estimates[2]", value="inf"),
        ),
        (
            _with(_Q, (2, 1), np.nan),
            _U,
            _FINITE_MSG.format(at="estimates[2, 1]", value="nan"),
        ),
        (
            _Q,
            _with(_U, (0, 1), -0.1),
            _VARIANCE_MSG.format(
                at="variances[0, 1]", q="estimates[0, 1]", value="-0.1"
            ),
        ),
    ],
    ids=[
        "nan-estimate",
        "inf-estimate",
        "negative-variance",
        "nan-variance",
        "inf-variance",
        "vector-nan-estimate",
        "vector-negative-variance",
    ],
)
def test_pool_rubin_refuses_non_finite_or_negative(estimates, variances, msg):
    """NaN/inf estimates, NaN/inf/negative variances raise, naming the entry.

    Before the check, a NaN estimate came out as ``fmi = 0`` and ``df = inf``
    (no missing information), and a negative variance as ``fmi > 1``. The
    entry is named by its index: imputation, then estimand for a vector.
    """
    with pytest.raises(ValueError, match=re.escape(msg)):
        pool_rubin(estimates, variances)


@pytest.mark.parametrize("df_complete", [0, -5.0, np.nan, -np.inf, "30", True])
def test_pool_rubin_bad_df_complete(df_complete):
    """A df_complete that is not a number > 0 (or None) raises in the grammar."""
    msg = (
        f"df_complete must be a number > 0 or None. Got {df_complete!r} instead. "
        "It is the complete-data degrees of freedom (n - p for a regression "
        "with p coefficients); None or np.inf gives Rubin's large-sample df."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        pool_rubin([1.0, 1.3, 0.9], [0.04, 0.05, 0.03], df_complete=df_complete)


def test_pool_rubin_infinite_df_complete_is_large_sample():
    """df_complete=np.inf is the large-sample limit: exactly Rubin's df (None)."""
    q, u = [[1.0, 2.0], [1.3, 2.1], [0.9, 2.0]], [[0.04, 0.1], [0.05, 0.2], [0.03, 0]]
    infinite = pool_rubin(q, u, df_complete=np.inf)
    rubin = pool_rubin(q, u)
    assert_array_equal(infinite.df, rubin.df)
    assert_array_equal(infinite.conf_int, rubin.conf_int)
    assert np.isfinite(infinite.conf_int).all()


@pytest.mark.parametrize("confidence", [0, 1, -0.5, 1.5, np.nan, "0.95", None])
def test_pool_rubin_bad_confidence(confidence):
    """A confidence that is not a number in (0, 1) raises in the grammar."""
    msg = (
        f"confidence must be a number in (0, 1), e.g. 0.95. Got {confidence!r} instead."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        pool_rubin([1.0, 1.3, 0.9], [0.04, 0.05, 0.03], confidence=confidence)


@pytest.mark.parametrize("df_complete", [None, 10])
@pytest.mark.parametrize("value", [2.0, 0.1, 0.7])
def test_pool_rubin_zero_between_and_within(value, df_complete):
    """Equal estimates with zero variances: B = W = T = 0, fmi 0, a zero-width CI.

    Nothing varies, so nothing is missing: ``fmi = 0`` (not NaN), ``df = inf``
    without ``df_complete`` and the interval is the point ``[Q, Q]``. Equal
    estimates give ``B = 0`` exactly (``np.var`` of three 0.1 is ``3e-34``,
    which made ``fmi = 1`` when ``W = 0``) and the estimate is that value.
    """
    pooled = pool_rubin([value] * 3, [0.0] * 3, df_complete=df_complete)
    assert pooled.between == 0 and pooled.within == 0 and pooled.total == 0
    assert pooled.estimate == value and pooled.fmi == 0
    if df_complete is None:
        assert pooled.df == np.inf
    assert 0 < pooled.df <= np.inf
    assert_array_equal(pooled.conf_int, [value, value])


@pytest.mark.parametrize(
    "estimates, variances, msg",
    [
        (
            [1e200, -1e200],
            [1.0, 1.0],
            "The pooled estimate and total variance must be finite. Got 0.0 and "
            "inf instead",
        ),
        (
            [[1.0, 1.0], [1.0, 2.0]],
            [[1.0, 1e308], [1.0, 1e308]],
            "The pooled estimate and total variance of estimand 1 must be finite. "
            "Got 1.5 and inf instead",
        ),
    ],
    ids=["between-overflows", "within-overflows"],
)
def test_pool_rubin_overflow_raises(estimates, variances, msg):
    """Finite inputs whose B, W or T overflow raise instead of giving fmi = NaN."""
    msg += (
        ": the estimates or variances overflow float64; rescale the estimand "
        "(change its units)."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        pool_rubin(estimates, variances)


def test_pool_rubin_no_within_variance_rubin_df():
    """W = 0, B > 0 (e.g. a census total) gives fmi 1 and Rubin's df m - 1."""
    q = np.array([1.0, 1.3, 0.9, 1.2])
    pooled = pool_rubin(q, np.zeros(4))
    b = np.var(q, ddof=1)
    assert pooled.fmi == 1 and pooled.df == 3
    half = stats.t.ppf(0.975, 3) * np.sqrt(1.25 * b)
    # Same formulas in another order: agreement to rounding.
    assert_allclose(pooled.conf_int, [1.1 - half, 1.1 + half], rtol=1e-12, atol=0)


def test_pool_rubin_no_within_variance_with_df_complete_raises():
    """W = 0 < B with df_complete raises: Barnard-Rubin df would be 0 (a NaN CI)."""
    msg = (
        "The within-imputation variance of estimand 1 (the mean of "
        "variances[:, 1]) must be > 0 when df_complete is given and the "
        "estimates differ. Got 0.0 instead. Barnard-Rubin degrees of freedom "
        "are 0 when all the variance is between imputations; pass "
        "df_complete=None for Rubin's df (m - 1) if the complete-data variance "
        "is truly 0."
    )
    q = [[1.0, 1.0], [1.3, 1.3], [0.9, 0.9]]
    u = [[0.04, 0.0], [0.05, 0.0], [0.03, 0.0]]
    with pytest.raises(ValueError, match=re.escape(msg)):
        pool_rubin(q, u, df_complete=30)
    scalar_msg = msg.replace(" of estimand 1", "").replace("[:, 1]", "")
    with pytest.raises(ValueError, match=re.escape(scalar_msg)):
        pool_rubin([1.0, 1.3, 0.9], [0.0, 0.0, 0.0], df_complete=30)


def test_multiple_impute_bad_m():
    """A non-positive m raises a ValueError in the parameter grammar."""
    msg = "m must be an int >= 1. Got 0 instead."
    with pytest.raises(ValueError, match=re.escape(msg)):
        multiple_impute(np.zeros((3, 2)), m=0)


def test_multiple_impute_keeps_observed_and_is_reproducible(global_random_seed):
    """Completed datasets keep observed entries; an int random_state reproduces them."""
    rng = np.random.default_rng(global_random_seed)
    X = rng.multivariate_normal([0, 0, 0], np.eye(3) + 0.5, size=80)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    first = multiple_impute(X, m=4, random_state=0)
    second = multiple_impute(X, m=4, random_state=0)
    observed = ~np.isnan(X)
    assert len(first) == 4
    for a, b in zip(first, second, strict=True):
        assert_array_equal(a, b)
        assert_array_equal(a[observed], X[observed])
        assert np.isfinite(a).all()
    # The imputations differ from one another at the missing entries.
    assert not np.array_equal(first[0][~observed], first[1][~observed])


def _ols_slope(x, y):
    """Return the OLS slope of y on x (with intercept) and its classical variance.

    x, y : arrays of shape (..., n); the regression runs along the last axis.
    """
    n = x.shape[-1]
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    sxx = np.sum(xc * xc, axis=-1)
    slope = np.sum(xc * yc, axis=-1) / sxx
    resid = yc - slope[..., None] * xc
    return slope, np.sum(resid * resid, axis=-1) / (n - 2) / sxx


N_SAMPLES, N_IMPUTATIONS, N_REPETITIONS, SLOPE = 100, 20, 600, 1.0


@pytest.mark.slow
def test_multiple_imputation_covers_true_slope(global_random_seed):
    """Bootstrap-EM + Rubin intervals cover 95% ± 3%; single imputation under-covers.

    Each repetition draws n = 100 rows of ``x ~ N(0, 1)``, ``y = x + e``,
    ``e ~ N(0, 1)``; ``x`` is missing with probability 0.5 when ``y`` is above
    its median and 0.1 otherwise (30% MAR, missingness driven by ``y``). The
    m = 20 bootstrap-EM imputations are each analysed by OLS of y on x, pooled
    by Rubin's rules with Barnard-Rubin df (df_complete = n - 2), and the 95%
    interval checked for the true slope 1.

    Choice of R. With true coverage ``p`` the estimate's sd is
    ``sqrt(p (1 - p) / R)``; for ±3% to be 3.3 sd (a two-sided false-failure
    chance below 1e-3) at ``p = 0.95``, ``R >= 0.95 * 0.05 / (0.03 / 3.3)^2
    = 575``. R = 600: exactly, ``P(|p_hat - 0.95| > 0.03) = 6.9e-4`` for
    Binomial(600, 0.95), and 4.0e-4 at the coverage 0.956 measured over 2,100
    repetitions while writing this test (with the bootstrap as row counts:
    0.948 and 0.960 for seeds 42 and 0). A repetition costs 21 EM fits of a
    100 x 2 table (about 80 ms), so R = 600 runs in about 50 s.

    Single imputation (one conditional-mean fill, then OLS as if complete)
    measured about 57% coverage: its slope is biased away from 1 (x is
    filled from its regression on y) and its standard error ignores the
    imputation; the test requires < 90%, far outside its own binomial noise
    (sd 2%).
    """
    rng = np.random.default_rng(global_random_seed)
    estimator = EMImputer(init_params="random_from_data")
    covered_mi = np.zeros(N_REPETITIONS, dtype=bool)
    covered_single = np.zeros(N_REPETITIONS, dtype=bool)
    t_single = stats.t.ppf(0.975, N_SAMPLES - 2)
    for rep in range(N_REPETITIONS):
        x = rng.normal(size=N_SAMPLES)
        y = SLOPE * x + rng.normal(size=N_SAMPLES)
        p_missing = np.where(y > np.median(y), 0.5, 0.1)
        X = np.c_[np.where(rng.random(N_SAMPLES) < p_missing, np.nan, x), y]
        completed = np.stack(
            multiple_impute(X, m=N_IMPUTATIONS, estimator=estimator, random_state=rep)
        )  # (m, n, 2)
        slopes, variances = _ols_slope(completed[:, :, 0], completed[:, :, 1])
        lower, upper = pool_rubin(slopes, variances, df_complete=N_SAMPLES - 2).conf_int
        covered_mi[rep] = lower <= SLOPE <= upper
        filled = estimator.fit_transform(X)
        slope, variance = _ols_slope(filled[:, 0], filled[:, 1])
        covered_single[rep] = abs(slope - SLOPE) <= t_single * np.sqrt(variance)
    coverage_mi, coverage_single = covered_mi.mean(), covered_single.mean()
    assert 0.92 <= coverage_mi <= 0.98, coverage_mi
    assert coverage_single < 0.90, coverage_single


class _CountsSpy(EMImputer):
    """EMImputer recording the sample weights each fit receives."""

    fits = []

    def fit(self, X, y=None, sample_weight=None):
        type(self).fits.append(sample_weight)
        return super().fit(X, y, sample_weight=sample_weight)


def test_bootstrap_counts_follow_the_sample_weights():
    """Each bootstrap fit gets multinomial row counts: n draws, or sum(w) ~ w.

    Without weights the counts sum to n (a bootstrap sample of the same size);
    with frequency weights they sum to round(sum(w)), rows of weight 0 are
    never drawn, and over many imputations each row's mean count approaches
    its weight.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    X[:5, 0] = np.nan
    _CountsSpy.fits = []
    multiple_impute(X, m=3, estimator=_CountsSpy(), random_state=0)
    assert [c.sum() for c in _CountsSpy.fits] == [30, 30, 30]
    weights = rng.integers(0, 4, size=30).astype(float)
    weights[5] = 0.0
    _CountsSpy.fits = []
    imputations = multiple_impute(
        X, m=300, estimator=_CountsSpy(), sample_weight=weights, random_state=0
    )
    counts = np.array(_CountsSpy.fits)  # (m, n)
    assert np.all(counts.sum(axis=1) == weights.sum())
    assert np.all(counts[:, weights == 0] == 0)
    # Mean count per row: its weight, within 5 standard errors of the mean of
    # 300 binomial(sum(w), w/sum(w)) counts.
    se = np.sqrt(weights * (1 - weights / weights.sum()) / 300)
    assert np.all(np.abs(counts.mean(axis=0) - weights) <= 5 * se + 1e-12)
    assert all(np.array_equal(Z[~np.isnan(X)], X[~np.isnan(X)]) for Z in imputations)


def test_multiple_impute_bad_weights():
    with pytest.raises(ValueError, match="Negative values"):
        multiple_impute(np.zeros((3, 2)), m=2, sample_weight=[1, -1, 1])
