// One direction of one recurrent layer over a whole sequence, as one autograd op: the step loop
// runs a product h W_hh^T + b_hh and one fused gate kernel per step, and its backward walks
// back through time with one fused gate kernel and one product per step, then forms W_hh's
// and b_hh's gradients in a single product over all steps. nn::RNN, LSTM and GRU are built on
// it; the input projection x W_ih^T + b_ih of every step is the caller's one matmul.
#pragma once
#include "anvil/core/tensor.h"

namespace anvil {

// The cell's equations are torch's (see anvil/nn/rnn.h): RNN with tanh or relu, LSTM with
// gates i, f, g, o, GRU with r, z, n.
enum class RecurrentCell { RNNTanh, RNNRelu, LSTM, GRU };

struct RecurrentLayerOutput {
  Tensor output;  // [T, N, H] h at every step (0 at padded steps), in time order
  Tensor h_n;     // [N, H] the state after the last step processed
  Tensor c_n;     // [N, H] the LSTM's cell state after it; undefined for RNN and GRU
};

// gi [T, N, G * H]: the input's projection x W_ih^T + b_ih at every step (G = 1, 4 or 3 gates);
// h0 [N, H] and, for an LSTM, c0 [N, H]; w_hh [G * H, H]; b_hh [G * H] or undefined. reverse
// runs the steps from T - 1 down to 0 (a bidirectional layer's second direction). keep
// (optional, bool [T, N]): false marks padding, where the state passes through unchanged, the
// output is 0 and no gradient reaches the gates (torch's packed sequences). All floating
// tensors have one dtype and device; 16-bit dtypes compute in float32 and store the states
// rounded. Gradients flow to gi, h0, c0, w_hh and b_hh.
// Throws ShapeError for shapes that do not fit together, DTypeError for mixed or non-floating
// dtypes (or a keep that is not bool), DeviceError for tensors on different devices.
RecurrentLayerOutput recurrent_layer(RecurrentCell cell, const Tensor& gi, const Tensor& h0,
                                     const Tensor& c0, const Tensor& w_hh, const Tensor& b_hh,
                                     bool reverse = false, const Tensor& keep = {});

}  // namespace anvil
