// Time-series windows (data::series_windows, series_windows_from_csv) and the CSV column
// reader under them: windows, targets, the chronological split, the training-rows-only scaling,
// and every bad input's message.
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "anvil/core/file.h"
#include "anvil/data/data.h"
#include "support/check.h"

using namespace anvil;
using namespace anvil::data;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("anvil_test_series_" + std::to_string(getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

std::string write_text(const std::string& name, const std::string& text) {
  static TempDir d;
  const std::string p = (d.path / name).string();
  write_file_atomic(p, text);
  return p;
}

// Ten rows: a text date, a = 1..10, b = a^2.
std::string ten_rows() {
  std::string csv = "date,a,b\n";
  for (int i = 1; i <= 10; ++i)
    csv +=
        "1990-0" + std::to_string(i) + "," + std::to_string(i) + "," + std::to_string(i * i) + "\n";
  return write_text("ten.csv", csv);
}

std::vector<double> values(const Tensor& t) {
  return t.to(kFloat64).contiguous().to_vector<double>();
}

}  // namespace

TEST(CsvColumns, ReadsOnlyTheColumnsAskedForInTheirOrder) {
  const std::string p = ten_rows();
  CsvColumns c = read_csv_columns(p, {"b", "a", "b", 1});
  EXPECT_EQ(c.names, (std::vector<std::string>{"b", "a", "b", "a"}));
  ASSERT_EQ(c.values.size(), 4u);
  EXPECT_EQ(c.values[0][2], 9);
  EXPECT_EQ(c.values[1][2], 3);
  EXPECT_EQ(c.values[2][9], 100);
  EXPECT_EQ(c.values[3][9], 10);
  EXPECT_EQ(c.lines.front(), 2);  // after the header
  EXPECT_EQ(c.lines.back(), 11);
  // The date column is text, and is refused when asked for.
  EXPECT_TRUE(test::throws_with<IOError>(
      [&] { read_csv_columns(p, {"date"}); },
      {"read_csv_columns", "ten.csv", "line 2", "column 1 (\"date\")", "\"1990-01\""}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { read_csv_columns(p, {}); }, {"no", "column"}));
}

TEST(SeriesWindows, WindowsTargetsSplitAndScalingOnAHandMadeSeries) {
  // N = 10, W = 3, H = 2, test_fraction 0.25: the last ceil(2.5) = 3 rows are held out.
  SeriesSplit s = series_windows_from_csv(ten_rows(), "a", {},
                                          {.window = 3, .horizon = 2, .test_fraction = 0.25});
  EXPECT_EQ(s.rows, 10);
  EXPECT_EQ(s.train_rows, 7);
  EXPECT_EQ(s.target_name, "a");
  EXPECT_EQ(s.input_names, std::vector<std::string>{"a"});
  // Statistics of the training rows 1..7 only: mean 4, population std 2 (all rows: 5.5, 2.87).
  EXPECT_DOUBLE_EQ(s.scaling.target_mean, 4);
  EXPECT_DOUBLE_EQ(s.scaling.target_std, 2);
  EXPECT_EQ(s.scaling.input_mean, std::vector<double>{4});
  EXPECT_EQ(s.scaling.input_std, std::vector<double>{2});

  // Training windows start at rows 0, 1, 2: their targets (rows 3..6) stay in training.
  ASSERT_EQ(s.train->size(), 7 - 3 - 2 + 1);
  EXPECT_EQ(s.train->first(), 0);
  Example e = s.train->get(0);
  EXPECT_EQ(e.input.shape(), (Shape{3, 1}));
  EXPECT_EQ(e.target.shape(), (Shape{2}));
  EXPECT_EQ(values(e.input), (std::vector<double>{-1.5, -1, -0.5}));         // a = 1, 2, 3
  EXPECT_EQ(values(e.target), (std::vector<double>{0, 0.5}));                // a = 4, 5
  EXPECT_EQ(values(s.train->get(2).target), (std::vector<double>{1, 1.5}));  // a = 6, 7

  // Test windows: targets are the held-out rows 7..9; inputs reach back into training.
  ASSERT_TRUE(s.test);
  ASSERT_EQ(s.test->size(), 3 - 2 + 1);
  EXPECT_EQ(s.test->first(), 4);
  EXPECT_EQ(values(s.test->get(0).input), (std::vector<double>{0.5, 1, 1.5}));  // a = 5, 6, 7
  EXPECT_EQ(values(s.test->get(0).target), (std::vector<double>{2, 2.5}));      // a = 8, 9
  EXPECT_EQ(values(s.test->get(1).target), (std::vector<double>{2.5, 3}));      // a = 9, 10
  EXPECT_THROW(s.test->get(2), IndexError);

  Batch b = s.test->get_batch({1, 0});
  EXPECT_EQ(b.input.shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(b.target.shape(), (Shape{2, 2}));
  EXPECT_EQ(values(b.input), (std::vector<double>{1, 1.5, 2, 0.5, 1, 1.5}));
  EXPECT_EQ(values(b.target), (std::vector<double>{2.5, 3, 2, 2.5}));
  EXPECT_EQ(b.input.dtype(), kFloat32);

  // Persistence: the last value each window sees (a = 7, then 8), repeated over the horizon.
  EXPECT_EQ(values(s.test->persistence()), (std::vector<double>{1.5, 1.5, 2, 2}));
  EXPECT_EQ(values(s.test->targets()), (std::vector<double>{2, 2.5, 2.5, 3}));
  // Back in the file's units.
  Tensor u = s.unscale(s.test->targets());
  EXPECT_EQ(u.shape(), (Shape{2, 2}));
  EXPECT_EQ(values(u), (std::vector<double>{8, 9, 9, 10}));

  // A DataLoader stacks them as a model takes them.
  DataLoader loader(s.train, {.batch_size = 2});
  for (Batch& lb : loader) {
    EXPECT_EQ(lb.input.shape(), (Shape{2, 3, 1}));
    EXPECT_EQ(lb.target.shape(), (Shape{2, 2}));
    break;
  }
}

TEST(SeriesWindows, SeveralInputColumnsAndATargetOutsideThem) {
  // Inputs b and a; the target a. b's training rows 1, 4, ..., 49: mean 20, variance 268.
  SeriesSplit s = series_windows_from_csv(ten_rows(), 1, {"b", "a"},
                                          {.window = 3, .horizon = 1, .test_fraction = 0.25});
  EXPECT_EQ(s.input_names, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(s.scaling.input_mean, (std::vector<double>{20, 4}));
  EXPECT_DOUBLE_EQ(s.scaling.input_std[0], std::sqrt(268.0));
  Example e = s.train->get(1);  // rows 1..3, target row 4
  EXPECT_EQ(e.input.shape(), (Shape{3, 2}));
  EXPECT_TRUE(test::all_close(
      e.input.to(kFloat64),
      tensor(std::vector<double>{(4 - 20) / std::sqrt(268.0), -1, (9 - 20) / std::sqrt(268.0), -0.5,
                                 (16 - 20) / std::sqrt(268.0), 0},
             {3, 2})));
  EXPECT_EQ(values(e.target), std::vector<double>{0.5});  // a = 5
  // Only b as input: the persistence forecast is still the target column's last value.
  SeriesSplit only_b = series_windows_from_csv(ten_rows(), "a", {"b"},
                                               {.window = 3, .horizon = 1, .test_fraction = 0.25});
  EXPECT_EQ(only_b.scaling.input_mean, std::vector<double>{20});
  EXPECT_EQ(values(only_b.unscale(only_b.test->persistence())), (std::vector<double>{7, 8, 9}));
}

TEST(SeriesWindows, InMemoryGivenScalingAndNoTestPart) {
  Tensor a = arange(0, 10, 1, kFloat64);
  // The statistics given replace the training rows': here the identity.
  SeriesSplit s = series_windows(a.unsqueeze(1), a,
                                 {.window = 2,
                                  .horizon = 1,
                                  .test_fraction = 0,
                                  .dtype = kFloat64,
                                  .scaling = SeriesScaling{{0}, {1}, 0, 1}});
  EXPECT_FALSE(s.test);
  ASSERT_EQ(s.train->size(), 10 - 2 - 1 + 1);
  EXPECT_EQ(values(s.train->get(7).input), (std::vector<double>{7, 8}));
  EXPECT_EQ(values(s.train->get(7).target), std::vector<double>{9});
  EXPECT_EQ(s.train->get(0).input.dtype(), kFloat64);
  // A constant column gets std 1 rather than a division by zero.
  SeriesSplit c = series_windows(zeros({6, 1}), ones({6}), {.window = 2, .test_fraction = 0});
  EXPECT_EQ(c.scaling.input_std, std::vector<double>{1});
  EXPECT_EQ(c.scaling.target_mean, 1);
  EXPECT_EQ(c.scaling.target_std, 1);
  EXPECT_EQ(values(c.train->get(0).target), std::vector<double>{0});
}

TEST(SeriesWindows, BadInputsNameWhatWasExpectedAndWhatCame) {
  const std::string p = ten_rows();
  using test::throws_with;
  EXPECT_TRUE(throws_with<ValueError>(
      [&] { series_windows_from_csv(p, "price"); },
      {"series_windows_from_csv", "ten.csv", "no column \"price\"", "\"date\", \"a\", \"b\""}));
  EXPECT_TRUE(throws_with<ValueError>(
      [&] {
        series_windows_from_csv(p, "a", {"a", "c"});
      },
      {"no column \"c\""}));
  EXPECT_TRUE(throws_with<IndexError>([&] { series_windows_from_csv(p, 3); },
                                      {"column 3 is out of range for 3 columns"}));
  const std::string bad = write_text("bad.csv", "t,v\n1,0.5\n2,0.7\n3,n/a\n4,0.2\n");
  EXPECT_TRUE(throws_with<IOError>(
      [&] { series_windows_from_csv(bad, "v", {}, {.window = 1}); },
      {"bad.csv", "line 4", "column 2 (\"v\")", "expected a number, got \"n/a\""}));
  const std::string gap = write_text("gap.csv", "t,v\n1,0.5\n2,\n");
  EXPECT_TRUE(throws_with<IOError>([&] { series_windows_from_csv(gap, "v", {}, {.window = 1}); },
                                   {"gap.csv", "line 3", "empty cell"}));
  EXPECT_TRUE(throws_with<IOError>([&] { series_windows_from_csv(p + ".missing", "a"); },
                                   {"ten.csv.missing", "cannot open"}));

  auto with = [&](SeriesOptions o) { return [p, o] { series_windows_from_csv(p, "a", {}, o); }; };
  EXPECT_TRUE(throws_with<ValueError>(with({.window = 9, .horizon = 2}),
                                      {"ten.csv", "window + horizon = 11", "the series has 10"}));
  EXPECT_TRUE(throws_with<ValueError>(with({.window = 0}), {"expected window >= 1, got 0"}));
  EXPECT_TRUE(
      throws_with<ValueError>(with({.window = 2, .horizon = 0}), {"expected horizon >= 1, got 0"}));
  EXPECT_TRUE(throws_with<ValueError>(with({.window = 2, .horizon = -3}),
                                      {"expected horizon >= 1, got -3"}));
  // 10 rows, 3 held out: 7 left for training, fewer than 6 + 2.
  EXPECT_TRUE(throws_with<ValueError>(with({.window = 6, .horizon = 2, .test_fraction = 0.25}),
                                      {"last 3 of 10", "leaves 7", "window + horizon = 8"}));
  EXPECT_TRUE(throws_with<ValueError>(with({.window = 2, .horizon = 4, .test_fraction = 0.25}),
                                      {"3 held-out rows", "fewer than the horizon of 4"}));
  EXPECT_TRUE(throws_with<ValueError>(with({.window = 2, .test_fraction = 1}),
                                      {"test_fraction in [0, 1), got 1"}));
  EXPECT_TRUE(
      throws_with<ValueError>(with({.window = 2, .dtype = kInt64}), {"floating dtype", "int64"}));
  EXPECT_TRUE(
      throws_with<ValueError>(with({.window = 2, .scaling = SeriesScaling{{0, 0}, {1, 1}, 0, 1}}),
                              {"scaling of 1 input columns", "2 means"}));

  EXPECT_TRUE(throws_with<ShapeError>([] { series_windows(zeros({10}), zeros({10})); },
                                      {"series_windows", "[N, F]", "[10]"}));
  EXPECT_TRUE(throws_with<ShapeError>(
      [] {
        series_windows(zeros({10, 1}), zeros({9}));
      },
      {"target of shape [10]", "[9]"}));
  EXPECT_TRUE(throws_with<IndexError>(
      [] {
        SeriesWindows(zeros({5, 1}), zeros({5}), 2, 2, 1, 2);
      },
      {"SeriesWindows", "need 6 rows", "has 5"}));
}
