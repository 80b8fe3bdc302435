"""Column types: which columns are continuous, nominal, ordinal or binary, and codes.

The mixture works on a float matrix: continuous columns as numbers, the
levels of nominal, ordinal and binary columns as codes ``0 .. L_j - 1``, NaN
for a missing entry. :class:`ColumnTypes` decides each column's kind (from
its dtype, or as the user declares it), remembers its levels and its dtype,
encodes tables to that matrix and decodes imputed matrices back to the
input's kind of table with the input's dtypes (pandas and polars DataFrames,
numpy object arrays).
"""

import numbers
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from ._validation import (
    _check_not_lazy,
    _check_unique_columns,
    _is_pandas_date_dtype,
    _object_values_kind,
)

KINDS = ("continuous", "nominal", "ordinal", "binary")

# Strings that read as missing markers elsewhere (pandas' read_csv defaults):
# kept as levels, but a warning says so.
_NA_LIKE = {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "none", "-", "?"}


@dataclass(frozen=True)
class Column:
    """One input column: its name, kind, levels and dtype.

    Attributes
    ----------
    name : object
        The column's label (its index for arrays without names).
    kind : {'continuous', 'nominal', 'ordinal', 'binary'}
    levels : ndarray or None
        The levels, in code order (ordinal: in their order), for all but
        continuous columns.
    dtype : object
        The input column's dtype, restored on output.
    integer : bool
        Whether a continuous column's dtype holds integers (imputations are
        rounded to integers).
    """

    name: object
    kind: str
    levels: np.ndarray = None
    dtype: object = None
    integer: bool = False

    @property
    def n_levels(self):
        return 0 if self.levels is None else len(self.levels)


def _is_missing(values):
    """Boolean mask of missing markers (None, NaN, pd.NA, NaT) in an object array."""
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        return np.asarray(pandas.isna(values), dtype=bool)
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):  # without pandas only (numpy object arrays)
        try:
            out[i] = v is None or bool(v != v)
        except (TypeError, ValueError):
            out[i] = True
    return out


def _frame_kind(X):
    if hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc"):
        return "pandas"
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(X, polars.DataFrame):
        return "polars"
    return None


def _sorted_levels(values, name, estimator):
    """Sorted distinct values; refuse numbers and strings mixed in one column."""
    numbers_ = [v for v in values if isinstance(v, numbers.Real)]
    if numbers_ and len(numbers_) != len(values):
        other = next(v for v in values if not isinstance(v, numbers.Real))
        raise ValueError(
            f"{type(estimator).__name__}: column {name!r} mixes numbers (e.g. "
            f"{numbers_[0]!r}) and other values (e.g. {other!r}). Make it one type: "
            "numbers for a continuous column, strings for a categorical one."
        )
    try:
        return np.array(sorted(set(values)), dtype=object)
    except TypeError:
        return np.array(sorted(set(values), key=repr), dtype=object)


def _dtype_kind_pandas(series):
    """('continuous'|'nominal'|'ordinal'|'binary'|None, levels) from a pandas dtype."""
    import pandas as pd

    dtype = series.dtype
    if _is_pandas_date_dtype(dtype):
        return "other", None
    if isinstance(dtype, pd.CategoricalDtype):
        levels = np.asarray(dtype.categories, dtype=object)
        return ("ordinal" if dtype.ordered else "nominal"), levels
    if pd.api.types.is_bool_dtype(dtype):
        return "binary", np.array([False, True], dtype=object)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(
        dtype
    ):
        return "continuous", None
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return None, None  # decided from the values
    return "other", None


def _dtype_kind_polars(series):
    import polars as pl

    dtype = series.dtype
    if dtype == pl.Boolean:
        return "binary", np.array([False, True], dtype=object)
    if dtype.is_numeric():
        return "continuous", None
    if isinstance(dtype, pl.Enum):
        return "nominal", np.asarray(dtype.categories.to_list(), dtype=object)
    if dtype in (pl.String, pl.Categorical, pl.Object) or isinstance(
        dtype, pl.Categorical
    ):
        return None, None
    return "other", None


def _values_kind(values, missing, name, estimator):
    """Kind and levels of an object column from its observed values.

    None for values that are neither numbers, booleans nor strings (check_X
    refuses them).
    """
    observed = [v for v, m in zip(values, missing, strict=True) if not m]
    if not all(isinstance(v, numbers.Real | str | np.str_) for v in observed):
        return None, None
    if all(isinstance(v, bool | np.bool_) for v in observed) and observed:
        return "binary", np.array([False, True], dtype=object)
    if all(
        isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)
        for v in observed
    ):
        return "continuous", None
    return "nominal", _sorted_levels(observed, name, estimator)


@dataclass(frozen=True)
class ColumnTypes:
    """The kinds, levels and dtypes of a table's columns (fitted on ``fit``'s X).

    Attributes
    ----------
    columns : tuple of Column
    """

    columns: tuple

    # -- fitting --------------------------------------------------------------

    @classmethod
    def infer(cls, estimator, X, categorical_features, ordinal_features):
        """Decide each column's kind and levels from ``X`` and the user's settings.

        Parameters
        ----------
        estimator : estimator instance
            Names the estimator in error messages.
        X : DataFrame or array-like of shape (n_samples, n_features)
        categorical_features : 'from_dtype', None, or array-like
            As ``HistGradientBoostingClassifier``: 'from_dtype' takes
            categorical, string, object and boolean columns; an array-like of
            names, indices or a boolean mask lists the nominal columns; None
            means none (every column must then be numeric).
        ordinal_features : 'from_dtype', None, array-like or dict
            'from_dtype' takes ordered categoricals; names, indices or a mask
            list ordinal columns whose sorted distinct values are the levels;
            a dict maps a column to its levels in order.

        Returns
        -------
        types : ColumnTypes or None
            None when every column is continuous and of float dtype (the
            numeric path needs no encoding).
        """
        _check_not_lazy(estimator, X)
        container = _frame_kind(X) or "numpy"
        if container == "pandas":
            _check_unique_columns(estimator, X)
        declared = not (
            (categorical_features is None or _from_dtype(categorical_features))
            and (ordinal_features is None or _from_dtype(ordinal_features))
        )
        if container == "numpy":
            if not hasattr(X, "dtype"):
                try:
                    X = np.asarray(X)
                except (ValueError, TypeError):
                    return None  # ragged: validate_data says so
            if X.ndim != 2 or (X.dtype.kind != "O" and not declared):
                return None  # numbers (or what check_X refuses with its message)
            X = np.asarray(X, dtype=object)
        names = _names(X, container)
        n_features = len(names)
        nominal = _selection(
            estimator, categorical_features, names, "categorical_features"
        )
        ordinal_levels = {}
        if isinstance(ordinal_features, dict):
            for key, levels in ordinal_features.items():
                j = _index_of(estimator, key, names, "ordinal_features")
                ordinal_levels[j] = np.asarray(list(levels), dtype=object)
            ordinal = np.zeros(n_features, dtype=bool)
            ordinal[list(ordinal_levels)] = True
        else:
            ordinal = _selection(
                estimator, ordinal_features, names, "ordinal_features"
            )
        if nominal is not None and ordinal is not None:
            both = np.flatnonzero(nominal & ordinal)
            if both.size:
                raise ValueError(
                    f"{type(estimator).__name__}: column {names[both[0]]!r} is in both "
                    "categorical_features and ordinal_features; a column is one or "
                    "the other."
                )
        columns = []
        for j, name in enumerate(names):
            column = _infer_column(
                estimator,
                X,
                j,
                name,
                container,
                declared_nominal=(
                    None if _from_dtype(categorical_features)
                    else nominal is not None and bool(nominal[j])
                ),
                declared_ordinal=(
                    None if _from_dtype(ordinal_features)
                    else ordinal is not None and bool(ordinal[j])
                ),
                ordinal_levels=ordinal_levels.get(j),
            )
            if column is None:
                return None  # dates, complex numbers...: check_X refuses them
            columns.append(column)
        types = cls(tuple(columns))
        # Numbers only: the numeric path, unless integer columns of a frame
        # are to come back as integers.
        if not types.typed and (container == "numpy" or not any(
            c.integer for c in columns
        )):
            return None
        return types

    # -- properties -----------------------------------------------------------

    @property
    def kinds(self):
        return np.array([c.kind for c in self.columns], dtype=object)

    @property
    def typed(self):
        """Whether any column is nominal, ordinal or binary."""
        return any(c.kind != "continuous" for c in self.columns)

    @property
    def categories(self):
        """Levels per column (None for continuous columns), as OneHotEncoder's."""
        return [c.levels for c in self.columns]

    # -- encoding -------------------------------------------------------------

    def encode(self, estimator, X, handle_unknown="error"):
        """Return ``X`` as a float64 matrix: numbers, level codes, NaN when missing.

        Raises
        ------
        ValueError
            For a level not seen in ``fit`` (``handle_unknown='error'``, naming
            the column and the values), a non-number in a continuous column,
            or an infinite value.
        """
        container = _frame_kind(X) or "numpy"
        if container == "numpy":
            X = np.asarray(X, dtype=object)
        out = np.empty((X.shape[0], len(self.columns)))
        for j, column in enumerate(self.columns):
            values, _ = _column(X, j, container)
            missing = _is_missing(values)
            if column.kind == "continuous":
                out[:, j] = _to_float(estimator, values, missing, column.name)
                continue
            codes = _codes(values, column.levels)
            unknown = ~missing & (codes < 0)
            if unknown.any():
                seen = list(dict.fromkeys(values[unknown].tolist()))[:5]
                if handle_unknown == "error":
                    raise ValueError(
                        f"{type(estimator).__name__}: column {column.name!r} has "
                        f"value(s) {seen} not seen in fit (levels: "
                        f"{column.levels.tolist()[:10]}). Pass handle_unknown="
                        "'missing' to treat unseen values as missing."
                    )
                warnings.warn(
                    f"Column {column.name!r} has value(s) {seen} not seen in fit; "
                    "they are treated as missing (handle_unknown='missing') and "
                    "imputed.",
                    UserWarning,
                    stacklevel=4,
                )
            out[:, j] = np.where(missing | unknown, np.nan, codes)
        return out

    def check_levels(self, estimator, X_codes):
        """Warn about levels that look like missing markers ('NA', ''), and
        nominal columns with nearly one level per row (identifiers)."""
        for column, codes in zip(self.columns, X_codes.T, strict=True):
            if column.levels is None:
                continue
            n_observed = int(np.sum(~np.isnan(codes)))
            if column.kind == "nominal" and column.n_levels > max(50, n_observed // 2):
                warnings.warn(
                    f"Column {column.name!r} has {column.n_levels} levels for "
                    f"{n_observed} observed entries: it looks like an identifier, "
                    "which tells the model nothing about other rows (each level "
                    "costs n_components parameters and its imputations are the "
                    "most frequent levels). Leave it out of the model.",
                    UserWarning,
                    stacklevel=4,
                )
            na_like = [
                v for v in column.levels.tolist()
                if isinstance(v, str) and v.strip() in _NA_LIKE
            ]
            if na_like:
                warnings.warn(
                    f"Column {column.name!r} has level(s) {na_like}, which look like "
                    "missing-value markers; they are kept as categories. Replace "
                    "them with None or NaN to have them imputed.",
                    UserWarning,
                    stacklevel=4,
                )

    # -- decoding -------------------------------------------------------------

    def decode(self, X_filled, X, keep):
        """Return the imputed matrix as ``X``'s kind of table, with the fit's dtypes.

        Parameters
        ----------
        X_filled : ndarray of shape (n_samples, n_kept)
            Numbers and level codes, observed entries copied from the encoded
            input, missing ones imputed (NaN where left missing).
        X : DataFrame, array-like or None
            The input of ``transform``: its kind of table and (pandas) its
            index are kept; None for an object ndarray.
        keep : ndarray of bool of shape (n_features,)
            The input columns present in ``X_filled``.

        Returns
        -------
        X_out : DataFrame or ndarray
            A pandas or polars DataFrame for such input, an object ndarray
            otherwise; continuous columns of an integer dtype rounded.
        """
        container = (X is not None and _frame_kind(X)) or "numpy"
        columns = [c for c, k in zip(self.columns, keep, strict=True) if k]
        out = []
        for column, col in zip(columns, X_filled.T, strict=True):
            if column.kind != "continuous":
                out.append(_levels_of(col, column.levels))
            elif column.integer:
                out.append(np.rint(col))
            else:
                out.append(col)
        if container == "pandas":
            return _to_pandas(columns, out, X.index)
        if container == "polars":
            return _to_polars(columns, out)
        table = np.empty((X_filled.shape[0], len(columns)), dtype=object)
        for position, values in enumerate(out):
            table[:, position] = values
        return table

    def append_indicator(self, table, indicator, names):
        """Append missing-indicator columns (bool) named ``names`` to a table."""
        if isinstance(table, np.ndarray):
            return np.hstack([table, indicator.astype(object)])
        if _frame_kind(table) == "pandas":
            import pandas as pd

            extra = pd.DataFrame(indicator, columns=list(names), index=table.index)
            return pd.concat([table, extra], axis=1)
        import polars as pl

        return table.hstack(
            [pl.Series(name, indicator[:, i]) for i, name in enumerate(names)]
        )


def _to_pandas(columns, values, index):
    import pandas as pd

    data = {}
    for column, col in zip(columns, values, strict=True):
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            data[column.name] = pd.Categorical(col, dtype=dtype)
            continue
        series = pd.Series(col, index=index)
        try:
            data[column.name] = series.astype(dtype)
        except (TypeError, ValueError):  # e.g. NaN left in a numpy int column
            data[column.name] = series
    return pd.DataFrame(data, index=index, columns=[c.name for c in columns])


def _to_polars(columns, values):
    import polars as pl

    series = []
    for column, col in zip(columns, values, strict=True):
        if col.dtype == object:
            s = pl.Series(column.name, col.tolist(), strict=False)
        else:
            s = pl.Series(column.name, col, nan_to_null=True)
        series.append(s.cast(column.dtype, strict=False))
    return pl.DataFrame(series)


def _from_dtype(spec):
    return isinstance(spec, str) and spec == "from_dtype"


def _infer_column(
    estimator,
    X,
    j,
    name,
    container,
    *,
    declared_nominal,
    declared_ordinal,
    ordinal_levels,
):
    """One column's :class:`Column`, or None for what ``check_X`` refuses.

    ``declared_nominal``/``declared_ordinal`` are None when the corresponding
    parameter is 'from_dtype' (the dtype decides), else whether the user
    listed the column (False for every column when the parameter is None);
    ``ordinal_levels`` are its levels given in order (a dict entry of
    ``ordinal_features``), or None.
    """
    values, dtype = _column(X, j, container)
    missing = _is_missing(values)
    if container == "pandas":
        kind, levels = _dtype_kind_pandas(X.iloc[:, j])
    elif container == "polars":
        kind, levels = _dtype_kind_polars(X[:, j])
    else:
        kind, levels = None, None
    if kind is None:
        if _object_values_kind(values[~missing]) is not None:
            return None
        kind, levels = _values_kind(values, missing, name, estimator)
    if kind in ("other", None):
        return None
    from_dtype = kind
    if declared_nominal is not None and not declared_ordinal:
        if declared_nominal:
            kind = "nominal"
        elif kind == "nominal":
            raise ValueError(
                f"{type(estimator).__name__}: column {name!r} holds categories but "
                "is not in categorical_features. Add it to categorical_features "
                "(or ordinal_features), or drop it."
            )
    if declared_ordinal:
        kind = "ordinal"
        if ordinal_levels is not None:
            levels = ordinal_levels
        elif from_dtype in ("nominal", "ordinal") and not _has_order(dtype):
            raise ValueError(
                f"{type(estimator).__name__}: ordinal column {name!r} holds text, "
                "whose order is not known: give its levels in order, "
                f"ordinal_features={{{name!r}: [...]}}."
            )
    elif declared_ordinal is not None and from_dtype == "ordinal":
        kind = "nominal"  # ordinal_features lists the ordinal columns: not this one
    if kind in ("nominal", "ordinal") and ordinal_levels is None and (
        levels is None or from_dtype == "continuous"
    ):
        observed = [v for v, m in zip(values, missing, strict=True) if not m]
        levels = _sorted_levels(observed, name, estimator)
    if ordinal_levels is not None:
        absent = values[~missing & (_codes(values, levels) < 0)]
        if absent.size:
            raise ValueError(
                f"{type(estimator).__name__}: ordinal column {name!r} holds "
                f"{list(dict.fromkeys(absent.tolist()))[:5]}, not among its declared "
                f"levels {levels.tolist()}. Add them to the levels in "
                "ordinal_features (in their place in the order)."
            )
    if kind == "nominal" and levels is not None and len(levels) == 2:
        kind = "binary"
    integer = kind == "continuous" and _is_integer_dtype(dtype)
    return Column(name, kind, levels, dtype, integer)


# -- helpers ------------------------------------------------------------------


def _names(X, container):
    if container == "pandas":
        return list(X.columns)
    if container == "polars":
        return list(X.columns)
    return list(range(X.shape[1]))


def _column(X, j, container):
    """(values as an object ndarray, dtype) of column ``j``."""
    if container == "pandas":
        series = X.iloc[:, j]
        return series.to_numpy(dtype=object), series.dtype
    if container == "polars":
        series = X[:, j]
        return np.asarray(series.to_list(), dtype=object), series.dtype
    column = np.asarray(X[:, j], dtype=object)
    return column, X.dtype


def _has_order(dtype):
    """Whether a column's dtype orders its levels (a categorical's categories)."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(dtype, pandas.CategoricalDtype):
        return True
    polars = sys.modules.get("polars")
    return polars is not None and isinstance(dtype, polars.Enum)


def _is_integer_dtype(dtype):
    kind = getattr(dtype, "kind", None)
    if kind in ("i", "u"):
        return True
    if getattr(dtype, "is_integer", None) is not None:  # polars
        try:
            return bool(dtype.is_integer())
        except TypeError:
            return False
    return False


def _selection(estimator, spec, names, param):
    """A boolean mask from names / indices / mask; None for 'from_dtype' or None."""
    if spec is None or _from_dtype(spec):
        return None
    spec = np.asarray(spec)
    n_features = len(names)
    mask = np.zeros(n_features, dtype=bool)
    if spec.dtype == bool:
        if spec.shape != (n_features,):
            raise ValueError(
                f"{param} as a boolean mask must have one entry per feature "
                f"({n_features}); got shape {spec.shape}."
            )
        return spec.copy()
    for key in spec.tolist():
        mask[_index_of(estimator, key, names, param)] = True
    return mask


def _index_of(estimator, key, names, param):
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if key in names and not all(isinstance(n, numbers.Integral) for n in names):
            return names.index(key)
        if not -len(names) <= key < len(names):
            raise ValueError(
                f"{param} has index {key}, out of range for {len(names)} features."
            )
        return int(key) % len(names)
    if key in names:
        return names.index(key)
    raise ValueError(
        f"{param} names column {key!r}, which is not a column of X "
        f"(columns: {names[:10]})."
    )


def _codes(values, levels):
    """Codes of ``values`` among ``levels``; -1 for an unseen or a missing value."""
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        return pandas.Index(levels, dtype=object).get_indexer(values)
    lookup = {}
    for code, level in enumerate(levels.tolist()):
        lookup.setdefault(_key(level), code)
    return np.array([lookup.get(_key(v), -1) for v in values], dtype=np.int64)


def _key(value):
    """A hashable key equal for equal levels (numpy and Python scalars)."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _to_float(estimator, values, missing, name):
    out = np.full(len(values), np.nan)
    observed = ~missing
    try:
        out[observed] = np.asarray(values[observed], dtype=np.float64)
    except (TypeError, ValueError):
        bad = next(v for v in values[observed] if not isinstance(v, numbers.Real))
        raise ValueError(
            f"{type(estimator).__name__}: column {name!r} was numeric in fit but "
            f"holds {bad!r} now."
        ) from None
    if np.isinf(out).any():
        raise ValueError(
            f"Input X contains infinity in column(s) {name!r}. NaN is the only "
            "missing-value marker; replace infinite values by NaN (to impute them) "
            "or by finite values."
        )
    return out


def _levels_of(codes, levels):
    """Levels (objects) of float codes; None where the code is NaN."""
    out = np.full(len(codes), None, dtype=object)
    valid = ~np.isnan(codes)
    out[valid] = levels[codes[valid].astype(np.intp)]
    return out


@dataclass(frozen=True)
class ModelLayout:
    """Which input columns the model uses, in which order, under which family.

    The model's input holds the Gaussian block first (continuous columns, and
    with the copula the ordinal and binary ones; ``latent_levels`` holds
    their numbers of levels, 0 for a continuous column), then the categorical
    columns (``n_levels``).

    Attributes
    ----------
    order : ndarray of int
        Input column indices, in the model's order.
    latent_levels : tuple of int
    n_levels : tuple of int
    """

    order: np.ndarray
    latent_levels: tuple
    n_levels: tuple
    copula: bool = False

    @property
    def n_gaussian(self):
        return len(self.latent_levels)

    @property
    def inverse(self):
        """Positions, in the model's order, of the used columns in input order."""
        return np.argsort(self.order, kind="stable")


def model_layout(types, keep, marginal):
    """The :class:`ModelLayout` of ``types`` (``keep``: the columns modelled).

    ``types`` None means every column is continuous. With
    ``marginal='copula'`` continuous, ordinal and binary columns are the
    latent Gaussian block (ordinal and binary ones as intervals) and nominal
    columns are categorical; with 'gaussian' every column that is not
    continuous is categorical. (Level codes modelled as Gaussian numbers, as
    a hand-made encoding does, were tried and dropped: in a mixture,
    components collapse onto the codes' few values and BIC then keeps asking
    for more components.)
    """
    if types is None:
        return ModelLayout(
            order=np.flatnonzero(keep).astype(np.intp),
            latent_levels=(0,) * int(np.sum(keep)),
            n_levels=(),
            copula=marginal == "copula",
        )
    kinds = types.kinds
    latent_kinds = ("continuous", "ordinal", "binary") if marginal == "copula" else (
        "continuous",
    )
    latent = [j for j in range(len(kinds)) if keep[j] and kinds[j] in latent_kinds]
    categorical = [
        j for j in range(len(kinds)) if keep[j] and kinds[j] not in latent_kinds
    ]
    columns = types.columns
    return ModelLayout(
        order=np.array(latent + categorical, dtype=np.intp),
        latent_levels=tuple(columns[j].n_levels for j in latent),
        n_levels=tuple(columns[j].n_levels for j in categorical),
        copula=marginal == "copula",
    )


# Continuous columns with at most this many distinct observed values are
# latent intervals under the copula, as ordinal columns are (gcimpute's
# ``max_ord``): as exact normal scores their few tied values would let mixture
# components collapse onto them.
MAX_DISCRETE_LEVELS = 20


@dataclass(frozen=True)
class CopulaColumns:
    """The copula block's marginals, with few-valued numbers as ordinal levels.

    Attributes
    ----------
    marginals : CopulaMarginals
        Of the block's columns: ordinal and binary codes, few-valued numeric
        columns as codes of their sorted distinct values, other numbers.
    discrete : dict
        Position in the block of a few-valued numeric column, or of an
        ordinal column with levels never observed, -> its sorted distinct
        observed values (what the latent model's codes stand for).
    """

    marginals: object
    discrete: dict

    @classmethod
    def estimate(cls, X, n_levels, sample_weight=None):
        """Estimate from the block ``X`` (codes where ``n_levels > 0``, NaN missing)."""
        from ._copula import CopulaMarginals

        n_levels = np.array(n_levels, dtype=np.intp)
        weighted = np.ones(len(X), bool) if sample_weight is None else (
            sample_weight > 0
        )
        discrete = {}
        for j in range(X.shape[1]):
            values = np.unique(X[~np.isnan(X[:, j]) & weighted, j])
            if n_levels[j] == 0 and 1 < values.size <= MAX_DISCRETE_LEVELS:
                discrete[int(j)] = values
                n_levels[j] = values.size
            elif 0 < values.size < n_levels[j]:
                # A level the data never show would let its interval's latent
                # variance grow without bound: the latent model has the
                # observed levels only (the others are never imputed).
                discrete[int(j)] = values
                n_levels[j] = values.size
        columns = cls(None, discrete)
        marginals = CopulaMarginals.estimate(
            columns._codes(X), n_levels > 0, sample_weight, n_levels=n_levels
        )
        return cls(marginals, discrete)

    def _codes(self, X):
        """``X`` with few-valued columns as the codes of their nearest level."""
        if not self.discrete:
            return X
        X = np.array(X, dtype=np.float64)
        for j, values in self.discrete.items():
            column = X[:, j]
            present = ~np.isnan(column)
            midpoints = (values[1:] + values[:-1]) / 2
            column[present] = np.searchsorted(midpoints, column[present])
        return X

    def to_latent(self, X):
        """The model's input: normal scores, level codes, NaN for missing."""
        return self.marginals.to_latent(self._codes(X))

    def from_latent(self, Z):
        """Latent imputations back to values (codes of few-valued columns too)."""
        X = self.marginals.from_latent(Z)
        for j, values in self.discrete.items():
            present = ~np.isnan(X[:, j])
            X[present, j] = values[X[present, j].astype(np.intp)]
        return X
