// pyvi::dense_linear: schema, argument checks, autograd and registration. The kernels are in
// cpu/dense_linear_cpu.cpp (oneDNN for float32) and cuda/dense_linear_cuda.cu (cuBLAS).
//
// The autograd kernel (C++: ~5 us per call instead of the ~100 us of Python's
// torch.library.register_autograd) forms the backward products with the op itself on transposed
// views: dX = dY W and dW = dY^T x. The bias gradient is a column sum.
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/mm.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <optional>

#include "checks.h"
#include "dense_linear.h"
#include "no_cuda.h"

namespace pyvi {

at::Tensor dense_linear_blas(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  return bias.has_value() ? at::addmm(*bias, x, weight.t()) : at::mm(x, weight.t());
}

namespace {

using Kernel = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&);

template <Kernel kKernel>
at::Tensor dense_linear_op(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  if (bias.has_value())
    check_same_device("dense_linear", {{"x", x}, {"weight", weight}, {"bias", *bias}});
  else
    check_same_device("dense_linear", {{"x", x}, {"weight", weight}});
  TORCH_CHECK_VALUE(x.dim() == 2, "x must have shape (batch, in_features), got ", x.sizes());
  TORCH_CHECK_VALUE(weight.dim() == 2 && weight.size(1) == x.size(1), "weight must have shape (out_features, ",
                    x.size(1), "), got ", weight.sizes());
  check_floating(x, "x");
  check_dtype_of(weight, "weight", x, "x");
  if (bias.has_value()) {
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == weight.size(0), "bias must have shape (", weight.size(0),
                      ",), got ", bias->sizes());
    check_dtype_of(*bias, "bias", x, "x");
  }
  return kKernel(x, weight, bias);
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class DenseLinearFunction : public torch::autograd::Function<DenseLinearFunction> {
 public:
  static at::Tensor op(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
    static auto handle = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("pyvi::dense_linear", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    return handle.call(x, weight, bias);
  }

  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["has_bias"] = bias.has_value();
    return op(x, weight, bias);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    const at::Tensor& grad = grads[0];
    at::Tensor grad_x, grad_weight, grad_bias;
    if (ctx->needs_input_grad(0)) grad_x = op(grad, weight.t(), std::nullopt);  // dY W
    if (ctx->needs_input_grad(1)) grad_weight = op(grad.t(), x.t(), std::nullopt);  // dY^T x
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) grad_bias = grad.sum(0);
    return {grad_x, grad_weight, grad_bias};
  }
};

at::Tensor dense_linear_autograd(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  return DenseLinearFunction::apply(x, weight, bias);
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) { m.def("dense_linear(Tensor x, Tensor weight, Tensor? bias) -> Tensor"); }

TORCH_LIBRARY_IMPL(pyvi, CPU, m) { m.impl("dense_linear", &pyvi::dense_linear_op<pyvi::dense_linear_cpu>); }

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("dense_linear", PYVI_CUDA_KERNEL(pyvi::dense_linear_op<pyvi::dense_linear_cuda>));
}

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) { m.impl("dense_linear", &pyvi::dense_linear_autograd); }
