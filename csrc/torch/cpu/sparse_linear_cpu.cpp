// CPU kernels of pyvi::sparse_linear: y = act(x W^T + b) and its weight / bias gradients, summing
// over the nonzero entries of x only (math in ../../common/sparse_linear.h).
//
// Both directions are one sparse-times-dense product, out[r, :] = init + sum_k v_k M[j_k, :]:
// forward with the nonzeros of each row of x and M = W^T, backward (W^T.grad = x^T dY) with the
// nonzeros of each column of x and M = dY. Rows of M are summed 64 columns at a time into eight
// vector accumulators that stay in registers, so each nonzero costs eight vector loads and adds
// and the 64-column slice of M being read (784 x 64 floats = 200 KB for the VAE) stays in L2.
// At the VAE's 15-20% density that is ~2.5x faster than MKL's sgemm for the same sums (B = 128).
// Each output has one fixed summation order (increasing j), whatever the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "../../common/sparse_linear.h"
#include "../sparse_linear.h"
#include "isa.h"

namespace pyvi {

namespace {

// Rows per parallel task.
constexpr int64_t kRowGrain = 16;
// Vector accumulators per column block: 8 of AVX2's 16 registers, the others hold the loads.
constexpr int kVectors = 8;

template <typename scalar_t>
struct Vector;
template <>
struct Vector<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct Vector<double> {
  typedef double type __attribute__((vector_size(32)));
};

template <typename vec, typename scalar_t>
PYVI_ALWAYS_INLINE vec load_vector(const scalar_t* p) {
  vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// The nonzeros of a matrix listed per line (row or column), each list at a fixed stride: line l's
/// indices are index[l * stride, l * stride + count[l]) with their values alongside. The buffers
/// are left uninitialised (a zero-filled std::vector would cost a pass over them per call).
template <typename scalar_t>
struct NonzeroLists {
  NonzeroLists(int64_t lines, int64_t stride_)
      : buffer(new unsigned char[static_cast<size_t>(lines * stride_) * (sizeof(int32_t) + sizeof(scalar_t)) +
                                 static_cast<size_t>(lines) * sizeof(int32_t)]),
        stride(stride_) {
    value = reinterpret_cast<scalar_t*>(buffer.get());  // first, so that it is aligned for scalar_t
    index = reinterpret_cast<int32_t*>(value + lines * stride);
    count = index + lines * stride;
  }
  std::unique_ptr<unsigned char[]> buffer;
  int64_t stride;
  scalar_t* value;
  int32_t* index;
  int32_t* count;
};

/// The nonzeros of each row of the (rows, cols) matrix x, in increasing column order.
template <typename scalar_t>
NonzeroLists<scalar_t> nonzeros_by_row(const scalar_t* x, int64_t rows, int64_t cols) {
  NonzeroLists<scalar_t> lists(rows, cols);
  at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
    constexpr int64_t kGroup = 8;
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* xr = x + r * cols;
      int32_t* index = lists.index + r * cols;
      scalar_t* value = lists.value + r * cols;
      int32_t n = 0;
      int64_t c = 0;
      for (; c + kGroup <= cols; c += kGroup) {
        // Images have long runs of zeros (the digit's surroundings): test eight at once.
        bool any = false;
        for (int64_t j = 0; j < kGroup; ++j) any |= xr[c + j] != scalar_t(0);
        if (!any) continue;
        for (int64_t j = c; j < c + kGroup; ++j) {
          index[n] = static_cast<int32_t>(j);
          value[n] = xr[j];
          n += xr[j] != scalar_t(0);  // branch-free compaction: a zero is overwritten next
        }
      }
      for (; c < cols; ++c) {
        index[n] = static_cast<int32_t>(c);
        value[n] = xr[c];
        n += xr[c] != scalar_t(0);
      }
      lists.count[r] = n;
    }
  });
  return lists;
}

/// The same nonzeros listed per column, in increasing row order (a transpose of the row lists).
template <typename scalar_t>
NonzeroLists<scalar_t> nonzeros_by_column(const NonzeroLists<scalar_t>& by_row, int64_t rows, int64_t cols) {
  NonzeroLists<scalar_t> lists(cols, rows);
  std::fill(lists.count, lists.count + cols, 0);
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* index = by_row.index + r * by_row.stride;
    const scalar_t* value = by_row.value + r * by_row.stride;
    for (int32_t k = 0; k < by_row.count[r]; ++k) {
      const int64_t c = index[k];
      const int64_t slot = c * rows + lists.count[c]++;
      lists.index[slot] = static_cast<int32_t>(r);
      lists.value[slot] = value[k];
    }
  }
  return lists;
}

/// out[l, :] = act(init + sum_k value[l, k] * m[index[l, k], :]) for the lines [begin, end) of
/// `lists`, with init = bias (or 0 when bias is null) and m a (*, n) row-major matrix.
template <typename scalar_t>
PYVI_ALWAYS_INLINE void sparse_times_dense(int64_t begin, int64_t end, const NonzeroLists<scalar_t>& lists,
                                        const scalar_t* m, int64_t n, const scalar_t* bias, bool relu,
                                        scalar_t* out) {
  using vec = typename Vector<scalar_t>::type;
  constexpr int64_t kLanes = sizeof(vec) / sizeof(scalar_t);
  constexpr int64_t kBlock = kVectors * kLanes;
  int64_t c0 = 0;
  // Block-outer so that one column slice of m is reused by every line while it is in cache.
  for (; c0 + kBlock <= n; c0 += kBlock) {
    for (int64_t l = begin; l < end; ++l) {
      vec acc[kVectors];
#pragma GCC unroll 8
      for (int j = 0; j < kVectors; ++j) acc[j] = bias ? load_vector<vec>(bias + c0 + j * kLanes) : vec{};
      const int32_t* index = lists.index + l * lists.stride;
      const scalar_t* value = lists.value + l * lists.stride;
      const int32_t count = lists.count[l];
      for (int32_t k = 0; k < count; ++k) {
        const scalar_t* row = m + static_cast<int64_t>(index[k]) * n + c0;
        const scalar_t v = value[k];
#pragma GCC unroll 8
        for (int j = 0; j < kVectors; ++j) acc[j] += v * load_vector<vec>(row + j * kLanes);
      }
      scalar_t* o = out + l * n + c0;
#pragma GCC unroll 8
      for (int j = 0; j < kVectors; ++j) {
        const vec a = relu ? (acc[j] < scalar_t(0) ? vec{} : acc[j]) : acc[j];
        std::memcpy(o + j * kLanes, &a, sizeof a);
      }
    }
  }
  // The columns past the last full block, one at a time.
  for (int64_t l = begin; l < end && c0 < n; ++l) {
    const int32_t* index = lists.index + l * lists.stride;
    const scalar_t* value = lists.value + l * lists.stride;
    for (int64_t c = c0; c < n; ++c) {
      scalar_t acc = bias ? bias[c] : scalar_t(0);
      for (int32_t k = 0; k < lists.count[l]; ++k) acc += value[k] * m[static_cast<int64_t>(index[k]) * n + c];
      out[l * n + c] = sparse_linear_activation(acc, relu);
    }
  }
}

template <typename scalar_t>
void sparse_times_dense_parallel(const NonzeroLists<scalar_t>& lists, int64_t lines, const scalar_t* m, int64_t n,
                                 const scalar_t* bias, bool relu, scalar_t* out) {
  at::parallel_for(0, lines, kRowGrain, [&](int64_t begin, int64_t end) {
    cpu::dispatch<&sparse_times_dense<scalar_t>>(begin, end, lists, m, n, bias, relu, out);
  });
}

}  // namespace

void sparse_linear_cpu(const at::Tensor& x, const at::Tensor& weight_t, const at::Tensor& bias, bool relu,
                       at::Tensor& out) {
  const int64_t rows = x.size(0), in_features = x.size(1), out_features = weight_t.size(1);
  if (rows == 0 || out_features == 0) return;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_linear_cpu", [&] {
    const auto lists = nonzeros_by_row(x.const_data_ptr<scalar_t>(), rows, in_features);
    sparse_times_dense_parallel(lists, rows, weight_t.const_data_ptr<scalar_t>(), out_features,
                                bias.const_data_ptr<scalar_t>(), relu, out.mutable_data_ptr<scalar_t>());
  });
}

void sparse_linear_backward_cpu(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& output, bool relu,
                                at::Tensor& grad_pre, at::Tensor& grad_weight_t, at::Tensor& grad_bias) {
  const int64_t rows = x.size(0), in_features = x.size(1), out_features = grad.size(1);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_linear_backward_cpu", [&] {
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const scalar_t* y = output.const_data_ptr<scalar_t>();
    scalar_t* gp = grad_pre.mutable_data_ptr<scalar_t>();
    scalar_t* gb = grad_bias.mutable_data_ptr<scalar_t>();
    const int64_t numel = rows * out_features;
    at::parallel_for(0, numel, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) gp[i] = sparse_linear_activation_grad(g[i], y[i], relu);
    });
    // Bias gradient: column sums of grad_pre, rows added in order (deterministic), columns in parallel.
    at::parallel_for(0, out_features, 256, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) gb[c] = scalar_t(0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = begin; c < end; ++c) gb[c] += gp[r * out_features + c];
    });
    if (in_features == 0 || out_features == 0) return;
    const auto by_row = nonzeros_by_row(x.const_data_ptr<scalar_t>(), rows, in_features);
    const auto by_column = nonzeros_by_column(by_row, rows, in_features);
    sparse_times_dense_parallel(by_column, in_features, static_cast<const scalar_t*>(gp), out_features,
                                static_cast<const scalar_t*>(nullptr), false,
                                grad_weight_t.mutable_data_ptr<scalar_t>());
  });
}

}  // namespace pyvi
