"""Standardisation: centre and scale columns, and map parameters, priors and densities.

``EMImputer`` fits its mixture to ``z = (x - center) / scale`` so that columns
of very different scales are handled alike; everything the user sees is in
original units. This module is the one place that converts between the two:
data, initial values, parameters, prior hyperparameters, log-densities and
the log-posterior's Jacobian.
"""

from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from ._array_api import like
from ._gaussian import scale_covariance
from ._product import part_of


@dataclass(frozen=True)
class Standardization:
    """``x = center + scale * z`` for each column.

    Attributes
    ----------
    center : ndarray of shape (n_features,)
        Mean of the observed entries (0 for a column with none).
    scale : ndarray of shape (n_features,)
        Standard deviation of the observed entries; 1 when it is zero, at the
        rounding level of the mean, or undefined. For 'spherical' every entry
        is the root mean of the usable column variances (a spherical model in
        original units stays spherical).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    part : int or None, default=None
        None: the model is Gaussian on every column. An int: the model is a
        product (``_product``) whose family ``part`` is the Gaussian, on the
        first ``len(center)`` columns of the model's input; the other
        families' columns (level codes) are left as they are.
    """

    center: np.ndarray
    scale: np.ndarray
    covariance_type: str
    part: int | None = None

    @classmethod
    def estimate(cls, data, covariance_type, part=None):
        """Estimate each column's center and scale from its observed entries.

        Parameters
        ----------
        data : MissingData or BlockedData
            In original units; weighted if it carries weights.
        covariance_type : {'full', 'tied', 'diag', 'spherical'}
        part : int or None, default=None
            The Gaussian family's index in a product model (see above).
        """
        if part is not None:
            data = part_of(data, part)
        center, var = data.column_moments()
        scale = np.sqrt(var)
        # A constant column's spread is rounding noise: keep it in its own units.
        rounding = 64 * np.finfo(np.float64).eps * np.abs(center)
        usable = np.isfinite(scale) & (scale > rounding) & (scale > 0)
        if covariance_type == "spherical":
            common = np.sqrt(var[usable].mean()) if usable.any() else 1.0
            return cls(center, np.full_like(scale, common), covariance_type, part)
        return cls(center, np.where(usable, scale, 1.0), covariance_type, part)

    # -- data -----------------------------------------------------------------

    def standardize_data(self, data):
        """Standardise prepared data in place (missing entries stay 0); return it.

        Rows read anew at each pass (``_out_of_core.RowBlocks``) cannot be
        changed in place: a standardising view of them is returned instead.
        """
        if hasattr(data, "standardized"):
            return data.standardized(self)
        self._gaussian_part(data).map_blocks(
            partial(_standardize_block, self.center, self.scale)
        )
        return data

    def standardize(self, X):
        """Return ``(X - center) / scale`` as a new float64 array (NaN stays NaN).

        An array of another array API namespace stays there, in its dtype (the
        model's columns are all Gaussian then).
        """
        if not isinstance(X, np.ndarray):
            return (X - like(self.center, X)) / like(self.scale, X)
        g = len(self.center)
        X_std = X.astype(np.float64)  # a copy
        X_std[:, :g] -= self.center
        X_std[:, :g] /= self.scale
        return X_std

    def unstandardize(self, Z):
        """Map standardised values back to original units, in place; return them."""
        if not isinstance(Z, np.ndarray):  # (a new array)
            return Z * like(self.scale, Z) + like(self.center, Z)
        g = len(self.center)
        Z[:, :g] *= self.scale
        Z[:, :g] += self.center
        return Z

    def log_density_offset(self, observed):
        """Log-density of ``x_o`` minus that of its standardised ``z_o``, per row.

        Parameters
        ----------
        observed : ndarray of bool of shape (n_samples, n_features)
            Or, for an array of another array API namespace, 1 and 0 in the
            data's float dtype.

        Returns
        -------
        offset : ndarray of shape (n_samples,)
            ``-sum_{j observed} log scale_j``.
        """
        log_scale = np.log(self.scale)
        if not isinstance(observed, np.ndarray):  # (as 0 and 1 in X's dtype)
            return -(observed @ like(log_scale, observed))
        return -(observed[:, : len(self.scale)] @ log_scale)

    def objective_offset(self, data, n_components, with_prior):
        """Mean objective per row in standardised units minus in original units.

        The density of a row's observed entries changes by ``sum_j log s_j``
        over its observed columns (averaged over the rows of ``data``,
        weighted), and with a prior the parameters' density by their
        log-Jacobian (:meth:`log_jacobian`).
        """
        total = data.total_weight
        if not total:
            return 0.0
        counts = self._gaussian_part(data).observed_counts()
        offset = float(counts @ np.log(self.scale)) / total
        if with_prior:
            offset -= self.log_jacobian(n_components) / total
        return offset

    def log_jacobian(self, n_components):
        """Log-Jacobian ``log |d theta_z / d theta_x|`` of standardising parameters.

        A prior density on the parameters of ``x`` is the density on those of
        ``z`` plus this value (negative for scales above 1): each mean
        contributes ``-sum_j log s_j``, a full covariance
        ``-(d + 1) sum_j log s_j``, a diagonal one ``-2 sum_j log s_j``, a
        spherical one ``-2 log s``.
        """
        log_s = np.log(self.scale)
        total = log_s.sum()
        n_features = len(self.scale)
        covariance_terms = {
            "full": n_components * (n_features + 1) * total,
            "tied": (n_features + 1) * total,
            "diag": n_components * 2 * total,
            "spherical": n_components * 2 * log_s[0],
        }[self.covariance_type]
        return -(n_components * total + covariance_terms)

    # -- parameters -----------------------------------------------------------

    def values_to_model(self, values):
        """Standardise the user's initial values and prior (see ``_user_values``).

        Means become ``(means - center) / scale``, precisions ``D P D``
        (``D = diag(scale)``) and the prior's hyperparameters those of ``z``;
        weights are unchanged.
        """
        out = dict(values)
        if out.get("means_init") is not None:
            out["means_init"] = (out["means_init"] - self.center) / self.scale
        if out.get("precisions_init") is not None:
            out["precisions_init"] = scale_covariance(
                out["precisions_init"], self.scale, self.covariance_type
            )
        if "prior" in out:
            out["prior"] = self.prior_to_model(out["prior"])
        return out

    def params_to_original(self, params):
        """Map mixture parameters of ``z`` to those of ``x`` (weights unchanged)."""
        return self._affine(params, inverse=False)

    def params_to_model(self, params):
        """Map mixture parameters of ``x`` to those of ``z``."""
        return self._affine(params, inverse=True)

    def _affine(self, params, inverse):
        components = params.components
        if self.part is None:
            return replace(
                params,
                components=components.affine(self.center, self.scale, inverse=inverse),
            )
        parts = list(components)
        parts[self.part] = parts[self.part].affine(
            self.center, self.scale, inverse=inverse
        )
        return replace(params, components=tuple(parts))

    def _gaussian_part(self, data):
        return data if self.part is None else part_of(data, self.part)

    def prior_to_original(self, values):
        """Express prior hyperparameters of ``z``'s parameters in ``x``'s units.

        Parameters
        ----------
        values : dict or None
            Some or all of ``PRIOR_KEYS``.

        Returns
        -------
        values : dict or None
            A new dict with the same keys.
        """
        return self._rescale_prior(values, inverse=False)

    def prior_to_model(self, values):
        """Express prior hyperparameters of ``x``'s parameters in ``z``'s units."""
        return self._rescale_prior(values, inverse=True)

    def _rescale_prior(self, values, inverse):
        if values is None:
            return None
        factor = 1.0 / self.scale if inverse else self.scale  # (n_features,)
        out = dict(values)
        if "mean_prior" in values:
            mean = values["mean_prior"]
            out["mean_prior"] = (
                (mean - self.center) * factor
                if inverse
                else mean * factor + self.center
            )
        if "covariance_prior" in values:
            out["covariance_prior"] = scale_covariance(
                values["covariance_prior"], factor, self.covariance_type
            )
        return out


def _standardize_block(center, scale, block):
    """Standardise one prepared block in place (missing entries stay 0)."""
    X = block.X  # the prepared copy, ours to change
    X -= center
    X /= scale
    X[block.missing_mask] = 0.0
