// Forecasting a time series with an LSTM: next year's sunspot activity from the 20 years
// before it, on the yearly series (1700-2008) that Debian's python3-statsmodels ships.
//
// The last 20% of the years are held out, and the series is standardised with the training
// years' mean and std only. The held-out RMSE is printed beside the persistence forecast's
// (next year = this year), which a model has to beat to be of any use, and so are a few
// forecasts. Runs on the CPU in about 25 s (2 cores): build/examples/lstm_sunspots [FILE]
#include <cmath>
#include <cstdio>
#include <iostream>

#include "anvil/anvil.h"

using namespace anvil;

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1]
                                    : "/usr/lib/python3/dist-packages/statsmodels/datasets/"
                                      "sunspots/sunspots.csv";
  manual_seed(0);
  const int64_t window = 20;
  data::SeriesSplit s = data::series_windows_from_csv(
      path, "SUNACTIVITY", {}, {.window = window, .horizon = 1, .test_fraction = 0.2});
  std::cout << s.rows << " years: " << s.train->size() << " training windows, " << s.test->size()
            << " held out\n";

  // [B, 20, 1] -> LSTM(1, 64) -> its last hidden state [B, 64] -> Linear -> [B, 1].
  auto model = nn::ModelBuilder({32, window, 1})
                   .recurrent("lstm", 64, 1, false, "last_state")
                   .dense(1)
                   .build();
  std::shared_ptr<optim::Optimizer> opt = optim::make_optimizer("adam", model->parameters(), 3e-3);
  train::Trainer trainer(model, opt, nn::make_loss("mse"), {.metrics = {"rmse"}});
  trainer.add_callback(std::make_shared<train::EpochHook>(
      [](train::Trainer&, int64_t epoch, const train::Logs& logs) {
        std::printf("epoch %3lld  loss %.4f  held-out rmse %.4f (standardised)\n",
                    static_cast<long long>(epoch), logs.at("loss"), logs.at("val_rmse"));
      },
      /*every_epochs=*/20));
  data::DataLoader train_loader(s.train, {.batch_size = 32, .shuffle = true, .seed = 0});
  data::DataLoader test_loader(s.test, {.batch_size = 256});
  trainer.fit(train_loader, 100, &test_loader);

  // Forecasts and truth in sunspot numbers.
  Tensor forecast = s.unscale(trainer.predict(test_loader)).reshape({-1});
  Tensor truth = s.unscale(s.test->targets()).reshape({-1});
  Tensor persistence = s.unscale(s.test->persistence()).reshape({-1});
  auto rmse = [&](const Tensor& f) {
    return std::sqrt(mean(square(sub(f, truth))).item<double>());
  };
  std::printf(
      "held-out RMSE: LSTM %.2f, persistence %.2f (sunspot number; training years' std %.2f)\n",
      rmse(forecast), rmse(persistence), s.scaling.target_std);

  // A few forecasts with their years: window i's target is row first + i + window.
  data::CsvColumns years = data::read_csv_columns(path, {"YEAR"});
  const auto f = forecast.to_vector<double>(), t = truth.to_vector<double>();
  std::printf("year  forecast  actual\n");
  for (int64_t i = 0; i < s.test->size(); i += 12)
    std::printf("%4.0f  %8.1f  %6.1f\n", years.values[0][size_t(s.test->first() + i + window)],
                f[size_t(i)], t[size_t(i)]);
  return 0;
}
