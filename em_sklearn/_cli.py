"""The ``impute`` and ``cluster`` commands: read a CSV file, fit, write a CSV file.

CSV files are read and written with the standard library's :mod:`csv` module,
so the command line needs nothing beyond the package's own dependencies (no
pandas). Cells are kept as text: the columns that are not used, and the
observed entries of the used columns, are written back exactly as they were
read; only the missing entries are replaced (by the shortest decimal text
that round-trips the float64 imputation).

Two paths read the table. A file whose used columns all hold numbers (the
common case, and the one of big files) is streamed: read one record at a
time, twice, with memory bounded by the block size whatever the number of
rows (:class:`_NumericTable`). Standard input (which cannot be read twice),
``--ordinal`` and tables with a used text column are read whole into memory
(:func:`read_csv`, :func:`to_table`). Both give the same messages in the same
order, and below two blocks of rows the same output, byte for byte.

Every error a user can cause (a missing file, an empty table, a non-numeric
column, an unknown column, a model that cannot be fitted) is reported as one
line ``em-sklearn: error: <message>`` on stderr with exit code 2.

The input file is never written: an output that is the input (under any path,
through a link, or as a redirected standard stream) is refused before anything
is read. The output file is written atomically: to a temporary file in its
directory, then renamed over it, so a failed or interrupted run leaves no
partial output and an existing output file as it was.
"""

import contextlib
import copy
import csv
import errno
import math
import os
import re
import secrets
import stat
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

from ._clusterer import EMClusterer
from ._imputer import EMImputer

PROG = "em-sklearn"
EXIT_USAGE = 2


class CLIError(Exception):
    """A user error, reported on one line with exit code 2."""


def run(command, options, *, stdout=None, stderr=None):
    """Run ``impute`` or ``cluster`` and return the exit code.

    Parameters
    ----------
    command : {'impute', 'cluster'}
        The command.
    options : dict
        The parsed options (see ``em_sklearn.__main__``).
    stdout, stderr : file-like, default=None
        Streams for the table (when no output file is given) and for messages;
        ``sys.stdout`` and ``sys.stderr`` if None.

    Returns
    -------
    exit_code : int
        0 on success, 2 for a user error (the message is on ``stderr``).
    """
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _run(command, stdout=stdout, stderr=stderr, **options)
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        return EXIT_USAGE
    for w in caught:
        message = " ".join(str(w.message).split())
        print(f"{PROG}: warning: {w.category.__name__}: {message}", file=stderr)
    return 0


def _run(
    command,
    *,
    input,
    output,
    columns,
    na_values,
    exclude=None,
    ordinal=None,
    n_components,
    max_components,
    covariance_type,
    prior,
    random_state,
    sep,
    probabilities=False,
    label_column="cluster",
    progress_after=1.5,
    quiet=False,
    block_rows=None,
    stdout,
    stderr,
):
    sep = delimiter(sep)
    _refuse_to_write_over_input(input, output, stdout)
    with contextlib.ExitStack() as cleanup:
        table = None
        if input != "-" and not ordinal:
            table = _NumericTable.read(
                input, sep, columns, exclude, na_values, _spill_directory(output)
            )
        if table is None:  # stdin, --ordinal, or a used column holds text
            header, rows = read_csv(input, sep=sep)
            used = select_columns(header, columns, input)
            used = exclude_columns(header, used, exclude, input)
            X, types = to_table(header, rows, used, na_values, ordinal, input)
            empty = _missing(X).all(axis=0)
        else:
            cleanup.callback(table.close)
            header, used, types = table.header, table.used, table.types
            empty = table.observed == 0
        for j in np.flatnonzero(empty):
            print(
                f"{PROG}: warning: column {header[used[j]]!r} has no observed "
                "value; it is left as it is and not used.",
                file=stderr,
            )
        if empty.all():
            raise CLIError(
                "No used column has an observed value; there is nothing to fit."
            )
        used = [c for c, e in zip(used, empty, strict=True) if not e]
        types = types.subset(~empty)
        if table is None:
            X = X[:, ~empty]
        else:
            X = table.select(~empty, block_rows)
        if command == "cluster":
            new = [label_column]
            if probabilities:
                n_max = _max_k(n_components, max_components, X)
                new += [f"{label_column}_proba_{k}" for k in range(n_max)]
            clash = sorted(set(new) & set(header))
            if clash:
                raise CLIError(
                    f"Column {clash[0]!r} is already in {input}; choose another "
                    "name with --label-column."
                )

        progress = _Progress(stderr, delay=None if quiet else progress_after)
        try:
            params = {
                "covariance_type": covariance_type,
                "random_state": random_state,
                "prior": None if prior == "none" else prior,
                **types.params(),
            }
            setting = {} if table is None else {"block_rows": block_rows}
            k = _choose_n_components(
                X, n_components, max_components, params, progress, input, **setting
            )
            n_rows, n_cols = X.shape
            Estimator = EMImputer if command == "impute" else EMClusterer
            estimator = _estimator(Estimator, k, params, **setting)
            progress.update(
                f"fitting {estimator!r} on {n_rows} rows x {n_cols} columns"
            )
            _fit(estimator, X)
            if table is not None:
                out_header = header
                if command == "cluster":
                    out_header = header + _label_header(label_column, probabilities, k)
            elif command == "impute":
                X_filled = estimator.transform(X)
                out_header = header
                out_rows = _fill_rows(rows, used, X, X_filled, types.integer)
            else:
                labels = estimator.labels_
                extra = [[str(label)] for label in labels]
                out_header = header + _label_header(label_column, probabilities, k)
                if probabilities:
                    proba = estimator.predict_proba(X)
                    extra = [
                        e + [repr(float(p)) for p in row]
                        for e, row in zip(extra, proba, strict=True)
                    ]
                out_rows = [row + e for row, e in zip(rows, extra, strict=True)]
            progress.done(
                f"done: {estimator!r}, {estimator.n_iter_} EM iterations"
                + ("" if estimator.converged_ else " (not converged)")
            )
        finally:
            progress.cancel()
        if table is None:
            write_csv(output, out_header, out_rows, sep=sep, stdout=stdout)
        else:
            if command == "impute":
                edit = _imputed_cells(estimator, used, types.integer)
            else:
                edit = _appended_labels(estimator, probabilities)
            chunks = table.output_chunks(X, edit)
            _write_table(output, out_header, chunks, sep=sep, stdout=stdout)


def _label_header(label_column, probabilities, k):
    """The names of the columns ``cluster`` appends."""
    names = [label_column]
    if probabilities:
        names += [f"{label_column}_proba_{j}" for j in range(k)]
    return names


def _estimator(Estimator, n_components, params, block_rows=None):
    """``Estimator(n_components, **params)`` with ``block_rows`` rows per block.

    ``block_rows`` (None: the estimators' default) is a setting of the engine
    (``_block_rows``), not a parameter: it sets the rows per block of an
    out-of-core fit and of its inference.
    """
    estimator = Estimator(n_components=n_components, **params)
    if block_rows is not None:
        estimator._block_rows = block_rows
    return estimator


def _max_k(n_components, max_components, X):
    return n_components if n_components != "auto" else min(max_components, len(X))


def _fit(estimator, X):
    try:
        return estimator.fit(X)
    except ValueError as exc:
        raise CLIError(" ".join(str(exc).split())) from exc


def _choose_n_components(
    X, n_components, max_components, params, progress, input, block_rows=None
):
    """Return ``n_components``, or for "auto" the BIC-best count in 1..max."""
    if n_components != "auto":
        if n_components > len(X):
            raise CLIError(
                f"Expected at most as many components as rows but got "
                f"--n-components {n_components} for {len(X)} rows in {input}."
            )
        return n_components
    candidates = range(1, min(max_components, len(X)) + 1)
    bics = {}
    for k in candidates:
        progress.update(
            f"choosing n_components by BIC: fitting k={k} of 1..{candidates[-1]}"
        )
        clusterer = _fit(_estimator(EMClusterer, k, params, block_rows), X)
        bics[k] = _bic(clusterer, X)
    best = min(bics, key=bics.get)
    progress.update(
        "BIC by n_components: "
        + ", ".join(f"{k}: {b:.1f}" for k, b in bics.items())
        + f"; chose {best}",
        ongoing=False,
    )
    return best


def _bic(clusterer, X):
    """``clusterer.bic(X)``; for rows read block by block, summed block by block.

    (``bic`` of such rows would hold one log-likelihood per row in memory.)
    """
    if isinstance(X, np.ndarray):
        return clusterer.bic(X)
    n_samples = X.shape[0]
    log_likelihood = 0.0
    for lo, hi in _block_bounds(n_samples, clusterer._block_rows):
        log_likelihood += float(np.sum(clusterer.score_samples(X[lo:hi])))
    return -2 * log_likelihood + clusterer._n_parameters() * math.log(n_samples)


def delimiter(sep):
    """The csv delimiter for ``--sep``: one character, with ``'\\t'`` for a tab."""
    if sep == "\\t":  # backslash and t, as typed in a shell: --sep '\t'
        return "\t"
    if len(sep) != 1 or sep in '"\r\n':
        raise CLIError(
            "Expected --sep to be one character other than a quote or a line break "
            f"('\\t' for a tab) but got {sep!r}."
        )
    return sep


def _file_id(path=None, stream=None):
    """(st_dev, st_ino) of a regular file, given by path or open stream; else None.

    Only regular files count: a terminal or pipe may be both stdin and stdout.
    """
    try:
        st = os.stat(path) if path is not None else os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _refuse_to_write_over_input(input, output, stdout):
    """Raise CLIError if the output is the input file (any path, link or stream)."""
    to_stdout = output is None or output == "-"
    if input == "-":
        source, source_name = _file_id(stream=sys.stdin), "standard input"
    else:
        source, source_name = _file_id(path=input), repr(input)
    if to_stdout:
        target, target_name = _file_id(stream=stdout), "standard output"
    else:
        target, target_name = _file_id(path=output), repr(output)
    if source is not None and source == target:
        raise CLIError(
            f"The output ({target_name}) is the same file as the input "
            f"({source_name}); refusing to write over the input. Write the output "
            "to another file."
        )


def read_csv(path, *, sep=","):
    """Read a CSV file as a header and rows of text cells.

    Parameters
    ----------
    path : str
        The file ('-' for stdin).
    sep : str, default=','
        The field delimiter.

    Returns
    -------
    header : list of str
    rows : list of list of str
        Every row has ``len(header)`` cells.
    """
    try:
        if path == "-":
            records = list(csv.reader(sys.stdin, delimiter=sep))
        else:
            with open(path, newline="", encoding="utf-8-sig") as f:
                records = list(csv.reader(f, delimiter=sep))
    except FileNotFoundError:
        raise CLIError(f"No such file: {path!r}.") from None
    except IsADirectoryError:
        raise CLIError(f"{path!r} is a directory, not a CSV file.") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"Cannot read {path!r}: {exc}.") from None
    records = [r for r in records if r]  # csv yields [] for blank lines
    if not records:
        raise CLIError(f"{path!r} is empty: expected a header line and data rows.")
    header, rows = records[0], records[1:]
    if not rows:
        raise CLIError(f"{path!r} has a header but no data rows.")
    for i, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise CLIError(
                f"Expected {len(header)} fields on line {i} of {path!r} (as in the "
                f"header) but got {len(row)}."
            )
    return header, rows


def select_columns(header, columns, path):
    """Positions of the used columns: all if ``columns`` is None, else those named."""
    if columns is None:
        return list(range(len(header)))
    names = [c.strip() for c in columns.split(",") if c.strip()]
    if not names:
        raise CLIError("--columns is empty; give comma-separated column names.")
    unknown = [n for n in names if n not in header]
    if unknown:
        raise CLIError(
            f"Column {unknown[0]!r} is not in {path!r}; its columns are: "
            f"{', '.join(header)}."
        )
    for name in names:
        count = header.count(name)
        if count > 1:
            raise CLIError(
                f"Column {name!r} appears {count} times in {path!r}; --columns "
                "cannot tell the columns apart: give them distinct names."
            )
    return [header.index(n) for n in dict.fromkeys(names)]


def exclude_columns(header, used, exclude, path):
    """``used`` without the columns named in ``exclude`` (comma-separated)."""
    if exclude is None:
        return used
    names = [c.strip() for c in exclude.split(",") if c.strip()]
    unknown = [n for n in names if n not in header]
    if unknown:
        raise CLIError(
            f"Column {unknown[0]!r} (--exclude) is not in {path!r}; its columns are: "
            f"{', '.join(header)}."
        )
    kept = [c for c in used if header[c] not in names]
    if not kept:
        raise CLIError("--exclude leaves no column to use.")
    return kept


class _Types:
    """What the used columns hold: numbers, text levels (nominal), ordered levels.

    Attributes
    ----------
    text : ndarray of bool
        Nominal columns (their cells are the levels, as read).
    ordinal : dict
        Position of an ordinal column -> its levels (cell texts) in order.
    integer : ndarray of bool
        Numeric columns whose observed cells are all integers (imputed as
        integers).
    """

    def __init__(self, text, ordinal, integer):
        self.text, self.ordinal, self.integer = text, ordinal, integer

    def subset(self, keep):
        position = np.cumsum(keep) - 1
        return _Types(
            self.text[keep],
            {int(position[j]): v for j, v in self.ordinal.items() if keep[j]},
            self.integer[keep],
        )

    def params(self):
        """The estimators' column-type parameters for these columns."""
        if not self.text.any() and not self.ordinal:
            return {}
        return {
            "categorical_features": np.flatnonzero(self.text).tolist() or None,
            "ordinal_features": self.ordinal or None,
        }


def _parse_ordinal(specs, header, used, path):
    """--ordinal NAME or NAME=L1,L2,... (repeatable) -> {column: levels or None}."""
    out = {}
    for spec in specs or ():
        name, _, levels = spec.partition("=")
        name = name.strip()
        if name not in header:
            raise CLIError(
                f"Column {name!r} (--ordinal) is not in {path!r}; its columns are: "
                f"{', '.join(header)}."
            )
        if header.index(name) not in used:
            raise CLIError(f"Column {name!r} (--ordinal) is not a used column.")
        out[header.index(name)] = (
            [v.strip() for v in levels.split(",")] if levels else None
        )
    return out


_INTEGER = re.compile(r"[+-]?\d+\Z")


def to_table(header, rows, used, na_values, ordinal=None, path=""):
    """The used columns, typed: numbers as floats, text and ordinal cells as text.

    A column whose cells (missing markers aside) all read as numbers is
    continuous; any other is nominal, its distinct cells its levels. An
    ``--ordinal`` column's levels are its distinct cells in the order given
    (``NAME=L1,L2,...``) or, for a numeric column, in numeric order.

    Returns
    -------
    X : ndarray of shape (n_rows, len(used))
        float64 (NaN for missing) when every column is continuous; otherwise
        an object array with floats, cell texts and None for missing.
    types : _Types
    """
    markers = set(na_values)
    order = _parse_ordinal(ordinal, header, used, path)
    n = len(used)
    columns, text, integer, levels_of = [], np.zeros(n, bool), np.zeros(n, bool), {}
    for j, col in enumerate(used):
        cells = [row[col].strip() for row in rows]
        present = [c for c in cells if c not in markers]
        numbers = _as_numbers(present)
        if col in order:
            levels = order[col]
            if levels is None:
                if numbers is None:
                    raise CLIError(
                        f"Column {header[col]!r} (--ordinal) holds text, whose order "
                        f"is not known; give it: --ordinal "
                        f"'{header[col]}=LEVEL1,LEVEL2,...'."
                    )
                levels = sorted(set(present), key=float)
            absent = sorted(set(present) - set(levels))
            if absent:
                raise CLIError(
                    f"Column {header[col]!r} (--ordinal) holds {absent[:5]}, not "
                    f"among its levels {levels}."
                )
            levels_of[j] = levels
            columns.append([None if c in markers else c for c in cells])
        elif numbers is None:
            _refuse_numbers_and_text(header[col], cells, markers)
            text[j] = True
            columns.append([None if c in markers else c for c in cells])
        else:
            values = iter(numbers)
            columns.append([np.nan if c in markers else next(values) for c in cells])
            integer[j] = bool(present) and all(_INTEGER.match(c) for c in present)
    if not text.any() and not levels_of:
        X = np.array(columns, dtype=np.float64).T.reshape(len(rows), n)
        if np.isinf(X).any():
            i, j = np.argwhere(np.isinf(X))[0]
            raise CLIError(
                f"Column {header[used[j]]!r} holds an infinite value on line "
                f"{i + 2}; only finite numbers and missing-value markers are accepted."
            )
    else:
        X = np.empty((len(rows), n), dtype=object)
        for j, values in enumerate(columns):
            X[:, j] = values
    return X, _Types(text, levels_of, integer)


def _refuse_numbers_and_text(name, cells, markers):
    """A column of numbers but for some cells is most likely an undeclared marker."""
    present = [(i, c) for i, c in enumerate(cells) if c not in markers]
    bad = [(i, c) for i, c in present if _as_numbers([c]) is None]
    if 2 * len(bad) <= len(present):
        i, cell = bad[0]
        raise CLIError(
            f"Column {name!r} holds numbers and text: line {i + 2} holds {cell!r}. "
            "Declare missing-value markers with --na-values, or leave the column "
            "out with --exclude."
        )


def _as_numbers(cells):
    """The cells as floats, or None if one of them is not a finite-or-inf number."""
    try:
        return [float(c) for c in cells]
    except ValueError:
        return None


def _missing(X):
    if X.dtype != object:
        return np.isnan(X)
    return np.vectorize(
        lambda v: v is None or (isinstance(v, float) and v != v), otypes=[bool]
    )(X)


def _fill_rows(rows, used, X, X_filled, integer):
    """Copy ``rows`` with the missing used cells replaced by their imputations."""
    out = [list(row) for row in rows]
    for i, j in np.argwhere(_missing(X)):
        out[i][used[j]] = _cell_text(X_filled[i, j], integer[j])
    return out


def _cell_text(value, integer):
    """The text of an imputed cell: a level as is, else an integer or a float."""
    if isinstance(value, str):
        return value
    if integer:
        return str(int(np.rint(float(value))))
    return repr(float(value))


# -- numeric tables, streamed ----------------------------------------------------
#
# A table whose used columns all hold numbers is never held in memory. A first
# pass reads the CSV one record at a time, checks it (read_csv's and
# to_table's checks, messages and order) and appends the used columns, as
# float64, to a nameless temporary file (_FloatRows). The fit reads that file:
# in memory below two blocks of rows (as small as one block, and the same fit,
# to the bit, as the in-memory path), block by block from two blocks on (the
# out-of-core fit, ``_out_of_core``). A second pass reads the CSV again and
# writes each row as it comes, its missing cells filled from the imputations
# of its block (or its label appended). Memory: a few blocks of rows, whatever
# the number of rows.

# Cells per buffer of the first pass and per list of rows of the second.
_BUFFER_CELLS = 2**14


def _block_bounds(n_rows, block_rows):
    """``(start, stop)`` of consecutive blocks of ``block_rows`` rows."""
    return [(lo, min(lo + block_rows, n_rows)) for lo in range(0, n_rows, block_rows)]


def _open_csv(path):
    """Open the CSV file ``path`` for :func:`_records` (errors as in read_csv)."""
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise CLIError(f"No such file: {path!r}.") from None
    except IsADirectoryError:
        raise CLIError(f"{path!r} is a directory, not a CSV file.") from None
    except OSError as exc:
        raise CLIError(f"Cannot read {path!r}: {exc}.") from None


def _identity(f):
    """What tells whether the open file ``f`` changed between two passes."""
    st = os.fstat(f.fileno())
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _records(f, path, sep):
    """Yield the header, then each row, of the open CSV file ``f``, one at a time.

    Blank lines are skipped. The checks and messages are :func:`read_csv`'s,
    in its order: a read error anywhere in the file, then an empty file or
    one without rows, then the first row with the wrong number of fields
    (rows are yielded up to it, and the rest of the file is still read).
    """
    header, n_rows, ragged = None, 0, None
    try:
        for record in csv.reader(f, delimiter=sep):
            if not record:  # csv yields [] for blank lines
                continue
            if header is None:
                header = record
                yield record
            else:
                n_rows += 1
                if ragged is None and len(record) != len(header):
                    ragged = n_rows + 1, len(record)  # (line, fields)
                if ragged is None:
                    yield record
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"Cannot read {path!r}: {exc}.") from None
    if header is None:
        raise CLIError(f"{path!r} is empty: expected a header line and data rows.")
    if not n_rows:
        raise CLIError(f"{path!r} has a header but no data rows.")
    if ragged is not None:
        raise CLIError(
            f"Expected {len(header)} fields on line {ragged[0]} of {path!r} (as in "
            f"the header) but got {ragged[1]}."
        )


def _spill_directory(output):
    """Where a streamed table's float64 copy goes: the output file's directory.

    That is where the user has made room for the output, which the copy
    (8 bytes a cell) rarely outgrows; None (``tempfile``'s directory, see
    ``TMPDIR``) for standard output or a device.
    """
    if output is None or output == "-":
        return None
    target = os.path.realpath(output)
    try:
        if not stat.S_ISREG(os.stat(target).st_mode):
            return None
    except OSError:
        pass  # a new file
    return os.path.dirname(target)


class _FloatRows:
    """A 2-D float64 array in a nameless temporary file, read by row slices.

    What the out-of-core fit reads (an array that slices by rows: a NumPy
    ``dtype``, a 2-D ``shape``, ``X[start:stop]``). Unlike a ``numpy.memmap``
    it maps nothing: each slice is read into a new array, so resident memory
    holds the rows read, not every page of the file touched so far. The file
    is created by the first :meth:`append` and has no name (removed when
    closed, or when the process ends however it ends).

    Parameters
    ----------
    n_columns : int
    directory : str or None
        Where to create the file: there, or in tempfile's directory if None
        or if it cannot be created there.
    """

    dtype = np.dtype(np.float64)
    ndim = 2

    def __init__(self, n_columns, directory):
        self._n_columns = n_columns
        self._n_rows = 0
        self._keep = None  # the columns a slice returns (None: all)
        self._file = None
        self._directory = directory
        self._lock = threading.Lock()

    def _create(self):
        """Create the file: in ``directory``, or tempfile's if that fails."""
        places = filter(None, [self._directory, tempfile.gettempdir()])
        for where in dict.fromkeys(places):
            try:
                self._file = tempfile.TemporaryFile(dir=where, buffering=0)
            except OSError as exc:
                error = exc
            else:
                self._directory = where
                return
        raise CLIError(
            f"Cannot create a temporary file in {where!r}: {error.strerror or error}. "
            "Set TMPDIR to a writable directory."
        )

    @property
    def shape(self):
        n_kept = self._n_columns if self._keep is None else int(self._keep.sum())
        return self._n_rows, n_kept

    def __len__(self):
        return self._n_rows

    def append(self, rows):
        """Write ``rows`` (float64, ``n_columns`` wide) after the others."""
        data = memoryview(np.ascontiguousarray(rows, dtype=np.float64)).cast("B")
        if self._file is None:
            self._create()
        try:
            self._file.seek(0, os.SEEK_END)
            while data:
                data = data[self._file.write(data) :]
        except OSError as exc:
            raise CLIError(
                f"Cannot write a temporary file in {self._directory!r}: "
                f"{exc.strerror or exc}. It takes 8 bytes per used cell, in the "
                "output's directory (TMPDIR's when writing to standard output)."
            ) from None
        self._n_rows += len(rows)

    def select(self, keep):
        """The same rows, only the columns where ``keep`` is True (no copy)."""
        view = copy.copy(self)
        view._keep = None if keep.all() else np.asarray(keep, dtype=bool)
        return view

    def __getitem__(self, index):
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError(f"{type(self).__name__} reads row slices only.")
        lo, hi, _ = index.indices(self._n_rows)
        out = np.empty((max(hi - lo, 0), self._n_columns))
        view = memoryview(out).cast("B")
        with self._lock:
            if view:
                self._file.seek(lo * self._n_columns * 8)
            while view:
                count = self._file.readinto(view)
                if not count:
                    raise CLIError("A temporary file was cut short while in use.")
                view = view[count:]
        return out if self._keep is None else out[:, self._keep]

    def __array__(self, dtype=None, copy=None):
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype, copy=False)

    def close(self):
        if self._file is not None:
            self._file.close()


class _NumericTable:
    """A CSV file whose used columns all hold numbers, read block by block.

    Made by :meth:`read` (the first pass); :meth:`output_chunks` reads the
    file again (the second pass).

    Attributes
    ----------
    header : list of str
    used : list of int
        The used columns' positions in the header.
    rows : _FloatRows of shape (n_rows, len(used))
        The used columns, NaN for missing.
    types : _Types
        All continuous; integer columns marked.
    observed : ndarray of shape (len(used),)
        Each used column's number of observed (not NaN) cells.
    """

    def __init__(self, path, sep, identity, header, used, rows, types, observed):
        self.path, self.sep, self._identity = path, sep, identity
        self.header, self.used, self.rows = header, used, rows
        self.types, self.observed = types, observed
        self._bounds = None

    @classmethod
    def read(cls, path, sep, columns, exclude, na_values, directory):
        """The first pass; None if a used column holds a cell that is not a number.

        (Such a table is read in memory, where the column is nominal, or an
        error.) Raises :class:`CLIError` with :func:`read_csv`'s,
        :func:`select_columns`'s and :func:`to_table`'s messages, in their order.
        """
        with _open_csv(path) as f:
            identity = _identity(f)
            records = _records(f, path, sep)
            header = next(records)
            try:
                used = select_columns(header, columns, path)
                used = exclude_columns(header, used, exclude, path)
            except CLIError:
                for _ in records:  # read_csv's errors come first
                    pass
                raise
            rows = _FloatRows(len(used), directory)
            try:
                scanned = _scan_numbers(records, used, frozenset(na_values), rows)
            except BaseException:
                rows.close()
                raise
        if scanned is None:
            rows.close()
            return None
        integer, observed, infinite = scanned
        if infinite is not None:
            rows.close()
            i, j = infinite
            raise CLIError(
                f"Column {header[used[j]]!r} holds an infinite value on line "
                f"{i + 2}; only finite numbers and missing-value markers are accepted."
            )
        n = len(used)
        types = _Types(np.zeros(n, dtype=bool), {}, integer)
        return cls(path, sep, identity, header, used, rows, types, observed)

    def select(self, keep, block_rows=None):
        """The columns where ``keep`` is True, as the fit takes them.

        In memory (an ndarray) below two blocks of ``block_rows`` rows (None:
        the estimators' default), else a :class:`_FloatRows` read block by block.
        """
        rows = self.rows.select(keep)
        block_rows = block_rows or EMImputer._block_rows
        n_rows = len(rows)
        if n_rows < 2 * block_rows:
            self._bounds = [(0, n_rows)]
            return rows[:]
        self._bounds = _block_bounds(n_rows, block_rows)
        return rows

    def output_chunks(self, X, edit):
        """The second pass: yield the file's rows, edited, in lists of rows.

        Parameters
        ----------
        X : ndarray or _FloatRows
            What :meth:`select` returned (what the fit took).
        edit : callable
            ``edit(X_block, start)`` for each block of rows of ``X`` (one
            block when ``X`` is in memory) returns ``apply(i, row)``, the
            ``i``-th row of the block as written.
        """
        with _open_csv(self.path) as f:
            if _identity(f) != self._identity:
                raise self._changed()
            records = _records(f, self.path, self.sep)
            next(records)
            chunk, chunk_rows = [], max(1, _BUFFER_CELLS // len(self.header))
            for lo, hi in self._bounds:
                apply = edit(X[lo:hi], lo)
                for i in range(hi - lo):
                    row = next(records, None)
                    if row is None:
                        raise self._changed()
                    chunk.append(apply(i, row))
                    if len(chunk) == chunk_rows:
                        yield chunk
                        chunk = []
            if next(records, None) is not None:
                raise self._changed()
            if chunk:
                yield chunk

    def _changed(self):
        return CLIError(
            f"{self.path!r} changed while it was being read; run the command again."
        )

    def close(self):
        self.rows.close()


def _scan_numbers(records, used, markers, rows):
    """Append the used cells of ``records`` to ``rows`` as float64 (NaN: missing).

    Returns
    -------
    integer : ndarray of bool
        Columns whose present cells are all integers (and at least one).
    observed : ndarray of int
        Each column's number of not-NaN cells.
    infinite : (int, int) or None
        The row and column of the first infinite value (rows in order, then
        columns).
    None
        Instead, as soon as a used cell is neither a marker nor a number.
    """
    n = len(used)
    buffer = []
    buffer_rows = max(1, _BUFFER_CELLS // n)
    observed = np.zeros(n, dtype=np.int64)
    maybe_integer = list(range(n))  # columns whose present cells are integers
    infinite = None
    nan = math.nan
    for record in records:
        cells = [record[c].strip() for c in used]
        try:
            buffer.append([nan if c in markers else float(c) for c in cells])
        except ValueError:
            return None
        if maybe_integer:
            maybe_integer = [
                j
                for j in maybe_integer
                if cells[j] in markers or _INTEGER.match(cells[j])
            ]
        if len(buffer) == buffer_rows:
            infinite = _flush(buffer, rows, observed, infinite)
            buffer = []
    infinite = _flush(buffer, rows, observed, infinite)
    integer = np.zeros(n, dtype=bool)
    integer[maybe_integer] = True
    return integer & (observed > 0), observed, infinite


def _flush(buffer, rows, observed, infinite):
    """Append ``buffer`` (lists of floats) to ``rows``; count; find infinity."""
    if not buffer:
        return infinite
    block = np.array(buffer, dtype=np.float64)
    if infinite is None:
        where = np.argwhere(np.isinf(block))
        if len(where):
            infinite = len(rows) + int(where[0, 0]), int(where[0, 1])
    observed += (~np.isnan(block)).sum(axis=0)
    rows.append(block)
    return infinite


def _imputed_cells(imputer, used, integer):
    """The edit of ``impute``: each missing used cell takes its imputation."""

    def edit(X_block, start):
        missing = np.isnan(X_block)
        holes = missing.any(axis=1)
        if holes.any():
            X_filled = imputer.transform(X_block)

        def apply(i, row):
            if holes[i]:
                for j in np.flatnonzero(missing[i]):
                    row[used[j]] = _cell_text(X_filled[i, j], integer[j])
            return row

        return apply

    return edit


def _appended_labels(clusterer, probabilities):
    """The edit of ``cluster``: each row's label (and probabilities) appended."""
    fitted_labels = getattr(clusterer, "labels_", None)  # an in-memory fit's

    def edit(X_block, start):
        if fitted_labels is None:
            labels = clusterer.predict(X_block)
        else:
            labels = fitted_labels[start : start + len(X_block)]
        proba = clusterer.predict_proba(X_block) if probabilities else None

        def apply(i, row):
            row.append(str(labels[i]))
            if proba is not None:
                row.extend(repr(float(p)) for p in proba[i])
            return row

        return apply

    return edit


def write_csv(path, header, rows, *, sep=",", stdout=None):
    """Write the header and rows to ``path`` (stdout if None or '-').

    A file is written atomically: to a temporary file in its directory (with the
    permissions of the file it replaces, or the umask's for a new one), flushed
    to disk, then renamed over ``path``; on any failure the temporary file is
    removed and ``path`` is left as it was. A symlink is followed (its target is
    replaced); a device or FIFO (``/dev/null``) is written directly.
    """
    _write_table(path, header, [rows], sep=sep, stdout=stdout)


def _write_table(path, header, chunks, *, sep=",", stdout=None):
    """:func:`write_csv` of rows that come as an iterable of lists of rows.

    Each list is written as it comes, so the rows need not all be in memory
    (:meth:`_NumericTable.output_chunks`); an error raised while making them
    (a :class:`CLIError`) leaves ``path`` as it was, as a failed write does.
    """
    if path is None or path == "-":
        _write_rows(stdout or sys.stdout, header, chunks, sep)
        return
    tmp = None
    try:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            with open(path, "w", newline="", encoding="utf-8") as f:
                _write_rows(f, header, chunks, sep)
            return
        target = os.path.realpath(path)
        if st is not None and not os.access(target, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        fd, tmp = _create_temp(target, None if st is None else stat.S_IMODE(st.st_mode))
        with open(fd, "w", newline="", encoding="utf-8") as f:
            _write_rows(f, header, chunks, sep)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise CLIError(f"Cannot write {path!r}: {exc.strerror or exc}.") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _write_rows(f, header, chunks, sep):
    writer = csv.writer(f, delimiter=sep, lineterminator="\n")
    writer.writerow(header)
    for rows in chunks:
        writer.writerows(rows)


def _create_temp(target, mode):
    """Create a new hidden file next to ``target``; return its descriptor and path.

    ``mode`` None: the permissions a new file gets (0o666 less the umask);
    otherwise exactly ``mode`` (those of the file being replaced).
    """
    directory, name = os.path.split(target)
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                os.chmod(tmp, mode)
            except OSError:
                os.close(fd)
                os.unlink(tmp)
                raise
        return fd, tmp


class _Progress:
    """Progress lines on stderr, only once the work has lasted ``delay`` seconds.

    ``update`` records the current step (printed at once if the delay has
    passed, else when it passes); ``done`` prints the final line with the time
    taken if anything was printed. ``delay=None`` prints nothing.
    """

    def __init__(self, stream, delay):
        self._stream = stream
        self._start = time.perf_counter()
        self._lock = threading.Lock()
        self._live = False
        self._message = None
        self._timer = None
        if delay is not None:
            self._timer = threading.Timer(delay, self._go_live)
            self._timer.daemon = True
            self._timer.start()

    def _print(self, message):
        seconds = time.perf_counter() - self._start
        print(f"{PROG}: [{seconds:5.1f}s] {message}", file=self._stream, flush=True)

    def _go_live(self):
        with self._lock:
            self._live = True
            if self._message is not None:
                self._print(self._message)

    def update(self, message, *, ongoing=True):
        message += " ..." if ongoing else ""
        with self._lock:
            self._message = message
            if self._live:
                self._print(message)

    def done(self, message):
        self.cancel()
        with self._lock:
            if self._live:
                self._print(message)

    def cancel(self):
        if self._timer is not None:
            self._timer.cancel()
