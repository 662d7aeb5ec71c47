// CUDA kernel of pyvi::banana_leapfrog: one thread per chain, the math from ../common/banana_leapfrog.h
// (drift and kick as FMAs: nvcc contracts torch's addcmul into them too).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "../banana_leapfrog.h"

namespace pyvi {
namespace {

template <typename scalar_t>
__global__ void banana_leapfrog_kernel(BananaParams<scalar_t> p, scalar_t* __restrict__ x,
                                       scalar_t* __restrict__ momentum, scalar_t* __restrict__ grad,
                                       const scalar_t* __restrict__ step_size, const int32_t* __restrict__ num_steps,
                                       scalar_t* __restrict__ log_prob, int64_t chains) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < chains)
    log_prob[i] = banana_trajectory<true>(p, step_size[i], num_steps[i], x + 2 * i, momentum + 2 * i, grad + 2 * i);
}

}  // namespace

void banana_leapfrog_cuda(const BananaParams<double>& params, at::Tensor& x, at::Tensor& momentum, at::Tensor& grad,
                          const at::Tensor& step_size, const at::Tensor& num_steps, at::Tensor& log_prob) {
  const int64_t chains = x.size(0);
  if (chains == 0) return;
  const c10::cuda::CUDAGuard guard(x.device());
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned int>((chains + kThreads - 1) / kThreads);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "banana_leapfrog_cuda", [&] {
    banana_leapfrog_kernel<scalar_t><<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        banana_cast<scalar_t>(params), x.mutable_data_ptr<scalar_t>(), momentum.mutable_data_ptr<scalar_t>(),
        grad.mutable_data_ptr<scalar_t>(), step_size.const_data_ptr<scalar_t>(), num_steps.const_data_ptr<int32_t>(),
        log_prob.mutable_data_ptr<scalar_t>(), chains);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace pyvi
