"""The Python side of ``pyvi::gaussian_latent`` / ``pyvi::gaussian_latent_backward`` (C++:
csrc/torch/gaussian_latent.cpp): their fake kernels and the thin wrapper. The user-facing function,
with its torch reference, is :mod:`pyvi.vae.latent`.
"""

from __future__ import annotations

import torch

from pyvi.ops._fake import check_same_device

__all__ = ["gaussian_latent"]


@torch.library.register_fake("pyvi::gaussian_latent")
def _gaussian_latent_fake(h, w_mu, b_mu, w_log_var, b_log_var, eps):
    check_same_device("gaussian_latent", h=h, w_mu=w_mu, b_mu=b_mu, w_log_var=w_log_var, b_log_var=b_log_var, eps=eps)
    shape = (h.shape[0], w_mu.shape[0])
    return h.new_empty(shape), h.new_empty(shape[:1]), h.new_empty(shape), h.new_empty(shape)


@torch.library.register_fake("pyvi::gaussian_latent_backward")
def _gaussian_latent_backward_fake(grad_z, grad_kl, grad_mu, grad_log_var, h, w_mu, w_log_var, eps, mu, log_var):
    check_same_device("gaussian_latent_backward", grad_z=grad_z, grad_kl=grad_kl, grad_mu=grad_mu,
                      grad_log_var=grad_log_var, h=h, w_mu=w_mu, w_log_var=w_log_var, eps=eps, mu=mu, log_var=log_var)
    return (h.new_empty(h.shape), w_mu.new_empty(w_mu.shape), w_mu.new_empty(w_mu.shape[:1]),
            w_mu.new_empty(w_mu.shape), w_mu.new_empty(w_mu.shape[:1]), eps.new_empty(eps.shape))


def gaussian_latent(
    h: torch.Tensor, w_mu: torch.Tensor, b_mu: torch.Tensor, w_log_var: torch.Tensor, b_log_var: torch.Tensor,
    eps: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(z, kl, mu, log_var)`` of the Gaussian posterior heads, reparameterisation and KL, as one fused op."""
    return torch.ops.pyvi.gaussian_latent(h, w_mu, b_mu, w_log_var, b_log_var, eps)
