"""A user's log density written in torch, for the torch HMC backend (and, through autograd, numpy
and ``vi``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pyvi._validate import choice, count
from pyvi.targets.base import Target

__all__ = ["TorchTarget"]


class TorchTarget(Target):
    """A log density given as torch code over a batch of points; gradients by autograd.

    ``fn`` maps a ``(num_chains, dim)`` tensor to the ``(num_chains,)`` log densities (up to a
    constant), in the input's dtype and on its device. Any differentiable torch code will do; rows
    must not interact (row i's log density depends on row i only), since ``backend="torch"``
    evaluates every chain in one call. Code without host synchronisation (no ``.item()``, no
    Python branches on tensor values) can be captured into CUDA graphs by the torch backend.

    ``fn`` is called once here, on ``check_point``, to check its signature and output: a wrong
    signature, a return value that is not a tensor of shape ``(n,)`` in the input's dtype, or one
    that autograd cannot differentiate is a TypeError/ValueError now, not deep inside a sampler.
    ``hmc.sample`` checks the output again on the chains' starts (shape, dtype, finite values).

    Args:
        fn: ``x (n, dim) -> log p (n,)``.
        dim: the dimension of a point (>= 1).
        check_point: where ``fn`` is called once, at construction: a point ``(dim,)`` or a batch
            ``(n, dim)`` (a tensor: its device and dtype are used). Default: two rows of zeros in
            float64 on the CPU; pass points where fn is defined, on the model's device, when zero
            is outside its support or the model's tensors live on a GPU.

    Raises:
        TypeError: ``fn`` is not callable, raised a TypeError on the check points, or returned
            something other than a differentiable floating tensor of their dtype.
        ValueError: a bad ``dim`` or ``check_point``, or an output of the wrong shape.
        Exception: whatever else ``fn`` raised at ``check_point``, with a note saying so.

    Example:
        >>> import torch
        >>> target = TorchTarget(lambda x: -0.5 * (x * x).sum(-1), dim=3)
        >>> log_prob, grad = target.log_prob_and_grad(np.ones(3))
        >>> log_prob, grad.tolist()
        (-1.5, [-1.0, -1.0, -1.0])
    """

    def __init__(self, fn: Callable, dim: int, *, check_point=None):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.dim = count(dim, "dim", minimum=1)
        self._check(self._check_points(check_point))

    def __repr__(self) -> str:
        return f"TorchTarget({getattr(self.fn, '__qualname__', type(self.fn).__name__)}, dim={self.dim})"

    def _check_points(self, check_point):
        import torch

        if check_point is None:
            return torch.zeros(2, self.dim, dtype=torch.float64)
        if not isinstance(check_point, torch.Tensor):
            try:
                check_point = torch.as_tensor(np.asarray(check_point, dtype=np.float64))
            except (TypeError, ValueError) as error:
                raise TypeError(f"check_point must be an array of numbers, got {type(check_point).__name__}") from error
        if not check_point.is_floating_point():
            raise TypeError(f"check_point must be a floating-point tensor, got {check_point.dtype}")
        if check_point.dim() == 1:
            check_point = check_point.unsqueeze(0)
        if check_point.dim() != 2 or check_point.shape[1] != self.dim or check_point.shape[0] < 1:
            raise ValueError(f"check_point must have shape ({self.dim},) or (n, {self.dim}), got {tuple(check_point.shape)}")
        return check_point.detach()

    def _check(self, x) -> None:
        """Calls fn on ``x`` once and checks what it returns (see the class docstring)."""
        import torch

        with torch.enable_grad():
            x = x.clone().requires_grad_(True)
            try:
                log_prob = self.fn(x)
            except TypeError as error:
                raise TypeError(f"fn must take one ({x.shape[0]}, {self.dim}) tensor and return its log densities; "
                                f"calling it on one raised TypeError: {error}") from error
            except Exception as error:
                error.add_note(f"(raised by fn in TorchTarget's construction check, on a ({x.shape[0]}, {self.dim}) "
                               f"{x.dtype} tensor on {x.device}: pass check_point= where fn is defined)")
                raise
            check_output(log_prob, x, "fn")
            if not log_prob.requires_grad:
                raise TypeError("fn's output does not depend on its input through autograd (computed with numpy, "
                                "detached, or constant?): TorchTarget needs its gradient")

    # -- faces (pyvi.targets.Target) ---------------------------------------------------------------

    def log_prob_and_grad(self, x) -> tuple[float | np.ndarray, np.ndarray]:
        """log p and its gradient with numpy, for ``x`` of shape ``(dim,)`` or ``(n, dim)``: fn in
        float64 on the CPU, the gradient by autograd."""
        import torch

        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1:] != (self.dim,) or x.ndim not in (1, 2):
            raise ValueError(f"x must have shape ({self.dim},) or (n, {self.dim}), got {x.shape}")
        points = torch.from_numpy(np.array(x.reshape(-1, self.dim)))
        log_prob, grad = autograd_log_prob_and_grad(self.fn, points)
        log_prob, grad = log_prob.numpy(), grad.numpy()
        if x.ndim == 1:
            return float(log_prob[0]), grad[0]
        return log_prob, grad

    def torch_log_prob(self, impl: str = "reference") -> Callable:
        """``fn`` itself (one implementation whatever ``impl``)."""
        choice(impl, "impl", ("reference", "fused"))
        return self.fn


def check_output(log_prob, x, name: str) -> None:
    """``log_prob`` is what a torch log density must return for the points ``x`` ``(n, dim)``: a
    tensor of shape ``(n,)`` in x's dtype, on x's device."""
    import torch

    if not isinstance(log_prob, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor of shape ({x.shape[0]},), got {type(log_prob).__name__}")
    if log_prob.shape != (x.shape[0],):
        raise ValueError(f"{name} must return shape ({x.shape[0]},) for a ({x.shape[0]}, {x.shape[1]}) input (one log "
                         f"density per row), got {tuple(log_prob.shape)}")
    if log_prob.dtype != x.dtype:
        raise TypeError(f"{name} must return log densities in its input's dtype {x.dtype}, got {log_prob.dtype}")
    if log_prob.device != x.device:
        raise ValueError(f"{name} must return log densities on its input's device {x.device}, got {log_prob.device}")


def autograd_log_prob_and_grad(fn: Callable, x):
    """``(log p (n,), d log p / dx (n, dim))`` of a torch log density at ``x`` (detached), the
    gradient by one reverse pass (rows independent, so the gradient of the sum is every row's)."""
    import torch

    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        log_prob = fn(x)
        (grad,) = torch.autograd.grad(log_prob, x, grad_outputs=torch.ones_like(log_prob))
    return log_prob.detach(), grad
