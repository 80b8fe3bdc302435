"""Displays in scikit-learn's style: mixture ellipses with imputed points, convergence.

matplotlib is an optional dependency (the ``plot`` extra): it is imported
inside the plotting methods only, so ``import em_sklearn`` never needs it.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._validation import check_X

__all__ = ["ConvergenceDisplay", "MixtureDisplay"]


def _import_pyplot(caller):
    """Return ``matplotlib.pyplot``, or raise an ImportError saying how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib, an optional dependency of em_sklearn. "
            'Install it with: pip install "em_sklearn[plot]" (or pip install '
            "matplotlib)."
        ) from exc
    return plt


def _get_ax(ax, caller):
    """Return ``(ax, figure)``: the given axes or new ones."""
    plt = _import_pyplot(caller)
    if ax is None:
        _, ax = plt.subplots()
    return ax, ax.figure


def _feature_index(estimator, feature):
    """Position of ``feature`` (an int or a name in ``feature_names_in_``)."""
    n_features = estimator.n_features_in_
    if isinstance(feature, str):
        names = getattr(estimator, "feature_names_in_", None)
        if names is None or feature not in names:
            raise ValueError(
                f"Feature {feature!r} is not a feature seen during fit. Pass an "
                "integer position or one of feature_names_in_."
            )
        return int(np.flatnonzero(names == feature)[0])
    feature = int(feature)
    if not 0 <= feature < n_features:
        raise ValueError(
            f"Expected a feature position in [0, {n_features}) but got {feature}."
        )
    return feature


def _feature_name(estimator, j):
    names = getattr(estimator, "feature_names_in_", None)
    return str(names[j]) if names is not None else f"x{j}"


def _model_columns(estimator):
    """Map input feature positions to the model's (EMImputer drops empty features)."""
    if not hasattr(estimator, "_model_features"):  # e.g. GaussianMixture
        return np.arange(estimator.n_features_in_)
    used = estimator._model_features()  # (n_features_in_,) bool
    positions = np.full(len(used), -1)
    positions[used] = np.arange(int(used.sum()))
    return positions


def _covariances_2d(estimator, cols):
    """The 2 x 2 covariance of each component over the model columns ``cols``.

    Returns
    -------
    covariances : ndarray of shape (n_components, 2, 2)
    """
    cov = np.asarray(estimator.covariances_)
    n_components = len(estimator.weights_)
    ct = estimator.covariance_type
    if ct == "full":
        return cov[:, cols][:, :, cols]
    if ct == "tied":
        return np.broadcast_to(cov[np.ix_(cols, cols)], (n_components, 2, 2)).copy()
    if ct == "diag":
        return np.stack([np.diag(c[cols]) for c in cov])
    return cov[:, None, None] * np.eye(2)  # spherical


def _ellipse_geometry(covariance, n_std):
    """Width, height, angle (degrees) of the ``n_std`` ellipse of a 2x2 covariance."""
    # eigh sorts eigenvalues ascending: the last eigenvector is the major axis.
    eigvals, eigvecs = np.linalg.eigh(covariance)
    eigvals = np.clip(eigvals, 0.0, None)
    width, height = 2.0 * n_std * np.sqrt(eigvals[::-1])
    angle = np.degrees(np.arctan2(eigvecs[1, -1], eigvecs[0, -1]))
    return width, height, angle


class MixtureDisplay:
    """Mixture components as ellipses over two features, with imputed points marked.

    Build it with :meth:`from_estimator`; the constructor only stores what
    :meth:`plot` draws. Points whose two plotted coordinates were both observed
    are drawn as dots; points with a missing coordinate among the two are drawn
    at their imputed position (the conditional expectation given the row's
    observed entries, as :class:`EMImputer` fills it) with a cross.

    Parameters
    ----------
    X_plot : ndarray of shape (n_samples, 2)
        The two plotted coordinates, missing ones replaced by their imputation.
    imputed_mask : ndarray of shape (n_samples,), dtype=bool
        True for the rows with a missing coordinate among the two plotted ones.
    labels : ndarray of shape (n_samples,)
        Component of highest responsibility of each row.
    weights : ndarray of shape (n_components,)
        Mixture weights.
    means : ndarray of shape (n_components, 2)
        Component means over the two plotted features.
    covariances : ndarray of shape (n_components, 2, 2)
        Component covariances over the two plotted features.
    feature_names : tuple of str
        Names of the two plotted features (axis labels).

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the plot.
    figure_ : matplotlib Figure
        Figure containing the plot.
    ellipses_ : list of matplotlib Ellipse
        One ellipse per component.
    observed_ : matplotlib PathCollection
        The observed points.
    imputed_ : matplotlib PathCollection
        The imputed points.

    See Also
    --------
    ConvergenceDisplay : The log-likelihood per EM iteration.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from em_sklearn import EMClusterer, MixtureDisplay
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
    >>> X[rng.random(X.shape) < 0.2] = np.nan
    >>> clusterer = EMClusterer(n_components=2, random_state=0).fit(X)
    >>> display = MixtureDisplay.from_estimator(clusterer, X)
    >>> len(display.ellipses_)
    2
    """

    def __init__(
        self,
        *,
        X_plot,
        imputed_mask,
        labels,
        weights,
        means,
        covariances,
        feature_names,
    ):
        self.X_plot = X_plot
        self.imputed_mask = imputed_mask
        self.labels = labels
        self.weights = weights
        self.means = means
        self.covariances = covariances
        self.feature_names = feature_names

    @classmethod
    def from_estimator(cls, estimator, X, *, features=(0, 1), ax=None, n_std=2.0):
        """Plot a fitted estimator's mixture over two features of ``X``.

        Parameters
        ----------
        estimator : EMClusterer, EMImputer or GaussianMixture
            A fitted estimator. scikit-learn's
            :class:`~sklearn.mixture.GaussianMixture` works too, on data
            without missing values.
        X : array-like of shape (n_samples, n_features)
            Data with NaN for missing entries, as passed to ``fit``.
        features : tuple of two int or str, default=(0, 1)
            The two features to plot, by position or by name.
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure is made if None.
        n_std : float, default=2.0
            Mahalanobis radius of the ellipses (in standard deviations).

        Returns
        -------
        display : MixtureDisplay
        """
        _import_pyplot("MixtureDisplay.from_estimator")
        check_is_fitted(estimator)
        if len(features) != 2:
            raise ValueError(f"Expected two features but got {len(features)}.")
        idx = [_feature_index(estimator, f) for f in features]
        model_cols = _model_columns(estimator)[idx]
        if (model_cols < 0).any():
            raise ValueError(
                "Cannot plot a feature that had no observed value during fit."
            )
        if hasattr(estimator, "_impute"):
            X = check_X(estimator, X, reset=False)
            X_model = estimator._model_input(X)
            # The inference EMImputer.transform and EMClusterer.predict run.
            X_hat = estimator._impute(X_model)  # (n_samples, n_model)
            labels = estimator._log_resp(X_model)[1].argmax(axis=1)
        else:
            # A mixture without missing-value support (scikit-learn's
            # GaussianMixture): its own predict validates X (and refuses NaN).
            labels = estimator.predict(X)
            X_model = X_hat = np.asarray(X, dtype=np.float64)
        X_two = X_model[:, model_cols]
        missing = np.isnan(X_two)
        display = cls(
            X_plot=np.where(missing, X_hat[:, model_cols], X_two),
            imputed_mask=missing.any(axis=1),
            labels=labels,
            weights=np.asarray(estimator.weights_),
            means=np.asarray(estimator.means_)[:, model_cols],
            covariances=_covariances_2d(estimator, model_cols),
            feature_names=tuple(_feature_name(estimator, j) for j in idx),
        )
        return display.plot(ax=ax, n_std=n_std)

    def plot(self, ax=None, *, n_std=2.0, cmap="tab10", legend=True):
        """Draw the points and ellipses.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure is made if None.
        n_std : float, default=2.0
            Mahalanobis radius of the ellipses (in standard deviations).
        cmap : str or matplotlib Colormap, default='tab10'
            Colours of the components.
        legend : bool, default=True
            Whether to add a legend for observed and imputed points.

        Returns
        -------
        display : MixtureDisplay
            The object, with ``ax_``, ``figure_`` and the artists set.
        """
        ax, figure = _get_ax(ax, "MixtureDisplay.plot")
        from matplotlib import colormaps
        from matplotlib.lines import Line2D
        from matplotlib.patches import Ellipse

        colormap = colormaps[cmap] if isinstance(cmap, str) else cmap
        colors = colormap(np.arange(len(self.weights)) % colormap.N)
        point_colors = colors[self.labels]
        observed = ~self.imputed_mask
        self.observed_ = ax.scatter(
            *self.X_plot[observed].T,
            c=point_colors[observed],
            marker="o",
            s=18,
            alpha=0.7,
            edgecolors="none",
            label="observed",
        )
        self.imputed_ = ax.scatter(
            *self.X_plot[self.imputed_mask].T,
            c=point_colors[self.imputed_mask],
            marker="x",
            s=28,
            linewidths=1.2,
            label="imputed",
        )
        self.ellipses_ = []
        for k, (mean, cov, weight) in enumerate(
            zip(self.means, self.covariances, self.weights, strict=True)
        ):
            width, height, angle = _ellipse_geometry(cov, n_std)
            ellipse = Ellipse(
                mean,
                width,
                height,
                angle=angle,
                facecolor=colors[k],
                alpha=0.15 + 0.35 * float(weight),
                edgecolor=colors[k],
                linewidth=1.5,
            )
            ax.add_patch(ellipse)
            self.ellipses_.append(ellipse)
        ax.scatter(*self.means.T, c=colors, marker="+", s=120, linewidths=2)
        ax.set_xlabel(self.feature_names[0])
        ax.set_ylabel(self.feature_names[1])
        if legend:
            # Grey proxies: the points' colours are the components', not the marker's.
            handles = [
                Line2D(
                    [], [], color="0.3", marker=marker, linestyle="none", label=label
                )
                for marker, label in [("o", "observed"), ("x", "imputed")]
            ]
            ax.legend(handles=handles, loc="best")
        self.ax_, self.figure_ = ax, figure
        return self


class ConvergenceDisplay:
    """The mean observed-data log-likelihood per row at each EM iteration.

    Build it with :meth:`from_estimator`; the curve comes from the fitted
    estimator's ``lower_bounds_``. EM never decreases it.

    Parameters
    ----------
    lower_bounds : array-like of shape (n_iter,)
        Mean observed-data log-likelihood per row at each iteration.
    name : str, default=None
        Legend label of the curve.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The curve.
    ax_ : matplotlib Axes
        Axes with the plot.
    figure_ : matplotlib Figure
        Figure containing the plot.

    See Also
    --------
    MixtureDisplay : The fitted components over two features.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from em_sklearn import ConvergenceDisplay, EMImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 3))
    >>> X[rng.random(X.shape) < 0.3] = np.nan
    >>> imputer = EMImputer().fit(X)
    >>> display = ConvergenceDisplay.from_estimator(imputer)
    >>> len(display.line_.get_xdata()) == imputer.n_iter_
    True
    """

    def __init__(self, *, lower_bounds, name=None):
        self.lower_bounds = lower_bounds
        self.name = name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None, **kwargs):
        """Plot a fitted estimator's log-likelihood per iteration.

        Parameters
        ----------
        estimator : EMClusterer or EMImputer
            A fitted estimator (it has ``lower_bounds_``).
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure is made if None.
        name : str, default=None
            Legend label; the estimator's class name if None.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : ConvergenceDisplay
        """
        _import_pyplot("ConvergenceDisplay.from_estimator")
        check_is_fitted(estimator)
        name = type(estimator).__name__ if name is None else name
        display = cls(lower_bounds=np.asarray(estimator.lower_bounds_), name=name)
        return display.plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the curve.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure is made if None.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : ConvergenceDisplay
            The object, with ``line_``, ``ax_`` and ``figure_`` set.
        """
        ax, figure = _get_ax(ax, "ConvergenceDisplay.plot")
        iterations = np.arange(1, len(self.lower_bounds) + 1)
        kwargs.setdefault("marker", "." if len(iterations) < 60 else None)
        (self.line_,) = ax.plot(
            iterations, self.lower_bounds, label=self.name, **kwargs
        )
        ax.set_xlabel("EM iteration")
        ax.set_ylabel("mean observed-data log-likelihood per row")
        if self.name is not None:
            ax.legend(loc="lower right")
        self.ax_, self.figure_ = ax, figure
        return self
