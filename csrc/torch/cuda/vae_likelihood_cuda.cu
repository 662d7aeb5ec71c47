// CUDA kernels of the fused VAE likelihood ops: one warp per row of D pixels forward (shuffle
// reduction), one thread per pixel backward, the per-pixel math from ../../common/vae_likelihood.h.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

#include "../../common/vae_likelihood.h"
#include "../vae_likelihood.h"

namespace pyvi {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

enum class Likelihood { kBernoulli, kGaussian };

template <typename scalar_t, Likelihood kind>
__device__ __forceinline__ scalar_t pixel_log_prob(scalar_t p, scalar_t target, GaussianInvScale<scalar_t> inv_scale) {
  if constexpr (kind == Likelihood::kBernoulli)
    return bernoulli_log_prob(p, target);
  else
    return gaussian_log_prob_kernel(p, target, inv_scale);
}

template <typename scalar_t, Likelihood kind>
__device__ __forceinline__ scalar_t pixel_grad(scalar_t p, scalar_t target, GaussianInvScale<scalar_t> inv_scale) {
  if constexpr (kind == Likelihood::kBernoulli)
    return bernoulli_log_prob_grad(p, target);
  else
    return gaussian_log_prob_grad(p, target, inv_scale);
}

template <typename scalar_t>
__global__ void binarize_kernel(const scalar_t* __restrict__ p, scalar_t* __restrict__ o, int64_t n, uint64_t key) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    o[i] = binary_pixel(p[i], key, static_cast<uint64_t>(i));
}

template <typename scalar_t, Likelihood kind>
__global__ void forward_kernel(const scalar_t* __restrict__ params, const scalar_t* __restrict__ x,
                               const scalar_t* __restrict__ log_scale, scalar_t* __restrict__ out, int64_t rows,
                               int64_t batch, int64_t pixels, uint64_t key, bool dynamic) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const scalar_t s = kind == Likelihood::kGaussian ? log_scale[0] : scalar_t(0);
  const GaussianInvScale<scalar_t> inv_scale = gaussian_inv_scale(s);
  const int64_t b = row % batch;
  const scalar_t* pr = params + row * pixels;
  const scalar_t* xr = x + b * pixels;
  const uint64_t base = static_cast<uint64_t>(b * pixels);
  scalar_t acc = 0;
  for (int64_t d = lane; d < pixels; d += kWarp) {
    const scalar_t target = likelihood_target(xr[d], dynamic, key, base + d);
    acc += pixel_log_prob<scalar_t, kind>(pr[d], target, inv_scale);
  }
  for (int offset = kWarp / 2; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
  if (lane == 0) {
    if constexpr (kind == Likelihood::kGaussian) acc += static_cast<scalar_t>(pixels) * gaussian_log_norm(s);
    out[row] = acc;
  }
}

template <typename scalar_t, Likelihood kind>
__global__ void backward_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ params,
                                const scalar_t* __restrict__ x, const scalar_t* __restrict__ log_scale,
                                scalar_t* __restrict__ out, int64_t n, int64_t batch, int64_t pixels, uint64_t key,
                                bool dynamic) {
  const GaussianInvScale<scalar_t> inv_scale =
      kind == Likelihood::kGaussian ? gaussian_inv_scale(log_scale[0]) : GaussianInvScale<scalar_t>{1, 1};
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / pixels, d = i - row * pixels;
    const int64_t b = row % batch;
    const int64_t xi = b * pixels + d;
    const scalar_t target = likelihood_target(x[xi], dynamic, key, static_cast<uint64_t>(xi));
    out[i] = grad[row] * pixel_grad<scalar_t, kind>(params[i], target, inv_scale);
  }
}

unsigned int grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535));
}

/// log_scale: the Gaussian's one-element tensor, or any tensor of the dtype for the Bernoulli (unread).
template <Likelihood kind>
void forward_cuda(const LikelihoodConfig& config, const at::Tensor& params, const at::Tensor& x,
                  const at::Tensor& log_scale, at::Tensor& out) {
  const int64_t rows = params.size(0) * params.size(1);
  if (rows == 0) return;
  const c10::cuda::CUDAGuard guard(params.device());
  const int64_t rows_per_block = kThreads / kWarp;
  const auto blocks = static_cast<unsigned int>((rows + rows_per_block - 1) / rows_per_block);
  AT_DISPATCH_FLOATING_TYPES(params.scalar_type(), "vae_log_lik_cuda", [&] {
    forward_kernel<scalar_t, kind><<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        params.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), log_scale.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), rows, params.size(1), params.size(2), config.key, config.dynamic);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <Likelihood kind>
void backward_cuda(const LikelihoodConfig& config, const at::Tensor& grad, const at::Tensor& params,
                   const at::Tensor& x, const at::Tensor& log_scale, at::Tensor& out) {
  const int64_t n = params.numel();
  if (n == 0) return;
  const c10::cuda::CUDAGuard guard(params.device());
  AT_DISPATCH_FLOATING_TYPES(params.scalar_type(), "vae_log_lik_backward_cuda", [&] {
    backward_kernel<scalar_t, kind><<<grid_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        grad.const_data_ptr<scalar_t>(), params.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
        log_scale.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n, params.size(1), params.size(2),
        config.key, config.dynamic);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

void binarize_cuda(const at::Tensor& probs, uint64_t key, at::Tensor& out) {
  const int64_t n = probs.numel();
  if (n == 0) return;
  const c10::cuda::CUDAGuard guard(probs.device());
  AT_DISPATCH_FLOATING_TYPES(probs.scalar_type(), "binarize_cuda", [&] {
    binarize_kernel<scalar_t><<<grid_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        probs.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n, key);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void bernoulli_log_lik_cuda(const LikelihoodConfig& config, const at::Tensor& logits, const at::Tensor& x,
                            at::Tensor& out) {
  forward_cuda<Likelihood::kBernoulli>(config, logits, x, logits, out);
}

void bernoulli_log_lik_backward_cuda(const LikelihoodConfig& config, const at::Tensor& grad, const at::Tensor& logits,
                                     const at::Tensor& x, at::Tensor& out) {
  backward_cuda<Likelihood::kBernoulli>(config, grad, logits, x, logits, out);
}

void gaussian_log_lik_cuda(const LikelihoodConfig& config, const at::Tensor& mean, const at::Tensor& x,
                           const at::Tensor& log_scale, at::Tensor& out) {
  forward_cuda<Likelihood::kGaussian>(config, mean, x, log_scale, out);
}

void gaussian_log_lik_backward_cuda(const LikelihoodConfig& config, const at::Tensor& grad, const at::Tensor& mean,
                                    const at::Tensor& x, const at::Tensor& log_scale, at::Tensor& out) {
  backward_cuda<Likelihood::kGaussian>(config, grad, mean, x, log_scale, out);
}

}  // namespace pyvi
