// pyvi::gaussian_latent / pyvi::gaussian_latent_backward: schemas, argument checks, outputs,
// autograd and registration. The kernels are in cpu/gaussian_latent_cpu.cpp and
// cuda/gaussian_latent_cuda.cu.
//
// The autograd kernel (C++: ~5 us per call instead of the ~100 us of Python's
// torch.library.register_autograd) calls the backward op through the dispatcher with zeros for the
// outputs that were not used. The backward op has no derivative of its own, so double backward is
// not supported (the reference path has it).
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <tuple>

#include "checks.h"
#include "gaussian_latent.h"
#include "no_cuda.h"

namespace pyvi {
namespace {

using Outputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using ForwardKernel = void (*)(const LatentForward&);
using BackwardKernel = void (*)(const LatentBackward&);

/// The shapes and dtypes of the tensors both directions take.
void check_core(const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& w_log_var, const at::Tensor& eps) {
  TORCH_CHECK_VALUE(h.dim() == 2, "h must have shape (batch, hidden), got ", h.sizes());
  check_floating(h, "h");
  TORCH_CHECK_VALUE(w_mu.dim() == 2 && w_mu.size(1) == h.size(1), "w_mu must have shape (latent, ", h.size(1),
                    "), got ", w_mu.sizes());
  TORCH_CHECK_VALUE(w_log_var.sizes() == w_mu.sizes(), "w_log_var must have the shape of w_mu (", w_mu.sizes(),
                    "), got ", w_log_var.sizes());
  TORCH_CHECK_VALUE(eps.dim() == 2 && eps.size(0) == h.size(0) && eps.size(1) == w_mu.size(0),
                    "eps must have shape (", h.size(0), ", ", w_mu.size(0), "), got ", eps.sizes());
  check_dtype_of(w_mu, "w_mu", h, "h");
  check_dtype_of(w_log_var, "w_log_var", h, "h");
  check_dtype_of(eps, "eps", h, "h");
}

template <ForwardKernel kKernel>
Outputs gaussian_latent_op(const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& b_mu,
                           const at::Tensor& w_log_var, const at::Tensor& b_log_var, const at::Tensor& eps) {
  check_same_device("gaussian_latent", {{"h", h},
                                        {"w_mu", w_mu},
                                        {"b_mu", b_mu},
                                        {"w_log_var", w_log_var},
                                        {"b_log_var", b_log_var},
                                        {"eps", eps}});
  check_core(h, w_mu, w_log_var, eps);
  const int64_t batch = h.size(0), latent = w_mu.size(0);
  TORCH_CHECK_VALUE(b_mu.dim() == 1 && b_mu.size(0) == latent, "b_mu must have shape (", latent, ",), got ",
                    b_mu.sizes());
  TORCH_CHECK_VALUE(b_log_var.dim() == 1 && b_log_var.size(0) == latent, "b_log_var must have shape (", latent,
                    ",), got ", b_log_var.sizes());
  check_dtype_of(b_mu, "b_mu", h, "h");
  check_dtype_of(b_log_var, "b_log_var", h, "h");
  const auto options = h.options();
  const LatentForward t{h.contiguous(),
                        w_mu.contiguous(),
                        b_mu.contiguous(),
                        w_log_var.contiguous(),
                        b_log_var.contiguous(),
                        eps.contiguous(),
                        at::empty({batch, latent}, options),
                        at::empty({batch}, options),
                        at::empty({batch, latent}, options),
                        at::empty({batch, latent}, options)};
  kKernel(t);
  return {t.z, t.kl, t.mu, t.log_var};
}

template <BackwardKernel kKernel>
Grads gaussian_latent_backward_op(const at::Tensor& grad_z, const at::Tensor& grad_kl, const at::Tensor& grad_mu,
                                  const at::Tensor& grad_log_var, const at::Tensor& h, const at::Tensor& w_mu,
                                  const at::Tensor& w_log_var, const at::Tensor& eps, const at::Tensor& mu,
                                  const at::Tensor& log_var) {
  check_same_device("gaussian_latent_backward", {{"grad_z", grad_z},
                                                 {"grad_kl", grad_kl},
                                                 {"grad_mu", grad_mu},
                                                 {"grad_log_var", grad_log_var},
                                                 {"h", h},
                                                 {"w_mu", w_mu},
                                                 {"w_log_var", w_log_var},
                                                 {"eps", eps},
                                                 {"mu", mu},
                                                 {"log_var", log_var}});
  check_core(h, w_mu, w_log_var, eps);
  for (const NamedTensor& arg : {NamedTensor{"grad_z", grad_z}, NamedTensor{"grad_mu", grad_mu},
                                 NamedTensor{"grad_log_var", grad_log_var}, NamedTensor{"mu", mu},
                                 NamedTensor{"log_var", log_var}}) {
    TORCH_CHECK_VALUE(arg.tensor.sizes() == eps.sizes(), arg.name, " must have the shape of eps (", eps.sizes(),
                      "), got ", arg.tensor.sizes());
    check_dtype_of(arg.tensor, arg.name, h, "h");
  }
  TORCH_CHECK_VALUE(grad_kl.dim() == 1 && grad_kl.size(0) == h.size(0), "grad_kl must have shape (", h.size(0),
                    ",), got ", grad_kl.sizes());
  check_dtype_of(grad_kl, "grad_kl", h, "h");
  const int64_t batch = h.size(0), hidden = h.size(1), latent = w_mu.size(0);
  const auto options = h.options();
  const LatentBackward t{grad_z.contiguous(),
                         grad_kl.contiguous(),
                         grad_mu.contiguous(),
                         grad_log_var.contiguous(),
                         h.contiguous(),
                         w_mu.contiguous(),
                         w_log_var.contiguous(),
                         eps.contiguous(),
                         mu.contiguous(),
                         log_var.contiguous(),
                         at::empty({batch, hidden}, options),
                         at::empty({latent, hidden}, options),
                         at::zeros({latent}, options),
                         at::empty({latent, hidden}, options),
                         at::zeros({latent}, options),
                         at::empty({batch, latent}, options)};
  kKernel(t);
  return {t.grad_h, t.grad_w_mu, t.grad_b_mu, t.grad_w_log_var, t.grad_b_log_var, t.grad_eps};
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class GaussianLatentFunction : public torch::autograd::Function<GaussianLatentFunction> {
 public:
  using Outputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

  static variable_list forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w_mu,
                               const at::Tensor& b_mu, const at::Tensor& w_log_var, const at::Tensor& b_log_var,
                               const at::Tensor& eps) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::gaussian_latent", "")
                         .typed<Outputs(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                        const at::Tensor&, const at::Tensor&)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [z, kl, mu, log_var] = op.call(h, w_mu, b_mu, w_log_var, b_log_var, eps);
    ctx->save_for_backward({h, w_mu, w_log_var, eps, mu, log_var});
    return {z, kl, mu, log_var};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::gaussian_latent_backward", "")
                         .typed<Grads(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                      const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                      const at::Tensor&, const at::Tensor&)>();
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& mu = saved[4];
    // Outputs that were not used get no gradient: zeros.
    const at::Tensor grad_z = grads[0].defined() ? grads[0] : at::zeros_like(mu);
    const at::Tensor grad_kl = grads[1].defined() ? grads[1] : at::zeros({mu.size(0)}, mu.options());
    const at::Tensor grad_mu = grads[2].defined() ? grads[2] : at::zeros_like(mu);
    const at::Tensor grad_log_var = grads[3].defined() ? grads[3] : at::zeros_like(mu);
    auto [grad_h, grad_w_mu, grad_b_mu, grad_w_log_var, grad_b_log_var, grad_eps] =
        op.call(grad_z, grad_kl, grad_mu, grad_log_var, saved[0], saved[1], saved[2], saved[3], mu, saved[5]);
    variable_list out = {grad_h, grad_w_mu, grad_b_mu, grad_w_log_var, grad_b_log_var, grad_eps};
    for (size_t i = 0; i < out.size(); ++i)
      if (!ctx->needs_input_grad(i)) out[i] = at::Tensor();
    return out;
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gaussian_latent_autograd(
    const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& b_mu, const at::Tensor& w_log_var,
    const at::Tensor& b_log_var, const at::Tensor& eps) {
  auto out = GaussianLatentFunction::apply(h, w_mu, b_mu, w_log_var, b_log_var, eps);
  return {out[0], out[1], out[2], out[3]};
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("gaussian_latent(Tensor h, Tensor w_mu, Tensor b_mu, Tensor w_log_var, Tensor b_log_var, Tensor eps) -> "
        "(Tensor, Tensor, Tensor, Tensor)");
  m.def("gaussian_latent_backward(Tensor grad_z, Tensor grad_kl, Tensor grad_mu, Tensor grad_log_var, Tensor h, "
        "Tensor w_mu, Tensor w_log_var, Tensor eps, Tensor mu, Tensor log_var) -> "
        "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("gaussian_latent", &pyvi::gaussian_latent_op<pyvi::gaussian_latent_cpu>);
  m.impl("gaussian_latent_backward", &pyvi::gaussian_latent_backward_op<pyvi::gaussian_latent_backward_cpu>);
}

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("gaussian_latent", PYVI_CUDA_KERNEL(pyvi::gaussian_latent_op<pyvi::gaussian_latent_cuda>));
  m.impl("gaussian_latent_backward",
         PYVI_CUDA_KERNEL(pyvi::gaussian_latent_backward_op<pyvi::gaussian_latent_backward_cuda>));
}

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) { m.impl("gaussian_latent", &pyvi::gaussian_latent_autograd); }
