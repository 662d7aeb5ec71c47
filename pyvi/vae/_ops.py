"""torch.library registration of the fused VAE ops (kernels in csrc/torch/vae_likelihood*, sparse_linear*,
gaussian_latent*, dense_linear*).

Fake kernels for ``torch.compile`` / ``opcheck``. The autograd kernels are C++
(csrc/torch/vae_autograd.cpp, ~5 us per call instead of ~100 us through Python): the backward of
each likelihood is itself a custom op (one pass over the pixels); the gradients with respect to x
(only without dynamic binarisation, where x is a differentiable input) and to the Gaussian
log-scale are cheap reductions there.
"""

from __future__ import annotations

import torch

from pyvi._backend import require

__all__: list[str] = []

require("torch_ops")  # loads pyvi._C, which registers the schemas


def _output_fake(params, x):
    torch._check(params.dim() == 3, lambda: "params must have shape (samples, batch, pixels)")
    return params.new_empty(params.shape[:2])


@torch.library.register_fake("pyvi::binarize")
def _binarize_fake(probs, seed):
    return torch.empty_like(probs, memory_format=torch.contiguous_format)


@torch.library.register_fake("pyvi::sparse_linear")
def _sparse_linear_fake(x, weight, bias, relu):
    return x.new_empty((x.shape[0], weight.shape[0]))


@torch.library.register_fake("pyvi::sparse_linear_backward")
def _sparse_linear_backward_fake(grad, x, output, relu):
    # The weight gradient comes input-major, (in, out) contiguous seen as (out, in).
    return grad.new_empty(grad.shape), x.new_empty((x.shape[1], grad.shape[1])).t(), grad.new_empty(grad.shape[1:])


@torch.library.register_fake("pyvi::dense_linear")
def _dense_linear_fake(x, weight, bias):
    return x.new_empty((x.shape[0], weight.shape[0]))


@torch.library.register_fake("pyvi::gaussian_latent")
def _gaussian_latent_fake(h, w_mu, b_mu, w_log_var, b_log_var, eps):
    shape = (h.shape[0], w_mu.shape[0])
    return h.new_empty(shape), h.new_empty(shape[:1]), h.new_empty(shape), h.new_empty(shape)


@torch.library.register_fake("pyvi::gaussian_latent_backward")
def _gaussian_latent_backward_fake(grad_z, grad_kl, grad_mu, grad_log_var, h, w_mu, w_log_var, eps, mu, log_var):
    return (h.new_empty(h.shape), w_mu.new_empty(w_mu.shape), w_mu.new_empty(w_mu.shape[:1]),
            w_mu.new_empty(w_mu.shape), w_mu.new_empty(w_mu.shape[:1]), eps.new_empty(eps.shape))


@torch.library.register_fake("pyvi::bernoulli_log_lik")
def _bernoulli_fake(logits, x, seed, dynamic):
    return _output_fake(logits, x)


@torch.library.register_fake("pyvi::bernoulli_log_lik_backward")
def _bernoulli_backward_fake(grad, logits, x, seed, dynamic):
    return torch.empty_like(logits, memory_format=torch.contiguous_format)


@torch.library.register_fake("pyvi::gaussian_log_lik")
def _gaussian_fake(mean, x, log_scale, seed, dynamic):
    return _output_fake(mean, x)


@torch.library.register_fake("pyvi::gaussian_log_lik_backward")
def _gaussian_backward_fake(grad, mean, x, log_scale, seed, dynamic):
    return torch.empty_like(mean, memory_format=torch.contiguous_format)


@torch.library.register_fake("pyvi::binarize_rows")
def _binarize_rows_fake(images, order, seeds, step, stride, batch_size):
    from pyvi._fit_ops import same_device

    same_device("binarize_rows", images=images, order=order, seeds=seeds, step=step)
    return images.new_empty((batch_size, images.shape[1]))
