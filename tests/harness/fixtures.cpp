// Fixtures of the harness self-test (check.sh): one binary whose tests pass, fail or skip as
// the environment variable ANVIL_HARNESS_CASE says, so that check.sh can see how CTest reports
// each mix under the suite's own test properties.
//   fail_and_skip: one failing test, one skipped        -> must be reported failed
//   all_skip:      every test skips                      -> skipped
//   pass_and_skip: one passing test, one skipped         -> passed
//   throw:         a test throws (a failure, not a skip) -> failed
// A filter that matches nothing (--gtest_filter=None) must be reported failed too.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace {

std::string harness_case() {
  const char* c = std::getenv("ANVIL_HARNESS_CASE");
  return c ? c : "";
}

TEST(Harness, First) {
  const std::string c = harness_case();
  if (c == "fail_and_skip") FAIL() << "failing on purpose";
  if (c == "all_skip") GTEST_SKIP() << "skipping on purpose";
  if (c == "throw") throw std::runtime_error("throwing on purpose");
  SUCCEED();
}

TEST(Harness, Second) { GTEST_SKIP() << "skipping on purpose"; }

}  // namespace
