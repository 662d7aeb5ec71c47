"""The Python side of the fused VAE likelihood ops (C++: csrc/torch/vae_likelihood.cpp): ``pyvi::binarize``,
``pyvi::bernoulli_log_lik(_backward)`` and ``pyvi::gaussian_log_lik(_backward)``: their fake kernels
and thin wrappers.

The autograd kernels are C++ (~5 us per call instead of ~100 us through Python): the backward of
each likelihood is itself a custom op (one pass over the pixels); the gradients with respect to x
(only without dynamic binarisation, where x is a differentiable input) and to the Gaussian
log-scale are cheap reductions there. The user-facing functions, with their argument checks and
torch references, are in :mod:`pyvi.vae.likelihood`.
"""

from __future__ import annotations

import torch

from pyvi.ops._fake import check_same_device

__all__ = ["binarize", "bernoulli_log_lik", "gaussian_log_lik"]


def _output_fake(params):
    torch._check(params.dim() == 3, lambda: "params must have shape (samples, batch, pixels)")
    return params.new_empty(params.shape[:2])


@torch.library.register_fake("pyvi::binarize")
def _binarize_fake(probs, seed, offset=0):
    return torch.empty_like(probs, memory_format=torch.contiguous_format)


@torch.library.register_fake("pyvi::bernoulli_log_lik")
def _bernoulli_fake(logits, x, seed, dynamic):
    check_same_device("bernoulli_log_lik", logits=logits, x=x)
    return _output_fake(logits)


@torch.library.register_fake("pyvi::bernoulli_log_lik_backward")
def _bernoulli_backward_fake(grad, logits, x, seed, dynamic):
    check_same_device("bernoulli_log_lik_backward", grad=grad, logits=logits, x=x)
    return torch.empty_like(logits, memory_format=torch.contiguous_format)


@torch.library.register_fake("pyvi::gaussian_log_lik")
def _gaussian_fake(mean, x, log_scale, seed, dynamic):
    check_same_device("gaussian_log_lik", mean=mean, x=x, log_scale=log_scale)
    return _output_fake(mean)


@torch.library.register_fake("pyvi::gaussian_log_lik_backward")
def _gaussian_backward_fake(grad, mean, x, log_scale, seed, dynamic):
    check_same_device("gaussian_log_lik_backward", grad=grad, mean=mean, x=x, log_scale=log_scale)
    return torch.empty_like(mean, memory_format=torch.contiguous_format)


def binarize(probs: torch.Tensor, seed: int, offset: int = 0) -> torch.Tensor:
    """Bernoulli(probs) draws by the counter-based generator keyed by ``seed``, shaped as ``probs``;
    element i draws the bit of position ``offset + i``."""
    return torch.ops.pyvi.binarize(probs, seed, offset).reshape(probs.shape)


def bernoulli_log_lik(logits: torch.Tensor, x: torch.Tensor, seed: int | None) -> torch.Tensor:
    """``(S, B)`` Bernoulli log-likelihoods of logits ``(S, B, D)``; ``seed`` binarises x on the fly."""
    return torch.ops.pyvi.bernoulli_log_lik(logits, x, 0 if seed is None else seed, seed is not None)


def gaussian_log_lik(mean: torch.Tensor, x: torch.Tensor, log_scale: torch.Tensor, seed: int | None) -> torch.Tensor:
    """``(S, B)`` Gaussian log-likelihoods of means ``(S, B, D)``; ``seed`` binarises x on the fly."""
    return torch.ops.pyvi.gaussian_log_lik(mean, x, log_scale, 0 if seed is None else seed, seed is not None)
