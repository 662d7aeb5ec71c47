// pyvi::planar_forward / pyvi::planar_backward: a whole planar flow stack (Rezende & Mohamed 2015,
// arXiv:1505.05770) as one forward and one analytic backward op (math in ../common/planar.h).
//
// planar.cpp holds the schemas, the argument checks, the output allocation, the C++ autograd kernel
// and the registrations; the kernels below take contiguous, validated tensors (one dtype, one
// device) and write the outputs. The stack has no configuration besides its tensors' shapes.
//
// Shapes: z (B, D), params (K, 2D+1) rows [u, w, b]; forward outputs x (B, D), log_det (B,) and the
// input of every layer, states (B, K, D), which the backward reads. Backward: grad_x (B, D),
// grad_log_det (B,) -> grad_z (B, D), grad_params (K, 2D+1).
#pragma once

#include <ATen/core/Tensor.h>

namespace pyvi {

void planar_forward_cpu(const at::Tensor& z, const at::Tensor& params, at::Tensor& x, at::Tensor& log_det,
                        at::Tensor& states);
void planar_forward_cuda(const at::Tensor& z, const at::Tensor& params, at::Tensor& x, at::Tensor& log_det,
                         at::Tensor& states);
void planar_backward_cpu(const at::Tensor& grad_x, const at::Tensor& grad_log_det, const at::Tensor& params,
                         const at::Tensor& states, at::Tensor& grad_z, at::Tensor& grad_params);
void planar_backward_cuda(const at::Tensor& grad_x, const at::Tensor& grad_log_det, const at::Tensor& params,
                          const at::Tensor& states, at::Tensor& grad_z, at::Tensor& grad_params);

}  // namespace pyvi
