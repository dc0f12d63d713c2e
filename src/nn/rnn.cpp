#include "anvil/nn/rnn.h"

#include <cmath>

#include "anvil/nn/init.h"
#include "anvil/ops/activation.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/dropout.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/join.h"
#include "anvil/ops/linalg.h"
#include "anvil/ops/recurrent.h"

namespace anvil::nn {
namespace {

using Kind = RNNBase::Kind;

int64_t gates_of(Kind k) {
  switch (k) {
    case Kind::LSTM:
      return 4;
    case Kind::GRU:
      return 3;
    default:
      return 1;
  }
}

// One parameter U(-1/sqrt(H), 1/sqrt(H)), as torch's reset_parameters.
Tensor uniform_param(Module& m, const std::string& name, const Shape& shape, int64_t hidden) {
  const double k = 1.0 / std::sqrt(double(hidden));
  return m.register_parameter(name, init::uniform_(empty(shape), -k, k));
}

// The step from (h, c) given the input's projection gi = x W_ih^T + b_ih at this step.
struct StepState {
  Tensor h, c;
};
StepState step(Kind kind, const Tensor& gi, const StepState& s, const Tensor& w_hh,
               const Tensor& b_hh, const Tensor& w_hr) {
  const Tensor gh = linear(s.h, w_hh, b_hh);
  switch (kind) {
    case Kind::RNNTanh:
      return {tanh(add(gi, gh)), Tensor()};
    case Kind::RNNRelu:
      return {relu(add(gi, gh)), Tensor()};
    case Kind::LSTM: {
      const std::vector<Tensor> g = chunk(add(gi, gh), 4, -1);  // i, f, g, o
      const Tensor c = add(mul(sigmoid(g[1]), s.c), mul(sigmoid(g[0]), tanh(g[2])));
      Tensor h = mul(sigmoid(g[3]), tanh(c));
      if (w_hr.defined()) h = linear(h, w_hr);
      return {h, c};
    }
    case Kind::GRU: {
      const std::vector<Tensor> a = chunk(gi, 3, -1), b = chunk(gh, 3, -1);  // r, z, n
      const Tensor r = sigmoid(add(a[0], b[0])), z = sigmoid(add(a[1], b[1]));
      const Tensor n = tanh(add(a[2], mul(r, b[2])));
      // (1 - z) n + z h = n + z (h - n)
      return {add(n, mul(z, sub(s.h, n))), Tensor()};
    }
  }
  return {};
}

// The shape a state must have, written for an error message.
std::string shape_text(const Shape& s) { return to_string(s); }

}  // namespace

// ---- RNNBase ----

RNNBase::RNNBase(Kind k, int64_t input, int64_t hidden, const RNNOptions& o, const char* name)
    : kind(k), input_size(input), hidden_size(hidden), options(o), name_(name) {
  ANVIL_CHECK(input >= 1 && hidden >= 1 && o.num_layers >= 1, ValueError, name_,
              ": expected input_size, hidden_size and num_layers of at least 1, got ", input, ", ",
              hidden, " and ", o.num_layers);
  ANVIL_CHECK(o.dropout >= 0 && o.dropout <= 1, ValueError, name_,
              ": expected dropout in [0, 1], got ", o.dropout);
  ANVIL_CHECK(o.proj_size >= 0 && o.proj_size < hidden, ValueError, name_,
              ": expected proj_size in [0, hidden_size) = [0, ", hidden, "), got ", o.proj_size);
  ANVIL_CHECK(o.proj_size == 0 || k == Kind::LSTM, ValueError, name_,
              ": proj_size is only for LSTM, got ", o.proj_size);
  const int64_t g = gates_of(k), h_out = output_size(), d = num_directions();
  for (int64_t l = 0; l < o.num_layers; ++l)
    for (int64_t dir = 0; dir < d; ++dir) {
      const std::string sfx = "_l" + std::to_string(l) + (dir == 1 ? "_reverse" : "");
      const int64_t in = l == 0 ? input : h_out * d;
      Weights w;
      w.w_ih = uniform_param(*this, "weight_ih" + sfx, {g * hidden, in}, hidden);
      w.w_hh = uniform_param(*this, "weight_hh" + sfx, {g * hidden, h_out}, hidden);
      if (o.bias) {
        w.b_ih = uniform_param(*this, "bias_ih" + sfx, {g * hidden}, hidden);
        w.b_hh = uniform_param(*this, "bias_hh" + sfx, {g * hidden}, hidden);
      }
      if (o.proj_size > 0)
        w.w_hr = uniform_param(*this, "weight_hr" + sfx, {h_out, hidden}, hidden);
      weights_.push_back(w);
    }
}

const RNNBase::Weights& RNNBase::weights(int64_t layer, int64_t direction) const {
  ANVIL_CHECK(
      layer >= 0 && layer < options.num_layers && direction >= 0 && direction < num_directions(),
      IndexError, name_, ": no layer ", layer, " direction ", direction, " (", options.num_layers,
      " layers, ", num_directions(), " directions)");
  return weights_[size_t(layer * num_directions() + direction)];
}

Tensor RNNBase::forward(const Tensor& input) {
  const Output r = forward(input, Tensor(), Tensor());
  if (one_tensor == OneTensor::Sequence) return r.output;
  const int64_t d = num_directions();
  const Tensor last = r.h_n.narrow(0, r.h_n.size(0) - d, d);  // [D, N, H_out] or [D, H_out]
  return d == 1 ? last.select(0, 0) : cat({last.select(0, 0), last.select(0, 1)}, -1);
}

RNNBase::Output RNNBase::forward(const Tensor& input, const Tensor& h0, const Tensor& c0,
                                 const Tensor& lengths) {
  return forward_with(weights_, input, h0, c0, lengths);
}

RNNBase::Output RNNBase::forward_with(const std::vector<Weights>& weights, const Tensor& input,
                                      const Tensor& h0, const Tensor& c0,
                                      const Tensor& lengths) const {
  ANVIL_CHECK(weights.size() == weights_.size(), ValueError, name_, ": expected ", weights_.size(),
              " sets of weights (layers x directions), got ", weights.size());
  ANVIL_CHECK(input.defined() && (input.dim() == 2 || input.dim() == 3), ShapeError, name_,
              ": expected input [T, N, ", input_size, "] (batched) or [T, ", input_size,
              "] (unbatched), got ",
              input.defined() ? "shape " + to_string(input.shape()) : "an undefined tensor");
  ANVIL_CHECK(input.size(-1) == input_size, ShapeError, name_, ": expected input of ", input_size,
              " features, got shape ", to_string(input.shape()));
  const bool lstm = kind == Kind::LSTM;
  ANVIL_CHECK(lstm || !c0.defined(), ValueError, name_, ": c0 is only for LSTM");
  const bool batched = input.dim() == 3;
  // Seq-first [T, N, F] inside.
  Tensor x = !batched ? input.unsqueeze(1) : options.batch_first ? input.transpose(0, 1) : input;
  const int64_t T = x.size(0), N = x.size(1), L = options.num_layers, D = num_directions();
  const int64_t h_out = output_size();
  const Shape h_shape = batched ? Shape{L * D, N, h_out} : Shape{L * D, h_out};
  const Shape c_shape = batched ? Shape{L * D, N, hidden_size} : Shape{L * D, hidden_size};
  auto state = [&](const Tensor& s, const Shape& want, int64_t features, const char* what) {
    if (!s.defined())
      return zeros({L * D, N, features}, TensorOptions(x.dtype()).device(x.device()));
    ANVIL_CHECK(s.shape() == want, ShapeError, name_, ": expected ", what, " of shape ",
                shape_text(want), ", got ", to_string(s.shape()));
    return batched ? s : s.unsqueeze(1);
  };
  // [T, N]: whether step t is one of sequence n's own (undefined: all are).
  Tensor keep;
  if (lengths.defined()) {
    ANVIL_CHECK(
        batched && lengths.dim() == 1 && lengths.size(0) == N && !lengths.is_floating_point(),
        ShapeError, name_, ": expected integer lengths of shape [", N,
        "] (one per sequence of a batched input), got ", dtype_name(lengths.dtype()), " of shape ",
        to_string(lengths.shape()));
    const Tensor host = lengths.to(kCPU, kInt64).contiguous();
    for (int64_t n = 0; n < N; ++n) {
      const int64_t len = host.data<int64_t>()[n];
      ANVIL_CHECK(len >= 1 && len <= T, ValueError, name_, ": expected lengths in [1, ", T,
                  "] (the sequence's steps), got ", len, " for sequence ", n);
    }
    const Tensor steps = arange(0, T, 1, TensorOptions(kInt64).device(x.device()));
    keep = lt(steps.view({T, 1}), host.to(x.device()).view({1, N}));
  }
  const Tensor zero = scalar_tensor(0.0, TensorOptions(x.dtype()).device(x.device()));
  const Tensor h_init = state(h0, h_shape, h_out, "h0");
  const Tensor c_init = lstm ? state(c0, c_shape, hidden_size, "c0") : Tensor();

  std::vector<Tensor> h_last, c_last;
  for (int64_t l = 0; l < L; ++l) {
    std::vector<Tensor> directions;
    for (int64_t dir = 0; dir < D; ++dir) {
      const Weights& w = weights[size_t(l * D + dir)];
      // The input projection of every step in one product: [T, N, G * H].
      const Tensor gi = linear(x, w.w_ih, w.b_ih);
      const Tensor h_start = h_init.select(0, l * D + dir);
      const Tensor c_start = lstm ? c_init.select(0, l * D + dir) : Tensor();
      if (!w.w_hr.defined()) {  // the fused step loop (a projection keeps the composed one)
        const RecurrentLayerOutput r =
            recurrent_layer(kind, gi, h_start, c_start, w.w_hh, w.b_hh, dir == 1, keep);
        directions.push_back(r.output);
        h_last.push_back(r.h_n);
        if (lstm) c_last.push_back(r.c_n);
        continue;
      }
      StepState s{h_start, c_start};
      std::vector<Tensor> outs(static_cast<size_t>(T));
      for (int64_t i = 0; i < T; ++i) {
        const int64_t t = dir == 0 ? i : T - 1 - i;
        const StepState next = step(kind, gi.select(0, t), s, w.w_hh, w.b_hh, w.w_hr);
        if (keep.defined()) {  // padding keeps the state and outputs zeros
          const Tensor k = keep.select(0, t).unsqueeze(-1);
          s = {where(k, next.h, s.h), lstm ? where(k, next.c, s.c) : Tensor()};
          outs[size_t(t)] = where(k, next.h, zero);
        } else {
          s = next;
          outs[size_t(t)] = s.h;
        }
      }
      directions.push_back(T > 0 ? stack(outs, 0) : empty({0, N, h_out}, x.options()));
      h_last.push_back(s.h);
      if (lstm) c_last.push_back(s.c);
    }
    x = D == 1 ? directions[0] : cat(directions, -1);
    if (l + 1 < L && options.dropout > 0) x = dropout(x, options.dropout, is_training());
  }
  Output r{x, stack(h_last, 0), lstm ? stack(c_last, 0) : Tensor()};
  if (!batched) {
    r.output = r.output.squeeze(1);
    r.h_n = r.h_n.squeeze(1);
    if (lstm) r.c_n = r.c_n.squeeze(1);
  } else if (options.batch_first) {
    r.output = r.output.transpose(0, 1);
  }
  return r;
}

std::string RNNBase::extra_repr() const {
  std::string s = std::to_string(input_size) + ", " + std::to_string(hidden_size);
  if (options.proj_size > 0) s += ", proj_size=" + std::to_string(options.proj_size);
  if (options.num_layers != 1) s += ", num_layers=" + std::to_string(options.num_layers);
  if (kind == Kind::RNNRelu) s += ", nonlinearity='relu'";
  if (!options.bias) s += ", bias=False";
  if (options.batch_first) s += ", batch_first=True";
  if (options.dropout != 0) s += ", dropout=" + detail::cat(options.dropout);
  if (options.bidirectional) s += ", bidirectional=True";
  return s;
}

namespace {
Kind rnn_kind(const std::string& nonlinearity) {
  ANVIL_CHECK(nonlinearity == "tanh" || nonlinearity == "relu", ValueError,
              "RNN: expected nonlinearity \"tanh\" or \"relu\", got \"", nonlinearity, "\"");
  return nonlinearity == "tanh" ? Kind::RNNTanh : Kind::RNNRelu;
}
}  // namespace

RNN::RNN(int64_t input, int64_t hidden, const RNNOptions& o)
    : RNNBase(rnn_kind(o.nonlinearity), input, hidden, o, "RNN") {}
LSTM::LSTM(int64_t input, int64_t hidden, const RNNOptions& o)
    : RNNBase(Kind::LSTM, input, hidden, o, "LSTM") {}
GRU::GRU(int64_t input, int64_t hidden, const RNNOptions& o)
    : RNNBase(Kind::GRU, input, hidden, o, "GRU") {}

// ---- cells ----

namespace {

struct CellParams {
  Tensor w_ih, w_hh, b_ih, b_hh;
};
CellParams cell_params(Module& m, int64_t gates, int64_t input, int64_t hidden, bool bias,
                       const char* who) {
  ANVIL_CHECK(input >= 1 && hidden >= 1, ValueError, who,
              ": expected input_size and hidden_size of at least 1, got ", input, " and ", hidden);
  CellParams p;
  p.w_ih = uniform_param(m, "weight_ih", {gates * hidden, input}, hidden);
  p.w_hh = uniform_param(m, "weight_hh", {gates * hidden, hidden}, hidden);
  if (bias) {
    p.b_ih = uniform_param(m, "bias_ih", {gates * hidden}, hidden);
    p.b_hh = uniform_param(m, "bias_hh", {gates * hidden}, hidden);
  }
  return p;
}

// A cell's input as [N, input_size] and whether it was unbatched.
Tensor cell_input(const Tensor& x, int64_t input_size, const char* who) {
  ANVIL_CHECK(x.defined() && (x.dim() == 1 || x.dim() == 2) && x.size(-1) == input_size, ShapeError,
              who, ": expected input [N, ", input_size, "] or [", input_size, "], got ",
              x.defined() ? "shape " + to_string(x.shape()) : "an undefined tensor");
  return x.dim() == 1 ? x.unsqueeze(0) : x;
}

// A cell's state as [N, hidden] (zeros when undefined).
Tensor cell_state(const Tensor& s, const Tensor& input, int64_t hidden, const char* who,
                  const char* what) {
  const bool batched = input.dim() == 2;
  const int64_t n = batched ? input.size(0) : 1;
  if (!s.defined()) return zeros({n, hidden}, TensorOptions(input.dtype()).device(input.device()));
  const Shape want = batched ? Shape{n, hidden} : Shape{hidden};
  ANVIL_CHECK(s.shape() == want, ShapeError, who, ": expected ", what, " of shape ",
              to_string(want), ", got ", to_string(s.shape()));
  return batched ? s : s.unsqueeze(0);
}

Tensor unbatch(const Tensor& t, const Tensor& input) { return input.dim() == 1 ? t.squeeze(0) : t; }

}  // namespace

RNNCell::RNNCell(int64_t input, int64_t hidden, bool bias, const std::string& nonlinearity)
    : input_size(input), hidden_size(hidden), relu(rnn_kind(nonlinearity) == Kind::RNNRelu) {
  const CellParams p = cell_params(*this, 1, input, hidden, bias, "RNNCell");
  weight_ih = p.w_ih, weight_hh = p.w_hh, bias_ih = p.b_ih, bias_hh = p.b_hh;
}

Tensor RNNCell::forward(const Tensor& input, const Tensor& hx) {
  const Tensor x = cell_input(input, input_size, "RNNCell");
  const Tensor h = cell_state(hx, input, hidden_size, "RNNCell", "hx");
  const StepState s = step(relu ? Kind::RNNRelu : Kind::RNNTanh, linear(x, weight_ih, bias_ih),
                           {h, Tensor()}, weight_hh, bias_hh, Tensor());
  return unbatch(s.h, input);
}

LSTMCell::LSTMCell(int64_t input, int64_t hidden, bool bias)
    : input_size(input), hidden_size(hidden) {
  const CellParams p = cell_params(*this, 4, input, hidden, bias, "LSTMCell");
  weight_ih = p.w_ih, weight_hh = p.w_hh, bias_ih = p.b_ih, bias_hh = p.b_hh;
}

LSTMCell::State LSTMCell::forward(const Tensor& input, const Tensor& hx, const Tensor& cx) {
  const Tensor x = cell_input(input, input_size, "LSTMCell");
  const Tensor h = cell_state(hx, input, hidden_size, "LSTMCell", "hx");
  const Tensor c = cell_state(cx, input, hidden_size, "LSTMCell", "cx");
  const StepState s =
      step(Kind::LSTM, linear(x, weight_ih, bias_ih), {h, c}, weight_hh, bias_hh, Tensor());
  return {unbatch(s.h, input), unbatch(s.c, input)};
}

GRUCell::GRUCell(int64_t input, int64_t hidden, bool bias)
    : input_size(input), hidden_size(hidden) {
  const CellParams p = cell_params(*this, 3, input, hidden, bias, "GRUCell");
  weight_ih = p.w_ih, weight_hh = p.w_hh, bias_ih = p.b_ih, bias_hh = p.b_hh;
}

Tensor GRUCell::forward(const Tensor& input, const Tensor& hx) {
  const Tensor x = cell_input(input, input_size, "GRUCell");
  const Tensor h = cell_state(hx, input, hidden_size, "GRUCell", "hx");
  const StepState s =
      step(Kind::GRU, linear(x, weight_ih, bias_ih), {h, Tensor()}, weight_hh, bias_hh, Tensor());
  return unbatch(s.h, input);
}

}  // namespace anvil::nn
