"""torch.library registration of the fused VAE ops (kernels in csrc/torch/vae_likelihood*, sparse_linear*).

Fake kernels for ``torch.compile`` / ``opcheck`` and the likelihoods' autograd formulas
(``pyvi::sparse_linear``'s autograd kernel is C++, csrc/torch/vae_autograd.cpp). The backward of each
likelihood is itself a custom op (one pass over the pixels); the gradient with respect to x (only
without dynamic binarisation, where x is a differentiable input) and to the Gaussian log-scale are
cheap reductions done here in torch.
"""

from __future__ import annotations

import math

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


def _bernoulli_setup(ctx, inputs, output):
    logits, x, seed, dynamic = inputs
    ctx.save_for_backward(logits, x)
    ctx.seed, ctx.dynamic = seed, dynamic


def _bernoulli_backward(ctx, grad):
    logits, x = ctx.saved_tensors
    grad_logits = grad_x = None
    if ctx.needs_input_grad[0]:
        grad_logits = torch.ops.pyvi.bernoulli_log_lik_backward(grad, logits, x, ctx.seed, ctx.dynamic)
    if ctx.needs_input_grad[1] and not ctx.dynamic:
        # d/dx (x l - softplus(l)) = l; a dynamically binarised x is a draw, piecewise constant in x.
        grad_x = torch.einsum("sb,sbd->bd", grad, logits)
    return grad_logits, grad_x, None, None


torch.library.register_autograd("pyvi::bernoulli_log_lik", _bernoulli_backward, setup_context=_bernoulli_setup)


def _gaussian_setup(ctx, inputs, output):
    mean, x, log_scale, seed, dynamic = inputs
    ctx.save_for_backward(mean, x, log_scale, output)
    ctx.seed, ctx.dynamic = seed, dynamic


def _gaussian_backward(ctx, grad):
    mean, x, log_scale, output = ctx.saved_tensors
    grad_mean = grad_x = grad_log_scale = None
    if ctx.needs_input_grad[0] or (ctx.needs_input_grad[1] and not ctx.dynamic):
        grad_mean = torch.ops.pyvi.gaussian_log_lik_backward(grad, mean, x, log_scale, ctx.seed, ctx.dynamic)
        if ctx.needs_input_grad[1] and not ctx.dynamic:
            grad_x = -grad_mean.sum(0)  # d/dx = -d/dm, summed over the samples sharing x
    if ctx.needs_input_grad[2]:
        # The output is -sq/2 - D (log s + log(2 pi)/2), sq = sum r^2; d/dlog s = sq - D.
        pixels = mean.shape[-1]
        squares = -2.0 * (output + pixels * (log_scale.reshape(()) + 0.5 * math.log(2 * math.pi)))
        grad_log_scale = (grad * (squares - pixels)).sum().reshape(log_scale.shape)
    return grad_mean if ctx.needs_input_grad[0] else None, grad_x, grad_log_scale, None, None


torch.library.register_autograd("pyvi::gaussian_log_lik", _gaussian_backward, setup_context=_gaussian_setup)
