#!/bin/sh
# Runs every CUDA test binary under compute-sanitizer (memcheck by default) on a GPU machine
# and prints one line per binary: its error count and whether its tests passed. Exits 1 if a
# binary reports an error or a failing test.
#   tests/cuda_sanitize.sh [BIN_DIR] [TOOL]     (default build/tests, memcheck)
# Ends with a summary line (binaries run, with errors, failing). TIMEOUT (seconds,
# default 900) bounds each binary; a binary stopped by it counts as failing.
BIN_DIR=${1:-build/tests}
TOOL=${2:-memcheck}
SANITIZER=${SANITIZER:-compute-sanitizer}
LOG_DIR=${LOG_DIR:-${TMPDIR:-/tmp}/anvil-sanitizer}
TIMEOUT=${TIMEOUT:-900}
mkdir -p "$LOG_DIR"
count=0 errors=0 failing=0
for bin in "$BIN_DIR"/test_cuda_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  log="$LOG_DIR/$name.$TOOL.log"
  timeout "$TIMEOUT" "$SANITIZER" --tool "$TOOL" --error-exitcode 9 "$bin" --gtest_brief=1 \
    > "$log" 2>&1
  rc=$?
  n=$(sed -n 's/^========= ERROR SUMMARY: \([0-9]*\) error.*/\1/p' "$log" | tail -1)
  n=${n:-?}
  status=passed
  [ "$rc" -eq 0 ] || status="exit $rc"
  echo "$name: $n errors, $status"
  count=$((count + 1))
  [ "$n" = 0 ] || errors=$((errors + 1))
  [ "$rc" -eq 0 ] || failing=$((failing + 1))
done
echo "sanitizer ($TOOL): $count binaries, $errors with errors, $failing failing (logs: $LOG_DIR)"
[ "$errors" -eq 0 ] && [ "$failing" -eq 0 ]
