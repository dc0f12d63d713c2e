#!/usr/bin/env bash
# The harness self-test: runs the fixture binary (fixtures.cpp) through CTest under the
# suite's test properties (harness/project) and checks what CTest reports for each case.
#   check.sh FIXTURE_BINARY WORK_DIR
set -u
fixture=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
cmake -S "$here/project" -B "$work" -DFIXTURE="$fixture" > "$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; exit 1; }
(cd "$work" && ctest --no-tests=error > "$work/ctest.log" 2>&1)
status=0
expect() {  # expect CASE WORD: CTest's line for CASE must end with WORD
  if grep -Eq "Test +#[0-9]+: $1 [ .*]+$2" "$work/ctest.log"; then
    echo "harness: $1 reported $2, as it must be"
  else
    echo "harness: $1 is not reported $2:"; grep -E ": $1 " "$work/ctest.log"; status=1
  fi
}
expect fail_and_skip Failed
expect throw Failed
expect no_test_ran Failed
expect all_skip Skipped
expect pass_and_skip Passed
[ $status -eq 0 ] || cat "$work/ctest.log"
exit $status
