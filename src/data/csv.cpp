#include "anvil/data/csv.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>

#include "anvil/core/error.h"
#include "anvil/data/tensor_dataset.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/indexing.h"

namespace anvil::data {
namespace {

// Splits one line into cells: quoted cells may hold the delimiter and "" for a quote;
// surrounding spaces and tabs are trimmed. `quoted[i]` tells whether cell i was quoted.
std::vector<std::string> split_line(const std::string& line, char delim) {
  std::vector<std::string> cells;
  std::string cell;
  bool in_quotes = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      in_quotes = true;
    } else if (c == delim) {
      cells.push_back(std::move(cell));
      cell.clear();
    } else {
      cell += c;
    }
  }
  cells.push_back(std::move(cell));
  for (auto& s : cells) {
    const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    s = b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  }
  return cells;
}

// The number in `s`, or nothing if `s` is not entirely one (NaN and inf parse; checked later).
std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (*b == '+') ++b;  // from_chars refuses a leading '+'
  double v = 0;
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p != e) return std::nullopt;
  return v;
}

struct Line {
  int64_t number;  // 1-based, in the file
  std::vector<std::string> cells;
};

// The lines of a delimited file, with its header (if any) taken off.
struct Table {
  std::vector<Line> lines;
  std::vector<std::string> names;  // empty without a header
  bool has_header = false;
  size_t ncols = 0;
};

Table read_table(const std::string& path, const CsvOptions& options, const std::string& op,
                 const std::string& where) {
  ANVIL_CHECK(options.skip_rows >= 0, ValueError, op, ": expected skip_rows >= 0, got ",
              options.skip_rows);
  ANVIL_CHECK(options.delimiter != '"' && options.delimiter != '\n', ValueError, op,
              ": the delimiter cannot be a quote or a newline");
  std::ifstream f(path);
  if (!f) throw IOError(where + ": cannot open the file (" + std::strerror(errno) + ")");
  Table t;
  std::string text;
  for (int64_t number = 1; std::getline(f, text); ++number) {
    if (number <= options.skip_rows) continue;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;  // blank
    t.lines.push_back({number, split_line(text, options.delimiter)});
  }
  if (f.bad()) throw IOError(where + ": cannot read the file");
  ANVIL_CHECK(!t.lines.empty(), ValueError, where, ": holds no data lines");

  t.has_header = options.header == CsvHeader::Yes;
  if (options.header == CsvHeader::Auto)
    for (const auto& c : t.lines.front().cells)
      if (!c.empty() && !parse_number(c)) t.has_header = true;
  if (t.has_header) {
    t.names = t.lines.front().cells;
    t.lines.erase(t.lines.begin());
    ANVIL_CHECK(!t.lines.empty(), ValueError, where, ": holds a header but no data lines");
  }
  t.ncols = t.has_header ? t.names.size() : t.lines.front().cells.size();
  return t;
}

// The 0-based index of `column` in the table; `what` names it in errors ("label column").
int64_t column_index(const Column& column, const Table& t, const std::string& where,
                     const std::string& what) {
  if (column.by_index()) {
    const int64_t i = column.index() < 0 ? column.index() + int64_t(t.ncols) : column.index();
    ANVIL_CHECK(i >= 0 && i < int64_t(t.ncols), IndexError, where, ": ", what, " ", column.index(),
                " is out of range for ", t.ncols, " columns");
    return i;
  }
  ANVIL_CHECK(t.has_header, ValueError, where, ": ", what, " \"", column.name(),
              "\" is given by name, but the file has no header");
  auto it = std::find(t.names.begin(), t.names.end(), column.name());
  if (it == t.names.end()) {
    std::string all;
    for (const auto& n : t.names) all += (all.empty() ? "\"" : ", \"") + n + "\"";
    throw ValueError(where + ": no " + what + " \"" + column.name() +
                     "\" in the header; the columns are " + all);
  }
  return it - t.names.begin();
}

// Every line must have as many cells as the header (or the first line).
void check_width(const Line& line, const Table& t, const std::string& where) {
  if (line.cells.size() != t.ncols)
    throw IOError(anvil::detail::cat(where, ": line ", line.number, " has ", line.cells.size(),
                                     " cells, expected ", t.ncols, " (as line ",
                                     t.lines.front().number, ")"));
}

// Cell c of `line` as a finite number; IOError naming the line and the column otherwise.
double cell_value(const Line& line, size_t c, const Table& t, const std::string& where) {
  const std::string& cell = line.cells[c];
  const std::string col = anvil::detail::cat(
      "column ", c + 1, t.has_header ? " (\"" + t.names[c] + "\")" : std::string());
  const auto v = parse_number(cell);
  if (cell.empty())
    throw IOError(anvil::detail::cat(where, ": line ", line.number, ", ", col, ": empty cell"));
  if (!v)
    throw IOError(anvil::detail::cat(where, ": line ", line.number, ", ", col,
                                     ": expected a number, got \"", cell, "\""));
  if (!std::isfinite(*v))
    throw IOError(anvil::detail::cat(where, ": line ", line.number, ", ", col,
                                     ": expected a finite number, got \"", cell, "\""));
  return *v;
}

}  // namespace

CsvColumns read_csv_columns(const std::string& path, const std::vector<Column>& columns,
                            const CsvOptions& options, const std::string& op) {
  const std::string where = op + ": '" + path + "'";
  ANVIL_CHECK(!columns.empty(), ValueError, op, ": expected at least one column to read, got none");
  const Table t = read_table(path, options, op, where);
  std::vector<int64_t> idx;
  for (const Column& c : columns) idx.push_back(column_index(c, t, where, "column"));
  CsvColumns out;
  for (int64_t i : idx) out.names.push_back(t.has_header ? t.names[size_t(i)] : std::string());
  out.values.assign(idx.size(), std::vector<double>(t.lines.size()));
  for (size_t r = 0; r < t.lines.size(); ++r) {
    const Line& line = t.lines[r];
    check_width(line, t, where);
    for (size_t k = 0; k < idx.size(); ++k)
      out.values[k][r] = cell_value(line, size_t(idx[k]), t, where);
    out.lines.push_back(line.number);
  }
  return out;
}

CsvDataset::CsvDataset(const std::string& path, Column label_column, CsvOptions options) {
  const std::string op = "CsvDataset";
  const std::string where = op + ": '" + path + "'";
  ANVIL_CHECK(is_floating(options.dtype), ValueError, op, ": expected a floating dtype, got ",
              dtype_name(options.dtype));
  const Table t = read_table(path, options, op, where);
  const std::vector<Line>& lines = t.lines;
  const size_t ncols = t.ncols;
  const int64_t label = column_index(label_column, t, where, "label column");
  ANVIL_CHECK(ncols >= 2, ValueError, where,
              ": expected a label column and at least one feature column, got ", ncols, " column",
              ncols == 1 ? "" : "s");

  // Cells.
  const int64_t n = int64_t(lines.size()), nf = int64_t(ncols) - 1;
  std::vector<double> x(static_cast<size_t>(n * nf)), y(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    const Line& line = lines[size_t(r)];
    check_width(line, t, where);
    double* xr = &x[size_t(r * nf)];
    for (size_t c = 0; c < ncols; ++c) {
      const double v = cell_value(line, c, t, where);
      if (int64_t(c) == label)
        y[size_t(r)] = v;
      else
        *xr++ = v;
    }
  }

  features_ = tensor(x, {n, nf}, options.dtype);
  if (t.has_header)
    for (size_t c = 0; c < ncols; ++c)
      if (int64_t(c) != label) feature_names_.push_back(t.names[c]);
  if (!t.has_header) feature_names_.assign(size_t(nf), "");
  if (options.task == Task::Classification) {
    std::vector<int64_t> labels(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r) {
      const double v = y[size_t(r)];
      ANVIL_CHECK(
          v >= 0 && v == std::floor(v) && v < 9.0e15, ValueError, where, ": line ",
          lines[size_t(r)].number, ": a classification label must be a non-negative integer, got ",
          lines[size_t(r)].cells[size_t(label)], " (use Task::Regression for real-valued targets)");
      labels[size_t(r)] = int64_t(v);
      num_classes_ = std::max(num_classes_, labels[size_t(r)] + 1);
    }
    targets_ = tensor(labels, {n});
  } else {
    targets_ = tensor(y, {n}, options.dtype);
  }
}

Example CsvDataset::get(int64_t index) const {
  ANVIL_CHECK(index >= 0 && index < size(), IndexError, "CsvDataset::get: index ", index,
              " is out of range for a dataset of ", size(), " samples");
  return {features_.select(0, index), targets_.select(0, index)};
}

Batch CsvDataset::get_batch(const std::vector<int64_t>& indices) const {
  Tensor idx = detail::index_tensor(indices, size(), "CsvDataset::get_batch");
  return {index_select(features_, 0, idx), index_select(targets_, 0, idx)};
}

}  // namespace anvil::data
