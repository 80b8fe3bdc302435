"""The command line on big numeric CSV files: read, fitted and written in blocks.

A file whose used columns all hold numbers is read twice, one record at a
time, and fitted from a float64 copy in a temporary file (block by block from
two blocks of ``--block-rows`` on); stdin, ``--ordinal`` and text columns take
the in-memory path (``tests/test_cli.py`` covers both paths' behaviour).
"""

import csv
import errno
import io
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from em_sklearn import EMClusterer, EMImputer, _cli
from em_sklearn.__main__ import main


def _numeric_csv(path, n_rows, seed=0):
    """A CSV of two clusters: an id, a note (quoted commas), a decimal, an
    integer and a large column with holes marked '', NA and NaN, and a column
    with no observed value; returns the three numeric columns as read."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 3)) * [1.0, 20.0, 1000.0]
    X[: n_rows // 3] += [4.0, 60.0, 3000.0]
    texts = [[f"{a:.6g}", f"{b:.0f}", f"{c:.6g}"] for a, b, c in X]
    missing = rng.random(X.shape) < 0.2
    missing[missing.all(axis=1), 0] = False
    markers = ["", "NA", "NaN"]
    lines = ["id,note,x,count,big,empty"]
    for i, (row, holes) in enumerate(zip(texts, missing, strict=True)):
        cells = [
            markers[(i + j) % 3] if hole else text
            for j, (text, hole) in enumerate(zip(row, holes, strict=True))
        ]
        cells[0] = f" {cells[0]} " if i % 7 == 0 else cells[0]  # spaces: stripped
        lines.append(f'r{i},"a, b {i % 5}",' + ",".join(cells) + ",NA")
        if i == n_rows // 2:
            lines.append("")  # a blank line is skipped
    path.write_text("\n".join(lines) + "\n")
    return np.where(missing, np.nan, [[float(c) for c in row] for row in texts])


def _in_memory(monkeypatch, capsys, path, args):
    """Output and stderr of the in-memory path: the file given on stdin."""
    text = path.read_text()
    with monkeypatch.context() as m:
        m.setattr(sys, "stdin", io.StringIO(text))
        assert main([args[0], "-", *args[1:]]) == 0
    return capsys.readouterr()


def _streamed(monkeypatch, capsys, path, args):
    """Output and stderr of the streaming path (which never calls read_csv)."""

    def whole_file_read(*args, **kwargs):
        raise AssertionError("the streaming path read the whole file")

    with monkeypatch.context() as m:
        m.setattr(_cli, "read_csv", whole_file_read)
        assert main([args[0], str(path), *args[1:]]) == 0
    return capsys.readouterr()


@pytest.mark.parametrize(
    "args",
    [
        ("impute", "--exclude", "id,note", "-q"),
        ("impute", "--columns", "x,big", "--n-components", "2", "-q"),
        ("cluster", "--exclude", "id,note", "--n-components", "2", "--probabilities"),
        ("cluster", "--columns", "x,count,big", "--max-components", "3", "-q"),
    ],
    ids=["impute", "impute-columns", "cluster-probabilities", "cluster-auto"],
)
def test_streamed_output_equals_the_in_memory_output(
    tmp_path, monkeypatch, capsys, global_random_seed, args
):
    """Below two blocks, the streaming path fits the same rows in memory and
    writes the same bytes as the in-memory path, warnings included."""
    path = tmp_path / "t.csv"
    _numeric_csv(path, 300, seed=global_random_seed)
    expected = _in_memory(monkeypatch, capsys, path, args)
    done = _streamed(monkeypatch, capsys, path, args)
    assert done.out == expected.out
    assert done.err == expected.err
    if "--exclude" in args:
        assert "column 'empty' has no observed value" in done.err
    first = next(csv.reader(io.StringIO(done.out.splitlines()[1])))
    assert first[1] == "a, b 0"  # quoted cells pass through


@pytest.mark.parametrize("command", ["impute", "cluster"])
def test_blocks_fit_as_the_estimators_fit_a_memmap(
    tmp_path, monkeypatch, capsys, global_random_seed, command
):
    """From two blocks of --block-rows on, the file is fitted block by block: the
    output is the out-of-core fit's (a memmap of the same values and block
    size), imputed or labelled block by block; observed cells as read."""
    path = tmp_path / "t.csv"
    X = _numeric_csv(path, 1000, seed=global_random_seed)
    block_rows = 128
    X_map = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="w+", shape=X.shape)
    X_map[:] = X
    X_map.flush()
    Estimator = EMImputer if command == "impute" else EMClusterer
    est = Estimator(n_components=2, random_state=0)
    est._block_rows = block_rows
    args = (command, "--exclude", "id,note,empty", "--n-components", "2", "-q")
    done = _streamed(monkeypatch, capsys, path, (*args, "--block-rows", "128"))
    assert done.err == ""
    rows = list(csv.reader(io.StringIO(done.out)))[1:]
    assert len(rows) == len(X)
    source = [r for r in csv.reader(io.StringIO(path.read_text())) if r][1:]
    if command == "impute":
        expected = est.fit(X_map).transform(X_map)
        expected[:, 1] = np.rint(expected[:, 1])  # 'count' holds integers
        filled = [[float(c) for c in r[2:5]] for r in rows]
        assert_array_equal(filled, expected)
        observed = ~np.isnan(X)
        for row, original, seen in zip(rows, source, observed, strict=True):
            assert [c for c, s in zip(row[2:5], seen, strict=True) if s] == [
                c for c, s in zip(original[2:5], seen, strict=True) if s
            ]
    else:
        labels = est.fit_predict(X_map)
        assert_array_equal(np.array([r[-1] for r in rows], dtype=int), labels)
        assert [r[:-1] for r in rows] == source


def test_peak_memory_is_bounded_by_the_block_size(tmp_path):
    """Imputing an 11 MiB CSV in blocks of 1024 rows takes less than 4 MiB more
    resident memory than a warm-up run on a small file (measured: 0-1.2
    MiB; the whole file read as text took about 18 times its size)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("measured with ru_maxrss, in KiB on Linux (bytes on macOS)")
    rng = np.random.default_rng(0)
    big, small = tmp_path / "big.csv", tmp_path / "small.csv"
    for path, n_rows in ((big, 200_000), (small, 3000)):
        X = rng.normal(size=(n_rows, 8)) * np.logspace(-1, 3, 8)
        X[: n_rows // 3] += 3.0
        cells = np.char.mod("%.6g", X).astype(object)
        cells[rng.random(X.shape) < 0.2] = ""
        lines = [",".join(f"x{j}" for j in range(8)), *map(",".join, cells)]
        path.write_text("\n".join(lines) + "\n")
    file_mib = big.stat().st_size / 2**20
    allowed_mib = 4.0
    assert file_mib > 2 * allowed_mib
    script = textwrap.dedent(
        """
        import resource, sys
        from em_sklearn.__main__ import main

        def run(name):
            args = ["impute", name, "-o", "out.csv", "--block-rows", "1024", "-q"]
            assert main(args) == 0
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        before = run("small.csv")  # imports, buffers, first-call allocations
        print((run("big.csv") - before) / 1024)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    growth_mib = float(done.stdout)
    assert growth_mib < allowed_mib, f"{growth_mib:.1f} MiB for {file_mib:.1f} MB"
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 200_001
    assert all(all(rows[i]) for i in (1, 1000, 100_000, 200_000))  # holes filled
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "big.csv",
        "out.csv",
        "small.csv",
    ]


def test_errors_after_the_first_pass_leave_no_file(tmp_path, monkeypatch, capsys):
    """An infinite value found in the first pass, or a file changed between the
    two passes, is an error that leaves no output and no temporary file."""
    path = tmp_path / "t.csv"
    _numeric_csv(path, 400)
    with path.open("a") as f:
        f.write("r400,n,1,inf,2,\n")
    out = tmp_path / "out.csv"
    argv = ["impute", str(path), "-o", str(out), "--exclude", "id,note,empty", "-q"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "em-sklearn: error: Column 'count' holds an infinite value on line 402; only "
        "finite numbers and missing-value markers are accepted.\n"
    )
    _numeric_csv(path, 400)
    fit = _cli._fit

    def fit_then_append(estimator, X):
        with path.open("a") as f:
            f.write("r400,n,1,2,3,\n")
        return fit(estimator, X)

    monkeypatch.setattr(_cli, "_fit", fit_then_append)
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"em-sklearn: error: {str(path)!r} changed while it was being read; run the "
        "command again.\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


class _FullDisk:
    """A temporary file on a full disk: creating it works, writing fails."""

    def __init__(self, *args, **kwargs):
        pass

    def seek(self, *args):
        return 0

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        pass


def _no_temporary_file(*args, **kwargs):
    raise OSError(errno.EACCES, "Permission denied")


@pytest.mark.parametrize(
    "temporary_file, message",
    [
        (
            _no_temporary_file,
            "Cannot create a temporary file in {tmp!r}: Permission denied. Set "
            "TMPDIR to a writable directory.",
        ),
        (
            _FullDisk,
            "Cannot write a temporary file in {out!r}: No space left on device. It "
            "takes 8 bytes per used cell, in the output's directory (TMPDIR's when "
            "writing to standard output).",
        ),
    ],
    ids=["cannot-create", "disk-full"],
)
def test_temporary_file_errors(tmp_path, monkeypatch, capsys, temporary_file, message):
    """A temporary file that cannot be created (in the output's directory, then
    tempfile's) or written is one error line naming its directory."""
    path = tmp_path / "t.csv"
    _numeric_csv(path, 50)
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(tempfile, "TemporaryFile", temporary_file)
    out = tmp_path / "out" / "o.csv"
    argv = ["impute", str(path), "-o", str(out), "--exclude", "id,note", "-q"]
    assert main(argv) == 2
    expected = message.format(tmp=tempfile.gettempdir(), out=str(tmp_path / "out"))
    assert capsys.readouterr().err == f"em-sklearn: error: {expected}\n"
    assert list((tmp_path / "out").iterdir()) == []


def test_block_rows_must_be_a_positive_integer(capsys):
    """--block-rows takes a positive integer (a usage error otherwise)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["impute", "t.csv", "--block-rows", "0"])
    assert exit_info.value.code == 2
    assert (
        "--block-rows: expected a positive integer, got '0'" in capsys.readouterr().err
    )
