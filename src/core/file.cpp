#include "anvil/core/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include "anvil/core/error.h"

namespace anvil {
namespace {

// Distinguishes the temporaries of several threads (or successive writes) of one process.
std::atomic<uint64_t> temp_counter{0};

// The writer's pid in the "<pid>-<counter>" tail of a temporary's name; false for any other name.
bool writer_of(std::string_view tail, pid_t& pid) {
  const size_t dash = tail.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == tail.size()) return false;
  for (char c : tail.substr(dash + 1))
    if (c < '0' || c > '9') return false;
  long long p = 0;
  auto [end, ec] = std::from_chars(tail.data(), tail.data() + dash, p);
  if (ec != std::errc() || end != tail.data() + dash || p <= 0 || p > INT_MAX) return false;
  pid = pid_t(p);
  return true;
}

// Removes the temporaries of `base` in `dir` whose writer process is gone: a writer killed
// mid-write (SIGKILL, OOM killer, power cut) cannot clean up after itself. A temporary whose
// pid still runs is left alone, as is every other file. Best effort: a failure here must not
// fail the write. Assumes the writers of one target share a pid namespace (one machine).
void remove_stale_temporaries(const std::string& dir, const std::string& base) {
  const std::string prefix = detail::cat(".", base, ".tmp-");
  DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (!d) return;
  while (const dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    pid_t pid = 0;
    if (!name.starts_with(prefix) || !writer_of(name.substr(prefix.size()), pid)) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or another user's (EPERM)
    ::unlinkat(::dirfd(d), e->d_name, 0);
  }
  ::closedir(d);
}

}  // namespace

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError(detail::cat("read_file: cannot open '", path, "': ", std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IOError(detail::cat("read_file: error while reading '", path, "'"));
  return ss.str();
}

void write_file_atomic(const std::string& path, std::string_view data) {
  auto fail = [&](const char* what) {
    throw IOError(detail::cat("write_file_atomic: ", what, " '", path, "': ", std::strerror(errno)));
  };
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
  const std::string base = path.substr(dir.size());
  remove_stale_temporaries(dir, base);  // first, so their space is free for this write

  // ".<base>.tmp-<pid>-<counter>": hidden, and it names its writer for the clean-up above.
  // (built with detail::cat: g++ 12 -O3 warns falsely on string concatenation here)
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    tmp = detail::cat(dir, ".", base, ".tmp-", ::getpid(), "-", temp_counter++);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;  // EEXIST: a dead namesake's leftover; try the next
  }
  if (fd < 0) fail("cannot create a temporary file next to");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = e;
      fail("cannot write");
    }
    done += size_t(n);
  }
  int err = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && err == 0) err = errno;  // closed even when fsync failed: no fd leaks
  if (err != 0) {
    ::unlink(tmp.c_str());
    errno = err;
    fail("cannot flush");
  }
  ::chmod(tmp.c_str(), 0644);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    fail("cannot rename the temporary file onto");
  }
  // Make the rename itself durable.
  const std::string sync_dir = dir.empty()  ? std::string(".")
                               : dir == "/" ? dir
                                            : dir.substr(0, dir.size() - 1);
  int dfd = ::open(sync_dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace anvil
