// Declarations of pyvi::sparse_linear (y = act(x W^T + b) summing over the nonzero inputs only;
// math in ../common/sparse_linear.h).
//
// Shapes: x (B, in), weight (out, in) as in torch.nn.Linear (fastest when stored in-major, i.e.
// weight.t() contiguous: then no transposed copy is made), bias (out,); output (B, out).
// The backward returns (grad_pre (B, out), grad_weight (out, in) with in-major strides,
// grad_bias (out,)); the gradient with respect to x is grad_pre @ W, formed by the autograd
// kernel only when x requires it.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace pyvi {

using SparseLinearGrads = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

at::Tensor sparse_linear_cpu(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool relu);
SparseLinearGrads sparse_linear_backward_cpu(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& output,
                                             bool relu);
at::Tensor sparse_linear_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool relu);
SparseLinearGrads sparse_linear_backward_cuda(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& output,
                                              bool relu);

/// Argument checks shared by the CPU and CUDA kernels (TORCH_CHECK -> ValueError / TypeError).
void check_sparse_linear_args(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
void check_sparse_linear_backward_args(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& output);

}  // namespace pyvi
