// ResNet-18 moves between anvil and PyTorch through safetensors under PyTorch's names, with
// the same outputs (eval and train mode) and running statistics; it is a registered module,
// so a model file naming it rebuilds it. The torch model is the class text of
// shared/bench/torch_reference.py.
#include <unistd.h>

#include <algorithm>

#include "anvil/io/model_file.h"
#include "anvil/io/safetensors.h"
#include "anvil/nn/models/resnet.h"
#include "anvil/nn/registry.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

namespace {
std::string temp_path(const std::string& name) {
  return "/tmp/anvil_test_icr_" + std::to_string(getpid()) + "_" + name;
}

const char* kTorchResNet = R"py(
import torch.nn as nn
import torch.nn.functional as F
class Block(nn.Module):
    def __init__(s, i, o, st):
        super().__init__()
        s.c1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.b1 = nn.BatchNorm2d(o)
        s.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(o)
        s.sc = nn.Sequential()
        if st != 1 or i != o:
            s.sc = nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o))
    def forward(s, x):
        out = F.relu(s.b1(s.c1(x))); out = s.b2(s.c2(out)); return F.relu(out + s.sc(x))
class ResNet18(nn.Module):
    def __init__(s):
        super().__init__()
        s.c = nn.Conv2d(3, 64, 3, 1, 1, bias=False); s.b = nn.BatchNorm2d(64)
        cfg = [(64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2), (512, 512, 1)]
        s.layers = nn.Sequential(*[Block(i, o, st) for i, o, st in cfg]); s.fc = nn.Linear(512, 10)
    def forward(s, x):
        x = F.relu(s.b(s.c(x))); x = s.layers(x); x = F.adaptive_avg_pool2d(x, 1).flatten(1); return s.fc(x)
from safetensors.torch import save_file, load_file
import copy
)py";

// Moves every batch norm's running statistics and affine parameters away from their initial
// values (and num_batches_tracked off 0), so a mix-up between them changes the outputs.
void randomize_batch_norms(nn::Module& m) {
  NoGradGuard g;
  m.apply([](nn::Module& mod) {
    auto* bn = dynamic_cast<nn::BatchNorm*>(&mod);
    if (bn == nullptr) return;
    uniform_(bn->running_mean, -0.5, 0.5);
    uniform_(bn->running_var, 0.5, 2.0);
    uniform_(bn->weight, 0.5, 1.5);
    uniform_(bn->bias, -0.5, 0.5);
    bn->num_batches_tracked.fill_(3);
  });
}

const Shape kInput = {2, 3, 32, 32};
}  // namespace

TEST(ResNet18, HasPyTorchsStateDictNames) {
  manual_seed(0);
  nn::ResNet18 net;
  StateDict sd = net.state_dict();
  // 20 batch norms (5 buffers/params each), 20 convs, fc weight and bias.
  EXPECT_EQ(sd.size(), 20u * 5 + 20 + 2);
  for (const char* key : {"c.weight", "b.weight", "b.running_mean", "b.num_batches_tracked",
                          "layers.0.c1.weight", "layers.0.b2.running_var", "layers.2.sc.0.weight",
                          "layers.2.sc.1.num_batches_tracked", "layers.7.c2.weight",
                          "fc.weight", "fc.bias"})
    EXPECT_TRUE(sd.contains(key)) << key;
  EXPECT_FALSE(sd.contains("layers.1.sc.0.weight"));  // identity shortcut: no state
  EXPECT_FALSE(sd.contains("c.bias"));                // convolutions without bias
  EXPECT_EQ(sd.at("layers.2.sc.0.weight").shape(), Shape({128, 64, 1, 1}));
  EXPECT_EQ(sd.at("fc.weight").shape(), Shape({10, 512}));
  EXPECT_EQ(net.num_parameters(), 11173962);  // sum(p.numel()) of the torch model
  nn::ResNet18 seven(7);
  seven.eval();
  EXPECT_EQ(seven(test::uniform({1, 3, 8, 8}, 1, -1, 1, kFloat32)).shape(), Shape({1, 7}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { net(test::uniform({2, 1, 32, 32}, 1, -1, 1, kFloat32)); }, {"ResNet18", "[2, 1, 32, 32]"}));
  EXPECT_THROW(nn::ResNet18(0), ValueError);
}

TEST(ResNet18, TorchWeightsLoadIntoAnvilWithTheSameOutputsAndRunningStats) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  const std::string before = temp_path("torch.safetensors");
  const std::string after = temp_path("torch_after_train.safetensors");
  Tensor x = test::uniform(kInput, 3, -1, 1, kFloat32);
  auto theirs = oracle.run_code(
      std::string(kTorchResNet) +
          "torch.manual_seed(0)\n"
          "m = ResNet18()\n"
          "with torch.no_grad():\n"
          "    for bn in [k for k in m.modules() if isinstance(k, nn.BatchNorm2d)]:\n"
          "        bn.running_mean.uniform_(-0.5, 0.5); bn.running_var.uniform_(0.5, 2.0)\n"
          "        bn.weight.uniform_(0.5, 1.5); bn.bias.uniform_(-0.5, 0.5)\n"
          "        bn.num_batches_tracked.fill_(3)\n"
          "save_file(m.state_dict(), '" + before + "')\n"
          "m.eval()\n"
          "with torch.no_grad():\n"
          "    eval32 = m(a)\n"
          "    eval64 = copy.deepcopy(m).double()(a.double())\n"
          "    m.train(); train32 = m(a)\n"
          "save_file(m.state_dict(), '" + after + "')\n"
          "out = [eval32, eval64, train32, sum(p.numel() for p in m.parameters())]\n",
      {x});
  ASSERT_EQ(theirs.size(), 4u);

  auto net = std::make_shared<nn::ResNet18>();
  net->load_state_dict(io::load_safetensors(before), /*strict=*/true);
  EXPECT_EQ(theirs[3].item<int64_t>(), net->num_parameters());
  net->eval();
  // float32 through 18 layers: agreement within 1e-5 (rel + abs), and tighter in float64.
  EXPECT_TRUE(test::all_close((*net)(x), theirs[0], 1e-5, 1e-5));
  net->to(kFloat64);
  EXPECT_TRUE(test::all_close((*net)(x.to(kFloat64)), theirs[1], 1e-10, 1e-10));
  net->to(kFloat32);

  // One train-mode forward: normalised by the batch's statistics, which move the running ones.
  net->train();
  {
    NoGradGuard g;
    EXPECT_TRUE(test::all_close((*net)(x), theirs[2], 1e-5, 1e-5));
  }
  StateDict want = io::load_safetensors(after);
  StateDict got = net->state_dict();
  int64_t compared = 0;
  for (const auto& [name, t] : got) {
    if (name.find("running_") == std::string::npos && name.find("num_batches") == std::string::npos)
      continue;
    ASSERT_TRUE(want.contains(name)) << name;
    if (t.is_floating_point())
      EXPECT_TRUE(test::all_close(t, want.at(name), 1e-5, 1e-6)) << name;
    else
      EXPECT_EQ(t.item<int64_t>(), 4) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 20 * 3);
  unlink(before.c_str());
  unlink(after.c_str());
}

TEST(ResNet18, AnvilWeightsLoadIntoTorchWithTheSameOutputs) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  manual_seed(1);
  auto net = std::make_shared<nn::ResNet18>();
  randomize_batch_norms(*net);
  net->eval();
  const std::string path = temp_path("anvil.safetensors");
  io::save_safetensors(net->state_dict(), path);
  Tensor x = test::uniform(kInput, 4, -1, 1, kFloat32);
  Tensor mine = (*net)(x);
  auto theirs = oracle.run_code(std::string(kTorchResNet) +
                                    "m = ResNet18()\n"
                                    "m.load_state_dict(load_file('" + path + "'), strict=True)\n"
                                    "m.eval()\n"
                                    "with torch.no_grad(): out = m(a)\n",
                                {x});
  EXPECT_EQ(mine.shape(), Shape({2, 10}));
  EXPECT_TRUE(test::all_close(mine, theirs[0], 1e-5, 1e-5));
  unlink(path.c_str());
}

TEST(ResNet18, ModelFileRebuildsTheRegisteredArchitecture) {
  manual_seed(2);
  auto net = nn::make_module("resnet18", {{"num_classes", 7}});
  ASSERT_NE(std::dynamic_pointer_cast<nn::ResNet18>(net), nullptr);
  randomize_batch_norms(*net);
  net->eval();
  const std::string path = temp_path("resnet.anvil");
  io::save_model("resnet18", {{"num_classes", 7}}, *net, path);
  Tensor x = test::uniform(kInput, 5, -1, 1, kFloat32);
  Tensor mine = (*net)(x);
  EXPECT_EQ(mine.shape(), Shape({2, 7}));

  std::shared_ptr<nn::Module> back = anvil::load_model(path);
  ASSERT_NE(std::dynamic_pointer_cast<nn::ResNet18>(back), nullptr);
  EXPECT_FALSE(back->is_training());
  EXPECT_TRUE(equal((*back)(x), mine));

  // Loaded as float64 where asked: every floating tensor converted, the same outputs.
  auto back64 = io::load_model(path, {.dtype = kFloat64});
  for (const auto& [name, t] : back64->state_dict())
    EXPECT_EQ(t.dtype(), t.is_floating_point() ? kFloat64 : kInt64) << name;
  Tensor out64 = (*back64)(x.to(kFloat64));
  EXPECT_EQ(out64.dtype(), kFloat64);
  net->to(kFloat64);
  EXPECT_TRUE(test::all_close(out64, (*net)(x.to(kFloat64)), 1e-12, 1e-12));
  EXPECT_TRUE(test::all_close(out64, mine, 1e-5, 1e-5));

  // The stored text is the Architecture form a checkpoint's "architecture" string takes.
  std::map<std::string, std::string> meta;
  io::load_safetensors(path, &meta);
  auto arch = io::Architecture::parse(meta.at("architecture"));
  EXPECT_TRUE(arch.is_registered());
  EXPECT_EQ(arch.json()["module"], "resnet18");
  EXPECT_EQ(arch.json()["args"]["num_classes"], 7);

  // A model that is not the named architecture (10 classes, not 7) is refused.
  manual_seed(3);
  nn::ResNet18 ten;
  EXPECT_THROW(io::save_model("resnet18", {{"num_classes", 7}}, ten, path), ShapeError);
  unlink(path.c_str());
}

namespace {
// A user architecture, registered at static initialisation as users would.
nn::ModuleRegistrar user_linear("test_user_linear", [](const nlohmann::json& args) -> nn::ModulePtr {
  return std::make_shared<nn::Linear>(args.at("in").get<int64_t>(), args.at("out").get<int64_t>());
});
}  // namespace

TEST(ModuleRegistry, MakesRegisteredModulesAndNamesTheKnownOnesOnAMiss) {
  auto names = nn::registered_modules();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* n : {"resnet18", "test_user_linear"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;

  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::make_module("resnet19"); },
                                            {"\"resnet19\"", "resnet18", "test_user_linear"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::make_module("resnet18", {{"num_clases", 10}}); }, {"num_clases", "num_classes"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::make_module("resnet18", {{"num_classes", "ten"}}); }, {"num_classes", "integer"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::make_module("resnet18", nlohmann::json::array({10})); }, {"JSON object", "[10]"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::register_module("resnet18", [](const nlohmann::json&) { return nn::ModulePtr(); }); },
      {"\"resnet18\"", "already registered"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::register_module("test_null", nullptr); }, {"test_null", "null"}));

  // A user's registered module goes through a model file like anvil's own.
  manual_seed(4);
  auto lin = nn::make_module("test_user_linear", {{"in", 6}, {"out", 3}});
  const std::string path = temp_path("user.anvil");
  io::save_model("test_user_linear", {{"in", 6}, {"out", 3}}, *lin, path);
  auto back = io::load_model(path);
  ASSERT_NE(std::dynamic_pointer_cast<nn::Linear>(back), nullptr);
  Tensor x = test::uniform({4, 6}, 6, -1, 1, kFloat32);
  EXPECT_TRUE(equal((*back)(x), (*lin)(x)));

  // A file naming a module this program has not registered, or a damaged architecture.
  StateDict weights = lin->state_dict();
  io::save_safetensors(weights, path,
                       {{"format", "anvil-model"}, {"version", "1"},
                        {"architecture", R"({"module": "not_here", "args": {}})"}});
  EXPECT_TRUE(test::throws_with<ValueError>([&] { io::load_model(path); },
                                            {"\"not_here\"", "resnet18"}));
  io::save_safetensors(weights, path,
                       {{"format", "anvil-model"}, {"version", "1"},
                        {"architecture", R"({"module": 3})"}});
  EXPECT_TRUE(test::throws_with<IOError>([&] { io::load_model(path); },
                                         {path, "damaged architecture", "\"module\""}));
  unlink(path.c_str());
}
