"""A/B: the NumPy engine's EM iteration at two checkouts, alternately.

    python benchmarks/ab_engine.py OLD_CHECKOUT NEW_CHECKOUT

Each checkout (a directory holding ``em_sklearn/``, e.g. a ``git worktree``)
is imported in a process of its own (``PYTHONPATH``): n=100,000, d=20, k=5,
0% and 20% MCAR, one BLAS thread, one iteration (E-step and M-step on rows
prepared once) timed 7 times per process, the best kept; 3 rounds, the two
checkouts alternately; prints the best of each and their ratio.
"""

import os
import subprocess
import sys

RATES = ("0.0", "0.2")

_ONE_PROCESS = r"""
import os, time
import numpy as np
from threadpoolctl import threadpool_limits
from em_sklearn._gaussian import gaussian_mixture

threadpool_limits(1)
rng = np.random.default_rng(0)
n, d, k = 100_000, 20, 5
X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / 4
X += rng.integers(0, k, n)[:, None]
X[rng.random(X.shape) < float(os.environ["RATE"])] = np.nan
model = gaussian_mixture(k, "full", 1e-6)
data = model.prepare(X)
params = model.initial_params(data, np.random.RandomState(0))
best = float("inf")
for _ in range(7):
    start = time.perf_counter()
    model.m_step(model.e_step(params, data))
    best = min(best, time.perf_counter() - start)
print(best)
"""


def _time(checkout, rate):
    env = {**os.environ, "PYTHONPATH": checkout, "RATE": rate}
    out = subprocess.run(
        [sys.executable, "-c", _ONE_PROCESS],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def main(old, new, rounds=3):
    best = {(label, rate): float("inf") for label in "AB" for rate in RATES}
    for _ in range(rounds):
        for label, checkout in (("A", old), ("B", new)):
            for rate in RATES:
                best[label, rate] = min(best[label, rate], _time(checkout, rate))
    for rate in RATES:
        before, after = best["A", rate], best["B", rate]
        print(
            f"MCAR {float(rate):.0%}: before {before * 1e3:.1f} ms, "
            f"after {after * 1e3:.1f} ms, ratio {after / before:.3f}"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
