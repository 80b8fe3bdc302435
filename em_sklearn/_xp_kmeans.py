"""k-means, k-means++ and the other initialisations on any array API namespace.

The initialisation of the array API path (scikit-learn's ``array_api_dispatch``
convention): :func:`xp_initial_resp` is ``_init.initial_resp`` for data that
live in another namespace (``array-api-strict``, PyTorch, CuPy). Everything
that touches the data runs in X's namespace and on X's device, with the array
API standard's functions only (``matmul``, ``argmin``, ``cumulative_sum``,
``searchsorted``, ``take``, ``where``, ...); the data are never copied to the
host, and the responsibilities come back in X's namespace, device and dtype.

**Exact draws.** The host ``random_state`` (a ``numpy.random.RandomState``)
is the only source of randomness, and it is consumed exactly as
scikit-learn 1.9.1 consumes it in ``KMeans(n_init=1).fit`` and
``kmeans_plusplus``: the first k-means++ center is
``random_state.choice(n_samples, p=w / w.sum())``, drawn on the host (with
sample weights these ``n_samples`` numbers are copied to the host once;
without, ``w`` is made on the host as ones; the data never are), each
further center draws
``random_state.uniform(size=n_local_trials)`` on the host and only those few
numbers go to the device, where the candidates are found by ``searchsorted``
on the ``cumulative_sum`` of the weighted closest squared distances, exactly
as scikit-learn does. 'random' and 'random_from_data' make the very draws of
the NumPy path on the host ('random' moves its ``(n_samples, n_components)``
normalised uniforms to the device). So on the same data the device path
picks the same rows, runs the same Lloyd iterations and leaves the
``RandomState`` in the same state as the NumPy path; results can differ only
where floating rounding decides (a draw that lands within rounding of a
boundary of the cumulative sum, a distance near-tie), which the tests show
does not happen on ordinary data.

**What scikit-learn does, reproduced here.**

* ``KMeans.fit`` centres X on its (unweighted) column means before the
  initialisation and the iterations (``kmeans_plusplus`` on its own does not)
  and computes its tolerance ``tol * mean(var(X, axis=0))`` before centring.
* k-means++ distances follow ``_euclidean_distances``:
  ``-2 c x' + ||c||^2 + ||x||^2`` clipped at 0; for float32 data they are
  computed in float64 (in blocks of rows, as scikit-learn's upcast) when the
  device has float64, and rounded to float32; the random thresholds are
  compared in float64 then too, as NumPy's ``searchsorted`` does.
  ``n_local_trials = 2 + int(log(n_clusters))``; candidate indices are clipped
  to ``n_samples - 1``; the best candidate is the first minimum of the
  weighted potential.
* Lloyd iterations (``_kmeans_single_lloyd``), in X's dtype: labels are the
  first argmin of ``||c||^2 - 2 x c'`` (``||x||^2`` does not change an
  argmin); new centers are the weighted sums ``(onehot * w)' X`` (a matrix
  product instead of a scatter-add, which the standard lacks) times the
  reciprocal of the cluster weight; empty clusters (zero weight) are
  relocated as ``_relocate_empty_clusters_dense`` does (to the rows farthest
  from their centers, unless every row sits on its center) and a cluster
  still empty takes the center of the heaviest one as ``_average_centers``
  does. The loop stops when the labels do not change (strict convergence) or
  when the sum of squared center shifts is ``<= tol``, after at most
  ``max_iter`` iterations; without strict convergence the labels are
  recomputed from the final centers. One host synchronisation per
  iteration reads three numbers (labels unchanged, shift within tolerance,
  any cluster empty); a relocation, which is rare, adds up to three. A last
  one counts the distinct labels, for scikit-learn's ``ConvergenceWarning``
  when some cluster ends empty. k-means++ needs none (its indices stay on
  the device).

**Known differences** (all outside the exact-draw property):

* Summation orders differ (BLAS blocking, chunked and threaded sums in
  scikit-learn's Cython, the namespace's own reductions), so distances and
  centers agree to rounding only; a label can differ only at a near-tie.
* ``cumulative_sum`` of a GPU namespace is a parallel scan, rounded
  differently from NumPy's sequential ``cumsum``; without float64 on the
  device the k-means++ distances and thresholds are float32.
* When three or more clusters are empty in the same iteration, scikit-learn
  pairs them with the farthest rows in ``argpartition``'s (unspecified)
  order; here they are paired in decreasing distance (ties: lowest row),
  which is scikit-learn's order for one or two empty clusters.
* Temporaries of shape ``(n_samples, n_clusters)`` (distances, one-hot) are
  made whole, not in chunks of 256 rows.
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ._array_api import device as _device
from ._array_api import from_numpy, namespace, to_numpy
from ._device_data import index_dtype

__all__ = ["xp_initial_resp", "xp_kmeans", "xp_kmeans_plusplus"]


def _numpy_dtype(xp, dtype):
    """The NumPy dtype matching ``dtype`` (float32 or float64 only)."""
    if dtype == xp.float64:
        return np.float64
    if dtype == xp.float32:
        return np.float32
    raise TypeError(f"X must be float32 or float64. Got {dtype} instead.")


def _has_float64(xp, device):
    """Whether ``device`` supports float64 (scikit-learn's max precision float)."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return True
    return "float64" in info().dtypes(device=device, kind="real floating")


def _device_weights(xp, X, sample_weight):
    """``sample_weight`` in X's namespace, device and dtype, or None."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, np.ndarray):
        np_dtype = _numpy_dtype(xp, X.dtype)
        return from_numpy(sample_weight.astype(np_dtype), xp, _device(X))
    w = xp.astype(sample_weight, X.dtype)
    if w.shape != (X.shape[0],):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected {(X.shape[0],)}!")
    return w


def _prepared_weights(xp, X, n_clusters, sample_weight):
    """Weights on the device (ones if None) and on the host, in X's dtype.

    The host copy is what ``random_state.choice`` needs for the first
    k-means++ center; without weights it is made on the host (no transfer).
    Raises a ValueError, as scikit-learn, for fewer rows than clusters.
    """
    n_samples = X.shape[0]
    if n_samples < n_clusters:
        raise ValueError(
            f"n_samples={n_samples} should be >= n_clusters={n_clusters}."
        )
    np_dtype = _numpy_dtype(xp, X.dtype)
    w = _device_weights(xp, X, sample_weight)
    if w is None:
        w = xp.ones(n_samples, dtype=X.dtype, device=_device(X))
        w_host = np.ones(n_samples, dtype=np_dtype)
    else:
        w_host = to_numpy(w, dtype=None)
    return w, w_host


def _block_rows(n_samples, n_features):
    """Rows per block of the float64 upcast (about an eighth of X, at least 2**20)."""
    block_elements = max(n_samples * n_features // 8, 2**20)
    return max(1, block_elements // max(n_features, 1))


class _Distances:
    """Squared distances to rows of X as scikit-learn's ``_euclidean_distances``.

    ``-2 c x' + ||c||^2 + ||x||^2``, clipped at 0, returned in X's dtype.
    For float32 X on a device with float64 the computation is in float64,
    block by block of rows, as scikit-learn's ``_euclidean_distances_upcast``.
    """

    def __init__(self, X):
        xp = namespace(X)
        dev = _device(X)
        self.xp, self.X = xp, X
        n_samples, n_features = X.shape
        self.upcast = X.dtype == xp.float32 and _has_float64(xp, dev)
        self.work = xp.float64 if self.upcast else X.dtype
        self.zero = xp.zeros((), dtype=X.dtype, device=dev)
        if self.upcast:
            rows = _block_rows(n_samples, n_features)
            self.blocks = [
                (start, min(start + rows, n_samples))
                for start in range(0, n_samples, rows)
            ]
            norms = []
            for start, stop in self.blocks:
                Xb = xp.astype(X[start:stop, :], xp.float64)
                norms.append(xp.sum(Xb * Xb, axis=1))
            self.x_sq = xp.concat(norms) if len(norms) > 1 else norms[0]
        else:
            self.x_sq = xp.sum(X * X, axis=1)

    def __call__(self, C):
        """Squared distances of shape (n_centers, n_samples) from rows ``C``."""
        xp, X = self.xp, self.X
        if not self.upcast:
            d = -2 * xp.matmul(C, X.T)
            d = d + xp.sum(C * C, axis=1)[:, None]
            d = d + self.x_sq[None, :]
        else:
            C = xp.astype(C, xp.float64)
            c_sq = xp.sum(C * C, axis=1)[:, None]
            parts = []
            for start, stop in self.blocks:
                Xb = xp.astype(X[start:stop, :], xp.float64)
                d = -2 * xp.matmul(C, Xb.T)
                d = d + c_sq
                d = d + self.x_sq[None, start:stop]
                parts.append(xp.astype(d, X.dtype))
            d = xp.concat(parts, axis=1) if len(parts) > 1 else parts[0]
        return xp.maximum(d, self.zero)


def _kmeans_plusplus(X, n_clusters, w, w_host, random_state, n_local_trials=None):
    """scikit-learn's ``_kmeans_plusplus`` on X's device; indices on the device."""
    xp = namespace(X)
    dev = _device(X)
    n_samples = X.shape[0]
    index = index_dtype(xp, dev)
    distances = _Distances(X)
    work = distances.work
    np_work = np.float64 if work == xp.float64 else np.float32
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))

    # The first center: the draw of scikit-learn, on the host.
    center_id = random_state.choice(n_samples, p=w_host / w_host.sum())
    indices = [xp.asarray([int(center_id)], dtype=index, device=dev)]
    closest = distances(X[int(center_id) : int(center_id) + 1, :])  # (1, n)
    current_pot = xp.matmul(closest, w)  # (1,)
    last = xp.asarray(n_samples - 1, dtype=index, device=dev)

    for _ in range(1, n_clusters):
        # Host draws (n_local_trials numbers) and the searchsorted on the device.
        rand = from_numpy(
            random_state.uniform(size=n_local_trials).astype(np_work), xp, dev
        )
        rand = rand * xp.astype(current_pot, work)
        cum = xp.astype(xp.cumulative_sum(w * closest[0, :]), work)
        candidate_ids = xp.minimum(xp.searchsorted(cum, rand), last)

        to_candidates = distances(xp.take(X, candidate_ids, axis=0))  # (t, n)
        to_candidates = xp.minimum(closest, to_candidates)
        candidates_pot = xp.matmul(to_candidates, w)  # (t,)

        best = xp.reshape(xp.argmin(candidates_pot), (1,))
        current_pot = xp.take(candidates_pot, best)
        closest = xp.take(to_candidates, best, axis=0)
        indices.append(xp.astype(xp.take(candidate_ids, best), index))

    indices = xp.concat(indices) if len(indices) > 1 else indices[0]
    return xp.take(X, indices, axis=0), indices


def xp_kmeans_plusplus(
    X, n_clusters, *, sample_weight=None, random_state=None, n_local_trials=None
):
    """``sklearn.cluster.kmeans_plusplus`` on any array API namespace.

    Same draws from ``random_state`` as scikit-learn 1.9.1, so the same rows
    are chosen (up to floating rounding, see the module docstring).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        float32 or float64, in any array API namespace.
    n_clusters : int
    sample_weight : array of shape (n_samples,) or None, default=None
        In X's namespace (or NumPy); None for equal weights.
    random_state : int, RandomState instance or None, default=None
        The only source of randomness (on the host).
    n_local_trials : int or None, default=None
        ``2 + int(log(n_clusters))`` when None.

    Returns
    -------
    centers : array of shape (n_clusters, n_features)
        The chosen rows, in X's namespace, device and dtype.
    indices : array of shape (n_clusters,)
        Their indices, in the device's indexing dtype.
    """
    xp = namespace(X)
    random_state = check_random_state(random_state)
    w, w_host = _prepared_weights(xp, X, n_clusters, sample_weight)
    return _kmeans_plusplus(X, n_clusters, w, w_host, random_state, n_local_trials)


def _assign(X, centers):
    """Labels: the first argmin over centers of ``||c||^2 - 2 x c'``."""
    xp = namespace(X)
    dist = -2 * xp.matmul(X, centers.T) + xp.sum(centers * centers, axis=1)
    return xp.argmin(dist, axis=1)


def _average(xp, sums, weight_in, ks):
    """scikit-learn's ``_average_centers``: sums times the reciprocal weights.

    A cluster of zero weight takes the row of the heaviest cluster, unscaled
    if that row comes later (scikit-learn scales the rows in order).
    """
    positive = weight_in > 0
    one = xp.ones((), dtype=sums.dtype, device=_device(sums))
    alpha = one / xp.where(positive, weight_in, one)
    scaled = sums * alpha[:, None]
    heaviest = xp.reshape(xp.argmax(weight_in), (1,))
    source = xp.where(
        (ks < xp.astype(heaviest, ks.dtype))[:, None],
        xp.take(sums, heaviest, axis=0),
        xp.take(scaled, heaviest, axis=0),
    )
    return xp.where(positive[:, None], scaled, source)


def _shift_total(xp, old, new):
    """``sum(center_shift**2)`` with ``center_shift`` the Euclidean shifts."""
    diff = new - old
    shift = xp.sqrt(xp.sum(diff * diff, axis=1))
    return xp.sum(shift * shift)


def _relocate(X, w, centers_old, sums, weight_in, labels, empty, ks):
    """scikit-learn's ``_relocate_empty_clusters_dense`` (two host syncs)."""
    xp = namespace(X)
    empty_ids = np.flatnonzero(to_numpy(empty, dtype=None))
    n_empty = empty_ids.size
    diff = X - xp.take(centers_old, labels, axis=0)
    distances = xp.sum(diff * diff, axis=1)
    far = xp.argsort(distances, descending=True, stable=True)[:n_empty]
    info = to_numpy(
        xp.concat(
            [
                far,
                xp.astype(xp.take(labels, far), far.dtype),
                xp.reshape(xp.astype(xp.max(distances) == 0, far.dtype), (1,)),
            ]
        ),
        dtype=None,
    )
    if info[-1]:
        # Every row is on its center (more clusters than distinct rows).
        return sums, weight_in
    index = ks.dtype
    dev = _device(X)
    for idx in range(n_empty):
        new_id, far_id = int(empty_ids[idx]), int(info[idx])
        old_id = int(info[n_empty + idx])
        row = xp.asarray([far_id], dtype=index, device=dev)
        weight = xp.take(w, row)  # (1,)
        xw = xp.take(X, row, axis=0) * weight[:, None]  # (1, d)
        is_old, is_new = ks == old_id, ks == new_id
        sums = xp.where(is_old[:, None], sums - xw, sums)
        sums = xp.where(is_new[:, None], xw, sums)
        weight_in = xp.where(is_new, weight, weight_in)
        weight_in = xp.where(is_old, weight_in - weight, weight_in)
    return sums, weight_in


def _lloyd(X, w, centers, max_iter=300, tol=0.0):
    """scikit-learn's ``_kmeans_single_lloyd`` on X's device.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    w : array of shape (n_samples,)
    centers : array of shape (n_clusters, n_features)
        Initial centers.
    max_iter : int, default=300
    tol : float or array of shape (), default=0.0
        Absolute tolerance on the sum of squared center shifts.

    Returns
    -------
    labels : array of shape (n_samples,)
    centers : array of shape (n_clusters, n_features)
    n_iter : int
    """
    xp = namespace(X)
    dev = _device(X)
    n_clusters = centers.shape[0]
    ks = xp.arange(n_clusters, dtype=index_dtype(xp, dev), device=dev)
    zero = xp.zeros((), dtype=X.dtype, device=dev)
    tol = xp.asarray(tol, dtype=X.dtype, device=dev)
    labels_old = None
    strict = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        labels = _assign(X, centers)
        onehot = xp.astype(labels, ks.dtype)[:, None] == ks[None, :]
        weighted = xp.where(onehot, w[:, None], zero)  # (n, k)
        weight_in = xp.sum(weighted, axis=0)
        sums = xp.matmul(weighted.T, X)  # (k, d)
        empty = weight_in == 0
        new = _average(xp, sums, weight_in, ks)
        shift_total = _shift_total(xp, centers, new)
        if labels_old is None:
            same = xp.asarray(False, device=dev)
        else:
            same = xp.all(labels == labels_old)
        # The one synchronisation of an iteration: three numbers.
        flags = to_numpy(
            xp.stack(
                [
                    xp.astype(same, X.dtype),
                    xp.astype(shift_total <= tol, X.dtype),
                    xp.astype(xp.any(empty), X.dtype),
                ]
            )
        )
        same, within_tol = bool(flags[0]), bool(flags[1])
        if flags[2]:
            sums, weight_in = _relocate(
                X, w, centers, sums, weight_in, labels, empty, ks
            )
            new = _average(xp, sums, weight_in, ks)
            if not same:
                within_tol = bool(_shift_total(xp, centers, new) <= tol)
        centers = new
        if same:
            strict = True
            break
        if within_tol:
            break
        labels_old = labels
    if not strict:
        # Rerun the E-step so that the labels match the final centers.
        labels = _assign(X, centers)
    return labels, centers, n_iter


def xp_kmeans(
    X,
    n_clusters,
    *,
    sample_weight=None,
    random_state=None,
    max_iter=300,
    tol=1e-4,
):
    """``KMeans(n_clusters, n_init=1).fit(X, sample_weight)`` on any namespace.

    k-means++ initialisation and Lloyd iterations as scikit-learn 1.9.1 runs
    them (see the module docstring), with the same draws from
    ``random_state``. Warns (``ConvergenceWarning``) as scikit-learn when
    fewer than ``n_clusters`` distinct labels are found.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        float32 or float64, in any array API namespace; not modified.
    n_clusters : int
    sample_weight : array of shape (n_samples,) or None, default=None
    random_state : int, RandomState instance or None, default=None
    max_iter : int, default=300
    tol : float, default=1e-4
        Relative to the mean variance of the columns, as scikit-learn's.

    Returns
    -------
    labels : array of shape (n_samples,)
        In the device's indexing dtype.
    centers : array of shape (n_clusters, n_features)
        ``cluster_centers_``, in X's namespace, device and dtype.
    n_iter : int
    """
    xp = namespace(X)
    dev = _device(X)
    random_state = check_random_state(random_state)
    w, w_host = _prepared_weights(xp, X, n_clusters, sample_weight)
    if tol == 0:
        tol_abs = xp.zeros((), dtype=X.dtype, device=dev)
    else:
        tol_abs = xp.mean(xp.var(X, axis=0)) * tol
    # scikit-learn subtracts the column means for more accurate distances.
    X_mean = xp.mean(X, axis=0)
    Xc = X - X_mean
    _, indices = _kmeans_plusplus(Xc, n_clusters, w, w_host, random_state)
    centers_init = xp.take(Xc, indices, axis=0)
    labels, centers, n_iter = _lloyd(Xc, w, centers_init, max_iter, tol_abs)

    ks = xp.arange(n_clusters, dtype=labels.dtype, device=dev)
    present = xp.any(labels[:, None] == ks[None, :], axis=0)
    distinct = int(xp.sum(xp.astype(present, labels.dtype)))
    if distinct < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({distinct}) found smaller than "
            f"n_clusters ({n_clusters}). Possibly due to duplicate points in X.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return labels, centers + X_mean, n_iter


def _one_hot(xp, rows, n_samples, dtype, dev):
    """``resp[rows[j], j] = 1`` as an (n_samples, len(rows)) array of ``dtype``."""
    index = index_dtype(xp, dev)
    grid = xp.arange(n_samples, dtype=index, device=dev)[:, None]
    return xp.astype(grid == xp.astype(rows, index)[None, :], dtype)


def xp_initial_resp(X, n_components, init_params, random_state, sample_weight=None):
    """``_init.initial_resp`` for data of any array API namespace, on its device.

    The same strategies and the same draws from ``random_state`` as the NumPy
    path (see the module docstring), so on the same data both give the same
    responsibilities and leave ``random_state`` in the same state.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Mean-filled data, float32 or float64, in any array API namespace.
    n_components : int
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}
    random_state : RandomState
    sample_weight : array of shape (n_samples,) or None, default=None
        In X's namespace (or NumPy).

    Returns
    -------
    resp : array of shape (n_samples, n_components)
        In X's namespace, device and dtype.
    """
    xp = namespace(X)
    dev = _device(X)
    n_samples = X.shape[0]
    np_dtype = _numpy_dtype(xp, X.dtype)
    if n_components == 1 and init_params in ("kmeans", "random"):
        return xp.ones((n_samples, 1), dtype=X.dtype, device=dev)
    if init_params == "kmeans":
        labels, _, _ = xp_kmeans(
            X, n_components, sample_weight=sample_weight, random_state=random_state
        )
        ks = xp.arange(n_components, dtype=labels.dtype, device=dev)
        return xp.astype(labels[:, None] == ks[None, :], X.dtype)
    if init_params == "random":
        resp = random_state.uniform(size=(n_samples, n_components))
        resp /= resp.sum(axis=1)[:, np.newaxis]
        return from_numpy(resp.astype(np_dtype), xp, dev)
    if init_params == "random_from_data":
        if sample_weight is None:
            p = None
        else:
            weights = to_numpy(sample_weight, dtype=None)
            p = weights / weights.sum()
        indices = random_state.choice(n_samples, size=n_components, replace=False, p=p)
        indices = from_numpy(indices, xp, dev, dtype=index_dtype(xp, dev))
    elif init_params == "k-means++":
        _, indices = xp_kmeans_plusplus(
            X, n_components, sample_weight=sample_weight, random_state=random_state
        )
    else:
        raise ValueError(f"Unknown init_params {init_params!r}.")
    return _one_hot(xp, indices, n_samples, X.dtype, dev)
