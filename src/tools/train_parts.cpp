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

std::shared_ptr<optim::Optimizer> make_run_optimizer(const TrainArgs& a,
                                                     const std::vector<Tensor>& params) {
  std::shared_ptr<optim::Optimizer> opt = optim::make_optimizer(a.optimizer, params, a.lr);
  if (a.weight_decay > 0)
    for (auto& g : opt->param_groups()) g.options["weight_decay"] = a.weight_decay;
  return opt;
}

train::TrainerOptions run_trainer_options(const TrainArgs& a) {
  train::TrainerOptions to;
  to.device = Device(a.device);
  to.grad_accumulation = a.grad_accum;
  to.clip_grad_norm = a.clip_grad_norm;
  ANVIL_CHECK(a.precision == "fp32" || a.precision == "bf16" || a.precision == "fp16", ValueError,
              "anvil train: --precision must be fp32, bf16 or fp16, got '", a.precision, "'");
  if (a.precision != "fp32") to.mixed_precision = a.precision == "bf16" ? kBFloat16 : kFloat16;
  return to;
}

void set_run_scheduler(train::Trainer& trainer, const TrainArgs& a, optim::Optimizer& opt,
                       int64_t batches_per_epoch) {
  TrainArgs sa = a;
  sa.epochs = a.schedule_epochs;  // the schedule keeps the length the run started with
  auto sched = make_scheduler(sa, opt, (batches_per_epoch + a.grad_accum - 1) / a.grad_accum);
  if (sched)
    trainer.set_scheduler(sched, a.scheduler == "onecycle"
                                     ? train::LRSchedulerCallback::Every::Step
                                     : train::LRSchedulerCallback::Every::Epoch);
}

json run_json(const TrainArgs& a, const std::string& loss, json data) {
  return {{"data", std::move(data)},
          {"model", a.model},
          {"optimizer", a.optimizer},
          {"lr", a.lr},
          {"epochs", a.epochs},
          {"batch_size", a.batch_size},
          {"seed", a.seed},
          {"loss", loss},
          {"scheduler", a.scheduler},
          {"schedule_epochs", a.schedule_epochs},
          {"weight_decay", a.weight_decay},
          {"grad_accum", a.grad_accum},
          {"clip_grad_norm", a.clip_grad_norm},
          {"warmup_epochs", a.warmup_epochs},
          {"checkpoint_every_steps", a.checkpoint_every_steps},
          {"precision", a.precision},
          {"metrics", a.metrics}};
}

void add_run_callbacks(train::Trainer& trainer, const TrainArgs& a, const std::string& ckpt) {
  if (!a.quiet) trainer.add_callback(std::make_shared<train::ProgressBar>());
  trainer.add_callback(std::make_shared<train::HistoryWriter>(a.output + "/history.csv",
                                                              a.output + "/history.json"));
  trainer.add_callback(std::make_shared<train::EpochHook>(
      [ckpt](train::Trainer& t, int64_t, const train::Logs&) { t.save_checkpoint(ckpt); }));
  if (a.checkpoint_every_steps > 0)
    trainer.add_callback(std::make_shared<StepCheckpoint>(ckpt, a.checkpoint_every_steps));
}

}  // namespace anvil::tools
