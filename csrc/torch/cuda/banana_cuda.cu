// CUDA kernel of pyvi::banana_log_joint: one thread per sample, the math from ../common/banana.h.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "../banana.h"

namespace pyvi {
namespace {

template <typename scalar_t>
__global__ void banana_log_joint_kernel(BananaParams<scalar_t> p, const scalar_t* __restrict__ theta,
                                        scalar_t* __restrict__ log_prob, scalar_t* __restrict__ grad,
                                        int64_t batch) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < batch) {
    log_prob[i] = banana_log_joint(p, theta[2 * i], theta[2 * i + 1], grad + 2 * i);
    banana_repair_gradient(p, theta[2 * i], theta[2 * i + 1], grad + 2 * i);
  }
}

}  // namespace

void banana_log_joint_cuda(const BananaParams<double>& params, const at::Tensor& theta, at::Tensor& log_prob,
                           at::Tensor& grad) {
  const int64_t batch = theta.size(0);
  if (batch == 0) return;
  const c10::cuda::CUDAGuard guard(theta.device());
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned int>((batch + kThreads - 1) / kThreads);
  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "banana_log_joint_cuda", [&] {
    banana_log_joint_kernel<scalar_t><<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        banana_cast<scalar_t>(params), theta.const_data_ptr<scalar_t>(), log_prob.mutable_data_ptr<scalar_t>(),
        grad.mutable_data_ptr<scalar_t>(), batch);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace pyvi
