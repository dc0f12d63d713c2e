#include "tools/train_parts.h"

namespace anvil::tools {
using json = nlohmann::json;

std::shared_ptr<optim::LRScheduler> make_scheduler(const TrainArgs& a, optim::Optimizer& opt,
                                                   int64_t steps_per_epoch) {
  if (a.scheduler == "none") return nullptr;
  if (a.scheduler == "step")
    return std::make_shared<optim::StepLR>(opt, std::max<int64_t>(1, a.epochs / 3), 0.1);
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

TrainArgs args_of_run(const std::string& dir, const TrainArgs& cmdline, bool epochs_given) {
  json r = read_run_json(dir);
  TrainArgs a = cmdline;
  try {
    a.data = data_spec_from_json(r.at("data"));
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
    a.checkpoint_every_steps = r.value("checkpoint_every_steps", int64_t(0));
    a.precision = r.value("precision", std::string("fp32"));
    a.metrics = r.value("metrics", std::vector<std::string>{});
    a.schedule_epochs = r.value("schedule_epochs", r.at("epochs").get<int64_t>());
    if (r.contains("language_model")) {
      const json& lm = r.at("language_model");
      a.lm.context = lm.at("context").get<int64_t>();
      a.lm.gpt = lm.at("gpt").dump();
      a.lm.tokenizer = dir + "/tokenizer.json";
      a.lm.sample_tokens = lm.value("sample_tokens", a.lm.sample_tokens);
    }
    if (!epochs_given) a.epochs = r.at("epochs").get<int64_t>();
  } catch (const json::exception& e) {
    throw ValueError("anvil: '" + dir + "/run.json' cannot be resumed: " + e.what());
  }
  a.output = dir;
  return a;
}

}  // namespace anvil::tools
