"""
===========================================
The convergence curve of the log-likelihood
===========================================

Every fit records the mean observed-data log-likelihood per row at each EM
iteration in ``lower_bounds_``; :class:`~em_sklearn.ConvergenceDisplay` draws
it. EM never decreases it, and the more is missing the more slowly it climbs:
the rate of convergence is governed by the *fraction of missing information*
(Dempster, Laird & Rubin, 1977). ``accelerate="squarem"`` extrapolates from
two EM steps and needs far fewer iterations, with the same monotone guarantee.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

from em_sklearn import ConvergenceDisplay, EMImputer

X_full = StandardScaler().fit_transform(load_wine().data)
rng = np.random.default_rng(0)
uniform = rng.random(X_full.shape)

X = np.where(uniform < 0.3, np.nan, X_full)  # 30% missing
fig, ax = plt.subplots(figsize=(6.5, 4))
for accelerate in [None, "squarem"]:
    imputer = EMImputer(tol=1e-6, max_iter=1000, accelerate=accelerate).fit(X)
    ConvergenceDisplay.from_estimator(
        imputer, ax=ax, name=f"accelerate={accelerate!r}: {imputer.n_iter_} iterations"
    )
ax.set_title("EMImputer on wine with 30% missing")
fig.tight_layout()
plt.show()

# %%
# The distance to the final value on a log scale shows the linear rate of
# EM: a straight line whose slope flattens as the missing fraction grows.
fig, ax = plt.subplots(figsize=(6.5, 4))
for fraction in [0.1, 0.2, 0.3, 0.4]:
    X = np.where(uniform < fraction, np.nan, X_full)
    imputer = EMImputer(tol=1e-9, max_iter=2000).fit(X)
    gap = imputer.lower_bound_ - np.asarray(imputer.lower_bounds_[:-1])
    ax.semilogy(np.arange(1, len(gap) + 1), gap, label=f"{fraction:.0%} missing")
ax.set_xlabel("EM iteration")
ax.set_ylabel("final minus current log-likelihood per row")
ax.set_title("More missing information, slower EM")
ax.legend()
fig.tight_layout()
plt.show()
