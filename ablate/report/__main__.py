"""python -m ablate.report runs/<name> [--out DIR]"""
import argparse
import sys

from . import ReportError, write_report


def main(argv=None) -> int:
    import search_spaces  # noqa: F401  (the spaces know the paper's numbers, as run_sweep.py registers them)
    parser = argparse.ArgumentParser(prog="python -m ablate.report", description=__doc__)
    parser.add_argument("run_dir", help="a sweep's run directory, e.g. runs/placement")
    parser.add_argument("--out", help="where to write the report (default: RUN_DIR/report)")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.run_dir, args.out)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
