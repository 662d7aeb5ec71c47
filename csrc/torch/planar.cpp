// pyvi::planar_forward / pyvi::planar_backward: schemas, argument checks, outputs, autograd and
// registration; the kernels are in cpu/planar_cpu.cpp and cuda/planar_cuda.cu.
//
// The autograd kernel wraps the forward op in a torch::autograd::Function whose backward calls the
// analytic backward op through the dispatcher (CPU and CUDA alike). Registered in C++ rather than
// with Python's torch.library.register_autograd, it costs ~5 us per call instead of ~100 us, which at
// the student's sizes (batch 256) is most of a training step. torch.compile traces the ops through
// their fake kernels (pyvi/ops/planar.py). The backward op has no derivative of its own: its autograd
// kernel makes differentiating it (double backward through a fused planar flow) a clear error
// instead of a silent zero; the reference implementation has second derivatives.
#include "module.h"

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <tuple>

#include "../common/planar.h"
#include "checks.h"
#include "no_cuda.h"
#include "planar.h"

PYVI_MODULE_CONSTANT("planar_max_cuda_dim", pyvi::kPlanarMaxCudaDim);

namespace pyvi {
namespace {

using Tensors3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using Tensors2 = std::tuple<at::Tensor, at::Tensor>;
using ForwardKernel = void (*)(const at::Tensor&, const at::Tensor&, at::Tensor&, at::Tensor&, at::Tensor&);
using BackwardKernel = void (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                at::Tensor&, at::Tensor&);

/// The checks both directions make on (points, params).
void check_points_and_params(const at::Tensor& z, const at::Tensor& params) {
  TORCH_CHECK_VALUE(z.dim() == 2, "z must have shape (batch, dim), got ", z.sizes());
  TORCH_CHECK_VALUE(params.dim() == 2 && params.size(0) >= 1 && params.size(1) == 2 * z.size(1) + 1,
                    "params must have shape (num_layers, 2 * dim + 1) = (K, ", 2 * z.size(1) + 1, "), got ",
                    params.sizes());
  check_floating(z, "z");
  check_dtype_of(params, "params", z, "z");
}

template <ForwardKernel kKernel>
Tensors3 planar_forward_op(const at::Tensor& z_in, const at::Tensor& params_in) {
  check_same_device("planar_forward", {{"z", z_in}, {"params", params_in}});
  check_points_and_params(z_in, params_in);
  const at::Tensor z = z_in.contiguous(), params = params_in.contiguous();
  const int64_t batch = z.size(0), dim = z.size(1), layers = params.size(0);
  at::Tensor x = at::empty({batch, dim}, z.options());
  at::Tensor log_det = at::empty({batch}, z.options());
  at::Tensor states = at::empty({batch, layers, dim}, z.options());
  kKernel(z, params, x, log_det, states);
  return {x, log_det, states};
}

template <BackwardKernel kKernel>
Tensors2 planar_backward_op(const at::Tensor& grad_x_in, const at::Tensor& grad_log_det_in,
                            const at::Tensor& params_in, const at::Tensor& states_in) {
  check_same_device("planar_backward", {{"grad_x", grad_x_in},
                                        {"grad_log_det", grad_log_det_in},
                                        {"params", params_in},
                                        {"states", states_in}});
  check_points_and_params(grad_x_in, params_in);
  const int64_t batch = grad_x_in.size(0), dim = grad_x_in.size(1), layers = params_in.size(0);
  TORCH_CHECK_VALUE(grad_log_det_in.dim() == 1 && grad_log_det_in.size(0) == batch,
                    "grad_log_det must have shape (batch,), got ", grad_log_det_in.sizes());
  TORCH_CHECK_VALUE(states_in.dim() == 3 && states_in.size(0) == batch && states_in.size(1) == layers &&
                        states_in.size(2) == dim,
                    "states must have shape (batch, num_layers, dim), got ", states_in.sizes());
  check_dtype_of(grad_log_det_in, "grad_log_det", grad_x_in, "grad_x");
  check_dtype_of(states_in, "states", grad_x_in, "grad_x");
  TORCH_CHECK_VALUE(!grad_x_in.is_cuda() || dim <= kPlanarMaxCudaDim, "planar_backward on CUDA supports dim <= ",
                    kPlanarMaxCudaDim, ", got ", dim);
  const at::Tensor grad_x = grad_x_in.contiguous(), grad_log_det = grad_log_det_in.contiguous();
  const at::Tensor params = params_in.contiguous(), states = states_in.contiguous();
  at::Tensor grad_z = at::empty({batch, dim}, grad_x.options());
  at::Tensor grad_params = at::empty({layers, 2 * dim + 1}, grad_x.options());
  kKernel(grad_x, grad_log_det, params, states, grad_z, grad_params);
  return {grad_z, grad_params};
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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
    const at::Tensor& states = saved[1];
    // An output that was not used has an undefined gradient: zeros.
    const at::Tensor grad_x = grads[0].defined() ? grads[0] : at::zeros({states.size(0), states.size(2)}, states.options());
    const at::Tensor grad_log_det = grads[1].defined() ? grads[1] : at::zeros({states.size(0)}, states.options());
    auto [grad_z, grad_params] = op.call(grad_x, grad_log_det, saved[0], states);
    return {grad_z, grad_params};
  }
};

Tensors3 planar_forward_autograd(const at::Tensor& z, const at::Tensor& params) {
  auto out = PlanarFunction::apply(z, params);
  return {out[0], out[1], out[2]};
}

Tensors2 planar_backward_below_autograd(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                        const at::Tensor& params, const at::Tensor& states) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("pyvi::planar_backward", "")
                       .typed<Tensors2(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  at::AutoDispatchBelowADInplaceOrView guard;
  return op.call(grad_x, grad_log_det, params, states);
}

/// The backward op under autograd (a double backward's first pass: create_graph=True): its outputs
/// get a node whose own backward is an error, never a zero second derivative.
class PlanarBackwardFunction : public torch::autograd::Function<PlanarBackwardFunction> {
 public:
  static variable_list forward(AutogradContext*, const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                               const at::Tensor& params, const at::Tensor& states) {
    auto [grad_z, grad_params] = planar_backward_below_autograd(grad_x, grad_log_det, params, states);
    return {grad_z, grad_params};
  }

  static variable_list backward(AutogradContext*, variable_list) {
    TORCH_CHECK_NOT_IMPLEMENTED(false,
                                "double backward through a fused PlanarFlow is not supported: its analytic backward "
                                "op pyvi::planar_backward has no derivative. Use impl=\"reference\" (plain torch) "
                                "for second derivatives");
  }
};

Tensors2 planar_backward_autograd(const at::Tensor& grad_x, const at::Tensor& grad_log_det, const at::Tensor& params,
                                  const at::Tensor& states) {
  const bool record = at::GradMode::is_enabled() && (grad_x.requires_grad() || grad_log_det.requires_grad() ||
                                                     params.requires_grad() || states.requires_grad());
  if (!record) return planar_backward_below_autograd(grad_x, grad_log_det, params, states);  // every first-order use
  auto out = PlanarBackwardFunction::apply(grad_x, grad_log_det, params, states);
  return {out[0], out[1]};
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("planar_forward(Tensor z, Tensor params) -> (Tensor x, Tensor log_det, Tensor states)");
  m.def("planar_backward(Tensor grad_x, Tensor grad_log_det, Tensor params, Tensor states) -> "
        "(Tensor grad_z, Tensor grad_params)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("planar_forward", &pyvi::planar_forward_op<pyvi::planar_forward_cpu>);
  m.impl("planar_backward", &pyvi::planar_backward_op<pyvi::planar_backward_cpu>);
}

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("planar_forward", PYVI_CUDA_KERNEL(pyvi::planar_forward_op<pyvi::planar_forward_cuda>));
  m.impl("planar_backward", PYVI_CUDA_KERNEL(pyvi::planar_backward_op<pyvi::planar_backward_cuda>));
}

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) {
  m.impl("planar_forward", &pyvi::planar_forward_autograd);
  m.impl("planar_backward", &pyvi::planar_backward_autograd);
}
