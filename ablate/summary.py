"""A plain-text summary of a results table: one line per design, mean and spread over seeds."""


def summary_table(frame) -> str:
    if frame.empty:
        return "no trials"
    trained = frame[frame["status"].isin(["ok", "stopped_early"])]
    groups = trained.groupby(["pattern", "spec", "knobs"], dropna=False)
    lines = ["| design | spec | seeds | val acc (mean ± std) | params | MMACs | img/s |", "|---|---|---|---|---|---|---|"]
    rows = []
    for (pattern, spec, knobs), group in groups:
        acc = group["val_acc_best"].astype(float)
        std = acc.std() if len(acc) > 1 else 0.0
        rows.append((acc.mean(), f"| {pattern} | `{spec}` | {len(group)} | {acc.mean():.3f} ± {std:.3f} | "
                                 f"{group['params'].iloc[0]:,} | {group['macs_total'].iloc[0] / 1e6:.1f} | "
                                 f"{group['throughput_img_s'].astype(float).mean():.0f} |"))
    lines += [line for _, line in sorted(rows, key=lambda r: -r[0])]
    other = frame[~frame["status"].isin(["ok", "stopped_early"])]
    for _, row in other.iterrows():
        lines.append(f"{row['status']}: {row['spec']} seed {row['seed']}: {row['error']}")
    return "\n".join(lines)
