"""Measure the claims of the README's "Why em_sklearn" table.

Run from the repository root (about a minute on 2 cores):

    python benchmarks/why.py

Three datasets that ship with scikit-learn (wine, breast cancer, diabetes);
for each of 5 seeds, 20% of the entries are removed completely at random and
the features are standardised with the observed entries' statistics. Printed
as Markdown tables:

1. imputation RMSE on the removed entries (in standard deviations), mean over
   seeds, and the fit+transform time on the largest dataset (the fastest of
   the 5 seeds, less sensitive to other load on the machine; BLAS limited to
   one thread for every method);
2. the error of the covariance matrix estimated from the incomplete data,
   ``||S_hat - S_complete||_F / ||S_complete||_F``: "fill, then compute the
   covariance" for each sklearn imputer, EM's ``covariances_`` for EMImputer;
3. clustering the wine cultivars (adjusted Rand index): GaussianMixture on
   mean-filled data vs EMClusterer on the data with NaN, both
   ``n_components=3, covariance_type='tied'``;
4. whether each estimator fits data containing NaN as it is.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from em_sklearn import EMClusterer, EMImputer

SEEDS = range(5)
MISSING = 0.2
DATASETS = {
    "wine": load_wine,
    "breast cancer": load_breast_cancer,
    "diabetes": load_diabetes,
}


def imputers(seed):
    return {
        "SimpleImputer(mean)": SimpleImputer(strategy="mean"),
        "KNNImputer": KNNImputer(),
        "IterativeImputer": IterativeImputer(max_iter=30, random_state=seed),
        "EMImputer": EMImputer(random_state=seed),
    }


def masked(X_true, seed):
    """Standardised complete data, the same with 20% NaN, and the NaN mask."""
    rng = np.random.default_rng(seed)
    missing = rng.random(X_true.shape) < MISSING
    X_missing = np.where(missing, np.nan, X_true)
    scaler = StandardScaler().fit(X_missing)
    return scaler.transform(X_true), scaler.transform(X_missing), missing


def relative_error(S_hat, S):
    return np.linalg.norm(S_hat - S) / np.linalg.norm(S)


def main():
    rmse = {name: {} for name in imputers(0)}
    cov_error = {name: [] for name in imputers(0)}
    seconds = {name: [] for name in imputers(0)}
    for data_name, loader in DATASETS.items():
        X_raw, y = loader(return_X_y=True)
        errors = {name: [] for name in imputers(0)}
        for seed in SEEDS:
            X_true, X_missing, missing = masked(X_raw, seed)
            S_true = np.cov(X_true.T, bias=True)
            for name, imputer in imputers(seed).items():
                start = time.perf_counter()
                with warnings.catch_warnings():
                    # IterativeImputer may stop at max_iter; its result is kept.
                    warnings.simplefilter("ignore")
                    X_filled = imputer.fit_transform(X_missing)
                elapsed = time.perf_counter() - start
                diff = X_filled[missing] - X_true[missing]
                errors[name].append(np.sqrt(np.mean(diff**2)))
                if data_name == "breast cancer":
                    seconds[name].append(elapsed)
                if data_name == "wine":
                    S_hat = (
                        imputer.covariances_[0]
                        if isinstance(imputer, EMImputer)
                        else np.cov(X_filled.T, bias=True)
                    )
                    cov_error[name].append(relative_error(S_hat, S_true))
        for name in errors:
            rmse[name][data_name] = np.mean(errors[name])

    print(f"Imputation RMSE on the removed entries ({MISSING:.0%} MCAR, standardised,")
    print(f"mean of {len(SEEDS)} seeds; lower is better), and the fastest")
    print("fit+transform time of the 5 seeds on breast cancer")
    print()
    header = " | ".join(DATASETS)
    print(f"| imputer | {header} | time, breast cancer |")
    print("|---|" + "---|" * len(DATASETS) + "---|")
    for name in rmse:
        cells = " | ".join(f"{rmse[name][d]:.3f}" for d in DATASETS)
        print(f"| {name} | {cells} | {np.min(seconds[name]):.2f} s |")

    print()
    print("Covariance of wine estimated from the incomplete data: relative")
    print("Frobenius error against the complete data's (lower is better)")
    print()
    print("| estimate | error |")
    print("|---|---|")
    for name, values in cov_error.items():
        how = "EM (covariances_)" if name == "EMImputer" else f"{name}, then np.cov"
        print(f"| {how} | {np.mean(values):.3f} |")

    X_raw, y = load_wine(return_X_y=True)
    ari = {
        "GaussianMixture on mean-filled data": [],
        "EMClusterer on data with NaN": [],
    }
    for seed in SEEDS:
        _, X_missing, _ = masked(X_raw, seed)
        params = {"n_components": 3, "covariance_type": "tied", "random_state": seed}
        X_mean = SimpleImputer().fit_transform(X_missing)
        gmm_labels = GaussianMixture(**params).fit_predict(X_mean)
        em_labels = EMClusterer(**params).fit_predict(X_missing)
        ari["GaussianMixture on mean-filled data"].append(
            adjusted_rand_score(y, gmm_labels)
        )
        ari["EMClusterer on data with NaN"].append(adjusted_rand_score(y, em_labels))
    print()
    print("Clustering the 3 wine cultivars: adjusted Rand index (higher is better)")
    print()
    print("| clusterer | ARI |")
    print("|---|---|")
    for name, values in ari.items():
        print(f"| {name} | {np.mean(values):.3f} |")

    _, X_missing, _ = masked(X_raw, 0)
    print()
    print("Fits data containing NaN as it is:")
    for estimator in [GaussianMixture(n_components=3), EMClusterer(n_components=3)]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # only whether it fits matters here
                estimator.fit(X_missing)
            verdict = "yes"
        except ValueError as exc:
            verdict = f"no ({type(exc).__name__}: {str(exc).splitlines()[0][:60]})"
        print(f"- {type(estimator).__name__}: {verdict}")


if __name__ == "__main__":
    with threadpool_limits(limits=1):
        main()
