// Autograd kernels of the VAE's ops, in C++: pyvi::sparse_linear (the encoder's first layer),
// pyvi::gaussian_latent (posterior heads, reparameterisation, KL), pyvi::dense_linear (the
// decoder's output layer; its backward products are the op itself on transposed views) and the
// decoder likelihoods pyvi::bernoulli_log_lik / pyvi::gaussian_log_lik.
//
// Each forward op is wrapped in a torch::autograd::Function whose backward calls the matching
// backward op through the dispatcher, so CPU and CUDA share this file (the flows do the same,
// csrc/torch/flows_autograd.cpp): ~5 us per call instead of the ~100 us of Python's
// torch.library.register_autograd, in a training step of ~5 ms. Gradients with respect to x (x is
// usually data) are formed only when x requires them: grad_pre @ W for the layer; for the
// likelihoods only without dynamic binarisation, where x is a differentiable input (a binarised x
// is a draw, piecewise constant in the gray levels). The backward ops have no derivative of their
// own, so double backward is not supported (the reference paths have it).
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/zeros.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cmath>
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

at::Tensor bernoulli_log_lik_autograd(const at::Tensor& logits, const at::Tensor& x, int64_t seed, bool dynamic) {
  return BernoulliLogLikFunction::apply(logits, x, seed, dynamic);
}

at::Tensor gaussian_log_lik_autograd(const at::Tensor& mean, const at::Tensor& x, const at::Tensor& log_scale,
                                     int64_t seed, bool dynamic) {
  return GaussianLogLikFunction::apply(mean, x, log_scale, seed, dynamic);
}

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

at::Tensor sparse_linear_autograd(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool relu) {
  return SparseLinearFunction::apply(x, weight, bias, relu);
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) {
  m.impl("sparse_linear", &pyvi::sparse_linear_autograd);
  m.impl("dense_linear", &pyvi::dense_linear_autograd);
  m.impl("gaussian_latent", &pyvi::gaussian_latent_autograd);
  m.impl("bernoulli_log_lik", &pyvi::bernoulli_log_lik_autograd);
  m.impl("gaussian_log_lik", &pyvi::gaussian_log_lik_autograd);
}
