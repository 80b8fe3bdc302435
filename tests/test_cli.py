"""The command line end to end: ``em-sklearn impute|cluster`` on real CSV files."""

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from em_sklearn import EMClusterer, EMImputer

NUMERIC = ["alcohol", "malic_acid", "ash"]


def _cli(*args, cwd, timeout=120):
    """Run ``python -m em_sklearn *args`` in ``cwd``; return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "em_sklearn", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _read(path):
    with open(path, newline="") as f:
        records = list(csv.reader(f))
    return records[0], records[1:]


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _blobs(seed, n_per_blob=40):
    """Three separated 3-D blobs, their labels, and a mask of ~20% holes."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 4.0], [0.0, 8.0, -4.0]])
    X = np.vstack([c + rng.normal(size=(n_per_blob, 3)) for c in centers])
    X = np.round(X, 3)
    missing = rng.random(X.shape) < 0.2
    missing[missing.all(axis=1), 0] = False
    return X, missing


@pytest.fixture
def table(tmp_path, global_random_seed):
    """A CSV file with an id, three numeric columns with holes and a text column.

    The holes use the three default markers: an empty cell, NA and NaN.
    """
    X, missing = _blobs(global_random_seed)
    markers = ["", "NA", "NaN"]
    header = ["wine_id", *NUMERIC, "region"]
    rows = []
    for i, (row, holes) in enumerate(zip(X, missing, strict=True)):
        cells = [
            markers[(i + j) % 3] if h else f"{v:g}"
            for j, (v, h) in enumerate(zip(row, holes, strict=True))
        ]
        rows.append([f"w{i:03d}", *cells, ["north", "south, coast", "east"][i % 3]])
    path = tmp_path / "wines.csv"
    _write(path, header, rows)
    return path, header, rows, np.where(missing, np.nan, X)


def test_impute_fills_holes_and_passes_other_cells_through(table, tmp_path):
    """``impute`` fills each hole with EMImputer's value and copies every other cell."""
    path, header, rows, X = table
    out = tmp_path / "out.csv"
    done = _cli("impute", path, "-o", out, "--columns", ",".join(NUMERIC), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # a fast fit prints no progress line
    out_header, out_rows = _read(out)
    assert out_header == header
    assert len(out_rows) == len(rows)
    missing = np.isnan(X)
    for i, (row, out_row) in enumerate(zip(rows, out_rows, strict=True)):
        for j, (cell, out_cell) in enumerate(zip(row, out_row, strict=True)):
            if not (1 <= j <= 3 and missing[i, j - 1]):
                assert out_cell == cell  # the text itself, not only the number
    filled = np.array([[float(c) for c in r[1:4]] for r in out_rows])
    expected = EMImputer(random_state=0).fit_transform(X)
    # repr(float) round-trips, so the file holds the imputations exactly.
    assert_array_equal(filled, expected)


def test_cluster_appends_labels_and_probabilities(table, tmp_path):
    """``cluster --probabilities`` appends EMClusterer's labels and responsibilities."""
    path, header, rows, X = table
    out = tmp_path / "clusters.csv"
    done = _cli(
        "cluster",
        path,
        "-o",
        out,
        "--columns",
        ",".join(NUMERIC),
        "--n-components",
        3,
        "--probabilities",
        "--covariance-type",
        "diag",
        "--random-state",
        7,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out_header, out_rows = _read(out)
    assert out_header == header + [
        "cluster",
        "cluster_proba_0",
        "cluster_proba_1",
        "cluster_proba_2",
    ]
    assert [r[: len(header)] for r in out_rows] == rows
    labels = np.array([int(r[len(header)]) for r in out_rows])
    proba = np.array([[float(c) for c in r[len(header) + 1 :]] for r in out_rows])
    est = EMClusterer(n_components=3, covariance_type="diag", random_state=7)
    assert_array_equal(labels, est.fit_predict(X))
    assert_array_equal(proba, est.predict_proba(X))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_cluster_auto_chooses_by_bic(table, tmp_path):
    """``--n-components auto`` picks the lowest-BIC count in 1..--max-components."""
    path, _, _, X = table
    done = _cli(
        "cluster",
        path,
        "--columns",
        ",".join(NUMERIC),
        "--max-components",
        5,
        "--progress-after",
        0,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    bics = [
        EMClusterer(n_components=k, random_state=0).fit(X).bic(X) for k in range(1, 6)
    ]
    best = int(np.argmin(bics)) + 1
    assert f"chose {best}" in done.stderr
    header, out_rows = (
        next(csv.reader([done.stdout.splitlines()[0]])),
        [r for r in csv.reader(done.stdout.splitlines()[1:])],
    )
    assert header[-1] == "cluster"
    assert len({r[-1] for r in out_rows}) == best
    assert best == 3  # three separated blobs


def test_progress_lines_on_stderr(table, tmp_path):
    """With --progress-after 0 the fit reports progress on stderr; -q silences it."""
    path = table[0]
    args = ("impute", path, "--columns", ",".join(NUMERIC), "-o", tmp_path / "o.csv")
    done = _cli(*args, "--progress-after", 0, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("em-sklearn: [")
    assert "fitting EMImputer(random_state=0) on 120 rows x 3 columns ..." in lines[0]
    assert "done: EMImputer(random_state=0)" in lines[-1]
    quiet = _cli(*args, "--progress-after", 0, "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_custom_na_values_and_stdout(tmp_path):
    """--na-values replaces the markers, and without -o the table goes to stdout."""
    _write(
        tmp_path / "t.csv",
        ["a", "b"],
        [["1", "2"], ["?", "4.5"], ["3", "-999"], ["4", "8"], ["5", "9.5"]],
    )
    done = _cli("impute", "t.csv", "--na-values", "?,-999", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(done.stdout.splitlines()))
    assert rows[0] == ["a", "b"]
    values = np.array(rows[1:], dtype=float)
    assert np.isfinite(values).all()
    assert rows[1] == ["1", "2"] and rows[4] == ["4", "8"]
    # A marker not declared is an error: the default markers do not include '?'.
    default = _cli("impute", "t.csv", cwd=tmp_path)
    assert default.returncode == 2
    assert "Column 'a' is not numeric: line 3 holds '?'" in default.stderr


def test_all_missing_column_is_left_alone(tmp_path):
    """A used column with no observed value is kept as it is, with a warning."""
    _write(
        tmp_path / "t.csv",
        ["a", "b", "c"],
        [["1", "", "2"], ["2", "NA", ""], ["3", "", "6.5"], ["4", "", "8"]],
    )
    done = _cli("impute", "t.csv", "-o", "o.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "em-sklearn: warning: column 'b' has no observed value; it is left as it "
        "is and not used.\n"
    )
    _, rows = _read(tmp_path / "o.csv")
    assert [r[1] for r in rows] == ["", "NA", "", ""]
    assert math.isfinite(float(rows[1][2]))


@pytest.mark.parametrize(
    "files, args, message",
    [
        ({}, ("impute", "missing.csv"), "No such file: 'missing.csv'."),
        (
            {"t.csv": "id,a\nx1,1\nx2,2\n"},
            ("cluster", "t.csv"),
            "Column 'id' is not numeric: line 2 holds 'x1'. Choose the numeric "
            "columns with --columns",
        ),
        (
            {"t.csv": "a,b\n"},
            ("impute", "t.csv"),
            "'t.csv' has a header but no data rows.",
        ),
        ({"t.csv": ""}, ("impute", "t.csv"), "'t.csv' is empty"),
        (
            {"t.csv": "a,b\n1,2\n3\n"},
            ("impute", "t.csv"),
            "Expected 2 fields on line 3 of 't.csv' (as in the header) but got 1.",
        ),
        (
            {"t.csv": "a,b\n1,2\n3,4\n"},
            ("impute", "t.csv", "--columns", "a,z"),
            "Column 'z' is not in 't.csv'; its columns are: a, b.",
        ),
        (
            {"t.csv": "a,cluster\n1,2\n3,4\n"},
            ("cluster", "t.csv", "--columns", "a", "--n-components", "1"),
            "Column 'cluster' is already in t.csv; choose another name",
        ),
        (
            {"t.csv": "a,b\n1,2\n3,4\n"},
            ("cluster", "t.csv", "--n-components", "3"),
            "Expected at most as many components as rows but got --n-components 3",
        ),
    ],
    ids=[
        "missing-file",
        "non-numeric",
        "header-only",
        "empty-file",
        "ragged",
        "unknown-column",
        "label-clash",
        "too-many-components",
    ],
)
def test_user_errors_one_line_exit_2(tmp_path, files, args, message):
    """Each user error prints one ``em-sklearn: error:`` line on stderr and exits 2."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = _cli(*args, "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("em-sklearn: error: ")
    assert message in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "out.csv").exists()


def test_bad_option_value_is_a_usage_error(tmp_path):
    """A malformed --n-components is rejected by the parser with exit code 2."""
    done = _cli("impute", "t.csv", "--n-components", "two", cwd=tmp_path)
    assert done.returncode == 2
    assert "expected a positive integer or 'auto', got 'two'" in done.stderr


def test_cli_runs_without_pandas(tmp_path):
    """The command line reads and writes CSV without pandas (it is not a dependency)."""
    _write(
        tmp_path / "t.csv", ["a", "b"], [["1", "2"], ["", "4"], ["3", "6"], ["4", ""]]
    )
    code = """
import sys

class BlockPandas:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pandas":
            raise ImportError("pandas is blocked by the test")

sys.meta_path.insert(0, BlockPandas())
from em_sklearn.__main__ import main
code = main(["impute", "t.csv", "-o", "o.csv"])
assert "pandas" not in sys.modules
sys.exit(code)
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    _, rows = _read(tmp_path / "o.csv")
    assert np.isfinite(np.array(rows, dtype=float)).all()


def test_console_script_is_installed():
    """The ``em-sklearn`` console script next to the interpreter runs ``--help``."""
    script = Path(sys.executable).with_name("em-sklearn")
    if not script.exists():
        pytest.skip("the em-sklearn console script is not installed next to python")
    done = subprocess.run(
        [str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    for command in ("impute", "cluster", "demo"):
        assert command in done.stdout


def test_impute_auto_uses_the_bic_choice(table, tmp_path):
    """``impute --n-components auto`` imputes with the BIC-chosen mixture."""
    path, _, _, X = table
    out = tmp_path / "out.csv"
    done = _cli(
        "impute", path, "-o", out, "--columns", ",".join(NUMERIC),
        "--n-components", "auto", "--max-components", 4, "--progress-after", 0,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    bics = [
        EMClusterer(n_components=k, random_state=0).fit(X).bic(X) for k in range(1, 5)
    ]
    best = int(np.argmin(bics)) + 1
    assert f"chose {best}" in done.stderr
    _, out_rows = _read(out)
    filled = np.array([[float(c) for c in r[1:4]] for r in out_rows])
    expected = EMImputer(n_components=best, random_state=0).fit_transform(X)
    assert_array_equal(filled, expected)


def test_prior_option_fits_the_map_estimate(table, tmp_path):
    """``--prior default`` gives EMImputer(prior='default')'s imputations."""
    path, header, rows, X = table
    out = tmp_path / "out.csv"
    args = ("impute", path, "-o", out, "--columns", ",".join(NUMERIC))
    done = _cli(*args, "--prior", "default", "--n-components", 2, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    filled = np.array([[float(c) for c in r[1:4]] for r in _read(out)[1]])
    expected = EMImputer(2, prior="default", random_state=0).fit_transform(X)
    assert_array_equal(filled, expected)

