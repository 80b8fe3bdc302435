"""Parameters of the Gaussian components; the one rescaling of every covariance type."""

from dataclasses import dataclass

import numpy as np

from ._cholesky import (
    compute_covariances,
    compute_precision_cholesky,
    compute_precisions,
)


def scale_covariance(value, factor, covariance_type):
    """Compute ``D value D`` for ``D = diag(factor)``, in ``covariance_type``'s shape.

    The one rescaling of covariance-shaped arrays (covariances, the prior's
    scale; precisions and their Cholesky factors with ``1 / factor``): a full
    matrix gets ``factor_i factor_j``, a diagonal ``factor_j**2``, a spherical
    variance ``factor[0]**2`` (a spherical model is rescaled by one common
    factor).

    Parameters
    ----------
    value : ndarray or float
        ``(..., n_features, n_features)`` for 'full' and 'tied',
        ``(..., n_features)`` for 'diag', scalar or ``(n_components,)`` for
        'spherical'.
    factor : ndarray of shape (n_features,)
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    scaled : ndarray or float, the shape of ``value``.
    """
    if covariance_type in ("full", "tied"):
        return value * np.outer(factor, factor)
    if covariance_type == "diag":
        return value * factor**2
    return value * factor[0] ** 2


@dataclass(frozen=True)
class GaussianParams:
    """Means and covariances of the components, in scikit-learn's shapes.

    The mixing weights belong to the mixture (``_mixture.MixtureParams``).

    Attributes
    ----------
    means : ndarray of shape (n_components, n_features)
    covariances : ndarray
        ``(n_components, n_features, n_features)`` if 'full',
        ``(n_features, n_features)`` if 'tied', ``(n_components, n_features)``
        if 'diag', ``(n_components,)`` if 'spherical'.
    precisions_cholesky : ndarray of the same shape as ``covariances``.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    """

    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str

    @classmethod
    def from_covariances(cls, means, covariances, covariance_type):
        """Build parameters, factorising the covariances (may raise ValueError)."""
        return cls(
            means=means,
            covariances=covariances,
            precisions_cholesky=compute_precision_cholesky(
                covariances, covariance_type
            ),
            covariance_type=covariance_type,
        )

    @classmethod
    def from_precisions_cholesky(cls, means, precisions_cholesky, covariance_type):
        """Build parameters from precision Cholesky factors."""
        return cls(
            means=means,
            covariances=compute_covariances(precisions_cholesky, covariance_type),
            precisions_cholesky=precisions_cholesky,
            covariance_type=covariance_type,
        )

    @property
    def n_components(self):
        return self.means.shape[0]

    @property
    def n_features(self):
        return self.means.shape[1]

    @property
    def precisions(self):
        return compute_precisions(self.precisions_cholesky, self.covariance_type)

    def n_parameters(self):
        """Number of free parameters of the means and covariances (sklearn's count)."""
        n_components, n_features = self.means.shape
        cov_params = {
            "full": n_components * n_features * (n_features + 1) / 2.0,
            "tied": n_features * (n_features + 1) / 2.0,
            "diag": n_components * n_features,
            "spherical": n_components,
        }[self.covariance_type]
        return int(cov_params + n_components * n_features)

    def affine(self, center, scale, inverse=False):
        """Map the parameters of ``z`` to those of ``x = center + scale * z``.

        A component ``N(mu, S)`` of ``z`` is ``N(center + D mu, D S D)`` of
        ``x``, ``D = diag(scale)``, and the precision Cholesky factor ``U``
        (``P = U U'``) becomes ``inv(D) U``, still upper triangular.
        ``inverse=True`` maps the parameters of ``x`` to those of ``z``.

        Parameters
        ----------
        center, scale : ndarray of shape (n_features,)
        inverse : bool, default=False

        Returns
        -------
        params : GaussianParams
        """
        factor = 1.0 / scale if inverse else scale  # (n_features,)
        if inverse:
            means = (self.means - center) * factor
        else:
            means = self.means * factor + center
        ct = self.covariance_type
        covariances = scale_covariance(self.covariances, factor, ct)
        # U scales as a precision's square root: by 1 / factor, row-wise.
        divisor = {
            "full": factor[:, np.newaxis],
            "tied": factor[:, np.newaxis],
            "diag": factor,
            "spherical": factor[0],
        }[ct]
        prec_chol = self.precisions_cholesky / divisor
        return GaussianParams(means, covariances, prec_chol, ct)

    def sample(self, counts, random_state):
        """Draw ``counts[k]`` complete rows from each component, grouped by component.

        Parameters
        ----------
        counts : ndarray of int of shape (n_components,)
        random_state : RandomState

        Returns
        -------
        X : ndarray of shape (counts.sum(), n_features)
        """
        ct = self.covariance_type
        parts = []
        for k, (mean, count) in enumerate(zip(self.means, counts, strict=True)):
            if ct in ("full", "tied"):
                cov = self.covariances[k] if ct == "full" else self.covariances
                parts.append(random_state.multivariate_normal(mean, cov, int(count)))
            else:
                std = np.sqrt(self.covariances[k])
                noise = random_state.standard_normal(size=(count, self.n_features))
                parts.append(mean + noise * std)
        return np.vstack(parts)
