// Trainer: fit/evaluate/predict, gradient accumulation, callbacks, history, progress output.
#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "anvil/core/file.h"
#include "anvil/data/dataloader.h"
#include "anvil/data/tensor_dataset.h"
#include "anvil/io/checkpoint.h"
#include "anvil/nn/model_builder.h"
#include "anvil/nn/models/gpt.h"
#include "anvil/optim/optim.h"
#include "anvil/train/trainer.h"
#include "support/check.h"

using namespace anvil;

namespace {
// Two Gaussian blobs per class in 2-D, 3 classes: learnable to > 95% by a small MLP.
std::shared_ptr<data::TensorDataset> blobs(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor y = randint(0, 3, {n}, kInt64, &g);
  Tensor centers = tensor(std::vector<float>{-2, 0, 2, 0, 0, 2.5f}, {3, 2});
  Tensor x = add(index_select(centers, 0, y), mul(randn({n, 2}, {}, &g), 0.5));
  return std::make_shared<data::TensorDataset>(x, y);
}

std::shared_ptr<nn::Sequential> mlp() {
  manual_seed(3);
  return nn::ModelBuilder({1, 2}).dense(16).relu().dense(3).build();
}
}  // namespace

TEST(Trainer, FitLearnsAndEvaluateReportsMetrics) {
  auto model = mlp();
  train::Trainer t(model, optim::make_optimizer("adam", model->parameters(), 0.05),
                   nn::make_loss("cross_entropy"), {.metrics = {"accuracy", "f1"}});
  data::DataLoader train_loader(blobs(512, 1), {.batch_size = 32, .shuffle = true, .seed = 1});
  data::DataLoader test_loader(blobs(256, 2), {.batch_size = 64});
  const auto& h = t.fit(train_loader, 5, &test_loader);
  ASSERT_EQ(h.epochs().size(), 5u);
  auto loss = h.series("loss");
  EXPECT_LT(loss.back(), loss.front());
  EXPECT_GT(*h.last("val_accuracy"), 0.95);
  EXPECT_GT(*h.last("val_f1"), 0.95);
  EXPECT_GT(*h.last("accuracy"), 0.9);
  EXPECT_DOUBLE_EQ(*h.last("lr"), 0.05);
  auto logs = t.evaluate(test_loader);
  EXPECT_NEAR(logs.at("accuracy"), *h.last("val_accuracy"), 1e-12);
  Tensor p = t.predict(test_loader);
  EXPECT_EQ(p.shape(), (Shape{256, 3}));
  EXPECT_EQ(t.global_step(), 5 * 16);
}

TEST(Trainer, GradientAccumulationEqualsOneLargeBatch) {
  // SGD on the mean loss: 4 batches of 8 accumulated == 1 batch of 32.
  auto ds = blobs(32, 5);
  std::vector<Tensor> initial;
  auto run = [&](int64_t batch, int64_t accum) {
    auto model = mlp();
    initial.clear();
    for (const Tensor& p : model->parameters()) initial.push_back(p.detach().clone());
    train::Trainer t(model, optim::make_optimizer("sgd", model->parameters(), 0.1),
                     nn::make_loss("cross_entropy"), {.grad_accumulation = accum});
    data::DataLoader loader(ds, {.batch_size = batch});
    t.fit(loader, 1);
    return model->parameters();
  };
  auto a = run(32, 1), b = run(8, 4);
  ASSERT_EQ(a.size(), initial.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(test::all_close(a[i], b[i], 1e-5, 1e-6)) << i;
    // Equal because both stepped, not because neither did (an accumulation that never reaches
    // the optimizer would leave both at their common initial values).
    EXPECT_GT(max(abs(sub(b[i], initial[i]))).item<double>(), 1e-4) << "parameter " << i << " did not move";
  }
}

TEST(Trainer, EarlyStoppingAndHistoryFiles) {
  auto model = mlp();
  train::Trainer t(model, optim::make_optimizer("sgd", model->parameters(), 0.0),  // never improves
                   nn::make_loss("cross_entropy"));
  auto stop = std::make_shared<train::EarlyStopping>("val_loss", 2);
  std::string csv = "/tmp/anvil_test_hist_" + std::to_string(getpid()) + ".csv";
  t.add_callback(stop);
  t.add_callback(std::make_shared<train::HistoryWriter>(csv, ""));
  data::DataLoader loader(blobs(64, 1), {.batch_size = 32});
  t.fit(loader, 20, &loader);
  EXPECT_EQ(t.history().epochs().size(), 4u);  // best at 1, then 3 epochs without improvement
  EXPECT_EQ(stop->stopped_epoch(), 4);
  std::string text = read_file(csv);
  EXPECT_EQ(text.rfind("epoch,", 0), 0u);
  EXPECT_NE(text.find("val_loss"), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);  // header + 4 epochs
  unlink(csv.c_str());
}

TEST(Trainer, ProgressWithoutATerminalIsOneLinePerEpoch) {
  auto model = mlp();
  train::Trainer t(model, optim::make_optimizer("adam", model->parameters(), 0.01),
                   nn::make_loss("cross_entropy"));
  std::ostringstream out;
  t.add_callback(std::make_shared<train::ProgressBar>(out, 0));
  data::DataLoader loader(blobs(64, 1), {.batch_size = 16});
  t.fit(loader, 3);
  std::string s = out.str();
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 3);
  EXPECT_NE(s.find("epoch 3/3  loss "), std::string::npos) << s;
  EXPECT_NE(s.find("samples/s"), std::string::npos);
  EXPECT_EQ(s.find('\r'), std::string::npos);
  // On a terminal the bar is redrawn in place and shows the ETA.
  std::ostringstream tty;
  t.add_callback(std::make_shared<train::ProgressBar>(tty, 1));
  t.fit(loader, 1);
  EXPECT_NE(tty.str().find('\r'), std::string::npos);
  EXPECT_NE(tty.str().find("ETA"), std::string::npos);
}

TEST(Trainer, SchedulerCallbackStepsTheLearningRate) {
  auto model = mlp();
  auto opt = std::shared_ptr<optim::Optimizer>(optim::make_optimizer("sgd", model->parameters(), 1.0));
  train::Trainer t(model, opt, nn::make_loss("cross_entropy"));
  t.add_callback(std::make_shared<train::LRSchedulerCallback>(std::make_shared<optim::StepLR>(*opt, 1, 0.5)));
  data::DataLoader loader(blobs(32, 1), {.batch_size = 32});
  t.fit(loader, 3);
  EXPECT_EQ(t.history().series("lr"), (std::vector<double>{1.0, 0.5, 0.25}));
}

TEST(Trainer, BadDataAndMismatchedModelsGiveClearErrors) {
  auto model = mlp();
  train::Trainer t(model, optim::make_optimizer("sgd", model->parameters(), 0.1),
                   nn::make_loss("cross_entropy"));
  Tensor x = zeros({8, 2});
  {
    NoGradGuard g;
    x.select(0, 3).select(0, 1).fill_(NAN);
  }
  data::DataLoader nan_loader(std::make_shared<data::TensorDataset>(x, zeros({8}, kInt64)), {.batch_size = 8});
  EXPECT_TRUE(test::throws_with<ValueError>([&] { t.fit(nan_loader, 1); }, {"loss became", "NaN"}));
  data::DataLoader wide(std::make_shared<data::TensorDataset>(zeros({8, 5}), zeros({8}, kInt64)), {.batch_size = 4});
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { t.fit(wide, 1); }, {"fit", "[4, 5]"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { train::Trainer(model, optim::make_optimizer("sgd", model->parameters(), 0.1),
                           nn::make_loss("mse"), {.metrics = {"acuracy"}}); },
      {"unknown metric", "acuracy", "accuracy"}));
}

// bfloat16 autocast on the CPU (as torch.autocast("cpu")): the model trains about as well as
// in float32 while its master weights stay float32.
TEST(Trainer, MixedPrecisionBfloat16TrainsLikeFloat32) {
  auto fit = [](std::optional<DType> precision) {
    auto model = mlp();
    train::Trainer t(model, optim::make_optimizer("adam", model->parameters(), 0.05),
                     nn::make_loss("cross_entropy"), {.mixed_precision = precision});
    data::DataLoader train_loader(blobs(512, 1), {.batch_size = 32, .shuffle = true, .seed = 1});
    data::DataLoader test_loader(blobs(256, 2), {.batch_size = 64});
    t.fit(train_loader, 5, &test_loader);
    for (const Tensor& p : model->parameters()) EXPECT_EQ(p.dtype(), kFloat32);
    EXPECT_EQ(t.grad_scaler(), nullptr);  // bfloat16 needs no loss scaling
    return *t.history().last("val_accuracy");
  };
  const double f32 = fit(std::nullopt), bf16 = fit(kBFloat16);
  EXPECT_GT(bf16, 0.95);
  EXPECT_NEAR(bf16, f32, 0.02);
}

// float16 brings a loss scaler, whose state goes into the checkpoint and comes back.
TEST(Trainer, Float16MixedPrecisionCheckpointsTheLossScaler) {
  auto model = mlp();
  train::Trainer t(model, optim::make_optimizer("sgd", model->parameters(), 0.05),
                   nn::make_loss("cross_entropy"), {.mixed_precision = kFloat16});
  ASSERT_NE(t.grad_scaler(), nullptr);
  data::DataLoader loader(blobs(128, 1), {.batch_size = 32});
  t.fit(loader, 1);
  t.grad_scaler()->update(1024.0);  // a scale no fresh scaler has
  const std::string path = "/tmp/anvil_test_trainer_amp_" + std::to_string(getpid());
  t.save_checkpoint(path);
  EXPECT_EQ(io::load_checkpoint(path).scaler.at("scale").item<double>(), 1024.0);
  auto other = mlp();
  train::Trainer u(other, optim::make_optimizer("sgd", other->parameters(), 0.05),
                   nn::make_loss("cross_entropy"), {.mixed_precision = kFloat16});
  u.load_checkpoint(path);
  EXPECT_EQ(u.grad_scaler()->get_scale(), 1024.0);
  std::remove(path.c_str());
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        train::Trainer bad(other, optim::make_optimizer("sgd", other->parameters(), 0.05),
                           nn::make_loss("cross_entropy"), {.mixed_precision = kFloat64});
      },
      {"mixed_precision", "float64"}));
}

TEST(Trainer, SequenceOutputsAreScoredPerTokenWithPerplexity) {
  // A language model's logits [B, T, V] against next tokens [B, T]: the next token is the
  // current one plus one (mod V), which a one-layer GPT learns in a few epochs.
  const int64_t V = 11, T = 8, N = 64;
  std::vector<int64_t> xs, ys;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < T; ++t) xs.push_back((n * 7 + t) % V), ys.push_back((n * 7 + t + 1) % V);
  Tensor x = tensor(xs, {N, T}), y = tensor(ys, {N, T});
  auto ds = std::make_shared<data::TensorDataset>(x, y);
  manual_seed(4);
  auto model = std::make_shared<nn::GPT>(nn::GPTConfig{
      .vocab_size = V, .n_positions = T, .n_embd = 16, .n_layer = 1, .n_head = 2, .dropout = 0});
  train::Trainer t(model, optim::make_optimizer("adam", model->parameters(), 0.01),
                   nn::make_loss("cross_entropy"), {.metrics = {}});
  data::DataLoader loader(ds, {.batch_size = 16});
  const auto& h = t.fit(loader, 6, &loader);
  auto loss = h.series("loss");
  EXPECT_LT(loss.back(), 0.5 * loss.front());
  EXPECT_NEAR(*h.last("perplexity"), std::exp(loss.back()), 1e-9);
  EXPECT_NEAR(*h.last("val_perplexity"), std::exp(*h.last("val_loss")), 1e-9);
  // The loss is the mean over every token, as cross_entropy on the flattened batch.
  train::Logs logs = t.evaluate(loader);
  EXPECT_EQ(logs.size(), 2u);  // loss and perplexity: no metrics named, no outputs kept
  Tensor want;
  {
    NoGradGuard no_grad;
    model->eval();
    want = cross_entropy(model->forward(x).reshape({-1, V}), y.reshape({-1}));
  }
  EXPECT_NEAR(logs.at("loss"), want.item<double>(), 1e-5);
  // Named metrics see one row per token.
  train::Trainer scored(model, optim::make_optimizer("adam", model->parameters(), 0.01),
                        nn::make_loss("cross_entropy"), {.metrics = {"accuracy"}});
  train::Logs acc = scored.evaluate(loader);
  Tensor hits = eq(argmax(model->forward(x), -1), y).to(kFloat64);
  EXPECT_NEAR(acc.at("accuracy"), mean(hits).item<double>(), 1e-12);
}
