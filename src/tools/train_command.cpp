// `anvil train`: a model trained on a data source, saved with everything needed to use it
// (see run_spec.h for the run directory), and `anvil train --resume DIR`.
#include <filesystem>
#include <iostream>

#include "anvil/anvil.h"
#include "anvil/core/file.h"
#include "tools/commands.h"
#include "tools/series_run.h"
#include "tools/train_parts.h"

namespace anvil::tools {
namespace fs = std::filesystem;
using json = nlohmann::json;

// Trains (or, with `resume`, continues the run in that directory from its checkpoint).
// DIR/checkpoint.safetensors is written at the end of every epoch.
int train_command(TrainArgs a, const std::string& resume, bool epochs_given) {
  if (is_language_model_run(a, resume)) return lm_train_command(a, resume, epochs_given);
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
  LoadedData d = load_data(a.data, scaling.is_null() ? nullptr : &scaling);
  nn::ModelBuilder arch = !resume.empty() ? nn::ModelBuilder::load(resume + "/model.json")
                                          : make_architecture(a.model, d);
  auto model = arch.build();
  if (!a.quiet) std::cout << arch.summary();
  std::shared_ptr<optim::Optimizer> opt = make_run_optimizer(a, model->parameters());
  std::string loss_name = !a.loss.empty()              ? a.loss
                          : d.task == "classification" ? "cross_entropy"
                                                       : "mse";
  std::shared_ptr<nn::Loss> loss = nn::make_loss(loss_name);
  train::TrainerOptions to = run_trainer_options(a);
  to.metrics = !a.metrics.empty()           ? a.metrics
               : d.task == "classification" ? std::vector<std::string>{"accuracy"}
                                            : std::vector<std::string>{"rmse", "mae", "r2"};
  train::Trainer trainer(model, opt, loss, to);
  trainer.set_architecture(arch.to_json().dump());
  data::DataLoader train_loader(d.train, {.batch_size = a.batch_size,
                                          .shuffle = true,
                                          .seed = a.seed,
                                          .pin_memory = to.device.is_cuda()});
  data::DataLoader test_loader(d.test, {.batch_size = 512});
  set_run_scheduler(trainer, a, *opt, train_loader.size());
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
  write_file_atomic(a.output + "/run.json",
                    run_json(a, loss_name, data_json(a.data, d)).dump(2) + "\n");
  add_run_callbacks(trainer, a, ckpt_path);
  trainer.fit_to(train_loader, a.epochs, &test_loader);
  // A series is standardised: its errors in its own units, beside the persistence forecast's.
  std::string forecast;
  if (d.series) forecast = forecast_line(forecast_report(*d.series, trainer.predict(test_loader)));

  // The run directory: architecture, weights, and how the data was prepared.
  model->to(kCPU);
  io::save_safetensors(model->state_dict(), a.output + "/weights.safetensors", {{"format", "pt"}});
  const auto& h = trainer.history();
  std::cout << (d.series ? "test (standardised)" : "test");
  if (!h.empty())
    for (const auto& [k, v] : h.epochs().back().values)
      if (k.rfind("val_", 0) == 0) std::cout << "  " << k.substr(4) << " " << v;
  std::cout << "\n";
  if (!forecast.empty()) std::cout << forecast << "\n";
  std::cout << "saved to " << a.output << "\n";
  return 0;
}

}  // namespace anvil::tools
