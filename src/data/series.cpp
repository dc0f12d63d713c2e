#include "anvil/data/series.h"

#include <cmath>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/indexing.h"

namespace anvil::data {
namespace {

std::vector<double> host_doubles(const Tensor& t) {
  NoGradGuard no_grad;
  return t.detach().to(kCPU, kFloat64).contiguous().to_vector<double>();
}

// Mean and population std of x[r * stride + c] over rows [0, n); std 1 for a constant column.
std::pair<double, double> stats(const std::vector<double>& x, int64_t n, int64_t stride,
                                int64_t c) {
  double m = 0, v = 0;
  for (int64_t r = 0; r < n; ++r) m += x[size_t(r * stride + c)];
  m /= double(n);
  for (int64_t r = 0; r < n; ++r) v += std::pow(x[size_t(r * stride + c)] - m, 2);
  const double s = std::sqrt(v / double(n));
  return {m, s > 0 ? s : 1.0};
}

// The split of series_windows; `op` begins every message (it names the file for a CSV).
SeriesSplit split_series(const Tensor& inputs, const Tensor& target, const SeriesOptions& o,
                         const std::string& op) {
  ANVIL_CHECK(inputs.defined() && inputs.dim() == 2, ShapeError, op,
              ": expected inputs of shape [N, F], got ",
              inputs.defined() ? to_string(inputs.shape()) : std::string("an undefined tensor"));
  ANVIL_CHECK(target.defined() && target.dim() == 1 && target.size(0) == inputs.size(0), ShapeError,
              op, ": expected a target of shape [", inputs.size(0), "], got ",
              target.defined() ? to_string(target.shape()) : std::string("an undefined tensor"));
  ANVIL_CHECK(is_floating(o.dtype), ValueError, op, ": expected a floating dtype, got ",
              dtype_name(o.dtype));
  ANVIL_CHECK(o.window >= 1, ValueError, op, ": expected window >= 1, got ", o.window);
  ANVIL_CHECK(o.horizon >= 1, ValueError, op, ": expected horizon >= 1, got ", o.horizon);
  ANVIL_CHECK(o.test_fraction >= 0 && o.test_fraction < 1, ValueError, op,
              ": expected test_fraction in [0, 1), got ", o.test_fraction);
  const int64_t n = inputs.size(0), f = inputs.size(1), w = o.window, h = o.horizon;
  ANVIL_CHECK(w + h <= n, ValueError, op, ": a window of ", w, " rows and a horizon of ", h,
              " need window + horizon = ", w + h, " rows, but the series has ", n);
  const int64_t n_test = int64_t(std::ceil(o.test_fraction * double(n))), n_train = n - n_test;
  ANVIL_CHECK(n_train >= w + h, ValueError, op, ": holding out the last ", n_test, " of ", n,
              " rows (test_fraction ", o.test_fraction, ") leaves ", n_train,
              " for training, fewer than one window and its horizon (window + horizon = ", w + h,
              ")");
  ANVIL_CHECK(n_test == 0 || n_test >= h, ValueError, op, ": the ", n_test,
              " held-out rows (test_fraction ", o.test_fraction, ") are fewer than the horizon of ",
              h, ": no test window fits");

  const std::vector<double> x = host_doubles(inputs), y = host_doubles(target);
  SeriesSplit s;
  s.rows = n;
  s.train_rows = n_train;
  if (o.scaling) {
    s.scaling = *o.scaling;
    ANVIL_CHECK(
        int64_t(s.scaling.input_mean.size()) == f && int64_t(s.scaling.input_std.size()) == f,
        ValueError, op, ": expected the scaling of ", f, " input columns, got ",
        s.scaling.input_mean.size(), " means and ", s.scaling.input_std.size(), " stds");
  } else {
    for (int64_t c = 0; c < f; ++c) {
      auto [m, sd] = stats(x, n_train, f, c);
      s.scaling.input_mean.push_back(m);
      s.scaling.input_std.push_back(sd);
    }
    std::tie(s.scaling.target_mean, s.scaling.target_std) = stats(y, n_train, 1, 0);
  }
  std::vector<double> xs(x.size()), ys(y.size());
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < f; ++c)
      xs[size_t(r * f + c)] =
          (x[size_t(r * f + c)] - s.scaling.input_mean[size_t(c)]) / s.scaling.input_std[size_t(c)];
    ys[size_t(r)] = (y[size_t(r)] - s.scaling.target_mean) / s.scaling.target_std;
  }
  Tensor xt = tensor(xs, {n, f}, o.dtype), yt = tensor(ys, {n}, o.dtype);
  s.train = std::make_shared<SeriesWindows>(xt, yt, w, h, 0, n_train - w - h + 1);
  if (n_test > 0)
    s.test = std::make_shared<SeriesWindows>(xt, yt, w, h, n_train - w, n_test - h + 1);
  return s;
}

}  // namespace

SeriesWindows::SeriesWindows(Tensor inputs, Tensor target, int64_t window, int64_t horizon,
                             int64_t first, int64_t count)
    : inputs_(std::move(inputs)),
      target_(std::move(target)),
      window_(window),
      horizon_(horizon),
      first_(first),
      count_(count) {
  const char* op = "SeriesWindows";
  ANVIL_CHECK(inputs_.defined() && inputs_.dim() == 2, ShapeError, op,
              ": expected inputs of shape [N, F], got ",
              inputs_.defined() ? to_string(inputs_.shape()) : std::string("an undefined tensor"));
  ANVIL_CHECK(target_.defined() && target_.dim() == 1 && target_.size(0) == inputs_.size(0),
              ShapeError, op, ": expected a target of shape [", inputs_.size(0), "], got ",
              target_.defined() ? to_string(target_.shape()) : std::string("an undefined tensor"));
  ANVIL_CHECK(is_floating(inputs_.dtype()) && target_.dtype() == inputs_.dtype(), DTypeError, op,
              ": expected floating inputs and a target of their dtype, got ",
              dtype_name(inputs_.dtype()), " and ", dtype_name(target_.dtype()));
  ANVIL_CHECK(window >= 1 && horizon >= 1, ValueError, op,
              ": expected window >= 1 and horizon >= 1, got ", window, " and ", horizon);
  ANVIL_CHECK(first >= 0 && count >= 0, ValueError, op,
              ": expected first >= 0 and count >= 0, got ", first, " and ", count);
  ANVIL_CHECK(count == 0 || first + count - 1 + window + horizon <= inputs_.size(0), IndexError, op,
              ": ", count, " windows from row ", first, " of ", window, " + ", horizon,
              " rows need ", first + count - 1 + window + horizon, " rows, the series has ",
              inputs_.size(0));
}

Example SeriesWindows::get(int64_t index) const {
  ANVIL_CHECK(index >= 0 && index < count_, IndexError, "SeriesWindows::get: index ", index,
              " is out of range for ", count_, " windows");
  const int64_t start = first_ + index;
  return {inputs_.narrow(0, start, window_), target_.narrow(0, start + window_, horizon_)};
}

Batch SeriesWindows::get_batch(const std::vector<int64_t>& indices) const {
  ANVIL_CHECK(!indices.empty(), ValueError,
              "SeriesWindows::get_batch: expected at least one index, got none");
  const int64_t b = int64_t(indices.size());
  std::vector<int64_t> in_rows, target_rows;
  in_rows.reserve(size_t(b * window_));
  target_rows.reserve(size_t(b * horizon_));
  for (int64_t i : indices) {
    ANVIL_CHECK(i >= 0 && i < count_, IndexError, "SeriesWindows::get_batch: index ", i,
                " is out of range for ", count_, " windows");
    for (int64_t k = 0; k < window_; ++k) in_rows.push_back(first_ + i + k);
    for (int64_t k = 0; k < horizon_; ++k) target_rows.push_back(first_ + i + window_ + k);
  }
  NoGradGuard no_grad;
  Tensor x = index_select(inputs_, 0, tensor(in_rows, {b * window_}));
  Tensor y = index_select(target_, 0, tensor(target_rows, {b * horizon_}));
  return {x.reshape({b, window_, inputs_.size(1)}), y.reshape({b, horizon_})};
}

Tensor SeriesWindows::persistence() const {
  if (count_ == 0) return empty({0, horizon_}, target_.dtype());
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < count_; ++i)
    for (int64_t k = 0; k < horizon_; ++k) rows.push_back(first_ + i + window_ - 1);
  NoGradGuard no_grad;
  return index_select(target_, 0, tensor(rows, {count_ * horizon_})).reshape({count_, horizon_});
}

Tensor SeriesWindows::targets() const {
  if (count_ == 0) return empty({0, horizon_}, target_.dtype());
  std::vector<int64_t> all(static_cast<size_t>(count_));
  for (int64_t i = 0; i < count_; ++i) all[size_t(i)] = i;
  return get_batch(all).target;
}

Tensor SeriesSplit::unscale(const Tensor& y) const {
  NoGradGuard no_grad;
  std::vector<double> v = host_doubles(y);
  for (double& e : v) e = e * scaling.target_std + scaling.target_mean;
  return tensor(v, y.shape(), kFloat64);
}

SeriesSplit series_windows(const Tensor& inputs, const Tensor& target,
                           const SeriesOptions& options) {
  SeriesSplit s = split_series(inputs, target, options, "series_windows");
  s.input_names.assign(size_t(inputs.size(1)), "");
  return s;
}

SeriesSplit series_windows_from_csv(const std::string& path, const Column& target,
                                    const std::vector<Column>& inputs, const SeriesOptions& options,
                                    const CsvOptions& csv) {
  const std::string op = "series_windows_from_csv";
  // The target first, then the inputs (the target alone when none are named).
  std::vector<Column> columns{target};
  if (inputs.empty())
    columns.push_back(target);
  else
    columns.insert(columns.end(), inputs.begin(), inputs.end());
  CsvColumns c = read_csv_columns(path, columns, csv, op);
  const int64_t n = int64_t(c.lines.size()), f = int64_t(columns.size()) - 1;
  std::vector<double> x(size_t(n * f));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < f; ++k) x[size_t(r * f + k)] = c.values[size_t(k + 1)][size_t(r)];
  SeriesSplit s = split_series(tensor(x, {n, f}, kFloat64), tensor(c.values[0], {n}, kFloat64),
                               options, op + ": '" + path + "'");
  s.target_name = c.names[0];
  s.input_names.assign(c.names.begin() + 1, c.names.end());
  return s;
}

}  // namespace anvil::data
