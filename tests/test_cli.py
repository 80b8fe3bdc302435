"""The command line end to end: ``em-sklearn impute|cluster`` on real CSV files."""

import csv
import errno
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from em_sklearn import EMClusterer, EMImputer
from em_sklearn.__main__ import main

NUMERIC = ["alcohol", "malic_acid", "ash"]


def _cli(*args, cwd, timeout=120, stdin=None, stdout=subprocess.PIPE):
    """Run ``python -m em_sklearn *args`` in ``cwd``; return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "em_sklearn", *map(str, args)],
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )


def _assert_one_error(done, message):
    """``done`` exited 2 with exactly ``em-sklearn: error: <message>`` on stderr."""
    assert re.fullmatch(re.escape(f"em-sklearn: error: {message}") + "\n", done.stderr)
    assert done.returncode == 2


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
    assert "Column 'a' holds numbers and text: line 3 holds '?'" in default.stderr


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
            {"t.csv": "id,a\n1,1\nx2,2\n"},
            ("cluster", "t.csv"),
            "Column 'id' holds numbers and text: line 3 holds 'x2'. Declare "
            "missing-value markers with --na-values, or leave the column out with "
            "--exclude.",
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
        (
            {"t.csv": "a,b,a\n1,2,3\n,4,5\n6,7,\n"},
            ("impute", "t.csv", "--columns", "a,b"),
            "Column 'a' appears 2 times in 't.csv'; --columns cannot tell the "
            "columns apart: give them distinct names.",
        ),
        *[
            (
                {"t.csv": "a,b\n1,2\n3,4\n"},
                ("impute", "t.csv", "--sep", sep),
                "Expected --sep to be one character other than a quote or a line "
                f"break ('\\t' for a tab) but got {sep!r}.",
            )
            for sep in ["", ",,", "\\t\\t", '"', "\n"]
        ],
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
        "duplicate-column",
        "sep-empty",
        "sep-two-chars",
        "sep-two-tabs",
        "sep-quote",
        "sep-newline",
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


DATA = "id,a,b\nr1,1,2\nr2,,4.5\nr3,3,NA\nr4,4,8\nr5,5,9.5\n"


def _output_paths(tmp_path):
    """Ways to name ``data.csv`` (in ``tmp_path``, the working directory) again."""
    (tmp_path / "link.csv").symlink_to("data.csv")
    os.link(tmp_path / "data.csv", tmp_path / "hard.csv")
    return {
        "same-name": "data.csv",
        "dot-slash": "./data.csv",
        "absolute": str(tmp_path / "data.csv"),
        "dot-dot": f"../{tmp_path.name}/data.csv",
        "symlink": "link.csv",
        "hard-link": "hard.csv",
    }


@pytest.mark.parametrize(
    "how", ["same-name", "dot-slash", "absolute", "dot-dot", "symlink", "hard-link"]
)
@pytest.mark.parametrize("command", ["impute", "cluster"])
def test_refuses_to_overwrite_the_input(tmp_path, how, command):
    """An output that is the input file, under any name or link, is refused."""
    (tmp_path / "data.csv").write_text(DATA)
    output = _output_paths(tmp_path)[how]
    done = _cli(command, "data.csv", "-o", output, "--columns", "a,b", cwd=tmp_path)
    _assert_one_error(
        done,
        f"The output ({output!r}) is the same file as the input ('data.csv'); "
        "refusing to write over the input. Write the output to another file.",
    )
    assert (tmp_path / "data.csv").read_text() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data.csv",
        "hard.csv",
        "link.csv",
    ]


def test_refuses_to_overwrite_the_input_through_std_streams(tmp_path):
    """Standard input or output redirected from or to the input file is refused."""
    data = tmp_path / "data.csv"
    data.write_text(DATA)
    with open(data) as stdin:
        done = _cli("impute", "-", "-o", "data.csv", cwd=tmp_path, stdin=stdin)
    _assert_one_error(
        done,
        "The output ('data.csv') is the same file as the input (standard input); "
        "refusing to write over the input. Write the output to another file.",
    )
    with open(data, "a") as stdout:  # em-sklearn impute data.csv >> data.csv
        done = _cli("impute", "data.csv", cwd=tmp_path, stdout=stdout)
    _assert_one_error(
        done,
        "The output (standard output) is the same file as the input ('data.csv'); "
        "refusing to write over the input. Write the output to another file.",
    )
    assert data.read_text() == DATA


@pytest.mark.parametrize(
    "args",
    [
        ("impute", "data.csv", "-o", "out.csv", "--n-components", "two"),
        ("impute", "data.csv", "-o", "out.csv", "--no-such-option"),
        ("impute", "data.csv", "-o", "out.csv", "--columns", "a,zz"),
        ("impute", "data.csv", "-o", "out.csv", "--columns", ""),
        ("impute", "data.csv", "-o", "out.csv", "--ordinal", "id"),  # text: no order
        ("cluster", "data.csv", "-o", "out.csv", "--columns", "a,b",
         "--n-components", "9"),
        ("impute", "data.csv", "-o", "data.csv", "--columns", "a,b"),
        ("impute", "data.csv", "-o", "./data.csv", "--columns", "a,b"),
        ("impute", "data.csv", "-o", "link.csv", "--columns", "a,b"),
        ("impute", "data.csv", "-o", "out.csv", "--columns", "a,b", "--sep", ""),
        ("impute", "data.csv", "-o", "out.csv", "--columns", "a,b", "--sep", "\\t"),
        ("impute", "data.csv", "-o", "out.csv", "--columns", "a,b", "--sep", ",,"),
        ("impute", "empty.csv", "-o", "out.csv"),
        ("impute", "dup.csv", "-o", "out.csv", "--columns", "a"),
        ("cluster", "data.csv", "-o", "out.csv", "--columns", "a",
         "--label-column", "id"),
    ],
    ids=[
        "bad-option-value",
        "unknown-option",
        "unknown-column",
        "empty-columns",
        "ordinal-text-without-order",
        "too-many-components",
        "overwrite-same-name",
        "overwrite-dot-slash",
        "overwrite-symlink",
        "sep-empty",
        "sep-backslash-t-on-comma-file",
        "sep-two-chars",
        "empty-file",
        "duplicate-column",
        "label-clash",
    ],
)  # fmt: skip
def test_failed_run_leaves_input_and_output_unchanged(tmp_path, args):
    """A failed or refused run exits 2 and leaves the input and output bytes alone."""
    files = {
        "data.csv": DATA.encode(),
        "empty.csv": b"",
        "dup.csv": b"a,a\r\n1,2\r\n,4\r\n5,\r\n",  # CRLF: any rewrite would show
        "out.csv": b"previous output\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "link.csv").symlink_to("data.csv")
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("em-sklearn")
    for name, content in files.items():
        assert (tmp_path / name).read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*files, "link.csv"])


@pytest.mark.parametrize(
    "error, exit_code",
    [
        (OSError(errno.ENOSPC, "No space left on device"), 2),
        (KeyboardInterrupt(), None),
    ],
    ids=["disk-full", "interrupted"],
)
@pytest.mark.parametrize("existing", [True, False], ids=["existing", "new"])
def test_output_is_written_atomically(
    tmp_path, monkeypatch, capsys, error, exit_code, existing
):
    """A write that fails midway leaves no partial output and an old one untouched."""
    (tmp_path / "data.csv").write_text(DATA)
    if existing:
        (tmp_path / "out.csv").write_text("previous output\n")
    real_writer = csv.writer

    class FailingWriter:
        def __init__(self, f, **kwargs):
            self._f, self._w = f, real_writer(f, **kwargs)

        def writerow(self, row):
            self._w.writerow(row)

        def writerows(self, rows):
            self._w.writerow(rows[0])
            self._f.flush()  # the half-written table reaches the file
            raise error

    monkeypatch.setattr(csv, "writer", FailingWriter)
    monkeypatch.chdir(tmp_path)
    argv = ["impute", "data.csv", "-o", "out.csv", "--columns", "a,b", "-q"]
    if exit_code is None:
        with pytest.raises(KeyboardInterrupt):
            main(argv)
    else:
        assert main(argv) == exit_code
        assert capsys.readouterr().err == (
            "em-sklearn: error: Cannot write 'out.csv': No space left on device.\n"
        )
    expected = {"data.csv": DATA}
    if existing:
        expected["out.csv"] = "previous output\n"
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == expected


@pytest.mark.parametrize("existing_mode", [None, 0o640])
def test_output_replaces_the_file_with_its_permissions(tmp_path, existing_mode):
    """A new output gets the umask's permissions; a replaced one keeps its own."""
    (tmp_path / "data.csv").write_text(DATA)
    out = tmp_path / "out.csv"
    if existing_mode is None:
        (tmp_path / "ref").write_text("")  # what a plain open(..., "w") gives
        expected_mode = (tmp_path / "ref").stat().st_mode
        (tmp_path / "ref").unlink()
    else:
        out.write_text("previous output\n")
        out.chmod(existing_mode)
        expected_mode = out.stat().st_mode
    done = _cli("impute", "data.csv", "-o", "out.csv", "--columns", "a,b", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode == expected_mode
    assert _read(out)[0] == ["id", "a", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out.csv"]


def test_output_symlink_is_written_through(tmp_path):
    """An output that is a symlink to another file writes that file."""
    (tmp_path / "data.csv").write_text(DATA)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "target.csv").write_text("previous output\n")
    (tmp_path / "out.csv").symlink_to("sub/target.csv")
    done = _cli("impute", "data.csv", "-o", "out.csv", "--columns", "a,b", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.csv").is_symlink()
    assert _read(tmp_path / "sub" / "target.csv")[0] == ["id", "a", "b"]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["target.csv"]


@pytest.mark.skipif(not os.path.exists("/dev/stdout"), reason="no /dev/stdout")
def test_output_to_a_device_is_written_directly(tmp_path):
    """``-o /dev/stdout`` or ``-o /dev/null`` (not regular files) are written as is."""
    (tmp_path / "data.csv").write_text(DATA)
    args = ("impute", "data.csv", "--columns", "a,b", "-o")
    to_stdout = _cli(*args, "/dev/stdout", cwd=tmp_path)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == _cli(*args[:-1], cwd=tmp_path).stdout
    assert to_stdout.stdout.startswith("id,a,b\n")
    to_null = _cli(*args, "/dev/null", cwd=tmp_path)
    assert to_null.returncode == 0, to_null.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


@pytest.mark.parametrize("sep", ["\\t", "\t"], ids=["backslash-t", "tab"])
def test_sep_backslash_t_means_tab(tmp_path, sep):
    """``--sep '\\t'`` (backslash, t) reads and writes tab-separated files."""
    (tmp_path / "t.tsv").write_text(DATA.replace(",", "\t"))
    done = _cli("impute", "t.tsv", "--columns", "a,b", "--sep", sep, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert rows[0] == ["id", "a", "b"]
    assert all(len(r) == 3 for r in rows)
    assert np.isfinite(np.array([r[1:] for r in rows[1:]], dtype=float)).all()


def test_broken_pipe_exits_quietly(tmp_path):
    """A reader that stops early (``| head``) gets no traceback, and exit code 1."""
    n = 50_000  # about 1 MB: more than a pipe holds, so writing blocks
    lines = ["a,b"] + [f"{i},{'' if i % 7 == 0 else i % 13}" for i in range(n)]
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    with subprocess.Popen(
        [sys.executable, "-m", "em_sklearn", "impute", "big.csv", "-q"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout.readline() == b"a,b\n"
        proc.stdout.close()  # as `head -1` does
        stderr = proc.stderr.read().decode()
        exit_code = proc.wait(timeout=120)
    assert stderr == ""
    assert exit_code == 1


@pytest.mark.parametrize("columns", [None, "a"])
def test_duplicate_headers_without_columns_are_all_imputed(tmp_path, columns):
    """Two columns with one name are both used when --columns does not name them."""
    text = "a,b,b\n1,2,3\n,4.5,5\n3,,6.5\n4,8,\n5,9.5,10\n6,11,12.5\n"
    (tmp_path / "t.csv").write_text(text)
    args = () if columns is None else ("--columns", columns)
    done = _cli("impute", "t.csv", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(done.stdout.splitlines()))
    assert rows[0] == ["a", "b", "b"]
    cells = list(csv.reader(text.splitlines()[1:]))
    X = np.array([[float(c) if c else np.nan for c in r] for r in cells])
    used = [0, 1, 2] if columns is None else [0]
    filled = np.array(rows[1:], dtype=object)
    expected = EMImputer(random_state=0).fit_transform(X[:, used])
    expected[:, 0] = np.rint(expected[:, 0])  # 'a' holds integers: imputed as such
    assert_array_equal(filled[:, used].astype(float), expected)
    if columns is not None:  # the duplicates pass through, holes and all
        assert [r[1:] for r in rows[1:]] == [r[1:] for r in cells]


def _penguins_csv(path, seed=0, n=60):
    """A penguins-like CSV: text, integer and decimal columns with NA holes."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], n)
    bill = np.where(species == "Adelie", 38.0, 48.0) + rng.normal(size=n)
    rows = []
    for i in range(n):
        row = [
            species[i],
            rng.choice(["Biscoe", "Dream"]),
            f"{bill[i]:.1f}",
            str(int(3500 + 1000 * (species[i] == "Gentoo") + rng.integers(-200, 200))),
            rng.choice(["male", "female"]),
            str(rng.integers(1, 6)),
        ]
        rows.append([c if rng.random() > 0.1 else "NA" for c in row])
    header = ["species", "island", "bill_length_mm", "body_mass_g", "sex", "rating"]
    _write(path, header, rows)
    return header, rows


def test_impute_mixed_csv_without_flags(tmp_path):
    """Text columns are nominal; holes get levels or numbers; observed cells as read."""
    header, rows = _penguins_csv(tmp_path / "p.csv")
    done = _cli("impute", "p.csv", "-o", "out.csv", "--n-components", "2",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out_header, out = _read(tmp_path / "out.csv")
    assert out_header == header
    for row, filled in zip(rows, out, strict=True):
        for j, (cell, new) in enumerate(zip(row, filled, strict=True)):
            if cell != "NA":
                assert new == cell
            elif j in (0, 1, 4):
                assert new in {r[j] for r in rows if r[j] != "NA"}
            elif j in (3, 5):
                assert re.fullmatch(r"-?\d+", new), new  # integer columns
            else:
                assert math.isfinite(float(new))


def test_ordinal_and_exclude_flags(tmp_path):
    header, rows = _penguins_csv(tmp_path / "p.csv", seed=1)
    done = _cli("impute", "p.csv", "--ordinal", "rating", "--exclude", "island",
                "--n-components", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = list(csv.reader(done.stdout.splitlines()))[1:]
    assert [r[1] for r in out] == [r[1] for r in rows]  # excluded: passed through
    assert {r[5] for r in out} <= {"1", "2", "3", "4", "5"}
    done = _cli("cluster", "p.csv", "--ordinal", "sex=female,male",
                "--n-components", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = _cli("impute", "p.csv", "--ordinal", "sex=female", cwd=tmp_path)
    _assert_one_error(
        done,
        "Column 'sex' (--ordinal) holds ['male'], not among its levels ['female'].",
    )
