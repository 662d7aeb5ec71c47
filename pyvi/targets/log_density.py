"""A target from Python callables, for the numpy HMC backend (no native face)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pyvi._validate import count
from pyvi.targets.base import Target

__all__ = ["LogDensity"]


class LogDensity(Target):
    """A log density given by Python functions of a ``(dim,)`` float64 array.

    Args:
        logdensity_fn: ``x -> log p(x)`` (up to a constant).
        grad_fn: ``x -> d log p / dx`` as a ``(dim,)`` array.
        dim: the dimension of ``x``.

    Example:
        >>> target = LogDensity(lambda x: -0.5 * x @ x, lambda x: -x, dim=2)
        >>> target.log_prob_and_grad(np.ones(2))
        (-1.0, array([-1., -1.]))
    """

    def __init__(self, logdensity_fn: Callable[[np.ndarray], float], grad_fn: Callable[[np.ndarray], np.ndarray], dim: int):
        if not callable(logdensity_fn):
            raise TypeError("logdensity_fn must be callable")
        if not callable(grad_fn):
            raise TypeError("grad_fn must be callable")
        self.dim = count(dim, "dim", minimum=1)
        self.logdensity_fn = logdensity_fn
        self.grad_fn = grad_fn

    def log_prob_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """log p(x) and its gradient at one point ``x`` of shape ``(dim,)``."""
        grad = np.asarray(self.grad_fn(x), dtype=np.float64)
        if grad.shape != (self.dim,):
            raise ValueError(f"grad_fn must return shape ({self.dim},), got {grad.shape}")
        return float(self.logdensity_fn(x)), grad
