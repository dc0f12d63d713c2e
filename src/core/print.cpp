// Printing tensors the way PyTorch does: tensor([[1., 2.], [3., 4.]], dtype=float64).
#include <cmath>
#include <functional>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "anvil/autograd/node.h"
#include "anvil/core/tensor.h"

namespace anvil {
namespace {

// How a floating tensor's values are written, chosen as torch's formatter chooses from the
// finite non-zero magnitudes: whole numbers as "3.", others with 4 decimals, and either in
// scientific notation ("1.0000e+03") when they span more than a factor of 1000, exceed 1e8
// or (not whole) fall below 1e-4.
enum class FloatStyle { Whole, Fixed, Scientific };

FloatStyle float_style(const double* p, int64_t n) {
  bool whole = true;
  double lo = INFINITY, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(p[i])) continue;
    if (p[i] != std::floor(p[i])) whole = false;
    if (p[i] != 0) lo = std::min(lo, std::fabs(p[i])), hi = std::max(hi, std::fabs(p[i]));
  }
  const bool wide = hi > 0 && (hi / lo > 1000 || hi > 1e8);
  if (whole) return wide ? FloatStyle::Scientific : FloatStyle::Whole;
  return wide || (hi > 0 && lo < 1e-4) ? FloatStyle::Scientific : FloatStyle::Fixed;
}

std::string format_value(double v, bool floating, bool is_bool, FloatStyle style) {
  std::ostringstream os;
  if (is_bool) return v != 0 ? "True" : "False";
  if (!floating) {
    os << int64_t(v);
    return os.str();
  }
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (style == FloatStyle::Whole) {
    os << int64_t(v) << ".";
    return os.str();
  }
  if (style == FloatStyle::Scientific) os << std::scientific;
  else os << std::fixed;
  os << std::setprecision(4) << v;
  return os.str();
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  Tensor c = to(kCPU, kFloat64).contiguous();
  const double* p = c.data<double>();
  const int64_t n = c.numel();
  const bool fl = is_floating(dtype()), is_bool = dtype() == kBool;
  const FloatStyle style = fl ? float_style(p, n) : FloatStyle::Whole;
  size_t width = 0;
  std::vector<std::string> cells(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    cells[size_t(i)] = format_value(p[i], fl, is_bool, style);
    width = std::max(width, cells[size_t(i)].size());
  }
  std::ostringstream os;
  os << "tensor(";
  const Shape& s = shape();
  const int64_t nd = int64_t(s.size());
  if (nd == 0) {
    os << cells[0];
  } else {
    // Nested brackets; rows of the last dim on one line; large tensors abbreviated.
    constexpr int64_t kEdge = 3, kMax = 1000;
    bool abbreviate = n > kMax;
    std::function<void(int64_t, int64_t, int)> rec = [&](int64_t d, int64_t base, int indent) {
      os << "[";
      int64_t len = s[d], stride = 1;
      for (int64_t k = d + 1; k < nd; ++k) stride *= s[k];
      for (int64_t i = 0; i < len; ++i) {
        if (abbreviate && len > 2 * kEdge && i == kEdge) {
          os << "...,";
          if (d == nd - 1) os << ' ';
          else os << '\n' << std::setw(indent + 1) << "";
          i = len - kEdge;
        }
        if (d == nd - 1) {
          os << std::setw(int(width)) << cells[size_t(base + i)];
        } else {
          rec(d + 1, base + i * stride, indent + 1);
        }
        if (i + 1 < len) {
          os << ',';
          if (d == nd - 1) {
            os << ' ';
          } else {
            for (int64_t k = d; k < nd - 1; ++k) os << '\n';
            os << std::setw(indent + 1) << "";
          }
        }
      }
      os << "]";
    };
    if (n == 0) {
      os << "[]";
    } else {
      rec(0, 0, 7);
    }
  }
  if (!device().is_cpu()) os << ", device='" << device().str() << "'";
  if (dtype() != kFloat32 && dtype() != kInt64 && dtype() != kBool)
    os << ", dtype=" << dtype_name(dtype());
  if (grad_fn()) os << ", grad_fn=<" << grad_fn()->name() << ">";
  else if (requires_grad()) os << ", requires_grad=True";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace anvil
