"""The Displays: mixture ellipses with imputed points, and the convergence curve."""

import re
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError

from em_sklearn import ConvergenceDisplay, EMClusterer, EMImputer, MixtureDisplay
from em_sklearn._gaussian import COVARIANCE_TYPES
from em_sklearn._plotting import _ellipse_geometry


@pytest.fixture
def pyplot():
    """matplotlib.pyplot on the Agg backend; every figure is closed afterwards."""
    matplotlib = pytest.importorskip(
        "matplotlib", reason="matplotlib (the 'plot' extra) is not installed"
    )
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def _two_blobs(seed, missing=0.3):
    """Two separated 3-D blobs with a share of the entries missing at random."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (60, 3)), rng.normal(6, 1, (60, 3))])
    missing_mask = rng.random(X.shape) < missing
    missing_mask[missing_mask.all(axis=1), 0] = False  # keep one entry per row
    return np.where(missing_mask, np.nan, X)


def test_import_does_not_load_matplotlib():
    """``import em_sklearn`` does not import matplotlib (it is an optional extra)."""
    code = "import sys, em_sklearn; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_missing_matplotlib_raises_clear_import_error(monkeypatch):
    """Without matplotlib, plotting raises an ImportError saying how to install it."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    est = EMImputer().fit(_two_blobs(0))
    msg = (
        "ConvergenceDisplay.from_estimator requires matplotlib, an optional "
        'dependency of em_sklearn. Install it with: pip install "em_sklearn[plot]"'
    )
    with pytest.raises(ImportError, match=re.escape(msg)):
        ConvergenceDisplay.from_estimator(est)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mixture_display_one_ellipse_per_component(
    pyplot, covariance_type, global_random_seed
):
    """There is one ellipse per component, centred on the component's mean."""
    X = _two_blobs(global_random_seed)
    est = EMClusterer(
        n_components=2, covariance_type=covariance_type, random_state=0
    ).fit(X)
    display = MixtureDisplay.from_estimator(est, X, features=(0, 2))
    assert len(display.ellipses_) == 2
    centers = np.array([e.center for e in display.ellipses_])
    assert_allclose(centers, est.means_[:, [0, 2]], rtol=1e-12, atol=0)
    assert display.ax_.get_xlabel() == "x0"
    assert display.ax_.get_ylabel() == "x2"
    assert display.figure_ is display.ax_.figure


@pytest.mark.parametrize(
    "Estimator", [EMClusterer, EMImputer], ids=lambda c: c.__name__
)
def test_mixture_display_marks_imputed_points(pyplot, Estimator, global_random_seed):
    """Rows with a missing plotted coordinate sit at their imputation, marked apart."""
    X = _two_blobs(global_random_seed)
    est = Estimator(n_components=2, random_state=0).fit(X)
    display = MixtureDisplay.from_estimator(est, X, features=(1, 2))
    imputed_rows = np.isnan(X[:, [1, 2]]).any(axis=1)
    assert_array_equal(display.imputed_mask, imputed_rows)
    assert_array_equal(display.observed_.get_offsets(), X[~imputed_rows][:, [1, 2]])
    # EMImputer fits on standardised columns, so its own fit differs from the
    # clusterer's: impute with the estimator's parameters (max_iter=0 keeps them).
    X_filled = EMImputer(
        n_components=2,
        max_iter=0,
        weights_init=est.weights_,
        means_init=est.means_,
        precisions_init=est.precisions_,
    ).fit_transform(X)
    # The display and EMImputer run the same conditional-mean code.
    assert_allclose(
        display.imputed_.get_offsets(),
        X_filled[imputed_rows][:, [1, 2]],
        rtol=1e-10,
        atol=1e-10,
    )
    markers = {display.observed_.get_label(), display.imputed_.get_label()}
    assert markers == {"observed", "imputed"}


def test_mixture_display_feature_names_and_given_axes(pyplot):
    """Features can be chosen by name, and the given axes are used."""
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_two_blobs(0), columns=["alcohol", "ash", "hue"])
    est = EMClusterer(n_components=2, random_state=0).fit(X)
    fig, ax = pyplot.subplots()
    display = MixtureDisplay.from_estimator(est, X, features=("hue", "alcohol"), ax=ax)
    assert display.ax_ is ax and display.figure_ is fig
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("hue", "alcohol")


def test_mixture_display_skips_empty_feature_of_imputer(pyplot):
    """With a feature empty at fit time, EMImputer's columns are mapped correctly."""
    X = _two_blobs(0)
    X = np.hstack([np.full((len(X), 1), np.nan), X])
    with pytest.warns(UserWarning, match="Skipping features without any observed"):
        est = EMImputer(n_components=2, random_state=0).fit(X)
    display = MixtureDisplay.from_estimator(est, X, features=(1, 3))
    centers = np.array([e.center for e in display.ellipses_])
    assert_allclose(centers, est.means_[:, [0, 2]], rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="no observed value during fit"):
        MixtureDisplay.from_estimator(est, X, features=(0, 1))


@pytest.mark.parametrize(
    "features, msg",
    [
        ((0, 5), "Expected a feature position in [0, 3) but got 5."),
        (("alcohol", 1), "Feature 'alcohol' is not a feature seen during fit."),
        ((0, 1, 2), "Expected two features but got 3."),
    ],
)
def test_mixture_display_bad_features(pyplot, features, msg):
    """Bad feature choices raise a ValueError that says what was expected."""
    X = _two_blobs(0)
    est = EMClusterer(n_components=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=re.escape(msg)):
        MixtureDisplay.from_estimator(est, X, features=features)


def test_ellipse_geometry_axis_aligned():
    """A diag(4, 1) covariance at 2 std is an 8 x 4 ellipse along the x axis."""
    width, height, angle = _ellipse_geometry(np.diag([4.0, 1.0]), 2.0)
    assert_allclose([width, height, abs(angle) % 180], [8.0, 4.0, 0.0], atol=1e-12)


def test_ellipse_geometry_rotated():
    """A covariance stretched along the diagonal has its major axis at 45 degrees."""
    cov = np.array([[2.0, 1.5], [1.5, 2.0]])  # eigenvalues 3.5 and 0.5
    width, height, angle = _ellipse_geometry(cov, 1.0)
    assert_allclose([width, height], 2 * np.sqrt([3.5, 0.5]), rtol=1e-12)
    assert_allclose(angle % 180, 45.0, atol=1e-9)


@pytest.mark.parametrize(
    "Estimator", [EMClusterer, EMImputer], ids=lambda c: c.__name__
)
def test_convergence_display_plots_lower_bounds(pyplot, Estimator, global_random_seed):
    """The curve is ``lower_bounds_`` against iterations 1..n_iter_, non-decreasing."""
    X = _two_blobs(global_random_seed)
    est = Estimator(n_components=2, tol=1e-6, random_state=0).fit(X)
    display = ConvergenceDisplay.from_estimator(est)
    assert_array_equal(display.line_.get_ydata(), est.lower_bounds_)
    assert_array_equal(display.line_.get_xdata(), np.arange(1, est.n_iter_ + 1))
    # EM is monotone; allow rounding noise of the summed log-likelihood.
    assert np.all(np.diff(display.line_.get_ydata()) >= -1e-10)
    assert display.line_.get_label() == Estimator.__name__


def test_convergence_display_shares_axes(pyplot):
    """Two curves can be drawn on one axes, each with its legend label."""
    X = _two_blobs(0)
    fig, ax = pyplot.subplots()
    for accelerate in [None, "squarem"]:
        est = EMImputer(accelerate=accelerate, tol=1e-6).fit(X)
        ConvergenceDisplay.from_estimator(est, ax=ax, name=f"accelerate={accelerate}")
    assert [line.get_label() for line in ax.get_lines()] == [
        "accelerate=None",
        "accelerate=squarem",
    ]


@pytest.mark.parametrize("Display", [MixtureDisplay, ConvergenceDisplay])
def test_display_requires_fitted_estimator(pyplot, Display):
    """An unfitted estimator raises NotFittedError."""
    args = (
        (EMClusterer(), _two_blobs(0)) if Display is MixtureDisplay else (EMImputer(),)
    )
    with pytest.raises(NotFittedError):
        Display.from_estimator(*args)
