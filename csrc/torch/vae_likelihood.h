// The fused VAE decoder likelihoods and dynamic binarisation (math in ../common/vae_likelihood.h):
// pyvi::binarize, pyvi::bernoulli_log_lik(_backward), pyvi::gaussian_log_lik(_backward).
//
// vae_likelihood.cpp holds the schemas, the argument checks, the one builder of the config struct
// (LikelihoodConfig, from the schema's seed and dynamic flag), the output allocation, the C++
// autograd kernels and the registrations; the kernels below take contiguous, validated tensors (one
// dtype, one device) and write the outputs.
//
// Shapes: params (S, B, D) (logits or means for S importance samples of a batch of B images),
// x (B, D) broadcast over S, log_scale a one-element tensor; forward output log p(x | params)
// summed over the D pixels, (S, B); backward: grad (S, B) -> the gradient with respect to params,
// (S, B, D).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pyvi {

/// Where a likelihood's targets come from: x itself, or (dynamic) its counter-based Bernoulli draw
/// under `key` = counter_key(seed).
struct LikelihoodConfig {
  uint64_t key;
  bool dynamic;
};

void binarize_cpu(const at::Tensor& probs, uint64_t key, at::Tensor& out);
void bernoulli_log_lik_cpu(const LikelihoodConfig& config, const at::Tensor& logits, const at::Tensor& x,
                           at::Tensor& out);
void bernoulli_log_lik_backward_cpu(const LikelihoodConfig& config, const at::Tensor& grad, const at::Tensor& logits,
                                    const at::Tensor& x, at::Tensor& out);
void gaussian_log_lik_cpu(const LikelihoodConfig& config, const at::Tensor& mean, const at::Tensor& x,
                          const at::Tensor& log_scale, at::Tensor& out);
void gaussian_log_lik_backward_cpu(const LikelihoodConfig& config, const at::Tensor& grad, const at::Tensor& mean,
                                   const at::Tensor& x, const at::Tensor& log_scale, at::Tensor& out);

void binarize_cuda(const at::Tensor& probs, uint64_t key, at::Tensor& out);
void bernoulli_log_lik_cuda(const LikelihoodConfig& config, const at::Tensor& logits, const at::Tensor& x,
                            at::Tensor& out);
void bernoulli_log_lik_backward_cuda(const LikelihoodConfig& config, const at::Tensor& grad, const at::Tensor& logits,
                                     const at::Tensor& x, at::Tensor& out);
void gaussian_log_lik_cuda(const LikelihoodConfig& config, const at::Tensor& mean, const at::Tensor& x,
                           const at::Tensor& log_scale, at::Tensor& out);
void gaussian_log_lik_backward_cuda(const LikelihoodConfig& config, const at::Tensor& grad, const at::Tensor& mean,
                                    const at::Tensor& x, const at::Tensor& log_scale, at::Tensor& out);

}  // namespace pyvi
