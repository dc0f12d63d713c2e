// `anvil predict`: a CSV of predictions, from a run directory (its test split, or other data
// prepared as the run's was) or from a model file written by `anvil export` (every sample):
//
//   index,prediction,p0,p1,...   classification: the class and each class's probability
//   index,prediction             regression
//   index,prediction[_1,...,_H]  a series run: each held-out window's forecast, in its units
#include <filesystem>
#include <iostream>
#include <sstream>

#include "anvil/anvil.h"
#include "anvil/core/file.h"
#include "tools/commands.h"
#include "tools/series_run.h"

namespace anvil::tools {
namespace {
namespace fs = std::filesystem;

std::string predictions_csv(const Tensor& outputs, bool classification) {
  Tensor out = outputs.to(kFloat32);  // a float16 model's outputs print as float32
  std::ostringstream csv;
  if (classification) {
    Tensor prob = softmax(out, 1), pred = argmax(out, 1);
    auto p = prob.contiguous().to_vector<float>();
    auto c = pred.to_vector<int64_t>();
    const int64_t k = out.size(1);
    csv << "index,prediction";
    for (int64_t j = 0; j < k; ++j) csv << ",p" << j;
    csv << "\n";
    for (size_t i = 0; i < c.size(); ++i) {
      csv << i << ',' << c[i];
      for (int64_t j = 0; j < k; ++j) csv << ',' << p[i * size_t(k) + size_t(j)];
      csv << "\n";
    }
  } else {
    auto v = out.reshape({-1}).to_vector<float>();
    csv << "index,prediction\n";
    for (size_t i = 0; i < v.size(); ++i) csv << i << ',' << v[i] << "\n";
  }
  return csv.str();
}

int write_predictions(const std::string& csv, const std::string& output) {
  if (output.empty() || output == "-")
    std::cout << csv;
  else
    write_file_atomic(output, csv);
  return 0;
}

int predict_run(const PredictArgs& a) {
  ANVIL_CHECK(a.dtype.empty(), ValueError,
              "anvil predict: --dtype applies to --model; a run directory's model runs in float32");
  LoadedRun r = load_run(a.run, a.data, a.label_column, a.skip_rows);
  train::TrainerOptions to;
  to.device = Device(a.device);
  train::Trainer t(r.model, optim::make_optimizer("sgd", r.model->parameters(), 0.0),
                   nn::make_loss("mse"), to);
  data::DataLoader loader(r.data.test, {.batch_size = 512});
  if (r.data.series)
    return write_predictions(forecast_csv(*r.data.series, t.predict(loader)), a.output);
  return write_predictions(predictions_csv(t.predict(loader), r.data.task == "classification"),
                           a.output);
}

std::shared_ptr<nn::Module> open_model_file(const PredictArgs& a) {
  ANVIL_CHECK(!fs::is_directory(a.model), IOError,
              "anvil predict: --model takes a model file, but '", a.model,
              "' is a directory (predict from a run directory with --run, or write its model "
              "file with `anvil export --run ",
              a.model, "`)");
  io::LoadOptions opts;
  opts.device = Device(a.device);
  if (!a.dtype.empty()) opts.dtype = dtype_from_string(a.dtype);
  try {
    return io::load_model(a.model, opts);
  } catch (const IOError& e) {
    throw IOError(detail::cat(
        "anvil predict: --model expects a model file written by `anvil export`; ", e.what()));
  }
}

// The model's outputs for every sample of `inputs`, on the CPU. Floating inputs are cast to
// the model's dtype.
Tensor run_model(nn::Module& model, const std::shared_ptr<data::Dataset>& inputs,
                 const PredictArgs& a, const DataSpec& spec) {
  NoGradGuard no_grad;
  const Device device(a.device);
  std::optional<DType> dtype;
  for (const Tensor& p : model.parameters())
    if (p.is_floating_point()) {
      dtype = p.dtype();
      break;
    }
  data::DataLoader loader(inputs, {.batch_size = 512});
  std::vector<Tensor> outs;
  for (data::Batch& b : loader) {
    Tensor x = b.input.to(device);
    if (dtype && x.is_floating_point()) x = x.to(*dtype);
    try {
      outs.push_back(model(x).cpu());
    } catch (const ShapeError& e) {
      const bool all_columns = spec.source.rfind("csv:", 0) == 0 && spec.label_column.empty();
      throw ShapeError(detail::cat(
          "anvil predict: the model in '", a.model, "' does not take the inputs of ", spec.source,
          " (", to_string(Shape(x.shape().begin() + 1, x.shape().end())),
          " per sample): ", e.what(),
          all_columns ? " (every column is an input; leave a label column out with --label-column)"
                      : ""));
    }
  }
  ANVIL_CHECK(!outs.empty(), ValueError, "anvil predict: ", spec.source, " holds no samples");
  return cat(outs, 0);
}

int predict_model(const PredictArgs& a) {
  std::shared_ptr<nn::Module> model = open_model_file(a);
  DataSpec spec;
  if (!a.data.empty()) spec.source = a.data;
  spec.label_column = a.label_column;
  spec.skip_rows = std::max<int64_t>(a.skip_rows, 0);
  Tensor out = run_model(*model, load_inputs(spec), a, spec);
  // A model file does not say its task: several outputs per sample are class scores.
  const bool classification = out.dim() == 2 && out.size(1) > 1;
  return write_predictions(predictions_csv(out, classification), a.output);
}

}  // namespace

int predict_command(const PredictArgs& a) {
  ANVIL_CHECK(
      a.run.empty() != a.model.empty(), ValueError,
      "anvil predict: give either --run DIR (a run directory) or --model FILE (a model file), ",
      a.run.empty() ? "got neither" : "got both");
  return a.run.empty() ? predict_model(a) : predict_run(a);
}

}  // namespace anvil::tools
