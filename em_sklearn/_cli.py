"""The ``impute`` and ``cluster`` commands: read a CSV file, fit, write a CSV file.

CSV files are read and written with the standard library's :mod:`csv` module,
so the command line needs nothing beyond the package's own dependencies (no
pandas). Cells are kept as text: the columns that are not used, and the
observed entries of the used columns, are written back exactly as they were
read; only the missing entries are replaced (by the shortest decimal text
that round-trips the float64 imputation).

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
import csv
import errno
import os
import re
import secrets
import stat
import sys
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
    stdout,
    stderr,
):
    sep = delimiter(sep)
    _refuse_to_write_over_input(input, output, stdout)
    header, rows = read_csv(input, sep=sep)
    used = select_columns(header, columns, input)
    used = exclude_columns(header, used, exclude, input)
    X, types = to_table(header, rows, used, na_values, ordinal, input)
    empty = _missing(X).all(axis=0)
    for j in np.flatnonzero(empty):
        print(
            f"{PROG}: warning: column {header[used[j]]!r} has no observed value; "
            "it is left as it is and not used.",
            file=stderr,
        )
    if empty.all():
        raise CLIError("No used column has an observed value; there is nothing to fit.")
    used = [c for c, e in zip(used, empty, strict=True) if not e]
    X = X[:, ~empty]
    types = types.subset(~empty)
    if command == "cluster":
        new = [label_column]
        if probabilities:
            n_max = _max_k(n_components, max_components, X)
            new += [f"{label_column}_proba_{k}" for k in range(n_max)]
        clash = sorted(set(new) & set(header))
        if clash:
            raise CLIError(
                f"Column {clash[0]!r} is already in {input}; choose another name "
                "with --label-column."
            )

    progress = _Progress(stderr, delay=None if quiet else progress_after)
    try:
        params = {
            "covariance_type": covariance_type,
            "random_state": random_state,
            "prior": None if prior == "none" else prior,
            **types.params(),
        }
        k = _choose_n_components(
            X, n_components, max_components, params, progress, input
        )
        n_rows, n_cols = X.shape
        if command == "impute":
            estimator = EMImputer(n_components=k, **params)
            progress.update(
                f"fitting {estimator!r} on {n_rows} rows x {n_cols} columns"
            )
            X_filled = _fit(estimator, X).transform(X)
            out_header = header
            out_rows = _fill_rows(rows, used, X, X_filled, types.integer)
        else:
            estimator = EMClusterer(n_components=k, **params)
            progress.update(
                f"fitting {estimator!r} on {n_rows} rows x {n_cols} columns"
            )
            labels = _fit(estimator, X).labels_
            extra = [[str(label)] for label in labels]
            out_header = header + [label_column]
            if probabilities:
                proba = estimator.predict_proba(X)
                extra = [
                    e + [repr(float(p)) for p in row]
                    for e, row in zip(extra, proba, strict=True)
                ]
                out_header += [f"{label_column}_proba_{j}" for j in range(k)]
            out_rows = [row + e for row, e in zip(rows, extra, strict=True)]
        progress.done(
            f"done: {estimator!r}, {estimator.n_iter_} EM iterations"
            + ("" if estimator.converged_ else " (not converged)")
        )
    finally:
        progress.cancel()
    write_csv(output, out_header, out_rows, sep=sep, stdout=stdout)


def _max_k(n_components, max_components, X):
    return n_components if n_components != "auto" else min(max_components, len(X))


def _fit(estimator, X):
    try:
        return estimator.fit(X)
    except ValueError as exc:
        raise CLIError(" ".join(str(exc).split())) from exc


def _choose_n_components(X, n_components, max_components, params, progress, input):
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
        clusterer = _fit(EMClusterer(n_components=k, **params), X)
        bics[k] = clusterer.bic(X)
    best = min(bics, key=bics.get)
    progress.update(
        "BIC by n_components: "
        + ", ".join(f"{k}: {b:.1f}" for k, b in bics.items())
        + f"; chose {best}",
        ongoing=False,
    )
    return best


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
        value = X_filled[i, j]
        if isinstance(value, str):
            text = value
        elif integer[j]:
            text = str(int(np.rint(float(value))))
        else:
            text = repr(float(value))
        out[i][used[j]] = text
    return out


def write_csv(path, header, rows, *, sep=",", stdout=None):
    """Write the header and rows to ``path`` (stdout if None or '-').

    A file is written atomically: to a temporary file in its directory (with the
    permissions of the file it replaces, or the umask's for a new one), flushed
    to disk, then renamed over ``path``; on any failure the temporary file is
    removed and ``path`` is left as it was. A symlink is followed (its target is
    replaced); a device or FIFO (``/dev/null``) is written directly.
    """
    if path is None or path == "-":
        _write_rows(stdout or sys.stdout, header, rows, sep)
        return
    tmp = None
    try:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            with open(path, "w", newline="", encoding="utf-8") as f:
                _write_rows(f, header, rows, sep)
            return
        target = os.path.realpath(path)
        if st is not None and not os.access(target, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        fd, tmp = _create_temp(target, None if st is None else stat.S_IMODE(st.st_mode))
        with open(fd, "w", newline="", encoding="utf-8") as f:
            _write_rows(f, header, rows, sep)
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


def _write_rows(f, header, rows, sep):
    writer = csv.writer(f, delimiter=sep, lineterminator="\n")
    writer.writerow(header)
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
