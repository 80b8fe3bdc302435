"""EMImputer: fill missing entries by their conditional expectation under a mixture."""

import warnings

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.impute import MissingIndicator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _dask, _out_of_core
from ._array_api import check_host, column_all, column_any, like, namespace
from ._base import _GaussianEM
from ._online import partial_fit_model
from ._parallel import close
from ._standardize import Standardization
from ._validation import (
    _check_feature_names_in,
    _fit_context,
    check_sample_weight,
)


class EMImputer(TransformerMixin, _GaussianEM):
    """Impute missing values by their conditional expectation under a Gaussian mixture.

    The mixture (a single multivariate normal by default) is fitted by EM on
    the observed entries only; each missing entry is then replaced by its
    expectation given the row's observed entries,
    ``E[x_m | x_o] = sum_k r_ik (mu_km + S_kmo inv(S_koo) (x_o - mu_ko))``.
    With ``n_components=1`` this is the classic EM imputation under a
    multivariate normal (Little & Rubin, ch. 11; R's ``norm``).

    Parameters
    ----------
    n_components : int or 'auto', default=1
        The number of mixture components. 'auto' fits 1, 2, ... up to 10
        components (no more than the rows) and keeps the fit of lowest BIC
        (``-2 log L + n_parameters log n``, with ``log L`` the fitted
        observed-data log-likelihood), stopping once two more components
        have not lowered it; the choice is ``n_components_`` and the BIC of
        each fit tried ``bic_scores_``.

    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        The type of covariance parameters to use:

        - 'full': each component has its own general covariance matrix.
        - 'tied': all components share the same general covariance matrix.
        - 'diag': each component has its own diagonal covariance matrix.
        - 'spherical': each component has its own single variance.

    tol : float, default=1e-3
        The convergence threshold. EM iterations stop when the gain in the mean
        observed-data log-likelihood per row is below this threshold.

    reg_covar : float, default=1e-6
        Non-negative regularization added to the diagonal of covariances.

    max_iter : int, default=100
        The number of EM iterations to perform.

    n_init : int, default=1
        The number of initializations to perform. The best result is kept.

    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
default='kmeans'
        The method used to initialize the responsibilities, applied to a copy
        of the data whose missing entries are filled with column means:

        - 'kmeans': responsibilities are initialized using kmeans.
        - 'k-means++': use the k-means++ method to initialize.
        - 'random': responsibilities are initialized randomly.
        - 'random_from_data': initial means are randomly selected data points.

    weights_init : array-like of shape (n_components,), default=None
        The user-provided initial weights.

    means_init : array-like of shape (n_components, n_features), default=None
        The user-provided initial means.

    precisions_init : array-like, default=None
        The user-provided initial precisions (inverse of the covariance
        matrices). The shape depends on 'covariance_type'::

            (n_components,)                        if 'spherical',
            (n_features, n_features)               if 'tied',
            (n_components, n_features)             if 'diag',
            (n_components, n_features, n_features) if 'full'

    random_state : int, RandomState instance or None, default=None
        Controls the random seed given to the initialization method and to
        :meth:`sample`. Pass an int for reproducible output.

    warm_start : bool, default=False
        If True, the solution of the last fit is the initialization of the next
        call of fit, and ``n_init`` is ignored.

    verbose : int, default=0
        Enable verbose output: 1 prints each initialization and iteration
        step, 2 adds timings and the change of the log-likelihood.

    verbose_interval : int, default=10
        Number of iterations between two prints.

    accelerate : {'squarem'} or None, default=None
        None runs plain EM. 'squarem' extrapolates the parameters from two EM
        updates (SQUAREM, Varadhan & Roland 2008) and falls back to the plain
        EM update whenever the extrapolated point has a lower likelihood, so
        the likelihood still never decreases. It needs far fewer iterations
        when much is missing; ``n_iter_`` and ``max_iter`` count E-steps.

    prior : {'default'}, dict or None, default=None
        None fits by maximum likelihood. Otherwise the fit is the maximum a
        posteriori (MAP) estimate under a conjugate prior: a Dirichlet on the
        weights and a normal-inverse-Wishart on each component's mean and
        covariance (Fraley & Raftery 2007, the prior of R's mclust), which
        keeps a component from collapsing onto a few points. 'default' sets
        every hyperparameter from the data as Fraley & Raftery do; a dict
        sets some of them by the names of
        :class:`~sklearn.mixture.BayesianGaussianMixture` and leaves the rest
        at that default: ``weight_concentration_prior`` (Dirichlet
        concentration, >= 1; default 1, a flat prior), ``mean_prior`` (default
        the data mean), ``mean_precision_prior`` (default 0.01),
        ``degrees_of_freedom_prior`` (default ``n_features + 2``) and
        ``covariance_prior`` (the inverse-Wishart scale, shaped like one
        covariance of ``covariance_type``; default the data covariance divided
        by ``n_components ** (2 / n_features)``). ``lower_bound_`` then
        includes the log-prior; ``reg_covar`` is still added.

    n_jobs : int or None, default=None
        Number of processes that work on the rows in parallel, in fits and in
        every later call. ``None`` means 1 (unless in a
        :obj:`joblib.parallel_backend` context), ``-1`` all cores. Data of at
        least ``2 * 2**16`` rows are cut into blocks of about ``2**16`` rows
        whatever ``n_jobs``, and their statistics added in block order:
        results are identical for any ``n_jobs``. Smaller data run in one
        process. Worker processes are started by ``fork`` (threads where it
        is not available) and inherit their rows without a copy.

    learning_decay : float, default=0.6
        The exponent ``alpha`` in (0.5, 1] of the step sizes of
        :meth:`partial_fit` (online EM, Cappé & Moulines 2009): step ``t``
        moves the running statistics a fraction ``t ** -alpha`` of the way to
        the batch's. Larger values forget the early batches more slowly.
        Not used by :meth:`fit`.

    categorical_features : 'from_dtype', array-like of str, int or bool, or None, \
default='from_dtype'
        The nominal columns (levels without order), as in
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier`:

        - 'from_dtype': pandas ``category`` columns (unordered), polars
          ``Categorical``/``Enum``, string and object columns holding text,
          and boolean columns (binary). Numeric columns are continuous.
        - names, indices or a boolean mask: exactly these columns are nominal
          (a numeric column listed has its distinct values as levels).
        - None: no nominal column (text columns are refused).

        Each nominal column has, in each component, a probability for each
        of its levels; the columns are independent given the component, so
        they depend on the rest of the row only through it (use
        ``n_components > 1``, or 'auto'). A column with two levels is binary.

    ordinal_features : 'from_dtype', array-like, dict or None, \
default='from_dtype'
        The ordinal columns (ordered levels): 'from_dtype' takes pandas
        ordered categoricals; names, indices or a mask list columns whose
        sorted distinct values are their levels (e.g. a 1-5 rating); a dict
        ``{column: [levels in order]}`` gives the order of text levels.
        With ``marginal='gaussian'`` they are modelled like nominal columns
        (the order is kept on output only); with ``marginal='copula'``
        through a latent Gaussian.

    marginal : {'auto', 'gaussian', 'copula'}, default='auto'
        The model of the continuous, ordinal and binary columns (nominal
        columns are categorical in either):

        - 'gaussian': continuous columns are jointly Gaussian in each
          component; ordinal and binary columns are categorical.
        - 'copula': a mixture of Gaussian copulas. Continuous columns are
          mapped to normal scores through their empirical CDF, ordinal and
          binary columns are latent Gaussians cut at thresholds, and the
          mixture is fitted to that latent vector; imputations are mapped back
          through the observed quantiles, so they are values seen in the
          data (skewed and integer columns keep their shape). Likelihoods
          (``score_samples``, ``lower_bound_``, BIC) are then those of the
          latent model.
        - 'auto': 'gaussian' when every column is continuous, 'copula' when
          a column is nominal, ordinal or binary (see the user guide for the
          measurements behind this choice).

    handle_unknown : {'error', 'missing'}, default='error'
        A level of a nominal or ordinal column not seen in ``fit``: 'error'
        raises a ValueError naming the column and the values; 'missing'
        treats it as a missing entry (with a warning), which the imputer
        then fills.

    add_indicator : bool, default=False
        If True, a :class:`~sklearn.impute.MissingIndicator` is stacked onto the
        output: one column per feature that had missing values during fit.

    keep_empty_features : bool, default=False
        If True, features with no observed value during fit are returned by
        :meth:`transform`, filled with 0. Otherwise they are dropped (with a
        warning at fit time).

    sample_posterior : bool, default=False
        If True, :meth:`transform` draws each row's missing entries from their
        conditional distribution under the fitted mixture instead of filling
        their conditional expectation: a component is drawn with the row's
        responsibilities, then the missing block jointly from that
        component's conditional normal (mean and covariance given the row's
        observed entries). The draws are seeded by
        ``check_random_state(random_state)`` at each call, so an int
        ``random_state`` gives the same draws every time, as in
        :class:`~sklearn.impute.IterativeImputer`. Draws reflect the noise of
        the missing values given the fitted parameters, not the uncertainty of
        the parameters: for proper multiple imputation use
        :func:`multiple_impute`.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The weights of each mixture component.

    means_ : ndarray of shape (n_components, n_model_features)
        The mean of each mixture component, over the features that had an
        observed value during fit.

    covariances_ : ndarray
        The covariance of each mixture component, shaped as in
        :class:`EMClusterer`.

    precisions_ : ndarray
        The precision matrices, shaped as ``covariances_``.

    precisions_cholesky_ : ndarray
        Cholesky factors of the precisions, shaped as ``covariances_``.

    converged_ : bool
        True when the best initialization converged.

    n_iter_ : int
        Number of EM iterations of the best initialization.

    lower_bound_ : float
        Mean observed-data log-likelihood per row at the last E-step
        (weighted by ``sample_weight``; with a ``prior``, the log-posterior:
        log-likelihood plus log-prior, per row).

    lower_bounds_ : list of float
        That quantity at every iteration of the best initialization.

    prior_ : dict or None
        The prior's hyperparameters used by the fit (the ``prior`` keys, the
        data-dependent defaults filled in), or None without a prior.

    indicator_ : MissingIndicator or None
        Indicator used to add binary indicators for missing values; None if
        ``add_indicator`` is False.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X`
        has feature names that are all strings.

    n_steps_ : int
        Number of online-EM steps taken by :meth:`partial_fit` since the
        stream started (its first call, or the first call after :meth:`fit`).
        Defined only after :meth:`partial_fit`.

    n_samples_seen_ : int
        Number of rows passed to :meth:`partial_fit` since the stream started.
        Defined only after :meth:`partial_fit`.

    See Also
    --------
    EMClusterer : Cluster incomplete data with the same model.
    sklearn.impute.SimpleImputer : Fill with a column statistic.
    sklearn.impute.IterativeImputer : Fill by chained regressions.

    Notes
    -----
    Observed entries are returned bit for bit unchanged. A row with nothing
    observed gets the mixture mean ``sum_k pi_k mu_k``. Fitting a row with
    ``s`` missing entries costs ``O(s^3)`` per component and iteration on top
    of the complete-data work.

    Array API: with ``sklearn.set_config(array_api_dispatch=True)`` a torch
    tensor, CuPy array or other array API array (continuous columns) is fitted
    on its own device; fitted attributes and outputs follow ``X`` (namespace,
    device, float dtype). See the user guide's "Large data" page.

    The model is fitted on standardised columns, ``(x_j - c_j) / s_j`` with
    ``c_j`` and ``s_j`` the mean and standard deviation of column ``j``'s
    observed entries (``s_j = 1`` for a column with zero or undefined spread;
    for 'spherical' one common ``s``, the root mean of the column variances,
    so that the model stays spherical). Columns on scales from ``1e-8`` to
    ``1e8`` are therefore imputed as accurately as columns of unit scale, and
    rescaling a column rescales its imputations. Consequences:

    - ``reg_covar`` and ``tol`` act in standardised units (``reg_covar`` is
      relative to each column's variance), and k-means initialisation sees
      standardised data; :class:`EMClusterer`, which must equal
      ``GaussianMixture``, works in the original units instead.
    - ``means_``, ``covariances_``, ``precisions_`` and ``precisions_cholesky_``
      are converted back to the original units; ``means_init`` and
      ``precisions_init`` are given in the original units.
    - :meth:`score_samples`, ``lower_bound_`` and ``lower_bounds_`` are
      log-likelihoods (log-posteriors with a ``prior``) in the original units.
    - A ``prior``'s hyperparameters are given, and reported in ``prior_``, in
      the original units; the default prior is the same in either units.

    References
    ----------
    .. [1] Dempster, Laird & Rubin (1977), Maximum likelihood from incomplete
       data via the EM algorithm. JRSS B 39(1).
    .. [2] Ghahramani & Jordan (1994), Supervised learning from incomplete data
       via an EM approach. NIPS 6.
    .. [3] Little & Rubin (2019), Statistical Analysis with Missing Data, 3rd
       ed., ch. 11.

    Examples
    --------
    >>> import numpy as np
    >>> from em_sklearn import EMImputer
    >>> X = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 6.0], [4.0, 8.0]])
    >>> imputer = EMImputer(tol=1e-10, max_iter=500).fit(X)
    >>> float(np.round(imputer.transform(X)[1, 1], 3))
    4.0
    """

    _parameter_constraints: dict = {
        **_GaussianEM._parameter_constraints,
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "sample_posterior": ["boolean"],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        accelerate=None,
        prior=None,
        n_jobs=None,
        learning_decay=0.6,
        categorical_features="from_dtype",
        ordinal_features="from_dtype",
        marginal="auto",
        handle_unknown="error",
        add_indicator=False,
        keep_empty_features=False,
        sample_posterior=False,
    ):
        super().__init__(
            n_components=n_components,
            covariance_type=covariance_type,
            tol=tol,
            reg_covar=reg_covar,
            max_iter=max_iter,
            n_init=n_init,
            init_params=init_params,
            weights_init=weights_init,
            means_init=means_init,
            precisions_init=precisions_init,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
            verbose_interval=verbose_interval,
            accelerate=accelerate,
            prior=prior,
            n_jobs=n_jobs,
            learning_decay=learning_decay,
            categorical_features=categorical_features,
            ordinal_features=ordinal_features,
            marginal=marginal,
            handle_unknown=handle_unknown,
        )
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.sample_posterior = sample_posterior

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the mixture by EM on the observed entries of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN (or ``pd.NA``/``None`` in a DataFrame) for missing
            entries. A ``numpy.memmap`` (or an array of another library that
            slices by rows, such as an h5py dataset) of at least
            ``2 * 2**16`` rows is read block by block at every iteration,
            never whole: peak memory is a few blocks of ``2**16`` rows
            whatever its size. Without all the ``*_init`` values,
            ``init_params`` then runs on a random sample of ``2**16`` rows.
            :meth:`transform` of such an ``X`` also works block by block.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights: a row of integer weight ``w`` counts as
            ``w`` copies of itself, a row of weight 0 as no row at all (the
            internal standardisation is weighted too). None weighs every row 1.

        Returns
        -------
        self : EMImputer
            The fitted imputer.
        """
        if _dask.is_dask_collection(X):
            return _dask.fit(self, X, sample_weight)
        if _out_of_core.is_out_of_core(X, self._block_rows):
            return _out_of_core.fit(self, X, sample_weight)
        self._fit(X, sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit the mixture on ``X`` and return ``X`` imputed.

        Equal to ``fit(X).transform(X)``, but the rows prepared for the fit
        (standardised and sorted by missingness) are reused for the imputation
        instead of being prepared again.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN (or ``pd.NA``/``None`` in a DataFrame) for missing
            entries.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights of the fit (see :meth:`fit`).

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features_out)
            As returned by :meth:`transform`.
        """
        if _dask.is_dask_collection(X):
            return _dask.fit_transform(self, X, sample_weight)
        if _out_of_core.is_out_of_core(X, self._block_rows):
            _out_of_core.fit(self, X, sample_weight)
            return _out_of_core.infer(self, "transform", X)
        X_in = X
        X, data = self._fit(X, sample_weight)
        try:
            return self._decode(self._transform(X, data), X_in)
        finally:
            close(data)

    def _fit(self, X, sample_weight):
        """Validate ``X`` and fit; see :meth:`fit`.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The validated input.
        data : MissingData or None
            The standardised rows the model was fitted on, when they are all
            the rows of ``X`` (None when rows with nothing observed, or of
            weight 0, were left out of the fit).
        """
        with self._unchanged_on_failure():
            X = self._check_X(X, reset=True)
            sample_weight = check_sample_weight(sample_weight, X)
            self._set_empty_features(column_all(X, "isnan"), stacklevel=4)
            self._set_layout(~self._empty_features, X, sample_weight)
            data = self._fit_model(self._model_input(X), sample_weight)
            self.indicator_ = _fit_indicator(X) if self.add_indicator else None
        return X, data if data.n_samples == X.shape[0] else None

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the mixture with one batch of rows by online EM.

        One step of online EM (Cappé & Moulines 2009) per call: the batch's
        expected sufficient statistics at the current parameters, per row,
        move the running statistics by ``t ** -learning_decay`` of the way
        (step ``t``), and the fitted attributes are the M-step of those
        statistics averaged over the steps with weights proportional to
        ``t`` (Polyak-Ruppert averaging). The first call fits its batch as
        :meth:`fit` does (``converged_``, ``n_iter_`` and ``lower_bounds_``
        describe that fit) and starts the running statistics there; the
        first call after :meth:`fit` starts from the fitted parameters.
        Later calls leave those attributes as they were. Batches are
        weighted alike whatever their size. ``lower_bound_`` is the batch's
        mean observed-data log-likelihood at the parameters before the step.

        The first batch (or the data of a :meth:`fit` before it) fixes what
        ``fit`` takes from the whole data: the standardisation of the columns
        (their observed means and standard deviations in that batch), the
        features dropped as empty (no observed value in that batch; kept,
        filled with 0, with ``keep_empty_features=True``), the indicator's
        features and a ``prior='default'``'s hyperparameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of rows, with NaN for missing entries. The first batch
            needs at least ``n_components`` rows with an observed value.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights within the batch (see :meth:`fit`).

        Returns
        -------
        self : EMImputer
            The updated imputer.
        """
        with self._unchanged_on_failure():
            start = not hasattr(self, "_model_params")
            check_host(self, X, "partial_fit")
            X = self._check_X(X, reset=start)
            sample_weight = check_sample_weight(sample_weight, X)
            if start:
                self._set_empty_features(
                    np.isnan(X).all(axis=0), stacklevel=3, where=" in the first batch"
                )
                self._set_layout(~self._empty_features, X, sample_weight)
                self.indicator_ = _fit_indicator(X) if self.add_indicator else None
            partial_fit_model(self, self._model_input(X), sample_weight)
        return self

    def transform(self, X):
        """Fill each missing entry with its conditional expectation (or a draw).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN for missing entries.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features_out)
            ``X`` with missing entries filled (observed entries unchanged) by
            their conditional expectation, or by a draw from their conditional
            distribution if ``sample_posterior``,
            without the features that were empty at fit time unless
            ``keep_empty_features``, followed by the indicator columns if
            ``add_indicator``. Same float dtype as ``X``.
        """
        if _dask.is_dask_collection(X):
            return _dask.transform(self, X)
        if _out_of_core.is_out_of_core(X, self._block_rows):
            check_is_fitted(self)
            return _out_of_core.infer(self, "transform", X)
        check_is_fitted(self)
        self._check_namespace(X, "transform")
        return self._decode(self._transform(self._check_X(X, reset=False)), X)

    def _transform(self, X, data=None):
        """Impute validated ``X``; ``data``, if given, is its prepared model input."""
        X_model = self._model_input(X)
        rng = check_random_state(self.random_state) if self.sample_posterior else None
        X_hat = self._impute(X_model, data, random_state=rng)
        if not isinstance(X, np.ndarray):
            return self._fill_on_device(X, X_model, X_hat)
        missing = np.isnan(X_model)
        if X.dtype != X_hat.dtype:
            # float32 output: an imputation beyond float32's range would become
            # inf in the cast; clip it to the largest finite value instead.
            big = float(np.finfo(X.dtype).max)
            if (np.abs(X_hat[missing]) > big).any():
                warnings.warn(
                    f"Imputed values beyond the range of {X.dtype} were clipped to "
                    f"its largest finite value ({big:.8g} in magnitude); pass "
                    "float64 input to get them unclipped.",
                    UserWarning,
                    stacklevel=3,
                )
                X_hat = np.clip(X_hat, -big, big)
        # Observed entries are copied back from the input: bit for bit unchanged.
        X_filled = self._from_model_order(
            np.where(missing, X_hat.astype(X.dtype, copy=False), X_model)
        )
        if self._marginals is not None:  # X_model holds normal scores
            X_filled = np.where(
                self._from_model_order(missing), X_filled, X[:, self._model_features()]
            )
        if self.keep_empty_features and self._empty_features.any():
            # Empty-at-fit columns: 0 where missing (numbers; a categorical
            # column stays missing), observed values kept.
            out = np.where(np.isnan(X) & self._fill_empty_with_zero(), 0, X)
            out[:, ~self._empty_features] = X_filled
            X_filled = out
        if self.indicator_ is not None:
            X_filled = np.hstack(
                [X_filled, self.indicator_.transform(X).astype(X_filled.dtype)]
            )
        return X_filled

    def _fill_on_device(self, X, X_model, X_hat):
        """:meth:`_transform`'s output for an array API input (see ``_array_api``).

        The same filling as for NumPy input, in X's namespace and on its
        device (continuous columns only: no copula, no levels).
        """
        xp = namespace(X)
        # Observed entries are copied back from the input: bit for bit unchanged.
        out = xp.where(xp.isnan(X_model), xp.astype(X_hat, X.dtype), X_model)
        empty = self._empty_features
        if self.keep_empty_features and empty.any():
            # Empty-at-fit columns: 0 where missing, observed values kept,
            # put back among the others by one permutation of the columns.
            extra = xp.take(X, like(np.flatnonzero(empty), X), axis=1)
            extra = xp.where(xp.isnan(extra), xp.zeros_like(extra), extra)
            columns = np.concatenate([np.flatnonzero(~empty), np.flatnonzero(empty)])
            out = xp.take(
                xp.concat([out, extra], axis=1), like(np.argsort(columns), X), axis=1
            )
        if self.indicator_ is not None:
            features = like(self.indicator_.features_, X)
            indicator = xp.astype(xp.isnan(xp.take(X, features, axis=1)), out.dtype)
            out = xp.concat([out, indicator], axis=1)
        return out

    def get_feature_names_out(self, input_features=None):
        """Get output feature names for transformation.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input features; defaults to ``feature_names_in_`` or
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            Kept input names, then ``missingindicator_<name>`` for the
            indicator columns.
        """
        check_is_fitted(self)
        input_features = _check_feature_names_in(self, input_features)
        names = input_features if self.keep_empty_features else (
            input_features[~self._empty_features]
        )
        if self.indicator_ is None:
            return names
        indicator = self.indicator_.get_feature_names_out(input_features)
        return np.concatenate([names, indicator])

    def _set_empty_features(self, empty, *, stacklevel, where=""):
        """Record the features with no observed value; warn that they are dropped.

        ``stacklevel`` counts from the caller of this method.
        """
        self._empty_columns = tuple(bool(e) for e in empty)
        if empty.any() and not self.keep_empty_features:
            names = self._feature_names()[empty].tolist()
            warnings.warn(
                f"Skipping features without any observed values{where}: {names}. "
                "At least one non-missing value is needed for imputation; pass "
                "keep_empty_features=True to keep them (filled with 0).",
                UserWarning,
                stacklevel=stacklevel + 1,
            )

    @property
    def _empty_features(self):
        """Which features had no observed value in the fit, (n_features_in_,) bool.

        Stored as a tuple: the fitted attributes that are arrays follow the
        fit's array namespace and device (scikit-learn's array API checks).
        """
        return np.array(self._empty_columns, dtype=bool)

    def _fill_empty_with_zero(self):
        types = self._column_types
        if types is None:
            return True
        return types.kinds == "continuous"

    def _decode(self, X_out, X):
        """The imputed matrix as ``X``'s kind of table with its dtypes (typed input)."""
        types = self._column_types
        if types is None:
            return X_out
        keep = np.ones(self.n_features_in_, dtype=bool)
        if not self.keep_empty_features:
            keep = ~self._empty_features
        n_kept = int(keep.sum())
        out = types.decode(X_out[:, :n_kept], X, keep)
        if self.indicator_ is None:
            return out
        names = self.get_feature_names_out()[n_kept:]
        return types.append_indicator(out, X_out[:, n_kept:] > 0, names)

    def _standardization_of(self, data):
        # The mixture is fitted to standardised columns (see Notes): the
        # continuous ones (level codes and normal scores are not rescaled).
        layout = self._layout
        if layout is None:
            return Standardization.estimate(data, self.covariance_type)
        if layout.copula or not layout.n_gaussian:
            return None
        part = 0 if layout.n_levels else None
        return Standardization.estimate(data, self.covariance_type, part=part)

    def _model_features(self):
        return ~self._empty_features

    def _feature_names(self):
        return _check_feature_names_in(self, None)


def _fit_indicator(X):
    """``MissingIndicator(error_on_new=False)`` fitted to ``X``'s missing columns.

    An array API input is summarised on the host by one row that is NaN where
    its column has a missing entry: the indicator's features are those.
    """
    if not isinstance(X, np.ndarray):
        X = np.where(column_any(X, "isnan"), np.nan, 0.0)[None, :]
    return MissingIndicator(error_on_new=False).fit(X)

