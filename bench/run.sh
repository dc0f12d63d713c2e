#!/bin/sh
# Times anvil's training step and then PyTorch's reference on the same GPU, one after the
# other, and prints the ratio table (bench/compare.py). Run from the repository root on the
# GPU machine, after building: bench/run.sh [mlp cnn ...]
# BIN, TORCH_REF and OUT override the benchmark binary, the reference script and the folder
# the JSON lines are written to.
set -eu
BIN=${BIN:-build/bench/bench_train_step}
TORCH_REF=${TORCH_REF:-../shared/bench/torch_reference.py}
OUT=${OUT:-bench/out}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$OUT/gpu.txt" || true
"$BIN" "$@" --device=cuda --modes=eager,graph > "$OUT/anvil.jsonl"
"$PYTHON" "$TORCH_REF" "$@" --modes=eager,compile > "$OUT/torch.jsonl"
cat "$OUT/gpu.txt"
"$PYTHON" bench/compare.py "$OUT/anvil.jsonl" "$OUT/torch.jsonl"
