"""A native target's log density on torch tensors: the torch faces of the user targets
(:class:`~pyvi.targets.NumbaTarget`, :class:`~pyvi.targets.CTarget`), for ``pyvi.vi``.

The points go to the C++ core's ``log_prob_and_grad`` on the target's ``pyvi._core`` face (GIL
released, ``torch.get_num_threads()`` threads, each point's result independent of the threads),
which returns log p and its gradient together. :func:`log_joint` is that pair, the fused
log-joint op ``vi.fit`` chains by hand (:meth:`pyvi.targets.Target.fused_log_joint`);
:func:`log_prob` wraps it in an autograd function whose backward multiplies the saved gradient
(first derivatives only: a second backward raises).

CPU tensors only: a CUDA tensor is a ValueError, never a silent copy to the host. float32 points
are evaluated in float64 (the native precision) and the results cast back to float32. A point
that is not finite gets log p = NaN and a NaN gradient (``vi.fit`` then skips the step), not an
error.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from pyvi._backend import require

__all__ = ["log_joint", "log_prob"]


def log_joint(face, dim: int, name: str) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``theta (..., dim) -> (log_prob (...), grad (..., dim))`` on the CPU by the ``pyvi._core``
    face ``face`` of a target called ``name`` (for messages); fresh tensors, no autograd graph."""
    from pyvi.hmc.native import reporting_exceptions

    core = require("cpp")

    def evaluate(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(theta, torch.Tensor):
            raise TypeError(f"theta must be a torch.Tensor, got {type(theta).__name__}")
        if theta.device.type != "cpu":
            raise ValueError(f"{name} evaluates its log density on the CPU, but theta is on {theta.device}: run the "
                             "flow on the CPU (pyvi never copies a CUDA tensor to the host silently)")
        if not theta.is_floating_point():
            raise TypeError(f"theta must be a floating-point tensor, got {theta.dtype}")
        if theta.ndim == 0 or theta.shape[-1] != dim:
            raise ValueError(f"theta must have shape (..., {dim}), got {tuple(theta.shape)}")
        points = theta.detach().reshape(-1, dim).to(torch.float64).contiguous().numpy()
        finite = np.isfinite(points).all(axis=1)
        log_prob = np.full(points.shape[0], np.nan)
        grad = np.full(points.shape, np.nan)
        if finite.any():
            chosen = points if finite.all() else np.ascontiguousarray(points[finite])
            with reporting_exceptions(face, f"a torch evaluation of {name}"):
                values, gradients = core.log_prob_and_grad(face, chosen, num_threads=torch.get_num_threads())
            log_prob[finite], grad[finite] = values, gradients
        return (torch.from_numpy(log_prob).to(theta.dtype).reshape(theta.shape[:-1]),
                torch.from_numpy(grad).to(theta.dtype).reshape(theta.shape))

    return evaluate


class _LogProb(torch.autograd.Function):
    """log p through a native evaluation; backward multiplies the gradient it returned."""

    @staticmethod
    def forward(ctx, theta, evaluate):
        value, grad = evaluate(theta)
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad_output.unsqueeze(-1) * grad, None


def log_prob(face, dim: int, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``theta (..., dim) -> log_prob (...)``, differentiable once by autograd (see module doc)."""
    evaluate = log_joint(face, dim, name)
    return lambda theta: _LogProb.apply(theta, evaluate)
