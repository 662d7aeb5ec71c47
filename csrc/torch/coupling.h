// pyvi::coupling_forward / pyvi::coupling_backward: a whole stack of coupling layers, NICE
// (additive, Dinh et al. 2014, arXiv:1410.8516) or RealNVP (affine, Dinh et al. 2016,
// arXiv:1605.08803), as one forward and one analytic backward op (math and packed layout in
// ../common/coupling.h).
//
// The stack's configuration crosses the op boundary as ONE value, `float[] config` =
// [num_couplings, hidden, depth, affine, scale_bound], built by pyvi.ops.coupling.op_config in
// Python and parsed once per call by coupling_config (coupling.cpp) into CouplingConfig. coupling.cpp
// also holds the schemas, the argument checks, the output allocation, the C++ autograd kernel, the
// registrations, and the exports of the layout and the size limits to Python
// (pyvi._C.coupling_layout, pyvi._C.coupling_max_*). The kernels below take contiguous, validated
// tensors (one dtype, one device) and write the outputs.
//
// Shapes: z (B, D), params (P,) packed; forward outputs x (B, D), log_det (B,) and states
// (B, C + 1, D), the input of every coupling and of NICE's final scaling, which the backward reads.
// Backward: grad_x (B, D), grad_log_det (B,) -> grad_z (B, D), grad_params (P,).
#pragma once

#include <ATen/core/Tensor.h>

#include "../common/coupling.h"

namespace pyvi {

/// A coupling stack's configuration: its shape (the packed layout) and RealNVP's bound on |scale|.
struct CouplingConfig {
  CouplingShape shape;
  double scale_bound;
};

void coupling_forward_cpu(const CouplingConfig& config, const at::Tensor& z, const at::Tensor& params, at::Tensor& x,
                          at::Tensor& log_det, at::Tensor& states);
void coupling_forward_cuda(const CouplingConfig& config, const at::Tensor& z, const at::Tensor& params, at::Tensor& x,
                           at::Tensor& log_det, at::Tensor& states);
void coupling_backward_cpu(const CouplingConfig& config, const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                           const at::Tensor& params, const at::Tensor& states, at::Tensor& grad_z,
                           at::Tensor& grad_params);
void coupling_backward_cuda(const CouplingConfig& config, const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                            const at::Tensor& params, const at::Tensor& states, at::Tensor& grad_z,
                            at::Tensor& grad_params);

}  // namespace pyvi
