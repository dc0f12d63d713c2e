"""PyTorch's scaled_dot_product_attention on bench_attention's shapes, for comparison.

Times torch.nn.functional.scaled_dot_product_attention in bfloat16 on [B, H, T, D] with
B * T = 16384, H * D = 2048, D = 64 and 128, T = 512 ... 8192, causal and not: once with
PyTorch's default backend choice and once with the flash backend forced
(torch.nn.attention.sdpa_kernel(SDPBackend.FLASH_ATTENTION)). Passes: fwd, bwd (backward of
a recorded forward) and fwd+bwd, with FLOPs counted as bench_attention.cpp counts them
(forward 4 B H T^2 D, halved under the causal mask; backward 2.5 times that). One JSON line per
(implementation, shape, causal, pass), the same keys as bench_attention's:

    python bench/bench_attention_torch.py [--runs=20] [--warm=3] [--reps=5] [--only-d=128]
"""
import argparse
import contextlib
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def median_ms(call, runs, warm, reps):
    for _ in range(warm):
        call()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(runs):
        start.record()
        for _ in range(reps):
            call()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / reps)
    times.sort()
    return times[len(times) // 2]


def bench_case(impl, d, t, causal, args):
    b, h = 16384 // t, 2048 // d
    opts = dict(device="cuda", dtype=torch.bfloat16)
    q, k, v = (torch.randn(b, h, t, d, **opts, requires_grad=True) for _ in range(3))
    grad_out = torch.randn(b, h, t, d, **opts)
    ctx = sdpa_kernel(SDPBackend.FLASH_ATTENTION) if impl == "torch_flash" else contextlib.nullcontext()
    fwd_flops = 4.0 * b * h * t * t * d / (2 if causal else 1)
    lines = []
    with ctx:
        def forward():
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        def backward():
            torch.autograd.grad(out, (q, k, v), grad_out, retain_graph=True)

        def both():
            o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            torch.autograd.grad(o, (q, k, v), grad_out)

        for name, call, flops in (("fwd", forward, fwd_flops), ("bwd", backward, 2.5 * fwd_flops),
                                  ("fwd+bwd", both, 3.5 * fwd_flops)):
            ms = median_ms(call, args.runs, args.warm, args.reps)
            line = {"bench": "attention", "impl": impl, "pass": name, "B": b, "H": h, "T": t,
                    "D": d, "causal": causal, "dtype": "bfloat16", "median_ms": round(ms, 4),
                    "tflops": round(flops / (ms * 1e-3) / 1e12, 1)}
            print(json.dumps(line, separators=(",", ":")), flush=True)
            lines.append(line)
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warm", type=int, default=3)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--only-d", type=int, default=0, choices=(0, 64, 128))
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_attention_torch: no CUDA GPU; run it on the GPU machine")
    print(f"bench_attention_torch: {torch.cuda.get_device_name()}, torch {torch.__version__}",
          file=sys.stderr)
    for impl in ("torch_default", "torch_flash"):
        for d in (64, 128):
            if args.only_d and d != args.only_d:
                continue
            for causal in (False, True):
                for t in (512, 1024, 2048, 4096, 8192):
                    bench_case(impl, d, t, causal, args)


if __name__ == "__main__":
    main()
