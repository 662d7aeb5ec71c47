"""The Python side of ``pyvi::planar_forward`` / ``pyvi::planar_backward`` (C++: csrc/torch/planar.cpp):
their fake kernels and the wrapper :func:`planar_flow`.

The stack is one forward op (samples, log-det, and the per-layer inputs it saves for the backward)
and one analytic backward op (the gradient of the inputs and the parameter-gradient reduction
inside the kernel); the autograd formula joining them is the forward op's C++ Autograd kernel. The
backward op is not itself differentiable: its own Autograd kernel makes a double backward through a
fused flow raise NotImplementedError naming it and pointing to ``impl="reference"`` (which has second
derivatives), never return zeros.
"""

from __future__ import annotations

import torch

from pyvi.ops import _C
from pyvi.ops._fake import check_same_device

__all__ = ["planar_flow", "MAX_CUDA_DIM"]

#: Largest dim of the CUDA backward kernel (its per-thread gradient vector is fixed-size).
MAX_CUDA_DIM: int = _C.planar_max_cuda_dim


@torch.library.register_fake("pyvi::planar_forward")
def _planar_forward_fake(z, params):
    check_same_device("planar_forward", z=z, params=params)
    torch._check(z.dim() == 2, lambda: "z must have shape (batch, dim)")
    torch._check(params.dim() == 2 and params.shape[1] == 2 * z.shape[1] + 1, lambda: "params must be (K, 2 dim + 1)")
    return z.new_empty(z.shape), z.new_empty(z.shape[0]), z.new_empty(z.shape[0], params.shape[0], z.shape[1])


@torch.library.register_fake("pyvi::planar_backward")
def _planar_backward_fake(grad_x, grad_log_det, params, states):
    check_same_device("planar_backward", grad_x=grad_x, grad_log_det=grad_log_det, params=params, states=states)
    return grad_x.new_empty(grad_x.shape), params.new_empty(params.shape)


def planar_flow(z: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, log_det)`` of a planar stack with packed ``params (K, 2 dim + 1)``, as one fused op."""
    x, log_det, _ = torch.ops.pyvi.planar_forward(z, params)
    return x, log_det
