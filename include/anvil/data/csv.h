// CsvDataset: a table of numbers in a delimited text file, one sample per line, one column
// holding the target (a class index or a regression value) and the others the features.
//
// Cells may be quoted ("1.5"); spaces around a cell and a trailing \r are ignored, and so are
// blank lines. Every cell must be a finite number: text, empty cells, NaN and inf are refused
// with the line and column, since a silently dropped or zeroed sample is worse than an error.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "anvil/core/dtype.h"
#include "anvil/data/dataset.h"

namespace anvil::data {

enum class CsvHeader {
  Auto,  // the first line (after skip_rows) is a header if a non-empty cell is not a number
  Yes,
  No,
};

enum class Task {
  Classification,  // targets: int64 class indices [N]; labels must be non-negative integers
  Regression,      // targets: floating values [N] of `dtype`
};

struct CsvOptions {
  char delimiter = ',';
  CsvHeader header = CsvHeader::Auto;
  // Lines to skip before the header or data (scikit-learn's bundled CSVs start with a
  // "n_samples,n_features,..." line: skip_rows = 1).
  int64_t skip_rows = 0;
  DType dtype = kFloat32;  // of the features (and of regression targets); floating
  Task task = Task::Classification;
};

// Names a column by header name or by 0-based index (negative counts from the end).
class Column {
 public:
  Column(const char* name) : name_(name) {}                  // NOLINT
  Column(std::string name) : name_(std::move(name)) {}       // NOLINT
  Column(int64_t index) : index_(index), by_index_(true) {}  // NOLINT
  Column(int index) : index_(index), by_index_(true) {}      // NOLINT
  bool by_index() const { return by_index_; }
  const std::string& name() const { return name_; }
  int64_t index() const { return index_; }

 private:
  std::string name_;
  int64_t index_ = 0;
  bool by_index_ = false;
};

class CsvDataset : public Dataset {
 public:
  // Reads the whole file. Throws
  //   IOError   when the file cannot be opened or read, or a cell is not a finite number, is
  //             empty, or a line has a different number of cells than the first (the message
  //             names the file, the 1-based line and column, and the cell);
  //   ValueError when the label column is not in the header (or a name is given without
  //             one), a classification label is not a non-negative integer, the file holds no
  //             data lines, or dtype is not floating;
  //   IndexError when a label column index is out of range.
  CsvDataset(const std::string& path, Column label_column, CsvOptions options = {});
  int64_t size() const override { return features_.size(0); }
  // input [F] of dtype; target [] (int64 or dtype).
  Example get(int64_t index) const override;
  Batch get_batch(const std::vector<int64_t>& indices) const override;

  const Tensor& features() const { return features_; }  // [N, F]
  const Tensor& targets() const { return targets_; }    // [N]
  // Feature names from the header (without the label column); "" for files without one.
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  // Classification only: max label + 1.
  int64_t num_classes() const { return num_classes_; }

 private:
  Tensor features_, targets_;
  std::vector<std::string> feature_names_;
  int64_t num_classes_ = 0;
};

// Some columns of a CSV file as numbers, for tables that are not one sample per line (a time
// series: data::series_windows_from_csv).
struct CsvColumns {
  std::vector<std::string> names;           // header names of the columns read ("" without one)
  std::vector<std::vector<double>> values;  // values[k][r]: the k-th column asked for, row r
  std::vector<int64_t> lines;               // the 1-based line in the file of each row
};

// Reads `columns` (in that order; one may be asked for twice) from every data line, with the
// same cell rules as CsvDataset; the other cells are not parsed and may hold anything (a
// date). options.dtype and options.task are not used. `op` begins every message. Throws what
// CsvDataset throws (IOError naming the file, line and column of a bad cell; ValueError for a
// column name not in the header, or no columns; IndexError for a column index out of range).
CsvColumns read_csv_columns(const std::string& path, const std::vector<Column>& columns,
                            const CsvOptions& options = {},
                            const std::string& op = "read_csv_columns");

}  // namespace anvil::data
