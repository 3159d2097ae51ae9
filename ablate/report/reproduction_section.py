"""The report's "Proxy vs the paper" section: the proxy's ranking of the paper's designs next to the paper's own
(reproduction.py computes it), or why there is none."""
import math

from ..results import PRIMARY
from .reproduction import AGREES, DISAGREES, INSIDE_NOISE, Reproduction
from .table import fmt


def reproduction_markdown(result: Reproduction) -> str:
    names, pairs, floor = result.names, result.pairs, result.floor
    if len(names) < 2:
        return (f"## Proxy vs the paper\n\nFewer than two of the paper's designs ({result.table}) have "
                f"trained seeds in this run; no ranking to compare.\n")
    lines = [f"## Proxy vs the paper: {result.table}", "",
             f"| design | proxy {PRIMARY.label} (mean) | proxy rank | paper top-1 | paper rank |",
             "|---|---|---|---|---|"]
    for i, name in enumerate(names):
        lines.append(f"| {name} | {result.proxy[i]:.3f} | {result.proxy_rank[i]:g} | "
                     f"{result.paper[i]:.1f} | {result.paper_rank[i]:g} |")
    agreement, boot = result.agreement, result.bootstrap
    lines += ["", f"- Kendall tau-b = {fmt(agreement.kendall_tau, '.2f')} "
                  f"(bootstrap 95% interval over seeds [{fmt(boot.kendall_tau[0], '.2f')}, "
                  f"{fmt(boot.kendall_tau[1], '.2f')}]); Spearman rho = "
                  f"{fmt(agreement.spearman_rho, '.2f')} ([{fmt(boot.spearman_rho[0], '.2f')}, "
                  f"{fmt(boot.spearman_rho[1], '.2f')}]); {boot.undefined} of {boot.n_boot} "
                  f"resamples had all proxy means equal and no ranking.",
              f"- Seed-noise floor: pooled std over seeds {fmt(floor.pooled_std)}; two designs' means "
              f"(at {floor.seeds} seeds) must differ by more than {fmt(floor.floor)} to be outside it.",
              f"- {_best_sentence(result)}"]
    if result.missing:
        lines.append(f"- Not in this run (no trained seed): {', '.join(result.missing)}.")
    counts = {v: sum(p.verdict == v for p in pairs) for v in (AGREES, DISAGREES, INSIDE_NOISE)}
    lines += [f"- Of {len(pairs)} pairs, the proxy resolves {counts[AGREES]} in the paper's direction and "
              f"{counts[DISAGREES]} against it; inside the seed noise: {counts[INSIDE_NOISE]}.",
              "", "Pairwise (A is ranked above B by the paper; difference = proxy mean A - mean B"
              + ("" if PRIMARY.higher_is_better else f" of the negated {PRIMARY.label}, so that + means A is better")
              + ", 95% bootstrap interval over seeds, two-sided permutation p-value):", "",
              "| A | B | paper A - B | proxy A - B | interval | p | verdict | seeds to resolve | paired A - B (seeds) "
              "| paired p |", "|---|---|---|---|---|---|---|---|---|---|"]
    for p in pairs:
        paired = f"{p.paired_diff:+.3f} ({p.paired_n}) | {p.paired_p:.2g}" if p.paired_n else "- | -"
        lines.append(f"| {p.a} | {p.b} | {p.paper_diff:+.1f} | {p.diff:+.3f} | [{p.low:+.3f}, {p.high:+.3f}] | "
                     f"{p.p:.2f} | {p.verdict} | {_seeds(p.seeds_needed)} | {paired} |")
    return "\n".join(lines + _footnote(min(result.seeds.values())))


def _footnote(smallest: int) -> list:
    """What the p-values can reach at this many seeds, and what the columns mean."""
    return ["", f"With {smallest} seeds per side an exact permutation test cannot give p below "
                f"{2 / math.comb(2 * smallest, smallest):.2g}; a verdict needs the interval to exclude "
                f"zero and the difference to exceed the noise floor. \"Seeds to resolve\": seeds per design at "
                f"which a difference of this size would clear the noise floor, 2 (1.96 x pooled std / "
                f"difference)^2, if the seed spread stayed as measured. Paired: the designs compared seed by seed on "
                f"the seeds both ran (a seed draws the initialisation and, for synthetic tasks, the dataset, so "
                f"outcomes of one seed go together across designs), with an exact sign-flip p-value "
                f"(smallest possible 2 / 2^seeds); the verdict column does not use it.", ""]


def unregistered_markdown(space: str) -> str:
    """The section when the run's space is not registered in this process: its paper numbers, if it has any, are
    unknown, and the report says so rather than leaving the comparison out without a word."""
    return (f"## Proxy vs the paper\n\nNot compared: the run's space `{space}` is not registered in this process, so "
            f"the report cannot know whether the paper has numbers for its designs. Register it before writing the "
            f"report: `import search_spaces` (the repository's spaces, as run_sweep.py and python -m ablate.report "
            f"do), or import the module that calls register_space for `{space}`.\n")


def _seeds(needed: float) -> str:
    return "never" if math.isinf(needed) else "> 1,000" if needed > 1000 else str(int(needed))


def _best_sentence(result: Reproduction) -> str:
    names, proxy, pairs = result.names, result.proxy, result.pairs
    best = names[0]
    rank = result.proxy_rank[0]
    against = [p for p in pairs if p.a == best]
    resolved = sum(p.verdict == AGREES for p in against)
    lost = [p.b for p in against if p.verdict == DISAGREES]
    text = (f"The paper's best design, {best}, ranks {rank:g} of {len(names)} on the proxy "
            f"(mean {proxy[0]:.3f}); it is resolved above {resolved} of the other {len(against)}")
    if lost:
        text += f" and resolved below {', '.join(lost)}"
    if rank == 1 and resolved == len(against):
        return text + ": the proxy reproduces the paper's winner."
    if not lost and rank <= 1.5:
        return text + ": consistent with the paper, but not resolved from the seed noise."
    return text + ": the proxy does not reproduce the paper's winner."
