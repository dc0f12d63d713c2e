// `anvil eval --run DIR`: the loss and the task's metrics of a saved run on its test data
// (a language model's run: lm_eval_command.cpp).
#include <iostream>

#include "anvil/anvil.h"
#include "tools/commands.h"
#include "tools/series_run.h"

namespace anvil::tools {

int eval_command(const std::string& dir, const std::string& data, const std::string& device) {
  if (is_language_model_run({}, dir)) return lm_eval_command(dir, data, device);
  LoadedRun r = load_run(dir, data);
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
  if (r.data.series)  // the metrics above are of the standardised series
    std::cout << forecast_line(forecast_report(*r.data.series, t.predict(loader))) << "\n";
  return 0;
}

}  // namespace anvil::tools
