"""Puts anvil's and PyTorch's step times side by side.

Reads JSON lines (from bench_train_step and ../shared/bench/torch_reference.py, run in the same
session on the same GPU) from the files given, and prints per workload the anvil/PyTorch ratio
of the pipelined step time for each PyTorch mode (below 1 means anvil is faster).
Usage: python3 bench/compare.py anvil.jsonl torch.jsonl
"""
import json
import sys

rows = []
for path in sys.argv[1:]:
    with open(path) as f:
        rows += [json.loads(line) for line in f if line.startswith("{")]
anvil = {r["workload"]: r for r in rows if r.get("mode", "").startswith("anvil") and "error" not in r}
torch = [r for r in rows if not r.get("mode", "").startswith("anvil") and "error" not in r]
print(f"{'workload':10} {'torch mode':10} {'torch ms':>9} {'anvil ms':>9} {'anvil/torch':>12}")
for t in torch:
    a = anvil.get(t["workload"])
    if not a:
        continue
    ratio = a["pipelined_step_ms"] / t["pipelined_step_ms"]
    print(f"{t['workload']:10} {t['mode']:10} {t['pipelined_step_ms']:9.3f} {a['pipelined_step_ms']:9.3f} {ratio:12.2f}")
