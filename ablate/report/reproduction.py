"""The reproduction section: the proxy's ranking of the paper's designs next to the paper's own."""
import math

import numpy as np
from scipy import stats as scipy_stats

from ..results import PRIMARY
from .stats import bootstrap_rank_agreement, noise_floor, pairwise, rank_agreement
from .table import fmt


def reproduction(seeds: dict, paper: dict, table_name: str, n_boot: int = 2000) -> dict:
    """Everything the section says, as numbers: ranks, tau/rho with bootstrap intervals, pairs, verdict.

    seeds holds the primary metric per seed; it is compared turned so that higher is better (a loss negated),
    as the paper's top-1 is, and the proxy means are given back in the metric's own units."""
    names = [name for name in sorted(paper, key=lambda n: -paper[n]) if name in seeds and len(seeds[name])]
    missing = [name for name in paper if name not in names]
    seeds = {name: PRIMARY.oriented(seeds[name]) for name in names}
    proxy = np.array([seeds[name].mean() for name in names])
    floor = noise_floor({name: seeds[name] for name in names})
    pairs = pairwise({name: seeds[name] for name in names}, names, n_boot)
    for pair in pairs:                       # the paper ranks a above b (names are in the paper's order)
        pair["paper_diff"] = paper[pair["a"]] - paper[pair["b"]]
        pair["verdict"] = _verdict(pair, floor["floor"])
        pair["seeds_needed"] = seeds_to_resolve(pair["diff"], floor["pooled_std"])
    return {"table": table_name, "names": names, "missing": missing, "proxy": PRIMARY.oriented(proxy),
            "paper": np.array([paper[n] for n in names]),
            "proxy_rank": scipy_stats.rankdata(-proxy), "paper_rank": scipy_stats.rankdata([-paper[n] for n in names]),
            "agreement": rank_agreement(proxy, [paper[n] for n in names]),
            "bootstrap": bootstrap_rank_agreement({n: seeds[n] for n in names}, paper, n_boot),
            "floor": floor, "pairs": pairs, "seeds": {n: len(seeds[n]) for n in names}}


def seeds_to_resolve(difference: float, pooled_std: float, z: float = 1.959964) -> float:
    """Seeds per design at which a difference this large would clear the noise floor: 2 (z std / diff)^2."""
    if math.isnan(pooled_std) or pooled_std == 0:
        return 1.0 if difference else math.inf
    return math.inf if difference == 0 else math.ceil(2 * (z * pooled_std / difference) ** 2)


def _verdict(pair, floor) -> str:
    if pair["paper_diff"] == 0:
        return "paper: tie"
    resolved = (pair["low"] > 0 or pair["high"] < 0) and not abs(pair["diff"]) < floor
    if not resolved:
        return "inside the noise"
    return "agrees" if (pair["diff"] > 0) == (pair["paper_diff"] > 0) else "disagrees"


def reproduction_markdown(result: dict) -> str:
    names, pairs, floor = result["names"], result["pairs"], result["floor"]
    if len(names) < 2:
        return (f"## Proxy vs the paper\n\nFewer than two of the paper's designs ({result['table']}) have "
                f"trained seeds in this run; no ranking to compare.\n")
    lines = [f"## Proxy vs the paper: {result['table']}", "",
             f"| design | proxy {PRIMARY.label} (mean) | proxy rank | paper top-1 | paper rank |", "|---|---|---|---|---|"]
    for i, name in enumerate(names):
        lines.append(f"| {name} | {result['proxy'][i]:.3f} | {result['proxy_rank'][i]:g} | "
                     f"{result['paper'][i]:.1f} | {result['paper_rank'][i]:g} |")
    agreement, boot = result["agreement"], result["bootstrap"]
    lines += ["", f"- Kendall tau-b = {fmt(agreement['kendall_tau'], '.2f')} "
                  f"(bootstrap 95% interval over seeds [{fmt(boot['kendall_tau'][0], '.2f')}, "
                  f"{fmt(boot['kendall_tau'][1], '.2f')}]); Spearman rho = "
                  f"{fmt(agreement['spearman_rho'], '.2f')} ([{fmt(boot['spearman_rho'][0], '.2f')}, "
                  f"{fmt(boot['spearman_rho'][1], '.2f')}]); {boot['undefined']} of {boot['n_boot']} "
                  f"resamples had all proxy means equal and no ranking.",
              f"- Seed-noise floor: pooled std over seeds {fmt(floor['pooled_std'])}; two designs' means "
              f"(at {floor['seeds']} seeds) must differ by more than {fmt(floor['floor'])} to be outside it.",
              f"- {_best_sentence(result)}"]
    if result["missing"]:
        lines.append(f"- Not in this run (no trained seed): {', '.join(result['missing'])}.")
    counts = {v: sum(p["verdict"] == v for p in pairs) for v in ("agrees", "disagrees", "inside the noise")}
    lines += [f"- Of {len(pairs)} pairs, the proxy resolves {counts['agrees']} in the paper's direction and "
              f"{counts['disagrees']} against it; inside the seed noise: {counts['inside the noise']}.",
              "", "Pairwise (A is ranked above B by the paper; difference = proxy mean A - mean B"
              + ("" if PRIMARY.higher_is_better else f" of the negated {PRIMARY.label}, so that + means A is better")
              + ", 95% bootstrap interval over seeds, two-sided permutation p-value):", "",
              "| A | B | paper A - B | proxy A - B | interval | p | verdict | seeds to resolve | paired A - B (seeds) "
              "| paired p |", "|---|---|---|---|---|---|---|---|---|---|"]
    for p in pairs:
        paired = (f"{p['paired_diff']:+.3f} ({p['paired_n']}) | {p['paired_p']:.2g}" if p["paired_n"] else "- | -")
        lines.append(f"| {p['a']} | {p['b']} | {p['paper_diff']:+.1f} | {p['diff']:+.3f} | "
                     f"[{p['low']:+.3f}, {p['high']:+.3f}] | {p['p']:.2f} | {p['verdict']} | "
                     f"{_seeds(p['seeds_needed'])} | {paired} |")
    smallest = min(result["seeds"].values())
    lines += ["", f"With {smallest} seeds per side an exact permutation test cannot give p below "
                  f"{2 / math.comb(2 * smallest, smallest):.2g}; a verdict needs the interval to exclude "
                  f"zero and the difference to exceed the noise floor. \"Seeds to resolve\": seeds per design at "
                  f"which a difference of this size would clear the noise floor, 2 (1.96 x pooled std / "
                  f"difference)^2, if the seed spread stayed as measured. Paired: the designs compared seed by seed on "
                  f"the seeds both ran (a seed draws the initialisation and, for synthetic tasks, the dataset, so "
                  f"outcomes of one seed go together across designs), with an exact sign-flip p-value "
                  f"(smallest possible 2 / 2^seeds); the verdict column does not use it.", ""]
    return "\n".join(lines)


def _seeds(needed: float) -> str:
    return "never" if math.isinf(needed) else "> 1,000" if needed > 1000 else str(int(needed))


def _best_sentence(result) -> str:
    names, proxy, pairs = result["names"], result["proxy"], result["pairs"]
    best = names[0]
    rank = result["proxy_rank"][0]
    against = [p for p in pairs if p["a"] == best]
    resolved = sum(p["verdict"] == "agrees" for p in against)
    lost = [p["b"] for p in against if p["verdict"] == "disagrees"]
    text = (f"The paper's best design, {best}, ranks {rank:g} of {len(names)} on the proxy "
            f"(mean {proxy[0]:.3f}); it is resolved above {resolved} of the other {len(against)}")
    if lost:
        text += f" and resolved below {', '.join(lost)}"
    if rank == 1 and resolved == len(against):
        return text + ": the proxy reproduces the paper's winner."
    if not lost and rank <= 1.5:
        return text + ": consistent with the paper, but not resolved from the seed noise."
    return text + ": the proxy does not reproduce the paper's winner."
