// pyvi::coupling_forward / pyvi::coupling_backward: schemas, the config builder, argument checks,
// outputs, autograd, registration, and the layout and limits exported to Python. The kernels are in
// cpu/coupling_cpu.cpp and cuda/coupling_cuda.cu.
//
// The autograd kernel wraps the forward op in a torch::autograd::Function whose backward calls the
// analytic backward op through the dispatcher (CPU and CUDA alike). Registered in C++ rather than
// with Python's torch.library.register_autograd, it costs ~5 us per call instead of ~100 us, which at
// the student's sizes (batch 256) is most of a training step. torch.compile traces the ops through
// their fake kernels (pyvi/ops/coupling.py). The backward op has no derivative of its own: its
// autograd kernel makes differentiating it (double backward through a fused NICE or RealNVP) a clear
// error instead of a silent zero; the reference implementation has second derivatives.
#include "module.h"

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "checks.h"
#include "coupling.h"
#include "no_cuda.h"

namespace pyvi {
namespace {

using Tensors3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using Tensors2 = std::tuple<at::Tensor, at::Tensor>;
using ForwardKernel = void (*)(const CouplingConfig&, const at::Tensor&, const at::Tensor&, at::Tensor&, at::Tensor&,
                               at::Tensor&);
using BackwardKernel = void (*)(const CouplingConfig&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                const at::Tensor&, at::Tensor&, at::Tensor&);

/// An integer entry of the config list, checked to lie in [low, high].
int config_int(double value, const char* name, int low, int high) {
  TORCH_CHECK_VALUE(value >= low && value <= high && value == std::floor(value), name, " must be an integer in [",
                    low, ", ", high, "], got ", value);
  return static_cast<int>(value);
}

/// The config's one builder: [num_couplings, hidden, depth, affine, scale_bound] (pyvi.ops.coupling's
/// op_config) for points of dimension `dim`, checked against the kernels' limits.
CouplingConfig coupling_config(int64_t dim, c10::ArrayRef<double> config) {
  TORCH_CHECK_VALUE(config.size() == 5,
                    "config must be [num_couplings, hidden, depth, affine, scale_bound] (pyvi.ops.coupling.op_config), "
                    "got ", config.size(), " values");
  TORCH_CHECK_VALUE(dim >= 2 && dim <= kCouplingMaxDim, "dim must be in [2, ", kCouplingMaxDim,
                    "] for the fused coupling kernels, got ", dim);
  const int num_couplings = config_int(config[0], "num_couplings", 1, kCouplingMaxCouplings);
  const int hidden = config_int(config[1], "hidden", 1, kCouplingMaxHidden);
  const int depth = config_int(config[2], "depth", 1, kCouplingMaxDepth);
  const bool affine = config_int(config[3], "affine", 0, 1) == 1;
  const double scale_bound = config[4];
  TORCH_CHECK_VALUE(scale_bound > 0 && std::isfinite(scale_bound), "scale_bound must be finite and > 0");
  return {{static_cast<int>(dim), num_couplings, hidden, depth, affine}, scale_bound};
}

/// The checks both directions make on (points, params); returns the parsed config.
CouplingConfig check_forward_args(const at::Tensor& z, const at::Tensor& params, c10::ArrayRef<double> config) {
  TORCH_CHECK_VALUE(z.dim() == 2, "z must have shape (batch, dim), got ", z.sizes());
  const CouplingConfig parsed = coupling_config(z.size(1), config);
  const int64_t expected = coupling_num_params(parsed.shape);
  TORCH_CHECK_VALUE(params.dim() == 1 && params.size(0) == expected, "params must have shape (", expected,
                    ",) for this layout, got ", params.sizes());
  check_floating(z, "z");
  check_dtype_of(params, "params", z, "z");
  return parsed;
}

template <ForwardKernel kKernel>
Tensors3 coupling_forward_op(const at::Tensor& z_in, const at::Tensor& params_in, c10::ArrayRef<double> config) {
  check_same_device("coupling_forward", {{"z", z_in}, {"params", params_in}});
  const CouplingConfig parsed = check_forward_args(z_in, params_in, config);
  const at::Tensor z = z_in.contiguous(), params = params_in.contiguous();
  const int64_t batch = z.size(0), dim = z.size(1);
  at::Tensor x = at::empty({batch, dim}, z.options());
  at::Tensor log_det = at::empty({batch}, z.options());
  at::Tensor states = at::empty({batch, parsed.shape.num_couplings + 1, dim}, z.options());
  kKernel(parsed, z, params, x, log_det, states);
  return {x, log_det, states};
}

template <BackwardKernel kKernel>
Tensors2 coupling_backward_op(const at::Tensor& grad_x_in, const at::Tensor& grad_log_det_in,
                              const at::Tensor& params_in, const at::Tensor& states_in, c10::ArrayRef<double> config) {
  check_same_device("coupling_backward", {{"grad_x", grad_x_in},
                                          {"grad_log_det", grad_log_det_in},
                                          {"params", params_in},
                                          {"states", states_in}});
  const CouplingConfig parsed = check_forward_args(grad_x_in, params_in, config);
  const int64_t batch = grad_x_in.size(0), dim = grad_x_in.size(1);
  TORCH_CHECK_VALUE(grad_log_det_in.dim() == 1 && grad_log_det_in.size(0) == batch,
                    "grad_log_det must have shape (batch,), got ", grad_log_det_in.sizes());
  TORCH_CHECK_VALUE(states_in.dim() == 3 && states_in.size(0) == batch &&
                        states_in.size(1) == parsed.shape.num_couplings + 1 && states_in.size(2) == dim,
                    "states must have shape (batch, num_couplings + 1, dim), got ", states_in.sizes());
  check_dtype_of(grad_log_det_in, "grad_log_det", grad_x_in, "grad_x");
  check_dtype_of(states_in, "states", grad_x_in, "grad_x");
  const at::Tensor grad_x = grad_x_in.contiguous(), grad_log_det = grad_log_det_in.contiguous();
  const at::Tensor params = params_in.contiguous(), states = states_in.contiguous();
  at::Tensor grad_z = at::empty({batch, dim}, grad_x.options());
  at::Tensor grad_params = at::empty({params.size(0)}, grad_x.options());
  kKernel(parsed, grad_x, grad_log_det, params, states, grad_z, grad_params);
  return {grad_z, grad_params};
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class CouplingFunction : public torch::autograd::Function<CouplingFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& z, const at::Tensor& params,
                               c10::ArrayRef<double> config) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::coupling_forward", "")
                         .typed<Tensors3(const at::Tensor&, const at::Tensor&, c10::ArrayRef<double>)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [x, log_det, states] = op.call(z, params, config);
    ctx->save_for_backward({params, states});
    ctx->mark_non_differentiable({states});
    ctx->saved_data["config"] = config.vec();
    return {x, log_det, states};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::coupling_backward", "")
                         .typed<Tensors2(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         c10::ArrayRef<double>)>();
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& states = saved[1];
    // An output that was not used has an undefined gradient: zeros.
    const at::Tensor grad_x = grads[0].defined() ? grads[0] : at::zeros({states.size(0), states.size(2)}, states.options());
    const at::Tensor grad_log_det = grads[1].defined() ? grads[1] : at::zeros({states.size(0)}, states.options());
    const std::vector<double> config = ctx->saved_data["config"].toDoubleVector();
    auto [grad_z, grad_params] = op.call(grad_x, grad_log_det, saved[0], states, config);
    return {grad_z, grad_params, at::Tensor()};
  }
};

Tensors3 coupling_forward_autograd(const at::Tensor& z, const at::Tensor& params, c10::ArrayRef<double> config) {
  auto out = CouplingFunction::apply(z, params, config);
  return {out[0], out[1], out[2]};
}

Tensors2 coupling_backward_below_autograd(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                          const at::Tensor& params, const at::Tensor& states,
                                          c10::ArrayRef<double> config) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("pyvi::coupling_backward", "")
                       .typed<Tensors2(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       c10::ArrayRef<double>)>();
  at::AutoDispatchBelowADInplaceOrView guard;
  return op.call(grad_x, grad_log_det, params, states, config);
}

/// The backward op under autograd (a double backward's first pass: create_graph=True): its outputs
/// get a node whose own backward is an error, never a zero second derivative.
class CouplingBackwardFunction : public torch::autograd::Function<CouplingBackwardFunction> {
 public:
  static variable_list forward(AutogradContext*, const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                               const at::Tensor& params, const at::Tensor& states, c10::ArrayRef<double> config) {
    auto [grad_z, grad_params] = coupling_backward_below_autograd(grad_x, grad_log_det, params, states, config);
    return {grad_z, grad_params};
  }

  static variable_list backward(AutogradContext*, variable_list) {
    TORCH_CHECK_NOT_IMPLEMENTED(false,
                                "double backward through a fused coupling flow (NICE, RealNVP) is not supported: its "
                                "analytic backward op pyvi::coupling_backward has no derivative. Use "
                                "impl=\"reference\" (plain torch) for second derivatives");
  }
};

Tensors2 coupling_backward_autograd(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                    const at::Tensor& params, const at::Tensor& states, c10::ArrayRef<double> config) {
  const bool record = at::GradMode::is_enabled() && (grad_x.requires_grad() || grad_log_det.requires_grad() ||
                                                     params.requires_grad() || states.requires_grad());
  if (!record) return coupling_backward_below_autograd(grad_x, grad_log_det, params, states, config);
  auto out = CouplingBackwardFunction::apply(grad_x, grad_log_det, params, states, config);
  return {out[0], out[1]};
}

/// pyvi._C.coupling_layout(dim, num_couplings, hidden, depth, affine) -> (num_params,
/// log_scale_offset, couplings): where every weight sits in the packed vector, for any sizes (the
/// reference implementation reads it beyond the fused kernels' limits too). couplings[k] is
/// (cond_start, cond_size, moved_start, moved_size, layers) and layers[l] is (weight_offset, rows,
/// cols, bias_offset) of W_l (rows x cols, row-major) and b_l (rows), offsets in the whole vector;
/// NICE's dim log-scales start at log_scale_offset.
PyObject* coupling_layout(PyObject*, PyObject* args) {
  int dim, num_couplings, hidden, depth, affine;
  if (!PyArg_ParseTuple(args, "iiiip:coupling_layout", &dim, &num_couplings, &hidden, &depth, &affine))
    return nullptr;
  if (dim < 2 || num_couplings < 1 || hidden < 1 || depth < 1) {
    PyErr_SetString(PyExc_ValueError, "coupling_layout needs dim >= 2 and num_couplings, hidden, depth >= 1");
    return nullptr;
  }
  const CouplingShape s{dim, num_couplings, hidden, depth, affine != 0};
  PyObject* couplings = PyTuple_New(num_couplings);
  if (couplings == nullptr) return nullptr;
  int64_t base = 0;
  for (int k = 0; k < num_couplings; ++k) {
    PyObject* layers = PyTuple_New(depth + 1);
    if (layers == nullptr) return Py_DECREF(couplings), nullptr;
    for (int l = 0; l <= depth; ++l) {
      int rows, cols;
      coupling_layer_shape(s, k, l, &rows, &cols);
      const long long weight = base + coupling_layer_offset(s, k, l);
      PyObject* layer = Py_BuildValue("(LiiL)", weight, rows, cols, weight + static_cast<long long>(rows) * cols);
      if (layer == nullptr) return Py_DECREF(layers), Py_DECREF(couplings), nullptr;
      PyTuple_SET_ITEM(layers, l, layer);
    }
    int cs, cn, ms, mn;
    coupling_halves(s, k, &cs, &cn, &ms, &mn);
    PyObject* coupling = Py_BuildValue("(iiiiN)", cs, cn, ms, mn, layers);
    if (coupling == nullptr) return Py_DECREF(couplings), nullptr;
    PyTuple_SET_ITEM(couplings, k, coupling);
    base += coupling_mlp_size(s, k);
  }
  return Py_BuildValue("(LLN)", static_cast<long long>(coupling_num_params(s)), static_cast<long long>(base),
                       couplings);
}

}  // namespace
}  // namespace pyvi

PYVI_MODULE_CONSTANT("coupling_max_dim", pyvi::kCouplingMaxDim);
PYVI_MODULE_CONSTANT("coupling_max_hidden", pyvi::kCouplingMaxHidden);
PYVI_MODULE_CONSTANT("coupling_max_depth", pyvi::kCouplingMaxDepth);
PYVI_MODULE_CONSTANT("coupling_max_couplings", pyvi::kCouplingMaxCouplings);
PYVI_MODULE_FUNCTION("coupling_layout", &pyvi::coupling_layout,
                     "coupling_layout(dim, num_couplings, hidden, depth, affine) -> (num_params, "
                     "log_scale_offset, couplings): the packed parameter layout of a coupling stack "
                     "(csrc/common/coupling.h)");

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("coupling_forward(Tensor z, Tensor params, float[] config) -> (Tensor x, Tensor log_det, Tensor states)");
  m.def("coupling_backward(Tensor grad_x, Tensor grad_log_det, Tensor params, Tensor states, float[] config) -> "
        "(Tensor grad_z, Tensor grad_params)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("coupling_forward", &pyvi::coupling_forward_op<pyvi::coupling_forward_cpu>);
  m.impl("coupling_backward", &pyvi::coupling_backward_op<pyvi::coupling_backward_cpu>);
}

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("coupling_forward", PYVI_CUDA_KERNEL(pyvi::coupling_forward_op<pyvi::coupling_forward_cuda>));
  m.impl("coupling_backward", PYVI_CUDA_KERNEL(pyvi::coupling_backward_op<pyvi::coupling_backward_cuda>));
}

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) {
  m.impl("coupling_forward", &pyvi::coupling_forward_autograd);
  m.impl("coupling_backward", &pyvi::coupling_backward_autograd);
}
