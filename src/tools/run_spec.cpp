#include "tools/run_spec.h"

#include <filesystem>

#include "anvil/core/file.h"
#include "tools/series_run.h"

namespace anvil::tools {
namespace {
using json = nlohmann::json;

std::vector<double> to_doubles(const Tensor& t) { return t.to(kFloat64).contiguous().to_vector<double>(); }

// A label column by name, or by index when it is a number ("" = the last column).
data::Column column_of(const std::string& s) {
  if (s.empty()) return data::Column(int64_t(-1));
  if (s.find_first_not_of("-0123456789") == std::string::npos)
    return data::Column(int64_t(std::stoll(s)));
  return data::Column(s);
}

bool is_fashion_mnist(const std::string& source) {
  return source == "fashion-mnist" || source == "mnist-fashion";
}

}  // namespace

LoadedData load_data(const DataSpec& spec, const json* scaling) {
  LoadedData d;
  if (is_fashion_mnist(spec.source)) {
    d.train = std::make_shared<data::FashionMNIST>(data::FashionMNIST::kDefaultRoot, true);
    d.test = std::make_shared<data::FashionMNIST>(data::FashionMNIST::kDefaultRoot, false);
    d.sample_shape = {1, 28, 28};
    d.task = "classification";
    d.num_classes = 10;
    ANVIL_CHECK(spec.task == "auto" || spec.task == "classification", ValueError,
                "anvil: fashion-mnist is a classification dataset, not ", spec.task);
    return d;
  }
  if (is_series_source(spec.source)) return load_series(spec, scaling);
  ANVIL_CHECK(spec.source.rfind("csv:", 0) == 0, ValueError, "anvil: unknown data source '",
              spec.source, "' (expected fashion-mnist, csv:PATH or series:PATH)");
  std::string path = spec.source.substr(4);
  data::CsvOptions opts;
  d.task = spec.task == "auto" ? "classification" : spec.task;
  ANVIL_CHECK(d.task == "classification" || d.task == "regression", ValueError,
              "anvil: --task must be classification or regression, got ", spec.task);
  opts.task = d.task == "regression" ? data::Task::Regression : data::Task::Classification;
  opts.skip_rows = spec.skip_rows;
  data::CsvDataset csv(path, column_of(spec.label_column), opts);
  Tensor x = csv.features(), y = csv.targets();
  // Standardise features with the training statistics so that any optimizer behaves.
  auto [train_idx, test_idx] = data::train_test_split(
      std::make_shared<data::TensorDataset>(x, y), spec.test_fraction, spec.seed);
  if (scaling) {
    d.feature_mean = tensor(scaling->at("mean").get<std::vector<double>>()).to(x.dtype());
    d.feature_std = tensor(scaling->at("std").get<std::vector<double>>()).to(x.dtype());
  } else {
    Tensor tx = index_select(x, 0, tensor(train_idx->indices()));
    d.feature_mean = mean(tx, {0});
    d.feature_std = clamp_min(std_dev(tx, {0}, 0), 1e-8);
  }
  Tensor xs = div(sub(x, d.feature_mean), d.feature_std);
  auto all = std::make_shared<data::TensorDataset>(xs, y);
  d.train = std::make_shared<data::Subset>(all, train_idx->indices());
  d.test = std::make_shared<data::Subset>(all, test_idx->indices());
  d.sample_shape = {x.size(1)};
  if (d.task == "classification") d.num_classes = max(y).item<int64_t>() + 1;
  return d;
}

nn::ModelBuilder make_architecture(const std::string& model, const LoadedData& data) {
  Shape input{1};
  input.insert(input.end(), data.sample_shape.begin(), data.sample_shape.end());
  const int64_t outputs = data.task == "classification" ? data.num_classes : data.outputs;
  nn::ModelBuilder b(input);
  if (model == "mlp") {
    if (input.size() > 2) b.flatten();
    b.dense(256).relu().dropout(0.2).dense(128).relu().dense(outputs);
  } else if (model == "linear") {
    if (input.size() > 2) b.flatten();
    b.dense(outputs);
  } else if (model == "cnn") {
    ANVIL_CHECK(input.size() == 4, ValueError,
                "anvil: the cnn preset needs image inputs [C, H, W], the data gives ",
                to_string(data.sample_shape));
    b.conv2d(32, 3, 1, 1).relu().maxpool2d(2).conv2d(64, 3, 1, 1).relu().maxpool2d(2);
    b.flatten().dense(128).relu().dropout(0.3).dense(outputs);
  } else if (model == "lstm" || model == "gru") {
    // A series' window [T, F]: one recurrent layer, its last state -> the horizon's values.
    ANVIL_CHECK(input.size() == 3, ValueError, "anvil: the ", model,
                " preset needs sequence inputs [T, F] (--data series:PATH), the data gives ",
                to_string(data.sample_shape));
    b.recurrent(model, 64, 1, false, "last_state").dense(outputs);
  } else if (std::filesystem::exists(model)) {
    b = nn::ModelBuilder::load(model);
    Shape want(input.begin() + 1, input.end()), got(b.input_shape().begin() + 1, b.input_shape().end());
    ANVIL_CHECK(want == got, ShapeError, "anvil: the architecture in '", model,
                "' takes inputs of shape ", to_string(got), " but the data has ", to_string(want));
  } else {
    throw ValueError(
        "anvil: unknown model '" + model +
        "' (expected a preset: mlp, cnn, linear, lstm, gru; or a JSON architecture file)");
  }
  return b;
}

json data_json(const DataSpec& spec, const LoadedData& data) {
  json j = {{"source", spec.source}, {"label_column", spec.label_column}, {"task", data.task},
            {"test_fraction", spec.test_fraction}, {"skip_rows", spec.skip_rows}, {"seed", spec.seed}, {"num_classes", data.num_classes},
            {"sample_shape", data.sample_shape}};
  if (data.series) {
    j["window"] = spec.window;
    j["horizon"] = spec.horizon;
    j["input_columns"] = spec.input_columns;
    j["scaling"] = series_scaling_json(data.series->scaling);
  }
  if (data.feature_mean.defined())
    j["scaling"] = {{"mean", to_doubles(data.feature_mean)}, {"std", to_doubles(data.feature_std)}};
  return j;
}

DataSpec data_spec_from_json(const json& j) {
  DataSpec s;
  s.source = j.at("source").get<std::string>();
  s.label_column = j.value("label_column", std::string());
  s.task = j.value("task", std::string("auto"));
  s.test_fraction = j.value("test_fraction", 0.2);
  s.skip_rows = j.value("skip_rows", int64_t(0));
  s.seed = j.value("seed", uint64_t(0));
  s.window = j.value("window", s.window);
  s.horizon = j.value("horizon", s.horizon);
  s.input_columns = j.value("input_columns", std::vector<std::string>{});
  return s;
}

std::shared_ptr<data::Dataset> load_inputs(const DataSpec& spec) {
  if (is_fashion_mnist(spec.source))
    return std::make_shared<data::FashionMNIST>(data::FashionMNIST::kDefaultRoot, false);
  ANVIL_CHECK(spec.source.rfind("csv:", 0) == 0, ValueError, "anvil: unknown data source '",
              spec.source, "' (expected fashion-mnist or csv:PATH)");
  data::CsvOptions opts;
  opts.task = data::Task::Regression;  // any number may stand in the left-out column
  opts.skip_rows = spec.skip_rows;
  // Without a label column the last column is read as the "label" and put back.
  data::CsvDataset csv(spec.source.substr(4), column_of(spec.label_column), opts);
  Tensor x = csv.features();
  if (spec.label_column.empty())
    return std::make_shared<data::TensorDataset>(cat({x, csv.targets().unsqueeze(1)}, 1),
                                                 zeros({x.size(0)}));
  return std::make_shared<data::TensorDataset>(x, csv.targets());
}

json read_run_json(const std::string& dir) {
  std::string text = read_file(dir + "/run.json");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw ValueError(detail::cat("anvil: '", dir, "/run.json' is not valid JSON: ", e.what()));
  }
}

LoadedRun load_run(const std::string& dir, const std::string& source,
                   const std::string& label_column, int64_t skip_rows) {
  LoadedRun r;
  r.run = read_run_json(dir);
  DataSpec spec = data_spec_from_json(r.run.at("data"));
  if (!source.empty()) spec.source = source;
  if (!label_column.empty()) spec.label_column = label_column;
  if (skip_rows >= 0) spec.skip_rows = skip_rows;
  const json* scaling = r.run["data"].contains("scaling") ? &r.run["data"]["scaling"] : nullptr;
  r.data = load_data(spec, scaling);
  r.model = nn::ModelBuilder::load(dir + "/model.json").build();
  // An interrupted run has no final weights yet: its last checkpoint stands in.
  const std::string weights = detail::cat(dir, "/weights.safetensors");
  const std::string ckpt = detail::cat(dir, "/checkpoint.safetensors");
  r.model->load_state_dict(!std::filesystem::exists(weights) && std::filesystem::exists(ckpt)
                               ? io::load_checkpoint(ckpt).model
                               : io::load_safetensors(weights));
  return r;
}

}  // namespace anvil::tools
