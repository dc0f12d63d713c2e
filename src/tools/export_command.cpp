// `anvil export`: a training run, finished or interrupted, as one file for inference.
//
// The weights and architecture come from the run's checkpoint.safetensors (written after every
// epoch, so an interrupted run exports its last finished epoch), or from model.json and
// weights.safetensors when there is no checkpoint. A CSV run standardised its features with
// the training statistics (run.json); that step is folded into the exported model so that it
// takes raw features, as `anvil predict --model` and io::load_model users will give it.
#include <cmath>
#include <filesystem>
#include <iostream>

#include "anvil/anvil.h"
#include "anvil/core/file.h"
#include "anvil/text/tokenizer.h"
#include "tools/commands.h"

namespace anvil::tools {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// What an export starts from.
struct Source {
  std::string name;       // for messages: "run 'DIR'" or "checkpoint 'FILE'"
  std::string arch_json;  // io::Architecture text ("" = none)
  StateDict weights;
  int64_t epoch = -1;   // epochs completed (-1: unknown)
  std::string run_dir;  // the run whose run.json describes the data ("" = none)
};

Source from_checkpoint(const std::string& path, const std::string& name) {
  io::Checkpoint c;
  try {
    c = io::load_checkpoint(path);
  } catch (const IOError& e) {
    throw IOError(
        detail::cat("anvil export: expected a checkpoint written by `anvil train` or "
                    "Trainer::save_checkpoint; ",
                    e.what()));
  }
  Source s;
  s.name = name;
  s.arch_json = c.architecture;
  s.weights = std::move(c.model);
  s.epoch = c.epoch;
  return s;
}

Source read_source(const ExportArgs& a) {
  ANVIL_CHECK(a.run.empty() != a.checkpoint.empty(), ValueError,
              "anvil export: give either --run DIR (a run directory) or --checkpoint FILE, ",
              a.run.empty() ? "got neither" : "got both");
  Source s;
  if (!a.checkpoint.empty()) {
    s = from_checkpoint(a.checkpoint, detail::cat("checkpoint '", a.checkpoint, "'"));
    // A checkpoint inside a run directory: that run's data preparation applies.
    fs::path dir = fs::path(a.checkpoint).parent_path();
    if (dir.empty()) dir = ".";
    if (fs::exists(dir / "run.json")) s.run_dir = dir.string();
  } else {
    const fs::path dir(a.run);
    ANVIL_CHECK(fs::is_directory(dir), IOError, "anvil export: run directory '", a.run, "' ",
                fs::exists(dir) ? "is not a directory" : "does not exist",
                " (expected a directory written by `anvil train --output DIR`)");
    const std::string name = detail::cat("run '", a.run, "'");
    if (fs::exists(dir / "checkpoint.safetensors")) {
      s = from_checkpoint((dir / "checkpoint.safetensors").string(), name);
    } else {
      ANVIL_CHECK(
          fs::exists(dir / "weights.safetensors"), IOError, "anvil export: '", a.run,
          "' holds neither checkpoint.safetensors nor weights.safetensors: no weights to export "
          "(expected a directory written by `anvil train --output DIR`)");
      s.name = name;
      s.weights = io::load_safetensors((dir / "weights.safetensors").string());
    }
    if (s.arch_json.empty() && fs::exists(dir / "model.json"))
      s.arch_json = read_file((dir / "model.json").string());
    if (fs::exists(dir / "run.json")) s.run_dir = a.run;
  }
  if (!a.architecture.empty()) s.arch_json = read_file(a.architecture);
  ANVIL_CHECK(
      !s.arch_json.empty(), ValueError, "anvil export: ", s.name,
      " holds no architecture (saved without Trainer::set_architecture); give its ModelBuilder "
      "JSON with --architecture FILE");
  return s;
}

io::Architecture parse_architecture(const Source& s) {
  try {
    return io::Architecture::parse(s.arch_json);
  } catch (const ValueError& e) {
    throw ValueError(
        detail::cat("anvil export: the architecture of ", s.name, " is damaged: ", e.what()));
  }
}

// "3.weight" -> "4.weight": the keys of a Sequential after a layer is put in front.
StateDict shift_layers(const StateDict& w) {
  StateDict out;
  for (const auto& [k, v] : w) {
    size_t dot = k.find('.');
    out[detail::cat(std::stoll(k.substr(0, dot)) + 1, k.substr(dot))] = v;
  }
  return out;
}

// Makes the model compute f((x - mean) / std) from raw x, where f is the trained model.
// A first dense layer (after dropouts, the identity at inference) absorbs it exactly:
// W' = W / std, b' = b - W' mean. Otherwise an eval-mode batchnorm in front does it:
// running_mean = mean, running_var = std^2, weight = sqrt(std^2 + eps) / std, bias = 0.
// Returns the layer that now standardises.
std::string fold_scaling(json& arch, StateDict& w, const json& scaling) {
  Tensor m = tensor(scaling.at("mean").get<std::vector<double>>());
  Tensor sd = tensor(scaling.at("std").get<std::vector<double>>());
  json& layers = arch.at("layers");
  size_t i = 0;
  while (i < layers.size() && layers[i].value("type", "") == "dropout") ++i;
  if (i < layers.size() && layers[i].value("type", "") == "dense") {
    const std::string key = std::to_string(i);
    const Tensor weight = w.at(detail::cat(key, ".weight"));
    ANVIL_CHECK(weight.dim() == 2 && weight.size(1) == m.size(0), ShapeError,
                "anvil export: layer ", key, " takes ", weight.size(-1),
                " features but the run's scaling has ", m.size(0));
    auto bias = w.find(detail::cat(key, ".bias"));
    Tensor w64 = div(weight.to(kFloat64), sd.unsqueeze(0));
    Tensor b64 = bias != w.end() ? bias->second.to(kFloat64) : zeros({weight.size(0)}, kFloat64);
    b64 = sub(b64, sum(mul(w64, m.unsqueeze(0)), {1}));
    w[detail::cat(key, ".weight")] = w64.to(weight.dtype());
    w[detail::cat(key, ".bias")] = b64.to(weight.dtype());
    layers[i]["bias"] = true;  // the shift needs one
    return detail::cat("layer ", key, " (dense)");
  }
  const double eps = 1e-5;
  w = shift_layers(w);
  layers.insert(layers.begin(), json{{"type", "batchnorm"}, {"eps", eps}, {"momentum", 0.1}});
  Tensor var = mul(sd, sd);
  w["0.running_mean"] = m.to(kFloat32);
  w["0.running_var"] = var.to(kFloat32);
  w["0.weight"] = div(sqrt(add(var, eps)), sd).to(kFloat32);
  w["0.bias"] = zeros({m.size(0)});
  w["0.num_batches_tracked"] = zeros({}, kInt64);
  return "a batchnorm layer put in front (layer 0)";
}

std::string default_output(const ExportArgs& a) {
  const fs::path dir = a.run.empty() ? fs::path(a.checkpoint).parent_path() : fs::path(a.run);
  return (dir / (a.format == "safetensors" ? "model.safetensors" : "model.anvil")).string();
}

}  // namespace

int export_command(const ExportArgs& a) {
  ANVIL_CHECK(a.format == "anvil" || a.format == "safetensors", ValueError,
              "anvil export: --format must be anvil or safetensors, got '", a.format, "'");
  Source s = read_source(a);
  io::Architecture arch = parse_architecture(s);
  std::string folded;
  if (!s.run_dir.empty()) {
    json run = read_run_json(s.run_dir);
    // Folding would have to scale the windows going in and unscale the forecast coming out.
    ANVIL_CHECK(!run.contains("data") || !run["data"].contains("window"), ValueError,
                "anvil export: ", s.name,
                " forecasts a series from standardised windows, which a model file cannot take in "
                "yet; use the run directory (`anvil eval|predict --run`), or the checkpoint with "
                "the statistics in its run.json's data.scaling");
    if (run.contains("data") && run["data"].contains("scaling")) {
      ANVIL_CHECK(
          !arch.is_registered(), ValueError, "anvil export: ", s.name,
          " standardised its features, which only a ModelBuilder architecture can take in; ",
          "its architecture is the module ", arch.json().at("module"));
      json spec = arch.json();
      folded = fold_scaling(spec, s.weights, run["data"]["scaling"]);
      arch = io::Architecture::parse(spec.dump());
    }
  }
  // Built in the dtype to write, so that loading the weights rounds them once.
  std::optional<DType> dtype;
  if (!a.dtype.empty()) dtype = dtype_from_string(a.dtype);
  for (const auto& [k, v] : s.weights)
    if (!dtype && v.is_floating_point()) dtype = v.dtype();
  auto model = arch.build();
  if (dtype) model->to(*dtype);
  try {
    model->load_state_dict(s.weights);
  } catch (const Error& e) {
    throw ValueError(detail::cat("anvil export: the weights of ", s.name,
                                 " do not fit its architecture: ", e.what()));
  }
  const std::string out = a.output.empty() ? default_output(a) : a.output;
  if (fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
  // A language model's run carries its tokenizer into the file.
  io::ModelFileExtras extras;
  if (!s.run_dir.empty() && fs::exists(fs::path(s.run_dir) / "tokenizer.json"))
    extras.tokenizer = text::load_tokenizer(s.run_dir + "/tokenizer.json")->to_json().dump();
  if (a.format == "anvil")
    io::save_model(arch, *model, out, extras);
  else
    io::save_safetensors(model->state_dict(), out, {{"format", "pt"}});

  std::cout << "exported " << s.name;
  if (s.epoch >= 0) std::cout << " (after epoch " << s.epoch << ")";
  std::cout << " to " << out << ": "
            << (a.format == "anvil" ? "anvil model file" : "safetensors weights") << ", "
            << model->num_parameters() << " parameters, " << dtype_name(dtype.value_or(kFloat32))
            << "\n";
  if (!folded.empty())
    std::cout << "the run's feature standardisation is folded into " << folded
              << ": the model takes raw features\n";
  return 0;
}

}  // namespace anvil::tools
