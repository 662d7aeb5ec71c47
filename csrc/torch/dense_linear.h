// pyvi::dense_linear: y = x W^T + b (torch.nn.functional.linear) through the fastest GEMM the
// build has, oneDNN's matmul for float32 on the CPU (see cpu/dense_linear_cpu.cpp).
//
// dense_linear.cpp holds the schema, the argument checks, the C++ autograd kernel (whose backward
// products are the op itself on transposed views) and the registrations. Unlike the other ops' the
// kernels take x and weight as given, strided views included (oneDNN and BLAS read transposes in
// place, so the backward makes no copies), and return the output the library allocates.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace pyvi {

at::Tensor dense_linear_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias);
at::Tensor dense_linear_cuda(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias);

/// The plain product, at::addmm / at::mm (float64, CUDA, and builds without oneDNN).
at::Tensor dense_linear_blas(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias);

}  // namespace pyvi
