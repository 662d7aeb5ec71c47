// The fused VAE likelihood ops: pyvi::binarize, pyvi::bernoulli_log_lik(_backward) and
// pyvi::gaussian_log_lik(_backward): schemas, argument checks, config, outputs, autograd and
// registration. The kernels are in cpu/vae_likelihood_cpu.cpp and cuda/vae_likelihood_cuda.cu.
//
// The autograd kernels (C++: ~5 us per call instead of the ~100 us of Python's
// torch.library.register_autograd) call each likelihood's backward op (one pass over the pixels)
// through the dispatcher; the gradients with respect to x (only without dynamic binarisation, where
// x is a differentiable input: a binarised x is a draw, piecewise constant in the gray levels) and to
// the Gaussian log-scale are cheap reductions here. The backward ops have no derivative of their
// own, so double backward is not supported (the reference paths have it).
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cmath>

#include "../common/vae_likelihood.h"
#include "checks.h"
#include "no_cuda.h"
#include "vae_likelihood.h"

namespace pyvi {
namespace {

/// The config's one builder: the schema's seed and dynamic flag.
LikelihoodConfig likelihood_config(int64_t seed, bool dynamic) {
  TORCH_CHECK_VALUE(seed >= 0, "seed must be >= 0, got ", seed);
  return {counter_key(static_cast<uint64_t>(seed)), dynamic};
}

/// params (S, B, D) and x (B, D) of one dtype; `name` is params' name in the schema.
void check_params_and_x(const at::Tensor& params, const at::Tensor& x, const char* name) {
  TORCH_CHECK_VALUE(params.dim() == 3, name, " must have shape (samples, batch, pixels), got ", params.sizes());
  TORCH_CHECK_VALUE(x.dim() == 2 && x.size(0) == params.size(1) && x.size(1) == params.size(2),
                    "x must have shape (batch, pixels) = (", params.size(1), ", ", params.size(2), "), got ",
                    x.sizes());
  check_floating(params, name);
  check_dtype_of(x, "x", params, name);
}

void check_log_scale(const at::Tensor& log_scale, const at::Tensor& mean) {
  TORCH_CHECK_VALUE(log_scale.numel() == 1, "log_scale must have one element, got shape ", log_scale.sizes());
  check_dtype_of(log_scale, "log_scale", mean, "mean");
}

void check_grad(const at::Tensor& grad, const at::Tensor& params, const char* name) {
  TORCH_CHECK_VALUE(grad.dim() == 2 && grad.size(0) == params.size(0) && grad.size(1) == params.size(1),
                    "grad must have shape (samples, batch), got ", grad.sizes());
  check_dtype_of(grad, "grad", params, name);
}

at::Tensor log_lik_output(const at::Tensor& params) { return at::empty({params.size(0), params.size(1)}, params.options()); }

using BinarizeKernel = void (*)(const at::Tensor&, uint64_t, at::Tensor&);
using BernoulliKernel = void (*)(const LikelihoodConfig&, const at::Tensor&, const at::Tensor&, at::Tensor&);
using BernoulliBackwardKernel = void (*)(const LikelihoodConfig&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, at::Tensor&);
using GaussianKernel = void (*)(const LikelihoodConfig&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                at::Tensor&);
using GaussianBackwardKernel = void (*)(const LikelihoodConfig&, const at::Tensor&, const at::Tensor&,
                                        const at::Tensor&, const at::Tensor&, at::Tensor&);

template <BinarizeKernel kKernel>
at::Tensor binarize_op(const at::Tensor& probs_in, int64_t seed, int64_t offset) {
  check_floating(probs_in, "probs");
  TORCH_CHECK_VALUE(offset >= 0, "offset must be >= 0, got ", offset);
  const LikelihoodConfig config = likelihood_config(seed, true);
  const at::Tensor probs = probs_in.contiguous();
  at::Tensor out = at::empty_like(probs, at::MemoryFormat::Contiguous);
  kKernel(probs, counter_key_at(config.key, static_cast<uint64_t>(offset)), out);
  return out;
}

template <BernoulliKernel kKernel>
at::Tensor bernoulli_log_lik_op(const at::Tensor& logits_in, const at::Tensor& x_in, int64_t seed, bool dynamic) {
  check_same_device("bernoulli_log_lik", {{"logits", logits_in}, {"x", x_in}});
  check_params_and_x(logits_in, x_in, "logits");
  const LikelihoodConfig config = likelihood_config(seed, dynamic);
  const at::Tensor logits = logits_in.contiguous(), x = x_in.contiguous();
  at::Tensor out = log_lik_output(logits);
  kKernel(config, logits, x, out);
  return out;
}

template <BernoulliBackwardKernel kKernel>
at::Tensor bernoulli_log_lik_backward_op(const at::Tensor& grad_in, const at::Tensor& logits_in,
                                         const at::Tensor& x_in, int64_t seed, bool dynamic) {
  check_same_device("bernoulli_log_lik_backward", {{"grad", grad_in}, {"logits", logits_in}, {"x", x_in}});
  check_params_and_x(logits_in, x_in, "logits");
  check_grad(grad_in, logits_in, "logits");
  const LikelihoodConfig config = likelihood_config(seed, dynamic);
  const at::Tensor grad = grad_in.contiguous(), logits = logits_in.contiguous(), x = x_in.contiguous();
  at::Tensor out = at::empty_like(logits, at::MemoryFormat::Contiguous);
  kKernel(config, grad, logits, x, out);
  return out;
}

template <GaussianKernel kKernel>
at::Tensor gaussian_log_lik_op(const at::Tensor& mean_in, const at::Tensor& x_in, const at::Tensor& log_scale_in,
                               int64_t seed, bool dynamic) {
  check_same_device("gaussian_log_lik", {{"mean", mean_in}, {"x", x_in}, {"log_scale", log_scale_in}});
  check_params_and_x(mean_in, x_in, "mean");
  check_log_scale(log_scale_in, mean_in);
  const LikelihoodConfig config = likelihood_config(seed, dynamic);
  const at::Tensor mean = mean_in.contiguous(), x = x_in.contiguous(), log_scale = log_scale_in.contiguous();
  at::Tensor out = log_lik_output(mean);
  kKernel(config, mean, x, log_scale, out);
  return out;
}

template <GaussianBackwardKernel kKernel>
at::Tensor gaussian_log_lik_backward_op(const at::Tensor& grad_in, const at::Tensor& mean_in, const at::Tensor& x_in,
                                        const at::Tensor& log_scale_in, int64_t seed, bool dynamic) {
  check_same_device("gaussian_log_lik_backward",
                    {{"grad", grad_in}, {"mean", mean_in}, {"x", x_in}, {"log_scale", log_scale_in}});
  check_params_and_x(mean_in, x_in, "mean");
  check_log_scale(log_scale_in, mean_in);
  check_grad(grad_in, mean_in, "mean");
  const LikelihoodConfig config = likelihood_config(seed, dynamic);
  const at::Tensor grad = grad_in.contiguous(), mean = mean_in.contiguous(), x = x_in.contiguous();
  const at::Tensor log_scale = log_scale_in.contiguous();
  at::Tensor out = at::empty_like(mean, at::MemoryFormat::Contiguous);
  kKernel(config, grad, mean, x, log_scale, out);
  return out;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class BernoulliLogLikFunction : public torch::autograd::Function<BernoulliLogLikFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& x, int64_t seed,
                            bool dynamic) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::bernoulli_log_lik", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, bool)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor out = op.call(logits, x, seed, dynamic);
    ctx->save_for_backward({logits, x});
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["dynamic"] = dynamic;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::bernoulli_log_lik_backward", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, bool)>();
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& logits = saved[0];
    const bool dynamic = ctx->saved_data["dynamic"].toBool();
    const at::Tensor grad = grads[0].defined() ? grads[0] : at::zeros(logits.sizes().slice(0, 2), logits.options());
    at::Tensor grad_logits, grad_x;
    if (ctx->needs_input_grad(0)) grad_logits = op.call(grad, logits, saved[1], ctx->saved_data["seed"].toInt(), dynamic);
    // d/dx (x l - softplus(l)) = l, summed over the samples sharing x.
    if (ctx->needs_input_grad(1) && !dynamic) grad_x = grad.unsqueeze(-1).mul(logits).sum(0);
    return {grad_logits, grad_x, at::Tensor(), at::Tensor()};
  }
};

class GaussianLogLikFunction : public torch::autograd::Function<GaussianLogLikFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& mean, const at::Tensor& x,
                            const at::Tensor& log_scale, int64_t seed, bool dynamic) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::gaussian_log_lik", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, bool)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor out = op.call(mean, x, log_scale, seed, dynamic);
    ctx->save_for_backward({mean, x, log_scale, out});
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["dynamic"] = dynamic;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("pyvi::gaussian_log_lik_backward", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, int64_t, bool)>();
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& mean = saved[0];
    const at::Tensor& log_scale = saved[2];
    const at::Tensor& output = saved[3];
    const bool dynamic = ctx->saved_data["dynamic"].toBool();
    const at::Tensor grad = grads[0].defined() ? grads[0] : at::zeros_like(output);
    at::Tensor grad_mean, grad_x, grad_log_scale;
    const bool want_x = ctx->needs_input_grad(1) && !dynamic;
    if (ctx->needs_input_grad(0) || want_x) {
      grad_mean = op.call(grad, mean, saved[1], log_scale, ctx->saved_data["seed"].toInt(), dynamic);
      if (want_x) grad_x = grad_mean.sum(0).neg();  // d/dx = -d/dm, summed over the samples sharing x
    }
    if (ctx->needs_input_grad(2)) {
      // The output is -sq/2 - D (log s + log(2 pi)/2) with sq = sum r^2, and d/dlog s = sq - D.
      const double pixels = static_cast<double>(mean.size(-1));
      const at::Tensor norm = log_scale.reshape({}).add(0.5 * std::log(2.0 * M_PI)).mul(pixels);
      const at::Tensor squares = output.add(norm).mul(-2.0);
      grad_log_scale = grad.mul(squares.sub(pixels)).sum().reshape(log_scale.sizes());
    }
    return {ctx->needs_input_grad(0) ? grad_mean : at::Tensor(), grad_x, grad_log_scale, at::Tensor(), at::Tensor()};
  }
};

at::Tensor bernoulli_log_lik_autograd(const at::Tensor& logits, const at::Tensor& x, int64_t seed, bool dynamic) {
  return BernoulliLogLikFunction::apply(logits, x, seed, dynamic);
}

at::Tensor gaussian_log_lik_autograd(const at::Tensor& mean, const at::Tensor& x, const at::Tensor& log_scale,
                                     int64_t seed, bool dynamic) {
  return GaussianLogLikFunction::apply(mean, x, log_scale, seed, dynamic);
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("binarize(Tensor probs, int seed, int offset=0) -> Tensor");
  m.def("bernoulli_log_lik(Tensor logits, Tensor x, int seed, bool dynamic) -> Tensor");
  m.def("bernoulli_log_lik_backward(Tensor grad, Tensor logits, Tensor x, int seed, bool dynamic) -> Tensor");
  m.def("gaussian_log_lik(Tensor mean, Tensor x, Tensor log_scale, int seed, bool dynamic) -> Tensor");
  m.def("gaussian_log_lik_backward(Tensor grad, Tensor mean, Tensor x, Tensor log_scale, int seed, "
        "bool dynamic) -> Tensor");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("binarize", &pyvi::binarize_op<pyvi::binarize_cpu>);
  m.impl("bernoulli_log_lik", &pyvi::bernoulli_log_lik_op<pyvi::bernoulli_log_lik_cpu>);
  m.impl("bernoulli_log_lik_backward", &pyvi::bernoulli_log_lik_backward_op<pyvi::bernoulli_log_lik_backward_cpu>);
  m.impl("gaussian_log_lik", &pyvi::gaussian_log_lik_op<pyvi::gaussian_log_lik_cpu>);
  m.impl("gaussian_log_lik_backward", &pyvi::gaussian_log_lik_backward_op<pyvi::gaussian_log_lik_backward_cpu>);
}

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("binarize", PYVI_CUDA_KERNEL(pyvi::binarize_op<pyvi::binarize_cuda>));
  m.impl("bernoulli_log_lik", PYVI_CUDA_KERNEL(pyvi::bernoulli_log_lik_op<pyvi::bernoulli_log_lik_cuda>));
  m.impl("bernoulli_log_lik_backward",
         PYVI_CUDA_KERNEL(pyvi::bernoulli_log_lik_backward_op<pyvi::bernoulli_log_lik_backward_cuda>));
  m.impl("gaussian_log_lik", PYVI_CUDA_KERNEL(pyvi::gaussian_log_lik_op<pyvi::gaussian_log_lik_cuda>));
  m.impl("gaussian_log_lik_backward",
         PYVI_CUDA_KERNEL(pyvi::gaussian_log_lik_backward_op<pyvi::gaussian_log_lik_backward_cuda>));
}

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) {
  m.impl("bernoulli_log_lik", &pyvi::bernoulli_log_lik_autograd);
  m.impl("gaussian_log_lik", &pyvi::gaussian_log_lik_autograd);
}
