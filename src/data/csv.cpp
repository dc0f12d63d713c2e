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

}  // namespace

CsvDataset::CsvDataset(const std::string& path, Column label_column, CsvOptions options) {
  const std::string op = "CsvDataset";
  const std::string where = op + ": '" + path + "'";
  ANVIL_CHECK(is_floating(options.dtype), ValueError, op, ": expected a floating dtype, got ",
              dtype_name(options.dtype));
  ANVIL_CHECK(options.skip_rows >= 0, ValueError, op, ": expected skip_rows >= 0, got ",
              options.skip_rows);
  ANVIL_CHECK(options.delimiter != '"' && options.delimiter != '\n', ValueError, op,
              ": the delimiter cannot be a quote or a newline");

  std::ifstream f(path);
  if (!f) throw IOError(where + ": cannot open the file (" + std::strerror(errno) + ")");
  std::vector<Line> lines;
  std::string text;
  for (int64_t number = 1; std::getline(f, text); ++number) {
    if (number <= options.skip_rows) continue;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;  // blank
    lines.push_back({number, split_line(text, options.delimiter)});
  }
  if (f.bad()) throw IOError(where + ": cannot read the file");
  ANVIL_CHECK(!lines.empty(), ValueError, where, ": holds no data lines");

  // Header.
  bool has_header = options.header == CsvHeader::Yes;
  if (options.header == CsvHeader::Auto)
    for (const auto& c : lines.front().cells)
      if (!c.empty() && !parse_number(c)) has_header = true;
  std::vector<std::string> names;
  if (has_header) {
    names = lines.front().cells;
    lines.erase(lines.begin());
    ANVIL_CHECK(!lines.empty(), ValueError, where, ": holds a header but no data lines");
  }
  const size_t ncols = has_header ? names.size() : lines.front().cells.size();
  const int64_t first_line = lines.front().number;

  // Label column.
  int64_t label = 0;
  if (label_column.by_index()) {
    label = label_column.index() < 0 ? label_column.index() + int64_t(ncols) : label_column.index();
    ANVIL_CHECK(label >= 0 && label < int64_t(ncols), IndexError, where, ": label column ",
                label_column.index(), " is out of range for ", ncols, " columns");
  } else {
    ANVIL_CHECK(has_header, ValueError, where, ": label column \"", label_column.name(),
                "\" is given by name, but the file has no header");
    auto it = std::find(names.begin(), names.end(), label_column.name());
    if (it == names.end()) {
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "\"" : ", \"") + n + "\"";
      throw ValueError(where + ": no label column \"" + label_column.name() +
                       "\" in the header; the columns are " + all);
    }
    label = it - names.begin();
  }
  ANVIL_CHECK(ncols >= 2, ValueError, where,
              ": expected a label column and at least one feature column, got ", ncols, " column",
              ncols == 1 ? "" : "s");

  // Cells.
  const int64_t n = int64_t(lines.size()), nf = int64_t(ncols) - 1;
  std::vector<double> x(static_cast<size_t>(n * nf)), y(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    const Line& line = lines[size_t(r)];
    if (line.cells.size() != ncols)
      throw IOError(anvil::detail::cat(where, ": line ", line.number, " has ", line.cells.size(),
                                       " cells, expected ", ncols, " (as line ", first_line, ")"));
    double* xr = &x[size_t(r * nf)];
    for (size_t c = 0; c < ncols; ++c) {
      const std::string& cell = line.cells[c];
      const std::string col = anvil::detail::cat(
          "column ", c + 1, has_header ? " (\"" + names[c] + "\")" : std::string());
      const auto v = parse_number(cell);
      if (cell.empty())
        throw IOError(anvil::detail::cat(where, ": line ", line.number, ", ", col, ": empty cell"));
      if (!v)
        throw IOError(anvil::detail::cat(where, ": line ", line.number, ", ", col,
                                         ": expected a number, got \"", cell, "\""));
      if (!std::isfinite(*v))
        throw IOError(anvil::detail::cat(where, ": line ", line.number, ", ", col,
                                         ": expected a finite number, got \"", cell, "\""));
      if (int64_t(c) == label)
        y[size_t(r)] = *v;
      else
        *xr++ = *v;
    }
  }

  features_ = tensor(x, {n, nf}, options.dtype);
  if (has_header)
    for (size_t c = 0; c < ncols; ++c)
      if (int64_t(c) != label) feature_names_.push_back(names[c]);
  if (!has_header) feature_names_.assign(size_t(nf), "");
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
