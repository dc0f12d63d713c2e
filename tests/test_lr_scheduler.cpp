// Learning-rate schedulers against torch.optim.lr_scheduler: the learning rates (and cycled
// momentum) over 30 steps, ReduceLROnPlateau on a metric sequence, state-dict round trips,
// errors.
#include <memory>

#include "anvil/optim/optim.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;
using optim::LRScheduler;
using optim::Optimizer;

namespace {

using MakeSched = std::function<std::shared_ptr<LRScheduler>(Optimizer&)>;

// Two groups (lr 0.1 and 0.05), built as SGD with momentum 0.9 or as Adam.
struct TwoGroups {
  Tensor p1 = zeros({1}).requires_grad_(), p2 = zeros({1}).requires_grad_();
  std::unique_ptr<Optimizer> opt;
  explicit TwoGroups(bool adam = false) {
    std::vector<optim::ParamGroup> groups{{{p1}, {}}, {{p2}, {{"lr", 0.05}}}};
    if (adam)
      opt = std::make_unique<optim::Adam>(groups, optim::AdamOptions{.lr = 0.1});
    else
      opt = std::make_unique<optim::SGD>(groups, optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  }
};

const char* kTorchSetup =
    "from torch.optim.lr_scheduler import *\n"
    "p1 = torch.zeros(1, requires_grad=True); p2 = torch.zeros(1, requires_grad=True)\n"
    "groups = [{'params': [p1]}, {'params': [p2], 'lr': 0.05}]\n"
    "opt = torch.optim.Adam(groups, lr=0.1) if ADAM else torch.optim.SGD(groups, lr=0.1, "
    "momentum=0.9)\n"
    "def mom(g):\n"
    "    return g['betas'][0] if ADAM else g['momentum']\n"
    "def row():\n"
    "    return [g['lr'] for g in opt.param_groups] + [mom(g) for g in opt.param_groups]\n";

// [steps + 1, 4]: each group's lr, then its momentum (or beta1), after construction and after
// each step.
Tensor run_anvil(Optimizer& opt, LRScheduler& s, int steps, const std::vector<double>& metrics) {
  const std::string mkey = opt.defaults().count("beta1") ? "beta1" : "momentum";
  std::vector<double> rows;
  auto row = [&] {
    for (const auto& g : opt.param_groups()) rows.push_back(g.options.at("lr"));
    for (const auto& g : opt.param_groups()) rows.push_back(g.options.at(mkey));
    EXPECT_EQ(s.get_last_lr()[0], opt.param_groups()[0].options.at("lr"));
  };
  row();
  for (int i = 0; i < steps; ++i) {
    opt.step();
    if (auto* p = dynamic_cast<optim::ReduceLROnPlateau*>(&s))
      p->step(metrics.at(size_t(i)));
    else
      s.step();
    row();
  }
  return tensor(rows, {int64_t(steps) + 1, 4});
}

::testing::AssertionResult matches_torch_sched(const std::string& ctor, const MakeSched& make,
                                               bool adam = false, int steps = 30,
                                               const std::vector<double>& metrics = {}) {
  TwoGroups st(adam);
  auto s = make(*st.opt);
  Tensor got = run_anvil(*st.opt, *s, steps, metrics);
  std::string metric_list = "[";
  for (double m : metrics) metric_list += std::to_string(m) + ", ";
  metric_list += "]";
  auto ref = test::TorchOracle::get().run_code(
      std::string("ADAM = ") + (adam ? "True" : "False") + "\n" + kTorchSetup + "sched = " + ctor +
      "\n"
      "metrics = " +
      metric_list +
      "\n"
      "rows = [row()]\n"
      "for i in range(" +
      std::to_string(steps) +
      "):\n"
      "    opt.step()\n"
      "    sched.step(metrics[i]) if metrics else sched.step()\n"
      "    rows.append(row())\n"
      "out = torch.tensor(rows, dtype=torch.float64)\n");
  // The schedule must change something, so a do-nothing scheduler cannot pass.
  auto first = got.select(0, 0);
  bool changed = false;
  for (int64_t i = 1; i <= steps; ++i) changed = changed || !equal(got.select(0, i), first);
  if (!changed && ctor.find("factor=1.0") == std::string::npos)
    return ::testing::AssertionFailure() << ctor << " never changed the lr";
  auto r = test::all_close(got, ref[0], 1e-12, 1e-15);
  if (!r) return r << " (" << ctor << ")";
  return ::testing::AssertionSuccess();
}

template <class S, class... Args>
MakeSched make(Args... args) {
  return [=](Optimizer& o) { return std::make_shared<S>(o, args...); };
}

}  // namespace

TEST(LRScheduler, StepLR) {
  EXPECT_TRUE(matches_torch_sched("StepLR(opt, step_size=7, gamma=0.5)",
                                  make<optim::StepLR>(int64_t(7), 0.5)));
  EXPECT_TRUE(matches_torch_sched("StepLR(opt, 3)", make<optim::StepLR>(int64_t(3))));
}

TEST(LRScheduler, MultiStepLR) {
  EXPECT_TRUE(
      matches_torch_sched("MultiStepLR(opt, milestones=[12, 4, 20, 20], gamma=0.3)",
                          make<optim::MultiStepLR>(std::vector<int64_t>{12, 4, 20, 20}, 0.3)));
}

TEST(LRScheduler, ExponentialLR) {
  EXPECT_TRUE(
      matches_torch_sched("ExponentialLR(opt, gamma=0.9)", make<optim::ExponentialLR>(0.9)));
}

TEST(LRScheduler, CosineAnnealingLR) {
  EXPECT_TRUE(matches_torch_sched("CosineAnnealingLR(opt, T_max=10, eta_min=0.001)",
                                  make<optim::CosineAnnealingLR>(int64_t(10), 0.001)));
  EXPECT_TRUE(matches_torch_sched("CosineAnnealingLR(opt, T_max=30)",
                                  make<optim::CosineAnnealingLR>(int64_t(30))));
}

TEST(LRScheduler, LinearLR) {
  EXPECT_TRUE(matches_torch_sched("LinearLR(opt, start_factor=0.1, total_iters=8)",
                                  make<optim::LinearLR>(0.1, 1.0, int64_t(8))));
  EXPECT_TRUE(matches_torch_sched("LinearLR(opt, start_factor=1.0, end_factor=0.2, total_iters=12)",
                                  make<optim::LinearLR>(1.0, 0.2, int64_t(12))));
  EXPECT_TRUE(matches_torch_sched("LinearLR(opt)", make<optim::LinearLR>()));
}

TEST(LRScheduler, ConstantLR) {
  EXPECT_TRUE(matches_torch_sched("ConstantLR(opt, factor=0.25, total_iters=6)",
                                  make<optim::ConstantLR>(0.25, int64_t(6))));
  EXPECT_TRUE(matches_torch_sched("ConstantLR(opt)", make<optim::ConstantLR>()));
  // factor 1 never changes the lr: the no-op scheduler.
  EXPECT_TRUE(matches_torch_sched("ConstantLR(opt, factor=1.0)", make<optim::ConstantLR>(1.0)));
  TwoGroups st;
  optim::ConstantLR noop(*st.opt, 1.0);
  for (int i = 0; i < 10; ++i) noop.step();
  EXPECT_EQ(noop.get_last_lr(), (std::vector<double>{0.1, 0.05}));
}

TEST(LRScheduler, SequentialLR) {
  EXPECT_TRUE(
      matches_torch_sched("SequentialLR(opt, [LinearLR(opt, start_factor=0.1, total_iters=5), "
                          "CosineAnnealingLR(opt, T_max=20, eta_min=0.001)], milestones=[5])",
                          [](Optimizer& o) {
                            return std::make_shared<optim::SequentialLR>(
                                o,
                                std::vector<std::shared_ptr<LRScheduler>>{
                                    std::make_shared<optim::LinearLR>(o, 0.1, 1.0, 5),
                                    std::make_shared<optim::CosineAnnealingLR>(o, 20, 0.001)},
                                std::vector<int64_t>{5});
                          }));
  EXPECT_TRUE(matches_torch_sched(
      "SequentialLR(opt, [ConstantLR(opt, factor=0.5, total_iters=3), ExponentialLR(opt, 0.9), "
      "StepLR(opt, 4, 0.5)], milestones=[6, 15])",
      [](Optimizer& o) {
        return std::make_shared<optim::SequentialLR>(
            o,
            std::vector<std::shared_ptr<LRScheduler>>{
                std::make_shared<optim::ConstantLR>(o, 0.5, 3),
                std::make_shared<optim::ExponentialLR>(o, 0.9),
                std::make_shared<optim::StepLR>(o, 4, 0.5)},
            std::vector<int64_t>{6, 15});
      }));
}

TEST(LRScheduler, OneCycleLR) {
  using optim::OneCycleLR;
  using O = optim::OneCycleLROptions;
  EXPECT_TRUE(matches_torch_sched("OneCycleLR(opt, max_lr=1.0, total_steps=30)",
                                  make<OneCycleLR>(1.0, int64_t(30), O{})));
  EXPECT_TRUE(matches_torch_sched(
      "OneCycleLR(opt, max_lr=[1.0, 0.5], total_steps=40, pct_start=0.25, "
      "anneal_strategy='linear', "
      "div_factor=10, final_div_factor=100, base_momentum=0.8, max_momentum=0.9)",
      make<OneCycleLR>(std::vector<double>{1.0, 0.5}, int64_t(40),
                       O{.pct_start = 0.25,
                         .anneal_strategy = "linear",
                         .base_momentum = 0.8,
                         .max_momentum = 0.9,
                         .div_factor = 10,
                         .final_div_factor = 100})));
  EXPECT_TRUE(matches_torch_sched("OneCycleLR(opt, max_lr=0.3, total_steps=30, three_phase=True)",
                                  make<OneCycleLR>(0.3, int64_t(30), O{.three_phase = true})));
  // Adam: beta1 is cycled.
  EXPECT_TRUE(matches_torch_sched("OneCycleLR(opt, max_lr=0.01, total_steps=30)",
                                  make<OneCycleLR>(0.01, int64_t(30), O{}), true));
  // Past total_steps.
  TwoGroups st;
  OneCycleLR s(*st.opt, 1.0, 3);
  for (int i = 0; i < 3; ++i) s.step();
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { s.step(); }, {"OneCycleLR", "4", "total_steps = 3"}));
}

TEST(LRScheduler, ReduceLROnPlateau) {
  using optim::ReduceLROnPlateau;
  using O = optim::ReduceLROnPlateauOptions;
  std::vector<double> metrics;
  for (int i = 0; i < 30; ++i) metrics.push_back(i < 6 ? 1.0 - 0.1 * i : (i % 3 == 0 ? 0.45 : 0.5));
  EXPECT_TRUE(matches_torch_sched("ReduceLROnPlateau(opt, patience=2)",
                                  make<ReduceLROnPlateau>(O{.patience = 2}), false, 30, metrics));
  EXPECT_TRUE(matches_torch_sched(
      "ReduceLROnPlateau(opt, mode='max', factor=0.5, patience=1, threshold=0.05, "
      "threshold_mode='abs', cooldown=2, min_lr=[0.02, 0.01])",
      make<ReduceLROnPlateau>(O{.mode = "max",
                                .factor = 0.5,
                                .patience = 1,
                                .threshold = 0.05,
                                .threshold_mode = "abs",
                                .cooldown = 2,
                                .min_lr = {0.02, 0.01}}),
      false, 30, metrics));
  EXPECT_TRUE(matches_torch_sched(
      "ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.2)",
      make<ReduceLROnPlateau>(O{.factor = 0.5, .patience = 0, .threshold = 0.2}), false, 30,
      metrics));
  TwoGroups st;
  ReduceLROnPlateau s(*st.opt);
  EXPECT_TRUE(test::throws_with<ValueError>([&] { s.step(); }, {"ReduceLROnPlateau", "metric"}));
}

namespace {
// 12 steps, save optimizer and scheduler, rebuild both, load, 18 more == 30 straight.
void check_round_trip(const MakeSched& make, bool plateau = false) {
  auto metric = [](int i) { return i % 4 == 0 ? 0.1 : 1.0; };
  auto run = [&](Optimizer& opt, LRScheduler& s, int from, int to) {
    std::vector<double> lrs;
    for (int i = from; i < to; ++i) {
      opt.step();
      if (plateau)
        dynamic_cast<optim::ReduceLROnPlateau&>(s).step(metric(i));
      else
        s.step();
      lrs.push_back(s.get_last_lr()[0]);
      lrs.push_back(opt.param_groups()[1].options.at("lr"));
    }
    return lrs;
  };
  TwoGroups a;
  auto sa = make(*a.opt);
  auto straight = run(*a.opt, *sa, 0, 30);

  TwoGroups b;
  auto sb = make(*b.opt);
  auto resumed = run(*b.opt, *sb, 0, 12);
  StateDict osd = b.opt->state_dict(), ssd = sb->state_dict();
  TwoGroups c;
  auto sc = make(*c.opt);
  c.opt->load_state_dict(osd);
  sc->load_state_dict(ssd);
  EXPECT_EQ(sc->last_epoch(), sb->last_epoch());
  auto rest = run(*c.opt, *sc, 12, 30);
  resumed.insert(resumed.end(), rest.begin(), rest.end());
  EXPECT_EQ(resumed, straight);
}
}  // namespace

TEST(LRScheduler, StateDictRoundTrip) {
  check_round_trip(make<optim::StepLR>(int64_t(5), 0.5));
  check_round_trip(make<optim::CosineAnnealingLR>(int64_t(10), 0.001));
  check_round_trip(make<optim::OneCycleLR>(1.0, int64_t(30), optim::OneCycleLROptions{}));
  check_round_trip(make<optim::ReduceLROnPlateau>(optim::ReduceLROnPlateauOptions{.patience = 1}),
                   true);
  check_round_trip([](Optimizer& o) {
    return std::make_shared<optim::SequentialLR>(
        o,
        std::vector<std::shared_ptr<LRScheduler>>{std::make_shared<optim::LinearLR>(o, 0.1, 1.0, 5),
                                                  std::make_shared<optim::ExponentialLR>(o, 0.9)},
        std::vector<int64_t>{15});
  });
  TwoGroups st;
  optim::StepLR s(*st.opt, 3);
  StateDict sd = s.state_dict();
  EXPECT_EQ(sd.at("last_epoch").item<int64_t>(), 0);
  EXPECT_EQ(sd.at("_step_count").item<int64_t>(), 1);
  EXPECT_EQ(sd.at("base_lrs").to_vector<double>(), (std::vector<double>{0.1, 0.05}));
}

TEST(LRScheduler, ResumeWithLastEpoch) {
  // last_epoch >= 0 needs initial_lr in the groups...
  TwoGroups fresh_opt;
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::StepLR(*fresh_opt.opt, 3, 0.1, 5); },
                                            {"initial_lr", "param group 0"}));
  // ... and then matches torch's resumed schedule (CosineAnnealingLR's closed-form first step).
  EXPECT_TRUE(
      matches_torch_sched("CosineAnnealingLR(opt, T_max=10)\nopt.param_groups[0]['lr'] = "
                          "0.1\nsched = CosineAnnealingLR(opt, T_max=10, last_epoch=4)",
                          [](Optimizer& o) {
                            optim::CosineAnnealingLR first(o, 10);
                            o.param_groups()[0].options["lr"] = 0.1;
                            return std::make_shared<optim::CosineAnnealingLR>(o, 10, 0.0, 4);
                          }));
}

TEST(LRScheduler, BadArgumentsThrow) {
  TwoGroups st;
  Optimizer& o = *st.opt;
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { optim::StepLR(o, 0); }, {"StepLR", "step_size", "0"}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { optim::ConstantLR(o, 1.5); }, {"ConstantLR", "1.5"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::LinearLR(o, 0.0); },
                                            {"LinearLR", "start_factor", "0"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::CosineAnnealingLR(o, 0); },
                                            {"CosineAnnealingLR", "T_max"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::OneCycleLR(o, 1.0, 0); },
                                            {"OneCycleLR", "total_steps", "0"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { optim::OneCycleLR(o, 1.0, 10, {.anneal_strategy = "exp"}); },
      {"OneCycleLR", "\"exp\""}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        optim::OneCycleLR(o, std::vector<double>{1, 2, 3}, 10);
      },
      {"OneCycleLR", "max_lr", "3"}));
  Tensor p = zeros({1}).requires_grad_();
  optim::Adagrad no_momentum({p});
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::OneCycleLR(no_momentum, 1.0, 10); },
                                            {"OneCycleLR", "momentum", "Adagrad"}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { optim::ReduceLROnPlateau(o, {.mode = "maximum"}); },
                                    {"ReduceLROnPlateau", "\"maximum\""}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::ReduceLROnPlateau(o, {.factor = 1.0}); },
                                            {"ReduceLROnPlateau", "factor", "1"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { optim::SequentialLR(o, {std::make_shared<optim::ExponentialLR>(o, 0.9)}, {3}); },
      {"SequentialLR", "milestones"}));
  TwoGroups other;
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        optim::SequentialLR(o, {std::make_shared<optim::ExponentialLR>(*other.opt, 0.9)}, {});
      },
      {"SequentialLR", "same optimizer"}));
}

TEST(NoOpLR, NeverChangesTheLearningRate) {
  Tensor w = zeros({2}).requires_grad_();
  auto opt = optim::make_optimizer("sgd", {w}, 0.25);
  optim::NoOpLR sched(*opt);
  for (int i = 0; i < 10; ++i) {
    sched.step();
    EXPECT_DOUBLE_EQ(opt->lr(), 0.25);
  }
  EXPECT_EQ(sched.get_last_lr(), (std::vector<double>{0.25}));
}
