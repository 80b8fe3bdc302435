"""Initial responsibilities: the ``init_params`` strategies of ``GaussianMixture``."""

import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus

from ._array_api import is_numpy, namespace
from ._xp_kmeans import xp_initial_resp

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def initial_resp(X_filled, n_components, init_params, random_state, sample_weight=None):
    """Compute initial responsibilities as ``GaussianMixture`` does.

    With sample weights, k-means and k-means++ are weighted and
    'random_from_data' draws rows with probability proportional to their
    weight, so a row of weight ``w`` acts as ``w`` copies of itself.

    An array of another array API namespace (array-api-strict, torch, CuPy)
    is initialised in that namespace and on its device by
    :func:`~em_sklearn._xp_kmeans.xp_initial_resp`, with the same draws from
    ``random_state``, hence the same result up to floating rounding.

    Parameters
    ----------
    X_filled : ndarray or array of shape (n_samples, n_features)
        Mean-filled data.
    n_components : int
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}
    random_state : RandomState
    sample_weight : ndarray or array of shape (n_samples,) or None, default=None

    Returns
    -------
    resp : ndarray or array of shape (n_samples, n_components)
        An array of X_filled's namespace, device and dtype for a non-NumPy
        X_filled.
    """
    if not isinstance(X_filled, np.ndarray) and not is_numpy(namespace(X_filled)):
        return xp_initial_resp(
            X_filled, n_components, init_params, random_state, sample_weight
        )
    n_samples = X_filled.shape[0]
    if n_components == 1 and init_params in ("kmeans", "random"):
        # Every such start gives all-ones responsibilities: skip the k-means fit.
        return np.ones((n_samples, 1))
    resp = np.zeros((n_samples, n_components))
    if init_params == "kmeans":
        labels = (
            # copy_x=False: X_filled is our own temporary; saves a copy of the data.
            KMeans(
                n_clusters=n_components,
                n_init=1,
                random_state=random_state,
                copy_x=False,
            )
            .fit(X_filled, sample_weight=sample_weight)
            .labels_
        )
        resp[np.arange(n_samples), labels] = 1
    elif init_params == "random":
        resp = random_state.uniform(size=(n_samples, n_components))
        resp /= resp.sum(axis=1)[:, np.newaxis]
    elif init_params == "random_from_data":
        p = None if sample_weight is None else sample_weight / sample_weight.sum()
        indices = random_state.choice(n_samples, size=n_components, replace=False, p=p)
        resp[indices, np.arange(n_components)] = 1
    else:  # "k-means++"
        _, indices = kmeans_plusplus(
            X_filled,
            n_components,
            sample_weight=sample_weight,
            random_state=random_state,
        )
        resp[indices, np.arange(n_components)] = 1
    return resp
