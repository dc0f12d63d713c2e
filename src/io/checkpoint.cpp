#include "anvil/io/checkpoint.h"

#include <cstdint>
#include <cstdio>
#include <map>
#include <type_traits>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/device.h"
#include "anvil/core/error.h"
#include "anvil/core/generator.h"
#include "anvil/io/safetensors.h"
#include "crc32c.h"

namespace anvil::io {
namespace {
using json = nlohmann::json;

const char* kMetaKey = "anvil_checkpoint";
const char* kMetaCrcKey = "anvil_checkpoint_crc32c";

std::string hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

uint32_t tensor_crc(const Tensor& t) {
  NoGradGuard no_grad;
  Tensor c = t.detach().cpu().contiguous();
  return crc32c(c.data_ptr(), size_t(c.numel()) * c.element_size());
}

void add_prefixed(StateDict& out, const StateDict& in, const std::string& prefix) {
  for (const auto& [k, v] : in) out[prefix + k] = v;
}

// The metadata document nests a few levels (history entries); deeper ones are refused before
// they are built, since copying or printing a JSON value recurses once per level.
constexpr int kMaxJsonDepth = 64;

// Field `key` of the metadata document as an integer; IOError (via `damaged`) if it is missing
// or anything else (a float such as 1e300 would not convert).
template <class T, class Damaged>
T integer_field(const json& doc, const char* key, const Damaged& damaged) {
  auto it = doc.find(key);
  const bool ok = it != doc.end() && (std::is_signed_v<T> ? it->is_number_integer()
                                                          : it->is_number_unsigned());
  if (!ok || (std::is_signed_v<T> && it->is_number_unsigned() &&
              it->template get<uint64_t>() > uint64_t(INT64_MAX)))
    throw damaged(std::string("is damaged: '") + key + "' in the checkpoint metadata is " +
                  (it == doc.end() ? std::string("missing") : it->dump().substr(0, 40)) +
                  ", expected " + (std::is_signed_v<T> ? "an integer" : "a non-negative integer"));
  return it->template get<T>();
}

}  // namespace

std::vector<RngState> capture_rng_states() {
  std::vector<RngState> s;
  Generator& cpu = default_generator(kCPU);
  s.push_back({"cpu", cpu.seed(), cpu.offset()});
  for (int i = 0; i < cuda_device_count(); ++i) {
    Device d(DeviceKind::CUDA, i);
    Generator& g = default_generator(d);
    s.push_back({d.str(), g.seed(), g.offset()});
  }
  return s;
}

void restore_rng_states(const std::vector<RngState>& states) {
  const int n_cuda = cuda_device_count();
  for (const auto& st : states) {
    Device d(st.device);
    if (d.is_cuda() && d.index >= n_cuda) continue;
    Generator& g = default_generator(d);
    g.manual_seed(st.seed);
    g.set_offset(st.offset);
  }
}

void save_checkpoint(const Checkpoint& ckpt, const std::string& path) {
  StateDict tensors;
  add_prefixed(tensors, ckpt.model, "model.");
  add_prefixed(tensors, ckpt.optimizer, "optimizer.");
  add_prefixed(tensors, ckpt.scheduler, "scheduler.");
  add_prefixed(tensors, ckpt.scaler, "scaler.");
  add_prefixed(tensors, ckpt.epoch_sums, "epoch.");
  json crcs = json::object();
  for (const auto& [name, t] : tensors) {
    ANVIL_CHECK(t.defined(), ValueError, "save_checkpoint: tensor '", name, "' is undefined");
    crcs[name] = hex32(tensor_crc(t));
  }
  json rng = json::array();
  for (const auto& r : ckpt.rng)
    rng.push_back({{"device", r.device}, {"seed", r.seed}, {"offset", r.offset}});
  json doc = {{"format", kCheckpointFormat},
              {"format_version", kCheckpointVersion},
              {"architecture", ckpt.architecture.empty() ? json(nullptr) : json(ckpt.architecture)},
              {"epoch", ckpt.epoch},
              {"global_step", ckpt.global_step},
              {"loader_epoch", ckpt.loader_epoch},
              {"epoch_batches", ckpt.epoch_batches},
              {"epoch_samples", ckpt.epoch_samples},
              {"rng", rng},
              {"history", ckpt.history},
              {"tensor_crc32c", crcs}};
  std::string text = doc.dump();
  save_safetensors(tensors, path, {{kMetaKey, text}, {kMetaCrcKey, hex32(crc32c(text))}});
}

Checkpoint load_checkpoint(const std::string& path) {
  auto damaged = [&](const std::string& what) {
    return IOError("load_checkpoint: '" + path + "' " + what);
  };
  std::map<std::string, std::string> meta;
  StateDict tensors = load_safetensors(path, &meta);  // throws IOError naming the file
  auto mit = meta.find(kMetaKey);
  if (mit == meta.end())
    throw damaged("is not an anvil checkpoint (its metadata has no '" + std::string(kMetaKey) +
                  "' entry)");
  const std::string& text = mit->second;
  json doc;
  try {
    doc = json::parse(text, [&](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth)
        throw damaged("is damaged: the checkpoint metadata nests deeper than " +
                      std::to_string(kMaxJsonDepth) + " levels");
      return true;
    });
  } catch (const json::exception& e) {
    throw damaged("is damaged: the checkpoint metadata is not JSON (" + std::string(e.what()) + ")");
  }
  if (!doc.is_object() || !doc.contains("format") || doc["format"] != kCheckpointFormat)
    throw damaged("is not an anvil checkpoint (format is not '" + std::string(kCheckpointFormat) +
                  "')");
  if (!doc.contains("format_version") || !doc["format_version"].is_number_integer() ||
      doc["format_version"].get<int64_t>() != kCheckpointVersion)
    throw damaged("has checkpoint format version " +
                  (doc.contains("format_version") ? doc["format_version"].dump().substr(0, 40)
                                                  : std::string("(none)")) +
                  ", but this anvil reads version " + std::to_string(kCheckpointVersion));
  auto cit = meta.find(kMetaCrcKey);
  if (cit == meta.end()) throw damaged("is damaged: the metadata checksum is missing");
  if (cit->second != hex32(crc32c(text)))
    throw damaged("is damaged: checksum mismatch in the metadata (stored " + cit->second +
                  ", computed " + hex32(crc32c(text)) + ")");

  Checkpoint ck;
  try {
    const json& crcs = doc.at("tensor_crc32c");
    for (const auto& [name, t] : tensors) {
      if (!crcs.contains(name)) throw damaged("is damaged: unexpected tensor " + name);
      std::string got = hex32(tensor_crc(t));
      if (crcs.at(name).get<std::string>() != got)
        throw damaged("is damaged: checksum mismatch in tensor " + name + " (stored " +
                      crcs.at(name).get<std::string>() + ", computed " + got + ")");
    }
    for (const auto& [name, _] : crcs.items())
      if (!tensors.count(name)) throw damaged("is damaged: tensor " + name + " is missing");

    for (auto& [name, t] : tensors) {
      for (auto [prefix, dst] : {std::pair{std::string("model."), &ck.model},
                                 std::pair{std::string("optimizer."), &ck.optimizer},
                                 std::pair{std::string("scheduler."), &ck.scheduler},
                                 std::pair{std::string("scaler."), &ck.scaler},
                                 std::pair{std::string("epoch."), &ck.epoch_sums}}) {
        if (name.compare(0, prefix.size(), prefix) == 0) {
          (*dst)[name.substr(prefix.size())] = t;
          break;
        }
      }
    }
    if (doc.at("architecture").is_string()) ck.architecture = doc["architecture"].get<std::string>();
    ck.epoch = integer_field<int64_t>(doc, "epoch", damaged);
    ck.global_step = integer_field<int64_t>(doc, "global_step", damaged);
    ck.loader_epoch = integer_field<int64_t>(doc, "loader_epoch", damaged);
    // Written since mid-epoch checkpoints exist; older files are at an epoch's end.
    if (doc.contains("epoch_batches")) {
      ck.epoch_batches = integer_field<int64_t>(doc, "epoch_batches", damaged);
      ck.epoch_samples = integer_field<int64_t>(doc, "epoch_samples", damaged);
    }
    if (!doc.at("rng").is_array())
      throw damaged("is damaged: 'rng' in the checkpoint metadata is not a list");
    for (const auto& r : doc.at("rng")) {
      if (!r.is_object())
        throw damaged("is damaged: an 'rng' entry in the checkpoint metadata is not an object");
      ck.rng.push_back({r.at("device").get<std::string>(),
                        integer_field<uint64_t>(r, "seed", damaged),
                        integer_field<uint64_t>(r, "offset", damaged)});
    }
    ck.history = doc.at("history");
  } catch (const json::exception& e) {
    throw damaged("is damaged: bad checkpoint metadata (" + std::string(e.what()) + ")");
  }
  return ck;
}

}  // namespace anvil::io
