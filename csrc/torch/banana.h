// pyvi::banana_log_joint: log p(y, theta) of the banana model and its gradient for theta (B, 2),
// O(1) per point from the data's sufficient statistics (math in ../common/banana.h).
//
// banana.cpp holds the schema, the argument checks, the one builder of the config struct
// (BananaParams, from the five scalars of the schema), the output allocation and the C++ autograd
// kernel; the kernels below take contiguous, validated tensors and write the outputs.
#pragma once

#include <ATen/core/Tensor.h>

#include "../common/banana.h"

namespace pyvi {

/// log_prob (B,) and grad (B, 2) of theta (B, 2); all contiguous, one floating dtype, one device.
void banana_log_joint_cpu(const BananaParams<double>& params, const at::Tensor& theta, at::Tensor& log_prob,
                          at::Tensor& grad);
void banana_log_joint_cuda(const BananaParams<double>& params, const at::Tensor& theta, at::Tensor& log_prob,
                           at::Tensor& grad);

}  // namespace pyvi
