// pyvi::sparse_linear / pyvi::sparse_linear_backward: schemas, argument checks, outputs, autograd
// and registration. The kernels are in cpu/sparse_linear_cpu.cpp and cuda/sparse_linear_cuda.cu.
//
// The autograd kernel (C++: ~5 us per call instead of the ~100 us of Python's
// torch.library.register_autograd) calls the backward op through the dispatcher; the gradient with
// respect to x is grad_pre @ W, formed only when x requires it (x is usually data). The backward op
// has no derivative of its own, so double backward is not supported (the reference path has it).
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros_like.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>
#include <tuple>

#include "checks.h"
#include "no_cuda.h"
#include "sparse_linear.h"

namespace pyvi {
namespace {

using Tensors3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using ForwardKernel = void (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool, at::Tensor&);
using BackwardKernel = void (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool, at::Tensor&,
                                at::Tensor&, at::Tensor&);

/// x (B, in) of a floating dtype, with row and column indices that fit the kernels' int32.
void check_x(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.dim() == 2, "x must have shape (batch, in_features), got ", x.sizes());
  check_floating(x, "x");
  TORCH_CHECK_VALUE(x.size(0) < std::numeric_limits<int32_t>::max() && x.size(1) < std::numeric_limits<int32_t>::max(),
                    "x must have fewer than 2**31 - 1 rows and columns, got ", x.sizes());
}

template <ForwardKernel kKernel>
at::Tensor sparse_linear_op(const at::Tensor& x_in, const at::Tensor& weight, const at::Tensor& bias_in, bool relu) {
  check_same_device("sparse_linear", {{"x", x_in}, {"weight", weight}, {"bias", bias_in}});
  check_x(x_in);
  TORCH_CHECK_VALUE(weight.dim() == 2 && weight.size(1) == x_in.size(1), "weight must have shape (out_features, ",
                    x_in.size(1), "), got ", weight.sizes());
  TORCH_CHECK_VALUE(bias_in.dim() == 1 && bias_in.size(0) == weight.size(0), "bias must have shape (",
                    weight.size(0), ",), got ", bias_in.sizes());
  check_dtype_of(weight, "weight", x_in, "x");
  check_dtype_of(bias_in, "bias", x_in, "x");
  const at::Tensor x = x_in.contiguous(), bias = bias_in.contiguous();
  // W^T row-major: free when the weight is stored in-major (pyvi.vae stores its encoder's that way).
  const at::Tensor weight_t = weight.t().contiguous();
  at::Tensor out = at::empty({x.size(0), weight.size(0)}, x.options());
  kKernel(x, weight_t, bias, relu, out);
  return out;
}

template <BackwardKernel kKernel>
Tensors3 sparse_linear_backward_op(const at::Tensor& grad_in, const at::Tensor& x_in, const at::Tensor& output_in,
                                   bool relu) {
  check_same_device("sparse_linear_backward", {{"grad", grad_in}, {"x", x_in}, {"output", output_in}});
  check_x(x_in);
  TORCH_CHECK_VALUE(grad_in.dim() == 2 && grad_in.size(0) == x_in.size(0), "grad must have shape (", x_in.size(0),
                    ", out_features), got ", grad_in.sizes());
  TORCH_CHECK_VALUE(output_in.sizes() == grad_in.sizes(), "output must have the shape of grad (", grad_in.sizes(),
                    "), got ", output_in.sizes());
  check_dtype_of(grad_in, "grad", x_in, "x");
  check_dtype_of(output_in, "output", x_in, "x");
  const at::Tensor grad = grad_in.contiguous(), x = x_in.contiguous(), output = output_in.contiguous();
  const int64_t rows = x.size(0), in_features = x.size(1), out_features = grad.size(1);
  at::Tensor grad_pre = at::empty({rows, out_features}, x.options());
  at::Tensor grad_weight_t = at::empty({in_features, out_features}, x.options());
  at::Tensor grad_bias = at::empty({out_features}, x.options());
  kKernel(grad, x, output, relu, grad_pre, grad_weight_t, grad_bias);
  return {grad_pre, grad_weight_t.t(), grad_bias};
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class SparseLinearFunction : public torch::autograd::Function<SparseLinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, bool relu) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::sparse_linear", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor out = op.call(x, weight, bias, relu);
    ctx->save_for_backward({x, weight, out});
    ctx->saved_data["relu"] = relu;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::sparse_linear_backward", "")
                         .typed<Tensors3(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool)>();
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& out = saved[2];
    const at::Tensor grad = grads[0].defined() ? grads[0] : at::zeros_like(out);
    auto [grad_pre, grad_weight, grad_bias] = op.call(grad, x, out, ctx->saved_data["relu"].toBool());
    at::Tensor grad_x;
    if (ctx->needs_input_grad(0)) grad_x = grad_pre.mm(weight);
    return {grad_x, ctx->needs_input_grad(1) ? grad_weight : at::Tensor(),
            ctx->needs_input_grad(2) ? grad_bias : at::Tensor(), at::Tensor()};
  }
};

at::Tensor sparse_linear_autograd(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool relu) {
  return SparseLinearFunction::apply(x, weight, bias, relu);
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("sparse_linear(Tensor x, Tensor weight, Tensor bias, bool relu) -> Tensor");
  m.def("sparse_linear_backward(Tensor grad, Tensor x, Tensor output, bool relu) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("sparse_linear", &pyvi::sparse_linear_op<pyvi::sparse_linear_cpu>);
  m.impl("sparse_linear_backward", &pyvi::sparse_linear_backward_op<pyvi::sparse_linear_backward_cpu>);
}

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("sparse_linear", PYVI_CUDA_KERNEL(pyvi::sparse_linear_op<pyvi::sparse_linear_cuda>));
  m.impl("sparse_linear_backward", PYVI_CUDA_KERNEL(pyvi::sparse_linear_backward_op<pyvi::sparse_linear_backward_cuda>));
}

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) { m.impl("sparse_linear", &pyvi::sparse_linear_autograd); }
