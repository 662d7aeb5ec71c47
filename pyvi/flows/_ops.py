"""Python side of the fused flow ops (``torch.ops.pyvi.planar_*``, ``torch.ops.pyvi.coupling_*``).

Each flow stack is one forward op (samples, log-det, and the per-layer inputs it saves for the
backward) and one backward op (analytic; gradient of the inputs and the parameter-gradient
reduction inside the kernel). Here they get their fake kernels with ``torch.library``
(``torch.compile``, ``opcheck``). Their autograd formula is registered in C++
(csrc/torch/flows_autograd.cpp, the ``Autograd`` dispatch key): through Python's
``torch.library.register_autograd`` each call cost ~100 us, more than the whole kernel at the
student's sizes. The backward ops are not themselves differentiable: double backward through a
fused flow is not supported (the reference implementation has it).
"""

from __future__ import annotations

import torch

from pyvi._backend import require

__all__ = ["planar_flow", "coupling_flow"]

require("torch_ops")  # loads pyvi._C, which registers the schemas


# -- planar ----------------------------------------------------------------------------------------


@torch.library.register_fake("pyvi::planar_forward")
def _planar_forward_fake(z, params):
    torch._check(z.dim() == 2, lambda: "z must have shape (batch, dim)")
    torch._check(params.dim() == 2 and params.shape[1] == 2 * z.shape[1] + 1, lambda: "params must be (K, 2 dim + 1)")
    return z.new_empty(z.shape), z.new_empty(z.shape[0]), z.new_empty(z.shape[0], params.shape[0], z.shape[1])


@torch.library.register_fake("pyvi::planar_backward")
def _planar_backward_fake(grad_x, grad_log_det, params, states):
    return grad_x.new_empty(grad_x.shape), params.new_empty(params.shape)


def planar_flow(z: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, log_det)`` of a planar stack with packed ``params (K, 2 dim + 1)``, as one fused op."""
    x, log_det, _ = torch.ops.pyvi.planar_forward(z, params)
    return x, log_det


# -- couplings (NICE, RealNVP) ---------------------------------------------------------------------


@torch.library.register_fake("pyvi::coupling_forward")
def _coupling_forward_fake(z, params, num_couplings, hidden, depth, affine, scale_bound):
    torch._check(z.dim() == 2, lambda: "z must have shape (batch, dim)")
    return z.new_empty(z.shape), z.new_empty(z.shape[0]), z.new_empty(z.shape[0], num_couplings + 1, z.shape[1])


@torch.library.register_fake("pyvi::coupling_backward")
def _coupling_backward_fake(grad_x, grad_log_det, params, states, num_couplings, hidden, depth, affine, scale_bound):
    return grad_x.new_empty(grad_x.shape), params.new_empty(params.shape)


def coupling_flow(
    z: torch.Tensor, params: torch.Tensor, num_couplings: int, hidden: int, depth: int, affine: bool, scale_bound: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, log_det)`` of a NICE (``affine=False``) or RealNVP stack with packed ``params``, fused."""
    x, log_det, _ = torch.ops.pyvi.coupling_forward(z, params, num_couplings, hidden, depth, affine, scale_bound)
    return x, log_det
