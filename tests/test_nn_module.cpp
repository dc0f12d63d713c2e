// nn::Module and Sequential: registration, names, traversal, modes, state dicts, placement,
// printing, and a user module with a skip connection against torch.
#include <sstream>

#include "anvil/nn/nn.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

namespace {

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& v) {
  std::vector<std::string> out;
  for (const auto& [n, t] : v) out.push_back(n);
  return out;
}

std::vector<std::string> keys_of(const StateDict& d) {
  std::vector<std::string> out;
  for (const auto& [k, v] : d) out.push_back(k);
  return out;
}

// Sequential(Conv2d, BatchNorm2d, ReLU, Flatten, Linear) on [N, 2, 4, 4] input.
std::shared_ptr<nn::Sequential> small_cnn() {
  return std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(2, 3, 3, 1, 1), std::make_shared<nn::BatchNorm2d>(3),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(48, 5)});
}

// A user module: two linear children and a skip connection, x + fc2(tanh(fc1(x))) * scale.
struct Residual : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  Tensor scale;
  explicit Residual(int64_t d) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(d, 2 * d));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(2 * d, d));
    scale = register_parameter("scale", full({d}, 0.5));
  }
  Tensor forward(const Tensor& x) override { return x + (*fc2)(tanh((*fc1)(x))) * scale; }
};

}  // namespace

TEST(NnModule, NamedParametersAreDotted) {
  auto net = small_cnn();
  EXPECT_EQ(
      names_of(net->named_parameters()),
      (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"}));
  EXPECT_EQ(names_of(net->named_buffers()),
            (std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked"}));
  EXPECT_EQ(net->parameters().size(), 6u);
  EXPECT_TRUE(net->parameters()[0].is_same(net->at<nn::Conv2d>(0)->weight));
  EXPECT_EQ(net->num_parameters(), 3 * 2 * 9 + 3 + 3 + 3 + 48 * 5 + 5);
  EXPECT_EQ(net->parameters(false).size(), 0u);
  EXPECT_EQ(net->children().size(), 5u);
  EXPECT_EQ(net->named_children()[4].first, "4");
  std::vector<std::string> mods;
  for (auto& [n, m] : net->named_modules()) mods.push_back(n + ":" + m->name());
  EXPECT_EQ(mods, (std::vector<std::string>{":Sequential", "0:Conv2d", "1:BatchNorm2d", "2:ReLU",
                                            "3:Flatten", "4:Linear"}));
  EXPECT_EQ(net->modules().size(), 6u);
  EXPECT_EQ(net->modules()[0].get(), net.get());
}

TEST(NnModule, StateDictKeysMatchTorch) {
  auto net = small_cnn();
  const StateDict sd = net->state_dict();
  EXPECT_EQ(keys_of(sd), (std::vector<std::string>{
                             "0.bias", "0.weight", "1.bias", "1.num_batches_tracked",
                             "1.running_mean", "1.running_var", "1.weight", "4.bias", "4.weight"}));
  EXPECT_EQ(sd.at("1.num_batches_tracked").dtype(), kInt64);
  // torch's own key list for the same architecture, sorted, sent back as character codes.
  auto want = test::TorchOracle::get().run_code(
      "m = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.BatchNorm2d(3),\n"
      "    torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(48, 5))\n"
      "out = [torch.tensor([ord(ch) for ch in k]) for k in sorted(m.state_dict())]\n");
  ASSERT_EQ(want.size(), sd.size());
  size_t i = 0;
  for (const auto& [k, v] : sd) {
    std::string tk;
    for (int64_t c : want[i++].to_vector<int64_t>()) tk += char(c);
    EXPECT_EQ(k, tk);
  }
  // Values are detached handles on the module's data.
  EXPECT_FALSE(sd.at("0.weight").requires_grad());
  EXPECT_EQ(sd.at("0.weight").data_ptr(), net->at<nn::Conv2d>(0)->weight.data_ptr());
}

TEST(NnModule, UserModuleWithSkipConnectionMatchesTorch) {
  manual_seed(5);
  auto block = std::make_shared<Residual>(3);
  EXPECT_EQ(block->name(), "Residual");
  EXPECT_EQ(
      names_of(block->named_parameters()),
      (std::vector<std::string>{"scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  nn::Sequential net{block, std::make_shared<nn::Linear>(3, 2)};
  EXPECT_EQ(names_of(net.named_parameters())[3], "0.fc2.weight");

  Tensor x = test::uniform({4, 3}, 1, -1, 1, kFloat32).requires_grad_();
  Tensor y = net(x);
  sum(y * y).backward();
  std::vector<Tensor> inputs{x.detach()};
  for (auto& [n, p] : net.named_parameters()) inputs.push_back(p.detach());
  auto want = test::TorchOracle::get().run_code(
      "class Residual(torch.nn.Module):\n"
      "    def __init__(self, d):\n"
      "        super().__init__()\n"
      "        self.scale = torch.nn.Parameter(torch.empty(d))\n"
      "        self.fc1 = torch.nn.Linear(d, 2 * d)\n"
      "        self.fc2 = torch.nn.Linear(2 * d, d)\n"
      "    def forward(self, x):\n"
      "        return x + self.fc2(torch.tanh(self.fc1(x))) * self.scale\n"
      "m = torch.nn.Sequential(Residual(3), torch.nn.Linear(3, 2))\n"
      "names = [n for n, _ in m.named_parameters()]\n"
      "m.load_state_dict(dict(zip(names, [b, c, d, e, f, g, h])))\n"
      "x = a.clone().requires_grad_()\n"
      "y = m(x)\n"
      "(y * y).sum().backward()\n"
      "out = [y, x.grad] + [p.grad for p in m.parameters()]\n",
      inputs);
  ASSERT_EQ(want.size(), 2 + net.parameters().size());
  EXPECT_TRUE(test::all_close(y, want[0]));
  EXPECT_TRUE(test::all_close(x.grad(), want[1]));
  size_t i = 2;
  for (auto& [n, p] : net.named_parameters())
    EXPECT_TRUE(test::all_close(p.grad(), want[i++])) << n;
}

TEST(NnModule, RegistrationErrors) {
  nn::Module m;
  m.register_parameter("w", zeros({2}));
  EXPECT_TRUE(m.parameters()[0].requires_grad());
  EXPECT_FALSE(m.register_parameter("frozen", zeros({2}), false).requires_grad());
  EXPECT_EQ(m.num_parameters(), 4);
  EXPECT_EQ(m.num_parameters(true), 2);
  EXPECT_TRUE(test::throws_with<ValueError>([&] { m.register_buffer("w", zeros({2})); },
                                            {"register_buffer", "\"w\"", "already registered"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { m.register_parameter("a.b", zeros({2})); },
                                            {"register_parameter", "without '.'", "\"a.b\""}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { m.register_parameter("i", zeros({2}, kInt64)); },
                                            {"register_parameter", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { m.register_module("child", std::shared_ptr<nn::Linear>()); },
      {"register_module", "\"child\"", "null"}));
  EXPECT_TRUE(test::throws_with<Error>([&] { m(zeros({2})); }, {"Module::forward", "override"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { m.modules(); }, {"std::shared_ptr"}));
}

TEST(NnModule, SharedParametersAreListedOnce) {
  auto fc = std::make_shared<nn::Linear>(3, 3);
  nn::Sequential tied{fc, std::make_shared<nn::ReLU>(), fc};
  EXPECT_EQ(names_of(tied.named_parameters()), (std::vector<std::string>{"0.weight", "0.bias"}));
  // The state dict lists every name, as PyTorch's does.
  EXPECT_EQ(keys_of(tied.state_dict()),
            (std::vector<std::string>{"0.bias", "0.weight", "2.bias", "2.weight"}));
}

TEST(NnModule, TrainEvalIsRecursive) {
  auto net = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(4, 4), std::make_shared<nn::Dropout>(0.5),
      std::make_shared<nn::BatchNorm1d>(4)});
  EXPECT_TRUE(net->is_training());
  Tensor x = test::uniform({8, 4}, 3, -1, 1, kFloat32);
  net->eval();
  for (auto& m : net->modules()) EXPECT_FALSE(m->is_training()) << m->name();
  Tensor y1 = net->forward(x), y2 = net->forward(x);
  EXPECT_TRUE(equal(y1, y2));  // no dropout, running statistics
  EXPECT_EQ(net->at<nn::BatchNorm1d>(2)->num_batches_tracked.item<int64_t>(), 0);
  net->train();
  for (auto& m : net->modules()) EXPECT_TRUE(m->is_training()) << m->name();
  Tensor y3 = net->forward(x), y4 = net->forward(x);
  EXPECT_FALSE(equal(y3, y4));  // fresh dropout masks
  EXPECT_EQ(net->at<nn::BatchNorm1d>(2)->num_batches_tracked.item<int64_t>(), 2);
}

TEST(NnModule, ZeroGradDropsGradients) {
  nn::Linear fc(3, 2);
  sum(fc(ones({4, 3}))).backward();
  EXPECT_TRUE(fc.weight.grad().defined());
  EXPECT_TRUE(fc.bias.grad().defined());
  fc.zero_grad();
  EXPECT_FALSE(fc.weight.grad().defined());
  EXPECT_FALSE(fc.bias.grad().defined());
}

TEST(NnModule, LoadStateDictRoundTrip) {
  manual_seed(10);
  auto a = small_cnn(), b = small_cnn();
  Tensor x = test::uniform({2, 2, 4, 4}, 4, -1, 1, kFloat32);
  a->forward(x);  // moves a's running statistics and counter
  a->eval();
  b->eval();
  EXPECT_FALSE(allclose(a->forward(x), b->forward(x)));
  b->load_state_dict(a->state_dict());
  EXPECT_TRUE(equal(a->forward(x), b->forward(x)));
  EXPECT_EQ(b->at<nn::BatchNorm2d>(1)->num_batches_tracked.item<int64_t>(), 1);
  // Values are copied, not shared, and b's handles are kept.
  Tensor bw = b->at<nn::Linear>(4)->weight;
  EXPECT_NE(bw.data_ptr(), a->at<nn::Linear>(4)->weight.data_ptr());
  EXPECT_TRUE(bw.is_same(b->parameters()[4]));
  EXPECT_TRUE(bw.requires_grad());
  // float64 values convert to the module's float32.
  StateDict d64;
  for (auto& [k, v] : a->state_dict()) d64[k] = v.is_floating_point() ? v.to(kFloat64) : v;
  auto c = small_cnn();
  c->load_state_dict(d64);
  c->eval();
  EXPECT_EQ(c->parameters()[0].dtype(), kFloat32);
  EXPECT_TRUE(equal(c->forward(x), a->forward(x)));
}

TEST(NnModule, LoadStateDictErrors) {
  auto net = small_cnn();
  const Tensor before = net->at<nn::Linear>(4)->bias.clone();
  StateDict sd = net->state_dict();
  for (auto& [k, v] : sd) sd[k] = v.clone();
  sd["4.bias"] = full({5}, 3.0);

  StateDict missing = sd;
  missing.erase("1.running_var");
  missing["extra.weight"] = zeros({1});
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { net->load_state_dict(missing); },
      {"Sequential::load_state_dict", "Missing key(s): \"1.running_var\"",
       "Unexpected key(s): \"extra.weight\""}));
  EXPECT_TRUE(equal(net->at<nn::Linear>(4)->bias, before));  // nothing copied

  StateDict wrong = sd;
  wrong["0.weight"] = zeros({3, 2, 5, 5});
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { net->load_state_dict(wrong, false); },
      {"size mismatch", "\"0.weight\": expected shape [3, 2, 3, 3], got [3, 2, 5, 5]"}));
  EXPECT_TRUE(equal(net->at<nn::Linear>(4)->bias, before));

  // Non-strict loading skips missing and unexpected keys and copies the rest.
  net->load_state_dict(missing, false);
  EXPECT_TRUE(equal(net->at<nn::Linear>(4)->bias, full({5}, 3.0)));
}

TEST(NnModule, ToDTypeKeepsHandles) {
  auto net = small_cnn();
  Tensor w = net->at<nn::Conv2d>(0)->weight;  // as an optimizer would hold it
  std::vector<Tensor> held = net->parameters();
  Tensor x = test::uniform({2, 2, 4, 4}, 6, -1, 1, kFloat32);
  sum(net->forward(x)).backward();
  const Tensor g32 = w.grad().clone();
  TensorImpl* impl = w.impl();

  net->to(kFloat64);
  EXPECT_EQ(w.impl(), impl);
  EXPECT_EQ(w.dtype(), kFloat64);
  EXPECT_TRUE(w.requires_grad());
  EXPECT_TRUE(w.is_same(net->parameters()[0]));
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_TRUE(held[i].is_same(net->parameters()[i]));
    EXPECT_EQ(held[i].dtype(), kFloat64);
  }
  EXPECT_EQ(w.grad().dtype(), kFloat64);  // gradients follow, as in torch
  EXPECT_TRUE(test::all_close(w.grad(), g32.to(kFloat64)));
  auto bn = net->at<nn::BatchNorm2d>(1);
  EXPECT_EQ(bn->running_mean.dtype(), kFloat64);
  EXPECT_EQ(bn->num_batches_tracked.dtype(), kInt64);  // integer buffers stay
  EXPECT_EQ(net->state_dict().at("1.running_var").dtype(), kFloat64);

  net->zero_grad();
  Tensor y = net->forward(x.to(kFloat64));
  EXPECT_EQ(y.dtype(), kFloat64);
  sum(y).backward();
  EXPECT_EQ(held[0].grad().dtype(), kFloat64);  // the held handle receives the gradient
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { net->to(kInt32); },
                                            {"Sequential::to", "floating-point dtype", "int32"}));
  net->to(kCPU);  // already there: a no-op that keeps everything
  EXPECT_TRUE(w.is_same(net->parameters()[0]));
}

// The tree in torch's layout (indentation, "(name): " before each child, extra_repr in the
// parentheses); values keep C++'s spellings (bias=true where torch prints bias=True, and no
// inplace=False for Dropout).
TEST(NnModule, PrintsTheTreeInTorchsLayout) {
  auto net = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<Residual>(2), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
          std::make_shared<nn::Dropout>(0.1), std::make_shared<nn::Linear>(2, 1, false)})});
  const std::string want =
      "Sequential(\n"
      "  (0): Residual(\n"
      "    (fc1): Linear(in_features=2, out_features=4, bias=true)\n"
      "    (fc2): Linear(in_features=4, out_features=2, bias=true)\n"
      "  )\n"
      "  (1): ReLU()\n"
      "  (2): Sequential(\n"
      "    (0): Dropout(p=0.1)\n"
      "    (1): Linear(in_features=2, out_features=1, bias=false)\n"
      "  )\n"
      ")";
  EXPECT_EQ(net->str(), want);
  std::ostringstream os;
  os << *net;
  EXPECT_EQ(os.str(), want);
  EXPECT_EQ(nn::ReLU().str(), "ReLU()");
}

TEST(NnModule, SequentialIndexing) {
  nn::Sequential s;
  EXPECT_TRUE(s.empty());
  Tensor x = ones({2, 3});
  EXPECT_TRUE(s(x).is_same(x));  // empty: identity
  s.push_back(std::make_shared<nn::Linear>(3, 4)).add(std::make_shared<nn::Tanh>());
  EXPECT_EQ(s.size(), 2);
  EXPECT_EQ(s[0]->name(), "Linear");
  EXPECT_EQ(s[-1]->name(), "Tanh");
  EXPECT_EQ(s.at<nn::Linear>(0)->out_features, 4);
  EXPECT_EQ(s(x).shape(), (Shape{2, 4}));
  EXPECT_TRUE(
      test::throws_with<IndexError>([&] { s[2]; }, {"Sequential::operator[]", "2", "2 modules"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { s.at<nn::Linear>(1); },
                                            {"Sequential::at", "module 1", "Tanh"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { s.push_back(nullptr); },
                                            {"Sequential::push_back", "null"}));
}

TEST(NnModule, ApplyVisitsEveryModule) {
  auto net = small_cnn();
  int linears = 0, total = 0;
  net->apply([&](nn::Module& m) {
    ++total;
    if (auto* fc = dynamic_cast<nn::Linear*>(&m)) {
      ++linears;
      nn::init::zeros_(fc->weight);
    }
  });
  EXPECT_EQ(total, 6);
  EXPECT_EQ(linears, 1);
  EXPECT_TRUE(equal(net->at<nn::Linear>(4)->weight, zeros({5, 48})));
}
