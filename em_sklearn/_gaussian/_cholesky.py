"""Precision Cholesky factors of Gaussian covariances, and conversions between them."""

import numpy as np
from scipy import linalg

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


_ILL_DEFINED = (
    "Fitting the mixture model failed because {what} has an ill-defined "
    "covariance (for instance caused by singleton or collapsed samples, or by "
    "a component estimated from few observed values). Try to decrease the "
    "number of components, increase reg_covar, set prior='default' (MAP "
    "estimation), or scale the input data."
)


def compute_precision_cholesky(covariances, covariance_type):
    """Compute the Cholesky factor of the precision of each covariance.

    The factor ``U`` satisfies ``precision = U @ U.T`` (as in scikit-learn's
    ``precisions_cholesky_``).

    Parameters
    ----------
    covariances : ndarray
        Shape ``(n_components, n_features, n_features)`` if 'full',
        ``(n_features, n_features)`` if 'tied', ``(n_components, n_features)``
        if 'diag', ``(n_components,)`` if 'spherical'.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    precisions_cholesky : ndarray of the same shape as ``covariances``.

    Raises
    ------
    ValueError
        If a covariance is not positive definite; the message names the component.
    """
    if covariance_type in ("diag", "spherical"):
        bad = np.nonzero(~(covariances > 0.0).reshape(len(covariances), -1).all(1))[0]
        if bad.size:
            raise ValueError(_ILL_DEFINED.format(what=f"component {bad[0]}"))
        return 1.0 / np.sqrt(covariances)
    stacked = covariances[np.newaxis] if covariance_type == "tied" else covariances
    # A collapsed component can turn the statistics into NaN or inf.
    bad = np.nonzero(~np.isfinite(stacked).reshape(len(stacked), -1).all(1))[0]
    if bad.size:
        what = "the tied covariance" if covariance_type == "tied" else (
            f"component {bad[0]}"
        )
        raise ValueError(_ILL_DEFINED.format(what=what))
    n_features = stacked.shape[-1]
    eye = np.eye(n_features)
    out = np.empty_like(stacked)
    for k, covariance in enumerate(stacked):
        try:
            cov_chol = linalg.cholesky(covariance, lower=True)
        except linalg.LinAlgError:
            what = "the tied covariance" if covariance_type == "tied" else (
                f"component {k}"
            )
            raise ValueError(_ILL_DEFINED.format(what=what)) from None
        out[k] = linalg.solve_triangular(cov_chol, eye, lower=True).T
    return out[0] if covariance_type == "tied" else out


def compute_precision_cholesky_from_precisions(precisions, covariance_type):
    """Compute an upper Cholesky factor ``U`` with ``precision = U @ U.T``.

    Parameters
    ----------
    precisions : ndarray
        Precisions in the shape of ``covariance_type`` (see
        :func:`compute_precision_cholesky`).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    precisions_cholesky : ndarray of the same shape.
    """
    if covariance_type in ("diag", "spherical"):
        return np.sqrt(precisions)
    # Reversing rows and columns turns a lower factor into the upper one.
    flipped = precisions[..., ::-1, ::-1]
    return np.linalg.cholesky(flipped)[..., ::-1, ::-1].copy()


def compute_precisions(precisions_cholesky, covariance_type):
    """Compute precisions ``U @ U.T`` from their Cholesky factors.

    Parameters
    ----------
    precisions_cholesky : ndarray
        Shapes as in :func:`compute_precision_cholesky`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    precisions : ndarray of the same shape.
    """
    if covariance_type in ("diag", "spherical"):
        return precisions_cholesky**2
    return precisions_cholesky @ np.swapaxes(precisions_cholesky, -1, -2)


def compute_covariances(precisions_cholesky, covariance_type):
    """Compute covariances from precision Cholesky factors.

    ``inv(U @ U.T) = inv(U).T @ inv(U)`` with one triangular solve per factor.

    Parameters
    ----------
    precisions_cholesky : ndarray
        Shapes as in :func:`compute_precision_cholesky`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    covariances : ndarray of the same shape.
    """
    if covariance_type in ("diag", "spherical"):
        return 1.0 / precisions_cholesky**2
    stacked = (
        precisions_cholesky[np.newaxis]
        if covariance_type == "tied"
        else precisions_cholesky
    )
    eye = np.eye(stacked.shape[-1])
    out = np.empty_like(stacked)
    for k, prec_chol in enumerate(stacked):
        # prec_chol is upper triangular when it comes from sklearn's or our
        # factorisations; a general solve keeps user-supplied factors working.
        inv_chol = linalg.solve(prec_chol, eye)
        out[k] = inv_chol.T @ inv_chol
    return out[0] if covariance_type == "tied" else out


def compute_log_det_cholesky(precisions_cholesky, covariance_type, n_features):
    """Compute ``log det`` of each precision Cholesky factor.

    Parameters
    ----------
    precisions_cholesky : ndarray
        Shapes as in :func:`compute_precision_cholesky`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    n_features : int

    Returns
    -------
    log_det_chol : ndarray of shape (n_components,) or float for 'tied'.
        Half the log-determinant of the precision.
    """
    if covariance_type == "full":
        return np.log(np.diagonal(precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diagonal(precisions_cholesky)).sum()
    if covariance_type == "diag":
        return np.log(precisions_cholesky).sum(axis=1)
    return n_features * np.log(precisions_cholesky)
