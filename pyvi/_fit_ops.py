"""Python side of the training-step ops (``torch.ops.pyvi.bound_gradients``, ``adam_update_``): fake
kernels for ``torch.compile`` and ``opcheck``. Kernels: csrc/torch/bound_gradients*, adam_update*."""

from __future__ import annotations

import torch

from pyvi._backend import require

__all__ = ["same_device"]

require("torch_ops")  # loads pyvi._C, which registers the schemas


def same_device(op: str, **tensors: torch.Tensor) -> None:
    """Raises ValueError unless every tensor argument is on one device (the real kernels check the same;
    without this a CPU tensor mixed with a meta tensor would reach the fake kernel and pass)."""
    devices = {name: tensor.device for name, tensor in tensors.items()}
    if len(set(devices.values())) > 1:
        listed = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(f"pyvi::{op}: all tensors must be on one device, got {listed}")


@torch.library.register_fake("pyvi::bound_gradients")
def _bound_gradients_fake(log_p, grad_log_p, log_det, noise, log_normaliser, num_particles, iwae):
    same_device("bound_gradients", log_p=log_p, grad_log_p=grad_log_p, log_det=log_det, noise=noise)
    torch._check(log_p.dim() == 1 and grad_log_p.dim() == 2, lambda: "log_p (N,) and grad_log_p (N, dim)")
    return log_p.new_empty(()), grad_log_p.new_empty(grad_log_p.shape), log_det.new_empty(log_det.shape)


@torch.library.register_fake("pyvi::adam_update_")
def _adam_update_fake(param, grad, exp_avg, exp_avg_sq, step, lr, index, bound, history, beta1, beta2, eps):
    same_device("adam_update_", param=param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq, step=step, lr=lr,
                index=index, bound=bound, history=history)
    return None
