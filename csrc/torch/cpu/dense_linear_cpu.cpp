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
// products (dY W and dY^T x, formed in ../dense_linear.cpp by calling this op on transposed views)
// need no copies.
#include <ATen/Context.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>
#include <string>

#include "../dense_linear.h"

namespace pyvi {

namespace {

/// torch's oneDNN linear, when this build registers it.
const std::optional<c10::OperatorHandle>& onednn_linear_op() {
  static const std::optional<c10::OperatorHandle> handle =
      c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""});
  return handle;
}

}  // namespace

at::Tensor dense_linear_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
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
