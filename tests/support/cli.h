// Runs the `anvil` program (its path comes from the test target's ANVIL_CLI_PATH) and
// captures its exit status and combined output.
#pragma once
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace anvil::test {

struct CliResult {
  int status;  // exit status, -1 if killed by a signal
  std::string output;
};

inline CliResult run_cli(const std::string& args) {
  std::string cmd = std::string(ANVIL_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// Runs the program, which must fail (a non-zero status, not a crash) with every one of
// `needles` in its output.
inline ::testing::AssertionResult fails_with(const std::string& args,
                                             const std::vector<std::string>& needles) {
  CliResult r = run_cli(args);
  if (r.status <= 0)
    return ::testing::AssertionFailure()
           << "`anvil " << args << "` gave status " << r.status << ":\n" << r.output;
  for (const auto& n : needles)
    if (r.output.find(n) == std::string::npos)
      return ::testing::AssertionFailure()
             << "`anvil " << args << "` said\n" << r.output << "without \"" << n << "\"";
  return ::testing::AssertionSuccess();
}

}  // namespace anvil::test
