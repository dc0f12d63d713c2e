// Optimizers, gradient clipping and the optimizer factory, checked against torch.optim:
// 20-step trajectories on a small linear regression, L-BFGS on Rosenbrock and a quadratic,
// state-dict round trips and errors.
#include <cmath>
#include <memory>

#include "anvil/optim/optim.h"
#include "support/check.h"
#include "support/optim_cases.h"
#include "support/oracle.h"

using namespace anvil;
using test::make;
using test::MakeOpt;
using test::optimizer_cases;
using test::random_tensors;
using optim::ParamGroup;

namespace {


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

// ---- fused updates against the former composed ones ----

namespace {
namespace ref {
// The optimizers' updates as they were composed from anvil ops before the fused kernels,
// kept verbatim: the fused CPU update must reproduce them bit for bit (so that checkpoints
// written before resume exactly).
Tensor& addcmul_(Tensor& a, const Tensor& b, const Tensor& c, double value) {
  return add_(a, mul(b, c), value);
}
Tensor& addcdiv_(Tensor& a, const Tensor& b, const Tensor& c, double value) {
  return add_(a, div(b, c), value);
}
Tensor& lerp_(Tensor& a, const Tensor& b, double w) {
  if (w < 0.5) return add_(a, sub(b, a), w);
  Tensor r = sub(b, mul(sub(b, a), 1.0 - w));
  a.copy_(r);
  return a;
}
Tensor effective_grad(const Tensor& param, const Tensor& grad, double weight_decay, bool maximize) {
  Tensor g = maximize ? neg(grad) : grad;
  if (weight_decay != 0) g = add(g, param, weight_decay);
  return g;
}

void sgd(const optim::Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  const double momentum = o.at("momentum"), lr = o.at("lr");
  Tensor g = effective_grad(p, grad, o.at("weight_decay"), o.at("maximize") != 0);
  if (momentum != 0) {
    auto it = state.find("momentum_buffer");
    if (it == state.end()) {
      it = state.emplace("momentum_buffer", g.clone()).first;
    } else {
      mul_(it->second, momentum);
      add_(it->second, g, 1 - o.at("dampening"));
    }
    g = o.at("nesterov") != 0 ? add(g, it->second, momentum) : it->second;
  }
  add_(p, g, -lr);
}

void adam(const optim::Options& o, Tensor& p, const Tensor& grad, StateDict& state,
          bool decoupled) {
  const double lr = o.at("lr"), beta1 = o.at("beta1"), beta2 = o.at("beta2"), eps = o.at("eps");
  const double wd = o.at("weight_decay");
  const bool amsgrad = o.at("amsgrad") != 0;
  if (!state.count("exp_avg")) {
    state["exp_avg"] = zeros_like(p);
    state["exp_avg_sq"] = zeros_like(p);
    if (amsgrad) state["max_exp_avg_sq"] = zeros_like(p);
  }
  const double step = optim::increment_step(state);
  Tensor g = o.at("maximize") != 0 ? neg(grad) : grad;
  if (wd != 0) {
    if (decoupled)
      mul_(p, 1 - lr * wd);
    else
      g = add(g, p, wd);
  }
  Tensor& m = state["exp_avg"];
  Tensor& v = state["exp_avg_sq"];
  lerp_(m, g, 1 - beta1);
  mul_(v, beta2);
  addcmul_(v, g, g, 1 - beta2);
  const double step_size = lr / (1 - std::pow(beta1, step));
  const double bias_correction2_sqrt = std::sqrt(1 - std::pow(beta2, step));
  Tensor denom;
  if (amsgrad) {
    Tensor& vmax = state["max_exp_avg_sq"];
    vmax.copy_(maximum(vmax, v));
    denom = add(div(sqrt(vmax), bias_correction2_sqrt), eps);
  } else {
    denom = add(div(sqrt(v), bias_correction2_sqrt), eps);
  }
  addcdiv_(p, m, denom, -step_size);
}

void rmsprop(const optim::Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  const double lr = o.at("lr"), alpha = o.at("alpha"), eps = o.at("eps");
  const double momentum = o.at("momentum");
  const bool centered = o.at("centered") != 0;
  if (!state.count("square_avg")) {
    state["square_avg"] = zeros_like(p);
    if (momentum > 0) state["momentum_buffer"] = zeros_like(p);
    if (centered) state["grad_avg"] = zeros_like(p);
  }
  optim::increment_step(state);
  Tensor g = effective_grad(p, grad, o.at("weight_decay"), o.at("maximize") != 0);
  Tensor& v = state["square_avg"];
  mul_(v, alpha);
  addcmul_(v, g, g, 1 - alpha);
  Tensor avg;
  if (centered) {
    Tensor& a = state["grad_avg"];
    lerp_(a, g, 1 - alpha);
    avg = sqrt(sub(v, mul(a, a)));
  } else {
    avg = sqrt(v);
  }
  avg = add(avg, eps);
  if (momentum > 0) {
    Tensor& b = state["momentum_buffer"];
    mul_(b, momentum);
    addcdiv_(b, g, avg, 1.0);
    add_(p, b, -lr);
  } else {
    addcdiv_(p, g, avg, -lr);
  }
}

void adagrad(const optim::Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  if (!state.count("sum")) {
    state["step"] = scalar_tensor(0.0, kFloat32);
    state["sum"] = full_like(p, o.at("initial_accumulator_value"));
  }
  const double step = optim::increment_step(state);
  Tensor g = effective_grad(p, grad, o.at("weight_decay"), o.at("maximize") != 0);
  const double clr = o.at("lr") / (1 + (step - 1) * o.at("lr_decay"));
  Tensor& s = state["sum"];
  addcmul_(s, g, g, 1.0);
  addcdiv_(p, g, add(sqrt(s), o.at("eps")), -clr);
}

void adadelta(const optim::Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  const double rho = o.at("rho"), eps = o.at("eps");
  if (!state.count("square_avg")) {
    state["square_avg"] = zeros_like(p);
    state["acc_delta"] = zeros_like(p);
  }
  optim::increment_step(state);
  Tensor g = effective_grad(p, grad, o.at("weight_decay"), o.at("maximize") != 0);
  Tensor& v = state["square_avg"];
  Tensor& u = state["acc_delta"];
  mul_(v, rho);
  addcmul_(v, g, g, 1 - rho);
  Tensor std_ = sqrt(add(v, eps));
  Tensor delta = mul(div(sqrt(add(u, eps)), std_), g);
  mul_(u, rho);
  addcmul_(u, delta, delta, 1 - rho);
  add_(p, delta, -o.at("lr"));
}

void nadam(const optim::Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  const double lr = o.at("lr"), beta1 = o.at("beta1"), beta2 = o.at("beta2"), eps = o.at("eps");
  const double wd = o.at("weight_decay"), momentum_decay = o.at("momentum_decay");
  if (!state.count("exp_avg")) {
    state["mu_product"] = scalar_tensor(1.0, kFloat32);
    state["exp_avg"] = zeros_like(p);
    state["exp_avg_sq"] = zeros_like(p);
  }
  const double step = optim::increment_step(state);
  const double bias_correction2 = 1 - std::pow(beta2, step);
  Tensor g = o.at("maximize") != 0 ? neg(grad) : grad;
  if (wd != 0) {
    if (o.at("decoupled_weight_decay") != 0)
      mul_(p, 1 - lr * wd);
    else
      g = add(g, p, wd);
  }
  const double mu = beta1 * (1.0 - 0.5 * std::pow(0.96, step * momentum_decay));
  const double mu_next = beta1 * (1.0 - 0.5 * std::pow(0.96, (step + 1) * momentum_decay));
  Tensor& mu_product_t = state["mu_product"];
  mul_(mu_product_t, mu);
  const double mu_product = mu_product_t.item<double>();
  const double mu_product_next = mu_product * mu_next;
  Tensor& m = state["exp_avg"];
  Tensor& v = state["exp_avg_sq"];
  lerp_(m, g, 1 - beta1);
  mul_(v, beta2);
  addcmul_(v, g, g, 1 - beta2);
  Tensor denom = add(sqrt(div(v, bias_correction2)), eps);
  addcdiv_(p, g, denom, -lr * (1.0 - mu) / (1.0 - mu_product));
  addcdiv_(p, m, denom, -lr * mu_next / (1.0 - mu_product_next));
}

// One composed step of the optimizer `opt` (for its options) over `params` with `grads`.
void step(const optim::Optimizer& opt, std::vector<Tensor>& params,
          const std::vector<Tensor>& grads, std::vector<StateDict>& states) {
  NoGradGuard no_grad;
  const optim::Options& o = opt.param_groups()[0].options;
  const std::string& n = opt.name();
  for (size_t i = 0; i < params.size(); ++i) {
    if (n == "SGD")
      sgd(o, params[i], grads[i], states[i]);
    else if (n == "Adam" || n == "AdamW")
      adam(o, params[i], grads[i], states[i], n == "AdamW");
    else if (n == "RMSprop")
      rmsprop(o, params[i], grads[i], states[i]);
    else if (n == "Adagrad")
      adagrad(o, params[i], grads[i], states[i]);
    else if (n == "Adadelta")
      adadelta(o, params[i], grads[i], states[i]);
    else if (n == "NAdam")
      nadam(o, params[i], grads[i], states[i]);
    else
      ADD_FAILURE() << "no reference for " << n;
  }
}
}  // namespace ref

// 20 parameters of odd sizes (and shapes) in one group.
std::vector<Shape> odd_shapes() {
  return {{1}, {3},   {4097}, {65537},  {2, 3}, {},   {7, 1, 5}, {33},  {1000}, {5, 13},
          {2}, {127}, {129},  {16, 16}, {4095}, {11}, {1, 1},    {300}, {8, 9}, {0}};
}

// Runs `steps` fused steps and `steps` reference steps from the same start with the same
// gradients; after `resume_at` steps the fused optimizer is replaced by a new one that loads
// the reference's state as a state dict (as a checkpoint written before would hold it).
::testing::AssertionResult fused_matches_composed(const MakeOpt& make_opt, DType dt, int steps,
                                                  int resume_at = -1) {
  const auto shapes = odd_shapes();
  std::vector<Tensor> fused, reference = random_tensors(shapes, 7, dt);
  for (const auto& t : reference) fused.push_back(t.clone().requires_grad_());
  auto opt = make_opt(fused);
  std::vector<StateDict> states(shapes.size());
  if (opt->name() == "Adagrad")
    for (size_t i = 0; i < shapes.size(); ++i) {
      states[i]["step"] = scalar_tensor(0.0, kFloat32);
      states[i]["sum"] = full_like(reference[i], opt->defaults().at("initial_accumulator_value"));
    }
  for (int s = 0; s < steps; ++s) {
    if (s == resume_at) {
      StateDict sd = opt->state_dict();
      for (size_t i = 0; i < shapes.size(); ++i)
        for (const auto& [k, v] : states[i]) sd[detail::cat("state.", i, ".", k)] = v.clone();
      std::vector<Tensor> copies;
      for (size_t i = 0; i < shapes.size(); ++i)
        copies.push_back(reference[i].clone().requires_grad_());
      fused = copies;
      opt = make_opt(fused);
      opt->load_state_dict(sd);
    }
    auto grads = random_tensors(shapes, 100 + s, dt, -2, 2);
    for (size_t i = 0; i < shapes.size(); ++i) fused[i].set_grad(grads[i].clone());
    opt->step();
    ref::step(*opt, reference, grads, states);
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (!equal(fused[i].detach(), reference[i]))
      return ::testing::AssertionFailure()
             << opt->name() << ": parameter " << i
             << " differs: " << test::all_close(fused[i].detach(), reference[i], 0, 0).message();
    for (const auto& [k, v] : states[i]) {
      const Tensor& got = opt->state(fused[i]).at(k);
      if (!equal(got, v))
        return ::testing::AssertionFailure()
               << opt->name() << ": state." << i << "." << k << " differs: " << got << " vs " << v;
    }
  }
  return ::testing::AssertionSuccess();
}
}  // namespace

TEST(OptimFused, MatchesComposedUpdatesBitForBit) {
  for (const auto& make_opt : optimizer_cases()) {
    EXPECT_TRUE(fused_matches_composed(make_opt, kFloat32, 5));
    EXPECT_TRUE(fused_matches_composed(make_opt, kFloat64, 3));
  }
}

TEST(OptimFused, ResumesFromComposedStateBitForBit) {
  for (const auto& make_opt : optimizer_cases())
    EXPECT_TRUE(fused_matches_composed(make_opt, kFloat32, 6, 3));
}

TEST(OptimFused, LearningRateTensorFollowsPrepareStep) {
  Params p = fresh(problem());
  optim::Adam opt(p.list(), {.lr = 0.1});
  Tensor lr = opt.lr_tensor(0, kCPU);
  EXPECT_EQ(lr.dtype(), kFloat64);
  EXPECT_EQ(lr.dim(), 0);
  EXPECT_EQ(lr.item<double>(), 0.1);
  opt.set_lr(0.25);
  EXPECT_EQ(lr.item<double>(), 0.1);  // not yet pushed
  opt.prepare_step();
  EXPECT_EQ(lr.item<double>(), 0.25);
  opt.param_groups()[0].options["lr"] = 0.125;  // as schedulers do
  run_steps(opt, problem(), p, 1);              // step() pushes it first
  EXPECT_EQ(lr.item<double>(), 0.125);
  EXPECT_TRUE(opt.lr_tensor(0, kCPU).is_same(lr));  // one tensor, written in place
  // Written only when the host value changed: a value poked into the tensor survives.
  lr.fill_(0.5);
  opt.prepare_step();
  EXPECT_EQ(lr.item<double>(), 0.5);
  EXPECT_TRUE(test::throws_with<ValueError>([&] { opt.lr_tensor(3, kCPU); }, {"lr_tensor", "3"}));
}

TEST(OptimFused, LearningRateChangeBetweenStepsTakesEffect) {
  const auto shapes = odd_shapes();
  std::vector<Tensor> fused, reference = random_tensors(shapes, 9, kFloat32);
  for (const auto& t : reference) fused.push_back(t.clone().requires_grad_());
  optim::SGD opt(fused, {.lr = 0.1, .momentum = 0.9});
  std::vector<StateDict> states(shapes.size());
  for (int s = 0; s < 4; ++s) {
    if (s == 2) opt.set_lr(0.01);
    auto grads = random_tensors(shapes, 200 + s, kFloat32);
    for (size_t i = 0; i < shapes.size(); ++i) fused[i].set_grad(grads[i]);
    opt.step();
    ref::step(opt, reference, grads, states);
  }
  for (size_t i = 0; i < shapes.size(); ++i) EXPECT_TRUE(equal(fused[i].detach(), reference[i]));
}

TEST(OptimFused, HyperVersion) {
  Params p = fresh(problem());
  optim::Adam opt(p.list(), {.lr = 0.1});
  const uint64_t v0 = opt.hyper_version();
  run_steps(opt, problem(), p, 2);
  opt.set_lr(0.01);  // the learning rate is read on the device: no recapture needed
  opt.prepare_step();
  EXPECT_EQ(opt.hyper_version(), v0);
  opt.param_groups()[0].options["beta1"] = 0.5;
  const uint64_t v1 = opt.hyper_version();
  EXPECT_NE(v1, v0);
  EXPECT_EQ(opt.hyper_version(), v1);
  opt.add_param_group({{zeros({2}).requires_grad_()}, {}});
  const uint64_t v2 = opt.hyper_version();
  EXPECT_NE(v2, v1);
  optim::Adam other(p.list(), {.lr = 0.1});
  other.add_param_group({{zeros({2}).requires_grad_()}, {}});
  other.load_state_dict(opt.state_dict());
  const uint64_t v3 = other.hyper_version();
  other.load_state_dict(opt.state_dict());
  EXPECT_NE(other.hyper_version(), v3);
}

TEST(OptimFused, StateLayout) {
  Params p = fresh(problem());
  optim::NAdam opt(p.list(), {});
  run_steps(opt, problem(), p, 2);
  const StateDict& s = opt.state(p.W);
  for (const char* k : {"step", "mu_product"}) {
    EXPECT_EQ(s.at(k).dtype(), kFloat32) << k;
    EXPECT_EQ(s.at(k).dim(), 0) << k;
  }
  EXPECT_EQ(s.at("step").item<double>(), 2);
  // 16-bit parameters keep float32 state and follow a float32 run closely.
  for (DType dt : {kBFloat16, kFloat16}) {
    Problem pb = problem();
    Params a = fresh(pb);
    Params h{pb.W0.to(dt).requires_grad_(), pb.b0.to(dt).requires_grad_(),
             zeros({4}, dt).requires_grad_()};
    optim::Adam oa(a.list(), {.lr = 0.01}), oh(h.list(), {.lr = 0.01});
    for (int i = 0; i < 5; ++i) {
      auto grads = random_tensors({{3, 2}, {2}}, 300 + i, kFloat32);
      a.W.set_grad(grads[0]);
      a.b.set_grad(grads[1]);
      h.W.set_grad(grads[0].to(dt));
      h.b.set_grad(grads[1].to(dt));
      oa.step();
      oh.step();
    }
    EXPECT_EQ(oh.state(h.W).at("exp_avg").dtype(), kFloat32);
    EXPECT_TRUE(test::all_close(h.W.detach().to(kFloat32), a.W.detach(), 1e-2, 1e-2));
    EXPECT_TRUE(test::all_close(oh.state(h.W).at("exp_avg_sq"), oa.state(a.W).at("exp_avg_sq"),
                                2e-2, 1e-6));
  }
}

TEST(OptimFused, StridedParameterAndMismatchedGradient) {
  // A non-contiguous leaf is updated through a dense copy written back.
  Tensor base = test::uniform({4, 3}, 41, -1, 1, kFloat32);
  Tensor w = base.t().detach().requires_grad_();
  ASSERT_FALSE(w.is_contiguous());
  Tensor reference = w.detach().clone();
  optim::SGD opt({w}, {.lr = 0.1, .momentum = 0.5});
  std::vector<StateDict> states(1);
  std::vector<Tensor> refs{reference};
  for (int s = 0; s < 3; ++s) {
    Tensor g = test::uniform({3, 4}, 50 + s, -1, 1, kFloat32);
    w.set_grad(g);
    opt.step();
    ref::step(opt, refs, {g}, states);
  }
  EXPECT_TRUE(equal(w.detach(), refs[0]));
  EXPECT_TRUE(equal(base.t(), refs[0]));  // the update landed in the original storage
  Tensor v = zeros({2}).requires_grad_();
  optim::Adam adam({v});
  v.set_grad(zeros({2}, kFloat64));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { adam.step(); }, {"Adam", "gradient", "float64"}));
}

TEST(Optim, ClipGradNormManyTensors) {
  // Chunked partial sums over many odd tensors, against a float64 computation.
  const auto shapes = odd_shapes();
  for (double p : {2.0, 1.0, 3.0, double(INFINITY)}) {
    auto grads = random_tensors(shapes, 61, kFloat32, -3, 3);
    std::vector<Tensor> params;
    double acc = 0;
    for (const auto& g : grads) {
      params.push_back(zeros(g.shape()).requires_grad_());
      params.back().set_grad(g.clone());
      for (double x : g.to(kFloat64).reshape({-1}).to_vector<double>())
        acc = std::isinf(p) ? std::max(acc, std::abs(x)) : acc + std::pow(std::abs(x), p);
    }
    const double want = std::isinf(p) ? acc : std::pow(acc, 1 / p);
    Tensor total = optim::clip_grad_norm_(params, 1.5, p);
    EXPECT_EQ(total.dtype(), kFloat32);
    EXPECT_NEAR(total.item<double>(), want, 1e-6 * want) << p;
    const float coef = std::min(1.5f / (float(want) + 1e-6f), 1.0f);
    for (size_t i = 0; i < grads.size(); ++i)
      EXPECT_TRUE(test::all_close(params[i].grad(), mul(grads[i], double(coef)), 1e-6, 1e-7));
  }
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
