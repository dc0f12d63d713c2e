// linear_act (a dense layer with its bias and activation in one op) on the CPU: values bit for
// bit those of linear() then relu / gelu(tanh), float64 gradients by finite differences,
// gradients against the unfused ops, Sequential's fusion of Linear + activation, autocast,
// integer inputs and argument errors.
#include <string>
#include <vector>

#include "anvil/amp/autocast.h"
#include "anvil/nn/nn.h"
#include "anvil/ops/linear_act.h"
#include "support/check.h"

using namespace anvil;

namespace {

const Activation kActs[] = {Activation::None, Activation::Relu, Activation::GeluTanh};

std::string act_name(Activation a) {
  return a == Activation::None ? "none" : a == Activation::Relu ? "relu" : "gelu_tanh";
}

// The composition linear_act replaces.
Tensor reference(const Tensor& x, const Tensor& w, const Tensor& b, Activation act) {
  Tensor y = linear(x, w, b);
  if (act == Activation::Relu) return relu(y);
  if (act == Activation::GeluTanh) return gelu(y, "tanh");
  return y;
}

// Same shape, dtype and bits (compared as float64 values, exact for every floating dtype).
::testing::AssertionResult same_bits(const Tensor& a, const Tensor& e) {
  if (a.shape() != e.shape())
    return ::testing::AssertionFailure() << "shape " << to_string(a.shape()) << " vs "
                                         << to_string(e.shape());
  if (a.dtype() != e.dtype())
    return ::testing::AssertionFailure() << "dtype " << dtype_name(a.dtype()) << " vs "
                                         << dtype_name(e.dtype());
  auto av = a.to(kFloat64).to_vector<double>(), ev = e.to(kFloat64).to_vector<double>();
  for (size_t i = 0; i < av.size(); ++i)
    if (av[i] != ev[i])
      return ::testing::AssertionFailure() << "element " << i << ": " << av[i] << " vs " << ev[i];
  return ::testing::AssertionSuccess();
}

struct Case {
  Shape x;
  int64_t out;
  bool bias;
};

const Case kCases[] = {
    {{127, 33}, 65, true}, {{4, 7, 33}, 17, true}, {{33}, 5, true},  {{1, 1}, 1, true},
    {{6, 9}, 8, false},    {{0, 5}, 3, true},      {{3, 0}, 4, true}, {{2, 3, 0}, 4, false},
    {{256, 64}, 200, true},  // big enough for the threaded loops
};

std::string case_name(const Case& c, DType dt, Activation a) {
  return std::string(dtype_name(dt)) + " " + act_name(a) + " x=" + to_string(c.x) +
         " out=" + std::to_string(c.out) + (c.bias ? " bias" : " no bias");
}

}  // namespace

TEST(LinearAct, ValuesAreTheUnfusedOpsBitForBit) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16})
    for (const Case& c : kCases)
      for (Activation a : kActs) {
        SCOPED_TRACE(case_name(c, dt, a));
        const int64_t in = c.x.back();
        Tensor x = test::uniform(c.x, 1, -2, 2, dt);
        Tensor w = test::uniform({c.out, in}, 2, -1, 1, dt);
        Tensor b = c.bias ? test::uniform({c.out}, 3, -1, 1, dt) : Tensor();
        EXPECT_TRUE(same_bits(linear_act(x, w, b, a), reference(x, w, b, a)));
      }
}

TEST(LinearAct, NonContiguousOperands) {
  Tensor x = test::uniform({9, 20}, 4, -2, 2, kFloat32).t();  // [20, 9], a transposed view
  Tensor w = test::uniform({9, 14}, 5, -1, 1, kFloat32).slice(1, 2, 11);  // [9, 9], strided rows
  Tensor b = test::uniform({18}, 6, -1, 1, kFloat32).slice(0, 0, 18, 2);  // [9], stride 2
  for (Activation a : kActs) {
    SCOPED_TRACE(act_name(a));
    EXPECT_TRUE(same_bits(linear_act(x, w, b, a), reference(x, w, b, a)));
  }
}

TEST(LinearAct, Gradcheck) {
  auto req = [](Tensor t) { return t.requires_grad_(); };
  for (Activation a : kActs)
    for (bool bias : {true, false}) {
      SCOPED_TRACE(act_name(a) + (bias ? " bias" : " no bias"));
      std::vector<Tensor> in{req(test::uniform({2, 3, 5}, 7)), req(test::uniform({4, 5}, 8))};
      if (bias) in.push_back(req(test::uniform({4}, 9)));
      EXPECT_TRUE(test::gradcheck(
          [a, bias](const std::vector<Tensor>& v) {
            return linear_act(v[0], v[1], bias ? v[2] : Tensor(), a);
          },
          in));
    }
}

TEST(LinearAct, GradientsMatchTheUnfusedOps) {
  for (DType dt : {kFloat32, kBFloat16})
    for (Activation a : kActs) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + act_name(a));
      Tensor x0 = test::uniform({5, 70, 33}, 10, -2, 2, dt);
      Tensor w0 = test::uniform({165, 33}, 11, -1, 1, dt);
      Tensor b0 = test::uniform({165}, 12, -1, 1, dt);
      Tensor g = test::uniform({5, 70, 165}, 13, -1, 1, dt);
      auto grads = [&](bool fused) {
        Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(),
               b = b0.clone().requires_grad_();
        Tensor y = fused ? linear_act(x, w, b, a) : reference(x, w, b, a);
        y.backward(g);
        return std::vector<Tensor>{y, x.grad(), w.grad(), b.grad()};
      };
      auto f = grads(true), u = grads(false);
      const double tol = dt == kFloat32 ? 1e-5 : 1e-2;
      const char* what[] = {"output", "grad x", "grad w", "grad b"};
      for (size_t i = 0; i < f.size(); ++i) {
        SCOPED_TRACE(what[i]);
        ASSERT_TRUE(f[i].defined());
        EXPECT_EQ(f[i].dtype(), dt);
        EXPECT_TRUE(test::all_close(f[i].to(kFloat64), u[i].to(kFloat64), tol, tol));
      }
    }
}

TEST(LinearAct, PartialRequiresGradAndOneNode) {
  Tensor x = test::uniform({3, 4}, 14), w = test::uniform({2, 4}, 15), b = test::uniform({2}, 16);
  // Only the bias needs a gradient: it is the sum of g' over the rows.
  Tensor bb = b.clone().requires_grad_();
  Tensor y = linear_act(x, w, bb, Activation::Relu);
  ASSERT_TRUE(y.grad_fn());
  EXPECT_EQ(y.grad_fn()->name(), "LinearActBackward");
  y.backward(ones_like(y));
  Tensor mask = gt(y, 0.0).to(kFloat64);
  EXPECT_TRUE(test::all_close(bb.grad(), sum(mask, {0})));
  // Only the weight; the input's gradient stays undefined.
  Tensor ww = w.clone().requires_grad_();
  Tensor xx = x.clone();
  linear_act(xx, ww, b, Activation::None).backward(ones({3, 2}, kFloat64));
  EXPECT_TRUE(test::all_close(ww.grad(), sum(x, {0}).unsqueeze(0).expand({2, 4})));
  EXPECT_FALSE(xx.grad().defined());
  // No gradient wanted: no node.
  EXPECT_FALSE(linear_act(x, w, b, Activation::GeluTanh).grad_fn());
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(linear_act(x, ww, b, Activation::Relu).grad_fn());
  }
}

TEST(LinearAct, IntegerInputsUseTheUnfusedOps) {
  Tensor x = tensor(std::vector<int64_t>{1, -2, 3, 4}, {2, 2});
  Tensor w = tensor(std::vector<int64_t>{1, 1, -1, 0}, {2, 2});
  Tensor b = tensor(std::vector<int64_t>{0, 1}, {2});
  Tensor y = linear_act(x, w, b, Activation::Relu);
  EXPECT_EQ(y.dtype(), kInt64);
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 7, 0}));
  EXPECT_THROW(linear_act(x, w, b, Activation::GeluTanh), DTypeError);
}

TEST(LinearAct, ArgumentErrors) {
  Tensor x = zeros({2, 5}), w = zeros({3, 4});
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { linear_act(x, w); },
                                            {"linear_act", "last dim 4", "[3, 4]", "[2, 5]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { linear_act(zeros({2, 4}), w, zeros({4})); },
                                            {"linear_act", "bias of shape [3]", "[4]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { linear_act(zeros({2, 4}), zeros({4})); },
                                            {"linear_act", "weight"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { linear_act(zeros({2, 4}, kFloat64), w); },
                                            {"linear_act", "weight", "float64", "float32"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] { linear_act(zeros({2, 4}), w, zeros({3}, kFloat64), Activation::Relu); },
      {"linear_act", "bias", "float32", "float64"}));
}

TEST(LinearAct, Autocast) {
  Tensor x = test::uniform({6, 16}, 17, -1, 1, kFloat32);
  Tensor w = test::uniform({8, 16}, 18, -1, 1, kFloat32).requires_grad_();
  Tensor b = test::uniform({8}, 19, -1, 1, kFloat32).requires_grad_();
  Tensor y;
  {
    amp::autocast ac(DeviceKind::CPU, kBFloat16);
    y = linear_act(x, w, b, Activation::Relu);
  }
  // As linear(): every input cast to bfloat16, the product in bfloat16.
  EXPECT_EQ(y.dtype(), kBFloat16);
  EXPECT_TRUE(same_bits(y, reference(x.to(kBFloat16), w.detach().to(kBFloat16),
                                     b.detach().to(kBFloat16), Activation::Relu)));
  sum(y.to(kFloat32)).backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_EQ(w.grad().dtype(), kFloat32);
  EXPECT_EQ(b.grad().dtype(), kFloat32);
  // float64 inputs are left alone, as linear() leaves them.
  amp::autocast ac(DeviceKind::CPU, kBFloat16);
  EXPECT_EQ(linear_act(x.to(kFloat64), w.detach().to(kFloat64)).dtype(), kFloat64);
}

namespace {

// Linear, ReLU, Linear, GELU(tanh), Linear, GELU(exact), Linear, Tanh: two fusable pairs, one
// that is not (exact gelu), and a trailing Linear without activation.
std::shared_ptr<nn::Sequential> mlp() {
  manual_seed(3);
  return std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(12, 16), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(16, 9), std::make_shared<nn::GELU>("tanh"),
      std::make_shared<nn::Linear>(9, 7), std::make_shared<nn::GELU>(),
      std::make_shared<nn::Linear>(7, 5, /*bias=*/false), std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(5, 3)});
}

}  // namespace

TEST(LinearAct, SequentialFusesLinearAndActivation) {
  auto net = mlp();
  Tensor x0 = test::uniform({10, 12}, 20, -2, 2, kFloat32);
  // Fused: Sequential::forward. Unfused: each module's own forward, the activations separately.
  Tensor xf = x0.clone().requires_grad_();
  Tensor yf = net->forward(xf);
  std::vector<Tensor> gf;
  yf.backward(ones_like(yf));
  for (auto& p : net->parameters()) gf.push_back(p.grad().clone());
  net->zero_grad();
  Tensor xu = x0.clone().requires_grad_();
  Tensor yu = xu;
  for (auto& m : net->children()) yu = m->forward(yu);
  yu.backward(ones_like(yu));
  EXPECT_TRUE(same_bits(yf, yu));
  EXPECT_TRUE(test::all_close(xf.grad(), xu.grad(), 1e-5, 1e-6));
  auto params = net->parameters();
  ASSERT_EQ(params.size(), gf.size());
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(test::all_close(gf[i], params[i].grad(), 1e-5, 1e-6)) << "parameter " << i;
  // The module tree is untouched: names, state dict and printing.
  EXPECT_EQ(net->size(), 9);
  auto sd = net->state_dict();
  EXPECT_EQ(sd.size(), 9u);
  EXPECT_TRUE(sd.count("0.weight") && sd.count("2.bias") && sd.count("8.weight"));
  EXPECT_NE(net->str().find("(1): ReLU()"), std::string::npos);
  EXPECT_NE(net->str().find("(3): GELU(approximate='tanh')"), std::string::npos);
  // One node per fused pair; exact gelu stays its own op.
  Tensor x = x0.clone().requires_grad_();
  nn::Sequential pair{std::make_shared<nn::Linear>(12, 4), std::make_shared<nn::ReLU>()};
  EXPECT_EQ(pair.forward(x).grad_fn()->name(), "LinearActBackward");
  nn::Sequential exact{std::make_shared<nn::Linear>(12, 4), std::make_shared<nn::GELU>()};
  EXPECT_EQ(exact.forward(x).grad_fn()->name(), "GeluBackward");
}

TEST(LinearAct, SequentialWithoutAPairToFuse) {
  manual_seed(4);
  auto lin = std::make_shared<nn::Linear>(6, 6);
  auto nobias = std::make_shared<nn::Linear>(6, 6, /*bias=*/false);
  Tensor x = test::uniform({3, 6}, 21, -1, 1, kFloat32);
  nn::Sequential one{lin};
  EXPECT_TRUE(same_bits(one.forward(x), linear(x, lin->weight, lin->bias)));
  // Activation first, then the Linear: nothing to fuse.
  nn::Sequential tail{std::make_shared<nn::ReLU>(), lin};
  EXPECT_TRUE(same_bits(tail.forward(x), linear(relu(x), lin->weight, lin->bias)));
  // A Linear without bias before a ReLU, and one module appearing twice.
  nn::Sequential twice{nobias, std::make_shared<nn::ReLU>(), nobias, std::make_shared<nn::ReLU>()};
  EXPECT_TRUE(same_bits(twice.forward(x), relu(linear(relu(linear(x, nobias->weight)),
                                                      nobias->weight))));
  // LeakyReLU is not fused; the result is still right.
  nn::Sequential leaky{lin, std::make_shared<nn::LeakyReLU>(0.1)};
  EXPECT_TRUE(same_bits(leaky.forward(x), leaky_relu(linear(x, lin->weight, lin->bias), 0.1)));
}
