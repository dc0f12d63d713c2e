#!/bin/sh
# Runs every CUDA test binary under compute-sanitizer (memcheck by default) on a GPU machine
# and prints one line per binary: its error count and whether its tests passed, failed or all
# skipped (read from the binary's exit status, as CTest reads it). Errors that
# are failed CUDA API calls ("Program hit ...") are counted apart: test_cuda_allocator runs
# the device out of memory on purpose. Exits 1 if a binary reports any other error or a
# failing test.
#   tests/cuda_sanitize.sh [BIN_DIR] [TOOL]     (default build/tests, memcheck)
# Ends with a summary line (binaries run, with errors, failing, skipped). TIMEOUT (seconds,
# default 900) bounds each binary; a binary stopped by it counts as failing.
BIN_DIR=${1:-build/tests}
TOOL=${2:-memcheck}
SANITIZER=${SANITIZER:-compute-sanitizer}
LOG_DIR=${LOG_DIR:-${TMPDIR:-/tmp}/anvil-sanitizer}
TIMEOUT=${TIMEOUT:-900}
mkdir -p "$LOG_DIR"
count=0 errors=0 failing=0 skipped=0
for bin in "$BIN_DIR"/test_cuda_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  log="$LOG_DIR/$name.$TOOL.log"
  timeout "$TIMEOUT" "$SANITIZER" --tool "$TOOL" --error-exitcode 9 "$bin" --gtest_brief=1 \
    > "$log" 2>&1
  rc=$?
  n=$(sed -n 's/^========= ERROR SUMMARY: \([0-9]*\) error.*/\1/p' "$log" | tail -1)
  api=$(grep -c '^========= Program hit' "$log")
  # The binary's own exit status says what its tests did (support/gtest_main.cpp): 0 passed,
  # 77 every test skipped, anything else failed. The sanitizer's error exit (9) hides it:
  # then the log's failure lines decide.
  case "$rc" in
    0) status=passed ;;
    77) status=skipped ;;
    9) if grep -q '^\[  FAILED  \]' "$log"; then status="tests failed"; else status=passed; fi ;;
    *) status="tests failed (exit $rc)" ;;
  esac
  [ -n "$n" ] || { n="?" status="no summary (exit $rc)"; }
  echo "$name: $n errors ($api failed API calls), $status"
  count=$((count + 1))
  [ "$n" != "?" ] && [ "$n" -eq "$api" ] || errors=$((errors + 1))
  [ "$status" = skipped ] && skipped=$((skipped + 1))
  [ "$status" = passed ] || [ "$status" = skipped ] || failing=$((failing + 1))
done
echo "sanitizer ($TOOL): $count binaries, $errors with errors, $failing failing, $skipped skipped (logs: $LOG_DIR)"
[ "$errors" -eq 0 ] && [ "$failing" -eq 0 ]
