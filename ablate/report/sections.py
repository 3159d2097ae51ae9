"""The text of a sweep's report (report.md). report_markdown puts the sections in their order; the small ones are
written here (the header, the trackers, the Pareto fronts, the seed noise, the failed trials), the larger ones by
their own *_section.py, each from a result its statistics module computed."""
import math
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

from ..results import FAILED, PRIMARY, REJECTED_BUDGET, read_sessions
from ..space import SPACES, Space
from .attribution_section import attribution_markdown, attribution_of
from .audit_section import audit_markdown, audits_of
from .conclusions import Conclusions
from .conclusions_section import conclusions_markdown
from .decisive_section import decisiveness_markdown, decisiveness_of
from .pareto import OBJECTIVES, Front, fronts
from .reproduction import reproduction
from .speed import ThroughputNoise, throughput_noise
from .reproduction_section import reproduction_markdown, unregistered_markdown
from .stats import NoiseFloor, noise_floor
from .table import markdown_table, seed_scores

NO_SPACE = "?"             # a results table without a space column: nothing to look the paper up by

DESIGNS = (f"Sorted by the mean {PRIMARY.label}, best first (the primary metric; a late mean averages the evaluations "
           "over the last quarter of training). The interval is a t-interval over seeds, cut to the metric's range; "
           "MACs are multiply-adds per image with the selective scan counted (and without it); img/s is measured "
           "after training, the designs timed together in interleaved rounds: the median over the rounds with its "
           "95% interval (see the header for the device, and Throughput noise below).")


def report_markdown(run_dir: Path, frame, summary, out: Path, found: Optional[Conclusions] = None) -> str:
    """report.md of a run: ``summary`` its design table, ``out`` the report folder (the sections save their
    figures there), ``found`` the conclusions (None: fewer than two designs or no complete seed)."""
    space = str(frame["space"].dropna().iloc[0]) if frame["space"].notna().any() else NO_SPACE
    top = [conclusions_markdown(found, PRIMARY), "![the primary metric by budget](budgets.png)", ""] if found else []
    seeds = seed_scores(frame)
    sections = [header_markdown(run_dir, frame, space), *top, *tracking_markdown(run_dir), "## Designs", "",
                DESIGNS, "", markdown_table(summary), "", fronts_markdown(fronts(summary)),
                throughput_noise_markdown(throughput_noise(summary, frame)), noise_markdown(noise_floor(seeds)), *_paper_sections(space, frame, seeds),
                audit_markdown(audits_of(run_dir, frame, found), out), attribution_markdown(attribution_of(frame), out),
                problems_markdown(frame), *figures_markdown()]
    return "\n".join(sections)


def _paper_sections(space: str, frame, seeds: dict) -> List[str]:
    """The decisiveness section (with the paper's pairs where the space has the paper's numbers), then the
    comparison with the paper: the ranks, or why there are none when the space is not registered."""
    known = registered_space(space)
    paper = known.paper_top1 if known else None
    sections = [decisiveness_markdown(decisiveness_of(frame, paper))]
    if paper:
        sections.append(reproduction_markdown(reproduction(seeds, paper, known.paper_table)))
    elif known is None and space != NO_SPACE:
        sections.append(unregistered_markdown(space))
    return sections


def registered_space(space: str) -> Optional[Space]:
    """The run's space as registered in this process. None, with a warning, when it is not: the paper's numbers
    live in the module that registers the space (search_spaces), and a caller that did not import it once got a
    report without the comparison and without a word why (c2da876)."""
    known = SPACES.get(space)
    if known is None and space != NO_SPACE:
        warnings.warn(f"the run's space `{space}` is not registered, so its report has no comparison with the "
                      f"paper: import search_spaces (or the module that registers `{space}`) before write_report",
                      stacklevel=3)
    return known


def header_markdown(run_dir: Path, frame, space: str) -> str:
    """The title, the data and budget, the software and device, and each session of the sweep."""
    first = frame.iloc[0]
    lines = [f"# Report: {run_dir.name} (space `{space}`)", "",
             f"- Data: `{first['dataset']}` at {first['image_size']} px; up to "
             f"{int(frame['epochs_done'].max()) if frame['epochs_done'].notna().any() else 0} epochs; "
             f"{frame['seed'].nunique()} seeds; {len(frame)} trials; "
             f"{frame[['spec', 'knobs']].drop_duplicates().shape[0]} designs; {_data_seeds(frame)}.",
             f"- Trained with torch {first['torch_version']} on `{first['device']}` (host {first['host']}); "
             f"throughput on `{first['throughput_device']}`, {first['throughput_dtype']}, batch "
             f"{_int(first['throughput_batch'])}."]
    for session in read_sessions(run_dir):
        lines.append(f"- `{session['command']}`: started {session['started']}, {session['wall_s'] / 60:.1f} min "
                     f"wall on {session['cpus']} CPUs ({session['device']}), trials "
                     f"{session['trials_before']} -> {session['trials_after']}, code at commit "
                     f"{session.get('commit', 'unknown')}.")
    return "\n".join(lines + [""])


def tracking_markdown(run_dir: Path) -> List[str]:
    """Where the sweep's experiment trackers (tracking=...) put the trials' runs, as each session recorded it."""
    views = {}
    for session in read_sessions(run_dir):
        for name, view in (session.get("tracking") or {}).items():
            views.setdefault((name, view), None)
    if not views:
        return []
    return ["## Tracking", "", "Each trial's config and per-epoch metrics:", "",
            *(f"- {name}: {view}" for name, view in views), ""]


def _data_seeds(frame) -> str:
    """Whether the seeds shared one dataset or each had its own (designs of a seed always share theirs)."""
    pairs = frame[["seed", "data_seed"]].dropna().drop_duplicates()
    if pairs.empty:
        return "data seed not recorded"
    if pairs["data_seed"].nunique() == 1 and frame["seed"].nunique() > 1:
        return f"one dataset (data seed {int(pairs['data_seed'].iloc[0])}) shared by every seed"
    return "each seed its own dataset"


def _int(value):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def fronts_markdown(found: Sequence[Front]) -> str:
    lines = ["## Pareto fronts", "", f"Non-dominated designs (mean {PRIMARY.label} and the cost, each in its better "
             f"direction). Two designs whose intervals overlap on both axes (the {PRIMARY.label}'s 95% t-interval "
             "over seeds, and the throughput's 95% interval; MACs and params are exact) are tied: neither dominates "
             "the other, and a design that only designs tied with it dominate is listed as tied with the front "
             "rather than left off it.", ""]
    for front in found:
        ties = "; ".join(f"{tie.design} (with {', '.join(tie.front)})" for tie in front.ties)
        lines.append(f"- {PRIMARY.label} vs {front.objective}: {', '.join(front.designs) or 'none measured'}"
                     + (f"; tied with the front: {ties}" if ties else ""))
    return "\n".join(lines + [""])


def throughput_noise_markdown(noise: ThroughputNoise) -> str:
    """How wide the throughput intervals came out, and how far apart equal-cost designs did: the measured floor."""
    if not noise.timed:
        return ("## Throughput noise\n\nNo design has a throughput interval (a table from before the interleaved "
                "rounds: each design was timed once), so differences in img/s are not known to be real.\n")
    rounds = "-".join(str(r) for r in sorted({noise.rounds[0], noise.rounds[-1]})) if noise.rounds else "?"
    low, middle, high = noise.widths
    lines = ["## Throughput noise", "",
             f"{noise.timed} designs timed in {rounds} interleaved rounds (stopped: {', '.join(noise.stops) or '?'}); "
             f"each one's 95% interval is ±{low:.1%} to ±{high:.1%} of its median (median ±{middle:.1%}).", ""]
    if not noise.groups:
        lines.append("No two designs do the same work (equal params and MACs), so this run has no measured floor; "
                     "the intervals alone say which speeds it separates.")
    for group in noise.groups:
        verdict = ("their intervals overlap pairwise" if not group.separated else
                   "intervals separated for " + ", ".join(f"{a} / {b}" for a, b in group.separated))
        lines.append(f"- {len(group.designs)} designs with {group.params:,.0f} params and {group.macs / 1e6:.1f} "
                     f"MMACs ({', '.join(group.designs)}) came out at {group.slowest:.0f}-{group.fastest:.0f} img/s, "
                     f"{group.ratio:.2f}x apart: the floor below which img/s differences are noise here; {verdict}.")
    return "\n".join(lines + [""])


def noise_markdown(floor: NoiseFloor) -> str:
    if math.isnan(floor.pooled_std):
        return "## Seed noise\n\nOne seed per design: no estimate of the seed noise; run seeds>=2.\n"
    return (f"## Seed noise\n\nPooled std of the {PRIMARY.label} over seeds, across designs: "
            f"{floor.pooled_std:.3f}. At {floor.seeds} seeds a difference between two designs' means "
            f"below {floor.floor:.3f} is inside the noise (95%, normal approximation).\n")


def problems_markdown(frame) -> str:
    """The failed trials and those rejected for their budget, each with its error."""
    bad = frame[frame["status"].isin([FAILED, REJECTED_BUDGET])]
    if bad.empty:
        return "## Failed and rejected trials\n\nNone.\n"
    lines = ["## Failed and rejected trials", ""]
    for _, row in bad.iterrows():
        lines.append(f"- {row['status']}: `{row['spec']}` seed {row['seed']}: {row['error']}")
    return "\n".join(lines + [""])


def figures_markdown() -> List[str]:
    """The figures write_report saves (a front per objective of OBJECTIVES, the ribbons, the curves) and the
    tables."""
    lines = ["## Figures", ""]
    for name, cost in OBJECTIVES.items():
        lines += [f"![accuracy vs {cost.caption}](pareto_{name}.png)", ""]
    return lines + ["![spec ribbons](spec_ribbons.png)", "", "![training curves](training_curves.png)", "",
                    "Tables: `table.md`, `table.tex` (booktabs), `designs.csv` (per design), `results.csv` "
                    "(per trial), `conclusions.csv` (per pair of designs).", ""]
