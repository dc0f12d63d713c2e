// Runs the `anvil` program (its path comes from the test target's ANVIL_CLI_PATH) and
// captures its exit status and combined output.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

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

}  // namespace anvil::test
