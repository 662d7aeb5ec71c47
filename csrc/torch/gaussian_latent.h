// pyvi::gaussian_latent: the VAE's posterior heads, reparameterised sample and analytic KL in one
// op (math in ../common/gaussian_latent.h), and pyvi::gaussian_latent_backward.
//
// gaussian_latent.cpp holds the schemas, the argument checks, the output allocation, the C++
// autograd kernel and the registrations; the kernels below take contiguous, validated tensors (one
// dtype, one device) and write the outputs.
//
// Shapes: h (B, H) hidden units, w_mu and w_log_var (L, H), b_mu and b_log_var (L,), eps (B, L).
// Outputs (z, kl, mu, log_var): (B, L), (B,), (B, L), (B, L). The backward takes the four outputs'
// gradients (zeros for unused ones) and returns those of h, w_mu, b_mu, w_log_var, b_log_var, eps.
#pragma once

#include <ATen/core/Tensor.h>

namespace pyvi {

/// The forward's inputs and its outputs (allocated by the op).
struct LatentForward {
  at::Tensor h, w_mu, b_mu, w_log_var, b_log_var, eps;
  at::Tensor z, kl, mu, log_var;
};

/// The backward's inputs (upstream gradients, then the forward's inputs and outputs it needs) and its
/// outputs; grad_b_mu and grad_b_log_var come zeroed.
struct LatentBackward {
  at::Tensor grad_z, grad_kl, grad_mu, grad_log_var, h, w_mu, w_log_var, eps, mu, log_var;
  at::Tensor grad_h, grad_w_mu, grad_b_mu, grad_w_log_var, grad_b_log_var, grad_eps;
};

void gaussian_latent_cpu(const LatentForward& t);
void gaussian_latent_cuda(const LatentForward& t);
void gaussian_latent_backward_cpu(const LatentBackward& t);
void gaussian_latent_backward_cuda(const LatentBackward& t);

}  // namespace pyvi
