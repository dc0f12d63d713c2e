// The `anvil` program: train, evaluate and use models from the command line.
//
//   anvil train --model mlp --epochs 10 --output runs/mlp      (Fashion-MNIST by default)
//   anvil train --model cnn.json --data csv:table.csv --label-column price --task regression
//   anvil train --resume runs/mlp --epochs 20                 (continue from the last epoch)
//   anvil eval --run runs/mlp
//   anvil predict --run runs/mlp --output predictions.csv
//   anvil info
#include <omp.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "anvil/anvil.h"
#include "anvil/core/file.h"
#include "tools/run_spec.h"

using namespace anvil;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct TrainArgs {
  tools::DataSpec data;
  std::string model = "mlp", optimizer = "adam", scheduler = "none", loss, output = "runs/latest";
  std::string device = "cpu";
  int64_t epochs = 10, batch_size = 128, grad_accum = 1, warmup_epochs = 0;
  int64_t schedule_epochs = 0;  // the epochs the LR schedule spans (those of the first run)
  double lr = 1e-3, weight_decay = 0, clip_grad_norm = 0;
  uint64_t seed = 0;
  std::vector<std::string> metrics;
  bool quiet = false;
};

std::shared_ptr<optim::LRScheduler> make_scheduler(const TrainArgs& a, optim::Optimizer& opt,
                                                   int64_t steps_per_epoch) {
  if (a.scheduler == "none") return nullptr;
  if (a.scheduler == "step") return std::make_shared<optim::StepLR>(opt, std::max<int64_t>(1, a.epochs / 3), 0.1);
  if (a.scheduler == "cosine") return std::make_shared<optim::CosineAnnealingLR>(opt, a.epochs);
  if (a.scheduler == "exponential") return std::make_shared<optim::ExponentialLR>(opt, 0.9);
  if (a.scheduler == "plateau") {
    optim::ReduceLROnPlateauOptions o;
    o.patience = 2;
    return std::make_shared<optim::ReduceLROnPlateau>(opt, o);
  }
  if (a.scheduler == "onecycle")
    return std::make_shared<optim::OneCycleLR>(opt, a.lr, a.epochs * steps_per_epoch);
  if (a.scheduler == "warmup")
    return std::make_shared<optim::LinearLR>(opt, 0.1, 1.0, std::max<int64_t>(1, a.warmup_epochs));
  throw ValueError("anvil: unknown --scheduler '" + a.scheduler +
                   "' (expected none, step, cosine, exponential, plateau, onecycle, warmup)");
}

json read_run_json(const std::string& dir) {
  std::string text = read_file(dir + "/run.json");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw ValueError("anvil: '" + dir + "/run.json' is not valid JSON: " + e.what());
  }
}

// The arguments of the run in `dir` (its run.json), for --resume. The device, --quiet and,
// when given, --epochs come from the command line.
TrainArgs args_of_run(const std::string& dir, const TrainArgs& cmdline, bool epochs_given) {
  json r = read_run_json(dir);
  TrainArgs a = cmdline;
  try {
    a.data = tools::data_spec_from_json(r.at("data"));
    a.model = r.at("model").get<std::string>();
    a.optimizer = r.at("optimizer").get<std::string>();
    a.lr = r.at("lr").get<double>();
    a.batch_size = r.at("batch_size").get<int64_t>();
    a.seed = r.at("seed").get<uint64_t>();
    a.loss = r.at("loss").get<std::string>();
    a.scheduler = r.value("scheduler", std::string("none"));
    a.weight_decay = r.value("weight_decay", 0.0);
    a.grad_accum = r.value("grad_accum", int64_t(1));
    a.clip_grad_norm = r.value("clip_grad_norm", 0.0);
    a.warmup_epochs = r.value("warmup_epochs", int64_t(0));
    a.metrics = r.value("metrics", std::vector<std::string>{});
    a.schedule_epochs = r.value("schedule_epochs", r.at("epochs").get<int64_t>());
    if (!epochs_given) a.epochs = r.at("epochs").get<int64_t>();
  } catch (const json::exception& e) {
    throw ValueError("anvil: '" + dir + "/run.json' cannot be resumed: " + e.what());
  }
  a.output = dir;
  return a;
}

// Trains (or, with `resume`, continues the run in that directory from its checkpoint).
// DIR/checkpoint.safetensors is written at the end of every epoch.
int train_command(TrainArgs a, const std::string& resume, bool epochs_given) {
  json scaling;
  if (!resume.empty()) {
    a = args_of_run(resume, a, epochs_given);
    json r = read_run_json(resume);
    if (r["data"].contains("scaling")) scaling = r["data"]["scaling"];
  } else {
    a.schedule_epochs = a.epochs;
  }
  const std::string ckpt_path = a.output + "/checkpoint.safetensors";
  manual_seed(a.seed);
  Device device(a.device);
  tools::LoadedData d = tools::load_data(a.data, scaling.is_null() ? nullptr : &scaling);
  nn::ModelBuilder arch = !resume.empty() ? nn::ModelBuilder::load(resume + "/model.json")
                                          : tools::make_architecture(a.model, d);
  auto model = arch.build();
  if (!a.quiet) std::cout << arch.summary();
  std::shared_ptr<optim::Optimizer> opt = optim::make_optimizer(a.optimizer, model->parameters(), a.lr);
  if (a.weight_decay > 0)
    for (auto& g : opt->param_groups()) g.options["weight_decay"] = a.weight_decay;
  std::string loss_name = !a.loss.empty() ? a.loss : d.task == "classification" ? "cross_entropy" : "mse";
  std::shared_ptr<nn::Loss> loss = nn::make_loss(loss_name);
  train::TrainerOptions to;
  to.device = device;
  to.grad_accumulation = a.grad_accum;
  to.clip_grad_norm = a.clip_grad_norm;
  to.metrics = !a.metrics.empty() ? a.metrics
               : d.task == "classification" ? std::vector<std::string>{"accuracy"}
                                            : std::vector<std::string>{"rmse", "mae", "r2"};
  train::Trainer trainer(model, opt, loss, to);
  trainer.set_architecture(arch.to_json().dump());
  data::DataLoader train_loader(d.train, {.batch_size = a.batch_size, .shuffle = true, .seed = a.seed});
  data::DataLoader test_loader(d.test, {.batch_size = 512});
  TrainArgs sa = a;
  sa.epochs = a.schedule_epochs;  // the schedule keeps the length the run started with
  auto sched = make_scheduler(sa, *opt, (train_loader.size() + a.grad_accum - 1) / a.grad_accum);
  if (sched)
    trainer.set_scheduler(sched, a.scheduler == "onecycle" ? train::LRSchedulerCallback::Every::Step
                                                           : train::LRSchedulerCallback::Every::Epoch);
  fs::create_directories(a.output);
  if (!resume.empty()) {
    trainer.load_checkpoint(ckpt_path);
    if (!a.quiet)
      std::cout << "resuming " << resume << " after epoch " << trainer.epoch() << " of " << a.epochs
                << "\n";
  } else {
    arch.save(a.output + "/model.json");
  }
  // Written before training, so that an interrupted run can be resumed.
  json run = {{"data", tools::data_json(a.data, d)}, {"model", a.model}, {"optimizer", a.optimizer},
              {"lr", a.lr}, {"epochs", a.epochs}, {"batch_size", a.batch_size}, {"seed", a.seed},
              {"loss", loss_name}, {"scheduler", a.scheduler}, {"schedule_epochs", a.schedule_epochs},
              {"weight_decay", a.weight_decay}, {"grad_accum", a.grad_accum},
              {"clip_grad_norm", a.clip_grad_norm}, {"warmup_epochs", a.warmup_epochs},
              {"metrics", a.metrics}};
  write_file_atomic(a.output + "/run.json", run.dump(2) + "\n");
  if (!a.quiet) trainer.add_callback(std::make_shared<train::ProgressBar>());
  trainer.add_callback(std::make_shared<train::HistoryWriter>(a.output + "/history.csv",
                                                              a.output + "/history.json"));
  trainer.add_callback(std::make_shared<train::EpochHook>(
      [&](train::Trainer& t, int64_t, const train::Logs&) { t.save_checkpoint(ckpt_path); }));
  trainer.fit_to(train_loader, a.epochs, &test_loader);

  // The run directory: architecture, weights, and how the data was prepared.
  model->to(kCPU);
  io::save_safetensors(model->state_dict(), a.output + "/weights.safetensors", {{"format", "pt"}});
  const auto& h = trainer.history();
  std::cout << "test";
  if (!h.empty())
    for (const auto& [k, v] : h.epochs().back().values)
      if (k.rfind("val_", 0) == 0) std::cout << "  " << k.substr(4) << " " << v;
  std::cout << "\nsaved to " << a.output << "\n";
  return 0;
}

struct LoadedRun {
  json run;
  tools::LoadedData data;
  std::shared_ptr<nn::Sequential> model;
};

LoadedRun load_run(const std::string& dir, const std::string& data_override) {
  LoadedRun r;
  r.run = read_run_json(dir);
  tools::DataSpec spec = tools::data_spec_from_json(r.run.at("data"));
  if (!data_override.empty()) spec.source = data_override;
  const json* scaling = r.run["data"].contains("scaling") ? &r.run["data"]["scaling"] : nullptr;
  r.data = tools::load_data(spec, scaling);
  r.model = nn::ModelBuilder::load(dir + "/model.json").build();
  r.model->load_state_dict(io::load_safetensors(dir + "/weights.safetensors"));
  return r;
}

int eval_command(const std::string& dir, const std::string& data_override, const std::string& device) {
  LoadedRun r = load_run(dir, data_override);
  std::shared_ptr<nn::Loss> loss = nn::make_loss(r.run.value("loss", std::string("cross_entropy")));
  train::TrainerOptions to;
  to.device = Device(device);
  to.metrics = r.data.task == "classification"
                   ? std::vector<std::string>{"accuracy", "precision", "recall", "f1"}
                   : std::vector<std::string>{"mse", "rmse", "mae", "r2"};
  // The optimizer is unused by evaluate; SGD with lr 0 keeps the interface honest.
  train::Trainer t(r.model, optim::make_optimizer("sgd", r.model->parameters(), 0.0), loss, to);
  data::DataLoader loader(r.data.test, {.batch_size = 512});
  auto logs = t.evaluate(loader);
  std::cout << "samples " << r.data.test->size();
  for (const auto& [k, v] : logs) std::cout << "  " << k << " " << v;
  std::cout << "\n";
  return 0;
}

int predict_command(const std::string& dir, const std::string& data_override,
                    const std::string& output, const std::string& device) {
  LoadedRun r = load_run(dir, data_override);
  train::TrainerOptions to;
  to.device = Device(device);
  train::Trainer t(r.model, optim::make_optimizer("sgd", r.model->parameters(), 0.0),
                   nn::make_loss("mse"), to);
  data::DataLoader loader(r.data.test, {.batch_size = 512});
  Tensor out = t.predict(loader);
  std::ostringstream csv;
  if (r.data.task == "classification") {
    Tensor prob = softmax(out, 1), pred = argmax(out, 1);
    auto p = prob.contiguous().to_vector<float>();
    auto c = pred.to_vector<int64_t>();
    const int64_t k = out.size(1);
    csv << "index,prediction";
    for (int64_t j = 0; j < k; ++j) csv << ",p" << j;
    csv << "\n";
    for (size_t i = 0; i < c.size(); ++i) {
      csv << i << ',' << c[i];
      for (int64_t j = 0; j < k; ++j) csv << ',' << p[i * size_t(k) + size_t(j)];
      csv << "\n";
    }
  } else {
    auto v = out.reshape({-1}).to_vector<float>();
    csv << "index,prediction\n";
    for (size_t i = 0; i < v.size(); ++i) csv << i << ',' << v[i] << "\n";
  }
  if (output.empty() || output == "-") std::cout << csv.str();
  else write_file_atomic(output, csv.str());
  return 0;
}

int info_command() {
  std::cout << "anvil 0.1.0\n"
#ifdef ANVIL_WITH_CUDA
            << "cuda backend: built (sm_90)\n"
#else
            << "cuda backend: not built\n"
#endif
            << "cuda devices: " << cuda_device_count() << "\n"
            << "cpu threads (OpenMP): " << omp_get_max_threads() << "\n"
            << "blas: OpenBLAS\n"
            << "dtypes: bool uint8 int32 int64 float16 bfloat16 float32 float64\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"anvil: train, evaluate and use neural networks"};
  app.require_subcommand(1);

  TrainArgs ta;
  auto* train = app.add_subcommand("train", "train a model and save the run to --output");
  train->add_option("--model", ta.model, "preset (mlp, cnn, linear) or JSON architecture file")->capture_default_str();
  train->add_option("--data", ta.data.source, "fashion-mnist or csv:PATH")->capture_default_str();
  train->add_option("--label-column", ta.data.label_column, "CSV label column (name or index; default last)");
  train->add_option("--task", ta.data.task, "classification, regression or auto")->capture_default_str();
  train->add_option("--test-fraction", ta.data.test_fraction, "CSV: share held out for testing")->capture_default_str();
  train->add_option("--skip-rows", ta.data.skip_rows, "CSV: lines before the header to skip")->capture_default_str();
  train->add_option("--epochs", ta.epochs)->capture_default_str()->check(CLI::NonNegativeNumber);
  train->add_option("--batch-size", ta.batch_size)->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--optimizer", ta.optimizer, "sgd, adam, adamw, rmsprop, adagrad, adadelta, nadam")->capture_default_str();
  train->add_option("--lr", ta.lr)->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--weight-decay", ta.weight_decay)->capture_default_str();
  train->add_option("--scheduler", ta.scheduler, "none, step, cosine, exponential, plateau, onecycle, warmup")->capture_default_str();
  train->add_option("--warmup-epochs", ta.warmup_epochs);
  train->add_option("--loss", ta.loss, "loss name (default: cross_entropy or mse by task)");
  train->add_option("--metrics", ta.metrics, "metrics for the test set")->delimiter(',');
  train->add_option("--grad-accum", ta.grad_accum)->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--clip-grad-norm", ta.clip_grad_norm)->capture_default_str();
  train->add_option("--device", ta.device, "cpu or cuda[:N]")->capture_default_str();
  train->add_option("--seed", ta.seed)->capture_default_str();
  train->add_option("--output", ta.output, "run directory")->capture_default_str();
  train->add_flag("--quiet", ta.quiet, "no summary or progress");
  std::string resume_dir;
  train->add_option("--resume", resume_dir,
                    "continue the run in DIR from DIR/checkpoint.safetensors (its run.json gives "
                    "the settings; --epochs, --device and --quiet may be given)");

  std::string run_dir, data_override, out_path, device = "cpu";
  auto* eval = app.add_subcommand("eval", "evaluate a saved run on its test data");
  eval->add_option("--run", run_dir, "run directory written by `anvil train`")->required();
  eval->add_option("--data", data_override, "other data (same kind) to evaluate on");
  eval->add_option("--device", device)->capture_default_str();
  auto* predict = app.add_subcommand("predict", "write predictions of a saved run as CSV");
  predict->add_option("--run", run_dir, "run directory written by `anvil train`")->required();
  predict->add_option("--data", data_override, "data to predict (default: the run's test set)");
  predict->add_option("--output", out_path, "CSV file (default: standard output)");
  predict->add_option("--device", device)->capture_default_str();
  app.add_subcommand("info", "build options and devices");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*train) ta.data.seed = ta.seed;
    if (*train) return train_command(ta, resume_dir, train->get_option("--epochs")->count() > 0);
    if (*eval) return eval_command(run_dir, data_override, device);
    if (*predict) return predict_command(run_dir, data_override, out_path, device);
    return info_command();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
