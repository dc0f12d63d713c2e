#include "tools/series_run.h"

#include <cmath>
#include <sstream>

namespace anvil::tools {
namespace {
using json = nlohmann::json;

// A column by name, or by index when it is a number ("" = the last column).
data::Column series_column(const std::string& s) {
  if (s.empty()) return data::Column(int64_t(-1));
  if (s.find_first_not_of("-0123456789") == std::string::npos)
    return data::Column(int64_t(std::stoll(s)));
  return data::Column(s);
}

std::pair<double, double> errors(const Tensor& truth, const Tensor& forecast) {
  const std::vector<double> t = truth.to_vector<double>(), f = forecast.to_vector<double>();
  double se = 0, ae = 0;
  for (size_t i = 0; i < t.size(); ++i)
    se += (t[i] - f[i]) * (t[i] - f[i]), ae += std::abs(t[i] - f[i]);
  return {se / double(t.size()), ae / double(t.size())};
}

}  // namespace

bool is_series_source(const std::string& source) { return source.rfind(kSeriesPrefix, 0) == 0; }

LoadedData load_series(const DataSpec& spec, const json* scaling) {
  ANVIL_CHECK(spec.task == "auto" || spec.task == "regression", ValueError,
              "anvil: a series is forecast by regression, not ", spec.task);
  ANVIL_CHECK(spec.test_fraction > 0, ValueError,
              "anvil: a series run reports on its held-out windows: expected --test-fraction > 0, "
              "got ",
              spec.test_fraction);
  data::SeriesOptions o;
  o.window = spec.window;
  o.horizon = spec.horizon;
  o.test_fraction = spec.test_fraction;
  if (scaling) {
    try {
      o.scaling =
          data::SeriesScaling{.input_mean = scaling->at("input_mean").get<std::vector<double>>(),
                              .input_std = scaling->at("input_std").get<std::vector<double>>(),
                              .target_mean = scaling->at("target_mean").get<double>(),
                              .target_std = scaling->at("target_std").get<double>()};
    } catch (const json::exception& e) {
      throw ValueError(std::string("anvil: the run's series scaling is unreadable: ") + e.what());
    }
  }
  std::vector<data::Column> inputs;
  for (const auto& c : spec.input_columns) inputs.push_back(series_column(c));
  auto s = std::make_shared<data::SeriesSplit>(data::series_windows_from_csv(
      spec.source.substr(std::string(kSeriesPrefix).size()), series_column(spec.label_column),
      inputs, o, {.skip_rows = spec.skip_rows}));
  LoadedData d;
  d.train = s->train;
  d.test = s->test;
  d.sample_shape = {spec.window, int64_t(s->scaling.input_mean.size())};
  d.task = "regression";
  d.outputs = spec.horizon;
  d.series = s;
  return d;
}

json series_scaling_json(const data::SeriesScaling& s) {
  return {{"input_mean", s.input_mean},
          {"input_std", s.input_std},
          {"target_mean", s.target_mean},
          {"target_std", s.target_std}};
}

ForecastReport forecast_report(const data::SeriesSplit& series, const Tensor& forecast) {
  ANVIL_CHECK(series.test, ValueError, "anvil: the series has no held-out windows to report on");
  const Tensor truth = series.unscale(series.test->targets());
  ANVIL_CHECK(forecast.shape() == truth.shape(), ShapeError, "anvil: expected a forecast of shape ",
              to_string(truth.shape()), ", got ", to_string(forecast.shape()));
  ForecastReport r;
  r.windows = series.test->size();
  std::tie(r.mse, r.mae) = errors(truth, series.unscale(forecast));
  std::tie(r.persistence_mse, r.persistence_mae) =
      errors(truth, series.unscale(series.test->persistence()));
  return r;
}

std::string forecast_line(const ForecastReport& r) {
  std::ostringstream o;
  o << "held-out " << r.windows << " windows (original units): mse " << r.mse << "  mae " << r.mae
    << "  persistence: mse " << r.persistence_mse << "  mae " << r.persistence_mae;
  return o.str();
}

std::string forecast_csv(const data::SeriesSplit& series, const Tensor& forecast) {
  ANVIL_CHECK(forecast.dim() == 2, ShapeError, "anvil: expected a forecast [windows, H], got ",
              to_string(forecast.shape()));
  const int64_t n = forecast.size(0), h = forecast.size(1);
  const std::vector<double> v = series.unscale(forecast).to_vector<double>();
  std::ostringstream csv;
  csv << "index";
  for (int64_t k = 1; k <= h; ++k) {
    csv << ",prediction";
    if (h > 1) csv << '_' << k;
  }
  csv << "\n";
  for (int64_t i = 0; i < n; ++i) {
    csv << i;
    for (int64_t k = 0; k < h; ++k) csv << ',' << v[size_t(i * h + k)];
    csv << "\n";
  }
  return csv.str();
}

}  // namespace anvil::tools
