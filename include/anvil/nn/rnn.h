// Recurrent layers as torch.nn.RNN, LSTM and GRU, and their cells.
//
//   nn::LSTM lstm(10, 20, {.num_layers = 2, .batch_first = true});
//   auto [out, h_n, c_n] = lstm(x, {});          // x [N, T, 10] -> out [N, T, 20], zero states
//   auto [out2, h2, c2] = lstm(x, h_n, c_n);     // from given initial states
//   Tensor seq = lstm(x);                        // the output sequence alone
//   nn::GRU gru(10, 20, {.bidirectional = true});
//   auto r = gru(x_seq_first, {});               // r.output [T, N, 40], r.h_n [2, N, 20]
//
// Gates follow torch's order and equations: LSTM i, f, g, o; GRU r, z, n with
// n = tanh(W_in x + b_in + r * (W_hn h + b_hn)). Parameters and state-dict keys are torch's, per
// layer l and direction (suffix "_reverse" for the backward one): weight_ih_l{l} [G * H, in],
// weight_hh_l{l} [G * H, H_out], bias_ih_l{l} and bias_hh_l{l} [G * H] (with `bias`), and for an
// LSTM with proj_size weight_hr_l{l} [proj_size, H]; G is 1 (RNN), 4 (LSTM) or 3 (GRU), H the
// hidden size and H_out proj_size or H. Every parameter starts U(-1/sqrt(H), 1/sqrt(H)), as in
// torch, so a torch model's state dict (saved with safetensors) loads 1:1.
//
// Each layer and direction projects the input of all steps at once (one matmul), then runs its
// step loop as one op, recurrent_layer (anvil/ops/recurrent.h): a product and one fused gate
// kernel a step, forward and backward. An LSTM with proj_size composes its steps from anvil's
// ops instead. Both run on any device.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "anvil/nn/module.h"
#include "anvil/ops/recurrent.h"

namespace anvil::nn {

// The constructor's arguments after input_size and hidden_size, for designated initialisers.
struct RNNOptions {
  int64_t num_layers = 1;
  std::string nonlinearity = "tanh";  // RNN only: "tanh" or "relu"
  bool bias = true;
  bool batch_first = false;  // input and output [N, T, F] instead of [T, N, F]; states unchanged
  double dropout = 0.0;      // on every layer's output but the last, in training mode
  bool bidirectional = false;
  int64_t proj_size = 0;  // LSTM only: h is projected to this size (0: none)
};

class RNNBase : public Module {
 public:
  using Kind = RecurrentCell;  // RNNTanh, RNNRelu, LSTM, GRU

  // output: [T, N, D * H_out] ([N, T, ...] when batch_first; [T, D * H_out] unbatched), the last
  // layer's h at every step, both directions concatenated (forward first). h_n: [L * D, N,
  // H_out] ([L * D, H_out] unbatched), each layer and direction's final h (layer-major, forward
  // first). c_n: the LSTM's final cell states [L * D, N, H]; undefined for RNN and GRU.
  // Binds as `auto [out, h_n, c_n] = lstm(x, {});`.
  struct Output {
    Tensor output, h_n, c_n;
  };

  // input [T, N, input_size] ([N, T, ...] when batch_first, or unbatched [T, input_size]);
  // h0 [L * D, N, H_out] and (LSTM) c0 [L * D, N, H], zeros when undefined.
  // lengths (optional, integer [N], in any order): sequence n is its first lengths[n] steps, the
  // rest padding, as torch's pack_padded_sequence(..., enforce_sorted=False) and
  // pad_packed_sequence: padded steps neither change the states nor get gradients, their
  // outputs are zeros, h_n and c_n are each sequence's own last step (for the reverse direction
  // the step at 0, having started from h0 at its last real step). The lengths are read on the
  // host (a CUDA graph cannot capture that read).
  // Throws ShapeError naming the layer for an input of the wrong rank or features and for
  // states or lengths of the wrong shape, ValueError for c0 given to an RNN or GRU and for
  // lengths outside [1, T].
  Output forward(const Tensor& input, const Tensor& h0, const Tensor& c0 = {},
                 const Tensor& lengths = {});
  Output operator()(const Tensor& input, const Tensor& h0, const Tensor& c0 = {},
                    const Tensor& lengths = {}) {
    return forward(input, h0, c0, lengths);
  }
  // The output sequence alone (for Sequential and the model builder).
  Tensor forward(const Tensor& input) override;
  using Module::operator();
  std::string extra_repr() const override;

  const Kind kind;
  const int64_t input_size, hidden_size;
  const RNNOptions options;
  // What the one-tensor forward returns (Sequential, ModelBuilder): the output sequence, or the
  // last layer's final h of each direction concatenated, [N, D * H_out] (a sequence
  // classifier's summary).
  enum class OneTensor { Sequence, LastState };
  OneTensor one_tensor = OneTensor::Sequence;
  int64_t num_directions() const { return options.bidirectional ? 2 : 1; }
  int64_t output_size() const { return options.proj_size > 0 ? options.proj_size : hidden_size; }
  // Parameters of layer l, direction d, in torch's order: w_ih, w_hh, b_ih, b_hh, w_hr (the
  // biases and w_hr undefined where absent).
  struct Weights {
    Tensor w_ih, w_hh, b_ih, b_hh, w_hr;
  };
  const Weights& weights(int64_t layer, int64_t direction) const;
  // The module's forward with other weights (functional use: one Weights per layer and
  // direction, layer-major, forward first, shaped as the module's). Throws ValueError for a
  // list of the wrong length.
  Output forward_with(const std::vector<Weights>& weights, const Tensor& input,
                      const Tensor& h0 = {}, const Tensor& c0 = {},
                      const Tensor& lengths = {}) const;

 protected:
  // Throws ValueError for sizes below 1 (input_size, hidden_size, num_layers), proj_size not in
  // [0, hidden_size) or given to another kind, dropout outside [0, 1], or an unknown
  // nonlinearity.
  RNNBase(Kind kind, int64_t input_size, int64_t hidden_size, const RNNOptions& options,
          const char* name);

 private:
  std::vector<Weights> weights_;  // layer-major, forward first
  const char* name_;
};

class RNN : public RNNBase {
 public:
  RNN(int64_t input_size, int64_t hidden_size, const RNNOptions& options = {});
};

class LSTM : public RNNBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, const RNNOptions& options = {});
};

class GRU : public RNNBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, const RNNOptions& options = {});
};

// ---- cells: one step, torch.nn.RNNCell / LSTMCell / GRUCell ---------------------------------
// Parameters weight_ih [G * H, input_size], weight_hh [G * H, H], bias_ih and bias_hh [G * H]
// (with `bias`), U(-1/sqrt(H), 1/sqrt(H)). input [N, input_size] or unbatched [input_size];
// states [N, H] ([H]), zeros when undefined. Throws ShapeError for inputs or states of the
// wrong shape.

class RNNCell : public Module {
 public:
  RNNCell(int64_t input_size, int64_t hidden_size, bool bias = true,
          const std::string& nonlinearity = "tanh");
  Tensor forward(const Tensor& input, const Tensor& hx);  // -> h'
  Tensor forward(const Tensor& input) override { return forward(input, Tensor()); }
  int64_t input_size, hidden_size;
  bool relu;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

class LSTMCell : public Module {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, bool bias = true);
  struct State {
    Tensor h, c;
  };
  State forward(const Tensor& input, const Tensor& hx, const Tensor& cx);  // -> (h', c')
  Tensor forward(const Tensor& input) override { return forward(input, {}, {}).h; }
  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

class GRUCell : public Module {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, bool bias = true);
  Tensor forward(const Tensor& input, const Tensor& hx);  // -> h'
  Tensor forward(const Tensor& input) override { return forward(input, Tensor()); }
  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

}  // namespace anvil::nn
