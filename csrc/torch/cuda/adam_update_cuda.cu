// CUDA kernel of pyvi::adam_update_: one block (a flow's packed parameters are a few hundred to a
// few tens of thousands of values; one block can first decide for all of them whether the step is
// finite, then update them, in one launch). Math in ../../common/adam.h.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>

#include "../../common/adam.h"
#include "../adam_update.h"

namespace pyvi {
namespace {

constexpr int kThreads = 1024;

template <typename T>
__global__ void adam_update_kernel(AdamConfig c, T* __restrict__ param, const T* __restrict__ grad,
                                   T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq, double* __restrict__ step,
                                   const double* __restrict__ lr, int64_t num_steps, int64_t* __restrict__ index,
                                   const T* __restrict__ bound, double* __restrict__ history, int64_t n) {
  const int64_t i = *index;
  const double t = *step + 1.0;
  if (i < 0 || i >= num_steps) return;  // every thread reads the same index: the block leaves together
  const T b = *bound;
  int finite = isfinite(static_cast<double>(b));
  for (int64_t j = threadIdx.x; j < n && finite; j += blockDim.x) finite = isfinite(static_cast<double>(grad[j]));
  finite = __syncthreads_and(finite);  // also orders every thread's reads of *index and *step before the writes
  if (finite) {
    const AdamScalars s = adam_scalars(lr[i], c.beta1, c.beta2, c.eps, t);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) adam_element(s, grad[j], param + j, exp_avg + j, exp_avg_sq + j);
  }
  if (threadIdx.x == 0) {
    if (finite) *step = t;
    history[i] = finite ? static_cast<double>(b) : NAN;
    *index = i + 1;
  }
}

}  // namespace

void adam_update_cuda(const AdamConfig& config, at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg,
                      at::Tensor& exp_avg_sq, at::Tensor& step, const at::Tensor& lr, at::Tensor& index,
                      const at::Tensor& bound, at::Tensor& history) {
  const c10::cuda::CUDAGuard guard(param.device());
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "adam_update_cuda", [&] {
    adam_update_kernel<scalar_t><<<1, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        config, param.mutable_data_ptr<scalar_t>(), grad.const_data_ptr<scalar_t>(),
        exp_avg.mutable_data_ptr<scalar_t>(), exp_avg_sq.mutable_data_ptr<scalar_t>(), step.mutable_data_ptr<double>(),
        lr.const_data_ptr<double>(), lr.size(0), index.mutable_data_ptr<int64_t>(), bound.const_data_ptr<scalar_t>(),
        history.mutable_data_ptr<double>(), param.numel());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace pyvi
