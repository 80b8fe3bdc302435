"""The Gaussian emission family: parameters, statistics, kernels, prior, model."""

from ._cholesky import COVARIANCE_TYPES
from ._family import GaussianFamily
from ._model import gaussian_mixture, prior_attribute
from ._params import GaussianParams, scale_covariance
from ._prior import PRIOR_KEYS, GaussianPrior, check_prior
from ._stats import GaussianStats

__all__ = [
    "COVARIANCE_TYPES",
    "PRIOR_KEYS",
    "GaussianFamily",
    "GaussianParams",
    "GaussianPrior",
    "GaussianStats",
    "check_prior",
    "gaussian_mixture",
    "prior_attribute",
    "scale_covariance",
]
