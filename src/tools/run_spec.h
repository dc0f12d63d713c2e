// What the `anvil` program needs to rebuild a run: the data it trained on, the model's
// architecture and its weights, kept together in an output directory:
//   DIR/model.json          the architecture (ModelBuilder JSON)
//   DIR/weights.safetensors the state dict (PyTorch names)
//   DIR/run.json            task, classes, feature scaling, data source
//   DIR/history.csv|json    the per-epoch history
//   DIR/checkpoint.safetensors  written after every epoch (anvil train --resume)
//   DIR/model.anvil         the model file `anvil export` writes (io::load_model reads it)
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "anvil/anvil.h"

namespace anvil::tools {

// A data source named on the command line: "fashion-mnist", "csv:PATH" or "series:PATH".
struct DataSpec {
  std::string source = "fashion-mnist";
  std::string label_column;  // CSV: name or index ("" = last); series: the target
  // series: the columns of a window (none = the target alone).
  std::vector<std::string> input_columns;
  int64_t window = 64;               // series: rows per input window
  int64_t horizon = 1;               // series: values forecast after each window
  std::string task = "auto";         // classification, regression, or auto (from the source)
  double test_fraction = 0.2;        // CSV: held-out share
  int64_t skip_rows = 0;             // CSV: lines to skip before the header
  uint64_t seed = 0;
};

// Training and test sets, with what a model needs to know about them.
struct LoadedData {
  std::shared_ptr<data::Dataset> train, test;
  Shape sample_shape;             // one input, without the batch dim
  std::string task;               // "classification" or "regression"
  int64_t num_classes = 0;        // classification only
  Tensor feature_mean, feature_std;  // CSV features are standardised with these (train stats)
  int64_t outputs = 1;               // regression: values per sample (a series' horizon)
  std::shared_ptr<const data::SeriesSplit> series;  // series:PATH: the windows and their scaling
};

// Loads the data; with `scaling` (from a saved run) CSV features (and a series) use those
// statistics.
LoadedData load_data(const DataSpec& spec, const nlohmann::json* scaling = nullptr);

// A model preset ("mlp", "cnn", "linear"; "lstm" and "gru" for a series) or a JSON
// architecture file, for the data.
nn::ModelBuilder make_architecture(const std::string& model, const LoadedData& data);

nlohmann::json data_json(const DataSpec& spec, const LoadedData& data);
DataSpec data_spec_from_json(const nlohmann::json& j);

// Every sample of a data source as model inputs, unscaled and unsplit: the Fashion-MNIST test
// set, or each row of csv:PATH without spec.label_column ("" = every column is an input).
// The targets are the labels (CSV: zeros without a label column).
std::shared_ptr<data::Dataset> load_inputs(const DataSpec& spec);

// DIR/run.json. Throws IOError naming the file when it is missing, ValueError when it is
// not JSON.
nlohmann::json read_run_json(const std::string& dir);

// A run directory brought back: its run.json, its data and its model with the final weights
// (those of the last checkpoint when the run was interrupted).
// A non-empty `source` or `label_column`, or a `skip_rows` >= 0, replaces the run's (the test
// split of that data is then the test set).
struct LoadedRun {
  nlohmann::json run;
  LoadedData data;
  std::shared_ptr<nn::Sequential> model;
};
LoadedRun load_run(const std::string& dir, const std::string& source = "",
                   const std::string& label_column = "", int64_t skip_rows = -1);

}  // namespace anvil::tools
