// CPU kernel of pyvi::dense_linear: y = x W^T + b, the VAE decoder's 512 -> 784 output layer.
//
// That layer's three products (forward, and the weight and input gradients) are most of a VAE
// training step once the encoder's first layer skips the zero pixels (sparse_linear_cpu.cpp). On
// this project's machine (AMD EPYC with AVX-512) MKL's sgemm, which torch's addmm / mm call, runs
// them at ~55 GFLOP/s, while oneDNN's matmul, which torch also ships (the kernel behind
// mkldnn::_linear_pointwise, used by torch.compile on CPU), reaches ~110 GFLOP/s on the same
// shapes in full float32 (strict f32 math, no reduced-precision accumulation). So the kernel calls
// that op through the dispatcher for float32 CPU tensors and falls back to at::addmm where it does
// not exist (a build without oneDNN, or torch.backends.mkldnn disabled), for float64 (oneDNN has
// no f64 matmul) and for empty shapes. oneDNN reads transposed views in place, so the backward
// products (dY W and dY^T x, formed in vae_autograd.cpp by calling this op on transposed views)
// need no copies.
#include <ATen/Context.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/mm.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <string>

#include "dense_linear.h"
#include "no_cuda.h"

namespace pyvi {

void check_dense_linear_args(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK_VALUE(x.dim() == 2, "x must have shape (batch, in_features), got ", x.sizes());
  TORCH_CHECK_VALUE(weight.dim() == 2 && weight.size(1) == x.size(1), "weight must have shape (out_features, ",
                    x.size(1), "), got ", weight.sizes());
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
                   "x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK_TYPE(weight.scalar_type() == x.scalar_type(), "weight must have the dtype of x (", x.scalar_type(),
                   "), got ", weight.scalar_type());
  TORCH_CHECK_VALUE(weight.device() == x.device(), "weight must be on the device of x (", x.device(), ")");
  if (bias.has_value()) {
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == weight.size(0), "bias must have shape (", weight.size(0),
                      ",), got ", bias->sizes());
    TORCH_CHECK_TYPE(bias->scalar_type() == x.scalar_type(), "bias must have the dtype of x (", x.scalar_type(),
                     "), got ", bias->scalar_type());
    TORCH_CHECK_VALUE(bias->device() == x.device(), "bias must be on the device of x (", x.device(), ")");
  }
}

at::Tensor dense_linear_blas(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  return bias.has_value() ? at::addmm(*bias, x, weight.t()) : at::mm(x, weight.t());
}

namespace {

/// torch's oneDNN linear, when this build registers it.
const std::optional<c10::OperatorHandle>& onednn_linear_op() {
  static const std::optional<c10::OperatorHandle> handle =
      c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""});
  return handle;
}

}  // namespace

at::Tensor dense_linear_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  check_dense_linear_args(x, weight, bias);
  TORCH_CHECK(x.device().is_cpu(), "dense_linear_cpu: x must be a CPU tensor");
  const auto& op = onednn_linear_op();
  const bool onednn = op.has_value() && x.scalar_type() == at::kFloat && at::globalContext().userEnabledMkldnn() &&
                      x.numel() > 0 && weight.numel() > 0;
  if (!onednn) return dense_linear_blas(x, weight, bias);
  // mkldnn::_linear_pointwise(Tensor X, Tensor W, Tensor? B, str attr, Scalar?[] scalars, str? algorithm)
  torch::jit::Stack stack;
  stack.reserve(6);
  stack.emplace_back(x);
  stack.emplace_back(weight);
  stack.emplace_back(bias.has_value() ? c10::IValue(bias->contiguous()) : c10::IValue());
  stack.emplace_back(std::string("none"));
  stack.emplace_back(c10::List<std::optional<at::Scalar>>());
  stack.emplace_back(std::string(""));
  op->callBoxed(&stack);
  return stack[0].toTensor();
}

}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) { m.def("dense_linear(Tensor x, Tensor weight, Tensor? bias) -> Tensor"); }

TORCH_LIBRARY_IMPL(pyvi, CPU, m) { m.impl("dense_linear", &pyvi::dense_linear_cpu); }

PYVI_NO_CUDA_FALLBACK("dense_linear")
