"""
==============================================================
Choosing the number of components: BIC and held-out likelihood
==============================================================

Four Gaussian clusters in five dimensions, with 20% of the entries missing
completely at random. Two ways to choose ``n_components`` that both work on
incomplete data, because both use the *observed-data* log-likelihood (the
missing entries are integrated out, never filled in):

* the Bayesian information criterion, :meth:`EMClusterer.bic
  <em_sklearn.EMClusterer.bic>`, on the training data (lower is better);
* the held-out log-likelihood per row, which ``GridSearchCV`` computes from
  :meth:`EMClusterer.score <em_sklearn.EMClusterer.score>` on each
  validation fold (higher is better).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold

from em_sklearn import EMClusterer

rng = np.random.default_rng(0)
centers = rng.normal(scale=4.0, size=(4, 5))
X = np.vstack([c + rng.normal(size=(100, 5)) for c in centers])
X[rng.random(X.shape) < 0.2] = np.nan

ks = range(1, 9)
bic = [EMClusterer(n_components=k, random_state=0).fit(X).bic(X) for k in ks]

search = GridSearchCV(
    EMClusterer(random_state=0),
    {"n_components": ks},
    cv=KFold(n_splits=5, shuffle=True, random_state=0),
).fit(X)
results = pd.DataFrame(
    {
        "n_components": ks,
        "BIC": bic,
        "held-out log-lik. per row": search.cv_results_["mean_test_score"],
        "std over folds": search.cv_results_["std_test_score"],
    }
).set_index("n_components")
results.round(2)

# %%
fig, (ax_bic, ax_cv) = plt.subplots(1, 2, figsize=(10, 3.8))
ax_bic.plot(ks, bic, marker="o")
ax_bic.axvline(ks[int(np.argmin(bic))], color="tab:red", linestyle="--")
ax_bic.set_xlabel("n_components")
ax_bic.set_ylabel("BIC (lower is better)")
ax_bic.set_title("BIC on the training data")
ax_cv.errorbar(ks, results.iloc[:, 1], yerr=results.iloc[:, 2], marker="o", capsize=3)
ax_cv.axvline(search.best_params_["n_components"], color="tab:red", linestyle="--")
ax_cv.set_xlabel("n_components")
ax_cv.set_ylabel("mean held-out log-likelihood per row")
ax_cv.set_title("5-fold cross-validation (higher is better)")
fig.tight_layout()
plt.show()

# %%
# Both criteria pick the four clusters the data were drawn from. BIC needs one
# fit per candidate; cross-validation needs one per candidate and fold but
# makes no asymptotic assumption, and its curve flattens rather than turns
# when extra components only split a cluster. With many features and few rows,
# try ``covariance_type="tied"`` or ``"diag"`` for the candidates as well
# (see the user guide on covariance types).
print(
    "BIC picks",
    ks[int(np.argmin(bic))],
    "; cross-validation picks",
    search.best_params_["n_components"],
)
