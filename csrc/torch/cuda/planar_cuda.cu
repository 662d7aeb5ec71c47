// CUDA kernels of pyvi::planar_forward / pyvi::planar_backward: one thread per sample, the
// prepared layer table in shared memory, parameter-gradient sums reduced per warp into per-warp rows
// and summed in warp order (deterministic; flows_cuda.cuh), and a one-block pass that chains them
// through u_hat(u, w).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>

#include "../../common/planar.h"
#include "../planar.h"
#include "flows_cuda.cuh"

namespace pyvi {
namespace {

template <typename T>
__global__ void planar_prepare_kernel(const T* __restrict__ params, int layers, int dim, T* __restrict__ prep) {
  for (int k = threadIdx.x; k < layers; k += blockDim.x)
    planar_prepare(params + k * (2 * dim + 1), dim, prep + k * planar_prep_size(dim));
}

template <typename T>
__global__ void planar_forward_kernel(const T* __restrict__ prep_global, int layers, int dim, bool use_shared,
                                      const T* __restrict__ z, T* __restrict__ x, T* __restrict__ log_det,
                                      T* __restrict__ states, int64_t batch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const T* prep = stage_in_shared(prep_global, int64_t(layers) * planar_prep_size(dim), use_shared,
                                  reinterpret_cast<T*>(shared_raw));
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < batch)
    log_det[i] = planar_forward_sample(prep, layers, dim, z + i * dim, x + i * dim, states + i * layers * dim);
}

template <typename T>
__global__ void planar_backward_kernel(const T* __restrict__ prep_global, int layers, int dim, bool use_shared,
                                       const T* __restrict__ grad_x, const T* __restrict__ grad_log_det,
                                       const T* __restrict__ states, T* __restrict__ grad_z, T* __restrict__ rows,
                                       int64_t num_sums, int64_t batch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const T* prep = stage_in_shared(prep_global, int64_t(layers) * planar_prep_size(dim), use_shared,
                                  reinterpret_cast<T*>(shared_raw));
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  // Lanes past the batch run on the last sample with zero upstream gradients, so that every lane
  // of a warp reaches each accumulate() call (the warp shuffles need them all).
  const bool active = i < batch;
  const int64_t row = active ? i : batch - 1;
  T g[kPlanarMaxCudaDim];
  for (int d = 0; d < dim; ++d) g[d] = active ? grad_x[row * dim + d] : T(0);
  WarpRowSums<T> add{rows, num_sums};
  planar_backward_sample(prep, layers, dim, states + row * layers * dim, active ? grad_log_det[row] : T(0), g, add);
  if (active)
    for (int d = 0; d < dim; ++d) grad_z[i * dim + d] = g[d];
}

template <typename T>
__global__ void planar_param_grad_kernel(const T* __restrict__ params, int layers, int dim, const T* __restrict__ sums,
                                         T* __restrict__ grad_params) {
  for (int k = threadIdx.x; k < layers; k += blockDim.x)
    planar_param_grad(params + k * (2 * dim + 1), dim, sums + k * planar_prep_size(dim),
                      grad_params + k * (2 * dim + 1));
}

}  // namespace

void planar_forward_cuda(const at::Tensor& z, const at::Tensor& params, at::Tensor& x, at::Tensor& log_det,
                         at::Tensor& states) {
  const int64_t batch = z.size(0), dim = z.size(1), layers = params.size(0);
  if (batch == 0) return;
  const c10::cuda::CUDAGuard guard(z.device());
  at::Tensor prep = at::empty({layers, 2 * dim + 2}, z.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  const auto blocks = static_cast<unsigned int>((batch + kFlowThreads - 1) / kFlowThreads);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "planar_forward_cuda", [&] {
    const int64_t bytes = prep.numel() * static_cast<int64_t>(sizeof(scalar_t));
    const bool use_shared = bytes <= kFlowSharedBytes;
    planar_prepare_kernel<scalar_t><<<1, 128, 0, stream>>>(params.const_data_ptr<scalar_t>(), static_cast<int>(layers),
                                                            static_cast<int>(dim), prep.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    planar_forward_kernel<scalar_t><<<blocks, kFlowThreads, use_shared ? bytes : 0, stream>>>(
        prep.const_data_ptr<scalar_t>(), static_cast<int>(layers), static_cast<int>(dim), use_shared,
        z.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(), log_det.mutable_data_ptr<scalar_t>(),
        states.mutable_data_ptr<scalar_t>(), batch);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void planar_backward_cuda(const at::Tensor& grad_x, const at::Tensor& grad_log_det, const at::Tensor& params,
                          const at::Tensor& states, at::Tensor& grad_z, at::Tensor& grad_params) {
  const int64_t batch = grad_x.size(0), dim = grad_x.size(1), layers = params.size(0);
  const c10::cuda::CUDAGuard guard(grad_x.device());
  // With no samples the sums are zeros; otherwise every warp writes its own row, summed below.
  at::Tensor sums = batch == 0 ? at::zeros({layers, 2 * dim + 2}, grad_x.options())
                               : at::empty({layers, 2 * dim + 2}, grad_x.options());
  at::Tensor prep = at::empty({layers, 2 * dim + 2}, grad_x.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  const auto blocks = static_cast<unsigned int>((batch + kFlowThreads - 1) / kFlowThreads);
  AT_DISPATCH_FLOATING_TYPES(grad_x.scalar_type(), "planar_backward_cuda", [&] {
    const int64_t bytes = prep.numel() * static_cast<int64_t>(sizeof(scalar_t));
    const bool use_shared = bytes <= kFlowSharedBytes;
    planar_prepare_kernel<scalar_t><<<1, 128, 0, stream>>>(params.const_data_ptr<scalar_t>(), static_cast<int>(layers),
                                                            static_cast<int>(dim), prep.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (batch > 0) {
      const int64_t num_warps = int64_t(blocks) * (kFlowThreads / 32), num_sums = sums.numel();
      at::Tensor rows = at::empty({num_warps, num_sums}, grad_x.options());
      planar_backward_kernel<scalar_t><<<blocks, kFlowThreads, use_shared ? bytes : 0, stream>>>(
          prep.const_data_ptr<scalar_t>(), static_cast<int>(layers), static_cast<int>(dim), use_shared,
          grad_x.const_data_ptr<scalar_t>(), grad_log_det.const_data_ptr<scalar_t>(),
          states.const_data_ptr<scalar_t>(), grad_z.mutable_data_ptr<scalar_t>(), rows.mutable_data_ptr<scalar_t>(),
          num_sums, batch);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      sum_rows_kernel<scalar_t><<<sum_rows_blocks(num_sums), 256, 0, stream>>>(
          rows.const_data_ptr<scalar_t>(), num_warps, num_sums, sums.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    planar_param_grad_kernel<scalar_t><<<1, 128, 0, stream>>>(params.const_data_ptr<scalar_t>(),
                                                               static_cast<int>(layers), static_cast<int>(dim),
                                                               sums.const_data_ptr<scalar_t>(),
                                                               grad_params.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace pyvi
