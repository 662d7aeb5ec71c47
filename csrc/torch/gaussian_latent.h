// Declarations of pyvi::gaussian_latent: the VAE's posterior heads, reparameterised sample and
// analytic KL in one op (math in ../common/gaussian_latent.h).
//
// Shapes: h (B, H) hidden units, w_mu and w_log_var (L, H), b_mu and b_log_var (L,), eps (B, L).
// Outputs (z, kl, mu, log_var): (B, L), (B,), (B, L), (B, L). The backward takes the four outputs'
// gradients (zeros for unused ones) and returns those of h, w_mu, b_mu, w_log_var, b_log_var, eps.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace pyvi {

using LatentOutputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using LatentGrads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

LatentOutputs gaussian_latent_cpu(const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& b_mu,
                                  const at::Tensor& w_log_var, const at::Tensor& b_log_var, const at::Tensor& eps);
LatentGrads gaussian_latent_backward_cpu(const at::Tensor& grad_z, const at::Tensor& grad_kl,
                                         const at::Tensor& grad_mu, const at::Tensor& grad_log_var,
                                         const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& w_log_var,
                                         const at::Tensor& eps, const at::Tensor& mu, const at::Tensor& log_var);
LatentOutputs gaussian_latent_cuda(const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& b_mu,
                                   const at::Tensor& w_log_var, const at::Tensor& b_log_var, const at::Tensor& eps);
LatentGrads gaussian_latent_backward_cuda(const at::Tensor& grad_z, const at::Tensor& grad_kl,
                                          const at::Tensor& grad_mu, const at::Tensor& grad_log_var,
                                          const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& w_log_var,
                                          const at::Tensor& eps, const at::Tensor& mu, const at::Tensor& log_var);

/// Argument checks shared by the CPU and CUDA kernels (TORCH_CHECK -> ValueError / TypeError).
void check_gaussian_latent_args(const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& b_mu,
                                const at::Tensor& w_log_var, const at::Tensor& b_log_var, const at::Tensor& eps);
void check_gaussian_latent_backward_args(const at::Tensor& grad_z, const at::Tensor& grad_kl,
                                         const at::Tensor& grad_mu, const at::Tensor& grad_log_var,
                                         const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& w_log_var,
                                         const at::Tensor& eps, const at::Tensor& mu, const at::Tensor& log_var);

}  // namespace pyvi
