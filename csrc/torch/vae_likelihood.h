// Declarations of the fused VAE likelihood kernels (math in ../common/vae_likelihood.h).
//
// Shapes: params (S, B, D) (logits or means for S importance samples of a batch of B images),
// x (B, D) broadcast over S, log_scale a one-element tensor; outputs log p(x | params) summed over
// the D pixels, (S, B), and the gradient with respect to params, (S, B, D).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pyvi {

at::Tensor binarize_cpu(const at::Tensor& probs, int64_t seed);
at::Tensor bernoulli_log_lik_cpu(const at::Tensor& logits, const at::Tensor& x, int64_t seed, bool dynamic);
at::Tensor bernoulli_log_lik_backward_cpu(const at::Tensor& grad, const at::Tensor& logits, const at::Tensor& x,
                                          int64_t seed, bool dynamic);
at::Tensor gaussian_log_lik_cpu(const at::Tensor& mean, const at::Tensor& x, const at::Tensor& log_scale,
                                int64_t seed, bool dynamic);
at::Tensor gaussian_log_lik_backward_cpu(const at::Tensor& grad, const at::Tensor& mean, const at::Tensor& x,
                                         const at::Tensor& log_scale, int64_t seed, bool dynamic);

at::Tensor binarize_cuda(const at::Tensor& probs, int64_t seed);
at::Tensor bernoulli_log_lik_cuda(const at::Tensor& logits, const at::Tensor& x, int64_t seed, bool dynamic);
at::Tensor bernoulli_log_lik_backward_cuda(const at::Tensor& grad, const at::Tensor& logits, const at::Tensor& x,
                                           int64_t seed, bool dynamic);
at::Tensor gaussian_log_lik_cuda(const at::Tensor& mean, const at::Tensor& x, const at::Tensor& log_scale,
                                 int64_t seed, bool dynamic);
at::Tensor gaussian_log_lik_backward_cuda(const at::Tensor& grad, const at::Tensor& mean, const at::Tensor& x,
                                          const at::Tensor& log_scale, int64_t seed, bool dynamic);

/// Argument checks shared by the CPU and CUDA kernels (TORCH_CHECK -> ValueError / TypeError).
void check_likelihood_args(const at::Tensor& params, const at::Tensor& x, int64_t seed, const char* name);
void check_log_scale(const at::Tensor& log_scale, const at::Tensor& params);
void check_grad(const at::Tensor& grad, const at::Tensor& params);

}  // namespace pyvi
