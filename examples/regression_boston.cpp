// Regression on the Boston housing table that Debian's python3-sklearn ships: predict the
// median house value (MEDV) from 13 features with a small MLP.
//
// Features are standardised with the training split's statistics; the loss is MSE and the
// report gives RMSE, MAE and R^2 on the 20% held out. Run: build/examples/regression_boston
#include <iostream>

#include "anvil/anvil.h"

using namespace anvil;

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1]
                                    : "/usr/lib/python3/dist-packages/sklearn/datasets/data/"
                                      "boston_house_prices.csv";
  manual_seed(0);
  // The file's first line holds the table's size; the header follows.
  data::CsvDataset table(path, "MEDV", {.skip_rows = 1, .task = data::Task::Regression});
  auto all = std::make_shared<data::TensorDataset>(table.features(), table.targets());
  auto [train_idx, test_idx] = data::train_test_split(all, 0.2, /*seed=*/0);

  Tensor x_train = index_select(table.features(), 0, tensor(train_idx->indices()));
  Tensor mu = mean(x_train, {0}), sigma = clamp_min(std_dev(x_train, {0}, 0), 1e-8);
  auto scaled = std::make_shared<data::TensorDataset>(div(sub(table.features(), mu), sigma),
                                                      table.targets());
  auto train_set = std::make_shared<data::Subset>(scaled, train_idx->indices());
  auto test_set = std::make_shared<data::Subset>(scaled, test_idx->indices());

  auto model = nn::ModelBuilder({32, 13}).dense(64).relu().dense(32).relu().dense(1).build();
  std::shared_ptr<optim::Optimizer> opt = optim::make_optimizer("adam", model->parameters(), 3e-3);
  train::Trainer trainer(model, opt, nn::make_loss("mse"), {.metrics = {"rmse", "mae", "r2"}});
  trainer.add_callback(std::make_shared<train::ProgressBar>());

  data::DataLoader train_loader(train_set, {.batch_size = 32, .shuffle = true, .seed = 0});
  data::DataLoader test_loader(test_set, {.batch_size = 256});
  trainer.fit(train_loader, 150, &test_loader);
  auto logs = trainer.evaluate(test_loader);
  std::cout << "test RMSE " << logs.at("rmse") << "  MAE " << logs.at("mae") << "  R^2 "
            << logs.at("r2") << "\n";
  return 0;
}
