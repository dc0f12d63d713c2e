// Forecasting windows over a time series: the `window` rows before a time step are the input,
// the next `horizon` values of one column the target.
//
//   data::SeriesSplit s = data::series_windows_from_csv(
//       "sunspots.csv", "SUNACTIVITY", {}, {.window = 24, .horizon = 1, .test_fraction = 0.2});
//   data::DataLoader loader(s.train, {.batch_size = 32, .shuffle = true});
//   for (data::Batch& b : loader) {  // b.input [32, 24, 1], b.target [32, 1], standardised
//     Tensor forecast = s.unscale(model(b.input));  // in the series' own units
//   }
//
// Rows and windows. The series has N rows, oldest first, with F input columns and a target
// column (by default the target is the only input). Window i of a part starting at row `first`
// has input rows [first + i, first + i + W) of every input column, shape [W, F], and target
// rows [first + i + W, first + i + W + H) of the target column, shape [H].
//
// The split is by rows, in time order: the last n_test = ceil(test_fraction * N) rows are held
// out. A training window's targets all lie in the first N - n_test rows, a test window's in the
// last n_test (its inputs may reach back into the training rows, as a forecast made at that
// time could see them); windows whose targets straddle the boundary belong to neither. So
// there are N - n_test - W - H + 1 training windows and n_test - H + 1 test windows.
//
// Scaling. Every input column and the target are standardised, (x - mean) / std, with the mean
// and the population std (ddof 0) of the training rows only: nothing of the held-out rows
// reaches the model. A column that is constant there gets std 1 (scikit-learn's
// StandardScaler does the same).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "anvil/core/dtype.h"
#include "anvil/data/csv.h"
#include "anvil/data/dataset.h"

namespace anvil::data {

// The windows of one part of a series: sample i starts at row first + i (see above).
class SeriesWindows : public Dataset {
 public:
  // inputs [N, F] and target [N], of one floating dtype. Throws ShapeError or DTypeError for
  // other tensors, ValueError for window or horizon < 1 or count < 0, IndexError when the
  // last window's targets would pass row N.
  SeriesWindows(Tensor inputs, Tensor target, int64_t window, int64_t horizon, int64_t first,
                int64_t count);
  int64_t size() const override { return count_; }
  // Window `index`: input [W, F] and target [H], views of the series. Throws IndexError.
  Example get(int64_t index) const override;
  // input [B, W, F], target [B, H] (copies).
  Batch get_batch(const std::vector<int64_t>& indices) const override;

  // The naive persistence forecast of every window, [size(), H]: the last target value the
  // window sees (row first + i + W - 1), repeated H times. A model is useful only where it
  // beats this.
  Tensor persistence() const;
  // Every window's target, [size(), H].
  Tensor targets() const;

  int64_t window() const { return window_; }
  int64_t horizon() const { return horizon_; }
  int64_t first() const { return first_; }  // the row window 0 starts at

 private:
  Tensor inputs_, target_;
  int64_t window_, horizon_, first_, count_;
};

// The statistics a series is standardised with, in the units of the file.
struct SeriesScaling {
  std::vector<double> input_mean, input_std;  // [F]
  double target_mean = 0, target_std = 1;
};

struct SeriesOptions {
  int64_t window = 64;         // W: rows of input per window
  int64_t horizon = 1;         // H: target values after the window
  double test_fraction = 0.2;  // the share of the rows, at the end, held out; in [0, 1)
  DType dtype = kFloat32;      // of the windows; floating
  // Standardise with these statistics (a saved run's) instead of the training rows'.
  std::optional<SeriesScaling> scaling = std::nullopt;
};

// A series cut into training and test windows, standardised.
struct SeriesSplit {
  std::shared_ptr<SeriesWindows> train;
  std::shared_ptr<SeriesWindows> test;  // null when test_fraction is 0
  SeriesScaling scaling;
  std::vector<std::string> input_names;  // the input columns' header names ("" without one)
  std::string target_name;
  int64_t rows = 0;        // N
  int64_t train_rows = 0;  // N - n_test: the rows the statistics come from

  // Standardised target values (a forecast, or a window's target) in the series' units:
  // y * target_std + target_mean, as float64.
  Tensor unscale(const Tensor& y) const;
};

// Windows of a series in memory: inputs [N, F] and target [N], floating, in their own units.
// Throws ShapeError for other shapes, ValueError for window or horizon < 1, test_fraction
// outside [0, 1), window + horizon longer than the series, a training part too short for one
// window and its horizon, a held-out part shorter than the horizon, or `scaling` of another
// width than F (each message names the numbers).
SeriesSplit series_windows(const Tensor& inputs, const Tensor& target,
                           const SeriesOptions& options = {});

// The same for columns of a CSV file (read_csv_columns: a header names them, or indices do;
// other columns may hold anything, such as dates). `inputs` empty: the target alone. Throws
// the errors of read_csv_columns (IOError naming the file, line and column of a cell that is
// not a number; ValueError naming a column that is not in the header, and the columns that are)
// and of series_windows, with the file's name.
SeriesSplit series_windows_from_csv(const std::string& path, const Column& target,
                                    const std::vector<Column>& inputs = {},
                                    const SeriesOptions& options = {}, const CsvOptions& csv = {});

}  // namespace anvil::data
