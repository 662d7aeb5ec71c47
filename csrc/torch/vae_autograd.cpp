// Autograd kernel of pyvi::sparse_linear (the VAE encoder's first layer), in C++.
//
// The forward op is wrapped in a torch::autograd::Function whose backward calls
// pyvi::sparse_linear_backward through the dispatcher, so CPU and CUDA share this file (the flows
// do the same, csrc/torch/flows_autograd.cpp): ~5 us per call instead of the ~100 us of Python's
// torch.library.register_autograd, in a training step of ~5 ms. The gradient with respect to x
// (x is usually data) is formed only when x requires it, as grad_pre @ W. The backward op has no
// derivative of its own, so double backward is not supported (the reference path has it).
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/zeros.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <tuple>

namespace pyvi {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Tensors3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

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

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) { m.impl("sparse_linear", &pyvi::sparse_linear_autograd); }
