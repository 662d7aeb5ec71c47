// CUDA kernel of pyvi::bound_gradients: one block of 512 threads (the op runs once per training step
// on at most a few hundred thousand samples: one launch beats a multi-block reduction's two), the
// per-sample math of ../../common/variational_bound.h, a fixed-order block sum for the bound.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>

#include "../../common/variational_bound.h"
#include "../bound_gradients.h"
#include "block_reduce.cuh"

namespace pyvi {
namespace {

constexpr int kThreads = 512;

template <typename T>
__global__ void bound_gradients_kernel(BoundConfig c, const T* __restrict__ log_p, const T* __restrict__ grad_log_p,
                                       const T* __restrict__ log_det, const T* __restrict__ noise, T* __restrict__ bound,
                                       T* __restrict__ grad_x, T* __restrict__ grad_log_det) {
  __shared__ double scratch[kThreads];
  double partial = 0.0;
  double mean_of;
  if (!c.iwae) {
    const double coefficient = -1.0 / static_cast<double>(c.num_samples);
    for (int64_t i = threadIdx.x; i < c.num_samples; i += blockDim.x) {
      partial += log_weight(log_p, log_det, noise, i, c.dim, c.log_normaliser);
      write_sample_gradients(grad_log_p, i, c.dim, coefficient, grad_x, grad_log_det);
    }
    mean_of = static_cast<double>(c.num_samples);
  } else {
    const int64_t batch = c.num_samples / c.num_particles;
    const double log_k = log(static_cast<double>(c.num_particles));
    for (int64_t b = threadIdx.x; b < batch; b += blockDim.x) {
      const int64_t first = b * c.num_particles;
      double top = -INFINITY;
      for (int64_t k = 0; k < c.num_particles; ++k)
        top = fmax(top, log_weight(log_p, log_det, noise, first + k, c.dim, c.log_normaliser));
      double sum = 0.0;
      for (int64_t k = 0; k < c.num_particles; ++k)
        sum += exp(log_weight(log_p, log_det, noise, first + k, c.dim, c.log_normaliser) - top);
      const double log_sum = top + log(sum);
      partial += log_sum - log_k;
      for (int64_t k = 0; k < c.num_particles; ++k) {
        const double w = exp(log_weight(log_p, log_det, noise, first + k, c.dim, c.log_normaliser) - log_sum);
        write_sample_gradients(grad_log_p, first + k, c.dim, -w / static_cast<double>(batch), grad_x, grad_log_det);
      }
    }
    mean_of = static_cast<double>(batch);
  }
  const double total = block_sum(partial, scratch);
  if (threadIdx.x == 0) *bound = static_cast<T>(total / mean_of);
}

}  // namespace

void bound_gradients_cuda(const BoundConfig& config, const at::Tensor& log_p, const at::Tensor& grad_log_p,
                          const at::Tensor& log_det, const at::Tensor& noise, at::Tensor& bound, at::Tensor& grad_x,
                          at::Tensor& grad_log_det) {
  const c10::cuda::CUDAGuard guard(log_p.device());
  AT_DISPATCH_FLOATING_TYPES(log_p.scalar_type(), "bound_gradients_cuda", [&] {
    bound_gradients_kernel<scalar_t><<<1, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        config, log_p.const_data_ptr<scalar_t>(), grad_log_p.const_data_ptr<scalar_t>(),
        log_det.const_data_ptr<scalar_t>(), noise.const_data_ptr<scalar_t>(), bound.mutable_data_ptr<scalar_t>(),
        grad_x.mutable_data_ptr<scalar_t>(), grad_log_det.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace pyvi
