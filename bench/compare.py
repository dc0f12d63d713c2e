"""Puts anvil's and PyTorch's step times side by side.

Reads JSON lines (from bench_train_step and ../shared/bench/torch_reference.py, run in the same
session on the same GPU) from the files given, and prints per workload and PyTorch mode the
anvil/PyTorch ratio of the pipelined step time for each anvil mode (below 1: anvil is faster),
then anvil's allocator statistics.
Usage: python3 bench/compare.py anvil.jsonl torch.jsonl
"""
import json
import sys

rows = []
for path in sys.argv[1:]:
    with open(path) as f:
        rows += [json.loads(line) for line in f if line.startswith("{")]
ok = [r for r in rows if "error" not in r]
anvil = [r for r in ok if r.get("mode", "").startswith("anvil")]
torch = [r for r in ok if not r.get("mode", "").startswith("anvil")]
modes = sorted({r["mode"] for r in anvil})
head = f"{'workload':10} {'torch mode':10} {'torch ms':>9}"
for m in modes:
    head += f" {m + ' ms':>17} {'ratio':>6}"
print(head)
for t in torch:
    line = f"{t['workload']:10} {t['mode']:10} {t['pipelined_step_ms']:9.3f}"
    for m in modes:
        a = next((r for r in anvil if r["workload"] == t["workload"] and r["mode"] == m), None)
        line += f" {a['pipelined_step_ms']:17.3f} {a['pipelined_step_ms'] / t['pipelined_step_ms']:6.2f}" if a else f" {'-':>17} {'-':>6}"
    print(line)
print()
print(f"{'workload':10} {'mode':14} {'units/s':>12} {'model TFLOP/s':>14}   (units: samples; tokens for gpt2)")
for r in anvil + torch:
    tf = r.get("model_tflops_per_s")
    print(f"{r['workload']:10} {r['mode']:14} {r['units_per_s']:12.0f} {tf if tf else '':>14}")
print()
print(f"{'workload':10} {'anvil mode':12} {'peak MiB':>9} {'reserved MiB':>13} {'cudaMalloc':>11} {'after warm-up':>14}")
for a in anvil:
    if "cuda_mallocs" in a:
        print(f"{a['workload']:10} {a['mode']:12} {a['peak_mem_mb']:9.0f} {a['reserved_mb']:13.0f} {a['cuda_mallocs']:11d} {a['cuda_mallocs_after_warmup']:14d}")
for r in rows:
    if "error" in r:
        print(f"{r.get('workload')} {r.get('mode')}: {r['error']}")
