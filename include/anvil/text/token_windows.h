// Language-model data: a token sequence cut into fixed-length windows, each paired with the same
// window shifted by one token (the next token to predict at every position).
//
//   auto tok = text::BPETokenizer::train(text::load_text("corpus.txt"), 4096);
//   text::TextSplit data = text::token_windows_from_file("corpus.txt", tok, {.block_size = 128});
//   data::DataLoader loader(data.train, {.batch_size = 32, .shuffle = true});
//   for (data::Batch& b : loader) {   // b.input, b.target: int64 [32, 128]
//     Tensor logits = model(b.input);                                       // [32, 128, V]
//     Tensor loss = cross_entropy(logits.reshape({-1, V}), b.target.reshape({-1}));
//   }
//
// Shapes. A window is x = tokens[i*stride : i*stride + T] and y = tokens[i*stride + 1 :
// i*stride + T + 1], both int64 [T]; the DataLoader stacks B of them into [B, T] each. Targets
// stay [B, T], like the inputs, rather than flattened to [B*T]: every sample keeps its own row
// (so a batch's size is its first dim, as the Trainer counts samples), and the flattening belongs
// where the vocabulary size is known, beside the logits. cross_entropy takes either logits
// [B*T, V] with targets y.reshape({-1}) [B*T], or logits [B, V, T] (logits.transpose(1, 2) of a
// model's [B, T, V]) with y [B, T] as they come; both give the mean over all B*T positions.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "anvil/data/dataset.h"
#include "anvil/text/tokenizer.h"

namespace anvil::text {

// Windows of T = block_size tokens of a 1-D token tensor, every `stride` tokens (stride =
// block_size by default: windows that do not overlap; 1 gives every position). The last window
// ends where a shifted target still fits: size() = (N - 1 - T) / stride + 1 windows of N tokens
// (0 when N <= T).
class TokenWindows : public data::Dataset {
 public:
  // tokens: 1-D int64 or int32 (copied to a contiguous int64 CPU tensor unless it is one).
  // With vocab_size > 0, every token must lie in [0, vocab_size): ids read from a file are
  // checked before any window is served. Throws ShapeError for a tensor that is not 1-D,
  // DTypeError for a non-integer one, ValueError for block_size < 1 or stride < 1 (0 means
  // block_size), IndexError naming the first token out of range.
  TokenWindows(Tensor tokens, int64_t block_size, int64_t stride = 0, int64_t vocab_size = 0);

  int64_t size() const override { return size_; }
  // Window `index`: input x [T] and target y [T], views of the tokens. Throws IndexError.
  data::Example get(int64_t index) const override;
  // The windows at `indices`, copied into x [B, T] and y [B, T] (int64).
  data::Batch get_batch(const std::vector<int64_t>& indices) const override;

  int64_t block_size() const { return block_size_; }
  int64_t stride() const { return stride_; }
  const Tensor& tokens() const { return tokens_; }

 private:
  Tensor tokens_;
  int64_t block_size_, stride_, size_;
};

// The bytes of a text file. Throws IOError naming the file.
std::string load_text(const std::string& path);
// The files' bytes concatenated in the order given, `separator` between two files (e.g. "\n").
std::string load_text(const std::vector<std::string>& paths, std::string_view separator = "");

// Token ids in a file as nanoGPT's prepare.py writes them (numpy's uint16 tofile): a flat array
// of little-endian uint16. Returns an int64 [N] tensor. Throws IOError naming the file when its
// size is odd or an id is >= vocab_size (when vocab_size > 0, naming the position).
Tensor load_tokens(const std::string& path, int64_t vocab_size = 0);
// Writes 1-D integer ids in that format, atomically. Throws ValueError for an id outside
// [0, 65535] (and the errors of TokenWindows for a tensor that is not 1-D integer), IOError.
void save_tokens(const Tensor& tokens, const std::string& path);

struct TextWindowOptions {
  int64_t block_size = 128;   // T
  int64_t stride = 0;         // between windows; 0: block_size
  double val_fraction = 0.1;  // the share of the tokens, at the end, held out for validation
};

// A corpus's training and validation windows.
struct TextSplit {
  std::shared_ptr<TokenWindows> train;
  std::shared_ptr<TokenWindows> val;  // null when val_fraction is 0
};

// Tokenises `text` (special tokens' names are plain text) and splits the tokens: the last
// ceil(val_fraction * N) go to validation and the rest to training, each cut into windows
// separately (no window crosses the boundary). Throws ValueError for val_fraction outside
// [0, 1), or when a part is too short for one window (naming the sizes).
TextSplit token_windows(std::string_view text, const Tokenizer& tokenizer,
                        const TextWindowOptions& options = {});
// The same for the text of a file (load_text).
TextSplit token_windows_from_file(const std::string& path, const Tokenizer& tokenizer,
                                  const TextWindowOptions& options = {});

}  // namespace anvil::text
