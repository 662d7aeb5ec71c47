// Autograd kernels of pyvi::planar_forward and pyvi::coupling_forward, in C++.
//
// Each forward op is wrapped in a torch::autograd::Function whose backward calls the matching
// analytic backward op (pyvi::planar_backward / pyvi::coupling_backward) through the dispatcher,
// so CPU and CUDA share this file. Registering the formula here rather than with Python's
// torch.library.register_autograd costs ~5 us per call instead of ~100 us, which at the
// student's sizes (batch 256) is most of a training step. torch.compile still traces the ops
// through their fake kernels (pyvi/flows/_ops.py); the backward ops have no derivative of their
// own, so double backward through a fused flow is not supported (the reference implementation
// has it).
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
using Tensors2 = std::tuple<at::Tensor, at::Tensor>;

/// Upstream gradients with undefined ones (an output that was not used) replaced by zeros.
std::pair<at::Tensor, at::Tensor> dense_grads(const variable_list& grads, const at::Tensor& states) {
  const int64_t batch = states.size(0), dim = states.size(2);
  at::Tensor grad_x = grads[0].defined() ? grads[0].contiguous() : at::zeros({batch, dim}, states.options());
  at::Tensor grad_log_det = grads[1].defined() ? grads[1].contiguous() : at::zeros({batch}, states.options());
  return {grad_x, grad_log_det};
}

class PlanarFunction : public torch::autograd::Function<PlanarFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& z, const at::Tensor& params) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::planar_forward", "")
                         .typed<Tensors3(const at::Tensor&, const at::Tensor&)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [x, log_det, states] = op.call(z, params);
    ctx->save_for_backward({params, states});
    ctx->mark_non_differentiable({states});
    return {x, log_det, states};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::planar_backward", "")
                         .typed<Tensors2(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
    const auto saved = ctx->get_saved_variables();
    const auto [grad_x, grad_log_det] = dense_grads(grads, saved[1]);
    auto [grad_z, grad_params] = op.call(grad_x, grad_log_det, saved[0], saved[1]);
    return {grad_z, grad_params};
  }
};

class CouplingFunction : public torch::autograd::Function<CouplingFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& z, const at::Tensor& params,
                               int64_t num_couplings, int64_t hidden, int64_t depth, bool affine, double scale_bound) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::coupling_forward", "")
                         .typed<Tensors3(const at::Tensor&, const at::Tensor&, int64_t, int64_t, int64_t, bool, double)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [x, log_det, states] = op.call(z, params, num_couplings, hidden, depth, affine, scale_bound);
    ctx->save_for_backward({params, states});
    ctx->mark_non_differentiable({states});
    ctx->saved_data["num_couplings"] = num_couplings;
    ctx->saved_data["hidden"] = hidden;
    ctx->saved_data["depth"] = depth;
    ctx->saved_data["affine"] = affine;
    ctx->saved_data["scale_bound"] = scale_bound;
    return {x, log_det, states};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::coupling_backward", "")
                         .typed<Tensors2(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         int64_t, int64_t, int64_t, bool, double)>();
    const auto saved = ctx->get_saved_variables();
    const auto [grad_x, grad_log_det] = dense_grads(grads, saved[1]);
    auto [grad_z, grad_params] =
        op.call(grad_x, grad_log_det, saved[0], saved[1], ctx->saved_data["num_couplings"].toInt(),
                ctx->saved_data["hidden"].toInt(), ctx->saved_data["depth"].toInt(),
                ctx->saved_data["affine"].toBool(), ctx->saved_data["scale_bound"].toDouble());
    return {grad_z, grad_params, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

Tensors3 planar_forward_autograd(const at::Tensor& z, const at::Tensor& params) {
  auto out = PlanarFunction::apply(z, params);
  return {out[0], out[1], out[2]};
}

Tensors3 coupling_forward_autograd(const at::Tensor& z, const at::Tensor& params, int64_t num_couplings,
                                   int64_t hidden, int64_t depth, bool affine, double scale_bound) {
  auto out = CouplingFunction::apply(z, params, num_couplings, hidden, depth, affine, scale_bound);
  return {out[0], out[1], out[2]};
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) {
  m.impl("planar_forward", &pyvi::planar_forward_autograd);
  m.impl("coupling_forward", &pyvi::coupling_forward_autograd);
}
