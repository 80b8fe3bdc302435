"""Expectation-Maximization for scikit-learn users whose data has holes in it.

The package, layer by layer (imports go down this list, never up):

* ``_missing_data``: prepared data; rows sorted by missingness, in chunks and
  blocks (``MissingData``, ``BlockedData``), the only view of the data the
  engine has.
* ``_gaussian/``: the Gaussian emission family: parameters, additive
  statistics, chunk kernels (packed sweep), Cholesky conversions, the prior,
  and the builder of a whole Gaussian mixture model.
* ``_product``: products of families over blocks of columns.
* ``_mixture``: the mixture layer over any family: weights,
  responsibilities, sample weights, likelihood, inference.
* ``_em``: the EM loop (restarts, convergence, SQUAREM), over any model.
* ``_init``: initial responsibilities; ``_standardize``: centring and scaling;
  ``_threads``: BLAS pinning; ``_validation``: input checks.
* ``_base``: the estimator base; ``_clusterer``, ``_imputer``: the estimators;
  ``_multiple``, ``_plotting``, ``_cli``, ``_demo``: built on them.
"""

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
