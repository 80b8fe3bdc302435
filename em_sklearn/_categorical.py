"""CategoricalFamily: nominal columns, independent given the component (latent classes).

Column ``j`` holds level codes ``0 .. n_levels[j] - 1`` (NaN when missing).
Each component has a probability for every level of every column,
``theta_kj`` (DESIGN §7). An observed entry adds ``log theta_kj[x_ij]`` to the
row's log-density; a missing one adds nothing, so EM is exact. Statistics are
expected counts per level, ``sum_i r_ik [x_ij = l]`` over the rows where
column ``j`` is observed; the M-step normalises them. Imputation gives the most
probable level, ``argmax_l sum_k r_ik theta_kjl``, or a draw.

Combined with the Gaussian through ``_product.ProductFamily`` this is the
composite (latent class x Gaussian) mixture of the mixed-type issue; it is not
wired to the estimators yet.
"""

from dataclasses import dataclass

import numpy as np

from ._missing_data import prepare_missing_data

# Added to every expected count, as scikit-learn adds 10 * eps to nk: a level
# never seen by a component keeps a tiny positive probability.
_EPS = 10 * np.finfo(np.float64).eps


@dataclass(frozen=True)
class CategoricalParams:
    """Level probabilities of each component, one array per column.

    Attributes
    ----------
    probabilities : tuple of ndarray of shape (n_components, n_levels[j])
        Rows sum to 1.
    """

    probabilities: tuple


@dataclass(frozen=True)
class CategoricalStats:
    """Expected counts per level, one array per column; add column by column.

    Attributes
    ----------
    counts : tuple of ndarray of shape (n_components, n_levels[j])
    """

    counts: tuple

    def __add__(self, other):
        if not isinstance(other, CategoricalStats):
            return NotImplemented
        return CategoricalStats(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        )


class _Terms:
    def __init__(self, chunk, log_prob, codes, missing):
        self.chunk = chunk
        self.log_prob = log_prob  # (n_rows, n_components)
        self.codes = codes  # (n_rows, n_features) int, 0 where missing
        self.missing = missing  # (n_rows, n_features) bool
        self.nothing_observed = bool(missing.all())


class CategoricalFamily:
    """Nominal columns, conditionally independent given the component.

    Parameters
    ----------
    n_levels : sequence of int
        Number of levels of each column (codes ``0 .. n_levels[j] - 1``).
    """

    fully_initialised = False

    def __init__(self, n_levels):
        self.n_levels = tuple(int(n) for n in n_levels)

    def prepare(self, X, n_components, sample_weight=None, settings=None):
        """Check the level codes and prepare the rows (see ``prepare_missing_data``).

        Raises
        ------
        ValueError
            Naming the first column holding a value that is not one of its
            level codes.
        """
        for j, n in enumerate(self.n_levels):
            column = X[:, j]
            bad = ~np.isnan(column) & ~np.isin(column, np.arange(n))
            if bad.any():
                value = float(column[np.flatnonzero(bad)[0]])
                raise ValueError(
                    f"Column {j} must hold level codes 0 to {n - 1} (or NaN). "
                    f"Got {value!r} instead."
                )
        return prepare_missing_data(X, n_components, sample_weight, settings=settings)

    def iter_terms(self, params, block, accumulator=None):
        """Yield ``(chunk, terms)``; ``terms.log_prob`` sums observed levels' logs."""
        with np.errstate(divide="ignore"):
            log_theta = [np.log(p) for p in params.probabilities]  # (K, L_j) each
        for chunk in block.chunks:
            missing = block.missing_mask[chunk.start : chunk.stop]
            codes = block.X[chunk.start : chunk.stop].astype(np.intp)  # 0 if missing
            log_prob = np.zeros((len(codes), len(log_theta[0])))
            for j, log_p in enumerate(log_theta):
                contribution = log_p[:, codes[:, j]].T  # (n_rows, K)
                contribution[missing[:, j]] = 0.0
                log_prob += contribution
            yield chunk, _Terms(chunk, log_prob, codes, missing)

    def accumulator(self, params, block):
        return [np.zeros_like(p) for p in params.probabilities]

    def accumulate(self, accumulator, terms, resp, rows):
        n_components = resp.shape[1]
        for j, counts in enumerate(accumulator):
            observed = ~terms.missing[:, j]
            n_levels = counts.shape[1]
            # Flat (component, level) index of each observed entry: one
            # bincount, O(n_rows * K) whatever the number of levels.
            index = np.arange(n_components) * n_levels + terms.codes[observed, j, None]
            counts += np.bincount(
                index.ravel(), weights=resp[observed].ravel(),
                minlength=n_components * n_levels,
            ).reshape(n_components, n_levels)

    def statistics(self, accumulator):
        return CategoricalStats(tuple(accumulator))

    def complete_data_statistics(self, X, resp):
        """Counts of ``X``'s levels under ``resp`` (initialisation).

        ``X`` is the mean-filled data: a filled entry is rounded to the nearest
        level, a crude start that EM then corrects.
        """
        counts = []
        for j, n in enumerate(self.n_levels):
            codes = np.clip(np.rint(X[:, j]), 0, n - 1).astype(np.intp)
            counts.append(resp.T @ (codes[:, None] == np.arange(n)))
        return CategoricalStats(tuple(counts))

    def init_features(self, X):
        """One-hot levels for the initial clustering, two levels 1 apart.

        ``X`` is mean-filled: an entry that is not a level code was missing
        and gets the column's observed level frequencies.
        """
        parts = []
        for j, n in enumerate(self.n_levels):
            column = X[:, j]
            observed = column == np.rint(column)
            one_hot = np.zeros((len(column), n))
            codes = np.clip(column[observed], 0, n - 1).astype(np.intp)
            one_hot[np.flatnonzero(observed), codes] = 1.0
            if (~observed).any():
                one_hot[~observed] = one_hot[observed].mean(axis=0) if (
                    observed.any()
                ) else 1.0 / n
            parts.append(one_hot / np.sqrt(2.0))
        return np.hstack(parts)

    def m_step(self, stats, raw_nk, nk):
        """Normalise the expected counts (with ``10 * eps`` added to each)."""
        probabilities = []
        for counts in stats.counts:
            counts = counts + _EPS
            probabilities.append(counts / counts.sum(axis=1, keepdims=True))
        return CategoricalParams(tuple(probabilities))

    def log_prior(self, params):
        return 0.0

    def initial_params(self, estimate):
        return estimate

    def flatten(self, params):
        return np.concatenate([p.ravel() for p in params.probabilities])

    def unflatten(self, vector, like):
        sizes = np.cumsum([p.size for p in like.probabilities])[:-1]
        parts = np.split(vector, sizes)
        if not all(np.all(part > 0) for part in parts):
            raise ValueError("Extrapolated level probabilities are not all positive.")
        probabilities = []
        for part, p in zip(parts, like.probabilities, strict=True):
            part = part.reshape(p.shape)
            probabilities.append(part / part.sum(axis=1, keepdims=True))
        return CategoricalParams(tuple(probabilities))

    def conditional_mean(self, params, terms, resp):
        """The most probable level of each missing entry; observed codes as given."""
        out = terms.codes.astype(np.float64)
        for j, theta in enumerate(params.probabilities):
            mode = np.argmax(resp @ theta, axis=1)  # (n_rows,)
            out[:, j] = np.where(terms.missing[:, j], mode, out[:, j])
        return out

    def posterior_draw(self, params, terms, component, random_state):
        """Draw each missing entry's level from its row's drawn component."""
        out = terms.codes.astype(np.float64)
        u = random_state.uniform(size=out.shape)  # (n_rows, n_features)
        for j, theta in enumerate(params.probabilities):
            cumulative = np.cumsum(theta[component], axis=1)[:, :-1]  # (n, L_j - 1)
            level = (cumulative < u[:, j, None]).sum(axis=1)
            out[:, j] = np.where(terms.missing[:, j], level, out[:, j])
        return out

    def n_parameters(self, params):
        n_components = len(params.probabilities[0])
        return n_components * sum(n - 1 for n in self.n_levels)

    def sample(self, params, counts, random_state):
        labels = np.repeat(np.arange(len(counts)), counts)
        out = np.empty((len(labels), len(self.n_levels)))
        u = random_state.uniform(size=out.shape)
        for j, theta in enumerate(params.probabilities):
            cumulative = np.cumsum(theta[labels], axis=1)[:, :-1]
            out[:, j] = (cumulative < u[:, j, None]).sum(axis=1)
        return out

    def attributes(self, params):
        return {"category_probabilities_": list(params.probabilities)}

    def params_from_attributes(self, estimator):
        return CategoricalParams(tuple(estimator.category_probabilities_))
