// CUDA kernels of pyvi::coupling_forward / pyvi::coupling_backward (NICE, RealNVP): one thread per
// sample running the tiny MLPs of ../common/coupling.h, the packed weights staged in shared memory
// when they fit (else read through the cache), parameter gradients reduced per warp by shuffles into
// per-warp rows and summed in warp order (deterministic, flows_cuda.cuh). Wide conditioners (hidden >=
// 16) run the cooperative kernels of cuda/coupling_tiled_cuda.cu.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/coupling.h"
#include "flows.h"
#include "flows_cuda.cuh"
#include "cuda/coupling_tiled.cuh"

namespace pyvi {
namespace {

CouplingShape cuda_shape(int64_t dim, int64_t num_couplings, int64_t hidden, int64_t depth, bool affine) {
  return {static_cast<int>(dim), static_cast<int>(num_couplings), static_cast<int>(hidden), static_cast<int>(depth),
          affine};
}

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

std::tuple<at::Tensor, at::Tensor, at::Tensor> coupling_forward_cuda(const at::Tensor& z_in, const at::Tensor& params_in,
                                                                     int64_t num_couplings, int64_t hidden,
                                                                     int64_t depth, bool affine, double scale_bound) {
  check_coupling_args(z_in, params_in, num_couplings, hidden, depth, affine, scale_bound);
  TORCH_CHECK(z_in.is_cuda(), "coupling_forward_cuda: z must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(z_in.device());
  const at::Tensor z = z_in.contiguous(), params = params_in.contiguous();
  if (coupling_tiled_supported(z.size(1), hidden, depth, affine, z.scalar_type()))
    return coupling_forward_tiled_cuda(z, params, num_couplings, hidden, depth, affine, scale_bound);
  const int64_t batch = z.size(0), dim = z.size(1), num_params = params.size(0);
  at::Tensor x = at::empty({batch, dim}, z.options());
  at::Tensor log_det = at::empty({batch}, z.options());
  at::Tensor states = at::empty({batch, num_couplings + 1, dim}, z.options());
  if (batch == 0) return {x, log_det, states};
  const auto shape = cuda_shape(dim, num_couplings, hidden, depth, affine);
  const auto blocks = static_cast<unsigned int>((batch + kFlowThreads - 1) / kFlowThreads);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "coupling_forward_cuda", [&] {
    const int64_t bytes = num_params * static_cast<int64_t>(sizeof(scalar_t));
    const bool use_shared = bytes <= kFlowSharedBytes;
    coupling_forward_kernel<scalar_t><<<blocks, kFlowThreads, use_shared ? bytes : 0,
                                        at::cuda::getCurrentCUDAStream()>>>(
        params.const_data_ptr<scalar_t>(), num_params, use_shared, shape, static_cast<scalar_t>(scale_bound),
        z.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(), log_det.mutable_data_ptr<scalar_t>(),
        states.mutable_data_ptr<scalar_t>(), batch);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {x, log_det, states};
}

std::tuple<at::Tensor, at::Tensor> coupling_backward_cuda(const at::Tensor& grad_x_in, const at::Tensor& grad_log_det_in,
                                                          const at::Tensor& params_in, const at::Tensor& states_in,
                                                          int64_t num_couplings, int64_t hidden, int64_t depth,
                                                          bool affine, double scale_bound) {
  check_coupling_backward_args(grad_x_in, grad_log_det_in, params_in, states_in, num_couplings, hidden, depth, affine,
                               scale_bound);
  TORCH_CHECK(grad_x_in.is_cuda(), "coupling_backward_cuda: tensors must be CUDA tensors");
  const c10::cuda::CUDAGuard guard(grad_x_in.device());
  const at::Tensor grad_x = grad_x_in.contiguous(), grad_log_det = grad_log_det_in.contiguous();
  const at::Tensor params = params_in.contiguous(), states = states_in.contiguous();
  if (coupling_tiled_supported(grad_x.size(1), hidden, depth, affine, grad_x.scalar_type()))
    return coupling_backward_tiled_cuda(grad_x, grad_log_det, params, states, num_couplings, hidden, depth, affine,
                                        scale_bound);
  const int64_t batch = grad_x.size(0), dim = grad_x.size(1), num_params = params.size(0);
  at::Tensor grad_z = at::empty({batch, dim}, grad_x.options());
  if (batch == 0) return {grad_z, at::zeros({num_params}, grad_x.options())};
  at::Tensor grad_params = at::empty({num_params}, grad_x.options());
  const auto shape = cuda_shape(dim, num_couplings, hidden, depth, affine);
  const auto blocks = static_cast<unsigned int>((batch + kFlowThreads - 1) / kFlowThreads);
  const int64_t num_warps = int64_t(blocks) * (kFlowThreads / 32);
  at::Tensor rows = at::empty({num_warps, num_params}, grad_x.options());
  AT_DISPATCH_FLOATING_TYPES(grad_x.scalar_type(), "coupling_backward_cuda", [&] {
    const int64_t bytes = num_params * static_cast<int64_t>(sizeof(scalar_t));
    const bool use_shared = bytes <= kFlowSharedBytes;
    coupling_backward_kernel<scalar_t><<<blocks, kFlowThreads, use_shared ? bytes : 0,
                                         at::cuda::getCurrentCUDAStream()>>>(
        params.const_data_ptr<scalar_t>(), num_params, use_shared, shape, static_cast<scalar_t>(scale_bound),
        grad_x.const_data_ptr<scalar_t>(), grad_log_det.const_data_ptr<scalar_t>(), states.const_data_ptr<scalar_t>(),
        grad_z.mutable_data_ptr<scalar_t>(), rows.mutable_data_ptr<scalar_t>(), batch);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    sum_rows_kernel<scalar_t><<<sum_rows_blocks(num_params), 256, 0, at::cuda::getCurrentCUDAStream()>>>(
        rows.const_data_ptr<scalar_t>(), num_warps, num_params, grad_params.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_z, grad_params};
}

}  // namespace pyvi

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("coupling_forward", &pyvi::coupling_forward_cuda);
  m.impl("coupling_backward", &pyvi::coupling_backward_cuda);
}
