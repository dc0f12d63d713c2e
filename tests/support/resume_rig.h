// The exact-resume rig shared by the checkpoint tests on the CPU and on CUDA: a small MLP
// with dropout trained on three Gaussian blobs, N epochs straight against k epochs, a
// checkpoint, brand-new objects and the remaining epochs, which must be bit-identical.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "anvil/data/dataloader.h"
#include "anvil/data/tensor_dataset.h"
#include "anvil/nn/model_builder.h"
#include "anvil/optim/optim.h"
#include "anvil/train/callback.h"
#include "anvil/train/trainer.h"

namespace anvil::test::resume {

inline std::shared_ptr<data::TensorDataset> blobs(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor y = randint(0, 3, {n}, kInt64, &g);
  Tensor centers = tensor(std::vector<float>{-2, 0, 2, 0, 0, 2.5f}, {3, 2});
  Tensor x = add(index_select(centers, 0, y), mul(randn({n, 2}, {}, &g), 0.5));
  return std::make_shared<data::TensorDataset>(x, y);
}

// An MLP with dropout, so the generator's state matters to the result.
inline std::shared_ptr<nn::Sequential> mlp() {
  manual_seed(3);
  return nn::ModelBuilder({1, 2}).dense(16).relu().dropout(0.3).dense(3).build();
}

inline std::shared_ptr<optim::Optimizer> make_opt(const std::string& name, std::vector<Tensor> params) {
  auto group = [&](optim::Options o) { return std::vector<optim::ParamGroup>{{params, o}}; };
  if (name == "sgd") return std::make_shared<optim::SGD>(group({{"lr", 0.05}, {"momentum", 0.9}}));
  if (name == "adam") return std::make_shared<optim::Adam>(group({{"lr", 0.01}}));
  if (name == "adamw")
    return std::make_shared<optim::AdamW>(group({{"lr", 0.01}, {"amsgrad", 1}}));
  if (name == "rmsprop")
    return std::make_shared<optim::RMSprop>(
        group({{"lr", 0.005}, {"centered", 1}, {"momentum", 0.5}}));
  if (name == "adagrad") return std::make_shared<optim::Adagrad>(group({{"lr", 0.05}}));
  if (name == "adadelta") return std::make_shared<optim::Adadelta>(group({{"lr", 1.0}}));
  if (name == "nadam") return std::make_shared<optim::NAdam>(group({{"lr", 0.01}}));
  throw ValueError("test: unknown optimizer " + name);
}

constexpr int64_t kSamples = 96, kBatch = 16, kSteps = kSamples / kBatch;

struct Rig {
  std::shared_ptr<nn::Sequential> model;
  std::shared_ptr<optim::Optimizer> opt;
  std::unique_ptr<train::Trainer> trainer;
};

// A brand-new model, optimizer, scheduler and trainer.
inline Rig make_run(const std::string& opt_name, const std::string& sched, int64_t total_epochs,
             Device device = kCPU) {
  Rig r;
  r.model = mlp();
  r.model->to(device);
  r.opt = make_opt(opt_name, r.model->parameters());
  r.trainer = std::make_unique<train::Trainer>(r.model, r.opt, nn::make_loss("cross_entropy"),
                                               train::TrainerOptions{.device = device});
  using Every = train::LRSchedulerCallback::Every;
  if (sched == "step")
    r.trainer->set_scheduler(std::make_shared<optim::StepLR>(*r.opt, 2, 0.5));
  else if (sched == "cosine")
    r.trainer->set_scheduler(std::make_shared<optim::CosineAnnealingLR>(*r.opt, total_epochs));
  else if (sched == "onecycle")
    r.trainer->set_scheduler(
        std::make_shared<optim::OneCycleLR>(*r.opt, 0.1, total_epochs * kSteps), Every::Step);
  else if (sched == "multistep")
    r.trainer->set_scheduler(std::make_shared<optim::MultiStepLR>(*r.opt, std::vector<int64_t>{1, 3}, 0.5));
  else if (sched == "exponential")
    r.trainer->set_scheduler(std::make_shared<optim::ExponentialLR>(*r.opt, 0.7));
  else if (sched == "constant")
    r.trainer->set_scheduler(std::make_shared<optim::ConstantLR>(*r.opt, 0.5, 3));
  else if (sched == "linear")  // a warm-up over the first steps, stepped every batch
    r.trainer->set_scheduler(std::make_shared<optim::LinearLR>(*r.opt, 0.1, 1.0, 2 * kSteps),
                             Every::Step);
  else if (sched == "sequential")  // warm-up for 2 epochs, then cosine
    r.trainer->set_scheduler(std::make_shared<optim::SequentialLR>(
        *r.opt,
        std::vector<std::shared_ptr<optim::LRScheduler>>{
            std::make_shared<optim::LinearLR>(*r.opt, 0.2, 1.0, 2),
            std::make_shared<optim::CosineAnnealingLR>(*r.opt, total_epochs - 2)},
        std::vector<int64_t>{2}));
  else if (sched == "plateau")
    r.trainer->set_scheduler(std::make_shared<optim::ReduceLROnPlateau>(
                                 *r.opt, optim::ReduceLROnPlateauOptions{.factor = 0.5, .patience = 0}),
                             Every::Epoch, "loss");
  return r;
}

inline data::DataLoader make_loader() {
  return data::DataLoader(blobs(kSamples, 1), {.batch_size = kBatch, .shuffle = true, .seed = 7});
}

inline void expect_same_params(const nn::Module& a, const nn::Module& b, const std::string& what) {
  StateDict sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.size(), sb.size()) << what;
  for (const auto& [k, v] : sa) EXPECT_TRUE(equal(v, sb.at(k))) << what << ": " << k;
}

// N epochs straight vs k epochs + save + new objects + load + the rest: bit-identical.
inline void check_exact_resume(const std::string& opt_name, const std::string& sched,
                        Device device = kCPU) {
  const int64_t N = 5, k = 2;
  const std::string what =
      opt_name + "/" + (sched.empty() ? "none" : sched) + " on " + device.str();
  Rig straight = make_run(opt_name, sched, N, device);
  auto loader = make_loader();
  straight.trainer->fit(loader, N);

  std::string p = "/tmp/anvil_test_resume_" + std::to_string(getpid()) + "_" + opt_name + "_" +
                  sched + ".safetensors";
  {
    Rig first = make_run(opt_name, sched, N, device);
    auto l1 = make_loader();
    first.trainer->fit(l1, k);
    first.trainer->save_checkpoint(p);
  }
  // Disturb the generators: the checkpoint must bring them back.
  manual_seed(12345);
  (void)randn({100});
  if (device.is_cuda()) (void)randn({100}, TensorOptions().device(device));
  Rig second = make_run(opt_name, sched, N, device);
  auto l2 = make_loader();
  second.trainer->load_checkpoint(p);
  EXPECT_EQ(second.trainer->epoch(), k) << what;
  EXPECT_EQ(second.trainer->global_step(), k * kSteps) << what;
  EXPECT_EQ(second.trainer->history().epochs().size(), size_t(k)) << what;
  second.trainer->fit_to(l2, N);
  expect_same_params(*straight.model, *second.model, what);
  EXPECT_EQ(second.trainer->global_step(), straight.trainer->global_step()) << what;
  EXPECT_EQ(second.opt->lr(), straight.opt->lr()) << what;
  auto a = straight.trainer->history().series("loss"), b = second.trainer->history().series("loss");
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << what << " epoch " << i + 1;
  unlink(p.c_str());
}

// N epochs straight (saving a checkpoint every `every` steps, in the middle of an epoch) vs
// brand-new objects loading the checkpoint of step `every` and training to N epochs.
inline void check_exact_resume_mid_epoch(const std::string& opt_name, const std::string& sched,
                                         Device device = kCPU) {
  const int64_t N = 4, every = kSteps + kSteps / 2;  // half-way through epoch 2
  const std::string what =
      "mid-epoch " + opt_name + "/" + (sched.empty() ? "none" : sched) + " on " + device.str();
  const std::string dir = "/tmp/anvil_test_resume_mid_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  Rig straight = make_run(opt_name, sched, N, device);
  auto cb = std::make_shared<train::CheckpointCallback>(dir, 0, 0);
  cb->every_n_steps(every);
  straight.trainer->add_callback(cb);
  auto loader = make_loader();
  straight.trainer->fit(loader, N);

  manual_seed(4321);
  (void)randn({100});
  Rig second = make_run(opt_name, sched, N, device);
  second.trainer->load_checkpoint(cb->path_for_step(every));
  EXPECT_EQ(second.trainer->epoch(), 1) << what;  // epochs completed
  EXPECT_EQ(second.trainer->global_step(), every) << what;
  auto l2 = make_loader();
  second.trainer->fit_to(l2, N);
  expect_same_params(*straight.model, *second.model, what);
  EXPECT_EQ(second.trainer->global_step(), straight.trainer->global_step()) << what;
  for (const char* key : {"loss", "accuracy", "lr"}) {
    auto a = straight.trainer->history().series(key), b = second.trainer->history().series(key);
    ASSERT_EQ(a.size(), b.size()) << what << " " << key;
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << what << " " << key << " " << i;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace anvil::test::resume
