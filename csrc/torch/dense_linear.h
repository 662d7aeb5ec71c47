// Declarations of pyvi::dense_linear: y = x W^T + b (torch.nn.functional.linear) through the
// fastest float32 GEMM the build has on the CPU, oneDNN's matmul; see dense_linear_cpu.cpp.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace pyvi {

at::Tensor dense_linear_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias);
at::Tensor dense_linear_cuda(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias);

/// Argument checks shared by the CPU and CUDA kernels (TORCH_CHECK -> ValueError / TypeError).
void check_dense_linear_args(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias);

/// The plain product, at::addmm / at::mm (float64, CUDA, and builds without oneDNN).
at::Tensor dense_linear_blas(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias);

}  // namespace pyvi
