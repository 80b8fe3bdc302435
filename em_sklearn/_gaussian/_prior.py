"""MAP estimation: the conjugate prior of Fraley & Raftery (2007).

A symmetric Dirichlet(``alpha``) prior on the weights and, per component, a
normal-inverse-Wishart prior on the mean and covariance::

    Sigma_k ~ IW(nu, Lambda)           (one Sigma for 'tied'),
    mu_k | Sigma_k ~ N(mu_P, Sigma_k / kappa).

For 'diag' each variance has the one-dimensional version of this prior (an
inverse gamma with shape ``nu/2`` and scale ``Lambda_j/2``), for 'spherical'
the single variance of a component has it with scale ``Lambda``; the mean's
prior is then ``N(mu_P, sigma^2 I / kappa)``. The prior is conjugate to the
complete-data likelihood, so the M-step stays closed form (Fraley & Raftery,
2007, table 2): with ``n_k`` the expected count, ``y_k`` the expected mean,
``W_k`` the expected scatter about ``y_k`` and ``delta_k = y_k - mu_P``,

* ``mu_k = (n_k y_k + kappa mu_P) / (n_k + kappa)``,
* 'full': ``Sigma_k = (Lambda + W_k + c_k delta_k delta_k') / (nu + n_k + d + 2)``,
  ``c_k = kappa n_k / (n_k + kappa)``,
* 'tied': ``Sigma = (Lambda + sum_k (W_k + c_k delta_k delta_k'))
  / (nu + n + K + d + 1)``,
* 'diag': ``sigma_kj^2 = (Lambda_j + W_kjj + c_k delta_kj^2) / (nu + n_k + 3)``,
* 'spherical': ``sigma_k^2 = (Lambda + tr W_k + c_k |delta_k|^2)
  / (nu + (n_k + 1) d + 2)``,
* ``pi_k = (n_k + alpha - 1) / (n + K (alpha - 1))``.

These maximise the expected complete-data log-likelihood plus the log-prior,
so EM never lowers the log-posterior. The default hyperparameters are those
of Fraley & Raftery (2007) and R's mclust (``defaultPrior``): ``alpha = 1``
(a flat prior on the weights), ``kappa = 0.01``, ``nu = d + 2``, ``mu_P`` the
data mean and ``Lambda`` the data covariance divided by ``K^(2/d)`` (its
diagonal for 'diag', the mean variance for 'spherical'). With missing values
the data mean and covariance are the maximum-likelihood estimates of one
Gaussian fitted by EM (the sample mean and covariance on complete data),
with the covariance rescaled by ``n / (n - 1)`` like a sample covariance.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, multigammaln

from ._cholesky import compute_log_det_cholesky

# The keys of a user's ``prior`` dict, as scikit-learn's BayesianGaussianMixture
# names its hyperparameters.
PRIOR_KEYS = (
    "weight_concentration_prior",
    "mean_prior",
    "mean_precision_prior",
    "degrees_of_freedom_prior",
    "covariance_prior",
)
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class GaussianPrior:
    """Hyperparameters of the conjugate prior of the components, its M-step and density.

    The Dirichlet prior on the weights is the mixture's
    (``MixtureModel(weight_concentration=...)``).

    Attributes
    ----------
    mean : ndarray of shape (n_features,)
        ``mu_P``.
    mean_precision : float
        ``kappa > 0``: the prior mean counts as ``kappa`` observations.
    degrees_of_freedom : float
        ``nu``; ``> n_features - 1`` for 'full' and 'tied', ``> 0`` otherwise.
    scale : ndarray or float
        ``Lambda``: ``(n_features, n_features)`` for 'full' and 'tied',
        ``(n_features,)`` for 'diag', a float for 'spherical'.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    """

    mean: np.ndarray
    mean_precision: float
    degrees_of_freedom: float
    scale: object
    covariance_type: str

    def as_dict(self):
        """Return the hyperparameters under the keys of the ``prior`` parameter."""
        scale = self.scale
        return {
            "mean_prior": self.mean.copy(),
            "mean_precision_prior": self.mean_precision,
            "degrees_of_freedom_prior": self.degrees_of_freedom,
            "covariance_prior": np.copy(scale) if np.ndim(scale) else scale,
        }

    def posterior_mode(self, nk, means, scatter):
        """Compute the MAP means and covariances (before ``reg_covar``).

        Parameters
        ----------
        nk : ndarray of shape (n_components,)
            Expected counts.
        means : ndarray of shape (n_components, n_features)
            Expected means ``y_k``.
        scatter : ndarray of shape (n_components, n_features, n_features) or \
(n_components, n_features)
            Expected scatter about ``y_k`` (only its diagonal for 'diag' and
            'spherical').

        Returns
        -------
        means, covariances : ndarray
        """
        n_components, n_features = means.shape
        kappa, nu = self.mean_precision, self.degrees_of_freedom
        delta = means - self.mean  # (n_components, n_features)
        shrink = kappa * nk / (nk + kappa)  # (n_components,)
        map_means = (nk[:, None] * means + kappa * self.mean) / (nk + kappa)[:, None]
        ct = self.covariance_type
        if ct in ("full", "tied"):
            outer = delta[:, :, None] * delta[:, None, :]
            spread = scatter + shrink[:, None, None] * outer
            if ct == "full":
                denominator = nu + nk + n_features + 2  # (n_components,)
                covariances = (self.scale + spread) / denominator[:, None, None]
            else:
                covariances = (self.scale + spread.sum(axis=0)) / (
                    nu + nk.sum() + n_components + n_features + 1
                )
            covariances = 0.5 * (covariances + np.swapaxes(covariances, -1, -2))
        elif ct == "diag":
            spread = scatter + shrink[:, None] * delta**2
            covariances = (self.scale + spread) / (nu + nk + 3)[:, None]
        else:
            spread = scatter.sum(axis=1) + shrink * (delta**2).sum(axis=1)
            covariances = (self.scale + spread) / (nu + (nk + 1) * n_features + 2)
        return map_means, covariances

    def log_density(self, params):
        """Compute the log prior density of the means and covariances (normalised).

        Parameters
        ----------
        params : GaussianParams

        Returns
        -------
        log_prior : float
        """
        n_components, n_features = params.means.shape
        kappa, nu = self.mean_precision, self.degrees_of_freedom
        ct = self.covariance_type
        # Means: N(mu_P, Sigma_k / kappa), through the precision Cholesky factor
        # (log det of Sigma_k / kappa = d log(1/kappa) - 2 log_det_chol).
        prec_chol = params.precisions_cholesky
        # (n_components,), or (1,) for 'tied': one per covariance.
        log_det_chol = np.atleast_1d(
            compute_log_det_cholesky(prec_chol, ct, n_features)
        )
        delta = params.means - self.mean
        if ct in ("full", "tied"):
            y = np.einsum(
                "kj,kji->ki",
                delta,
                np.broadcast_to(prec_chol, (n_components, n_features, n_features)),
            )
        else:
            y = delta * np.broadcast_to(
                prec_chol.reshape(n_components, -1), (n_components, n_features)
            )
        log_means = (
            0.5 * n_features * (math.log(kappa) - _LOG_2PI)
            + log_det_chol
            - 0.5 * kappa * (y**2).sum(axis=1)
        ).sum()
        # Covariances: inverse-Wishart (inverse gamma for 'diag'/'spherical').
        if ct in ("full", "tied"):
            # One inverse-Wishart term per covariance (a single one for 'tied').
            log_det_cov = -2.0 * log_det_chol
            precisions = params.precisions.reshape(-1, n_features, n_features)
            log_det_scale = np.linalg.slogdet(self.scale)[1]
            log_iw = (
                0.5 * nu * log_det_scale
                - 0.5 * nu * n_features * math.log(2.0)
                - multigammaln(0.5 * nu, n_features)
                - 0.5 * (nu + n_features + 1) * log_det_cov
                - 0.5 * np.einsum("ij,kji->k", self.scale, precisions)
            ).sum()
        else:
            # (n_components, n_features) or (n_components,)
            variances = params.covariances
            log_iw = (
                0.5 * nu * np.log(0.5 * np.asarray(self.scale))
                - gammaln(0.5 * nu)
                - (0.5 * nu + 1) * np.log(variances)
                - 0.5 * np.asarray(self.scale) / variances
            ).sum()
        return float(log_means + log_iw)


def check_prior(prior, covariance_type, n_features):
    """Check a user's ``prior`` dict; return the given hyperparameters (copies).

    Parameters
    ----------
    prior : dict
        Keys among :data:`PRIOR_KEYS`; absent keys take their default later.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    n_features : int

    Returns
    -------
    values : dict
        The given keys, checked and converted to float64.

    Raises
    ------
    ValueError
        Naming the key and the value that is wrong.
    """
    unknown = sorted(set(prior) - set(PRIOR_KEYS))
    if unknown:
        raise ValueError(
            f"Unknown key(s) {unknown} in prior; the allowed keys are "
            f"{list(PRIOR_KEYS)} "
            "(absent keys take the default of Fraley & Raftery, 2007)."
        )
    out = {}
    full = covariance_type in ("full", "tied")
    for key, value in prior.items():
        if key == "mean_prior":
            value = np.array(value, dtype=np.float64)
            if value.shape != (n_features,) or not np.isfinite(value).all():
                raise ValueError(
                    f"prior['mean_prior'] must be {n_features} finite values (one per "
                    f"feature), got shape {value.shape}."
                )
        elif key == "covariance_prior":
            expected = {
                "full": (n_features, n_features),
                "tied": (n_features, n_features),
                "diag": (n_features,),
                "spherical": (),
            }[covariance_type]
            value = np.array(value, dtype=np.float64)
            if value.shape != expected:
                raise ValueError(
                    f"prior['covariance_prior'] must have shape {expected} for "
                    f"covariance_type={covariance_type!r}, got {value.shape}."
                )
            positive = (
                (
                    np.allclose(value, value.T)
                    and np.isfinite(value).all()
                    and np.linalg.eigvalsh(value).min() > 0
                )
                if full
                else bool(np.all(value > 0) and np.isfinite(value).all())
            )
            if not positive:
                what = "symmetric positive definite" if full else "positive and finite"
                raise ValueError(f"prior['covariance_prior'] must be {what}.")
            if covariance_type == "spherical":
                value = float(value)
        else:
            lower = {
                "weight_concentration_prior": 1.0,
                "mean_precision_prior": 0.0,
                "degrees_of_freedom_prior": n_features - 1.0 if full else 0.0,
            }[key]
            inclusive = key == "weight_concentration_prior"
            ok = (
                isinstance(value, numbers.Real)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and (value >= lower if inclusive else value > lower)
            )
            if not ok:
                relation = ">=" if inclusive else ">"
                raise ValueError(
                    f"prior[{key!r}] must be a finite number {relation} {lower:g} "
                    f"for covariance_type={covariance_type!r}, got {value!r}."
                )
            value = float(value)
        out[key] = value
    return out
