// Writes the seed corpora of the fuzz targets into <dir>/safetensors, <dir>/checkpoint and
// <dir>/tokenizer —
// valid files made by anvil's own writers, so the seeds follow the formats as they change —
// and, into <dir>/regressions/<target>, inputs that once crashed or exhausted a reader, replayed
// before each fuzzing run.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "anvil/core/file.h"
#include "anvil/io/checkpoint.h"
#include "anvil/io/safetensors.h"
#include "anvil/text/bpe_tokenizer.h"
#include "anvil/text/byte_tokenizer.h"
#include "sample_checkpoint.h"

namespace fs = std::filesystem;
using namespace anvil;

namespace {
void put(const fs::path& file, const std::string& bytes) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
}

// A safetensors file with this header text and data, however wrong they are.
std::string safetensors_file(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

void write_regressions(const fs::path& dir, const std::string& document) {
  const fs::path st = dir / "safetensors", ck = dir / "checkpoint";
  fs::create_directories(st);
  fs::create_directories(ck);
  // Strides are products of trailing dimensions: they overflowed int64 next to a 0 dimension.
  put(st / "shape-overflow",
      safetensors_file(R"({"x":{"dtype":"F32","shape":[0,4294967296,4294967296,4294967296],)"
                       R"("data_offsets":[0,0]}})"));
  // A dimension beyond int64 became negative: ValueError from empty(), not IOError.
  put(st / "dimension-beyond-int64",
      safetensors_file(
          R"({"x":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]}})"));
  // 3000 tensors over the same 1 MiB: 3 GiB allocated before the overlap was noticed.
  std::string header = "{";
  for (int i = 0; i < 3000; ++i)
    header += (i ? "," : "") + std::string("\"t") + std::to_string(i) +
              R"(":{"dtype":"U8","shape":[1048576],"data_offsets":[0,1048576]})";
  put(st / "overlap-amplification", safetensors_file(header + "}", std::string(1 << 20, '\0')));
  // Printing the bad shape in the error message recursed once per level: a stack overflow.
  put(st / "deep-nesting", safetensors_file(R"({"x":{"dtype":"F32","shape":)" + nested(100000) +
                                            R"(,"data_offsets":[0,0]}})"));
  // Checkpoint documents (mode byte 1): a float where an integer belongs (undefined behaviour
  // converting it), a history nested too deep to copy, and bytes that are not UTF-8.
  auto doc = nlohmann::json::parse(document);
  doc["epoch"] = 1e300;
  put(ck / "epoch-1e300", "\1" + doc.dump());
  std::string deep = document;
  const std::string history = "\"history\":[";
  deep.insert(deep.find(history) + history.size(), nested(100000) + ",");
  put(ck / "deep-history", "\1" + deep);
  put(ck / "not-utf8", "\1" + document + "\xff");
}

// The tokenizer target's inputs: mode byte 0 + an anvil document, 1 + vocab.json NUL merges.txt.
void write_tokenizer_seeds(const fs::path& dir, const fs::path& regressions) {
  fs::create_directories(dir);
  fs::create_directories(regressions);
  const std::string doc = std::string(1, '\0'), gpt2 = std::string(1, '\1');
  put(dir / "byte.json", doc + text::ByteTokenizer({"<|endoftext|>", "<|pad|>"}).to_json().dump());
  const text::BPETokenizer bpe = text::BPETokenizer::train(
      "The cat's hat sat on the mat; 3 cats, 42 hats. Ωμέγα naïve 日本語  \n\n the end.", 300,
      {.special_tokens = {"<|endoftext|>"}});
  put(dir / "bpe.json", doc + bpe.to_json().dump());
  const fs::path scratch = dir / "scratch-gpt2";
  bpe.save_gpt2_files(scratch.string());
  const std::string vocab = read_file((scratch / "vocab.json").string());
  const std::string merges = read_file((scratch / "merges.txt").string());
  fs::remove_all(scratch);
  put(dir / "gpt2.bin", gpt2 + vocab + std::string(1, '\0') + merges);
  // Regressions: a document nested a million levels deep (the parser's depth limit), and ids
  // at the edges of int64 in vocab.json.
  put(regressions / "deep-nesting", doc + std::string(1000000, '[') + std::string(1000000, ']'));
  put(regressions / "huge-ids", gpt2 + R"({"a": 9223372036854775807, "b": -9223372036854775808})");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " <corpus dir>\n";
    return 2;
  }
  const fs::path dir = argv[1], st = dir / "safetensors", ck = dir / "checkpoint";
  fs::create_directories(st);
  fs::create_directories(ck);
  const std::string tmp = (dir / "scratch.safetensors").string();

  // safetensors: every dtype, a 0-dim and a zero-size tensor, metadata; and no tensors at all.
  StateDict all = {{"f32", fuzz::host_tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat32)},
                   {"f64", fuzz::host_tensor<double>({0.5}, {}, kFloat64)},
                   {"f16", fuzz::host_tensor<uint16_t>({0x3c00, 0xc000}, {2}, kFloat16)},
                   {"bf16", fuzz::host_tensor<uint16_t>({0x3f80}, {1, 1}, kBFloat16)},
                   {"i64", fuzz::host_tensor<int64_t>({-1, 1 << 20}, {2}, kInt64)},
                   {"i32", fuzz::host_tensor<int32_t>({7, 8, 9}, {3, 1}, kInt32)},
                   {"u8", fuzz::host_tensor<uint8_t>({255, 0}, {2}, kUInt8)},
                   {"bool", fuzz::host_tensor<uint8_t>({1, 0, 1}, {3}, kBool)},
                   {"empty", empty({0, 4}, kFloat32)}};
  io::save_safetensors(all, tmp, {{"format", "pt"}, {"note", "fuzz seed"}});
  put(st / "all-dtypes.safetensors", read_file(tmp));
  io::save_safetensors({}, tmp);
  put(st / "no-tensors.safetensors", read_file(tmp));

  // checkpoint: mode byte 0 + a whole file; mode byte 1 + its metadata document.
  io::save_checkpoint(fuzz::sample_checkpoint(), tmp);
  put(ck / "file.bin", std::string(1, '\0') + read_file(tmp));
  std::map<std::string, std::string> meta;
  io::load_safetensors(tmp, &meta);
  put(ck / "document.bin", std::string(1, '\1') + meta.at("anvil_checkpoint"));
  fs::remove(tmp);
  write_regressions(dir / "regressions", meta.at("anvil_checkpoint"));
  write_tokenizer_seeds(dir / "tokenizer", dir / "regressions" / "tokenizer");
  return 0;
}
