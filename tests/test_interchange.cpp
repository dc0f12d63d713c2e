// Weights move between anvil and PyTorch through safetensors files under PyTorch's names:
// the same model gives the same outputs on both sides. Also the single-file model format.
#include <unistd.h>

#include "anvil/core/file.h"
#include "anvil/io/model_file.h"
#include "anvil/io/safetensors.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

namespace {
std::string temp_path(const std::string& name) {
  return "/tmp/anvil_test_ic_" + std::to_string(getpid()) + "_" + name;
}

// The CNN as ModelBuilder and as the matching torch.nn.Sequential.
nn::ModelBuilder cnn_arch() {
  nn::ModelBuilder b({2, 1, 12, 12});
  b.conv2d(8, 3).relu().maxpool2d(2).conv2d(16, 3, 1, 1).batchnorm().relu().flatten().dense(10);
  return b;
}
const char* kTorchCnn =
    "import torch.nn as nn\n"
    "m = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, 1, 1),"
    " nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 5 * 5, 10))\n";
const char* kTorchMlp =
    "import torch.nn as nn\n"
    "m = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))\n";
}  // namespace

TEST(Interchange, AnvilWeightsLoadIntoTorchWithTheSameOutputs) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  struct Case {
    nn::ModelBuilder arch;
    const char* torch_model;
    Shape input;
  };
  std::vector<Case> cases = {{nn::ModelBuilder({2, 20}), kTorchMlp, {3, 20}},
                             {cnn_arch(), kTorchCnn, {2, 1, 12, 12}}};
  cases[0].arch.dense(32).relu().dense(5);
  for (auto& c : cases) {
    manual_seed(1);
    auto model = c.arch.build();
    model->eval();
    if (c.input.size() == 4) {  // give batch norm non-trivial running statistics
      NoGradGuard g;
      auto sd = model->state_dict();
      uniform_(sd.at("4.running_mean"), -0.5, 0.5);
      uniform_(sd.at("4.running_var"), 0.5, 2.0);
    }
    std::string path = temp_path("anvil.safetensors");
    io::save_safetensors(model->state_dict(), path);
    Tensor x = test::uniform(c.input, 3, -1, 1, kFloat32);
    Tensor mine = (*model)(x);
    auto theirs = oracle.run_code(std::string(c.torch_model) +
                                      "from safetensors.torch import load_file\n"
                                      "m.load_state_dict(load_file('" + path + "'), strict=True)\n"
                                      "m.eval()\nwith torch.no_grad(): out = m(a)\n",
                                  {x});
    EXPECT_TRUE(test::all_close(mine, theirs[0], 1e-5, 1e-5));
    unlink(path.c_str());
  }
}

TEST(Interchange, TorchWeightsLoadIntoAnvilWithTheSameOutputs) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  std::string path = temp_path("torch.safetensors");
  Tensor x = test::uniform({2, 1, 12, 12}, 4, -1, 1, kFloat32);
  auto theirs = oracle.run_code(std::string("torch.manual_seed(0)\n") + kTorchCnn +
                                    "for _ in range(3): m(a)  # train-mode steps move the BN stats\n"
                                    "m.eval()\n"
                                    "from safetensors.torch import save_file\n"
                                    "save_file(m.state_dict(), '" + path + "')\n"
                                    "with torch.no_grad(): out = m(a)\n",
                                {x});
  auto model = cnn_arch().build();
  model->load_state_dict(io::load_safetensors(path));
  model->eval();
  EXPECT_TRUE(test::all_close((*model)(x), theirs[0], 1e-5, 1e-5));
  // Loaded as float64 where asked.
  model->to(kFloat64);
  EXPECT_TRUE(test::all_close((*model)(x.to(kFloat64)), theirs[0], 1e-5, 1e-5));
  unlink(path.c_str());
}

TEST(ModelFile, SavesArchitectureAndWeightsInOneFile) {
  manual_seed(2);
  nn::ModelBuilder arch = cnn_arch();
  auto model = arch.build();
  std::string path = temp_path("model.anvil");
  io::save_model(arch, *model, path);
  auto back = io::load_model(path);
  model->eval();
  Tensor x = test::uniform({2, 1, 12, 12}, 5, -1, 1, kFloat32);
  EXPECT_TRUE(equal((*back)(x), (*model)(x)));
  EXPECT_FALSE(back->is_training());
  // A plain safetensors file is not a model file; a model that is not the architecture is refused.
  io::save_safetensors(model->state_dict(), path);
  EXPECT_TRUE(test::throws_with<IOError>([&] { io::load_model(path); }, {path, "not an anvil model file"}));
  auto other = nn::ModelBuilder({1, 4}).dense(3).build();
  EXPECT_THROW(io::save_model(arch, *other, path), Error);
  unlink(path.c_str());
}

TEST(ModelFile, LoadsInTheSavedDtypeUnlessAskedForAnother) {
  manual_seed(3);
  nn::ModelBuilder arch = cnn_arch();
  auto model = arch.build();
  model->eval();
  model->to(kFloat64);
  std::string path = temp_path("model64.anvil");
  io::save_model(arch, *model, path);
  Tensor x = test::uniform({2, 1, 12, 12}, 6, -1, 1, kFloat64);
  // float64 weights come back as float64, not rounded through float32.
  auto back = io::load_model(path);
  EXPECT_EQ(back->parameters()[0].dtype(), kFloat64);
  EXPECT_TRUE(equal((*back)(x), (*model)(x)));
  auto back32 = io::load_model(path, {.dtype = kFloat32});
  EXPECT_EQ(back32->parameters()[0].dtype(), kFloat32);
  EXPECT_TRUE(test::all_close((*back32)(x.to(kFloat32)), (*model)(x), 1e-5, 1e-5));
  // The architecture text is the ModelBuilder JSON, as before.
  EXPECT_FALSE(io::Architecture(arch).is_registered());
  EXPECT_EQ(io::Architecture::parse(io::Architecture(arch).dump()).json(), arch.to_json());
  unlink(path.c_str());
}
