#include "anvil/text/token_windows.h"

#include <cmath>
#include <cstring>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/error.h"
#include "anvil/core/file.h"
#include "anvil/ops/creation.h"

namespace anvil::text {
namespace {

// A contiguous int64 CPU copy of 1-D integer ids (the tensor itself if it is one already).
Tensor as_ids(const Tensor& t, const char* op) {
  ANVIL_CHECK(t.defined(), ValueError, op,
              ": expected a tensor of token ids, got an undefined one");
  ANVIL_CHECK(is_integral(t.dtype()), DTypeError, op, ": expected integer token ids, got ",
              dtype_name(t.dtype()));
  ANVIL_CHECK(t.dim() == 1, ShapeError, op, ": expected a 1-D tensor of token ids, got shape ",
              to_string(t.shape()));
  NoGradGuard no_grad;
  return t.detach().to(kCPU, kInt64).contiguous();
}

}  // namespace

TokenWindows::TokenWindows(Tensor tokens, int64_t block_size, int64_t stride, int64_t vocab_size)
    : tokens_(as_ids(tokens, "TokenWindows")),
      block_size_(block_size),
      stride_(stride == 0 ? block_size : stride) {
  ANVIL_CHECK(block_size >= 1, ValueError, "TokenWindows: expected block_size >= 1, got ",
              block_size);
  ANVIL_CHECK(stride >= 0, ValueError,
              "TokenWindows: expected stride >= 1 (or 0 for block_size), got ", stride);
  const int64_t n = tokens_.numel();
  if (vocab_size > 0) {
    const int64_t* p = tokens_.data<int64_t>();
    for (int64_t i = 0; i < n; ++i)
      ANVIL_CHECK(p[i] >= 0 && p[i] < vocab_size, IndexError, "TokenWindows: token ", i, " is ",
                  p[i], ", outside the vocabulary [0, ", vocab_size, ")");
  }
  size_ = n > block_size_ ? (n - 1 - block_size_) / stride_ + 1 : 0;
}

data::Example TokenWindows::get(int64_t index) const {
  ANVIL_CHECK(index >= 0 && index < size_, IndexError, "TokenWindows::get: index ", index,
              " is out of range for ", size_, " windows");
  const int64_t start = index * stride_;
  return {tokens_.narrow(0, start, block_size_), tokens_.narrow(0, start + 1, block_size_)};
}

data::Batch TokenWindows::get_batch(const std::vector<int64_t>& indices) const {
  ANVIL_CHECK(!indices.empty(), ValueError,
              "TokenWindows::get_batch: expected at least one index, got none");
  const int64_t b = int64_t(indices.size()), t = block_size_;
  Tensor x = empty({b, t}, kInt64), y = empty({b, t}, kInt64);
  const int64_t* src = tokens_.data<int64_t>();
  int64_t *px = x.data<int64_t>(), *py = y.data<int64_t>();
  for (int64_t k = 0; k < b; ++k) {
    const int64_t i = indices[size_t(k)];
    ANVIL_CHECK(i >= 0 && i < size_, IndexError, "TokenWindows::get_batch: index ", i,
                " is out of range for ", size_, " windows");
    std::memcpy(px + k * t, src + i * stride_, size_t(t) * sizeof(int64_t));
    std::memcpy(py + k * t, src + i * stride_ + 1, size_t(t) * sizeof(int64_t));
  }
  return {x, y};
}

std::string load_text(const std::string& path) {
  try {
    return read_file(path);
  } catch (const IOError& e) {
    throw IOError(detail::cat("load_text: ", e.what()));
  }
}

std::string load_text(const std::vector<std::string>& paths, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (i) out += separator;
    out += load_text(paths[i]);
  }
  return out;
}

Tensor load_tokens(const std::string& path, int64_t vocab_size) {
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const IOError& e) {
    throw IOError(detail::cat("load_tokens: ", e.what()));
  }
  ANVIL_CHECK(bytes.size() % 2 == 0, IOError, "load_tokens: '", path, "' is damaged: it is ",
              bytes.size(), " bytes, not a whole number of uint16 ids");
  const int64_t n = int64_t(bytes.size() / 2);
  Tensor out = empty({n}, kInt64);
  int64_t* p = out.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    p[i] = int64_t(uint8_t(bytes[size_t(2 * i)])) | int64_t(uint8_t(bytes[size_t(2 * i + 1)])) << 8;
    ANVIL_CHECK(vocab_size <= 0 || p[i] < vocab_size, IOError, "load_tokens: '", path,
                "' is damaged: token ", i, " is ", p[i], ", outside the vocabulary [0, ",
                vocab_size, ")");
  }
  return out;
}

void save_tokens(const Tensor& tokens, const std::string& path) {
  Tensor ids = as_ids(tokens, "save_tokens");
  const int64_t n = ids.numel();
  const int64_t* p = ids.data<int64_t>();
  std::string bytes(size_t(2 * n), '\0');
  for (int64_t i = 0; i < n; ++i) {
    ANVIL_CHECK(p[i] >= 0 && p[i] <= 65535, ValueError, "save_tokens: token ", i, " is ", p[i],
                ", which does not fit the file's uint16 ids [0, 65535]");
    bytes[size_t(2 * i)] = char(p[i] & 0xff);
    bytes[size_t(2 * i + 1)] = char(p[i] >> 8);
  }
  write_file_atomic(path, bytes);
}

TextSplit token_windows(std::string_view text, const Tokenizer& tokenizer,
                        const TextWindowOptions& options) {
  const double f = options.val_fraction;
  ANVIL_CHECK(f >= 0 && f < 1, ValueError, "token_windows: expected val_fraction in [0, 1), got ",
              f);
  const int64_t t = options.block_size;
  ANVIL_CHECK(t >= 1, ValueError, "token_windows: expected block_size >= 1, got ", t);
  const std::vector<int64_t> encoded = tokenizer.encode(text);
  Tensor ids = tensor(encoded, Shape{int64_t(encoded.size())});  // 1-D even for one token
  const int64_t n = ids.numel();
  const int64_t n_val = int64_t(std::ceil(f * double(n))), n_train = n - n_val;
  ANVIL_CHECK(n_train > t, ValueError, "token_windows: the text's ", n, " tokens leave ", n_train,
              " for training, too few for one window of ", t, " tokens and its shifted target (",
              t + 1, ")");
  ANVIL_CHECK(f == 0 || n_val > t, ValueError, "token_windows: the text's ", n, " tokens leave ",
              n_val, " for validation (val_fraction ", f, "), too few for one window of ", t,
              " tokens and its shifted target (", t + 1, ")");
  const int64_t v = tokenizer.vocab_size();
  TextSplit split;
  split.train = std::make_shared<TokenWindows>(ids.narrow(0, 0, n_train), t, options.stride, v);
  if (f > 0)
    split.val = std::make_shared<TokenWindows>(ids.narrow(0, n_train, n_val), t, options.stride, v);
  return split;
}

TextSplit token_windows_from_file(const std::string& path, const Tokenizer& tokenizer,
                                  const TextWindowOptions& options) {
  return token_windows(load_text(path), tokenizer, options);
}

}  // namespace anvil::text
