// RNN, LSTM and GRU and their cells against torch.nn's (state dicts loaded strictly into torch's
// modules, so the keys are torch's): outputs, final states, and the gradients of the inputs,
// initial states and every parameter, across layers, directions, batch_first, proj_size,
// biases, unbatched inputs, variable lengths (torch's packed sequences); float64 finite
// differences; initialisation bounds; bad input.
#include <string>
#include <vector>

#include "anvil/nn/model_builder.h"
#include "anvil/nn/nn.h"
#include "anvil/optim/optimizer.h"
#include "support/check.h"
#include "support/module_oracle.h"

using namespace anvil;

namespace {

using test::ModuleCase;

Tensor rnd(const Shape& s, uint64_t seed, DType dt = kFloat32) {
  return test::uniform(s, seed, -1, 1, dt);
}

struct Config {
  std::string kind;  // "RNN", "RNN_relu", "LSTM", "GRU"
  int64_t layers = 1;
  bool bidirectional = false, batch_first = false, bias = true;
  int64_t proj = 0;
};

std::string describe(const Config& c) {
  return c.kind + " layers " + std::to_string(c.layers) + (c.bidirectional ? " bi" : "") +
         (c.batch_first ? " batch_first" : "") + (c.bias ? "" : " no bias") +
         (c.proj ? " proj " + std::to_string(c.proj) : "");
}

std::shared_ptr<nn::RNNBase> make(const Config& c, int64_t in, int64_t hidden) {
  nn::RNNOptions o{.num_layers = c.layers,
                   .nonlinearity = c.kind == "RNN_relu" ? "relu" : "tanh",
                   .bias = c.bias,
                   .batch_first = c.batch_first,
                   .bidirectional = c.bidirectional,
                   .proj_size = c.proj};
  if (c.kind == "LSTM") return std::make_shared<nn::LSTM>(in, hidden, o);
  if (c.kind == "GRU") return std::make_shared<nn::GRU>(in, hidden, o);
  return std::make_shared<nn::RNN>(in, hidden, o);
}

std::string torch_ctor(const Config& c, int64_t in, int64_t hidden) {
  const std::string cls = c.kind == "RNN_relu" ? "RNN" : c.kind;
  std::string s = "torch.nn." + cls + "(" + std::to_string(in) + ", " + std::to_string(hidden) +
                  ", num_layers=" + std::to_string(c.layers) +
                  ", bias=" + (c.bias ? "True" : "False") +
                  ", batch_first=" + (c.batch_first ? "True" : "False") +
                  ", bidirectional=" + (c.bidirectional ? "True" : "False");
  if (c.kind == "RNN_relu") s += ", nonlinearity='relu'";
  if (c.proj) s += ", proj_size=" + std::to_string(c.proj);
  return s + ")";
}

// The module against torch's on x (and given initial states when `states`).
::testing::AssertionResult matches(const Config& c, bool batched, bool states) {
  const int64_t in = 5, hidden = 6, T = 4, N = 3, D = c.bidirectional ? 2 : 1;
  const int64_t h_out = c.proj ? c.proj : hidden;
  manual_seed(11);
  auto m = make(c, in, hidden);
  const bool lstm = c.kind == "LSTM";
  Shape xs = !batched ? Shape{T, in} : c.batch_first ? Shape{N, T, in} : Shape{T, N, in};
  auto state_shape = [&](int64_t f) {
    return batched ? Shape{c.layers * D, N, f} : Shape{c.layers * D, f};
  };
  ModuleCase mc{.ctor = torch_ctor(c, in, hidden), .call = "", .inputs = {rnd(xs, 1)}};
  if (states) {
    mc.inputs.push_back(rnd(state_shape(h_out), 2));
    if (lstm) mc.inputs.push_back(rnd(state_shape(hidden), 3));
  }
  // torch returns (output, h_n) or (output, (h_n, c_n)): flattened for the comparison.
  const std::string args = !states ? "x[0]" : lstm ? "x[0], (x[1], x[2])" : "x[0], x[1]";
  mc.call = lstm ? "(lambda r: (r[0], r[1][0], r[1][1]))(m(" + args + "))"
                 : "(lambda r: (r[0], r[1]))(m(" + args + "))";
  return test::module_matches_torch(*m, mc, [&](const std::vector<Tensor>& x) {
    auto [out, h, cn] = states ? (*m)(x[0], x[1], lstm ? x[2] : Tensor()) : (*m)(x[0], {});
    return std::vector<Tensor>{out, h, cn};  // cn undefined (dropped) but for LSTM
  });
}

TEST(Recurrent, MatchesTorchAcrossOptions) {
  std::vector<Config> configs;
  for (const char* kind : {"RNN", "RNN_relu", "LSTM", "GRU"}) {
    configs.push_back({kind});
    configs.push_back({kind, 2, true, false});
    configs.push_back({kind, 2, false, true, false});
    configs.push_back({kind, 3, true, true});
  }
  configs.push_back({"LSTM", 1, false, false, true, 4});
  configs.push_back({"LSTM", 2, true, true, true, 3});
  for (const Config& c : configs)
    for (bool states : {false, true}) {
      EXPECT_TRUE(matches(c, true, states)) << describe(c) << (states ? " with states" : "");
    }
  for (const Config& c : {Config{"LSTM", 2, true}, Config{"GRU"}, Config{"RNN"}})
    EXPECT_TRUE(matches(c, false, true)) << describe(c) << " unbatched";
}

// Variable lengths against torch's pack_padded_sequence(enforce_sorted=False) and
// pad_packed_sequence: outputs (zeros at padding), each sequence's final states, gradients.
TEST(Recurrent, LengthsMatchTorchsPackedSequences) {
  const Tensor lengths = tensor(std::vector<int64_t>{4, 2, 3}, {3});
  for (const Config& c :
       {Config{"LSTM", 2, true, true}, Config{"GRU", 1, true, false},
        Config{"RNN", 2, false, false}, Config{"LSTM", 1, true, false, true, 3}}) {
    SCOPED_TRACE(describe(c));
    const int64_t in = 5, hidden = 6, T = 4, N = 3, D = c.bidirectional ? 2 : 1;
    const int64_t h_out = c.proj ? c.proj : hidden;
    const bool lstm = c.kind == "LSTM";
    manual_seed(12);
    auto m = make(c, in, hidden);
    const std::string bf = c.batch_first ? "True" : "False";
    ModuleCase mc{.ctor = torch_ctor(c, in, hidden),
                  .call = "",
                  .inputs = {rnd(c.batch_first ? Shape{N, T, in} : Shape{T, N, in}, 1),
                             rnd({c.layers * D, N, h_out}, 2)}};
    if (lstm) mc.inputs.push_back(rnd({c.layers * D, N, hidden}, 3));
    const std::string packed =
        "torch.nn.utils.rnn.pack_padded_sequence(x[0], [4, 2, 3], batch_first=" + bf +
        ", enforce_sorted=False)";
    const std::string unpack =
        "torch.nn.utils.rnn.pad_packed_sequence(r[0], batch_first=" + bf + ", total_length=4)[0]";
    mc.call =
        lstm ? "(lambda r: (" + unpack + ", r[1][0], r[1][1]))(m(" + packed + ", (x[1], x[2])))"
             : "(lambda r: (" + unpack + ", r[1]))(m(" + packed + ", x[1]))";
    EXPECT_TRUE(test::module_matches_torch(*m, mc, [&](const std::vector<Tensor>& x) {
      auto [out, h, cn] = (*m)(x[0], x[1], lstm ? x[2] : Tensor(), lengths);
      return std::vector<Tensor>{out, h, cn};
    }));
  }
  // Full lengths are no padding at all.
  manual_seed(3);
  nn::GRU gru(5, 6, {.bidirectional = true});
  const Tensor x = rnd({4, 3, 5}, 4);
  auto [a, ha, ca] = gru(x, {});
  auto [b, hb, cb] = gru(x, {}, {}, full({3}, 4, TensorOptions(kInt64)));
  EXPECT_TRUE(equal(a, b));
  EXPECT_TRUE(equal(ha, hb));
}

TEST(Recurrent, StateDictKeysAndShapesAreTorchs) {
  nn::LSTM lstm(5, 6, {.num_layers = 2, .bidirectional = true, .proj_size = 3});
  std::vector<std::string> names;
  for (const auto& [k, v] : lstm.named_parameters()) names.push_back(k + to_string(v.shape()));
  EXPECT_EQ(names, (std::vector<std::string>{"weight_ih_l0[24, 5]",
                                             "weight_hh_l0[24, 3]",
                                             "bias_ih_l0[24]",
                                             "bias_hh_l0[24]",
                                             "weight_hr_l0[3, 6]",
                                             "weight_ih_l0_reverse[24, 5]",
                                             "weight_hh_l0_reverse[24, 3]",
                                             "bias_ih_l0_reverse[24]",
                                             "bias_hh_l0_reverse[24]",
                                             "weight_hr_l0_reverse[3, 6]",
                                             "weight_ih_l1[24, 6]",
                                             "weight_hh_l1[24, 3]",
                                             "bias_ih_l1[24]",
                                             "bias_hh_l1[24]",
                                             "weight_hr_l1[3, 6]",
                                             "weight_ih_l1_reverse[24, 6]",
                                             "weight_hh_l1_reverse[24, 3]",
                                             "bias_ih_l1_reverse[24]",
                                             "bias_hh_l1_reverse[24]",
                                             "weight_hr_l1_reverse[3, 6]"}));
  // torch's initialisation: U(-1/sqrt(H), 1/sqrt(H)) everywhere.
  nn::GRU gru(7, 16);
  for (const Tensor& p : gru.parameters()) {
    EXPECT_LE(amax(abs(p), {}).item<double>(), 0.25);
    EXPECT_GT(amax(abs(p), {}).item<double>(), 0.2);  // spread over the range, not zeros
  }
}

TEST(Recurrent, CellsMatchTorch) {
  const Tensor x = rnd({3, 5}, 1), h = rnd({3, 6}, 2), c = rnd({3, 6}, 3);
  manual_seed(4);
  nn::RNNCell rc(5, 6, true, "relu");
  EXPECT_TRUE(test::module_matches_torch(
      rc,
      {.ctor = "torch.nn.RNNCell(5, 6, nonlinearity='relu')",
       .call = "m(x[0], x[1])",
       .inputs = {x, h}},
      [&](const std::vector<Tensor>& t) { return std::vector<Tensor>{rc.forward(t[0], t[1])}; }));
  nn::LSTMCell lc(5, 6);
  EXPECT_TRUE(test::module_matches_torch(
      lc, {.ctor = "torch.nn.LSTMCell(5, 6)", .call = "m(x[0], (x[1], x[2]))", .inputs = {x, h, c}},
      [&](const std::vector<Tensor>& t) {
        auto [h2, c2] = lc.forward(t[0], t[1], t[2]);
        return std::vector<Tensor>{h2, c2};
      }));
  nn::GRUCell gc(5, 6, false);
  EXPECT_TRUE(test::module_matches_torch(
      gc, {.ctor = "torch.nn.GRUCell(5, 6, bias=False)", .call = "m(x[0])", .inputs = {x}},
      [&](const std::vector<Tensor>& t) { return std::vector<Tensor>{gc.forward(t[0])}; }));
  // Unbatched.
  EXPECT_TRUE(test::module_matches_torch(
      gc,
      {.ctor = "torch.nn.GRUCell(5, 6, bias=False)",
       .call = "m(x[0], x[1])",
       .inputs = {rnd({5}, 5), rnd({6}, 6)}},
      [&](const std::vector<Tensor>& t) { return std::vector<Tensor>{gc.forward(t[0], t[1])}; }));
}

// Finite differences in float64 through the whole recurrence: inputs, initial states and
// every weight (through forward_with).
TEST(Recurrent, GradientsByFiniteDifferences) {
  for (const Config& c : {Config{"LSTM", 2, true, true, true, 2}, Config{"GRU", 2, true},
                          Config{"RNN", 1, false, false, false}}) {
    SCOPED_TRACE(describe(c));
    manual_seed(5);
    auto m = make(c, 3, 4);
    // The GRU's second sequence is one step of three: its padding must get no gradient.
    const Tensor lengths = c.kind == "GRU" ? tensor(std::vector<int64_t>{3, 1}, {2}) : Tensor();
    const bool lstm = c.kind == "LSTM";
    const int64_t d = c.bidirectional ? 2 : 1, h_out = c.proj ? c.proj : 4, sets = c.layers * d;
    std::vector<Tensor> in = {rnd(c.batch_first ? Shape{2, 3, 3} : Shape{3, 2, 3}, 1, kFloat64),
                              rnd({sets, 2, h_out}, 2, kFloat64),
                              lstm ? rnd({sets, 2, 4}, 3, kFloat64) : Tensor()};
    for (int64_t i = 0; i < sets; ++i) {
      const nn::RNNBase::Weights& w = m->weights(i / d, i % d);
      for (const Tensor* t : {&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh, &w.w_hr})
        in.push_back(t->defined() ? t->detach().to(kFloat64).requires_grad_() : Tensor());
    }
    in[0].requires_grad_();
    in[1].requires_grad_();
    if (lstm) in[2].requires_grad_();
    EXPECT_TRUE(test::gradcheck(
        [&](const std::vector<Tensor>& t) {
          std::vector<nn::RNNBase::Weights> ws;
          for (int64_t i = 0; i < sets; ++i) {
            const size_t b = 3 + size_t(i) * 5;
            ws.push_back({t[b], t[b + 1], t[b + 2], t[b + 3], t[b + 4]});
          }
          auto [out, h, cn] = m->forward_with(ws, t[0], t[1], t[2], lengths);
          Tensor total = add(sum(mul(out, out)), sum(h));
          return lstm ? add(total, sum(mul(cn, 0.5))) : total;
        },
        in));
  }
}

// The fused step loop alone, in float64, for every cell, both directions, with and without a
// bias and padding: its output, h_n and c_n together against finite differences in gi, h0,
// c0, w_hh and b_hh.
TEST(Recurrent, StepLoopGradientsByFiniteDifferences) {
  const int64_t T = 4, N = 3, H = 2;
  const Tensor keep = lt(arange(0, T, 1, TensorOptions(kInt64)).view({T, 1}),
                         tensor(std::vector<int64_t>{4, 1, 3}, {3}).view({1, N}));
  for (RecurrentCell cell : {RecurrentCell::RNNTanh, RecurrentCell::RNNRelu, RecurrentCell::LSTM,
                             RecurrentCell::GRU})
    for (bool reverse : {false, true})
      for (bool padded : {false, true}) {
        SCOPED_TRACE(std::to_string(int(cell)) + (reverse ? " reverse" : "") +
                     (padded ? " padded" : ""));
        const bool lstm = cell == RecurrentCell::LSTM, bias = !padded;
        const int64_t G = lstm ? 4 : cell == RecurrentCell::GRU ? 3 : 1;
        std::vector<Tensor> in = {rnd({T, N, G * H}, 1, kFloat64), rnd({N, H}, 2, kFloat64),
                                  lstm ? rnd({N, H}, 3, kFloat64) : Tensor(),
                                  rnd({G * H, H}, 4, kFloat64),
                                  bias ? rnd({G * H}, 5, kFloat64) : Tensor()};
        for (Tensor& t : in)
          if (t.defined()) t.requires_grad_();
        EXPECT_TRUE(test::gradcheck(
            [&](const std::vector<Tensor>& t) {
              const RecurrentLayerOutput r = recurrent_layer(cell, t[0], t[1], t[2], t[3], t[4],
                                                             reverse, padded ? keep : Tensor());
              std::vector<Tensor> parts = {r.output.reshape({-1}), r.h_n.reshape({-1})};
              if (lstm) parts.push_back(r.c_n.reshape({-1}));
              return cat(parts, 0);
            },
            in));
      }
}

// Padding steps pass the state through and output zeros; the gates get no gradient there.
TEST(Recurrent, StepLoopPaddingPassesTheStateThrough) {
  const int64_t T = 3, N = 2, H = 3;
  const Tensor keep = lt(arange(0, T, 1, TensorOptions(kInt64)).view({T, 1}),
                         tensor(std::vector<int64_t>{3, 1}, {2}).view({1, N}));
  const Tensor gi = rnd({T, N, 4 * H}, 1).requires_grad_();
  const Tensor h0 = rnd({N, H}, 2), c0 = rnd({N, H}, 3), w = rnd({4 * H, H}, 4);
  const RecurrentLayerOutput r =
      recurrent_layer(RecurrentCell::LSTM, gi, h0, c0, w, Tensor(), false, keep);
  // Sequence 1 steps only at t = 0: its final states are those after step 0.
  EXPECT_TRUE(test::all_close(r.h_n.select(0, 1), r.output.select(0, 0).select(0, 1), 0, 0));
  EXPECT_TRUE(test::all_close(r.output.select(0, 1).select(0, 1), zeros({H}), 0, 0));
  EXPECT_TRUE(test::all_close(r.output.select(0, 2).select(0, 1), zeros({H}), 0, 0));
  sum(add(r.output, mul(r.h_n, 2.0))).backward();
  EXPECT_TRUE(test::all_close(gi.grad().select(0, 1).select(0, 1), zeros({4 * H}), 0, 0));
  EXPECT_TRUE(test::all_close(gi.grad().select(0, 2).select(0, 1), zeros({4 * H}), 0, 0));
  EXPECT_GT(max(abs(gi.grad().select(0, 0).select(0, 1))).item<float>(), 0.0f);
}

TEST(Recurrent, BadInputNamesTheLayerAndTheShapes) {
  nn::LSTM lstm(5, 6, {.num_layers = 2});
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        (void)lstm(rnd({4, 3, 7}, 1));
      },
      {"LSTM", "5 features", "[4, 3, 7]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        (void)lstm(rnd({2, 4, 3, 5}, 1));
      },
      {"LSTM", "[T, N, 5]", "[2, 4, 3, 5]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        (void)lstm.forward(rnd({4, 3, 5}, 1), rnd({1, 3, 6}, 2));
      },
      {"LSTM", "h0", "[2, 3, 6]", "[1, 3, 6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        (void)lstm.forward(rnd({4, 3, 5}, 1), Tensor(), rnd({2, 3, 5}, 2));
      },
      {"LSTM", "c0", "[2, 3, 6]", "[2, 3, 5]"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        (void)lstm(rnd({4, 3, 5}, 1), {}, {}, tensor(std::vector<int64_t>{4, 5, 1}, {3}));
      },
      {"LSTM", "lengths in [1, 4]", "got 5 for sequence 1"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        (void)lstm(rnd({4, 3, 5}, 1), {}, {}, tensor(std::vector<int64_t>{4, 4}, {2}));
      },
      {"LSTM", "lengths of shape [3]", "[2]"}));
  nn::GRU gru(5, 6);
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        (void)gru.forward(rnd({4, 3, 5}, 1), Tensor(), rnd({1, 3, 6}, 2));
      },
      {"GRU", "c0", "only for LSTM"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::GRU(5, 6, {.proj_size = 2}); },
                                            {"GRU", "proj_size", "only for LSTM"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::LSTM(5, 6, {.proj_size = 6}); },
                                            {"LSTM", "proj_size", "[0, 6)"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::RNN(5, 6, {.nonlinearity = "gelu"}); },
                                            {"RNN", "nonlinearity", "gelu"}));
  nn::LSTMCell cell(5, 6);
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        (void)cell.forward(rnd({3, 5}, 1), rnd({2, 6}, 2), Tensor());
      },
      {"LSTMCell", "hx", "[3, 6]", "[2, 6]"}));
}

TEST(Recurrent, DropoutBetweenLayersOnlyInTraining) {
  manual_seed(3);
  nn::GRU gru(4, 8, {.num_layers = 2, .dropout = 0.5});
  const Tensor x = rnd({5, 2, 4}, 1);
  gru.eval();
  const Tensor a = gru(x), b = gru(x);
  EXPECT_TRUE(equal(a, b));
  gru.train();
  EXPECT_FALSE(equal(gru(x), a));
  // One layer: dropout has nothing to act on (torch warns), so training changes nothing.
  nn::GRU one(4, 8, {.dropout = 0.5});
  one.eval();
  const Tensor e = one(x);
  one.train();
  EXPECT_TRUE(equal(one(x), e));
}

// ModelBuilder: embedding -> bidirectional LSTM -> its last states -> dense, from JSON, learns
// whether a sequence's first token is at least 4 (the reverse direction's final state has just
// read it); "sequence" keeps the steps.
TEST(Recurrent, BuilderSequenceClassifier) {
  const nlohmann::json spec = nlohmann::json::parse(R"({
    "input_shape": [8],
    "layers": [
      {"type": "embedding", "num_embeddings": 8, "embedding_dim": 12},
      {"type": "lstm", "hidden_size": 16, "num_layers": 1, "bidirectional": true,
       "return": "last_state", "dropout": 0.0},
      {"type": "dense", "units": 2}
    ]
  })");
  nn::ModelBuilder b = nn::ModelBuilder::from_json(spec, 64);
  EXPECT_EQ(b.output_shape(), (Shape{64, 2}));
  EXPECT_EQ(nn::ModelBuilder::from_json(b.to_json(), 64).to_json(), b.to_json());
  manual_seed(4);
  auto model = b.build();
  Generator gen(5);
  const Tensor x = randint(0, 8, {256, 8}, kInt64, &gen);
  const Tensor y = ge(x.select(1, 0), 4).to(kInt64);
  auto opt = optim::make_optimizer("adam", model->parameters(), 1e-2);
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    opt->zero_grad();
    Tensor loss = cross_entropy((*model)(x), y);
    loss.backward();
    opt->step();
    last = loss.item<float>();
    if (step == 0) first = last;
  }
  EXPECT_LT(last, 0.2 * first) << "loss " << first << " -> " << last;
  // The one-tensor forward's "last_state" is h_n's last layer, directions concatenated.
  nn::GRU gru(4, 5, {.num_layers = 2, .batch_first = true, .bidirectional = true});
  const Tensor seq = rnd({3, 6, 4}, 7);
  auto [out, h_n, c_n] = gru(seq, {});
  gru.one_tensor = nn::RNNBase::OneTensor::LastState;
  EXPECT_TRUE(equal(gru(seq), cat({h_n.select(0, 2), h_n.select(0, 3)}, -1)));
  EXPECT_EQ(nn::ModelBuilder({2, 6, 4}).recurrent("gru", 5, 2, true).output_shape(),
            (Shape{2, 6, 10}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] {
        nn::ModelBuilder({2, 6, 4}).recurrent("rnn", 5, 1, false, "all");
      },
      {"rnn", "return", "last_state", "all"}));
}

}  // namespace
