// CUDA kernels of pyvi::sparse_linear: one thread per output, each summing over the nonzero inputs
// of its row (forward) or column of x (weight gradient) with ../../common/sparse_linear.h's
// sparse_dot. Threads of a block share the row of x (a broadcast read) and read W^T / dY
// coalesced along the outputs.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/sum.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

#include "../../common/sparse_linear.h"
#include "../sparse_linear.h"

namespace pyvi {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535));
}

/// out[r, c] = act(init_c + sum_k a[r * a_row + k * a_step] * m[k * n + c]) for r < rows, c < n.
template <typename scalar_t>
__global__ void sparse_times_dense_kernel(const scalar_t* __restrict__ a, int64_t a_row, int64_t a_step,
                                          const scalar_t* __restrict__ m, const scalar_t* __restrict__ bias,
                                          scalar_t* __restrict__ out, int64_t rows, int64_t n, int64_t depth,
                                          bool relu) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / n, c = i % n;
    const scalar_t init = bias != nullptr ? bias[c] : scalar_t(0);
    out[i] = sparse_linear_activation(sparse_dot(a + r * a_row, a_step, m + c, n, depth, init), relu);
  }
}

template <typename scalar_t>
__global__ void activation_grad_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ output,
                                       scalar_t* __restrict__ out, int64_t numel, bool relu) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = sparse_linear_activation_grad(grad[i], output[i], relu);
}

}  // namespace

void sparse_linear_cuda(const at::Tensor& x, const at::Tensor& weight_t, const at::Tensor& bias, bool relu,
                        at::Tensor& out) {
  const int64_t rows = x.size(0), in_features = x.size(1), out_features = weight_t.size(1);
  const int64_t numel = rows * out_features;
  if (numel == 0) return;
  const c10::cuda::CUDAGuard guard(x.device());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_linear_cuda", [&] {
    sparse_times_dense_kernel<scalar_t><<<grid_for(numel), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        x.const_data_ptr<scalar_t>(), in_features, 1, weight_t.const_data_ptr<scalar_t>(),
        bias.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), rows, out_features, in_features, relu);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void sparse_linear_backward_cuda(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& output, bool relu,
                                 at::Tensor& grad_pre, at::Tensor& grad_weight_t, at::Tensor& grad_bias) {
  const int64_t rows = x.size(0), in_features = x.size(1), out_features = grad.size(1);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_linear_backward_cuda", [&] {
    if (rows * out_features > 0) {
      activation_grad_kernel<scalar_t><<<grid_for(rows * out_features), kThreads, 0, stream>>>(
          grad.const_data_ptr<scalar_t>(), output.const_data_ptr<scalar_t>(), grad_pre.mutable_data_ptr<scalar_t>(),
          rows * out_features, relu);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (in_features * out_features > 0) {
      // W^T.grad[i, c] = sum_b x[b, i] dY[b, c]: column i of x, read with stride in_features.
      sparse_times_dense_kernel<scalar_t><<<grid_for(in_features * out_features), kThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), 1, in_features, grad_pre.const_data_ptr<scalar_t>(), nullptr,
          grad_weight_t.mutable_data_ptr<scalar_t>(), in_features, out_features, rows, false);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  at::sum_out(grad_bias, grad_pre, {0});
}

}  // namespace pyvi
