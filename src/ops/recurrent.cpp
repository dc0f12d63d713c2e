// recurrent_layer: the step loop of one recurrent layer and direction as one autograd node.
// Forward, per step: gh = h W_hh^T + b_hh (a product) and the gate kernel, which writes the
// next states, the step's output and the activations the backward reads. Backward, per step
// from the last: the gate kernel turns the state's gradient into the gates' (dgi, and dgh for
// the GRU), then dh_prev = dgh W_hh (a product); W_hh's and b_hh's gradients come from one
// product over all steps at the end. States are kept in time order, so a reverse direction
// uses the same buffers and the same final product.
#include "anvil/ops/recurrent.h"

#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "backend/linear_kernels.h"
#include "backend/matmul_kernels.h"
#include "backend/recurrent_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {

using backend::RecurrentGates;

constexpr const char* kOp = "recurrent_layer";

RecurrentGates gates_of(RecurrentCell c) {
  switch (c) {
    case RecurrentCell::RNNTanh:
      return RecurrentGates::RNNTanh;
    case RecurrentCell::RNNRelu:
      return RecurrentGates::RNNRelu;
    case RecurrentCell::LSTM:
      return RecurrentGates::LSTM;
    case RecurrentCell::GRU:
      break;
  }
  return RecurrentGates::GRU;
}

int64_t gate_count(RecurrentCell c) {
  return c == RecurrentCell::LSTM ? 4 : c == RecurrentCell::GRU ? 3 : 1;
}

void check_shape(const Tensor& t, const Shape& want, const char* arg) {
  ANVIL_CHECK(t.shape() == want, ShapeError, kOp, ": expected ", arg, " of shape ", to_string(want),
              ", got ", to_string(t.shape()));
}

void check_args(RecurrentCell cell, const Tensor& gi, const Tensor& h0, const Tensor& c0,
                const Tensor& w_hh, const Tensor& b_hh, const Tensor& keep) {
  ops::check_defined(gi, kOp, "gi");
  ops::check_defined(h0, kOp, "h0");
  ops::check_defined(w_hh, kOp, "w_hh");
  ops::check_floating(gi, kOp, "gi");
  ops::check_same_device({gi, h0, c0, w_hh, b_hh, keep}, kOp);
  const bool lstm = cell == RecurrentCell::LSTM;
  ANVIL_CHECK(lstm == c0.defined(), ValueError, kOp,
              lstm ? ": an LSTM needs c0" : ": c0 is only for an LSTM");
  ANVIL_CHECK(h0.dim() == 2, ShapeError, kOp, ": expected h0 [N, H], got shape ",
              to_string(h0.shape()));
  const int64_t N = h0.size(0), H = h0.size(1), G = gate_count(cell);
  ANVIL_CHECK(gi.dim() == 3 && gi.size(1) == N && gi.size(2) == G * H, ShapeError, kOp,
              ": expected gi [T, ", N, ", ", G * H, "] (", G, " gates of h0's ", H,
              " units), got shape ", to_string(gi.shape()));
  check_shape(w_hh, {G * H, H}, "w_hh");
  if (b_hh.defined()) check_shape(b_hh, {G * H}, "b_hh");
  if (lstm) check_shape(c0, {N, H}, "c0");
  for (const Tensor* t : {&h0, &c0, &w_hh, &b_hh})
    ANVIL_CHECK(!t->defined() || t->dtype() == gi.dtype(), DTypeError, kOp,
                ": expected every tensor of gi's dtype ", dtype_name(gi.dtype()), ", got ",
                dtype_name(t->dtype()));
  if (keep.defined()) {
    check_shape(keep, {gi.size(0), N}, "keep");
    ANVIL_CHECK(keep.dtype() == kBool, DTypeError, kOp, ": expected keep of dtype bool, got ",
                dtype_name(keep.dtype()));
  }
}

// What the forward keeps for the backward, all in time order.
struct Saved {
  RecurrentCell cell;
  bool reverse;
  Tensor h_prev;  // [T, N, H] the state each step started from
  Tensor c_prev;  // [T, N, H] (LSTM)
  Tensor gates;   // [T, N, saved_gate_width]
  Tensor keep;    // [T, N] or undefined
  Tensor w_hh;
  bool bias;
};

Tensor at_step(const Tensor& t, int64_t step) { return t.defined() ? t.select(0, step) : Tensor(); }

// [dgi, dh0, dc0, dw_hh, db_hh] from the gradients of output, h_n and c_n.
std::vector<Tensor> backward(const Saved& s, const Tensor& g_out, const Tensor& g_hn,
                             const Tensor& g_cn) {
  NoGradGuard no_grad;
  const Device dev = g_out.device();
  const int64_t T = s.h_prev.size(0), N = s.h_prev.size(1), H = s.h_prev.size(2);
  const int64_t GH = gate_count(s.cell) * H;
  const bool lstm = s.cell == RecurrentCell::LSTM, gru = s.cell == RecurrentCell::GRU;
  const TensorOptions opts = g_out.options();
  Tensor dgi = Tensor::empty({T, N, GH}, opts);
  Tensor dgh = gru ? Tensor::empty({T, N, GH}, opts) : dgi;
  Tensor dh_part = g_hn.contiguous().clone(), dh_mm = Tensor::empty({N, H}, opts);
  Tensor dc = lstm ? g_cn.contiguous().clone() : Tensor();
  const Tensor w = s.w_hh.contiguous();
  for (int64_t i = 0; i < T; ++i) {
    const int64_t t = s.reverse ? i : T - 1 - i;
    backend::gates_backward_kernels[dev](gates_of(s.cell),
                                         {.dh_mm = i == 0 ? Tensor() : dh_mm,
                                          .dh_part = dh_part,
                                          .dy = g_out.select(0, t),
                                          .dc = dc,
                                          .saved = s.gates.select(0, t),
                                          .h_prev = s.h_prev.select(0, t),
                                          .c_prev = at_step(s.c_prev, t),
                                          .keep = at_step(s.keep, t),
                                          .dgi = dgi.select(0, t),
                                          .dgh = gru ? dgh.select(0, t) : Tensor(),
                                          .dh_prev_part = dh_part,
                                          .dc_prev = dc});
    backend::matmul_kernels[dev](dh_mm, dgh.select(0, t), w, false, false);
  }
  Tensor dh0 = T == 0 ? dh_part : add(dh_mm, dh_part);
  Tensor dw = Tensor::empty({GH, H}, opts), db = s.bias ? Tensor::empty({GH}, opts) : Tensor();
  if (T == 0) {
    dw.zero_();
    if (db.defined()) db.zero_();
  } else {
    backend::linear_wgrad_kernels[dev](dw, db, dgh.view({T * N, GH}), s.h_prev.view({T * N, H}));
  }
  return {dgi, dh0, dc, dw, db};
}

}  // namespace

RecurrentLayerOutput recurrent_layer(RecurrentCell cell, const Tensor& gi_in, const Tensor& h0,
                                     const Tensor& c0, const Tensor& w_hh, const Tensor& b_hh,
                                     bool reverse, const Tensor& keep_in) {
  check_args(cell, gi_in, h0, c0, w_hh, b_hh, keep_in);
  const int64_t T = gi_in.size(0), N = h0.size(0), H = h0.size(1), GH = gi_in.size(2);
  const bool lstm = cell == RecurrentCell::LSTM;
  const Device dev = gi_in.device();
  const TensorOptions opts = gi_in.options();
  const RecurrentGates gates = gates_of(cell);
  Saved s{cell,
          reverse,
          Tensor::empty({T, N, H}, opts),
          lstm ? Tensor::empty({T, N, H}, opts) : Tensor(),
          Tensor::empty({T, N, backend::saved_gate_width(gates, H)}, opts),
          keep_in.defined() ? keep_in.contiguous() : Tensor(),
          w_hh.detach(),
          b_hh.defined()};
  // The three results in one buffer, so that one node carries them (autograd's nodes have one
  // output; the views' gradients are gathered into the buffer's).
  const int64_t out_n = T * N * H, state_n = N * H;
  Tensor packed = Tensor::empty({out_n + state_n * (lstm ? 2 : 1)}, opts);
  Tensor output = packed.narrow(0, 0, out_n).view({T, N, H});
  Tensor h_n = packed.narrow(0, out_n, state_n).view({N, H});
  Tensor c_n = lstm ? packed.narrow(0, out_n + state_n, state_n).view({N, H}) : Tensor();
  {
    NoGradGuard no_grad;
    const Tensor gi = gi_in.detach().contiguous(), w = w_hh.detach().contiguous();
    const Tensor b = b_hh.defined() ? b_hh.detach().contiguous() : Tensor();
    if (T == 0) {
      h_n.copy_(h0);
      if (lstm) c_n.copy_(c0);
    } else {
      s.h_prev.select(0, reverse ? T - 1 : 0).copy_(h0);
      if (lstm) s.c_prev.select(0, reverse ? T - 1 : 0).copy_(c0);
    }
    Tensor gh = Tensor::empty({N, GH}, opts);
    for (int64_t i = 0; i < T; ++i) {
      const int64_t t = reverse ? T - 1 - i : i, next = reverse ? t - 1 : t + 1;
      const bool last = i + 1 == T;
      const Tensor h_prev = s.h_prev.select(0, t);
      backend::linear_act_kernels[dev](gh, h_prev, w, b, backend::LinearAct::None, false);
      backend::gates_forward_kernels[dev](gates, {.gi = gi.select(0, t),
                                                  .gh = gh,
                                                  .h_prev = h_prev,
                                                  .c_prev = at_step(s.c_prev, t),
                                                  .keep = at_step(s.keep, t),
                                                  .h_next = last ? h_n : s.h_prev.select(0, next),
                                                  .c_next = !lstm  ? Tensor()
                                                            : last ? c_n
                                                                   : s.c_prev.select(0, next),
                                                  .output = output.select(0, t),
                                                  .saved = s.gates.select(0, t)});
    }
  }
  packed = autograd::record(
      "RecurrentLayerBackward", packed, {gi_in, h0, c0, w_hh, b_hh},
      [s, T, N, H, out_n, state_n, lstm](const Tensor& g) {
        const Tensor gc = g.contiguous();
        return backward(s, gc.narrow(0, 0, out_n).view({T, N, H}),
                        gc.narrow(0, out_n, state_n).view({N, H}),
                        lstm ? gc.narrow(0, out_n + state_n, state_n).view({N, H}) : Tensor());
      });
  if (!packed.requires_grad()) return {output, h_n, c_n};
  return {packed.narrow(0, 0, out_n).view({T, N, H}), packed.narrow(0, out_n, state_n).view({N, H}),
          lstm ? packed.narrow(0, out_n + state_n, state_n).view({N, H}) : Tensor()};
}

}  // namespace anvil
