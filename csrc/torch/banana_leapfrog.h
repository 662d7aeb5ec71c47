// pyvi::banana_leapfrog: every chain's whole leapfrog trajectory on the banana in one op, for the
// torch HMC sampler (math in ../common/banana_leapfrog.h).
//
// banana_leapfrog.cpp holds the schema, the argument checks and the registration; the kernels below
// take contiguous, validated tensors and update x, momentum and grad in place.
#pragma once

#include <ATen/core/Tensor.h>

#include "../common/banana_leapfrog.h"

namespace pyvi {

/// x, momentum, grad (C, 2) updated in place; step_size (C,) of their dtype; num_steps (C,) int32;
/// log_prob (C,) written.
void banana_leapfrog_cpu(const BananaParams<double>& params, at::Tensor& x, at::Tensor& momentum, at::Tensor& grad,
                         const at::Tensor& step_size, const at::Tensor& num_steps, at::Tensor& log_prob);
void banana_leapfrog_cuda(const BananaParams<double>& params, at::Tensor& x, at::Tensor& momentum, at::Tensor& grad,
                          const at::Tensor& step_size, const at::Tensor& num_steps, at::Tensor& log_prob);

}  // namespace pyvi
