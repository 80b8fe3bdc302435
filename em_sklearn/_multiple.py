"""Proper multiple imputation by bootstrap-EM, and pooling by Rubin's rules."""

import numbers
import reprlib
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.base import clone
from sklearn.utils import check_random_state

from ._imputer import EMImputer
from ._validation import _num_samples, check_sample_weight


def multiple_impute(X, m=20, *, estimator=None, sample_weight=None, random_state=None):
    """Draw ``m`` completed datasets by bootstrap-EM (proper multiple imputation).

    For each of the ``m`` imputations, as in Amelia's EMB algorithm
    (Honaker & King 2010):

    1. resample the rows of ``X`` with replacement (a bootstrap sample of the
       same size), as multinomial counts of the rows;
    2. fit a clone of ``estimator`` on that sample by EM (the counts as
       ``sample_weight``: the same fit as on the resampled rows, without
       copying them);
    3. impute the *original* ``X`` by drawing every missing block from its
       conditional distribution under that fit (``sample_posterior=True``).

    Step 3 alone reflects the noise of the missing values given the
    parameters; refitting on a bootstrap sample in steps 1-2 makes the
    parameters themselves vary between imputations as much as their sampling
    distribution says, so the between-imputation variance also carries the
    uncertainty of the fitted mixture. Imputations from a single fit
    (``EMImputer(sample_posterior=True)`` with ``m`` seeds) are *improper*:
    they treat the estimated parameters as known and intervals pooled from
    them are too narrow. Bootstrap-EM needs no prior and no MCMC, and the
    bootstrap distribution of the EM estimate approximates the posterior of
    the parameters in large samples (Little & Rubin 2019, §10.2.3).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data, with NaN (or ``pd.NA``/``None`` in a DataFrame) for missing
        entries.
    m : int, default=20
        The number of completed datasets.
    estimator : EMImputer, default=None
        The imputer to clone and fit on each bootstrap sample; its
        ``sample_posterior`` and ``random_state`` are overridden. None means
        ``EMImputer()``.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights (a row of weight ``w`` stands for ``w`` rows, as in
        :meth:`EMImputer.fit`): each bootstrap sample then draws
        ``round(sum(sample_weight))`` rows with probabilities proportional to
        the weights. None weighs every row 1.
    random_state : int, RandomState instance or None, default=None
        Seeds the bootstrap samples, the EM initialisations and the draws.
        Pass an int for reproducible output.

    Returns
    -------
    imputations : list of m ndarray of shape (n_samples, n_features_out)
        The completed datasets: observed entries of ``X`` unchanged, missing
        entries drawn (the output of the estimator's ``transform``).

    See Also
    --------
    pool_rubin : Combine the analyses of the completed datasets.
    EMImputer : A single imputation (``sample_posterior=False``).

    References
    ----------
    .. [1] Honaker & King (2010), What to do about missing values in
       time-series cross-section data. AJPS 54(2).
    .. [2] Rubin (1987), Multiple Imputation for Nonresponse in Surveys.

    Examples
    --------
    >>> import numpy as np
    >>> from em_sklearn import multiple_impute
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 2))
    >>> X[:10, 0] = np.nan
    >>> imputations = multiple_impute(X, m=5, random_state=0)
    >>> len(imputations), imputations[0].shape
    (5, (50, 2))
    >>> bool(np.all(imputations[0][10:] == X[10:]))
    True
    """
    if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1:
        raise ValueError(f"m must be an int >= 1. Got {m!r} instead.")
    estimator = EMImputer() if estimator is None else estimator
    n_samples = _num_samples(X)
    sample_weight = check_sample_weight(sample_weight, X)
    if sample_weight is None:
        n_draws, p = n_samples, np.full(n_samples, 1.0 / n_samples)
    else:
        total = sample_weight.sum()
        n_draws, p = max(1, round(total)), sample_weight / total
    rng = check_random_state(random_state)
    imputations = []
    for _ in range(m):
        seed = rng.randint(np.iinfo(np.int32).max)
        imputer = clone(estimator).set_params(sample_posterior=True, random_state=seed)
        counts = rng.multinomial(n_draws, p)  # the bootstrap sample, as row counts
        imputer.fit(X, sample_weight=counts)
        imputations.append(imputer.transform(X))
    return imputations


@dataclass(frozen=True)
class RubinPooled:
    """Estimates pooled over ``m`` imputations by Rubin's rules.

    Every attribute is a float for a scalar estimand and an ndarray of shape
    ``(n_estimands,)`` for a vector one.

    Attributes
    ----------
    estimate : float or ndarray
        ``Q_bar``, the mean of the ``m`` estimates.
    within : float or ndarray
        ``W``, the mean of the ``m`` variances.
    between : float or ndarray
        ``B``, the sample variance of the ``m`` estimates.
    total : float or ndarray
        ``T = W + (1 + 1/m) B``.
    std_error : float or ndarray
        ``sqrt(T)``.
    df : float or ndarray
        Degrees of freedom of the ``t`` reference distribution; ``inf`` (the
        normal) when ``B = 0`` and ``df_complete`` is None.
    fmi : float or ndarray
        ``lambda = (1 + 1/m) B / T``, the fraction of the variance due to the
        missing values, in ``[0, 1]``; 0 when ``T = 0``.
    conf_int : ndarray of shape (2,) or (n_estimands, 2)
        Lower and upper bounds of the confidence interval.
    m : int
        The number of imputations.
    """

    estimate: object
    within: object
    between: object
    total: object
    std_error: object
    df: object
    fmi: object
    conf_int: np.ndarray
    m: int


def pool_rubin(estimates, variances, *, df_complete=None, confidence=0.95):
    """Pool ``m`` estimates and their variances by Rubin's rules.

    With ``Q_j`` and ``U_j`` the estimate and its squared standard error from
    imputation ``j``: ``Q_bar = mean(Q_j)``, within-imputation variance
    ``W = mean(U_j)``, between-imputation variance
    ``B = sum (Q_j - Q_bar)^2 / (m - 1)``, total ``T = W + (1 + 1/m) B``, and
    the interval ``Q_bar ± t_df(1 - alpha/2) sqrt(T)``. The degrees of freedom
    are Rubin's (1987) ``df = (m - 1) / lambda^2`` with
    ``lambda = (1 + 1/m) B / T``, or, given the complete-data degrees of
    freedom ``df_complete``, Barnard & Rubin's (1999) small-sample version
    ``1 / (1/df_old + 1/df_obs)`` with
    ``df_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lambda)``,
    which never exceeds ``df_complete``. A vector estimand is pooled entry by
    entry.

    Degenerate cases. Equal estimates give ``B = 0`` exactly, so ``fmi = 0``
    and ``df = inf`` (or ``df_obs`` with ``df_complete``); if their variances
    are 0 too, ``T = 0``, ``fmi = 0`` and the interval is the point
    ``[Q, Q]``. Zero variances with differing estimates (``W = 0 < B``, e.g. a
    census total) give ``fmi = 1`` and Rubin's ``df = m - 1``; with
    ``df_complete`` this raises, as Barnard-Rubin's df would be 0.

    Parameters
    ----------
    estimates : array-like of shape (m,) or (m, n_estimands)
        The estimate from each completed dataset; finite, with ``m >= 2``.
    variances : array-like of the same shape as ``estimates``
        Its variance (squared standard error) from each completed dataset;
        finite and ``>= 0``.
    df_complete : float > 0 or None, default=None
        Degrees of freedom of the analysis had there been no missing value
        (``n - p`` for a regression with ``p`` coefficients). None, or
        ``np.inf`` (its large-sample limit), uses Rubin's large-sample degrees
        of freedom.
    confidence : float in (0, 1), default=0.95
        Coverage of the confidence interval.

    Returns
    -------
    pooled : RubinPooled
        ``estimate``, ``within``, ``between``, ``total``, ``std_error``,
        ``df``, ``fmi``, ``conf_int`` and ``m``.

    Raises
    ------
    ValueError
        If ``estimates`` or ``variances`` is not numeric, their shapes differ,
        ``m < 2``, an estimate is not finite, a variance is not finite or is
        negative (the message names the entry, ``[imputation]`` or
        ``[imputation, estimand]``), ``df_complete`` is not a number ``> 0``
        or None, ``confidence`` is not in (0, 1), or ``W = 0 < B`` with
        ``df_complete``.

    See Also
    --------
    multiple_impute : Draw the completed datasets.

    References
    ----------
    .. [1] Rubin (1987), Multiple Imputation for Nonresponse in Surveys.
    .. [2] Barnard & Rubin (1999), Small-sample degrees of freedom with
       multiple imputation. Biometrika 86(4).

    Examples
    --------
    >>> from em_sklearn import pool_rubin
    >>> pooled = pool_rubin([1.0, 1.2, 0.8], [0.04, 0.05, 0.03])
    >>> round(pooled.estimate, 3), round(pooled.total, 4)
    (1.0, 0.0933)
    """
    estimates = _as_float_array(estimates, "estimates")
    variances = _as_float_array(variances, "variances")
    if estimates.ndim not in (1, 2) or variances.shape != estimates.shape:
        raise ValueError(
            "Expected estimates and variances of the same shape (m,) or "
            f"(m, n_estimands) but got {estimates.shape} and {variances.shape}."
        )
    m = estimates.shape[0]
    if m < 2:
        raise ValueError(
            f"Expected at least 2 imputations but got m = {m}. Between-imputation "
            "variance needs m >= 2."
        )
    bad = ~np.isfinite(estimates)
    if bad.any():
        index = _first(bad)
        raise ValueError(
            f"estimates{_at(index)} must be finite. Got {float(estimates[index])!r} "
            "instead. Check the analysis of that completed dataset."
        )
    bad = ~(np.isfinite(variances) & (variances >= 0))
    if bad.any():
        index = _first(bad)
        value = float(variances[index])
        raise ValueError(
            f"variances{_at(index)} must be a finite number >= 0 (the squared "
            f"standard error of estimates{_at(index)}). Got {value!r} instead."
        )
    if df_complete is not None and (
        not isinstance(df_complete, numbers.Real)
        or isinstance(df_complete, bool)
        or not df_complete > 0
    ):
        raise ValueError(
            f"df_complete must be a number > 0 or None. Got {df_complete!r} "
            "instead. It is the complete-data degrees of freedom (n - p for a "
            "regression with p coefficients); None or np.inf gives Rubin's "
            "large-sample df."
        )
    if df_complete == np.inf:
        # The limit of Barnard-Rubin's df as df_complete grows: Rubin's df
        # (evaluating the formula at inf would give inf / inf = NaN).
        df_complete = None
    if (
        not isinstance(confidence, numbers.Real)
        or isinstance(confidence, bool)
        or not 0 < confidence < 1
    ):
        raise ValueError(
            f"confidence must be a number in (0, 1), e.g. 0.95. Got {confidence!r} "
            "instead."
        )
    # Equal estimates: B = 0 exactly and Q_bar that value (np.var of three
    # 0.1 is 3e-34, which would make fmi = 1 when W = 0).
    equal = np.all(estimates == estimates[0], axis=0)
    with np.errstate(over="ignore"):
        estimate = np.where(equal, estimates[0], estimates.mean(axis=0))
        within = variances.mean(axis=0)
        between = np.where(equal, 0.0, estimates.var(axis=0, ddof=1))
        total = within + (1 + 1 / m) * between
    if not (np.isfinite(estimate).all() and np.isfinite(total).all()):
        j = _first(~(np.isfinite(estimate) & np.isfinite(total)))
        of = "" if estimates.ndim == 1 else f" of estimand {j[0]}"
        raise ValueError(
            f"The pooled estimate and total variance{of} must be finite. Got "
            f"{float(estimate[j])!r} and {float(total[j])!r} instead: the "
            "estimates or variances overflow float64; rescale the estimand "
            "(change its units)."
        )
    if df_complete is not None and np.any((within == 0) & (between > 0)):
        j = _first((within == 0) & (between > 0))
        of, col = ("", "")
        if estimates.ndim == 2:
            of, col = f" of estimand {j[0]}", f"[:, {j[0]}]"
        raise ValueError(
            f"The within-imputation variance{of} (the mean of variances{col}) "
            "must be > 0 when df_complete is given and the estimates differ. "
            "Got 0.0 instead. Barnard-Rubin degrees of freedom are 0 when all "
            "the variance is between imputations; pass df_complete=None for "
            "Rubin's df (m - 1) if the complete-data variance is truly 0."
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        fmi = np.where(total > 0, (1 + 1 / m) * between / total, 0.0)
        # lambda = 0 (no missing information): infinite df, the normal limit.
        df = np.where(fmi > 0, (m - 1) / fmi**2, np.inf)
        if df_complete is not None:
            df_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - fmi)
            df = 1 / (1 / df + 1 / df_obs)
    std_error = np.sqrt(total)
    half = stats.t.ppf(0.5 + confidence / 2, df) * std_error
    conf_int = np.stack([estimate - half, estimate + half], axis=-1)

    def scalar(value):
        return float(value) if estimates.ndim == 1 else value

    return RubinPooled(
        estimate=scalar(estimate),
        within=scalar(within),
        between=scalar(between),
        total=scalar(total),
        std_error=scalar(std_error),
        df=scalar(df),
        fmi=scalar(fmi),
        conf_int=conf_int,
        m=m,
    )


def _as_float_array(values, name):
    """Return ``values`` as a float64 array, or raise naming the argument."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a numeric array of shape (m,) or (m, n_estimands). "
            f"Got {reprlib.repr(values)} instead."
        ) from None


def _first(mask):
    """Return the index (a tuple) of the first True entry of ``mask``."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _at(index):
    """Format an index tuple as a subscript: ``[2]`` or ``[2, 1]``."""
    return "[" + ", ".join(map(str, index)) + "]"
