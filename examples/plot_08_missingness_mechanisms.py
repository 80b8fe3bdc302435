"""
=====================================
MCAR, MAR and MNAR: when is EM right?
=====================================

``x0`` is always observed, ``x1`` is missing for about 40% of the rows, and
the two are correlated (0.7). Whether the estimate of the mean of ``x1`` is
right depends on *why* values are missing:

* **MCAR** (missing completely at random): a coin decides. Every method that
  only uses the observed rows is unbiased.
* **MAR** (missing at random): the chance that ``x1`` is missing depends on the
  *observed* ``x0`` (here: large ``x0``, more likely missing). The observed
  ``x1`` values are a biased sample, but the bias can be undone through
  ``x0``: EM's likelihood does exactly that. The complete-case mean (which is
  also what mean imputation gives) is biased.
* **MNAR** (missing not at random): the chance depends on the *missing value
  itself* (large ``x1``, more likely missing). The observed data cannot tell
  this apart from a smaller mean, so every method here is biased, EM included.

We repeat each scenario 40 times and report the average error of the
estimated mean of ``x1``.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from em_sklearn import EMImputer

cov = np.array([[1.0, 0.7], [0.7, 1.0]])


def make_missing(X, mechanism, rng):
    """Boolean mask of the rows whose x1 is removed (about 40% of them)."""
    if mechanism == "MCAR":
        p = np.full(len(X), 0.4)
    else:
        driver = X[:, 0] if mechanism == "MAR" else X[:, 1]
        p = 1.0 / (1.0 + np.exp(-(2.0 * driver - 0.5)))  # logistic in the driver
    return rng.random(len(X)) < p


rng = np.random.default_rng(0)
errors = []
for mechanism in ["MCAR", "MAR", "MNAR"]:
    for _ in range(40):
        X = rng.multivariate_normal([0.0, 0.0], cov, size=400)
        missing = make_missing(X, mechanism, rng)
        X_obs = X.copy()
        X_obs[missing, 1] = np.nan
        em = EMImputer(tol=1e-8).fit(X_obs)
        errors += [
            (mechanism, "complete cases / mean imputation", X[~missing, 1].mean()),
            (mechanism, "EM (EMImputer.means_)", em.means_[0, 1]),
        ]
errors = pd.DataFrame(errors, columns=["mechanism", "method", "estimate of mean(x1)"])
# The true mean is 0, so the estimate is the error.
summary = errors.groupby(["mechanism", "method"])["estimate of mean(x1)"].agg(
    ["mean", "std"]
)
summary.round(3)

# %%
# One draw of each scenario (grey: x1 observed; red: x1 missing, drawn at its
# true value), and the estimation error of each method.
fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
for ax, mechanism in zip(axes[:3], ["MCAR", "MAR", "MNAR"], strict=True):
    X = rng.multivariate_normal([0.0, 0.0], cov, size=400)
    missing = make_missing(X, mechanism, rng)
    ax.scatter(*X[~missing].T, s=6, c="0.6", label="x1 observed")
    ax.scatter(*X[missing].T, s=6, c="tab:red", label="x1 missing")
    ax.set_title(mechanism)
    ax.set_xlabel("x0")
axes[0].set_ylabel("x1")
axes[0].legend(loc="upper left", fontsize=8)
table = summary["mean"].unstack()
positions = np.arange(3)
for offset, method in zip([-0.2, 0.2], table.columns, strict=True):
    axes[3].bar(
        positions + offset,
        table.loc[["MCAR", "MAR", "MNAR"], method],
        width=0.4,
        label=method,
    )
axes[3].axhline(0.0, color="black", linewidth=1)
axes[3].set_xticks(positions, ["MCAR", "MAR", "MNAR"])
axes[3].set_ylabel("mean error of the estimated mean(x1)")
axes[3].legend(loc="lower left", fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Under MAR the complete cases miss the large values of ``x1`` (they go with
# large ``x0``), and EM recovers them through the correlation. Under MNAR
# EM removes part of the bias (``x0`` is correlated with what is missing), but
# not all of it: no method that models only the observed data can. If values
# may be missing because of what they are, add variables that predict the
# missingness (they make MAR more plausible) or model the mechanism.
