"""Images per second, MACs, parameters and peak memory of the released presets and of the proxy model.

    python benchmarks/throughput.py                      # CPU: presets at batch 8, 224 px, fp32; proxy at 64, 32 px
    python benchmarks/throughput.py --device cuda --batch 128 --dtype fp16,bf16 --models mambavision_t,mambavision_s,mambavision_b
                                                         # the paper's protocol (A100 there, batch 128, 224 px, fp16)
    python benchmarks/throughput.py --device cuda --scan chunked   # the pure-PyTorch scan even where mamba_ssm imports

Eval mode, no_grad, warm-up, each iteration synchronised on CUDA; median img/s with min-max spread. Peak
memory is one eval forward pass at the row's batch (CUDA allocator peak; on CPU the process's max RSS).
"""
import argparse

import torch

import ablate
from ablate.measure import count_macs, count_params, peak_memory, throughput
from ablate.timing import AUTOCAST_DTYPES, CUDA_WARMUP_S, default_warmup_s
from ablate.ops import BACKENDS, resolve_backend, set_default_backend
from ablate.build import proxy_model
from ablate.proxy import ProxyConfig

PUBLISHED_A100 = {"mambavision_t": 6298, "mambavision_t2": 5990, "mambavision_s": 4700, "mambavision_b": 3670,
                  "mambavision_l": 2190, "mambavision_l2": 1021}


def parse_dtypes(text):
    dtypes = text.split(",")
    unknown = [d for d in dtypes if d not in AUTOCAST_DTYPES]
    if unknown:
        raise SystemExit(f"unknown dtype(s) {', '.join(unknown)}; valid: {', '.join(AUTOCAST_DTYPES)}")
    return dtypes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="mambavision_t,mambavision_s,mambavision_b")
    parser.add_argument("--batch", type=int, default=None, help="presets' batch (default: 128 on cuda, 8 on cpu)")
    parser.add_argument("--dtype", default=None, help=f"comma-separated, from {', '.join(AUTOCAST_DTYPES)}; default: "
                                                      "fp16 autocast on cuda (the paper's protocol), fp32 on cpu")
    parser.add_argument("--scan", default="auto", help=f"scan backend: auto, {', '.join(BACKENDS)}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup-s", type=float, default=None, help="seconds of warm-up per row, at least "
                                                                     f"(default: {CUDA_WARMUP_S:g} on cuda, 0 on cpu)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_default_backend(args.scan)
    cuda = args.device == "cuda"
    batch = args.batch or (128 if cuda else 8)
    warmup_s = default_warmup_s(args.device) if args.warmup_s is None else args.warmup_s
    dtypes = parse_dtypes(args.dtype or ("fp16" if cuda else "fp32"))
    name = torch.cuda.get_device_name() if cuda else f"cpu, {args.threads} threads"
    print(f"device: {name}; torch {torch.__version__}; scan backend {resolve_backend('auto', on_cuda=cuda)}; "
          f"eval, no_grad{', channels_last' if cuda else ''}; median img/s (min-max) of {args.iters} iterations "
          f"after at least {warmup_s:g} s of warm-up")
    print("| model | spec | params | GMACs (no scan) | GMACs scan | batch | px | dtype | img/s | peak MB | "
          "published A100 img/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [(m, ablate.create_model(m), batch, 224) for m in args.models.split(",") if m]
    proxy = ProxyConfig()
    rows.append(("proxy (default)", proxy_model(proxy), 64, proxy.data.image_size))
    for label, model, rows_batch, size in rows:
        macs = count_macs(model, (1, 3, size, size))
        for dtype in dtypes:
            result = throughput(model, batch=rows_batch, resolution=size, device=args.device, dtype=dtype,
                                channels_last=cuda, iters=args.iters, warmup_s=warmup_s)
            memory = peak_memory(model, batch=rows_batch, resolution=size, device=args.device, dtype=dtype)
            published = PUBLISHED_A100.get(label, "-") if dtype == "fp16" else "-"
            print(f"| {label} | `{model.spec}` | {count_params(model) / 1e6:.2f}M | {macs['macs_no_scan'] / 1e9:.3f} | "
                  f"{macs['macs_scan'] / 1e9:.4f} | {rows_batch} | {size} | {dtype} | "
                  f"{result['throughput_img_s']:.1f} ({result['throughput_min']:.1f}-{result['throughput_max']:.1f}) | "
                  f"{memory['peak_mem_mb']:.0f} | {published} |", flush=True)


if __name__ == "__main__":
    main()
