// CUDA kernels of pyvi::gaussian_latent (math in ../../common/gaussian_latent.h): one thread per image
// forward (the heads' dots over the hidden units, then z and the KL), and backward one thread per
// (image, latent) for the per-dimension gradients, per (image, hidden unit) for grad_h and per
// (latent, hidden unit) for the weight gradients, each summing in a fixed order.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

#include "../../common/gaussian_latent.h"
#include "../gaussian_latent.h"

namespace pyvi {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65535)));
}

#define PYVI_GRID_STRIDE(i, n)                                                                  \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename scalar_t>
__global__ void forward_kernel(const scalar_t* __restrict__ h, const scalar_t* __restrict__ w_mu,
                               const scalar_t* __restrict__ b_mu, const scalar_t* __restrict__ w_lv,
                               const scalar_t* __restrict__ b_lv, const scalar_t* __restrict__ eps,
                               scalar_t* __restrict__ z, scalar_t* __restrict__ kl, scalar_t* __restrict__ mu,
                               scalar_t* __restrict__ lv, int64_t batch, int64_t hidden, int64_t latent) {
  PYVI_GRID_STRIDE(b, batch) {
    scalar_t total = 0;
    for (int64_t l = 0; l < latent; ++l) {
      const scalar_t m = b_mu[l] + latent_dot(h + b * hidden, w_mu + l * hidden, hidden);
      const scalar_t v = b_lv[l] + latent_dot(h + b * hidden, w_lv + l * hidden, hidden);
      const int64_t i = b * latent + l;
      mu[i] = m;
      lv[i] = v;
      z[i] = latent_sample(m, v, eps[i]);
      total += latent_kl_term(m, v);
    }
    kl[b] = total;
  }
}

template <typename scalar_t>
__global__ void latent_grads_kernel(const scalar_t* __restrict__ gz, const scalar_t* __restrict__ gk,
                                    const scalar_t* __restrict__ gm, const scalar_t* __restrict__ gv,
                                    const scalar_t* __restrict__ mu, const scalar_t* __restrict__ lv,
                                    const scalar_t* __restrict__ eps, scalar_t* __restrict__ d_mu,
                                    scalar_t* __restrict__ d_lv, scalar_t* __restrict__ d_eps, int64_t n,
                                    int64_t latent) {
  PYVI_GRID_STRIDE(i, n) {
    latent_grads(gz[i], gk[i / latent], gm[i], gv[i], mu[i], lv[i], eps[i], d_mu + i, d_lv + i, d_eps + i);
  }
}

template <typename scalar_t>
__global__ void grad_h_kernel(const scalar_t* __restrict__ d_mu, const scalar_t* __restrict__ d_lv,
                              const scalar_t* __restrict__ w_mu, const scalar_t* __restrict__ w_lv,
                              scalar_t* __restrict__ grad_h, int64_t batch, int64_t hidden, int64_t latent) {
  PYVI_GRID_STRIDE(i, batch * hidden) {
    const int64_t b = i / hidden, k = i % hidden;
    scalar_t acc = 0;
    for (int64_t l = 0; l < latent; ++l)
      acc += d_mu[b * latent + l] * w_mu[l * hidden + k] + d_lv[b * latent + l] * w_lv[l * hidden + k];
    grad_h[i] = acc;
  }
}

template <typename scalar_t>
__global__ void grad_w_kernel(const scalar_t* __restrict__ d_mu, const scalar_t* __restrict__ d_lv,
                              const scalar_t* __restrict__ h, scalar_t* __restrict__ grad_w_mu,
                              scalar_t* __restrict__ grad_w_lv, int64_t batch, int64_t hidden, int64_t latent) {
  PYVI_GRID_STRIDE(i, latent * hidden) {
    const int64_t l = i / hidden, k = i % hidden;
    scalar_t acc_mu = 0, acc_lv = 0;
    for (int64_t b = 0; b < batch; ++b) {
      acc_mu += d_mu[b * latent + l] * h[b * hidden + k];
      acc_lv += d_lv[b * latent + l] * h[b * hidden + k];
    }
    grad_w_mu[i] = acc_mu;
    grad_w_lv[i] = acc_lv;
  }
}

}  // namespace

void gaussian_latent_cuda(const LatentForward& t) {
  const int64_t batch = t.h.size(0), hidden = t.h.size(1), latent = t.w_mu.size(0);
  if (batch == 0) return;
  const c10::cuda::CUDAGuard guard(t.h.device());
  AT_DISPATCH_FLOATING_TYPES(t.h.scalar_type(), "gaussian_latent_cuda", [&] {
    forward_kernel<scalar_t><<<grid_for(batch), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        t.h.const_data_ptr<scalar_t>(), t.w_mu.const_data_ptr<scalar_t>(), t.b_mu.const_data_ptr<scalar_t>(),
        t.w_log_var.const_data_ptr<scalar_t>(), t.b_log_var.const_data_ptr<scalar_t>(),
        t.eps.const_data_ptr<scalar_t>(), t.z.mutable_data_ptr<scalar_t>(), t.kl.mutable_data_ptr<scalar_t>(),
        t.mu.mutable_data_ptr<scalar_t>(), t.log_var.mutable_data_ptr<scalar_t>(), batch, hidden, latent);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void gaussian_latent_backward_cuda(const LatentBackward& t) {
  const int64_t batch = t.h.size(0), hidden = t.h.size(1), latent = t.w_mu.size(0);
  const c10::cuda::CUDAGuard guard(t.h.device());
  at::Tensor d_mu = at::empty({batch, latent}, t.h.options()), d_lv = at::empty({batch, latent}, t.h.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(t.h.scalar_type(), "gaussian_latent_backward_cuda", [&] {
    if (batch * latent > 0) {
      latent_grads_kernel<scalar_t><<<grid_for(batch * latent), kThreads, 0, stream>>>(
          t.grad_z.const_data_ptr<scalar_t>(), t.grad_kl.const_data_ptr<scalar_t>(),
          t.grad_mu.const_data_ptr<scalar_t>(), t.grad_log_var.const_data_ptr<scalar_t>(),
          t.mu.const_data_ptr<scalar_t>(), t.log_var.const_data_ptr<scalar_t>(), t.eps.const_data_ptr<scalar_t>(),
          d_mu.mutable_data_ptr<scalar_t>(), d_lv.mutable_data_ptr<scalar_t>(), t.grad_eps.mutable_data_ptr<scalar_t>(),
          batch * latent, latent);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (batch * hidden > 0) {
      grad_h_kernel<scalar_t><<<grid_for(batch * hidden), kThreads, 0, stream>>>(
          d_mu.const_data_ptr<scalar_t>(), d_lv.const_data_ptr<scalar_t>(), t.w_mu.const_data_ptr<scalar_t>(),
          t.w_log_var.const_data_ptr<scalar_t>(), t.grad_h.mutable_data_ptr<scalar_t>(), batch, hidden, latent);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (latent * hidden > 0) {
      grad_w_kernel<scalar_t><<<grid_for(latent * hidden), kThreads, 0, stream>>>(
          d_mu.const_data_ptr<scalar_t>(), d_lv.const_data_ptr<scalar_t>(), t.h.const_data_ptr<scalar_t>(),
          t.grad_w_mu.mutable_data_ptr<scalar_t>(), t.grad_w_log_var.mutable_data_ptr<scalar_t>(), batch, hidden,
          latent);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  // Bias gradients: column sums, written into the op's outputs (handles sharing their storage).
  at::Tensor grad_b_mu = t.grad_b_mu, grad_b_log_var = t.grad_b_log_var;
  at::sum_out(grad_b_mu, d_mu, {0});
  at::sum_out(grad_b_log_var, d_lv, {0});
}

}  // namespace pyvi
