"""Forward+backward time of each selective-scan backend, as ratios measured in one run.

    python benchmarks/scan.py [--threads 2] [--reps 5]

Columns: our sequential oracle ``ref``; ``indexed ref``, the same loop written as mamba_ssm's
selective_scan_ref writes it (x[:, :, i] per step, whose backward zero-fills a full-size gradient at every
step; skipped at L > 256, where it takes minutes); ``chunked`` (the CPU default); ``cuda`` where available.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from ablate.ops import available_backends, selective_scan

SHAPES = [(8, 160, 196, 8, "MambaVision-T stage 3"), (64, 64, 64, 8, "proxy"), (32, 128, 1024, 8, "long")]


def indexed_ref(u, delta, A, B, C, D, delta_bias):
    """The loop as mamba_ssm's selective_scan_ref has it (the textbook oracle), for comparison only."""
    delta = F.softplus(delta + delta_bias[:, None])
    decay = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    drive = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    h, ys = u.new_zeros(u.shape[0], u.shape[1], A.shape[1]), []
    for i in range(u.shape[2]):
        h = decay[:, :, i] * h + drive[:, :, i]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, :, i]))
    return torch.stack(ys, dim=2) + u * D[:, None]


def make_inputs(batch, dim, length, d_state, device):
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(batch, dim, length, generator=g), torch.rand(batch, dim, length, generator=g) - 4,
               -torch.rand(dim, d_state, generator=g) * 4, torch.randn(batch, d_state, length, generator=g),
               torch.randn(batch, d_state, length, generator=g), torch.randn(dim, generator=g),
               torch.randn(dim, generator=g)]
    return [t.to(device).requires_grad_() for t in tensors]


def time_fwd_bwd(fn, inputs, reps, device):
    times = []
    for _ in range(reps + 1):                       # the first call warms up and is dropped
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*inputs).sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times = times[1:]
    return statistics.median(times), (max(times) - min(times)) / 2


def scan_with(backend):
    def run(u, delta, A, B, C, D, bias):
        return selective_scan(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True, backend=backend)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cases", default=",".join(case for *_, case in SHAPES),
                        help="comma-separated, from: " + ", ".join(case for *_, case in SHAPES))
    args = parser.parse_args()
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - {case for *_, case in SHAPES})
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; valid: {', '.join(case for *_, case in SHAPES)}")
    torch.set_num_threads(args.threads)
    backends = [b for b in available_backends(on_cuda=args.device == "cuda")]
    print(f"device={args.device} threads={args.threads} torch={torch.__version__} reps={args.reps} "
          f"(median ms, fwd+bwd, fp32; ± half the range)")
    header = "| (batch, channels, L, d_state) | case | indexed ref ms | " + " | ".join(f"{b} ms" for b in backends)
    header += " | chunked vs ref | chunked vs indexed ref |"
    if "cuda" in backends:
        header += " cuda vs ref |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for batch, dim, length, d_state, case in [shape for shape in SHAPES if shape[-1] in cases]:
        inputs = make_inputs(batch, dim, length, d_state, args.device)
        ms = {}
        for backend in backends:
            reps = 1 if backend == "ref" and length > 256 else args.reps
            ms[backend] = time_fwd_bwd(scan_with(backend), inputs, reps, args.device)
        indexed = time_fwd_bwd(indexed_ref, inputs, 2, args.device) if length <= 256 else None
        cells = [f"{ms[b][0] * 1e3:.1f} ± {ms[b][1] * 1e3:.1f}" for b in backends]
        indexed_cell = f"{indexed[0] * 1e3:.1f}" if indexed else "skipped"
        vs_indexed = f"{indexed[0] / ms['chunked'][0]:.1f}x" if indexed else "-"
        row = (f"| ({batch}, {dim}, {length}, {d_state}) | {case} | {indexed_cell} | " + " | ".join(cells) +
               f" | {ms['ref'][0] / ms['chunked'][0]:.1f}x | {vs_indexed} |")
        if "cuda" in backends:
            row += f" {ms['ref'][0] / ms['cuda'][0]:.1f}x |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
