// CUDA kernels of pyvi::coupling_forward / pyvi::coupling_backward (NICE, RealNVP): one thread per
// sample running the tiny MLPs of ../../common/coupling.h, the packed weights staged in shared memory
// when they fit (else read through the cache), parameter gradients reduced per warp by shuffles into
// per-warp rows and summed in warp order (deterministic, flows_cuda.cuh). Wide conditioners (hidden >=
// 16) run the cooperative kernels of coupling_tiled_cuda.cu instead.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>

#include "../coupling.h"
#include "coupling_tiled.cuh"
#include "flows_cuda.cuh"

namespace pyvi {
namespace {

template <typename T>
__global__ void coupling_forward_kernel(const T* __restrict__ params_global, int64_t num_params, bool use_shared,
                                        CouplingShape shape, T scale_bound, const T* __restrict__ z,
                                        T* __restrict__ x, T* __restrict__ log_det, T* __restrict__ states,
                                        int64_t batch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const T* params = stage_in_shared(params_global, num_params, use_shared, reinterpret_cast<T*>(shared_raw));
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t(shape.num_couplings + 1) * shape.dim;
  if (i < batch)
    log_det[i] = coupling_forward_sample(params, shape, scale_bound, z + i * shape.dim, x + i * shape.dim,
                                         states + i * stride);
}

template <typename T>
__global__ void coupling_backward_kernel(const T* __restrict__ params_global, int64_t num_params, bool use_shared,
                                         CouplingShape shape, T scale_bound, const T* __restrict__ grad_x,
                                         const T* __restrict__ grad_log_det, const T* __restrict__ states,
                                         T* __restrict__ grad_z, T* __restrict__ rows, int64_t batch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const T* params = stage_in_shared(params_global, num_params, use_shared, reinterpret_cast<T*>(shared_raw));
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  // Lanes past the batch replay the last sample with zero upstream gradients: every lane must
  // reach every accumulate() call for the warp shuffles.
  const bool active = i < batch;
  const int64_t row = active ? i : batch - 1;
  const int64_t stride = int64_t(shape.num_couplings + 1) * shape.dim;
  T g[kCouplingMaxDim];
  for (int d = 0; d < shape.dim; ++d) g[d] = active ? grad_x[row * shape.dim + d] : T(0);
  WarpRowSums<T> add{rows, num_params};
  coupling_backward_sample(params, shape, scale_bound, states + row * stride, active ? grad_log_det[row] : T(0), g,
                           add);
  if (active)
    for (int d = 0; d < shape.dim; ++d) grad_z[i * shape.dim + d] = g[d];
}

}  // namespace

void coupling_forward_cuda(const CouplingConfig& config, const at::Tensor& z, const at::Tensor& params, at::Tensor& x,
                           at::Tensor& log_det, at::Tensor& states) {
  const int64_t batch = z.size(0), num_params = params.size(0);
  if (batch == 0) return;
  const c10::cuda::CUDAGuard guard(z.device());
  if (coupling_tiled_supported(config.shape, z.scalar_type()))
    return coupling_forward_tiled_cuda(config, z, params, x, log_det, states);
  const auto blocks = static_cast<unsigned int>((batch + kFlowThreads - 1) / kFlowThreads);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "coupling_forward_cuda", [&] {
    const int64_t bytes = num_params * static_cast<int64_t>(sizeof(scalar_t));
    const bool use_shared = bytes <= kFlowSharedBytes;
    coupling_forward_kernel<scalar_t><<<blocks, kFlowThreads, use_shared ? bytes : 0,
                                        at::cuda::getCurrentCUDAStream()>>>(
        params.const_data_ptr<scalar_t>(), num_params, use_shared, config.shape,
        static_cast<scalar_t>(config.scale_bound), z.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(),
        log_det.mutable_data_ptr<scalar_t>(), states.mutable_data_ptr<scalar_t>(), batch);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void coupling_backward_cuda(const CouplingConfig& config, const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                            const at::Tensor& params, const at::Tensor& states, at::Tensor& grad_z,
                            at::Tensor& grad_params) {
  const int64_t batch = grad_x.size(0), num_params = params.size(0);
  const c10::cuda::CUDAGuard guard(grad_x.device());
  if (batch == 0) {
    grad_params.zero_();
    return;
  }
  if (coupling_tiled_supported(config.shape, grad_x.scalar_type()))
    return coupling_backward_tiled_cuda(config, grad_x, grad_log_det, params, states, grad_z, grad_params);
  const auto blocks = static_cast<unsigned int>((batch + kFlowThreads - 1) / kFlowThreads);
  const int64_t num_warps = int64_t(blocks) * (kFlowThreads / 32);
  at::Tensor rows = at::empty({num_warps, num_params}, grad_x.options());
  AT_DISPATCH_FLOATING_TYPES(grad_x.scalar_type(), "coupling_backward_cuda", [&] {
    const int64_t bytes = num_params * static_cast<int64_t>(sizeof(scalar_t));
    const bool use_shared = bytes <= kFlowSharedBytes;
    coupling_backward_kernel<scalar_t><<<blocks, kFlowThreads, use_shared ? bytes : 0,
                                         at::cuda::getCurrentCUDAStream()>>>(
        params.const_data_ptr<scalar_t>(), num_params, use_shared, config.shape,
        static_cast<scalar_t>(config.scale_bound), grad_x.const_data_ptr<scalar_t>(),
        grad_log_det.const_data_ptr<scalar_t>(), states.const_data_ptr<scalar_t>(), grad_z.mutable_data_ptr<scalar_t>(),
        rows.mutable_data_ptr<scalar_t>(), batch);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    sum_rows_kernel<scalar_t><<<sum_rows_blocks(num_params), 256, 0, at::cuda::getCurrentCUDAStream()>>>(
        rows.const_data_ptr<scalar_t>(), num_warps, num_params, grad_params.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace pyvi
