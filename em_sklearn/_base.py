"""Estimator bases: model-agnostic fitting and inference; both estimators' mixture."""

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _dask, _out_of_core
from ._array_api import (
    check_same_namespace,
    host_input,
    informative_rows,
    keep_rows,
    mean,
    namespace,
    on_device,
    take,
)
from ._categorical import CategoricalFamily
from ._columns import ColumnTypes, CopulaColumns, model_layout
from ._copula import CopulaFamily
from ._em import run_em
from ._gaussian import COVARIANCE_TYPES, check_prior, gaussian_mixture, prior_attribute
from ._init import INIT_PARAMS
from ._mixture import MixtureModel
from ._parallel import BLOCK_ROWS, close, prepare_blocks
from ._product import ProductFamily, part_of
from ._threads import single_blas_thread
from ._validation import (
    Interval,
    StrOptions,
    check_means,
    check_precisions,
    check_weights,
    check_X,
    validate_data,
)

# n_components='auto' tries 1 .. AUTO_MAX_COMPONENTS components (BIC).
AUTO_MAX_COMPONENTS = 10


class _BaseEM(BaseEstimator):
    """Fitting through the EM loop and inference calls, for any mixture model.

    Knows no model family. A subclass gives the model through four hooks:
    ``_model()`` (the model for preparing data, inference and mapping
    parameters to fitted attributes), ``_build_model(data, **values)`` (the
    model of a fit, built whole), ``_user_values(n_features)`` (the user's
    checked initial values and prior) and ``_prior_attribute(model)``; and
    the EM settings ``n_components``, ``n_init``, ``max_iter``, ``tol``,
    ``random_state``, ``warm_start``, ``accelerate``, ``verbose`` and
    ``verbose_interval``.
    """

    # Rows per block (``_parallel``): a setting of the engine, not a parameter.
    _block_rows = BLOCK_ROWS

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.array_api_support = True  # continuous columns (``_array_api``)
        return tags

    def _model(self):
        raise NotImplementedError

    def _check_X(self, X, *, reset):
        """Validate ``X`` and return it as a float ndarray with NaN (``check_X``)."""
        return check_X(self, X, reset=reset)

    def _build_model(self, data, **values):
        raise NotImplementedError

    def _user_values(self, n_features):
        return {}

    def _prior_attribute(self, model):
        return None

    def _standardization_of(self, data):
        """The standardisation the model is fitted in (``_standardize``), or None."""
        return None

    def _check_warm_start(self, n_features):
        """Refuse a warm start that cannot continue the previous fit (ValueError)."""

    @contextmanager
    def _unchanged_on_failure(self):
        """Leave the estimator exactly as it was when a fit fails.

        Validation records the new data's features before the fit can fail;
        without this a failed refit would leave a half-updated estimator whose
        later ``transform`` fails with an unrelated error.
        """
        state = dict(vars(self))
        try:
            yield
        except BaseException:
            vars(self).clear()
            vars(self).update(state)
            raise

    def _fit_model(self, X, sample_weight=None):
        """Fit the mixture to ``X`` (validated, NaN for missing) and set attributes.

        Rows with no observed entry carry no information about the parameters
        (their observed-data likelihood is 1 whatever the parameters) and are
        left out of the fit, as are rows of weight zero. ``sample_weight``
        (checked, or None) makes a row of weight ``w`` count as ``w`` copies.

        Returns
        -------
        data : MissingData
            The rows the model was fitted on, prepared (in model units:
            reusable for inference on the same rows).
        """
        n_features = X.shape[1]
        informative = informative_rows(X, sample_weight)
        n_informative = int(informative.sum())
        n_components = self._min_components()
        if n_informative < n_components:
            weighted = "" if sample_weight is None else " and a positive sample_weight"
            raise ValueError(
                f"Expected at least n_components rows with an observed value{weighted} "
                f"but got n_components = {n_components}, rows with an observed "
                f"value{weighted} = {n_informative}. Reduce n_components or provide "
                "more data."
            )
        values = self._user_values(n_features)  # checked before any work
        if self.warm_start and hasattr(self, "converged_"):
            self._check_warm_start(n_features)
        X, sample_weight = keep_rows(X, sample_weight, informative)
        if sample_weight is not None and np.all(sample_weight == 1):
            sample_weight = None  # the unweighted fit, to the last random draw
        data = self._prepare(X, sample_weight)
        try:
            return self._fit_prepared(data, values, dtype=X.dtype)
        except BaseException:
            close(data)
            raise

    def _min_components(self):
        """The fewest components a fit tries (``n_components='auto'`` starts at 1)."""
        return 1 if self.n_components == "auto" else self.n_components

    def _n_components(self):
        """The number of components of the fitted (or, in a fit, the next) model."""
        if self.n_components != "auto":
            return self.n_components
        return getattr(self, "n_components_", 1)

    def _fit_prepared(self, data, values, dtype=np.float64):
        """Fit on prepared ``data`` (see :meth:`_fit_model`).

        The fitted arrays take ``dtype``, X's float dtype (the fit itself runs
        in float64 on the CPU), as ``GaussianMixture``'s do; an array API fit's
        follow X's namespace, device and dtype.

        With ``n_components='auto'``, fit ``k = 1, 2, ...`` components (up to
        ``AUTO_MAX_COMPONENTS`` and the number of rows) and keep the fit of
        lowest BIC, stopping once two successive ``k`` have not improved it.
        """
        std = self._standardization_of(data)
        with_prior = values.get("prior") is not None
        if std is not None:
            data = std.standardize_data(data)
            values = std.values_to_model(values)
        warm = self.warm_start and hasattr(self, "converged_")
        if self.n_components == "auto" and not warm:
            candidates = range(1, min(AUTO_MAX_COMPONENTS, int(data.n_samples)) + 1)
        else:
            candidates = [self._n_components()]
        best, scores = None, {}
        for n_components in candidates:
            offset = 0.0
            if std is not None:
                offset = std.objective_offset(data, n_components, with_prior)
            warm_values = None
            if warm:
                params = self._fitted_params()
                if std is not None:
                    params = std.params_to_model(params)
                warm_values = (params, self.lower_bound_ + offset)
            with single_blas_thread():
                model = self._build_model(data, n_components=n_components, **values)
                result = run_em(
                    model,
                    data,
                    n_init=self.n_init,
                    max_iter=self.max_iter,
                    tol=self.tol,
                    random_state=check_random_state(self.random_state),
                    warm_start=warm_values,
                    accelerate=self.accelerate,
                    verbose=self.verbose,
                    verbose_interval=self.verbose_interval,
                )
            if len(candidates) > 1:
                # BIC of the fitted objective, in original units.
                total = data.total_weight
                log_likelihood = (result.lower_bound - offset) * total
                n_parameters = model.n_parameters(result.params)
                scores[n_components] = (
                    -2.0 * log_likelihood + n_parameters * np.log(total)
                )
                if best is not None and scores[n_components] >= scores[best[0]]:
                    if n_components - best[0] >= 2:
                        break
                    continue
            best = (n_components, model, result, offset)
        n_components, model, result, offset = best
        # The public attributes are derived once, in original units; inference
        # uses the parameters in the model's units as the fit left them.
        params, prior_ = result.params, self._prior_attribute(model)
        if std is not None:
            params = std.params_to_original(params)
            prior_ = std.prior_to_original(prior_)
        for name, value in _attributes_as(model.attributes(params), data, dtype):
            setattr(self, name, value)
        self._model_params = result.params
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound - offset
        self.lower_bounds_ = [bound - offset for bound in result.lower_bounds]
        self.prior_ = prior_
        self._standardization = std
        self.n_components_ = n_components
        self.bic_scores_ = scores or None
        return data

    # -- inference ------------------------------------------------------------

    def _fitted_params(self):
        """The fitted parameters, read from the public attributes (original units).

        What a warm start continues from (with the new data's standardisation)
        and what ``sample`` and ``bic`` read.
        """
        return self._model().params_from_attributes(self)

    def _prepare(self, X, sample_weight=None):
        """Prepare ``X`` for the model, in blocks worked on by ``n_jobs`` processes."""
        if not isinstance(X, np.ndarray):  # an array API device: one block
            return self._model().prepare(X, sample_weight)
        n_jobs = effective_n_jobs(getattr(self, "n_jobs", None))
        return prepare_blocks(
            self._model().prepare, X, sample_weight, n_jobs, self._block_rows
        )

    def _run_inference(self, method, X, data, *args):
        """Run the model's inference ``method`` on ``X`` (or its prepared ``data``)."""
        if data is not None:
            with single_blas_thread():
                return method(self._model(), self._model_params, data, *args)
        std = self._standardization
        data = self._prepare(X if std is None else std.standardize(X))
        try:
            with single_blas_thread():
                return method(self._model(), self._model_params, data, *args)
        finally:
            close(data)

    def _log_resp(self, X, data=None):
        """Return per-row log-likelihoods and log-responsibilities of model input X.

        ``data``, if given, is X already prepared (by the fit).
        """
        log_prob, log_resp = self._run_inference(MixtureModel.log_resp, X, data)
        if self._standardization is not None:
            # Density of x_o = density of its standardised value / prod_j s_j.
            if isinstance(X, np.ndarray):
                observed = ~np.isnan(X)
            else:
                xp = namespace(X)
                observed = xp.astype(~xp.isnan(X), X.dtype)
            log_prob = log_prob + self._standardization.log_density_offset(observed)
        return log_prob, log_resp

    def _impute(self, X, data=None, random_state=None):
        """Return E[x | x_o] of model input X (a posterior draw with ``random_state``).

        Observed entries are those of the zero-filled input; callers put the
        original values back.
        """
        if random_state is None:
            X_hat = self._run_inference(MixtureModel.conditional_mean, X, data)
        else:
            X_hat = self._run_inference(
                MixtureModel.posterior_draw, X, data, random_state
            )
        if self._standardization is not None:
            X_hat = self._standardization.unstandardize(X_hat)
        return X_hat

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
        if _dask.is_dask_collection(X):
            return _dask.score_samples(self, X)
        if _out_of_core.is_out_of_core(X, self._block_rows):
            check_is_fitted(self)
            return _out_of_core.infer(self, "score_samples", X)
        check_is_fitted(self)
        self._check_namespace(X, "score_samples")
        X = self._check_X(X, reset=False)
        return _like_input(self._log_resp(self._model_input(X))[0], X)

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
        return mean(self.score_samples(X))

    def _check_namespace(self, X, method):
        """Refuse ``X`` of another array namespace or device than the fit's.

        scikit-learn's array API convention (with ``array_api_dispatch`` on):
        a ValueError that says how to move the estimator.
        """
        check_same_namespace(X, self, attribute="weights_", method=method)

    def _model_input(self, X):
        """Select the columns the model was fitted on (all, for the clusterer)."""
        return X

    def _model_features(self):
        """Which input features the model was fitted on: (n_features_in_,) bool."""
        return np.ones(self.n_features_in_, dtype=bool)


def _attributes_as(attributes, data, dtype):
    """Fitted arrays in X's float dtype; an array API fit's on its device.

    NumPy arrays stay float64 when a value would overflow ``dtype`` (float32
    data near its largest value: the fit, in float64, holds its variances).

    Returns
    -------
    items : iterable of (name, value)
    """
    if getattr(data, "on_device", False):
        return [(name, data.from_host(value)) for name, value in attributes.items()]
    if dtype == np.float64:
        return attributes.items()
    cast = {}
    with np.errstate(over="ignore"):
        for name, value in attributes.items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                new = value.astype(dtype)
                if not np.array_equal(np.isfinite(new), np.isfinite(value)):
                    return attributes.items()
                value = new
            cast[name] = value
    return cast.items()


def _like_input(out, X):
    """Float results of the NumPy path in X's float dtype (float32 stays)."""
    if isinstance(out, np.ndarray) and X.dtype == np.float32:
        return out.astype(np.float32)
    return out


class _GaussianEM(_BaseEM):
    """The Gaussian mixture of both estimators: its parameters and its model.

    Subclasses are thin: they validate ``X`` with :func:`check_X`, call
    :meth:`_fit_model` or one of the inference helpers, and shape the output.
    """

    _parameter_constraints: dict = {
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
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
        "n_jobs": [Integral, None],
        "learning_decay": [Interval(Real, 0.5, 1.0, closed="right")],
        "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
        "ordinal_features": ["array-like", dict, StrOptions({"from_dtype"}), None],
        "marginal": [StrOptions({"auto", "gaussian", "copula"})],
        "handle_unknown": [StrOptions({"error", "missing"})],
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
        self.n_jobs = n_jobs
        self.learning_decay = learning_decay
        self.categorical_features = categorical_features
        self.ordinal_features = ordinal_features
        self.marginal = marginal
        self.handle_unknown = handle_unknown

    # -- column types ---------------------------------------------------------

    def _check_X(self, X, *, reset):
        """Validate ``X``; return it as floats (numbers, level codes, NaN).

        In ``fit`` (``reset``) the column types are decided
        (:class:`~em_sklearn._columns.ColumnTypes`; None when every column is
        a float column, the numeric path of :func:`check_X`).
        """
        if on_device(X):
            # An array of another array API namespace: float columns only.
            if reset:
                self._check_device_settings()
            types = None
        elif reset:
            X = host_input(X)
            types = ColumnTypes.infer(
                self, X, self.categorical_features, self.ordinal_features
            )
        else:
            X = host_input(X)
            types = self._column_types
        if types is None:
            X_checked = check_X(self, X, reset=reset)
        else:
            validate_data(self, X, reset=reset, skip_check_array=True)
            X_checked = types.encode(self, X, self.handle_unknown)
        if reset:
            self._column_types = types
            if types is None:
                self._feature_kinds = ("continuous",) * X_checked.shape[1]
                self.categories_ = [None] * X_checked.shape[1]
            else:
                types.check_levels(self, X_checked)
                self._feature_kinds = tuple(types.kinds)
                self.categories_ = types.categories
        return X_checked

    @property
    def feature_types_(self):
        """Each input feature's kind, an ndarray of str (see the class docstring).

        Kept as a tuple: as scikit-learn's ``classes_``, strings stay NumPy's
        when the fit's arrays are on an array API device.
        """
        return np.asarray(self._feature_kinds, dtype=object)

    def _check_device_settings(self):
        """Refuse what the array API path does not do (ValueError, naming it)."""
        refused = [
            f"{name}={value!r}"
            for name, value, allowed in (
                ("categorical_features", self.categorical_features, ("from_dtype",)),
                ("ordinal_features", self.ordinal_features, ("from_dtype",)),
                ("marginal", self.marginal, ("auto", "gaussian")),
            )
            if value is not None and not (isinstance(value, str) and value in allowed)
        ]
        if refused:
            raise ValueError(
                f"{type(self).__name__} fits arrays of another array API namespace "
                "(torch, CuPy, ...) as continuous columns with Gaussian components; "
                f"{refused[0]} needs the NumPy path. Pass a NumPy array or a "
                "DataFrame for mixed-type columns, or leave the parameter at its "
                "default."
            )

    def _set_layout(self, keep, X=None, sample_weight=None):
        """Decide the model's columns and families, and estimate the copula's
        marginals from validated ``X`` (in ``fit``, after ``_check_X``)."""
        types = self._column_types
        self._marginals = None
        typed = types is not None and types.typed
        marginal = self.marginal
        if marginal == "auto":  # measured in benchmarks/mixed.py (user guide)
            marginal = "copula" if typed else "gaussian"
        if not typed and marginal == "gaussian":
            self._layout = None
            return
        self._layout = layout = model_layout(types, keep, marginal)
        if layout.copula:
            if X is None:
                raise NotImplementedError(
                    "marginal='copula' needs the data's marginals, estimated in "
                    "fit on data in memory; use marginal='gaussian' here."
                )
            latent = np.take(X, layout.order[: layout.n_gaussian], axis=1)
            self._marginals = CopulaColumns.estimate(
                latent, layout.latent_levels, sample_weight
            )

    def _model_input(self, X):
        """The model's columns of validated ``X``, in the model's order."""
        # One memory layout whatever X's, so that the rounding of the column
        # sums, hence the results, do not depend on it; no copy when no feature
        # was dropped and X is C-contiguous (fit and transform only read it).
        layout = getattr(self, "_layout", None)
        if layout is not None:
            X = np.take(X, layout.order, axis=1)
            if self._marginals is not None:  # normal scores; codes as they are
                g = layout.n_gaussian
                X[:, :g] = self._marginals.to_latent(X[:, :g])
            return X
        keep = self._model_features()
        if not keep.all():
            X = take(X, keep, axis=1)
        return np.ascontiguousarray(X) if isinstance(X, np.ndarray) else X

    def _impute(self, X, data=None, random_state=None):
        """Imputations of model input ``X``, copula columns mapped back to values."""
        return self._from_latent(super()._impute(X, data, random_state))

    def _from_latent(self, X_model):
        """Map the copula block's latent values back through the marginals."""
        if getattr(self, "_marginals", None) is not None:
            g = self._layout.n_gaussian
            X_model[:, :g] = self._marginals.from_latent(X_model[:, :g])
        return X_model

    def _from_model_order(self, X_model):
        """Put the model's columns back in input order (kept columns only)."""
        layout = getattr(self, "_layout", None)
        return X_model if layout is None else X_model[:, layout.inverse]

    def _model_output(self, X_model):
        """Model values (e.g. samples) as input columns: levels for typed columns."""
        X = self._from_model_order(self._from_latent(X_model))
        types = self._column_types
        if types is None:
            return X
        keep = self._model_features()
        return types.decode(X, None, keep)

    # -- the model ------------------------------------------------------------

    def _model(self):
        return self._mixture(self._n_components())

    def _build_model(self, data, n_components=None, **values):
        return self._mixture(
            n_components or self._n_components(),
            init_params=self.init_params,
            data=data,
            **values,
        )

    def _mixture(self, n_components, *, init_params="kmeans", data=None, **values):
        """The mixture of the fit's layout: Gaussian, or Gaussian x categorical."""
        layout = getattr(self, "_layout", None)
        if layout is None:
            return gaussian_mixture(
                n_components,
                self.covariance_type,
                self.reg_covar,
                init_params=init_params,
                data=data,
                **values,
            )
        g, product = layout.n_gaussian, bool(layout.n_gaussian and layout.n_levels)
        parts = []
        if g:
            gaussian = gaussian_mixture(
                n_components,
                self.covariance_type,
                self.reg_covar,
                init_params=init_params,
                data=part_of(data, 0) if product and data is not None else data,
                **values,
            )
            family = gaussian.family
            if layout.copula:
                family = CopulaFamily(
                    self._marginals.marginals.cuts,
                    self.covariance_type,
                    self.reg_covar,
                    prior=family.prior,
                    means_init=values.get("means_init"),
                    precisions_init=values.get("precisions_init"),
                )
            parts.append((family, np.arange(g)))
        if layout.n_levels:
            categorical = CategoricalFamily(layout.n_levels)
            parts.append((categorical, np.arange(g, g + len(layout.n_levels))))
        prior = values.get("prior")
        return MixtureModel(
            ProductFamily(parts) if product else parts[0][0],
            n_components,
            init_params=init_params,
            weights_init=values.get("weights_init"),
            weight_concentration=(
                None if prior is None else prior.get("weight_concentration_prior", 1.0)
            ),
        )

    def _latent_family(self, model):
        """The model's Gaussian (or copula) family, or None (nominal columns only)."""
        layout = getattr(self, "_layout", None)
        family = model.family
        if layout is not None and layout.n_levels:
            family = family.families[0] if layout.n_gaussian else None
        return family

    def _prior_attribute(self, model):
        family = self._latent_family(model)
        return prior_attribute(
            None if family is None else family.prior, model.weight_concentration
        )

    def _check_warm_start(self, n_features):
        previous = self._model_params
        layout = getattr(self, "_layout", None)
        new = {
            "n_components": self._n_components(),
            "covariance_type": self.covariance_type,
            "number of features": n_features if layout is None else layout.n_gaussian,
            "levels of the nominal features": () if layout is None else layout.n_levels,
        }
        old = {"n_components": previous.n_components, **_describe(previous.components)}
        changes = [name for name in new if name in old and old[name] != new[name]]
        if changes:
            name = changes[0]
            raise ValueError(
                f"warm_start=True continues the previous fit, whose {name} is "
                f"{old[name]!r}; got {new[name]!r}. Set warm_start=False to fit from "
                "scratch."
            )

    def _user_values(self, n_features):
        """Check the user's initial values and prior (before any work on the data).

        Returns
        -------
        values : dict
            ``weights_init``, ``means_init`` and ``precisions_init`` (checked
            copies, None where not given) and ``prior`` (None: maximum
            likelihood; a dict of checked hyperparameters, empty for
            ``prior='default'``).
        """
        layout = getattr(self, "_layout", None)
        if layout is not None:
            n_features = layout.n_gaussian  # initial values: latent columns only
        if self.n_components == "auto":
            given = [
                name
                for name in ("weights_init", "means_init", "precisions_init")
                if getattr(self, name) is not None
            ]
            if given:
                raise ValueError(
                    f"n_components='auto' chooses the number of components, so "
                    f"{given[0]} (whose shape depends on it) cannot be given. Set "
                    "n_components to an int to use initial values."
                )
        prior = self.prior
        if prior == "default":
            prior = {}  # every hyperparameter from the data
        elif prior is not None:
            prior = check_prior(prior, self.covariance_type, n_features)
        return {
            "weights_init": None if self.weights_init is None
            else check_weights(self.weights_init, self.n_components),
            "means_init": None if self.means_init is None
            else check_means(self.means_init, self.n_components, n_features),
            "precisions_init": None if self.precisions_init is None
            else check_precisions(
                self.precisions_init,
                self.covariance_type,
                self.n_components,
                n_features,
            ),
            "prior": prior,
        }


def _describe(components):
    """What a warm start must keep of fitted parameters (one family or a product)."""
    out = {"levels of the nominal features": ()}
    for part in components if isinstance(components, tuple) else (components,):
        if hasattr(part, "probabilities"):  # the categorical family's
            out["levels of the nominal features"] = tuple(
                p.shape[1] for p in part.probabilities
            )
        else:
            out["covariance_type"] = part.covariance_type
            out["number of features"] = part.n_features
    return out
