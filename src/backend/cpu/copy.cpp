// CPU copy (with dtype conversion) and fill.
#include <cstring>

#include "backend/copy_kernels.h"
#include "backend/cpu/loops.h"

namespace anvil::cpu {
namespace {

template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) return static_cast<compute_t<From>>(v) != 0;
  else return To(static_cast<compute_t<From>>(v));
}

void copy_cpu(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    std::memcpy(dst.data_ptr(), src.data_ptr(), size_t(dst.numel()) * dst.element_size());
    return;
  }
  ANVIL_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using D = scalar_t;
    ANVIL_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      using S = scalar_t;
      unary_map<D, S>(dst, src, [](S v) { return convert<D, S>(v); });
    });
  });
}

void fill_cpu(const Tensor& dst, const Scalar& value) {
  ANVIL_DISPATCH_ALL(dst.dtype(), "fill_", [&] {
    scalar_t v = value.to<compute_t<scalar_t>>();
    auto plan = make_plan<1>({&dst});
    run_plan(plan, [&](char** p, const int64_t* s, int64_t n) {
      for (int64_t i = 0; i < n; ++i) *reinterpret_cast<scalar_t*>(p[0] + i * s[0]) = v;
    });
  });
}

ANVIL_REGISTER_KERNEL(backend::copy_kernels, CPU, &copy_cpu);
ANVIL_REGISTER_KERNEL(backend::fill_kernels, CPU, &fill_cpu);

}  // namespace
}  // namespace anvil::cpu
