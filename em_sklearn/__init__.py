"""Expectation-Maximization for scikit-learn users whose data has holes in it."""

from ._clusterer import EMClusterer
from ._imputer import EMImputer
from ._multiple import multiple_impute, pool_rubin
from ._plotting import ConvergenceDisplay, MixtureDisplay

__version__ = "0.1.0"

__all__ = [
    "ConvergenceDisplay",
    "EMClusterer",
    "EMImputer",
    "MixtureDisplay",
    "__version__",
    "multiple_impute",
    "pool_rubin",
]
