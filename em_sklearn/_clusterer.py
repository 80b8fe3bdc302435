"""EMClusterer: a Gaussian mixture fitted by EM that accepts NaN anywhere."""

import math

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _dask, _out_of_core
from ._array_api import argmax, check_host, exp, like, mean
from ._base import _GaussianEM, _like_input
from ._online import partial_fit_model
from ._parallel import close
from ._validation import (
    _fit_context,
    check_no_empty_columns,
    check_sample_weight,
)


class EMClusterer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, _GaussianEM
):
    """Gaussian mixture clustering of data with missing values, fitted by EM.

    What :class:`~sklearn.mixture.GaussianMixture` would be if it understood
    missing values: EM maximises the likelihood of the *observed* entries only,
    integrating each row's missing entries out under every component. On data
    without missing values it computes exactly what ``GaussianMixture`` does.

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

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The weights of each mixture component.

    means_ : ndarray of shape (n_components, n_features)
        The mean of each mixture component.

    covariances_ : ndarray
        The covariance of each mixture component. The shape depends on
        ``covariance_type``::

            (n_components,)                        if 'spherical',
            (n_features, n_features)               if 'tied',
            (n_components, n_features)             if 'diag',
            (n_components, n_features, n_features) if 'full'

    precisions_ : ndarray
        The precision matrices (inverses of the covariances), shaped as
        ``covariances_``.

    precisions_cholesky_ : ndarray
        Cholesky factors ``U`` of the precisions (``precisions_ = U @ U.T``),
        shaped as ``covariances_``.

    converged_ : bool
        True when the best initialization converged.

    n_iter_ : int
        Number of EM iterations of the best initialization.

    lower_bound_ : float
        Mean observed-data log-likelihood per row of the training data at the
        best initialization's last E-step (weighted by ``sample_weight``; with
        a ``prior``, the log-posterior: log-likelihood plus log-prior, per row).

    lower_bounds_ : list of float
        That quantity at every iteration of the best initialization.

    prior_ : dict or None
        The prior's hyperparameters used by the fit (the ``prior`` keys, the
        data-dependent defaults filled in), or None without a prior.

    labels_ : ndarray of shape (n_samples,)
        The component of highest responsibility for each training row. Not
        set by :meth:`fit` on data read block by block (see :meth:`fit`).

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
    EMImputer : Fill missing entries with conditional expectations under the
        same model.
    sklearn.mixture.GaussianMixture : The same model for complete data.

    Notes
    -----
    Row ``i`` with observed entries ``o`` has responsibilities
    ``r_ik ∝ pi_k N(x_o; mu_ko, S_koo)``; the M-step uses the conditional means
    of the missing entries and adds their conditional covariances to the second
    moments, so it is EM on the observed-data likelihood, not "fill then refit".
    A row with ``s`` missing entries costs ``O(s^3)`` per component on top of
    the complete-data work. Rows with nothing observed do not affect the fit;
    they are assigned to components by the weights. A column with no observed
    value raises a ValueError naming it (its parameters would be undetermined).
    Unlike :class:`EMImputer`, the clusterer works in the original units (as
    ``GaussianMixture``: absolute ``reg_covar``, k-means on the raw data), so
    standardise columns of very different scales first if that matters.

    Array API: with ``sklearn.set_config(array_api_dispatch=True)`` a torch
    tensor, CuPy array or other array API array (continuous columns) is fitted
    on its own device; fitted attributes and outputs follow ``X`` (namespace,
    device, float dtype). See the user guide's "Large data" page.

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
    >>> from em_sklearn import EMClusterer
    >>> X = np.array([[1.0, 2.0], [1.2, np.nan], [0.9, 1.8],
    ...               [8.0, 9.0], [np.nan, 9.2], [8.1, 8.8]])
    >>> clusterer = EMClusterer(n_components=2, covariance_type="diag",
    ...                         random_state=0).fit(X)
    >>> clusterer.labels_[:3].tolist() == [clusterer.labels_[0]] * 3
    True
    >>> clusterer.predict([[np.nan, 1.9], [8.2, np.nan]]).tolist() == [
    ...     clusterer.labels_[0], clusterer.labels_[3]]
    True
    """

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the mixture by EM on the observed entries of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN for missing entries. A ``numpy.memmap`` (or an
            array of another library that slices by rows, such as an h5py
            dataset) of at least ``2 * 2**16`` rows is read block by block at
            every iteration, never whole: peak memory is a few blocks of
            ``2**16`` rows whatever its size. Without all the ``*_init``
            values, ``init_params`` then runs on a random sample of ``2**16``
            rows, and ``labels_`` is not set.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights: a row of integer weight ``w`` counts as
            ``w`` copies of itself, a row of weight 0 as no row at all. None
            weighs every row 1.

        Returns
        -------
        self : EMClusterer
            The fitted estimator.
        """
        if _out_of_core.is_out_of_core(X, self._block_rows):
            return _out_of_core.fit(self, X, sample_weight)  # (no labels_)
        self.fit_predict(X, y, sample_weight=sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_predict(self, X, y=None, sample_weight=None):
        """Estimate the mixture from ``X`` and return the labels of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN for missing entries.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights (see :meth:`fit`).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.
        """
        if _dask.is_dask_collection(X):
            return _dask.fit_predict(self, X, sample_weight)
        if _out_of_core.is_out_of_core(X, self._block_rows):
            _out_of_core.fit(self, X, sample_weight)
            self.labels_ = _out_of_core.infer(self, "predict", X)
            return self.labels_
        with self._unchanged_on_failure():
            X = self._check_X(X, reset=True)
            sample_weight = check_sample_weight(sample_weight, X)
            check_no_empty_columns(self, X)
            self._set_layout(np.ones(X.shape[1], dtype=bool), X, sample_weight)
            X = self._model_input(X)
            data = self._fit_model(X, sample_weight)
            # A final E-step so that fit_predict(X) equals fit(X).predict(X), on the
            # rows prepared for the fit when they are all of X (the same arrays
            # predict would prepare).
            if data.n_samples != X.shape[0]:
                close(data)
                data = None
            try:
                self.labels_ = argmax(self._log_resp(X, data)[1], axis=1)
            finally:
                close(data)
        return self.labels_

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
        describe that fit; ``labels_`` is not set) and starts the running
        statistics there; the first call after :meth:`fit` starts from the
        fitted parameters. Later calls leave those attributes as they were.
        Batches are weighted alike whatever their size. ``lower_bound_`` is
        the batch's mean observed-data log-likelihood at the parameters
        before the step.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of rows, with NaN for missing entries. The first batch
            needs at least ``n_components`` rows with an observed value, and
            every column observed.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights within the batch (see :meth:`fit`).

        Returns
        -------
        self : EMClusterer
            The updated estimator.
        """
        with self._unchanged_on_failure():
            check_host(self, X, "partial_fit")
            start = not hasattr(self, "_model_params")
            X = self._check_X(X, reset=start)
            sample_weight = check_sample_weight(sample_weight, X)
            if start:
                check_no_empty_columns(self, X)
                self._set_layout(np.ones(X.shape[1], dtype=bool), X, sample_weight)
            partial_fit_model(self, self._model_input(X), sample_weight)
        return self

    def predict(self, X):
        """Predict the component of highest responsibility for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN for missing entries.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.
        """
        return argmax(self._responsibilities(X, "predict"), axis=1)

    def predict_proba(self, X):
        """Compute each component's responsibility for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN for missing entries.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Posterior probability of each component given the observed entries.
        """
        return self._responsibilities(X, "predict_proba")

    def _responsibilities(self, X, method):
        """:meth:`predict_proba`, for ``method`` (which errors name)."""
        if _dask.is_dask_collection(X):
            return _dask.predict_proba(self, X)
        if _out_of_core.is_out_of_core(X, self._block_rows):
            check_is_fitted(self)
            return _out_of_core.infer(self, "predict_proba", X)
        check_is_fitted(self)
        self._check_namespace(X, method)
        X = self._check_X(X, reset=False)
        return _like_input(exp(self._log_resp(self._model_input(X))[1]), X)

    def transform(self, X):
        """Transform ``X`` into its responsibilities (same as :meth:`predict_proba`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN for missing entries.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Posterior probability of each component.
        """
        return self._responsibilities(X, "transform")

    def _n_parameters(self):
        return self._model().n_parameters(self._fitted_params())

    @property
    def _n_features_out(self):
        return self.n_components_

    def bic(self, X):
        """Bayesian information criterion of the observed data ``X``.

        ``-2 * log L + n_parameters * log(n_samples)`` with ``log L`` the
        observed-data log-likelihood and the parameters counted as in
        ``GaussianMixture``. With a ``prior``, ``log L`` is still the
        likelihood (not the posterior) at the MAP estimate, as in mclust.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN for missing entries.

        Returns
        -------
        bic : float
            Lower is better.
        """
        log_prob = self.score_samples(X)  # one inference pass
        n_samples = log_prob.shape[0]
        log_likelihood = mean(log_prob) * n_samples
        return -2 * log_likelihood + self._n_parameters() * math.log(n_samples)

    def aic(self, X):
        """Akaike information criterion of the observed data ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN for missing entries.

        Returns
        -------
        aic : float
            ``-2 * log L + 2 * n_parameters`` with ``log L`` the observed-data
            log-likelihood (also with a ``prior``); lower is better.
        """
        log_prob = self.score_samples(X)  # one inference pass
        log_likelihood = mean(log_prob) * log_prob.shape[0]
        return -2 * log_likelihood + 2 * self._n_parameters()

    def sample(self, n_samples=1):
        """Generate random complete samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Randomly generated samples, grouped by component: floats, or an
            object array holding the levels of nominal, ordinal and binary
            columns when the fit had such columns.
        y : ndarray of shape (n_samples,)
            Component labels.
        """
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples}. The sampling requires "
                "at least one sample."
            )
        X, y = self._model().sample(
            self._fitted_params(), n_samples, check_random_state(self.random_state)
        )
        # (an array API fit samples in its namespace, on its device, as means_)
        fitted = getattr(self, "means_", None)
        return like(self._model_output(X), fitted), like(y, fitted)
