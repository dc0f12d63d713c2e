// CPU recurrent gates: rows of the batch in parallel, the units of a row in one loop (the
// arithmetic is backend/recurrent_kernels.h's, shared with CUDA).
#include "backend/cpu/loops.h"
#include "backend/recurrent_kernels.h"

namespace anvil::cpu {
namespace {

using backend::RecurrentGates;

// Row n of an optional [N, width] tensor (null when undefined).
template <class T>
T* row_or_null(const Tensor& t, int64_t n, int64_t width) {
  return t.defined() ? t.data<T>() + n * width : nullptr;
}

template <RecurrentGates K, class T>
void forward_rows(const backend::GatesForward& a) {
  using C = compute_t<T>;
  const int64_t N = a.h_prev.size(0), H = a.h_prev.size(1);
  const int64_t gw = a.gi.size(1), sw = a.saved.size(1);
  const bool* keep = a.keep.defined() ? a.keep.data<bool>() : nullptr;
  auto up = [](T v) { return C(v); };
  auto down = [](C v) { return T(v); };
  parallel_for(N, 16 * gw, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const T* gi = a.gi.data<T>() + n * gw;
      const T* gh = a.gh.data<T>() + n * gw;
      const T* hp = a.h_prev.data<T>() + n * H;
      const T* cp = row_or_null<T>(a.c_prev, n, H);
      T* hn = a.h_next.data<T>() + n * H;
      T* cn = row_or_null<T>(a.c_next, n, H);
      T* out = a.output.data<T>() + n * H;
      T* saved = a.saved.data<T>() + n * sw;
      const bool k = keep ? keep[n] : true;
      for (int64_t j = 0; j < H; ++j)
        backend::gates_forward_unit<K, C>(gi, gh, hp, cp, k, hn, cn, out, saved, j, H, up, down);
    }
  });
}

template <RecurrentGates K, class T>
void backward_rows(const backend::GatesBackward& a) {
  using C = compute_t<T>;
  const int64_t N = a.h_prev.size(0), H = a.h_prev.size(1);
  const int64_t gw = a.dgi.size(1), sw = a.saved.size(1);
  const bool* keep = a.keep.defined() ? a.keep.data<bool>() : nullptr;
  auto up = [](T v) { return C(v); };
  auto down = [](C v) { return T(v); };
  parallel_for(N, 16 * gw, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const T* dh_mm = row_or_null<T>(a.dh_mm, n, H);
      const T* dh_part = row_or_null<T>(a.dh_part, n, H);
      const T* dy = row_or_null<T>(a.dy, n, H);
      const T* dc = row_or_null<T>(a.dc, n, H);
      const T* saved = a.saved.data<T>() + n * sw;
      const T* hp = a.h_prev.data<T>() + n * H;
      const T* cp = row_or_null<T>(a.c_prev, n, H);
      T* dgi = a.dgi.data<T>() + n * gw;
      T* dgh = row_or_null<T>(a.dgh, n, gw);
      T* dhp = a.dh_prev_part.data<T>() + n * H;
      T* dcp = row_or_null<T>(a.dc_prev, n, H);
      const bool k = keep ? keep[n] : true;
      for (int64_t j = 0; j < H; ++j)
        backend::gates_backward_unit<K, C>(dh_mm, dh_part, dy, dc, saved, hp, cp, k, dgi, dgh, dhp,
                                           dcp, j, H, up, down);
    }
  });
}

// Calls f.template operator()<K>() for the runtime cell kind.
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

void gates_forward_cpu(RecurrentGates g, const backend::GatesForward& a) {
  if (a.h_prev.numel() == 0) return;
  ANVIL_DISPATCH_FLOAT(a.gi.dtype(), "recurrent gates", [&] {
    with_gates(g, [&]<RecurrentGates K>() { forward_rows<K, scalar_t>(a); });
  });
}

void gates_backward_cpu(RecurrentGates g, const backend::GatesBackward& a) {
  if (a.h_prev.numel() == 0) return;
  ANVIL_DISPATCH_FLOAT(a.dgi.dtype(), "recurrent gates backward", [&] {
    with_gates(g, [&]<RecurrentGates K>() { backward_rows<K, scalar_t>(a); });
  });
}

ANVIL_REGISTER_KERNEL(backend::gates_forward_kernels, CPU, &gates_forward_cpu);
ANVIL_REGISTER_KERNEL(backend::gates_backward_kernels, CPU, &gates_backward_cpu);

}  // namespace
}  // namespace anvil::cpu
