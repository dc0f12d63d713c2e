#!/usr/bin/env bash
# Runs each fuzz target for a bounded time: first the inputs that once broke a reader, then
# fuzzing from freshly generated seeds plus the corpus earlier runs grew in <build>/fuzz-corpus.
# Exits non-zero on the first finding; the input that triggered it is left in
# <build>/fuzz-artifacts/ (replay it: <build>/fuzz/fuzz_<target> <file>).
#   fuzz/run.sh [build dir, default build-fuzz] [seconds per target, default 60]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build-fuzz}
seconds=${2:-60}
seeds=$build/fuzz-seeds corpus=$build/fuzz-corpus artifacts=$build/fuzz-artifacts
rm -rf "$seeds"
"$build/fuzz/make_fuzz_seeds" "$seeds"
mkdir -p "$artifacts"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# -timeout: a hang; -rss_limit_mb (and the malloc limit it implies): a huge allocation.
limits=(-timeout=10 -rss_limit_mb=2048)
for target in safetensors checkpoint tokenizer; do
  fuzzer=$build/fuzz/fuzz_$target log=$build/fuzz-$target.log dict=$here/$target.dict
  [ -f "$dict" ] || dict=$here/safetensors.dict  # the checkpoint's metadata rides in safetensors
  regressions=$(ls "$seeds/regressions/$target" | wc -l)
  echo "fuzz_$target: $regressions regression inputs, then ${seconds} s of fuzzing"
  "$fuzzer" "${limits[@]}" "$seeds/regressions/$target"/* >"$log" 2>&1 ||
    { tail -n 60 "$log"; exit 1; }
  mkdir -p "$corpus/$target"
  "$fuzzer" "${limits[@]}" -max_total_time="$seconds" -dict="$dict" \
    -print_final_stats=1 -artifact_prefix="$artifacts/$target-" \
    "$corpus/$target" "$seeds/$target" >"$log" 2>&1 || { tail -n 60 "$log"; exit 1; }
  grep -E "^(Done|stat::average_exec_per_sec|stat::peak_rss_mb)" "$log" | sed 's/^/  /'
done
