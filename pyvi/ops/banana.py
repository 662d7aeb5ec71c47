"""The Python side of ``pyvi::banana_log_joint`` (C++: csrc/torch/banana.cpp): its fake kernel and the
public wrapper :func:`banana_log_joint`; and the fake kernel of ``pyvi::banana_leapfrog``
(csrc/torch/banana_leapfrog.cpp, the torch HMC sampler's fused trajectory, reached through
:meth:`pyvi.targets.Banana.fused_leapfrog`).

The autograd formula (``grad_log_prob * grad + H @ grad_grad``, double-backward-able) is the op's
C++ Autograd kernel: through ``torch.library.register_autograd`` it cost ~100 us per call, more than
the rest of a batch-256 flow training step.
"""

from __future__ import annotations

import torch

__all__ = ["banana_log_joint"]


@torch.library.register_fake("pyvi::banana_log_joint")
def _banana_log_joint_fake(theta, num_data, mean_y, ss_y, sigma_y, sigma_theta):
    torch._check(theta.dim() == 2 and theta.shape[1] == 2, lambda: "theta must have shape (batch, 2)")
    return theta.new_empty(theta.shape[0]), theta.new_empty(theta.shape)


@torch.library.register_fake("pyvi::banana_leapfrog")
def _banana_leapfrog_fake(x, momentum, grad, step_size, num_steps, num_data, mean_y, ss_y, sigma_y, sigma_theta):
    torch._check(x.dim() == 2 and x.shape[1] == 2, lambda: "x must have shape (chains, 2)")
    # A meta tensor beside real ones dispatches here: the C++ op's device check never runs.
    for name, tensor in (("momentum", momentum), ("grad", grad), ("step_size", step_size), ("num_steps", num_steps)):
        torch._check_value(tensor.device == x.device, lambda name=name, tensor=tensor: (
            f"banana_leapfrog: {name} is on {tensor.device} but x is on {x.device}; all tensor arguments must be on "
            "one device"))
    return x.new_empty(x.shape[0])


def banana_log_joint(theta: torch.Tensor, banana) -> torch.Tensor:
    """log p(y, theta) of a :class:`pyvi.targets.Banana` for theta ``(..., 2)``, as one fused op.

    O(1) per point from the sufficient statistics, with an analytic gradient (and Hessian, so
    double backward works).
    Runs on CPU and, when pyvi was built with CUDA, on CUDA tensors; float32 and float64.

    Example:
        >>> from pyvi.targets import Banana
        >>> theta = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
        >>> banana_log_joint(theta, Banana.default()).shape
        torch.Size([3])
    """
    if not isinstance(theta, torch.Tensor):
        raise TypeError(f"theta must be a torch.Tensor, got {type(theta).__name__}")
    if theta.shape[-1:] != (2,):
        raise ValueError(f"theta must have shape (..., 2), got {tuple(theta.shape)}")
    if theta.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"theta must be float32 or float64, got {theta.dtype}")
    batch_shape = theta.shape[:-1]
    log_prob, _ = torch.ops.pyvi.banana_log_joint(
        theta.reshape(-1, 2), float(banana.num_data), banana.mean_y, banana.ss_y, banana.sigma_y, banana.sigma_theta
    )
    return log_prob.reshape(batch_shape)
