// CUDA recurrent gates: one thread per unit (n, j) of the batch's [N, H] state; the arithmetic
// is backend/recurrent_kernels.h's, shared with the CPU kernel.
#include "backend/cuda/launch.cuh"
#include "backend/recurrent_kernels.h"

namespace anvil::cuda {
namespace {

using backend::RecurrentGates;

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

template <class T>
struct ForwardArgs {
  const T *gi, *gh, *h_prev, *c_prev;
  const bool* keep;
  T *h_next, *c_next, *out, *saved;
  int64_t H, gw, sw, n;
};

template <class T>
struct BackwardArgs {
  const T *dh_mm, *dh_part, *dy, *dc, *saved, *h_prev, *c_prev;
  const bool* keep;
  T *dgi, *dgh, *dh_prev_part, *dc_prev;
  int64_t H, gw, sw, n;
};

// p + off, or null for an absent operand.
template <class P>
__device__ P* at(P* p, int64_t off) {
  return p ? p + off : nullptr;
}

template <RecurrentGates K, class T>
__global__ void gates_forward_kernel(ForwardArgs<T> a) {
  using C = compute_t<T>;
  auto to_c = [](T v) { return up(v); };
  auto to_t = [](C v) { return down<T>(v); };
  ANVIL_GRID_STRIDE(e, a.n) {
    const int64_t r = e / a.H, j = e % a.H, h = r * a.H;
    backend::gates_forward_unit<K, C>(
        a.gi + r * a.gw, a.gh + r * a.gw, a.h_prev + h, at(a.c_prev, h), a.keep ? a.keep[r] : true,
        a.h_next + h, at(a.c_next, h), a.out + h, a.saved + r * a.sw, j, a.H, to_c, to_t);
  }
}

template <RecurrentGates K, class T>
__global__ void gates_backward_kernel(BackwardArgs<T> a) {
  using C = compute_t<T>;
  auto to_c = [](T v) { return up(v); };
  auto to_t = [](C v) { return down<T>(v); };
  ANVIL_GRID_STRIDE(e, a.n) {
    const int64_t r = e / a.H, j = e % a.H, h = r * a.H;
    backend::gates_backward_unit<K, C>(
        at(a.dh_mm, h), at(a.dh_part, h), at(a.dy, h), at(a.dc, h), a.saved + r * a.sw,
        a.h_prev + h, at(a.c_prev, h), a.keep ? a.keep[r] : true, a.dgi + r * a.gw,
        at(a.dgh, r * a.gw), a.dh_prev_part + h, at(a.dc_prev, h), j, a.H, to_c, to_t);
  }
}

template <class F>
void with_gates(RecurrentGates g, F&& f) {
  switch (g) {
    case RecurrentGates::RNNTanh:
      return f.template operator()<RecurrentGates::RNNTanh>();
    case RecurrentGates::RNNRelu:
      return f.template operator()<RecurrentGates::RNNRelu>();
    case RecurrentGates::LSTM:
      return f.template operator()<RecurrentGates::LSTM>();
    case RecurrentGates::GRU:
      return f.template operator()<RecurrentGates::GRU>();
  }
}

void gates_forward_cuda(RecurrentGates g, const backend::GatesForward& t) {
  const int64_t n = t.h_prev.numel();
  if (n == 0) return;
  DeviceGuard guard(t.h_prev.device().index);
  ANVIL_DISPATCH_FLOAT(t.gi.dtype(), "recurrent gates", [&] {
    using T = dev_t<scalar_t>;
    const ForwardArgs<T> a{ptr_or_null<const T>(t.gi),
                           ptr_or_null<const T>(t.gh),
                           ptr_or_null<const T>(t.h_prev),
                           ptr_or_null<const T>(t.c_prev),
                           ptr_or_null<const bool>(t.keep),
                           ptr_or_null<T>(t.h_next),
                           ptr_or_null<T>(t.c_next),
                           ptr_or_null<T>(t.output),
                           ptr_or_null<T>(t.saved),
                           t.h_prev.size(1),
                           t.gi.size(1),
                           t.saved.size(1),
                           n};
    with_gates(g, [&]<RecurrentGates K>() {
      gates_forward_kernel<K, T><<<blocks_for(n), kThreads, 0, current_stream()>>>(a);
    });
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void gates_backward_cuda(RecurrentGates g, const backend::GatesBackward& t) {
  const int64_t n = t.h_prev.numel();
  if (n == 0) return;
  DeviceGuard guard(t.h_prev.device().index);
  ANVIL_DISPATCH_FLOAT(t.dgi.dtype(), "recurrent gates backward", [&] {
    using T = dev_t<scalar_t>;
    const BackwardArgs<T> a{ptr_or_null<const T>(t.dh_mm),
                            ptr_or_null<const T>(t.dh_part),
                            ptr_or_null<const T>(t.dy),
                            ptr_or_null<const T>(t.dc),
                            ptr_or_null<const T>(t.saved),
                            ptr_or_null<const T>(t.h_prev),
                            ptr_or_null<const T>(t.c_prev),
                            ptr_or_null<const bool>(t.keep),
                            ptr_or_null<T>(t.dgi),
                            ptr_or_null<T>(t.dgh),
                            ptr_or_null<T>(t.dh_prev_part),
                            ptr_or_null<T>(t.dc_prev),
                            t.h_prev.size(1),
                            t.dgi.size(1),
                            t.saved.size(1),
                            n};
    with_gates(g, [&]<RecurrentGates K>() {
      gates_backward_kernel<K, T><<<blocks_for(n), kThreads, 0, current_stream()>>>(a);
    });
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::gates_forward_kernels, CUDA, &gates_forward_cuda);
ANVIL_REGISTER_KERNEL(backend::gates_backward_kernels, CUDA, &gates_backward_cuda);

}  // namespace
}  // namespace anvil::cuda
