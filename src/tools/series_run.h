// What `anvil train --data series:FILE` adds to the table runs: the series' windows as the
// run's data, and the forecast errors in the series' own units against the persistence
// forecast (the last value of each window, repeated), which a model has to beat.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "anvil/anvil.h"
#include "tools/run_spec.h"

namespace anvil::tools {

inline constexpr const char* kSeriesPrefix = "series:";

bool is_series_source(const std::string& source);

// The windows of --data series:PATH (spec.window, spec.horizon, the target spec.label_column,
// default the last column; inputs spec.input_columns, default the target), the last
// spec.test_fraction of the rows held out. With `scaling` (a saved run's data.scaling) the
// series is standardised with those statistics instead of its training rows'.
LoadedData load_series(const DataSpec& spec, const nlohmann::json* scaling);

nlohmann::json series_scaling_json(const data::SeriesScaling& s);

// Mean squared and absolute errors over every target value of the held-out windows, in the
// series' units, of the model's forecast and of the persistence forecast.
struct ForecastReport {
  int64_t windows = 0;
  double mse = 0, mae = 0, persistence_mse = 0, persistence_mae = 0;
};
// `forecast` [windows, H] standardised (Trainer::predict over series.test).
ForecastReport forecast_report(const data::SeriesSplit& series, const Tensor& forecast);
// "held-out 62 windows (original units): mse ... mae ...  persistence: mse ... mae ..."
std::string forecast_line(const ForecastReport& r);

// `anvil predict --run`'s CSV for a series: "index,prediction" (H = 1) or
// "index,prediction_1,...,prediction_H", one line per window of `forecast` [windows, H]
// (standardised), in the series' units.
std::string forecast_csv(const data::SeriesSplit& series, const Tensor& forecast);

}  // namespace anvil::tools
