"""The demo: ``python -m em_sklearn demo`` runs, prints its tables, and EM wins."""

import subprocess
import sys

from em_sklearn._demo import run_demo


def test_demo_command_prints_both_tables():
    """``python -m em_sklearn demo`` exits 0 and prints the RMSE and ARI tables."""
    completed = subprocess.run(
        [sys.executable, "-m", "em_sklearn", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "Imputation: RMSE on the removed entries" in out
    assert "Clustering: adjusted Rand index" in out
    for label in [
        "SimpleImputer(strategy='mean')",
        "EMImputer()",
        "GaussianMixture on mean-filled data",
        "EMClusterer on the data with NaN",
    ]:
        assert label in out


def test_command_without_subcommand_fails_with_usage():
    """``python -m em_sklearn`` with no command exits 2 and prints the usage."""
    completed = subprocess.run(
        [sys.executable, "-m", "em_sklearn"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2
    assert "usage: em-sklearn" in completed.stderr


def test_run_demo_em_imputer_beats_mean_imputation():
    """On the masked wine data, EMImputer's RMSE is below SimpleImputer's (seed 0)."""
    results = run_demo(seed=0)
    assert results["rmse"]["em"] < results["rmse"]["mean"]
    assert results["rmse"]["em_mixture"] < results["rmse"]["mean"]
    assert results["n_missing"] == round(
        0.2 * results["n_samples"] * results["n_features"]
    )
