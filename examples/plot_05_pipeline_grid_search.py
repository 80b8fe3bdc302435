"""
======================================================
A classifier on data with NaN: Pipeline + GridSearchCV
======================================================

:class:`~em_sklearn.EMImputer` is an ordinary scikit-learn transformer, so it
goes into a :class:`~sklearn.pipeline.Pipeline` in front of any model, and
``GridSearchCV`` tunes its parameters (and chooses between imputers) by the
cross-validated score of the *classifier*. The imputer is fitted on the
training folds only, so nothing leaks from the validation folds.

Data: the wine data (three cultivars) with 40% of the entries removed
completely at random.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_wine
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from em_sklearn import EMImputer

X, y = load_wine(return_X_y=True, as_frame=True)
rng = np.random.default_rng(0)
X = X.mask(rng.random(X.shape) < 0.4)  # a DataFrame with 40% NaN
n_complete = X.notna().all(axis=1).sum()
print(f"{X.isna().mean().mean():.0%} missing; rows with no hole: {n_complete}")

# %%
# One pipeline; the grid swaps the imputer and tunes EMImputer's model.
pipe = Pipeline(
    [
        ("scale", StandardScaler()),  # ignores NaN when fitting, keeps it
        ("impute", EMImputer()),
        ("classify", LogisticRegression(C=0.1, max_iter=1000)),
    ]
)
param_grid = [
    {"impute": [SimpleImputer(strategy="mean"), KNNImputer()]},
    {
        "impute": [EMImputer(covariance_type="tied", random_state=0)],
        "impute__n_components": [1, 3],
    },
]
cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
search = GridSearchCV(pipe, param_grid, cv=cv).fit(X, y)

results = pd.DataFrame(
    {
        "imputer": [
            type(p["impute"]).__name__
            + (
                f"(n_components={p['impute__n_components']})"
                if "impute__n_components" in p
                else ""
            )
            for p in search.cv_results_["params"]
        ],
        "accuracy": search.cv_results_["mean_test_score"],
        "std": search.cv_results_["std_test_score"],
    }
)
results.round(3)

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.barh(results["imputer"], results["accuracy"], xerr=results["std"], capsize=3)
ax.set_xlim(0.8, 1.0)
ax.set_xlabel("5-fold cross-validated accuracy of LogisticRegression")
ax.set_title("Which imputer in front of the classifier?")
fig.tight_layout()
plt.show()

# %%
# The fitted search is a classifier that accepts NaN directly:
print("best:", search.best_params_)
X_new = X.iloc[:3].copy()
X_new.iloc[0, :6] = np.nan  # a wine with six measurements missing
print("predicted cultivars:", search.predict(X_new), "true:", y.iloc[:3].tolist())
