// Strided element-wise loops for CPU kernels: the CPU backend's TensorIterator.
//
// All operands share one shape (inputs are broadcast views). Adjacent dims that are
// contiguous in every operand are merged, the innermost dim becomes a tight loop (a plain
// pointer loop when every operand is dense there, which the compiler vectorises), and the
// outer positions are split across OpenMP threads.
#pragma once
#include <omp.h>

#include <array>
#include <cstdint>
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil::cpu {

// Work below this many elements stays on one thread.
inline constexpr int64_t kParallelGrain = 32768;

template <size_t N>
struct LoopPlan {
  std::vector<int64_t> sizes;                   // merged dims, innermost last
  std::vector<std::array<int64_t, N>> strides;  // byte strides per dim per operand
  std::array<char*, N> base{};
  int64_t numel = 1;
};

template <size_t N>
LoopPlan<N> make_plan(const std::array<const Tensor*, N>& ops) {
  LoopPlan<N> p;
  const Shape& shape = ops[0]->shape();
  for (size_t k = 0; k < N; ++k) p.base[k] = static_cast<char*>(ops[k]->data_ptr());
  p.numel = numel(shape);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    std::array<int64_t, N> st;
    for (size_t k = 0; k < N; ++k) st[k] = ops[k]->strides()[d] * int64_t(ops[k]->element_size());
    if (!p.sizes.empty()) {  // merge with the previous dim when it steps over this one exactly
      bool mergeable = true;
      for (size_t k = 0; k < N; ++k)
        if (p.strides.back()[k] != st[k] * shape[d]) mergeable = false;
      if (mergeable) {
        p.sizes.back() *= shape[d];
        p.strides.back() = st;
        continue;
      }
    }
    p.sizes.push_back(shape[d]);
    p.strides.push_back(st);
  }
  return p;
}

// Calls inner(ptrs, inner_strides, n) over runs of the innermost dim.
template <size_t N, class Inner>
void run_plan(const LoopPlan<N>& p, Inner&& inner) {
  if (p.numel == 0) return;
  if (p.sizes.empty()) {
    std::array<int64_t, N> zero{};
    std::array<char*, N> ptrs = p.base;
    inner(ptrs.data(), zero.data(), int64_t(1));
    return;
  }
  const int64_t nd = int64_t(p.sizes.size());
  const int64_t inner_n = p.sizes.back();
  const std::array<int64_t, N> inner_st = p.strides.back();
  const int64_t outer = p.numel / inner_n;
  auto run_range = [&](int64_t begin, int64_t end) {
    // Decompose `begin` into a multi-index over the outer dims once, then count upwards.
    std::vector<int64_t> idx(size_t(std::max<int64_t>(nd - 1, 0)), 0);
    int64_t rem = begin;
    for (int64_t d = nd - 2; d >= 0; --d) {
      idx[d] = rem % p.sizes[d];
      rem /= p.sizes[d];
    }
    std::array<char*, N> ptrs;
    for (size_t k = 0; k < N; ++k) {
      int64_t off = 0;
      for (int64_t d = 0; d < nd - 1; ++d) off += idx[d] * p.strides[d][k];
      ptrs[k] = p.base[k] + off;
    }
    for (int64_t o = begin; o < end; ++o) {
      inner(ptrs.data(), inner_st.data(), inner_n);
      for (int64_t d = nd - 2; d >= 0; --d) {  // advance the odometer
        for (size_t k = 0; k < N; ++k) ptrs[k] += p.strides[d][k];
        if (++idx[d] < p.sizes[d]) break;
        for (size_t k = 0; k < N; ++k) ptrs[k] -= p.strides[d][k] * p.sizes[d];
        idx[d] = 0;
      }
    }
  };
  if (p.numel < kParallelGrain || outer == 1 || omp_get_max_threads() == 1 || omp_in_parallel()) {
    run_range(0, outer);
    return;
  }
  if (outer < omp_get_max_threads()) {
    // Few long rows: split each row across threads instead.
    for (int64_t o = 0; o < outer; ++o) {
      std::array<char*, N> row;
      int64_t rem = o, off_k[N] = {};
      for (int64_t d = nd - 2; d >= 0; --d) {
        int64_t i = rem % p.sizes[d];
        rem /= p.sizes[d];
        for (size_t k = 0; k < N; ++k) off_k[k] += i * p.strides[d][k];
      }
      for (size_t k = 0; k < N; ++k) row[k] = p.base[k] + off_k[k];
#pragma omp parallel
      {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t b = inner_n * t / nt, e = inner_n * (t + 1) / nt;
        std::array<char*, N> ptrs;
        for (size_t k = 0; k < N; ++k) ptrs[k] = row[k] + b * inner_st[k];
        if (e > b) inner(ptrs.data(), inner_st.data(), e - b);
      }
    }
    return;
  }
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t b = outer * t / nt, e = outer * (t + 1) / nt;
    if (e > b) run_range(b, e);
  }
}

// out[i] = f(a[i]) with typed elements.
template <class O, class A, class F>
void unary_map(const Tensor& out, const Tensor& a, F f) {
  auto plan = make_plan<2>({&out, &a});
  run_plan(plan, [&](char** p, const int64_t* s, int64_t n) {
    if (s[0] == sizeof(O) && s[1] == sizeof(A)) {
      O* o = reinterpret_cast<O*>(p[0]);
      const A* x = reinterpret_cast<const A*>(p[1]);
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<O*>(p[0] + i * s[0]) = f(*reinterpret_cast<const A*>(p[1] + i * s[1]));
    }
  });
}

// out[i] = f(a[i], b[i]).
template <class O, class A, class B, class F>
void binary_map(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  auto plan = make_plan<3>({&out, &a, &b});
  run_plan(plan, [&](char** p, const int64_t* s, int64_t n) {
    if (s[0] == sizeof(O) && s[1] == sizeof(A) && s[2] == sizeof(B)) {
      O* o = reinterpret_cast<O*>(p[0]);
      const A* x = reinterpret_cast<const A*>(p[1]);
      const B* y = reinterpret_cast<const B*>(p[2]);
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<O*>(p[0] + i * s[0]) = f(*reinterpret_cast<const A*>(p[1] + i * s[1]),
                                                   *reinterpret_cast<const B*>(p[2] + i * s[2]));
    }
  });
}

// out[i] = f(a[i], b[i], c[i]).
template <class O, class A, class B, class C, class F>
void ternary_map(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  auto plan = make_plan<4>({&out, &a, &b, &c});
  run_plan(plan, [&](char** p, const int64_t* s, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<O*>(p[0] + i * s[0]) = f(*reinterpret_cast<const A*>(p[1] + i * s[1]),
                                                 *reinterpret_cast<const B*>(p[2] + i * s[2]),
                                                 *reinterpret_cast<const C*>(p[3] + i * s[3]));
  });
}

// The type CPU kernels compute in: float for the 16-bit floats, the type itself otherwise.
template <class T> struct compute_type { using type = T; };
template <> struct compute_type<float16> { using type = float; };
template <> struct compute_type<bfloat16> { using type = float; };
template <class T> using compute_t = typename compute_type<T>::type;

// Runs f(begin, end) over [0, n) split across threads when n * cost_per_item is large.
template <class F>
void parallel_for(int64_t n, int64_t cost_per_item, F&& f) {
  if (n <= 0) return;
  if (n * cost_per_item < kParallelGrain || n == 1 || omp_get_max_threads() == 1 ||
      omp_in_parallel()) {
    f(int64_t(0), n);
    return;
  }
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (e > b) f(b, e);
  }
}

}  // namespace anvil::cpu
