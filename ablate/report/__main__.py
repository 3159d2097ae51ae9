"""python -m ablate.report runs/<name> [--out DIR] [--equivalence MARGIN]"""
import argparse
import sys

from . import ReportError, write_report


def main(argv=None) -> int:
    import search_spaces  # noqa: F401  (the spaces know the paper's numbers, as run_sweep.py registers them)
    parser = argparse.ArgumentParser(prog="python -m ablate.report", description=__doc__)
    parser.add_argument("run_dir", help="a sweep's run directory, e.g. runs/placement")
    parser.add_argument("--out", help="where to write the report (default: RUN_DIR/report)")
    parser.add_argument("--equivalence", type=float, help="the conclusions' equivalence margin, in the primary "
                        "metric's units (default: the run's report.equivalence, else 0.02)")
    args = parser.parse_args(argv)
    if args.equivalence is not None and not args.equivalence > 0:
        parser.error(f"--equivalence {args.equivalence}: the margin must be > 0, e.g. 0.02")
    try:
        path = write_report(args.run_dir, args.out, args.equivalence)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
