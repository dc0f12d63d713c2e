#include "anvil/nn/positional_encoding.h"

#include <cmath>

#include "anvil/autograd/grad_mode.h"
#include "anvil/nn/init.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/indexing.h"
#include "nn/repr.h"

namespace anvil::nn {
namespace {

std::string describe(const Tensor& t) {
  return t.defined() ? "shape " + to_string(t.shape()) : std::string("an undefined tensor");
}

// The sequence dim of x [T, N, D] / [N, T, D] / [T, D]; checks the rank and the features.
int64_t sequence_dim(const char* op, const Tensor& x, int64_t features, bool batch_first) {
  ANVIL_CHECK(x.defined() && (x.dim() == 2 || x.dim() == 3) && x.size(-1) == features, ShapeError,
              op, ": expected x ", batch_first ? "[N, T, " : "[T, N, ", features, "] or [T, ",
              features, "], got ", describe(x));
  return x.dim() == 3 && batch_first ? 1 : 0;
}

void check_positions(const char* op, int64_t offset, int64_t length, int64_t limit,
                     const char* limit_name) {
  ANVIL_CHECK(offset >= 0 && offset + length <= limit, IndexError, op, ": positions ", offset,
              " to ", offset + length - 1, " do not fit in ", limit_name, "=", limit,
              offset < 0 ? " (negative offset)" : "");
}

// rows [offset, offset + T) of a [max_len, D] table, shaped to broadcast against x.
Tensor table_for(const Tensor& table, const Tensor& x, int64_t seq_dim, int64_t offset) {
  Tensor rows = table.narrow(0, offset, x.size(seq_dim));  // [T, D]
  if (x.dim() == 2) return rows;
  return seq_dim == 0 ? rows.unsqueeze(1) : rows.unsqueeze(0);
}

}  // namespace

// ---- LearnedPositionalEmbedding ----

LearnedPositionalEmbedding::LearnedPositionalEmbedding(int64_t max_len, int64_t embedding_dim,
                                                       bool batch_first)
    : max_len(max_len), embedding_dim(embedding_dim), batch_first(batch_first) {
  ANVIL_CHECK(max_len > 0 && embedding_dim > 0, ValueError,
              "LearnedPositionalEmbedding: expected positive max_len and embedding_dim, got ",
              max_len, " and ", embedding_dim);
  weight = register_parameter("weight", empty({max_len, embedding_dim}));
  reset_parameters();
}

void LearnedPositionalEmbedding::reset_parameters() { init::normal_(weight); }

Tensor LearnedPositionalEmbedding::forward(const Tensor& x, int64_t offset) {
  const char* op = "LearnedPositionalEmbedding::forward";
  const int64_t sd = sequence_dim(op, x, embedding_dim, batch_first);
  check_positions(op, offset, x.size(sd), max_len, "max_len");
  return x + table_for(weight, x, sd, offset);
}

std::string LearnedPositionalEmbedding::extra_repr() const {
  return detail::cat(max_len, ", ", embedding_dim, ", batch_first=", detail::repr(batch_first));
}

// ---- SinusoidalPositionalEncoding ----

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(int64_t d_model, int64_t max_len,
                                                           double dropout, bool batch_first)
    : d_model(d_model), max_len(max_len), batch_first(batch_first) {
  ANVIL_CHECK(d_model > 0 && max_len > 0, ValueError,
              "SinusoidalPositionalEncoding: expected positive d_model and max_len, got ", d_model,
              " and ", max_len);
  ANVIL_CHECK(dropout >= 0 && dropout <= 1, ValueError,
              "SinusoidalPositionalEncoding: expected a dropout probability between 0 and 1, got ",
              dropout);
  Tensor table;
  {
    NoGradGuard no_grad;
    // The tutorial's float32 arithmetic: div_term = exp(arange(0, d, 2) * (-ln(10000) / d)),
    // angle[t, j] = t * div_term[j / 2]; sin in the even columns, cos in the odd ones.
    Tensor div_term =
        exp(mul(arange(0, d_model, 2, kFloat32), -std::log(10000.0) / double(d_model)));
    std::vector<int64_t> half(size_t(d_model), 0);
    std::vector<uint8_t> even(size_t(d_model), 0);
    for (int64_t j = 0; j < d_model; ++j) half[size_t(j)] = j / 2, even[size_t(j)] = j % 2 == 0;
    Tensor div_full = index_select(div_term, 0, tensor(half, {d_model}, kInt64));
    Tensor angle = mul(arange(0, max_len, 1, kFloat32).unsqueeze(1), div_full.unsqueeze(0));
    Tensor is_even = ne(tensor(even, {d_model}, kUInt8), 0);
    table = where(is_even.unsqueeze(0), sin(angle), cos(angle)).unsqueeze(1).contiguous();
  }
  pe = register_buffer("pe", table);
  this->dropout = register_module("dropout", std::make_shared<Dropout>(dropout));
}

Tensor SinusoidalPositionalEncoding::forward(const Tensor& x, int64_t offset) {
  const char* op = "SinusoidalPositionalEncoding::forward";
  const int64_t sd = sequence_dim(op, x, d_model, batch_first);
  check_positions(op, offset, x.size(sd), max_len, "max_len");
  Tensor table = pe.select(1, 0);  // [max_len, d_model]
  if (table.dtype() != x.dtype() && x.is_floating_point()) table = table.to(x.dtype());
  return (*dropout)(x + table_for(table, x, sd, offset));
}

std::string SinusoidalPositionalEncoding::extra_repr() const {
  return detail::cat("d_model=", d_model, ", max_len=", max_len,
                     ", batch_first=", detail::repr(batch_first));
}

// ---- RotaryEmbedding ----

RotaryEmbedding::RotaryEmbedding(int64_t dim, int64_t max_position, double base)
    : dim(dim), max_position(max_position), base(base) {
  ANVIL_CHECK(dim > 0 && dim % 2 == 0, ValueError,
              "RotaryEmbedding: expected a positive, even dim, got ", dim);
  ANVIL_CHECK(max_position > 0, ValueError, "RotaryEmbedding: expected max_position >= 1, got ",
              max_position);
  ANVIL_CHECK(base > 0, ValueError, "RotaryEmbedding: expected base > 0, got ", base);
}

RotaryCosSin RotaryEmbedding::cos_sin(int64_t seq_len, int64_t offset, TensorOptions options) {
  check_positions("RotaryEmbedding::cos_sin", offset, seq_len, max_position, "max_position");
  const DType dt = options.dtype_;
  const Device dev = options.device_;
  const RotaryCosSin* table = nullptr;
  for (const RotaryCosSin& t : cache_)
    if (t.cos.dtype() == dt && t.cos.device() == dev) table = &t;
  if (!table) {
    NoGradGuard no_grad;
    cache_.push_back(rotary_cos_sin(max_position, dim, base, TensorOptions(dt).device(dev)));
    table = &cache_.back();
  }
  return {table->cos.narrow(0, offset, seq_len), table->sin.narrow(0, offset, seq_len)};
}

Tensor RotaryEmbedding::rotate(const Tensor& x, int64_t offset) {
  ANVIL_CHECK(x.defined() && x.dim() >= 2 && x.size(-1) == dim, ShapeError,
              "RotaryEmbedding: expected x [..., T, ", dim, "], got ", describe(x));
  auto [c, s] = cos_sin(x.size(-2), offset, TensorOptions(x.dtype()).device(x.device()));
  return apply_rotary(x, c, s);
}

RotaryEmbedding::Rotated RotaryEmbedding::apply(const Tensor& q, const Tensor& k, int64_t offset) {
  for (const Tensor* t : {&q, &k})
    ANVIL_CHECK(t->defined() && t->dim() >= 2 && t->size(-1) == dim, ShapeError,
                "RotaryEmbedding::apply: expected ", t == &q ? "q" : "k", " [..., T, ", dim,
                "], got ", describe(*t));
  ANVIL_CHECK(q.size(-2) == k.size(-2), ShapeError,
              "RotaryEmbedding::apply: expected q and k of the same sequence length T, got q ",
              to_string(q.shape()), " and k ", to_string(k.shape()));
  return {rotate(q, offset), rotate(k, offset)};
}

std::string RotaryEmbedding::extra_repr() const {
  return detail::cat("dim=", dim, ", max_position=", max_position, ", base=", detail::repr(base));
}

}  // namespace anvil::nn
