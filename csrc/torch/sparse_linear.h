// pyvi::sparse_linear: y = act(x W^T + b) summing over the nonzero inputs only (math in
// ../common/sparse_linear.h), and pyvi::sparse_linear_backward.
//
// sparse_linear.cpp holds the schemas, the argument checks, the output allocation, the C++ autograd
// kernel and the registrations; the kernels below take contiguous, validated tensors (one dtype, one
// device) and write the outputs.
//
// Shapes: x (B, in), weight (out, in) as in torch.nn.Linear, bias (out,); output (B, out). The
// kernels get W^T (in, out) row-major: free when the weight is stored in-major (weight.t()
// contiguous, as pyvi.vae stores its encoder's), else one transposed copy per call. The backward
// writes grad_pre (B, out), grad_weight_t (in, out) (returned as its (out, in) transpose view) and
// grad_bias (out,); the gradient with respect to x is grad_pre @ W, formed by the autograd kernel
// only when x requires it.
#pragma once

#include <ATen/core/Tensor.h>

namespace pyvi {

void sparse_linear_cpu(const at::Tensor& x, const at::Tensor& weight_t, const at::Tensor& bias, bool relu,
                       at::Tensor& out);
void sparse_linear_cuda(const at::Tensor& x, const at::Tensor& weight_t, const at::Tensor& bias, bool relu,
                        at::Tensor& out);
void sparse_linear_backward_cpu(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& output, bool relu,
                                at::Tensor& grad_pre, at::Tensor& grad_weight_t, at::Tensor& grad_bias);
void sparse_linear_backward_cuda(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& output, bool relu,
                                 at::Tensor& grad_pre, at::Tensor& grad_weight_t, at::Tensor& grad_bias);

}  // namespace pyvi
