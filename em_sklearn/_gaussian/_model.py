"""Build a Gaussian mixture model whole: the family, its prior, the mixture."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._em import run_em
from .._mixture import MixtureModel
from ._family import GaussianFamily
from ._prior import GaussianPrior


def gaussian_mixture(
    n_components,
    covariance_type,
    reg_covar,
    *,
    init_params="kmeans",
    weights_init=None,
    means_init=None,
    precisions_init=None,
    prior=None,
    data=None,
    chunk_settings=None,
):
    """Build a :class:`MixtureModel` of Gaussian components, every setting given.

    Parameters
    ----------
    n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
    init_params : str, default='kmeans'
    weights_init, means_init, precisions_init : ndarray or None
        Checked user initial values.
    prior : dict or None, default=None
        None: maximum likelihood. A dict of checked hyperparameters
        (``check_prior``; empty for ``prior='default'``): MAP estimation,
        absent hyperparameters completed from ``data``
        (:func:`default_prior`).
    data : MissingData, BlockedData or None, default=None
        The prepared data of the fit; needed only with a prior.
    chunk_settings : ChunkSettings or None, default=None

    Returns
    -------
    model : MixtureModel
    """
    gaussian_prior = None
    if prior is not None:
        gaussian_prior = default_prior(
            prior, data, n_components, reg_covar, covariance_type, chunk_settings
        )
    family = GaussianFamily(
        covariance_type,
        reg_covar,
        prior=gaussian_prior,
        means_init=means_init,
        precisions_init=precisions_init,
    )
    return MixtureModel(
        family,
        n_components,
        init_params=init_params,
        weights_init=weights_init,
        weight_concentration=(
            None if prior is None else prior.get("weight_concentration_prior", 1.0)
        ),
        chunk_settings=chunk_settings,
    )


def prior_attribute(prior, weight_concentration):
    """Return the hyperparameters a fit used (``prior_``), or None without a prior.

    Parameters
    ----------
    prior : GaussianPrior or None
        The Gaussian family's prior.
    weight_concentration : float or None
        The mixture's Dirichlet concentration.
    """
    if prior is None:
        return None
    return {"weight_concentration_prior": weight_concentration, **prior.as_dict()}


def default_prior(
    values, data, n_components, reg_covar, covariance_type, settings=None
):
    """Complete ``values`` with the data-dependent defaults (Fraley & Raftery, 2007).

    Parameters
    ----------
    values : dict
        Checked user hyperparameters (from ``check_prior``), possibly empty.
    data : MissingData or BlockedData
        The data of the fit (weighted, if it carries weights).
    n_components : int
    reg_covar : float
        A one-component model with this ``reg_covar`` estimates the data's mean
        and covariance when those are needed.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    settings : ChunkSettings or None, default=None

    Returns
    -------
    prior : GaussianPrior
    """
    n_features = data.n_features
    mean = values.get("mean_prior")
    scale = values.get("covariance_prior")
    if mean is None or scale is None:
        data_mean, data_cov = _data_moments(
            data, reg_covar, need_scale=scale is None, settings=settings
        )
        if mean is None:
            mean = data_mean
        if scale is None:
            factor = n_components ** (-2.0 / n_features)
            if covariance_type in ("full", "tied"):
                scale = data_cov * factor
            elif covariance_type == "diag":
                scale = np.diag(data_cov) * factor
            else:
                scale = float(np.trace(data_cov)) / n_features * factor
    return GaussianPrior(
        mean=mean,
        mean_precision=values.get("mean_precision_prior", 0.01),
        degrees_of_freedom=values.get("degrees_of_freedom_prior", n_features + 2.0),
        scale=scale,
        covariance_type=covariance_type,
    )


def _data_moments(data, reg_covar, need_scale=True, settings=None):
    """Estimate the data's mean and covariance: one Gaussian fitted by EM.

    On complete data this is the sample mean and the sample covariance (with
    ``n - 1``) in one iteration; with missing entries, the maximum-likelihood
    estimates of the observed data, rescaled by ``n / (n - 1)`` alike.
    ``reg_covar`` is on the diagonal, as in every fitted covariance. When too
    few rows are observed together for that covariance to be estimated (the
    fit fails or is degenerate: a correlation of nearly +-1, a variance far
    below the column's observed variance), the columns' observed means and
    variances stand in for it, so that the prior never sets a near-zero
    scale.

    Raises
    ------
    ValueError
        If ``need_scale`` and a column's observed entries have no spread (and
        ``reg_covar`` is 0): no default covariance prior can be derived.
    """
    observed_mean, observed_var = data.column_moments()
    flat = np.flatnonzero(~(observed_var + reg_covar > 0))
    if need_scale and flat.size:
        raise ValueError(
            f"prior='default' cannot set covariance_prior: feature(s) "
            f"{flat.tolist()} have no spread among their observed values. Give "
            "covariance_prior in the prior dict, or a positive reg_covar."
        )
    # k-means with one component draws nothing at random.
    one = gaussian_mixture(1, "full", reg_covar, chunk_settings=settings)
    try:
        # A degenerate fit is detected below, whatever it warned on the way.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = run_em(
                one,
                data,
                n_init=1,
                max_iter=200,
                tol=1e-8,
                random_state=np.random.RandomState(0),
                accelerate="squarem",
            )
    except ValueError:
        result = None
    if result is not None and _well_conditioned(
        result.params.components.covariances[0], observed_var
    ):
        mean = result.params.components.means[0]
        cov = result.params.components.covariances[0]
    else:
        mean, cov = observed_mean, np.diag(observed_var + reg_covar)
    total = data.total_weight
    correction = total / (total - 1.0) if total > 1.0 else 1.0
    return mean, cov * correction


def _well_conditioned(cov, observed_var, threshold=1e-6):
    """Whether a fitted covariance is usable as a prior scale (see above)."""
    var = np.diag(cov)
    if not np.all(var >= threshold * observed_var) or not np.all(var > 0):
        return False
    sd = np.sqrt(var)
    return np.linalg.eigvalsh(cov / np.outer(sd, sd)).min() >= threshold
