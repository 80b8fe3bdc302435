"""_BaseEM: the parameters shared by both estimators and the call into the EM engine."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._em import run_em
from ._gaussian import GaussianMixtureModel, GaussianParams
from ._init import INIT_PARAMS, Initializer
from ._linalg import COVARIANCE_TYPES, compute_precisions, single_blas_thread
from ._patterns import prepare_missing_data
from ._prior import check_prior, default_prior
from ._validation import (
    Interval,
    StrOptions,
    check_means,
    check_precisions,
    check_weights,
    check_X,
)


class _BaseEM(BaseEstimator):
    """Shared parameters, fitting and inference of the EM estimators.

    Subclasses are thin: they validate ``X`` with :func:`check_X`, call
    :meth:`_fit_model` or one of the inference helpers, and shape the output.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions(set(INIT_PARAMS))],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "accelerate": [StrOptions({"squarem"}), None],
        "prior": [StrOptions({"default"}), dict, None],
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
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.accelerate = accelerate
        self.prior = prior

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- fitting --------------------------------------------------------------

    def _model(self):
        return GaussianMixtureModel(self.n_components, self.covariance_type, self.reg_covar)

    def _fit_model(self, X, sample_weight=None):
        """Fit the mixture to ``X`` (validated, NaN for missing) and set attributes.

        Rows with no observed entry carry no information about the parameters
        (their observed-data likelihood is 1 whatever the parameters) and are
        left out of the fit, as are rows of weight zero. ``sample_weight``
        (checked, or None) makes a row of weight ``w`` count as ``w`` copies.

        Returns
        -------
        data : MissingData
            The rows the model was fitted on, prepared (reusable for inference
            on the same rows).
        """
        n_features = X.shape[1]
        informative = ~np.isnan(X).all(axis=1)
        if sample_weight is not None:
            informative &= sample_weight > 0
        n_informative = int(informative.sum())
        if n_informative < self.n_components:
            weighted = "" if sample_weight is None else " and a positive sample_weight"
            raise ValueError(
                f"Expected at least n_components rows with an observed value{weighted} "
                f"but got n_components = {self.n_components}, rows with an observed "
                f"value{weighted} = {n_informative}. Reduce n_components or provide "
                "more data."
            )
        inits = self._initial_values(n_features)
        prior_values = None  # maximum likelihood
        if isinstance(self.prior, dict):
            prior_values = self._prior_values(n_features)
        elif self.prior == "default":
            prior_values = {}  # every hyperparameter from the data
        model = self._model()
        model.initializer = Initializer(model, self.init_params, *inits)
        if not informative.all():
            X = X[informative]
            sample_weight = None if sample_weight is None else sample_weight[informative]
        if sample_weight is not None and np.all(sample_weight == 1):
            sample_weight = None  # the unweighted fit, to the last random draw
        data = prepare_missing_data(X, self.n_components, sample_weight)
        warm = None
        if self.warm_start and hasattr(self, "converged_"):
            warm = (self._params(), self.lower_bound_)
        with single_blas_thread():
            if prior_values is not None:
                model.prior = default_prior(
                    prior_values, data, model, self.covariance_type
                )
            result = run_em(
                model,
                data,
                n_init=self.n_init,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=check_random_state(self.random_state),
                warm_start=warm,
                accelerate=self.accelerate,
                verbose=self.verbose,
                verbose_interval=self.verbose_interval,
            )
        params = result.params
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = compute_precisions(params.precisions_cholesky, self.covariance_type)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self.lower_bounds_ = result.lower_bounds
        self.prior_ = None if model.prior is None else model.prior.as_dict()
        return data

    def _prior_values(self, n_features):
        """Check the user's ``prior`` dict into the hyperparameters it gives."""
        return check_prior(self.prior, self.covariance_type, n_features)

    def _initial_values(self, n_features):
        """Check the user's initial values into a tuple (weights, means, precisions).

        Returns
        -------
        inits : tuple of (ndarray or None)
            Checked copies of ``weights_init``, ``means_init`` and
            ``precisions_init``, None where not given.
        """
        return (
            None if self.weights_init is None
            else check_weights(self.weights_init, self.n_components),
            None if self.means_init is None
            else check_means(self.means_init, self.n_components, n_features),
            None if self.precisions_init is None
            else check_precisions(
                self.precisions_init, self.covariance_type, self.n_components, n_features
            ),
        )

    # -- inference ------------------------------------------------------------

    def _params(self):
        return GaussianParams(
            self.weights_, self.means_, self.covariances_,
            self.precisions_cholesky_, self.covariance_type,
        )

    def _infer(self, method, X, *, data=None, **kwargs):
        """Call the model's inference ``method`` ('log_resp', ...) on validated X.

        ``data``, if given, is X already prepared (``prepare_missing_data``).
        """
        if data is None:
            data = prepare_missing_data(X, self.n_components)
        with single_blas_thread():
            return getattr(self._model(), method)(self._params(), data, **kwargs)

    def _log_resp(self, X):
        """Return per-row log-likelihoods and log-responsibilities of validated X."""
        return self._infer("log_resp", X)

    def score_samples(self, X):
        """Compute the observed-data log-likelihood of each sample.

        Missing entries are integrated out: a row's value is the log-density of
        its observed entries under the fitted mixture (0 for a row with nothing
        observed).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN for missing entries.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Log-likelihood of each sample's observed entries.
        """
        check_is_fitted(self)
        X = check_X(self, X, reset=False)
        return self._log_resp(self._model_input(X))[0]

    def score(self, X, y=None):
        """Compute the mean observed-data log-likelihood per sample.

        Higher is better, so ``GridSearchCV`` can choose ``n_components`` by
        held-out likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, with NaN for missing entries.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        log_likelihood : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def _model_input(self, X):
        """Select the columns the model was fitted on (all, for the clusterer)."""
        return X
