"""Mixed-type tables: nominal, ordinal, binary and integer columns beside numbers.

The model (Gaussian on the continuous columns x categorical on the others,
independent given the component) is checked against independent answers: with
one component it factorises (the Gaussian part is the all-numeric fit of the
continuous columns, the level probabilities the observed frequencies); with
more, its log-likelihood is a per-row scipy oracle and its fit a stationary
point that direct numerical maximisation cannot improve. Output tables keep
the input's kind and dtypes, and observed cells are returned unchanged.
"""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from em_sklearn import EMClusterer, EMImputer

pd = pytest.importorskip("pandas")

SPECIES = np.array(["Adelie", "Chinstrap", "Gentoo"], dtype=object)


def _penguins(seed, n=240, missing=0.15):
    """Three clusters with a nominal, an ordinal, a binary and an integer column."""
    rng = np.random.default_rng(seed)
    label = rng.integers(3, size=n)
    centers = np.array([[38.0, 3700.0], [49.0, 3700.0], [47.0, 5000.0]])
    numbers = centers[label] + rng.normal(size=(n, 2)) * [2.0, 250.0]
    size = np.array(["small", "medium", "large"], dtype=object)
    frame = pd.DataFrame(
        {
            "species": pd.Categorical(SPECIES[label]),
            "bill": numbers[:, 0],
            "mass": numbers[:, 1],
            "size": pd.Categorical(
                size[np.clip(label + rng.integers(-1, 2, size=n) * (rng.random(n) < .2),
                             0, 2)],
                categories=["small", "medium", "large"],
                ordered=True,
            ),
            "sex": pd.array(rng.random(n) < 0.5, dtype="boolean"),
            "island": pd.Series(
                np.where(label == 2, "Biscoe", np.where(rng.random(n) < .5, "Dream",
                                                        "Torgersen")),
                dtype=object,
            ),
            "year": pd.array(rng.integers(2007, 2010, size=n), dtype="Int64"),
        }
    )
    holes = frame.copy()
    for name in holes.columns:
        holes.loc[rng.random(n) < missing, name] = None
    return frame, holes, label


def _assert_observed_unchanged(out, holes):
    for name in holes.columns:
        observed = holes[name].notna().to_numpy()
        assert_array_equal(
            out[name].to_numpy(dtype=object)[observed],
            holes[name].to_numpy(dtype=object)[observed],
        )


def test_pandas_dtypes_kept_and_observed_cells_unchanged(global_random_seed):
    """A mixed pandas frame comes back with its columns, dtypes and index."""
    frame, holes, _ = _penguins(global_random_seed)
    holes.index = holes.index * 7 + 3
    out = EMImputer(n_components=3, random_state=0).fit_transform(holes)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist() == holes.columns.tolist()
    assert out.dtypes.to_dict() == holes.dtypes.to_dict()
    assert out.index.equals(holes.index)
    assert not out.isna().any().any()
    _assert_observed_unchanged(out, holes)
    # Imputed categories are levels of their column; integers are integers.
    assert set(out["island"]) <= {"Biscoe", "Dream", "Torgersen"}
    assert set(out["year"]) <= {2007, 2008, 2009}


def test_feature_types_and_categories():
    frame, holes, _ = _penguins(0)
    est = EMClusterer(n_components=2, random_state=0).fit(holes)
    assert est.feature_types_.tolist() == [
        "nominal", "continuous", "continuous", "ordinal", "binary", "nominal",
        "continuous",
    ]
    assert est.categories_[0].tolist() == SPECIES.tolist()
    assert est.categories_[3].tolist() == ["small", "medium", "large"]
    assert est.categories_[1] is None


def test_polars_dtypes_kept():
    pl = pytest.importorskip("polars")
    frame, holes, _ = _penguins(1)

    def values(name):
        return [None if pd.isna(v) else v for v in holes[name].astype(object)]

    table = pl.DataFrame(
        {
            "species": pl.Series(values("species"),
                                 dtype=pl.Categorical),
            "bill": pl.Series(values("bill"), dtype=pl.Float64),
            "size": pl.Series(
                values("size"),
                dtype=pl.Enum(["small", "medium", "large"]),
            ),
            "sex": pl.Series(values("sex"), dtype=pl.Boolean),
            "island": pl.Series(values("island"), dtype=pl.String),
            "year": pl.Series(values("year"), dtype=pl.Int64),
        }
    )
    out = EMImputer(n_components=2, random_state=0).fit_transform(table)
    assert isinstance(out, pl.DataFrame)
    assert out.schema == table.schema
    assert out.null_count().sum_horizontal().item() == 0
    for name in table.columns:
        observed = table[name].is_not_null().to_numpy()
        assert_array_equal(
            np.asarray(out[name].to_list(), dtype=object)[observed],
            np.asarray(table[name].to_list(), dtype=object)[observed],
        )


def test_numpy_object_array():
    """Text in a numpy object array is nominal; the output is an object array."""
    frame, holes, _ = _penguins(2)
    X = holes[["bill", "island", "mass"]].astype(object).to_numpy()
    X[holes["bill"].isna().to_numpy(), 0] = np.nan
    X[holes["island"].isna().to_numpy(), 1] = None
    out = EMImputer(n_components=2, random_state=0).fit_transform(X)
    assert out.dtype == object and out.shape == X.shape
    assert set(out[:, 1]) <= {"Biscoe", "Dream", "Torgersen"}
    observed = holes["island"].notna().to_numpy()
    assert_array_equal(out[observed, 1], X[observed, 1])
    assert np.isfinite(out[:, [0, 2]].astype(float)).all()


def _codes(holes, est, name):
    """A typed column's level codes (NaN when missing), from the fitted levels."""
    levels = est.categories_[holes.columns.get_loc(name)]
    codes = pd.Index(levels, dtype=object).get_indexer(
        holes[name].astype(object).to_numpy()
    ).astype(float)
    codes[codes < 0] = np.nan
    return codes


def test_one_component_factorises(global_random_seed):
    """k=1: Gaussian block = the numeric fit alone; levels = observed frequencies."""
    frame, holes, _ = _penguins(global_random_seed)
    est = EMImputer(
        marginal="gaussian", tol=1e-12, max_iter=2000, random_state=0
    ).fit(holes)
    numeric = holes[["bill", "mass", "year"]].astype(float)
    alone = EMImputer(tol=1e-12, max_iter=2000, random_state=0).fit(numeric)
    assert_allclose(est.means_, alone.means_, rtol=1e-8)
    assert_allclose(est.covariances_, alone.covariances_, rtol=1e-7)
    # Categorical columns in input order: species, size, sex, island.
    for position, name in enumerate(["species", "size", "sex", "island"]):
        codes = _codes(holes, est, name)
        counts = np.bincount(codes[~np.isnan(codes)].astype(int),
                             minlength=len(est.categories_[holes.columns.get_loc(name)]))
        assert_allclose(
            est.category_probabilities_[position][0], counts / counts.sum(), atol=1e-12
        )


def _oracle_log_likelihood(est, holes, continuous, categorical):
    """Per-row log p(x_o) from the fitted attributes, with scipy."""
    X = np.column_stack(
        [
            holes[name].to_numpy(dtype=float) if est.categories_[j] is None
            else _codes(holes, est, name)
            for name in continuous
            for j in [holes.columns.get_loc(name)]
        ]
    )
    log_prob = np.zeros((len(holes), len(est.weights_)))
    for k in range(len(est.weights_)):
        for i, row in enumerate(X):
            o = ~np.isnan(row)
            if o.any():
                cov = est.covariances_[k][np.ix_(o, o)]
                log_prob[i, k] += multivariate_normal(
                    est.means_[k][o], cov
                ).logpdf(row[o])
        for theta, name in zip(est.category_probabilities_, categorical, strict=True):
            levels = est.categories_[holes.columns.get_loc(name)]
            codes = pd.Index(levels, dtype=object).get_indexer(
                holes[name].astype(object).to_numpy()
            )
            observed = codes >= 0
            log_prob[observed, k] += np.log(theta[k][codes[observed]])
    return logsumexp(log_prob + np.log(est.weights_), axis=1)


@pytest.mark.parametrize("Estimator", [EMClusterer, EMImputer])
def test_score_samples_equals_oracle(Estimator, global_random_seed):
    frame, holes, _ = _penguins(global_random_seed)
    holes = holes[["species", "bill", "mass", "island", "sex"]]
    est = Estimator(n_components=3, marginal="gaussian", random_state=0).fit(holes)
    expected = _oracle_log_likelihood(
        est, holes, ["bill", "mass"], ["species", "island", "sex"]
    )
    assert_allclose(est.score_samples(holes), expected, rtol=1e-9, atol=1e-9)


def test_fit_is_a_maximum_of_the_observed_likelihood(global_random_seed):
    """BFGS on the observed-data log-likelihood cannot improve EM's fit."""
    rng = np.random.default_rng(global_random_seed)
    n = 80
    label = rng.integers(2, size=n)
    x = rng.normal(size=n) + 3.0 * label
    level = np.where(rng.random(n) < 0.8, label, 1 - label) + (rng.random(n) < .2)
    x[rng.random(n) < 0.2] = np.nan
    codes = level.astype(float)
    codes[rng.random(n) < 0.2] = np.nan
    holes = pd.DataFrame({"x": x, "c": pd.Categorical.from_codes(
        np.where(np.isnan(codes), -1, codes).astype(int), ["a", "b", "c"])})
    est = EMClusterer(
        n_components=2, covariance_type="diag", tol=1e-13, max_iter=5000,
        marginal="gaussian", random_state=0,
    ).fit(holes)

    def negative_log_likelihood(theta):
        logit, mu, log_var = theta[0], theta[1:3], theta[3:5]
        level_logits = np.concatenate([np.zeros((2, 1)), theta[5:9].reshape(2, 2)], 1)
        log_w = np.log([1 / (1 + np.exp(-logit)), 1 / (1 + np.exp(logit))])
        log_theta = level_logits - logsumexp(level_logits, axis=1, keepdims=True)
        total = np.zeros((n, 2)) + log_w
        o = ~np.isnan(x)
        total[o] += -0.5 * (
            np.log(2 * np.pi) + log_var + (x[o, None] - mu) ** 2 / np.exp(log_var)
        )
        c = ~np.isnan(codes)
        total[c] += log_theta[:, codes[c].astype(int)].T
        return -logsumexp(total, axis=1).sum()

    w = est.weights_
    theta_hat = np.log(est.category_probabilities_[0])
    start = np.concatenate(
        [
            [np.log(w[0] / w[1])],
            est.means_[:, 0],
            np.log(est.covariances_[:, 0] - est.reg_covar),
            (theta_hat[:, 1:] - theta_hat[:, :1]).ravel(),
        ]
    )
    best = optimize.minimize(negative_log_likelihood, start, method="BFGS",
                             options={"gtol": 1e-10})
    at_em = negative_log_likelihood(start)
    assert at_em - best.fun < 1e-6
    assert_allclose(-at_em / n, est.score(holes), rtol=1e-6)


def test_imputed_category_is_the_most_probable_given_the_row():
    """An imputed level is argmax_l sum_k r_ik theta_kl (oracle from attributes)."""
    frame, holes, _ = _penguins(3)
    holes = holes[["species", "bill", "mass"]]
    est = EMImputer(n_components=3, marginal="gaussian", random_state=0).fit(holes)
    out = est.transform(holes)
    rows = holes["species"].isna().to_numpy()
    numbers = holes[["bill", "mass"]].to_numpy()
    log_prob = np.zeros((len(holes), 3))
    for k in range(3):
        for i, row in enumerate(numbers):
            o = ~np.isnan(row)
            if o.any():
                log_prob[i, k] = multivariate_normal(
                    est.means_[k][o], est.covariances_[k][np.ix_(o, o)]
                ).logpdf(row[o])
    log_resp = log_prob + np.log(est.weights_)
    resp = np.exp(log_resp - logsumexp(log_resp, axis=1, keepdims=True))
    expected = SPECIES[np.argmax(resp @ est.category_probabilities_[0], axis=1)]
    assert_array_equal(out["species"].to_numpy(dtype=object)[rows], expected[rows])


def test_mixed_clusters_recovered():
    """Clusters that differ in their categories and numbers are found."""
    frame, holes, label = _penguins(4, n=400, missing=0.1)
    labels = EMClusterer(n_components=3, n_init=3, random_state=0).fit_predict(holes)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(label, labels) > 0.8


def test_sample_posterior_draws_levels():
    frame, holes, _ = _penguins(5)
    est = EMImputer(n_components=2, sample_posterior=True, random_state=0)
    out = est.fit_transform(holes)
    _assert_observed_unchanged(out, holes)
    assert set(out["island"]) <= {"Biscoe", "Dream", "Torgersen"}
    again = est.transform(holes)
    assert again.equals(out)  # seeded by random_state at each call


def test_declared_numeric_ordinal_and_categorical():
    """A 1-5 rating declared ordinal and a 0/1 column declared categorical."""
    rng = np.random.default_rng(0)
    n = 200
    z = rng.normal(size=n)
    rating = np.clip(np.rint(3 + 1.2 * z + rng.normal(size=n) * .5), 1, 5)
    flag = (z + rng.normal(size=n) > 0).astype(float)
    X = np.column_stack([z, rating, flag])
    X[rng.random(X.shape) < 0.2] = np.nan
    est = EMImputer(
        n_components=3, ordinal_features=[1], categorical_features=[2], random_state=0
    )
    out = est.fit_transform(X)
    assert est.feature_types_.tolist() == ["continuous", "ordinal", "binary"]
    assert set(out[:, 1]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert set(out[:, 2]) <= {0.0, 1.0}
    observed = ~np.isnan(X)
    assert_array_equal(out.astype(float)[observed], X[observed])


def test_ordinal_levels_given_in_order():
    frame = pd.DataFrame({
        "grade": ["low", "high", None, "mid", "low", "high"] * 10,
        "x": np.arange(60.0),
    })
    est = EMImputer(ordinal_features={"grade": ["low", "mid", "high"]}).fit(frame)
    assert est.categories_[0].tolist() == ["low", "mid", "high"]
    assert est.feature_types_[0] == "ordinal"


# -- unseen levels -------------------------------------------------------------


def test_unseen_level_raises_naming_column_and_value():
    frame, holes, _ = _penguins(6)
    est = EMImputer(n_components=2, random_state=0).fit(holes)
    new = holes.copy()
    new["island"] = new["island"].astype(object)
    new.loc[0, "island"] = "Atlantis"
    msg = "column 'island' has value(s) ['Atlantis'] not seen in fit"
    with pytest.raises(ValueError, match=re.escape(msg)):
        est.transform(new)


def test_unseen_level_as_missing():
    frame, holes, _ = _penguins(6)
    est = EMImputer(n_components=2, handle_unknown="missing", random_state=0)
    est.fit(holes)
    new = holes.copy()
    new.loc[0, "island"] = "Atlantis"
    with pytest.warns(UserWarning, match="treated as missing"):
        out = est.transform(new)
    assert out.loc[0, "island"] in {"Biscoe", "Dream", "Torgersen"}


# -- bad input -----------------------------------------------------------------


def test_numbers_and_text_in_one_column_raise():
    X = np.array([[1.0, "a"], [2.0, 3.0], [3.0, "b"]], dtype=object)
    with pytest.raises(ValueError, match="column 1 mixes numbers"):
        EMImputer().fit(X)


def test_na_like_levels_warn():
    frame = pd.DataFrame({"c": ["a", "NA", "b", "", "a"] * 4, "x": np.arange(20.0)})
    with pytest.warns(UserWarning, match="look like missing-value markers"):
        EMImputer().fit(frame)


def test_declared_ordinal_order_missing_a_value_raises():
    frame = pd.DataFrame({"grade": ["low", "high", "mid"] * 5, "x": np.arange(15.0)})
    msg = "ordinal column 'grade' holds ['mid'], not among its declared levels"
    with pytest.raises(ValueError, match=re.escape(msg)):
        EMImputer(ordinal_features={"grade": ["low", "high"]}).fit(frame)


def test_text_ordinal_without_order_raises():
    frame = pd.DataFrame({"grade": ["low", "high", "mid"] * 5, "x": np.arange(15.0)})
    with pytest.raises(ValueError, match="whose order is not known"):
        EMImputer(ordinal_features=["grade"]).fit(frame)


def test_one_level_column_is_imputed_with_it():
    frame = pd.DataFrame({"c": ["a", None, "a", "a"] * 5, "x": np.arange(20.0)})
    out = EMImputer().fit_transform(frame)
    assert (out["c"] == "a").all()


def test_entirely_missing_categorical_column():
    frame = pd.DataFrame({"c": pd.Series([None] * 10, dtype=object),
                          "d": ["u", "v"] * 5, "x": np.arange(10.0)})
    with pytest.warns(UserWarning, match="Skipping features without any observed"):
        out = EMImputer().fit_transform(frame)
    assert out.columns.tolist() == ["d", "x"]
    with pytest.raises(ValueError, match="no observed value"):
        EMClusterer().fit(frame)


def test_both_categorical_and_ordinal_raises():
    frame = pd.DataFrame({"c": ["a", "b"] * 5, "x": np.arange(10.0)})
    with pytest.raises(ValueError, match="in both categorical_features and ordinal"):
        EMImputer(categorical_features=["c"], ordinal_features=["c"]).fit(frame)


def test_unknown_column_name_raises():
    frame = pd.DataFrame({"c": ["a", "b"] * 5, "x": np.arange(10.0)})
    with pytest.raises(ValueError, match="names column 'nope'"):
        EMImputer(categorical_features=["nope"]).fit(frame)


# -- the scikit-learn tools ------------------------------------------------------


def test_pipeline_and_grid_search_on_mixed_frame():
    frame, holes, _ = _penguins(7)
    search = GridSearchCV(
        EMClusterer(random_state=0), {"n_components": [1, 2, 3]}, cv=3
    ).fit(holes)
    assert search.best_params_["n_components"] >= 2
    pipe = make_pipeline(EMImputer(n_components=2, random_state=0))
    out = pipe.fit_transform(holes)
    assert out.dtypes.to_dict() == holes.dtypes.to_dict()


def test_auto_n_components_chooses_by_bic():
    frame, holes, _ = _penguins(8, n=400)
    # Without 'year': a Gaussian on a column of three integers rewards extra
    # components that sit on its values (declare such a column ordinal).
    holes = holes.drop(columns="year")
    est = EMClusterer(
        n_components="auto", marginal="gaussian", tol=1e-8, max_iter=2000,
        random_state=0,
    ).fit(holes)
    assert est.n_components_ == 3
    assert min(est.bic_scores_, key=est.bic_scores_.get) == 3
    for k in (2, 3):
        alone = EMClusterer(
            n_components=k, marginal="gaussian", tol=1e-8, max_iter=2000,
            random_state=0,
        ).fit(holes)
        assert_allclose(est.bic_scores_[k], alone.bic(holes), rtol=1e-6)
    assert est.predict_proba(holes).shape == (len(holes), 3)


def test_auto_with_the_copula_finds_the_clusters():
    """The default model of a typed table (the copula) chooses 3 by BIC too."""
    frame, holes, label = _penguins(8, n=400)
    est = EMClusterer(n_components="auto", random_state=0).fit(holes)
    assert est.n_components_ == 3
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(label, est.predict(holes)) > 0.9


def test_auto_chooses_one_component_for_one_gaussian(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    X = rng.normal(size=(300, 3)) @ [[1, .5, 0], [0, 1, .3], [0, 0, 1]]
    X[rng.random(X.shape) < 0.1] = np.nan
    est = EMImputer(n_components="auto", random_state=0).fit(X)
    assert est.n_components_ == 1
    assert len(est.bic_scores_) <= 3  # stopped after two non-improving k


def test_auto_refuses_initial_values():
    with pytest.raises(ValueError, match="n_components='auto' chooses"):
        EMClusterer(n_components="auto", means_init=[[0.0]]).fit([[1.0], [2.0]])


def test_all_numeric_frames_unchanged():
    """Float-only frames still give ndarrays (scikit-learn's default output)."""
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [2.0, 4.0, np.nan, 8.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = EMImputer().fit_transform(frame)
    assert isinstance(out, np.ndarray)


# -- the copula ------------------------------------------------------------------


def test_copula_on_numbers_is_the_gaussian_mixture_of_normal_scores():
    """With continuous columns only, the copula model is the Gaussian mixture
    fitted to the columns' normal scores (the E-step is then exact)."""
    from em_sklearn._copula import CopulaMarginals

    rng = np.random.default_rng(0)
    X = np.exp(rng.normal(size=(300, 3)) @ [[1, .6, .2], [0, 1, .5], [0, 0, 1]])
    X[rng.random(X.shape) < 0.15] = np.nan
    est = EMClusterer(n_components=2, marginal="copula", tol=1e-10, max_iter=2000,
                      random_state=0).fit(X)
    Z = CopulaMarginals.estimate(X, np.zeros(3, bool)).to_latent(X)
    gaussian = EMClusterer(n_components=2, tol=1e-10, max_iter=2000,
                           random_state=0).fit(Z)
    assert_allclose(est.score_samples(X), gaussian.score_samples(Z), rtol=1e-8)
    assert_allclose(est.means_, gaussian.means_, rtol=1e-7, atol=1e-9)
    # Imputations are values seen in the column (mapped back through quantiles).
    out = EMImputer(marginal="copula", random_state=0).fit_transform(X)
    for j in range(3):
        assert np.all(np.isin(out[:, j], X[~np.isnan(X[:, j]), j]) | (
            (out[:, j] > np.nanmin(X[:, j])) & (out[:, j] < np.nanmax(X[:, j]))
        ))


def test_copula_ordinal_levels_and_unobserved_level():
    """An ordered category with a level never observed: imputations are observed
    levels, and the fit converges (the empty level is left out of the model)."""
    rng = np.random.default_rng(1)
    n = 300
    z = rng.normal(size=n)
    grade = np.digitize(z + 0.5 * rng.normal(size=n), [-0.5, 0.5])
    frame = pd.DataFrame({
        "x": z + 0.3 * rng.normal(size=n),
        "grade": pd.Categorical.from_codes(
            grade,
            dtype=pd.CategoricalDtype(["low", "mid", "high", "top"], ordered=True),
        ),
    }).mask(rng.random((n, 2)) < 0.2)
    est = EMImputer(random_state=0)
    out = est.fit_transform(frame)
    assert est.converged_
    assert est.feature_types_.tolist() == ["continuous", "ordinal"]
    assert set(out["grade"]) <= {"low", "mid", "high"}
    assert out["grade"].dtype == frame["grade"].dtype
    # The ordinal column follows x: imputed grades increase with x.
    rows = frame["grade"].isna().to_numpy() & frame["x"].notna().to_numpy()
    codes = out["grade"].cat.codes.to_numpy()[rows]
    assert np.corrcoef(codes, out["x"].to_numpy()[rows])[0, 1] > 0.5


def test_multiple_impute_mixed_frame():
    from em_sklearn import multiple_impute

    frame, holes, _ = _penguins(9, n=150)
    completed = multiple_impute(holes, m=3, estimator=EMImputer(n_components=2),
                                random_state=0)
    assert len(completed) == 3
    for out in completed:
        assert out.dtypes.to_dict() == holes.dtypes.to_dict()
        _assert_observed_unchanged(out, holes)
        assert not out.isna().any().any()


@pytest.mark.parametrize("marginal", ["gaussian", "copula"])
def test_partial_fit_on_a_mixed_stream(marginal):
    """A stream of mixed batches (the copula's marginals from the first batch)
    reaches the batch fit's mixture, and transform keeps the dtypes."""
    frame, holes, label = _penguins(3, n=3000)
    stream = EMClusterer(n_components=3, marginal=marginal, random_state=0)
    for start in range(0, 3000, 300):
        stream.partial_fit(holes.iloc[start : start + 300])
    batch = EMClusterer(n_components=3, marginal=marginal, random_state=0).fit(holes)
    assert stream.n_steps_ == 10
    assert_allclose(np.sort(stream.weights_), np.sort(batch.weights_), atol=0.01)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(label, stream.predict(holes)) > 0.95
    imputer = EMImputer(n_components=3, marginal=marginal, random_state=0)
    for start in range(0, 3000, 300):
        imputer.partial_fit(holes.iloc[start : start + 300])
    out = imputer.transform(holes)
    assert out.dtypes.to_dict() == holes.dtypes.to_dict()
    _assert_observed_unchanged(out, holes)


def test_feature_lists_as_numpy_arrays():
    """categorical_features/ordinal_features as ndarrays (indices or masks)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    X[:, 2] = rng.integers(0, 3, size=100)
    X[rng.random(X.shape) < 0.1] = np.nan
    est = EMImputer(n_components=2, categorical_features=np.array([2])).fit(X)
    assert est.feature_types_.tolist() == ["continuous", "continuous", "nominal"]
    est = EMImputer(
        n_components=2, ordinal_features=np.array([False, False, True])
    ).fit(X)
    assert est.feature_types_.tolist() == ["continuous", "continuous", "ordinal"]


@pytest.mark.parametrize("marginal", ["gaussian", "copula"])
def test_mixed_blocks_and_n_jobs(marginal):
    """Mixed tables are cut into blocks as numbers are: n_jobs=2 gives the
    n_jobs=1 fit exactly, and the blocked fit is the one-block fit to rounding."""
    frame, holes, _ = _penguins(11, n=400)
    params = dict(
        n_components=3, marginal=marginal, tol=1e-10, max_iter=30, random_state=0
    )
    fits = []
    for n_jobs, block_rows in [(1, 2**16), (1, 64), (2, 64)]:
        est = EMImputer(n_jobs=n_jobs, **params)
        est._block_rows = block_rows
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter=30 may stop before tol
            out = est.fit_transform(holes)
        fits.append((est, out))
    (one, out_one), (blocked, out_blocked), (parallel, out_parallel) = fits
    assert_array_equal(blocked.lower_bounds_, parallel.lower_bounds_)
    assert_array_equal(blocked.means_, parallel.means_)
    assert out_blocked.equals(out_parallel)
    assert_allclose(blocked.lower_bounds_, one.lower_bounds_, rtol=1e-9)
    assert_allclose(blocked.means_, one.means_, rtol=1e-8, atol=1e-10)
