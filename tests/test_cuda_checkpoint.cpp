// Checkpoints on CUDA: exact resume for every optimizer and scheduler in deterministic mode
// (with the trainer's CUDA graphs on, as by default), and checkpoints and model files moving
// between devices and dtypes. Skipped without a GPU.
#include <unistd.h>

#include "anvil/core/determinism.h"
#include "anvil/io/checkpoint.h"
#include "anvil/io/model_file.h"
#include "support/check.h"
#include "support/resume_rig.h"

using namespace anvil;
using namespace anvil::test::resume;

namespace {

class CudaCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device";
    use_deterministic_algorithms(true);
  }
  void TearDown() override { use_deterministic_algorithms(false); }
};

std::string temp_path(const std::string& name) {
  return "/tmp/anvil_test_cuda_ckpt_" + std::to_string(getpid()) + "_" + name;
}

TEST_F(CudaCheckpoint, ExactResumeForEveryOptimizer) {
  for (const char* opt : {"sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "nadam"})
    check_exact_resume(opt, "", kCUDA);
}

TEST_F(CudaCheckpoint, ExactResumeForSchedulers) {
  for (const char* s : {"step", "multistep", "exponential", "constant", "linear", "sequential",
                        "cosine", "onecycle", "plateau"})
    check_exact_resume("sgd", s, kCUDA);
  check_exact_resume("adam", "onecycle", kCUDA);
}

TEST_F(CudaCheckpoint, ExactResumeFromTheMiddleOfAnEpoch) {
  for (const char* opt : {"sgd", "adam", "nadam"}) check_exact_resume_mid_epoch(opt, "", kCUDA);
  check_exact_resume_mid_epoch("adam", "onecycle", kCUDA);
}

TEST_F(CudaCheckpoint, TheTrainerReplaysItsStepsAsGraphs) {
  Rig r = make_run("adam", "", 3, kCUDA);
  auto loader = make_loader();
  r.trainer->fit(loader, 3);
  ASSERT_NE(r.trainer->graphed_step(), nullptr);
  EXPECT_GT(r.trainer->graphed_step()->replays(), 0);
}

// Saved on CUDA, loaded on the CPU, and the other way round: the same numbers arrive.
TEST_F(CudaCheckpoint, LoadsAcrossDevices) {
  Rig gpu = make_run("adam", "step", 3, kCUDA);
  auto loader = make_loader();
  gpu.trainer->fit(loader, 2);
  const std::string p = temp_path("gpu.safetensors");
  gpu.trainer->save_checkpoint(p);

  Rig cpu = make_run("adam", "step", 3, kCPU);
  cpu.trainer->load_checkpoint(p);
  for (const auto& [k, v] : gpu.model->state_dict())
    EXPECT_TRUE(equal(v.to(kCPU), cpu.model->state_dict().at(k))) << k;
  for (const auto& [k, v] : gpu.opt->state_dict())
    EXPECT_TRUE(equal(v.to(kCPU), cpu.opt->state_dict().at(k))) << k;
  EXPECT_EQ(cpu.trainer->epoch(), 2);

  const std::string q = temp_path("cpu.safetensors");
  cpu.trainer->save_checkpoint(q);
  Rig back = make_run("adam", "step", 3, kCUDA);
  back.trainer->load_checkpoint(q);
  for (const auto& [k, v] : gpu.model->state_dict()) {
    const Tensor b = back.model->state_dict().at(k);
    EXPECT_EQ(b.device(), kCUDA) << k;
    EXPECT_TRUE(equal(v.to(kCPU), b.to(kCPU))) << k;
  }
  // The CUDA state continues on the device: one more epoch runs there.
  auto l2 = make_loader();
  back.trainer->fit_to(l2, 3);
  for (const Tensor& p : back.model->parameters()) EXPECT_EQ(p.device(), kCUDA);
  unlink(p.c_str());
  unlink(q.c_str());
}

TEST_F(CudaCheckpoint, ModelFilesLoadOnEitherDeviceAndInAskedDtypes) {
  Rig gpu = make_run("sgd", "", 1, kCUDA);
  auto loader = make_loader();
  gpu.trainer->fit(loader, 1);
  gpu.model->eval();
  const std::string p = temp_path("model.anvil");
  io::save_model(nn::ModelBuilder({1, 2}).dense(16).relu().dropout(0.3).dense(3), *gpu.model, p);
  Tensor x = test::uniform({5, 2}, 4, -2, 2, kFloat32);
  Tensor expected = (*gpu.model)(x.to(kCUDA)).to(kCPU);

  auto on_cpu = io::load_model(p);
  EXPECT_TRUE(test::all_close((*on_cpu)(x), expected, 1e-5, 1e-5));
  auto on_gpu = io::load_model(p, {.device = kCUDA});
  EXPECT_TRUE(equal((*on_gpu)(x.to(kCUDA)).to(kCPU), expected));
  auto half = io::load_model(p, {.device = kCUDA, .dtype = kBFloat16});
  for (const Tensor& w : half->parameters()) {
    EXPECT_EQ(w.dtype(), kBFloat16);
    EXPECT_EQ(w.device(), kCUDA);
  }
  EXPECT_TRUE(test::all_close((*half)(x.to(kCUDA).to(kBFloat16)).to(kCPU).to(kFloat32), expected,
                              3e-2, 3e-2));
  unlink(p.c_str());
}

}  // namespace
