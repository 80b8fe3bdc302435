"""Command line: ``em-sklearn`` / ``python -m em_sklearn`` (argument parsing only).

The commands' work is done in ``em_sklearn._cli`` (impute, cluster) and
``em_sklearn._demo`` (demo).
"""

import argparse
import os
import sys

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def main(argv=None):
    """Parse the command line and run the chosen command.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments after the program name; ``sys.argv[1:]`` if None.

    Returns
    -------
    exit_code : int
        0 on success, 2 for a usage or input error, 1 when standard output was
        closed before the table was written (``em-sklearn ... | head``).
    """
    args = _build_parser().parse_args(argv)
    try:
        exit_code = args.func(args)
        sys.stdout.flush()  # a broken pipe shows here, not at interpreter exit
    except BrokenPipeError:
        # The reader has gone: no traceback. As the Python docs advise
        # (library/signal.html, "Note on SIGPIPE"), point stdout at devnull so
        # that the flush at exit does not fail again, and exit 1.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return exit_code


def _n_components(text):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'auto', got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'auto', got {text!r}"
        )
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _na_values(text):
    return tuple(marker.strip() for marker in text.split(","))


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="em-sklearn",
        description=(
            "EM for scikit-learn users whose data has missing values: "
            "EMImputer and EMClusterer."
        ),
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )

    impute = commands.add_parser(
        "impute",
        help="fill the missing entries of a CSV file (EMImputer)",
        description=(
            "Fill each missing entry of the used columns with its conditional "
            "expectation given the row's observed entries, under a Gaussian "
            "mixture fitted by EM (EMImputer). Other columns, and observed "
            "entries, are written back exactly as read."
        ),
    )
    cluster = commands.add_parser(
        "cluster",
        help="cluster the rows of a CSV file with missing entries (EMClusterer)",
        description=(
            "Fit a Gaussian mixture by EM on the observed entries of the used "
            "columns (EMClusterer) and append each row's component label "
            "(and, with --probabilities, the component probabilities)."
        ),
    )
    for sub, n_components in ((impute, 1), (cluster, "auto")):
        _add_table_options(sub)
        sub.set_defaults(func=_run_table_command, n_components=n_components)
    cluster.add_argument(
        "--probabilities",
        action="store_true",
        help="also append one probability column per component",
    )
    cluster.add_argument(
        "--label-column",
        default="cluster",
        metavar="NAME",
        help="name of the label column (default: cluster); the probability "
        "columns are NAME_proba_0, NAME_proba_1, ...",
    )

    demo = commands.add_parser(
        "demo",
        help="impute and cluster scikit-learn's wine data with 20%% of it removed",
        description=(
            "Remove 20%% of the entries of scikit-learn's wine data completely at "
            "random, then compare EMImputer with SimpleImputer, KNNImputer and "
            "IterativeImputer (RMSE on the removed entries) and EMClusterer with "
            "GaussianMixture on mean-filled data (adjusted Rand index)."
        ),
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the mask and of every estimator (default: 0)",
    )
    demo.set_defaults(func=_run_demo)
    return parser


def _add_table_options(sub):
    sub.add_argument("input", metavar="IN.csv", help="input CSV file ('-' for stdin)")
    sub.add_argument(
        "-o",
        "--output",
        metavar="OUT.csv",
        help="output CSV file (default: standard output)",
    )
    sub.add_argument(
        "--columns",
        metavar="A,B,...",
        help="comma-separated names of the columns to use (default: all); the "
        "other columns pass through untouched",
    )
    sub.add_argument(
        "--exclude",
        metavar="A,B,...",
        help="comma-separated names of columns not to use (they pass through "
        "untouched)",
    )
    sub.add_argument(
        "--ordinal",
        action="append",
        metavar="NAME[=L1,L2,...]",
        help="declare a column ordinal (repeatable): its levels in numeric order "
        "for a numeric column, or in the order given; without this, columns of "
        "numbers are continuous and columns of text nominal",
    )
    sub.add_argument(
        "--na-values",
        type=_na_values,
        default=("", "NA", "NaN"),
        metavar="M1,M2,...",
        help="comma-separated cell values that mean 'missing' (default: ',NA,NaN', "
        "i.e. an empty cell, NA and NaN); an empty item is the empty cell",
    )
    sub.add_argument(
        "--n-components",
        type=_n_components,
        metavar="K|auto",
        help="number of mixture components, or 'auto' to choose it by BIC over "
        "1..--max-components (default: 1 for impute, auto for cluster)",
    )
    sub.add_argument(
        "--max-components",
        type=_positive_int,
        default=8,
        metavar="K",
        help="largest count tried by --n-components auto (default: 8)",
    )
    sub.add_argument(
        "--covariance-type",
        choices=_COVARIANCE_TYPES,
        default="full",
        help="covariance of the components (default: full)",
    )
    sub.add_argument(
        "--prior",
        choices=("none", "default"),
        default="none",
        help="'default': MAP estimation under Fraley & Raftery's conjugate prior, "
        "which keeps components from collapsing onto a few rows (default: none, "
        "maximum likelihood)",
    )
    sub.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="SEED",
        help="seed of the initialisation (default: 0)",
    )
    sub.add_argument(
        "--sep",
        default=",",
        metavar="CHAR",
        help="field delimiter, one character; '\\t' (backslash, t) is a tab "
        "(default: ',')",
    )
    sub.add_argument(
        "--progress-after",
        type=float,
        default=1.5,
        metavar="SECONDS",
        help="print progress lines on stderr once a fit has lasted this long "
        "(default: 1.5)",
    )
    sub.add_argument(
        "-q", "--quiet", action="store_true", help="print no progress lines"
    )
    sub.add_argument(
        "--block-rows",
        type=_positive_int,
        metavar="ROWS",
        help="rows per block when the used columns are all numeric: the file is "
        "read and written in blocks and fitted block by block from two blocks "
        "on, so memory grows with this, not with the file (default: 65536)",
    )


def _run_table_command(args):
    from ._cli import run  # imported here: `demo` and `--help` stay light

    options = vars(args).copy()
    command = options.pop("command")
    del options["func"]
    return run(command, options)


def _run_demo(args):
    from ._demo import demo  # imported here: only this command needs the datasets

    demo(seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
