#!/usr/bin/env python
"""python run_sweep.py space=placement [key=value ...]   (python run_sweep.py --help lists every key)"""
import sys

import search_spaces  # noqa: F401  (registers the spaces with ablate.space.SPACES)


def usage() -> str:
    from ablate.config import describe_keys, experiment_names
    from ablate.space import SPACES
    spaces = "\n".join(f"  {name:10s} {space.summary}" for name, space in SPACES.items())
    experiments = ", ".join(experiment_names()) or "none"
    return (f"{__doc__}\nspaces:\n{spaces}\nexperiments (experiment=NAME): {experiments}\n"
            f"keys (key=value, defaults shown):\n{describe_keys()}")


def main(argv) -> int:
    if any(arg in ("-h", "--help", "help") for arg in argv):
        print(usage())
        return 0
    from ablate.config import ConfigError, load_config
    try:
        cfg = load_config(argv)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from ablate.sweep import SweepError, run_sweep
    try:
        run_dir = run_sweep(cfg, command=" ".join(["python", "run_sweep.py", *argv]))
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if run_dir is None:                                    # plan=true: the plan is printed, nothing ran
        return 0
    from ablate.report import write_report       # imported only now: plotting and statistics take 1.5 s
    report = write_report(run_dir)
    print((report.parent / "table.md").read_text())
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
