// pyvi::banana_log_joint: schema, argument checks, config, outputs, autograd and registration.
//
// The kernels (cpu/banana_cpu.cpp, cuda/banana_cuda.cu) get contiguous, validated tensors and the
// density's constants (BananaParams, built once per call by banana_config of banana_config.h). The
// autograd kernel is C++ (it was Python's torch.library.register_autograd, ~100 us per call: at
// batch 256 more than the rest of a flow's training step); its formula, the VJP of (log p, grad log p),
//   grad_log_prob * grad + H @ grad_grad,
// H the analytic Hessian, is written in differentiable ATen ops so that double backward works.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros_like.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cmath>
#include <string>
#include <tuple>

#include "banana.h"
#include "banana_config.h"
#include "checks.h"
#include "no_cuda.h"

namespace pyvi {
namespace {

using Outputs = std::tuple<at::Tensor, at::Tensor>;
using Kernel = void (*)(const BananaParams<double>&, const at::Tensor&, at::Tensor&, at::Tensor&);

template <Kernel kKernel>
Outputs banana_log_joint_op(const at::Tensor& theta_in, double num_data, double mean_y, double ss_y, double sigma_y,
                            double sigma_theta) {
  TORCH_CHECK_VALUE(theta_in.dim() == 2 && theta_in.size(1) == 2, "theta must have shape (batch, 2), got ",
                    theta_in.sizes());
  check_floating(theta_in, "theta");
  const BananaParams<double> params = banana_config(num_data, mean_y, ss_y, sigma_y, sigma_theta);
  if (theta_in.scalar_type() == at::kFloat) check_float_range(params, "banana_log_joint");
  const at::Tensor theta = theta_in.contiguous();
  const int64_t batch = theta.size(0);
  at::Tensor log_prob = at::empty({batch}, theta.options());
  at::Tensor grad = at::empty({batch, 2}, theta.options());
  kKernel(params, theta, log_prob, grad);
  return {log_prob, grad};
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class BananaLogJointFunction : public torch::autograd::Function<BananaLogJointFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& theta, double num_data, double mean_y,
                               double ss_y, double sigma_y, double sigma_theta) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::banana_log_joint", "")
                         .typed<Outputs(const at::Tensor&, double, double, double, double, double)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [log_prob, grad] = op.call(theta, num_data, mean_y, ss_y, sigma_y, sigma_theta);
    ctx->save_for_backward({theta, grad});
    ctx->saved_data["lik"] = num_data / (sigma_y * sigma_y);
    ctx->saved_data["prior"] = 1.0 / (sigma_theta * sigma_theta);
    ctx->saved_data["mean_y"] = mean_y;
    return {log_prob, grad};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& theta = saved[0];
    const at::Tensor& grad = saved[1];
    at::Tensor result;
    if (grads[0].defined()) result = grads[0].unsqueeze(-1) * grad;
    if (grads[1].defined()) {
      const double lik = ctx->saved_data["lik"].toDouble();
      const double prior = ctx->saved_data["prior"].toDouble();
      const double mean_y = ctx->saved_data["mean_y"].toDouble();
      const at::Tensor t1 = theta.select(1, 0), t2 = theta.select(1, 1);
      const at::Tensor residual = t1 + t2 * t2 - mean_y;
      const double h11 = -lik - prior;
      const at::Tensor h12 = -2.0 * lik * t2;
      const at::Tensor h22 = -2.0 * lik * residual - 4.0 * lik * t2 * t2 - prior;
      const at::Tensor v1 = grads[1].select(1, 0), v2 = grads[1].select(1, 1);
      const at::Tensor hessian_term = at::stack({h11 * v1 + h12 * v2, h12 * v1 + h22 * v2}, 1);
      result = result.defined() ? result + hessian_term : hessian_term;
    }
    if (!result.defined()) result = at::zeros_like(theta);
    return {result, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

Outputs banana_log_joint_autograd(const at::Tensor& theta, double num_data, double mean_y, double ss_y,
                                  double sigma_y, double sigma_theta) {
  auto out = BananaLogJointFunction::apply(theta, num_data, mean_y, ss_y, sigma_y, sigma_theta);
  return {out[0], out[1]};
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("banana_log_joint(Tensor theta, float num_data, float mean_y, float ss_y, float sigma_y, "
        "float sigma_theta) -> (Tensor log_prob, Tensor grad)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("banana_log_joint", &pyvi::banana_log_joint_op<pyvi::banana_log_joint_cpu>);
}

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("banana_log_joint", PYVI_CUDA_KERNEL(pyvi::banana_log_joint_op<pyvi::banana_log_joint_cuda>));
}

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) { m.impl("banana_log_joint", &pyvi::banana_log_joint_autograd); }
