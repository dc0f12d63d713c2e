// The gate arithmetic of one recurrent step, forward and backward, for every row n of a batch
// and unit j of the hidden size H at once (the products around it are matmuls). Gates follow
// torch's order and equations:
//   RNN:  h' = act(a),  a = gi + gh
//   LSTM: i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (gi + gh);  c' = f c + i g;
//         h' = o tanh(c')
//   GRU:  r, z = sigmoid(gi_r + gh_r), sigmoid(gi_z + gh_z);  n = tanh(gi_n + r gh_n);
//         h' = n + z (h - n)
// where gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh are [N, G * H] (G = 1, 4 or 3 gates).
// Where keep[n] is false (padding of a shorter sequence) the state passes through unchanged,
// the output row is zero and no gradient reaches the gates.
//
// Every tensor is a contiguous [N, width] block (or [N] for keep, bool) of one floating dtype;
// the arithmetic is in the dtype's compute type (float for 16-bit types), rounded once.
#pragma once
#include <cmath>

#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

#if defined(__CUDACC__)
#define ANVIL_HD __host__ __device__
#else
#define ANVIL_HD
#endif

namespace anvil::backend {

enum class RecurrentGates { RNNTanh, RNNRelu, LSTM, GRU };

// Width of one step's saved activations, per row: RNN h' (H), LSTM i, f, g, o (4H),
// GRU r, z, n, gh_n (4H).
inline int64_t saved_gate_width(RecurrentGates g, int64_t hidden) {
  return g == RecurrentGates::RNNTanh || g == RecurrentGates::RNNRelu ? hidden : 4 * hidden;
}

struct GatesForward {
  Tensor gi, gh;          // [N, G * H]
  Tensor h_prev, c_prev;  // [N, H]; c only for LSTM
  Tensor keep;            // [N] bool, or undefined: every row steps
  Tensor h_next, c_next;  // [N, H] the states after the step (c only for LSTM)
  Tensor output;          // [N, H] the step's output: h' where kept, else 0
  Tensor saved;           // [N, saved_gate_width] what the backward reads
};
using GatesForwardFn = void(RecurrentGates, const GatesForward&);

// Gradients through one step. The state after the step has gradient dh = dh_mm + dh_part (either
// may be undefined: zero) and, for an LSTM, dc; the step's output has gradient dy (undefined:
// zero). Written: dgi [N, G * H], the gradient of gi; dgh, that of gh (GRU only, where it
// differs from dgi: its n gate is r times dgi's); and the gradients of the state before the step
// that do not pass through W_hh, dh_prev_part and (LSTM) dc_prev. dh_prev_part may be dh_part
// and dc_prev may be dc (updated in place).
struct GatesBackward {
  Tensor dh_mm, dh_part, dy, dc;
  Tensor saved, h_prev, c_prev, keep;
  Tensor dgi, dgh, dh_prev_part, dc_prev;
};
using GatesBackwardFn = void(RecurrentGates, const GatesBackward&);

inline constinit KernelTable<GatesForwardFn> gates_forward_kernels{"recurrent_gates_forward"};
inline constinit KernelTable<GatesBackwardFn> gates_backward_kernels{"recurrent_gates_backward"};

// ---- the arithmetic of one unit j of one row, shared by the CPU and CUDA kernels --------------
// Pointers are the row's starts; C is the compute type.

template <class C>
ANVIL_HD inline C gate_tanh(C v) {
#if defined(__CUDA_ARCH__)
  return tanh(v);
#else
  return std::tanh(v);
#endif
}

template <class C>
ANVIL_HD inline C gate_sigmoid(C v) {
#if defined(__CUDA_ARCH__)
  return C(1) / (C(1) + exp(-v));
#else
  return C(1) / (C(1) + std::exp(-v));
#endif
}

// up: T -> C, down: C -> T (the backends' conversions).
template <RecurrentGates K, class C, class T, class Up, class Down>
ANVIL_HD inline void gates_forward_unit(const T* gi, const T* gh, const T* h_prev, const T* c_prev,
                                        bool keep, T* h_next, T* c_next, T* out, T* saved,
                                        int64_t j, int64_t H, Up up, Down down) {
  const C hp = up(h_prev[j]);
  C h = 0;
  if constexpr (K == RecurrentGates::LSTM) {
    const C i = gate_sigmoid(up(gi[j]) + up(gh[j]));
    const C f = gate_sigmoid(up(gi[H + j]) + up(gh[H + j]));
    const C g = gate_tanh(up(gi[2 * H + j]) + up(gh[2 * H + j]));
    const C o = gate_sigmoid(up(gi[3 * H + j]) + up(gh[3 * H + j]));
    const C cp = up(c_prev[j]);
    const C c = f * cp + i * g;
    h = o * gate_tanh(c);
    saved[j] = down(i), saved[H + j] = down(f), saved[2 * H + j] = down(g);
    saved[3 * H + j] = down(o);
    c_next[j] = down(keep ? c : cp);
  } else if constexpr (K == RecurrentGates::GRU) {
    const C r = gate_sigmoid(up(gi[j]) + up(gh[j]));
    const C z = gate_sigmoid(up(gi[H + j]) + up(gh[H + j]));
    const C ghn = up(gh[2 * H + j]);
    const C n = gate_tanh(up(gi[2 * H + j]) + r * ghn);
    h = n + z * (hp - n);
    saved[j] = down(r), saved[H + j] = down(z), saved[2 * H + j] = down(n);
    saved[3 * H + j] = gh[2 * H + j];
  } else {
    const C a = up(gi[j]) + up(gh[j]);
    h = K == RecurrentGates::RNNTanh ? gate_tanh(a) : (a > C(0) ? a : C(0));
    saved[j] = down(h);
  }
  h_next[j] = down(keep ? h : hp);
  out[j] = down(keep ? h : C(0));
}

// dh_mm, dh_part, dy, dc may be null (zero); dgh is written only for the GRU.
template <RecurrentGates K, class C, class T, class Up, class Down>
ANVIL_HD inline void gates_backward_unit(const T* dh_mm, const T* dh_part, const T* dy, const T* dc,
                                         const T* saved, const T* h_prev, const T* c_prev,
                                         bool keep, T* dgi, T* dgh, T* dh_prev_part, T* dc_prev,
                                         int64_t j, int64_t H, Up up, Down down) {
  constexpr int64_t G = K == RecurrentGates::LSTM ? 4 : K == RecurrentGates::GRU ? 3 : 1;
  const C dh_state = (dh_mm ? up(dh_mm[j]) : C(0)) + (dh_part ? up(dh_part[j]) : C(0));
  const C dc_state = dc ? up(dc[j]) : C(0);
  if (!keep) {  // the state passed through: so does its gradient, and the gates get none
    for (int64_t g = 0; g < G; ++g) {
      dgi[g * H + j] = down(C(0));
      if (K == RecurrentGates::GRU) dgh[g * H + j] = down(C(0));
    }
    dh_prev_part[j] = down(dh_state);
    if (K == RecurrentGates::LSTM) dc_prev[j] = down(dc_state);
    return;
  }
  const C dh = dh_state + (dy ? up(dy[j]) : C(0));
  if constexpr (K == RecurrentGates::LSTM) {
    const C i = up(saved[j]), f = up(saved[H + j]), g = up(saved[2 * H + j]);
    const C o = up(saved[3 * H + j]), cp = up(c_prev[j]);
    const C tc = gate_tanh(f * cp + i * g);
    const C dct = dc_state + dh * o * (C(1) - tc * tc);
    dgi[j] = down(dct * g * i * (C(1) - i));
    dgi[H + j] = down(dct * cp * f * (C(1) - f));
    dgi[2 * H + j] = down(dct * i * (C(1) - g * g));
    dgi[3 * H + j] = down(dh * tc * o * (C(1) - o));
    dh_prev_part[j] = down(C(0));
    dc_prev[j] = down(dct * f);
  } else if constexpr (K == RecurrentGates::GRU) {
    const C r = up(saved[j]), z = up(saved[H + j]), n = up(saved[2 * H + j]);
    const C ghn = up(saved[3 * H + j]), hp = up(h_prev[j]);
    const C dan = dh * (C(1) - z) * (C(1) - n * n);
    const C dar = dan * ghn * r * (C(1) - r), daz = dh * (hp - n) * z * (C(1) - z);
    dgi[j] = dgh[j] = down(dar);
    dgi[H + j] = dgh[H + j] = down(daz);
    dgi[2 * H + j] = down(dan);
    dgh[2 * H + j] = down(dan * r);
    dh_prev_part[j] = down(dh * z);
  } else {
    const C h = up(saved[j]);
    dgi[j] = down(K == RecurrentGates::RNNTanh ? dh * (C(1) - h * h) : h > C(0) ? dh : C(0));
    dh_prev_part[j] = down(C(0));
  }
}

}  // namespace anvil::backend
