// The main() of every test binary. It runs the tests as GoogleTest's own main does and turns
// the outcome into an exit status that CTest reads without guessing from the output:
//   0                  every test that ran passed (some may have skipped);
//   1                  a test failed, or no test ran (a filter that matches nothing checks nothing);
//   kSkipExitCode (77) every test that ran skipped and none failed: CTest's SKIP_RETURN_CODE.
// So a binary is reported skipped only when nothing in it ran, and a failure is never hidden
// behind a skip, whatever the output says.
#include <gtest/gtest.h>

#include <cstdio>

#include "support/exit_codes.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int status = RUN_ALL_TESTS();
  if (GTEST_FLAG_GET(list_tests)) return status;
  const ::testing::UnitTest& u = *::testing::UnitTest::GetInstance();
  if (status != 0 || u.failed_test_count() > 0 || u.ad_hoc_test_result().Failed()) return 1;
  if (u.test_to_run_count() == 0) {
    std::fprintf(stderr, "no test ran: nothing was checked\n");
    return 1;
  }
  if (u.skipped_test_count() == u.test_to_run_count()) return anvil::test::kSkipExitCode;
  return 0;
}
