"""Command line: ``python -m em_sklearn demo`` (argument parsing only)."""

import argparse
import sys


def main(argv=None):
    """Parse the command line and run the chosen command.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments after the program name; ``sys.argv[1:]`` if None.

    Returns
    -------
    exit_code : int
        0 on success.
    """
    args = _build_parser().parse_args(argv)
    return args.func(args)


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


def _run_demo(args):
    from ._demo import demo  # imported here: only this command needs the datasets

    demo(seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
