// CUDA kernel of pyvi::banana_log_joint: one thread per sample, the math from ../common/banana.h.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/banana.h"
#include "banana.h"

namespace pyvi {
namespace {

template <typename scalar_t>
__global__ void banana_log_joint_kernel(BananaParams<scalar_t> p, const scalar_t* __restrict__ theta,
                                        scalar_t* __restrict__ log_prob, scalar_t* __restrict__ grad,
                                        int64_t batch) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < batch) log_prob[i] = banana_log_joint(p, theta[2 * i], theta[2 * i + 1], grad + 2 * i);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> banana_log_joint_cuda(const at::Tensor& theta_in, double num_data,
                                                         double mean_y, double ss_y,
                                                         double sigma_y, double sigma_theta) {
  check_banana_args(theta_in, num_data, ss_y, sigma_y, sigma_theta);
  TORCH_CHECK(theta_in.is_cuda(), "banana_log_joint_cuda: theta must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(theta_in.device());
  const at::Tensor theta = theta_in.contiguous();
  const int64_t batch = theta.size(0);
  at::Tensor log_prob = at::empty({batch}, theta.options());
  at::Tensor grad = at::empty({batch, 2}, theta.options());
  if (batch == 0) return {log_prob, grad};
  const auto params = banana_params(num_data, mean_y, ss_y, sigma_y, sigma_theta);
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned int>((batch + kThreads - 1) / kThreads);
  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "banana_log_joint_cuda", [&] {
    banana_log_joint_kernel<scalar_t><<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        banana_cast<scalar_t>(params), theta.const_data_ptr<scalar_t>(),
        log_prob.mutable_data_ptr<scalar_t>(), grad.mutable_data_ptr<scalar_t>(), batch);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {log_prob, grad};
}

}  // namespace pyvi

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) { m.impl("banana_log_joint", &pyvi::banana_log_joint_cuda); }
