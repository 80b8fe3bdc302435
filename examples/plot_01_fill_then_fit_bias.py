"""
=======================================================
Why "fill then fit" is biased, and what EM does instead
=======================================================

Two correlated Gaussian variables; 40% of the second one is removed
completely at random. We estimate the covariance matrix four ways:

* from the complete data (the truth we pretend not to have);
* by **EM on the observed entries** (:class:`~em_sklearn.EMClusterer` with one
  component: the maximum-likelihood estimate under a bivariate normal);
* by **filling with the column mean, then computing the covariance**;
* by **filling with EM's conditional means, then computing the covariance**.

Filled-in values sit exactly on a line (the mean, or the regression line), with
none of the scatter real values have, so the covariance of the filled table
shrinks. EM adds each row's conditional covariance to the second moments
(the :math:`C_{ik}` term of the M-step), which is exactly what is missing.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Ellipse

from em_sklearn import EMClusterer, EMImputer

rng = np.random.default_rng(0)
true_cov = np.array([[1.0, 0.8], [0.8, 1.0]])
X_true = rng.multivariate_normal([0.0, 0.0], true_cov, size=500)
X = X_true.copy()
missing = rng.random(len(X)) < 0.4
X[missing, 1] = np.nan

em = EMClusterer(n_components=1, tol=1e-8, random_state=0).fit(X)
X_mean = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
X_cond = EMImputer(tol=1e-8).fit_transform(X)

# (mean, covariance) of each estimate
estimates = {
    "complete data (truth)": (X_true.mean(axis=0), np.cov(X_true.T, bias=True)),
    "EM on the observed entries": (em.means_[0], em.covariances_[0]),
    "mean-filled, then covariance": (X_mean.mean(axis=0), np.cov(X_mean.T, bias=True)),
    "EM-filled, then covariance": (X_cond.mean(axis=0), np.cov(X_cond.T, bias=True)),
}
table = pd.DataFrame(
    {
        name: {
            "mean(x1)": m[1],
            "var(x1)": c[1, 1],
            "cov(x0, x1)": c[0, 1],
            "corr(x0, x1)": c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]),
        }
        for name, (m, c) in estimates.items()
    }
).T.round(3)
table

# %%
# The filled tables have the right means but too little spread: mean filling
# loses variance *and* correlation, conditional-mean filling keeps the
# correlation's direction but still loses variance. EM's estimate is close
# to the complete-data one.

colors = ["black", "tab:blue", "tab:red", "tab:orange"]
styles = ["-", "-", "--", ":"]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
for ax, X_filled, title in [
    (axes[0], X_mean, "filled with the column mean"),
    (axes[1], X_cond, "filled with EM's conditional mean"),
]:
    ax.scatter(*X_filled[~missing].T, s=8, c="0.6", label="observed rows")
    ax.scatter(*X_filled[missing].T, s=10, c="tab:red", marker="x", label="filled rows")
    for (name, (mean, cov)), color, style in zip(
        estimates.items(), colors, styles, strict=True
    ):
        vals, vecs = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        ellipse = Ellipse(
            mean,
            *(4 * np.sqrt(vals[::-1])),
            angle=angle,
            fill=False,
            color=color,
            linestyle=style,
            linewidth=2,
            label=name,
        )
        ax.add_patch(ellipse)
    ax.set_title(title)
    ax.set_xlabel("x0 (always observed)")
axes[0].set_ylabel("x1 (40% missing)")
axes[1].legend(loc="upper left", fontsize=8)
fig.suptitle("2-sigma ellipses of the estimated covariance")
fig.tight_layout()
plt.show()
