// Optimizers, gradient clipping and the optimizer factory, checked against torch.optim:
// 20-step trajectories on a small linear regression, L-BFGS on Rosenbrock and a quadratic,
// state-dict round trips and errors.
#include <cmath>
#include <memory>

#include "anvil/optim/optim.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;
using optim::ParamGroup;

namespace {

using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

// Fixed data for y = X W + b: X [8, 3], Y [8, 2], W0 [3, 2], b0 [2].
struct Problem {
  Tensor X, Y, W0, b0;
};
Problem problem(DType dt = kFloat32) {
  return {test::uniform({8, 3}, 1, -1, 1, dt), test::uniform({8, 2}, 2, -1, 1, dt),
          test::uniform({3, 2}, 3, -1, 1, dt), test::uniform({2}, 4, -1, 1, dt)};
}

Tensor mse(const Problem& pb, const Tensor& W, const Tensor& b) {
  return mean(square(sub(add(matmul(pb.X, W), b), pb.Y)));
}

// The parameters are W, b and a third, u [4], that never gets a gradient (it must stay put).
struct Params {
  Tensor W, b, u;
  std::vector<Tensor> list() const { return {W, b, u}; }
};
Params fresh(const Problem& pb) {
  return {pb.W0.clone().requires_grad_(), pb.b0.clone().requires_grad_(),
          zeros({4}, pb.W0.dtype()).requires_grad_()};
}
void run_steps(optim::Optimizer& opt, const Problem& pb, const Params& p, int steps) {
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    mse(pb, p.W, p.b).backward();
    opt.step();
  }
}

// Runs `make` for 20 steps in anvil and `ctor` (a torch.optim constructor over W, bb, u) in
// torch from the same start on the same data, and compares W, b and u.
::testing::AssertionResult matches_torch_optim(const std::string& ctor, const MakeOpt& make,
                                               DType dt = kFloat32, double rtol = 1e-5) {
  Problem pb = problem(dt);
  Params p = fresh(pb);
  auto opt = make(p.list());
  run_steps(*opt, pb, p, 20);
  auto ref = test::TorchOracle::get().run_code(
      "W = a.clone().requires_grad_(); bb = b.clone().requires_grad_()\n"
      "u = torch.zeros(4, dtype=a.dtype, requires_grad=True)\n"
      "X, Y = c, d\n"
      "opt = torch.optim." +
          ctor +
          "\n"
          "for _ in range(20):\n"
          "    opt.zero_grad()\n"
          "    loss = ((X @ W + bb - Y) ** 2).mean()\n"
          "    loss.backward()\n"
          "    opt.step()\n"
          "out = [W, bb, u]\n",
      {pb.W0, pb.b0, pb.X, pb.Y});
  // The trajectory must have moved: a no-op optimizer cannot pass.
  if (test::all_close(p.W, pb.W0, 1e-3, 1e-4))
    return ::testing::AssertionFailure() << "W did not move";
  const std::vector<Tensor> got_all = p.list();
  for (int i = 0; i < 3; ++i) {
    const Tensor& got = got_all[size_t(i)];
    auto r = test::all_close(got.detach(), ref[size_t(i)], rtol, 1e-6);
    if (!r) return r << " (parameter " << i << " of " << ctor << ")";
  }
  return ::testing::AssertionSuccess();
}

template <class O, class Opts>
MakeOpt make(Opts o) {
  return [o](std::vector<Tensor> ps) { return std::make_unique<O>(std::move(ps), o); };
}

}  // namespace

TEST(Optim, SGDMatchesTorch) {
  using optim::SGD;
  EXPECT_TRUE(
      matches_torch_optim("SGD([W, bb, u], lr=0.1)", make<SGD>(optim::SGDOptions{.lr = 0.1})));
  EXPECT_TRUE(matches_torch_optim("SGD([W, bb, u], lr=0.05, momentum=0.9)",
                                  make<SGD>(optim::SGDOptions{.lr = 0.05, .momentum = 0.9})));
  EXPECT_TRUE(matches_torch_optim(
      "SGD([W, bb, u], lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01)",
      make<SGD>(
          optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.5, .weight_decay = 0.01})));
  EXPECT_TRUE(matches_torch_optim(
      "SGD([W, bb, u], lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True)",
      make<SGD>(
          optim::SGDOptions{.lr = 0.05, .momentum = 0.8, .weight_decay = 0.1, .nesterov = true})));
  EXPECT_TRUE(matches_torch_optim(
      "SGD([W, bb, u], lr=0.01, momentum=0.5, maximize=True)",
      make<SGD>(optim::SGDOptions{.lr = 0.01, .momentum = 0.5, .maximize = true})));
}

TEST(Optim, AdamMatchesTorch) {
  using optim::Adam;
  EXPECT_TRUE(matches_torch_optim("Adam([W, bb, u])", make<Adam>(optim::AdamOptions{})));
  EXPECT_TRUE(matches_torch_optim(
      "Adam([W, bb, u], lr=0.02, weight_decay=0.1, amsgrad=True)",
      make<Adam>(optim::AdamOptions{.lr = 0.02, .weight_decay = 0.1, .amsgrad = true})));
  EXPECT_TRUE(matches_torch_optim(
      "Adam([W, bb, u], lr=0.05, betas=(0.8, 0.99), eps=1e-6)",
      make<Adam>(optim::AdamOptions{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6})));
}

TEST(Optim, AdamWMatchesTorch) {
  using optim::AdamW;
  EXPECT_TRUE(matches_torch_optim("AdamW([W, bb, u], lr=0.01)",
                                  make<AdamW>(optim::AdamWOptions{.lr = 0.01})));
  EXPECT_TRUE(matches_torch_optim(
      "AdamW([W, bb, u], lr=0.05, weight_decay=0.3, amsgrad=True)",
      make<AdamW>(optim::AdamWOptions{.lr = 0.05, .weight_decay = 0.3, .amsgrad = true})));
  // AdamW's default decay is 0.01, Adam's 0: the two differ from the same start.
  EXPECT_EQ(optim::AdamW(fresh(problem()).list()).defaults().at("weight_decay"), 0.01);
  EXPECT_EQ(optim::Adam(fresh(problem()).list()).defaults().at("weight_decay"), 0.0);
}

TEST(Optim, RMSpropMatchesTorch) {
  using optim::RMSprop;
  EXPECT_TRUE(matches_torch_optim("RMSprop([W, bb, u])", make<RMSprop>(optim::RMSpropOptions{})));
  EXPECT_TRUE(matches_torch_optim(
      "RMSprop([W, bb, u], lr=0.01, centered=True, momentum=0.5, weight_decay=0.01)",
      make<RMSprop>(optim::RMSpropOptions{
          .lr = 0.01, .weight_decay = 0.01, .momentum = 0.5, .centered = true})));
  EXPECT_TRUE(matches_torch_optim(
      "RMSprop([W, bb, u], lr=0.005, alpha=0.9, momentum=0.9)",
      make<RMSprop>(optim::RMSpropOptions{.lr = 0.005, .alpha = 0.9, .momentum = 0.9})));
}

TEST(Optim, AdagradMatchesTorch) {
  using optim::Adagrad;
  EXPECT_TRUE(matches_torch_optim("Adagrad([W, bb, u], lr=0.1)",
                                  make<Adagrad>(optim::AdagradOptions{.lr = 0.1})));
  EXPECT_TRUE(matches_torch_optim(
      "Adagrad([W, bb, u], lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)",
      make<Adagrad>(optim::AdagradOptions{
          .lr = 0.1, .lr_decay = 0.01, .weight_decay = 0.1, .initial_accumulator_value = 0.1})));
}

TEST(Optim, AdadeltaMatchesTorch) {
  using optim::Adadelta;
  EXPECT_TRUE(
      matches_torch_optim("Adadelta([W, bb, u])", make<Adadelta>(optim::AdadeltaOptions{})));
  EXPECT_TRUE(matches_torch_optim(
      "Adadelta([W, bb, u], lr=0.5, rho=0.5, weight_decay=0.1)",
      make<Adadelta>(optim::AdadeltaOptions{.lr = 0.5, .rho = 0.5, .weight_decay = 0.1})));
}

TEST(Optim, NAdamMatchesTorch) {
  using optim::NAdam;
  EXPECT_TRUE(matches_torch_optim("NAdam([W, bb, u])", make<NAdam>(optim::NAdamOptions{})));
  EXPECT_TRUE(matches_torch_optim(
      "NAdam([W, bb, u], lr=0.01, weight_decay=0.1, momentum_decay=1e-2)",
      make<NAdam>(optim::NAdamOptions{.lr = 0.01, .weight_decay = 0.1, .momentum_decay = 1e-2})));
  // float64: this trajectory passes near a point where the gradient of W vanishes, and there
  // g / sqrt(v) amplifies float32 rounding past 1e-5 (in torch as much as here).
  EXPECT_TRUE(matches_torch_optim(
      "NAdam([W, bb, u], lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)",
      make<NAdam>(
          optim::NAdamOptions{.lr = 0.01, .weight_decay = 0.1, .decoupled_weight_decay = true}),
      kFloat64));
}

TEST(Optim, ParamGroupsWithDifferentOptions) {
  const std::string torch_ctor =
      "SGD([{'params': [W], 'lr': 0.02}, {'params': [bb, u], 'momentum': 0.5}], lr=0.1, "
      "momentum=0.9)";
  EXPECT_TRUE(matches_torch_optim(torch_ctor, [](std::vector<Tensor> ps) {
    return std::make_unique<optim::SGD>(
        std::vector<ParamGroup>{{{ps[0]}, {{"lr", 0.02}}}, {{ps[1], ps[2]}, {{"momentum", 0.5}}}},
        optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  }));
  // add_param_group: the same, built incrementally, for Adam.
  EXPECT_TRUE(matches_torch_optim(
      "Adam([W], lr=0.01)\nopt.add_param_group({'params': [bb, u], 'lr': 0.05, 'betas': (0.5, "
      "0.9)})",
      [](std::vector<Tensor> ps) {
        auto opt = std::make_unique<optim::Adam>(std::vector<Tensor>{ps[0]},
                                                 optim::AdamOptions{.lr = 0.01});
        opt->add_param_group({{ps[1], ps[2]}, {{"lr", 0.05}, {"beta1", 0.5}, {"beta2", 0.9}}});
        EXPECT_EQ(opt->param_groups()[1].options.at("eps"), 1e-8);  // filled from the defaults
        return opt;
      }));
}

TEST(Optim, LrHelpersAndZeroGrad) {
  Params p = fresh(problem());
  optim::SGD opt(p.list(), {.lr = 0.1});
  EXPECT_EQ(opt.lr(), 0.1);
  opt.set_lr(0.25);
  EXPECT_EQ(opt.param_groups()[0].options.at("lr"), 0.25);
  mse(problem(), p.W, p.b).backward();
  EXPECT_TRUE(p.W.grad().defined());
  opt.zero_grad();
  EXPECT_FALSE(p.W.grad().defined());
  EXPECT_FALSE(p.b.grad().defined());
  EXPECT_TRUE(test::throws_with<ValueError>([&] { opt.set_lr(-1); }, {"set_lr", "-1"}));
}

namespace {
// 10 steps, save, a new optimizer over copies of the parameters loads the state, 10 more:
// must equal 20 straight steps bit for bit.
void check_round_trip(const MakeOpt& make, const std::vector<std::string>& keys) {
  Problem pb = problem();
  Params a = fresh(pb);
  auto opt_a = make(a.list());
  run_steps(*opt_a, pb, a, 20);

  Params b = fresh(pb);
  auto opt_b = make(b.list());
  run_steps(*opt_b, pb, b, 10);
  StateDict sd = opt_b->state_dict();
  for (const auto& k : keys) EXPECT_TRUE(sd.count(k)) << "missing " << k;
  Params c{b.W.detach().clone().requires_grad_(), b.b.detach().clone().requires_grad_(),
           b.u.detach().clone().requires_grad_()};
  auto opt_c = make(c.list());
  opt_c->load_state_dict(sd);
  run_steps(*opt_b, pb, b, 0);
  run_steps(*opt_c, pb, c, 10);
  EXPECT_TRUE(equal(c.W.detach(), a.W.detach())) << opt_c->name();
  EXPECT_TRUE(equal(c.b.detach(), a.b.detach())) << opt_c->name();
}
}  // namespace

TEST(Optim, StateDictRoundTripIsBitIdentical) {
  check_round_trip(
      make<optim::SGD>(optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true}),
      {"state.0.momentum_buffer", "state.1.momentum_buffer", "param_groups.0.lr",
       "param_groups.0.params"});
  check_round_trip(make<optim::Adam>(optim::AdamOptions{.lr = 0.02, .amsgrad = true}),
                   {"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq",
                    "state.1.max_exp_avg_sq", "param_groups.0.beta1"});
  check_round_trip(make<optim::AdamW>(optim::AdamWOptions{.lr = 0.02}), {"state.0.exp_avg"});
  check_round_trip(make<optim::RMSprop>(optim::RMSpropOptions{.momentum = 0.5, .centered = true}),
                   {"state.0.square_avg", "state.0.grad_avg", "state.0.momentum_buffer"});
  check_round_trip(make<optim::Adagrad>(optim::AdagradOptions{.lr = 0.1, .lr_decay = 0.1}),
                   {"state.0.sum", "state.2.sum"});
  check_round_trip(make<optim::Adadelta>(optim::AdadeltaOptions{}), {"state.0.acc_delta"});
  check_round_trip(make<optim::NAdam>(optim::NAdamOptions{}), {"state.0.mu_product"});
}

TEST(Optim, StateDictContents) {
  Params p = fresh(problem());
  optim::Adam opt(p.list(), {.lr = 0.01});
  run_steps(opt, problem(), p, 3);
  StateDict sd = opt.state_dict();
  EXPECT_EQ(sd.at("state.0.step").item<double>(), 3);
  EXPECT_EQ(sd.count("state.2.step"), 0u);  // u never had a gradient
  EXPECT_EQ(sd.at("param_groups.0.lr").item<double>(), 0.01);
  EXPECT_EQ(sd.at("param_groups.0.params").to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2}));
  // A mismatched optimizer refuses the state dict and keeps its own state.
  Params q = fresh(problem());
  optim::Adam two_groups(std::vector<ParamGroup>{{{q.W}, {}}, {{q.b, q.u}, {}}});
  EXPECT_TRUE(test::throws_with<ValueError>([&] { two_groups.load_state_dict(sd); },
                                            {"load_state_dict", "2", "1"}));
  optim::Adam fewer(std::vector<Tensor>{q.W, q.b});
  EXPECT_TRUE(test::throws_with<ValueError>([&] { fewer.load_state_dict(sd); },
                                            {"load_state_dict", "3", "2"}));
}

// ---- L-BFGS ----

namespace {
// Rosenbrock in 4 dims: sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2.
const char* kTorchRosen =
    "def f(x):\n"
    "    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()\n";
Tensor rosen(const Tensor& x) {
  Tensor lo = x.slice(0, 0, 3), hi = x.slice(0, 1, 4);
  return sum(add(mul(square(sub(hi, square(lo))), 100.0), square(1.0 - lo)));
}
// A convex quadratic 0.5 x^T A x - c^T x with A = M^T M + I.
const char* kTorchQuad =
    "def f(x):\n"
    "    A = M.T @ M + torch.eye(5, dtype=x.dtype)\n"
    "    return 0.5 * x @ A @ x - cv @ x\n";

::testing::AssertionResult lbfgs_matches(const std::string& problem_name, optim::LBFGSOptions o,
                                         const std::string& torch_args, int steps) {
  const bool is_rosen = problem_name == "rosen";
  Tensor x0 =
      is_rosen ? tensor(std::vector<double>{-1.5, 2.0, -0.5, 1.2}) : test::uniform({5}, 11, -2, 2);
  Tensor M = test::uniform({5, 5}, 12), cv = test::uniform({5}, 13);
  Tensor A = add(matmul(M.t(), M), eye(5, 5, kFloat64));
  auto f = [&](const Tensor& x) {
    return is_rosen ? rosen(x) : sub(mul(matmul(x, matmul(A, x)), 0.5), matmul(cv, x));
  };
  Tensor x = x0.clone().requires_grad_();
  optim::LBFGS opt({x}, o);
  std::vector<Tensor> losses;
  for (int i = 0; i < steps; ++i)
    losses.push_back(opt.step([&] {
                          opt.zero_grad();
                          Tensor l = f(x);
                          l.backward();
                          return l;
                        })
                         .detach());
  const StateDict& st = opt.state(x);
  auto ref = test::TorchOracle::get().run_code(
      std::string(is_rosen ? kTorchRosen : kTorchQuad) +
          "x = a.clone().requires_grad_(); M, cv = b, c\n"
          "opt = torch.optim.LBFGS([x]" +
          torch_args +
          ")\n"
          "def closure():\n"
          "    opt.zero_grad()\n"
          "    l = f(x)\n"
          "    l.backward()\n"
          "    return l\n"
          "ls = [opt.step(closure).detach() for _ in range(" +
          std::to_string(steps) +
          ")]\n"
          "s = opt.state[x]\n"
          "out = [x, torch.stack(ls), float(s['func_evals']), float(s['n_iter'])]\n",
      {x0, M, cv});
  if (test::all_close(x.detach(), x0, 1e-3, 1e-3))
    return ::testing::AssertionFailure() << "x did not move";
  auto r = test::all_close(x.detach(), ref[0], 1e-6, 1e-9);
  if (!r) return r << " (x)";
  r = test::all_close(stack(losses), ref[1], 1e-6, 1e-9);
  if (!r) return r << " (losses)";
  if (st.at("func_evals").item<double>() != ref[2].item<double>() ||
      st.at("n_iter").item<double>() != ref[3].item<double>())
    return ::testing::AssertionFailure()
           << "func_evals/n_iter " << st.at("func_evals").item<double>() << "/"
           << st.at("n_iter").item<double>() << " vs torch " << ref[2].item<double>() << "/"
           << ref[3].item<double>();
  return ::testing::AssertionSuccess();
}
}  // namespace

// float64: L-BFGS amplifies float32 rounding through its line search and curvature pairs.
TEST(Optim, LBFGSMatchesTorch) {
  EXPECT_TRUE(lbfgs_matches("quad", {}, "", 2));
  EXPECT_TRUE(lbfgs_matches("quad", {.lr = 0.5, .max_iter = 7, .history_size = 3},
                            ", lr=0.5, max_iter=7, history_size=3", 3));
  EXPECT_TRUE(lbfgs_matches("quad", {.line_search_fn = "strong_wolfe"},
                            ", line_search_fn='strong_wolfe'", 2));
  EXPECT_TRUE(lbfgs_matches("rosen", {.line_search_fn = "strong_wolfe"},
                            ", line_search_fn='strong_wolfe'", 3));
  EXPECT_TRUE(lbfgs_matches("rosen",
                            {.max_iter = 10, .history_size = 4, .line_search_fn = "strong_wolfe"},
                            ", max_iter=10, history_size=4, line_search_fn='strong_wolfe'", 4));
  EXPECT_TRUE(lbfgs_matches("rosen", {.lr = 0.002, .max_iter = 15}, ", lr=0.002, max_iter=15", 3));
}

TEST(Optim, LBFGSStateDictRoundTrip) {
  Tensor M = test::uniform({5, 5}, 12), cv = test::uniform({5}, 13);
  Tensor A = add(matmul(M.t(), M), eye(5, 5, kFloat64));
  auto run = [&](optim::LBFGS& opt, const Tensor& x, int steps) {
    for (int i = 0; i < steps; ++i)
      opt.step([&] {
        opt.zero_grad();
        Tensor l = rosen(x);
        l.backward();
        return l;
      });
  };
  optim::LBFGSOptions o{.max_iter = 3, .history_size = 4, .line_search_fn = "strong_wolfe"};
  Tensor x0 = tensor(std::vector<double>{-1.5, 2.0, -0.5, 1.2});
  Tensor a = x0.clone().requires_grad_(), b = x0.clone().requires_grad_();
  optim::LBFGS opt_a({a}, o), opt_b({b}, o);
  run(opt_a, a, 6);
  run(opt_b, b, 3);
  StateDict sd = opt_b.state_dict();
  EXPECT_TRUE(sd.count("state.0.old_dirs.0") && sd.count("state.0.d") &&
              sd.count("state.0.prev_flat_grad"));
  Tensor c = b.detach().clone().requires_grad_();
  optim::LBFGS opt_c({c}, o);
  opt_c.load_state_dict(sd);
  run(opt_c, c, 3);
  EXPECT_TRUE(equal(c.detach(), a.detach()));
}

// ---- clipping ----

namespace {
::testing::AssertionResult clip_norm_matches(double max_norm, double p, const std::string& p_py) {
  Tensor g1 = test::uniform({3, 4}, 21, -1, 1, kFloat32),
         g2 = test::uniform({5}, 22, -2, 2, kFloat32);
  Tensor p1 = zeros({3, 4}).requires_grad_(), p2 = zeros({5}).requires_grad_(),
         p3 = zeros({2}).requires_grad_();
  p1.set_grad(g1.clone());
  p2.set_grad(g2.clone());
  Tensor total = optim::clip_grad_norm_({p1, p2, p3}, max_norm, p);
  auto ref = test::TorchOracle::get().run_code(
      "ps = [torch.zeros_like(a, requires_grad=True), torch.zeros_like(b, requires_grad=True), "
      "torch.zeros(2, requires_grad=True)]\n"
      "ps[0].grad = a.clone(); ps[1].grad = b.clone()\n"
      "n = torch.nn.utils.clip_grad_norm_(ps, " +
          std::to_string(max_norm) + ", norm_type=" + p_py +
          ")\n"
          "out = [n, ps[0].grad, ps[1].grad]\n",
      {g1, g2});
  for (auto [got, want] : {std::pair{total, ref[0]}, {p1.grad(), ref[1]}, {p2.grad(), ref[2]}}) {
    auto r = test::all_close(got, want, 1e-5, 1e-7);
    if (!r) return r << " (p = " << p_py << ", max_norm = " << max_norm << ")";
  }
  if (p3.grad().defined()) return ::testing::AssertionFailure() << "gave p3 a gradient";
  return ::testing::AssertionSuccess();
}
}  // namespace

TEST(Optim, ClipGradNormMatchesTorch) {
  for (double max_norm : {0.5, 100.0}) {
    EXPECT_TRUE(clip_norm_matches(max_norm, 2.0, "2.0"));
    EXPECT_TRUE(clip_norm_matches(max_norm, 1.0, "1.0"));
    EXPECT_TRUE(clip_norm_matches(max_norm, 3.5, "3.5"));
    EXPECT_TRUE(clip_norm_matches(max_norm, INFINITY, "float('inf')"));
  }
  // No gradients at all: norm 0.
  Tensor p = zeros({2}).requires_grad_();
  EXPECT_EQ(optim::clip_grad_norm_({p}, 1.0).item<double>(), 0.0);
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::clip_grad_norm_({p}, 1.0, -1); },
                                            {"clip_grad_norm_", "norm_type", "-1"}));
  p.set_grad(tensor(std::vector<float>{NAN, 1}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::clip_grad_norm_({p}, 1.0, 2.0, true); },
                                            {"clip_grad_norm_", "nan"}));
}

TEST(Optim, ClipGradValueMatchesTorch) {
  Tensor g = test::uniform({4, 3}, 31, -2, 2, kFloat32);
  Tensor p = zeros({4, 3}).requires_grad_(), q = zeros({2}).requires_grad_();
  p.set_grad(g.clone());
  optim::clip_grad_value_({p, q}, 0.7);
  auto ref = test::TorchOracle::get().run_code(
      "p = torch.zeros_like(a, requires_grad=True); p.grad = a.clone()\n"
      "torch.nn.utils.clip_grad_value_([p], 0.7)\nout = p.grad\n",
      {g});
  EXPECT_TRUE(test::all_close(p.grad(), ref[0], 0, 0));
  EXPECT_FALSE(equal(p.grad(), g));
  EXPECT_FALSE(q.grad().defined());
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::clip_grad_value_({p}, -0.5); },
                                            {"clip_grad_value_", "-0.5"}));
}

// ---- factory and errors ----

TEST(Optim, MakeOptimizer) {
  for (const char* name :
       {"sgd", "Adam", "adamw", "rmsprop", "adagrad", "adadelta", "nadam", "LBFGS"}) {
    auto opt = optim::make_optimizer(name, fresh(problem()).list(), 0.125);
    EXPECT_EQ(opt->lr(), 0.125) << name;
  }
  EXPECT_EQ(optim::make_optimizer("adamw", fresh(problem()).list(), 0.1)->name(), "AdamW");
  EXPECT_TRUE(test::throws_with<ValueError>([] { optim::make_optimizer("adamax", {}, 0.1); },
                                            {"make_optimizer", "\"adamax\"", "sgd", "lbfgs"}));
}

TEST(Optim, BadOptionsThrow) {
  auto ps = [] { return fresh(problem()).list(); };
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::SGD(ps(), {.lr = -0.1}); },
                                            {"SGD", "learning rate", "-0.1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::Adam(ps(), {.lr = -1}); },
                                            {"Adam", "learning rate", "-1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::Adam(ps(), {.beta1 = 1.0}); },
                                            {"Adam", "beta1", "[0, 1)", "1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::AdamW(ps(), {.beta2 = -0.5}); },
                                            {"AdamW", "beta2", "-0.5"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::NAdam(ps(), {.beta1 = 1.5}); },
                                            {"NAdam", "beta1", "1.5"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::SGD(ps(), {.nesterov = true}); },
                                            {"SGD", "Nesterov", "momentum=0"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { optim::SGD(ps(), {.momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
      {"SGD", "Nesterov", "dampening=0.1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::RMSprop(ps(), {.alpha = -0.1}); },
                                            {"RMSprop", "alpha", "-0.1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::Adagrad(ps(), {.eps = -1}); },
                                            {"Adagrad", "eps", "-1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::Adadelta(ps(), {.rho = 1.5}); },
                                            {"Adadelta", "rho", "1.5"}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { optim::LBFGS(ps(), {.line_search_fn = "armijo"}); },
                                    {"LBFGS", "strong_wolfe", "armijo"}));
  // A bad value in a group override, an unknown option name, a parameter listed twice.
  Params p = fresh(problem());
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        optim::SGD(std::vector<ParamGroup>{{{p.W}, {{"lr", -2}}}});
      },
      {"SGD", "-2"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        optim::SGD(std::vector<ParamGroup>{{{p.W}, {{"betas", 0.9}}}});
      },
      {"SGD", "unknown option", "\"betas\"", "momentum"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        optim::SGD({p.W, p.b, p.W});
      },
      {"SGD", "more than once"}));
  optim::LBFGS lbfgs(p.list());
  EXPECT_TRUE(test::throws_with<ValueError>([&] { lbfgs.step(); }, {"LBFGS.step", "closure"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        lbfgs.add_param_group({{zeros({1}).requires_grad_()}, {}});
      },
      {"LBFGS", "groups"}));
}
