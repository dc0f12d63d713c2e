// Exit statuses of the test binaries (support/gtest_main.cpp) that CTest and
// tests/cuda_sanitize.sh read. tests/CMakeLists.txt sets SKIP_RETURN_CODE to kSkipExitCode.
#pragma once

namespace anvil::test {

// Every test that ran was skipped (for instance CUDA tests without a GPU) and none failed.
inline constexpr int kSkipExitCode = 77;

}  // namespace anvil::test
