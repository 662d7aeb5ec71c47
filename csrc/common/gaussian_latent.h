// Per-element math of pyvi::gaussian_latent (csrc/torch/gaussian_latent.cpp), shared by its CPU
// and CUDA kernels: the VAE's Gaussian posterior heads, reparameterised sample and analytic KL,
//   mu = h W_mu^T + b_mu,  log_var = h W_lv^T + b_lv,  z = mu + exp(log_var / 2) eps,
//   KL(N(mu, exp(log_var)) || N(0, I)) = 1/2 sum_l (mu_l^2 + exp(log_var_l) - 1 - log_var_l).
// In plain torch these are ~15 small ops and as many autograd nodes per step (two of them GEMMs with
// two output columns); here one forward and one backward op.
//
// Backward, with upstream gradients g_z, g_kl (per image), g_mu, g_lv (the op also returns mu and
// log_var, which stay differentiable): with s = exp(log_var / 2),
//   dL/dmu = g_mu + g_z + g_kl mu,   dL/dlog_var = g_lv + g_z eps s / 2 + g_kl (s^2 - 1) / 2,
//   dL/deps = g_z s;  then h, W and b get the usual linear-layer gradients from dL/dmu, dL/dlog_var.
//
// References:
//   Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114 (appendix B: the KL).
#pragma once

#include <cmath>
#include <cstdint>

#include "macros.h"

namespace pyvi {

/// z = mu + exp(log_var / 2) eps.
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t latent_sample(scalar_t mu, scalar_t log_var, scalar_t eps) {
  return mu + std::exp(scalar_t(0.5) * log_var) * eps;
}

/// One latent dimension's term of KL(N(mu, exp(log_var)) || N(0, 1)).
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t latent_kl_term(scalar_t mu, scalar_t log_var) {
  return scalar_t(0.5) * (mu * mu + std::exp(log_var) - scalar_t(1) - log_var);
}

/// The gradients with respect to mu, log_var and eps of one latent dimension (see the header).
template <typename scalar_t>
PYVI_HOST_DEVICE void latent_grads(scalar_t grad_z, scalar_t grad_kl, scalar_t grad_mu, scalar_t grad_log_var,
                                   scalar_t mu, scalar_t log_var, scalar_t eps, scalar_t* d_mu, scalar_t* d_log_var,
                                   scalar_t* d_eps) {
  const scalar_t s = std::exp(scalar_t(0.5) * log_var);
  *d_mu = grad_mu + grad_z + grad_kl * mu;
  *d_log_var = grad_log_var + scalar_t(0.5) * (grad_z * eps * s + grad_kl * (s * s - scalar_t(1)));
  *d_eps = grad_z * s;
}

/// sum_k a[k] b[k] in plain order (the CUDA kernels' dot; the CPU kernels use vector lanes).
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t latent_dot(const scalar_t* a, const scalar_t* b, int64_t n) {
  scalar_t acc = 0;
  for (int64_t k = 0; k < n; ++k) acc += a[k] * b[k];
  return acc;
}

}  // namespace pyvi
