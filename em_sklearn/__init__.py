"""Expectation-Maximization for scikit-learn users whose data has holes in it.

The package, layer by layer (a module imports only from those above it):

* ``_missing_data``: prepared data; rows sorted by missingness, in chunks and
  blocks (``MissingData``, ``BlockedData``), the only view of the data the
  engine has. ``_init``: initial responsibilities. ``_threads``: BLAS pinning.
* Emission families: ``_gaussian/`` (parameters, additive statistics, chunk
  kernels with the packed sweep, Cholesky conversions, the prior),
  ``_categorical`` (nominal columns), ``_product`` (products of families over
  blocks of columns).
* ``_mixture``: the mixture layer over any family: weights,
  responsibilities, sample weights, likelihood, inference.
* ``_em``: the EM loop (restarts, convergence, SQUAREM), over any model.
* ``_gaussian._model``: builds a whole Gaussian mixture model (family, prior,
  mixture; the default prior runs a one-component fit).
* ``_parallel``: blocks of rows worked on by worker processes (``n_jobs``);
  ``_standardize``: centring and scaling; ``_validation``: input checks.
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
