"""The demo: mask a shipped dataset, impute and cluster it, compare with baselines.

The wine data (178 wines, 13 correlated chemical measurements, 3 cultivars)
ship with scikit-learn, so the demo needs no download. A fixed share of the
entries is removed completely at random (MCAR); the imputers are scored by the
RMSE of their fills against the removed truth, and the clusterers by the
adjusted Rand index of their labels against the cultivars.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_wine
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from ._clusterer import EMClusterer
from ._imputer import EMImputer

MISSING_FRACTION = 0.2
# Every mixture shares one covariance matrix across its components: 178 rows
# cannot support three full 13 x 13 covariances (3 x 91 free parameters).
COVARIANCE_TYPE = "tied"


def run_demo(seed=0):
    """Run the demo and return its numbers.

    Parameters
    ----------
    seed : int, default=0
        Seed of the MCAR mask and ``random_state`` of every estimator.

    Returns
    -------
    results : dict
        ``"rmse"`` and ``"ari"`` map a method key to its score,
        ``"seconds"`` maps ``"rmse/<key>"`` and ``"ari/<key>"`` to fit times,
        ``"labels"`` maps the same to the printed method names, and
        ``"warnings"`` lists ``"<label>: <message>"`` for every warning raised
        while fitting. The remaining keys describe the data: ``"dataset"``,
        ``"n_samples"``, ``"n_features"``, ``"n_classes"``, ``"n_missing"``,
        ``"seed"``.
    """
    X_true, y = load_wine(return_X_y=True)
    n_samples, n_features = X_true.shape
    n_classes = len(np.unique(y))

    rng = np.random.default_rng(seed)
    n_missing = round(MISSING_FRACTION * X_true.size)
    missing_mask = np.zeros(X_true.size, dtype=bool)
    missing_mask[rng.choice(X_true.size, size=n_missing, replace=False)] = True
    missing_mask = missing_mask.reshape(X_true.shape)
    X_missing = np.where(missing_mask, np.nan, X_true)

    # The scaler is fitted on the observed entries only (it ignores NaN), so the
    # truth is not peeked at. It puts the 13 measurements (proline is in the
    # hundreds, hue below 2) on one scale: the RMSE below is in units of each
    # feature's standard deviation, and KNN distances and k-means
    # initialisations are not dominated by one feature.
    scaler = StandardScaler().fit(X_missing)
    X_true = scaler.transform(X_true)
    X_missing = scaler.transform(X_missing)

    results = {
        "dataset": "wine",
        "n_samples": n_samples,
        "n_features": n_features,
        "n_classes": n_classes,
        "n_missing": n_missing,
        "seed": seed,
        "rmse": {},
        "ari": {},
        "seconds": {},
        "labels": {},
        "warnings": [],
    }

    for key, label, imputer in _imputers(seed, n_classes):
        X_filled = _timed(
            results, f"rmse/{key}", label, imputer.fit_transform, X_missing
        )
        error = X_filled[missing_mask] - X_true[missing_mask]
        results["rmse"][key] = float(np.sqrt(np.mean(error**2)))

    for key, label, clusterer, X in _clusterers(seed, n_classes, X_missing, X_true):
        labels_pred = _timed(results, f"ari/{key}", label, clusterer.fit_predict, X)
        results["ari"][key] = float(adjusted_rand_score(y, labels_pred))

    return results


def format_results(results):
    """Lay out the numbers of :func:`run_demo` as a short plain-text report.

    Parameters
    ----------
    results : dict
        The output of :func:`run_demo`.

    Returns
    -------
    report : str
        Several lines, without a trailing newline.
    """
    width = max(len(label) for label in results["labels"].values())
    n_entries = results["n_samples"] * results["n_features"]
    lines = [
        f"em_sklearn demo: {results['dataset']} data, {results['n_samples']} samples "
        f"x {results['n_features']} features, {results['n_classes']} classes.",
        f"{results['n_missing']} of {n_entries} entries ({MISSING_FRACTION:.0%}) "
        f"removed completely at random (seed {results['seed']}).",
        "Features standardised using the observed entries only.",
    ]
    sections = [
        ("rmse", "Imputation: RMSE on the removed entries (lower is better)", "RMSE"),
        (
            "ari",
            "Clustering: adjusted Rand index vs the true classes (higher is better)\n"
            f"  every mixture: n_components={results['n_classes']}, "
            f"covariance_type={COVARIANCE_TYPE!r}",
            "ARI",
        ),
    ]
    for kind, title, score_name in sections:
        lines += ["", title, f"  {'method':<{width}}  {score_name:>6}  {'time':>6}"]
        for key, score in results[kind].items():
            label = results["labels"][f"{kind}/{key}"]
            seconds = results["seconds"][f"{kind}/{key}"]
            lines.append(f"  {label:<{width}}  {score:6.3f}  {seconds:5.2f}s")
    if results["warnings"]:
        lines += ["", "Warnings raised while fitting:"]
        lines += [f"  {message}" for message in results["warnings"]]
    return "\n".join(lines)


def demo(seed=0):
    """Run the demo and print its report; the body of ``python -m em_sklearn demo``.

    Parameters
    ----------
    seed : int, default=0
        Passed to :func:`run_demo`.

    Returns
    -------
    results : dict
        The output of :func:`run_demo`.
    """
    results = run_demo(seed=seed)
    print(format_results(results))
    return results


def _imputers(seed, n_classes):
    """The imputers compared, as ``(key, printed label, estimator)``."""
    return [
        ("mean", "SimpleImputer(strategy='mean')", SimpleImputer(strategy="mean")),
        ("knn", "KNNImputer()", KNNImputer()),
        (
            "iterative",
            "IterativeImputer(max_iter=30)",
            IterativeImputer(max_iter=30, random_state=seed),
        ),
        ("em", "EMImputer()", EMImputer(random_state=seed)),
        (
            "em_mixture",
            f"EMImputer(n_components={n_classes}, covariance_type={COVARIANCE_TYPE!r})",
            EMImputer(
                n_components=n_classes,
                covariance_type=COVARIANCE_TYPE,
                random_state=seed,
            ),
        ),
    ]


def _clusterers(seed, n_classes, X_missing, X_true):
    """The clusterers compared, as ``(key, printed label, estimator, data)``."""
    X_mean_filled = SimpleImputer(strategy="mean").fit_transform(X_missing)
    params = {
        "n_components": n_classes,
        "covariance_type": COVARIANCE_TYPE,
        "random_state": seed,
    }
    return [
        (
            "gmm_mean_filled",
            "GaussianMixture on mean-filled data",
            GaussianMixture(**params),
            X_mean_filled,
        ),
        ("em", "EMClusterer on the data with NaN", EMClusterer(**params), X_missing),
        (
            "gmm_complete",
            "GaussianMixture on the complete data (reference)",
            GaussianMixture(**params),
            X_true,
        ),
    ]


def _timed(results, key, label, func, X):
    """Call ``func(X)``; record its label, time and any warnings in ``results``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        out = func(X)
        seconds = time.perf_counter() - start
    results["labels"][key] = label
    results["seconds"][key] = seconds
    results["warnings"] += [
        f"{label}: {w.category.__name__}: {w.message}" for w in caught
    ]
    return out
