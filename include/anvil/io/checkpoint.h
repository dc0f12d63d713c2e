// Training checkpoints: one safetensors file holding everything needed to continue a run
// exactly where it stopped.
//
// Tensors: the model's state dict under "model.", the optimizer's under "optimizer.", the
// LR scheduler's (when there is one) under "scheduler.", the loss scaler's under "scaler.",
// the running sums of an epoch saved midway under "epoch.". The safetensors __metadata__
// holds two entries: "anvil_checkpoint", a JSON document
//
//   {"format": "anvil-checkpoint", "format_version": 1, "architecture": <string or null>,
//    "epoch": 3, "global_step": 48, "loader_epoch": 3,
//    "epoch_batches": 0, "epoch_samples": 0,         (optional: absent means 0)
//    "rng": [{"device": "cpu", "seed": 3, "offset": 120}, {"device": "cuda:0", ...}],
//    "history": [...History::to_json()...],
//    "tensor_crc32c": {"model.0.weight": "e3069283", ...}}
//
// and "anvil_checkpoint_crc32c", the CRC-32C (8 hex digits) of that document's exact bytes.
// Every tensor's raw little-endian bytes are checksummed, so loading never hands back
// damaged weights: it throws IOError naming the file and what is wrong.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "anvil/core/state_dict.h"

namespace anvil::io {

inline constexpr const char* kCheckpointFormat = "anvil-checkpoint";
inline constexpr int64_t kCheckpointVersion = 1;

// The (seed, offset) of one default generator.
struct RngState {
  std::string device;  // "cpu", "cuda:0", ...
  uint64_t seed = 0;
  uint64_t offset = 0;
};

struct Checkpoint {
  StateDict model;
  StateDict optimizer;
  StateDict scheduler;          // empty: no scheduler
  StateDict scaler;             // the loss scaler's state (amp::GradScaler); empty: none
  // The epoch in progress when saved mid-epoch (all empty/0 at an epoch's end): the running
  // sums of its loss and correct predictions ("loss_sum", "correct_sum"), and how many of
  // its batches and samples were done.
  StateDict epoch_sums;
  int64_t epoch_batches = 0;
  int64_t epoch_samples = 0;
  std::string architecture;     // a ModelBuilder JSON document, or empty
  int64_t epoch = 0;            // epochs completed
  int64_t global_step = 0;      // optimizer steps taken
  int64_t loader_epoch = 0;     // the epoch the training DataLoader's next pass uses
  std::vector<RngState> rng;    // the default generators
  nlohmann::json history = nlohmann::json::array();  // History::to_json()
};

// The default generators' states: the CPU's, and each CUDA device's when CUDA is available.
std::vector<RngState> capture_rng_states();
// Sets the default generators back; states of CUDA devices this machine lacks are ignored.
void restore_rng_states(const std::vector<RngState>& states);

// Writes `ckpt` to `path` atomically (temporary file, fsync, rename): a crash leaves either
// the previous file or the new one. Throws IOError naming the file.
void save_checkpoint(const Checkpoint& ckpt, const std::string& path);

// Reads and verifies a checkpoint (tensors on the CPU). Throws IOError naming the file and
// the damage: not a safetensors file, truncated, not an anvil checkpoint, an unsupported
// format version, a metadata checksum mismatch, a tensor missing, unexpected or whose
// checksum does not match ("checksum mismatch in tensor model.0.weight").
Checkpoint load_checkpoint(const std::string& path);

}  // namespace anvil::io
