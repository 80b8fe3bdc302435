"""Mixed-type imputation benchmark (issue 12, point 7): error per column type.

Run from the repository root after ``pip install .``::

    python benchmarks/mixed.py            # 3 seeds, all cases (5 to 9 minutes)
    python benchmarks/mixed.py --quick    # 1 seed, simulation with mdgc's cuts only

Data, each with entries removed completely at random (rows left with nothing
observed are drawn again, as mdgc does):

(a) the simulation of Zhao & Udell (2020, section 7.1) as written in R mdgc's
    README (``sim_dat``): n=2000 rows of one latent 15-dimensional Gaussian
    whose correlation is ``cov2cor`` of a Wishart(15, I) draw; 5 continuous
    columns ``qexp(pnorm(z))`` (exponential, skewed), 5 binary ``z > 0``, 5
    ordinal with 5 levels cut at the normal quintiles; 30% MCAR. With
    ``--sim random`` the binary and ordinal cut points are instead random
    observations between the latent's 5% and 95% quantiles, and the continuous
    columns exponential with scale 3, as in gcimpute's
    ``generate_mixed_from_gc`` (unbalanced levels: lower error rates).
(b) Palmer penguins (``palmerpenguins``; seaborn's copy as a fall-back): rows
    with anything missing dropped (333 left), ``species`` and ``island``
    nominal, ``sex`` binary, the four measurements continuous, ``year`` ordinal
    (3 levels); 10% and 30% MCAR.

Metrics, on the removed entries only, averaged over ``--seeds`` seeds (the
data, mask and the methods' ``random_state`` change with the seed):
continuous RMSE on columns divided by the complete data's standard deviation;
binary and nominal error rates; ordinal MAE on the level codes divided by the
MAE of imputing each column's median observed level (below 1 beats the median);
ordinal error rate (the published mdgc figures are error rates). Time is the
wall time of one call (encoding, ``fit_transform`` and decoding), median over
the seeds. BLAS, OpenMP and LightGBM are limited to one thread.

Methods: ``SimpleImputer`` (mean / most frequent); a missForest-style
``IterativeImputer(ExtraTreesRegressor)`` and today's numeric ``EMImputer`` on
the same hand-made encoding (binary and ordinal codes as numbers, rounded and
clipped back; nominal columns one-hot, decoded by argmax); miceforest and
gcimpute where they import; the native mixed-type ``EMImputer`` (issue 12)
when its parameters exist. The table is printed and written to
``benchmarks/RESULTS.md`` between this script's markers (``--output``).
"""

import os

# LightGBM (miceforest) and OpenMP read these when they load: set before imports.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.metadata  # noqa: E402
import inspect  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import threadpoolctl  # noqa: E402
from scipy.stats import norm  # noqa: E402
from sklearn.ensemble import ExtraTreesRegressor  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.experimental import enable_iterative_imputer  # noqa: E402, F401
from sklearn.impute import IterativeImputer, SimpleImputer  # noqa: E402

import em_sklearn  # noqa: E402
from em_sklearn import EMImputer  # noqa: E402

warnings.simplefilter("ignore", ConvergenceWarning)

# mdgc README (100 seeds): binary error, ordinal error, continuous RMSE.
PUBLISHED = {
    "exact copula (mdgc)": (0.244, 0.590, 0.760),
    "Zhao-Udell (mixedgcImp)": (0.252, 0.623, 0.767),
    "missForest": (0.294, 0.658, 0.850),
}


# -- data ---------------------------------------------------------------------


def redraw_empty_rows(mask, fraction, rng):
    """Draw the mask of rows with every entry missing again (as mdgc's sim_dat)."""
    while (empty := mask.all(axis=1)).any():
        mask[empty] = rng.random((empty.sum(), mask.shape[1])) < fraction
    return mask


def mcar_frame(df, fraction, seed):
    """A copy of ``df`` with each entry missing with probability ``fraction``."""
    rng = np.random.default_rng([seed, 1])
    mask = redraw_empty_rows(rng.random(df.shape) < fraction, fraction, rng)
    return df.mask(mask)


def zhao_udell(seed, n=2000, p=15, cuts="mdgc"):
    """The mixed simulation of Zhao & Udell (2020, 7.1): a typed DataFrame.

    ``cuts="mdgc"``: R mdgc's ``sim_dat`` (binary at 0, ordinal at the normal
    quintiles, continuous ``qexp(pnorm(z))``). ``cuts="random"``: gcimpute's
    ``generate_mixed_from_gc`` (cut points random observations between the
    latent's 5% and 95% quantiles, continuous exponential with scale 3).
    """
    rng = np.random.default_rng([seed, 0])
    A = rng.standard_normal((p, p))
    W = A.T @ A  # Wishart(p, I)
    sigma = W / np.sqrt(np.outer(np.diag(W), np.diag(W)))
    Z = rng.standard_normal((n, p)) @ np.linalg.cholesky(sigma).T
    m = p // 3
    scale = 1.0 if cuts == "mdgc" else 3.0
    columns = {}
    for j in range(m):
        columns[f"C{j + 1}"] = -scale * norm.logsf(Z[:, j])  # qexp(pnorm(z))
    for j in range(m):
        z = Z[:, m + j]
        codes = (z > 0).astype(int) if cuts == "mdgc" else _random_cuts(z, 2, rng)
        columns[f"B{j + 1}"] = pd.Categorical.from_codes(codes, categories=[0, 1])
    levels = list("ABCDE")
    for j in range(m):
        z = Z[:, 2 * m + j]
        if cuts == "mdgc":
            codes = np.digitize(z, norm.ppf(np.linspace(0, 1, 6)[1:-1]))
        else:
            codes = _random_cuts(z, 5, rng)
        columns[f"O{j + 1}"] = pd.Categorical.from_codes(
            codes, dtype=pd.CategoricalDtype(levels, ordered=True)
        )
    return pd.DataFrame(columns)


def _random_cuts(z, k, rng, tries=20):
    """gcimpute's ``cont_to_ord(by='quantile')``: k levels, all of them present."""
    inside = z[(z > np.quantile(z, 0.05)) & (z < np.quantile(z, 0.95))]
    for _ in range(tries):
        codes = np.digitize(z, np.sort(rng.choice(inside, k - 1, replace=False)))
        if len(np.unique(codes)) == k:
            return codes
    raise RuntimeError(f"could not cut the latent into {k} levels")


def penguins():
    """Palmer penguins, complete rows, typed: nominal, binary, ordinal, continuous."""
    try:
        import palmerpenguins

        df, source = palmerpenguins.load_penguins(), "palmerpenguins"
    except ImportError:  # seaborn's copy: same rows, no year column
        import seaborn

        df, source = seaborn.load_dataset("penguins"), "seaborn"
    df = df.dropna().reset_index(drop=True)
    out = pd.DataFrame(
        {
            "species": pd.Categorical(df["species"].astype(str)),
            "island": pd.Categorical(df["island"].astype(str)),
            "sex": pd.Categorical(df["sex"].astype(str).str.lower()),
        }
    )
    for col in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        out[col] = df[col].astype(float)
    if "year" in df:
        out["year"] = pd.Categorical(
            df["year"].astype(int), categories=sorted(df["year"].unique()), ordered=True
        )
    return out, source


def column_kinds(df):
    """Column type from dtype, as the native model reads it ("from_dtype")."""
    kinds = {}
    for col, dtype in df.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            if dtype.ordered:
                kinds[col] = "ordinal"
            elif len(dtype.categories) == 2:
                kinds[col] = "binary"
            else:
                kinds[col] = "nominal"
        else:
            kinds[col] = "continuous"
    return kinds


# -- the hand-made encoding ---------------------------------------------------


def encode(df):
    """Numbers for numeric imputers: codes for binary/ordinal, one-hot for nominal.

    Returns the matrix (NaN where missing) and the layout: per column its kind,
    its slice of the matrix and its dtype.
    """
    blocks, layout, start = [], [], 0
    for col, kind in column_kinds(df).items():
        if kind == "continuous":
            block = df[col].to_numpy(float)[:, None]
        else:
            codes = df[col].cat.codes.to_numpy()
            if kind == "nominal":
                block = np.eye(len(df[col].cat.categories))[codes]
            else:
                block = codes[:, None].astype(float)
            block[codes < 0] = np.nan
        blocks.append(block)
        layout.append((col, kind, slice(start, start + block.shape[1]), df[col].dtype))
        start += block.shape[1]
    return np.hstack(blocks), layout


def decode(X, df, layout):
    """Back to ``df``'s types, its observed entries kept.

    Binary and ordinal codes are rounded and clipped to a level; a nominal
    column's one-hot block is decoded by its argmax.
    """
    out = df.copy()
    for col, kind, sl, dtype in layout:
        missing = df[col].isna().to_numpy()
        if kind == "continuous":
            out.loc[missing, col] = X[missing, sl.start]
            continue
        n_levels = len(dtype.categories)
        if kind == "nominal":
            filled = np.argmax(X[:, sl], axis=1)
        else:
            filled = np.clip(np.rint(X[:, sl.start]), 0, n_levels - 1).astype(int)
        codes = np.where(missing, filled, df[col].cat.codes.to_numpy())
        out[col] = pd.Categorical.from_codes(codes, dtype=dtype)
    return out


# -- methods: each takes the typed frame with NaN and returns it filled --------


def simple_imputer(df, seed):
    """Mean for continuous columns, the most frequent level for the others."""
    out = df.copy()
    for col, kind in column_kinds(df).items():
        strategy = "mean" if kind == "continuous" else "most_frequent"
        values = df[[col]] if kind == "continuous" else df[[col]].astype(object)
        filled = SimpleImputer(strategy=strategy).fit_transform(values)[:, 0]
        out[col] = (
            filled.astype(float)
            if kind == "continuous"
            else pd.Categorical(filled, dtype=df[col].dtype)
        )
    return out


def missforest_style(df, seed, n_estimators=30):
    """IterativeImputer(ExtraTreesRegressor) on the hand-made encoding."""
    X, layout = encode(df)
    trees = ExtraTreesRegressor(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    imputer = IterativeImputer(estimator=trees, max_iter=10, random_state=seed)
    return decode(imputer.fit_transform(X), df, layout)


def em_hand_encoded(df, seed, n_components):
    """Today's numeric EMImputer on the hand-made encoding."""
    X, layout = encode(df)
    imputer = EMImputer(n_components=n_components, random_state=seed)
    return decode(imputer.fit_transform(X), df, layout)


def miceforest_impute(df, seed, mean_match_candidates=None, iterations=5):
    """miceforest (LightGBM chained equations) on the typed frame.

    Its default mean matching draws the imputation among the 5 nearest
    candidates (a random draw, not a point estimate); with
    ``mean_match_candidates=0`` it imputes the prediction (the most probable
    level for categorical columns).
    """
    import miceforest

    _lightgbm_shim()
    options = (
        {}
        if mean_match_candidates is None
        else {"mean_match_candidates": mean_match_candidates}
    )
    kernel = miceforest.ImputationKernel(df, random_state=seed, **options)
    kernel.mice(iterations, num_threads=1, verbosity=-1)
    return kernel.complete_data()


def _lightgbm_shim():
    """miceforest 6.0.5 calls ``Booster.__inner_predict(0)``; LightGBM 4.7 made
    ``data_idx`` keyword-only. Accept it positionally (nothing else changes)."""
    import lightgbm

    inner = lightgbm.Booster._Booster__inner_predict
    if getattr(inner, "_positional_shim", False):
        return
    if inspect.signature(inner).parameters["data_idx"].kind != (
        inspect.Parameter.KEYWORD_ONLY
    ):
        return

    def positional(self, data_idx):
        return inner(self, data_idx=data_idx)

    positional._positional_shim = True
    lightgbm.Booster._Booster__inner_predict = positional


def _numpy_shim():
    """gcimpute 0.0.4 calls ``np.round_``, removed in NumPy 2.0: alias ``np.round``."""
    if not hasattr(np, "round_"):
        np.round_ = np.round  # noqa: NPY003, NPY201 (the alias gcimpute needs)


def gcimpute_impute(df, seed):
    """gcimpute's GaussianCopula on the encoding (it has no nominal type).

    A nominal column enters as indicators of all its levels but the first
    (the full one-hot block is collinear and stops gcimpute's E-step); these,
    the binary and the ordinal codes are declared ordinal, the rest
    continuous. The nominal column is decoded from the latent normal scores of
    its indicators: the level whose score is furthest above its threshold
    ``ppf(1 - frequency)``, the first level where none is above (that is, where
    gcimpute imputes every indicator 0).
    """
    from gcimpute.gaussian_copula import GaussianCopula

    _numpy_shim()
    X, layout = encode(df)
    keep = np.ones(X.shape[1], dtype=bool)
    for _, kind, sl, _ in layout:
        if kind == "nominal":
            keep[sl.start] = False
    position = np.cumsum(keep) - 1  # column of X in X[:, keep]
    continuous = [
        int(position[sl.start]) for _, kind, sl, _ in layout if kind == "continuous"
    ]
    ordinal = [j for j in range(keep.sum()) if j not in continuous]
    model = GaussianCopula(random_state=seed, verbose=0)
    X_imp = np.zeros_like(X)
    X_imp[:, keep] = model.fit_transform(
        X[:, keep], continuous=continuous, ordinal=ordinal
    )
    Z = model._latent_Zimp
    for _, kind, sl, _ in layout:
        if kind == "nominal":
            indicators = np.arange(sl.start + 1, sl.stop)
            threshold = norm.ppf(1 - np.nanmean(X[:, indicators], axis=0))
            X_imp[:, indicators] = Z[:, position[indicators]] - threshold
    return decode(X_imp, df, layout)


def native_available():
    """Whether EMImputer has the mixed-type parameters of issue 12 yet."""
    return "categorical_features" in EMImputer().get_params()


def native_impute(df, seed, marginal, n_components):
    """The native mixed-type EMImputer: the one place its API is called.

    Returns the filled frame and the number of components it used (the choice
    of ``n_components="auto"``).
    """
    imputer = EMImputer(
        n_components=n_components,
        marginal=marginal,
        categorical_features="from_dtype",
        ordinal_features="from_dtype",
        random_state=seed,
    )
    out = imputer.fit_transform(df)
    chosen = getattr(imputer, "n_components_", n_components)
    return out, chosen


def methods(args):
    """(label, function(df, seed) -> filled frame or (frame, k), reason unavailable)."""
    out = [
        ("SimpleImputer (mean / most frequent)", simple_imputer, None),
        (
            f"missForest-style IterativeImputer(ExtraTrees({args.trees}))",
            lambda df, seed: missforest_style(df, seed, args.trees),
            None,
        ),
    ]
    mice, gc = _import_problem("miceforest"), _import_problem("gcimpute")
    out += [
        ("miceforest (defaults: mean matching, 5 iterations)", miceforest_impute, mice),
        (
            "miceforest (mean_match_candidates=0, 5 iterations)",
            lambda df, seed: miceforest_impute(df, seed, mean_match_candidates=0),
            mice,
        ),
        ("gcimpute (GaussianCopula defaults)", gcimpute_impute, gc),
    ]
    for k in (1, 3):
        out.append(
            (
                f"EMImputer(n_components={k}), hand-encoded",
                lambda df, seed, k=k: em_hand_encoded(df, seed, k),
                None,
            )
        )
    reason = None if native_available() else "not available yet"
    for marginal in ("gaussian", "copula"):
        for k in (1, 3, "auto"):
            out.append(
                (
                    f"native EMImputer(marginal={marginal!r}, n_components={k!r})",
                    # Only "auto" reports the k it chose.
                    lambda df, seed, m=marginal, k=k: (
                        native_impute(df, seed, m, k)
                        if k == "auto"
                        else native_impute(df, seed, m, k)[0]
                    ),
                    reason,
                )
            )
    return out


def _import_problem(module):
    """None if ``module`` imports, else why not (the row says it)."""
    try:
        __import__(module)
    except Exception as exc:  # ImportError, or a binary incompatibility
        return f"not installed ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    return None


# -- scoring ------------------------------------------------------------------


def _codes(values, dtype):
    """Level codes of ``values`` in ``dtype``'s categories (-1 if none of them)."""
    return pd.Categorical(pd.Series(values).astype(object), dtype=dtype).codes


def score(filled, truth, masked):
    """Errors per column type on the removed entries (NaN where the type is absent)."""
    kinds = column_kinds(truth)
    sq, mismatch, ordinal = [], {"binary": [], "nominal": []}, ([], [], [])
    for col, kind in kinds.items():
        missing = masked[col].isna().to_numpy()
        if not missing.any():
            continue
        if pd.Series(filled[col]).isna().to_numpy()[missing].any():
            raise ValueError(f"column {col!r} left missing entries unfilled")
        if kind == "continuous":
            true = truth[col].to_numpy(float)
            got = pd.to_numeric(pd.Series(filled[col]), errors="coerce").to_numpy(float)
            sq.append(((got[missing] - true[missing]) / true.std()) ** 2)
            continue
        dtype = truth[col].dtype
        true = truth[col].cat.codes.to_numpy()[missing]
        got = _codes(np.asarray(filled[col], dtype=object), dtype)[missing]
        if kind == "ordinal":
            observed = np.sort(truth[col].cat.codes.to_numpy()[~missing])
            median = observed[(len(observed) - 1) // 2]  # the lower median: a level
            ordinal[0].append(np.abs(got - true))
            ordinal[1].append(np.abs(median - true))
            ordinal[2].append(got != true)
        else:
            mismatch[kind].append(got != true)

    def mean(parts):
        return float(np.mean(np.concatenate(parts))) if parts else float("nan")

    return {
        "continuous": float(np.sqrt(mean(sq))),
        "binary": mean(mismatch["binary"]),
        "nominal": mean(mismatch["nominal"]),
        "ordinal": (
            float(np.concatenate(ordinal[0]).sum() / np.concatenate(ordinal[1]).sum())
            if ordinal[0]
            else float("nan")
        ),
        "ordinal error": mean(ordinal[2]),
    }


# -- runs ---------------------------------------------------------------------


def datasets(args):
    """(label, make(seed) -> complete typed frame, MCAR fraction)."""
    out = [
        (f"(a) Zhao-Udell, {cuts} cuts, n=2000, 30% MCAR", cuts) for cuts in args.sim
    ]
    cases = [
        (label, lambda seed, c=cuts: zhao_udell(seed, cuts=c), 0.3)
        for label, cuts in out
    ]
    frame, source = penguins()
    for fraction in args.penguin_rates:
        cases.append(
            (
                f"(b) penguins ({source}, n={len(frame)}), {fraction:.0%} MCAR",
                lambda seed, frame=frame: frame,
                fraction,
            )
        )
    return cases


def run_case(make, fraction, fn, seeds):
    """Scores averaged over seeds, median time, notes (k chosen, failures)."""
    scores, times, chosen = [], [], []
    for seed in seeds:
        truth = make(seed)
        masked = mcar_frame(truth, fraction, seed)
        start = time.perf_counter()
        result = fn(masked, seed)
        times.append(time.perf_counter() - start)
        if isinstance(result, tuple):
            result, k = result
            chosen.append(k)
        scores.append(score(result, truth, masked))
    mean = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
    note = f"k chosen: {', '.join(map(str, chosen))}" if chosen else ""
    return mean, float(np.median(times)), note


_HEADER = (
    "| data | method | cont. RMSE | binary err. | nominal err. "
    "| ordinal MAE / median's | ordinal err. | time / call |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _format(data, method, result):
    """One markdown row; ``result`` is (scores, seconds, note) or a reason string."""
    if isinstance(result, str):
        return f"| {data} | {method} | {result} | | | | | |"
    scores, seconds, note = result
    cells = [
        "–" if np.isnan(scores[key]) else f"{scores[key]:.3f}"
        for key in ("continuous", "binary", "nominal", "ordinal", "ordinal error")
    ]
    label = f"{method}; {note}" if note else method
    return f"| {data} | {label} | {' | '.join(cells)} | {_seconds(seconds)} |"


def _seconds(t):
    return f"{t * 1e3:.0f} ms" if t < 1 else f"{t:.1f} s"


def versions():
    """Library versions, optional peers included."""
    parts = [
        f"Python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"pandas {pd.__version__}",
    ]
    for dist in ("scipy", "scikit-learn", "miceforest", "lightgbm", "gcimpute"):
        try:
            parts.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{dist} not installed")
    parts.append(f"em_sklearn {em_sklearn.__version__} ({_git_state()})")
    return ", ".join(parts)


def _git_state():
    """The checkout's commit, and whether it has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (" with uncommitted changes" if dirty else "")


BEGIN, END = "<!-- mixed.py: begin -->", "<!-- mixed.py: end -->"
_NOTES_MARKER = "<!-- Notes below this line are kept when run.py rewrites the file. -->"


def write_section(path, text):
    """Replace this script's section of ``path`` (or append it at the end).

    Only the text between the markers is touched; a file without a notes
    marker gets one first, so that run.py keeps the section when it rewrites
    the file.
    """
    section = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + section + rest.split(END, 1)[1].lstrip("\n")
    else:
        if _NOTES_MARKER not in old:
            old = old.rstrip("\n") + ("\n\n" if old else "") + _NOTES_MARKER + "\n"
        new = old.rstrip("\n") + "\n\n" + section
    path.write_text(new)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer cases")
    parser.add_argument("--seeds", type=int, default=None, help="default 3 (quick 1)")
    parser.add_argument("--trees", type=int, default=30, help="ExtraTrees size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(Path(__file__).with_name("RESULTS.md")))
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    args.sim = ["mdgc"] if args.quick else ["mdgc", "random"]
    args.penguin_rates = [0.1, 0.3]

    start, load_start = time.perf_counter(), os.getloadavg()[0]
    lines = []
    print(_HEADER, flush=True)
    with threadpoolctl.threadpool_limits(args.threads):
        cases, rows = datasets(args), methods(args)
        for data, make, fraction in cases:
            for label, fn, reason in rows:
                if reason is None:
                    try:
                        result = run_case(make, fraction, fn, range(args.seeds))
                    except Exception as exc:
                        traceback.print_exc()
                        result = f"failed: {type(exc).__name__}: {exc}".splitlines()[0]
                else:
                    result = reason
                lines.append(_format(data, label, result))
                print(lines[-1], flush=True)
    elapsed = time.perf_counter() - start

    command = "python benchmarks/mixed.py" + (" --quick" if args.quick else "")
    if args.seeds != (1 if args.quick else 3):
        command += f" --seeds {args.seeds}"
    published = "; ".join(
        f"{name} {b:.3f} / {o:.3f} / {c:.3f}" for name, (b, o, c) in PUBLISHED.items()
    )
    text = (
        "## Mixed-type imputation (`benchmarks/mixed.py`)\n\n"
        f"Produced by `{command}` in {elapsed:.0f} s; {args.seeds} seed(s), "
        "errors averaged over the seeds, time the median of the seeds' "
        "wall time for one call (encoding and decoding included).\n\n"
        f"- {versions()}\n"
        f"- BLAS, OpenMP and LightGBM limited to {args.threads} thread(s) "
        "(threadpoolctl, OMP_NUM_THREADS, num_threads); load average "
        f"{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end on "
        f"{len(os.sched_getaffinity(0))} cores (times grow with it)\n"
        f"- native mixed-type EMImputer: "
        f"{'run' if native_available() else 'not available yet'}\n\n"
        "All errors on the removed entries only, lower is better. Continuous "
        "RMSE on columns divided by the complete data's standard deviation; "
        "ordinal MAE on level codes divided by that of imputing the column's "
        "median observed level. For orientation, mdgc's README (100 seeds, "
        "mdgc cuts) gives binary error / ordinal error / continuous RMSE: "
        f"{published}.\n\n"
        f"{_HEADER}\n" + "\n".join(lines) + "\n"
    )
    write_section(args.output, text)
    print(f"\nwrote {args.output} ({elapsed:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
