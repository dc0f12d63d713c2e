// anvil::Error and its subclasses: every failure a user can act on names the op, what it
// expected and what it got.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace anvil {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class ShapeError : public Error { using Error::Error; };      // incompatible shapes
class DTypeError : public Error { using Error::Error; };      // unsupported or mismatched dtypes
class DeviceError : public Error { using Error::Error; };     // wrong or unavailable device
class IndexError : public Error { using Error::Error; };      // dimension or index out of range
class ValueError : public Error { using Error::Error; };      // bad argument value
class AutogradError : public Error { using Error::Error; };   // misuse of backward / grads
class IOError : public Error { using Error::Error; };         // files

namespace detail {
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace anvil

// Throws E with the streamed message when cond is false:  ANVIL_CHECK(a == b, ShapeError, "add: ...")
#define ANVIL_CHECK(cond, E, ...) \
  do {                            \
    if (!(cond)) throw ::anvil::E(::anvil::detail::cat(__VA_ARGS__)); \
  } while (0)
