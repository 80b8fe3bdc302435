"""ProductFamily: components that are products of families over blocks of columns.

A component's density is the product of its families' densities, each on its
own columns (e.g. a Gaussian on the continuous columns times categorical
distributions on the nominal ones: the columns of different families are
independent given the component). The product is itself an emission family
(``_mixture.EmissionFamily``): log-densities add, statistics and parameters
are tuples with one entry per family, and inference fills each family's
columns. The mixture layer and the loop do not know it is a product.
"""

from dataclasses import dataclass
from functools import partial

import numpy as np

from ._missing_data import Chunk, MissingData, _Blocks, in_row_order


@dataclass(frozen=True)
class ProductStats:
    """One family's statistics per block of columns; adds entry by entry."""

    parts: tuple

    def __add__(self, other):
        if not isinstance(other, ProductStats):
            return NotImplemented
        return ProductStats(
            tuple(a + b for a, b in zip(self.parts, other.parts, strict=True))
        )


@dataclass(frozen=True)
class ProductData(_Blocks):
    """Rows prepared for a product: one :class:`MissingData` per family's columns.

    Every part holds the same rows in the same order (the first family's) and
    is cut into the same chunks; only the first part's chunks carry
    ``missing_cols``. Columns are in *family order* (the families' columns one
    after the other).

    Attributes
    ----------
    parts : tuple of MissingData
    """

    parts: tuple

    @property
    def blocks(self):
        return (self,)

    @property
    def order(self):
        return self.parts[0].order

    @property
    def chunks(self):
        return self.parts[0].chunks

    @property
    def weights(self):
        return self.parts[0].weights

    @property
    def n_samples(self):
        return self.parts[0].n_samples

    @property
    def n_features(self):
        return sum(part.n_features for part in self.parts)

    @property
    def block_weight(self):
        return self.parts[0].block_weight

    @property
    def X(self):
        """All columns in family order (a copy: for initialisation only)."""
        return np.hstack([part.X for part in self.parts])

    @property
    def missing_mask(self):
        """All columns in family order (a copy: for initialisation only)."""
        return np.hstack([part.missing_mask for part in self.parts])

    def chunk_weights(self, chunk):
        return self.parts[0].chunk_weights(chunk)

    def observed_counts(self):
        return np.concatenate([part.observed_counts() for part in self.parts])

    def observed_sums(self):
        return np.concatenate([part.observed_sums() for part in self.parts])

    def in_row_order(self, values):
        return in_row_order(self.chunks, values)

    def filled_with(self, means):
        """Each part's own mean-filled rows (a copula part starts its ordinal
        entries inside their intervals), side by side in family order."""
        sizes = np.cumsum([part.n_features for part in self.parts])[:-1]
        return np.hstack(
            [
                part.filled_with(m)
                for part, m in zip(self.parts, np.split(means, sizes), strict=True)
            ]
        )

    def block(self, lo, hi):
        """Rows ``lo:hi`` of every part (the same rows, cut at the same chunks)."""
        return ProductData(tuple(part.block(lo, hi) for part in self.parts))

    def column_moments(self):
        moments = [part.column_moments() for part in self.parts]
        return tuple(np.concatenate(group) for group in zip(*moments, strict=True))


class _ProductTerms:
    """Each family's terms of one chunk; their log-densities add."""

    def __init__(self, parts):
        self.parts = parts
        self.chunk = parts[0].chunk
        self.log_prob = sum(part.log_prob for part in parts[1:]) + parts[0].log_prob
        self.nothing_observed = all(part.nothing_observed for part in parts)


class ProductFamily:
    """A product of emission families, each on its own columns.

    Parameters
    ----------
    parts : sequence of (family, columns)
        Each family with the indices of its columns; the columns of all
        parts partition ``range(n_features)``. The first family orders and
        chunks the rows (put the one that needs rows grouped by their missing
        entries, e.g. the Gaussian, first).
    """

    def __init__(self, parts):
        self.families = tuple(family for family, _ in parts)
        self.columns = tuple(np.asarray(columns, dtype=np.intp) for _, columns in parts)
        every = np.sort(np.concatenate(self.columns))
        if not np.array_equal(every, np.arange(every.size)):
            raise ValueError(
                "The columns of a product's families must partition the features; "
                f"got {[c.tolist() for c in self.columns]}."
            )
        # Family order -> caller's column order.
        self._sizes = np.cumsum([c.size for c in self.columns])[:-1]

    def _split(self, X):
        return np.split(X, self._sizes, axis=1)

    def _place(self, parts, n_rows):
        out = np.empty((n_rows, sum(c.size for c in self.columns)))
        for columns, part in zip(self.columns, parts, strict=True):
            out[:, columns] = part
        return out

    def prepare(self, X, n_components, sample_weight=None, settings=None):
        """Prepare each family's columns, in the rows' order of the first family."""
        lead = self.families[0].prepare(
            X[:, self.columns[0]], n_components, sample_weight, settings=settings
        )
        parts = [lead]
        for columns in self.columns[1:]:
            X_part = np.take(X[:, columns], lead.order, axis=0).astype(np.float64)
            missing_mask = np.isnan(X_part)
            X_part[missing_mask] = 0.0
            # Same rows and bounds; missing_cols is the first family's only.
            chunks = [Chunk(c.start, c.stop, c.rows, None, False) for c in lead.chunks]
            parts.append(
                MissingData(X_part, missing_mask, lead.order, chunks, lead.weights)
            )
        return ProductData(tuple(parts))

    def iter_terms(self, params, block, accumulator=None):
        accumulators = (
            (None,) * len(self.families) if accumulator is None else accumulator
        )
        iterators = [
            family.iter_terms(p, part, acc)
            for family, p, part, acc in zip(
                self.families, params, block.parts, accumulators, strict=True
            )
        ]
        for items in zip(*iterators, strict=True):
            yield items[0][0], _ProductTerms([terms for _, terms in items])

    def accumulator(self, params, block):
        return tuple(
            family.accumulator(p, part)
            for family, p, part in zip(self.families, params, block.parts, strict=True)
        )

    def accumulate(self, accumulator, terms, resp, rows):
        for family, acc, part in zip(
            self.families, accumulator, terms.parts, strict=True
        ):
            family.accumulate(acc, part, resp, rows)

    def statistics(self, accumulator):
        return ProductStats(
            tuple(
                family.statistics(acc)
                for family, acc in zip(self.families, accumulator, strict=True)
            )
        )

    def complete_data_statistics(self, X, resp):
        """``X`` in family order (as ``ProductData.filled_with`` gives it)."""
        return ProductStats(
            tuple(
                family.complete_data_statistics(part, resp)
                for family, part in zip(self.families, self._split(X), strict=True)
            )
        )

    def init_features(self, X):
        """Each family's features for the initial clustering (its values if it
        has no ``init_features``), side by side."""
        return np.hstack(
            [
                getattr(family, "init_features", lambda part: part)(part)
                for family, part in zip(self.families, self._split(X), strict=True)
            ]
        )

    def m_step(self, stats, raw_nk, nk):
        return tuple(
            family.m_step(s, raw_nk, nk)
            for family, s in zip(self.families, stats.parts, strict=True)
        )

    def log_prior(self, params):
        return sum(
            family.log_prior(p) for family, p in zip(self.families, params, strict=True)
        )

    @property
    def fully_initialised(self):
        return all(family.fully_initialised for family in self.families)

    def initial_params(self, estimate):
        estimates = (None,) * len(self.families) if estimate is None else estimate
        return tuple(
            family.initial_params(e)
            for family, e in zip(self.families, estimates, strict=True)
        )

    def flatten(self, params):
        return np.concatenate(
            [family.flatten(p) for family, p in zip(self.families, params, strict=True)]
        )

    def unflatten(self, vector, like):
        sizes = np.cumsum(
            [
                family.flatten(p).size
                for family, p in zip(self.families, like, strict=True)
            ]
        )[:-1]
        return tuple(
            family.unflatten(part, p)
            for family, part, p in zip(
                self.families, np.split(vector, sizes), like, strict=True
            )
        )

    def conditional_mean(self, params, terms, resp):
        parts = [
            family.conditional_mean(p, t, resp)
            for family, p, t in zip(self.families, params, terms.parts, strict=True)
        ]
        return self._place(parts, len(resp))

    def posterior_draw(self, params, terms, component, random_state):
        parts = [
            family.posterior_draw(p, t, component, random_state)
            for family, p, t in zip(self.families, params, terms.parts, strict=True)
        ]
        return self._place(parts, len(component))

    def n_parameters(self, params):
        return sum(
            family.n_parameters(p)
            for family, p in zip(self.families, params, strict=True)
        )

    def sample(self, params, counts, random_state):
        parts = [
            family.sample(p, counts, random_state)
            for family, p in zip(self.families, params, strict=True)
        ]
        return self._place(parts, int(np.sum(counts)))

    def attributes(self, params):
        out = {}
        for family, p in zip(self.families, params, strict=True):
            attributes = family.attributes(p)
            clash = set(out) & set(attributes)
            if clash:
                raise ValueError(
                    f"Families of a product name the same fitted attributes {clash}."
                )
            out.update(attributes)
        return out

    def params_from_attributes(self, estimator):
        return tuple(
            family.params_from_attributes(estimator) for family in self.families
        )


def part_of(data, index):
    """The rows of one family of a product, as prepared data of their own.

    ``data`` is a :class:`ProductData` or any container of them (blocks,
    worker blocks); the view maps every block to its ``parts[index]``, so
    what runs on it (standardisation in place, a one-family fit for a default
    prior) runs where the blocks are.
    """
    if isinstance(data, ProductData):
        return data.parts[index]
    return _PartView(data, index)


@dataclass(frozen=True)
class _PartView(_Blocks):
    data: object
    index: int

    def map_blocks(self, fn, per_block=None):
        return self.data.map_blocks(partial(_on_part, self.index, fn), per_block)

    @property
    def n_blocks(self):
        return self.data.n_blocks

    @property
    def row_index(self):
        return self.data.row_index

    @property
    def n_samples(self):
        return self.data.n_samples

    @property
    def n_features(self):
        return self.map_blocks(_n_features)[0]

    @property
    def total_weight(self):
        return self.data.total_weight


def _on_part(index, fn, block, *item):
    return fn(block.parts[index], *item)


def _n_features(block):
    return block.n_features
