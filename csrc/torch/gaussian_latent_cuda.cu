// CUDA kernels of pyvi::gaussian_latent (math in ../common/gaussian_latent.h): one thread per image
// forward (the heads' dots over the hidden units, then z and the KL), and backward one thread per
// (image, latent) for the per-dimension gradients, per (image, hidden unit) for grad_h and per
// (latent, hidden unit) for the weight gradients, each summing in a fixed order.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "../common/gaussian_latent.h"
#include "gaussian_latent.h"

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

LatentOutputs gaussian_latent_cuda(const at::Tensor& h_in, const at::Tensor& w_mu_in, const at::Tensor& b_mu_in,
                                   const at::Tensor& w_lv_in, const at::Tensor& b_lv_in, const at::Tensor& eps_in) {
  check_gaussian_latent_args(h_in, w_mu_in, b_mu_in, w_lv_in, b_lv_in, eps_in);
  TORCH_CHECK(h_in.is_cuda(), "gaussian_latent_cuda: h must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(h_in.device());
  const at::Tensor h = h_in.contiguous(), w_mu = w_mu_in.contiguous(), b_mu = b_mu_in.contiguous();
  const at::Tensor w_lv = w_lv_in.contiguous(), b_lv = b_lv_in.contiguous(), eps = eps_in.contiguous();
  const int64_t batch = h.size(0), hidden = h.size(1), latent = w_mu.size(0);
  at::Tensor z = at::empty({batch, latent}, h.options()), kl = at::empty({batch}, h.options());
  at::Tensor mu = at::empty({batch, latent}, h.options()), log_var = at::empty({batch, latent}, h.options());
  if (batch == 0) return {z, kl, mu, log_var};
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gaussian_latent_cuda", [&] {
    forward_kernel<scalar_t><<<grid_for(batch), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        h.const_data_ptr<scalar_t>(), w_mu.const_data_ptr<scalar_t>(), b_mu.const_data_ptr<scalar_t>(),
        w_lv.const_data_ptr<scalar_t>(), b_lv.const_data_ptr<scalar_t>(), eps.const_data_ptr<scalar_t>(),
        z.mutable_data_ptr<scalar_t>(), kl.mutable_data_ptr<scalar_t>(), mu.mutable_data_ptr<scalar_t>(),
        log_var.mutable_data_ptr<scalar_t>(), batch, hidden, latent);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {z, kl, mu, log_var};
}

LatentGrads gaussian_latent_backward_cuda(const at::Tensor& grad_z_in, const at::Tensor& grad_kl_in,
                                          const at::Tensor& grad_mu_in, const at::Tensor& grad_lv_in,
                                          const at::Tensor& h_in, const at::Tensor& w_mu_in,
                                          const at::Tensor& w_lv_in, const at::Tensor& eps_in,
                                          const at::Tensor& mu_in, const at::Tensor& lv_in) {
  check_gaussian_latent_backward_args(grad_z_in, grad_kl_in, grad_mu_in, grad_lv_in, h_in, w_mu_in, w_lv_in, eps_in,
                                      mu_in, lv_in);
  TORCH_CHECK(h_in.is_cuda(), "gaussian_latent_backward_cuda: h must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(h_in.device());
  const at::Tensor gz = grad_z_in.contiguous(), gk = grad_kl_in.contiguous();
  const at::Tensor gm = grad_mu_in.contiguous(), gv = grad_lv_in.contiguous();
  const at::Tensor h = h_in.contiguous(), w_mu = w_mu_in.contiguous(), w_lv = w_lv_in.contiguous();
  const at::Tensor eps = eps_in.contiguous(), mu = mu_in.contiguous(), lv = lv_in.contiguous();
  const int64_t batch = h.size(0), hidden = h.size(1), latent = w_mu.size(0);
  at::Tensor d_mu = at::empty({batch, latent}, h.options()), d_lv = at::empty({batch, latent}, h.options());
  at::Tensor grad_eps = at::empty({batch, latent}, h.options()), grad_h = at::empty({batch, hidden}, h.options());
  at::Tensor grad_w_mu = at::empty({latent, hidden}, h.options()), grad_w_lv = at::empty({latent, hidden}, h.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gaussian_latent_backward_cuda", [&] {
    if (batch * latent > 0) {
      latent_grads_kernel<scalar_t><<<grid_for(batch * latent), kThreads, 0, stream>>>(
          gz.const_data_ptr<scalar_t>(), gk.const_data_ptr<scalar_t>(), gm.const_data_ptr<scalar_t>(),
          gv.const_data_ptr<scalar_t>(), mu.const_data_ptr<scalar_t>(), lv.const_data_ptr<scalar_t>(),
          eps.const_data_ptr<scalar_t>(), d_mu.mutable_data_ptr<scalar_t>(), d_lv.mutable_data_ptr<scalar_t>(),
          grad_eps.mutable_data_ptr<scalar_t>(), batch * latent, latent);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (batch * hidden > 0) {
      grad_h_kernel<scalar_t><<<grid_for(batch * hidden), kThreads, 0, stream>>>(
          d_mu.const_data_ptr<scalar_t>(), d_lv.const_data_ptr<scalar_t>(), w_mu.const_data_ptr<scalar_t>(),
          w_lv.const_data_ptr<scalar_t>(), grad_h.mutable_data_ptr<scalar_t>(), batch, hidden, latent);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (latent * hidden > 0) {
      grad_w_kernel<scalar_t><<<grid_for(latent * hidden), kThreads, 0, stream>>>(
          d_mu.const_data_ptr<scalar_t>(), d_lv.const_data_ptr<scalar_t>(), h.const_data_ptr<scalar_t>(),
          grad_w_mu.mutable_data_ptr<scalar_t>(), grad_w_lv.mutable_data_ptr<scalar_t>(), batch, hidden, latent);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {grad_h, grad_w_mu, d_mu.sum(0), grad_w_lv, d_lv.sum(0), grad_eps};
}

}  // namespace pyvi

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("gaussian_latent", &pyvi::gaussian_latent_cuda);
  m.impl("gaussian_latent_backward", &pyvi::gaussian_latent_backward_cuda);
}
